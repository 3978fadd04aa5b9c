// Admin accounts against the real gateway process: first-run setup with the printed one-time
// token, scrypt password storage, login/logout with an HttpOnly SameSite=Strict session cookie,
// CSRF on every cookie-authenticated change, lockout after failed logins, owner/admin/auditor
// roles on every route (route × role matrix), user management, API tokens, and the Host/Origin
// checks that stay on when the admin plane is bound to 0.0.0.0.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import { scryptSync, timingSafeEqual } from 'node:crypto';
import Database from 'better-sqlite3';
import { ADMIN_TOKEN, eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';

const API = '/admin/api/v1';
const PASSWORD = 'correct horse battery staple';
const COOKIE = 'airlock_session';

type Role = 'owner' | 'admin' | 'auditor';
const RANK: Record<Role, number> = { auditor: 0, admin: 1, owner: 2 };

interface Res {
  status: number;
  headers: Headers;
  body: any;
}
interface Session {
  user: string;
  /** the `name=value` pair to send back in a cookie header */
  cookie: string;
  csrf: string;
}
interface CallOpts {
  session?: Session;
  /** override the CSRF header; null: send none (default: the session's own on writes) */
  csrf?: string | null;
  bearer?: string;
  body?: unknown;
  headers?: Record<string, string>;
}

/** One admin API call with manual cookie handling (no cookie jar: we send exactly what we mean). */
async function call(gw: RunningGateway, method: string, p: string, o: CallOpts = {}): Promise<Res> {
  const h: Record<string, string> = { ...o.headers };
  if (o.bearer) h.authorization = `Bearer ${o.bearer}`;
  if (o.session) {
    h.cookie = o.session.cookie;
    const csrf = o.csrf === undefined ? (method === 'GET' ? undefined : o.session.csrf) : (o.csrf ?? undefined);
    if (csrf) h['x-csrf-token'] = csrf;
  }
  if (o.body !== undefined) h['content-type'] = 'application/json';
  const res = await fetch(gw.adminUrl + API + p, { method, headers: h, body: o.body === undefined ? undefined : JSON.stringify(o.body) });
  const text = await res.text();
  let body: any = text;
  try {
    body = text ? JSON.parse(text) : undefined;
  } catch {
    /* keep the text */
  }
  return { status: res.status, headers: res.headers, body };
}

const show = (r: Res) => `${r.status} ${JSON.stringify(r.body)}`;

/** The session cookie a response sets: its `name=value` pair and its attributes (lower-cased). */
function sessionCookie(r: Res): { pair: string; value: string; attrs: string[] } {
  const all = r.headers.getSetCookie();
  const c = all.find((s) => s.startsWith(`${COOKIE}=`));
  assert.ok(c, `no ${COOKIE} cookie set: ${JSON.stringify(all)}`);
  const [pair, ...attrs] = c.split(';').map((s) => s.trim());
  return { pair: pair!, value: pair!.slice(COOKIE.length + 1), attrs: attrs.map((a) => a.toLowerCase()) };
}

async function login(gw: RunningGateway, user: string, password: string): Promise<Session> {
  const r = await call(gw, 'POST', '/auth/login', { body: { username: user, password } });
  assert.equal(r.status, 200, show(r));
  assert.equal(typeof r.body.csrf_token, 'string');
  return { user, cookie: sessionCookie(r).pair, csrf: r.body.csrf_token };
}

/** Create an admin user with the AIRLOCK_ADMIN_TOKEN (gw.admin sends it). */
async function createUser(gw: RunningGateway, name: string, role: Role, password = PASSWORD): Promise<void> {
  const r = await gw.admin('POST', '/users', { name, password, role });
  assert.equal(r.status, 201, `create user ${name}: ${r.status} ${JSON.stringify(r.body)}`);
}

function openDb(gw: RunningGateway): Database.Database {
  return new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true, fileMustExist: true });
}

const endpointsConfig = {
  endpoints: [{ name: 'gpu-1', base_url: 'http://127.0.0.1:9/v1', health_check: { enabled: false } }],
  models: [{ name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] }],
  teams: [{ name: 'research' }],
};

// ---------------------------------------------------------------------------------------------

