// The local span store: traces work on an isolated network with no collector. Spans are queued
// in memory (bounded), handed to the recorders' writer thread (gateway/store/recorder.ts; its
// span part is span-writer.ts) in batches, a request's spans stored as one row, and pruned by
// settings.telemetry.retention_hours and max_spans. Reads (the admin API) first flush what is
// queued, so a trace is visible as soon as its request has ended.
import type { DB } from '../store/db.js';
import { decodeCursor, encodeCursor } from '../store/cursor.js';
import { RecorderThread } from '../store/recorder.js';
import type { SessionSummary, SessionsBody, Trace, TraceSpan } from '../wire.js';
import type { AttrValue, SpanData } from './span.js';
import type { PutAttribute } from './span-attributes.js';
import { ledgerSpans, TRACED_LEDGER_COLUMNS, type TracedLedgerRow } from './ledger-trace.js';
import { ownTraceId, requestIdOfTrace, requestSpanId, traceIdOfRequest } from './span.js';
import { ATTR_KEYS, type CompactChild, type FromWriter, type StoredChild, type StoredRow, type ToWriter } from './span-writer.js';

const FLUSH_MS = 200;
const MAX_BATCH = 2000;
const MAX_QUEUED = 100_000;
const PRUNE_MS = 60_000;

export interface SpanStorePolicy {
  retentionHours: number;
  maxSpans: number;
}

const ATTR_CODE = new Map<string, number>(ATTR_KEYS.map((k, i) => [k, i]));

const QUOTED_CODE = new Map<string, string>(ATTR_KEYS.map((k, i) => [k, `"${i}":`]));

// ---- the stored row as JSON text (the writer's batch format, span-writer.ts) ----

/** a string as JSON */
export const jstr = (v: string): string => JSON.stringify(v);
/** a number as JSON.stringify writes it (a non-finite one as null) */
export const jnum = (v: number): string => (Number.isFinite(v) ? String(v) : 'null');

export type { PutAttribute };

const jval = (v: AttrValue): string => (typeof v === 'number' ? jnum(v) : typeof v === 'boolean' ? String(v) : JSON.stringify(v));
const CODE_TEXT = new Map<string, string>(ATTR_KEYS.map((k, i) => [k, String(i)]));
let acc = '';
const putKey: PutAttribute = (k, v) => {
  if (v === undefined) return;
  // a key that reads as a number would be taken for one of the list's (the tracer sets none)
  acc += (acc ? ',' : '{') + (QUOTED_CODE.get(k) ?? JSON.stringify(isIndex(k) ? `airlock.attribute_${k}` : k) + ':') + jval(v);
};
const putPair: PutAttribute = (k, v) => {
  if (v === undefined) return;
  acc += (acc ? ',' : '[') + (CODE_TEXT.get(k) ?? JSON.stringify(k)) + ',' + jval(v);
};

/** A root's attributes as stored, from the attributes `fill` puts: a JSON object whose keys of
 * ATTR_KEYS are their index (the keys SQL reads are not in the list and keep their names),
 * written as JSON.stringify would write the object (undefined left out, a non-finite number as
 * null) without making the object. */
export function attributesObjectJson(fill: (put: PutAttribute) => void): string {
  return collect(fill, putKey, '{', '}');
}

/** A compact child's attributes (CompactChild): a flat JSON list of key, value pairs, the keys of
 * ATTR_KEYS as their index. */
export function attributesListJson(fill: (put: PutAttribute) => void): string {
  return collect(fill, putPair, '[', ']');
}

/** What `fill` puts through `put` (which opens with `open` and appends to acc), closed; acc is
 * kept for the caller, so a fill may itself write attributes. */
function collect(fill: (put: PutAttribute) => void, put: PutAttribute, open: string, close: string): string {
  const outer = acc;
  acc = '';
  fill(put);
  const s = (acc || open) + close;
  acc = outer;
  return s;
}

function compactAttributes(attrs: SpanData['attributes']): string {
  return attributesObjectJson((put) => {
    for (const k in attrs) put(k, attrs[k]);
  });
}

/** A root's stored attributes as the tracer made them; rows written before the compact form have
 * no integer keys and are returned as they are. Integer keys come first in an object's order, so
 * the first key tells. */
