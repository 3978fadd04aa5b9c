// `npm ci` on Node 20 warns EBADENGINE for one runtime package: cookie@2 (fastify →
// light-my-request) declares Node ≥ 22. It is harmless because it is never loaded: fastify
// requires light-my-request only for inject(), a testing helper the gateway does not call.
// This test serves real requests on both planes and checks neither package was loaded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Gateway } from '../../gateway/server/gateway.js';

const require = createRequire(import.meta.url);

test('the gateway serves both planes without loading light-my-request or cookie (the packages behind the EBADENGINE warning)', async () => {
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-engines-'));
  const gw = new Gateway({ dataDir, host: '127.0.0.1', port: 0, adminHost: '127.0.0.1', adminPort: 0, adminToken: undefined, log: () => undefined });
  try {
    const urls = await gw.start();
    assert.equal((await fetch(urls.data + '/healthz')).status, 200);
    assert.equal((await fetch(urls.data + '/v1/models')).status, 401);
    assert.equal((await fetch(urls.admin + '/admin/api/v1/auth/state')).status, 200);
    const loaded = Object.keys(require.cache).filter((f) => /[\\/]node_modules[\\/](light-my-request|cookie)[\\/]/.test(f));
    assert.deepEqual(loaded, []);
    // and the package really is the one that declares Node ≥ 22 (when it changes, revisit the README note)
    const lmr = path.dirname(require.resolve('fastify/package.json'));
    const cookiePkg = createRequire(path.join(lmr, 'node_modules', 'x.js')).resolve('light-my-request/package.json');
    assert.ok(fs.existsSync(cookiePkg));
  } finally {
    await gw.stop(0);
    gw.db.close();
    fs.rmSync(dataDir, { recursive: true, force: true });
  }
});
