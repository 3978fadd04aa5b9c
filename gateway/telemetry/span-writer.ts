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
import { refreshSessions } from '../store/trace-sessions.js';
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
/** rows read at a time while pruning */
const CHUNK = 1000;
/** the spans of a ledger row that carries a plain request's trace: the request's and its attempt's */
export const LEDGER_ROW_SPANS = 2;

/** A sorted source read in chunks (the statement reads the rows after the last one it gave): one
 * better-sqlite3 statement cannot be iterated while another runs on the same connection. */
function chunks<T>(read: (after: T | undefined) => T[]): { peek(): T | undefined; next(): void } {
  let buf = read(undefined);
  let i = 0;
  return {
    peek() {
      if (i < buf.length) return buf[i];
      if (buf.length < CHUNK) return undefined;
      buf = read(buf[buf.length - 1]);
      i = 0;
      return buf[0];
    },
    next() {
      i++;
    },
  };
}

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
    const oldest = db.prepare(`SELECT rowid, start, n FROM trace_spans WHERE rowid > ? ORDER BY rowid LIMIT ${CHUNK}`).raw();
    const byRowid = db.prepare(`DELETE FROM trace_spans WHERE rowid <= ?`);
    // the ledger rows that carry a plain request's trace (ledger-trace.ts), through ledger_traced
    const ledgerTraced = db.prepare(`SELECT COUNT(*) FROM ledger WHERE trace IS NOT NULL`).pluck();
    const ledgerOldest = db.prepare(`SELECT rowid, ts FROM ledger WHERE trace IS NOT NULL AND (ts, rowid) > (?, ?) ORDER BY ts, rowid LIMIT ${CHUNK}`).raw();
    const ledgerClear = db.prepare(`UPDATE ledger SET trace = NULL WHERE trace IS NOT NULL AND (ts, rowid) <= (?, ?)`);
    return { writeBatch, allSpans, oldest, byRowid, ledgerTraced, ledgerOldest, ledgerClear };
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
          const { allSpans, oldest, byRowid, ledgerTraced, ledgerOldest, ledgerClear } = (st ??= prepare());
          const n = db
            .transaction(() => {
              let total = stored ?? (allSpans.get() as number);
              const inLedger = (ledgerTraced.get() as number) * LEDGER_ROW_SPANS;
              // Two sources, walked together oldest first: the span store's rows in write order
              // and the traced ledger rows in order of time. Those older than the retention go,
              // then, over the cap, more until the newest hold at most maxSpans spans. A row written
              // after a younger one (a long request ends after a short one that began later) goes
              // at the first prune after that younger one has aged out too.
              const excess = total + inLedger - m.maxSpans;
              const spans = chunks<[number, number, number]>((after) => oldest.all(after?.[0] ?? 0) as [number, number, number][]);
              const rows = chunks<[number, number]>((after) => ledgerOldest.all(after?.[1] ?? -1, after?.[0] ?? 0) as [number, number][]);
              let cut: number | undefined;
              let ledgerCut: [number, number] | undefined;
              let deleted = 0;
              let fromSpans = 0;
              let newest = -Infinity; // the latest start (or ledger time) of what goes
              for (;;) {
                const a = spans.peek();
                const b = rows.peek();
                if (!a && !b) break;
                const takeSpans = a !== undefined && (b === undefined || a[1] <= b[1]);
                const start = takeSpans ? a[1] : b![1];
                if (start >= m.olderThan && deleted >= excess) break;
                if (start > newest) newest = start;
                if (takeSpans) {
                  deleted += a[2];
                  fromSpans += a[2];
                  cut = a[0];
                  spans.next();
                } else {
                  deleted += LEDGER_ROW_SPANS;
                  ledgerCut = b;
                  rows.next();
                }
              }
              if (cut !== undefined) byRowid.run(cut);
              if (ledgerCut) ledgerClear.run(ledgerCut[1], ledgerCut[0]);
              if (deleted) refreshSessions(db, newest);
              total -= fromSpans;
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
