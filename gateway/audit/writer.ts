// The audit log's writer for queued records (data-plane summaries), in the recorders' writer
// thread (gateway/store/recorder-worker.ts): hashing, the chain's triggers and a database held
// busy by another process never hold up the event loop that serves requests. It extends the same
// chain as the main thread's immediate records (each batch reads the head inside BEGIN
// IMMEDIATE), keeps records it could not write and retries; when the database refuses, it keeps
// probing until a record would be accepted, and reports each change of state.
import { Secrets } from '../store/secrets.js';
import type { PartContext, PartWriter } from '../store/recorder-protocol.js';
import { AuditKey } from './key.js';
import { AuditLog, ENCODED_FIELDS, type EncodedValue } from './log.js';

export type ToAuditWriter = { type: 'entries'; values: EncodedValue[]; checkpointEvery: number } | { type: 'probe' } | { type: 'close' };
export type FromAuditWriter = { type: 'written'; count: number } | { type: 'failed'; error: string; pending: number } | { type: 'closed'; unwritten: number };

export interface AuditWriterInit {
  dataDir: string;
  retryMs: number;
}

export function auditWriter({ db, send: post, pace }: PartContext, init: unknown): PartWriter {
  const { dataDir, retryMs } = init as AuditWriterInit;
  let every = 1000;
  // the signing key is loaded at the first write, inside its error handling (recorder-worker.ts)
  let log: AuditLog | undefined;
  const open = () => new AuditLog(db, AuditKey.load(dataDir, Secrets.load(dataDir)), { checkpointEvery: () => every });
  const send = (m: FromAuditWriter) => post(m);
  /** entries not yet written, encoded as the log sends them (ENCODED_FIELDS values each) */
  let pending: EncodedValue[] = [];
  let failing = false;
  let retry: NodeJS.Timeout | undefined;

  const write = () => {
    if (retry) clearTimeout(retry);
    retry = undefined;
    const batch = pending;
    try {
      log ??= open();
      if (batch.length) log.writeEncoded(batch, pace);
      else if (failing) log.probe();
      else return;
      pending = pending.slice(batch.length);
      failing = false;
      send({ type: 'written', count: batch.length / ENCODED_FIELDS });
    } catch (e) {
      failing = true;
      send({ type: 'failed', error: (e as Error).message, pending: pending.length / ENCODED_FIELDS });
      retry = setTimeout(write, retryMs);
    }
  };

  return (raw) => {
    const m = raw as ToAuditWriter;
    if (m.type === 'entries') {
      every = m.checkpointEvery;
      pending = pending.length ? pending.concat(m.values) : m.values;
      if (!failing) write();
    } else if (m.type === 'probe') {
      // the main thread believes the log unwritable: look now (and report either way)
      failing = true;
      write();
    } else {
      write();
      if (retry) clearTimeout(retry);
      send({ type: 'closed', unwritten: pending.length / ENCODED_FIELDS });
    }
  };
}
