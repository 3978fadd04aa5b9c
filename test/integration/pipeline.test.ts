// The request pipeline's contract at the edges issue 7 (item 4) found untested, against the real
// gateway process and simulated upstreams, through the official `openai` client where a client is
// natural and raw HTTP where the bytes matter:
//
// - a stream that breaks after content ends with the in-band error event, then a cut connection
//   (required: the event is the stream's last, not "an event or a truncated body");
// - slot exhaustion (endpoint max_concurrency) is a 503 capacity_timeout with retry-after;
// - an upstream 400/404/422 is passed through with its status and message, never retried
//   elsewhere; an upstream 401/403 is a 502 naming the endpoint; an upstream 408 is retried;
// - a model's max_attempts caps the attempts the upstreams see;
// - a client leaving mid-stream frees the slot and aborts the upstream request (ledger 499);
// - a client that reads a long stream slowly slows the upstream (backpressure), the gateway's
//   memory stays bounded;
// - streamed answers in every SSE format real servers write (test/helpers/upstream.ts, SSEShape)
//   reach the client whole, without a usage chunk it did not ask for, and the ledger has the
//   upstream's exact token counts (not estimated).
//
// One gateway serves the file; each test applies its own configuration through the admin API
// with endpoint names of its own, so breaker and slot state never carry over.
import { after, before, describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import net from 'node:net';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { procStatus, startFirehose } from '../helpers/fuzz.js';
import { completionTokensFor, promptTokensFor, startUpstream, type SSEShape, type TestUpstream } from '../helpers/upstream.js';

let gw: RunningGateway;
let client: OpenAI;
let seq = 0;

// this file's own connection pool (see after())
const agent = new Agent();
const fetch = ((url: string | URL, init?: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof globalThis.fetch;

before(async () => {
  gw = await startGateway();
  // timeout: a safety net far above what any answer here needs; never asserted on
  client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000, fetch });
});

after(async () => {
  // (the client's connections first: after streams the gateway cut, undici was seen holding a
  // fresh connection that never sent a request, and such a connection holds the gateway's
  // graceful stop for the whole shutdown_grace_ms, 30 s)
  await agent.destroy();
  await gw?.stop();
});

function prefix(): string {
  return `p${++seq}`;
}

async function upstream(t: TestContext): Promise<TestUpstream> {
  const up = await startUpstream();
  t.after(() => up.close());
  return up;
}

interface EndpointOpts {
  first_byte_timeout_ms?: number;
  timeout_ms?: number;
  max_concurrency?: number;
}

function endpoint(name: string, baseUrl: string, opts: EndpointOpts = {}) {
  return { name, base_url: baseUrl, first_byte_timeout_ms: 10_000, timeout_ms: 60_000, health_check: { enabled: false }, ...opts };
}

function model(endpoints: string[], extra: Record<string, unknown> = {}) {
  return { name: 'chat', strategy: 'fallback', targets: endpoints.map((e) => ({ endpoint: e, model: 'test-model' })), ...extra };
}

/** Apply a whole configuration (the breaker never opens unless a test asks). */
async function configure(doc: Record<string, unknown>): Promise<void> {
  const settings = { breaker: { failure_threshold: 1000, cooldown_ms: 60_000 }, ...(doc.settings as object | undefined) };
  const r = await gw.admin('POST', '/config/apply', {
    teams: [{ name: 'ops' }],
    keys: [{ name: 'pipeline-app', key: TEST_KEY, team: 'ops' }],
    routing_rules: [],
    ...doc,
    settings,
  });
  assert.equal(r.status, 200, `config apply failed: ${JSON.stringify(r.body)}`);
}

const posts = (up: TestUpstream) => up.completions().length;

async function ledgerRow(id: string): Promise<Record<string, any>> {
  return eventually(async () => {
    const byOurs = await gw.admin('GET', `/usage/requests?limit=5&request_id=${encodeURIComponent(id)}`);
    assert.equal(byOurs.status, 200);
    if (byOurs.body.data[0]) return byOurs.body.data[0] as Record<string, any>;
    const byClient = await gw.admin('GET', `/usage/requests?limit=5&client_request_id=${encodeURIComponent(id)}`);
    return byClient.body.data[0] as Record<string, any> | undefined;
  }, `ledger row ${id}`);
}

async function endpointInflight(name: string): Promise<number> {
  const r = await gw.admin('GET', '/health');
  assert.equal(r.status, 200);
  const e = (r.body.endpoints as { name: string; inflight: number }[]).find((x) => x.name === name);
  assert.ok(e, `endpoint ${name} in GET /health`);
  return e.inflight;
}

/** The API error a request fails with (fails the test if it succeeds or throws something else). */
async function apiError(p: PromiseLike<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof OpenAI.APIError, `expected an APIError, got ${String(e)}`);
    return e;
  }
  assert.fail('the request succeeded, but it should have failed');
}

