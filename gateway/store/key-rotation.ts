// Key rotation (issue 15): a key gets a new secret; the old one may stay valid for a grace period
// so apps can switch without an outage. Only the hash of each secret is stored (keys.hash; each
// replaced one in key_retired_secrets with its own valid_until, migrations 22 and 28). A rotation bumps the config version,
// so a running gateway (and the one that rotated) rebuilds its snapshot.
import { bumpConfigVersion, StartupError, type DB } from './db.js';
import { generateKey, keyPrefix, type Secrets } from './secrets.js';

/** The longest grace period: 30 days. */
export const MAX_GRACE_SECONDS = 30 * 86_400;

export interface Rotation {
  name: string;
  key: string;
  prefix: string;
  /** until when the old secret still works (ms since the epoch), null: not at all */
  previous_valid_until: number | null;
}

export class NoSuchKeyError extends StartupError {}
/** The key's secret is a literal of the config file: the file owns it (a rotation would be undone by the next apply). */
export class SecretFromFileError extends StartupError {}

/** Why a key (or an agent's key) whose secret the config file sets is not rotated or re-set here: names the field and the fix. */
export function secretFromFileMessage(name: string, field: string, what: 'key' | 'agent' = 'key'): string {
  if (what === 'agent')
    return `the key of agent "${name}" is written in the config file (${field}): applying the file again (config apply, or serve --config at the next start) would put it back. Change it in the file (or remove the "key:" line there to hand it over) and apply the file`;
  return `the secret of key "${name}" is written in the config file (${field}): applying the file again (config apply, or serve --config at the next start) would put that secret back and undo a rotation here. Rotate it in the file: write a new secret there (or remove the "key:" line to hand the secret over to the admin app and CLI) and apply the file`;
}

/** Remember a secret the key no longer has (a rotation, or a secret set through the API/CLI), so no apply gives it back; validUntil: the end of its grace period (a rotation). */
export function retireSecret(db: DB, name: string, hash: string, at: number, validUntil: number | null = null): void {
  db.prepare(`INSERT OR IGNORE INTO key_retired_secrets (key_name, hash, retired_at, valid_until) VALUES (?, ?, ?, ?)`).run(name, hash, at, validUntil);
}

/** When the key's secret with this hash was replaced (ms), undefined: it never was. */
export function retiredAt(db: DB, name: string, hash: string): number | undefined {
  return db.prepare(`SELECT retired_at FROM key_retired_secrets WHERE key_name = ? AND hash = ?`).pluck().get(name, hash) as number | undefined;
}

/** The config file field that sets key `name`'s secret, undefined: none. */
export function secretFromFile(db: DB, name: string): string | undefined {
  return (db.prepare(`SELECT secret_from_file FROM keys WHERE name = ?`).pluck().get(name) as string | null | undefined) ?? undefined;
}

/** Per key (or agent) name: the config file field that sets its secret (those without one are absent). */
export function secretsFromFile(db: DB, table: 'keys' | 'agents' = 'keys'): Map<string, string> {
  const rows = db.prepare(`SELECT name, secret_from_file FROM ${table} WHERE secret_from_file IS NOT NULL`).all() as { name: string; secret_from_file: string }[];
  return new Map(rows.map((r) => [r.name, r.secret_from_file]));
}

/** Give key `name` a new secret; the old one stays valid for graceSeconds (0: stops at once). */
export function rotateKey(db: DB, secrets: Secrets, name: string, graceSeconds: number, now = Date.now()): Rotation {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS)
    throw new RangeError(`grace must be a whole number of seconds from 0 to ${MAX_GRACE_SECONDS} (30 days)`);
  const key = generateKey();
  const prefix = keyPrefix(key);
  const until = graceSeconds > 0 ? now + graceSeconds * 1000 : null;
  db.transaction(() => {
    const row = db.prepare(`SELECT hash, secret_from_file FROM keys WHERE name = ?`).get(name) as { hash: string; secret_from_file: string | null } | undefined;
    if (!row) {
      const names = db.prepare(`SELECT name FROM keys ORDER BY rowid LIMIT 21`).pluck().all() as string[];
      throw new NoSuchKeyError(`no key named "${name}"${names.length ? ` (keys: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})` : ' (there are no keys)'}`);
    }
    if (row.secret_from_file !== null) throw new SecretFromFileError(secretFromFileMessage(name, row.secret_from_file));
    // each replaced secret keeps its own grace period: a rotation with grace leaves the older
    // ones theirs; one without grace stops them all now (a leaked key is shut out in one step).
    // Without grace the old secret is kept as one whose grace ended now: it is refused saying the
    // key was rotated (not "no such key"), as after a grace period. The read above and these
    // writes are one IMMEDIATE transaction: rotations of the same key from several processes
    // take turns, and each one's new secret is the next one's old secret, in its grace period.
    if (until === null) db.prepare(`UPDATE key_retired_secrets SET valid_until = ? WHERE key_name = ? AND valid_until > ?`).run(now, name, now);
    retireSecret(db, name, row.hash, now, until ?? now);
    // (keys.previous_hash/previous_valid_until: the latest replaced secret, kept for older readers)
    db.prepare(`UPDATE keys SET hash = ?, prefix = ?, previous_hash = ?, previous_valid_until = ?, updated_at = ? WHERE name = ?`).run(
      secrets.hashKey(key),
      prefix,
      row.hash,
      until ?? now,
      now,
      name,
    );
    bumpConfigVersion(db);
  }).immediate();
  return { name, key, prefix, previous_valid_until: until };
}

export interface PreviousSecret {
  name: string;
  hash: string;
  until: number;
}

/** The old secrets of rotated keys that are (or were) in their grace period, each with its own end. */
export function previousSecrets(db: DB): PreviousSecret[] {
  return db.prepare(`SELECT key_name AS name, hash, valid_until AS until FROM key_retired_secrets WHERE valid_until IS NOT NULL`).all() as PreviousSecret[];
}

/** Per key: the latest end of its old secrets' grace periods (if still ahead) and when it was last used. */
export function keyActivity(db: DB, names: string[], now = Date.now()): Map<string, { previous_valid_until: string | null; last_used_at: string | null }> {
  const grace = db.prepare(`SELECT MAX(valid_until) FROM key_retired_secrets WHERE key_name = ?`).pluck();
  const last = db.prepare(`SELECT MAX(ts) FROM ledger WHERE key_name = ?`).pluck();
  const out = new Map<string, { previous_valid_until: string | null; last_used_at: string | null }>();
  for (const n of names) {
    const until = grace.get(n) as number | null | undefined;
    const ts = last.get(n) as number | null | undefined;
    out.set(n, { previous_valid_until: until && until > now ? new Date(until).toISOString() : null, last_used_at: ts ? new Date(ts).toISOString() : null });
  }
  return out;
}
