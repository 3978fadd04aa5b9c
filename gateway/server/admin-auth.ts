// Admin accounts: first-run setup, password login with session cookies and CSRF tokens,
// lockout after failed logins, roles (owner > admin > auditor), and API tokens.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { createHash, randomBytes, scrypt as scryptCb, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { z } from 'zod';
import type { DB } from '../store/db.js';
import type { Gateway } from './gateway.js';
import {
  ROLES,
  MIN_PASSWORD,
  setupSchema,
  loginSchema,
  userCreateSchema,
  userUpdateSchema,
  tokenCreateSchema,
  passwordChangeSchema,
  type Role,
} from '../config/admin-schema.js';
import type { Access, AdminUser, ApiToken } from '../wire.js';

export { ROLES, MIN_PASSWORD, setupSchema, loginSchema, userCreateSchema, userUpdateSchema, tokenCreateSchema, passwordChangeSchema, type Role };
export const roleRank = (r: Role) => ROLES.indexOf(r);
/** the principal name of AIRLOCK_ADMIN_TOKEN (a token it creates names it as its creator) */
const ENV_TOKEN_NAME = 'AIRLOCK_ADMIN_TOKEN';

export const SESSION_COOKIE = 'airlock_session';

export interface Principal {
  kind: 'env-token' | 'token' | 'session';
  name: string;
  role: Role;
  csrf?: string;
  sessionHash?: string;
  /** a session signed in with a one-time password: only a password change is allowed */
  mustChangePassword?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the route a session signed in with a one-time password may still use (POST /auth/password) */
    passwordChange?: boolean;
  }
}

/** Thrown by auth code; admin-plane maps it to its error shape. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly issues: { path: (string | number)[]; message: string }[] = [],
  ) {
    super(message);
  }
}

// ---- passwords (scrypt) ----

const SCRYPT = { N: 16384, r: 8, p: 1, keylen: 32 };
function scrypt(password: string, salt: Buffer, keylen: number, opts: ScryptOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => scryptCb(password, salt, keylen, opts, (err, key) => (err ? reject(err) : resolve(key))));
}

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scrypt(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: 64 * 1024 * 1024 });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [alg, n, r, p, salt, key] = stored.split('$');
  if (alg !== 'scrypt' || !salt || !key) return false;
  const expected = Buffer.from(key, 'base64');
  const got = await scrypt(password, Buffer.from(salt, 'base64'), expected.length, { N: Number(n), r: Number(r), p: Number(p), maxmem: 64 * 1024 * 1024 });
  return got.length === expected.length && timingSafeEqual(got, expected);
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
function safeEqual(a: string, b: string): boolean {
  return timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
}

export function parseCookies(header: string | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (!header) return out;
  for (const part of header.split(';')) {
    const i = part.indexOf('=');
    if (i < 0) continue;
    const k = part.slice(0, i).trim();
    const v = part.slice(i + 1).trim();
    if (k) {
      try {
        out[k] = decodeURIComponent(v);
      } catch {
        out[k] = v;
      }
    }
  }
  return out;
}

/** Who may call an admin route: anyone ('public'), or the least role. Declared on each route. */
export type { Access };

interface UserRow {
  name: string;
  password_hash: string;
  role: Role;
  disabled: number;
  failed_logins: number;
  locked_until: number | null;
  created_at: number;
  must_change_password: number;
}

export function userView(u: UserRow): AdminUser {
  return {
    name: u.name,
    role: u.role,
    disabled: !!u.disabled,
    created_at: new Date(u.created_at).toISOString(),
    locked_until: u.locked_until && u.locked_until > Date.now() ? new Date(u.locked_until).toISOString() : null,
  };
}

export class AdminAuth {
  /** One-time token for first-run setup; undefined once an owner exists. */
  setupToken: string | undefined;
  private lastSeenWrite = new Map<string, number>();

  constructor(private readonly gw: Gateway) {
    if (!this.hasOwner()) this.setupToken = randomBytes(18).toString('base64url');
  }

  private get db(): DB {
    return this.gw.db;
  }

