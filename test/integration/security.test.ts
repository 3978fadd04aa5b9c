// The security issue's attacks, each run against the real gateway process over real HTTP, with
// the refusal asserted and that nothing changed: authorisation on the matched route whatever the
// spelling of the path, secrets that cannot be exfiltrated through ${env:...} or a moved
// base_url, lockout under parallel guesses, who may revoke which token, /metrics, bodies that
// are not read without a key, nesting that never reaches a breaker, and upstream 200s that
// carry an error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import { ADMIN_TOKEN, TEST_KEY, basicConfig, eventually, runCli, startGateway, tmpDir, writeConfig, type RunningGateway } from '../helpers/gateway.js';
import path from 'node:path';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const API = '/admin/api/v1';
const PASSWORD = 'correct horse battery staple';
type Access = 'public' | 'auditor' | 'admin' | 'owner';
type Role = 'owner' | 'admin' | 'auditor';
const RANK: Record<Access, number> = { public: -1, auditor: 0, admin: 1, owner: 2 };

interface Raw {
  status: number;
  headers: http.IncomingHttpHeaders;
  text: string;
  body: any;
}

/** One request with the request target exactly as given (fetch would normalise it); `from`: the
 * client's own address (another loopback address is another client). */
function raw(base: string, method: string, target: string, headers: Record<string, string> = {}, body?: unknown, from?: string): Promise<Raw> {
  const u = new URL(base);
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const req = http.request(
      {
        host: u.hostname,
        port: Number(u.port),
        method,
        path: target,
        headers: { ...headers, ...(data !== undefined ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) },
        agent: false,
        ...(from ? { localAddress: from } : {}),
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (text += d));
        res.on('end', () => {
          let parsed: unknown = text;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            /* keep text */
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, body: parsed });
        });
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}
const show = (r: { status: number; body: unknown }) => `${r.status} ${JSON.stringify(r.body)?.slice(0, 400)}`;

/** Every route of the admin plane and the access the contract gives it. A route the gateway
 * registers that is missing here (or the other way round) fails the first test. */
const EXPECTED: Record<string, Access> = {
  'GET /': 'public',
  'GET /*': 'public',
  'GET /admin/api/v1/auth/state': 'public',
  'POST /admin/api/v1/auth/setup': 'public',
  'POST /admin/api/v1/auth/login': 'public',
  'POST /admin/api/v1/auth/logout': 'public',
  'POST /admin/api/v1/auth/password': 'auditor',
  'GET /admin/api/v1/endpoints': 'auditor',
  'GET /admin/api/v1/endpoints/:name': 'auditor',
  'POST /admin/api/v1/endpoints': 'admin',
  'PUT /admin/api/v1/endpoints/:name': 'admin',
  'DELETE /admin/api/v1/endpoints/:name': 'admin',
  'POST /admin/api/v1/endpoints/:name/test': 'admin',
  'POST /admin/api/v1/endpoints/test': 'admin',
  'GET /admin/api/v1/models': 'auditor',
  'GET /admin/api/v1/models/:name': 'auditor',
  'POST /admin/api/v1/models': 'admin',
  'PUT /admin/api/v1/models/:name': 'admin',
  'DELETE /admin/api/v1/models/:name': 'admin',
  'GET /admin/api/v1/teams': 'auditor',
  'GET /admin/api/v1/teams/:name': 'auditor',
  'POST /admin/api/v1/teams': 'admin',
  'PUT /admin/api/v1/teams/:name': 'admin',
  'DELETE /admin/api/v1/teams/:name': 'admin',
  'GET /admin/api/v1/keys': 'auditor',
  'GET /admin/api/v1/keys/:name': 'auditor',
  'POST /admin/api/v1/keys': 'admin',
  'PUT /admin/api/v1/keys/:name': 'admin',
  'DELETE /admin/api/v1/keys/:name': 'admin',
  'POST /admin/api/v1/keys/:name/rotate': 'admin',
  'GET /admin/api/v1/budgets/burndown': 'auditor',
  'POST /admin/api/v1/playground/chat': 'admin',
  'GET /admin/api/v1/mcp-servers': 'auditor',
  'GET /admin/api/v1/mcp-servers/:name': 'auditor',
  'POST /admin/api/v1/mcp-servers': 'admin',
  'PUT /admin/api/v1/mcp-servers/:name': 'admin',
  'DELETE /admin/api/v1/mcp-servers/:name': 'admin',
  'POST /admin/api/v1/mcp-servers/test': 'admin',
  'GET /admin/api/v1/mcp-servers/:name/status': 'auditor',
  'GET /admin/api/v1/agents': 'auditor',
  'GET /admin/api/v1/agents/:name': 'auditor',
  'POST /admin/api/v1/agents': 'admin',
  'PUT /admin/api/v1/agents/:name': 'admin',
  'DELETE /admin/api/v1/agents/:name': 'admin',
  'GET /admin/api/v1/mcp-virtual-servers': 'auditor',
  'GET /admin/api/v1/mcp-virtual-servers/:name': 'auditor',
  'POST /admin/api/v1/mcp-virtual-servers': 'admin',
  'PUT /admin/api/v1/mcp-virtual-servers/:name': 'admin',
  'DELETE /admin/api/v1/mcp-virtual-servers/:name': 'admin',
  'GET /admin/api/v1/guardrails': 'auditor',
  'GET /admin/api/v1/guardrails/:name': 'auditor',
  'POST /admin/api/v1/guardrails': 'admin',
  'PUT /admin/api/v1/guardrails/:name': 'admin',
  'DELETE /admin/api/v1/guardrails/:name': 'admin',
  'POST /admin/api/v1/guardrails/test': 'auditor',
  'GET /admin/api/v1/guardrail-events': 'auditor',
  'GET /admin/api/v1/guardrail-events/summary': 'auditor',
  'GET /admin/api/v1/routing-rules': 'auditor',
  'PUT /admin/api/v1/routing-rules': 'admin',
  'GET /admin/api/v1/settings': 'auditor',
  'PUT /admin/api/v1/settings': 'admin',
  'PATCH /admin/api/v1/settings': 'admin',
  'GET /admin/api/v1/config': 'auditor',
  'POST /admin/api/v1/config/apply': 'admin',
  'GET /admin/api/v1/health': 'auditor',
  'GET /admin/api/v1/usage/requests': 'auditor',
  'GET /admin/api/v1/usage/requests/:request_id/trace': 'auditor',
  'GET /admin/api/v1/usage': 'auditor',
  'GET /admin/api/v1/usage/timeseries': 'auditor',
  'GET /admin/api/v1/usage/summary': 'auditor',
  'GET /admin/api/v1/budgets': 'auditor',
  'GET /admin/api/v1/traces': 'auditor',
  'GET /admin/api/v1/traces/:id': 'auditor',
  'GET /admin/api/v1/sessions': 'auditor',
  'GET /admin/api/v1/routes': 'auditor',
  'GET /admin/api/v1/metrics': 'auditor',
  'GET /admin/api/v1/status': 'auditor',
  'GET /admin/api/v1/users': 'auditor',
  'POST /admin/api/v1/users': 'owner',
  'PUT /admin/api/v1/users/:name': 'owner',
  'DELETE /admin/api/v1/users/:name': 'owner',
  'GET /admin/api/v1/tokens': 'admin',
  'POST /admin/api/v1/tokens': 'admin',
  'DELETE /admin/api/v1/tokens/:name': 'admin',
  'POST /admin/api/v1/backup': 'owner',
  'GET /admin/api/v1/restore': 'owner',
  'DELETE /admin/api/v1/restore': 'owner',
  'POST /admin/api/v1/restore': 'owner',
  'GET /admin/api/v1/restart': 'auditor',
  'POST /admin/api/v1/restart': 'owner',
  'GET /admin/api/v1/audit/events': 'auditor',
  'GET /admin/api/v1/audit/key': 'auditor',
  'GET /admin/api/v1/audit/verify': 'auditor',
  'POST /admin/api/v1/audit/export': 'auditor',
  'GET /admin/api/v1/audit/export/progress': 'auditor',
  'POST /admin/api/v1/audit/verify-bundle': 'auditor',
  'POST /admin/api/v1/audit/verify-upload': 'auditor',
  'GET /admin/api/v1/data-flow': 'auditor',
  'GET /admin/api/v1/prompt-log': 'auditor',
  'GET /admin/api/v1/prompt-log/:id': 'auditor',
};

