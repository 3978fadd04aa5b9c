// The recorders' writer thread (see recorder.ts): one SQLite connection, one writer per attached
// part. Each writer keeps what it could not write and retries on its own timer, so a part whose
// writes fail does not hold up the others (beyond one busy timeout, when the whole database is
// held busy by another process). Creating a writer never touches the database (its statements
// are prepared at its first write, inside its own error handling): a part that cannot write yet
// must not take the thread, and the other parts, down with it. The thread ends when the last part
// detaches.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { ledgerWriter } from '../engine/ledger-writer.js';
import { auditWriter } from '../audit/writer.js';
import { spanWriter } from '../telemetry/span-writer.js';
import { promptLogWriter } from '../audit/prompt-log-writer.js';
import type { FromRecorder, PartContext, PartName, PartWriter, ToRecorder } from './recorder-protocol.js';

// Pacing. When this thread and the event loop that serves requests share one core (a small
// appliance, or a gateway pinned to one CPU), a request that arrives while a batch is being written
// waits until the kernel takes the core from this thread — up to a scheduler slice, a few ms. So a
// writer that has run for a slice of its own (AIRLOCK_WRITER_SLICE_US, default 250 µs; 0: never)
// sleeps for a moment between rows (pace() in PartContext), and the kernel runs the event loop if
// it is waiting. With a core to itself nothing is waiting: the sleep costs a few tens of µs of wall
// time per slice, no CPU.
const SLICE_MS = Math.max(0, Number(process.env.AIRLOCK_WRITER_SLICE_US ?? 250) || 0) / 1000;
const gate = new Int32Array(new SharedArrayBuffer(4));
let sliceStart = 0;
function pace(): void {
  const now = performance.now();
  if (now - sliceStart < SLICE_MS) return;
  Atomics.wait(gate, 0, 0, 0.02);
  sliceStart = performance.now();
}

const WRITERS: Record<PartName, (ctx: PartContext, init: unknown) => PartWriter> = {
  ledger: ledgerWriter,
  audit: auditWriter,
  spans: spanWriter,
  'prompt-log': promptLogWriter,
};

if (parentPort) {
  const { file, dataDir, busyTimeoutMs } = workerData as { file: string; dataDir: string | undefined; busyTimeoutMs: number };
  const port = parentPort;
  const db = new Database(file, { fileMustExist: true });
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma('synchronous = NORMAL');
  const writers = new Map<PartName, PartWriter>();
  let attached = 0;

  port.on('message', (m: ToRecorder) => {
    // the thread was waiting for this message: a new slice begins
    sliceStart = performance.now();
    switch (m.type) {
      case 'init':
        if (!writers.has(m.part)) attached++;
        writers.set(
          m.part,
          WRITERS[m.part]({ db, dataDir, pace: SLICE_MS > 0 ? pace : undefined, send: (msg: unknown) => port.postMessage({ part: m.part, msg } satisfies FromRecorder) }, m.init),
        );
        break;
      case 'msg':
        writers.get(m.part)?.(m.msg);
        break;
      case 'detach':
        if (writers.delete(m.part)) attached--;
        if (attached === 0) {
          db.close();
          port.close();
        }
        break;
    }
  });
}