function expandAttributes(o: TraceSpan['attributes']): TraceSpan['attributes'] {
  let compact = false;
  for (const k in o) {
    compact = isIndex(k);
    break;
  }
  if (!compact) return o;
  const out: TraceSpan['attributes'] = {};
  for (const k in o) out[isIndex(k) ? attrKey(Number(k)) : k] = o[k]!;
  return out;
}

const isIndex = (k: string): boolean => k.charCodeAt(0) <= 57 && /^\d+$/.test(k);
const attrKey = (i: number): string => ATTR_KEYS[i] ?? `airlock.attribute_${i}`;

/** A child span in its root's row, in the compact form (CompactChild, span-writer.ts), as JSON. */
export function childJson(c: SpanData, rootSpanId: string): string {
  return JSON.stringify(compactChild(c, rootSpanId));
}

function compactChild(c: SpanData, rootSpanId: string): CompactChild {
  const attrs = c.attributes;
  const flat: (string | number | boolean | string[])[] = [];
  for (const k in attrs) flat.push(ATTR_CODE.get(k) ?? k, attrs[k]!);
  const parent = c.parentSpanId ?? null;
  if (parent !== rootSpanId) return [c.spanId, c.kind, c.name, c.start, c.end, c.status, flat, c.statusMessage ?? null, parent];
  if (c.statusMessage !== undefined) return [c.spanId, c.kind, c.name, c.start, c.end, c.status, flat, c.statusMessage];
  return [c.spanId, c.kind, c.name, c.start, c.end, c.status, flat];
}

/** One request's (or tool call's, or a lone late span's) spans as its stored row: a JSON array of
 * the SPAN_COLUMNS values (span-writer.ts), the root's attributes (an object in the compact form)
 * and its children (an array of CompactChild, or null) as JSON text, and the span count. The
 * tracer writes a request's row without span objects (requestRow() in tracer.ts), in the same form. */
export function rowJson(spans: SpanData[]): string {
  const s = spans[0]!;
  let children: string | null = null;
  if (spans.length > 1) {
    const list: CompactChild[] = [];
    for (let i = 1; i < spans.length; i++) list.push(compactChild(spans[i]!, s.spanId));
    children = JSON.stringify(list);
  }
  const row: StoredRow = [
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
    compactAttributes(s.attributes),
    children,
    spans.length,
  ];
  return JSON.stringify(row);
}

