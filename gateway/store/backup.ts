// Backups that carry what a restore needs, and restores that cannot lose data.
//
// A backup is an encrypted bundle: the database (an online SQLite backup, consistent while the
// gateway serves) and the install secret it was written with, under a passphrase the admin
// chooses (scrypt → AES-256-GCM; the header is authenticated too). Layout:
//   "airlock-backup v1\n" | uint32 BE header length | header JSON | ciphertext | 16-byte GCM tag
// where the plaintext is the 32-byte install secret, the audit signing key file
// (audit-signing.key, header.audit_key_bytes long; absent in bundles made before it was carried)
// and the database file. The header carries a passphrase check value, so a wrong passphrase and a
// damaged file get different errors. A restored install keeps signing its audit log with the key
// its records were signed with (bundles exported before and after verify with one fingerprint).
//
// A restore takes the data dir's lock (refused while a gateway or another restore holds it),
// decrypts into a scratch dir inside the data dir, checks the result like a start would, and
// only then swaps it in; what it replaces is kept in DATA_DIR/before-restore-TIMESTAMP/, itself
// a complete data dir. A plain SQLite file (`airlock backup --plain`, or a copy of airlock.db) is
// restored only onto the install.key it was written with.
import { createCipheriv, createDecipheriv, createHmac, randomBytes, scrypt, timingSafeEqual, type CipherGCM, type ScryptOptions } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DB_FILE, ensureDataDir, openDatabase, StartupError, type DB } from './db.js';
import { COMMAND_RUNNING, DataDirLock, holdAgainstCommands } from './data-dir-lock.js';
import { setTimeout as sleep } from 'node:timers/promises';
import { replaceSynced, syncDirAsync } from './durable.js';
import { installKeyId, loadSecretsFor, RESTORE_JOURNAL } from './install.js';
import { Secrets, SECRET_FILE } from './secrets.js';
import { AUDIT_KEY_FILE, AuditKey } from '../audit/key.js';
import { VERSION } from '../version.js';
import type { AppliedRestore, StagedRestore } from '../wire.js';
import { MIN_BACKUP_PASSPHRASE as MIN_PASSPHRASE } from '../config/admin-schema.js';

export const BUNDLE_MAGIC = 'airlock-backup v1\n';
const SQLITE_MAGIC = 'SQLite format 3\0';
const KEY_BYTES = 32;
const TAG_BYTES = 16;
const CHUNK = 1 << 20;
const MAX_HEADER = 16 * 1024;
/** the largest audit signing key file a bundle may carry */
const MAX_AUDIT_KEY = 64 * 1024;
/** scrypt cost: 2^15 × 8 × 128 B = 32 MiB and about 0.1 s per try. */
const KDF = { N: 1 << 15, r: 8, p: 1 };

interface BundleHeader {
  format: 1;
  created_at: string;
  airlock_version: string;
  kdf: { name: 'scrypt'; N: number; r: number; p: number; salt: string };
  cipher: 'aes-256-gcm';
  iv: string;
  /** HMAC of a fixed text under a second key from the passphrase: tells a wrong passphrase from a damaged file */
  check: string;
  db_bytes: number;
  /** the audit signing key file's length (absent: a bundle without it) */
  audit_key_bytes?: number;
}

export type BackupInfo = { kind: 'sqlite'; size: number } | { kind: 'bundle'; size: number; header: BundleHeader; headerEnd: number };

export interface Progress {
  (done: number, total: number): void;
}

function fsProblem(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'ENOENT':
      return 'no such file or directory';
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'EISDIR':
      return 'it is a directory';
    case 'ENOTDIR':
      return 'a parent path is a file, not a directory';
    case 'ENOSPC':
      return 'no space left on device';
    case 'EROFS':
      return 'read-only file system';
    case 'EEXIST':
      return 'it already exists';
    default:
      return err.message;
  }
}

export function checkPassphrase(p: string): string | undefined {
  if (p.length < MIN_PASSPHRASE) return `the backup passphrase must be at least ${MIN_PASSPHRASE} characters`;
  return undefined;
}

function deriveKeys(passphrase: string, salt: Buffer, k: { N: number; r: number; p: number }): Promise<{ enc: Buffer; check: Buffer }> {
  const opts: ScryptOptions = { N: k.N, r: k.r, p: k.p, maxmem: 256 * k.N * k.r + 1024 * 1024 };
  return new Promise((resolve, reject) =>
    scrypt(passphrase.normalize('NFC'), salt, 64, opts, (err, key) => {
      if (err) reject(err);
      else {
        const check = createHmac('sha256', key.subarray(32)).update('airlock backup passphrase check').digest();
        resolve({ enc: key.subarray(0, 32), check });
      }
    }),
  );
}

