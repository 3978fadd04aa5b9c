// Governance at the admit stage: budgets (reserve the estimated cost at admission, settle with the
// real cost, release on failure), rate limits (requests and tokens per minute on keys, teams, end
// users and model aliases), cost-aware downgrade, and each request's share of a saturated
// endpoint (weighted fair queuing, fair-queue.ts). The counters sit behind counters.ts's interface;
// spend of the current periods comes back from the ledger at start (spend.ts).
import diagnostics_channel from 'node:diagnostics_channel';
import type { BudgetSpec, RateLimits } from '../config/governance-schema.js';
import { gatewayError } from '../engine/errors.js';
import type { KeyRecord, ModelConfig, Snapshot, TeamConfig } from '../engine/snapshot.js';
import { promptEstimate, type Admission, type QueueShare, type RequestContext } from '../engine/stages.js';
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

/** What admit() reserved for one request (ctx.admissionHold), until release(). */
interface Held {
  budgets: readonly BudgetRule[];
  /** each budget's claim in its period, in the order of `budgets` */
  cells: BudgetClaim[];
  reserved: number;
  tpm: RateClaim[] | undefined;
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

interface RateRule {
  label: string;
  kind: 'rpm' | 'tpm';
  claim: RateClaim;
}

/** A budget that applies, with its claim in the current period (rebuilt when the period ends). */
interface BudgetRule {
  scope: BudgetScope;
  label: string;
  subject: string;
  spec: BudgetSpec;
  bounds: PeriodBounds | undefined;
  claim: BudgetClaim | undefined;
}

/** What governs the requests of one key to one model alias in one snapshot, built once: the
 * per-request work is then the counters' arithmetic (end users' rules are added per request). */
interface Plan {
  snapshot: Snapshot;
  team: TeamConfig | undefined;
  /** no budget and no limit applies (end users' rules aside) */
  free: boolean;
  budgets: BudgetRule[];
  rates: RateRule[];
  /** the team's user_budget, its period bounds kept here (each end user's claim is per request) */
  userBudget: BudgetRule | undefined;
  /** where the key's requests wait for a saturated endpoint: interactive, batch */
  shares: readonly [QueueShare, QueueShare];
}

function rateRules(out: RateRule[], label: string, subject: string, l: RateLimits | undefined): void {
  if (!l) return;
  if (l.rpm) out.push({ label, kind: 'rpm', claim: { subject: `${subject}#r`, limit: l.rpm } });
  if (l.tpm) out.push({ label, kind: 'tpm', claim: { subject: `${subject}#t`, limit: l.tpm } });
}

export class Governance implements Admission {
  /** key → model alias → plan (a key record lives as long as its snapshot) */
  private readonly plans = new WeakMap<KeyRecord, Map<ModelConfig, Plan>>();
  /** subject → the period start whose spend was brought in from the ledger */
  private readonly seeded = new Map<string, number>();
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
    const tz = s.settings.budget_timezone;
    for (const t of s.teams.values()) {
      if (t.budget) this.seed('team', t.name, periodBounds(t.budget.period, now, tz).start);
      if (t.user_budget) this.seedUsers(t.name, periodBounds(t.user_budget.period, now, tz).start);
    }
    for (const k of s.keysByHash.values()) if (k.budget) this.seed('key', k.name, periodBounds(k.budget.period, now, tz).start);
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