  /** True until an owner exists (made by setup, or by POST /users with AIRLOCK_ADMIN_TOKEN). */
  setupRequired(): boolean {
    if (this.setupToken && this.hasOwner()) this.setupToken = undefined;
    return !!this.setupToken;
  }

  hasOwner(): boolean {
    return !!this.db.prepare(`SELECT 1 FROM admin_users WHERE role = 'owner' AND disabled = 0 LIMIT 1`).get();
  }

  user(name: string): UserRow | undefined {
    return this.db.prepare(`SELECT * FROM admin_users WHERE name = ?`).get(name) as UserRow | undefined;
  }

  users(): UserRow[] {
    return this.db.prepare(`SELECT * FROM admin_users ORDER BY created_at, name`).all() as UserRow[];
  }

  /** The principal of an "Authorization: Bearer <admin token>" header, or undefined for a wrong
   * one; throws only the 429 AuthError of an address that sent too many wrong ones. */
  bearer(auth: string | undefined, from = 'unknown'): Principal | undefined {
    if (!auth) return undefined;
    try {
      return this.identifyBearer(auth, from);
    } catch (e) {
      if (e instanceof AuthError && e.status === 429) throw e;
      return undefined;
    }
  }

  /** A bearer token, counted against its address like a login (throttleAddress): a wrong token is
   * a failed sign-in, and an address past the limit gets 429 whatever it sends, so guessing
   * AIRLOCK_ADMIN_TOKEN or an API token is as slow as guessing a password. */
  private identifyBearer(auth: string, from: string): Principal {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    // (a malformed header names no token: nothing is checked, so it is no guess to count)
    if (!m) throw new AuthError(401, 'invalid_token', 'The Authorization header must be "Bearer <token>".');
    const address = this.throttleAddress(this.bearerFailures, 'wrong admin tokens', from, Date.now());
    const p = this.checkBearer(m[1]!);
    address.ok();
    return p;
  }

  private checkBearer(token: string): Principal {
    const envToken = this.gw.opts.adminToken;
    if (envToken && safeEqual(token, envToken)) return { kind: 'env-token', name: ENV_TOKEN_NAME, role: 'owner' };
    const row = this.db.prepare(`SELECT name, role, created_by FROM admin_tokens WHERE hash = ?`).get(this.gw.secrets.hashKey('admin-token:' + token)) as
      | { name: string; role: Role; created_by: string }
      | undefined;
    if (!row) throw new AuthError(401, 'invalid_token', 'The admin token is not valid (unknown or revoked).');
    const role = this.tokenRole(row.role, row.created_by);
    if (!role)
      throw new AuthError(401, 'invalid_token', `The admin token "${row.name}" is no longer valid: "${row.created_by}", who created it, is disabled or no longer exists.`);
    this.touch(`t:${row.name}`, () => this.db.prepare(`UPDATE admin_tokens SET last_used_at = ? WHERE name = ?`).run(Date.now(), row.name));
    return { kind: 'token', name: row.name, role };
  }

  /**
   * A token acts with no more than its creator may do now: the lower of its own role and its
   * creator's current one. A creator that is disabled or gone (a user, or the token a token was
   * made with) takes its tokens' access with it; AIRLOCK_ADMIN_TOKEN's tokens keep theirs.
   * undefined: no access.
   */
  private tokenRole(role: Role, creator: string, depth = 0): Role | undefined {
    if (creator === ENV_TOKEN_NAME) return role;
    const lower = (other: Role) => (roleRank(other) < roleRank(role) ? other : role);
    const user = this.db.prepare(`SELECT role, disabled FROM admin_users WHERE name = ?`).get(creator) as { role: Role; disabled: number } | undefined;
    if (user) return user.disabled ? undefined : lower(user.role);
    const parent = this.db.prepare(`SELECT role, created_by FROM admin_tokens WHERE name = ?`).get(creator) as { role: Role; created_by: string } | undefined;
    if (!parent || depth >= 8) return undefined;
    const r = this.tokenRole(parent.role, parent.created_by, depth + 1);
    return r && lower(r);
  }