describe('first-run setup', () => {
  const dataDir = tmpDir();
  const owner = 'founder';
  let gw: RunningGateway;
  let setupToken = '';

  before(async () => {
    gw = await startGateway({ dataDir, adminToken: null });
  });
  after(async () => {
    await gw?.stop();
  });

  test('serve prints a one-time setup URL; the API asks for setup and refuses anonymous calls', async () => {
    const m = /^airlock: first-run setup: open (\S+)\/setup\?token=(\S+)$/m.exec(gw.stdout());
    assert.ok(m, `no setup line in stdout:\n${gw.stdout()}`);
    assert.equal(m[1], gw.adminUrl);
    setupToken = m[2]!;
    assert.ok(setupToken.length >= 16, 'the setup token is long enough not to be guessed');

    const s = await call(gw, 'GET', '/auth/state');
    assert.equal(s.status, 200, show(s));
    assert.deepEqual(s.body, { setup_required: true, user: null, csrf_token: null });

    const r = await call(gw, 'GET', '/endpoints');
    assert.equal(r.status, 401, show(r));
  });

  test('setup: wrong token 403, short password 400, then the owner with a strict session cookie; only once', async () => {
    const wrong = (setupToken[0] === 'A' ? 'B' : 'A') + setupToken.slice(1);
    const bad = await call(gw, 'POST', '/auth/setup', { body: { setup_token: wrong, username: owner, password: PASSWORD } });
    assert.equal(bad.status, 403, show(bad));
    assert.equal(bad.headers.getSetCookie().length, 0, 'no cookie for a refused setup');

    const short = await call(gw, 'POST', '/auth/setup', { body: { setup_token: setupToken, username: owner, password: 'abcdefghijk' } });
    assert.equal(short.status, 400, show(short));
    assert.ok(
      (short.body.error.issues as { path: string }[]).some((i) => i.path === 'password'),
      `issues name the password: ${show(short)}`,
    );

    const still = await call(gw, 'GET', '/auth/state');
    assert.equal(still.body.setup_required, true, 'refused attempts do not complete setup');

    const ok = await call(gw, 'POST', '/auth/setup', { body: { setup_token: setupToken, username: owner, password: PASSWORD } });
    assert.equal(ok.status, 201, show(ok));
    assert.deepEqual(ok.body.user, { name: owner, role: 'owner' });
    assert.equal(typeof ok.body.csrf_token, 'string');
    assert.ok(ok.body.csrf_token.length >= 16);
    const c = sessionCookie(ok);
    assert.ok(c.value.length >= 20, 'a session id with real entropy');
    assert.ok(c.attrs.includes('httponly'), `HttpOnly: ${c.attrs.join('; ')}`);
    assert.ok(c.attrs.includes('samesite=strict'), `SameSite=Strict: ${c.attrs.join('; ')}`);
    assert.ok(c.attrs.includes('path=/'), `Path=/: ${c.attrs.join('; ')}`);
    assert.ok(!c.attrs.includes('secure'), `no Secure on plain http: ${c.attrs.join('; ')}`);
    const session: Session = { user: owner, cookie: c.pair, csrf: ok.body.csrf_token };

    const anon = await call(gw, 'GET', '/auth/state');
    assert.deepEqual(anon.body, { setup_required: false, user: null, csrf_token: null });
    const mine = await call(gw, 'GET', '/auth/state', { session });
    assert.deepEqual(mine.body, { setup_required: false, user: { name: owner, role: 'owner' }, csrf_token: session.csrf });

    // The new session is a working owner session.
    const read = await call(gw, 'GET', '/endpoints', { session });
    assert.equal(read.status, 200, show(read));
    const write = await call(gw, 'POST', '/teams', { session, body: { name: 'first-team' } });
    assert.equal(write.status, 201, show(write));

    const again = await call(gw, 'POST', '/auth/setup', { body: { setup_token: setupToken, username: 'intruder', password: PASSWORD } });
    assert.equal(again.status, 409, show(again));
    const users = await call(gw, 'GET', '/users', { session });
    assert.deepEqual(
      (users.body.data as { name: string }[]).map((u) => u.name),
      [owner],
    );
  });

  test('the owner password is stored as a salted scrypt hash, never in clear', () => {
    const db = openDb(gw);
    try {
      const row = db.prepare('SELECT * FROM admin_users WHERE name = ?').get(owner) as Record<string, unknown> | undefined;
      assert.ok(row, 'the owner row exists');
      assert.ok(!JSON.stringify(row).includes(PASSWORD), 'the password appears nowhere in the row');
      const hash = String(row.password_hash);
      const m = /^scrypt\$(\d+)\$(\d+)\$(\d+)\$([A-Za-z0-9+/=]+)\$([A-Za-z0-9+/=]+)$/.exec(hash);
      assert.ok(m, `scrypt hash format: ${hash}`);
      const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
      assert.ok(N >= 16384, `scrypt cost N=${N}`);
      const salt = Buffer.from(m[4]!, 'base64');
      const key = Buffer.from(m[5]!, 'base64');
      assert.ok(salt.length >= 16, 'a random salt of at least 16 bytes');
      // The stored key really is scrypt(password, salt), and not of another password.
      const opts = { N, r, p, maxmem: 128 * 1024 * 1024 };
      assert.ok(timingSafeEqual(scryptSync(PASSWORD, salt, key.length, opts), key), 'scrypt of the password matches the stored key');
      assert.ok(!timingSafeEqual(scryptSync(PASSWORD + 'x', salt, key.length, opts), key));
    } finally {
      db.close();
    }
  });

  test('after a restart on the same data dir no setup token is printed and the owner logs in', async () => {
    const stopped = await gw.stop();
    assert.equal(stopped.code, 0);
    gw = await startGateway({ dataDir, adminToken: null });
    assert.doesNotMatch(gw.stdout(), /first-run setup/);
    const s = await call(gw, 'GET', '/auth/state');
    assert.equal(s.body.setup_required, false);
    const session = await login(gw, owner, PASSWORD);
    const r = await call(gw, 'GET', '/users', { session });
    assert.equal(r.status, 200, show(r));
  });
});

// ---------------------------------------------------------------------------------------------

