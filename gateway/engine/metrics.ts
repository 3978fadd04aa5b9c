// Prometheus metrics (prom-client), served on the data plane's GET /metrics.
import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { LiteCounter, LiteHistogram } from './prom-lite.js';
import type { Runtime } from './runtime.js';
import type { Snapshot } from './snapshot.js';
import type { LedgerState } from './ledger.js';
import type { RequestContext } from './stages.js';

export class Metrics {
  readonly registry = new Registry();
  // the per-request series: prom-lite (one Map lookup per update), read by the registry when scraped
  readonly requests = new LiteCounter(
    'airlock_requests_total',
    'Requests handled on the data plane, by kind, model alias, serving endpoint, team and status',
    ['kind', 'model', 'endpoint', 'team', 'status'] as const,
  ).registerIn(this.registry);
  readonly tokens = new LiteCounter('airlock_tokens_total', 'Tokens attributed, by model alias, team and direction (prompt|completion)', ['model', 'team', 'direction'] as const).registerIn(this.registry);
  readonly cost = new LiteCounter('airlock_cost_total', 'Internal chargeback cost, by model alias and team', ['model', 'team'] as const).registerIn(this.registry);
  readonly latency = new LiteHistogram(
    'airlock_request_duration_seconds',
    'Whole request duration seen by the client',
    ['kind', 'model'] as const,
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
  ).registerIn(this.registry);
  readonly ttfb = new LiteHistogram('airlock_time_to_first_byte_seconds', 'Time until the first byte went to the client', ['model'] as const, [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
  ]).registerIn(this.registry);
  readonly attempts = new LiteCounter(
    'airlock_upstream_attempts_total',
    'Upstream attempts by endpoint and outcome (ok|connect_error|timeout|http_5xx|http_429|invalid_response|...)',
    ['endpoint', 'outcome'] as const,
  ).registerIn(this.registry);

  readonly rejected = new LiteCounter(
    'airlock_requests_rejected_total',
    'Requests refused by governance, by reason (budget_exceeded|rate_limit_exceeded|capacity_timeout)',
    ['reason'] as const,
  ).registerIn(this.registry);

  /** A finished, settled request. */
  observeRequest(ctx: RequestContext, latencyMs: number): void {
    const ec = ctx.errorClass;
    if (ec === 'budget_exceeded' || ec === 'rate_limit_exceeded' || ec === 'capacity_timeout') this.rejected.inc({ reason: ec });
    const model = ctx.model?.name ?? '';
    const team = ctx.key?.team ?? '';
    this.requests.inc({ kind: ctx.kind, model, endpoint: ctx.endpoint ?? '', team, status: String(ctx.status) });
    this.latency.observe({ kind: ctx.kind, model }, latencyMs / 1000);
    if (ctx.ttfbMs !== undefined) this.ttfb.observe({ model }, ctx.ttfbMs / 1000);
    if (ctx.promptTokens || ctx.completionTokens) {
      this.tokens.inc({ model, team, direction: 'prompt' }, ctx.promptTokens);
      this.tokens.inc({ model, team, direction: 'completion' }, ctx.completionTokens);
      if (ctx.cost) this.cost.inc({ model, team }, ctx.cost);
    }
  }

  constructor(runtime: Runtime, getSnapshot: () => Snapshot, ledger?: () => LedgerState) {
    collectDefaultMetrics({ register: this.registry, prefix: 'airlock_process_' });
    if (ledger) {
      new Gauge({
        name: 'airlock_ledger_writable',
        help: '1 while usage rows are being written to the database, 0 while it cannot be written',
        registers: [this.registry],
        collect() {
          this.set(ledger().writable ? 1 : 0);
        },
      });
      new Gauge({
        name: 'airlock_ledger_pending_rows',
        help: 'Usage rows recorded in memory and not yet committed',
        registers: [this.registry],
        collect() {
          this.set(ledger().pending);
        },
      });
      new Gauge({
        name: 'airlock_ledger_dropped_rows',
        help: 'Usage rows dropped since start because ledger_max_pending_rows were already waiting',
        registers: [this.registry],
        collect() {
          this.set(ledger().dropped);
        },
      });
    }
    new Gauge({
      name: 'airlock_endpoint_inflight',
      help: 'Requests in flight to each endpoint',
      labelNames: ['endpoint'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [name, ep] of runtime.endpoints) this.set({ endpoint: name }, ep.inflight);
      },
    });
    new Gauge({
      name: 'airlock_endpoint_up',
      help: '1 when the last health checks passed, 0 when the endpoint is marked down',
      labelNames: ['endpoint'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const [name, ep] of runtime.endpoints) this.set({ endpoint: name }, ep.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'airlock_target_breaker_open',
      help: '1 when the circuit breaker of a target (endpoint/model) is open or half-open',
      labelNames: ['target'] as const,
      registers: [this.registry],
      collect() {
        this.reset();
        for (const m of getSnapshot().models.values())
          for (const t of m.targets) this.set({ target: t.id }, runtime.target(t).breaker.state === 'closed' ? 0 : 1);
      },
    });
  }
}
