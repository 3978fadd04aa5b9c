// The usage ledger: one row per request, queued in memory on the request path and handed in
// batches to the recorders' writer thread (gateway/store/recorder.ts; its ledger part is
// ledger-writer.ts) with its own SQLite connection, so neither the inserts nor a database held
// busy by another process block the event loop. A batch is handed
// over at most FLUSH_MS after a row is queued and committed at once, so a response finished
// 200 ms before a SIGKILL is on disk (WAL, committed) when the process dies.
//
// When the database cannot be written, the writer keeps its rows and retries; the ledger is
// then "unwritable" (GET /readyz and /admin/api/v1/status say so) and
// settings.ledger_when_unwritable decides: "serve" keeps serving and keeps up to
// settings.ledger_max_pending_rows rows in memory (rows beyond are dropped and counted),
// "refuse" answers new data-plane requests 503 until the rows are written.
import type { DB } from '../store/db.js';
import { RecorderThread } from '../store/recorder.js';
import { LEDGER_COLUMNS, type FromWorker, type LedgerRow, type LedgerValue, type ToWorker } from './ledger-protocol.js';
import type { RequestContext } from './stages.js';
import type { LedgerState, Timeseries, TimeseriesPoint, UsageGroupBy, UsageRow } from '../wire.js';

export { LEDGER_COLUMNS, type LedgerRow, type LedgerState, type Timeseries, type TimeseriesPoint };

export const FLUSH_MS = 50;
const MAX_BATCH = 1000;

export interface LedgerPolicy {
  maxPendingRows: number;
  whenUnwritable: 'serve' | 'refuse';
}

export interface LedgerOptions {
  /** the writer thread to share (the gateway's); without one the ledger starts its own */
  thread?: RecorderThread;
  /** pause before a failed batch is tried again (default 250) */
  retryMs?: number;
  log?: (line: string) => void;
}

/** The ledger row of a finished, settled request; `trace`: its trace when the row carries it
 * (the tracer's settle(), telemetry/tracer.ts). */
export function ledgerRowOf(ctx: RequestContext, latencyMs: number, trace: string | null = null): LedgerRow {
  return {
    request_id: ctx.id,
    client_request_id: ctx.clientRequestId ?? null,
    ts: ctx.ts,
    kind: ctx.kind,
    key_name: ctx.key?.name ?? null,
    team: ctx.key?.team ?? null,
    app: ctx.key?.app ?? null,
    user: ctx.user ?? null,
    session: ctx.session ?? null,
    requested_model: ctx.requestedModel ?? null,
    alias: ctx.model?.name ?? null,
    endpoint: ctx.endpoint ?? null,
    upstream_model: ctx.upstreamModel ?? null,
    stream: ctx.stream ? 1 : 0,
    prompt_tokens: ctx.promptTokens,
    completion_tokens: ctx.completionTokens,
    estimated: ctx.estimated ? 1 : 0,
    cost: ctx.cost,
    ttfb_ms: ctx.ttfbMs === undefined ? null : Math.round(ctx.ttfbMs * 1000) / 1000,
    latency_ms: Math.round(latencyMs * 1000) / 1000,
    status: ctx.status,
    attempts: ctx.attempts,
    error_class: ctx.errorClass ?? null,
    tags: ctx.tags ? JSON.stringify(ctx.tags) : null,
    downgraded_from: ctx.downgradedFrom ?? null,
    args_bytes: null,
    result_bytes: null,
    trace,
  };
}

export class Ledger {
  /** rows waiting for the next batch, flattened: LEDGER_COLUMNS.length values per row (a batch of
   * plain values is cloned to the writer in about half the time of row objects) */
  private queue: LedgerValue[] = [];
  private queued = 0;
  private timer: NodeJS.Timeout | undefined;
  /** rows handed to the writer and not yet committed */
  private inWorker = 0;
  private readonly thread: RecorderThread;
  private idle: (() => void)[] = [];
  private prunes = new Map<number, { resolve: (n: number) => void; reject: (e: Error) => void }>();
  private pruneSeq = 0;
  private closing: { resolve: (unwritten: number) => void } | undefined;
  private readonly log: (line: string) => void;
  written = 0;
  /** rows written that carry a plain request's trace (its two spans count as the span store's) */
  tracedWritten = 0;
  dropped = 0;
  failedWrites = 0;
  writable = true;
  lastError: string | undefined;
  lastErrorAt: number | undefined;

