// The ledger's writer, in the recorders' writer thread (gateway/store/recorder-worker.ts): batch
// inserts on that thread's connection, so neither the inserts, a database held busy by another
// process (busy_timeout) nor a retention delete block the event loop that serves requests. It
// keeps rows it could not write and retries; the main thread learns of every commit and every
// failure (gateway/engine/ledger.ts).
import type { PartContext, PartWriter } from '../store/recorder-protocol.js';
import { refreshSessions } from '../store/trace-sessions.js';
import { LEDGER_COLUMNS, type LedgerValue, type ToWorker, type FromWorker } from './ledger-protocol.js';

export interface LedgerWriterInit {
  retryMs: number;
}

export function ledgerWriter({ db, send: post, pace }: PartContext, init: unknown): PartWriter {
  const { retryMs } = init as LedgerWriterInit;
  const send = (m: FromWorker) => post(m);
  const C = LEDGER_COLUMNS.length;
  const TRACE = LEDGER_COLUMNS.indexOf('trace');
  // prepared at the first write, inside its error handling (recorder-worker.ts)
  let writeBatch: ((values: LedgerValue[]) => void) | undefined;
  const prepare = () => {
    // Plain INSERT: a row is never replaced (the key is the gateway's own, unique request id).
    const insert = db.prepare(`INSERT INTO ledger (${LEDGER_COLUMNS.join(', ')}) VALUES (${LEDGER_COLUMNS.map(() => '?').join(', ')})`);
    return db.transaction((values: LedgerValue[]) => {
      for (let k = 0; k < values.length; k += C) {
        insert.run(values.slice(k, k + C));
        pace?.();
      }
    });
  };

  /** rows not yet committed, flattened as the ledger sends them */
  let pending: LedgerValue[] = [];
  let retry: NodeJS.Timeout | undefined;

  function write(): void {
    if (retry) {
      clearTimeout(retry);
      retry = undefined;
    }
    if (!pending.length) return;
    const values = pending;
    try {
      (writeBatch ??= prepare())(values);
      pending = [];
      let traced = 0;
      for (let k = TRACE; k < values.length; k += C) if (values[k] !== null) traced++;
      send({ type: 'written', rows: values.length / C, traced });
    } catch (e) {
      send({ type: 'failed', error: (e as Error).message, pending: values.length / C });
      retry = setTimeout(write, retryMs);
    }
  }

  return (raw) => {
    const m = raw as ToWorker;
    switch (m.type) {
      case 'rows':
        pending = pending.length ? pending.concat(m.values) : m.values;
        write();
        break;
      case 'prune':
        try {
          const n = db
            .transaction(() => {
              const gone = db.prepare(`DELETE FROM ledger WHERE ts < ?`).run(m.before).changes;
              if (gone) refreshSessions(db, m.before); // the workflows that lost a step (trace-sessions.ts)
              return gone;
            })
            .immediate();
          send({ type: 'pruned', rows: n, id: m.id });
        } catch (e) {
          send({ type: 'pruned', rows: 0, id: m.id, error: (e as Error).message });
        }
        break;
      case 'close':
        write();
        if (retry) clearTimeout(retry);
        send({ type: 'closed', unwritten: pending.length / C });
        break;
    }
  };
}
