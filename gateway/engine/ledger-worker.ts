// The ledger's writer: a worker thread with its own SQLite connection, so a batch insert, a
// database held busy by another process (busy_timeout) or a retention delete never blocks the
// event loop that serves requests. It keeps rows it could not write and retries; the main
// thread learns of every commit and every failure (gateway/engine/ledger.ts).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { LEDGER_COLUMNS, type LedgerValue, type ToWorker, type FromWorker } from './ledger-protocol.js';

const { file, busyTimeoutMs, retryMs } = workerData as { file: string; busyTimeoutMs: number; retryMs: number };
const db = new Database(file, { fileMustExist: true });
db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
db.pragma('synchronous = NORMAL');
// Plain INSERT: a row is never replaced (the key is the gateway's own, unique request id).
const insert = db.prepare(`INSERT INTO ledger (${LEDGER_COLUMNS.join(', ')}) VALUES (${LEDGER_COLUMNS.map(() => '?').join(', ')})`);
const C = LEDGER_COLUMNS.length;
const writeBatch = db.transaction((values: LedgerValue[]) => {
  for (let k = 0; k < values.length; k += C) insert.run(values.slice(k, k + C));
});

/** rows not yet committed, flattened as the ledger sends them */
let pending: LedgerValue[] = [];
let retry: NodeJS.Timeout | undefined;
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

function write(): void {
  if (retry) {
    clearTimeout(retry);
    retry = undefined;
  }
  if (!pending.length) return;
  const values = pending;
  try {
    writeBatch(values);
    pending = [];
    send({ type: 'written', rows: values.length / C });
  } catch (e) {
    send({ type: 'failed', error: (e as Error).message, pending: values.length / C });
    retry = setTimeout(write, retryMs);
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'rows':
      pending = pending.length ? pending.concat(m.values) : m.values;
      write();
      break;
    case 'prune':
      try {
        const n = db.prepare(`DELETE FROM ledger WHERE ts < ?`).run(m.before).changes;
        send({ type: 'pruned', rows: n, id: m.id });
      } catch (e) {
        send({ type: 'pruned', rows: 0, id: m.id, error: (e as Error).message });
      }
      break;
    case 'close':
      write();
      if (retry) clearTimeout(retry);
      db.close();
      send({ type: 'closed', unwritten: pending.length / C });
      port.close();
      break;
  }
});