export class SpanStore {
  /** rows to write, each as JSON text (the writer gets them as one JSON array), and how many
   * spans they hold */
  private rows: string[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly thread: RecorderThread;
  private seq = 0;
  private waiting = new Map<number, (v: { ok: boolean; spans?: number }) => void>();
  private closing: ((unwritten: number) => void) | undefined;
  /** close() was called: nothing more goes to the writer (its part is detached) */
  private closed = false;
  /** spans in the writer, not yet committed */
  private inWorker = 0;
  written = 0;
  dropped = 0;
  lastError: string | undefined;

  constructor(
    private readonly file: string,
    private readonly policy: () => SpanStorePolicy,
    private readonly log: (line: string) => void,
    thread?: RecorderThread,
  ) {
    this.thread = thread ?? new RecorderThread(file, { log });
    this.thread.attach('spans', {}, { onMessage: (m) => this.onMessage(m as FromWriter), onLost: (e) => this.onLost(e) });
    this.pruneTimer = setInterval(() => void this.prune().catch(() => {}), PRUNE_MS);
    this.pruneTimer.unref();
  }

  static forDatabase(db: DB, policy: () => SpanStorePolicy, log: (line: string) => void, thread?: RecorderThread): SpanStore {
    return new SpanStore(db.name, policy, log, thread);
  }

  /** The writer thread died: the spans inside it are lost (it is restarted). */
  private onLost(e: Error): void {
    this.log(`span writer failed (${e.message}); ${this.inWorker} unwritten span(s) lost`);
    this.dropped += this.inWorker;
    this.inWorker = 0;
    for (const w of this.waiting.values()) w({ ok: false });
    this.waiting.clear();
    this.closing?.(0);
  }

  private onMessage(m: FromWriter): void {
    switch (m.type) {
      case 'written':
        this.inWorker -= m.spans;
        this.written += m.spans;
        this.lastError = undefined;
        break;
      case 'failed':
        if (!this.lastError) this.log(`trace spans cannot be written yet (${m.error}); retrying`);
        this.lastError = m.error;
        this.inWorker -= m.dropped;
        this.dropped += m.dropped;
        break;
      case 'flushed':
      case 'pruned': {
        const w = this.waiting.get(m.id);
        this.waiting.delete(m.id);
        w?.({ ok: m.type === 'flushed' ? m.ok : !m.error, spans: m.type === 'pruned' ? m.spans : undefined });
        break;
      }
      case 'closed':
        this.closing?.(m.unwritten);
        break;
    }
  }

  /** A sink for the tracer: queue the spans of one request or tool call (never blocks). */
  readonly record = (spans: SpanData[]): void => {
    if (spans.length && this.room(spans.length)) this.add(rowJson(spans), spans.length);
  };

  /** The tracer's sink for a request's row it wrote itself (requestRow() in tracer.ts): the same
   * as record() without span objects. `spans` is the row's n. */
  readonly recordRow = (row: string, spans: number): void => {
    if (this.room(spans)) this.add(row, spans);
  };

  private room(n: number): boolean {
    if (this.closed) return false;
    if (this.queued + this.inWorker + n <= MAX_QUEUED) return true;
    this.dropped += n;
    if (this.dropped === n || this.dropped % 1000 < n) this.log(`trace spans: ${MAX_QUEUED} already wait to be written; ${this.dropped} dropped so far`);
    return false;
  }

  private add(row: string, n: number): void {
    this.rows.push(row);
    this.queued += n;
    if (this.queued >= MAX_BATCH) this.post();
    else if (!this.timer) {
      this.timer = setTimeout(() => this.post(), FLUSH_MS);
      this.timer.unref();
    }
  }

  private post(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.closed) return;
    if (!this.queued) return;
    const rows = `[${this.rows.join(',')}]`;
    const spans = this.queued;
    this.rows = [];
    this.inWorker += spans;
    this.queued = 0;
    this.thread.post('spans', { type: 'spans', rows, spans } satisfies ToWriter);
  }

  private ask(m: { type: 'flush' } | { type: 'prune'; olderThan: number; maxSpans: number }): Promise<{ ok: boolean; spans?: number }> {
    if (this.closed) return Promise.resolve({ ok: false });
    const id = ++this.seq;
    // the answer comes from the writer thread: keep the process alive until it does
    this.thread.ref();
    return new Promise<{ ok: boolean; spans?: number }>((resolve) => {
      this.waiting.set(id, resolve);
      this.thread.post('spans', { ...m, id } satisfies ToWriter);
    }).finally(() => this.thread.unref());
  }

  /** Everything recorded so far is committed (false: the database could not be written). */
  async flush(): Promise<boolean> {
    this.post();
    return (await this.ask({ type: 'flush' })).ok;
  }

  /** Apply retention and the size cap now; resolves with the number of spans deleted. */
  async prune(): Promise<number> {
    const p = this.policy();
    const r = await this.ask({ type: 'prune', olderThan: Date.now() - p.retentionHours * 3_600_000, maxSpans: p.maxSpans });
    return r.spans ?? 0;
  }

  get pending(): number {
    return this.queued + this.inWorker;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.timer) clearTimeout(this.timer);
    this.post();
    this.closed = true;
    await this.thread.stopPart('spans', { type: 'close' } satisfies ToWriter, (resolve) => {
      this.closing = resolve;
    });
  }
}

// ---- reads (admin API) ----

interface SpanRow {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  session: string | null;
  kind: TraceSpan['kind'];
  name: string;
  start: number;
  end: number;
  status: TraceSpan['status']['code'];
  status_message: string | null;
  attributes: string;
  /** the root's children (span-writer.ts), or null */
  children: string | null;
}

const MAX_SPANS_READ = 20_000;

