// GET /admin/api/v1/budgets: every budget with its spend, reservations and status.
import type { BudgetSpec } from '../config/governance-schema.js';
import type { Snapshot } from '../engine/snapshot.js';
import type { DB } from '../store/db.js';
import type { BudgetStatus, BudgetsBody } from '../wire.js';
import type { Governance } from './governance.js';
import { periodBounds } from './periods.js';

const round6 = (x: number) => Math.round(x * 1e6) / 1e6;

export function budgetStatus(gov: Governance, s: Snapshot, scope: BudgetStatus['scope'], name: string, team: string | null, subject: string, spec: BudgetSpec, now: number): BudgetStatus {
  const b = periodBounds(spec.period, now, s.settings.budget_timezone);
  const { spent, reserved } = gov.counters.budget({ subject, start: b.start });
  const used = spec.amount > 0 ? ((spent + reserved) / spec.amount) * 100 : spent + reserved > 0 ? Infinity : 0;
  return {
    scope,
    name,
    team,
    period: spec.period,
    amount: spec.amount,
    spent: round6(spent),
    reserved: round6(reserved),
    used_percent: Number.isFinite(used) ? Math.round(used * 100) / 100 : 100,
    warn_at_percent: spec.warn_at_percent,
    status: spent >= spec.amount ? 'exceeded' : used >= spec.warn_at_percent ? 'warning' : 'ok',
    period_start: new Date(b.start).toISOString(),
    period_end: b.end === null ? null : new Date(b.end).toISOString(),
  };
}

/** The users of `team` with requests in the ledger since `start` (a per-user budget lists them). */
export function teamUsers(db: DB, team: string, start: number): string[] {
  return db.prepare(`SELECT DISTINCT user FROM ledger WHERE team = ? AND ts >= ? AND user IS NOT NULL ORDER BY user`).pluck().all(team, start) as string[];
}

/** Every budget's status. `usersOf` lists a team's users in a period (teamUsers, which reads every
 * ledger row of the team in it: the admin plane runs it in its reads' worker). */
export async function budgetReport(gov: Governance, s: Snapshot, usersOf: (team: string, start: number) => Promise<string[]>, now = Date.now()): Promise<BudgetsBody> {
  const data: BudgetStatus[] = [];
  for (const t of s.teams.values()) {
    if (t.budget) data.push(budgetStatus(gov, s, 'team', t.name, t.name, `team:${t.name}`, t.budget, now));
    if (t.user_budget) {
      const start = periodBounds(t.user_budget.period, now, s.settings.budget_timezone).start;
      for (const u of await usersOf(t.name, start)) data.push(budgetStatus(gov, s, 'user', u, t.name, `user:${t.name}/${u}`, t.user_budget, now));
    }
  }
  for (const k of s.keysByHash.values()) if (k.budget) data.push(budgetStatus(gov, s, 'key', k.name, k.team ?? null, `key:${k.name}`, k.budget, now));
  return { cost_unit: s.settings.cost_unit, timezone: s.settings.budget_timezone, data };
}
