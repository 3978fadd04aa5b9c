// Routing: strategies order targets; breakers and health take targets out; rules pick the alias.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { orderTargets, resolveModel, ruleMatches, weightedOrder, type RouteFacts, type TargetView } from '../../gateway/engine/router.js';
import type { ModelConfig, Snapshot, TargetConfig } from '../../gateway/engine/snapshot.js';
import { DEFAULT_SETTINGS, type RuleSpec, type Strategy } from '../../gateway/config/schema.js';
import { Rng } from '../helpers/random.js';

function target(endpoint: string, model = 'm', weight = 1): TargetConfig {
  return { id: `${endpoint}/${model}`, endpoint, upstreamModel: model, weight };
}

function model(name: string, strategy: Strategy, targets: TargetConfig[]): ModelConfig {
  return { name, strategy, targets, price: undefined, maxAttempts: targets.length + 1 };
}

interface ViewState {
  open?: string[]; // target ids whose breaker is open
  down?: string[]; // endpoints the health checks call down
  load?: Record<string, number>;
  latency?: Record<string, number>;
}
function view(s: ViewState = {}): TargetView {
  return {
    canPass: (t) => !s.open?.includes(t.id),
    healthy: (t) => !s.down?.includes(t.endpoint),
    load: (t) => s.load?.[t.id] ?? 0,
    latency: (t) => s.latency?.[t.id],
  };
}

const ends = (ts: readonly TargetConfig[]) => ts.map((t) => t.endpoint);

/** A seeded PRNG (test/helpers/random.ts), so weighted tests are reproducible. */
function seeded(seed: number): () => number {
  const r = new Rng(seed);
  return () => r.float();
}

describe('orderTargets: fallback', () => {
  const m = model('chat', 'fallback', [target('gpu-1'), target('gpu-2'), target('gpu-3')]);

  test('keeps the configured order', () => {
    assert.deepEqual(ends(orderTargets(m, view())), ['gpu-1', 'gpu-2', 'gpu-3']);
  });

  test('skips targets whose breaker is open', () => {
    assert.deepEqual(ends(orderTargets(m, view({ open: ['gpu-1/m'] }))), ['gpu-2', 'gpu-3']);
    assert.deepEqual(ends(orderTargets(m, view({ open: ['gpu-2/m'] }))), ['gpu-1', 'gpu-3']);
  });

  test('skips targets on unhealthy endpoints', () => {
    assert.deepEqual(ends(orderTargets(m, view({ down: ['gpu-1', 'gpu-3'] }))), ['gpu-2']);
  });

  test('when every passing target is unhealthy, tries them all anyway (health checks may be wrong)', () => {
    assert.deepEqual(ends(orderTargets(m, view({ down: ['gpu-1', 'gpu-2', 'gpu-3'] }))), ['gpu-1', 'gpu-2', 'gpu-3']);
    // an open breaker still excludes its target
    assert.deepEqual(ends(orderTargets(m, view({ down: ['gpu-1', 'gpu-2', 'gpu-3'], open: ['gpu-2/m'] }))), ['gpu-1', 'gpu-3']);
    // the only healthy target has an open breaker: the unhealthy rest is tried
    assert.deepEqual(ends(orderTargets(m, view({ down: ['gpu-1', 'gpu-2'], open: ['gpu-3/m'] }))), ['gpu-1', 'gpu-2']);
  });

  test('every breaker open: nothing to try', () => {
    assert.deepEqual(orderTargets(m, view({ open: ['gpu-1/m', 'gpu-2/m', 'gpu-3/m'] })), []);
  });

  test('two targets on one endpoint are told apart by model', () => {
    const two = model('x', 'fallback', [target('gpu-1', 'a'), target('gpu-1', 'b')]);
    assert.deepEqual(
      orderTargets(two, view({ open: ['gpu-1/a'] })).map((t) => t.id),
      ['gpu-1/b'],
    );
  });

  test('does not change the model', () => {
    const before = ends(m.targets);
    orderTargets(m, view({ open: ['gpu-1/m'] }));
    assert.deepEqual(ends(m.targets), before);
  });
});

