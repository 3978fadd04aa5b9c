// Time series for the overview charts. The gateway buckets the whole ledger
// (GET /usage/timeseries); this module picks the periods and shapes the answer for the charts.
import type { Timeseries } from './api';

export interface Bucket {
  t: number;
  requests: number;
  errors: number;
  tokens: number;
  cost: number;
  p50: number | null;
  p99: number | null;
}

export interface Summary {
  requests: number;
  errors: number;
  tokens: number;
  cost: number;
  p50: number | null;
  p99: number | null;
}

export const WINDOWS = [
  { id: '15m', label: 'Last 15 minutes', ms: 15 * 60_000, step: 30_000 },
  { id: '1h', label: 'Last hour', ms: 60 * 60_000, step: 2 * 60_000 },
  { id: '6h', label: 'Last 6 hours', ms: 6 * 60 * 60_000, step: 10 * 60_000 },
  { id: '24h', label: 'Last 24 hours', ms: 24 * 60 * 60_000, step: 30 * 60_000 },
] as const;
export type WindowId = (typeof WINDOWS)[number]['id'];

/** The query for a period: whole steps, ending at the step boundary after `now`. */
export function windowQuery(w: { ms: number; step: number }, now: number): { from: number; to: number; buckets: number } {
  const to = Math.ceil((now + 1) / w.step) * w.step;
  return { from: to - w.ms, to, buckets: Math.round(w.ms / w.step) };
}

export function toBuckets(ts: Timeseries): Bucket[] {
  return ts.data.map((p) => ({
    t: p.t,
    requests: p.requests,
    errors: p.errors,
    tokens: p.prompt_tokens + p.completion_tokens,
    cost: p.cost,
    p50: p.p50_ms,
    p99: p.p99_ms,
  }));
}

/** Totals of the period, from the same answer: the gateway's totals (percentiles over every
 * request of the period, which the buckets' percentiles cannot be combined into). */
export function summarize(ts: Timeseries): Summary {
  const t = ts.totals;
  return { requests: t.requests, errors: t.errors, tokens: t.prompt_tokens + t.completion_tokens, cost: t.cost, p50: t.p50_ms, p99: t.p99_ms };
}

/** The start of this month in the browser's time zone (ms since the epoch). */
export function monthStart(): number {
  const d = new Date();
  return new Date(d.getFullYear(), d.getMonth(), 1).getTime();
}