  private plan(s: Snapshot, key: KeyRecord, model: ModelConfig): Plan {
    let byModel = this.plans.get(key);
    if (!byModel) {
      byModel = new Map();
      this.plans.set(key, byModel);
    }
    const cached = byModel.get(model);
    if (cached && cached.snapshot === s) return cached;
    const team = key.team !== undefined ? s.teams.get(key.team) : undefined;
    const budgets: BudgetRule[] = [];
    const rule = (scope: BudgetScope, label: string, subject: string, spec: BudgetSpec): BudgetRule => ({ scope, label, subject, spec, bounds: undefined, claim: undefined });
    if (key.budget) budgets.push(rule('key', `key "${key.name}"`, `key:${key.name}`, key.budget));
    if (team?.budget) budgets.push(rule('team', `team "${team.name}"`, `team:${team.name}`, team.budget));
    const rates: RateRule[] = [];
    rateRules(rates, `key "${key.name}"`, `key:${key.name}`, key.limits);
    if (team) rateRules(rates, `team "${team.name}"`, `team:${team.name}`, team.limits);
    rateRules(rates, `model "${model.name}"`, `model:${model.name}`, model.limits);
    const userBudget = team?.user_budget ? rule('user', '', '', team.user_budget) : undefined;
    const group = team ? `team:${team.name}` : `key:${key.name}`;
    const weight = team?.weight ?? 1;
    const shares = [Object.freeze({ group, weight, batch: false }), Object.freeze({ group, weight, batch: true })] as const;
    const p: Plan = { snapshot: s, team, budgets, rates, free: !budgets.length && !rates.length, userBudget, shares };
    byModel.set(model, p);
    return p;
  }

  /** The rule's claim in the period that contains `now` (the same object while the period lasts). */
  private claim(r: BudgetRule, s: Snapshot, now: number): BudgetClaim {
    const b = r.bounds;
    if (b && r.claim && now >= b.start && (b.end === null || now < b.end)) return r.claim;
    const fresh = periodBounds(r.spec.period, now, s.settings.budget_timezone);
    r.bounds = fresh;
    r.claim = { subject: r.subject, start: fresh.start, limit: r.spec.amount };
    return r.claim;
  }

  admit(ctx: RequestContext): void {
    const s = ctx.snapshot;
    const key = ctx.key!;
    let plan = this.plan(s, key, ctx.model!);
    const team = plan.team;
    ctx.share = plan.shares[key.priority === 'batch' || ctx.priorityHint === 'batch' ? 1 : 0];
    const user = ctx.user !== undefined && (team?.user_budget || team?.user_limits) ? ctx.user : undefined;
    if (plan.free && user === undefined) return;
    const now = this.now();
    let budgets = plan.budgets;
    const claims: BudgetClaim[] = [];
    for (const b of budgets) {
      const c = this.claim(b, s, now);
      claims.push(c);
      this.seed(b.scope as 'key' | 'team', b.subject.slice(b.scope.length + 1), c.start);
    }
    const ub = user !== undefined ? plan.userBudget : undefined;
    if (ub) {
      const start = this.claim(ub, s, now).start;
      const subject = `user:${team!.name}/${user}`;
      budgets = [...budgets, { scope: 'user', label: `end user "${user}" of team "${team!.name}"`, subject, spec: ub.spec, bounds: ub.bounds, claim: undefined }];
      claims.push({ subject, start, limit: ub.spec.amount });
      this.seedUsers(team!.name, start);
    }

    // cost-aware routing: the caller's tightest budget past the threshold → the cheaper alias
    const dg = ctx.model!.downgrade;
    if (dg && budgets.length) {
      const to = s.models.get(dg.to);
      let used = 0;
      for (let i = 0; i < budgets.length; i++) used = Math.max(used, this.used(claims[i]!, budgets[i]!.spec));
      if (to && used * 100 >= dg.at_percent) {
        ctx.downgradedFrom = ctx.model!.name;
        ctx.model = to;
        (ctx.responseHeaders ??= {})['x-airlock-downgraded-from'] = ctx.downgradedFrom;
        plan = this.plan(s, key, to);
      }
    }

    // rate limits (of the alias that serves): every one must have room; nothing is taken unless all do
    let rates = plan.rates;
    if (user !== undefined && team!.user_limits) {
      rates = rates.slice();
      rateRules(rates, `end user "${user}" of team "${team!.name}"`, `user:${team!.name}/${user}`, team!.user_limits);
    }
    let tokensNeed = 0;
    for (const r of rates) if (r.kind === 'tpm') tokensNeed = promptEstimate(ctx);
    let blocked: RateRule | undefined;
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
      const i = this.counters.reserve(claims, reserved);
      if (i >= 0) {
        const b = budgets[i]!;
        const c = claims[i]!;
        const { spent, reserved: held } = this.counters.budget(c);
        const unit = s.settings.cost_unit;
        if (spent < b.spec.amount && held > 0) {
          // not spent: held by requests in flight, whose reservations settle when they end —
          // a wait, not a period's end or an admin (retry soon: the openai client may)
          const headers: Record<string, string> = { 'retry-after': '1' };
          throw gatewayError(
            'budget_exceeded',
            `Budget exceeded for ${b.label} for now: spent ${money(spent)} of ${money(b.spec.amount)} ${unit}, and requests in flight hold ${money(held)} until they finish; this one (up to ${money(reserved)}) does not fit beside them. Retry when they have finished.`,
            { headers },
          );
        }
        const headers: Record<string, string> = { 'x-should-retry': 'false' };
        let resets = 'it does not reset (period "total"): an admin must raise it';
        const end = b.bounds!.end;
        if (end !== null) {
          headers['retry-after'] = String(Math.max(1, Math.ceil((end - now) / 1000)));
          resets = `it resets at ${new Date(end).toISOString()}`;
        }
        throw gatewayError('budget_exceeded', `Budget exceeded for ${b.label}: spent ${money(spent)} of ${money(b.spec.amount)} ${unit} (period ${b.spec.period}); ${resets}.`, { headers });
      }
    }
    let tpm: RateClaim[] | undefined;
    for (const r of rates) {
      if (r.kind === 'rpm') this.counters.take(r.claim, 1, now);
      else {
        this.counters.take(r.claim, tokensNeed, now);
        (tpm ??= []).push(r.claim);
      }
    }
    if (rates.length) this.rateHeaders(rates, now, (ctx.responseHeaders ??= {}));
    ctx.admissionHold = { budgets, cells: claims, reserved, tpm, tpmTaken: tokensNeed } satisfies Held;
  }

