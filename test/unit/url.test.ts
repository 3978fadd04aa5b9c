// One spelling per path before routing, and which Host names / client addresses are loopback.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalUrl } from '../../gateway/server/url.js';
import { isLoopbackAddress, isLoopbackName } from '../../gateway/server/admin-plane.js';

test('canonicalUrl resolves dot segments, repeated slashes, backslashes and encoded slashes; keeps the query', () => {
  const cases: [string, string][] = [
    ['/admin/api/v1/config', '/admin/api/v1/config'],
    ['/admin/api/v1/config?format=yaml', '/admin/api/v1/config?format=yaml'],
    ['//admin///api/v1//config', '/admin/api/v1/config'],
    ['/admin/./api/v1/x/../config', '/admin/api/v1/config'],
    ['/admin/%2e/api/v1/x/%2E%2e/config', '/admin/api/v1/config'],
    ['/admin\\api\\v1\\config', '/admin/api/v1/config'],
    ['/admin%2Fapi%2fv1%5cconfig', '/admin/api/v1/config'],
    ['/../../admin/api/v1/config', '/admin/api/v1/config'],
    ['/admin/api/v1/teams/..', '/admin/api/v1/'],
    ['/a/b/../../..?x=/../', '/?x=/../'],
    ['/v1/chat/completions', '/v1/chat/completions'],
  ];
  for (const [input, want] of cases) assert.equal(canonicalUrl(input), want, input);
  // absolute-form routes as its path (the admin plane refuses it before routing); asterisk-form is left alone
  assert.equal(canonicalUrl('http://example/admin//api/v1/x/../config?a=1'), '/admin/api/v1/config?a=1');
  assert.equal(canonicalUrl('*'), '*');
});

test('loopback Host names and client addresses', () => {
  for (const h of ['localhost', 'localhost:4001', '127.0.0.1', '127.0.0.1:4001', '127.1.2.3:80', '[::1]', '[::1]:4001', 'app.localhost:4001'])
    assert.equal(isLoopbackName(h), true, h);
  for (const h of ['10.0.0.5:4001', 'airlock.corp:4001', '[fd00::2]:4001', 'localhost.evil.example', '127.0.0.1.nip.io'])
    assert.equal(isLoopbackName(h), false, h);
  for (const a of ['127.0.0.1', '127.0.0.5', '::1', '::ffff:127.0.0.1']) assert.equal(isLoopbackAddress(a), true, a);
  for (const a of ['10.0.0.7', '192.168.1.2', '::ffff:10.0.0.7', 'fd00::2', undefined]) assert.equal(isLoopbackAddress(a), false, String(a));
});