function chat(text: string, opts: { id?: string; signal?: AbortSignal } = {}) {
  return client.chat.completions
    .create({ model: 'chat', messages: [{ role: 'user', content: text }] }, { headers: { 'x-request-id': opts.id ?? `pl-${randomUUID()}` }, ...(opts.signal ? { signal: opts.signal } : {}) })
    .withResponse();
}

/** A streamed chat read raw: the SSE text as received, and whether the body was cut (no clean end). */
async function rawStream(text: string, extra: Record<string, unknown> = {}): Promise<{ status: number; id: string; raw: string; cut: boolean }> {
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true, ...extra }),
  });
  const id = res.headers.get('x-airlock-request-id') ?? '';
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let raw = '';
  let cut = false;
  try {
    for (;;) {
      const r = await reader.read();
      if (r.done) break;
      raw += dec.decode(r.value, { stream: true });
    }
  } catch {
    cut = true;
  }
  return { status: res.status, id, raw, cut };
}

/** The data of each event in a (well-formed, LF) SSE text. */
function sseData(raw: string): string[] {
  return raw
    .split(/\n\n/)
    .map((block) =>
      block
        .split('\n')
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(l.startsWith('data: ') ? 6 : 5))
        .join('\n'),
    )
    .filter((d) => d !== '');
}

// ---------------------------------------------------------------------------------------------

describe('a stream that breaks after content', () => {
  test('the in-band error event is required: the last event is the stream_interrupted error, then the connection is cut', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'drop-mid-stream', afterChunks: 3 });
    await configure({ endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)], models: [model([`${p}-a`, `${p}-b`])] });
    const text = 'one two three four five six seven eight nine ten';

    // Read raw, several times (the event and the cut race each other inside the gateway)
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) {
      const r = await rawStream(text);
      assert.equal(r.status, 200);
      ids.push(r.id);
      const events = sseData(r.raw);
      const last = events.at(-1);
      assert.ok(last?.startsWith('{"error"'), `run ${i}: the stream's last event is an error event, got ${JSON.stringify(last)}\nwhole body: ${JSON.stringify(r.raw)}`);
      const err = JSON.parse(last!).error;
      assert.equal(err.code, 'stream_interrupted', `run ${i}`);
      assert.equal(typeof err.message, 'string');
      assert.ok(r.cut, `run ${i}: after the error event the connection is cut (no clean end of the body)`);
      assert.ok(!events.includes('[DONE]'), `run ${i}: no [DONE]`);
      const content = events
        .slice(0, -1)
        .map((d) => JSON.parse(d).choices?.[0]?.delta?.content ?? '')
        .join('');
      assert.ok(content.length > 0 && `echo: ${text}`.startsWith(content) && content !== `echo: ${text}`, `run ${i}: partial content before the error: ${JSON.stringify(content)}`);
    }

    // the openai client raises the gateway's error (an APIError with its code), not a connection error
    const { data: stream, response } = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true }).withResponse();
    ids.push(response.headers.get('x-airlock-request-id')!);
    let content = '';
    let thrown: unknown;
    try {
      for await (const c of stream) content += c.choices[0]?.delta.content ?? '';
    } catch (e) {
      thrown = e;
    }
    assert.ok(content.length > 0, 'content reached the client before the break');
    assert.ok(thrown instanceof OpenAI.APIError && !(thrown instanceof OpenAI.APIConnectionError), `the client raised the in-band error, got ${String(thrown)}`);
    assert.equal((thrown as InstanceType<typeof OpenAI.APIError>).code, 'stream_interrupted');
    assert.match((thrown as Error).message, /interrupted/i);

    assert.equal(posts(b), 0, 'never retried elsewhere once the client had content');
    for (const id of ids) {
      const row = await ledgerRow(id);
      assert.equal(row.error_class, 'stream_interrupted');
      assert.equal(row.endpoint, `${p}-a`);
    }
  });
});

