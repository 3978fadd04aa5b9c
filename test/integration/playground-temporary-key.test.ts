// The playground without a pasted key: the gateway makes a temporary key for that one request, in
// the admin's name, scoped to the chosen model; it is never shown, stored or listed, and the
// request lands in usage attributed to the admin. Through the real gateway process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('playground: a temporary key in the admin\'s name', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let admin: Record<string, string>;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url) });
    const t = await gw.admin('POST', '/tokens', { name: 'ops-bot', role: 'admin' });
    assert.equal(t.status, 201);
    admin = { authorization: `Bearer ${t.body.token}` };
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  const chat = async (body: unknown, headers = admin) => {
    const res = await fetch(`${gw.adminUrl}/admin/api/v1/playground/chat`, { method: 'POST', headers: { ...headers, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    return { status: res.status, id: res.headers.get('x-airlock-request-id'), text: await res.text() };
  };

  test('no key given: the answer streams, the usage row names "playground:ADMIN", and no key is stored, listed or sent to the browser', async () => {
    const keysBefore = JSON.stringify((await gw.admin('GET', '/keys')).body);
    const r = await chat({ model: 'chat', messages: [{ role: 'user', content: 'temporary' }] });
    assert.equal(r.status, 200, r.text);
    assert.match(r.text, /echo: /);
    assert.doesNotMatch(r.text, /sk-airlock-/, 'the temporary secret is not in the answer');
    assert.ok(r.id);
    const row = await eventually(async () => (await gw.admin('GET', `/usage/requests?request_id=${r.id}`)).body.data[0], 'the usage row');
    assert.equal(row.key_name, 'playground:ops-bot');
    assert.equal(row.app, 'playground');
    assert.equal(row.status, 200);
    assert.equal(JSON.stringify((await gw.admin('GET', '/keys')).body), keysBefore, 'no key was added');
    assert.doesNotMatch(JSON.stringify((await gw.admin('GET', '/config')).body), /playground:/);
  });

  test('concurrent playground requests each get their own key and all succeed; an unknown model is named', async () => {
    const rs = await Promise.all(Array.from({ length: 6 }, (_, i) => chat({ model: 'chat', messages: [{ role: 'user', content: `n${i}` }] })));
    for (const r of rs) assert.equal(r.status, 200, r.text);
    const bad = await chat({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(bad.status, 404, bad.text);
    assert.match(bad.text, /no-such-model/);
  });

  test('a pasted key still works, and a wrong pasted key is refused (no temporary key stands in for it)', async () => {
    const wrong = await chat({ key: 'sk-airlock-not-a-real-key-000000000000000', model: 'chat', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(wrong.status, 400, wrong.text);
    assert.match(wrong.text, /Invalid API key/);
    const empty = await chat({ key: '', model: 'chat', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(empty.status, 400, empty.text);
    assert.match(empty.text, /key/);
  });

  test('an auditor may not use the playground at all', async () => {
    const t = await gw.admin('POST', '/tokens', { name: 'aud', role: 'auditor' });
    const r = await chat({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }, { authorization: `Bearer ${t.body.token}` });
    assert.equal(r.status, 403);
  });
});