describe('orderTargets: weighted', () => {
  const ts = [target('a', 'm', 1), target('b', 'm', 2), target('c', 'm', 7)];
  const m = model('w', 'weighted', ts);

  test('every order holds each passing target exactly once', () => {
    const rnd = seeded(1);
    for (let i = 0; i < 1000; i++) {
      const o = ends(orderTargets(m, view(), rnd));
      assert.deepEqual([...o].sort(), ['a', 'b', 'c']);
    }
  });

  test('first-pick frequencies follow the weights', () => {
    const rnd = seeded(42);
    const n = 50_000;
    const first: Record<string, number> = { a: 0, b: 0, c: 0 };
    for (let i = 0; i < n; i++) first[orderTargets(m, view(), rnd)[0]!.endpoint]!++;
    // expected 10% / 20% / 70%; the tolerance is many standard deviations wide (σ ≈ 0.2%)
    assert.ok(Math.abs(first.a! / n - 0.1) < 0.01, `a: ${first.a! / n}`);
    assert.ok(Math.abs(first.b! / n - 0.2) < 0.01, `b: ${first.b! / n}`);
    assert.ok(Math.abs(first.c! / n - 0.7) < 0.01, `c: ${first.c! / n}`);
  });

  test('second picks follow the remaining weights', () => {
    const rnd = seeded(7);
    let cFirst = 0;
    let bSecondAfterC = 0;
    for (let i = 0; i < 50_000; i++) {
      const o = ends(orderTargets(m, view(), rnd));
      if (o[0] === 'c') {
        cFirst++;
        if (o[1] === 'b') bSecondAfterC++;
      }
    }
    // after c is taken, b has 2 of the remaining 3
    assert.ok(Math.abs(bSecondAfterC / cFirst - 2 / 3) < 0.02, `${bSecondAfterC / cFirst}`);
  });

  test('the random draw maps onto cumulative weights', () => {
    // total 10: [0,1) → a, [1,3) → b, [3,10) → c
    assert.equal(weightedOrder(ts, () => 0)[0]!.endpoint, 'a');
    assert.equal(weightedOrder(ts, () => 0.099)[0]!.endpoint, 'a');
    assert.equal(weightedOrder(ts, () => 0.1)[0]!.endpoint, 'b');
    assert.equal(weightedOrder(ts, () => 0.29)[0]!.endpoint, 'b');
    assert.equal(weightedOrder(ts, () => 0.3)[0]!.endpoint, 'c');
    assert.equal(weightedOrder(ts, () => 0.999999)[0]!.endpoint, 'c');
  });

  test('open breakers and unhealthy endpoints are left out of the draw', () => {
    const rnd = seeded(3);
    for (let i = 0; i < 500; i++) {
      assert.deepEqual([...ends(orderTargets(m, view({ open: ['c/m'] }), rnd))].sort(), ['a', 'b']);
      assert.deepEqual(ends(orderTargets(m, view({ down: ['a', 'c'] }), rnd)), ['b']);
    }
  });

  test('a single target and no targets', () => {
    assert.deepEqual(ends(weightedOrder([target('x')], Math.random)), ['x']);
    assert.deepEqual(weightedOrder([], Math.random), []);
  });
});

describe('orderTargets: least-busy and least-latency', () => {
  const ts = [target('a'), target('b'), target('c'), target('d')];

  test('least-busy: lowest load first; ties keep the configured order', () => {
    const m = model('lb', 'least-busy', ts);
    assert.deepEqual(ends(orderTargets(m, view({ load: { 'a/m': 0.5, 'b/m': 0.1, 'c/m': 0.9, 'd/m': 0.1 } }))), ['b', 'd', 'a', 'c']);
    assert.deepEqual(ends(orderTargets(m, view())), ['a', 'b', 'c', 'd']);
  });

  test('least-busy skips open and unhealthy targets', () => {
    const m = model('lb', 'least-busy', ts);
    assert.deepEqual(ends(orderTargets(m, view({ load: { 'a/m': 3, 'b/m': 0, 'c/m': 1, 'd/m': 2 }, open: ['b/m'], down: ['d'] }))), ['c', 'a']);
  });

  test('least-latency: unmeasured targets first (so they get measured), then fastest first', () => {
    const m = model('ll', 'least-latency', ts);
    assert.deepEqual(ends(orderTargets(m, view({ latency: { 'a/m': 120, 'b/m': 35, 'd/m': 80 } }))), ['c', 'b', 'd', 'a']);
    assert.deepEqual(ends(orderTargets(m, view({ latency: { 'a/m': 50, 'c/m': 50 } }))), ['b', 'd', 'a', 'c']);
  });

  test('least-latency skips open and unhealthy targets', () => {
    const m = model('ll', 'least-latency', ts);
    assert.deepEqual(ends(orderTargets(m, view({ latency: { 'a/m': 1, 'b/m': 2, 'c/m': 3, 'd/m': 4 }, open: ['a/m'], down: ['c'] }))), ['b', 'd']);
  });
});