  /** Who is calling? undefined when nobody (public routes decide for themselves). */
  identify(req: FastifyRequest): Principal | undefined {
    const auth = req.headers.authorization;
    if (typeof auth === 'string' && auth) return this.identifyBearer(auth, req.socket.remoteAddress ?? 'unknown');
    const sid = parseCookies(req.headers.cookie)[SESSION_COOKIE];
    if (!sid) return undefined;
    const h = sha256(sid);
    const row = this.db
      .prepare(`SELECT s.user, s.csrf, s.expires_at, u.role, u.disabled, u.must_change_password FROM admin_sessions s JOIN admin_users u ON u.name = s.user WHERE s.id_hash = ?`)
      .get(h) as { user: string; csrf: string; expires_at: number; role: Role; disabled: number; must_change_password: number } | undefined;
    if (!row || row.disabled || row.expires_at <= Date.now()) return undefined;
    this.touch(`s:${h}`, () => this.db.prepare(`UPDATE admin_sessions SET last_seen_at = ? WHERE id_hash = ?`).run(Date.now(), h));
    return { kind: 'session', name: row.user, role: row.role, csrf: row.csrf, sessionHash: h, ...(row.must_change_password ? { mustChangePassword: true } : {}) };
  }

  /** Write "last used" at most once a minute per principal: keeps reads off the write path. */
  private touch(key: string, write: () => void): void {
    const now = Date.now();
    if ((this.lastSeenWrite.get(key) ?? 0) + 60_000 > now) return;
    this.lastSeenWrite.set(key, now);
    write();
  }

  /** Authorise a request to an admin route that needs at least `need` (throws AuthError). */
  authorize(req: FastifyRequest, p: Principal | undefined, need: Role): void {
    if (!p) {
      throw new AuthError(
        401,
        this.setupRequired() ? 'setup_required' : 'unauthenticated',
        this.setupToken
          ? 'No owner account exists yet: finish first-run setup with the token airlock serve printed, or send "Authorization: Bearer <AIRLOCK_ADMIN_TOKEN>".'
          : 'Log in, or send "Authorization: Bearer <token>" (an API token or AIRLOCK_ADMIN_TOKEN).',
      );
    }
    const method = req.method;
    if (p.kind === 'session' && method !== 'GET' && method !== 'HEAD') {
      const sent = req.headers['x-csrf-token'];
      if (typeof sent !== 'string' || !p.csrf || !safeEqual(sent, p.csrf))
        throw new AuthError(403, 'csrf_failed', 'Missing or wrong x-csrf-token header for a change made with a login session.');
    }
    if (p.mustChangePassword && (req.routeOptions.config as { passwordChange?: boolean } | undefined)?.passwordChange !== true)
      throw new AuthError(403, 'password_change_required', `"${p.name}" signed in with a one-time password: choose a new one first (POST /auth/password, or the form the admin app shows).`);
    if (roleRank(p.role) < roleRank(need))
      throw new AuthError(403, 'forbidden', `The ${p.role} role may not ${method === 'GET' ? 'read' : 'change'} this (needs ${need}).`);
  }

  /** A signed-in user chooses its own new password (the current one proves it is them): the
   * one-time mark is cleared and its other sessions end; this one stays. */
  async changeOwnPassword(p: Principal | undefined, body: z.infer<typeof passwordChangeSchema>): Promise<void> {
    if (!p || p.kind !== 'session') throw new AuthError(400, 'session_required', 'Only a signed-in user changes its own password (an API token has none).');
    const u = this.user(p.name);
    if (!u) throw new AuthError(401, 'unauthenticated', 'Log in again.');
    if (!(await verifyPassword(body.current_password, u.password_hash)))
      throw new AuthError(400, 'validation_failed', 'current_password: is not the current password', {}, [{ path: ['current_password'], message: 'is not the current password' }]);
    const hash = await hashPassword(body.new_password);
    this.db.transaction(() => {
      this.db.prepare(`UPDATE admin_users SET password_hash = ?, must_change_password = 0, updated_at = ? WHERE name = ?`).run(hash, Date.now(), p.name);
      this.db.prepare(`DELETE FROM admin_sessions WHERE user = ? AND id_hash != ?`).run(p.name, p.sessionHash ?? '');
    })();
  }

