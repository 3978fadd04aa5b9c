// `npm ci` on Node 20 warns EBADENGINE for one package that declares Node ≥ 22 (README, "Quick
// start"): content-type@3 (@modelcontextprotocol/conformance → @octokit/request), a dev
// dependency of the MCP conformance suite, which runs on the pinned Node 22
// (docs/MCP-CONFORMANCE.md). fastify's light-my-request (inject(), a testing helper the gateway
// does not call) is held at 6.6.0 by an override: 6.8 pulls cookie@2, which declares Node ≥ 22.
// The first test serves real requests on both planes and checks neither light-my-request nor
// cookie was loaded. The second reads the lock file: a new package that excludes our Node fails
// it, so the README's note cannot silently go stale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Gateway } from '../../gateway/server/gateway.js';
import { tmpDir } from '../helpers/gateway.js';

const require = createRequire(import.meta.url);
// semver is a pinned dev dependency; it ships no types, and this is all we use of it
const semver = require('semver') as { satisfies(version: string, range: string): boolean; minVersion(range: string): { version: string } | null };
const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../..');

test('the gateway serves both planes without loading light-my-request or cookie (fastify\'s testing helper and its dependency)', async () => {
  const dataDir = tmpDir('airlock-engines-');
  const gw = new Gateway({ dataDir, host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, adminToken: undefined, log: () => undefined });
  try {
    const urls = await gw.start();
    assert.equal((await fetch(urls.data + '/healthz')).status, 200);
    assert.equal((await fetch(urls.data + '/v1/models')).status, 401);
    assert.equal((await fetch(urls.admin + '/admin/api/v1/auth/state')).status, 200);
    const loaded = Object.keys(require.cache).filter((f) => /[\\/]node_modules[\\/](light-my-request|cookie)[\\/]/.test(f));
    assert.deepEqual(loaded, []);
    // and the package is there to be checked (fastify's own copy, held by the override)
    const lmr = path.dirname(require.resolve('fastify/package.json'));
    const cookiePkg = createRequire(path.join(lmr, 'node_modules', 'x.js')).resolve('light-my-request/package.json');
    assert.ok(fs.existsSync(cookiePkg));
  } finally {
    await gw.stop(0);
    gw.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});

test('the lock file holds exactly the known packages whose engines exclude the Node we support', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { engines: { node: string } };
  // the lowest Node the built gateway runs on (package.json engines; building needs 20.19, README)
  const lowest = semver.minVersion(pkg.engines.node)?.version;
  assert.ok(lowest, `package.json engines.node "${pkg.engines.node}" has no lowest version`);
  const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { version?: string; dev?: boolean; engines?: { node?: string } | string[] }>;
  };
  // the Node 20 we ship in the bundle (installers/runtimes.json): what npm ci on Node 20 warns about
  const shipped = (JSON.parse(fs.readFileSync(path.join(ROOT, 'installers', 'runtimes.json'), 'utf8')) as Record<string, { version?: string }>).node20?.version;
  assert.ok(shipped, 'installers/runtimes.json pins no node20');
  const warned: string[] = [];
  const runtime: string[] = []; // runtime packages that exclude the lowest Node we promise
  for (const [where, p] of Object.entries(lock.packages)) {
    const range = p.engines && !Array.isArray(p.engines) ? p.engines.node : undefined;
    if (!where || !range) continue;
    const name = `${where.replace(/^.*node_modules\//, '')}@${p.version}`;
    if (!semver.satisfies(shipped, range)) warned.push(name);
    if (!p.dev && !semver.satisfies(lowest, range)) runtime.push(name);
  }
  assert.deepEqual(warned.sort(), ['content-type@3.1.1']);
  assert.deepEqual(runtime, [], 'no runtime package excludes the lowest Node we promise');
});