function readInstallSecret(dataDir: string): Buffer {
  const file = path.join(dataDir, SECRET_FILE);
  const hex = fs.readFileSync(file, 'utf8').trim();
  if (!/^[0-9a-f]{64}$/.test(hex)) throw new StartupError(`install secret ${file} is damaged (expected 64 hex characters)`);
  return Buffer.from(hex, 'hex');
}


/** Refuse a backup destination that cannot work (before a passphrase is asked for); returns it absolute. */
export function checkBackupTarget(file: string): string {
  const to = path.resolve(file);
  const dir = path.dirname(to);
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new StartupError(`cannot write the backup to ${to}: the folder ${dir} cannot be used (${fsProblem(e)})`);
  }
  if (!st.isDirectory()) throw new StartupError(`cannot write the backup to ${to}: ${dir} is not a folder`);
  if (fs.existsSync(to)) throw new StartupError(`${to} already exists; choose a new file name (a backup never overwrites a file)`);
  return to;
}

/**
 * Write an encrypted backup bundle of the open install `db` (in `dataDir`) to `to`, a new file
 * (mode 0600; never overwritten; written under a temporary name and linked into place when done).
 * `plain`: the database alone, unencrypted (a SQLite file; its install.key is needed to restore it).
 */
export async function writeBackup(o: { db: DB; dataDir: string; to: string; passphrase?: string; plain?: boolean; progress?: Progress }): Promise<{ bytes: number }> {
  const to = checkBackupTarget(o.to);
  const dir = path.dirname(to);
  if (!o.plain) {
    const bad = checkPassphrase(o.passphrase ?? '');
    if (bad) throw new StartupError(bad);
  }
  // The consistent copy is taken inside the data dir (it is as sensitive as the database).
  const snapshot = path.join(o.dataDir, `.backup-${process.pid}-${randomBytes(4).toString('hex')}.db`);
  const partial = path.join(dir, `.${path.basename(to)}.partial-${process.pid}`);
  try {
    fs.writeFileSync(snapshot, '', { mode: 0o600 });
    await o.db.backup(snapshot, {
      progress: ({ totalPages, remainingPages }) => {
        o.progress?.(Math.max(0, totalPages - remainingPages), totalPages * 2);
        return 256;
      },
    });
    const dbBytes = fs.statSync(snapshot).size;
    let out: fs.promises.FileHandle;
    try {
      out = await fs.promises.open(partial, 'wx', 0o600);
    } catch (e) {
      throw new StartupError(`cannot write the backup to ${to}: ${fsProblem(e)}`);
    }
    let written = 0;
    try {
      const src = await fs.promises.open(snapshot, 'r');
      try {
        const write = async (b: Buffer) => {
          if (b.length) await out.write(b);
          written += b.length;
        };
        let cipher: CipherGCM | undefined;
        if (!o.plain) {
          const salt = randomBytes(16);
          const iv = randomBytes(12);
          const keys = await deriveKeys(o.passphrase!, salt, KDF);
          const auditKeyFile = path.join(o.dataDir, AUDIT_KEY_FILE);
          const auditKey = fs.existsSync(auditKeyFile) ? fs.readFileSync(auditKeyFile) : Buffer.alloc(0);
          if (auditKey.length > MAX_AUDIT_KEY) throw new StartupError(`audit signing key ${auditKeyFile} is ${auditKey.length} bytes, more than a key file can be (damaged?); no backup was written`);
          const header: BundleHeader = {
            format: 1,
            created_at: new Date().toISOString(),
            airlock_version: VERSION,
            kdf: { name: 'scrypt', ...KDF, salt: salt.toString('base64') },
            cipher: 'aes-256-gcm',
            iv: iv.toString('base64'),
            check: keys.check.toString('base64'),
            db_bytes: dbBytes,
            audit_key_bytes: auditKey.length,
          };
          const json = Buffer.from(JSON.stringify(header));
          const len = Buffer.alloc(4);
          len.writeUInt32BE(json.length);
          const prefix = Buffer.concat([Buffer.from(BUNDLE_MAGIC), len, json]);
          cipher = createCipheriv('aes-256-gcm', keys.enc, iv);
          cipher.setAAD(prefix);
          await write(prefix);
          await write(cipher.update(readInstallSecret(o.dataDir)));
          if (auditKey.length) await write(cipher.update(auditKey));
        }
        const buf = Buffer.alloc(CHUNK);
        let pos = 0;
        for (;;) {
          const { bytesRead } = await src.read(buf, 0, CHUNK, pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
          const chunk = buf.subarray(0, bytesRead);
          await write(cipher ? cipher.update(chunk) : Buffer.from(chunk));
          o.progress?.(dbBytes + pos, dbBytes * 2);
        }
        if (cipher) {
          await write(cipher.final());
          await write(cipher.getAuthTag());
        }
      } finally {
        await src.close();
      }
      await out.sync();
    } catch (e) {
      if (e instanceof StartupError) throw e;
      throw new StartupError(`cannot write the backup to ${to}: ${fsProblem(e)}`);
    } finally {
      await out.close();
    }
    try {
      fs.linkSync(partial, to);
    } catch (e) {
      throw new StartupError(`cannot write the backup to ${to}: ${fsProblem(e)}`);
    }
    await syncDirAsync(dir);
    return { bytes: written };
  } finally {
    fs.rmSync(partial, { force: true });
    for (const s of ['', '-journal', '-wal', '-shm']) fs.rmSync(snapshot + s, { force: true });
  }
}

/** What kind of backup `file` is, checked without a passphrase (one line naming the problem otherwise). */
export function identifyBackup(file: string): BackupInfo {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw new StartupError(`backup ${file} cannot be read: ${fsProblem(e)}`);
  }
  try {
    const st = fs.fstatSync(fd);
    if (!st.isFile()) throw new StartupError(`backup ${file} is not a regular file`);
    const head = Buffer.alloc(Math.min(st.size, BUNDLE_MAGIC.length + 4 + MAX_HEADER));
    fs.readSync(fd, head, 0, head.length, 0);
    if (head.subarray(0, SQLITE_MAGIC.length).toString('latin1') === SQLITE_MAGIC) return { kind: 'sqlite', size: st.size };
    const notOurs = `backup ${file} is not an Airlock backup (neither an encrypted backup made by "airlock backup" nor an Airlock database)`;
    if (head.subarray(0, BUNDLE_MAGIC.length).toString('latin1') !== BUNDLE_MAGIC) {
      if (st.size > 0 && BUNDLE_MAGIC.startsWith(head.toString('latin1'))) throw new StartupError(`backup ${file} is truncated (${st.size} bytes)`);
      throw new StartupError(st.size === 0 ? `backup ${file} is empty` : notOurs);
    }
    const truncated = `backup ${file} is truncated or damaged (its header cannot be read); nothing was restored`;
    if (head.length < BUNDLE_MAGIC.length + 4) throw new StartupError(truncated);
    const len = head.readUInt32BE(BUNDLE_MAGIC.length);
    const headerEnd = BUNDLE_MAGIC.length + 4 + len;
    if (len > MAX_HEADER || headerEnd > head.length) throw new StartupError(truncated);
    let h: BundleHeader;
    try {
      h = JSON.parse(head.subarray(BUNDLE_MAGIC.length + 4, headerEnd).toString('utf8')) as BundleHeader;
    } catch {
      throw new StartupError(truncated);
    }
    const ok =
      h &&
      h.format === 1 &&
      h.cipher === 'aes-256-gcm' &&
      h.kdf?.name === 'scrypt' &&
      Number.isInteger(h.kdf.N) &&
      h.kdf.N >= 1024 &&
      h.kdf.N <= 1 << 20 &&
      (h.kdf.N & (h.kdf.N - 1)) === 0 &&
      Number.isInteger(h.kdf.r) &&
      h.kdf.r >= 1 &&
      h.kdf.r <= 32 &&
      Number.isInteger(h.kdf.p) &&
      h.kdf.p >= 1 &&
      h.kdf.p <= 4 &&
      typeof h.kdf.salt === 'string' &&
      typeof h.iv === 'string' &&
      typeof h.check === 'string' &&
      Number.isSafeInteger(h.db_bytes) &&
      h.db_bytes >= 0 &&
      (h.audit_key_bytes === undefined || (Number.isInteger(h.audit_key_bytes) && h.audit_key_bytes >= 0 && h.audit_key_bytes <= MAX_AUDIT_KEY));
    if (!ok) throw new StartupError(`backup ${file} has a header this Airlock does not understand (made by a newer version, or damaged); nothing was restored`);
    const expected = headerEnd + KEY_BYTES + (h.audit_key_bytes ?? 0) + h.db_bytes + TAG_BYTES;
    if (st.size < expected) throw new StartupError(`backup ${file} is truncated (${st.size} bytes; a complete one has ${expected}); nothing was restored`);
    if (st.size > expected) throw new StartupError(`backup ${file} has ${st.size - expected} bytes more than it should (damaged, or something was appended); nothing was restored`);
    return { kind: 'bundle', size: st.size, header: h, headerEnd };
  } finally {
    fs.closeSync(fd);
  }
}

