// GET /admin/api/v1/budgets/burndown (issue 8): a team's or key's spend over its current budget
// period, cumulative per time bucket from the usage ledger, beside the budget, the even pace (the
// spend that would use the budget up exactly at the period's end) and, at the pace so far, the
// spend projected for the period's end and when the budget would run out.
import type { Snapshot } from '../engine/snapshot.js';
import type { DB } from '../store/db.js';
import type { BudgetBurndown } from '../wire.js';
import { periodBounds } from './periods.js';

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export class NoBudgetError extends Error {}

export function burndown(db: DB, s: Snapshot, scope: 'team' | 'key', name: string, buckets: number, now = Date.now()): BudgetBurndown {
  const spec = scope === 'team' ? s.teams.get(name)?.budget : [...s.keysByHash.values()].find((k) => k.name === name)?.budget;
  if (!spec) throw new NoBudgetError(`${scope} "${name}" has no budget`);
  const col = scope === 'team' ? 'team' : 'key_name';
  const bounds = periodBounds(spec.period, now, s.settings.budget_timezone);
  // "total" never resets: its chart starts at the first request of the team or key (or now)
  const first = bounds.start === 0 ? ((db.prepare(`SELECT MIN(ts) FROM ledger WHERE ${col} = ?`).pluck().get(name) as number | null) ?? now) : bounds.start;
  const from = first;
  // the chart runs to the period's end; "total" to now
  const to = Math.max(bounds.end ?? now, from + 1);
  const step = (to - from) / buckets;
  const sums = db
    .prepare(`SELECT CAST((ts - ?) / ? AS INTEGER) AS b, SUM(cost) AS cost FROM ledger WHERE ${col} = ? AND ts >= ? AND ts < ? GROUP BY b`)
    .all(from, step, name, from, Math.min(to, now + 1)) as { b: number; cost: number }[];
  const perBucket = new Array<number>(buckets).fill(0);
  for (const r of sums) perBucket[Math.min(buckets - 1, Math.max(0, r.b))]! += r.cost;
  let cum = 0;
  const points = perBucket.map((c, i) => {
    const end = from + (i + 1) * step;
    const start = from + i * step;
    cum += c;
    return {
      time: new Date(Math.round(end)).toISOString(),
      // buckets that have not begun yet have no spend (null), not zero
      spent: start <= now ? round6(cum) : null,
      pace: round6((spec.amount * (i + 1)) / buckets),
    };
  });
  const elapsed = Math.max(1, Math.min(now, to) - from);
  const rate = cum / elapsed; // cost per ms so far
  const projected = bounds.end === null ? null : round6(cum + rate * Math.max(0, to - now));
  const runsOut = cum >= spec.amount ? now : rate > 0 && (bounds.end === null || now + (spec.amount - cum) / rate < to) ? now + (spec.amount - cum) / rate : null;
  return {
    scope,
    name,
    period: spec.period,
    amount: spec.amount,
    cost_unit: s.settings.cost_unit,
    from: new Date(from).toISOString(),
    to: new Date(to).toISOString(),
    spent: round6(cum),
    projected,
    runs_out_at: runsOut === null ? null : new Date(Math.round(runsOut)).toISOString(),
    points,
  };
}