// ---------------------------------------------------------------------------------------------

function facts(f: Partial<RouteFacts> = {}): RouteFacts {
  return { requestedModel: 'chat', team: undefined, app: 'app-1', headers: {}, hasTools: false, promptTokens: () => 100, ...f };
}
function rule(name: string, when: RuleSpec['when'], route_to: string): RuleSpec {
  return { name, when, route_to };
}

describe('ruleMatches', () => {
  test('an empty condition matches everything', () => {
    assert.equal(ruleMatches(rule('all', {}, 'x'), facts()), true);
  });

  test('model', () => {
    const r = rule('r', { model: 'auto' }, 'x');
    assert.equal(ruleMatches(r, facts({ requestedModel: 'auto' })), true);
    assert.equal(ruleMatches(r, facts({ requestedModel: 'chat' })), false);
  });

  test('teams: the caller must belong to one of them; no team never matches', () => {
    const r = rule('r', { teams: ['research', 'ops'] }, 'x');
    assert.equal(ruleMatches(r, facts({ team: 'ops' })), true);
    assert.equal(ruleMatches(r, facts({ team: 'sales' })), false);
    assert.equal(ruleMatches(r, facts({ team: undefined })), false);
  });

  test('apps', () => {
    const r = rule('r', { apps: ['notebook'] }, 'x');
    assert.equal(ruleMatches(r, facts({ app: 'notebook' })), true);
    assert.equal(ruleMatches(r, facts({ app: 'other' })), false);
  });

  test('header: every listed header must have the exact value; repeated headers use the first', () => {
    const r = rule('r', { header: { 'x-tier': 'gold', 'x-region': 'eu' } }, 'x');
    assert.equal(ruleMatches(r, facts({ headers: { 'x-tier': 'gold', 'x-region': 'eu', other: '1' } })), true);
    assert.equal(ruleMatches(r, facts({ headers: { 'x-tier': 'gold' } })), false);
    assert.equal(ruleMatches(r, facts({ headers: { 'x-tier': 'Gold', 'x-region': 'eu' } })), false);
    assert.equal(ruleMatches(r, facts({ headers: { 'x-tier': ['gold', 'silver'], 'x-region': 'eu' } })), true);
    assert.equal(ruleMatches(r, facts({ headers: { 'x-tier': ['silver', 'gold'], 'x-region': 'eu' } })), false);
  });

  test('has_tools true and false', () => {
    assert.equal(ruleMatches(rule('r', { has_tools: true }, 'x'), facts({ hasTools: true })), true);
    assert.equal(ruleMatches(rule('r', { has_tools: true }, 'x'), facts({ hasTools: false })), false);
    assert.equal(ruleMatches(rule('r', { has_tools: false }, 'x'), facts({ hasTools: false })), true);
    assert.equal(ruleMatches(rule('r', { has_tools: false }, 'x'), facts({ hasTools: true })), false);
  });

  test('min/max prompt tokens are inclusive bounds', () => {
    const r = rule('r', { min_prompt_tokens: 100, max_prompt_tokens: 200 }, 'x');
    assert.equal(ruleMatches(r, facts({ promptTokens: () => 99 })), false);
    assert.equal(ruleMatches(r, facts({ promptTokens: () => 100 })), true);
    assert.equal(ruleMatches(r, facts({ promptTokens: () => 200 })), true);
    assert.equal(ruleMatches(r, facts({ promptTokens: () => 201 })), false);
    assert.equal(ruleMatches(rule('r', { min_prompt_tokens: 1000 }, 'x'), facts({ promptTokens: () => 5000 })), true);
    assert.equal(ruleMatches(rule('r', { max_prompt_tokens: 10 }, 'x'), facts({ promptTokens: () => 11 })), false);
  });

  test('prompt tokens are counted only when a rule asks for them', () => {
    let calls = 0;
    const f = facts({
      promptTokens: () => {
        calls++;
        return 10;
      },
    });
    ruleMatches(rule('r', { model: 'chat', has_tools: false }, 'x'), f);
    assert.equal(calls, 0);
    ruleMatches(rule('r', { max_prompt_tokens: 10 }, 'x'), f);
    assert.equal(calls, 1);
    // a rule that already failed on a cheaper condition does not count either
    ruleMatches(rule('r', { model: 'other', max_prompt_tokens: 10 }, 'x'), f);
    assert.equal(calls, 1);
  });

  test('all conditions must hold', () => {
    const r = rule('r', { model: 'auto', teams: ['research'], apps: ['nb'], has_tools: true, header: { 'x-a': '1' }, min_prompt_tokens: 10 }, 'x');
    const ok = facts({ requestedModel: 'auto', team: 'research', app: 'nb', hasTools: true, headers: { 'x-a': '1' }, promptTokens: () => 10 });
    assert.equal(ruleMatches(r, ok), true);
    assert.equal(ruleMatches(r, { ...ok, requestedModel: 'chat' }), false);
    assert.equal(ruleMatches(r, { ...ok, team: 'ops' }), false);
    assert.equal(ruleMatches(r, { ...ok, app: 'x' }), false);
    assert.equal(ruleMatches(r, { ...ok, hasTools: false }), false);
    assert.equal(ruleMatches(r, { ...ok, headers: {} }), false);
    assert.equal(ruleMatches(r, { ...ok, promptTokens: () => 9 }), false);
  });
});

