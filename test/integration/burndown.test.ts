// GET /budgets/burndown (issue 8): a team's or key's spend over its budget period, cumulative,
// beside the even pace, from the real ledger of requests made with the openai client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

describe('budget burn-down', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  before(async () => {
    up = await startUpstream();
    const cfg = basicConfig(up.url);
    gw = await startGateway({
      config: {
        ...cfg,
        models: [{ ...cfg.models[0]!, price: { input_per_million: 0, output_per_million: 0, per_request: 1 } }],
        teams: [{ name: 'research', budget: { amount: 10, period: 'month' } }, { name: 'ops', budget: { amount: 50, period: 'total' } }, { name: 'free' }],
        keys: [
          { name: 'notebook-app', key: TEST_KEY, team: 'research', budget: { amount: 4, period: 'day' } },
          { name: 'ops-app', key: 'sk-airlock-ops-key-000000000000000000000001', team: 'ops' },
        ],
      },
    });
    const a = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const b = new OpenAI({ apiKey: 'sk-airlock-ops-key-000000000000000000000001', baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 3; i++) await a.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `r${i}` }] });
    for (let i = 0; i < 2; i++) await b.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `o${i}` }] });
    await eventually(async () => (await gw.admin('GET', '/usage/requests?limit=10')).body.data.length === 5, 'the ledger rows');
  });
  after(async () => {
    await gw.stop();
    await up.close();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
  });

  test('a team budget of the month: cumulative spend up to now, nothing in the future, the even pace up to the budget, a projection', async () => {
    const r = await gw.admin('GET', '/budgets/burndown?scope=team&name=research&buckets=30');
    assert.equal(r.status, 200, JSON.stringify(r.body));
    const d = r.body;
    assert.deepEqual([d.scope, d.name, d.period, d.amount, d.cost_unit, d.spent], ['team', 'research', 'month', 10, 'USD', 3]);
    const budgets = (await gw.admin('GET', '/budgets')).body.data;
    const team = budgets.find((b: { scope: string; name: string }) => b.scope === 'team' && b.name === 'research');
    assert.equal(d.from, team.period_start);
    assert.equal(d.to, team.period_end);
    assert.equal(d.points.length, 30);
    const spent = d.points.map((p: { spent: number | null }) => p.spent);
    const known = spent.filter((x: number | null) => x !== null);
    assert.ok(known.length >= 1);
    assert.deepEqual(spent.slice(0, known.length), known, 'past buckets first, then only future (null) ones');
    for (let i = 1; i < known.length; i++) assert.ok(known[i] >= known[i - 1], 'cumulative');
    assert.equal(known[known.length - 1], 3);
    assert.equal(d.points[29].pace, 10);
    assert.ok(d.points[0].pace > 0 && d.points[0].pace < 1);
    assert.ok(d.projected >= 3);
  });

  test('a key budget of the day and a team budget that never resets (it starts at the first request)', async () => {
    const k = (await gw.admin('GET', '/budgets/burndown?scope=key&name=notebook-app&buckets=24')).body;
    assert.deepEqual([k.scope, k.period, k.amount, k.spent, k.points.length], ['key', 'day', 4, 3, 24]);
    const t = (await gw.admin('GET', '/budgets/burndown?scope=team&name=ops')).body;
    assert.deepEqual([t.period, t.spent, t.projected, t.points.length], ['total', 2, null, 30]);
    const rows = (await gw.admin('GET', '/usage/requests?team=ops')).body.data as { ts: number }[];
    assert.equal(Date.parse(t.from), Math.min(...rows.map((r) => r.ts)));
    assert.equal(t.points[29].spent, 2);
  });

  test('bad input is a 400 naming the field; no budget is a 404', async () => {
    for (const [q, msg] of [
      ['scope=user&name=x', /scope: must be team or key/],
      ['name=research', /scope: must be team or key/],
      ['scope=team', /name: the team's name is required/],
      ['scope=team&name=research&buckets=1', /buckets: must be an integer from 2 to 200/],
      ['scope=team&name=research&buckets=abc', /buckets:/],
    ] as const) {
      const r = await gw.admin('GET', `/budgets/burndown?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(r.body.error.message, msg, q);
    }
    const none = await gw.admin('GET', '/budgets/burndown?scope=team&name=free');
    assert.equal(none.status, 404);
    assert.match(none.body.error.message, /The team "free" has no budget\.$/);
    const missing = await gw.admin('GET', '/budgets/burndown?scope=team&name=nobody');
    assert.match(missing.body.error.message, /no such team/);
    assert.equal((await gw.admin('GET', '/budgets/burndown?scope=key&name=ops-app')).status, 404);
  });
});
