// POST /v1/messages (Anthropic Messages API) onto the upstream's Chat Completions, seen through the
// official @anthropic-ai/sdk client, unmodified, against the real gateway process and the
// simulated upstream: the same keys, routing, fallback and ledger as /v1/chat/completions.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { TOOL_ARGUMENTS, completionTokensFor, promptTokensFor, startUpstream, toolAnswerOf, type RecordedRequest, type SSEShape, type TestUpstream } from '../helpers/upstream.js';

const UPSTREAM_MODEL = 'llama-3.1-8b';
const LIMITED_KEY = 'sk-airlock-test-key-limited-00000000000002';
const BROKE_KEY = 'sk-airlock-test-key-broke-0000000000000003';
const PRICE = { input_per_million: 1000, output_per_million: 3000 };

function config(url: string) {
  return {
    endpoints: [
      { name: 'gpu-1', base_url: url, health_check: { enabled: true, interval_ms: 60_000 } },
      // the same server, as Ollama: its OpenAI API has no top_k
      { name: 'olla', type: 'ollama', base_url: url, health_check: { enabled: true, interval_ms: 60_000 } },
    ],
    models: [
      { name: 'chat', targets: [{ endpoint: 'gpu-1', model: UPSTREAM_MODEL }], price: PRICE },
      // two targets: the first one's failure before any content falls back to the second
      { name: 'fb', strategy: 'fallback', targets: [{ endpoint: 'gpu-1', model: 'first' }, { endpoint: 'gpu-1', model: 'second' }], price: PRICE },
      { name: 'local', targets: [{ endpoint: 'olla', model: UPSTREAM_MODEL }] },
      // a fallback from a server that reads top_k to one that does not
      { name: 'mixed', strategy: 'fallback', targets: [{ endpoint: 'gpu-1', model: 'first' }, { endpoint: 'olla', model: 'second' }] },
    ],
    teams: [{ name: 'research' }, { name: 'ops' }],
    keys: [
      { name: 'notebook-app', key: TEST_KEY, team: 'research' },
      { name: 'ops-bot', key: LIMITED_KEY, team: 'ops', models: ['fb'] },
      { name: 'broke-app', key: BROKE_KEY, team: 'research', budget: { amount: 0, period: 'total' } },
    ],
    settings: { breaker: { failure_threshold: 1000, cooldown_ms: 300 }, retry_after_cap_ms: 0 },
  };
}

type LedgerRow = Record<string, any>;

async function ledgerRow(gw: RunningGateway, requestId: string): Promise<LedgerRow> {
  return eventually(async () => {
    const r = await gw.admin<{ data: LedgerRow[] }>('GET', `/usage/requests?request_id=${requestId}`);
    assert.equal(r.status, 200);
    return r.body.data[0];
  }, `ledger row of ${requestId}`);
}

function lastCompletion(up: TestUpstream): RecordedRequest {
  const r = up.completions().at(-1);
  assert.ok(r, 'the upstream received a request');
  return r;
}

async function apiError(p: PromiseLike<unknown>): Promise<InstanceType<typeof Anthropic.APIError>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof Anthropic.APIError) return e;
    throw e;
  }
  assert.fail('expected the request to fail with an API error');
}

const tools: Anthropic.Tool[] = [{ name: 'lookup', description: 'look something up', input_schema: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] } }];

