// Key rotation (issue 15): a key gets a new secret; the old one may stay valid for a grace period
// so apps can switch without an outage. Only the hash of each secret is stored (keys.hash, and
// keys.previous_hash with previous_valid_until, migration 13). A rotation bumps the config version,
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

/** Give key `name` a new secret; the old one stays valid for graceSeconds (0: stops at once). */
export function rotateKey(db: DB, secrets: Secrets, name: string, graceSeconds: number, now = Date.now()): Rotation {
  if (!Number.isInteger(graceSeconds) || graceSeconds < 0 || graceSeconds > MAX_GRACE_SECONDS)
    throw new RangeError(`grace must be a whole number of seconds from 0 to ${MAX_GRACE_SECONDS} (30 days)`);
  const key = generateKey();
  const prefix = keyPrefix(key);
  const until = graceSeconds > 0 ? now + graceSeconds * 1000 : null;
  db.transaction(() => {
    const row = db.prepare(`SELECT hash FROM keys WHERE name = ?`).get(name) as { hash: string } | undefined;
    if (!row) {
      const names = db.prepare(`SELECT name FROM keys ORDER BY rowid LIMIT 21`).pluck().all() as string[];
      throw new NoSuchKeyError(`no key named "${name}"${names.length ? ` (keys: ${names.slice(0, 20).join(', ')}${names.length > 20 ? ', …' : ''})` : ' (there are no keys)'}`);
    }
    db.prepare(`UPDATE keys SET hash = ?, prefix = ?, previous_hash = ?, previous_valid_until = ?, updated_at = ? WHERE name = ?`).run(
      secrets.hashKey(key),
      prefix,
      until === null ? null : row.hash,
      until,
      now,
      name,
    );
    bumpConfigVersion(db);
  })();
  return { name, key, prefix, previous_valid_until: until };
}

export interface PreviousSecret {
  name: string;
  hash: string;
  until: number;
}

/** The old secrets of rotated keys that are (or were) in their grace period. */
export function previousSecrets(db: DB): PreviousSecret[] {
  return db.prepare(`SELECT name, previous_hash AS hash, previous_valid_until AS until FROM keys WHERE previous_hash IS NOT NULL AND previous_valid_until IS NOT NULL`).all() as PreviousSecret[];
}

/** Per key: the end of its old secret's grace period (if still ahead) and when it was last used. */
export function keyActivity(db: DB, names: string[], now = Date.now()): Map<string, { previous_valid_until: string | null; last_used_at: string | null }> {
  const grace = db.prepare(`SELECT previous_valid_until FROM keys WHERE name = ?`).pluck();
  const last = db.prepare(`SELECT MAX(ts) FROM ledger WHERE key_name = ?`).pluck();
  const out = new Map<string, { previous_valid_until: string | null; last_used_at: string | null }>();
  for (const n of names) {
    const until = grace.get(n) as number | null | undefined;
    const ts = last.get(n) as number | null | undefined;
    out.set(n, { previous_valid_until: until && until > now ? new Date(until).toISOString() : null, last_used_at: ts ? new Date(ts).toISOString() : null });
  }
  return out;
}
