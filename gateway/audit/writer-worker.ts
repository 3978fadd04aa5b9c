// The audit log's writer for queued records (data-plane summaries): a worker thread with its own
// SQLite connection, so hashing, the chain's triggers and a database held busy by another
// process never hold up the event loop that serves requests (as the ledger's writer does). It
// extends the same chain as the main thread's immediate records (each batch reads the head
// inside BEGIN IMMEDIATE), keeps records it could not write and retries; when the database
// refuses, it keeps probing until a record would be accepted, and reports each change of state.
import path from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import { Secrets } from '../store/secrets.js';
import { DB_FILE } from '../store/db.js';
import { AuditKey } from './key.js';
import { AuditLog, type AuditEntry } from './log.js';

export type ToAuditWriter = { type: 'entries'; entries: AuditEntry[]; checkpointEvery: number } | { type: 'probe' } | { type: 'close' };
export type FromAuditWriter = { type: 'written'; count: number } | { type: 'failed'; error: string; pending: number } | { type: 'closed'; unwritten: number };

if (parentPort) {
  const { dataDir, retryMs } = workerData as { dataDir: string; retryMs: number };
  const db = new Database(path.join(dataDir, DB_FILE), { fileMustExist: true });
  db.pragma('busy_timeout = 1000');
  db.pragma('synchronous = NORMAL');
  let every = 1000;
  const log = new AuditLog(db, AuditKey.load(dataDir, Secrets.load(dataDir)), { checkpointEvery: () => every });
  const port = parentPort;
  const send = (m: FromAuditWriter) => port.postMessage(m);
  let pending: AuditEntry[] = [];
  let failing = false;
  let retry: NodeJS.Timeout | undefined;

  const write = () => {
    if (retry) clearTimeout(retry);
    retry = undefined;
    const batch = pending;
    try {
      if (batch.length) log.writeNow(batch);
      else if (failing) log.probe();
      else return;
      pending = pending.slice(batch.length);
      failing = false;
      send({ type: 'written', count: batch.length });
    } catch (e) {
      failing = true;
      send({ type: 'failed', error: (e as Error).message, pending: pending.length });
      retry = setTimeout(write, retryMs);
    }
  };

  port.on('message', (m: ToAuditWriter) => {
    if (m.type === 'entries') {
      every = m.checkpointEvery;
      pending = pending.concat(m.entries);
      if (!failing) write();
    } else if (m.type === 'probe') {
      // the main thread believes the log unwritable: look now (and report either way)
      failing = true;
      write();
    } else {
      write();
      if (retry) clearTimeout(retry);
      db.close();
      send({ type: 'closed', unwritten: pending.length });
      port.close();
    }
  });
}
