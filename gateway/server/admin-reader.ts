// The main thread's side of the admin reads' worker (admin-read-worker.ts). The worker is started
// at the first read and stopped after a quiet minute, so an appliance nobody is looking at keeps
// no second JavaScript heap; a read in flight keeps the process from exiting only while it runs.
// A worker that dies fails the reads it held (each says so) and the next read starts a new one.
import { Worker } from 'node:worker_threads';
import { CursorError } from '../store/cursor.js';
import type { DB } from '../store/db.js';
import type { READS, ReadName, ReadReply, ReadRequest } from './admin-read-worker.js';

type Args<K extends ReadName> = (typeof READS)[K] extends (db: DB, ...args: infer A) => unknown ? A : never;
type Result<K extends ReadName> = ReturnType<(typeof READS)[K]>;

export interface AdminReaderOptions {
  /** how long the worker is kept after its last read (default 60 s) */
  idleMs?: number;
  busyTimeoutMs?: number;
}

export class AdminReader {
  private worker: Worker | undefined;
  private seq = 0;
  /** reads in flight, each with the worker that holds it */
  private readonly waiting = new Map<number, { worker: Worker; resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  private idle: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly file: string,
    private readonly opts: AdminReaderOptions = {},
  ) {}

  /** Run one of the worker's reads on its connection. */
  read<K extends ReadName>(name: K, ...args: Args<K>): Promise<Result<K>> {
    if (this.closed) return Promise.reject(new Error('the gateway is stopping'));
    const w = this.start();
    const id = ++this.seq;
    if (this.idle) clearTimeout(this.idle);
    this.idle = undefined;
    if (this.waiting.size === 0) w.ref();
    return new Promise<Result<K>>((resolve, reject) => {
      this.waiting.set(id, { worker: w, resolve: resolve as (v: unknown) => void, reject });
      try {
        w.postMessage({ id, name, args } satisfies ReadRequest);
      } catch (e) {
        // arguments that cannot be copied to the worker: this read fails, nothing waits for it
        this.answer({ id, error: { message: (e as Error).message, cursor: false } });
      }
    });
  }

  /** Whether a worker is running (the tests look). */
  get running(): boolean {
    return this.worker !== undefined;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.idle) clearTimeout(this.idle);
    const w = this.worker;
    this.worker = undefined;
    if (w) {
      this.fail(w, new Error('the gateway is stopping'));
      await w.terminate();
    }
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(new URL('./admin-read-worker.js', import.meta.url), {
      workerData: { adminReads: { file: this.file, busyTimeoutMs: this.opts.busyTimeoutMs ?? 5000 } },
    });
    w.unref();
    w.on('message', (m: ReadReply) => this.answer(m));
    w.on('error', (e) => {
      if (this.worker === w) this.worker = undefined;
      this.fail(w, new Error(`the admin reads' worker failed: ${e.message ?? (e as { code?: string }).code ?? String(e)}`));
    });
    w.on('exit', (code) => {
      if (this.worker === w) this.worker = undefined;
      this.fail(w, new Error(`the admin reads' worker stopped (exit code ${code})`));
    });
    this.worker = w;
    return w;
  }

  private answer(m: ReadReply): void {
    const p = this.waiting.get(m.id);
    if (!p) return;
    this.waiting.delete(m.id);
    if ('error' in m) p.reject(m.error.cursor ? new CursorError(m.error.message) : new Error(m.error.message));
    else p.resolve(m.value);
    if (this.waiting.size === 0) this.quiet();
  }

  /** No read in flight: the process may exit, and the worker goes after idleMs more. */
  private quiet(): void {
    const w = this.worker;
    if (!w) return;
    w.unref();
    this.idle = setTimeout(() => {
      this.idle = undefined;
      if (this.worker !== w || this.waiting.size) return;
      this.worker = undefined;
      void w.terminate();
    }, this.opts.idleMs ?? 60_000);
    this.idle.unref();
  }

  /** The reads `w` held fail with `e` (a worker stopped for being quiet holds none). */
  private fail(w: Worker, e: Error): void {
    for (const [id, p] of this.waiting) {
      if (p.worker !== w) continue;
      this.waiting.delete(id);
      p.reject(e);
    }
  }
}
