// The admin REST API against the real gateway process: bearer auth, Host/Origin checks, CRUD with
// honest status codes and field paths, secrets never returned, and changes that take effect on
// the data plane at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import OpenAI from 'openai';
import YAML from 'yaml';
import { ADMIN_TOKEN, TEST_KEY, basicConfig, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** A raw request, so Host and Origin can be set (fetch does not let us). */
function rawRequest(url: string, opts: { method?: string; headers?: Record<string, string>; body?: unknown }): Promise<{ status: number; body: any }> {
  return new Promise((resolve, reject) => {
    const u = new URL(url);
    const payload = opts.body === undefined ? undefined : JSON.stringify(opts.body);
    const req = http.request(
      {
        host: u.hostname,
        port: u.port,
        path: u.pathname + u.search,
        method: opts.method ?? 'GET',
        headers: { ...(payload ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(payload)) } : {}), ...opts.headers },
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => {
          let body: unknown = text;
          try {
            body = JSON.parse(text);
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, body });
        });
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const paths = (body: any): string[] => (body?.error?.issues ?? []).map((i: { path: string }) => i.path);
const issue = (body: any, p: string): string | undefined => body?.error?.issues?.find((i: { path: string }) => i.path === p)?.message;

async function freePort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('admin API', () => {
  let up: TestUpstream;
  let up2: TestUpstream;
  let gw: RunningGateway;
  let client: OpenAI;

  before(async () => {
    up = await startUpstream();
    up2 = await startUpstream({ models: ['alpha', 'beta'] });
    gw = await startGateway({ config: basicConfig(up.url) });
    client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    await up2?.close();
  });

  test('bearer auth: no token and a wrong token are 401, the right token works', async () => {
    const url = `${gw.adminUrl}/admin/api/v1/teams`;
    const none = await fetch(url);
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as any).error.type, 'authentication_error');
    const wrong = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}x` } });
    assert.equal(wrong.status, 401);
    const right = await fetch(url, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    assert.equal(right.status, 200);
    assert.deepEqual(((await right.json()) as any).data.map((t: { name: string }) => t.name), ['research']);
    // a refused write changes nothing
    const sneaky = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'sneaky' }) });
    assert.equal(sneaky.status, 401);
    assert.equal((await gw.admin('GET', '/teams/sneaky')).status, 404);
  });

  test('Host header check (421) and cross-origin writes (403)', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    const port = new URL(gw.adminUrl).port;
    const evil = await rawRequest(`${gw.adminUrl}/admin/api/v1/teams`, { headers: { ...auth, host: `evil.example:${port}` } });
    assert.equal(evil.status, 421);
    assert.match(evil.body.error.message, /evil\.example/);
    const evilNoPort = await rawRequest(`${gw.adminUrl}/admin/api/v1/teams`, { headers: { ...auth, host: 'evil.example' } });
    assert.equal(evilNoPort.status, 421);

    const cross = await rawRequest(`${gw.adminUrl}/admin/api/v1/teams`, {
      method: 'POST',
      headers: { ...auth, origin: 'http://evil.example' },
      body: { name: 'from-evil' },
    });
    assert.equal(cross.status, 403);
    assert.equal((await gw.admin('GET', '/teams/from-evil')).status, 404, 'nothing was created');

    // the gateway's own origin may write
    const same = await rawRequest(`${gw.adminUrl}/admin/api/v1/teams`, {
      method: 'POST',
      headers: { ...auth, origin: gw.adminUrl },
      body: { name: 'same-origin' },
    });
    assert.equal(same.status, 201, JSON.stringify(same.body));
    assert.equal((await gw.admin('DELETE', '/teams/same-origin')).status, 204);
  });

  test('a malformed percent-encoding in the path is a 400 in each plane\'s own error shape, naming the path', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    for (const p of ['/admin/api/v1/%ZZ', '/admin/api/v1/keys/%ZZ', '/admin/api/v1/teams/%E0%A4%A']) {
      const r = await rawRequest(`${gw.adminUrl}${p}`, { headers: auth });
      assert.equal(r.status, 400, `${p}: ${JSON.stringify(r.body)}`);
      assert.deepEqual(Object.keys(r.body), ['error'], JSON.stringify(r.body));
      assert.equal(r.body.error.type, 'invalid_request_error');
      assert.equal(r.body.error.code, 'invalid_path');
      assert.ok(r.body.error.message.includes(JSON.stringify(p)), r.body.error.message);
      assert.match(r.body.error.message, /malformed percent-encoding/);
    }
    // (so is a write, and without a token: nothing is routed, so nothing is authorised or changed)
    const w = await rawRequest(`${gw.adminUrl}/admin/api/v1/teams/%ZZ`, { method: 'DELETE' });
    assert.equal(w.status, 400);
    assert.equal(w.body.error.code, 'invalid_path');
    // the data plane answers in the OpenAI shape, with its request id
    const d = await fetch(`${gw.dataUrl}/v1/chat/%ZZ`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}` } });
    assert.equal(d.status, 400);
    assert.ok(d.headers.get('x-airlock-request-id'));
    const db = (await d.json()) as any;
    assert.deepEqual({ type: db.error.type, code: db.error.code }, { type: 'invalid_request_error', code: 'invalid_path' });
    assert.match(db.error.message, /"\/v1\/chat\/%ZZ" has a malformed percent-encoding/);
  });

  test('endpoints: CRUD, validation paths, 404, 409, and the api_key is never returned', async () => {
    const secret = 'sk-upstream-literal-secret-42';
    const created = await gw.admin('POST', '/endpoints', { name: 'gpu-2', base_url: up2.url, api_key: secret, health_check: { enabled: false } });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.name, 'gpu-2');
    assert.equal(created.body.api_key_set, true);

    const one = await gw.admin('GET', '/endpoints/gpu-2');
    assert.equal(one.status, 200);
    assert.equal(one.body.base_url, up2.url);
    assert.equal(one.body.api_key_set, true);
    const list = await gw.admin('GET', '/endpoints');
    assert.deepEqual(list.body.data.map((e: { name: string }) => e.name), ['gpu-1', 'gpu-2']);
    assert.equal(list.body.data[0].api_key_set, false);
    for (const r of [created, one, list, await gw.admin('GET', '/config'), await gw.admin('GET', '/config?format=yaml')])
      assert.ok(!JSON.stringify(r.body).includes(secret), 'the upstream secret is never returned');

    const put = await gw.admin('PUT', '/endpoints/gpu-2', { base_url: up2.url, max_concurrency: 4, health_check: { enabled: false } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.max_concurrency, 4);
    assert.equal(put.body.api_key_set, true, 'a PUT without api_key keeps the stored secret');

    const dup = await gw.admin('POST', '/endpoints', { name: 'gpu-2', base_url: up2.url });
    assert.equal(dup.status, 409);
    assert.match(dup.body.error.message, /gpu-2/);

    const badUrl = await gw.admin('POST', '/endpoints', { name: 'gpu-3', base_url: 'not a url' });
    assert.equal(badUrl.status, 400);
    assert.deepEqual(paths(badUrl.body), ['base_url']);
    assert.equal(badUrl.body.error.param, 'base_url');
    const unknownKey = await gw.admin('POST', '/endpoints', { name: 'gpu-3', base_url: up2.url, colour: 'red' });
    assert.equal(unknownKey.status, 400);
    assert.ok(unknownKey.body.error.issues.some((i: { message: string }) => i.message.includes('"colour"')), JSON.stringify(unknownKey.body));
    const badPut = await gw.admin('PUT', '/endpoints/gpu-2', { base_url: up2.url, max_concurrency: 0 });
    assert.equal(badPut.status, 400);
    assert.deepEqual(paths(badPut.body), ['max_concurrency']);
    assert.equal((await gw.admin('GET', '/endpoints/gpu-2')).body.max_concurrency, 4, 'a refused PUT changes nothing');

    assert.equal((await gw.admin('GET', '/endpoints/nope')).status, 404);
    assert.equal((await gw.admin('PUT', '/endpoints/nope', { base_url: up2.url })).status, 404);
    assert.equal((await gw.admin('DELETE', '/endpoints/nope')).status, 404);

    const inUse = await gw.admin('DELETE', '/endpoints/gpu-1');
    assert.equal(inUse.status, 409);
    assert.match(inUse.body.error.message, /chat/, 'the message names the model that uses it');
    assert.equal((await gw.admin('GET', '/endpoints/gpu-1')).status, 200);

    assert.equal((await gw.admin('DELETE', '/endpoints/gpu-2')).status, 204);
    assert.equal((await gw.admin('GET', '/endpoints/gpu-2')).status, 404);
  });

  test('models: CRUD with immediate effect on the data plane, and target validation', async () => {
    const unknown = await gw.admin('POST', '/models', { name: 'm2', targets: [{ endpoint: 'nope', model: 'x' }] });
    assert.equal(unknown.status, 400);
    assert.equal(issue(unknown.body, 'targets[0].endpoint'), 'unknown endpoint "nope"');
    const noTargets = await gw.admin('POST', '/models', { name: 'm2', targets: [] });
    assert.equal(noTargets.status, 400);
    assert.deepEqual(paths(noTargets.body), ['targets']);
    const typo = await gw.admin('POST', '/models', { name: 'm2', strategy: 'round-robin', targets: [{ endpoint: 'gpu-1', model: 'x' }] });
    assert.equal(typo.status, 400);
    assert.deepEqual(paths(typo.body), ['strategy']);

    const created = await gw.admin('POST', '/models', { name: 'm2', targets: [{ endpoint: 'gpu-1', model: 'upstream-m2' }] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.strategy, 'fallback', 'defaults are filled in');
    up.reset();
    const res = await client.chat.completions.create({ model: 'm2', messages: [{ role: 'user', content: 'hello m2' }] });
    assert.equal(res.choices[0]?.message.content, 'echo: hello m2');
    assert.equal(up.completions()[0]?.body.model, 'upstream-m2');

    assert.equal((await gw.admin('GET', '/models/m2')).body.targets[0].model, 'upstream-m2');
    assert.deepEqual((await gw.admin('GET', '/models')).body.data.map((m: { name: string }) => m.name), ['chat', 'm2']);
    const put = await gw.admin('PUT', '/models/m2', { strategy: 'least-busy', targets: [{ endpoint: 'gpu-1', model: 'upstream-m2b' }] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal(put.body.strategy, 'least-busy');
    up.reset();
    await client.chat.completions.create({ model: 'm2', messages: [{ role: 'user', content: 'again' }] });
    assert.equal(up.completions()[0]?.body.model, 'upstream-m2b', 'the PUT took effect at once');

    assert.equal((await gw.admin('POST', '/models', { name: 'm2', targets: [{ endpoint: 'gpu-1', model: 'x' }] })).status, 409);
    assert.equal((await gw.admin('GET', '/models/nope')).status, 404);
    assert.equal((await gw.admin('DELETE', '/models/m2')).status, 204);
    await assert.rejects(
      client.chat.completions.create({ model: 'm2', messages: [{ role: 'user', content: 'gone' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError,
    );
  });

  test('teams and keys: CRUD, the key is shown once and works, 409 for a team in use', async () => {
    const team = await gw.admin('POST', '/teams', { name: 'ops', description: 'operations' });
    assert.equal(team.status, 201);
    assert.deepEqual(team.body, { name: 'ops', description: 'operations' });
    assert.equal((await gw.admin('POST', '/teams', { name: 'ops' })).status, 409);
    const badTeam = await gw.admin('POST', '/teams', { name: 'bad name!' });
    assert.equal(badTeam.status, 400);
    assert.deepEqual(paths(badTeam.body), ['name']);
    const putTeam = await gw.admin('PUT', '/teams/ops', { description: 'on call' });
    assert.equal(putTeam.status, 200);
    assert.equal((await gw.admin('GET', '/teams/ops')).body.description, 'on call');

    const unknownTeam = await gw.admin('POST', '/keys', { name: 'ops-app', team: 'nope' });
    assert.equal(unknownTeam.status, 400);
    assert.equal(issue(unknownTeam.body, 'team'), 'unknown team "nope"');
    const unknownModel = await gw.admin('POST', '/keys', { name: 'ops-app', models: ['nope'] });
    assert.equal(unknownModel.status, 400);
    assert.deepEqual(paths(unknownModel.body), ['models[0]']);

    const created = await gw.admin('POST', '/keys', { name: 'ops-app', team: 'ops', models: ['chat'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const key: string = created.body.key;
    assert.match(key, /^sk-airlock-[A-Za-z0-9_-]{22,}$/);
    const one = await gw.admin('GET', '/keys/ops-app');
    assert.equal(one.status, 200);
    assert.equal(one.body.team, 'ops');
    assert.equal(one.body.key, undefined);
    const all = await gw.admin('GET', '/keys');
    for (const r of [one, all, await gw.admin('GET', '/config')]) {
      assert.ok(!JSON.stringify(r.body).includes(key), 'the key is never shown again');
      assert.ok(!JSON.stringify(r.body).includes(TEST_KEY), 'nor a literal key from the config');
    }

    const opsClient = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
    const { data, response } = await opsClient.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'ops here' }] }).withResponse();
    assert.equal(data.choices[0]?.message.content, 'echo: ops here');
    const rid = response.headers.get('x-airlock-request-id');
    const rows = await gw.admin('GET', '/usage/requests?limit=10');
    const row = rows.body.data.find((r: { request_id: string }) => r.request_id === rid);
    assert.equal(row?.team, 'ops', 'the request is attributed to the key and its team');
    assert.equal(row?.key_name, 'ops-app');

    assert.equal((await gw.admin('POST', '/keys', { name: 'ops-app' })).status, 409);
    const teamInUse = await gw.admin('DELETE', '/teams/ops');
    assert.equal(teamInUse.status, 409);
    assert.match(teamInUse.body.error.message, /ops-app/, 'the message names the key that uses the team');

    const disabled = await gw.admin('PUT', '/keys/ops-app', { team: 'ops', models: ['chat'], disabled: true });
    assert.equal(disabled.status, 200, JSON.stringify(disabled.body));
    assert.equal(disabled.body.disabled, true);
    await assert.rejects(
      opsClient.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.AuthenticationError,
    );
    assert.equal((await gw.admin('DELETE', '/keys/ops-app')).status, 204);
    assert.equal((await gw.admin('GET', '/keys/ops-app')).status, 404);
    assert.equal((await gw.admin('DELETE', '/teams/ops')).status, 204);
    assert.equal((await gw.admin('GET', '/teams/ops')).status, 404);
  });

  test('an endpoint and a model created through the API serve requests at once', async () => {
    const ep = await gw.admin('POST', '/endpoints', { name: 'fresh-ep', base_url: up2.url, health_check: { enabled: false } });
    assert.equal(ep.status, 201, JSON.stringify(ep.body));
    const m = await gw.admin('POST', '/models', { name: 'fresh', targets: [{ endpoint: 'fresh-ep', model: 'alpha' }] });
    assert.equal(m.status, 201, JSON.stringify(m.body));
    up2.reset();
    const { data, response } = await client.chat.completions.create({ model: 'fresh', messages: [{ role: 'user', content: 'brand new' }] }).withResponse();
    assert.equal(data.choices[0]?.message.content, 'echo: brand new');
    assert.equal(response.headers.get('x-airlock-endpoint'), 'fresh-ep');
    assert.equal(up2.completions().length, 1);
    assert.equal(up2.completions()[0]?.body.model, 'alpha');
    assert.equal((await gw.admin('DELETE', '/models/fresh')).status, 204);
    assert.equal((await gw.admin('DELETE', '/endpoints/fresh-ep')).status, 204);
  });

  test('routing rules: PUT validates and applies', async () => {
    await assert.rejects(
      client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.NotFoundError,
    );
    const bad = await gw.admin('PUT', '/routing-rules', [{ name: 'r1', when: { model: 'auto' }, route_to: 'nope' }]);
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    assert.ok(paths(bad.body).some((p) => p.endsWith('route_to')), JSON.stringify(bad.body));
    assert.match(bad.body.error.message, /unknown model "nope"/);
    const badShape = await gw.admin('PUT', '/routing-rules', [{ name: 'r1', when: { modle: 'auto' }, route_to: 'chat' }]);
    assert.equal(badShape.status, 400);
    assert.deepEqual((await gw.admin('GET', '/routing-rules')).body.data, [], 'refused rules are not stored');

    const ok = await gw.admin('PUT', '/routing-rules', [{ name: 'r1', when: { model: 'auto' }, route_to: 'chat' }]);
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.data.map((r: { name: string }) => r.name), ['r1']);
    up.reset();
    const res = await client.chat.completions.create({ model: 'auto', messages: [{ role: 'user', content: 'routed' }] });
    assert.equal(res.choices[0]?.message.content, 'echo: routed');
    assert.equal(up.completions()[0]?.body.model, 'test-model');

    assert.equal((await gw.admin('PUT', '/routing-rules', [])).status, 200);
    assert.deepEqual((await gw.admin('GET', '/routing-rules')).body.data, []);
  });

  test('settings: GET and PUT validate and apply', async () => {
    const original = await gw.admin('GET', '/settings');
    assert.equal(original.status, 200);
    assert.equal(original.body.breaker.failure_threshold, 5);
    const bad = await gw.admin('PUT', '/settings', { ...original.body, max_body_bytes: 5 });
    assert.equal(bad.status, 400);
    assert.deepEqual(paths(bad.body), ['max_body_bytes']);
    const unknown = await gw.admin('PUT', '/settings', { ...original.body, max_bodybytes: 5 });
    assert.equal(unknown.status, 400);

    // A dedicated endpoint, so an open breaker does not disturb the other tests.
    const brk = await startUpstream();
    try {
      assert.equal((await gw.admin('POST', '/endpoints', { name: 'brk-ep', base_url: brk.url, health_check: { enabled: false } })).status, 201);
      assert.equal((await gw.admin('POST', '/models', { name: 'brk', targets: [{ endpoint: 'brk-ep', model: 'test-model' }], max_attempts: 1 })).status, 201);
      const put = await gw.admin('PUT', '/settings', { ...original.body, breaker: { failure_threshold: 1, cooldown_ms: 600_000 } });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.deepEqual(put.body.breaker, { failure_threshold: 1, cooldown_ms: 600_000 });
      assert.deepEqual((await gw.admin('GET', '/settings')).body.breaker, { failure_threshold: 1, cooldown_ms: 600_000 });

      // applied: one failure now opens the breaker (the default threshold is 5)
      brk.queue({ kind: 'status', status: 500 });
      await assert.rejects(client.chat.completions.create({ model: 'brk', messages: [{ role: 'user', content: 'x' }] }));
      const health = await gw.admin('GET', '/health');
      const t = health.body.targets.find((x: { alias: string }) => x.alias === 'brk');
      assert.equal(t?.breaker, 'open', JSON.stringify(health.body));
    } finally {
      assert.equal((await gw.admin('PUT', '/settings', original.body)).status, 200);
      await gw.admin('DELETE', '/models/brk');
      await gw.admin('DELETE', '/endpoints/brk-ep');
      await brk.close();
    }
    assert.deepEqual((await gw.admin('GET', '/settings')).body, original.body);
  });

  test('GET /config (JSON and YAML) and POST /config/apply with dry_run', async () => {
    const json = await gw.admin('GET', '/config');
    assert.equal(json.status, 200);
    assert.deepEqual(Object.keys(json.body).sort(), ['agents', 'endpoints', 'guardrails', 'keys', 'mcp_servers', 'mcp_virtual_servers', 'models', 'routing_rules', 'settings', 'teams']);
    assert.equal(json.body.models[0].name, 'chat');
    const yaml = await gw.admin('GET', '/config?format=yaml');
    assert.equal(yaml.status, 200);
    assert.match(yaml.headers.get('content-type') ?? '', /yaml/);
    assert.deepEqual(YAML.parse(yaml.body), json.body);

    const doc = { teams: [...json.body.teams, { name: 'dry-team' }] };
    const dry = await gw.admin('POST', '/config/apply?dry_run=true', doc);
    assert.equal(dry.status, 200, JSON.stringify(dry.body));
    assert.equal(dry.body.dry_run, true);
    assert.deepEqual(dry.body.changes, ['+ teams/dry-team']);
    assert.equal((await gw.admin('GET', '/teams/dry-team')).status, 404, 'a dry run applies nothing');
    assert.deepEqual((await gw.admin('GET', '/config')).body, json.body);

    const bad = await gw.admin('POST', '/config/apply', { models: [{ name: 'x', targets: [{ endpoint: 'gpu-9', model: 'y' }] }] });
    assert.equal(bad.status, 400);
    assert.equal(issue(bad.body, 'models[0].targets[0].endpoint'), 'unknown endpoint "gpu-9"');
    assert.deepEqual((await gw.admin('GET', '/config')).body, json.body);

    const real = await gw.admin('POST', '/config/apply', doc);
    assert.equal(real.status, 200);
    assert.deepEqual(real.body.changes, ['+ teams/dry-team']);
    assert.equal((await gw.admin('GET', '/teams/dry-team')).status, 200);
    const again = await gw.admin('POST', '/config/apply', doc);
    assert.deepEqual(again.body.changes, [], 'idempotent');
    assert.equal((await gw.admin('DELETE', '/teams/dry-team')).status, 204);
  });

  test('POST /endpoints/test probes an unsaved endpoint', async () => {
    const ok = await gw.admin('POST', '/endpoints/test', { name: 'probe', base_url: up2.url });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.equal(ok.body.ok, true);
    assert.deepEqual(ok.body.models, ['alpha', 'beta']);

    const port = await freePort();
    const url = `http://127.0.0.1:${port}/v1`;
    const closed = await gw.admin('POST', '/endpoints/test', { name: 'probe', base_url: url });
    assert.equal(closed.status, 200);
    assert.equal(closed.body.ok, false);
    assert.ok(String(closed.body.error).includes(url), closed.body.error);
    assert.equal((await gw.admin('GET', '/endpoints/probe')).status, 404, 'testing does not save');

    const bad = await gw.admin('POST', '/endpoints/test', { name: 'probe', base_url: 'nope' });
    assert.equal(bad.status, 400);
    assert.deepEqual(paths(bad.body), ['base_url']);
  });
});

describe('admin API: a partial settings change', () => {
  test('a PUT that leaves settings out is refused, naming them, and changes nothing; PATCH changes only what it names and keeps it across a restart', async () => {
    const dataDir = tmpDir();
    let gw = await startGateway({ dataDir, config: { teams: [{ name: 'research' }] } });
    try {
      const before = (await gw.admin('GET', '/settings')).body;
      // a change first, so a reset to the defaults would show
      const set = await gw.admin('PUT', '/settings', { ...before, admin_lockout_minutes: 30, ledger_retention_days: 90, breaker: { failure_threshold: 2, cooldown_ms: 45_000 } });
      assert.equal(set.status, 200, JSON.stringify(set.body));
      const stored = set.body;

      const partial = await gw.admin('PUT', '/settings', { admin_max_failed_logins: 7 });
      assert.equal(partial.status, 400, JSON.stringify(partial.body));
      assert.equal(partial.body.error.code, 'validation_failed');
      assert.ok(paths(partial.body).includes('admin_lockout_minutes') && paths(partial.body).includes('breaker'), JSON.stringify(paths(partial.body)));
      assert.ok(!paths(partial.body).includes('admin_max_failed_logins') && !paths(partial.body).includes('ledger_retention_days'), 'a setting sent, or one without a default, is not missing');
      assert.match(partial.body.error.message, /PUT \/settings replaces every setting, and this body leaves out .*admin_lockout_minutes.*PATCH \/settings/);
      const nested = await gw.admin('PUT', '/settings', { ...stored, breaker: { failure_threshold: 3 } });
      assert.equal(nested.status, 400);
      assert.deepEqual(paths(nested.body), ['breaker.cooldown_ms']);
      assert.deepEqual((await gw.admin('GET', '/settings')).body, stored, 'a refused PUT changes nothing');

      // PATCH: only what it names; null puts one back to its default (or unsets an optional one)
      const patch = await gw.admin('PATCH', '/settings', { admin_max_failed_logins: 7, breaker: { failure_threshold: 4 } });
      assert.equal(patch.status, 200, JSON.stringify(patch.body));
      const want = { ...stored, admin_max_failed_logins: 7, breaker: { failure_threshold: 4, cooldown_ms: 45_000 } };
      assert.deepEqual(patch.body, want);
      const bad = await gw.admin('PATCH', '/settings', { admin_max_failed_logins: 0 });
      assert.equal(bad.status, 400);
      assert.deepEqual(paths(bad.body), ['admin_max_failed_logins']);
      const unset = await gw.admin('PATCH', '/settings', { ledger_retention_days: null, admin_lockout_minutes: null });
      assert.equal(unset.status, 200, JSON.stringify(unset.body));
      const { ledger_retention_days: _gone, ...rest } = want;
      assert.deepEqual(unset.body, { ...rest, admin_lockout_minutes: before.admin_lockout_minutes });

      // stored in the database: the next start serves the same settings
      assert.equal((await gw.stop()).code, 0);
      gw = await startGateway({ dataDir });
      assert.deepEqual((await gw.admin('GET', '/settings')).body, unset.body);
    } finally {
      await gw.stop();
    }
  });
});

describe('admin API without AIRLOCK_ADMIN_TOKEN', () => {
  test('every API request is 401, and the message says how to get in', async () => {
    const gw = await startGateway({ adminToken: null });
    try {
      const r = await gw.admin('GET', '/endpoints');
      assert.equal(r.status, 401);
      assert.match(r.body.error.message, /AIRLOCK_ADMIN_TOKEN/);
      const withSome = await gw.admin('GET', '/endpoints', undefined, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(withSome.status, 401, 'no token is accepted when none is configured');
    } finally {
      await gw.stop();
    }
  });
});
