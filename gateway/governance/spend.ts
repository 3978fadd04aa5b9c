// Spend recorded in the ledger: what budgets start from after a restart (read once per budget
// and period, never per request).
import type { DB } from '../store/db.js';
import type { SpendSource } from './governance.js';

export function ledgerSpend(db: DB): SpendSource {
  const byTeam = db.prepare(`SELECT COALESCE(SUM(cost), 0) FROM ledger WHERE team = ? AND ts >= ?`).pluck();
  const byKey = db.prepare(`SELECT COALESCE(SUM(cost), 0) FROM ledger WHERE key_name = ? AND ts >= ?`).pluck();
  const byUser = db.prepare(`SELECT user, SUM(cost) AS spent FROM ledger WHERE team = ? AND ts >= ? AND user IS NOT NULL GROUP BY user`);
  return {
    spendSince: (dim, name, start) => (dim === 'team' ? byTeam : byKey).get(name, start) as number,
    userSpendSince: (team, start) => new Map((byUser.all(team, start) as { user: string; spent: number }[]).map((r) => [r.user, r.spent])),
  };
}
