// Temporary keys: minted by the admin plane for one playground request of one admin, held in
// memory only (never stored, never listed with the keys, never sent to the browser), scoped to
// the model chosen, attributed to the admin (key name "playground:NAME", app "playground"), and
// gone when the request ends (revoke) or at the latest after their time to live.
//
// The data plane finds them in authenticate() only after the stored keys and the old secrets of
// rotated keys missed, so a valid stored key costs nothing more.
import { randomBytes } from 'node:crypto';
import type { KeyRecord } from './snapshot.js';
import type { KeyHasher } from './stages.js';

export const TEMPORARY_KEY_PREFIX = 'playground:';

export class TemporaryKeys {
  private readonly byHash = new Map<string, KeyRecord>();

  /** Mint a key for `admin` that may use `models` until `ttlMs` from now, or until revoked. */
  mint(hasher: KeyHasher, admin: string, models: readonly string[], ttlMs: number, now = Date.now()): { secret: string; name: string; revoke: () => void } {
    const secret = `sk-airlock-${randomBytes(24).toString('base64url')}`;
    const hash = hasher.hashKey(secret);
    const name = `${TEMPORARY_KEY_PREFIX}${admin}`;
    this.byHash.set(
      hash,
      Object.freeze({
        name,
        team: undefined,
        app: 'playground',
        models: new Set(models),
        disabled: false,
        expiresAt: now + ttlMs,
        budget: undefined,
        limits: undefined,
        priority: 'interactive' as const,
      }),
    );
    return { secret, name, revoke: () => void this.byHash.delete(hash) };
  }

  /** The key of `hash`, while it lasts (an expired one is dropped). */
  lookup(hash: string, now = Date.now()): KeyRecord | undefined {
    const k = this.byHash.get(hash);
    if (k && k.expiresAt !== undefined && k.expiresAt <= now) {
      this.byHash.delete(hash);
      return undefined;
    }
    return k;
  }

  get size(): number {
    return this.byHash.size;
  }
}