/** A concrete, harmless request for a route: unknown names (404 when allowed) and bodies that
 * fail validation (400 when allowed), so an allowed call changes nothing either. */
function concrete(pattern: string): string {
  return pattern.replace(/:name/g, 'no-such-item');
}
const HARMLESS_BODY = { 'not-a-field': true };

/** Spellings of one path that must reach the same route. */
function variants(p: string): { how: string; target: string }[] {
  const segs = p.split('/').slice(1);
  const enc = (s: string) => (s ? `%${s.charCodeAt(0).toString(16)}${s.slice(1)}` : s);
  const out = [
    { how: 'first letter of every segment percent-encoded', target: '/' + segs.map(enc).join('/') },
    { how: 'upper-case first letter percent-encoded (%4x)', target: '/' + segs.map((s) => (s ? `%${s.toUpperCase().charCodeAt(0).toString(16).toUpperCase()}${s.slice(1)}` : s)).join('/') },
    { how: 'doubled slashes', target: '//' + segs.join('//') },
    { how: 'dot segments', target: `/${segs[0]}/./x/../${segs.slice(1).join('/')}` },
    { how: 'encoded dot segments', target: `/${segs[0]}/%2e/x/%2E%2e/${segs.slice(1).join('/')}` },
    { how: 'upper case', target: p.toUpperCase().replace(/NO-SUCH-ITEM/g, 'no-such-item') },
    { how: 'trailing slash', target: p + '/' },
    { how: 'encoded slashes', target: p.replace(/\//g, '%2F').replace(/^%2F/, '/') },
    { how: 'backslashes', target: p.replace(/\//g, '\\').replace(/^\\/, '/') },
  ];
  return out;
}

describe('admin plane: authorisation on the matched route, whatever the spelling', () => {
  let gw: RunningGateway;
  const tokens = new Map<Role, string>();
  let routes: { method: string; path: string; access: Access | null }[] = [];
  const configNow = async () => JSON.stringify((await gw.admin('GET', '/config')).body);
  const usersNow = async () => JSON.stringify((await gw.admin('GET', '/users')).body);

  before(async () => {
    gw = await startGateway({
      config: {
        endpoints: [{ name: 'gpu-1', base_url: 'http://127.0.0.1:9/v1', health_check: { enabled: false } }],
        models: [{ name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] }],
        teams: [{ name: 'research' }],
      },
    });
    const owner = await gw.admin('POST', '/users', { name: 'root', password: PASSWORD, role: 'owner' });
    assert.equal(owner.status, 201, show(owner));
    for (const role of ['owner', 'admin', 'auditor'] as const) {
      const r = await gw.admin('POST', '/tokens', { name: `t-${role}`, role });
      assert.equal(r.status, 201, show(r));
      tokens.set(role, r.body.token);
    }
  });
  after(async () => {
    await gw?.stop();
  });

  test('every registered route declares who may call it, as the contract says (deny by default)', async () => {
    const r = await gw.admin('GET', '/routes');
    assert.equal(r.status, 200, show(r));
    routes = r.body.data;
    const got = Object.fromEntries(routes.map((x) => [`${x.method} ${x.path}`, x.access]));
    for (const x of routes) assert.notEqual(x.access, null, `${x.method} ${x.path} declares no access`);
    assert.deepEqual(got, EXPECTED);
  });

  test('route × role: every API route answers 401 without credentials, 403 below its role, and is served at or above it', async () => {
    const creds: { who: string; role: Role | null; h: Record<string, string> }[] = [
      { who: 'nobody', role: null, h: {} },
      ...(['auditor', 'admin', 'owner'] as const).map((role) => ({ who: `${role} token`, role, h: { authorization: `Bearer ${tokens.get(role)}` } })),
    ];
    const before = await configNow();
    const usersBefore = await usersNow();
    let checked = 0;
    for (const rt of routes) {
      if (!rt.path.startsWith(API) || rt.access === 'public') continue;
      const need = rt.access!;
      for (const c of creds) {
        const body = rt.method === 'GET' || rt.method === 'DELETE' ? undefined : HARMLESS_BODY;
        const res = await raw(gw.adminUrl, rt.method, concrete(rt.path), c.h, body);
        const what = `${c.who} ${rt.method} ${rt.path}: ${show(res)}`;
        if (c.role === null) {
          assert.equal(res.status, 401, what);
        } else if (RANK[c.role] < RANK[need]) {
          assert.equal(res.status, 403, what);
          assert.equal(res.body.error.code, 'forbidden', what);
        } else {
          assert.ok(res.status !== 401 && res.status !== 403 && res.status < 500, what);
        }
        checked++;
      }
    }
    assert.ok(checked >= 4 * 40, `checked ${checked} route × role pairs`);
    assert.equal(await configNow(), before, 'nothing changed the configuration');
    assert.equal(await usersNow(), usersBefore, 'nothing changed the accounts');
  });

  test('encoded, doubled-slash, dot-segment, case, trailing-slash and backslash spellings get the same answer as the plain path', async () => {
    const before = await configNow();
    const auditor = { authorization: `Bearer ${tokens.get('auditor')}` };
    let checked = 0;
    for (const rt of routes) {
      if (!rt.path.startsWith(API)) continue;
      const plain = concrete(rt.path);
      const body = rt.method === 'GET' || rt.method === 'DELETE' ? undefined : HARMLESS_BODY;
      for (const h of [{}, auditor]) {
        const expected = await raw(gw.adminUrl, rt.method, plain, h, body);
        for (const v of variants(plain)) {
          const got = await raw(gw.adminUrl, rt.method, v.target, h, body);
          assert.equal(
            got.status,
            expected.status,
            `${rt.method} ${v.target} (${v.how}) ${'authorization' in h ? 'as auditor' : 'anonymous'}: ${show(got)}; plain ${plain}: ${show(expected)}`,
          );
          checked++;
        }
      }
    }
    assert.ok(checked > 500, `checked ${checked} spellings`);
    assert.equal(await configNow(), before, 'nothing changed the configuration');
  });

  test('the reported attacks: encoded paths neither read nor write without the role', async () => {
    const anonymousConfig = await raw(gw.adminUrl, 'GET', '/%61dmin/api/v1/config');
    assert.equal(anonymousConfig.status, 401, show(anonymousConfig));
    assert.ok(!anonymousConfig.text.includes('gpu-1'), 'no configuration in the answer');

    const evil = await raw(gw.adminUrl, 'POST', '/%61dmin/api/v1/users', {}, { name: 'evil', password: PASSWORD, role: 'owner' });
    assert.equal(evil.status, 401, show(evil));
    const auditorTeam = await raw(gw.adminUrl, 'POST', '/%61dmin/api/v1/teams', { authorization: `Bearer ${tokens.get('auditor')}` }, { name: 'by-auditor' });
    assert.equal(auditorTeam.status, 403, show(auditorTeam));
    const adminOwner = await raw(gw.adminUrl, 'POST', '/admin/api/v1/%75sers', { authorization: `Bearer ${tokens.get('admin')}` }, { name: 'evil2', password: PASSWORD, role: 'owner' });
    assert.equal(adminOwner.status, 403, show(adminOwner));
    const viaLocalhost = await raw(gw.adminUrl, 'GET', '/%61dmin/api/v1/config', { host: `localhost:${new URL(gw.adminUrl).port}` });
    assert.equal(viaLocalhost.status, 401, show(viaLocalhost));

    const users = ((await gw.admin('GET', '/users')).body.data as { name: string }[]).map((u) => u.name);
    assert.ok(!users.includes('evil') && !users.includes('evil2'), users.join(','));
    const teams = ((await gw.admin('GET', '/teams')).body.data as { name: string }[]).map((t) => t.name);
    assert.ok(!teams.includes('by-auditor'), teams.join(','));
  });

  test('the admin app stays public and unknown API paths stay JSON 404s in every spelling', async () => {
    const app = await raw(gw.adminUrl, 'GET', '/');
    assert.equal(app.status, 200);
    for (const t of ['/admin/api/v1/nope', '/ADMIN/API/V1/NOPE', '/Admin/Api/v1/nope/', '/admin//api/v1/nope']) {
      const r = await raw(gw.adminUrl, 'GET', t);
      assert.equal(r.status, 404, `${t}: ${show(r)}`);
      assert.equal(r.body.error.code, 'unknown_route', t);
    }
  });
});

describe('upstream secrets: ${env:...} and moved hosts', () => {
  let gw: RunningGateway;
  let good: TestUpstream;
  let other: TestUpstream;
  const SECRET = 'sk-upstream-secret-for-gpu-1';
  const CLI_SECRET = 'sk-from-the-cli-shell-only';
  const authHeaders = (u: TestUpstream) => u.requests.map((r) => String(r.headers.authorization ?? ''));

  before(async () => {
    good = await startUpstream();
    other = await startUpstream();
    gw = await startGateway({
      config: basicConfig(good.url),
      env: { AIRLOCK_SECRET_GPU: SECRET, GATEWAY_ONLY_VAR: 'not-for-admins' },
    });
  });
  after(async () => {
    await gw?.stop();
    await good?.close();
    await other?.close();
  });

  test("the admin API refuses ${env:...} of Airlock's own or arbitrary variables, and nothing is sent", async () => {
    for (const ref of ['${env:AIRLOCK_ADMIN_TOKEN}', '${env:GATEWAY_ONLY_VAR}', '${env:HOME}', '${env:AIRLOCK_DATA_DIR}']) {
      const r = await gw.admin('POST', '/endpoints', { name: 'exfil', base_url: other.url, api_key: ref, health_check: { interval_ms: 100 } });
      assert.equal(r.status, 400, `${ref}: ${show(r)}`);
      assert.equal(r.body.error.param, 'api_key', show(r));
      const tested = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: good.url, api_key: ref });
      assert.equal(tested.status, 400, `${ref} on PUT: ${show(tested)}`);
    }
    const applied = await gw.admin('POST', '/config/apply', { endpoints: [{ name: 'gpu-1', base_url: good.url }, { name: 'exfil', base_url: other.url, api_key: '${env:AIRLOCK_ADMIN_TOKEN}' }] });
    assert.equal(applied.status, 400, show(applied));
    assert.equal((await gw.admin('GET', '/endpoints/exfil')).status, 404);
    await new Promise((r) => setTimeout(r, 300));
    assert.ok(!authHeaders(other).some((h) => h.includes(ADMIN_TOKEN) || h.includes('not-for-admins')), 'no variable reached the other host');
  });

  test('${env:AIRLOCK_SECRET_*} is the one family the admin API may use: the upstream gets that key', async () => {
    const r = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: good.url, api_key: '${env:AIRLOCK_SECRET_GPU}' });
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.api_key, '${env:AIRLOCK_SECRET_GPU}', 'the reference is shown, never the value');
    good.reset();
    const c = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(c.status, 200, await c.text());
    assert.equal(good.completions()[0]?.headers.authorization, `Bearer ${SECRET}`);
  });

  test('moving base_url to another host without giving the key again is refused; the old key never goes there', async () => {
    const moved = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: other.url });
    assert.equal(moved.status, 400, show(moved));
    assert.equal(moved.body.error.param, 'api_key', show(moved));
    assert.match(moved.body.error.message, /give api_key again/);
    assert.equal((await gw.admin('GET', '/endpoints/gpu-1')).body.base_url, good.url, 'the endpoint did not move');

    // the same host, another path: the key stays
    const samePort = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: good.origin + '/v1/' });
    assert.equal(samePort.status, 200, show(samePort));

    // the key given again: it moves, and the new host gets only the new key
    const withKey = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: other.url, api_key: 'sk-new-key-for-the-new-host', health_check: { interval_ms: 100 } });
    assert.equal(withKey.status, 200, show(withKey));
    await eventually(() => other.requests.some((r) => r.path.endsWith('/models')), 'a health check on the new host');
    assert.ok(!authHeaders(other).some((h) => h.includes(SECRET)), 'the old key never reached the new host');
    assert.ok(authHeaders(other).some((h) => h === 'Bearer sk-new-key-for-the-new-host'));

    // an explicit keep_api_key moves the stored key on purpose
    const back = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: good.url, keep_api_key: true, health_check: { interval_ms: 60_000 } });
    assert.equal(back.status, 200, show(back));
    assert.ok(!('keep_api_key' in back.body), 'keep_api_key is an instruction, not stored');
  });

  test('a ${env:X} applied from the CLI survives unrelated admin changes in a gateway that lacks X', async () => {
    const dir = tmpDir('airlock-cfg-');
    const cfg = basicConfig(good.url);
    (cfg.endpoints as Record<string, unknown>[])[0]!.api_key = '${env:CLI_ONLY_SECRET}';
    (cfg.endpoints as Record<string, unknown>[]).push({ name: 'gpu-2', base_url: other.url, health_check: { enabled: false } });
    cfg.teams.push({ name: 'spare' });
    const applied = await runCli(['config', 'apply', writeConfig(dir, cfg), '--data-dir', gw.dataDir], { env: { CLI_ONLY_SECRET: CLI_SECRET } });
    assert.equal(applied.code, 0, applied.stderr);
    await eventually(async () => (await gw.admin('GET', '/endpoints/gpu-1')).body.api_key === '${env:CLI_ONLY_SECRET}', 'the gateway to pick up the CLI change');

    const put = await gw.admin('PUT', '/endpoints/gpu-2', { base_url: other.url, max_concurrency: 3, health_check: { enabled: false } });
    assert.equal(put.status, 200, show(put));
    const sameEp = await gw.admin('PUT', '/endpoints/gpu-1', { base_url: good.url, max_concurrency: 7, api_key: '${env:CLI_ONLY_SECRET}', health_check: { enabled: false } });
    assert.equal(sameEp.status, 200, `the unchanged reference is kept, not re-resolved: ${show(sameEp)}`);
    const del = await gw.admin('DELETE', '/teams/spare');
    assert.equal(del.status, 204, show(del));

    good.reset();
    const c = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(c.status, 200, await c.text());
    assert.equal(good.completions()[0]?.headers.authorization, `Bearer ${CLI_SECRET}`, 'the stored secret is still the one the CLI resolved');

    // a config file may not name Airlock's own variables either
    const own = basicConfig(good.url);
    (own.endpoints as Record<string, unknown>[])[0]!.api_key = '${env:AIRLOCK_ADMIN_TOKEN}';
    const refused = await runCli(['config', 'apply', writeConfig(dir, own, 'own.yaml'), '--data-dir', gw.dataDir], { env: { AIRLOCK_ADMIN_TOKEN: 'x' } });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /endpoints\[0\]\.api_key: .*AIRLOCK_ADMIN_TOKEN.*Airlock's own/);
    fs.rmSync(dir, { recursive: true, force: true });
  });
});