  constructor(
    private readonly file: string,
    private readonly policy: () => LedgerPolicy,
    private readonly opts: LedgerOptions = {},
  ) {
    this.log = opts.log ?? ((l) => process.stderr.write(`airlock: ${l}\n`));
    this.thread = opts.thread ?? new RecorderThread(file, { log: this.log });
    this.thread.attach('ledger', { retryMs: opts.retryMs ?? 250 }, { onMessage: (m) => this.onMessage(m as FromWorker), onLost: (e) => this.onLost(e) });
  }

  /** For a Ledger over an open database (its file). */
  static forDatabase(db: DB, policy: () => LedgerPolicy, opts?: LedgerOptions): Ledger {
    return new Ledger(db.name, policy, opts);
  }

  /** The writer thread died: rows inside it are lost with it (say how many); it is restarted. */
  private onLost(e: Error): void {
    this.log(`ledger writer failed (${e.message}); ${this.inWorker} unwritten row(s) lost`);
    this.dropped += this.inWorker;
    this.inWorker = 0;
    this.markFailed(e.message);
    for (const p of this.prunes.values()) p.reject(e);
    this.prunes.clear();
    if (this.closing) this.closing.resolve(0);
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'written':
        this.inWorker -= m.rows;
        this.written += m.rows;
        this.tracedWritten += m.traced;
        if (!this.writable) this.log(`ledger writable again (${this.pending} row(s) still pending)`);
        this.writable = true;
        if (this.pending === 0) for (const w of this.idle.splice(0)) w();
        break;
      case 'failed':
        this.markFailed(m.error);
        break;
      case 'pruned': {
        const p = this.prunes.get(m.id);
        this.prunes.delete(m.id);
        if (m.error) p?.reject(new Error(m.error));
        else p?.resolve(m.rows);
        break;
      }
      case 'closed':
        this.inWorker = m.unwritten;
        this.closing?.resolve(m.unwritten);
        break;
    }
  }

  private markFailed(error: string): void {
    if (this.writable) this.log(`ledger cannot be written (${error}); ${this.policy().whenUnwritable === 'refuse' ? 'refusing new requests' : 'serving, keeping rows in memory'} until it can`);
    this.writable = false;
    this.failedWrites++;
    this.lastError = error;
    this.lastErrorAt = Date.now();
  }

  record(row: LedgerRow): void {
    const max = this.policy().maxPendingRows;
    if (this.queued + this.inWorker >= max) {
      this.dropped++;
      if (this.dropped === 1 || this.dropped % 1000 === 0) this.log(`ledger: ${max} rows already wait to be written; ${this.dropped} row(s) dropped so far`);
      return;
    }
    const q = this.queue;
    for (const c of LEDGER_COLUMNS) q.push(row[c]);
    if (++this.queued >= MAX_BATCH) this.post();
    else if (!this.timer) this.timer = setTimeout(() => this.post(), FLUSH_MS);
  }

  /** rows recorded and not yet committed */
  get pending(): number {
    return this.queued + this.inWorker;
  }

  /** true while new requests must be refused (settings.ledger_when_unwritable: refuse) */
  get refusing(): boolean {
    return !this.writable && this.policy().whenUnwritable === 'refuse';
  }

  state(): LedgerState {
    return {
      writable: this.writable,
      mode: this.policy().whenUnwritable,
      pending: this.pending,
      written: this.written,
      dropped: this.dropped,
      failed_writes: this.failedWrites,
      last_error: this.lastError ?? null,
      last_error_at: this.lastErrorAt ? new Date(this.lastErrorAt).toISOString() : null,
    };
  }

  private post(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.queued || this.closing) return;
    const values = this.queue;
    this.queue = [];
    this.inWorker += this.queued;
    this.queued = 0;
    this.thread.post('ledger', { type: 'rows', values } satisfies ToWorker);
  }

  /** Hand queued rows to the writer now and wait until every row recorded so far is committed;
   * false when that did not happen within timeoutMs (the database is busy or unwritable). */
  flushed(timeoutMs = 2000): Promise<boolean> {
    this.post();
    if (this.pending === 0) return Promise.resolve(true);
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(t);
        resolve(true);
      };
      const t = setTimeout(() => {
        const i = this.idle.indexOf(done);
        if (i >= 0) this.idle.splice(i, 1);
        resolve(false);
      }, timeoutMs);
      this.idle.push(done);
    });
  }

  /** Delete rows older than the retention period (in the writer: never blocks requests). */
  prune(retentionDays: number | undefined): Promise<number> {
    if (!retentionDays || this.closing) return Promise.resolve(0);
    const id = ++this.pruneSeq;
    this.thread.ref(); // the answer comes from the writer thread
    return new Promise<number>((resolve, reject) => {
      this.prunes.set(id, { resolve, reject });
      this.thread.post('ledger', { type: 'prune', before: Date.now() - retentionDays * 86_400_000, id } satisfies ToWorker);
    }).finally(() => this.thread.unref());
  }

  /** Write what is queued (waiting up to timeoutMs for a busy database), then stop the writer.
   * Resolves with the number of rows that could not be written. */
  async close(timeoutMs = 10_000): Promise<number> {
    if (this.closing) return 0;
    await this.flushed(timeoutMs);
    const unwritten = await this.thread.stopPart('ledger', { type: 'close' } satisfies ToWorker, (resolve) => {
      this.closing = { resolve };
    });
    if (unwritten) this.log(`ledger: ${unwritten} row(s) could not be written before shutdown: ${this.lastError ?? 'unknown error'}`);
    return unwritten;
  }
}