/** Decrypt a bundle's database to `dbOut` (0600); returns its install secret and audit signing key
 * file (empty when the bundle has none). Nothing is trusted before the tag checks out. */
async function decryptBundle(file: string, info: Extract<BackupInfo, { kind: 'bundle' }>, passphrase: string, dbOut: string, progress?: Progress): Promise<{ secret: Buffer; auditKey: Buffer }> {
  const h = info.header;
  const keys = await deriveKeys(passphrase, Buffer.from(h.kdf.salt, 'base64'), h.kdf);
  const check = Buffer.from(h.check, 'base64');
  if (check.length !== keys.check.length || !timingSafeEqual(check, keys.check)) throw new StartupError(`wrong passphrase for backup ${file}; nothing was restored`);
  const src = await fs.promises.open(file, 'r');
  const out = await fs.promises.open(dbOut, 'wx', 0o600);
  try {
    const prefix = Buffer.alloc(info.headerEnd);
    await src.read(prefix, 0, prefix.length, 0);
    const d = createDecipheriv('aes-256-gcm', keys.enc, Buffer.from(h.iv, 'base64'));
    d.setAAD(prefix);
    const tag = Buffer.alloc(TAG_BYTES);
    await src.read(tag, 0, TAG_BYTES, info.size - TAG_BYTES);
    d.setAuthTag(tag);
    const end = info.size - TAG_BYTES;
    const secret: Buffer[] = [];
    let secretBytes = 0;
    const auditKeyBytes = h.audit_key_bytes ?? 0;
    const auditKey: Buffer[] = [];
    let auditBytes = 0;
    const buf = Buffer.alloc(CHUNK);
    let pos = info.headerEnd;
    const take = async (plain: Buffer) => {
      if (secretBytes < KEY_BYTES) {
        const n = Math.min(KEY_BYTES - secretBytes, plain.length);
        secret.push(Buffer.from(plain.subarray(0, n)));
        secretBytes += n;
        plain = plain.subarray(n);
      }
      if (auditBytes < auditKeyBytes && plain.length) {
        const n = Math.min(auditKeyBytes - auditBytes, plain.length);
        auditKey.push(Buffer.from(plain.subarray(0, n)));
        auditBytes += n;
        plain = plain.subarray(n);
      }
      if (plain.length) await out.write(plain);
    };
    while (pos < end) {
      const { bytesRead } = await src.read(buf, 0, Math.min(CHUNK, end - pos), pos);
      if (bytesRead === 0) break;
      pos += bytesRead;
      await take(d.update(buf.subarray(0, bytesRead)));
      progress?.(pos - info.headerEnd, end - info.headerEnd);
    }
    try {
      await take(d.final());
    } catch {
      throw new StartupError(`backup ${file} is damaged or was changed after it was written (its authentication check failed); nothing was restored`);
    }
    await out.sync();
    return { secret: Buffer.concat(secret), auditKey: Buffer.concat(auditKey) };
  } finally {
    await src.close();
    await out.close();
  }
}