  async setup(body: z.infer<typeof setupSchema>): Promise<{ user: UserRow; session: { cookie: string; csrf: string } }> {
    if (!this.setupToken || this.hasOwner()) throw new AuthError(409, 'already_set_up', 'An owner account exists already; log in instead.');
    if (!safeEqual(body.setup_token, this.setupToken)) throw new AuthError(403, 'invalid_setup_token', 'The setup token is not valid; use the one airlock serve printed at this start.');
    const now = Date.now();
    const hash = await hashPassword(body.password);
    if (this.hasOwner()) throw new AuthError(409, 'already_set_up', 'An owner account exists already; log in instead.');
    this.db.prepare(`INSERT INTO admin_users (name, password_hash, role, created_at, updated_at) VALUES (?, ?, 'owner', ?, ?)`).run(body.username, hash, now, now);
    this.setupToken = undefined;
    return { user: this.user(body.username)!, session: this.newSession(body.username) };
  }

  /** Failed logins, and wrong bearer tokens, per client address in the current window (bounded;
   * see throttleAddress). Counted apart: a mistyped password in a browser does not lock out the
   * automation's token behind the same address, nor the other way round. */
  private addressFailures = new Map<string, { count: number; resetAt: number }>();
  private bearerFailures = new Map<string, { count: number; resetAt: number }>();

  /** Count an attempt (a login, or a bearer token) from an address before anything is checked;
   * refuse when too many recent attempts from there failed (4 × admin_max_failed_logins per
   * lockout window). */
  private throttleAddress(failures: Map<string, { count: number; resetAt: number }>, what: string, from: string, now: number): { ok(): void } {
    const s = this.gw.snapshot.settings;
    const limit = 4 * s.admin_max_failed_logins;
    let e = failures.get(from);
    if (!e || e.resetAt <= now) {
      if (failures.size >= 10_000) {
        for (const [k, v] of failures) if (v.resetAt <= now) failures.delete(k);
        if (failures.size >= 10_000) failures.delete(failures.keys().next().value!);
      }
      e = { count: 0, resetAt: now + s.admin_lockout_minutes * 60_000 };
      failures.set(from, e);
    }
    if (e.count >= limit) {
      const secs = Math.ceil((e.resetAt - now) / 1000);
      throw new AuthError(429, 'too_many_attempts', `Too many ${what} from ${from}; try again in ${Math.ceil(secs / 60)} minute(s).`, { 'retry-after': String(secs) });
    }
    e.count++; // counted now; taken back only if the login succeeds
    const entry = e;
    return {
      ok: () => {
        entry.count = Math.max(0, entry.count - 1);
      },
    };
  }