// ---- Reading the ledger (admin API) ----

/** Ledger columns usage can be filtered on (each an exact match). */
export const USAGE_FILTERS = ['team', 'key', 'model', 'user', 'app', 'endpoint', 'session'] as const;
export type UsageFilter = (typeof USAGE_FILTERS)[number];

export interface UsageQuery {
  group_by: UsageGroupBy;
  from?: number;
  to?: number;
  /** exact matches on attribution columns */
  where?: Partial<Record<UsageFilter, string>>;
  /** only rows carrying this tag with this value */
  tag?: { key: string; value: string };
}

const GROUP_COLUMN: Record<Exclude<UsageQuery['group_by'], 'tag'>, string> = {
  team: 'team',
  key: 'key_name',
  model: 'alias',
  user: 'user',
  app: 'app',
  endpoint: 'endpoint',
  session: 'session',
};

/** Requests, errors, tokens, cost and latency per group. Grouped by tag, a request counts once in
 * the group of each of its tags ("key=value"); requests without tags form the null group. */
export function usageAggregates(db: DB, q: UsageQuery): UsageRow[] {
  const byTag = q.group_by === 'tag';
  const col = q.group_by === 'tag' ? `CASE WHEN t.key IS NULL THEN NULL ELSE t.key || '=' || t.value END` : GROUP_COLUMN[q.group_by];
  const where: string[] = [];
  const args: (number | string)[] = [];
  if (q.from !== undefined) {
    where.push('ts >= ?');
    args.push(q.from);
  }
  if (q.to !== undefined) {
    where.push('ts < ?');
    args.push(q.to);
  }
  for (const f of USAGE_FILTERS) {
    const v = q.where?.[f];
    if (v === undefined) continue;
    where.push(`${GROUP_COLUMN[f]} = ?`);
    args.push(v);
  }
  if (q.tag) {
    where.push(`json_extract(tags, '$."' || ? || '"') = ?`);
    args.push(q.tag.key.replace(/"/g, ''), q.tag.value);
  }
  const from = byTag ? `ledger LEFT JOIN json_each(ledger.tags) AS t` : 'ledger';
  return db
    .prepare(
      `SELECT ${col} AS "group", COUNT(*) AS requests, SUM(status >= 400) AS errors,
              SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
              SUM(prompt_tokens + completion_tokens) AS total_tokens, SUM(estimated) AS estimated_requests,
              ROUND(SUM(cost), 6) AS cost, ROUND(AVG(latency_ms), 2) AS avg_latency_ms
       FROM ${from} ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
       GROUP BY "group" ORDER BY total_tokens DESC, requests DESC`,
    )
    .all(...args) as UsageRow[];
}

export interface TimeseriesQuery {
  /** ms since the epoch, inclusive */
  from: number;
  /** ms since the epoch, exclusive; rounded up so the range is a whole number of buckets */
  to: number;
  buckets: number;
}

/** Nearest-rank percentile of an ascending list. */
export function nearestRank(sorted: readonly number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

/**
 * Usage over time: `buckets` equal buckets from `from`. Counts and sums are grouped in SQL; the
 * percentiles come from one query over the range's latencies in ascending order (a few hundred
 * thousand rows are fine), split by bucket as they stream in, so every bucket's list is sorted.
 */
export function usageTimeseries(db: DB, q: TimeseriesQuery): Timeseries {
  const n = Math.max(1, Math.floor(q.buckets));
  const bucketMs = Math.max(1, Math.ceil((q.to - q.from) / n));
  const from = q.from;
  const to = from + n * bucketMs;
  const args = { from, to, bucket: bucketMs };
  const idx = `CAST((ts - @from) / @bucket AS INTEGER)`;
  const sums = db
    .prepare(
      `SELECT ${idx} AS b, COUNT(*) AS requests, SUM(status >= 400) AS errors, SUM(prompt_tokens) AS prompt_tokens,
              SUM(completion_tokens) AS completion_tokens, SUM(cost) AS cost
       FROM ledger WHERE ts >= @from AND ts < @to GROUP BY b`,
    )
    .all(args) as { b: number; requests: number; errors: number; prompt_tokens: number; completion_tokens: number; cost: number }[];
  const data: TimeseriesPoint[] = Array.from({ length: n }, (_, i) => ({
    t: from + i * bucketMs,
    requests: 0,
    errors: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    cost: 0,
    p50_ms: null,
    p99_ms: null,
  }));
  for (const r of sums) {
    const p = data[r.b];
    if (!p) continue;
    p.requests = r.requests;
    p.errors = r.errors;
    p.prompt_tokens = r.prompt_tokens;
    p.completion_tokens = r.completion_tokens;
    p.cost = round6(r.cost);
  }
  const perBucket: number[][] = Array.from({ length: n }, () => []);
  const all: number[] = [];
  const lat = db.prepare(`SELECT ${idx} AS b, latency_ms FROM ledger WHERE ts >= @from AND ts < @to ORDER BY latency_ms`).raw();
  for (const row of lat.iterate(args) as IterableIterator<[number, number]>) {
    perBucket[row[0]]?.push(row[1]);
    all.push(row[1]);
  }
  data.forEach((p, i) => {
    p.p50_ms = nearestRank(perBucket[i]!, 50);
    p.p99_ms = nearestRank(perBucket[i]!, 99);
  });
  const sum = (k: 'requests' | 'errors' | 'prompt_tokens' | 'completion_tokens' | 'cost') => data.reduce((s, p) => s + p[k], 0);
  return {
    from,
    to,
    bucket_ms: bucketMs,
    data,
    totals: {
      requests: sum('requests'),
      errors: sum('errors'),
      prompt_tokens: sum('prompt_tokens'),
      completion_tokens: sum('completion_tokens'),
      cost: round6(sum('cost')),
      p50_ms: nearestRank(all, 50),
      p99_ms: nearestRank(all, 99),
    },
  };
}

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;
