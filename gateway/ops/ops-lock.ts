// One install, upgrade or uninstall at a time per install root: an exclusive operating-system lock
// on ROOT/.airlock-ops.lock (the same kind of lock as the data dir's, dropped by the OS however the
// holder ends, so a killed upgrade never blocks the next one), and who holds it in
// ROOT/.airlock-ops.pid, so a refused command names the PID in its one line.
import type Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { StartupError } from '../store/db.js';
import { takeFileLock } from '../store/data-dir-lock.js';

export const OPS_LOCK_FILE = '.airlock-ops.lock';
export const OPS_HOLDER_FILE = '.airlock-ops.pid';

interface OpsHolder {
  pid: number;
  command: string;
  started_at: string;
}

export class OpsBusyError extends StartupError {}

export class OpsLock {
  private constructor(
    private readonly root: string,
    private readonly db: Database.Database,
  ) {}

  /** Take the lock of install root `root` (created if missing) for `command`, or throw an OpsBusyError naming the holder. */
  static acquire(root: string, command: string): OpsLock {
    fs.mkdirSync(root, { recursive: true, mode: 0o755 });
    const db = takeFileLock(path.join(root, OPS_LOCK_FILE));
    if (!db) {
      let h: OpsHolder | undefined;
      try {
        h = JSON.parse(fs.readFileSync(path.join(root, OPS_HOLDER_FILE), 'utf8')) as OpsHolder;
      } catch {
        /* not written yet */
      }
      const who = h ? `"airlock ${h.command}" (PID ${h.pid}, since ${h.started_at})` : 'another airlock install, upgrade or uninstall (its PID is not written yet)';
      throw new OpsBusyError(`${root} is locked by ${who}: wait for it to finish, then run "airlock ${command}" again; nothing was changed`);
    }
    const holder: OpsHolder = { pid: process.pid, command, started_at: new Date().toISOString() };
    const file = path.join(root, OPS_HOLDER_FILE);
    fs.writeFileSync(`${file}.${process.pid}.tmp`, JSON.stringify(holder) + '\n', { mode: 0o644 });
    fs.renameSync(`${file}.${process.pid}.tmp`, file);
    return new OpsLock(root, db);
  }

  release(): void {
    if (!this.db.open) return;
    try {
      fs.rmSync(path.join(this.root, OPS_HOLDER_FILE), { force: true });
    } catch {
      /* a stale holder file is overwritten by the next holder */
    }
    this.db.close();
  }
}

/** Run `fn` holding the install root's lock. */
export async function withOpsLock<T>(root: string, command: string, fn: () => Promise<T>): Promise<T> {
  const lock = OpsLock.acquire(root, command);
  try {
    return await fn();
  } finally {
    lock.release();
  }
}
