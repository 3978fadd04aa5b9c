// Governance at the admit stage: budgets (reserve the estimated cost at admission, settle with the
// real cost, release on failure), rate limits (requests and tokens per minute on keys, teams, end
// users and model aliases), cost-aware downgrade, and each request's share of a saturated
// endpoint (weighted fair queuing, fair-queue.ts). The counters sit behind counters.ts's interface;
// spend of the current periods comes back from the ledger at start (spend.ts).
import diagnostics_channel from 'node:diagnostics_channel';
import type { BudgetSpec, RateLimits } from '../config/governance-schema.js';
import { gatewayError } from '../engine/errors.js';
import type { KeyRecord, Snapshot, TeamConfig } from '../engine/snapshot.js';
import { promptEstimate, type Admission, type RequestContext } from '../engine/stages.js';
import type { BudgetCell, BudgetClaim, Counters, RateClaim } from './counters.js';
import { periodBounds, type PeriodBounds } from './periods.js';

/** Where spend recorded before this process started comes from (the ledger). */
export interface SpendSource {
  /** cost of the rows of a team or key since `start` */
  spendSince(dim: 'team' | 'key', name: string, start: number): number;
  /** cost per end user of a team's rows since `start` */
  userSpendSince(team: string, start: number): Map<string, number>;
}

export type BudgetScope = 'team' | 'key' | 'user';

interface Applied {
  scope: BudgetScope;
  /** "team "research"" — how messages name it */
  label: string;
  claim: BudgetClaim;
  spec: BudgetSpec;
  bounds: PeriodBounds;
}

/** Published on `airlock:budget:threshold` when a settled request takes a budget past its
 * warn_at_percent (the soft threshold) or past 100 %. */
export interface BudgetThreshold {
  source: object;
  scope: BudgetScope;
  /** e.g. 'team "research"' */
  label: string;
  spent: number;
  amount: number;
  period: BudgetSpec['period'];
  /** warn_at_percent, or 100 */
  percent: number;
}
export const budgetThresholdChannel = diagnostics_channel.channel('airlock:budget:threshold');

interface Held {
  budgets: Applied[];
  cells: BudgetCell[];
  reserved: number;
  tpm: RateClaim[];
  tpmTaken: number;
}

/** "1.5s", "6m0s", "120ms": how OpenAI writes x-ratelimit-reset-*. */
export function formatReset(ms: number): string {
  const v = Math.max(0, Math.ceil(ms));
  if (v < 1000) return `${v}ms`;
  if (v < 60_000) return `${Math.round(v / 10) / 100}s`;
  const m = Math.floor(v / 60_000);
  return `${m}m${Math.round((v - m * 60_000) / 1000)}s`;
}

const money = (x: number) => String(Math.round(x * 1e6) / 1e6);

/** The counter subjects of a key, team or model alias, built once per configuration object. */
interface Names {
  label: string;
  budget: string;
  rpm: string;
  tpm: string;
}

export class Governance implements Admission {
  private readonly held = new WeakMap<RequestContext, Held>();
  private readonly names = new WeakMap<object, Names>();
  /** subject → the period start whose spend was brought in from the ledger */
  private readonly seeded = new Map<string, number>();
  private readonly bounds = new Map<string, PeriodBounds>();
  /** when this process started counting: periods that start later have no earlier spend */
  private readonly startedAt: number;

  constructor(
    readonly counters: Counters,
    private readonly spend: SpendSource,
    private readonly now: () => number = Date.now,
  ) {
    this.startedAt = now();
  }

  /** A new configuration: bring in the spend of every budget's current period not counted yet. */
  update(s: Snapshot): void {
    const now = this.now();
    for (const t of s.teams.values()) {
      if (t.budget) this.seed('team', t.name, this.period(t.budget, s, now).start);
      if (t.user_budget) this.seedUsers(t.name, this.period(t.user_budget, s, now).start);
    }
    for (const k of s.keysByHash.values()) if (k.budget) this.seed('key', k.name, this.period(k.budget, s, now).start);
  }

