// Routing: rules pick the alias from request attributes; a strategy orders the alias's
// targets; breakers and health checks take failing targets out of the order.
import type { RuleSpec } from '../config/schema.js';
import type { ModelConfig, Snapshot, TargetConfig } from './snapshot.js';

export interface RouteFacts {
  requestedModel: string;
  team: string | undefined;
  app: string;
  headers: Record<string, string | string[] | undefined>;
  hasTools: boolean;
  promptTokens: () => number;
}

export function ruleMatches(rule: RuleSpec, f: RouteFacts): boolean {
  const w = rule.when;
  if (w.model !== undefined && w.model !== f.requestedModel) return false;
  if (w.teams && (f.team === undefined || !w.teams.includes(f.team))) return false;
  if (w.apps && !w.apps.includes(f.app)) return false;
  if (w.has_tools !== undefined && w.has_tools !== f.hasTools) return false;
  if (w.header) {
    for (const [h, v] of Object.entries(w.header)) {
      const got = f.headers[h];
      if ((Array.isArray(got) ? got[0] : got) !== v) return false;
    }
  }
  if (w.min_prompt_tokens !== undefined || w.max_prompt_tokens !== undefined) {
    const n = f.promptTokens();
    if (w.min_prompt_tokens !== undefined && n < w.min_prompt_tokens) return false;
    if (w.max_prompt_tokens !== undefined && n > w.max_prompt_tokens) return false;
  }
  return true;
}

export interface Resolution {
  model: ModelConfig;
  rule: string | undefined;
}

/** The alias that serves this request: the first matching rule, else the name asked for. */
export function resolveModel(s: Snapshot, f: RouteFacts): Resolution | undefined {
  for (const r of s.rules) {
    if (ruleMatches(r, f)) {
      const model = s.models.get(r.route_to);
      if (model) return { model, rule: r.name };
    }
  }
  const model = s.models.get(f.requestedModel);
  return model ? { model, rule: undefined } : undefined;
}

/** What the router needs to know about each target's live state. */
export interface TargetView {
  canPass(t: TargetConfig): boolean;
  healthy(t: TargetConfig): boolean;
  /** in-flight requests relative to capacity, for least-busy */
  load(t: TargetConfig): number;
  /** moving average of time to first byte in ms; undefined when never measured */
  latency(t: TargetConfig): number | undefined;
}

/**
 * Targets in the order to try them. Targets whose breaker is open are left out; targets on
 * an endpoint the health checks call down are left out unless every target is down.
 */
export function orderTargets(model: ModelConfig, view: TargetView, random: () => number = Math.random): TargetConfig[] {
  if (model.targets.length === 1) {
    // the common case, without the filters and arrays below (same answer: one target, if it can pass)
    const t = model.targets[0]!;
    return view.canPass(t) ? [t] : [];
  }
  const passing = model.targets.filter((t) => view.canPass(t));
  const healthy = passing.filter((t) => view.healthy(t));
  const pool = healthy.length ? healthy : passing;
  switch (model.strategy) {
    case 'fallback':
      return pool;
    case 'weighted':
      return weightedOrder(pool, random);
    case 'least-busy':
      return stableSort(pool, (t) => view.load(t));
    case 'least-latency':
      return stableSort(pool, (t) => view.latency(t) ?? 0);
  }
}

function stableSort(ts: TargetConfig[], key: (t: TargetConfig) => number): TargetConfig[] {
  return ts
    .map((t, i) => ({ t, i, k: key(t) }))
    .sort((a, b) => a.k - b.k || a.i - b.i)
    .map((x) => x.t);
}

/** Weighted random order without replacement: the first pick follows the weights. */
export function weightedOrder(ts: TargetConfig[], random: () => number): TargetConfig[] {
  const left = [...ts];
  const out: TargetConfig[] = [];
  while (left.length) {
    const total = left.reduce((s, t) => s + t.weight, 0);
    let r = random() * total;
    let idx = left.length - 1;
    for (let i = 0; i < left.length; i++) {
      r -= left[i]!.weight;
      if (r < 0) {
        idx = i;
        break;
      }
    }
    out.push(left.splice(idx, 1)[0]!);
  }
  return out;
}
