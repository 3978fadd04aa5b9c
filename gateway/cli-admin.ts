// `airlock endpoints|models|teams list`, `airlock keys disable|enable|revoke NAME` and
// `airlock admin list|reset-password NAME`: what the admin app and API can do, from a shell on
// the server (local access to the data dir is the proof of authority, as for `config apply`).
import { randomBytes } from 'node:crypto';
import { formatIssue } from './config/schema.js';
import { ConfigStore } from './store/config-store.js';
import { openInstall } from './store/install.js';
import { StartupError } from './store/db.js';
import { hashPassword } from './server/admin-auth.js';
import { UsageError, cliActor, dataDirOf, parse } from './cli-args.js';
import { openAudit, redact } from './audit/index.js';
import { MAX_GRACE_SECONDS, rotateKey } from './store/key-rotation.js';

const print = (s: string) => process.stdout.write(s + '\n');

function withStore<T>(dataDir: string, existing: boolean | 'read-only', fn: (store: ConfigStore, db: ReturnType<typeof openInstall>['db'], audit: () => ReturnType<typeof openAudit>) => T): T {
  const { db, secrets } = openInstall(dataDir, { existing: !!existing, readOnly: existing === 'read-only' });
  try {
    return fn(new ConfigStore(db, secrets), db, () => openAudit(db, dataDir, secrets));
  } finally {
    db.close();
  }
}

/** `airlock endpoints|models|teams list [--json]`: tab-separated, one line each. */
export function listCommand(section: 'endpoints' | 'models' | 'teams', argv: string[]): number {
  const [sub, ...rest] = argv;
  if (sub !== 'list') throw new UsageError(`unknown command "${section} ${sub ?? ''}"; try "${section} list"`);
  const { values, positionals } = parse(rest, { json: { type: 'boolean' } });
  if (positionals.length) throw new UsageError(`${section} list takes no arguments`);
  return withStore(dataDirOf(values), 'read-only', (store) => {
    const s = store.state();
    if (section === 'endpoints') {
      const rows = s.endpoints.map((e) => ({
        name: e.name,
        type: e.type,
        base_url: e.base_url,
        api_key: e.api_key_ref ?? (e.api_key_enc ? 'stored (encrypted)' : null),
        max_concurrency: e.max_concurrency ?? null,
      }));
      if (values.json) print(JSON.stringify(rows, null, 2));
      else for (const r of rows) print(`${r.name}\t${r.type}\t${r.base_url}\tapi_key=${r.api_key ?? '-'}\tmax_concurrency=${r.max_concurrency ?? '-'}`);
    } else if (section === 'models') {
      if (values.json) print(JSON.stringify(s.models, null, 2));
      else for (const m of s.models) print(`${m.name}\t${m.strategy ?? 'fallback'}\t${m.targets.map((t) => `${t.endpoint}/${t.model}`).join(',')}`);
    } else {
      const count = (t: string) => s.keys.filter((k) => k.team === t).length;
      if (values.json) print(JSON.stringify(s.teams.map((t) => ({ ...t, keys: count(t.name) })), null, 2));
      else for (const t of s.teams) print(`${t.name}\tkeys=${count(t.name)}`);
    }
    return 0;
  });
}

/** `airlock keys disable|enable|revoke NAME`. */
export function keyStateCommand(op: 'disable' | 'enable' | 'revoke', argv: string[]): number {
  const { values, positionals } = parse(argv, {});
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError(`keys ${op} takes one key NAME`);
  return withStore(dataDirOf(values), true, (store, _db, audit) => {
    const keys = store.export().keys;
    const i = keys.findIndex((k) => k.name === name);
    if (i < 0) {
      const names = keys.map((k) => k.name);
      throw new StartupError(`no key named "${name}"${names.length ? ` (keys: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})` : ' (there are no keys)'}`);
    }
    const key = keys[i]!;
    if (op === 'revoke') keys.splice(i, 1);
    else {
      if (!!key.disabled === (op === 'disable')) {
        print(`key "${name}" is ${op}d already`);
        return 0;
      }
      keys[i] = { ...key, disabled: op === 'disable' ? true : undefined };
    }
    const r = store.apply({ keys }, { source: 'cli' });
    if (!r.ok) throw new StartupError(r.issues.map((x) => formatIssue(x)).join('; '));
    audit().append({ kind: `key.${op}`, actor: cliActor(), source: 'cli', data: { action: `keys ${op}`, key: redact(key) } });
    print(op === 'revoke' ? `key "${name}" revoked: it is refused from now on (a running gateway picks this up within a second)` : `key "${name}" ${op}d`);
    return 0;
  });
}