// ---------------------------------------------------------------------------------------------

describe('upstream answers and capacity', () => {
  test('slot exhaustion: endpoint at max_concurrency 1 and no slot within queue_timeout_ms → 503 capacity_timeout with retry-after', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    a.setBehavior({ kind: 'hang' });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url, { max_concurrency: 1, first_byte_timeout_ms: 60_000 })],
      models: [model([`${p}-a`])],
      settings: { queue_timeout_ms: 300 },
    });
    const ac = new AbortController();
    const holding = chat('holding the only slot', { signal: ac.signal }).catch((e: unknown) => e);
    t.after(() => ac.abort());
    await eventually(() => a.inflight === 1, 'the first request to hold the slot');

    const id = `pl-${randomUUID()}`;
    const err = await apiError(chat('no slot for me', { id }));
    assert.equal(err.status, 503);
    assert.equal(err.code, 'capacity_timeout');
    assert.equal(err.type, 'server_error');
    assert.match(err.message, new RegExp(`${p}-a`), 'names the endpoint');
    assert.match(err.message, /max_concurrency/);
    const ra = err.headers?.get('retry-after');
    assert.ok(ra && Number(ra) >= 0, `retry-after: ${ra}`);
    assert.equal(posts(a), 1, 'the refused request never reached the upstream');
    const row = await ledgerRow(id);
    assert.equal(row.status, 503);
    assert.equal(row.error_class, 'capacity_timeout');

    ac.abort();
    await holding;
    await eventually(async () => (await endpointInflight(`${p}-a`)) === 0, 'the slot to be freed');
    a.setBehavior({ kind: 'ok' });
    const { data } = await chat('my turn');
    assert.equal(data.choices[0]?.message.content, 'echo: my turn');
  });

  const clientErrors: { status: number; body: string; says: RegExp; cls: new (...args: any[]) => InstanceType<typeof OpenAI.APIError> }[] = [
    // vLLM: a top-level message
    { status: 400, body: JSON.stringify({ object: 'error', message: "This model's maximum context length is 4096 tokens.", type: 'BadRequestError', param: null, code: 400 }), says: /maximum context length is 4096 tokens/, cls: OpenAI.BadRequestError },
    // OpenAI's shape
    { status: 404, body: JSON.stringify({ error: { message: 'The model `test-model` does not exist.', type: 'invalid_request_error', code: 'model_not_found', param: null } }), says: /The model `test-model` does not exist/, cls: OpenAI.NotFoundError },
    // FastAPI validation: detail is a list
    { status: 422, body: JSON.stringify({ detail: [{ loc: ['body', 'temperature'], msg: 'Input should be less than or equal to 2', type: 'less_than_equal' }] }), says: /Input should be less than or equal to 2/, cls: OpenAI.UnprocessableEntityError },
  ];
  for (const c of clientErrors) {
    test(`an upstream ${c.status} is passed through with its status and message, not retried on another target`, async (t) => {
      const p = prefix();
      const a = await upstream(t);
      const b = await upstream(t);
      a.setBehavior({ kind: 'status', status: c.status, body: c.body });
      await configure({ endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)], models: [model([`${p}-a`, `${p}-b`])] });
      const id = `pl-${randomUUID()}`;
      const err = await apiError(chat('refused by the model server', { id }));
      assert.equal(err.status, c.status);
      assert.ok(err instanceof c.cls, `${err.constructor.name}`);
      assert.match(err.message, c.says, 'the upstream’s message reaches the client');
      assert.equal(posts(a), 1);
      assert.equal(posts(b), 0, 'the client’s own mistake is not retried elsewhere');
      const row = await ledgerRow(id);
      assert.equal(row.status, c.status);
      assert.equal(row.endpoint, `${p}-a`);
      assert.equal(row.attempts, 1);
    });
  }

  for (const status of [401, 403]) {
    test(`an upstream ${status} (the endpoint's api_key) becomes a 502 naming the endpoint`, async (t) => {
      const p = prefix();
      const a = await upstream(t);
      a.setBehavior({ kind: 'status', status, body: JSON.stringify({ error: { message: 'Incorrect API key provided', type: 'invalid_request_error', code: 'invalid_api_key', param: null } }) });
      await configure({ endpoints: [endpoint(`${p}-a`, a.url)], models: [model([`${p}-a`])] });
      const id = `pl-${randomUUID()}`;
      const err = await apiError(chat('with a bad upstream key', { id }));
      assert.equal(err.status, 502, 'not the client’s fault: never a 401/403 that would blame the client’s key');
      assert.ok(!(err instanceof OpenAI.AuthenticationError) && !(err instanceof OpenAI.PermissionDeniedError));
      assert.match(err.message, new RegExp(`${p}-a`), 'names the endpoint');
      assert.match(err.message, /Incorrect API key provided/);
      assert.equal(posts(a), 1);
      const row = await ledgerRow(id);
      assert.equal(row.status, 502);
    });
  }

  test('an upstream 408 falls back to the next target, and is retried on a single target', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const b = await upstream(t);
    a.setBehavior({ kind: 'status', status: 408 });
    await configure({ endpoints: [endpoint(`${p}-a`, a.url), endpoint(`${p}-b`, b.url)], models: [model([`${p}-a`, `${p}-b`])] });
    const { data, response } = await chat('timed out first');
    assert.equal(data.choices[0]?.message.content, 'echo: timed out first');
    assert.equal(response.headers.get('x-airlock-endpoint'), `${p}-b`);
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
    assert.deepEqual([posts(a), posts(b)], [1, 1]);

    const q = prefix();
    const c = await upstream(t);
    c.queue({ kind: 'status', status: 408 });
    await configure({ endpoints: [endpoint(`${q}-c`, c.url)], models: [model([`${q}-c`])] });
    const r2 = await chat('retry me');
    assert.equal(r2.data.choices[0]?.message.content, 'echo: retry me');
    assert.equal(r2.response.headers.get('x-airlock-attempts'), '2');
    assert.equal(posts(c), 2);
  });

  const attemptCases: { what: string; targets: number; maxAttempts?: number; expected: number }[] = [
    { what: 'three failing targets, max_attempts 2: two attempts', targets: 3, maxAttempts: 2, expected: 2 },
    { what: 'one failing target, max_attempts 3: three attempts at it', targets: 1, maxAttempts: 3, expected: 3 },
    { what: 'one failing target, max_attempts 1: one attempt', targets: 1, maxAttempts: 1, expected: 1 },
    { what: 'two failing targets, no max_attempts: the default, targets + 1', targets: 2, expected: 3 },
  ];
  for (const c of attemptCases) {
    test(`max_attempts caps the upstream attempts (${c.what})`, async (t) => {
      const p = prefix();
      const ups: TestUpstream[] = [];
      for (let i = 0; i < c.targets; i++) {
        const u = await upstream(t);
        u.setBehavior({ kind: 'status', status: 500 });
        ups.push(u);
      }
      const names = ups.map((_, i) => `${p}-${i}`);
      await configure({
        endpoints: ups.map((u, i) => endpoint(names[i]!, u.url)),
        models: [model(names, c.maxAttempts === undefined ? {} : { max_attempts: c.maxAttempts })],
      });
      const id = `pl-${randomUUID()}`;
      const err = await apiError(chat('fail everywhere', { id }));
      assert.equal(err.status, 502);
      const total = ups.reduce((n, u) => n + posts(u), 0);
      assert.equal(total, c.expected, `upstream attempts: ${ups.map(posts).join('+')}`);
      assert.equal(err.headers?.get('x-airlock-attempts'), String(c.expected));
      assert.equal((await ledgerRow(id)).attempts, c.expected);
    });
  }
});