describe('logins under attack, token revocation, /metrics', () => {
  let gw: RunningGateway;
  let up: TestUpstream;

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url) });
    for (const [name, role] of [['root', 'owner'], ['target', 'admin'], ['adm', 'admin']] as const) {
      const r = await gw.admin('POST', '/users', { name, password: PASSWORD, role });
      assert.equal(r.status, 201, show(r));
    }
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  const loginRaw = (username: string, password: string) => raw(gw.adminUrl, 'POST', `${API}/auth/login`, {}, { username, password });

  test('60 parallel wrong guesses: at most admin_max_failed_logins are checked, then the account is locked', async () => {
    const max = (await gw.admin('GET', '/settings')).body.admin_max_failed_logins as number;
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) => loginRaw('target', `guess number ${i}`)));
    const counts: Record<number, number> = {};
    for (const r of results) counts[r.status] = (counts[r.status] ?? 0) + 1;
    const verifiedWrong = counts[401] ?? 0;
    assert.ok(verifiedWrong <= max, `only ${max} guesses may be checked, ${verifiedWrong} were: ${JSON.stringify(counts)}`);
    assert.equal((counts[423] ?? 0) + (counts[429] ?? 0) + verifiedWrong, 60, JSON.stringify(counts));
    const right = await loginRaw('target', PASSWORD);
    assert.ok(right.status === 423 || right.status === 429, `the right password is refused while locked: ${show(right)}`);
    // an owner unlocks it
    const unlock = await gw.admin('PUT', '/users/target', {});
    assert.equal(unlock.status, 200, show(unlock));
  });

  test('an auditor lists the admin users (name, role, state: never a password hash or session) but not the API tokens', async () => {
    const aud = await gw.admin('POST', '/tokens', { name: 'users-auditor', role: 'auditor' });
    assert.equal(aud.status, 201, show(aud));
    const h = { authorization: `Bearer ${aud.body.token}` };
    const users = await raw(gw.adminUrl, 'GET', `${API}/users`, h);
    assert.equal(users.status, 200, show(users));
    assert.ok(users.body.data.length >= 3, show(users));
    for (const u of users.body.data) assert.deepEqual(Object.keys(u).sort(), ['created_at', 'disabled', 'locked_until', 'name', 'role'], JSON.stringify(u));
    assert.doesNotMatch(users.text, /scrypt|password|csrf|hash/i);
    const tokens = await raw(gw.adminUrl, 'GET', `${API}/tokens`, h);
    assert.equal(tokens.status, 403, show(tokens));
    assert.equal((await gw.admin('DELETE', '/tokens/users-auditor')).status, 204);
  });

  test('an admin revokes only the tokens it created; an owner any; a refused revoke leaves the token working', async () => {
    const byOwner = await gw.admin('POST', '/tokens', { name: 'owners-ci', role: 'admin' });
    assert.equal(byOwner.status, 201, show(byOwner));
    const adminTok = await gw.admin('POST', '/tokens', { name: 'admins-own', role: 'admin' });
    const admin = { authorization: `Bearer ${adminTok.body.token}` };
    const mine = await raw(gw.adminUrl, 'POST', `${API}/tokens`, admin, { name: 'made-by-admin', role: 'auditor' });
    assert.equal(mine.status, 201, show(mine));

    const refused = await raw(gw.adminUrl, 'DELETE', `${API}/tokens/owners-ci`, admin);
    assert.equal(refused.status, 403, show(refused));
    assert.equal((await raw(gw.adminUrl, 'GET', `${API}/endpoints`, { authorization: `Bearer ${byOwner.body.token}` })).status, 200, 'still works');
    const encoded = await raw(gw.adminUrl, 'DELETE', `${API}/%74okens/owners-ci`, admin);
    assert.equal(encoded.status, 403, show(encoded));

    const own = await raw(gw.adminUrl, 'DELETE', `${API}/tokens/made-by-admin`, admin);
    assert.equal(own.status, 204, show(own));
    const byOwnerRevoke = await gw.admin('DELETE', '/tokens/admins-own');
    assert.equal(byOwnerRevoke.status, 204, show(byOwnerRevoke));
  });

  test('/metrics on the data plane needs an admin API token unless metrics_public; the admin plane serves it to auditors', async () => {
    const anon = await raw(gw.dataUrl, 'GET', '/metrics');
    assert.equal(anon.status, 401, show(anon));
    assert.ok(!anon.text.includes('airlock_'), 'no metrics without a token');
    const aud = await gw.admin('POST', '/tokens', { name: 'prometheus', role: 'auditor' });
    const withToken = await raw(gw.dataUrl, 'GET', '/metrics', { authorization: `Bearer ${aud.body.token}` });
    assert.equal(withToken.status, 200);
    assert.match(withToken.text, /airlock_requests_total|# HELP/);
    const key = await raw(gw.dataUrl, 'GET', '/metrics', { authorization: `Bearer ${TEST_KEY}` });
    assert.equal(key.status, 401, 'an app key is not a metrics token');
    const adminPlane = await raw(gw.adminUrl, 'GET', `${API}/metrics`, { authorization: `Bearer ${aud.body.token}` });
    assert.equal(adminPlane.status, 200);
    const settings = (await gw.admin('GET', '/settings')).body;
    assert.equal((await gw.admin('PUT', '/settings', { ...settings, metrics_public: true })).status, 200);
    assert.equal((await raw(gw.dataUrl, 'GET', '/metrics')).status, 200);
    assert.equal((await gw.admin('PUT', '/settings', { ...settings, metrics_public: false })).status, 200);
  });
});

