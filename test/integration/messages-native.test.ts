// An endpoint that speaks the Anthropic Messages API natively (`type: anthropic`): a /v1/messages
// request routed to it is sent untranslated (the client's body, the target's model name) and
// still passes every stage — key, budget, input and output guardrails, fallback, the ledger —
// seen through the official @anthropic-ai/sdk client against the real gateway process and the
// simulated upstream's native /v1/messages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { TEST_KEY, type RunningGateway } from '../helpers/gateway.js';
import { PRICE, lastPost, ledgerRow, nativeEndpoints, startNative, type NativeSetup } from '../helpers/native-messages.js';
import { TOOL_ARGUMENTS, completionTokensFor, messagesInputTokens, toolAnswerOf, type TestUpstream } from '../helpers/upstream.js';

const BROKE_KEY = 'sk-airlock-test-key-broke-0000000000000007';
const UPSTREAM_KEY = 'upstream-secret-for-the-messages-server';
const EMAIL = 'jane.doe@example.com';

function config(url: string) {
  return {
    endpoints: nativeEndpoints(url, UPSTREAM_KEY),
    models: [
      { name: 'native', targets: [{ endpoint: 'claude-box', model: 'claude-local' }], price: PRICE },
      // a native server first; a Chat Completions one when it fails before any content
      { name: 'mixed', strategy: 'fallback', targets: [{ endpoint: 'claude-box', model: 'claude-local' }, { endpoint: 'gpu-1', model: 'llama' }] },
      { name: 'guarded', targets: [{ endpoint: 'claude-box', model: 'claude-local' }] },
      { name: 'guarded-chat', targets: [{ endpoint: 'gpu-1', model: 'llama' }] },
    ],
    teams: [{ name: 'research' }, { name: 'poor' }],
    keys: [
      { name: 'notebook-app', key: TEST_KEY, team: 'research' },
      { name: 'broke-app', key: BROKE_KEY, team: 'poor', budget: { amount: 0, period: 'total' } },
    ],
    guardrails: [
      { name: 'no-email-in', direction: ['input'], detectors: ['email'], action: 'redact', scope: { models: ['guarded', 'guarded-chat'] } },
      { name: 'no-secret-out', direction: ['output'], detectors: [{ type: 'keywords', words: ['classified'] }], action: 'redact', scope: { models: ['guarded'] } },
    ],
    settings: { breaker: { failure_threshold: 1000, cooldown_ms: 300 }, retry_after_cap_ms: 0 },
  };
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

describe('type: anthropic endpoints get /v1/messages untranslated', () => {
  let setup: NativeSetup;
  let up: TestUpstream;
  let gw: RunningGateway;
  let claude: Anthropic;

  before(async () => {
    setup = await startNative(['claude-local', 'llama'], config);
    ({ up, gw, claude } = setup);
  });
  after(() => setup?.close());

  test('non-streamed: the client body as sent (target model), Anthropic headers, the upstream usage; the ledger row with cost', async () => {
    up.setBehavior({ kind: 'ok' });
    const body = {
      model: 'native',
      max_tokens: 64,
      system: [{ type: 'text' as const, text: 'be terse', cache_control: { type: 'ephemeral' as const } }],
      messages: [{ role: 'user' as const, content: [{ type: 'text' as const, text: 'hello box' }] }],
      metadata: { user_id: 'alice' },
      stop_sequences: ['END'],
      ...({ top_k: 5, temperature: 0.1 } as object),
    };
    const { data: msg, response } = await claude.messages.create(body).withResponse();
    const sent = lastPost(up);
    assert.equal(sent.path, '/v1/messages', 'the native route, not /chat/completions');
    assert.deepEqual(sent.body, { ...body, model: 'claude-local' }, 'the body untranslated: only the model is the target\'s');
    assert.equal(sent.headers['x-api-key'], UPSTREAM_KEY);
    assert.equal(sent.headers.authorization, `Bearer ${UPSTREAM_KEY}`);
    assert.equal(sent.headers['anthropic-version'], '2023-06-01');
    assert.notEqual(sent.headers['x-api-key'], TEST_KEY, 'the client key never goes upstream');

    assert.equal(msg.model, 'native');
    assert.deepEqual(msg.content, [{ type: 'text', text: 'echo: hello box' }]);
    assert.equal(msg.stop_reason, 'end_turn');
    const usage = { input_tokens: messagesInputTokens(sent.body), output_tokens: completionTokensFor('echo: hello box') };
    assert.equal(msg.usage.input_tokens, usage.input_tokens);
    assert.equal(msg.usage.output_tokens, usage.output_tokens);
    assert.equal(response.headers.get('x-airlock-endpoint'), 'claude-box');
    const row = await ledgerRow(gw, response.headers.get('x-airlock-request-id')!);
    assert.equal(row.kind, 'messages');
    assert.equal(row.endpoint, 'claude-box');
    assert.equal(row.prompt_tokens, usage.input_tokens);
    assert.equal(row.completion_tokens, usage.output_tokens);
    assert.equal(!!row.estimated, false, 'the upstream said its usage');
    assert.ok(Math.abs(row.cost - (usage.input_tokens * 1000 + usage.output_tokens * 3000) / 1e6) < 1e-12);
    assert.equal(row.user, 'alice', 'metadata.user_id is the end user');
  });

  test('streamed: Anthropic events from the native stream, incremental text, the upstream usage in message_delta', async () => {
    up.setBehavior({ kind: 'ok', pieces: ['one ', 'two ', 'three'] });
    try {
      const stream = claude.messages.stream({ model: 'native', max_tokens: 32, messages: [{ role: 'user', content: 'count' }] });
      const types: string[] = [];
      const deltas: string[] = [];
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') deltas.push(ev.delta.text);
      }
      const final = await stream.finalMessage();
      assert.equal(lastPost(up).body.stream, true);
      assert.deepEqual(deltas, ['one ', 'two ', 'three']);
      assert.equal(types[0], 'message_start');
      assert.equal(types.at(-1), 'message_stop');
      assert.equal(final.stop_reason, 'end_turn');
      assert.equal(final.usage.output_tokens, completionTokensFor('one two three'));
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('tool use round trip, streamed and not: tool_use ids kept, input_json_delta, tool_result sent as it was', async () => {
    up.setBehavior({ kind: 'ok' });
    const first = await claude.messages.create({ model: 'native', max_tokens: 64, tools, messages: [{ role: 'user', content: 'please use tool lookup' }] });
    assert.equal(first.stop_reason, 'tool_use');
    const use = first.content[0] as Anthropic.ToolUseBlock;
    assert.equal(use.type, 'tool_use');
    assert.match(use.id, /^toolu_up_/, 'the upstream\'s tool_use id');
    assert.deepEqual(use.input, JSON.parse(TOOL_ARGUMENTS));

    const messages: Anthropic.MessageParam[] = [
      { role: 'user', content: 'please use tool lookup' },
      { role: 'assistant', content: first.content },
      { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'forty-two' }] },
    ];
    const second = await claude.messages.create({ model: 'native', max_tokens: 64, tools, messages });
    assert.deepEqual(lastPost(up).body.messages, messages, 'the conversation as the client sent it');
    assert.deepEqual(second.content, [{ type: 'text', text: toolAnswerOf({ tool_call_id: use.id, content: 'forty-two' }) }]);

    const stream = claude.messages.stream({ model: 'native', max_tokens: 64, tools, messages: [{ role: 'user', content: 'please use tool lookup' }] });
    const partial: string[] = [];
    for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'input_json_delta') partial.push(ev.delta.partial_json);
    const final = await stream.finalMessage();
    assert.equal(partial.join(''), TOOL_ARGUMENTS);
    assert.equal(final.stop_reason, 'tool_use');
    assert.deepEqual((final.content[0] as Anthropic.ToolUseBlock).input, JSON.parse(TOOL_ARGUMENTS));
  });

  test('guardrails: the native body is redacted before it leaves; the native answer is redacted before the client sees it', async () => {
    up.setBehavior({ kind: 'ok' });
    const msg = await claude.messages.create({
      model: 'guarded',
      max_tokens: 64,
      system: `reply to ${EMAIL}`,
      messages: [{ role: 'user', content: [{ type: 'text', text: `write to ${EMAIL} please` }] }],
    });
    const sent = lastPost(up);
    assert.equal(sent.path, '/v1/messages');
    assert.ok(!JSON.stringify(sent.body).includes(EMAIL), `no e-mail address reached the upstream: ${JSON.stringify(sent.body)}`);
    assert.equal(sent.body.system, 'reply to [EMAIL_1]');
    assert.deepEqual(sent.body.messages[0].content, [{ type: 'text', text: 'write to [EMAIL_1] please' }], 'the same placeholder for the same value');
    assert.equal((msg.content[0] as Anthropic.TextBlock).text, 'echo: write to [EMAIL_1] please');

    up.setBehavior({ kind: 'ok', pieces: ['the ', 'class', 'ified ', 'plan'] });
    try {
      const stream = claude.messages.stream({ model: 'guarded', max_tokens: 32, messages: [{ role: 'user', content: 'tell me' }] });
      let text = '';
      for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
      assert.ok(!/classified/i.test(text), `the keyword split across events was caught: ${text}`);
      assert.match(text, /^the .+ plan$/);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('the input guardrails see translated Messages and Responses requests too (their chat body)', async () => {
    up.setBehavior({ kind: 'ok' });
    const msg = await claude.messages.create({ model: 'guarded-chat', max_tokens: 64, system: `from ${EMAIL}`, messages: [{ role: 'user', content: `mail ${EMAIL}` }] });
    let sent = lastPost(up);
    assert.equal(sent.path, '/v1/chat/completions');
    assert.ok(!JSON.stringify(sent.body).includes(EMAIL), JSON.stringify(sent.body));
    assert.equal((msg.content[0] as Anthropic.TextBlock).text, 'echo: mail [EMAIL_1]');
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });
    const r = await ai.responses.create({ model: 'guarded-chat', instructions: `cc ${EMAIL}`, input: `mail ${EMAIL}`, store: false });
    sent = lastPost(up);
    assert.ok(!JSON.stringify(sent.body).includes(EMAIL), JSON.stringify(sent.body));
    assert.equal(r.output_text, 'echo: mail [EMAIL_1]');
  });

  test('fallback before content from the native server to a chat one; a break after content raises in the SDK', async () => {
    up.setBehavior({ kind: 'ok' });
    up.queue({ kind: 'drop-before-content' });
    const before = up.completions().length;
    const { data: stream, response } = await claude.messages.create({ model: 'mixed', max_tokens: 16, messages: [{ role: 'user', content: 'fall back' }], stream: true }).withResponse();
    let text = '';
    let starts = 0;
    for await (const ev of stream) {
      if (ev.type === 'message_start') starts++;
      if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') text += ev.delta.text;
    }
    assert.equal(starts, 1);
    assert.equal(text, 'echo: fall back');
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
    assert.deepEqual(up.completions().slice(before).map((r) => r.path), ['/v1/messages', '/v1/chat/completions']);

    up.queue({ kind: 'drop-mid-stream', afterChunks: 2 });
    const broken = claude.messages.stream({ model: 'native', max_tokens: 16, messages: [{ role: 'user', content: 'a b c d e f' }] });
    let got = '';
    await assert.rejects(async () => {
      for await (const ev of broken) if (ev.type === 'content_block_delta' && ev.delta.type === 'text_delta') got += ev.delta.text;
    });
    assert.equal(got, 'echo: a ', 'what arrived before the break was passed on');
  });

  test('errors in Anthropic shape: a budget 429, an upstream 4xx; a native-only model refused on /v1/chat/completions; the health probe speaks Messages', async () => {
    const broke = new Anthropic({ apiKey: BROKE_KEY, baseURL: gw.dataUrl, maxRetries: 0 });
    const before = up.completions().length;
    const e429 = await apiError(broke.messages.create({ model: 'native', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(e429.status, 429);
    assert.equal((e429.error as any).error.type, 'rate_limit_error');
    assert.equal(up.completions().length, before, 'a spent budget sends nothing upstream');

    up.queue({ kind: 'status', status: 400, body: JSON.stringify({ type: 'error', error: { type: 'invalid_request_error', message: 'max_tokens too large' } }) });
    const e400 = await apiError(claude.messages.create({ model: 'native', max_tokens: 8, messages: [{ role: 'user', content: 'hi' }] }));
    assert.equal(e400.status, 400);
    assert.match(e400.message, /max_tokens too large/);

    const r = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'native', messages: [{ role: 'user', content: 'hi' }] }),
    });
    assert.equal(r.status, 400);
    const err = ((await r.json()) as any).error;
    assert.equal(err.param, 'model');
    assert.match(err.message, /Anthropic Messages endpoints only.*POST \/v1\/messages/);

    const probe = up.requests.find((q) => q.method === 'GET' && q.path === '/v1/models' && q.headers['anthropic-version']);
    assert.ok(probe, 'the native endpoint was probed with Anthropic headers');
    assert.equal(probe.headers['x-api-key'], UPSTREAM_KEY);
  });
});
