// Small files that must survive a crash or a pulled USB stick: written and fsynced before they
// count, and put in place so a crash leaves the old file or the new one, never half of one.
import fs from 'node:fs';

/** Write `data` to `file` and fsync it. `flag`: 'w' replaces, 'wx' refuses an existing file. */
export function writeSynced(file: string, data: string, opts: { flag?: 'w' | 'wx'; mode?: number } = {}): void {
  const fd = fs.openSync(file, opts.flag ?? 'w', opts.mode ?? 0o600);
  try {
    fs.writeSync(fd, data);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** Replace `file` atomically: a synced temporary file renamed over it. */
export function replaceSynced(file: string, data: string, mode = 0o600): void {
  const tmp = `${file}.tmp`;
  writeSynced(tmp, data, { mode });
  fs.renameSync(tmp, file);
}

/** Create `file` once: a synced temporary file linked into place, so two processes starting at
 * once agree on one. Returns false when the file already existed (this one was not written). */
export function createSynced(file: string, data: string, mode = 0o600): boolean {
  const tmp = `${file}.${process.pid}.tmp`;
  try {
    writeSynced(tmp, data, { mode });
    fs.linkSync(tmp, file);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw e;
  } finally {
    fs.rmSync(tmp, { force: true });
  }
}

/** fsync a file already written (e.g. by a stream). */
export function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** fsync a directory, so the names created or renamed in it are durable (best effort: not
 * every platform syncs directories). */
export function syncDir(dir: string): void {
  try {
    fsyncFile(dir);
  } catch {
    /* directories cannot be synced on every platform */
  }
}

/** syncDir without blocking the event loop. */
export async function syncDirAsync(dir: string): Promise<void> {
  try {
    const h = await fs.promises.open(dir, 'r');
    try {
      await h.sync();
    } finally {
      await h.close();
    }
  } catch {
    /* not every platform syncs directories */
  }
}