function toSpan(r: SpanRow): TraceSpan {
  return {
    trace_id: r.trace_id,
    span_id: r.span_id,
    parent_span_id: r.parent_span_id,
    kind: r.kind,
    name: r.name,
    start: new Date(r.start).toISOString(),
    end: new Date(r.end).toISOString(),
    start_ms: r.start,
    end_ms: r.end,
    duration_ms: Math.round((r.end - r.start) * 1000) / 1000,
    status: { code: r.status, message: r.status_message },
    session: r.session,
    attributes: expandAttributes(JSON.parse(r.attributes) as TraceSpan['attributes']),
  };
}

function childSpan(root: SpanRow, c: StoredChild | CompactChild): TraceSpan {
  if (!Array.isArray(c)) return spanOf(root, c.span_id, c.parent_span_id, c.kind, c.name, c.start, c.end, c.status, c.status_message, c.attributes);
  const flat = c[6];
  const attributes: TraceSpan['attributes'] = {};
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const k = flat[i]!;
    attributes[typeof k === 'number' ? attrKey(k) : String(k)] = flat[i + 1]!;
  }
  return spanOf(root, c[0], c.length > 8 ? (c[8] ?? null) : root.span_id, c[1], c[2], c[3], c[4], c[5], c[7] ?? null, attributes);
}

function spanOf(
  root: SpanRow,
  spanId: string,
  parent: string | null,
  kind: TraceSpan['kind'],
  name: string,
  start: number,
  end: number,
  status: TraceSpan['status']['code'],
  message: string | null,
  attributes: TraceSpan['attributes'],
): TraceSpan {
  return {
    trace_id: root.trace_id,
    span_id: spanId,
    parent_span_id: parent,
    kind,
    name,
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    start_ms: start,
    end_ms: end,
    duration_ms: Math.round((end - start) * 1000) / 1000,
    status: { code: status, message },
    session: root.session,
    attributes,
  };
}

/** Spans grouped by trace, traces in order of their first span, spans in order of start (a row's
 * children are spread into its trace): the span store's rows and the ledger rows that carry a
 * plain request's trace (ledger-trace.ts). */
function groupTraces(rows: SpanRow[], ledgerRows: TracedLedgerRow[] = []): Trace[] {
  const traces = new Map<string, Trace>();
  const add = (span: TraceSpan) => {
    let t = traces.get(span.trace_id);
    if (!t) traces.set(span.trace_id, (t = { trace_id: span.trace_id, spans: [] }));
    t.spans.push(span);
  };
  for (const r of ledgerRows) for (const span of ledgerSpans(r) ?? []) add(span);
  for (const r of rows) {
    add(toSpan(r));
    if (r.children) for (const c of JSON.parse(r.children) as (StoredChild | CompactChild)[]) add(childSpan(r, c));
  }
  // stable: spans that start together keep their stored order (a root before its children)
  for (const t of traces.values()) t.spans.sort((a, b) => a.start_ms - b.start_ms);
  return [...traces.values()].sort((a, b) => a.spans[0]!.start_ms - b.spans[0]!.start_ms);
}

const LEDGER_TRACED = `SELECT ${TRACED_LEDGER_COLUMNS} FROM ledger`;

/** The ledger rows that carry the traces of these trace ids (the plain requests' among them). */
function ledgerRowsOf(db: DB, traceIds: string[]): TracedLedgerRow[] {
  const ids = traceIds.map(requestIdOfTrace).filter((id): id is string => id !== undefined);
  if (!ids.length) return [];
  const rows: TracedLedgerRow[] = [];
  const one = db.prepare(`${LEDGER_TRACED} WHERE request_id = ? AND trace IS NOT NULL`);
  for (const id of ids) {
    const r = one.get(id) as TracedLedgerRow | undefined;
    if (r) rows.push(r);
  }
  return rows;
}

const COLS = `trace_id, span_id, parent_span_id, session, kind, name, start, end, status, status_message, attributes, children`;

/**
 * Every trace of one workflow (x-airlock-session), oldest first. Each store is read up to a cap
 * (`max` span rows, `max / 2` ledger rows: a ledger row holds two spans); when either is reached,
 * both are cut at the same time (the earlier of the two last starts read), so a very long session
 * is its first part whole, never one store's steps without the other's: `truncated` says so.
 */