// ---------------------------------------------------------------------------------------------

describe('clients that leave or read slowly', () => {
  test('a client that disconnects mid-stream frees the slot and aborts the upstream request (ledger 499)', async (t) => {
    const p = prefix();
    const a = await upstream(t);
    const words = Array.from({ length: 400 }, (_, i) => `w${i}`).join(' ');
    // about 400 × 20 ms: the client leaves long before the end
    a.setBehavior({ kind: 'ok', content: words, chunkDelayMs: 20 });
    await configure({
      endpoints: [endpoint(`${p}-a`, a.url, { max_concurrency: 1 })],
      models: [model([`${p}-a`])],
      // if the slot were kept, the next request would be refused after this wait
      settings: { queue_timeout_ms: 2_000 },
    });
    const id = `pl-${randomUUID()}`;
    const stream = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'talk' }], stream: true }, { headers: { 'x-request-id': id } });
    let content = '';
    let chunks = 0;
    for await (const c of stream) {
      content += c.choices[0]?.delta.content ?? '';
      if (++chunks === 6) break; // leaving the loop aborts the request
    }
    assert.ok(words.startsWith(content) && content.length > 0, `partial content: ${content}`);
    await eventually(() => a.aborted === 1 && a.inflight === 0, 'the upstream request to be aborted');
    await eventually(async () => (await endpointInflight(`${p}-a`)) === 0, 'the slot to be freed');
    const row = await ledgerRow(id);
    assert.equal(row.status, 499);

    // the single slot serves the next request (a stream, read to its end)
    a.setBehavior({ kind: 'ok', content: 'next one' });
    const s2 = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'me next' }], stream: true });
    let c2 = '';
    for await (const c of s2) c2 += c.choices[0]?.delta.content ?? '';
    assert.equal(c2, 'next one');
  });

  test('a client that reads a long stream slowly: the upstream is slowed (backpressure), the gateway buffers little and its RSS stays bounded', async (t) => {
    const CAP = 96 * 1024 * 1024;
    const hose = await startFirehose({ capBytes: CAP });
    t.after(() => hose.close());
    const p = prefix();
    await configure({ endpoints: [endpoint(`${p}-hose`, hose.url)], models: [{ name: 'chat', targets: [{ endpoint: `${p}-hose`, model: 'hose-model' }] }] });
    const pid = gw.proc.pid!;
    // warm up: a short stream read at full speed
    const warm = await rawStream('warm up', { max_tokens: 16 });
    assert.ok(warm.raw.endsWith('data: [DONE]\n\n'), 'the warm-up stream finished');
    const baseline = procStatus(pid).rssKiB;

    const { port } = new URL(gw.dataUrl);
    const body = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'a long one, slowly' }], stream: true });
    let received = 0;
    let maxAhead = 0;
    let peakRss = baseline;
    let blockedSeen = 0;
    let events = 0;
    let tail = '';
    let head = '';
    const sock = net.connect(Number(port), '127.0.0.1');
    t.after(() => sock.destroy());
    await new Promise<void>((resolve, reject) => {
      const safety = setTimeout(() => reject(new Error(`the slow read did not finish (received ${received} bytes)`)), 240_000);
      sock.on('error', reject);
      sock.on('connect', () =>
        sock.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nAuthorization: Bearer ${TEST_KEY}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`),
      );
      sock.on('data', (d: Buffer) => {
        received += d.length;
        if (head.length < 512) head += d.toString('latin1');
        tail = (tail + d.toString('latin1')).slice(-64);
        maxAhead = Math.max(maxAhead, hose.written - received);
        if (hose.blocked) blockedSeen++;
        if (++events % 64 === 0) peakRss = Math.max(peakRss, procStatus(pid).rssKiB);
        // the slow reader: a pause after every read
        sock.pause();
        setTimeout(() => sock.resume(), 3);
      });
      sock.on('end', () => {
        clearTimeout(safety);
        resolve();
      });
    });
    peakRss = Math.max(peakRss, procStatus(pid).rssKiB);
    const MiB = 1024 * 1024;
    console.log(
      `# slow client: ${(received / MiB).toFixed(1)} MiB in ${events} reads; upstream ahead of the client by at most ${(maxAhead / MiB).toFixed(1)} MiB; upstream blocked at ${blockedSeen} reads, ${hose.drains} drains; RSS ${(baseline / 1024).toFixed(0)} → peak ${(peakRss / 1024).toFixed(0)} MiB`,
    );
    assert.match(head, /^HTTP\/1\.1 200/);
    assert.ok(tail.includes('data: [DONE]'), `the whole stream arrived: ${JSON.stringify(tail)}`);
    assert.ok(received >= CAP, `received ${received} of ${CAP} bytes`);
    assert.equal(hose.finished, 2, 'the upstream finished its stream (and the warm-up one)');
    assert.ok(blockedSeen > 0 && hose.drains > 0, 'the upstream had to wait for the gateway, which waited for the client');
    // kernel socket buffers (two loopback connections) hold some MiB; a gateway that buffered the
    // upstream without limit would be ~the whole 96 MiB ahead
    assert.ok(maxAhead < 40 * MiB, `the upstream was at most ${(maxAhead / MiB).toFixed(1)} MiB ahead of the slow client`);
    assert.ok((peakRss - baseline) / 1024 < 64, `gateway RSS grew ${((peakRss - baseline) / 1024).toFixed(1)} MiB`);
  });
});

