// What the admin app does, from a shell on the server: list endpoints/models/teams, disable,
// enable and revoke keys (a running gateway follows), and reset a forgotten admin password.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, runCli, startGateway, writeConfig, type CliResult, type RunningGateway, tmpDir } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const out = (r: CliResult) => `exit ${r.code} ${r.signal ?? ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
function refusal(r: CliResult): string {
  assert.equal(r.code, 2, out(r));
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, out(r));
  return lines[0]!;
}

describe('command line parity', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      config: basicConfig(up.url, {
        endpoints: [{ name: 'gpu-1', base_url: up.url, api_key: 'upstream-literal-secret', health_check: { enabled: false } }],
        teams: [{ name: 'research' }, { name: 'empty-team' }],
      }),
    });
  });
  after(async () => {
    await gw.stop();
    await up.close();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
  });
  const cli = (...args: string[]) => runCli([...args, '--data-dir', gw.dataDir]);

  test('endpoints, models and teams list (text and --json) without revealing secrets', async () => {
    const e = await cli('endpoints', 'list');
    assert.equal(e.code, 0, out(e));
    assert.equal(e.stdout.trim(), `gpu-1\topenai\t${up.url}\tapi_key=stored (encrypted)\tmax_concurrency=-`);
    assert.doesNotMatch(e.stdout + (await cli('endpoints', 'list', '--json')).stdout, /upstream-literal-secret/);
    const m = await cli('models', 'list');
    assert.equal(m.stdout.trim(), 'chat\tfallback\tgpu-1/test-model');
    const t = await cli('teams', 'list', '--json');
    assert.deepEqual(
      JSON.parse(t.stdout).map((x: { name: string; keys: number }) => [x.name, x.keys]),
      [
        ['research', 1],
        ['empty-team', 0],
      ],
    );
    const bad = await cli('teams', 'show');
    assert.equal(bad.code, 2, out(bad));
    assert.match(bad.stderr, /unknown command "teams show"; try "teams list"/);
  });

  test('config export notes, as YAML comments, every literal secret it left out (JSON: on stderr)', async () => {
    const y = await cli('config', 'export');
    assert.equal(y.code, 0, out(y));
    assert.match(y.stdout, /^# Not exported .*\n# {3}endpoints\/gpu-1: api_key \(a literal secret/m);
    assert.match(y.stdout, /^# {3}keys: the secrets of \d+ key/m);
    assert.doesNotMatch(y.stdout, /upstream-literal-secret/);
    const j = await cli('config', 'export', '--format', 'json');
    assert.doesNotThrow(() => JSON.parse(j.stdout));
    assert.match(j.stderr, /not exported: endpoints\/gpu-1: api_key/);
  });

  test('keys disable / enable / revoke: the running gateway follows; an unknown name lists the keys', async () => {
    const client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const ask = () => client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }).then(
      () => 200,
      (e: { status?: number }) => e.status ?? 0,
    );
    assert.equal(await ask(), 200);
    const d = await cli('keys', 'disable', 'notebook-app');
    assert.equal(d.code, 0, out(d));
    await eventually(async () => (await ask()) === 401, 'the disabled key to be refused');
    assert.match((await cli('keys', 'list')).stdout, /notebook-app.*\tdisabled/);
    assert.match((await cli('keys', 'disable', 'notebook-app')).stdout, /disabled already/);
    assert.equal((await cli('keys', 'enable', 'notebook-app')).code, 0);
    await eventually(async () => (await ask()) === 200, 'the enabled key to work again');
    assert.match(refusal(await cli('keys', 'revoke', 'notebok-app')), /no key named "notebok-app" \(keys: notebook-app\)/);
    assert.equal((await cli('keys', 'revoke', 'notebook-app')).code, 0);
    await eventually(async () => (await ask()) === 401, 'the revoked key to be refused');
    assert.equal((await cli('keys', 'list')).stdout, '');
    assert.equal((await gw.admin('GET', '/keys')).body.data.length, 0, 'the admin API agrees');
    // each change is in the audit trail, by the CLI, with the key's name and never its secret
    const cliEvents = (await gw.admin('GET', '/audit/events?limit=1000')).body.data as { kind: string; source: string; data: Record<string, unknown> }[];
    const keyEvents = cliEvents.filter((e) => e.source === 'cli' && e.kind.startsWith('key.'));
    assert.deepEqual(keyEvents.map((e) => e.kind).reverse(), ['key.disable', 'key.enable', 'key.revoke']);
    assert.ok(keyEvents.every((e) => JSON.stringify(e.data).includes('notebook-app')));
    assert.ok(!JSON.stringify(keyEvents).includes(TEST_KEY), 'no key secret in the audit trail');
  });

  test('admin reset-password: a locked-out single owner gets back in; old sessions are signed out', async () => {
    assert.equal((await gw.admin('POST', '/users', { name: 'founder', password: 'the old password 123', role: 'owner' })).status, 201);
    const login = (password: string) =>
      fetch(`${gw.adminUrl}/admin/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'founder', password }) });
    const old = await login('the old password 123');
    assert.equal(old.status, 200);
    const cookie = old.headers.getSetCookie()[0]!.split(';')[0]!;
    assert.equal((await fetch(`${gw.adminUrl}/admin/api/v1/teams`, { headers: { cookie } })).status, 200, 'the session works');
    // forgotten: enough wrong guesses lock the account
    for (let i = 0; i < 12; i++) await login('a wrong guess ' + i);
    assert.notEqual((await login('the old password 123')).status, 200, 'locked out');

    assert.match(refusal(await cli('admin', 'reset-password', 'fonder')), /no admin user named "fonder" \(admin users: founder\)/);
    const r = await cli('admin', 'reset-password', 'founder');
    assert.equal(r.code, 0, out(r));
    const temporary = r.stdout.trim();
    assert.ok(temporary.length >= 16 && !temporary.includes(' '), out(r));
    assert.match(r.stderr, /shown only this once/);
    const once = await login(temporary);
    assert.equal(once.status, 200, 'the one-time password logs in');
    assert.notEqual((await login('the old password 123')).status, 200, 'the old password is gone');
    // the one-time password is for one sign-in: that session may do nothing but choose a new one
    const onceCookie = once.headers.getSetCookie()[0]!.split(';')[0]!;
    const onceBody = (await once.json()) as { user: { must_change_password?: boolean }; csrf_token: string };
    assert.equal(onceBody.user.must_change_password, true);
    const state = (await (await fetch(`${gw.adminUrl}/admin/api/v1/auth/state`, { headers: { cookie: onceCookie } })).json()) as { user: { must_change_password?: boolean } };
    assert.equal(state.user.must_change_password, true);
    const blocked = await fetch(`${gw.adminUrl}/admin/api/v1/teams`, { headers: { cookie: onceCookie } });
    assert.equal(blocked.status, 403);
    assert.equal(((await blocked.json()) as { error: { code: string } }).error.code, 'password_change_required');
    const change = (body: unknown) =>
      fetch(`${gw.adminUrl}/admin/api/v1/auth/password`, { method: 'POST', headers: { cookie: onceCookie, 'x-csrf-token': onceBody.csrf_token, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const fresh = 'a brand new passphrase';
    for (const [body, field] of [
      [{ current_password: 'not it at all', new_password: fresh }, 'current_password'],
      [{ current_password: temporary, new_password: 'short' }, 'new_password'],
      [{ current_password: temporary, new_password: temporary }, 'new_password'],
    ] as const) {
      const r = await change(body);
      assert.equal(r.status, 400, JSON.stringify(body));
      const j = (await r.json()) as { error: { issues: { path: string }[] } };
      assert.ok(j.error.issues.some((x) => x.path === field), JSON.stringify(j));
    }
    assert.equal((await change({ current_password: temporary, new_password: fresh })).status, 204);
    assert.equal((await fetch(`${gw.adminUrl}/admin/api/v1/teams`, { headers: { cookie: onceCookie } })).status, 200, 'the session goes on');
    assert.notEqual((await login(temporary)).status, 200, 'the one-time password worked once');
    const after = await login(fresh);
    assert.equal(after.status, 200);
    assert.equal(((await after.json()) as { user: { must_change_password?: boolean } }).user.must_change_password, undefined);
    assert.equal((await fetch(`${gw.adminUrl}/admin/api/v1/teams`, { headers: { cookie } })).status, 401, 'the old session is signed out');
    assert.match((await cli('admin', 'list')).stdout, /^founder\towner$/m);
    const events = (await gw.admin('GET', '/audit/events?kind=admin.password_reset')).body.data as { source: string; data: { user?: string } }[];
    assert.equal(events.length, 1);
    assert.equal(events[0]!.source, 'cli');
    assert.equal(events[0]!.data.user, 'founder');
    assert.ok(!JSON.stringify(events).includes(temporary), 'never the password');
    const all = JSON.stringify((await gw.admin('GET', '/audit/events?limit=1000')).body);
    assert.ok(all.includes('change own password'), 'the change is in the audit trail');
    assert.ok(!all.includes('a brand new passphrase') && !all.includes(temporary), 'never a password');
  });

  test('a file whose section replaces a whole list and so breaks a reference says so', async () => {
    const dir = tmpDir('airlock-cfg-');
    try {
      // only an endpoints section, without gpu-1 that the stored model "chat" uses
      const file = writeConfig(dir, { endpoints: [{ name: 'gpu-2', base_url: 'http://127.0.0.1:9/v1' }] });
      const r = await cli('config', 'apply', file);
      assert.equal(r.code, 2, out(r));
      assert.match(
        r.stderr,
        /models\[0\]\.targets\[0\]\.endpoint: unknown endpoint "gpu-1": the "endpoints" section given here replaces the whole stored list and does not list "gpu-1"/,
      );
      // a plain typo in the file itself gets no such note
      const typo = writeConfig(dir, { endpoints: [{ name: 'gpu-1', base_url: up.url }], models: [{ name: 'chat', targets: [{ endpoint: 'gpu-9', model: 'm' }] }] }, 'typo.yaml');
      const t = await cli('config', 'apply', typo);
      assert.match(t.stderr, /unknown endpoint "gpu-9"$/m);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a mistyped command gets a suggestion', async () => {
    const r = await runCli(['endpoint', 'list']);
    assert.equal(r.code, 2, out(r));
    assert.match(r.stderr, /unknown command "endpoint"; did you mean "endpoints"\?/);
  });
});
