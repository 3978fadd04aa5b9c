// The span store's writer, in the recorders' writer thread (gateway/store/recorder-worker.ts):
// batch inserts, a database held busy by another process and retention deletes never block the
// event loop that serves requests. A request's spans are stored as one row: the root's columns,
// its children as a JSON array (migration 15; their compact form: CompactChild). The span store
// (main thread) sends a batch as ONE string: a JSON array of rows, each row a JSON array of the
// SPAN_COLUMNS values (the root's attributes and its children as JSON text, strings in the row).
// The copy of one string between the threads is about a memcpy, and on the main thread a queued
// row is one string (flat value arrays cost a clone per value and kept ~10 young objects per
// row alive until the batch was posted). Batches it could not write are kept (bounded) and tried
// again.
import type { PartContext, PartWriter } from '../store/recorder-protocol.js';
import type { SpanData } from './span.js';

/** The columns of a stored row, in the order of a row's values (rowJson() in span-store.ts,
 * requestRow() in tracer.ts; `attributes` and `children` are JSON text). */
export const SPAN_COLUMNS = ['trace_id', 'span_id', 'parent_span_id', 'session', 'kind', 'name', 'start', 'end', 'status', 'status_message', 'team', 'key_name', 'model', 'http_status', 'attributes', 'children', 'n'] as const;
export type SpanValue = string | number | null;
/** One stored row's values in SPAN_COLUMNS order: rowJson() (span-store.ts) builds one, so a
 * column added here and not filled there fails to compile. */
type ValuesOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: SpanValue };
export type StoredRow = ValuesOf<typeof SPAN_COLUMNS>;

export type ToWriter =
  /** rows: a JSON array of rows (each one request's or tool call's spans, or a lone late span),
   * each a JSON array of the SPAN_COLUMNS values; `spans` is the sum of their n */
  | { type: 'spans'; rows: string; spans: number }
  | { type: 'flush'; id: number }
  | { type: 'prune'; id: number; olderThan: number; maxSpans: number }
  | { type: 'close' };
export type FromWriter =
  | { type: 'written'; spans: number }
  | { type: 'failed'; error: string; dropped: number }
  | { type: 'flushed'; id: number; ok: boolean }
  | { type: 'pruned'; id: number; spans: number; error?: string }
  | { type: 'closed'; unwritten: number };

/** A child span as rows written before the compact form store it in their root's `children`
 * (trace id and session are the root's). Still read (span-store.ts). */
export interface StoredChild {
  span_id: string;
  parent_span_id: string | null;
  kind: SpanData['kind'];
  name: string;
  start: number;
  end: number;
  status: SpanData['status'];
  status_message: string | null;
  attributes: SpanData['attributes'];
}

/** A child span in the compact form (written since session 6): a tuple, its attributes a flat
 * list of key, value pairs in which a key of ATTR_KEYS is written as its index. The last
 * two entries are left out when they are null (status message) or the root's span (parent). */
export type CompactChild =
  | [spanId: string, kind: SpanData['kind'], name: string, start: number, end: number, status: SpanData['status'], attributes: (string | number | boolean | string[])[]]
  | [spanId: string, kind: SpanData['kind'], name: string, start: number, end: number, status: SpanData['status'], attributes: (string | number | boolean | string[])[], statusMessage: string | null]
  | [spanId: string, kind: SpanData['kind'], name: string, start: number, end: number, status: SpanData['status'], attributes: (string | number | boolean | string[])[], statusMessage: string | null, parentSpanId: string | null];

/** The attribute keys (tracer.ts) written as numbers in the stored form: in a compact child's
 * attribute list, and as the keys ("0", "1", ...) of a root's attributes object (the keys that SQL
 * reads, gen_ai.usage.* and airlock.cost, are not in the list and keep their names there). This
 * list is part of the stored format: entries may be appended, never reordered or removed. */
export const ATTR_KEYS = [
  'gen_ai.operation.name',
  'gen_ai.request.model',
  'gen_ai.provider.name',
  'airlock.endpoint',
  'airlock.target',
  'airlock.attempt',
  'airlock.queue_ms',
  'server.address',
  'airlock.time_to_first_chunk_ms',
  'airlock.attempt.outcome',
  'gen_ai.response.finish_reasons',
  'error.type',
  'airlock.failover_reason',
  'airlock.guardrail.policy',
  'airlock.guardrail.direction',
  'airlock.guardrail.action',
  'airlock.guardrail.mode',
  'airlock.guardrail.count',
  'airlock.guardrail.blocked',
  'airlock.guardrail.complete',
  'airlock.guardrail.detectors',
  // roots: a data-plane request
  'airlock.request_id',
  'http.response.status_code',
  'airlock.attempts',
  'airlock.model',
  'airlock.routing_rule',
  'gen_ai.response.model',
  'gen_ai.request.max_tokens',
  'gen_ai.request.temperature',
  'gen_ai.request.top_p',
  'airlock.stream',
  'airlock.usage.estimated',
  'airlock.time_to_first_token_ms',
  'enduser.id',
  'airlock.key',
  'airlock.team',
  'airlock.session',
  // roots: an MCP call
  'mcp.method.name',
  'gen_ai.tool.name',
  'airlock.tool_call_id',
  'gen_ai.prompt.name',
  'mcp.resource.uri',
  'airlock.mcp_call_id',
  'airlock.mcp.server',
  'airlock.mcp.exposed_name',
  'mcp.session.id',
  'gen_ai.agent.name',
  'airlock.tool.args_bytes',
  'airlock.tool.result_bytes',
  'airlock.tool.is_error',
] as const;

