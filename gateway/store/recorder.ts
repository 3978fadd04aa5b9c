// The recorders' writer thread: one worker thread with one SQLite connection that writes what the
// data plane records — ledger rows (engine/ledger.ts), queued audit records (audit/log.ts) and
// trace spans (telemetry/span-store.ts). Each recorder is a "part": its main-thread side keeps its
// own queue, policy and state, and its writer side (a PartWriter in recorder-worker.ts) writes in
// its own transactions, so one part's failure (an audit trigger refusing, a full disk for spans)
// never costs another part its rows. One thread instead of one per recorder: the gateway pays for
// one V8 isolate and one connection, and a flush of every part wakes one thread.
//
// A part attaches with its init data and talks to its writer with post(); its writer's messages
// come back to onMessage. When the thread dies, every part hears onLost (what it had handed over
// is gone) and the thread is started again with every attached part's init. The thread ends when
// the last part detaches.
import { Worker } from 'node:worker_threads';
import type { PartName, ToRecorder, FromRecorder } from './recorder-protocol.js';

export type { PartName };

export interface PartClient {
  /** a message from this part's writer */
  onMessage(m: unknown): void;
  /** the thread died: what this part had handed over is lost (the thread is restarted) */
  onLost(e: Error): void;
}

export interface RecorderThreadOptions {
  /** the data dir (the audit part loads its signing key from there) */
  dataDir?: string;
  /** how long one write waits for a database lock before it counts as failed (default 1000) */
  busyTimeoutMs?: number;
  log?: (line: string) => void;
}

export class RecorderThread {
  private worker: Worker | undefined;
  private readonly parts = new Map<PartName, { client: PartClient; init: unknown }>();
  private readonly log: (line: string) => void;
  private restarts = 0;
  private refs = 0;
  /** messages posted while the thread is being restarted */
  private held: ToRecorder[] = [];
  private restartTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly file: string,
    private readonly opts: RecorderThreadOptions = {},
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`airlock: ${l}\n`));
  }

  get dataDir(): string | undefined {
    return this.opts.dataDir;
  }

  /** Attach a part (its writer is created in the thread with `init`). */
  attach(part: PartName, init: unknown, client: PartClient): void {
    if (this.parts.has(part)) throw new Error(`recorder part ${part} is attached already`);
    this.parts.set(part, { client, init });
    if (!this.worker && !this.restartTimer) this.start();
    this.send({ part, type: 'init', init });
  }

  private send(m: ToRecorder): void {
    if (this.worker) this.worker.postMessage(m);
    else this.held.push(m);
  }

  /** A message for a part's writer. */
  post(part: PartName, msg: unknown): void {
    if (!this.parts.has(part)) throw new Error(`recorder part ${part} is not attached`);
    this.send({ part, type: 'msg', msg });
  }

  /** Detach a part (after its writer said it closed); the thread ends with the last one. */
  async detach(part: PartName): Promise<void> {
    if (!this.parts.delete(part)) return;
    this.send({ part, type: 'detach' });
    if (this.parts.size) return;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    this.held = [];
    const w = this.worker;
    if (!w) return;
    this.worker = undefined;
    await new Promise<void>((resolve) => {
      const t = setTimeout(resolve, 5000);
      w.once('exit', () => {
        clearTimeout(t);
        resolve();
      });
    });
    await w.terminate().catch(() => undefined);
  }

  /** Stop a part: send its writer `closeMsg` and wait, keeping the process alive, until the
   * part's client calls the function `onClosed` is given (when its writer answers that it closed,
   * or the thread is lost); then detach the part. Resolves with what the client passed (the
   * count of what could not be written). */
  async stopPart(part: PartName, closeMsg: unknown, onClosed: (done: (unwritten: number) => void) => void): Promise<number> {
    this.ref();
    try {
      return await new Promise<number>((resolve) => {
        onClosed(resolve);
        this.post(part, closeMsg);
      });
    } finally {
      this.unref();
      await this.detach(part);
    }
  }

  /** Keep the process alive while a part waits for its writer (a stop waits for the last rows);
   * each ref() is paired with an unref(). */
  ref(): void {
    if (this.refs++ === 0) this.worker?.ref();
  }

  unref(): void {
    if (--this.refs === 0) this.worker?.unref();
  }

  private start(): Worker {
    const w = new Worker(new URL('./recorder-worker.js', import.meta.url), {
      workerData: { file: this.file, dataDir: this.opts.dataDir, busyTimeoutMs: this.opts.busyTimeoutMs ?? 1000 },
      // The writer's garbage is short-lived rows: a small young generation is enough, and V8
      // would otherwise grow it to 16 MB per semi-space under a burst and keep it.
      resourceLimits: { maxYoungGenerationSizeMb: 4 },
    });
    if (this.refs === 0) w.unref();
    w.on('message', (m: FromRecorder) => this.parts.get(m.part)?.client.onMessage(m.msg));
    let failure: Error | undefined;
    w.on('error', (e) => (failure = e instanceof Error ? e : new Error(JSON.stringify(e))));
    w.on('exit', (code) => {
      if (this.worker !== w) return; // detached: the thread was meant to end
      this.worker = undefined;
      const e = failure ?? new Error(`the thread exited (code ${code})`);
      // a thread that keeps failing is restarted less and less often (at most every 5 s)
      const delay = Math.min(5000, 100 * 2 ** Math.min(6, this.restarts++));
      this.log(`recorder thread failed (${e.message}); restarting it in ${delay} ms`);
      for (const p of this.parts.values()) p.client.onLost(e);
      this.held = [];
      this.restartTimer = setTimeout(() => {
        this.restartTimer = undefined;
        if (!this.parts.size) return;
        const n = this.start();
        for (const [part, p] of this.parts) n.postMessage({ part, type: 'init', init: p.init } satisfies ToRecorder);
        for (const m of this.held.splice(0)) if (m.type !== 'init') n.postMessage(m);
      }, delay);
      this.restartTimer.unref();
    });
    this.worker = w;
    return w;
  }
}
