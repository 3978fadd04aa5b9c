// The data plane's OpenAI compatibility and error contract, seen through the official `openai`
// client against the real gateway process and the simulated upstream.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import OpenAI from 'openai';
import { ADMIN_TOKEN, TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import {
  TOOL_ARGUMENTS,
  completionTokensFor,
  embeddingFor,
  promptTokensFor,
  startUpstream,
  type RecordedRequest,
  type TestUpstream,
} from '../helpers/upstream.js';

const CHAT_UPSTREAM = 'meta-llama/Llama-3.1-8B-Instruct';
const EMBED_UPSTREAM = 'bge-small-en-v1.5';
const LIMITED_KEY = 'sk-airlock-test-key-limited-00000000000002';
const DISABLED_KEY = 'sk-airlock-test-key-disabled-0000000000003';
const EXPIRED_KEY = 'sk-airlock-test-key-expired-00000000000004';
const PRICE = { input_per_million: 1000, output_per_million: 3000 };
const EMBED_PRICE = { input_per_million: 50, output_per_million: 0 };

function config(upstreamUrl: string, extra: Record<string, unknown> = {}) {
  return {
    endpoints: [{ name: 'gpu-1', base_url: upstreamUrl, health_check: { enabled: true, interval_ms: 60_000 } }],
    models: [
      { name: 'chat', targets: [{ endpoint: 'gpu-1', model: CHAT_UPSTREAM }], price: PRICE },
      { name: 'embed', targets: [{ endpoint: 'gpu-1', model: EMBED_UPSTREAM }], price: EMBED_PRICE },
    ],
    teams: [{ name: 'research' }, { name: 'ops' }],
    keys: [
      { name: 'notebook-app', key: TEST_KEY, team: 'research' },
      { name: 'ops-bot', key: LIMITED_KEY, team: 'ops', models: ['chat'] },
      { name: 'old-app', key: DISABLED_KEY, team: 'research', disabled: true },
      { name: 'trial-app', key: EXPIRED_KEY, team: 'research', expires_at: '2020-01-01T00:00:00Z' },
    ],
    // failures provoked on purpose below must not open the breaker for the tests after them
    settings: { breaker: { failure_threshold: 1000, cooldown_ms: 300 } },
    ...extra,
  };
}

function client(gw: RunningGateway, apiKey = TEST_KEY): OpenAI {
  return new OpenAI({ apiKey, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });
}

/** The error the promise rejects with; fails the test if it resolves or throws something else. */
async function apiError(p: PromiseLike<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  assert.fail('expected the request to fail with an API error');
}

function requestIdOf(e: InstanceType<typeof OpenAI.APIError>): string {
  const id = e.headers?.get('x-airlock-request-id');
  assert.ok(id, `error ${e.status} carries x-airlock-request-id`);
  return id;
}

type LedgerRow = Record<string, any>;

/** The ledger row of a request, through the admin API (rows are written off the hot path). */
async function ledgerRow(gw: RunningGateway, requestId: string, limit = 5): Promise<LedgerRow> {
  return eventually(async () => {
    const r = await gw.admin<{ data: LedgerRow[] }>('GET', `/usage/requests?limit=${limit}`);
    assert.equal(r.status, 200);
    return r.body.data.find((row) => row.request_id === requestId);
  }, `ledger row of ${requestId}`);
}

function lastCompletion(up: TestUpstream): RecordedRequest {
  const all = up.completions();
  const r = all[all.length - 1];
  assert.ok(r, 'the upstream received a request');
  return r;
}

describe('data plane (shared gateway)', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let ai: OpenAI;

  before(async () => {
    up = await startUpstream({ models: [CHAT_UPSTREAM, EMBED_UPSTREAM] });
    gw = await startGateway({ config: config(up.url) });
    ai = client(gw);
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('chat, non-streaming: alias mapped to the upstream model, content and routing headers returned', async () => {
    up.setBehavior({ kind: 'ok' });
    const before = up.completions().length;
    const { data, response } = await ai.chat.completions
      .create({ model: 'chat', messages: [{ role: 'user', content: 'hello gateway' }] })
      .withResponse();
    assert.equal(up.completions().length, before + 1);
    const sent = lastCompletion(up);
    assert.equal(sent.path, '/v1/chat/completions');
    assert.equal(sent.body.model, CHAT_UPSTREAM, 'the alias is replaced by the target model name');
    assert.equal(data.choices[0]?.message.content, 'echo: hello gateway');
    assert.equal(data.choices[0]?.finish_reason, 'stop');
    assert.equal(data.usage?.prompt_tokens, promptTokensFor('chat', sent.body));
    assert.ok(response.headers.get('x-airlock-request-id'));
    assert.equal(response.headers.get('x-airlock-endpoint'), 'gpu-1');
    assert.equal(response.headers.get('x-airlock-attempts'), '1');
  });

  test('chat, streaming: content passes through, usage is asked upstream but only forwarded when the client asked', async () => {
    up.setBehavior({ kind: 'ok', content: 'one two three four five' });
    // The client does not ask for usage.
    const { data: stream, response } = await ai.chat.completions
      .create({ model: 'chat', messages: [{ role: 'user', content: 'count to five' }], stream: true })
      .withResponse();
    const chunks: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const c of stream) chunks.push(c);
    const text = chunks.map((c) => c.choices[0]?.delta.content ?? '').join('');
    assert.equal(text, 'one two three four five');
    assert.ok(chunks.length > 0);
    assert.ok(
      chunks.every((c) => c.choices.length > 0 && !c.usage),
      'no usage-only chunk reaches a client that did not ask for it',
    );
    assert.equal(chunks.at(-1)?.choices[0]?.finish_reason, 'stop');
    assert.equal(response.headers.get('x-airlock-endpoint'), 'gpu-1');
    const sent = lastCompletion(up);
    assert.equal(sent.body.model, CHAT_UPSTREAM);
    assert.equal(sent.body.stream, true);
    assert.equal(sent.body.stream_options?.include_usage, true, 'the gateway asks the upstream for usage');
    const id = response.headers.get('x-airlock-request-id');
    assert.ok(id);
    const row = await ledgerRow(gw, id);
    assert.equal(row.prompt_tokens, promptTokensFor('chat', sent.body));
    assert.equal(row.completion_tokens, completionTokensFor('one two three four five'));
    assert.equal(row.estimated, false);
    assert.equal(row.stream, true);
    assert.equal(row.status, 200);

    // The client asks for usage: it gets the usage chunk, with the upstream's numbers.
    const s2 = await ai.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'count to five' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks2: OpenAI.Chat.ChatCompletionChunk[] = [];
    for await (const c of s2) chunks2.push(c);
    const sent2 = lastCompletion(up);
    assert.deepEqual(sent2.body.stream_options, { include_usage: true });
    const usageChunks = chunks2.filter((c) => c.usage);
    assert.equal(usageChunks.length, 1, 'exactly one usage chunk');
    assert.deepEqual(usageChunks[0]!.choices, []);
    assert.equal(usageChunks[0]!.usage!.prompt_tokens, promptTokensFor('chat', sent2.body));
    assert.equal(usageChunks[0]!.usage!.completion_tokens, completionTokensFor('one two three four five'));
    assert.equal(chunks2.map((c) => c.choices[0]?.delta.content ?? '').join(''), 'one two three four five');
    up.setBehavior({ kind: 'ok' });
  });

  test('stream without usage from the upstream: the ledger row is estimated', async () => {
    up.setBehavior({ kind: 'ok', usage: false, content: 'alpha beta gamma delta epsilon zeta' });
    try {
      const { data: stream, response } = await ai.chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content: 'tell me the first six greek letters, please' }], stream: true })
        .withResponse();
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      assert.equal(text, 'alpha beta gamma delta epsilon zeta');
      const row = await ledgerRow(gw, response.headers.get('x-airlock-request-id')!);
      assert.equal(row.estimated, true);
      assert.ok(row.prompt_tokens > 0, `prompt tokens estimated (${row.prompt_tokens})`);
      assert.ok(row.completion_tokens > 0, `completion tokens estimated (${row.completion_tokens})`);
      assert.equal(row.status, 200);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('pass-through: tools and tool_calls (non-streamed and streamed), response_format, n, stop, seed and unknown fields', async () => {
    up.setBehavior({ kind: 'ok' });
    const tools: OpenAI.Chat.ChatCompletionTool[] = [
      {
        type: 'function',
        function: { name: 'lookup', description: 'look something up', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } },
      },
    ];
    const messages: OpenAI.Chat.ChatCompletionMessageParam[] = [
      { role: 'system', content: 'you are terse' },
      { role: 'user', content: 'please use tool lookup' },
    ];

    // non-streamed
    const res = await ai.chat.completions.create({ model: 'chat', messages, tools, tool_choice: 'auto' });
    const call = res.choices[0]?.message.tool_calls?.[0];
    assert.ok(call && call.type === 'function', 'the client gets a tool call');
    assert.equal(call.function.name, 'lookup');
    assert.equal(call.function.arguments, TOOL_ARGUMENTS);
    assert.equal(res.choices[0]?.finish_reason, 'tool_calls');
    let sent = lastCompletion(up);
    assert.deepEqual(sent.body, { model: CHAT_UPSTREAM, messages, tools, tool_choice: 'auto' }, 'tools arrive unchanged');

    // streamed: the tool-call deltas reassemble
    const stream = await ai.chat.completions.create({ model: 'chat', messages, tools, stream: true });
    let name = '';
    let args = '';
    let id = '';
    let finish: string | null | undefined;
    for await (const c of stream) {
      const ch = c.choices[0];
      if (!ch) continue;
      for (const tc of ch.delta.tool_calls ?? []) {
        if (tc.id) id = tc.id;
        name += tc.function?.name ?? '';
        args += tc.function?.arguments ?? '';
      }
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    assert.ok(id, 'the streamed tool call has an id');
    assert.equal(name, 'lookup');
    assert.equal(args, TOOL_ARGUMENTS);
    assert.equal(finish, 'tool_calls');
    sent = lastCompletion(up);
    assert.deepEqual(sent.body.tools, tools);

    // other OpenAI parameters and a vendor extension the gateway does not know
    const extra = {
      response_format: { type: 'json_object' },
      n: 2,
      stop: ['\n\n', 'END'],
      seed: 42,
      temperature: 0.3,
      x_vendor_flag: { nested: [1, 'two', true], note: 'keep me' },
    };
    const body = { model: 'chat', messages: [{ role: 'user', content: 'reply in JSON' }], ...extra } as unknown as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming;
    const res2 = await ai.chat.completions.create(body);
    assert.equal(res2.choices.length, 2, 'n=2 gives two choices');
    sent = lastCompletion(up);
    assert.deepEqual(sent.body, { ...body, model: CHAT_UPSTREAM }, 'everything but the model name arrives unchanged');

    // the same through a stream: only stream_options is added
    const streamBody = { ...body, n: 1, stream: true } as unknown as OpenAI.Chat.ChatCompletionCreateParamsStreaming;
    const s2 = await ai.chat.completions.create(streamBody);
    for await (const _ of s2) {
      /* drain */
    }
    sent = lastCompletion(up);
    assert.deepEqual(sent.body, { ...streamBody, model: CHAT_UPSTREAM, stream_options: { include_usage: true } });
  });

  test('completions (non-streamed and streamed) and embeddings', async () => {
    up.setBehavior({ kind: 'ok' });
    const { data: c, response } = await ai.completions.create({ model: 'chat', prompt: 'once upon a time', max_tokens: 16 }).withResponse();
    assert.equal(c.choices[0]?.text, 'echo: once upon a time');
    assert.equal(response.headers.get('x-airlock-endpoint'), 'gpu-1');
    let sent = lastCompletion(up);
    assert.equal(sent.path, '/v1/completions');
    assert.equal(sent.body.model, CHAT_UPSTREAM);
    assert.equal(sent.body.max_tokens, 16);
    assert.equal(c.usage?.prompt_tokens, promptTokensFor('completions', sent.body));

    const s = await ai.completions.create({ model: 'chat', prompt: 'the quick brown fox', stream: true });
    let text = '';
    let finish: string | null | undefined;
    for await (const ch of s) {
      text += ch.choices[0]?.text ?? '';
      if (ch.choices[0]?.finish_reason) finish = ch.choices[0].finish_reason;
    }
    assert.equal(text, 'echo: the quick brown fox');
    assert.equal(finish, 'stop');
    sent = lastCompletion(up);
    assert.equal(sent.path, '/v1/completions');
    assert.equal(sent.body.stream, true);

    const { data: e, response: er } = await ai.embeddings.create({ model: 'embed', input: ['first text', 'second text'] }).withResponse();
    sent = lastCompletion(up);
    assert.equal(sent.path, '/v1/embeddings');
    assert.equal(sent.body.model, EMBED_UPSTREAM);
    assert.equal(er.headers.get('x-airlock-endpoint'), 'gpu-1');
    assert.equal(e.data.length, 2);
    for (const [i, input] of ['first text', 'second text'].entries()) {
      const got = e.data[i]!.embedding;
      const want = embeddingFor(input);
      assert.equal(got.length, want.length);
      got.forEach((v, j) => assert.ok(Math.abs(v - want[j]!) < 1e-6, `embedding[${i}][${j}] ${v} ≈ ${want[j]}`));
    }
    assert.equal(e.usage.prompt_tokens, promptTokensFor('embeddings', sent.body));
  });

  test('GET /v1/models lists only the models the key may use', async () => {
    const all = [];
    for await (const m of ai.models.list()) all.push(m.id);
    assert.deepEqual(all.sort(), ['chat', 'embed']);
    const limited = [];
    for await (const m of client(gw, LIMITED_KEY).models.list()) limited.push(m.id);
    assert.deepEqual(limited, ['chat']);
    const e = await apiError(client(gw, 'sk-airlock-nobody-000000000000000000000000').models.list());
    assert.ok(e instanceof OpenAI.AuthenticationError);
    requestIdOf(e);
  });

  test('errors: authentication and authorization (401, 403) and unknown model (404)', async () => {
    const before = up.completions().length;
    const chat = (c: OpenAI, model = 'chat', opts?: OpenAI.RequestOptions) => c.chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }, opts);

    const missing = await apiError(chat(ai, 'chat', { headers: { Authorization: null } }));
    assert.ok(missing instanceof OpenAI.AuthenticationError);
    assert.equal(missing.status, 401);
    assert.match(missing.message, /missing/i);
    requestIdOf(missing);

    // an Authorization header that is there but not "Bearer <key>" is a malformed key, said so
    for (const value of [`Bearer ${TEST_KEY} extra`, TEST_KEY, `Basic ${Buffer.from('a:b').toString('base64')}`]) {
      const r = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: value, 'content-type': 'application/json' }, body: '{"model":"chat","messages":[{"role":"user","content":"hi"}]}' });
      const body = (await r.json()) as { error: { code: string; message: string } };
      assert.equal(r.status, 401, value);
      assert.equal(body.error.code, 'invalid_api_key', value);
      assert.match(body.error.message, /the Authorization header must be "Bearer <key>"/, value);
    }
    // a body with a __proto__ key: refused, saying why (it is valid JSON)
    const proto = await fetch(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' }, body: '{"model":"chat","messages":[{"role":"user","content":"hi"}],"__proto__":{"x":1}}' });
    assert.equal(proto.status, 400);
    assert.match(((await proto.json()) as { error: { message: string } }).error.message, /"__proto__" or "constructor.prototype" key, which is refused/);

    const unknown = await apiError(chat(client(gw, 'sk-airlock-unknown-key-00000000000000000000')));
    assert.ok(unknown instanceof OpenAI.AuthenticationError);
    assert.match(unknown.message, /invalid|unknown|no such/i);
    assert.doesNotMatch(unknown.message, /notebook-app|ops-bot/, 'does not reveal other keys');
    requestIdOf(unknown);

    const disabled = await apiError(chat(client(gw, DISABLED_KEY)));
    assert.ok(disabled instanceof OpenAI.AuthenticationError);
    assert.match(disabled.message, /disabled/i);
    requestIdOf(disabled);

    const expired = await apiError(chat(client(gw, EXPIRED_KEY)));
    assert.ok(expired instanceof OpenAI.AuthenticationError);
    assert.match(expired.message, /expired/i);
    requestIdOf(expired);

    // x-api-key works as well as Bearer
    const viaHeader = await chat(ai, 'chat', { headers: { Authorization: null, 'x-api-key': TEST_KEY } });
    assert.ok(viaHeader.choices[0]?.message.content);

    const denied = await apiError(chat(client(gw, LIMITED_KEY), 'embed'));
    assert.ok(denied instanceof OpenAI.PermissionDeniedError);
    assert.equal(denied.status, 403);
    assert.match(denied.message, /embed/);
    requestIdOf(denied);

    const nf = await apiError(chat(ai, 'no-such-model'));
    assert.ok(nf instanceof OpenAI.NotFoundError);
    assert.equal(nf.status, 404);
    assert.match(nf.message, /no-such-model/);
    assert.equal(nf.param, 'model');
    requestIdOf(nf);

    assert.equal(up.completions().length, before + 1, 'only the authorized request reached the upstream');
  });

  test('errors: body validation names the field (400), malformed JSON gets an OpenAI-shaped 400', async () => {
    const before = up.completions().length;
    const create = (body: unknown) => ai.chat.completions.create(body as OpenAI.Chat.ChatCompletionCreateParamsNonStreaming);

    const noMessages = await apiError(create({ model: 'chat' }));
    assert.ok(noMessages instanceof OpenAI.BadRequestError);
    assert.equal(noMessages.param, 'messages');
    assert.match(noMessages.message, /messages/);
    requestIdOf(noMessages);

    const notArray = await apiError(create({ model: 'chat', messages: 'hello' }));
    assert.ok(notArray instanceof OpenAI.BadRequestError);
    assert.equal(notArray.param, 'messages');

    const noRole = await apiError(create({ model: 'chat', messages: [{ role: 'user', content: 'a' }, { content: 'b' }] }));
    assert.ok(noRole instanceof OpenAI.BadRequestError);
    assert.equal(noRole.param, 'messages[1].role');

    const badRole = await apiError(create({ model: 'chat', messages: [{ role: 7, content: 'a' }] }));
    assert.ok(badRole instanceof OpenAI.BadRequestError);
    assert.equal(badRole.param, 'messages[0].role');

    const noModel = await apiError(create({ messages: [{ role: 'user', content: 'a' }] }));
    assert.ok(noModel instanceof OpenAI.BadRequestError);
    assert.equal(noModel.param, 'model');

    const noInput = await apiError(ai.embeddings.create({ model: 'embed' } as unknown as OpenAI.EmbeddingCreateParams));
    assert.ok(noInput instanceof OpenAI.BadRequestError);
    assert.equal(noInput.param, 'input');

    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: '{"model": "chat", "messages": [{"role": "user", "content": "hi"}',
    });
    assert.equal(res.status, 400);
    assert.match(res.headers.get('content-type') ?? '', /application\/json/);
    assert.ok(res.headers.get('x-airlock-request-id'), 'malformed JSON response carries x-airlock-request-id');
    const j = (await res.json()) as { error: Record<string, unknown> };
    assert.deepEqual(Object.keys(j.error).sort(), ['code', 'message', 'param', 'type']);
    assert.equal(typeof j.error.message, 'string');
    assert.match(j.error.message as string, /JSON/);
    assert.equal(j.error.type, 'invalid_request_error');
    // Refused before the pipeline, yet still in the ledger, attributed to the caller's key.
    const refused = await ledgerRow(gw, res.headers.get('x-airlock-request-id')!);
    assert.equal(refused.status, 400);
    assert.equal(refused.error_class, 'invalid_json');
    assert.equal(refused.key_name, 'notebook-app');

    assert.equal(up.completions().length, before, 'nothing invalid reached the upstream');
  });

  test('errors: upstream 429 on the only target → 429 with retry-after; upstream 500 everywhere → 502 naming endpoint and failure', async () => {
    // retry-after above the gateway's cap (5 s by default): not waited for, passed on to the client
    up.setBehavior({ kind: 'status', status: 429, retryAfter: '30' });
    try {
      const e = await apiError(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }));
      assert.ok(e instanceof OpenAI.RateLimitError);
      assert.equal(e.status, 429);
      const ra = Number(e.headers?.get('retry-after'));
      assert.ok(Number.isFinite(ra) && ra > 0 && ra <= 30, `retry-after header (${e.headers?.get('retry-after')}) passes on the upstream's 30 s`);
      requestIdOf(e);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }

    up.setBehavior({ kind: 'status', status: 500 });
    try {
      const before = up.completions().length;
      const e = await apiError(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }));
      assert.ok(e instanceof OpenAI.InternalServerError);
      assert.equal(e.status, 502);
      assert.match(e.message, /gpu-1/, 'names the endpoint');
      assert.match(e.message, /500/, 'names the failure');
      const id = requestIdOf(e);
      assert.ok(up.completions().length > before, 'the upstream was tried');
      const row = await ledgerRow(gw, id);
      assert.equal(row.status, 502);
      assert.ok(row.attempts >= 1);
      assert.ok(row.error_class, 'the ledger row says why');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }

    // and the gateway serves normally again
    const ok = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'back?' }] });
    assert.equal(ok.choices[0]?.message.content, 'echo: back?');
  });

  test('GET /healthz, /readyz and /metrics (Prometheus) with requests counted by model', async () => {
    const h = await fetch(`${gw.dataUrl}/healthz`);
    assert.equal(h.status, 200);
    const r = await fetch(`${gw.dataUrl}/readyz`);
    assert.equal(r.status, 200);

    const scrape = async () => {
      // metrics show usage per team: a scraper authenticates with an admin API token (AIRLOCK_ADMIN_TOKEN here)
      const m = await fetch(`${gw.dataUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
      assert.equal(m.status, 200);
      assert.match(m.headers.get('content-type') ?? '', /^text\/plain/);
      const text = await m.text();
      assert.match(text, /^# TYPE airlock_requests_total counter$/m);
      return (model: string) => {
        let sum = 0;
        for (const line of text.split('\n')) {
          if (!line.startsWith('airlock_requests_total{') || !line.includes(`model="${model}"`) || !line.includes('status="200"')) continue;
          sum += Number(line.slice(line.lastIndexOf(' ') + 1));
        }
        return sum;
      };
    };
    const before = await scrape();
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'count me' }] });
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'count me again' }] });
    await ai.embeddings.create({ model: 'embed', input: 'count me too' });
    // the counter is bumped after the response is written: poll
    await eventually(async () => {
      const after = await scrape();
      return after('chat') === before('chat') + 2 && after('embed') === before('embed') + 1;
    }, 'airlock_requests_total to count 2 chat and 1 embed requests');
  });
});

describe('data plane with its own gateway', () => {
  test('attribution: user, session, team and app land in the ledger; usage aggregates tokens and cost', async () => {
    const up = await startUpstream({ models: [CHAT_UPSTREAM, EMBED_UPSTREAM] });
    let gw: RunningGateway | undefined;
    try {
      gw = await startGateway({ config: config(up.url) });
      const ai = client(gw);
      const ops = client(gw, LIMITED_KEY);
      type Expect = { id: string; team: string; user: string; model: string; prompt: number; completion: number; price: typeof PRICE };
      const expected: Expect[] = [];

      // 1: end user from the body, session from the header
      const r1 = await ai.chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content: 'what is a ledger' }], user: 'alice' }, { headers: { 'x-airlock-session': 'wf-1' } })
        .withResponse();
      const b1 = lastCompletion(up).body;
      assert.equal(b1.user, 'alice', 'the user field is passed on too');
      expected.push({ id: r1.response.headers.get('x-airlock-request-id')!, team: 'research', user: 'alice', model: 'chat', prompt: promptTokensFor('chat', b1), completion: completionTokensFor('echo: what is a ledger'), price: PRICE });

      // 2: end user from x-airlock-user, streamed
      const r2 = await ai.chat.completions
        .create({ model: 'chat', messages: [{ role: 'user', content: 'stream it please' }], stream: true }, { headers: { 'x-airlock-user': 'bob', 'x-airlock-session': 'wf-2' } })
        .withResponse();
      for await (const _ of r2.data) {
        /* drain */
      }
      expected.push({ id: r2.response.headers.get('x-airlock-request-id')!, team: 'research', user: 'bob', model: 'chat', prompt: promptTokensFor('chat', lastCompletion(up).body), completion: completionTokensFor('echo: stream it please'), price: PRICE });

      // 3: another team's key
      const r3 = await ops.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'ops question here' }], user: 'carol' }).withResponse();
      expected.push({ id: r3.response.headers.get('x-airlock-request-id')!, team: 'ops', user: 'carol', model: 'chat', prompt: promptTokensFor('chat', lastCompletion(up).body), completion: completionTokensFor('echo: ops question here'), price: PRICE });

      // 4: embeddings, same user as 1
      const r4 = await ai.embeddings.create({ model: 'embed', input: 'embed this sentence', user: 'alice' }).withResponse();
      expected.push({ id: r4.response.headers.get('x-airlock-request-id')!, team: 'research', user: 'alice', model: 'embed', prompt: promptTokensFor('embeddings', lastCompletion(up).body), completion: 0, price: EMBED_PRICE });

      // the rows, newest first
      const rows = await eventually(async () => {
        const r = await gw!.admin<{ data: LedgerRow[] }>('GET', '/usage/requests?limit=5');
        return r.body.data.length === 4 ? r.body.data : undefined;
      }, 'four ledger rows');
      assert.deepEqual(rows.map((r) => r.request_id), expected.map((e) => e.id).reverse(), 'newest first');

      const row1 = rows.find((r) => r.request_id === expected[0]!.id)!;
      assert.equal(row1.user, 'alice');
      assert.equal(row1.session, 'wf-1');
      assert.equal(row1.team, 'research');
      assert.equal(row1.app, 'notebook-app');
      assert.equal(row1.key_name, 'notebook-app');
      assert.equal(row1.alias, 'chat');
      assert.equal(row1.endpoint, 'gpu-1');
      assert.equal(row1.upstream_model, CHAT_UPSTREAM);
      assert.equal(row1.status, 200);
      assert.equal(row1.attempts, 1);
      assert.equal(row1.estimated, false);
      assert.equal(row1.prompt_tokens, expected[0]!.prompt);
      assert.equal(row1.completion_tokens, expected[0]!.completion);
      assert.ok(Math.abs(row1.cost - (expected[0]!.prompt * PRICE.input_per_million + expected[0]!.completion * PRICE.output_per_million) / 1e6) < 1e-9);

      const row2 = rows.find((r) => r.request_id === expected[1]!.id)!;
      assert.equal(row2.user, 'bob');
      assert.equal(row2.session, 'wf-2');
      assert.equal(row2.stream, true);
      assert.equal(row2.prompt_tokens, expected[1]!.prompt);
      assert.equal(row2.completion_tokens, expected[1]!.completion);

      const row3 = rows.find((r) => r.request_id === expected[2]!.id)!;
      assert.equal(row3.team, 'ops');
      assert.equal(row3.key_name, 'ops-bot');
      assert.equal(row3.app, 'ops-bot');
      assert.equal(row3.user, 'carol');
      assert.equal(row3.session, null);

      const row4 = rows.find((r) => r.request_id === expected[3]!.id)!;
      assert.equal(row4.alias, 'embed');
      assert.equal(row4.upstream_model, EMBED_UPSTREAM);
      assert.equal(row4.prompt_tokens, expected[3]!.prompt);

      const check = async (groupBy: string, keyOf: (e: Expect) => string) => {
        const res = await gw!.admin<{ data: Record<string, any>[] }>('GET', `/usage?group_by=${groupBy}`);
        assert.equal(res.status, 200, `group_by=${groupBy}`);
        const want = new Map<string, { requests: number; prompt: number; completion: number; cost: number }>();
        for (const e of expected) {
          const w = want.get(keyOf(e)) ?? { requests: 0, prompt: 0, completion: 0, cost: 0 };
          w.requests++;
          w.prompt += e.prompt;
          w.completion += e.completion;
          w.cost += (e.prompt * e.price.input_per_million + e.completion * e.price.output_per_million) / 1e6;
          want.set(keyOf(e), w);
        }
        assert.deepEqual(res.body.data.map((g) => g.group).sort(), [...want.keys()].sort(), `groups of ${groupBy}`);
        for (const g of res.body.data) {
          const w = want.get(g.group)!;
          assert.equal(g.requests, w.requests, `${groupBy}=${g.group} requests`);
          assert.equal(g.prompt_tokens, w.prompt, `${groupBy}=${g.group} prompt_tokens`);
          assert.equal(g.completion_tokens, w.completion, `${groupBy}=${g.group} completion_tokens`);
          assert.equal(g.total_tokens, w.prompt + w.completion, `${groupBy}=${g.group} total_tokens`);
          assert.ok(Math.abs(g.cost - w.cost) < 1e-6, `${groupBy}=${g.group} cost ${g.cost} ≈ ${w.cost}`);
        }
      };
      await check('team', (e) => e.team);
      await check('user', (e) => e.user);
      await check('model', (e) => e.model);

      const bad = await gw.admin('GET', '/usage?group_by=colour');
      assert.equal(bad.status, 400);
      assert.match(JSON.stringify(bad.body), /group_by/);
    } finally {
      await gw?.stop();
      await up.close();
    }
  });

  test('a body over max_body_bytes is refused with 413 in OpenAI shape', async () => {
    const up = await startUpstream({ models: [CHAT_UPSTREAM] });
    let gw: RunningGateway | undefined;
    try {
      gw = await startGateway({ config: config(up.url, { settings: { max_body_bytes: 2048 } }) });
      const ai = client(gw);
      // a body under the limit still works
      const ok = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'small' }] });
      assert.equal(ok.choices[0]?.message.content, 'echo: small');
      const before = up.completions().length;
      const e = await apiError(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x'.repeat(5000) }] }));
      assert.equal(e.status, 413);
      assert.equal(e.type, 'invalid_request_error');
      assert.match(e.message, /2048/);
      requestIdOf(e);
      assert.equal(up.completions().length, before, 'the oversized body did not reach the upstream');
    } finally {
      await gw?.stop();
      await up.close();
    }
  });

  test('a client still sending an oversized body reads its whole 413, never a reset; a keep-alive connection serves the next request', async () => {
    const up = await startUpstream({ models: [CHAT_UPSTREAM] });
    let gw: RunningGateway | undefined;
    try {
      gw = await startGateway({ config: config(up.url, { settings: { max_body_bytes: 2048 } }) });
      const u = new URL(gw.dataUrl);
      const head = (extra: string) => `POST /v1/chat/completions HTTP/1.1\r\nhost: ${u.host}\r\nauthorization: Bearer ${TEST_KEY}\r\ncontent-type: application/json\r\n${extra}\r\n`;
      // half the body, a pause, the rest: a gateway that answered and closed while the body was
      // still coming would reset the connection under the second half
      const exchange = (chunked: boolean, keepAlive: boolean) =>
        new Promise<{ answer: string; error?: string }>((resolve) => {
          const half = Buffer.alloc(200 * 1024, 'c');
          const s = net.connect({ port: Number(u.port), host: u.hostname, allowHalfOpen: true });
          const got: Buffer[] = [];
          let error: string | undefined;
          s.on('data', (c: Buffer) => {
            got.push(c);
            // keep-alive: once the 413 is whole, the same connection asks again
            const text = Buffer.concat(got).toString('latin1');
            if (keepAlive && /^HTTP\/1\.1 413 [\s\S]*\r\n\r\n\{.*\}$/.test(text) && !text.includes('HTTP/1.1 200')) {
              const body = JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'again' }] });
              s.write(head(`content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n`) + body);
            }
          });
          s.on('error', (e: NodeJS.ErrnoException) => {
            error = e.code ?? e.message;
          });
          s.on('end', () => s.end()); // the gateway closed after its last answer
          s.on('close', () => resolve({ answer: Buffer.concat(got).toString('latin1'), error }));
          const part = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b);
          s.write(head(`${keepAlive ? '' : 'connection: close\r\n'}${chunked ? 'transfer-encoding: chunked' : `content-length: ${2 * half.length}`}\r\n`));
          s.write(part(half));
          setTimeout(() => {
            s.write(part(half));
            if (chunked) s.write('0\r\n\r\n');
            if (!keepAlive) s.end();
          }, 300);
        });
      for (const chunked of [false, true]) {
        const closing = await exchange(chunked, false);
        assert.equal(closing.error, undefined, `chunked=${chunked}: ${closing.error}`);
        assert.match(closing.answer, /^HTTP\/1\.1 413 /, `chunked=${chunked}`);
        assert.match(closing.answer, /"code":"body_too_large"/, `chunked=${chunked}: the whole answer was read`);
        const reused = await exchange(chunked, true);
        assert.equal(reused.error, undefined, `chunked=${chunked}, keep-alive: ${reused.error}`);
        assert.match(reused.answer, /^HTTP\/1\.1 413 [\s\S]*HTTP\/1\.1 200 [\s\S]*echo: again/, `chunked=${chunked}: the connection served the next request`);
      }
      // a body announced far past the limit is not read: answered at once, and the gateway serves on
      await new Promise<void>((resolve) => {
        const s = net.connect(Number(u.port), u.hostname, () => {
          s.write(head('content-length: 50000000\r\n'));
          s.write(Buffer.alloc(100_000, 'd'), () => setTimeout(() => (s.destroy(), resolve()), 50));
        });
        s.on('error', () => resolve());
      });
      const ok = await client(gw).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'small' }] });
      assert.equal(ok.choices[0]?.message.content, 'echo: small');
    } finally {
      await gw?.stop();
      await up.close();
    }
  });
});