const MAX_KEPT = 200_000;

interface Batch {
  rows: string;
  spans: number;
}

export function spanWriter({ db, send: post, pace }: PartContext): PartWriter {
  const send = (m: FromWriter) => post(m);
  // statements are prepared at the first write or prune, inside its error handling (recorder-worker.ts)
  const prepare = () => {
    // JSON.parse of the batch in this thread costs less than SQLite's json_each() with ->> per
    // column (which measured ~2x the whole insert), and no more than the old structured clone
    const insert = db.prepare(`INSERT INTO trace_spans (${SPAN_COLUMNS.join(', ')}) VALUES (${SPAN_COLUMNS.map(() => '?').join(',')})`);
    const writeBatch = db.transaction((batches: Batch[]) => {
      for (const b of batches)
        for (const row of JSON.parse(b.rows) as SpanValue[][]) {
          insert.run(row);
          pace?.();
        }
    });
    const allSpans = db.prepare(`SELECT COALESCE(SUM(n), 0) FROM trace_spans`).pluck();
    const oldest = db.prepare(`SELECT rowid, start, n FROM trace_spans ORDER BY rowid`).raw();
    const byRowid = db.prepare(`DELETE FROM trace_spans WHERE rowid <= ?`);
    return { writeBatch, allSpans, oldest, byRowid };
  };
  let st: ReturnType<typeof prepare> | undefined;

  /** spans in the table (counted once, at the first prune, then kept up to date): the size cap
   * is checked without a scan, and only the excess rows are read to find where to cut */
  let stored: number | undefined;

  /** batches not yet committed, as the store sent them */
  let pending: Batch[] = [];
  let pendingSpans = 0;
  let retry: NodeJS.Timeout | undefined;
  const write = (): boolean => {
    if (retry) {
      clearTimeout(retry);
      retry = undefined;
    }
    if (!pending.length) return true;
    try {
      (st ??= prepare()).writeBatch(pending);
      if (stored !== undefined) stored += pendingSpans;
      send({ type: 'written', spans: pendingSpans });
      pending = [];
      pendingSpans = 0;
      return true;
    } catch (e) {
      // beyond the bound, the oldest batches go
      let dropped = 0;
      let cut = 0;
      while (pendingSpans > MAX_KEPT && cut < pending.length) {
        const n = pending[cut]!.spans;
        dropped += n;
        pendingSpans -= n;
        cut++;
      }
      if (cut) pending = pending.slice(cut);
      send({ type: 'failed', error: (e as Error).message, dropped });
      retry = setTimeout(write, 1000);
      return false;
    }
  };

  return (raw) => {
    const m = raw as ToWriter;
    switch (m.type) {
      case 'spans':
        pendingSpans += m.spans;
        pending.push({ rows: m.rows, spans: m.spans });
        write();
        break;
      case 'flush':
        send({ type: 'flushed', id: m.id, ok: write() });
        break;
      case 'prune':
        try {
          const { allSpans, oldest, byRowid } = (st ??= prepare());
          const n = db
            .transaction(() => {
              let total = stored ?? (allSpans.get() as number);
              // rows go in write order, oldest first: those older than the retention, then, over
              // the cap, more until the newest hold at most maxSpans spans. A row written after a
              // younger one (a long request ends after a short one that began later) goes at the
              // first prune after that younger one has aged out too.
              const excess = total - m.maxSpans;
              let cut: number | undefined;
              let deleted = 0;
              for (const [rowid, start, k] of oldest.iterate() as IterableIterator<[number, number, number]>) {
                if (start >= m.olderThan && deleted >= excess) break;
                deleted += k;
                cut = rowid;
              }
              if (cut !== undefined) byRowid.run(cut);
              total -= deleted;
              return { deleted, total };
            })
            .immediate();
          stored = n.total;
          send({ type: 'pruned', id: m.id, spans: n.deleted });
        } catch (e) {
          send({ type: 'pruned', id: m.id, spans: 0, error: (e as Error).message });
        }
        break;
      case 'close':
        write();
        if (retry) clearTimeout(retry);
        send({ type: 'closed', unwritten: pendingSpans });
        break;
    }
  };
}