export interface RestoreOptions {
  file: string;
  dataDir: string;
  /** asked only for an encrypted bundle, after the lock is taken */
  passphrase: () => Promise<string>;
  progress?: Progress;
  warn?: (line: string) => void;
}

export interface RestoreResult {
  kind: BackupInfo['kind'];
  /** where the replaced database and install.key were put (undefined: there were none) */
  previous: string | undefined;
}

/** What a checked backup left in a scratch dir: DB_FILE, and from a bundle install.key and the audit key file. */
interface Prepared {
  secret: boolean;
  auditKey: boolean;
}

/**
 * Decrypt (or copy) the backup `file` into the empty dir `scratch` and check it the way a start
 * would (and bring its schema up to date). A plain database is checked against `dataDir`'s
 * install.key. Messages name the backup file, never the scratch path.
 */
async function prepareRestore(o: { file: string; info: BackupInfo; scratch: string; dataDir: string; passphrase: () => Promise<string>; progress?: Progress; warn?: (line: string) => void }): Promise<Prepared> {
  const { file, info, scratch, dataDir } = o;
  const scratchDb = path.join(scratch, DB_FILE);
  const named = (e: unknown): never => {
    if (e instanceof StartupError) throw new StartupError(e.message.split(scratchDb).join(file).split(scratch).join(file));
    throw e;
  };
  let secret: Buffer | undefined;
  let auditKey: Buffer | undefined;
  if (info.kind === 'bundle') {
    ({ secret, auditKey } = await decryptBundle(file, info, await o.passphrase(), scratchDb, o.progress));
    if (secret.length !== KEY_BYTES) throw new StartupError(`backup ${file} is damaged (no install secret in it); nothing was restored`);
    fs.writeFileSync(path.join(scratch, SECRET_FILE), secret.toString('hex') + '\n', { mode: 0o600 });
    if (auditKey.length) fs.writeFileSync(path.join(scratch, AUDIT_KEY_FILE), auditKey, { mode: 0o600 });
    else auditKey = undefined;
  } else {
    fs.copyFileSync(file, scratchDb);
    fs.chmodSync(scratchDb, 0o600);
  }
  let db: DB | undefined;
  try {
    db = openDatabase(scratch);
    if (secret) {
      const secrets = loadSecretsFor(db, scratch, { create: false });
      // the carried audit signing key must open with the carried install secret
      if (auditKey) AuditKey.load(scratch, secrets);
    } else {
      const bound = installKeyId(db);
      const keyFile = path.join(dataDir, SECRET_FILE);
      const fix = `copy the install.key of the install it came from into ${dataDir} (mode 0600) and restore again, or restore an encrypted backup made by "airlock backup" (it carries its install.key); nothing was restored`;
      if (!fs.existsSync(keyFile)) throw new StartupError(`backup ${file} is a plain database without its install secret, and ${dataDir} has no install.key; ${fix}`);
      const here = Secrets.load(dataDir, { create: false });
      if (bound && bound !== here.id) throw new StartupError(`backup ${file} was written with another install.key (install key ${bound}; ${keyFile} is ${here.id}); ${fix}`);
      if (!bound) o.warn?.(`backup ${file} predates install key checks: if keys are refused after the restore, copy the install.key of the install it came from into ${dataDir}`);
    }
    db.pragma('wal_checkpoint(TRUNCATE)');
  } catch (e) {
    named(e);
  } finally {
    db?.close();
  }
  return { secret: !!secret, auditKey: !!auditKey };
}

