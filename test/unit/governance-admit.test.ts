// The admit stage's Governance on a real snapshot (config applied to a real SQLite store) with a
// clock the test moves: what it builds once per key and alias (plans, period claims) must follow
// period ends, end users and configuration changes, exactly as building it per request would.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureDataDir, openDatabase } from '../../gateway/store/db.js';
import { Secrets } from '../../gateway/store/secrets.js';
import { ConfigStore } from '../../gateway/store/config-store.js';
import { buildSnapshot, type Snapshot } from '../../gateway/engine/snapshot.js';
import { newContext } from '../../gateway/engine/pipeline.js';
import { GatewayError } from '../../gateway/engine/errors.js';
import { Governance } from '../../gateway/governance/governance.js';
import { MemoryCounters } from '../../gateway/governance/counters.js';
import type { RequestContext } from '../../gateway/engine/stages.js';
import { TEST_KEY, basicConfig, tmpDir } from '../helpers/gateway.js';

function setup(extra: Record<string, unknown>) {
  const dir = tmpDir();
  ensureDataDir(dir);
  const db = openDatabase(dir);
  const secrets = Secrets.load(dir);
  const store = new ConfigStore(db, secrets);
  let version = 0;
  const snap = (more: Record<string, unknown> = {}): Snapshot => {
    const r = store.apply({ ...basicConfig('http://127.0.0.1:9/v1'), ...extra, ...more }, { source: 'file' });
    assert.ok(r.ok, JSON.stringify(r.issues));
    return buildSnapshot(store.state(), secrets, ++version);
  };
  let clock = Date.parse('2026-03-10T12:00:00Z');
  const gov = new Governance(new MemoryCounters(), { spendSince: () => 0, userSpendSince: () => new Map() }, () => clock);
  const call = (s: Snapshot, opts: { user?: string; cost?: number; max_tokens?: number } = {}): RequestContext => {
    const ctx = newContext('chat', `r${Math.random()}`, s);
    ctx.key = s.keysByHash.get(secrets.hashKey(TEST_KEY))!;
    ctx.model = s.models.get('chat')!;
    ctx.body = { model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: opts.max_tokens ?? 10 };
    ctx.user = opts.user;
    gov.update(s);
    gov.admit(ctx);
    ctx.cost = opts.cost ?? 0;
    ctx.promptTokens = 5;
    ctx.completionTokens = 5;
    gov.release(ctx);
    return ctx;
  };
  const refused = (fn: () => unknown, code: string) =>
    assert.throws(fn, (e: unknown) => e instanceof GatewayError && e.code === code, `expected ${code}`);
  return { snap, gov, call, refused, tick: (ms: number) => (clock += ms), now: () => clock };
}

describe('governance admission (plans built once per key and alias)', () => {
  test('a day budget spent today is refused until midnight, then the new day has its own budget', () => {
    const h = setup({ keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research', budget: { amount: 1, period: 'day' } }] });
    const s = h.snap();
    h.call(s, { cost: 1 });
    h.refused(() => h.call(s), 'budget_exceeded');
    h.tick(11 * 3600_000); // 23:00 the same day
    h.refused(() => h.call(s), 'budget_exceeded');
    h.tick(3600_000); // midnight: a new period
    h.call(s, { cost: 0.5 });
    h.call(s, { cost: 0.4 });
    assert.equal(h.gov.counters.budget({ subject: 'key:notebook-app', start: Date.parse('2026-03-11T00:00:00Z') }).spent, 0.9);
  });

  test('user_limits count each end user separately; requests without a user are not limited by them', () => {
    const h = setup({ teams: [{ name: 'research', user_limits: { rpm: 1 } }] });
    const s = h.snap();
    const a = h.call(s, { user: 'alice' });
    assert.equal(a.responseHeaders?.['x-ratelimit-limit-requests'], '1');
    h.refused(() => h.call(s, { user: 'alice' }), 'rate_limit_exceeded');
    h.call(s, { user: 'bob' });
    for (let i = 0; i < 3; i++) assert.equal(h.call(s).responseHeaders, undefined, 'no user: no limit applies');
  });

  test('user_budget: each end user has their own, in the team budget period of its own kind', () => {
    const h = setup({ teams: [{ name: 'research', budget: { amount: 100, period: 'month' }, user_budget: { amount: 1, period: 'day' } }] });
    const s = h.snap();
    h.call(s, { user: 'alice', cost: 1 });
    h.refused(() => h.call(s, { user: 'alice' }), 'budget_exceeded');
    h.call(s, { user: 'bob', cost: 1 });
    h.tick(24 * 3600_000);
    h.call(s, { user: 'alice' });
    assert.equal(h.gov.counters.budget({ subject: 'team:research', start: Date.parse('2026-03-01T00:00:00Z') }).spent, 2);
  });

  test('a new configuration takes effect at once: raised budget, new limits, a limit removed', () => {
    const h = setup({});
    const keyed = (budget: unknown, limits?: unknown) => ({ keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research', budget, ...(limits ? { limits } : {}) }] });
    let s = h.snap(keyed({ amount: 1, period: 'total' }));
    h.call(s, { cost: 1 });
    h.refused(() => h.call(s), 'budget_exceeded');
    s = h.snap(keyed({ amount: 2, period: 'total' }, { rpm: 1 }));
    h.call(s, { cost: 0.1 });
    h.refused(() => h.call(s), 'rate_limit_exceeded');
    s = h.snap(keyed({ amount: 2, period: 'total' }));
    h.call(s, { cost: 0.1 });
  });

  test('past at_percent the alias is downgraded, and the limits of the alias that serves apply', () => {
    const h = setup({
      models: [
        { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'big' }], price: { input_per_million: 1, output_per_million: 2 }, downgrade: { to: 'chat-small', at_percent: 50 } },
        { name: 'chat-small', targets: [{ endpoint: 'gpu-1', model: 'small' }], limits: { rpm: 1 } },
      ],
      teams: [{ name: 'research', budget: { amount: 1, period: 'month' } }],
    });
    const s = h.snap();
    assert.equal(h.call(s, { cost: 0.6 }).downgradedFrom, undefined);
    const d = h.call(s);
    assert.equal(d.downgradedFrom, 'chat');
    assert.equal(d.model?.name, 'chat-small');
    assert.equal(d.responseHeaders?.['x-ratelimit-limit-requests'], '1', "chat-small's own rpm");
    h.refused(() => h.call(s), 'rate_limit_exceeded');
  });
});