describe('logins, sessions, CSRF, lockout, users and API tokens', () => {
  let gw: RunningGateway;
  let owner: Session;

  before(async () => {
    gw = await startGateway({ config: endpointsConfig });
    await createUser(gw, 'root', 'owner');
    owner = await login(gw, 'root', PASSWORD);
  });
  after(async () => {
    await gw?.stop();
  });

  test('an owner created through the API (automation) ends first-run setup', async () => {
    const s = await call(gw, 'GET', '/auth/state');
    assert.equal(s.status, 200);
    assert.equal(s.body.setup_required, false, 'the admin app must show the login, not the setup screen');
    const anon = await call(gw, 'GET', '/endpoints');
    assert.equal(anon.status, 401);
    assert.notEqual(anon.body.error.code, 'setup_required', show(anon));
  });

  test('login: wrong password or unknown user 401; right password 200 with csrf; logout 204 ends the session', async () => {
    await createUser(gw, 'alice', 'admin');
    const wrong = await call(gw, 'POST', '/auth/login', { body: { username: 'alice', password: PASSWORD + '!' } });
    assert.equal(wrong.status, 401, show(wrong));
    assert.equal(wrong.headers.getSetCookie().length, 0);
    const nobody = await call(gw, 'POST', '/auth/login', { body: { username: 'nobody', password: PASSWORD } });
    assert.equal(nobody.status, 401, show(nobody));

    const ok = await call(gw, 'POST', '/auth/login', { body: { username: 'alice', password: PASSWORD } });
    assert.equal(ok.status, 200, show(ok));
    assert.deepEqual(ok.body.user, { name: 'alice', role: 'admin' });
    assert.equal(typeof ok.body.csrf_token, 'string');
    const c = sessionCookie(ok);
    assert.ok(c.attrs.includes('httponly') && c.attrs.includes('samesite=strict') && c.attrs.includes('path=/'), c.attrs.join('; '));
    const session: Session = { user: 'alice', cookie: c.pair, csrf: ok.body.csrf_token };

    const state = await call(gw, 'GET', '/auth/state', { session });
    assert.deepEqual(state.body.user, { name: 'alice', role: 'admin' });
    assert.equal(state.body.csrf_token, session.csrf, 'a reloaded app gets its csrf token back from /auth/state');
    assert.equal((await call(gw, 'GET', '/endpoints', { session })).status, 200);

    const out = await call(gw, 'POST', '/auth/logout', { session });
    assert.equal(out.status, 204, show(out));
    const cleared = sessionCookie(out);
    assert.equal(cleared.value, '', 'logout clears the cookie');

    const after = await call(gw, 'GET', '/endpoints', { session });
    assert.equal(after.status, 401, `the old cookie no longer works: ${show(after)}`);
    const st = await call(gw, 'GET', '/auth/state', { session });
    assert.equal(st.body.user, null);
  });

  test('CSRF: a cookie-authenticated change needs its own session csrf token; bearer tokens need none', async () => {
    const a = await login(gw, 'root', PASSWORD);
    const b = await login(gw, 'root', PASSWORD);
    assert.notEqual(a.csrf, b.csrf, 'each session has its own csrf token');

    const none = await call(gw, 'POST', '/teams', { session: a, csrf: null, body: { name: 'csrf-1' } });
    assert.equal(none.status, 403, show(none));
    assert.equal(none.body.error.code, 'csrf_failed');
    const other = await call(gw, 'POST', '/teams', { session: a, csrf: b.csrf, body: { name: 'csrf-1' } });
    assert.equal(other.status, 403, show(other));
    assert.equal(other.body.error.code, 'csrf_failed');
    const del = await call(gw, 'DELETE', '/teams/research', { session: a, csrf: null });
    assert.equal(del.status, 403, show(del));
    const teams = await gw.admin('GET', '/teams');
    assert.deepEqual(
      (teams.body.data as { name: string }[]).map((t) => t.name).sort(),
      ['research'],
      'refused changes changed nothing',
    );

    const own = await call(gw, 'POST', '/teams', { session: a, body: { name: 'csrf-1' } });
    assert.equal(own.status, 201, show(own));
    const ownB = await call(gw, 'POST', '/teams', { session: b, body: { name: 'csrf-2' } });
    assert.equal(ownB.status, 201, show(ownB));

    // Bearer tokens: AIRLOCK_ADMIN_TOKEN and an API token, no csrf header at all.
    const env = await call(gw, 'POST', '/teams', { bearer: ADMIN_TOKEN, body: { name: 'csrf-3' } });
    assert.equal(env.status, 201, show(env));
    const tok = await gw.admin('POST', '/tokens', { name: 'csrf-bot', role: 'admin' });
    assert.equal(tok.status, 201, show(tok));
    const api = await call(gw, 'POST', '/teams', { bearer: tok.body.token, body: { name: 'csrf-4' } });
    assert.equal(api.status, 201, show(api));
  });

  test('lockout: after admin_max_failed_logins wrong passwords the account answers 423 until an owner unlocks it', async () => {
    const set = await call(gw, 'PATCH', '/settings', { session: owner, body: { admin_max_failed_logins: 3, admin_lockout_minutes: 15 } });
    assert.equal(set.status, 200, show(set));
    assert.equal(set.body.admin_max_failed_logins, 3);
    await createUser(gw, 'locky', 'admin');

    let locked: Res | undefined;
    for (let i = 1; i <= 4 && !locked; i++) {
      const r = await call(gw, 'POST', '/auth/login', { body: { username: 'locky', password: `wrong password ${i}` } });
      if (r.status === 423) locked = r;
      else {
        assert.equal(r.status, 401, `attempt ${i}: ${show(r)}`);
        assert.ok(i < 4, 'locked at the latest on the attempt after the 3rd failure');
      }
      if (i < 3) assert.equal(r.status, 401, `attempt ${i} of 3 is not locked yet: ${show(r)}`);
    }
    assert.ok(locked);
    assert.equal(locked.body.error.code, 'account_locked', show(locked));
    const retry = Number(locked.headers.get('retry-after'));
    assert.ok(Number.isInteger(retry) && retry > 0, `retry-after: ${locked.headers.get('retry-after')}`);

    const right = await call(gw, 'POST', '/auth/login', { body: { username: 'locky', password: PASSWORD } });
    assert.equal(right.status, 423, `the right password is refused while locked: ${show(right)}`);
    assert.equal(right.body.error.code, 'account_locked');
    assert.ok(Number(right.headers.get('retry-after')) > 0);
    assert.equal(right.headers.getSetCookie().length, 0);

    const users = await call(gw, 'GET', '/users', { session: owner });
    const row = (users.body.data as { name: string; locked_until: string | null }[]).find((u) => u.name === 'locky');
    assert.ok(row?.locked_until && Date.parse(row.locked_until) > Date.now(), `GET /users shows the lock: ${JSON.stringify(row)}`);

    const unlock = await call(gw, 'PUT', '/users/locky', { session: owner, body: {} });
    assert.equal(unlock.status, 200, show(unlock));
    assert.equal(unlock.body.locked_until, null);
    await login(gw, 'locky', PASSWORD);
  });

  test('users: the last owner cannot be deleted, demoted or disabled (409); a second owner makes it possible', async () => {
    const del = await call(gw, 'DELETE', '/users/root', { session: owner });
    assert.equal(del.status, 409, show(del));
    const demote = await call(gw, 'PUT', '/users/root', { session: owner, body: { role: 'admin' } });
    assert.equal(demote.status, 409, show(demote));
    const disable = await call(gw, 'PUT', '/users/root', { session: owner, body: { disabled: true } });
    assert.equal(disable.status, 409, show(disable));
    const viaEnv = await gw.admin('DELETE', '/users/root');
    assert.equal(viaEnv.status, 409, show(viaEnv));
    assert.equal((await call(gw, 'GET', '/endpoints', { session: owner })).status, 200, 'the owner session still works');

    await createUser(gw, 'root2', 'owner');
    const demote2 = await gw.admin('PUT', '/users/root2', { role: 'admin' });
    assert.equal(demote2.status, 200, show(demote2));
    assert.equal(demote2.body.role, 'admin');
    const del2 = await gw.admin('DELETE', '/users/root2');
    assert.equal(del2.status, 204, show(del2));
    const list = await gw.admin('GET', '/users');
    assert.ok(!(list.body.data as { name: string }[]).some((u) => u.name === 'root2'));
  });

  test('users: disabling a user ends their sessions and refuses their login', async () => {
    await createUser(gw, 'dora', 'admin');
    const s = await login(gw, 'dora', PASSWORD);
    assert.equal((await call(gw, 'GET', '/endpoints', { session: s })).status, 200);
    const r = await call(gw, 'PUT', '/users/dora', { session: owner, body: { disabled: true } });
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.disabled, true);
    const after = await call(gw, 'GET', '/endpoints', { session: s });
    assert.equal(after.status, 401, show(after));
    const again = await call(gw, 'POST', '/auth/login', { body: { username: 'dora', password: PASSWORD } });
    assert.equal(again.status, 401, show(again));

    const enable = await call(gw, 'PUT', '/users/dora', { session: owner, body: { disabled: false } });
    assert.equal(enable.status, 200, show(enable));
    await login(gw, 'dora', PASSWORD);
  });

  test('users: changing a password ends the sessions; only the new password logs in', async () => {
    await createUser(gw, 'pat', 'auditor');
    const s1 = await login(gw, 'pat', PASSWORD);
    const s2 = await login(gw, 'pat', PASSWORD);
    const newPassword = 'a brand new passphrase';
    const short = await call(gw, 'PUT', '/users/pat', { session: owner, body: { password: 'too-short' } });
    assert.equal(short.status, 400, show(short));
    assert.ok((short.body.error.issues as { path: string }[]).some((i) => i.path === 'password'), show(short));
    assert.equal((await call(gw, 'GET', '/usage', { session: s1 })).status, 200, 'a refused change leaves the sessions alone');

    const r = await call(gw, 'PUT', '/users/pat', { session: owner, body: { password: newPassword } });
    assert.equal(r.status, 200, show(r));
    assert.equal((await call(gw, 'GET', '/usage', { session: s1 })).status, 401);
    assert.equal((await call(gw, 'GET', '/usage', { session: s2 })).status, 401);
    const old = await call(gw, 'POST', '/auth/login', { body: { username: 'pat', password: PASSWORD } });
    assert.equal(old.status, 401, show(old));
    const s3 = await login(gw, 'pat', newPassword);
    assert.equal((await call(gw, 'GET', '/usage', { session: s3 })).status, 200);
    assert.equal((await call(gw, 'GET', '/users', { session: owner })).status, 200, "the owner's own session is untouched");
  });

  test('API tokens: shown once, stored hashed, work as Bearer, record last use, and DELETE revokes them', async () => {
    const created = await call(gw, 'POST', '/tokens', { session: owner, body: { name: 'ci-bot', role: 'auditor' } });
    assert.equal(created.status, 201, show(created));
    const token: string = created.body.token;
    assert.equal(typeof token, 'string');
    assert.ok(token.length >= 32);
    assert.equal(created.body.name, 'ci-bot');
    assert.equal(created.body.role, 'auditor');
    assert.equal(created.body.created_by, 'root');
    assert.equal(created.body.last_used_at, null);

    const list = await call(gw, 'GET', '/tokens', { session: owner });
    assert.equal(list.status, 200, show(list));
    const entry = (list.body.data as Record<string, unknown>[]).find((t) => t.name === 'ci-bot');
    assert.ok(entry, 'listed');
    assert.ok(!('token' in entry), 'the token value is not listed');
    assert.ok(!JSON.stringify(list.body).includes(token), 'the token is shown only once');
    assert.ok(typeof entry.prefix === 'string' && token.startsWith(String(entry.prefix).replace(/…$/, '')), `prefix ${String(entry.prefix)}`);

    const db = openDb(gw);
    try {
      const row = db.prepare('SELECT * FROM admin_tokens WHERE name = ?').get('ci-bot') as Record<string, unknown>;
      assert.ok(row);
      const secretPart = token.slice(String(entry.prefix).replace(/…$/, '').length);
      assert.ok(!JSON.stringify(row).includes(secretPart), 'the database holds a hash, not the token');
    } finally {
      db.close();
    }

    const use = await call(gw, 'GET', '/endpoints', { bearer: token });
    assert.equal(use.status, 200, show(use));
    const write = await call(gw, 'POST', '/teams', { bearer: token, body: { name: 'bot-team' } });
    assert.equal(write.status, 403, `an auditor token cannot write: ${show(write)}`);
    assert.equal(write.body.error.code, 'forbidden');
    await eventually(async () => {
      const l = await call(gw, 'GET', '/tokens', { session: owner });
      const t = (l.body.data as { name: string; last_used_at: string | null }[]).find((x) => x.name === 'ci-bot');
      return t?.last_used_at && Number.isFinite(Date.parse(t.last_used_at));
    }, 'last_used_at to be set');

    const del = await call(gw, 'DELETE', '/tokens/ci-bot', { session: owner });
    assert.equal(del.status, 204, show(del));
    const revoked = await call(gw, 'GET', '/endpoints', { bearer: token });
    assert.equal(revoked.status, 401, show(revoked));
    const gone = await call(gw, 'GET', '/tokens', { session: owner });
    assert.ok(!(gone.body.data as { name: string }[]).some((t) => t.name === 'ci-bot'));
    const wrong = await call(gw, 'GET', '/endpoints', { bearer: 'airlock-admin-not-a-real-token-000000000' });
    assert.equal(wrong.status, 401, show(wrong));
  });

  test('token roles: an auditor cannot create tokens; an admin cannot create an owner token but can create admin ones', async () => {
    await createUser(gw, 'adm', 'admin');
    await createUser(gw, 'aud', 'auditor');
    const adm = await login(gw, 'adm', PASSWORD);
    const aud = await login(gw, 'aud', PASSWORD);

    const byAuditor = await call(gw, 'POST', '/tokens', { session: aud, body: { name: 'aud-tok', role: 'auditor' } });
    assert.equal(byAuditor.status, 403, show(byAuditor));
    const ownerTok = await call(gw, 'POST', '/tokens', { session: adm, body: { name: 'adm-owner-tok', role: 'owner' } });
    assert.equal(ownerTok.status, 403, show(ownerTok));
    assert.equal(ownerTok.body.error.code, 'forbidden');
    const adminTok = await call(gw, 'POST', '/tokens', { session: adm, body: { name: 'adm-admin-tok', role: 'admin' } });
    assert.equal(adminTok.status, 201, show(adminTok));
    // An admin token inherits the same ceiling: it cannot mint an owner token either.
    const escalate = await call(gw, 'POST', '/tokens', { bearer: adminTok.body.token, body: { name: 'escalated', role: 'owner' } });
    assert.equal(escalate.status, 403, show(escalate));
    const names = ((await gw.admin('GET', '/tokens')).body.data as { name: string }[]).map((t) => t.name);
    assert.ok(names.includes('adm-admin-tok'));
    assert.ok(!names.includes('aud-tok') && !names.includes('adm-owner-tok') && !names.includes('escalated'), names.join(','));
  });

  test("a token acts with no more than its creator may do now: demoting, disabling or deleting the creator takes its tokens' access", async () => {
    await createUser(gw, 'temp-admin', 'admin');
    const s = await login(gw, 'temp-admin', PASSWORD);
    const made = await call(gw, 'POST', '/tokens', { session: s, body: { name: 'temp-admin-tok', role: 'admin' } });
    assert.equal(made.status, 201, show(made));
    const tok: string = made.body.token;
    // a token made with that token: its access follows the chain
    const child = await call(gw, 'POST', '/tokens', { bearer: tok, body: { name: 'temp-admin-child', role: 'auditor' } });
    assert.equal(child.status, 201, show(child));
    const childTok: string = child.body.token;
    const write = (bearer: string, name: string) => call(gw, 'POST', '/teams', { bearer, body: { name } });
    assert.equal((await write(tok, 'by-temp-1')).status, 201);
    assert.equal((await call(gw, 'GET', '/endpoints', { bearer: childTok })).status, 200);

    // demoted to auditor: the admin token reads but no longer writes
    assert.equal((await call(gw, 'PUT', '/users/temp-admin', { session: owner, body: { role: 'auditor' } })).status, 200);
    const demoted = await write(tok, 'by-temp-2');
    assert.equal(demoted.status, 403, show(demoted));
    assert.equal((await call(gw, 'GET', '/endpoints', { bearer: tok })).status, 200, 'it keeps what the auditor role may do');
    // disabled: no access at all, for the token and the token it made
    assert.equal((await call(gw, 'PUT', '/users/temp-admin', { session: owner, body: { role: 'admin', disabled: true } })).status, 200);
    for (const t of [tok, childTok]) {
      const r = await call(gw, 'GET', '/endpoints', { bearer: t });
      assert.equal(r.status, 401, show(r));
      assert.match(r.body.error.message, /"temp-admin(-tok)?", who created it, is disabled or no longer exists/);
    }
    // enabled again: back, with the creator's role
    assert.equal((await call(gw, 'PUT', '/users/temp-admin', { session: owner, body: { disabled: false } })).status, 200);
    assert.equal((await write(tok, 'by-temp-3')).status, 201);
    // deleted: its tokens are gone, and a new user of the same name does not inherit them
    assert.equal((await call(gw, 'DELETE', '/users/temp-admin', { session: owner })).status, 204);
    assert.equal((await call(gw, 'GET', '/endpoints', { bearer: tok })).status, 401);
    assert.equal((await call(gw, 'GET', '/endpoints', { bearer: childTok })).status, 401);
    await createUser(gw, 'temp-admin', 'admin');
    assert.equal((await call(gw, 'GET', '/endpoints', { bearer: tok })).status, 401, 'not revived by a namesake');
    const names = ((await gw.admin('GET', '/tokens')).body.data as { name: string }[]).map((t) => t.name);
    assert.ok(!names.includes('temp-admin-tok'), names.join(','));
    assert.equal((await call(gw, 'DELETE', '/users/temp-admin', { session: owner })).status, 204);
    // the name AIRLOCK_ADMIN_TOKEN's tokens record as their creator is no account's or token's
    for (const [p, body] of [['/users', { name: 'AIRLOCK_ADMIN_TOKEN', password: PASSWORD, role: 'admin' }], ['/tokens', { name: 'AIRLOCK_ADMIN_TOKEN', role: 'auditor' }]] as const) {
      const r = await call(gw, 'POST', p, { session: owner, body });
      assert.equal(r.status, 400, show(r));
      assert.match(JSON.stringify(r.body), /is reserved/);
    }
  });

  test('roles follow the route, not a name inside it: a key named "users" is an ordinary key', async () => {
    const k = await gw.admin('POST', '/keys', { name: 'users', team: 'research' });
    assert.equal(k.status, 201, show(k));
    const aud = await login(gw, 'aud', PASSWORD);
    const read = await call(gw, 'GET', '/keys/users', { session: aud });
    assert.equal(read.status, 200, `an auditor reads every key: ${show(read)}`);
    const adm = await login(gw, 'adm', PASSWORD);
    const del = await call(gw, 'DELETE', '/keys/users', { session: adm });
    assert.equal(del.status, 204, `an admin deletes keys: ${show(del)}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('route × role matrix', () => {
  let gw: RunningGateway;
  let seq = 0;

  interface Who {
    who: string;
    role: Role | null;
    creds: () => CallOpts;
  }
  const sessions = new Map<string, Session>();
  const tokens = new Map<Role, string>();
  const WHO: Who[] = [
    { who: 'owner session', role: 'owner', creds: () => ({ session: sessions.get('owner1')! }) },
    { who: 'admin session', role: 'admin', creds: () => ({ session: sessions.get('admin1')! }) },
    { who: 'auditor session', role: 'auditor', creds: () => ({ session: sessions.get('aud1')! }) },
    { who: 'owner API token', role: 'owner', creds: () => ({ bearer: tokens.get('owner')! }) },
    { who: 'admin API token', role: 'admin', creds: () => ({ bearer: tokens.get('admin')! }) },
    { who: 'auditor API token', role: 'auditor', creds: () => ({ bearer: tokens.get('auditor')! }) },
    { who: 'AIRLOCK_ADMIN_TOKEN', role: 'owner', creds: () => ({ bearer: ADMIN_TOKEN }) },
    { who: 'no credentials', role: null, creds: () => ({}) },
  ];

  /** Checks with AIRLOCK_ADMIN_TOKEN whether a refused/allowed write took effect. */
  const names = async (p: string) => ((await gw.admin('GET', p)).body.data as { name: string }[]).map((x) => x.name);

  interface Route {
    method: string;
    route: string;
    /** the least role the contract allows (reads: auditor; writes: admin; /users writes: owner; /users reads and /tokens: admin) */
    need: Role;
    /** status when allowed */
    ok: number;
    path?: (n: number) => string;
    body?: (n: number) => unknown;
    prepare?: (n: number) => Promise<void>;
    /** did the request take effect? */
    applied?: (n: number) => Promise<boolean>;
  }
  const ROUTES: Route[] = [
    { method: 'GET', route: '/endpoints', need: 'auditor', ok: 200 },
    {
      method: 'POST',
      route: '/endpoints',
      need: 'admin',
      ok: 201,
      body: (n) => ({ name: `ep-${n}`, base_url: 'http://127.0.0.1:9/v1', health_check: { enabled: false } }),
      applied: async (n) => (await names('/endpoints')).includes(`ep-${n}`),
    },
    {
      method: 'PUT',
      route: '/models/:name',
      need: 'admin',
      ok: 200,
      path: () => '/models/chat',
      body: (n) => ({ targets: [{ endpoint: 'gpu-1', model: `model-${n}` }] }),
      applied: async (n) => (await gw.admin('GET', '/models/chat')).body.targets[0].model === `model-${n}`,
    },
    {
      method: 'DELETE',
      route: '/keys/:name',
      need: 'admin',
      ok: 204,
      path: (n) => `/keys/key-${n}`,
      prepare: async (n) => assert.equal((await gw.admin('POST', '/keys', { name: `key-${n}`, team: 'research' })).status, 201),
      applied: async (n) => !(await names('/keys')).includes(`key-${n}`),
    },
    { method: 'GET', route: '/usage', need: 'auditor', ok: 200 },
    { method: 'GET', route: '/config', need: 'auditor', ok: 200 },
    {
      method: 'POST',
      route: '/config/apply?dry_run=true',
      need: 'admin',
      ok: 200,
      body: (n) => ({ teams: [{ name: 'research' }, { name: `dry-${n}` }] }),
      applied: async (n) => (await names('/teams')).includes(`dry-${n}`), // a dry run never applies
    },
    {
      // (a part of the settings: PATCH; PUT takes the whole document)
      method: 'PATCH',
      route: '/settings',
      need: 'admin',
      ok: 200,
      body: (n) => ({ admin_session_hours: 100 + n }),
      applied: async (n) => (await gw.admin('GET', '/settings')).body.admin_session_hours === 100 + n,
    },
    { method: 'GET', route: '/users', need: 'auditor', ok: 200 },
    {
      method: 'POST',
      route: '/users',
      need: 'owner',
      ok: 201,
      body: (n) => ({ name: `u-${n}`, password: PASSWORD, role: 'auditor' }),
      applied: async (n) => (await names('/users')).includes(`u-${n}`),
    },
    {
      method: 'PUT',
      route: '/users/:name',
      need: 'owner',
      ok: 200,
      path: (n) => `/users/pu-${n}`,
      body: () => ({ role: 'admin' }),
      prepare: (n) => createUser(gw, `pu-${n}`, 'auditor'),
      applied: async (n) => ((await gw.admin('GET', '/users')).body.data as { name: string; role: string }[]).some((u) => u.name === `pu-${n}` && u.role === 'admin'),
    },
    {
      method: 'DELETE',
      route: '/users/:name',
      need: 'owner',
      ok: 204,
      path: (n) => `/users/d-${n}`,
      prepare: (n) => createUser(gw, `d-${n}`, 'auditor'),
      applied: async (n) => !(await names('/users')).includes(`d-${n}`),
    },
    { method: 'GET', route: '/tokens', need: 'admin', ok: 200 },
    {
      method: 'POST',
      route: '/tokens',
      need: 'admin',
      ok: 201,
      body: (n) => ({ name: `tk-${n}`, role: 'auditor' }),
      applied: async (n) => (await names('/tokens')).includes(`tk-${n}`),
    },
    {
      // the token was made with AIRLOCK_ADMIN_TOKEN (an owner): an admin may revoke only its own
      method: 'DELETE',
      route: '/tokens/:name',
      need: 'owner',
      ok: 204,
      path: (n) => `/tokens/del-${n}`,
      prepare: async (n) => assert.equal((await gw.admin('POST', '/tokens', { name: `del-${n}`, role: 'auditor' })).status, 201),
      applied: async (n) => !(await names('/tokens')).includes(`del-${n}`),
    },
  ];

  before(async () => {
    gw = await startGateway({ config: endpointsConfig });
    await createUser(gw, 'owner1', 'owner');
    await createUser(gw, 'admin1', 'admin');
    await createUser(gw, 'aud1', 'auditor');
    for (const u of ['owner1', 'admin1', 'aud1']) sessions.set(u, await login(gw, u, PASSWORD));
    for (const role of ['owner', 'admin', 'auditor'] as const) {
      const r = await gw.admin('POST', '/tokens', { name: `matrix-${role}`, role });
      assert.equal(r.status, 201, show(r));
      tokens.set(role, r.body.token);
    }
  });
  after(async () => {
    await gw?.stop();
  });

  for (const r of ROUTES) {
    describe(`${r.method} ${r.route} (contract: ${r.need} and above)`, () => {
      for (const w of WHO) {
        const allowed = w.role !== null && RANK[w.role] >= RANK[r.need];
        const expect = allowed ? String(r.ok) : w.role === null ? '401' : '403 forbidden';
        test(`${w.who} → ${expect}`, async () => {
          const n = ++seq;
          await r.prepare?.(n);
          const res = await call(gw, r.method, r.path ? r.path(n) : r.route, { ...w.creds(), ...(r.body ? { body: r.body(n) } : {}) });
          if (allowed) {
            assert.equal(res.status, r.ok, show(res));
          } else if (w.role === null) {
            assert.equal(res.status, 401, show(res));
            assert.equal(res.body.error.type, 'authentication_error');
          } else {
            assert.equal(res.status, 403, show(res));
            assert.equal(res.body.error.code, 'forbidden');
          }
          if (r.applied) {
            const dryRun = r.route.includes('dry_run=true');
            assert.equal(await r.applied(n), allowed && !dryRun, allowed ? 'the change took effect' : 'a refused change changed nothing');
          }
        });
      }
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('Host and Origin checks with the admin plane bound to 0.0.0.0', () => {
  let gw: RunningGateway;
  let port = 0;

  /** A raw request to 127.0.0.1:port with the Host/Origin headers we choose. */
  function raw(method: string, p: string, headers: Record<string, string>, body?: unknown): Promise<{ status: number; body: any }> {
    return new Promise((resolve, reject) => {
      const data = body === undefined ? undefined : JSON.stringify(body);
      const req = http.request(
        {
          host: '127.0.0.1',
          port,
          method,
          path: p,
          headers: { ...headers, ...(data ? { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(data)) } : {}) },
        },
        (res) => {
          let text = '';
          res.on('data', (d: Buffer) => (text += d.toString()));
          res.on('end', () => {
            let parsed: any = text;
            try {
              parsed = text ? JSON.parse(text) : undefined;
            } catch {
              /* keep text */
            }
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
        },
      );
      req.on('error', reject);
      req.end(data);
    });
  }

  before(async () => {
    gw = await startGateway({ config: endpointsConfig, args: ['--admin-host', '0.0.0.0'] });
    port = Number(new URL(gw.adminUrl).port);
    assert.match(gw.adminUrl, /^http:\/\/0\.0\.0\.0:\d+$/, 'the admin plane really is bound to every interface');
  });
  after(async () => {
    await gw?.stop();
  });

  test('the printed first-run setup URL names a host the admin plane answers to', async () => {
    const m = /^airlock: first-run setup: open (\S+)\/setup\?token=(\S+)$/m.exec(gw.stdout());
    assert.ok(m, gw.stdout());
    const url = new URL(m[1]!);
    assert.equal(Number(url.port), port);
    const r = await raw('GET', `${API}/auth/state`, { host: url.host });
    assert.equal(r.status, 200, `Host ${url.host} (from the printed URL): ${r.status} ${JSON.stringify(r.body)}`);
    assert.equal(r.body.setup_required, true);
    const u = await raw('POST', `${API}/users`, { authorization: `Bearer ${ADMIN_TOKEN}`, host: url.host }, { name: 'root', password: PASSWORD, role: 'owner' });
    assert.equal(u.status, 201, JSON.stringify(u.body));
  });

  test('a foreign Host header is refused with 421 (DNS rebinding), known names are answered', async () => {
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}` };
    for (const host of ['attacker.example', `attacker.example:${port}`]) {
      const r = await raw('GET', `${API}/endpoints`, { ...auth, host });
      assert.equal(r.status, 421, `Host ${host}: ${r.status} ${JSON.stringify(r.body)}`);
      const s = await raw('GET', `${API}/auth/state`, { host });
      assert.equal(s.status, 421, `public routes too, Host ${host}`);
      const app = await raw('GET', '/', { host });
      assert.equal(app.status, 421, `the admin app too, Host ${host}`);
    }
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`]) {
      const r = await raw('GET', `${API}/endpoints`, { ...auth, host });
      assert.equal(r.status, 200, `Host ${host}: ${r.status} ${JSON.stringify(r.body)}`);
    }
  });

  test('a change from a foreign Origin is refused with 403 even with valid credentials; the own origin works', async () => {
    const host = `127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${ADMIN_TOKEN}`, host };
    const bad = await raw('POST', `${API}/teams`, { ...auth, origin: 'http://attacker.example' }, { name: 'from-attacker' });
    assert.equal(bad.status, 403, JSON.stringify(bad.body));
    const badLogin = await raw('POST', `${API}/auth/login`, { host, origin: 'http://attacker.example' }, { username: 'root', password: PASSWORD });
    assert.equal(badLogin.status, 403, `login from a foreign origin: ${JSON.stringify(badLogin.body)}`);
    assert.equal(badLogin.body.error.code, 'origin_not_allowed');
    const teams = await raw('GET', `${API}/teams`, auth);
    assert.equal(teams.status, 200);
    assert.ok(!(teams.body.data as { name: string }[]).some((t) => t.name === 'from-attacker'));

    const good = await raw('POST', `${API}/teams`, { ...auth, origin: `http://127.0.0.1:${port}` }, { name: 'from-self' });
    assert.equal(good.status, 201, JSON.stringify(good.body));
    const login = await raw('POST', `${API}/auth/login`, { host, origin: `http://127.0.0.1:${port}` }, { username: 'root', password: PASSWORD });
    assert.equal(login.status, 200, `login from the own origin: ${JSON.stringify(login.body)}`);
    const local = await raw('POST', `${API}/teams`, { authorization: `Bearer ${ADMIN_TOKEN}`, host: `localhost:${port}`, origin: `http://localhost:${port}` }, { name: 'from-localhost' });
    assert.equal(local.status, 201, JSON.stringify(local.body));
  });
});