  async login(body: z.infer<typeof loginSchema>, from = 'unknown'): Promise<{ user: UserRow; session: { cookie: string; csrf: string } }> {
    const s = this.gw.snapshot.settings;
    const now = Date.now();
    const address = this.throttleAddress(this.addressFailures, 'failed logins', from, now);
    const u = this.user(body.username);
    if (!u) {
      await hashPassword(body.password); // same cost as a real check: no user enumeration by timing
      await delay(250);
      throw new AuthError(401, 'invalid_credentials', 'Wrong user name or password.');
    }
    const lockedMessage = (until: number) => {
      const secs = Math.ceil((until - Date.now()) / 1000);
      return new AuthError(423, 'account_locked', `Account "${u.name}" is locked after ${s.admin_max_failed_logins} failed logins; try again in ${Math.ceil(secs / 60)} minute(s) or ask an owner to unlock it.`, { 'retry-after': String(Math.max(1, secs)) });
    };
    if (u.locked_until && u.locked_until > now) throw lockedMessage(u.locked_until);
    // Count the attempt before the (slow, asynchronous) password check: parallel guesses each see
    // the count of those before them, so at most admin_max_failed_logins of them are ever checked.
    const attempt = this.db.prepare(`UPDATE admin_users SET failed_logins = failed_logins + 1 WHERE name = ? RETURNING failed_logins, locked_until`).get(u.name) as
      | { failed_logins: number; locked_until: number | null }
      | undefined;
    if (!attempt) throw new AuthError(401, 'invalid_credentials', 'Wrong user name or password.');
    if (attempt.locked_until && attempt.locked_until > now) throw lockedMessage(attempt.locked_until);
    if (attempt.failed_logins > s.admin_max_failed_logins) {
      const until = now + s.admin_lockout_minutes * 60_000;
      this.db.prepare(`UPDATE admin_users SET failed_logins = 0, locked_until = ? WHERE name = ?`).run(until, u.name);
      this.recordLockout(u.name, from, until, attempt.failed_logins);
      throw lockedMessage(until);
    }
    const ok = !u.disabled && (await verifyPassword(body.password, u.password_hash));
    if (!ok) {
      const failed = attempt.failed_logins;
      const locked = failed >= s.admin_max_failed_logins ? Date.now() + s.admin_lockout_minutes * 60_000 : null;
      if (locked) {
        this.db.prepare(`UPDATE admin_users SET failed_logins = 0, locked_until = ? WHERE name = ?`).run(locked, u.name);
        this.recordLockout(u.name, from, locked, failed);
      }
      // Growing delay: 250 ms, 500 ms, 1 s, ... up to 4 s.
      await delay(Math.min(250 * 2 ** (failed - 1), 4000));
      if (locked)
        throw new AuthError(423, 'account_locked', `Account "${u.name}" is now locked for ${s.admin_lockout_minutes} minute(s) after ${s.admin_max_failed_logins} failed logins.`, { 'retry-after': String(s.admin_lockout_minutes * 60) });
      throw new AuthError(401, 'invalid_credentials', u.disabled ? 'This account is disabled.' : 'Wrong user name or password.');
    }
    address.ok();
    this.db.prepare(`UPDATE admin_users SET failed_logins = 0, locked_until = NULL WHERE name = ?`).run(u.name);
    return { user: u, session: this.newSession(u.name) };
  }

  /** A lockout is an audit record of its own (auth.lockout), besides the refused login's. */
  private recordLockout(user: string, from: string, until: number, failed: number): void {
    const s = this.gw.snapshot.settings;
    try {
      this.gw.audit.append({
        kind: 'auth.lockout',
        actor: `user:${user}`,
        source: from,
        data: { action: 'account locked after failed logins', user, failed_logins: failed, max_failed_logins: s.admin_max_failed_logins, locked_until: new Date(until).toISOString(), minutes: s.admin_lockout_minutes },
      });
    } catch (e) {
      this.gw.log(`audit: could not record the lockout of ${user}: ${(e as Error).message}`);
    }
  }

  private newSession(user: string): { cookie: string; csrf: string } {
    const id = randomBytes(32).toString('base64url');
    const csrf = randomBytes(24).toString('base64url');
    const now = Date.now();
    const hours = this.gw.snapshot.settings.admin_session_hours;
    this.db.prepare(`DELETE FROM admin_sessions WHERE expires_at <= ?`).run(now);
    this.db.prepare(`INSERT INTO admin_sessions (id_hash, user, csrf, created_at, expires_at, last_seen_at) VALUES (?, ?, ?, ?, ?, ?)`).run(sha256(id), user, csrf, now, now + hours * 3_600_000, now);
    return { cookie: id, csrf };
  }

  logout(p: Principal | undefined): void {
    if (p?.sessionHash) this.db.prepare(`DELETE FROM admin_sessions WHERE id_hash = ?`).run(p.sessionHash);
  }

  cookie(value: string, secure: boolean, maxAgeSeconds: number): string {
    return `${SESSION_COOKIE}=${value}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${maxAgeSeconds}${secure ? '; Secure' : ''}`;
  }

  // ---- users ----