/** "90", "90s", "30m", "24h" or "7d" as seconds. */
export function parseGrace(v: string): number {
  const m = /^(\d+)\s*([smhd]?)$/i.exec(v.trim());
  const n = m ? Number(m[1]) * ({ '': 1, s: 1, m: 60, h: 3600, d: 86_400 } as Record<string, number>)[m[2]!.toLowerCase()]! : NaN;
  if (!Number.isSafeInteger(n) || n > MAX_GRACE_SECONDS) throw new UsageError(`--grace must be seconds or a time like 30m, 24h or 7d, at most 30d (got "${v}")`);
  return n;
}

/** `airlock keys rotate NAME [--grace 24h]`: the new secret on stdout, shown only this once. */
export function keyRotateCommand(argv: string[]): number {
  const { values, positionals } = parse(argv, { grace: { type: 'string' } });
  const name = positionals[0];
  if (!name || positionals.length > 1) throw new UsageError('keys rotate takes one key NAME');
  const grace = values.grace === undefined ? 0 : parseGrace(values.grace);
  const dataDir = dataDirOf(values);
  const { db, secrets } = openInstall(dataDir, { existing: true });
  try {
    const r = rotateKey(db, secrets, name, grace);
    openAudit(db, dataDir, secrets).append({ kind: 'key.rotate', actor: cliActor(), source: 'cli', data: { action: 'keys rotate', key: name, grace_seconds: grace } });
    print(r.key);
    process.stderr.write(
      `airlock: key "${name}" has a new secret (above, shown only this once); ${r.previous_valid_until === null ? 'the old one is refused from now on' : `the old one keeps working until ${new Date(r.previous_valid_until).toISOString()}`} (a running gateway picks this up within a second)\n`,
    );
    return 0;
  } finally {
    db.close();
  }
}

/** `airlock admin list` and `airlock admin reset-password NAME`. */
export async function adminCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'list') {
    const { values } = parse(rest, {});
    return withStore(dataDirOf(values), 'read-only', (_store, db) => {
      const users = db.prepare(`SELECT name, role, disabled, locked_until FROM admin_users ORDER BY name`).all() as { name: string; role: string; disabled: number; locked_until: number | null }[];
      if (!users.length) print('no admin users yet: finish first-run setup with the link "airlock serve" prints');
      for (const u of users) print(`${u.name}\t${u.role}${u.disabled ? '\tdisabled' : ''}${u.locked_until && u.locked_until > Date.now() ? '\tlocked' : ''}`);
      return 0;
    });
  }
  if (sub === 'reset-password') {
    const { values, positionals } = parse(rest, {});
    const name = positionals[0];
    if (!name || positionals.length > 1) throw new UsageError('admin reset-password takes one admin user NAME');
    const dataDir = dataDirOf(values);
    const { db, secrets } = openInstall(dataDir, { existing: true });
    try {
      const user = db.prepare(`SELECT name, role FROM admin_users WHERE name = ?`).get(name) as { name: string; role: string } | undefined;
      if (!user) {
        const names = db.prepare(`SELECT name FROM admin_users ORDER BY name`).pluck().all() as string[];
        throw new StartupError(`no admin user named "${name}"${names.length ? ` (admin users: ${names.join(', ')})` : ' (there are none yet: use the first-run setup link "airlock serve" prints)'}`);
      }
      const password = randomBytes(15).toString('base64url');
      const hash = await hashPassword(password);
      db.transaction(() => {
        db.prepare(`UPDATE admin_users SET password_hash = ?, must_change_password = 1, disabled = 0, failed_logins = 0, locked_until = NULL, updated_at = ? WHERE name = ?`).run(hash, Date.now(), name);
        db.prepare(`DELETE FROM admin_sessions WHERE user = ?`).run(name);
      })();
      openAudit(db, dataDir, secrets).append({ kind: 'admin.password_reset', actor: cliActor(), source: 'cli', data: { action: 'admin reset-password', user: name, role: user.role } });
      process.stdout.write(password + '\n');
      process.stderr.write(
        `airlock: the password of "${name}" (${user.role}) is reset to the one above, shown only this once; its sessions are signed out, the account is enabled and unlocked. It is for one sign-in: the admin app then asks for a new password (POST /auth/password), and nothing else works until one is chosen.\n`,
      );
      return 0;
    } finally {
      db.close();
    }
  }
  throw new UsageError(`unknown command "admin ${sub ?? ''}"; try "admin list" or "admin reset-password NAME"`);
}