describe('logins from one address across many accounts', () => {
  let gw: RunningGateway;
  before(async () => {
    gw = await startGateway({ config: { teams: [{ name: 'research' }] } });
  });
  after(async () => {
    await gw?.stop();
  });
  const loginRaw = (username: string, password: string) => raw(gw.adminUrl, 'POST', `${API}/auth/login`, {}, { username, password });

  test('one address guessing across many accounts is throttled (429 with retry-after)', async () => {
    const max = (await gw.admin('GET', '/settings')).body.admin_max_failed_logins as number;
    const limit = 4 * max;
    const names = Array.from({ length: Math.ceil(limit / (max - 1)) + 1 }, (_, i) => `spray-${i}`);
    for (const n of names) assert.equal((await gw.admin('POST', '/users', { name: n, password: PASSWORD, role: 'auditor' })).status, 201);
    let throttled: Raw | undefined;
    let failures = 0;
    outer: for (const n of names) {
      for (let i = 0; i < max - 1; i++) {
        const r = await loginRaw(n, 'wrong password here');
        if (r.status === 429) {
          throttled = r;
          break outer;
        }
        assert.equal(r.status, 401, show(r));
        failures++;
      }
    }
    assert.ok(throttled, 'throttled');
    assert.equal(failures, limit, `throttled after ${limit} failures from one address`);
    assert.equal(throttled.body.error.code, 'too_many_attempts');
    assert.ok(Number(throttled.headers['retry-after']) > 0);
  });

});

