// Governance through the real gateway process, with the official `openai` client where a client
// is natural and raw HTTP where headers matter: attribution (tags, every principal on the ledger
// row, usage grouped and filtered by each), prices (per_request; a price change never rewrites
// recorded cost), budgets (429 budget_exceeded with the reset time; 200 parallel requests against
// a nearly spent budget; a restart keeps the spend; raising a budget takes effect at once), rate
// limits (429 rate_limit_exceeded with retry-after and x-ratelimit-* on every response; the
// openai client's own retry backs off and gets through), cost-aware downgrade, and the fair share
// of a saturated endpoint (weights 1:3 → 1:3; interactive overtakes batch; bounded queue).
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { ADMIN_TOKEN, eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const agent = new Agent({ connections: 512 });
const fetch = ((url: string | URL, init?: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof globalThis.fetch;

const KEY = (n: string) => `sk-airlock-gov-${n}-`.padEnd(40, '0');

let gw: RunningGateway;
let up: TestUpstream;

before(async () => {
  up = await startUpstream();
  gw = await startGateway({ dataDir: tmpDir() });
});
after(async () => {
  await agent.destroy();
  await gw?.stop();
  await up?.close();
});

function endpoint(name: string, extra: Record<string, unknown> = {}) {
  return { name, base_url: up.url, health_check: { enabled: false }, first_byte_timeout_ms: 30_000, ...extra };
}

async function configure(g: RunningGateway, doc: Record<string, unknown>): Promise<void> {
  const r = await g.admin('POST', '/config/apply', { routing_rules: [], ...doc });
  assert.equal(r.status, 200, `config apply failed: ${JSON.stringify(r.body)}`);
}

interface Answer {
  status: number;
  headers: Headers;
  body: any;
}
async function chat(g: RunningGateway, key: string, text: string, o: { headers?: Record<string, string>; model?: string; max_tokens?: number; signal?: AbortSignal; user?: string } = {}): Promise<Answer> {
  const res = await fetch(`${g.dataUrl}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...o.headers },
    body: JSON.stringify({ model: o.model ?? 'chat', messages: [{ role: 'user', content: text }], ...(o.max_tokens ? { max_tokens: o.max_tokens } : {}), ...(o.user ? { user: o.user } : {}) }),
    signal: o.signal,
  });
  const t = await res.text();
  let body: unknown = t;
  try {
    body = JSON.parse(t);
  } catch {
    /* text */
  }
  return { status: res.status, headers: res.headers, body };
}

async function rows(g: RunningGateway, n = 1000): Promise<Record<string, any>[]> {
  const r = await g.admin('GET', `/usage/requests?limit=${n}`);
  assert.equal(r.status, 200);
  return r.body.data;
}

async function metric(g: RunningGateway, name: string, label: string): Promise<number | undefined> {
  const r = await fetch(`${g.dataUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  const text = await r.text();
  const m = new RegExp(`^${name}\\{[^}]*${label}[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('attribution and prices', () => {
  test('every ledger row carries team, key, app, user, session and tags; usage groups and filters by each', async () => {
    await configure(gw, {
      endpoints: [endpoint('attr-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'attr-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 0, per_request: 0.5 } }],
      teams: [{ name: 'research' }, { name: 'ops' }],
      keys: [
        { name: 'notebook', key: KEY('attr-a'), team: 'research', app: 'jupyter' },
        { name: 'runner', key: KEY('attr-b'), team: 'ops' },
      ],
    });
    const a = await chat(gw, KEY('attr-a'), 'one', { user: 'alice', headers: { 'x-airlock-session': 'wf-1', 'x-airlock-tags': 'project=alpha, env=prod' } });
    assert.equal(a.status, 200, JSON.stringify(a.body));
    assert.equal((await chat(gw, KEY('attr-a'), 'two', { headers: { 'x-airlock-user': 'bob', 'x-airlock-tags': 'project=beta' } })).status, 200);
    assert.equal((await chat(gw, KEY('attr-b'), 'three', { headers: { 'x-airlock-tags': 'project=alpha' } })).status, 200);
    const got = await eventually(async () => {
      const r = (await rows(gw)).filter((x) => x.alias === 'chat' && x.status === 200);
      return r.length >= 3 ? r : undefined;
    }, 'three rows');
    const first = got.find((x) => x.user === 'alice')!;
    assert.equal(first.team, 'research');
    assert.equal(first.key_name, 'notebook');
    assert.equal(first.app, 'jupyter');
    assert.equal(first.session, 'wf-1');
    assert.deepEqual(first.tags, { project: 'alpha', env: 'prod' });
    assert.equal(first.cost, 0.5, 'per_request price');
    assert.equal(got.find((x) => x.user === 'bob')!.session, null);

    const byTag = await gw.admin('GET', '/usage/summary?group_by=tag');
    assert.equal(byTag.status, 200);
    assert.equal(byTag.body.cost_unit, 'USD');
    const tagGroups = Object.fromEntries((byTag.body.data as { group: string; requests: number; cost: number }[]).map((x) => [x.group, x]));
    assert.equal(tagGroups['project=alpha']!.requests, 2);
    assert.equal(tagGroups['project=alpha']!.cost, 1);
    assert.equal(tagGroups['project=beta']!.requests, 1);
    assert.equal(tagGroups['env=prod']!.requests, 1);

    const filtered = await gw.admin('GET', '/usage/summary?group_by=user&team=research&tag=project=alpha');
    assert.deepEqual(
      (filtered.body.data as { group: string; requests: number }[]).map((x) => [x.group, x.requests]),
      [['alice', 1]],
    );
    assert.deepEqual(filtered.body.filters, { team: 'research', tag: 'project=alpha' });
    for (const g of ['team', 'key', 'app', 'user', 'model', 'session', 'endpoint']) {
      const r = await gw.admin('GET', `/usage/summary?group_by=${g}&key=notebook`);
      assert.equal(r.status, 200, g);
      assert.equal((r.body.data as { requests: number }[]).reduce((s, x) => s + x.requests, 0), 2, `group_by=${g} over key notebook`);
    }
    const bad = await gw.admin('GET', '/usage/summary?group_by=colour');
    assert.equal(bad.status, 400);
    assert.match(bad.body.error.message, /group_by: must be one of team, key, model, user, app, endpoint, session, tag/);
    const badTag = await gw.admin('GET', '/usage/summary?tag=alpha');
    assert.equal(badTag.status, 400);
    assert.match(badTag.body.error.message, /tag: must be key=value/);
  });

  test('malformed x-airlock-tags and x-airlock-priority are a 400 naming the header; nothing reaches the upstream', async () => {
    const before = up.completions().length;
    for (const [h, v, re] of [
      ['x-airlock-tags', 'a=1,b', /tag "b" has no "="/],
      ['x-airlock-tags', Array.from({ length: 11 }, (_, i) => `t${i}=x`).join(','), /at most 10/],
      ['x-airlock-tags', `k=${'v'.repeat(70)}`, /at most 64 are allowed/],
      ['x-airlock-tags', 'a=1,a=2', /given twice/],
      ['x-airlock-priority', 'urgent', /x-airlock-priority/],
    ] as const) {
      const r = await chat(gw, KEY('attr-a'), 'x', { headers: { [h]: v } });
      assert.equal(r.status, 400, `${h}: ${v}`);
      assert.equal(r.body.error.type, 'invalid_request_error');
      assert.equal(r.body.error.param, h);
      assert.match(r.body.error.message, re);
    }
    assert.equal(up.completions().length, before);
  });

  test('a price change applies to new requests and never rewrites the cost already recorded', async () => {
    const doc = (price: object) => ({
      endpoints: [endpoint('price-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'price-1', model: 'm' }], price }],
      teams: [{ name: 'pricing' }],
      keys: [{ name: 'pricer', key: KEY('price'), team: 'pricing' }],
      settings: { cost_unit: 'credits' },
    });
    await configure(gw, doc({ input_per_million: 0, output_per_million: 0, per_request: 2 }));
    assert.equal((await chat(gw, KEY('price'), 'before')).status, 200);
    await configure(gw, doc({ input_per_million: 0, output_per_million: 0, per_request: 7 }));
    assert.equal((await chat(gw, KEY('price'), 'after')).status, 200);
    const costs = await eventually(async () => {
      const r = (await rows(gw)).filter((x) => x.key_name === 'pricer');
      return r.length === 2 ? r.map((x) => x.cost).sort() : undefined;
    }, 'two rows');
    assert.deepEqual(costs, [2, 7]);
    const s = await gw.admin('GET', '/usage/summary?group_by=key&key=pricer');
    assert.equal(s.body.cost_unit, 'credits');
    assert.equal(s.body.data[0].cost, 9);
  });

  test('budget, limit and downgrade fields are validated with the field named', async () => {
    const base = {
      endpoints: [endpoint('val-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'val-1', model: 'm' }] }],
      keys: [],
    };
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ teams: [{ name: 't', budget: { amount: -1, period: 'month' } }] }, /teams\[0\]\.budget\.amount: must be 0 or more/],
      [{ teams: [{ name: 't', budget: { amount: 1, period: 'year' } }] }, /teams\[0\]\.budget\.period/],
      [{ teams: [{ name: 't', limits: { rpm: 0 } }] }, /teams\[0\]\.limits\.rpm: must be at least 1/],
      [{ teams: [{ name: 't', limits: { rps: 5 } }] }, /teams\[0\]\.limits: unknown key "rps"/],
      [{ teams: [{ name: 't', weight: 0 }] }, /teams\[0\]\.weight: must be more than 0/],
      [{ teams: [], models: [{ name: 'chat', targets: [{ endpoint: 'val-1', model: 'm' }], downgrade: { to: 'nope' } }] }, /models\[0\]\.downgrade\.to: unknown model "nope"/],
      [{ teams: [], models: [{ name: 'chat', targets: [{ endpoint: 'val-1', model: 'm' }], downgrade: { to: 'chat' } }] }, /models\[0\]\.downgrade\.to: must name another model alias/],
      [{ teams: [], settings: { budget_timezone: 'Mars/Olympus' } }, /settings\.budget_timezone: must be an IANA time zone/],
      [{ teams: [], keys: [{ name: 'k', priority: 'urgent' }] }, /keys\[0\]\.priority/],
    ];
    for (const [doc, re] of cases) {
      const r = await gw.admin('POST', '/config/apply', { ...base, ...doc });
      assert.equal(r.status, 400, JSON.stringify(doc));
      assert.match(r.body.error.message, re);
    }
  });
});

describe('budgets', () => {
  test('exhausted → 429 budget_exceeded naming the budget and its reset; the openai client does not retry it', async () => {
    await configure(gw, {
      endpoints: [endpoint('bud-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'bud-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 0, per_request: 1 } }],
      teams: [{ name: 'small', budget: { amount: 2, period: 'day' } }],
      keys: [{ name: 'small-app', key: KEY('bud'), team: 'small', budget: { amount: 100, period: 'month' } }],
      settings: { budget_timezone: 'Europe/Berlin' },
    });
    assert.equal((await chat(gw, KEY('bud'), 'a')).status, 200);
    assert.equal((await chat(gw, KEY('bud'), 'b')).status, 200);
    // the soft threshold (80 %) and the limit itself are announced (an event, logged)
    await eventually(() => /budget warning: team "small" has spent 2 of 2 USD this day \(80 %\)/.test(gw.stderr()), 'the warning in the log');
    assert.match(gw.stderr(), /budget exhausted: team "small" has spent 2 of 2 USD this day \(100 %\)/);
    assert.doesNotMatch(gw.stderr(), /budget warning: key "small-app"/, 'the key budget (100) is far from its threshold');
    const r = await chat(gw, KEY('bud'), 'c');
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, 'budget_exceeded');
    assert.equal(r.body.error.type, 'rate_limit_error');
    assert.match(r.body.error.message, /team "small": spent 2 of 2 USD \(period day\); it resets at (\S+)Z\./);
    const reset = Date.parse(/resets at (\S+)\./.exec(r.body.error.message)![1]!);
    assert.ok(reset > Date.now() && reset <= Date.now() + 25 * 3_600_000, 'the next Berlin midnight');
    assert.equal(new Date(reset).toLocaleTimeString('en-GB', { timeZone: 'Europe/Berlin' }), '00:00:00');
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(Math.abs(ra - (reset - Date.now()) / 1000) < 60, `retry-after ${ra} s is the time until the reset`);

    const client = new OpenAI({ apiKey: KEY('bud'), baseURL: gw.baseURL, maxRetries: 2, fetch });
    const before = (await rows(gw)).filter((x) => x.key_name === 'small-app').length;
    await assert.rejects(client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'd' }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 429);
      assert.equal(e.code, 'budget_exceeded');
      return true;
    });
    const after = await eventually(async () => {
      const n = (await rows(gw)).filter((x) => x.key_name === 'small-app').length;
      return n > before ? n : undefined;
    }, 'the refused row');
    assert.equal(after - before, 1, 'one attempt: the client did not retry a spent budget');

    const b = await gw.admin('GET', '/budgets');
    assert.equal(b.status, 200);
    assert.equal(b.body.timezone, 'Europe/Berlin');
    const team = (b.body.data as any[]).find((x) => x.scope === 'team' && x.name === 'small');
    assert.equal(team.status, 'exceeded');
    assert.equal(team.spent, 2);
    assert.equal(team.reserved, 0);
    assert.equal(Date.parse(team.period_end), reset);
    const key = (b.body.data as any[]).find((x) => x.scope === 'key' && x.name === 'small-app');
    assert.equal(key.status, 'ok');
    assert.equal(key.spent, 2);
    // Prometheus: the team's budget use, and the refusals by reason
    assert.equal(await metric(gw, 'airlock_budget_use_ratio', 'team="small"'), 1);
    assert.ok(((await metric(gw, 'airlock_requests_rejected_total', 'reason="budget_exceeded"')) ?? 0) >= 2);
  });

  test('user_budget applies to each end user of the team separately', async () => {
    await configure(gw, {
      endpoints: [endpoint('ub-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'ub-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 0, per_request: 1 } }],
      teams: [{ name: 'users', user_budget: { amount: 1, period: 'total' } }],
      keys: [{ name: 'users-app', key: KEY('ub'), team: 'users' }],
    });
    assert.equal((await chat(gw, KEY('ub'), 'a', { user: 'ann' })).status, 200);
    const r = await chat(gw, KEY('ub'), 'b', { user: 'ann' });
    assert.equal(r.status, 429);
    assert.match(r.body.error.message, /end user "ann" of team "users".*does not reset/);
    assert.equal(r.headers.get('retry-after'), null, 'a total budget never resets');
    assert.equal((await chat(gw, KEY('ub'), 'c', { user: 'ben' })).status, 200);
    assert.equal((await chat(gw, KEY('ub'), 'd')).status, 200, 'no end user: no user budget');
    // GET /budgets lists each end user of the team that has used it, with that user's own spend
    const users = ((await gw.admin('GET', '/budgets')).body.data as { scope: string; name: string; team: string; spent: number; status: string }[]).filter((b) => b.scope === 'user' && b.team === 'users');
    assert.deepEqual(
      users.map((b) => [b.name, b.spent, b.status]),
      [
        ['ann', 1, 'exceeded'],
        ['ben', 1, 'exceeded'],
      ],
    );
  });

  test('200 parallel requests against a nearly spent budget: overspend bounded by the in-flight reservations; the spend survives a restart; raising the budget takes effect at once', async (t: TestContext) => {
    const dir = tmpDir();
    const doc = (amount: number) => ({
      endpoints: [endpoint('par-1')],
      // max_tokens 10 at 0.1 per token + 1 per request: every request reserves 2, and costs 1 +
      // its completion tokens at 0.1 (the echo "echo: pN" is at most 3 tokens): at most 1.3
      models: [{ name: 'chat', targets: [{ endpoint: 'par-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 100_000, per_request: 1 } }],
      teams: [{ name: 'par', budget: { amount, period: 'month' } }],
      keys: [{ name: 'par-app', key: KEY('par'), team: 'par' }],
    });
    let g = await startGateway({ dataDir: dir, config: doc(60) });
    t.after(() => g.stop());
    const answers = await Promise.all(Array.from({ length: 200 }, (_, i) => chat(g, KEY('par'), `p${i}`, { max_tokens: 10 })));
    const ok = answers.filter((a) => a.status === 200);
    const refused = answers.filter((a) => a.status === 429);
    assert.equal(ok.length + refused.length, 200, `statuses: ${[...new Set(answers.map((a) => a.status))].join(',')}`);
    for (const r of refused) assert.equal(r.body.error.code, 'budget_exceeded');
    // admitted only while spent + reserved < 60: with all 200 in flight at once, every admitted one
    // holds a reservation of 2, so at least 30 get in and the rest are refused
    assert.ok(ok.length >= 30, `${ok.length} admitted`);
    await eventually(async () => (await rows(g)).filter((x) => x.status === 200).length === ok.length, 'every row');
    const burst = (await rows(g)).reduce((s, x) => s + x.cost, 0);
    assert.ok(burst <= 60 + 2, `spent ${burst} of 60 in the burst`);
    // the unused reservations came back: requests one by one spend the rest, then are refused
    let more = 0;
    for (;;) {
      const a = await chat(g, KEY('par'), `s${more}`, { max_tokens: 10 });
      if (a.status === 429) break;
      assert.equal(a.status, 200);
      assert.ok(++more < 100, 'the budget ran out');
    }
    await eventually(async () => (await rows(g)).filter((x) => x.status === 200).length === ok.length + more, 'every row');
    const spent = (await rows(g)).reduce((s, x) => s + x.cost, 0);
    // the bound: at most one reservation (2) beyond the limit, since a request is admitted only
    // while spent + reserved < limit and never costs more than it reserved
    assert.ok(spent >= 60 && spent < 60 + 2, `spent ${spent} of 60`);
    const b1 = (await g.admin('GET', '/budgets')).body.data.find((x: any) => x.name === 'par');
    assert.equal(b1.reserved, 0, 'every reservation settled');
    assert.equal(b1.status, 'exceeded');
    assert.ok(Math.abs(b1.spent - spent) < 1e-6, `counted ${b1.spent}, ledger ${spent}`);

    // restart: the month's spend comes back from the ledger
    await g.stop();
    g = await startGateway({ dataDir: dir });
    const b2 = (await g.admin('GET', '/budgets')).body.data.find((x: any) => x.name === 'par');
    assert.ok(Math.abs(b2.spent - spent) < 1e-6, `after restart ${b2.spent}, ledger ${spent}`);
    const still = await chat(g, KEY('par'), 'still spent', { max_tokens: 10 });
    assert.equal(still.status, 429);
    assert.equal(still.body.error.code, 'budget_exceeded');
    // raising the budget: admitted at once
    const put = await g.admin('PUT', '/teams/par', { name: 'par', budget: { amount: 1000, period: 'month' } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.equal((await chat(g, KEY('par'), 'more', { max_tokens: 10 })).status, 200);
  });
});

describe('what a request may reserve and what it costs', () => {
  test('max_tokens, max_completion_tokens and n must be whole and positive (400 naming the field), so no reservation is ever negative', async () => {
    await configure(gw, {
      endpoints: [endpoint('res-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'res-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 1_000_000 } }],
      teams: [{ name: 'res', budget: { amount: 25, period: 'month' } }],
      keys: [{ name: 'res-app', key: KEY('res'), team: 'res' }],
    });
    const before = up.completions().length;
    const bad: [string, Record<string, unknown>, string][] = [
      ['/v1/chat/completions', { max_tokens: -1000 }, 'max_tokens'],
      ['/v1/chat/completions', { max_tokens: 1.5 }, 'max_tokens'],
      ['/v1/chat/completions', { max_tokens: '10' }, 'max_tokens'],
      ['/v1/chat/completions', { max_tokens: 0 }, 'max_tokens'],
      ['/v1/chat/completions', { max_completion_tokens: -1 }, 'max_completion_tokens'],
      ['/v1/chat/completions', { n: 0 }, 'n'],
      ['/v1/chat/completions', { n: 2.5 }, 'n'],
      ['/v1/chat/completions', { n: 129 }, 'n'],
      ['/v1/completions', { max_tokens: -5 }, 'max_tokens'],
    ];
    for (const [path, extra, param] of bad) {
      const body = path === '/v1/completions' ? { model: 'chat', prompt: 'x', ...extra } : { model: 'chat', messages: [{ role: 'user', content: 'x' }], ...extra };
      const r = await fetch(`${gw.dataUrl}${path}`, { method: 'POST', headers: { authorization: `Bearer ${KEY('res')}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
      const j = (await r.json()) as { error: { param: string } };
      assert.equal(r.status, 400, `${path} ${JSON.stringify(extra)}`);
      assert.equal(j.error.param, param, `${path} ${JSON.stringify(extra)}`);
    }
    assert.equal(up.completions().length, before, 'nothing reached the upstream');
    const b = (await gw.admin('GET', '/budgets')).body.data.find((x: any) => x.name === 'res');
    assert.equal(b.reserved, 0);
    assert.equal(b.spent, 0);
  });

  test('n choices reserve n times max_tokens: 20 requests at once for 5 choices of 10 tokens against a budget of 25 admit one', async () => {
    await configure(gw, {
      endpoints: [endpoint('nres-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'nres-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 1_000_000 } }],
      teams: [{ name: 'nres', budget: { amount: 25, period: 'month' } }],
      keys: [{ name: 'nres-app', key: KEY('nres'), team: 'nres' }],
    });
    // slow answers: all 20 are in flight together
    up.setBehavior({ kind: 'ok', chunkDelayMs: 100 });
    try {
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          fetch(`${gw.dataUrl}/v1/chat/completions`, {
            method: 'POST',
            headers: { authorization: `Bearer ${KEY('nres')}`, 'content-type': 'application/json' },
            body: JSON.stringify({ model: 'chat', n: 5, max_tokens: 10, messages: [{ role: 'user', content: `q${i}` }] }),
          }).then(async (r) => ({ status: r.status, body: await r.text(), retryAfter: r.headers.get('retry-after'), shouldRetry: r.headers.get('x-should-retry') })),
        ),
      );
      const ok = answers.filter((a) => a.status === 200).length;
      assert.equal(ok, 1, `admitted ${ok}: each reserves 50 (5 choices × 10 tokens), past the 25 left after the first`);
      const refused = answers.filter((a) => a.status === 429);
      assert.equal(refused.length, 19);
      // nothing is spent yet: the refusal says the budget is held by requests in flight, for now
      for (const r of refused) {
        const e = (JSON.parse(r.body) as { error: { code: string; message: string } }).error;
        assert.equal(e.code, 'budget_exceeded');
        assert.match(e.message, /for now: spent 0 of 25 .*requests in flight hold 50 until they finish.*Retry when they have finished/);
        assert.equal(r.retryAfter, '1');
        assert.equal(r.shouldRetry, null, 'a client may retry this one');
      }
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('per_request is charged for a stream the client closed after its content began to arrive', async () => {
    await configure(gw, {
      endpoints: [endpoint('preq-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'preq-1', model: 'm' }], price: { input_per_million: 0, output_per_million: 0, per_request: 1 } }],
      teams: [{ name: 'preq' }],
      keys: [{ name: 'preq-app', key: KEY('preq'), team: 'preq' }],
    });
    up.setBehavior({ kind: 'ok', chunkDelayMs: 100, content: 'one two three four five six seven eight' });
    try {
      const ac = new AbortController();
      const res = await fetch(`${gw.dataUrl}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${KEY('preq')}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'count' }] }),
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const id = res.headers.get('x-airlock-request-id')!;
      const reader = (res.body as ReadableStream<Uint8Array>).getReader();
      let text = '';
      while (!text.includes('"content":"one')) text += new TextDecoder().decode((await reader.read()).value);
      ac.abort();
      const row = await eventually(async () => (await rows(gw)).find((x) => x.request_id === id), 'the row');
      assert.equal(row.status, 499);
      assert.equal(row.error_class, 'client_closed');
      assert.equal(row.cost, 1, 'the answer reached the client: per_request is due');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });
});

describe('rate limits', () => {
  test('rpm: 429 rate_limit_exceeded with retry-after and x-ratelimit-* on every response of the limited key', async () => {
    await configure(gw, {
      endpoints: [endpoint('rl-1')],
      models: [{ name: 'chat', targets: [{ endpoint: 'rl-1', model: 'm' }] }],
      teams: [{ name: 'rl', limits: { rpm: 100, tpm: 1_000_000 } }],
      keys: [
        { name: 'rl-app', key: KEY('rl'), team: 'rl', limits: { rpm: 3 } },
        { name: 'free-app', key: KEY('free') },
      ],
    });
    const seen: Answer[] = [];
    for (let i = 0; i < 3; i++) seen.push(await chat(gw, KEY('rl'), `r${i}`));
    for (const [i, a] of seen.entries()) {
      assert.equal(a.status, 200);
      assert.equal(a.headers.get('x-ratelimit-limit-requests'), '3', 'the tightest request limit: the key');
      assert.equal(a.headers.get('x-ratelimit-remaining-requests'), String(2 - i));
      assert.match(a.headers.get('x-ratelimit-reset-requests') ?? '', /^\d+(\.\d+)?(ms|s)$|^\d+m\d+s$/);
      assert.equal(a.headers.get('x-ratelimit-limit-tokens'), '1000000');
      assert.ok(Number(a.headers.get('x-ratelimit-remaining-tokens')) < 1_000_000);
      assert.ok(a.headers.get('x-ratelimit-reset-tokens'));
    }
    const r = await chat(gw, KEY('rl'), 'too many');
    assert.equal(r.status, 429);
    assert.equal(r.body.error.code, 'rate_limit_exceeded');
    assert.match(r.body.error.message, /key "rl-app": 3 requests per minute/);
    const ra = Number(r.headers.get('retry-after'));
    assert.ok(ra >= 1 && ra <= 20, `retry-after ${ra}`);
    assert.ok(Number(r.headers.get('retry-after-ms')) <= 20_000);
    assert.equal(r.headers.get('x-ratelimit-remaining-requests'), '0');
    const free = await chat(gw, KEY('free'), 'unlimited');
    assert.equal(free.status, 200);
    assert.equal(free.headers.get('x-ratelimit-limit-requests'), null, 'a key without limits gets no rate-limit headers');
  });

  test("the openai client's built-in retry backs off by retry-after and gets through", async () => {
    await configure(gw, {
      endpoints: [endpoint('rl-2')],
      models: [{ name: 'chat', targets: [{ endpoint: 'rl-2', model: 'm' }], limits: { rpm: 20 } }],
      teams: [],
      keys: [{ name: 'retry-app', key: KEY('retry') }],
    });
    // use up the alias's limit (a request per 3 s comes back)
    let limited: Answer | undefined;
    for (let i = 0; i < 40 && !limited; i++) {
      const a = await chat(gw, KEY('retry'), `x${i}`);
      if (a.status === 429) limited = a;
    }
    assert.ok(limited, 'the limit was reached');
    assert.match(limited.body.error.message, /model "chat": 20 requests per minute/);
    const client = new OpenAI({ apiKey: KEY('retry'), baseURL: gw.baseURL, maxRetries: 3, fetch });
    const c = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'patient' }] });
    assert.equal(c.choices[0]!.message.content, 'echo: patient');
  });
});

describe('cost-aware routing', () => {
  test('past at_percent of the tightest budget, the alias is served by its downgrade; the response and the ledger say so', async () => {
    await configure(gw, {
      endpoints: [endpoint('dg-1')],
      models: [
        { name: 'chat', targets: [{ endpoint: 'dg-1', model: 'big' }], price: { input_per_million: 0, output_per_million: 0, per_request: 3 }, downgrade: { to: 'chat-small', at_percent: 50 } },
        { name: 'chat-small', targets: [{ endpoint: 'dg-1', model: 'small' }], price: { input_per_million: 0, output_per_million: 0, per_request: 1 } },
      ],
      teams: [{ name: 'dg', budget: { amount: 100, period: 'month' } }],
      keys: [{ name: 'dg-app', key: KEY('dg'), team: 'dg', budget: { amount: 10, period: 'week' }, models: ['chat'] }],
    });
    const a1 = await chat(gw, KEY('dg'), 'one');
    const a2 = await chat(gw, KEY('dg'), 'two');
    assert.equal(a1.headers.get('x-airlock-downgraded-from'), null);
    assert.equal(a2.headers.get('x-airlock-downgraded-from'), null, '3 of 10 spent, 3 reserved: 60 % only after this one');
    const a3 = await chat(gw, KEY('dg'), 'three');
    assert.equal(a3.status, 200);
    assert.equal(a3.headers.get('x-airlock-downgraded-from'), 'chat');
    assert.equal(a3.headers.get('x-airlock-model'), 'chat-small');
    assert.equal(a3.body.model, 'small');
    const row = await eventually(async () => (await rows(gw)).find((x) => x.key_name === 'dg-app' && x.downgraded_from), 'the downgraded row');
    assert.equal(row.alias, 'chat-small');
    assert.equal(row.requested_model, 'chat');
    assert.equal(row.cost, 1);
  });
});

describe('fair share of a saturated endpoint', () => {
  async function saturate(g: RunningGateway, epName: string, teams: { name: string; weight?: number }[], keys: Record<string, unknown>[]) {
    await configure(g, {
      endpoints: [endpoint(epName, { max_concurrency: 1 })],
      models: [{ name: 'chat', targets: [{ endpoint: epName, model: 'm' }] }],
      teams,
      keys,
      settings: { queue_timeout_ms: 120_000, metrics_public: true },
    });
    up.setBehavior((req) => (JSON.stringify(req.body ?? '').includes('blocker') ? { kind: 'hang' } : { kind: 'ok' }));
    const ac = new AbortController();
    const blocker = chat(g, keys[0]!.key as string, 'blocker', { signal: ac.signal }).catch(() => undefined);
    await eventually(() => up.inflight === 1, 'the blocker holds the only slot');
    return {
      async release(queued: number) {
        await eventually(async () => (await metric(g, 'airlock_endpoint_queue_depth', `endpoint="${epName}"`)) === queued, `${queued} requests queued`, 20_000);
        const start = up.completions().length;
        ac.abort();
        await blocker;
        return start;
      },
    };
  }
  const served = (from: number) =>
    up
      .completions()
      .slice(from)
      .map((r) => String(r.body?.messages?.[0]?.content ?? ''))
      .filter((c) => c !== 'blocker');

  test('two teams with weights 1 and 3 flooding one endpoint are served 1:3; then the lone team gets every slot', async () => {
    const s = await saturate(gw, 'fair-1', [{ name: 'light', weight: 1 }, { name: 'heavy', weight: 3 }], [
      { name: 'light-app', key: KEY('light'), team: 'light' },
      { name: 'heavy-app', key: KEY('heavy'), team: 'heavy' },
    ]);
    const all: Promise<Answer>[] = [];
    for (let i = 0; i < 20; i++) all.push(chat(gw, KEY('light'), `light-${i}`), chat(gw, KEY('heavy'), `heavy-${i}`));
    const from = await s.release(40);
    const answers = await Promise.all(all);
    assert.ok(answers.every((a) => a.status === 200));
    const order = served(from);
    assert.equal(order.length, 40);
    const first20 = order.slice(0, 20);
    const light = first20.filter((c) => c.startsWith('light')).length;
    assert.ok(light >= 4 && light <= 6, `light got ${light} of the first 20 (1:3 is 5): ${first20.join(' ')}`);
    assert.deepEqual(order.slice(-5).map((c) => c.split('-')[0]), ['light', 'light', 'light', 'light', 'light'], 'work-conserving: the rest go to the team still waiting');
    up.setBehavior({ kind: 'ok' });
  });

  test('an interactive request overtakes queued batch work; x-airlock-priority lowers, never raises', async () => {
    const s = await saturate(gw, 'fair-2', [{ name: 'mixed' }], [
      { name: 'inter-app', key: KEY('inter'), team: 'mixed' },
      { name: 'batch-app', key: KEY('batch'), team: 'mixed', priority: 'batch' },
    ]);
    const all: Promise<Answer>[] = [];
    for (let i = 0; i < 3; i++) all.push(chat(gw, KEY('batch'), `batch-${i}`));
    all.push(chat(gw, KEY('batch'), 'batch-raised', { headers: { 'x-airlock-priority': 'interactive' } }));
    all.push(chat(gw, KEY('inter'), 'inter-lowered', { headers: { 'x-airlock-priority': 'batch' } }));
    await eventually(async () => (await metric(gw, 'airlock_endpoint_queue_depth', 'endpoint="fair-2"')) === 5, 'batch work queued');
    all.push(chat(gw, KEY('inter'), 'inter-0'));
    const from = await s.release(6);
    await Promise.all(all);
    const order = served(from);
    assert.equal(order[0], 'inter-0', `interactive first: ${order.join(' ')}`);
    assert.ok(order.indexOf('batch-raised') > 0, 'a batch key cannot raise its priority');
    assert.deepEqual(order.slice(1), ['batch-0', 'batch-1', 'batch-2', 'batch-raised', 'inter-lowered']);
    up.setBehavior({ kind: 'ok' });
  });

  test('the queue is bounded: past queue_max_length, 503 capacity_timeout with retry-after at once', async () => {
    const s = await saturate(gw, 'fair-3', [{ name: 'q' }], [{ name: 'q-app', key: KEY('q'), team: 'q' }]);
    await configure(gw, { settings: { queue_max_length: 1, queue_timeout_ms: 120_000, metrics_public: true } });
    const waiting = chat(gw, KEY('q'), 'waits');
    await eventually(async () => (await metric(gw, 'airlock_endpoint_queue_depth', 'endpoint="fair-3"')) === 1, 'one waiting');
    const r = await chat(gw, KEY('q'), 'one too many');
    assert.equal(r.status, 503);
    assert.equal(r.body.error.code, 'capacity_timeout');
    assert.match(r.body.error.message, /queue_max_length/);
    assert.ok(r.headers.get('retry-after'));
    await s.release(1);
    assert.equal((await waiting).status, 200);
    assert.ok(((await metric(gw, 'airlock_requests_rejected_total', 'reason="capacity_timeout"')) ?? 0) >= 1);
    up.setBehavior({ kind: 'ok' });
  });
});
