// Serving the admin app (gateway/server/static.ts) without a browser: files, SPA fallback, API
// paths left to the API's 404, the CSP on HTML, no path traversal, and the page shown when the
// app is not built. Uses a small fake build so it does not depend on `npm run build:renderer`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { ADMIN_APP_CSP, registerAdminApp } from '../../gateway/server/static.js';
import { tmpDir } from '../helpers/gateway.js';

function plane(distDir: string): FastifyInstance {
  const app = Fastify({ logger: false });
  app.get('/admin/api/v1/status', async () => ({ ok: true }));
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: { code: 'unknown_route', message: `No route ${req.method} ${req.url}` } }));
  registerAdminApp(app, distDir);
  return app;
}

describe('admin app static serving', () => {
  let dir: string;
  let app: FastifyInstance;
  let missing: FastifyInstance;

  before(async () => {
    dir = tmpDir('airlock-dist-');
    fs.mkdirSync(path.join(dir, 'assets'));
    fs.writeFileSync(path.join(dir, 'index.html'), '<!doctype html><title>app</title><script type="module" src="/assets/app-1234.js"></script>');
    fs.writeFileSync(path.join(dir, 'assets', 'app-1234.js'), 'console.log(1)');
    fs.writeFileSync(path.join(dir, '.secret'), 'no');
    fs.writeFileSync(path.join(os.tmpdir(), 'airlock-outside.txt'), 'outside');
    app = plane(dir);
    missing = plane(path.join(dir, 'nope'));
    await Promise.all([app.ready(), missing.ready()]);
  });
  after(async () => {
    await Promise.all([app.close(), missing.close()]);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.rmSync(path.join(os.tmpdir(), 'airlock-outside.txt'), { force: true });
  });

  test('the app at /, and index.html for every app route, with the CSP', async () => {
    for (const url of ['/', '/endpoints', '/setup?token=abc', '/usage/anything/deeper', '/index.html']) {
      const r = await app.inject({ method: 'GET', url });
      assert.equal(r.statusCode, 200, url);
      assert.match(r.headers['content-type'] as string, /^text\/html/, url);
      assert.equal(r.headers['content-security-policy'], ADMIN_APP_CSP, url);
      assert.match(r.body, /<title>app<\/title>/, url);
    }
    assert.equal((await app.inject({ method: 'HEAD', url: '/models' })).statusCode, 200);
  });

  test('built assets are served with a long cache; missing ones are 404', async () => {
    const r = await app.inject({ method: 'GET', url: '/assets/app-1234.js' });
    assert.equal(r.statusCode, 200);
    assert.match(r.headers['content-type'] as string, /javascript/);
    assert.match(r.headers['cache-control'] as string, /immutable/);
    assert.equal(r.body, 'console.log(1)');
    for (const url of ['/assets/gone-999.js', '/favicon.ico', '/robots.txt']) assert.equal((await app.inject({ method: 'GET', url })).statusCode, 404, url);
  });

  test('API paths are never answered with the app', async () => {
    assert.deepEqual((await app.inject({ method: 'GET', url: '/admin/api/v1/status' })).json(), { ok: true });
    const r = await app.inject({ method: 'GET', url: '/admin/api/v1/no-such-thing' });
    assert.equal(r.statusCode, 404);
    assert.equal(r.json().error.code, 'unknown_route');
  });

  test('no files outside the build, no dot-files', async () => {
    for (const url of ['/../airlock-outside.txt', '/%2e%2e/airlock-outside.txt', '/assets/..%2f..%2fairlock-outside.txt', '/.secret']) {
      const r = await app.inject({ method: 'GET', url });
      assert.notEqual(r.body, 'outside', url);
      assert.notEqual(r.body, 'no', url);
    }
  });

  test('without a build, a page says how to build it', async () => {
    const r = await missing.inject({ method: 'GET', url: '/' });
    assert.equal(r.statusCode, 503);
    assert.match(r.headers['content-type'] as string, /^text\/html/);
    assert.equal(r.headers['content-security-policy'], ADMIN_APP_CSP);
    assert.match(r.body, /admin app is not built/);
    assert.match(r.body, /npm run build/);
    assert.deepEqual((await missing.inject({ method: 'GET', url: '/admin/api/v1/status' })).json(), { ok: true });
  });
});