  async createUser(body: z.infer<typeof userCreateSchema>): Promise<UserRow> {
    if (this.user(body.name)) throw new AuthError(409, 'already_exists', `An admin user named "${body.name}" already exists.`);
    const now = Date.now();
    const hash = await hashPassword(body.password);
    this.db.prepare(`INSERT INTO admin_users (name, password_hash, role, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`).run(body.name, hash, body.role, now, now);
    return this.user(body.name)!;
  }

  async updateUser(name: string, body: z.infer<typeof userUpdateSchema>): Promise<UserRow> {
    const u = this.user(name);
    if (!u) throw new AuthError(404, 'not_found', `No admin user named "${name}".`);
    if ((body.role && body.role !== 'owner') || body.disabled) this.keepAnOwner(name);
    const hash = body.password ? await hashPassword(body.password) : u.password_hash;
    this.db
      .prepare(`UPDATE admin_users SET role = ?, password_hash = ?, disabled = ?, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE name = ?`)
      .run(body.role ?? u.role, hash, body.disabled === undefined ? u.disabled : body.disabled ? 1 : 0, Date.now(), name);
    if (body.password || body.disabled || (body.role && body.role !== u.role)) this.db.prepare(`DELETE FROM admin_sessions WHERE user = ?`).run(name);
    return this.user(name)!;
  }

  deleteUser(name: string): void {
    if (!this.user(name)) throw new AuthError(404, 'not_found', `No admin user named "${name}".`);
    this.keepAnOwner(name);
    // its tokens go with it (a later user of the same name does not inherit them)
    this.db.transaction(() => {
      this.db.prepare(`DELETE FROM admin_tokens WHERE created_by = ?`).run(name);
      this.db.prepare(`DELETE FROM admin_users WHERE name = ?`).run(name);
    })();
  }

  private keepAnOwner(changing: string): void {
    const owners = this.db.prepare(`SELECT name FROM admin_users WHERE role = 'owner' AND disabled = 0`).pluck().all() as string[];
    if (owners.length === 1 && owners[0] === changing) throw new AuthError(409, 'last_owner', `"${changing}" is the last owner; make another user owner first.`);
  }

  // ---- API tokens ----

  tokens(): ApiToken[] {
    return (this.db.prepare(`SELECT name, prefix, role, created_by, created_at, last_used_at FROM admin_tokens ORDER BY created_at, name`).all() as {
      name: string;
      prefix: string;
      role: Role;
      created_by: string;
      created_at: number;
      last_used_at: number | null;
    }[]).map((t) => ({ ...t, created_at: new Date(t.created_at).toISOString(), last_used_at: t.last_used_at ? new Date(t.last_used_at).toISOString() : null }));
  }

  createToken(body: z.infer<typeof tokenCreateSchema>, by: Principal): { token: string } {
    if (roleRank(body.role) > roleRank(by.role)) throw new AuthError(403, 'forbidden', `A ${by.role} may not create a token with the ${body.role} role.`);
    if (this.db.prepare(`SELECT 1 FROM admin_tokens WHERE name = ?`).get(body.name)) throw new AuthError(409, 'already_exists', `A token named "${body.name}" already exists.`);
    const token = 'airlock-admin-' + randomBytes(24).toString('base64url');
    this.db
      .prepare(`INSERT INTO admin_tokens (name, hash, prefix, role, created_by, created_at) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(body.name, this.gw.secrets.hashKey('admin-token:' + token), token.slice(0, 18) + '…', body.role, by.name, Date.now());
    return { token };
  }

  /** An owner may revoke any token; an admin only the tokens that admin created. */
  deleteToken(name: string, by: Principal): void {
    const t = this.db.prepare(`SELECT role, created_by FROM admin_tokens WHERE name = ?`).get(name) as { role: Role; created_by: string } | undefined;
    if (!t) throw new AuthError(404, 'not_found', `No token named "${name}".`);
    if (by.role !== 'owner' && t.created_by !== by.name)
      throw new AuthError(403, 'forbidden', `Only an owner or its creator ("${t.created_by}") may revoke the token "${name}"; you are the ${by.role} "${by.name}".`);
    this.db.prepare(`DELETE FROM admin_tokens WHERE name = ?`).run(name);
  }
}

function delay(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export type { FastifyInstance };