export function tracesOfSessionRead(db: DB, session: string, max = MAX_SPANS_READ): { traces: Trace[]; truncated: boolean } {
  // the traces a session's spans belong to, with all their spans (a guardrail span written late has the session too)
  let ledgerRows = db.prepare(`${LEDGER_TRACED} WHERE session = ? AND trace IS NOT NULL ORDER BY ts LIMIT ?`).all(session, Math.max(1, Math.floor(max / 2))) as TracedLedgerRow[];
  const ledgerCapped = ledgerRows.length === Math.max(1, Math.floor(max / 2));
  const ledgerIds = ledgerRows.map((r) => traceIdOfRequest(r.request_id)).filter((id): id is string => id !== undefined);
  let rows = db
    .prepare(
      `SELECT ${COLS} FROM trace_spans WHERE trace_id IN (SELECT DISTINCT trace_id FROM trace_spans WHERE session = ? UNION SELECT value FROM json_each(?)) ORDER BY start, rowid LIMIT ?`,
    )
    .all(session, JSON.stringify(ledgerIds), max) as SpanRow[];
  const rowsCapped = rows.length === max;
  const truncated = ledgerCapped || rowsCapped;
  if (truncated) {
    const cut = Math.min(ledgerCapped ? ledgerRows[ledgerRows.length - 1]!.ts : Infinity, rowsCapped ? rows[rows.length - 1]!.start : Infinity);
    ledgerRows = ledgerRows.filter((r) => r.ts <= cut);
    rows = rows.filter((r) => r.start <= cut);
  }
  // a trace of the session's span rows may be a plain request's of another session (a request
  // joined it by its traceparent): its ledger row is one of the trace's spans too
  const have = new Set(ledgerIds);
  const joined = new Set<string>();
  for (const r of rows) if (!have.has(r.trace_id)) joined.add(r.trace_id);
  return { traces: groupTraces(rows, joined.size ? [...ledgerRows, ...ledgerRowsOf(db, [...joined])] : ledgerRows), truncated };
}

/**
 * The traces that started last (by their earliest span), as trace viewers list them. Both stores
 * rank by start: a plain request's ledger row by its `ts` (the partial index ledger_traced), the
 * span rows by their earliest start. (By end, a plain request's rows would need its end, ts +
 * latency_ms, which no index orders: a scan of every traced ledger row per read.)
 */
export function recentTraces(db: DB, limit: number): Trace[] {
  // the latest starts of each store, then the latest of both (a trace in both: its earlier start)
  const fromSpans = db.prepare(`SELECT trace_id AS id, MIN(start) AS s FROM trace_spans GROUP BY trace_id ORDER BY s DESC LIMIT ?`).all(limit) as { id: string; s: number }[];
  const fromLedger = db.prepare(`SELECT request_id, ts AS s FROM ledger WHERE trace IS NOT NULL ORDER BY ts DESC LIMIT ?`).all(limit) as { request_id: string; s: number }[];
  const latest = new Map<string, number>();
  for (const r of fromSpans) latest.set(r.id, r.s);
  for (const r of fromLedger) {
    const id = traceIdOfRequest(r.request_id);
    if (id) latest.set(id, Math.min(latest.get(id) ?? Infinity, r.s));
  }
  const ids = [...latest].sort((a, b) => b[1] - a[1]).slice(0, limit).map(([id]) => id);
  if (!ids.length) return [];
  const rows = db
    .prepare(`SELECT ${COLS} FROM trace_spans WHERE trace_id IN (SELECT value FROM json_each(?)) ORDER BY start, rowid LIMIT ?`)
    .all(JSON.stringify(ids), MAX_SPANS_READ) as SpanRow[];
  return groupTraces(rows, ledgerRowsOf(db, ids));
}

export function traceById(db: DB, traceId: string): Trace | undefined {
  const rows = db.prepare(`SELECT ${COLS} FROM trace_spans WHERE trace_id = ? ORDER BY start, rowid LIMIT ?`).all(traceId, MAX_SPANS_READ) as SpanRow[];
  return groupTraces(rows, ledgerRowsOf(db, [traceId]))[0];
}

/** Where a request's trace was looked for (traceOfRequest): the trace, and whether the ledger has
 * the request's row (with or without a trace). */
