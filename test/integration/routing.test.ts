// Routing against the real gateway process and simulated upstreams: fallback, retries,
// streaming failures, circuit breaking, health checks, client disconnects, strategies,
// rule-based routing and max_concurrency.
//
// One gateway serves the whole file; each test applies its own configuration through the
// admin API (POST /admin/api/v1/config/apply) with endpoint names of its own, so breaker,
// latency and health state never carry over from one test to the next.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type Behavior, type TestUpstream, type UpstreamOptions } from '../helpers/upstream.js';

const RESEARCH_KEY = 'sk-airlock-routing-research-00000000000001';
const AUTO_KEY = 'sk-airlock-routing-auto-only-0000000000001';

let gw: RunningGateway;
let client: OpenAI;
let seq = 0;

before(async () => {
  gw = await startGateway();
  client = openai(TEST_KEY);
});

after(async () => {
  await gw?.stop();
});

function openai(apiKey: string): OpenAI {
  // timeout: a safety net far above what any answer here needs; never asserted on
  return new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0, timeout: 15_000 });
}

/** A fresh prefix for this test's endpoint names. */
function prefix(): string {
  return `t${++seq}`;
}

/** An upstream closed when the test ends. */
async function upstream(t: TestContext, opts?: UpstreamOptions): Promise<TestUpstream> {
  const up = await startUpstream(opts);
  t.after(() => up.close());
  return up;
}

/** The URL of a server that is gone: connecting to it is refused. */
async function refusedUrl(): Promise<string> {
  const up = await startUpstream();
  const url = up.url;
  await up.close();
  return url;
}

interface EndpointOpts {
  first_byte_timeout_ms?: number;
  timeout_ms?: number;
  max_concurrency?: number;
  type?: 'openai' | 'ollama';
  health_check?: { enabled: boolean; interval_ms?: number; timeout_ms?: number; unhealthy_after?: number };
}

function endpoint(name: string, baseUrl: string, opts: EndpointOpts = {}) {
  // generous by default so a loaded machine never fails a healthy target; tests that exercise the
  // first-byte timeout set a small one on the failing target
  return { name, base_url: baseUrl, first_byte_timeout_ms: 5_000, timeout_ms: 10_000, health_check: { enabled: false }, ...opts };
}

const TEAMS = [{ name: 'ops' }, { name: 'research' }];
const KEYS = [
  { name: 'routing-app', key: TEST_KEY, team: 'ops' },
  { name: 'research-app', key: RESEARCH_KEY, team: 'research' },
];

/** Apply a whole configuration through the admin API (sections not given get our defaults). */
async function configure(doc: Record<string, unknown>): Promise<void> {
  const settings = { retry_after_cap_ms: 2_000, breaker: { failure_threshold: 3, cooldown_ms: 400 }, ...(doc.settings as object | undefined) };
  const r = await gw.admin('POST', '/config/apply', { teams: TEAMS, keys: KEYS, routing_rules: [], ...doc, settings });
  assert.equal(r.status, 200, `config apply failed: ${JSON.stringify(r.body)}`);
}

interface Answer {
  id: string;
  content: string | null | undefined;
  endpoint: string | null;
  attempts: number;
}

/** A non-streaming chat through the openai client, with our own request id for the ledger. */
async function chat(model: string, text = 'hello', opts: { headers?: Record<string, string>; c?: OpenAI; tools?: OpenAI.ChatCompletionTool[]; signal?: AbortSignal; id?: string } = {}): Promise<Answer> {
  const id = opts.id ?? `rt-${randomUUID()}`;
  const { data, response } = await (opts.c ?? client).chat.completions
    .create(
      { model, messages: [{ role: 'user', content: text }], ...(opts.tools ? { tools: opts.tools } : {}) },
      { headers: { 'x-request-id': id, ...opts.headers }, ...(opts.signal ? { signal: opts.signal } : {}) },
    )
    .withResponse();
  return {
    // the gateway's own id (the client's x-request-id is kept beside it and echoed)
    id: response.headers.get('x-airlock-request-id') ?? id,
    content: data.choices[0]?.message.content,
    endpoint: response.headers.get('x-airlock-endpoint'),
    attempts: Number(response.headers.get('x-airlock-attempts')),
  };
}