// ---- Applying a restore: a journal makes the moves one step ----
//
// Swapping a restore in is several renames (the replaced database, its -wal/-shm, install.key and
// the audit signing key out to before-restore-TIMESTAMP/; the restored ones in). A crash between
// two of them would leave a data dir that is neither the old install nor the new one (e.g. the
// restored database beside no install.key). So the whole plan is written first, as
// DATA_DIR/restore-journal.json (written to a temporary name, synced, renamed, the dir synced),
// then the moves run, then the journal goes. Whoever takes the data dir's lock next (`serve`,
// `restore`) finds a journal left behind and finishes it: each move is done or not (a rename is
// atomic) and is recognisably so (a move out is done when its target in the new
// before-restore dir exists; a move in when its source in the scratch dir is gone and its target
// is there), so the
// remaining moves run (rolled forward). Only when a move cannot run (its source is gone: someone
// deleted the scratch dir) are the done moves undone in reverse (rolled back) and the data dir
// is the old install again.


interface JournalStep {
  op: 'move' | 'copy';
  /** relative to the data dir */
  from: string;
  to: string;
  /** out: the replaced install's file to the kept dir; in: the restored file into place */
  dir: 'out' | 'in';
}

interface RestoreJournal {
  /** the scratch dir the restored files come from, relative to the data dir (removed once done) */
  source: string;
  /** the dir the replaced files go to (relative), or null */
  previous: string | null;
  steps: JournalStep[];
  /** a staged restore: what last-restore.json records once it is applied */
  applied?: AppliedRestore;
}

/** A test-only crash point: the process dies (SIGKILL) after this many moves of an apply. */
const CRASH_AFTER_STEP = process.env.AIRLOCK_TEST_RESTORE_CRASH_AFTER_STEP;


