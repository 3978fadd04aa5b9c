// One gateway (or restore) per data dir: an exclusive lock that the operating system drops when
// its process ends, however it ends (SIGKILL, power loss), so a crash never leaves a lock that
// blocks the next start.
//
// The lock is SQLite's own file lock (fcntl on POSIX, LockFileEx on Windows) on an empty
// database, `airlock.lock`, held by an open exclusive transaction: nothing is ever written to it,
// and the file stays in the data dir (deleting a lock file that another process may have opened
// already is how two processes end up "holding" it). Who holds it is written next to it, to
// `airlock.pid` (JSON: pid, role, listen URLs), so a refused process can say which PID to stop.
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { StartupError } from './db.js';

export const LOCK_FILE = 'airlock.lock';
export const HOLDER_FILE = 'airlock.pid';

export type LockRole = 'serve' | 'restore';

export interface LockHolder {
  pid: number;
  role: LockRole;
  started_at: string;
  /** data and admin plane URLs, once a gateway listens */
  data?: string;
  admin?: string;
}

/** Who holds the data dir's lock, as written by the holder (undefined: not written yet, or unreadable). */
export function readHolder(dataDir: string): LockHolder | undefined {
  try {
    const h = JSON.parse(fs.readFileSync(path.join(dataDir, HOLDER_FILE), 'utf8')) as LockHolder;
    return typeof h.pid === 'number' ? h : undefined;
  } catch {
    return undefined;
  }
}

/** "an Airlock gateway (PID 123, data plane http://…, admin plane http://…)" */
export function describeHolder(h: LockHolder | undefined): string {
  if (!h) return 'another Airlock process (it is starting or stopping; its PID is not written yet)';
  if (h.role === 'restore') return `an Airlock restore (PID ${h.pid})`;
  const where = [h.data && `data plane ${h.data}`, h.admin && `admin plane ${h.admin}`].filter(Boolean).join(', ');
  return `an Airlock gateway (PID ${h.pid}${where ? `, ${where}` : ', starting'})`;
}

/**
 * An exclusive operating-system lock on `file` (created empty, 0600, if missing): the open
 * connection holding it, or undefined when another process holds it. The lock lasts until the
 * connection is closed or the process ends; the file is never deleted.
 */
export function takeFileLock(file: string): Database.Database | undefined {
  return lockFile(file, 'exclusive');
}

/**
 * A shared operating-system lock on `file` (created empty, 0600, if missing): a read transaction
 * held open. undefined when another process holds the file's exclusive lock (takeFileLock()).
 */
export function takeSharedFileLock(file: string): Database.Database | undefined {
  return lockFile(file, 'shared');
}

function lockFile(file: string, mode: 'exclusive' | 'shared'): Database.Database | undefined {
  let db: Database.Database;
  try {
    db = new Database(file, { timeout: 0 });
  } catch (e) {
    throw new StartupError(`lock file ${file} cannot be opened: ${(e as Error).message}`);
  }
  try {
    fs.chmodSync(file, 0o600);
  } catch {
    /* best effort, like the database */
  }
  try {
    if (mode === 'exclusive') db.exec('BEGIN EXCLUSIVE');
    else {
      db.exec('BEGIN');
      // the first read takes SHARED, kept until the transaction ends
      db.prepare('SELECT count(*) FROM sqlite_master').get();
    }
    return db;
  } catch (e) {
    db.close();
    if ((e as { code?: string }).code === 'SQLITE_BUSY') return undefined;
    throw new StartupError(`lock file ${file} cannot be locked: ${(e as Error).message}`);
  }
}

/** Held SHARED by each command that opens an install's database (openInstall(): keys, config,
 * backup, ...) and EXCLUSIVE by a restore while it replaces the database, so neither starts while
 * the other runs. Separate from LOCK_FILE, which a running gateway holds: commands work beside a
 * gateway, never beside a restore. */
export const COMMANDS_LOCK_FILE = 'airlock.commands.lock';

/** A command's shared hold on the data dir (see COMMANDS_LOCK_FILE), or a StartupError saying a
 * restore is running. Close the returned connection to drop it (the process's end drops it too). */
export function holdForCommand(dataDir: string): Database.Database {
  const db = takeSharedFileLock(path.join(dataDir, COMMANDS_LOCK_FILE));
  if (!db) throw new StartupError(`a restore into ${dataDir} is running (${describeHolder(readHolder(dataDir))}); wait for it to finish, then run this command again`);
  return db;
}

/** A restore's exclusive hold on the data dir against commands (see COMMANDS_LOCK_FILE): the
 * connection holding it, or undefined while a command runs. */
export function holdAgainstCommands(dataDir: string): Database.Database | undefined {
  return takeFileLock(path.join(dataDir, COMMANDS_LOCK_FILE));
}

/** What a refused restore is told while a command holds the data dir. */
export const COMMAND_RUNNING = 'another airlock command (e.g. "airlock keys", "airlock backup") is using it';

export class DataDirBusyError extends StartupError {
  constructor(
    readonly dataDir: string,
    readonly holder: LockHolder | undefined,
    advice: string,
  ) {
    super(`data dir ${dataDir} is in use by ${describeHolder(holder)}; ${advice}`);
  }
}

export class DataDirLock {
  private released = false;
  private holder: LockHolder;

  private constructor(
    readonly dataDir: string,
    private readonly db: Database.Database,
    role: LockRole,
  ) {
    this.holder = { pid: process.pid, role, started_at: new Date().toISOString() };
    this.write();
  }

  /**
   * Take the data dir's lock now or throw a DataDirBusyError naming the holder; `advice` ends
   * that message (what the refused person should do). The data dir must exist.
   */
  static acquire(dataDir: string, role: LockRole, advice: string): DataDirLock {
    const db = takeFileLock(path.join(dataDir, LOCK_FILE));
    if (!db) throw new DataDirBusyError(dataDir, readHolder(dataDir), advice);
    try {
      return new DataDirLock(dataDir, db, role);
    } catch (e) {
      db.close();
      throw e;
    }
  }

  /** Add the listen URLs (or other details) to what a refused process is told. */
  update(details: Partial<Pick<LockHolder, 'data' | 'admin'>>): void {
    this.holder = { ...this.holder, ...details };
    this.write();
  }

  private write(): void {
    const file = path.join(this.dataDir, HOLDER_FILE);
    const tmp = `${file}.${process.pid}.tmp`;
    try {
      fs.writeFileSync(tmp, JSON.stringify(this.holder) + '\n', { mode: 0o600 });
      fs.renameSync(tmp, file);
    } catch (e) {
      fs.rmSync(tmp, { force: true });
      throw new StartupError(`${file} cannot be written: ${(e as Error).message}`);
    }
  }

  /** Drop the lock (the holder file goes first: only the holder ever touches it). */
  release(): void {
    if (this.released) return;
    this.released = true;
    try {
      if (readHolder(this.dataDir)?.pid === process.pid) fs.rmSync(path.join(this.dataDir, HOLDER_FILE), { force: true });
    } catch {
      /* best effort: a stale holder file is overwritten by the next holder */
    }
    try {
      this.db.exec('ROLLBACK');
    } catch {
      /* closing releases it too */
    }
    this.db.close();
  }
}
