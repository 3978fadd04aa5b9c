// The per-install secret: a 32-byte file in the data dir (mode 0600), never in the database,
// so a copy of the database alone reveals neither upstream secrets nor a way to test keys.
import { createCipheriv, createDecipheriv, createHmac, hkdfSync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StartupError } from './db.js';
import { createSynced, syncDir } from './durable.js';

export const SECRET_FILE = 'install.key';

export class Secrets {
  private readonly hmacKey: Buffer;
  private readonly encKey: Buffer;
  /** Names this secret without revealing it (stored in the database's meta as install_key_id, so a
   * database and an install.key that do not belong together are noticed before anything breaks). */
  readonly id: string;

  constructor(master: Buffer) {
    this.id = createHmac('sha256', master).update('airlock install key id').digest('hex').slice(0, 16);
    this.hmacKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'airlock key hashing', 32));
    this.encKey = Buffer.from(hkdfSync('sha256', master, Buffer.alloc(0), 'airlock secret encryption', 32));
  }

  /** `create: false`: a missing install.key is an error (read-only commands never create an install). */
  static load(dataDir: string, opts: { create?: boolean } = {}): Secrets {
    const file = path.join(dataDir, SECRET_FILE);
    let raw: string | undefined;
    try {
      raw = fs.readFileSync(file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new StartupError(`install secret ${file} cannot be read: ${(e as Error).message}`);
    }
    if (raw === undefined && opts.create === false)
      throw new StartupError(`install secret ${file} is missing; copy back the install.key this data dir was created with, or restore an encrypted backup (it carries it)`);
    if (raw === undefined) {
      const master = randomBytes(32);
      // Written to a temporary file, synced, then linked into place: a crash never leaves a
      // half-written secret, and two processes starting at once agree on one.
      let created: boolean;
      try {
        created = createSynced(file, master.toString('hex') + '\n');
      } catch (e) {
        throw new StartupError(`install secret ${file} cannot be written: ${(e as Error).message}`);
      }
      if (!created) return Secrets.load(dataDir, opts);
      syncDir(dataDir);
      return new Secrets(master);
    }
    const hex = raw.trim();
    if (!/^[0-9a-f]{64}$/.test(hex)) throw new StartupError(`install secret ${file} is damaged (expected 64 hex characters); restore it from a backup`);
    return new Secrets(Buffer.from(hex, 'hex'));
  }

  /** Recently presented keys → their hash: the HMAC is the costliest step of authenticating a
   * request, and apps present the same key again and again. Bounded (cleared when full). */
  private readonly hashCache = new Map<string, string>();

  hashKey(key: string): string {
    const hit = this.hashCache.get(key);
    if (hit !== undefined) return hit;
    const h = createHmac('sha256', this.hmacKey).update(key).digest('hex');
    if (key.length <= 256) {
      if (this.hashCache.size >= 1024) this.hashCache.clear();
      this.hashCache.set(key, h);
    }
    return h;
  }

  encrypt(plain: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.encKey, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return `v1:${iv.toString('base64')}:${c.getAuthTag().toString('base64')}:${body.toString('base64')}`;
  }

  decrypt(sealed: string): string {
    const [v, iv, tag, body] = sealed.split(':');
    if (v !== 'v1' || !iv || !tag || body === undefined) throw new Error('unknown secret format');
    const d = createDecipheriv('aes-256-gcm', this.encKey, Buffer.from(iv, 'base64'));
    d.setAuthTag(Buffer.from(tag, 'base64'));
    return Buffer.concat([d.update(Buffer.from(body, 'base64')), d.final()]).toString('utf8');
  }
}

/** A new virtual key: sk-airlock- and 192 random bits, base64url. */
export function generateKey(): string {
  return 'sk-airlock-' + randomBytes(24).toString('base64url');
}

/** What may be shown of a key after creation. */
export function keyPrefix(key: string): string {
  return key.slice(0, 15) + '…';
}
