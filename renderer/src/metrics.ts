// Time-series from the recent-requests ledger, computed in the browser.
import type { RequestRow } from './api';

export interface Bucket {
  t: number;
  requests: number;
  errors: number;
  tokens: number;
  p50: number | null;
  p99: number | null;
}

export interface Summary {
  requests: number;
  errors: number;
  tokens: number;
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

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: number[], p: number): number | null {
  if (!sorted.length) return null;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!;
}

export function summarize(rows: RequestRow[]): Summary {
  const lat = rows.map((r) => r.latency_ms).sort((a, b) => a - b);
  return {
    requests: rows.length,
    errors: rows.filter((r) => r.status >= 400).length,
    tokens: rows.reduce((s, r) => s + r.prompt_tokens + r.completion_tokens, 0),
    p50: percentile(lat, 50),
    p99: percentile(lat, 99),
  };
}

/** Buckets of `step` ms ending at the step boundary after `now`. */
export function bucketize(rows: RequestRow[], windowMs: number, step: number, now: number): { buckets: Bucket[]; from: number; to: number } {
  const to = Math.ceil((now + 1) / step) * step;
  const from = to - windowMs;
  const n = Math.round(windowMs / step);
  const groups: RequestRow[][] = Array.from({ length: n }, () => []);
  for (const r of rows) {
    if (r.ts < from || r.ts >= to) continue;
    groups[Math.floor((r.ts - from) / step)]!.push(r);
  }
  const buckets = groups.map((g, i) => {
    const s = summarize(g);
    return { t: from + i * step, requests: s.requests, errors: s.errors, tokens: s.tokens, p50: s.p50, p99: s.p99 };
  });
  return { buckets, from, to };
}
