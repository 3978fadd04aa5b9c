// Guardrail hits per policy over time (GET /guardrail-events/summary), read in the admin reads'
// worker (server/admin-read-worker.ts): plain reads of guardrail_events and the ledger, apart from
// the recorder in events.ts so the worker loads no metrics client.
import type { GuardrailSpec } from '../config/guardrails-schema.js';
import type { DB } from '../store/db.js';
import type { GuardrailHitSeries } from '../wire.js';

/** Hits per policy over time: `buckets` equal buckets in [from, to), every configured policy
 * present (and any other that has hits in the window). For input/output policies, `requests` is
 * how many requests in the policy's scope the ledger holds for the window (those that reached a
 * model), and `hit_requests` how many of them the policy found something in: the hit rate. */
export function guardrailHitSeries(db: DB, from: number, to: number, buckets: number, specs: readonly GuardrailSpec[] = []): GuardrailHitSeries {
  const width = Math.max(1, Math.ceil((to - from) / buckets));
  const rows = db
    .prepare(
      `SELECT policy, mode, CAST((ts - ?) / ? AS INTEGER) AS b, COUNT(*) AS n FROM guardrail_events WHERE ts >= ? AND ts < ? GROUP BY policy, mode, b ORDER BY policy, b`,
    )
    .all(from, width, from, to) as { policy: string; mode: string; b: number; n: number }[];
  const hitRequests = new Map(
    (db.prepare(`SELECT policy, COUNT(DISTINCT request_id) AS n FROM guardrail_events WHERE ts >= ? AND ts < ? AND request_id IS NOT NULL GROUP BY policy`).all(from, to) as { policy: string; n: number }[]).map((r) => [r.policy, r.n]),
  );
  const policies = new Map<string, GuardrailHitSeries['policies'][number]>();
  const entry = (policy: string) => {
    let p = policies.get(policy);
    if (!p) {
      p = { policy, total: 0, shadow: 0, enforced: 0, requests: null, hit_requests: hitRequests.get(policy) ?? 0, points: Array.from({ length: buckets }, (_, i) => ({ ts: new Date(from + i * width).toISOString(), shadow: 0, enforced: 0 })) };
      policies.set(policy, p);
    }
    return p;
  };
  for (const spec of specs) {
    const p = entry(spec.name);
    if (spec.direction.includes('input') || spec.direction.includes('output')) p.requests = requestsInScope(db, from, to, spec);
  }
  for (const r of rows) {
    const p = entry(r.policy);
    const pt = p.points[Math.min(buckets - 1, r.b)]!;
    if (r.mode === 'shadow') {
      pt.shadow += r.n;
      p.shadow += r.n;
    } else {
      pt.enforced += r.n;
      p.enforced += r.n;
    }
    p.total += r.n;
  }
  return { from: new Date(from).toISOString(), to: new Date(to).toISOString(), bucket_ms: width, policies: [...policies.values()] };
}

/** Ledger requests in [from, to) that reached a model, within a policy's scope (models, teams, keys). */
function requestsInScope(db: DB, from: number, to: number, spec: GuardrailSpec): number {
  const where = ['ts >= ?', 'ts < ?', 'alias IS NOT NULL'];
  const args: (string | number)[] = [from, to];
  const list = (cols: string[], v: string[] | undefined) => {
    if (!v) return;
    const marks = v.map(() => '?').join(', ') || 'NULL';
    where.push(`(${cols.map((c) => `${c} IN (${marks})`).join(' OR ')})`);
    for (let i = 0; i < cols.length; i++) args.push(...v);
  };
  const sc = spec.scope;
  list(['alias', 'requested_model'], sc?.models);
  list(['team'], sc?.teams);
  list(['key_name'], sc?.keys);
  // a policy scoped to agents, MCP servers or tools does not see data-plane requests
  if (sc?.agents || sc?.mcp_servers || sc?.tools) return 0;
  return db.prepare(`SELECT COUNT(*) FROM ledger WHERE ${where.join(' AND ')}`).pluck().get(...args) as number;
}