describe('POST /v1/messages (Anthropic Messages API)', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let claude: Anthropic;

  before(async () => {
    up = await startUpstream({ models: [UPSTREAM_MODEL, 'first', 'second'] });
    gw = await startGateway({ config: config(up.url) });
    claude = new Anthropic({ apiKey: TEST_KEY, baseURL: gw.dataUrl, maxRetries: 0, timeout: 20_000 });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('non-streamed text: system, metadata.user_id and sampling translated; stop_reason, usage and the ledger row', async () => {
    up.setBehavior({ kind: 'ok' });
    const { data: msg, response } = await claude.messages
      .create({
        model: 'chat',
        max_tokens: 64,
        system: [{ type: 'text', text: 'be terse' }],
        messages: [{ role: 'user', content: [{ type: 'text', text: 'hello claude' }] }],
        metadata: { user_id: 'alice' },
        // sampling parameters (left out of this SDK's types, still accepted by the API)
        ...({ temperature: 0.2, top_p: 0.9, top_k: 40 } as object),
      })
      .withResponse();
    const sent = lastCompletion(up);
    assert.equal(sent.path, '/v1/chat/completions', 'the upstream is asked in Chat Completions');
    assert.deepEqual(sent.body.messages, [
      { role: 'system', content: 'be terse' },
      { role: 'user', content: 'hello claude' },
    ]);
    assert.equal(sent.body.model, UPSTREAM_MODEL);
    assert.equal(sent.body.max_tokens, 64);
    assert.equal(sent.body.temperature, 0.2);
    assert.equal(sent.body.top_p, 0.9);
    assert.equal(sent.body.top_k, 40);
    assert.equal(sent.body.user, 'alice');
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal(msg.model, 'chat');
    assert.match(msg.id, /^msg_/);
    assert.deepEqual(msg.content, [{ type: 'text', text: 'echo: hello claude' }]);
    assert.equal(msg.stop_reason, 'end_turn');
    assert.equal(msg.stop_sequence, null);
    assert.equal(msg.usage.input_tokens, promptTokensFor('chat', sent.body));
    assert.equal(msg.usage.output_tokens, completionTokensFor('echo: hello claude'));
    assert.equal(response.headers.get('x-airlock-endpoint'), 'gpu-1');
    const row = await ledgerRow(gw, response.headers.get('x-airlock-request-id')!);
    assert.equal(row.kind, 'messages', 'the ledger tells Messages requests apart');
    assert.equal(row.user, 'alice', 'metadata.user_id is the end user');
    assert.equal(row.team, 'research');
    assert.equal(row.status, 200);
    assert.equal(row.prompt_tokens, msg.usage.input_tokens);
    assert.equal(row.completion_tokens, msg.usage.output_tokens);
    assert.equal(row.estimated, false);
    assert.ok(Math.abs(row.cost - (msg.usage.input_tokens * PRICE.input_per_million + msg.usage.output_tokens * PRICE.output_per_million) / 1e6) < 1e-9);
  });

  test('streamed text: the full event sequence, text deltas, stop_reason and usage in message_delta', async () => {
    up.setBehavior({ kind: 'ok', content: 'one two three four five' });
    const stream = claude.messages.stream({ model: 'chat', max_tokens: 64, messages: [{ role: 'user', content: 'count' }] });
    const types: string[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    }
    const final = await stream.finalMessage();
    assert.equal(text, 'one two three four five');
    assert.equal(final.content.length, 1);
    assert.equal(final.content[0]?.type, 'text');
    assert.equal((final.content[0] as Anthropic.TextBlock).text, 'one two three four five');
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.equal(types.at(-2), 'message_delta');
    const blockEvents = types.filter((t) => t.startsWith('content_block'));
    assert.equal(blockEvents[0], 'content_block_start');
    assert.equal(blockEvents.at(-1), 'content_block_stop');
    assert.equal(blockEvents.filter((t) => t === 'content_block_delta').length, 5, 'one delta per upstream chunk');
    assert.equal(final.stop_reason, 'end_turn');
    const sent = lastCompletion(up);
    assert.equal(sent.body.stream, true);
    assert.equal(final.usage.input_tokens, promptTokensFor('chat', sent.body));
    assert.equal(final.usage.output_tokens, completionTokensFor('one two three four five'));
    up.setBehavior({ kind: 'ok' });
  });

  test('streaming is incremental: events of an answer that never ends reach the client', async () => {
    up.setBehavior({ kind: 'endless-stream', chunkDelayMs: 5 });
    try {
      const stream = await claude.messages.create({ model: 'chat', max_tokens: 64, messages: [{ role: 'user', content: 'go on forever' }], stream: true });
      let deltas = 0;
      for await (const ev of stream) {
        if (ev.type === 'content_block_delta') deltas++;
        if (deltas === 3) break; // leaving the loop aborts the request
      }
      assert.equal(deltas, 3);
      await eventually(() => up.inflight === 0, 'the upstream request is aborted when the client leaves');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('tool use round trip: tool_use with the upstream id, tool_result back as a tool message, then the final answer', async () => {
    up.setBehavior({ kind: 'ok' });
    const first = await claude.messages.create({
      model: 'chat',
      max_tokens: 64,
      tools,
      tool_choice: { type: 'auto' },
      messages: [{ role: 'user', content: 'please use tool lookup' }],
    });
    const sent1 = lastCompletion(up);
    assert.deepEqual(sent1.body.tools, [{ type: 'function', function: { name: 'lookup', description: 'look something up', parameters: tools[0]!.input_schema } }]);
    assert.equal(sent1.body.tool_choice, 'auto');
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content.find((b): b is Anthropic.ToolUseBlock => b.type === 'tool_use');
    assert.ok(use, 'a tool_use block');
    assert.match(use.id, /^call_\d+_0$/, 'the upstream tool call id is kept');
    assert.equal(use.name, 'lookup');
    assert.deepEqual(use.input, JSON.parse(TOOL_ARGUMENTS));

    const second = await claude.messages.create({
      model: 'chat',
      max_tokens: 64,
      tools,
      messages: [
        { role: 'user', content: 'please use tool lookup' },
        { role: 'assistant', content: first.content },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: [{ type: 'text', text: '42' }] }] },
      ],
    });
    const sent2 = lastCompletion(up);
    assert.deepEqual(sent2.body.messages.slice(1), [
      { role: 'assistant', content: null, tool_calls: [{ id: use.id, type: 'function', function: { name: 'lookup', arguments: TOOL_ARGUMENTS } }] },
      { role: 'tool', tool_call_id: use.id, content: '42' },
    ]);
    assert.equal(second.stop_reason, 'end_turn');
    assert.deepEqual(second.content, [{ type: 'text', text: toolAnswerOf({ tool_call_id: use.id, content: '42' }) }]);
  });

  test('streamed tool use: input_json_delta carries the arguments; tool_choice any and disable_parallel_tool_use translated', async () => {
    up.setBehavior({ kind: 'ok' });
    const stream = claude.messages.stream({
      model: 'chat',
      max_tokens: 64,
      tools,
      tool_choice: { type: 'any', disable_parallel_tool_use: true },
      messages: [{ role: 'user', content: 'use tool now' }],
    });
    let partial = '';
    let start: Anthropic.ContentBlock | undefined;
    for await (const ev of stream) {
      if (ev.type === 'content_block_start') start = ev.content_block;
      if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') partial += ev.delta.partial_json;
    }
    const final = await stream.finalMessage();
    const sent = lastCompletion(up);
    assert.equal(sent.body.tool_choice, 'required');
    assert.equal(sent.body.parallel_tool_calls, false);
    assert.equal(start?.type, 'tool_use');
    assert.equal(partial, TOOL_ARGUMENTS, 'the argument pieces, in order');
    assert.equal(final.stop_reason, 'tool_use');
    const use = final.content[0] as Anthropic.ToolUseBlock;
    assert.equal(use.type, 'tool_use');
    assert.match(use.id, /^call_\d+_0$/);
    assert.deepEqual(use.input, { q: 'x' });
  });

  test('stop reasons: length → max_tokens, a matched stop string → stop_sequence (streamed and not); stop_sequences sent upstream as stop', async () => {
    up.setBehavior({ kind: 'ok', finishReason: 'length' });
    try {
      const m = await claude.messages.create({ model: 'chat', max_tokens: 3, stop_sequences: ['END', '###'], messages: [{ role: 'user', content: 'a long story' }] });
      assert.equal(m.stop_reason, 'max_tokens');
      assert.deepEqual(lastCompletion(up).body.stop, ['END', '###']);
      const s = await claude.messages.stream({ model: 'chat', max_tokens: 3, messages: [{ role: 'user', content: 'a long story' }] }).finalMessage();
      assert.equal(s.stop_reason, 'max_tokens');
      // vLLM names the stop string that ended the answer (choices[].stop_reason): stop_sequence
      up.setBehavior({ kind: 'ok', stopReason: '###' });
      const q = await claude.messages.create({ model: 'chat', max_tokens: 16, stop_sequences: ['END', '###'], messages: [{ role: 'user', content: 'until ###' }] });
      assert.equal(q.stop_reason, 'stop_sequence');
      assert.equal(q.stop_sequence, '###');
      const qs = await claude.messages.stream({ model: 'chat', max_tokens: 16, stop_sequences: ['END', '###'], messages: [{ role: 'user', content: 'until ###' }] }).finalMessage();
      assert.equal(qs.stop_reason, 'stop_sequence');
      assert.equal(qs.stop_sequence, '###');
      // without stop_sequences, or a stop the client did not send (an EOS token id): end_turn
      const t = await claude.messages.create({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'until ###' }] });
      assert.equal(t.stop_reason, 'end_turn');
      assert.equal(t.stop_sequence, null);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('images: base64 and url blocks become image_url parts', async () => {
    up.setBehavior({ kind: 'ok' });
    await claude.messages.create({
      model: 'chat',
      max_tokens: 16,
      messages: [
        {
          role: 'user',
          content: [
            { type: 'text', text: 'what is this?' },
            { type: 'image', source: { type: 'base64', media_type: 'image/png', data: 'iVBORw0KGgo=' } },
            { type: 'image', source: { type: 'url', url: 'http://files.lan/cat.png' } },
          ],
        },
      ],
    });
    assert.deepEqual(lastCompletion(up).body.messages[0].content, [
      { type: 'text', text: 'what is this?' },
      { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } },
      { type: 'image_url', image_url: { url: 'http://files.lan/cat.png' } },
    ]);
  });

  test('every upstream stream format (spaced JSON, CRLF, comments, no [DONE], usage in the last chunk, data: without a space) translates the same', async () => {
    const shapes: SSEShape[] = [{ spaced: true }, { crlf: true }, { done: false }, { comments: true }, { usageInLastChunk: true }, { noSpaceAfterData: true }, { spaced: true, crlf: true, done: false, comments: true }];
    for (const sse of shapes) {
      up.setBehavior({ kind: 'ok', content: 'héllo wörld ✓', sse });
      const stream = claude.messages.stream({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] });
      const final = await stream.finalMessage();
      const what = JSON.stringify(sse);
      assert.equal((final.content[0] as Anthropic.TextBlock).text, 'héllo wörld ✓', what);
      assert.equal(final.stop_reason, 'end_turn', what);
      assert.equal(final.usage.output_tokens, completionTokensFor('héllo wörld ✓'), what);
    }
    up.setBehavior({ kind: 'ok' });
  });

  test('a break after content: an Anthropic error event, a truncated connection, and the SDK raises', async () => {
    up.setBehavior({ kind: 'drop-mid-stream', afterChunks: 2 });
    try {
      const res = await fetch(`${gw.dataUrl}/v1/messages`, {
        method: 'POST',
        headers: { 'x-api-key': TEST_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'one two three four' }] }),
      });
      assert.equal(res.status, 200);
      const id = res.headers.get('x-airlock-request-id')!;
      let raw = '';
      const dec = new TextDecoder();
      await assert.rejects(async () => {
        for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) raw += dec.decode(c, { stream: true });
      }, 'the body ends in a broken connection, not a clean end');
      assert.match(raw, /^event: message_start\n.*\n\nevent: ping\ndata: \{"type":"ping"\}\n\n/);
      assert.match(raw, /event: content_block_delta\n/);
      assert.match(raw, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"Stream interrupted: [^"]+"\}\}\n\n$/);
      assert.doesNotMatch(raw, /message_stop/);
      const row = await ledgerRow(gw, id);
      assert.equal(row.error_class, 'stream_interrupted');
      assert.equal(row.kind, 'messages');

      const stream = claude.messages.stream({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'one two three four' }] });
      const err = await apiError(stream.finalMessage());
      assert.match(err.message, /Stream interrupted/);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('top_k goes only to servers that read it: an openai endpoint gets it, an ollama one (also after a fallback) does not', async () => {
    up.setBehavior({ kind: 'ok' });
    const sampling = { temperature: 0.3, top_k: 7 } as object;
    await claude.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'k' }], ...sampling });
    assert.equal(lastCompletion(up).body.top_k, 7);
    await claude.messages.create({ model: 'local', max_tokens: 8, messages: [{ role: 'user', content: 'k' }], ...sampling });
    let sent = lastCompletion(up);
    assert.equal(sent.body.model, UPSTREAM_MODEL);
    assert.equal('top_k' in sent.body, false, 'no top_k for Ollama');
    assert.equal(sent.body.temperature, 0.3, 'the rest of the sampling is sent');

    up.queue({ kind: 'drop-before-content' });
    const before = up.completions().length;
    const { data: stream, response } = await claude.messages.create({ model: 'mixed', max_tokens: 8, messages: [{ role: 'user', content: 'k' }], stream: true, ...sampling }).withResponse();
    for await (const ev of stream) void ev;
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
    const [first, second] = up.completions().slice(before);
    assert.equal(first!.body.model, 'first');
    assert.equal(first!.body.top_k, 7, 'the openai target was sent top_k');
    sent = second!;
    assert.equal(sent.body.model, 'second');
    assert.equal('top_k' in sent.body, false, 'the ollama target after the fallback was not');

    // chat requests are the client's own body: passed as they are
    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'local', messages: [{ role: 'user', content: 'k' }], top_k: 3 }),
    });
    assert.equal(r.status, 200);
    assert.equal(lastCompletion(up).body.top_k, 3);
  });

  test('fallback before the first content: the client sees one clean answer from the second target', async () => {
    up.setBehavior({ kind: 'ok' });
    up.queue({ kind: 'drop-before-content' });
    const { data: stream, response } = await claude.messages.create({ model: 'fb', max_tokens: 16, messages: [{ role: 'user', content: 'fall back' }], stream: true }).withResponse();
    let text = '';
    let starts = 0;
    for await (const ev of stream) {
      if (ev.type === 'message_start') starts++;
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    }
    assert.equal(starts, 1, 'nothing of the failed attempt reached the client');
    assert.equal(text, 'echo: fall back');
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
    assert.equal(lastCompletion(up).body.model, 'second');
  });

  test('errors in Anthropic shape: 401 (x-api-key), 403, 404 model, 400 naming the field, 429 from the upstream', async () => {
    const bad = new Anthropic({ apiKey: 'sk-airlock-nope', baseURL: gw.dataUrl, maxRetries: 0 });
    const e401 = await apiError(bad.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.ok(e401 instanceof Anthropic.AuthenticationError);
    assert.deepEqual(Object.keys(e401.error as object).sort(), ['error', 'type']);
    assert.equal((e401.error as any).type, 'error');
    assert.equal((e401.error as any).error.type, 'authentication_error');

    const limited = new Anthropic({ apiKey: LIMITED_KEY, baseURL: gw.dataUrl, maxRetries: 0 });
    const e403 = await apiError(limited.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.ok(e403 instanceof Anthropic.PermissionDeniedError);
    assert.equal((e403.error as any).error.type, 'permission_error');

    const e404 = await apiError(claude.messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.ok(e404 instanceof Anthropic.NotFoundError);
    assert.equal((e404.error as any).error.type, 'not_found_error');
    assert.match((e404.error as any).error.message, /no-such-model/);

    // a spent budget: 429 in Anthropic's shape, nothing sent upstream
    const before = up.completions().length;
    const broke = new Anthropic({ apiKey: BROKE_KEY, baseURL: gw.dataUrl, maxRetries: 0 });
    const budget = await apiError(broke.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.ok(budget instanceof Anthropic.RateLimitError);
    assert.equal((budget.error as any).error.type, 'rate_limit_error');
    assert.match((budget.error as any).error.message, /budget/i);
    assert.equal(up.completions().length, before);

    const cases: [unknown, RegExp][] = [
      [{ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }, /"max_tokens" is required/],
      [{ model: 'chat', max_tokens: 0, messages: [{ role: 'user', content: 'hi' }] }, /"max_tokens"/],
      [{ model: 'chat', max_tokens: 8, messages: [] }, /"messages"/],
      [{ model: 'chat', max_tokens: 8, messages: [{ role: 'tool', content: 'hi' }] }, /"messages\[0\]\.role"/],
      [{ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'document', source: {} }] }] }, /"messages\[0\]\.content\[0\]\.type" "document"/],
      [{ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: [{ type: 'tool_result' }] }] }, /"messages\[0\]\.content\[0\]\.tool_use_id"/],
      [{ model: 'chat', max_tokens: 8, tools: [{ type: 'web_search_20250305', name: 'web_search' }], messages: [{ role: 'user', content: 'hi' }] }, /"tools\[0\]\.type".*web_search_20250305.*nothing leaves the network/],
      [{ model: 'chat', max_tokens: 8, tools: [{ name: 'x' }], messages: [{ role: 'user', content: 'hi' }] }, /"tools\[0\]\.input_schema"/],
      [{ model: 'chat', max_tokens: 8, stop_sequences: 'END', messages: [{ role: 'user', content: 'hi' }] }, /"stop_sequences"/],
    ];
    for (const [body, re] of cases) {
      const e = await apiError(claude.messages.create(body as Anthropic.MessageCreateParamsNonStreaming));
      assert.ok(e instanceof Anthropic.BadRequestError, `${JSON.stringify(body)}: ${e.status}`);
      assert.equal((e.error as any).error.type, 'invalid_request_error');
      assert.match((e.error as any).error.message, re);
    }
    // malformed JSON, before the pipeline: the same shape
    const raw = await fetch(`${gw.dataUrl}/v1/messages`, { method: 'POST', headers: { 'x-api-key': TEST_KEY, 'content-type': 'application/json' }, body: '{"model":' });
    assert.equal(raw.status, 400);
    const rb = (await raw.json()) as any;
    assert.equal(rb.type, 'error');
    assert.equal(rb.error.type, 'invalid_request_error');

    up.setBehavior({ kind: 'status', status: 429, retryAfter: '30' });
    try {
      const e429 = await apiError(claude.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
      assert.ok(e429 instanceof Anthropic.RateLimitError);
      assert.equal((e429.error as any).error.type, 'rate_limit_error');
      assert.equal(e429.headers?.get('retry-after'), '30');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('auth by x-api-key or Bearer; anthropic-version accepted', async () => {
    up.setBehavior({ kind: 'ok' });
    const auths: Record<string, string>[] = [{ 'x-api-key': TEST_KEY, 'anthropic-version': '2023-06-01' }, { authorization: `Bearer ${TEST_KEY}` }];
    for (const headers of auths) {
      const res = await fetch(`${gw.dataUrl}/v1/messages`, {
        method: 'POST',
        headers: { ...headers, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'hi there' }] }),
      });
      assert.equal(res.status, 200, JSON.stringify(headers));
      const b = (await res.json()) as any;
      assert.equal(b.content[0].text, 'echo: hi there');
    }
    const none = await fetch(`${gw.dataUrl}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(none.status, 401);
    assert.equal(((await none.json()) as any).error.type, 'authentication_error');
  });

  test('count_tokens: our estimate, marked as one; unknown model 404', async () => {
    const n = await claude.messages.countTokens({ model: 'chat', system: 'be terse', messages: [{ role: 'user', content: 'how many tokens is this sentence?' }] });
    assert.ok(n.input_tokens > 0);
    assert.equal((n as unknown as { estimated: boolean }).estimated, true);
    const longer = await claude.messages.countTokens({ model: 'chat', messages: [{ role: 'user', content: 'how many tokens is this sentence? '.repeat(20) }] });
    assert.ok(longer.input_tokens > n.input_tokens);
    const e = await apiError(claude.messages.countTokens({ model: 'nope', messages: [{ role: 'user', content: 'x' }] }));
    assert.ok(e instanceof Anthropic.NotFoundError);
    assert.equal((e.error as any).error.type, 'not_found_error');
    const bad = new Anthropic({ apiKey: 'sk-airlock-nope', baseURL: gw.dataUrl, maxRetries: 0 });
    const e401 = await apiError(bad.messages.countTokens({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }));
    assert.ok(e401 instanceof Anthropic.AuthenticationError);
    assert.equal((e401.error as any).error.type, 'authentication_error');
  });
});