  private nameOf(kind: 'key' | 'team' | 'model', name: string, o: object): Names {
    let n = this.names.get(o);
    if (!n) {
      const subject = `${kind}:${name}`;
      n = { label: `${kind} "${name}"`, budget: subject, rpm: `${subject}#r`, tpm: `${subject}#t` };
      this.names.set(o, n);
    }
    return n;
  }

  /** true the first time a subject is seen in a period (then its spend may need the ledger) */
  private firstInPeriod(subject: string, start: number): boolean {
    if (this.seeded.get(subject) === start) return false;
    this.seeded.set(subject, start);
    return true;
  }

  private seed(dim: 'team' | 'key', name: string, start: number): void {
    const cell = { subject: `${dim}:${name}`, start };
    if (!this.firstInPeriod(cell.subject, start)) return;
    if (start >= this.startedAt || this.counters.known(cell)) return;
    this.counters.seed(cell, this.spend.spendSince(dim, name, start));
  }

  private seedUsers(team: string, start: number): void {
    if (!this.firstInPeriod(`users:${team}`, start)) return;
    if (start >= this.startedAt) return;
    for (const [user, spent] of this.spend.userSpendSince(team, start)) this.counters.seed({ subject: `user:${team}/${user}`, start }, spent);
  }

  private period(b: BudgetSpec, s: Snapshot, now: number): PeriodBounds {
    const tz = s.settings.budget_timezone;
    const k = `${b.period}|${tz}`;
    const c = this.bounds.get(k);
    if (c && now >= c.start && (c.end === null || now < c.end)) return c;
    const fresh = periodBounds(b.period, now, tz);
    this.bounds.set(k, fresh);
    return fresh;
  }

  /** The budgets that apply to a request of this key (and end user), tightest first is not implied. */
  applicable(s: Snapshot, key: KeyRecord, user: string | undefined, now: number): Applied[] {
    const out: Applied[] = [];
    const add = (scope: BudgetScope, label: string, subject: string, spec: BudgetSpec | undefined) => {
      if (!spec) return;
      const bounds = this.period(spec, s, now);
      out.push({ scope, label, spec, bounds, claim: { subject, start: bounds.start, limit: spec.amount } });
    };
    if (key.budget) {
      const n = this.nameOf('key', key.name, key);
      add('key', n.label, n.budget, key.budget);
    }
    const team = key.team !== undefined ? s.teams.get(key.team) : undefined;
    if (team) {
      if (team.budget) {
        const n = this.nameOf('team', team.name, team);
        add('team', n.label, n.budget, team.budget);
      }
      if (user !== undefined && team.user_budget) add('user', `end user "${user}" of team "${team.name}"`, `user:${team.name}/${user}`, team.user_budget);
    }
    return out;
  }

  private rateClaims(ctx: RequestContext, team: TeamConfig | undefined): { label: string; kind: 'rpm' | 'tpm'; claim: RateClaim }[] {
    const out: { label: string; kind: 'rpm' | 'tpm'; claim: RateClaim }[] = [];
    const add = (n: Names, l: RateLimits | undefined) => {
      if (!l) return;
      if (l.rpm) out.push({ label: n.label, kind: 'rpm', claim: { subject: n.rpm, limit: l.rpm } });
      if (l.tpm) out.push({ label: n.label, kind: 'tpm', claim: { subject: n.tpm, limit: l.tpm } });
    };
    const key = ctx.key!;
    if (key.limits) add(this.nameOf('key', key.name, key), key.limits);
    if (team) {
      if (team.limits) add(this.nameOf('team', team.name, team), team.limits);
      if (ctx.user !== undefined && team.user_limits) {
        const subject = `user:${team.name}/${ctx.user}`;
        add({ label: `end user "${ctx.user}" of team "${team.name}"`, budget: subject, rpm: `${subject}#r`, tpm: `${subject}#t` }, team.user_limits);
      }
    }
    const m = ctx.model!;
    if (m.limits) add(this.nameOf('model', m.name, m), m.limits);
    return out;
  }

