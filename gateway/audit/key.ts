// The audit signing key: Ed25519, generated the first time Airlock opens its data dir (at
// install), kept in DATA_DIR/audit-signing.key (mode 0600) with the private key encrypted by the
// install secret (store/secrets.ts), like the upstream keys in the database.
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { StartupError } from '../store/db.js';
import { createSynced, syncDir } from '../store/durable.js';
import type { Secrets } from '../store/secrets.js';
import { core } from './log.js';

export const AUDIT_KEY_FILE = 'audit-signing.key';

interface KeyFile {
  algorithm: 'Ed25519';
  public_key: string;
  private_key_enc: string;
  created_at: string;
}

export class AuditKey {
  readonly fingerprint: string;
  private constructor(
    readonly publicKeyPem: string,
    private readonly privateKey: crypto.KeyObject,
  ) {
    this.fingerprint = core.fingerprint(publicKeyPem);
  }

  sign(data: string | Buffer): string {
    return crypto.sign(null, typeof data === 'string' ? Buffer.from(data) : data, this.privateKey).toString('base64');
  }

  verify(data: string | Buffer, signature: string): boolean {
    try {
      return crypto.verify(null, typeof data === 'string' ? Buffer.from(data) : data, this.publicKeyPem, Buffer.from(signature, 'base64'));
    } catch {
      return false;
    }
  }

  /** The public part only (the CLI's `audit key` reads this without the install secret). */
  static readPublic(dataDir: string): { publicKeyPem: string; fingerprint: string } | undefined {
    const file = path.join(dataDir, AUDIT_KEY_FILE);
    if (!fs.existsSync(file)) return undefined;
    const k = parse(file);
    return { publicKeyPem: k.public_key, fingerprint: core.fingerprint(k.public_key) };
  }

  static load(dataDir: string, secrets: Secrets): AuditKey {
    const file = path.join(dataDir, AUDIT_KEY_FILE);
    if (!fs.existsSync(file)) create(file, secrets, dataDir);
    const k = parse(file);
    let priv: crypto.KeyObject;
    try {
      priv = crypto.createPrivateKey(secrets.decrypt(k.private_key_enc));
    } catch (e) {
      throw new StartupError(`audit signing key ${file} cannot be decrypted with this data dir's install.key (${(e as Error).message}); restore both files from the same backup`);
    }
    const pub = crypto.createPublicKey(priv).export({ type: 'spki', format: 'pem' }).toString();
    if (core.fingerprint(pub) !== core.fingerprint(k.public_key)) throw new StartupError(`audit signing key ${file} is damaged: its public key does not belong to its private key`);
    return new AuditKey(k.public_key, priv);
  }
}

function parse(file: string): KeyFile {
  let k: KeyFile;
  try {
    k = JSON.parse(fs.readFileSync(file, 'utf8')) as KeyFile;
    core.fingerprint(k.public_key);
  } catch (e) {
    throw new StartupError(`audit signing key ${file} is damaged or unreadable (${(e as Error).message}); restore it from a backup`);
  }
  return k;
}

function create(file: string, secrets: Secrets, dataDir: string): void {
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const body: KeyFile = {
    algorithm: 'Ed25519',
    public_key: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    private_key_enc: secrets.encrypt(privateKey.export({ type: 'pkcs8', format: 'pem' }).toString()),
    created_at: new Date().toISOString(),
  };
  // As install.key: a temporary file, synced, linked into place (two processes agree on one key).
  let created: boolean;
  try {
    created = createSynced(file, JSON.stringify(body, null, 2) + '\n');
  } catch (e) {
    throw new StartupError(`audit signing key ${file} cannot be written: ${(e as Error).message}`);
  }
  if (created) syncDir(dataDir);
}
