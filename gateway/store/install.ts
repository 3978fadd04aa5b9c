// An install is a data dir holding airlock.db and the install.key it was written with. The
// database records which install.key that is (meta install_key_id, a fingerprint, never the key),
// so a database and a key that do not belong together are refused with the fix, before virtual
// keys are silently rejected and upstream secrets cannot be decrypted.
import fs from 'node:fs';
import path from 'node:path';
import { DB_FILE, dataDirWritable, ensureDataDir, openDatabase, openDatabaseReadOnly, StartupError, type DB } from './db.js';
import { Secrets, SECRET_FILE } from './secrets.js';
import { holdForCommand } from './data-dir-lock.js';

const DATA_DIR_HINT = 'pass --data-dir DIR (or set AIRLOCK_DATA_DIR) with the data dir your gateway uses';

/** The install key id a database was written with (undefined: a new database, or one older than the check). */
export function installKeyId(db: DB): string | undefined {
  return db.prepare(`SELECT value FROM meta WHERE key = 'install_key_id'`).pluck().get() as string | undefined;
}

/**
 * The install secret of `dataDir`, checked against the database: a missing install.key is only
 * created for a database that never had one; one that does not match is refused.
 */
export function loadSecretsFor(db: DB, dataDir: string, opts: { create?: boolean } = {}): Secrets {
  const file = path.join(dataDir, SECRET_FILE);
  const dbFile = path.join(dataDir, DB_FILE);
  const bound = installKeyId(db);
  const fix = `put back the install.key that belongs to this database, or restore an encrypted backup made by "airlock backup" (it carries its install.key)`;
  if (bound && !fs.existsSync(file)) throw new StartupError(`install secret ${file} is missing (the database ${dbFile} was written with install key ${bound}); ${fix}`);
  const secrets = Secrets.load(dataDir, opts);
  // (a database opened read-only is bound at its next writable open)
  if (!bound) {
    if (!db.readonly) db.prepare(`INSERT OR IGNORE INTO meta (key, value) VALUES ('install_key_id', ?)`).run(secrets.id);
  } else if (bound !== secrets.id)
    throw new StartupError(`install secret ${file} (install key ${secrets.id}) does not belong to the database ${dbFile} (written with install key ${bound}); ${fix}`);
  return secrets;
}

/** Refuse a data dir that holds no install (read-only commands never create one). */
export function requireInstall(dataDir: string): void {
  let st: fs.Stats;
  try {
    st = fs.statSync(dataDir);
  } catch {
    throw new StartupError(`no Airlock install at ${dataDir} (the directory does not exist); ${DATA_DIR_HINT}`);
  }
  if (!st.isDirectory()) throw new StartupError(`no Airlock install at ${dataDir} (it is not a directory); ${DATA_DIR_HINT}`);
  const db = path.join(dataDir, DB_FILE);
  if (!fs.existsSync(db) || fs.statSync(db).size === 0) throw new StartupError(`no Airlock install at ${dataDir} (it holds no ${DB_FILE}); ${DATA_DIR_HINT}`);
}

/** The plan of a restore being applied (store/backup.ts): while it is there, the data dir's
 * files may be between two installs (the database of one, the install.key of the other). */
export const RESTORE_JOURNAL = 'restore-journal.json';

/** Refuse a data dir in the middle of a restore: only "airlock serve" (or "airlock restore")
 * completes or undoes it, under the data dir's lock. */
export function refuseMidRestore(dataDir: string): void {
  if (fs.existsSync(path.join(dataDir, RESTORE_JOURNAL)))
    throw new StartupError(
      `a restore into ${dataDir} is being applied or was interrupted (${RESTORE_JOURNAL} is there), so its files may be between two installs; wait for a running "airlock restore", or start "airlock serve" (it completes or undoes the restore), then run this command again`,
    );
}

/** Open an install's database and secret (the commands other than serve and restore);
 * `existing`: refuse to create one. A data dir in the middle of a restore is refused. */
export function openInstall(dataDir: string, opts: { existing: boolean; readOnly?: boolean }): { db: DB; secrets: Secrets } {
  refuseMidRestore(dataDir);
  if (opts.existing || opts.readOnly) requireInstall(dataDir);
  else ensureDataDir(dataDir);
  // A read-only command (a list, an export) on a data dir this user may not write: the database
  // is opened read-only (openDatabaseReadOnly), which needs SQLite's URI file names; they are
  // switched on when the SQLite addon loads, i.e. before this process's first database.
  const writable = dataDirWritable(dataDir);
  const readOnly = !!opts.readOnly && !writable;
  if (!opts.readOnly && !writable)
    throw new StartupError(
      `data dir ${dataDir} is not writable by this user${process.getuid ? ` (uid ${process.getuid()})` : ''}, and this command changes the install; run it as the user the gateway runs as (e.g. sudo -u airlock airlock …), or make the data dir writable`,
    );
  const uri = process.env.SQLITE_USE_URI;
  if (readOnly) process.env.SQLITE_USE_URI = '1';
  let hold: ReturnType<typeof holdForCommand>;
  try {
    // no restore may start while this command has the database open (nor this one during a restore)
    hold = holdForCommand(dataDir);
  } finally {
    if (readOnly) {
      if (uri === undefined) delete process.env.SQLITE_USE_URI;
      else process.env.SQLITE_USE_URI = uri;
    }
  }
  let db: DB | undefined;
  try {
    refuseMidRestore(dataDir);
    db = readOnly ? openDatabaseReadOnly(dataDir) : openDatabase(dataDir);
    // the hold lasts as long as the database is open
    const close = db.close.bind(db);
    db.close = () => {
      try {
        return close();
      } finally {
        hold.close();
      }
    };
    return { db, secrets: loadSecretsFor(db, dataDir, { create: !opts.existing }) };
  } catch (e) {
    if (db) db.close();
    else hold.close();
    throw e;
  }
}
