// The span store's writer: a worker thread with its own SQLite connection, so batch inserts, a
// database held busy by another process and retention deletes never block the event loop that
// serves requests (like the ledger's writer). Spans it could not write are kept (bounded) and tried again.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';
import type { SpanData } from './span.js';

export type ToWriter =
  | { type: 'spans'; spans: SpanData[] }
  | { type: 'flush'; id: number }
  | { type: 'prune'; id: number; olderThan: number; maxSpans: number }
  | { type: 'close' };
export type FromWriter =
  | { type: 'written'; spans: number }
  | { type: 'failed'; error: string; dropped: number }
  | { type: 'flushed'; id: number; ok: boolean }
  | { type: 'pruned'; id: number; spans: number; error?: string }
  | { type: 'closed'; unwritten: number };

const MAX_KEPT = 200_000;

if (parentPort) {
  const { file, busyTimeoutMs } = workerData as { file: string; busyTimeoutMs: number };
  const port = parentPort;
  const send = (m: FromWriter) => port.postMessage(m);
  const db = new Database(file, { fileMustExist: true });
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeoutMs))}`);
  db.pragma('synchronous = NORMAL');
  const insert = db.prepare(
    `INSERT INTO trace_spans (trace_id, span_id, parent_span_id, session, kind, name, start, end, status, status_message, team, key_name, model, http_status, attributes) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
  );
  const writeBatch = db.transaction((spans: SpanData[]) => {
    for (const s of spans)
      insert.run(
        s.traceId,
        s.spanId,
        s.parentSpanId ?? null,
        s.session ?? null,
        s.kind,
        s.name,
        s.start,
        s.end,
        s.status,
        s.statusMessage ?? null,
        s.team ?? null,
        s.key ?? null,
        s.model ?? null,
        s.httpStatus ?? null,
        JSON.stringify(s.attributes),
      );
  });
  const byAge = db.prepare(`DELETE FROM trace_spans WHERE start < ?`);
  const maxRow = db.prepare(`SELECT MAX(rowid) FROM trace_spans`).pluck();
  const byCount = db.prepare(`DELETE FROM trace_spans WHERE rowid <= ?`);

  let pending: SpanData[] = [];
  let retry: NodeJS.Timeout | undefined;
  const write = (): boolean => {
    if (retry) {
      clearTimeout(retry);
      retry = undefined;
    }
    if (!pending.length) return true;
    try {
      writeBatch(pending);
      send({ type: 'written', spans: pending.length });
      pending = [];
      return true;
    } catch (e) {
      let dropped = 0;
      if (pending.length > MAX_KEPT) {
        dropped = pending.length - MAX_KEPT;
        pending = pending.slice(dropped);
      }
      send({ type: 'failed', error: (e as Error).message, dropped });
      retry = setTimeout(write, 1000);
      return false;
    }
  };

  port.on('message', (m: ToWriter) => {
    switch (m.type) {
      case 'spans':
        if (pending.length) pending.push(...m.spans);
        else pending = m.spans;
        write();
        break;
      case 'flush':
        send({ type: 'flushed', id: m.id, ok: write() });
        break;
      case 'prune':
        try {
          let n = byAge.run(m.olderThan).changes;
          const top = maxRow.get() as number | null;
          if (top !== null && top > m.maxSpans) n += byCount.run(top - m.maxSpans).changes;
          send({ type: 'pruned', id: m.id, spans: n });
        } catch (e) {
          send({ type: 'pruned', id: m.id, spans: 0, error: (e as Error).message });
        }
        break;
      case 'close':
        write();
        send({ type: 'closed', unwritten: pending.length });
        db.close();
        port.close();
        break;
    }
  });
}