  release(ctx: RequestContext): void {
    const h = ctx.admissionHold as Held | undefined;
    if (!h) return;
    ctx.admissionHold = undefined;
    if (h.cells.length) {
      let before: number[] | undefined;
      if (budgetThresholdChannel.hasSubscribers && ctx.cost > 0) {
        before = [];
        for (const c of h.cells) before.push(this.counters.budget(c).spent);
      }
      this.counters.settle(h.cells, h.reserved, ctx.cost);
      if (before) this.crossed(h, before);
    }
    const extra = ctx.promptTokens + ctx.completionTokens - h.tpmTaken;
    if (extra !== 0 && h.tpm) {
      const now = this.now();
      for (const c of h.tpm) this.counters.take(c, extra, now);
    }
  }

  private crossed(h: Held, before: number[]): void {
    for (let i = 0; i < h.budgets.length; i++) {
      const b = h.budgets[i]!;
      const spent = this.counters.budget(h.cells[i]!).spent;
      for (const percent of [b.spec.warn_at_percent, 100]) {
        const line = (b.spec.amount * percent) / 100;
        if (before[i]! < line && spent >= line)
          budgetThresholdChannel.publish({ source: this, scope: b.scope, label: b.label, spent, amount: b.spec.amount, period: b.spec.period, percent } satisfies BudgetThreshold);
      }
    }
  }

  /** spent + reserved, as a share of the budget (1 = all of it) */
  private used(c: BudgetCell, spec: BudgetSpec): number {
    const { spent, reserved } = this.counters.budget(c);
    return spec.amount > 0 ? (spent + reserved) / spec.amount : 1;
  }

  /** The request's cost if it used every token it may: the prompt estimate and max_tokens (or
   * settings.default_max_tokens), at its alias's price. */
  estimate(ctx: RequestContext): number {
    const price = ctx.model!.price;
    if (!price) return 0;
    const b = ctx.body;
    const asked = typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : typeof b.max_tokens === 'number' ? b.max_tokens : undefined;
    // every one of n choices may use max_tokens (validateBody keeps both whole and positive)
    const choices = typeof b.n === 'number' && b.n > 1 ? b.n : 1;
    const completion = ctx.kind === 'embeddings' ? 0 : Math.max(0, asked ?? ctx.snapshot.settings.default_max_tokens) * choices;
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
