// The shell's log: one file in the data dir (logs/airlock.log) with the shell's own lines and
// everything the gateway prints, rotated by size (airlock.log.1 … airlock.log.N).
import fs from 'node:fs';
import path from 'node:path';

export interface RotatingLogOptions {
  dir: string;
  /** File name. Default airlock.log */
  name?: string;
  /** Rotate when the file would grow past this. Default 5 MiB. */
  maxBytes?: number;
  /** Rotated files kept (airlock.log.1 … .keep). Default 5. */
  keep?: number;
  now?: () => Date;
}

export class RotatingLog {
  readonly path: string;
  private readonly maxBytes: number;
  private readonly keep: number;
  private readonly now: () => Date;
  private fd: number | null = null;
  private size = 0;

  constructor(opts: RotatingLogOptions) {
    this.path = path.join(opts.dir, opts.name ?? 'airlock.log');
    this.maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
    this.keep = Math.max(0, opts.keep ?? 5);
    this.now = opts.now ?? (() => new Date());
    fs.mkdirSync(opts.dir, { recursive: true, mode: 0o700 });
    this.open();
  }

  /** Write one line, prefixed with the time and its source ("shell", "gateway"). */
  write(source: string, line: string): void {
    this.writeRaw(`${this.now().toISOString()} [${source}] ${line.replace(/\r?\n$/, '')}\n`);
  }

  /** Write text as it is (it should end with a newline). */
  writeRaw(text: string): void {
    const buf = Buffer.from(text, 'utf8');
    if (this.size > 0 && this.size + buf.length > this.maxBytes) this.rotate();
    if (this.fd === null) this.open();
    try {
      fs.writeSync(this.fd!, buf);
      this.size += buf.length;
    } catch {
      // A full disk must not take the shell down; the next write tries again.
    }
  }

  close(): void {
    if (this.fd !== null) fs.closeSync(this.fd);
    this.fd = null;
  }

  /** The rotated files that exist now, newest first. */
  rotatedFiles(): string[] {
    const out: string[] = [];
    for (let i = 1; i <= this.keep; i++) if (fs.existsSync(`${this.path}.${i}`)) out.push(`${this.path}.${i}`);
    return out;
  }

  private open(): void {
    this.fd = fs.openSync(this.path, 'a', 0o600);
    this.size = fs.fstatSync(this.fd).size;
  }

  private rotate(): void {
    this.close();
    if (this.keep === 0) {
      fs.rmSync(this.path, { force: true });
    } else {
      fs.rmSync(`${this.path}.${this.keep}`, { force: true });
      for (let i = this.keep - 1; i >= 1; i--) {
        if (fs.existsSync(`${this.path}.${i}`)) fs.renameSync(`${this.path}.${i}`, `${this.path}.${i + 1}`);
      }
      fs.renameSync(this.path, `${this.path}.1`);
    }
    this.open();
  }
}

/** Split a stream of chunks into lines; call `flush()` at the end for a last line without newline. */
export function lineSplitter(onLine: (line: string) => void): { push(chunk: Buffer | string): void; flush(): void } {
  let pending = '';
  return {
    push(chunk) {
      pending += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      let i: number;
      while ((i = pending.indexOf('\n')) >= 0) {
        onLine(pending.slice(0, i).replace(/\r$/, ''));
        pending = pending.slice(i + 1);
      }
      // A runaway line without newline must not grow without bound.
      if (pending.length > 64 * 1024) {
        onLine(pending);
        pending = '';
      }
    },
    flush() {
      if (pending) onLine(pending.replace(/\r$/, ''));
      pending = '';
    },
  };
}