/** The error the openai client raises for a request that must fail. */
async function chatError(model: string, text = 'hello', id = `rt-${randomUUID()}`): Promise<InstanceType<typeof OpenAI.APIError> & { id: string }> {
  try {
    await client.chat.completions.create({ model, messages: [{ role: 'user', content: text }] }, { headers: { 'x-request-id': id } });
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${String(e)}`);
    return Object.assign(e, { id: e.headers?.get('x-airlock-request-id') ?? id });
  }
  assert.fail('the request succeeded, but it should have failed');
}

async function ledgerRow(id: string): Promise<Record<string, any>> {
  return eventually(async () => {
    const r = await gw.admin('GET', '/usage/requests?limit=1000');
    assert.equal(r.status, 200);
    // our own id (x-airlock-request-id), or the x-request-id the client sent (kept beside it)
    return (r.body.data as Record<string, any>[]).find((x) => x.request_id === id || x.client_request_id === id);
  }, `ledger row ${id}`);
}

interface Health {
  endpoints: { name: string; healthy: boolean; inflight: number; last_check_at: string | null; last_check_error: string | null; discovered_models: string[] | null }[];
  targets: { id: string; endpoint: string; alias: string; breaker: string; consecutive_failures: number; retry_at: string | null; last_error: string | null }[];
}

async function health(): Promise<Health> {
  const r = await gw.admin<Health>('GET', '/health');
  assert.equal(r.status, 200);
  return r.body;
}
async function endpointHealth(name: string) {
  const e = (await health()).endpoints.find((x) => x.name === name);
  assert.ok(e, `endpoint ${name} in GET /health`);
  return e;
}
async function targetHealth(endpointName: string) {
  const t = (await health()).targets.find((x) => x.endpoint === endpointName);
  assert.ok(t, `target on ${endpointName} in GET /health`);
  return t;
}

/** The served answer is the upstream's echo, from `endpoint`, after `attempts` attempts — and the ledger agrees. */
async function assertServed(a: Answer, text: string, endpointName: string, attempts: number): Promise<void> {
  assert.equal(a.content, `echo: ${text}`);
  assert.equal(a.endpoint, endpointName);
  assert.equal(a.attempts, attempts);
  const row = await ledgerRow(a.id);
  assert.equal(row.status, 200);
  assert.equal(row.endpoint, endpointName);
  assert.equal(row.attempts, attempts);
}

const posts = (up: TestUpstream) => up.completions().length;

// ---------------------------------------------------------------------------------------------

describe('fallback strategy', () => {
  test('first target refuses connections: the second answers, attempts=2', async (t) => {
    const p = prefix();
    const b = await upstream(t);
    await configure({
      endpoints: [endpoint(`${p}-a`, await refusedUrl()), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', strategy: 'fallback', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    const a = await chat('chat', 'refused first');
    await assertServed(a, 'refused first', `${p}-b`, 2);
    assert.equal(posts(b), 1);
    assert.equal(b.completions()[0]!.body.model, 'test-model');
  });

  const failures: [string, Behavior][] = [
    ['returns 500', { kind: 'status', status: 500 }],
    ['delays its first byte beyond first_byte_timeout_ms', { kind: 'slow-first-byte', delayMs: 3_000 }],
    ['hangs', { kind: 'hang' }],
    ['answers invalid JSON', { kind: 'invalid-json' }],
    ['answers with a wrong content-type', { kind: 'wrong-content-type' }],
  ];
  for (const [what, behavior] of failures) {
    test(`first target ${what}: falls back to the second`, async (t) => {
      const p = prefix();
      const a = await upstream(t);
      const b = await upstream(t);
      a.setBehavior(behavior);
      await configure({
        endpoints: [endpoint(`${p}-a`, a.url, { first_byte_timeout_ms: 400 }), endpoint(`${p}-b`, b.url)],
        models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
      });
      const ans = await chat('chat', `first ${what}`);
      await assertServed(ans, `first ${what}`, `${p}-b`, 2);
      assert.equal(posts(a), 1, 'the failing target was tried once');
      assert.equal(posts(b), 1);
      // whatever the first target did, the gateway does not leave its request open
      await eventually(() => a.inflight === 0, 'the failed upstream request to be closed');
    });
  }

  test('first target returns 429 with a long retry-after: falls back to the second at once', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    // 30 s: far longer than the client's timeout, so waiting for it would fail the request
    a.setBehavior({ kind: 'status', status: 429, retryAfter: '30' });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    const ans = await chat('chat', 'rate limited first');
    await assertServed(ans, 'rate limited first', `${p}-b`, 2);
    assert.equal(posts(a), 1);
  });

  test('the only target delays its first byte beyond first_byte_timeout_ms: 504 naming the endpoint', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    a.setBehavior({ kind: 'slow-first-byte', delayMs: 3_000 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url, { first_byte_timeout_ms: 300 })],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }] }],
    });
    const err = await chatError('chat', 'too slow');
    assert.equal(err.status, 504);
    assert.match(err.message, new RegExp(`${p}-a`));
    assert.ok(posts(a) >= 1);
    const row = await ledgerRow(err.id);
    assert.equal(row.status, 504);
    assert.equal(row.attempts, Number(err.headers?.get('x-airlock-attempts')));
    await eventually(() => a.inflight === 0, 'the timed-out upstream request to be closed');
  });
});

describe('retries on 429', () => {
  test('a single target answering 429 with retry-after: 0 once is retried and succeeds (attempts=2)', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    a.queue({ kind: 'status', status: 429, retryAfter: '0' });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }] }],
    });
    const ans = await chat('chat', 'retry me');
    await assertServed(ans, 'retry me', `${p}-a`, 2);
    assert.equal(posts(a), 2);
  });

  test('retry-after above settings.retry_after_cap_ms: 429 to the client with retry-after', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    a.setBehavior({ kind: 'status', status: 429, retryAfter: '30' });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }] }],
      settings: { retry_after_cap_ms: 1_000 },
    });
    const err = await chatError('chat', 'come back later');
    assert.ok(err instanceof OpenAI.RateLimitError, `expected RateLimitError, got ${err.constructor.name} ${err.status}`);
    assert.equal(err.status, 429);
    assert.equal(err.headers?.get('retry-after'), '30');
    assert.equal(posts(a), 1, 'the gateway does not hammer an upstream that asked for 30 s');
    const row = await ledgerRow(err.id);
    assert.equal(row.status, 429);
  });
});

// ---------------------------------------------------------------------------------------------

describe('streaming', () => {
  const early: [string, Behavior][] = [
    ['drop-before-content', { kind: 'drop-before-content' }],
    ['error-event-before-content', { kind: 'error-event-before-content' }],
    ['500', { kind: 'status', status: 500 }],
  ];
  for (const [what, behavior] of early) {
    test(`stream failing before the first content chunk (${what}) falls back; the client gets the whole answer`, async (t) => {
      const p = prefix();
      const a = await upstream(t);
      const b = await upstream(t);
      a.setBehavior(behavior);
      await configure({
        endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
        models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
      });
      const text = `stream after ${what} please`;
      const { data: stream, response } = await client.chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true })
        .withResponse();
      const id = response.headers.get('x-airlock-request-id');
      assert.ok(id, 'x-airlock-request-id');
      let content = '';
      let finish: string | null | undefined;
      for await (const chunk of stream) {
        content += chunk.choices[0]?.delta.content ?? '';
        finish = chunk.choices[0]?.finish_reason ?? finish;
      }
      assert.equal(content, `echo: ${text}`);
      assert.equal(finish, 'stop');
      assert.equal(response.headers.get('x-airlock-endpoint'), `${p}-b`);
      assert.equal(response.headers.get('x-airlock-attempts'), '2');
      assert.equal(posts(a), 1);
      assert.equal(posts(b), 1);
      const row = await ledgerRow(id);
      assert.equal(row.status, 200);
      assert.equal(row.endpoint, `${p}-b`);
      assert.equal(row.attempts, 2);
      assert.equal(row.error_class, null);
    });
  }

  test('a stream that breaks after content reached the client ends in an error, never a clean end', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'drop-mid-stream', afterChunks: 2 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    const text = 'one two three four five six seven eight';

    // 1. the openai client: iteration throws
    const { data: stream, response } = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true }).withResponse();
    const id1 = response.headers.get('x-airlock-request-id');
    assert.ok(id1, 'x-airlock-request-id');
    let content = '';
    let thrown: unknown;
    try {
      for await (const chunk of stream) content += chunk.choices[0]?.delta.content ?? '';
    } catch (e) {
      thrown = e;
    }
    assert.ok(thrown, `the stream ended cleanly with a truncated answer: ${JSON.stringify(content)}`);
    assert.ok(content.length > 0, 'content reached the client before the break');
    assert.ok(`echo: ${text}`.startsWith(content) && content !== `echo: ${text}`, `partial content: ${JSON.stringify(content)}`);

    // 2. a raw reader: an error event and/or a truncated body, never data: [DONE]
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true }),
    });
    assert.equal(res.status, 200);
    const id2 = res.headers.get('x-airlock-request-id');
    assert.ok(id2, 'x-airlock-request-id');
    const reader = res.body!.getReader();
    const dec = new TextDecoder();
    let raw = '';
    let truncated = false;
    try {
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        raw += dec.decode(r.value, { stream: true });
      }
    } catch {
      truncated = true;
    }
    assert.ok(raw.includes('"content":"echo: "'), `content before the break: ${raw}`);
    assert.ok(!raw.includes('data: [DONE]'), `a broken stream must not end with [DONE]: ${raw}`);
    const errorEvent = /^data: \{"error":/m.test(raw);
    assert.ok(errorEvent || truncated, `neither an error event nor a truncated body: ${raw}`);

    // never retried elsewhere once the client had content
    assert.equal(posts(b), 0);
    for (const id of [id1, id2]) {
      const row = await ledgerRow(id);
      assert.equal(row.error_class, 'stream_interrupted', `ledger row ${id}: ${JSON.stringify(row)}`);
      assert.equal(row.endpoint, `${p}-a`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('circuit breaker', () => {
  test('opens after failure_threshold failures, is skipped while open, closes after one successful probe', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'status', status: 500 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
      // a cooldown long enough that the "while open" requests below surely happen while it is open
      settings: { breaker: { failure_threshold: 2, cooldown_ms: 1_500 } },
    });

    // two consecutive failures: each request still answered by the second target
    for (let i = 0; i < 2; i++) await assertServed(await chat('chat', `fail ${i}`), `fail ${i}`, `${p}-b`, 2);
    assert.equal(posts(a), 2);
    const open = await targetHealth(`${p}-a`);
    assert.equal(open.breaker, 'open');
    assert.equal(open.consecutive_failures, 2);
    assert.ok(open.retry_at, 'an open breaker says when it will probe');
    assert.match(open.last_error ?? '', /500/);
    assert.equal((await targetHealth(`${p}-b`)).breaker, 'closed');

    // while open: the broken upstream receives nothing, the healthy one serves at the first attempt
    for (let i = 0; i < 3; i++) await assertServed(await chat('chat', `open ${i}`), `open ${i}`, `${p}-b`, 1);
    assert.equal(posts(a), 2, 'no request reached the target while its breaker was open');
    assert.equal((await targetHealth(`${p}-a`)).breaker, 'open', 'still open after those requests (they were all sent while open)');

    // after the cooldown: exactly one probe goes through; the upstream has recovered but is slow,
    // so the other requests arrive while the probe is in flight and go to the second target
    a.setBehavior({ kind: 'slow-first-byte', delayMs: 1_200 });
    await eventually(async () => (await targetHealth(`${p}-a`)).breaker === 'half-open', 'the breaker to go half-open', 10_000);
    const answers = await Promise.all([0, 1, 2, 3].map((i) => chat('chat', `probe ${i}`)));
    for (const [i, ans] of answers.entries()) assert.equal(ans.content, `echo: probe ${i}`);
    assert.equal(posts(a), 3, 'a single probe reached the recovering target');
    assert.equal(answers.filter((x) => x.endpoint === `${p}-a`).length, 1);
    assert.equal(answers.filter((x) => x.endpoint === `${p}-b`).length, 3);

    // the probe succeeded: closed again, and the first target serves again
    const closed = await targetHealth(`${p}-a`);
    assert.equal(closed.breaker, 'closed');
    assert.equal(closed.consecutive_failures, 0);
    a.setBehavior({ kind: 'ok' });
    await assertServed(await chat('chat', 'back'), 'back', `${p}-a`, 1);
  });

  test('streams that keep breaking mid-way count as failures: the breaker opens and streams move to the other target', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'drop-mid-stream', afterChunks: 1 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
      settings: { breaker: { failure_threshold: 2, cooldown_ms: 60_000 } },
    });
    const text = 'a long answer that breaks';
    const streamChat = async () => {
      const s = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true });
      let content = '';
      for await (const chunk of s) content += chunk.choices[0]?.delta.content ?? '';
      return content;
    };
    for (let i = 0; i < 2; i++) await assert.rejects(streamChat(), `broken stream ${i} raises`);
    const open = await targetHealth(`${p}-a`);
    assert.equal(open.breaker, 'open', `after two broken streams: ${JSON.stringify(open)}`);
    assert.equal(await streamChat(), `echo: ${text}`);
    assert.equal(posts(a), 2);
    assert.equal(posts(b), 1);
  });

  test('every target open: 503 naming the targets and their circuit state, upstreams untouched', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'status', status: 500 });
    b.setBehavior({ kind: 'status', status: 502 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
      // long cooldown: the breakers stay open for the rest of this test
      settings: { breaker: { failure_threshold: 2, cooldown_ms: 60_000 } },
    });
    // fail until both breakers are open; each of these is an honest 5xx naming why
    await eventually(async () => {
      const err = await chatError('chat', 'break them');
      assert.ok(err.status === 502 || err.status === 503, `status ${err.status}`);
      const h = await health();
      return h.targets.filter((x) => x.endpoint.startsWith(`${p}-`) && x.breaker === 'open').length === 2;
    }, 'both breakers to open', 10_000, 10);
    const before = [posts(a), posts(b)];

    const err = await chatError('chat', 'anyone there?');
    assert.equal(err.status, 503);
    assert.ok(err.headers?.get('retry-after'), '503 says when to retry');
    assert.match(err.message, new RegExp(`${p}-a/test-model: circuit open`));
    assert.match(err.message, new RegExp(`${p}-b/test-model: circuit open`));
    assert.deepEqual([posts(a), posts(b)], before, 'no upstream was called');
    const row = await ledgerRow(err.id);
    assert.equal(row.status, 503);
    assert.equal(row.attempts, 0);
  });
});

// ---------------------------------------------------------------------------------------------

describe('health checks', () => {
  const hc = { enabled: true, interval_ms: 100, timeout_ms: 2_000, unhealthy_after: 1 };

  test('an endpoint whose GET /v1/models fails is marked down, avoided, and back when it recovers', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url, { health_check: hc }), endpoint(`${p}-b`, b.url, { health_check: hc })],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    await eventually(async () => {
      const e = await endpointHealth(`${p}-a`);
      return e.healthy && e.last_check_at !== null;
    }, 'the first health check');
    assert.ok(a.requests.some((r) => r.method === 'GET' && r.path === '/v1/models'), 'the check asked GET /v1/models');

    a.setModelsResponse({ kind: 'status', status: 500 });
    await eventually(async () => (await endpointHealth(`${p}-a`)).healthy === false, 'the endpoint to be marked unhealthy', 10_000);
    assert.match((await endpointHealth(`${p}-a`)).last_check_error ?? '', /500/);
    assert.equal((await endpointHealth(`${p}-b`)).healthy, true);

    // the endpoint would still answer completions, but the router sends work to the healthy one
    for (let i = 0; i < 3; i++) await assertServed(await chat('chat', `down ${i}`), `down ${i}`, `${p}-b`, 1);
    assert.equal(posts(a), 0);

    a.setModelsResponse(null);
    await eventually(async () => (await endpointHealth(`${p}-a`)).healthy === true, 'the endpoint to be healthy again', 10_000);
    await assertServed(await chat('chat', 'up again'), 'up again', `${p}-a`, 1);
  });

  test('an endpoint whose server is gone is marked down and skipped without an attempt', async (t) => {
    const p = prefix();
    const a = await startUpstream();
    t.after(() => a.close());
    const b = await upstream(t);
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url, { health_check: hc }), endpoint(`${p}-b`, b.url, { health_check: hc })],
      models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    await eventually(async () => (await endpointHealth(`${p}-a`)).last_check_at !== null, 'the first health check');
    await assertServed(await chat('chat', 'while up'), 'while up', `${p}-a`, 1);

    await a.close();
    // (a check in flight while the server closed may fail differently first; the next ones are refused)
    await eventually(async () => {
      const e = await endpointHealth(`${p}-a`);
      return e.healthy === false && /refused/.test(e.last_check_error ?? '');
    }, 'the closed endpoint to be marked unhealthy, its connection refused', 10_000);
    // without the health verdict the first attempt would go to the dead server (attempts=2)
    await assertServed(await chat('chat', 'while down'), 'while down', `${p}-b`, 1);
  });

  test('an ollama endpoint is discovered through /api/tags and served through its /v1 API', async (t) => {
    const p = prefix();
    const o = await upstream(t, { models: ['llama3.1:8b', 'qwen2.5:7b'] });
    await configure({
      endpoints: [endpoint(`${p}-ollama`, o.origin, { type: 'ollama', health_check: hc })],
      models: [{ name: 'llama', targets: [{ endpoint: `${p}-ollama`, model: 'llama3.1:8b' }] }],
    });
    const e = await eventually(async () => {
      const x = await endpointHealth(`${p}-ollama`);
      return x.discovered_models ? x : undefined;
    }, 'discovered models');
    assert.deepEqual([...e.discovered_models!].sort(), ['llama3.1:8b', 'qwen2.5:7b']);
    assert.equal(e.healthy, true);
    assert.ok(o.requests.some((r) => r.method === 'GET' && r.path === '/api/tags'), 'discovery used /api/tags');

    await assertServed(await chat('llama', 'hi ollama'), 'hi ollama', `${p}-ollama`, 1);
    const post = o.completions()[0]!;
    assert.equal(post.path, '/v1/chat/completions');
    assert.equal(post.body.model, 'llama3.1:8b');
  });
});

// ---------------------------------------------------------------------------------------------

test('a client that disconnects aborts the upstream request and frees its slot (ledger 499)', async (t) => {
  const p = prefix();
  const a = await upstream(t);
  a.setBehavior({ kind: 'hang' });
  await configure({
    // the gateway's own timeouts are far beyond the deadlines below: only the client's abort
    // can end the upstream request in time
    endpoints: [endpoint(`${p}-a`, a.url, { max_concurrency: 1, first_byte_timeout_ms: 120_000, timeout_ms: 120_000 })],
    models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }] }],
    // if the slot were not freed, the next request would wait this long, beyond the client's timeout
    settings: { queue_timeout_ms: 60_000 },
  });
  const ac = new AbortController();
  // the client never sees a response to this one: find its ledger row by the request id we sent
  const abortedId = `rt-${randomUUID()}`;
  const pending = chat('chat', 'never answered', { signal: ac.signal, id: abortedId });
  await eventually(() => a.inflight === 1 && posts(a) === 1, 'the request to reach the upstream');
  assert.equal((await endpointHealth(`${p}-a`)).inflight, 1);
  ac.abort();
  await assert.rejects(pending, OpenAI.APIUserAbortError);

  await eventually(() => a.aborted === 1 && a.inflight === 0, 'the upstream request to be aborted');
  await eventually(async () => (await endpointHealth(`${p}-a`)).inflight === 0, 'the slot to be freed');
  a.setBehavior({ kind: 'ok' });
  await assertServed(await chat('chat', 'next one'), 'next one', `${p}-a`, 1);

  const row = await ledgerRow(abortedId);
  assert.equal(row.status, 499);
});

// ---------------------------------------------------------------------------------------------

describe('strategies', () => {
  test('weighted: both targets get traffic, the heavier one more', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', strategy: 'weighted', targets: [{ endpoint: `${p}-a`, model: 'test-model', weight: 1 }, { endpoint: `${p}-b`, model: 'test-model', weight: 3 }] }],
    });
    const served = new Map<string, number>();
    for (let batch = 0; batch < 8; batch++) {
      const answers = await Promise.all(Array.from({ length: 10 }, (_, i) => chat('chat', `w ${batch}.${i}`)));
      for (const x of answers) {
        assert.equal(x.attempts, 1);
        served.set(x.endpoint!, (served.get(x.endpoint!) ?? 0) + 1);
      }
    }
    const na = posts(a);
    const nb = posts(b);
    assert.equal(na + nb, 80);
    assert.equal(served.get(`${p}-a`), na);
    assert.equal(served.get(`${p}-b`), nb);
    assert.ok(na > 0 && nb > 0, `both get traffic: a=${na} b=${nb}`);
    assert.ok(nb > na, `weight 3 gets more than weight 1: a=${na} b=${nb}`);
  });

  test('least-busy: new requests go to the target that is not busy', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'hang' });
    b.setBehavior({ kind: 'hang' });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url, { first_byte_timeout_ms: 60_000 }), endpoint(`${p}-b`, b.url, { first_byte_timeout_ms: 60_000 })],
      models: [{ name: 'chat', strategy: 'least-busy', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    // four hanging requests, one at a time: least-busy spreads them two and two
    const hanging: { id: string; ac: AbortController; done: Promise<unknown> }[] = [];
    t.after(() => hanging.forEach((h) => h.ac.abort()));
    for (let i = 0; i < 4; i++) {
      const ac = new AbortController();
      const id = `rt-${randomUUID()}`;
      hanging.push({ id, ac, done: chat('chat', `hang ${i}`, { signal: ac.signal, id }).catch((e: unknown) => e) });
      await eventually(() => posts(a) + posts(b) === i + 1, `hanging request ${i} to reach an upstream`);
    }
    assert.deepEqual([posts(a), posts(b)], [2, 2]);
    // free b: abort the two requests it holds (known by their text); a stays busy with two
    const onB = new Set(b.completions().map((r) => r.body.messages[0].content as string));
    hanging.forEach((h, i) => {
      if (onB.has(`hang ${i}`)) h.ac.abort();
    });
    await eventually(async () => b.inflight === 0 && (await endpointHealth(`${p}-b`)).inflight === 0, 'b to be idle');
    assert.equal(a.inflight, 2);

    b.setBehavior({ kind: 'ok' });
    for (let i = 0; i < 6; i++) await assertServed(await chat('chat', `lb ${i}`), `lb ${i}`, `${p}-b`, 1);
    assert.equal(posts(a), 2, 'the busy target got no new request');
    for (const h of hanging) h.ac.abort();
  });

  test('least-latency: the slow target gets fewer requests than the fast one', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'slow-first-byte', delayMs: 100 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)],
      models: [{ name: 'chat', strategy: 'least-latency', targets: [{ endpoint: `${p}-a`, model: 'test-model' }, { endpoint: `${p}-b`, model: 'test-model' }] }],
    });
    for (let i = 0; i < 20; i++) {
      const x = await chat('chat', `ll ${i}`);
      assert.equal(x.content, `echo: ll ${i}`);
    }
    const na = posts(a);
    const nb = posts(b);
    assert.equal(na + nb, 20);
    assert.ok(na < nb, `slow a=${na} should get fewer than fast b=${nb}`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('rule-based routing', () => {
  let cheap: TestUpstream;
  let strong: TestUpstream;
  let p: string;
  const tools: OpenAI.ChatCompletionTool[] = [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];
  const long = 'please consider this carefully '.repeat(20);

  before(async () => {
    p = prefix();
    cheap = await startUpstream();
    strong = await startUpstream();
  });
  after(async () => {
    await cheap?.close();
    await strong?.close();
  });

  async function setup(): Promise<void> {
    cheap.reset();
    strong.reset();
    await configure({
      endpoints: [endpoint(`${p}-cheap`, cheap.url), endpoint(`${p}-strong`, strong.url)],
      models: [
        { name: 'cheap', targets: [{ endpoint: `${p}-cheap`, model: 'small-model' }] },
        { name: 'strong', targets: [{ endpoint: `${p}-strong`, model: 'big-model' }] },
      ],
      keys: [...KEYS, { name: 'auto-only', key: AUTO_KEY, team: 'ops', models: ['auto'] }],
      routing_rules: [
        { name: 'hint', when: { model: 'auto', header: { 'x-airlock-route-hint': 'strong' } }, route_to: 'strong' },
        { name: 'research', when: { model: 'auto', teams: ['research'] }, route_to: 'strong' },
        { name: 'simple', when: { model: 'auto', has_tools: false, max_prompt_tokens: 50 }, route_to: 'cheap' },
        { name: 'rest', when: { model: 'auto' }, route_to: 'strong' },
      ],
    });
  }

  async function assertRouted(a: Answer, alias: 'cheap' | 'strong', requested = 'auto'): Promise<void> {
    assert.equal(a.endpoint, `${p}-${alias}`);
    const row = await ledgerRow(a.id);
    assert.equal(row.requested_model, requested);
    assert.equal(row.alias, alias);
    assert.equal(row.endpoint, `${p}-${alias}`);
    assert.equal(row.upstream_model, alias === 'cheap' ? 'small-model' : 'big-model');
    assert.equal(row.status, 200);
  }

  test('"auto": small prompts without tools go to the cheap alias, tools or long prompts to the strong one', async () => {
    await setup();
    const small = await chat('auto', 'hi');
    assert.equal(small.content, 'echo: hi');
    await assertRouted(small, 'cheap');
    assert.equal(cheap.completions()[0]!.body.model, 'small-model');

    const withTools = await chat('auto', 'hi', { tools });
    await assertRouted(withTools, 'strong');
    assert.equal(strong.completions()[0]!.body.model, 'big-model');
    assert.equal(strong.completions()[0]!.body.tools[0].function.name, 'lookup');

    const big = await chat('auto', long);
    assert.equal(big.content, `echo: ${long}`);
    await assertRouted(big, 'strong');
    assert.deepEqual([cheap.completions().length, strong.completions().length], [1, 2]);
  });

  test('a rule on the x-airlock-route-hint header', async () => {
    await setup();
    await assertRouted(await chat('auto', 'hint me'), 'cheap');
    await assertRouted(await chat('auto', 'hint me', { headers: { 'x-airlock-route-hint': 'strong' } }), 'strong');
    await assertRouted(await chat('auto', 'hint me', { headers: { 'x-airlock-route-hint': 'something-else' } }), 'cheap');
  });

  test("a rule on the key's team", async () => {
    await setup();
    await assertRouted(await chat('auto', 'team work'), 'cheap');
    const research = await chat('auto', 'team work', { c: openai(RESEARCH_KEY) });
    await assertRouted(research, 'strong');
    assert.equal((await ledgerRow(research.id)).team, 'research');
  });

  test('a key limited to models: [auto] may use auto, and only auto', async () => {
    await setup();
    const c = openai(AUTO_KEY);
    const models = await c.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['auto']);
    await assertRouted(await chat('auto', 'limited', { c }), 'cheap');
    await assertRouted(await chat('auto', 'limited', { c, tools }), 'strong');
    await assert.rejects(
      c.chat.completions.create({ model: 'strong', messages: [{ role: 'user', content: 'direct' }] }),
      (e: unknown) => e instanceof OpenAI.PermissionDeniedError && /strong/.test(e.message),
    );
    // the direct aliases still work for an unrestricted key, and are recorded as asked
    await assertRouted(await chat('cheap', 'direct'), 'cheap', 'cheap');
  });
});

// ---------------------------------------------------------------------------------------------

test('max_concurrency: the upstream never sees more than the limit, and every request completes', async (t) => {
  const p = prefix();
  const a = await upstream(t);
  let peak = 0;
  a.setBehavior(() => {
    peak = Math.max(peak, a.inflight);
    return { kind: 'slow-first-byte', delayMs: 300 };
  });
  await configure({
    endpoints: [endpoint(`${p}-a`, a.url, { max_concurrency: 2 })],
    models: [{ name: 'chat', targets: [{ endpoint: `${p}-a`, model: 'test-model' }] }],
  });
  const answers = await Promise.all([0, 1, 2, 3, 4].map((i) => chat('chat', `parallel ${i}`)));
  for (const [i, x] of answers.entries()) {
    assert.equal(x.content, `echo: parallel ${i}`);
    assert.equal(x.endpoint, `${p}-a`);
  }
  assert.equal(posts(a), 5);
  assert.ok(peak <= 2, `the upstream saw ${peak} concurrent requests`);
  assert.equal(peak, 2, 'the two slots are used in parallel');
  for (const x of answers) assert.equal((await ledgerRow(x.id)).status, 200);
});
