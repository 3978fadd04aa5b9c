// The usage ledger: one row per request, queued in memory on the request path and written in
// batched transactions off it. A flush runs at most FLUSH_MS after a row is queued, so a
// response finished 200 ms before a SIGKILL is on disk (WAL, committed) when the process dies.
import type { DB } from '../store/db.js';

export interface LedgerRow {
  request_id: string;
  ts: number;
  kind: string;
  key_name: string | null;
  team: string | null;
  app: string | null;
  user: string | null;
  session: string | null;
  requested_model: string | null;
  alias: string | null;
  endpoint: string | null;
  upstream_model: string | null;
  stream: number;
  prompt_tokens: number;
  completion_tokens: number;
  estimated: number;
  cost: number;
  ttfb_ms: number | null;
  latency_ms: number;
  status: number;
  attempts: number;
  error_class: string | null;
}

export const LEDGER_COLUMNS = [
  'request_id', 'ts', 'kind', 'key_name', 'team', 'app', 'user', 'session', 'requested_model', 'alias', 'endpoint',
  'upstream_model', 'stream', 'prompt_tokens', 'completion_tokens', 'estimated', 'cost', 'ttfb_ms', 'latency_ms',
  'status', 'attempts', 'error_class',
] as const satisfies readonly (keyof LedgerRow)[];

export const FLUSH_MS = 50;
const MAX_BATCH = 1000;

export class Ledger {
  private queue: LedgerRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private readonly insert;
  private readonly writeBatch;
  written = 0;
  failedFlushes = 0;

  constructor(private readonly db: DB) {
    this.insert = db.prepare(
      `INSERT OR REPLACE INTO ledger (${LEDGER_COLUMNS.join(', ')}) VALUES (${LEDGER_COLUMNS.map((c) => '@' + c).join(', ')})`,
    );
    this.writeBatch = db.transaction((rows: LedgerRow[]) => {
      for (const r of rows) this.insert.run(r);
    });
  }

  record(row: LedgerRow): void {
    this.queue.push(row);
    if (this.queue.length >= MAX_BATCH) this.flush();
    else if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS);
  }

  get pending(): number {
    return this.queue.length;
  }

  flush(): void {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (!this.queue.length) return;
    const rows = this.queue;
    this.queue = [];
    try {
      this.writeBatch(rows);
      this.written += rows.length;
    } catch (e) {
      // Keep the rows and try again shortly (e.g. SQLITE_BUSY from a CLI writer).
      this.failedFlushes++;
      this.queue = rows.concat(this.queue);
      if (!this.timer) this.timer = setTimeout(() => this.flush(), FLUSH_MS * 4);
      process.emitWarning(`ledger flush failed, will retry: ${(e as Error).message}`);
    }
  }

  /** Delete rows older than the retention period. */
  prune(retentionDays: number | undefined): number {
    if (!retentionDays) return 0;
    return this.db.prepare(`DELETE FROM ledger WHERE ts < ?`).run(Date.now() - retentionDays * 86_400_000).changes;
  }
}

// ---- Reading the ledger (admin API) ----

export interface UsageQuery {
  group_by: 'team' | 'key' | 'model' | 'user' | 'app' | 'endpoint' | 'session';
  from?: number;
  to?: number;
}

const GROUP_COLUMN: Record<UsageQuery['group_by'], string> = {
  team: 'team',
  key: 'key_name',
  model: 'alias',
  user: 'user',
  app: 'app',
  endpoint: 'endpoint',
  session: 'session',
};

export function usageAggregates(db: DB, q: UsageQuery) {
  const col = GROUP_COLUMN[q.group_by];
  const where: string[] = [];
  const args: number[] = [];
  if (q.from !== undefined) {
    where.push('ts >= ?');
    args.push(q.from);
  }
  if (q.to !== undefined) {
    where.push('ts < ?');
    args.push(q.to);
  }
  return db
    .prepare(
      `SELECT ${col} AS "group", COUNT(*) AS requests, SUM(status >= 400) AS errors,
              SUM(prompt_tokens) AS prompt_tokens, SUM(completion_tokens) AS completion_tokens,
              SUM(prompt_tokens + completion_tokens) AS total_tokens, SUM(estimated) AS estimated_requests,
              ROUND(SUM(cost), 6) AS cost, ROUND(AVG(latency_ms), 2) AS avg_latency_ms
       FROM ledger ${where.length ? 'WHERE ' + where.join(' AND ') : ''}
       GROUP BY ${col} ORDER BY total_tokens DESC, requests DESC`,
    )
    .all(...args) as Record<string, unknown>[];
}

export function recentRequests(db: DB, limit: number, before?: number) {
  return db
    .prepare(`SELECT * FROM ledger ${before !== undefined ? 'WHERE ts < ?' : ''} ORDER BY ts DESC, rowid DESC LIMIT ?`)
    .all(...(before !== undefined ? [before, limit] : [limit])) as LedgerRow[];
}

export interface TimeseriesQuery {
  /** ms since the epoch, inclusive */
  from: number;
  /** ms since the epoch, exclusive; rounded up so the range is a whole number of buckets */
  to: number;
  buckets: number;
}

export interface TimeseriesPoint {
  /** bucket start, ms since the epoch */
  t: number;
  requests: number;
  /** requests answered with status >= 400 */
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
  /** nearest-rank percentiles of latency_ms; null for an empty bucket */
  p50_ms: number | null;
  p99_ms: number | null;
}

export interface Timeseries {
  from: number;
  to: number;
  bucket_ms: number;
  data: TimeseriesPoint[];
  /** the whole range: sums, and percentiles over every request in it */
  totals: Omit<TimeseriesPoint, 't'>;
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
