// Signing and checking the server bundle: a detached Ed25519 signature over the bundle's bytes
// (the .tar.gz as delivered), the same one stock OpenSSL checks with
//   openssl pkeyutl -verify -pubin -inkey airlock-release.pub.pem -rawin -in BUNDLE -sigfile BUNDLE.sig
// Keys are PEM files: the release key (PKCS#8, private) on the builder, its public half (SPKI) on
// the servers that trust it.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { StartupError } from '../store/db.js';

export const BUNDLE_RE = /^airlock-(\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.-]+)?)-linux-x64\.tar\.gz$/;

/** The signature file of a bundle: BUNDLE.sig. */
export function sigFileOf(bundle: string): string {
  return `${bundle}.sig`;
}

export function readPublicKey(file: string): crypto.KeyObject {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StartupError(`trusted key ${file} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  let key: crypto.KeyObject;
  try {
    key = crypto.createPublicKey(text);
  } catch {
    throw new StartupError(`trusted key ${file} is not a PEM public key (expected "-----BEGIN PUBLIC KEY-----", an Ed25519 key)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new StartupError(`trusted key ${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; Airlock bundles are signed with Ed25519`);
  return key;
}

export function readPrivateKey(file: string): crypto.KeyObject {
  let key: crypto.KeyObject;
  try {
    key = crypto.createPrivateKey(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new StartupError(`release key ${file} cannot be used: ${(e as Error).message} (expected a PEM Ed25519 private key: openssl genpkey -algorithm ed25519 -out release.pem)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw new StartupError(`release key ${file} is a ${key.asymmetricKeyType ?? 'unknown'} key; it must be Ed25519`);
  return key;
}

export function publicPem(key: crypto.KeyObject): string {
  return (key.type === 'private' ? crypto.createPublicKey(key) : key).export({ type: 'spki', format: 'pem' }).toString();
}

/** SHA-256 of the key's DER (SPKI) bytes, hex: what an operator compares with the fingerprint on paper. */
export function fingerprint(key: crypto.KeyObject): string {
  const pub = key.type === 'private' ? crypto.createPublicKey(key) : key;
  return crypto.createHash('sha256').update(pub.export({ type: 'spki', format: 'der' })).digest('hex');
}

export function signFile(file: string, key: crypto.KeyObject): Buffer {
  return crypto.sign(null, fs.readFileSync(file), key);
}

/**
 * Check `bundle` against its detached signature and the trusted key; throws a StartupError naming
 * the problem. Nothing is written.
 */
export function verifyBundle(bundle: string, sigFile: string, trusted: crypto.KeyObject): void {
  let data: Buffer;
  let sig: Buffer;
  try {
    data = fs.readFileSync(bundle);
  } catch (e) {
    throw new StartupError(`bundle ${bundle} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  try {
    sig = fs.readFileSync(sigFile);
  } catch (e) {
    throw new StartupError(
      `signature ${sigFile} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file (it is delivered next to the bundle)' : (e as Error).message}`,
    );
  }
  if (sig.length !== 64 || !crypto.verify(null, data, trusted, sig))
    throw new StartupError(
      `bundle ${bundle} is NOT signed by the trusted key (fingerprint ${fingerprint(trusted)}): it was changed after signing, or signed by another key; nothing was installed`,
    );
}
