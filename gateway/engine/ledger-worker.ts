// The ledger's writer: a worker thread with its own SQLite connection, so a batch insert, a
// database held busy by another process (busy_timeout) or a retention delete never blocks the
// event loop that serves requests. It keeps rows it could not write and retries; the main
// thread learns of every commit and every failure (gateway/engine/ledger.ts).
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { LEDGER_COLUMNS, type LedgerRow, type ToWorker, type FromWorker } from './ledger-protocol.js';

const { file, busyTimeoutMs, retryMs } = workerData as { file: string; busyTimeoutMs: number; retryMs: number };
const db = new Database(file, { fileMustExist: true });
db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
db.pragma('synchronous = NORMAL');
// Plain INSERT: a row is never replaced (the key is the gateway's own, unique request id).
const insert = db.prepare(`INSERT INTO ledger (${LEDGER_COLUMNS.join(', ')}) VALUES (${LEDGER_COLUMNS.map((c) => '@' + c).join(', ')})`);
const writeBatch = db.transaction((rows: LedgerRow[]) => {
  for (const r of rows) insert.run(r);
});

let pending: LedgerRow[] = [];
let retry: NodeJS.Timeout | undefined;
const port = parentPort!;
const send = (m: FromWorker) => port.postMessage(m);

function write(): void {
  if (retry) {
    clearTimeout(retry);
    retry = undefined;
  }
  if (!pending.length) return;
  const rows = pending;
  try {
    writeBatch(rows);
    pending = [];
    send({ type: 'written', rows: rows.length });
  } catch (e) {
    send({ type: 'failed', error: (e as Error).message, pending: rows.length });
    retry = setTimeout(write, retryMs);
  }
}

port.on('message', (m: ToWorker) => {
  switch (m.type) {
    case 'rows':
      pending = pending.length ? pending.concat(m.rows) : m.rows;
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
      send({ type: 'closed', unwritten: pending.length });
      port.close();
      break;
  }
});