  admit(ctx: RequestContext): void {
    const s = ctx.snapshot;
    const key = ctx.key!;
    const team = key.team !== undefined ? s.teams.get(key.team) : undefined;
    const batch = key.priority === 'batch' || ctx.priorityHint === 'batch';
    ctx.share = { group: team ? `team:${team.name}` : `key:${key.name}`, weight: team?.weight ?? 1, batch };
    if (!key.budget && !key.limits && !team?.budget && !team?.user_budget && !team?.limits && !team?.user_limits && !ctx.model!.limits) return;
    const now = this.now();
    const budgets = this.applicable(s, key, ctx.user, now);
    for (const b of budgets) this.ensureSeeded(b);

    // cost-aware routing: the caller's tightest budget past the threshold → the cheaper alias
    const dg = ctx.model!.downgrade;
    if (dg && budgets.length) {
      const to = s.models.get(dg.to);
      const used = Math.max(...budgets.map((b) => this.used(b)));
      if (to && used * 100 >= dg.at_percent) {
        ctx.downgradedFrom = ctx.model!.name;
        ctx.model = to;
        (ctx.responseHeaders ??= {})['x-airlock-downgraded-from'] = ctx.downgradedFrom;
      }
    }

    // rate limits (of the alias that serves): every one must have room; nothing is taken unless all do
    const rates = this.rateClaims(ctx, team);
    let tokensNeed = 0;
    if (rates.some((r) => r.kind === 'tpm')) tokensNeed = promptEstimate(ctx);
    let blocked: { label: string; kind: 'rpm' | 'tpm'; claim: RateClaim } | undefined;
    let waitMs = 0;
    for (const r of rates) {
      const w = this.counters.rateWait(r.claim, r.kind === 'rpm' ? 1 : Math.max(1, Math.min(tokensNeed, r.claim.limit)), now);
      if (w > 0) {
        blocked ??= r;
        waitMs = Math.max(waitMs, w);
      }
    }
    if (blocked) {
      const h = this.rateHeaders(rates, now, {});
      h['retry-after'] = String(Math.max(1, Math.ceil(waitMs / 1000)));
      h['retry-after-ms'] = String(waitMs);
      ctx.responseHeaders = { ...ctx.responseHeaders, ...h };
      throw gatewayError(
        'rate_limit_exceeded',
        `Rate limit exceeded for ${blocked.label}: ${blocked.claim.limit} ${blocked.kind === 'rpm' ? 'requests' : 'tokens'} per minute; retry in ${Math.ceil(waitMs / 1000)} s.`,
        { headers: h },
      );
    }

    // budgets: reserve the estimated cost on each at once, or refuse naming the one that is spent
    let reserved = 0;
    if (budgets.length) {
      reserved = this.estimate(ctx);
      const i = this.counters.reserve(
        budgets.map((b) => b.claim),
        reserved,
      );
      if (i >= 0) {
        const b = budgets[i]!;
        const { spent } = this.counters.budget(b.claim);
        const unit = s.settings.cost_unit;
        const headers: Record<string, string> = { 'x-should-retry': 'false' };
        let resets = 'it does not reset (period "total"): an admin must raise it';
        if (b.bounds.end !== null) {
          headers['retry-after'] = String(Math.max(1, Math.ceil((b.bounds.end - now) / 1000)));
          resets = `it resets at ${new Date(b.bounds.end).toISOString()}`;
        }
        throw gatewayError('budget_exceeded', `Budget exceeded for ${b.label}: spent ${money(spent)} of ${money(b.spec.amount)} ${unit} (period ${b.spec.period}); ${resets}.`, { headers });
      }
      for (const b of budgets) ctx.reservations.push({ kind: 'budget', amount: reserved, subject: b.claim.subject });
    }
    const tpm: RateClaim[] = [];
    for (const r of rates) {
      if (r.kind === 'rpm') this.counters.take(r.claim, 1, now);
      else {
        this.counters.take(r.claim, tokensNeed, now);
        tpm.push(r.claim);
        ctx.reservations.push({ kind: 'tpm', amount: tokensNeed, subject: r.claim.subject });
      }
    }
    if (rates.length) {
      const h = (ctx.responseHeaders ??= {});
      this.rateHeaders(rates, now, h);
    }
    this.held.set(ctx, { budgets, cells: budgets.map((b) => b.claim), reserved, tpm, tpmTaken: tokensNeed });
  }