export interface RequestTraceLookup {
  trace: Trace | undefined;
  inLedger: boolean;
}

/**
 * The whole trace of one data-plane request, by its request id (isOwnRequestId: checked by the
 * caller). A plain request's trace is carried by its ledger row, its trace id the request id's
 * (ledger-trace.ts); any other request's is a trace_spans row whose span is the request's own,
 * requestSpanId(id), found through trace_spans_span (migration 25): its trace id is the request
 * id's too unless the client sent a traceparent. Either way the answer is the trace as
 * GET /traces/ID gives it (the requests that joined it, late guardrail rows).
 */
export function traceOfRequest(db: DB, requestId: string): RequestTraceLookup {
  const traced = db.prepare(`SELECT trace IS NOT NULL FROM ledger WHERE request_id = ?`).pluck().get(requestId) as number | undefined;
  // the request's own span is a model span, or a tool call's (its ledger row's id); the kind rules
  // out a random span id of another row that happens to match
  const traceId =
    traced === 1
      ? ownTraceId(requestId)
      : (db.prepare(`SELECT trace_id FROM trace_spans WHERE span_id = ? AND kind IN ('model', 'tool') ORDER BY rowid DESC LIMIT 1`).pluck().get(requestSpanId(requestId)) as string | undefined);
  return { trace: traceId === undefined ? undefined : traceById(db, traceId), inLedger: traced !== undefined };
}

export interface SessionQuery {
  team?: string;
  key?: string;
  model?: string;
  status?: 'ok' | 'error';
  /** epoch ms: sessions active at or after */
  from?: number;
  /** epoch ms: sessions active before */
  to?: number;
  /** paging: sessions whose last activity is before this (epoch ms) */
  before?: number;
  /** paging: the sessions after this one in the list's order (next_cursor of the previous page) */
  cursor?: string;
  limit: number;
}

/** One step of a workflow as SESSION_STEPS reads it (raw: values in this order). */
type StepRow = [start: number, end: number, kind: string, name: string, status: string, traceId: string, team: string | null, key: string | null, model: string | null, tin: unknown, tout: unknown, cost: unknown];

/** One workflow's steps in both stores: the root spans of the span store's rows (model calls, tool
 * calls) and the ledger rows that carry a plain request's trace (ledger-trace.ts: always
 * successful), the latter with their trace id (the request id without dashes, traceIdOfRequest): a
 * request that joined a plain request's trace by its traceparent is a step of the same trace. */
const SESSION_STEPS = `
  SELECT start, end, kind, name, status, trace_id, team, key_name, model,
    json_extract(attributes, '$."gen_ai.usage.input_tokens"'), json_extract(attributes, '$."gen_ai.usage.output_tokens"'),
    json_extract(attributes, '$."airlock.cost"')
  FROM trace_spans WHERE session = :session AND kind IN ('model', 'tool')
  UNION ALL
  SELECT ts, ts + latency_ms, 'model', '', 'ok', replace(request_id, '-', ''), team, key_name, COALESCE(alias, requested_model),
    prompt_tokens, completion_tokens, cost
  FROM ledger WHERE session = :session AND trace IS NOT NULL`;

/** A workflow's line in the list, from its steps (summed here: SQLite's DISTINCT aggregates open a
 * temporary B-tree each, ~0.6 ms per workflow). */
function summarize(session: string, steps: StepRow[]): SessionSummary {
  let s = Infinity;
  let e = -Infinity;
  let mc = 0;
  let tc = 0;
  let errors = 0;
  let tin = 0;
  let tout = 0;
  let cost = 0;
  const traces = new Set<string>();
  const teams = new Set<string>();
  const keys = new Set<string>();
  const models = new Set<string>();
  const num = (v: unknown) => (typeof v === 'number' ? v : 0);
  for (const [start, end, kind, name, status, traceId, team, key, model, i, o, c] of steps) {
    if (start < s) s = start;
    if (end > e) e = end;
    if (kind === 'model') mc++;
    else if (kind === 'tool' && name.slice(0, 11).toLowerCase() === 'tools/call ') tc++;
    if (status === 'error') errors++;
    traces.add(traceId);
    if (team !== null) teams.add(team);
    if (key !== null) keys.add(key);
    if (model !== null) models.add(model);
    tin += num(i);
    tout += num(o);
    cost += num(c);
  }
  return {
    session,
    start: new Date(s).toISOString(),
    end: new Date(e).toISOString(),
    steps: steps.length,
    model_calls: mc,
    tool_calls: tc,
    errors,
    traces: traces.size,
    teams: [...teams].sort(),
    keys: [...keys].sort(),
    models: [...models].sort(),
    input_tokens: tin,
    output_tokens: tout,
    cost,
  };
}