/** Plan the moves that put the prepared restore in `from` into `dataDir`. */
function planSwap(dataDir: string, from: string, p: Prepared): RestoreJournal {
  const target = path.join(dataDir, DB_FILE);
  const steps: JournalStep[] = [];
  let previous: string | null = null;
  const keep = () => (previous ??= `before-restore-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  const out = (name: string, op: 'move' | 'copy' = 'move') => steps.push({ op, from: name, to: path.join(keep(), name), dir: 'out' });
  // Keep what is replaced: DATA_DIR/before-restore-TIMESTAMP is a complete data dir.
  if (fs.existsSync(target) && fs.statSync(target).size > 0) {
    for (const s of ['', '-wal', '-shm']) if (fs.existsSync(target + s)) out(DB_FILE + s);
    if (fs.existsSync(path.join(dataDir, SECRET_FILE))) out(SECRET_FILE, p.secret ? 'move' : 'copy');
  } else {
    for (const s of ['', '-wal', '-shm']) fs.rmSync(target + s, { force: true });
  }
  // The audit signing key is encrypted with the install.key it was made under: it goes with the
  // replaced install (kept, never deleted); the bundle's own takes its place (a bundle made
  // before backups carried it: the restored install makes a new one at its next start).
  if (p.secret && fs.existsSync(path.join(dataDir, AUDIT_KEY_FILE))) out(AUDIT_KEY_FILE);
  const source = path.relative(dataDir, from);
  const inward = (name: string) => steps.push({ op: 'move', from: path.join(source, name), to: name, dir: 'in' });
  inward(DB_FILE);
  if (p.secret) inward(SECRET_FILE);
  if (p.auditKey) inward(AUDIT_KEY_FILE);
  return { source, previous, steps };
}

/** A move out is done when its target (in the new kept dir) exists; a move in when its source is
 * gone and its target is there (nothing is at an in-move's target before it: what was there has
 * been moved out, or was never there). */
const stepDone = (dataDir: string, s: JournalStep): boolean =>
  s.dir === 'out' ? fs.existsSync(path.join(dataDir, s.to)) : !fs.existsSync(path.join(dataDir, s.from)) && fs.existsSync(path.join(dataDir, s.to));

function runStep(dataDir: string, s: JournalStep): void {
  const from = path.join(dataDir, s.from);
  const to = path.join(dataDir, s.to);
  if (s.op === 'move') fs.renameSync(from, to);
  else {
    // a copy lands under a temporary name first, so its target exists only when it is whole
    fs.copyFileSync(from, `${to}.tmp`);
    fs.renameSync(`${to}.tmp`, to);
  }
}

/** Run the journal's remaining moves; each done move is skipped. */
async function runJournal(dataDir: string, j: RestoreJournal, crashPoint?: number): Promise<void> {
  if (j.previous && !fs.existsSync(path.join(dataDir, j.previous))) fs.mkdirSync(path.join(dataDir, j.previous), { mode: 0o700 });
  let moved = 0;
  for (const s of j.steps) {
    if (stepDone(dataDir, s)) continue;
    runStep(dataDir, s);
    moved++;
    if (crashPoint !== undefined && moved >= crashPoint) {
      await syncDirAsync(dataDir);
      process.kill(process.pid, 'SIGKILL');
    }
  }
  await syncDirAsync(dataDir);
  if (j.previous) await syncDirAsync(path.join(dataDir, j.previous));
  if (j.applied) replaceSynced(path.join(dataDir, LAST_RESTORE), JSON.stringify(j.applied, null, 2) + '\n');
  fs.rmSync(path.join(dataDir, RESTORE_JOURNAL), { force: true });
  await syncDirAsync(dataDir);
  fs.rmSync(path.join(dataDir, j.source), { recursive: true, force: true });
}

/** Undo the journal's done moves, last first (the data dir is the replaced install again). */
async function rollBack(dataDir: string, j: RestoreJournal): Promise<void> {
  for (const s of [...j.steps].reverse()) {
    if (!stepDone(dataDir, s)) continue;
    const to = path.join(dataDir, s.to);
    if (s.op === 'copy') fs.rmSync(to, { force: true });
    else {
      fs.mkdirSync(path.dirname(path.join(dataDir, s.from)), { recursive: true, mode: 0o700 });
      fs.renameSync(to, path.join(dataDir, s.from));
    }
  }
  await syncDirAsync(dataDir);
  fs.rmSync(path.join(dataDir, RESTORE_JOURNAL), { force: true });
  await syncDirAsync(dataDir);
  fs.rmSync(path.join(dataDir, j.source), { recursive: true, force: true });
  if (j.previous) fs.rmSync(path.join(dataDir, j.previous), { recursive: true, force: true });
}

/**
 * With the data dir's lock held: finish a restore whose moves were interrupted (a crash, a power
 * cut), or, when that cannot be done, undo it. Returns what happened, for the log; undefined
 * when there was no journal.
 */
export async function recoverRestore(dataDir: string): Promise<{ outcome: 'rolled-forward' | 'rolled-back'; previous: string | null; applied?: AppliedRestore; why?: string } | undefined> {
  const file = path.join(dataDir, RESTORE_JOURNAL);
  fs.rmSync(`${file}.tmp`, { force: true }); // a journal never completed: nothing was moved
  if (!fs.existsSync(file)) return undefined;
  const j = readJson<RestoreJournal>(file);
  const safe = (rel: unknown) => typeof rel === 'string' && rel !== '' && !path.isAbsolute(rel) && !rel.split(/[\\/]/).includes('..');
  if (!j || !safe(j.source) || !(j.previous === null || safe(j.previous)) || !Array.isArray(j.steps) || !j.steps.every((s) => safe(s.from) && safe(s.to) && (s.op === 'move' || s.op === 'copy') && (s.dir === 'in' || s.dir === 'out')))
    throw new StartupError(`${file} (an interrupted restore's plan) cannot be read; move the data dir's files back by hand from the before-restore-* folder it names, or remove it to start with the data dir as it is`);
  const missing = j.steps.find((s) => !stepDone(dataDir, s) && !fs.existsSync(path.join(dataDir, s.from)));
  if (!missing) {
    await runJournal(dataDir, j);
    return { outcome: 'rolled-forward', previous: j.previous ? path.join(dataDir, j.previous) : null, ...(j.applied ? { applied: j.applied } : {}) };
  }
  await rollBack(dataDir, j);
  return { outcome: 'rolled-back', previous: null, why: `${missing.from} is gone` };
}

/** Move a prepared restore from `from` into `dataDir` through the journal; what it replaces goes
 * to DATA_DIR/before-restore-TIMESTAMP/ (returned; undefined when nothing was replaced). */
async function swapIn(dataDir: string, from: string, p: Prepared, applied?: (previous: string | null) => AppliedRestore): Promise<string | undefined> {
  const j = planSwap(dataDir, from, p);
  const previous = j.previous ? path.join(dataDir, j.previous) : null;
  if (applied) j.applied = applied(previous);
  replaceSynced(path.join(dataDir, RESTORE_JOURNAL), JSON.stringify(j, null, 2) + '\n');
  await syncDirAsync(dataDir);
  await runJournal(dataDir, j, CRASH_AFTER_STEP === undefined ? undefined : Number(CRASH_AFTER_STEP));
  return previous ?? undefined;
}

/** Replace `dataDir`'s database (and install.key, from a bundle) by the backup `file`. */
export async function restoreBackup(o: RestoreOptions): Promise<RestoreResult> {
  const file = path.resolve(o.file);
  const dataDir = path.resolve(o.dataDir);
  const info = identifyBackup(file);
  const existed = fs.existsSync(dataDir);
  ensureDataDir(dataDir);
  let done = false;
  let lock: DataDirLock | undefined;
  let commands: ReturnType<typeof holdAgainstCommands>;
  let scratch: string | undefined;
  try {
    lock = DataDirLock.acquire(dataDir, 'restore', 'stop it before restoring (e.g. "systemctl stop airlock", or quit the desktop app); nothing was restored');
    commands = holdAgainstCommands(dataDir);
    if (!commands) throw new StartupError(`data dir ${dataDir} is in use: ${COMMAND_RUNNING}; run the restore again when it has finished; nothing was restored`);
    // an earlier restore cut short (a crash between its moves) is finished first
    const recovered = await recoverRestore(dataDir);
    if (recovered) o.warn?.(`an earlier restore into ${dataDir} had been interrupted: it was ${recovered.outcome === 'rolled-forward' ? 'completed' : `undone (${recovered.why})`}`);
    scratch = fs.mkdtempSync(path.join(dataDir, '.restore-'));
    const prepared = await prepareRestore({ file, info, scratch, dataDir, passphrase: o.passphrase, progress: o.progress, warn: o.warn });
    const previous = await swapIn(dataDir, scratch, prepared);
    done = true;
    return { kind: info.kind, previous };
  } finally {
    if (scratch) fs.rmSync(scratch, { recursive: true, force: true });
    commands?.close();
    lock?.release();
    if (!done && !existed) fs.rmSync(dataDir, { recursive: true, force: true });
  }
}

// ---- A restore staged by the running gateway (the admin app), applied at the next start ----
//
// The gateway holding a data dir cannot replace its own database in place (it keeps writing to
// the file it has open). The admin app uploads the backup; the gateway checks it fully (passphrase,
// authentication tag, the database opened and migrated as a start would) into
// DATA_DIR/restore-staged/ with a staged.json written last, and the directory is renamed into
// place only when complete. `airlock serve`, holding the lock and before opening the database,
// swaps it in (the replaced data goes to before-restore-TIMESTAMP/ as with `airlock restore`)
// and notes the result in DATA_DIR/last-restore.json.

export const STAGED_DIR = 'restore-staged';
const STAGED_MARKER = 'staged.json';
const LAST_RESTORE = 'last-restore.json';

function readJson<T>(file: string): T | undefined {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as T;
  } catch {
    return undefined;
  }
}

export function stagedRestore(dataDir: string): StagedRestore | undefined {
  return readJson<StagedRestore>(path.join(dataDir, STAGED_DIR, STAGED_MARKER));
}

export function lastRestore(dataDir: string): AppliedRestore | undefined {
  return readJson<AppliedRestore>(path.join(dataDir, LAST_RESTORE));
}

/** Drop a staged restore (true: there was one). */
export function cancelStagedRestore(dataDir: string): boolean {
  const dir = path.join(dataDir, STAGED_DIR);
  const had = fs.existsSync(path.join(dir, STAGED_MARKER));
  fs.rmSync(dir, { recursive: true, force: true });
  return had;
}

/**
 * Check the backup `file` and stage it in `dataDir` (whose lock the caller, the running gateway,
 * holds) for the next start; a restore staged before is replaced only once this one checks out.
 * Messages call the file `label` (an upload has no name worth showing).
 */
export async function stageRestore(o: { file: string; label: string; dataDir: string; passphrase: string | undefined; by: string; progress?: Progress; warn?: (line: string) => void }): Promise<StagedRestore> {
  const dataDir = path.resolve(o.dataDir);
  const relabel = (e: unknown): never => {
    if (e instanceof StartupError) throw new StartupError(e.message.split(o.file).join(o.label));
    throw e;
  };
  let info: BackupInfo;
  try {
    info = identifyBackup(o.file);
  } catch (e) {
    return relabel(e);
  }
  const scratch = fs.mkdtempSync(path.join(dataDir, '.stage-'));
  try {
    const passphrase = async () => {
      if (o.passphrase === undefined) throw new StartupError(`backup ${o.file} is encrypted: its passphrase is needed; nothing was restored`);
      return o.passphrase;
    };
    const prepared = await prepareRestore({ file: o.file, info, scratch, dataDir, passphrase, progress: o.progress, warn: o.warn }).catch(relabel);
    const staged: StagedRestore = {
      kind: info.kind === 'bundle' ? 'encrypted' : 'plain',
      staged_at: new Date().toISOString(),
      staged_by: o.by,
      backup_created_at: info.kind === 'bundle' ? info.header.created_at : null,
      backup_version: info.kind === 'bundle' ? info.header.airlock_version : null,
      bytes: info.size,
      secret: prepared.secret,
      audit_key: prepared.auditKey,
    };
    fs.writeFileSync(path.join(scratch, STAGED_MARKER), JSON.stringify(staged, null, 2) + '\n', { mode: 0o600 });
    const dir = path.join(dataDir, STAGED_DIR);
    fs.rmSync(dir, { recursive: true, force: true });
    fs.renameSync(scratch, dir);
    await syncDirAsync(dataDir);
    return staged;
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * At start, with the data dir's lock held and before the database is opened: apply a staged
 * restore, if there is one (and clear what an interrupted staging left behind).
 */
export async function applyStagedRestore(dataDir: string, log: (line: string) => void = () => {}): Promise<AppliedRestore | undefined> {
  // a restore to finish or to apply replaces files a command may have open: wait for commands
  if (!fs.existsSync(path.join(dataDir, RESTORE_JOURNAL)) && !fs.existsSync(path.join(dataDir, STAGED_DIR))) {
    clearScratch(dataDir);
    return undefined;
  }
  let commands = holdAgainstCommands(dataDir);
  for (let waited = 0; !commands && waited < COMMANDS_WAIT_MS; waited += 250) {
    if (waited === 0) log(`waiting for another airlock command to finish before applying the restore into ${dataDir}`);
    await sleep(250);
    commands = holdAgainstCommands(dataDir);
  }
  if (!commands) throw new StartupError(`data dir ${dataDir} is in use: ${COMMAND_RUNNING}; the staged restore was not applied; start again when it has finished`);
  try {
    return await applyHeld(dataDir, log);
  } finally {
    commands.close();
  }
}

/** What an interrupted staging (.stage-*) or restore (.restore-*) left behind. */
function clearScratch(dataDir: string): void {
  for (const e of fs.readdirSync(dataDir)) if (e.startsWith('.stage-') || e.startsWith('.restore-')) fs.rmSync(path.join(dataDir, e), { recursive: true, force: true });
}

/** How long a start with a restore to apply waits for a running command. */
const COMMANDS_WAIT_MS = 30_000;

async function applyHeld(dataDir: string, log: (line: string) => void): Promise<AppliedRestore | undefined> {
  const recovered = await recoverRestore(dataDir);
  if (recovered?.outcome === 'rolled-back') log(`a restore into ${dataDir} had been interrupted and could not be completed (${recovered.why}): it was undone; the data dir holds the install it replaced`);
  else if (recovered && !recovered.applied) log(`a restore into ${dataDir} had been interrupted: it was completed${recovered.previous ? `; the replaced data is kept in ${recovered.previous}` : ''}`);
  clearScratch(dataDir);
  if (recovered?.outcome === 'rolled-forward' && recovered.applied) return recovered.applied;
  const dir = path.join(dataDir, STAGED_DIR);
  const staged = stagedRestore(dataDir);
  // no marker: nothing complete was staged; a marker without its database: already swapped in
  if (!staged || !fs.existsSync(path.join(dir, DB_FILE))) {
    fs.rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const appliedAt = new Date().toISOString();
  let applied: AppliedRestore | undefined;
  await swapIn(dataDir, dir, { secret: staged.secret, auditKey: staged.audit_key }, (previous) => (applied = { ...staged, applied_at: appliedAt, previous }));
  return applied;
}