// ---------------------------------------------------------------------------------------------

describe('streamed answers in every upstream SSE format', () => {
  const ALL: SSEShape = { spaced: true, crlf: true, done: false, comments: true, usageInLastChunk: true, noSpaceAfterData: true };
  const formats: [string, SSEShape][] = [
    ['compact JSON (the default), usage in its own chunk', {}],
    ['JSON with spaces after colons and commas (Python servers)', { spaced: true }],
    ['CRLF line ends', { crlf: true }],
    ['no [DONE]', { done: false }],
    ['comment lines', { comments: true }],
    ['usage in the last content chunk', { usageInLastChunk: true }],
    ['"data:" without a space', { noSpaceAfterData: true }],
    ['spaced JSON and no [DONE]', { spaced: true, done: false }],
    ['usage in the last content chunk and no [DONE]', { usageInLastChunk: true, done: false }],
    ['all at once: spaced, CRLF, comments, usage in the last chunk, "data:" without a space, no [DONE]', ALL],
  ];
  const CONTENT = 'the quick brown fox jumps over the lazy dog';

  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
    const p = prefix();
    await configure({ endpoints: [endpoint(`${p}-a`, up.url)], models: [model([`${p}-a`])] });
  });
  after(async () => {
    await up?.close();
  });

  /** Read a chat stream through the openai client: what went wrong, as a list (empty: all well). */
  async function checkChat(how: string, sse: SSEShape, wantUsage: boolean): Promise<string[]> {
    const problems: string[] = [];
    const text = `format check ${how}`;
    const { data: stream, response } = await client.chat.completions
      .create({ model: 'chat', messages: [{ role: 'user', content: text }], stream: true, ...(wantUsage ? { stream_options: { include_usage: true } } : {}) })
      .withResponse();
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    try {
      for await (const c of stream) chunks.push(c);
    } catch (e) {
      problems.push(`${how}: the stream failed after ${chunks.length} chunks: ${(e as Error).message}`);
    }
    const got = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    if (got !== CONTENT) problems.push(`${how}: the client got ${JSON.stringify(got)}, not the whole text`);
    const finish = chunks.findLast((c) => c.choices[0]?.finish_reason)?.choices[0]?.finish_reason;
    if (finish !== 'stop') problems.push(`${how}: finish reason ${String(finish)}`);
    const sent = up.completions().at(-1)!;
    if (sent.body.stream_options?.include_usage !== true) problems.push(`${how}: the gateway did not ask the upstream for usage`);
    const usage = { prompt_tokens: promptTokensFor('chat', sent.body), completion_tokens: completionTokensFor(CONTENT) };
    const withUsage = chunks.filter((c) => c.usage);
    if (wantUsage) {
      if (withUsage.length !== 1) problems.push(`${how}: ${withUsage.length} chunks carry usage, not 1`);
      else if (withUsage[0]!.usage!.prompt_tokens !== usage.prompt_tokens || withUsage[0]!.usage!.completion_tokens !== usage.completion_tokens)
        problems.push(`${how}: the client's usage ${JSON.stringify(withUsage[0]!.usage)} is not the upstream's ${JSON.stringify(usage)}`);
    } else {
      const usageOnly = chunks.filter((c) => c.choices.length === 0);
      if (usageOnly.length) problems.push(`${how}: a usage chunk the client did not ask for reached it: ${JSON.stringify(usageOnly)}`);
      // usage inside the last content chunk cannot be removed without rewriting that event: only a usage-only chunk is a leak
      else if (!sse.usageInLastChunk && withUsage.length) problems.push(`${how}: usage reached a client that did not ask for it: ${JSON.stringify(withUsage)}`);
    }
    const row = await ledgerRow(response.headers.get('x-airlock-request-id')!);
    if (row.status !== 200 || row.error_class !== null) problems.push(`${how}: ledger status ${row.status}, error_class ${row.error_class}`);
    if (row.estimated !== false) problems.push(`${how}: ledger row estimated (the upstream's usage was not read)`);
    if (row.prompt_tokens !== usage.prompt_tokens || row.completion_tokens !== usage.completion_tokens)
      problems.push(`${how}: ledger tokens ${row.prompt_tokens}/${row.completion_tokens}, the upstream said ${usage.prompt_tokens}/${usage.completion_tokens}`);
    return problems;
  }

  for (const [what, sse] of formats) {
    test(`chat stream, ${what}: full text, no usage chunk the client did not ask for, exact tokens in the ledger`, async () => {
      const problems: string[] = [];
      // in one burst (the whole answer in one read) and paced (events arrive one by one);
      // the client not asking for usage, then asking
      for (const pace of [0, 3]) {
        up.setBehavior({ kind: 'ok', content: CONTENT, chunkDelayMs: pace, sse });
        const how = pace ? `paced ${pace} ms per chunk` : 'in one burst';
        problems.push(...(await checkChat(how, sse, false)));
        problems.push(...(await checkChat(`${how}, usage asked`, sse, true)));
      }
      assert.deepEqual(problems, [], `upstream format: ${JSON.stringify(sse)}`);
    });
  }

  test('CRLF line ends written one byte at a time: the client gets the upstream\'s bytes exactly, down to the LF after [DONE]', async () => {
    const read = async (wantUsage: boolean) => {
      up.setBehavior({ kind: 'ok', content: CONTENT, sse: { crlf: true, byteWrites: true } });
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'byte by byte' }], stream: true, ...(wantUsage ? { stream_options: { include_usage: true } } : {}) }),
      });
      assert.equal(res.status, 200);
      const got = Buffer.from(await res.arrayBuffer()).toString('latin1');
      const sent = up.completions().at(-1)!.streamed!;
      return { got, sent };
    };
    // the client asked for usage too: nothing is cut, so every byte is the upstream's
    const all = await read(true);
    assert.ok(all.sent.endsWith('data: [DONE]\r\n\r\n') && all.sent.length > 200, JSON.stringify(all.sent.slice(-40)));
    assert.equal(JSON.stringify(all.got.slice(-20)), JSON.stringify(all.sent.slice(-20)), 'the end of the stream');
    assert.equal(all.got, all.sent);
    // without usage the usage chunk the gateway asked for is cut out, and nothing else
    const cut = await read(false);
    const usageEvent = /data: \{[^\r\n]*"choices":\[\][^\r\n]*"usage"[^\r\n]*\r\n\r\n/.exec(cut.sent);
    assert.ok(usageEvent, 'the upstream sent its usage chunk');
    assert.equal(cut.got, cut.sent.replace(usageEvent[0], ''));
  });

  test('completions stream in the all-at-once format: full text, no usage chunk, exact tokens in the ledger', async () => {
    up.setBehavior({ kind: 'ok', content: CONTENT, sse: ALL });
    const problems: string[] = [];
    const { data: stream, response } = await client.completions.create({ model: 'chat', prompt: 'complete this', stream: true }).withResponse();
    const chunks: OpenAI.Completions.Completion[] = [];
    try {
      for await (const c of stream) chunks.push(c);
    } catch (e) {
      problems.push(`the stream failed after ${chunks.length} chunks: ${(e as Error).message}`);
    }
    const got = chunks.map((c) => c.choices[0]?.text ?? '').join('');
    if (got !== CONTENT) problems.push(`the client got ${JSON.stringify(got)}, not the whole text`);
    const usageOnly = chunks.filter((c) => c.choices.length === 0);
    if (usageOnly.length) problems.push(`a usage chunk the client did not ask for reached it: ${JSON.stringify(usageOnly)}`);
    const sent = up.completions().at(-1)!;
    const usage = { prompt_tokens: promptTokensFor('completions', sent.body), completion_tokens: completionTokensFor(CONTENT) };
    const row = await ledgerRow(response.headers.get('x-airlock-request-id')!);
    if (row.status !== 200 || row.error_class !== null) problems.push(`ledger status ${row.status}, error_class ${row.error_class}`);
    if (row.estimated !== false) problems.push(`ledger row estimated (the upstream's usage was not read)`);
    if (row.prompt_tokens !== usage.prompt_tokens || row.completion_tokens !== usage.completion_tokens)
      problems.push(`ledger tokens ${row.prompt_tokens}/${row.completion_tokens}, the upstream said ${usage.prompt_tokens}/${usage.completion_tokens}`);
    assert.deepEqual(problems, [], `upstream format: ${JSON.stringify(ALL)}`);
  });
});