/**
 * Workflows (sessions), newest activity first. A filter keeps the sessions with at least one step
 * that matches it. The sessions are walked in trace_sessions' order (migration 26: latest end
 * first), narrowed by what that row knows of them, and only those shown are aggregated from the
 * stores: a read costs the page's sessions, not every stored step.
 */
export function listSessions(db: DB, q: SessionQuery): SessionsBody {
  // narrowing by the summary row (a session it lets through is still checked step by step)
  const narrow: string[] = [];
  const nargs: (string | number)[] = [];
  const add = (clause: string, v: string | number) => {
    narrow.push(clause);
    nargs.push(v);
  };
  if (q.team !== undefined) add('(teams IS NULL OR instr(teams, char(31) || ? || char(31)) > 0)', q.team);
  if (q.key !== undefined) add('(keys IS NULL OR instr(keys, char(31) || ? || char(31)) > 0)', q.key);
  if (q.model !== undefined) add('(models IS NULL OR instr(models, char(31) || ? || char(31)) > 0)', q.model);
  if (q.status === 'error') narrow.push('errors > 0');
  if (q.status === 'ok') narrow.push('oks > 0');
  if (q.from !== undefined) add('last >= ?', q.from);
  if (q.to !== undefined) add('first < ?', q.to);
  if (q.before !== undefined) add('last < ?', q.before);
  let after: [number, string] | undefined;
  // sessions that ended at the same time are ordered by name: none is lost or shown twice
  if (q.cursor !== undefined) after = decodeCursor(q.cursor, ['number', 'string']) as [number, string];
  // the step filter, exact: a session is listed when one of its steps matches
  const tests: ((x: StepRow) => boolean)[] = [];
  const { team, key, model, from: since, to: until } = q;
  if (team !== undefined) tests.push((x) => x[6] === team);
  if (key !== undefined) tests.push((x) => x[7] === key);
  if (model !== undefined) tests.push((x) => x[8] === model);
  if (q.status === 'error') tests.push((x) => x[4] === 'error');
  if (q.status === 'ok') tests.push((x) => x[4] !== 'error');
  if (since !== undefined) tests.push((x) => x[1] >= since);
  if (until !== undefined) tests.push((x) => x[0] < until);
  const matches = (x: StepRow) => tests.every((t) => t(x));

  const batch = Math.min(1000, 2 * (q.limit + 1));
  const candidates = db.prepare(
    `SELECT session, last FROM trace_sessions WHERE ${[...narrow, '(last, session) < (?, ?)'].join(' AND ')} ORDER BY last DESC, session DESC LIMIT ${batch}`,
  );
  const stepsOf = db.prepare(SESSION_STEPS).raw();
  const data: SessionSummary[] = [];
  let more = false;
  let edge: { session: string; last: number } | undefined;
  let from: [number, string] = after ?? [Infinity, ''];
  walk: for (;;) {
    const page = candidates.all(...nargs, from[0], from[1]) as { session: string; last: number }[];
    for (const c of page) {
      const steps = stepsOf.all({ session: c.session }) as StepRow[];
      // no step left (pruned since the summary was written), or none that matches the filter
      if (!steps.length || (tests.length && !steps.some(matches))) continue;
      if (data.length === q.limit) {
        more = true;
        break walk;
      }
      data.push(summarize(c.session, steps));
      edge = c;
    }
    if (page.length < batch) break;
    const l = page[page.length - 1]!;
    from = [l.last, l.session];
  }
  // the order key of the last one shown: the next page starts after it
  const last = more ? edge : undefined;
  return { data, next_before: last ? String(last.last) : null, next_cursor: last ? encodeCursor(last.last, last.session) : null };
}

