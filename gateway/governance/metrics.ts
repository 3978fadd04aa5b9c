// Governance metrics (bounded labels: teams and endpoints, never users or sessions).
import { Gauge, type Registry } from 'prom-client';
import type { Runtime } from '../engine/runtime.js';
import type { Snapshot } from '../engine/snapshot.js';
import type { Governance } from './governance.js';
import { budgetStatus } from './reports.js';

export function registerGovernanceMetrics(registry: Registry, gov: Governance, runtime: Runtime, snapshot: () => Snapshot): void {
  new Gauge({
    name: 'airlock_budget_use_ratio',
    help: 'Share of each team budget spent or reserved in its current period (1 = all of it)',
    labelNames: ['team'] as const,
    registers: [registry],
    collect() {
      this.reset();
      const s = snapshot();
      const now = Date.now();
      for (const t of s.teams.values()) {
        if (!t.budget) continue;
        const b = budgetStatus(gov, s, 'team', t.name, t.name, `team:${t.name}`, t.budget, now);
        this.set({ team: t.name }, b.used_percent / 100);
      }
    },
  });
  new Gauge({
    name: 'airlock_endpoint_queue_depth',
    help: 'Requests waiting for a concurrency slot of each endpoint',
    labelNames: ['endpoint'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, ep] of runtime.endpoints) this.set({ endpoint: name }, ep.queued);
    },
  });
  new Gauge({
    name: 'airlock_endpoint_queue_wait_seconds_total',
    help: 'Total time requests waited for a slot of each endpoint (with airlock_endpoint_queue_waits_total: the mean wait)',
    labelNames: ['endpoint'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, ep] of runtime.endpoints) this.set({ endpoint: name }, ep.waitMs / 1000);
    },
  });
  new Gauge({
    name: 'airlock_endpoint_queue_waits_total',
    help: 'Requests that waited for a slot of each endpoint',
    labelNames: ['endpoint'] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [name, ep] of runtime.endpoints) this.set({ endpoint: name }, ep.waited);
    },
  });
}
