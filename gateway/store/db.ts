// Opening the SQLite store: refuse what is not ours, is corrupt, or is newer than this build,
// without touching the file; then WAL, foreign keys, busy timeout, and migrations.
import Database from 'better-sqlite3';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { MIGRATIONS, LATEST_VERSION, type Migration } from './migrations.js';

export type DB = Database.Database;

export const APP_ID = 'airlock';
export const DB_FILE = 'airlock.db';

/** A startup problem the operator must fix; printed as one line, exit code 2. */
export class StartupError extends Error {
  override name = 'StartupError';
}

export function checksum(m: Migration): string {
  return createHash('sha256').update(m.sql).digest('hex');
}

/** Make sure DIR exists and we can create files in it. */
export function ensureDataDir(dir: string): void {
  try {
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw new StartupError(`data dir ${dir} cannot be created: ${describeFsError(e)}`);
  }
  let st: fs.Stats;
  try {
    st = fs.statSync(dir);
  } catch (e) {
    throw new StartupError(`data dir ${dir} is not accessible: ${describeFsError(e)}`);
  }
  if (!st.isDirectory()) throw new StartupError(`data dir ${dir} is not a directory`);
  const probe = path.join(dir, `.write-test-${process.pid}`);
  try {
    fs.writeFileSync(probe, '');
    fs.unlinkSync(probe);
  } catch (e) {
    throw new StartupError(`data dir ${dir} is not writable: ${describeFsError(e)}`);
  }
}

function describeFsError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  switch (err.code) {
    case 'EACCES':
    case 'EPERM':
      return 'permission denied';
    case 'ENOTDIR':
      return 'a parent path is a file, not a directory';
    case 'EROFS':
      return 'read-only file system';
    case 'ENOSPC':
      return 'no space left on device';
    default:
      return err.message;
  }
}

interface Inspection {
  fresh: boolean;
}

/** Read-only look at an existing file, so a file we refuse is left exactly as it was. */
function inspect(file: string): Inspection {
  if (!fs.existsSync(file)) return { fresh: true };
  const st = fs.statSync(file);
  if (!st.isFile()) throw new StartupError(`database ${file} is not a regular file`);
  if (st.size === 0) return { fresh: true };
  let db: DB | undefined;
  // A read-only connection to a WAL database creates -wal/-shm but cannot remove them on close.
  const sidecars = ['-wal', '-shm'].map((s) => file + s).filter((f) => !fs.existsSync(f));
  try {
    db = new Database(file, { readonly: true, fileMustExist: true });
    const tables = db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`).pluck().all() as string[];
    if (tables.length === 0) return { fresh: true };
    if (!tables.includes('meta') || !tables.includes('schema_migrations')) {
      throw new StartupError(`database ${file} is not an Airlock database (it holds tables ${tables.slice(0, 5).join(', ')}); move it away or choose another --data-dir`);
    }
    const app = db.prepare(`SELECT value FROM meta WHERE key = 'app'`).pluck().get() as string | undefined;
    if (app !== APP_ID) throw new StartupError(`database ${file} is not an Airlock database (meta.app is ${JSON.stringify(app ?? null)})`);
    checkMigrations(db, file);
    return { fresh: false };
  } catch (e) {
    if (e instanceof StartupError) throw e;
    const msg = (e as Error).message;
    if (/not a database|malformed|file is encrypted/i.test(msg))
      throw new StartupError(`database ${file} is corrupt or not a SQLite file (${msg}); restore it from a backup or move it away`);
    throw new StartupError(`database ${file} cannot be read: ${msg}`);
  } finally {
    db?.close();
    // Leave a refused (or any) file as it was: remove the empty sidecars this look created.
    for (const f of sidecars) {
      try {
        if (!f.endsWith('-wal') || fs.statSync(f).size === 0) fs.rmSync(f);
      } catch {
        /* not created */
      }
    }
  }
}

function checkMigrations(db: DB, file: string): void {
  const rows = db.prepare(`SELECT version, name, checksum FROM schema_migrations ORDER BY version`).all() as {
    version: number;
    name: string;
    checksum: string;
  }[];
  for (const row of rows) {
    if (row.version > LATEST_VERSION) {
      throw new StartupError(
        `database ${file} was written by a newer Airlock (schema version ${row.version}; this build knows up to ${LATEST_VERSION}); upgrade Airlock or restore an older backup`,
      );
    }
    const m = MIGRATIONS.find((x) => x.version === row.version);
    if (!m || checksum(m) !== row.checksum) {
      throw new StartupError(
        `database ${file}: applied migration ${row.version} (${row.name}) does not match this build's (checksum differs); refusing to run on an unknown schema`,
      );
    }
  }
}