describe('resolveModel', () => {
  const chat = model('chat', 'fallback', [target('gpu-1')]);
  const big = model('big', 'fallback', [target('gpu-2')]);
  const small = model('small', 'fallback', [target('gpu-3')]);
  function snap(rules: RuleSpec[]): Snapshot {
    return {
      version: 1,
      endpoints: new Map(),
      models: new Map([chat, big, small].map((m) => [m.name, m])),
      keysByHash: new Map(),
      previousKeys: new Map(),
      exposedModels: new Set(),
      teams: new Map(),
      rules,
      virtualModels: new Set(rules.map((r) => r.when.model).filter((m): m is string => !!m && !['chat', 'big', 'small'].includes(m))),
      settings: DEFAULT_SETTINGS,
      guardrails: [],
    };
  }

  test('without rules: the alias asked for, or nothing', () => {
    const s = snap([]);
    assert.deepEqual(resolveModel(s, facts({ requestedModel: 'big' })), { model: big, rule: undefined });
    assert.equal(resolveModel(s, facts({ requestedModel: 'nope' })), undefined);
  });

  test('the first matching rule wins', () => {
    const s = snap([
      rule('long-prompts', { model: 'auto', min_prompt_tokens: 4000 }, 'big'),
      rule('research', { model: 'auto', teams: ['research'] }, 'small'),
      rule('auto-default', { model: 'auto' }, 'chat'),
    ]);
    const r1 = resolveModel(s, facts({ requestedModel: 'auto', team: 'research', promptTokens: () => 5000 }));
    assert.equal(r1?.model, big);
    assert.equal(r1?.rule, 'long-prompts');
    const r2 = resolveModel(s, facts({ requestedModel: 'auto', team: 'research', promptTokens: () => 10 }));
    assert.equal(r2?.model, small);
    assert.equal(r2?.rule, 'research');
    const r3 = resolveModel(s, facts({ requestedModel: 'auto', team: 'ops', promptTokens: () => 10 }));
    assert.equal(r3?.model, chat);
    assert.equal(r3?.rule, 'auto-default');
  });

  test('no rule matches: falls through to the requested alias', () => {
    const s = snap([rule('tools-to-big', { model: 'chat', has_tools: true }, 'big')]);
    assert.deepEqual(resolveModel(s, facts({ requestedModel: 'chat', hasTools: false })), { model: chat, rule: undefined });
    assert.deepEqual(resolveModel(s, facts({ requestedModel: 'chat', hasTools: true })), { model: big, rule: 'tools-to-big' });
  });

  test('a virtual name with no matching rule resolves to nothing', () => {
    const s = snap([rule('r', { model: 'auto', teams: ['research'] }, 'big')]);
    assert.equal(resolveModel(s, facts({ requestedModel: 'auto', team: 'ops' })), undefined);
  });

  test('a rule may redirect one alias to another, by header', () => {
    const s = snap([rule('canary', { model: 'chat', header: { 'x-canary': '1' } }, 'small')]);
    assert.equal(resolveModel(s, facts({ headers: { 'x-canary': '1' } }))?.model, small);
    assert.equal(resolveModel(s, facts({ headers: {} }))?.model, chat);
  });

  test('a rule whose target alias does not exist is passed over', () => {
    const s = snap([rule('stale', { model: 'auto' }, 'gone'), rule('ok', { model: 'auto' }, 'small')]);
    assert.deepEqual(resolveModel(s, facts({ requestedModel: 'auto' })), { model: small, rule: 'ok' });
  });
});