describe('admin bearer tokens under attack', () => {
  test('a weak AIRLOCK_ADMIN_TOKEN is refused at start: exit 2, the variable and the rule named, the value never printed, nothing created', async () => {
    for (const weak of ['Zq', 'short-token-0123456789', 'a token with spaces in it 0123456789']) {
      const dataDir = path.join(tmpDir(), 'data');
      const r = await runCli(['serve', '--data-dir', dataDir, '--port', '0', '--admin-port', '0'], { env: { AIRLOCK_ADMIN_TOKEN: weak } });
      assert.equal(r.code, 2, `${weak}: ${r.stdout}\n${r.stderr}`);
      assert.match(r.stderr, /AIRLOCK_ADMIN_TOKEN must be at least 24 characters of printable ASCII without spaces/);
      assert.match(r.stderr, /openssl rand -hex 16/);
      assert.ok(!r.stderr.includes(weak) && !r.stdout.includes(weak), 'the value is a secret: never printed');
      assert.ok(!fs.existsSync(dataDir), 'no data dir is made by a start that is refused');
    }
  });

  test('wrong bearer tokens are throttled per address like logins (429 with retry-after, also on /metrics); another address\'s right token still works', async () => {
    const up = await startUpstream();
    const gw = await startGateway({ config: basicConfig(up.url) });
    try {
      const max = (await gw.admin('GET', '/settings')).body.admin_max_failed_logins as number;
      const limit = 4 * max;
      const other = '127.0.0.2';
      const auditor = await gw.admin('POST', '/tokens', { name: 'ci-reader', role: 'auditor' });
      assert.equal(auditor.status, 201, show(auditor));
      assert.equal((await gw.admin('POST', '/users', { name: 'root', password: PASSWORD, role: 'owner' })).status, 201);
      // every guess until the limit is checked and refused (401), then the address gets 429
      for (let i = 0; i < limit; i++) {
        const r = await raw(gw.adminUrl, 'GET', `${API}/status`, { authorization: `Bearer airlock-admin-guess-${i}-0123456789abcdef` });
        assert.equal(r.status, 401, `guess ${i}: ${show(r)}`);
      }
      const throttled = await raw(gw.adminUrl, 'GET', `${API}/status`, { authorization: 'Bearer airlock-admin-guess-next-0123456789abcdef' });
      assert.equal(throttled.status, 429, show(throttled));
      assert.equal(throttled.body.error.code, 'too_many_attempts');
      assert.match(throttled.body.error.message, /Too many wrong admin tokens from .*127\.0\.0\.1/);
      assert.ok(Number(throttled.headers['retry-after']) > 0, JSON.stringify(throttled.headers));
      // from that address even the right token is refused now: a throttled guess learns nothing
      const right = await raw(gw.adminUrl, 'GET', `${API}/status`, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(right.status, 429, show(right));
      // /metrics on the data plane takes the same tokens: the same throttle, in the OpenAI shape
      const metrics = await raw(gw.dataUrl, 'GET', '/metrics', { authorization: `Bearer ${auditor.body.token}` });
      assert.equal(metrics.status, 429, show(metrics));
      assert.equal(metrics.body.error.type, 'rate_limit_error');
      assert.ok(Number(metrics.headers['retry-after']) > 0);
      // another address is another client: its right tokens work
      const env = await raw(gw.adminUrl, 'GET', `${API}/status`, { authorization: `Bearer ${ADMIN_TOKEN}` }, undefined, other);
      assert.equal(env.status, 200, show(env));
      const api = await raw(gw.adminUrl, 'GET', `${API}/endpoints`, { authorization: `Bearer ${auditor.body.token}` }, undefined, other);
      assert.equal(api.status, 200, show(api));
      assert.equal((await raw(gw.dataUrl, 'GET', '/metrics', { authorization: `Bearer ${auditor.body.token}` }, undefined, other)).status, 200);
      // and a sign-in with a password from the throttled address is counted apart (the desktop window's way in)
      const login = await raw(gw.adminUrl, 'POST', `${API}/auth/login`, {}, { username: 'root', password: PASSWORD });
      assert.equal(login.status, 200, show(login));
    } finally {
      await gw.stop();
      await up.close();
    }
  });
});

describe('data plane: nothing read before the key, nesting is the client\'s fault, 200s that carry errors fail over', () => {
  let gw: RunningGateway;
  let a: TestUpstream;
  let b: TestUpstream;

  before(async () => {
    a = await startUpstream();
    b = await startUpstream();
    gw = await startGateway({
      config: {
        ...basicConfig(a.url),
        endpoints: [
          { name: 'gpu-1', base_url: a.url, health_check: { enabled: false } },
          { name: 'gpu-2', base_url: b.url, health_check: { enabled: false } },
        ],
        models: [
          { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
          { name: 'pair', strategy: 'fallback', targets: [{ endpoint: 'gpu-1', model: 'test-model' }, { endpoint: 'gpu-2', model: 'test-model' }] },
        ],
        keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research', models: ['chat', 'pair'] }],
        settings: { breaker: { failure_threshold: 3, cooldown_ms: 60_000 } },
      },
    });
  });
  after(async () => {
    await gw?.stop();
    await a?.close();
    await b?.close();
  });

  const rssKb = () => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${gw.proc.pid}/status`, 'utf8'))?.[1]);

  test('keyless 10 MB bodies are answered 401 from the headers: the gateway does not buffer them', async () => {
    const big = Buffer.alloc(10 * 1024 * 1024, 'a');
    const before = rssKb();
    const u = new URL(gw.dataUrl);
    const one = () =>
      new Promise<number>((resolve) => {
        const req = http.request({ host: u.hostname, port: Number(u.port), method: 'POST', path: '/v1/chat/completions', agent: false, headers: { 'content-type': 'application/json', 'content-length': String(big.length) } }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', () => resolve(-1)); // the gateway may close while we still send
        req.end(big);
      });
    const statuses = await Promise.all(Array.from({ length: 40 }, one));
    assert.ok(statuses.every((s) => s === 401 || s === -1), statuses.join(','));
    assert.ok(statuses.filter((s) => s === 401).length >= 1, 'answered 401');
    const grew = (rssKb() - before) / 1024;
    assert.ok(grew < 150, `RSS grew by ${grew.toFixed(0)} MB for 400 MB of keyless bodies`);
    const ledger = await gw.admin('GET', '/usage/requests?limit=5');
    assert.equal(ledger.body.data[0].status, 401, 'the refusal is in the ledger');
  });

  test('keyless bodies up to 1 MiB are read and dropped, not kept: every client reads its 401 (never a reset), and the connection serves the next request', async () => {
    const u = new URL(gw.dataUrl);
    const body = Buffer.alloc(900 * 1024, 'a');
    const before = rssKb();
    // half announce their length, half are chunked (the size is known only as it arrives)
    const one = (i: number) =>
      new Promise<number | string>((resolve) => {
        const headers: Record<string, string> = { 'content-type': 'application/json' };
        if (i % 2 === 0) headers['content-length'] = String(body.length);
        const req = http.request({ host: u.hostname, port: Number(u.port), method: 'POST', path: '/v1/chat/completions', agent: false, headers }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', (e: NodeJS.ErrnoException) => resolve(`${e.code ?? e.message}`));
        if (i % 2 === 0) req.end(body);
        else {
          for (let k = 0; k < body.length; k += 64 * 1024) req.write(body.subarray(k, k + 64 * 1024));
          req.end();
        }
      });
    const statuses = await Promise.all(Array.from({ length: 40 }, (_, i) => one(i)));
    assert.deepEqual(statuses, Array.from({ length: 40 }, () => 401), statuses.join(','));
    const grew = (rssKb() - before) / 1024;
    assert.ok(grew < 60, `RSS grew by ${grew.toFixed(0)} MB for 36 MB of keyless bodies`);

    // on one keep-alive connection: a refused body, then a keyed request on the same socket
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const send = (method: string, path: string, headers: Record<string, string>, data?: Buffer) =>
        new Promise<{ status: number; reused: boolean }>((resolve, reject) => {
          const req = http.request({ host: u.hostname, port: Number(u.port), method, path, agent, headers }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket }));
          });
          req.on('error', reject);
          req.end(data);
        });
      const refused = await send('POST', '/v1/chat/completions', { 'content-type': 'application/json', 'content-length': String(300 * 1024) }, Buffer.alloc(300 * 1024, 'b'));
      assert.equal(refused.status, 401);
      const next = await send('GET', '/v1/models', { authorization: `Bearer ${TEST_KEY}` });
      assert.deepEqual(next, { status: 200, reused: true }, 'the refused body was read to its end and the connection kept');
    } finally {
      agent.destroy();
    }
  });

  test('a client that asks to close and is still sending when refused reads its whole 401, never a reset (announced and chunked bodies)', async () => {
    // The client sends half its body, pauses, sends the rest: a gateway that answered and closed
    // while the body was still coming would reset the connection under the second half.
    const u = new URL(gw.dataUrl);
    const exchange = (chunked: boolean) =>
      new Promise<{ answer: string; error?: string }>((resolve) => {
        const half = Buffer.alloc(200 * 1024, 'c');
        const s = net.connect({ port: Number(u.port), host: u.hostname, allowHalfOpen: true }); // an uploading client goes on sending after the answer
        const got: Buffer[] = [];
        let error: string | undefined;
        s.on('data', (c: Buffer) => got.push(c));
        s.on('error', (e: NodeJS.ErrnoException) => { error = e.code ?? e.message; });
        s.on('close', () => resolve({ answer: Buffer.concat(got).toString('latin1'), error }));
        const part = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b);
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\nconnection: close\r\n${chunked ? 'transfer-encoding: chunked' : `content-length: ${2 * half.length}`}\r\n\r\n`);
        s.write(part(half));
        setTimeout(() => {
          s.write(part(half));
          if (chunked) s.write('0\r\n\r\n');
          s.end();
        }, 300);
      });
    for (const chunked of [false, true]) {
      const r = await exchange(chunked);
      assert.equal(r.error, undefined, `chunked=${chunked}: ${r.error}`);
      assert.match(r.answer, /^HTTP\/1\.1 401 /, `chunked=${chunked}`);
      assert.match(r.answer, /"code":"invalid_api_key"|"code":"missing_api_key"/, `chunked=${chunked}: the whole refusal was read`);
    }
    // a refused client that goes away half-way through its body: nothing waits on it
    await new Promise<void>((resolve) => {
      const s = net.connect(Number(u.port), u.hostname, () => {
        s.write(`POST /v1/chat/completions HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\ncontent-length: 500000\r\n\r\n`);
        s.write(Buffer.alloc(100_000, 'd'), () => setTimeout(() => { s.destroy(); resolve(); }, 50));
      });
    });
    const after = await raw(gw.dataUrl, 'GET', '/v1/models', { authorization: `Bearer ${TEST_KEY}` });
    assert.equal(after.status, 200, show(after));
  });

  test('5,000 nested arrays: 400 naming the nesting, never a 502, and the breaker of the healthy upstream stays closed', async () => {
    const deep = '['.repeat(5000) + ']'.repeat(5000);
    for (let i = 0; i < 5; i++) {
      const r = await raw(gw.dataUrl, 'POST', '/v1/chat/completions', { authorization: `Bearer ${TEST_KEY}` }, `{"model":"chat","messages":[{"role":"user","content":"x"}],"extra":${deep}}`);
      assert.equal(r.status, 400, show(r));
      assert.equal(r.body.error.code, 'too_deeply_nested', show(r));
    }
    const health = await gw.admin('GET', '/health');
    for (const t of health.body.targets as { breaker: string; id: string }[]) assert.equal(t.breaker, 'closed', t.id);
    const ok = await raw(gw.dataUrl, 'POST', '/v1/chat/completions', { authorization: `Bearer ${TEST_KEY}` }, { model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(ok.status, 200, show(ok));
    const adminDeep = await raw(gw.adminUrl, 'POST', `${API}/config/apply`, { authorization: `Bearer ${ADMIN_TOKEN}` }, `{"teams":[{"name":"x","description":${deep}}]}`);
    assert.equal(adminDeep.status, 400, show(adminDeep));
  });

  test('an upstream 200 whose body is {"error": ...} is a failed attempt: fallback, or a 502 with its message', async () => {
    a.queue({ kind: 'error-event-before-content' });
    const fell = await raw(gw.dataUrl, 'POST', '/v1/chat/completions', { authorization: `Bearer ${TEST_KEY}` }, { model: 'pair', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(fell.status, 200, show(fell));
    assert.equal(fell.headers['x-airlock-endpoint'], 'gpu-2');
    assert.equal(fell.headers['x-airlock-attempts'], '2');
    assert.ok(Array.isArray(fell.body.choices));

    a.setBehavior({ kind: 'error-event-before-content' });
    try {
      const failed = await raw(gw.dataUrl, 'POST', '/v1/chat/completions', { authorization: `Bearer ${TEST_KEY}` }, { model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(failed.status, 502, show(failed));
      assert.match(failed.body.error.message, /simulated error event from the model server/);
    } finally {
      a.setBehavior({ kind: 'ok' });
    }
    const rows = (await gw.admin('GET', '/usage/requests?limit=1')).body.data;
    assert.equal(rows[0].status, 502, 'recorded as the failure it was');
  });
});