export interface OpenOptions {
  /** Run migrations (the serving process and CLI writers do). */
  migrate?: boolean;
}

export function openDatabase(dataDir: string, opts: OpenOptions = {}): DB {
  const file = path.join(dataDir, DB_FILE);
  inspect(file);
  let db: DB;
  try {
    db = new Database(file);
  } catch (e) {
    throw new StartupError(`database ${file} cannot be opened: ${(e as Error).message}`);
  }
  try {
    fs.chmodSync(file, 0o600);
  } catch {
    /* best effort */
  }
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  if (opts.migrate !== false) migrate(db);
  return db;
}

/**
 * Open the database only to read it, for a read-only command on a data dir this user may not
 * write (SQLite needs to create its -wal/-shm files there even to read a WAL database). With no
 * -wal file (no gateway has it open) the file is opened as immutable; with one, read-only
 * through the gateway's -shm. A schema older or newer than this build's is refused (nothing may
 * be migrated here).
 */
export function openDatabaseReadOnly(dataDir: string): DB {
  const file = path.join(dataDir, DB_FILE);
  const why = `the data dir ${dataDir} is not writable by this user${process.getuid ? ` (uid ${process.getuid()})` : ''}, and reading it read-only failed`;
  const fix = 'run the command as the user the gateway runs as (e.g. sudo -u airlock airlock …), or make the data dir writable';
  let db: DB | undefined;
  try {
    db = fs.existsSync(file + '-wal')
      ? new Database(file, { readonly: true, fileMustExist: true })
      : new Database(`${pathToFileURL(file).href}?immutable=1`, { readonly: true, fileMustExist: true });
    const app = db.prepare(`SELECT value FROM meta WHERE key = 'app'`).pluck().get() as string | undefined;
    if (app !== APP_ID) throw new StartupError(`database ${file} is not an Airlock database (meta.app is ${JSON.stringify(app ?? null)})`);
    checkMigrations(db, file);
    const applied = db.prepare(`SELECT MAX(version) FROM schema_migrations`).pluck().get() as number | null;
    if (applied !== LATEST_VERSION)
      throw new StartupError(
        `database ${file} has schema version ${applied ?? 0}, older than this build's ${LATEST_VERSION}, and ${dataDir} is not writable by this user, so it cannot be upgraded here; ${fix} (or start the gateway once: it upgrades the database)`,
      );
    db.pragma('busy_timeout = 5000');
    return db;
  } catch (e) {
    db?.close();
    if (e instanceof StartupError) throw e;
    throw new StartupError(`database ${file} cannot be opened: ${why} (${(e as Error).message}); ${fix}`);
  }
}

/** Whether this process may create and remove files in `dataDir` and write its database. */
export function dataDirWritable(dataDir: string): boolean {
  try {
    fs.accessSync(dataDir, fs.constants.W_OK);
    const file = path.join(dataDir, DB_FILE);
    if (fs.existsSync(file)) fs.accessSync(file, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

export function migrate(db: DB): void {
  db.exec(`CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
           CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;`);
  const tx = db.transaction(() => {
    db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('app', ?)`).run(APP_ID);
    db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('config_version', '0')`).run();
    const applied = new Set(db.prepare(`SELECT version FROM schema_migrations`).pluck().all() as number[]);
    for (const m of MIGRATIONS) {
      if (applied.has(m.version)) continue;
      db.exec(m.sql);
      db.prepare(`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`).run(
        m.version,
        m.name,
        checksum(m),
        Date.now(),
      );
    }
  });
  tx.immediate();
}

export function configVersion(db: DB): number {
  return Number(db.prepare(`SELECT value FROM meta WHERE key = 'config_version'`).pluck().get() ?? 0);
}

export function bumpConfigVersion(db: DB): number {
  db.prepare(`UPDATE meta SET value = CAST(CAST(value AS INTEGER) + 1 AS TEXT) WHERE key = 'config_version'`).run();
  return configVersion(db);
}
