// The per-install secret: key generation, key hashing and encryption of upstream secrets.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { SECRET_FILE, Secrets, generateKey, keyPrefix } from '../../gateway/store/secrets.js';
import { StartupError } from '../../gateway/store/db.js';
import { KEY_RE } from '../../gateway/config/schema.js';
import { tmpDir } from '../helpers/gateway.js';

// removed when the test process exits (test/helpers/gateway.ts)
const secretsDir = (): string => tmpDir('airlock-secrets-');

describe('generateKey', () => {
  test('sk-airlock- followed by at least 128 random bits in base64url', () => {
    const k = generateKey();
    assert.ok(k.startsWith('sk-airlock-'));
    const body = k.slice('sk-airlock-'.length);
    assert.match(body, /^[A-Za-z0-9_-]+$/);
    assert.ok(Buffer.from(body, 'base64url').length >= 16, 'at least 128 bits');
    assert.equal(Buffer.from(body, 'base64url').toString('base64url'), body, 'canonical base64url');
  });

  test('generated keys are accepted by the config schema', () => {
    for (let i = 0; i < 100; i++) assert.match(generateKey(), KEY_RE);
  });

  test('keys are unique', () => {
    const keys = new Set<string>();
    for (let i = 0; i < 10_000; i++) keys.add(generateKey());
    assert.equal(keys.size, 10_000);
  });

  test('keyPrefix reveals only the start of a key', () => {
    const k = generateKey();
    const p = keyPrefix(k);
    assert.ok(p.startsWith('sk-airlock-'));
    assert.ok(k.startsWith(p.replace(/…$/, '')));
    assert.ok(p.length < 20);
  });
});

describe('Secrets', () => {
  test('first load creates install.key with mode 0600; later loads reuse it', () => {
    const dir = secretsDir();
    const a = Secrets.load(dir);
    const file = path.join(dir, SECRET_FILE);
    assert.ok(fs.existsSync(file));
    const content = fs.readFileSync(file, 'utf8');
    assert.match(content.trim(), /^[0-9a-f]{64}$/);
    if (process.platform !== 'win32') assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const b = Secrets.load(dir);
    assert.equal(fs.readFileSync(file, 'utf8'), content, 'an existing secret is never rewritten');
    assert.equal(b.hashKey('sk-airlock-x'), a.hashKey('sk-airlock-x'));
  });

  test('hashKey is deterministic per install and differs across installs', () => {
    const one = Secrets.load(secretsDir());
    const two = Secrets.load(secretsDir());
    const key = generateKey();
    const h = one.hashKey(key);
    assert.match(h, /^[0-9a-f]{64}$/);
    assert.equal(one.hashKey(key), h);
    assert.notEqual(two.hashKey(key), h, 'a database copied to another install cannot be used to test keys');
    assert.notEqual(one.hashKey(generateKey()), h);
    assert.ok(!h.includes(key));
  });

  test('the same master secret gives the same hashes (e.g. after a restore)', () => {
    const dir1 = secretsDir();
    const dir2 = secretsDir();
    Secrets.load(dir1);
    fs.copyFileSync(path.join(dir1, SECRET_FILE), path.join(dir2, SECRET_FILE));
    assert.equal(Secrets.load(dir1).hashKey('k'), Secrets.load(dir2).hashKey('k'));
  });

  test('encrypt/decrypt round trip', () => {
    const s = Secrets.load(secretsDir());
    for (const plain of ['', 'token-123', 'ünïcödé 😀 秘密', 'x'.repeat(10_000)]) {
      const sealed = s.encrypt(plain);
      assert.ok(!sealed.includes(plain) || plain === '', 'ciphertext does not contain the secret');
      assert.equal(s.decrypt(sealed), plain);
    }
  });

  test('encryption is randomised: the same secret seals differently each time', () => {
    const s = Secrets.load(secretsDir());
    const a = s.encrypt('same');
    const b = s.encrypt('same');
    assert.notEqual(a, b);
    assert.equal(s.decrypt(a), 'same');
    assert.equal(s.decrypt(b), 'same');
  });

  test('tampered ciphertext, tag or IV is rejected', () => {
    const s = Secrets.load(secretsDir());
    const sealed = s.encrypt('the upstream api key');
    const parts = sealed.split(':');
    assert.equal(parts.length, 4);
    assert.equal(parts[0], 'v1');
    const flip = (b64: string) => {
      const buf = Buffer.from(b64, 'base64');
      buf[0] = buf[0]! ^ 1;
      return buf.toString('base64');
    };
    for (const i of [1, 2, 3]) {
      const p = [...parts];
      p[i] = flip(p[i]!);
      assert.throws(() => s.decrypt(p.join(':')), `tampering with part ${i} is detected`);
    }
    // truncated body
    assert.throws(() => s.decrypt([parts[0], parts[1], parts[2], parts[3]!.slice(0, 4)].join(':')));
  });

  test('a secret sealed by another install cannot be opened', () => {
    const sealed = Secrets.load(secretsDir()).encrypt('secret');
    assert.throws(() => Secrets.load(secretsDir()).decrypt(sealed));
  });

  test('unknown formats are refused', () => {
    const s = Secrets.load(secretsDir());
    for (const bad of ['', 'plain text', 'v2:a:b:c', 'v1:only-two']) assert.throws(() => s.decrypt(bad), /unknown secret format/);
  });

  for (const [what, content] of [
    ['garbage', 'not a key\n'],
    ['truncated', 'ab'.repeat(31) + '\n'],
    ['empty', ''],
    ['too long', 'ab'.repeat(33)],
  ] as const) {
    test(`a damaged install.key (${what}) is refused with a clear error and left alone`, () => {
      const dir = secretsDir();
      const file = path.join(dir, SECRET_FILE);
      fs.writeFileSync(file, content, { mode: 0o600 });
      assert.throws(
        () => Secrets.load(dir),
        (e: unknown) => e instanceof StartupError && e.message.includes(file) && /damaged/.test(e.message),
      );
      assert.equal(fs.readFileSync(file, 'utf8'), content, 'the damaged file must not be replaced');
    });
  }

  test('an unreadable install.key is refused with a clear error', () => {
    const dir = secretsDir();
    fs.mkdirSync(path.join(dir, SECRET_FILE)); // a directory where the file should be
    assert.throws(
      () => Secrets.load(dir),
      (e: unknown) => e instanceof StartupError && e.message.includes(path.join(dir, SECRET_FILE)) && /cannot be read/.test(e.message),
    );
  });

  test('a missing data dir is reported, not crashed on', () => {
    const dir = path.join(secretsDir(), 'does', 'not', 'exist');
    assert.throws(
      () => Secrets.load(dir),
      (e: unknown) => e instanceof StartupError && /cannot be written/.test(e.message),
    );
  });
});