  release(ctx: RequestContext): void {
    const h = this.held.get(ctx);
    if (!h) return;
    this.held.delete(ctx);
    if (h.cells.length) {
      const before = budgetThresholdChannel.hasSubscribers && ctx.cost > 0 ? h.budgets.map((b) => this.counters.budget(b.claim).spent) : undefined;
      this.counters.settle(h.cells, h.reserved, ctx.cost);
      if (before) this.crossed(h.budgets, before);
    }
    const extra = ctx.promptTokens + ctx.completionTokens - h.tpmTaken;
    if (extra !== 0) for (const c of h.tpm) this.counters.take(c, extra, this.now());
  }

  private crossed(budgets: Applied[], before: number[]): void {
    budgets.forEach((b, i) => {
      const spent = this.counters.budget(b.claim).spent;
      for (const percent of [b.spec.warn_at_percent, 100]) {
        const line = (b.spec.amount * percent) / 100;
        if (before[i]! < line && spent >= line)
          budgetThresholdChannel.publish({ source: this, scope: b.scope, label: b.label, spent, amount: b.spec.amount, period: b.spec.period, percent } satisfies BudgetThreshold);
      }
    });
  }

  private ensureSeeded(b: Applied): void {
    if (b.scope === 'user') this.seedUsers(b.claim.subject.slice(5, b.claim.subject.indexOf('/')), b.claim.start);
    else this.seed(b.scope, b.claim.subject.slice(b.scope.length + 1), b.claim.start);
  }

  /** spent + reserved, as a share of the budget (1 = all of it) */
  private used(b: Applied): number {
    const { spent, reserved } = this.counters.budget(b.claim);
    return b.spec.amount > 0 ? (spent + reserved) / b.spec.amount : 1;
  }

  /** The request's cost if it used every token it may: the prompt estimate and max_tokens (or
   * settings.default_max_tokens), at its alias's price. */
  estimate(ctx: RequestContext): number {
    const price = ctx.model!.price;
    if (!price) return 0;
    const b = ctx.body;
    const asked = typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : typeof b.max_tokens === 'number' ? b.max_tokens : undefined;
    const completion = ctx.kind === 'embeddings' ? 0 : (asked ?? ctx.snapshot.settings.default_max_tokens);
    return (promptEstimate(ctx) * price.input_per_million + completion * price.output_per_million) / 1e6 + (price.per_request ?? 0);
  }

  /** The x-ratelimit-* headers: the tightest request limit and the tightest token limit. */
  private rateHeaders(rates: { kind: 'rpm' | 'tpm'; claim: RateClaim }[], now: number, h: Record<string, string>): Record<string, string> {
    let rq: RateClaim | undefined;
    let rqLeft = Infinity;
    let rqReset = 0;
    let tk: RateClaim | undefined;
    let tkLeft = Infinity;
    let tkReset = 0;
    for (const r of rates) {
      const st = this.counters.rate(r.claim, now);
      if (r.kind === 'rpm') {
        if (st.remaining < rqLeft) [rq, rqLeft, rqReset] = [r.claim, st.remaining, st.resetMs];
      } else if (st.remaining < tkLeft) [tk, tkLeft, tkReset] = [r.claim, st.remaining, st.resetMs];
    }
    if (rq) {
      h['x-ratelimit-limit-requests'] = String(rq.limit);
      h['x-ratelimit-remaining-requests'] = String(rqLeft);
      h['x-ratelimit-reset-requests'] = formatReset(rqReset);
    }
    if (tk) {
      h['x-ratelimit-limit-tokens'] = String(tk.limit);
      h['x-ratelimit-remaining-tokens'] = String(tkLeft);
      h['x-ratelimit-reset-tokens'] = formatReset(tkReset);
    }
    return h;
  }
}
