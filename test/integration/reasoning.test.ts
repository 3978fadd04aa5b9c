// What a model thinks before it answers, and the prompt tokens a server served from its cache,
// carried across protocols (issue 13):
// - a native `type: anthropic` endpoint's thinking and redacted_thinking blocks (signatures,
//   signature_delta) and cache-usage fields reach a /v1/messages client as the server sent them,
//   and the ledger counts the cached prompt tokens (Anthropic's input_tokens leaves them out);
// - a Chat Completions server's `reasoning_content` (vLLM, llama.cpp, DeepSeek; newer vLLM:
//   `reasoning`), streamed and not, becomes a `reasoning` output item on /v1/responses, with the
//   Responses API's reasoning_text events, and a thinking block on /v1/messages.
// Seen through the official @anthropic-ai/sdk and openai clients against the real gateway process.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { TEST_KEY, type RunningGateway } from '../helpers/gateway.js';
import { PRICE, costOf, lastPost, ledgerRow, nativeEndpoints, startNative, type NativeSetup } from '../helpers/native-messages.js';
import { completionTokensFor, messagesInputTokens, promptTokensFor, type SSEShape, type TestUpstream } from '../helpers/upstream.js';
const THOUGHT = 'The user says hello. I should greet them back briefly.';
const CACHE = { read: 7, creation: 3 };
/** long enough that its tokens outnumber the cached ones */
const PROMPT = 'hello box, here is a long shared preamble that a server may well have cached';

function config(url: string) {
  return {
    endpoints: nativeEndpoints(url),
    models: [
      { name: 'native', targets: [{ endpoint: 'claude-box', model: 'claude-local' }], price: PRICE },
      { name: 'thinker', targets: [{ endpoint: 'gpu-1', model: 'qwq' }], price: PRICE },
    ],
    teams: [{ name: 'research' }],
    keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research' }],
  };
}

describe('thinking and cache usage from a native Messages endpoint', () => {
  let setup: NativeSetup;
  let up: TestUpstream;
  let gw: RunningGateway;
  let claude: Anthropic;

  before(async () => {
    setup = await startNative(['claude-local', 'qwq'], config);
    ({ up, gw, claude } = setup);
  });
  after(() => setup?.close());

  test('non-streamed: thinking (with its signature) and redacted_thinking blocks as sent, cache fields in usage, the ledger counts every prompt token', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT, cache: CACHE });
    const body = { model: 'native', max_tokens: 256, thinking: { type: 'enabled' as const, budget_tokens: 128 }, messages: [{ role: 'user' as const, content: PROMPT }] };
    const { data: msg, response } = await claude.messages.create(body).withResponse();
    const sent = lastPost(up);
    assert.deepEqual(sent.body.thinking, body.thinking, 'the thinking request went upstream untranslated');
    assert.deepEqual(msg.content, [
      { type: 'thinking', thinking: THOUGHT, signature: `sig-${THOUGHT.length}` },
      { type: 'redacted_thinking', data: 'redacted-data' },
      { type: 'text', text: `echo: ${PROMPT}` },
    ]);
    const total = messagesInputTokens(sent.body);
    const output = completionTokensFor(`echo: ${PROMPT}`) + completionTokensFor(THOUGHT);
    assert.equal(msg.usage.input_tokens, total - CACHE.read - CACHE.creation, 'input_tokens leaves the cached tokens out, as Anthropic counts');
    assert.equal(msg.usage.cache_read_input_tokens, CACHE.read);
    assert.equal(msg.usage.cache_creation_input_tokens, CACHE.creation);
    assert.equal(msg.usage.output_tokens, output);
    const row = await ledgerRow(gw, response.headers.get('x-airlock-request-id')!);
    assert.equal(row.prompt_tokens, total, 'the ledger charges the cached prompt tokens too');
    assert.equal(row.completion_tokens, output);
    assert.ok(Math.abs(row.cost - costOf(total, output)) < 1e-12);
  });

  test('streamed: thinking_delta and signature_delta events, the redacted block, then the text; cache fields in the final usage and the ledger', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT, cache: CACHE, pieces: ['hi ', 'there'] });
    const stream = claude.messages.stream({ model: 'native', max_tokens: 256, messages: [{ role: 'user', content: PROMPT }] });
    let thinking = '';
    const signatures: string[] = [];
    const starts: string[] = [];
    for await (const ev of stream) {
      if (ev.type === 'content_block_start') starts.push(ev.content_block.type);
      if (ev.type === 'content_block_delta' && ev.delta.type === 'thinking_delta') thinking += ev.delta.thinking;
      if (ev.type === 'content_block_delta' && ev.delta.type === 'signature_delta') signatures.push(ev.delta.signature);
    }
    const final = await stream.finalMessage();
    assert.deepEqual(starts, ['thinking', 'redacted_thinking', 'text']);
    assert.equal(thinking, THOUGHT, 'the thinking, incrementally');
    assert.deepEqual(signatures, [`sig-${THOUGHT.length}`]);
    assert.deepEqual(final.content, [
      { type: 'thinking', thinking: THOUGHT, signature: `sig-${THOUGHT.length}` },
      { type: 'redacted_thinking', data: 'redacted-data' },
      { type: 'text', text: 'hi there', ...((final.content[2] as { citations?: unknown }).citations !== undefined ? { citations: null } : {}) },
    ]);
    const total = messagesInputTokens(lastPost(up).body);
    assert.equal(final.usage.cache_read_input_tokens, CACHE.read);
    assert.equal(final.usage.cache_creation_input_tokens, CACHE.creation);
    assert.equal(final.usage.input_tokens, total - CACHE.read - CACHE.creation);
    const row = await ledgerRow(gw, stream.response!.headers.get('x-airlock-request-id')!);
    assert.equal(row.prompt_tokens, total, 'the ledger charges the cached prompt tokens too');
    assert.equal(row.completion_tokens, completionTokensFor('hi there') + completionTokensFor(THOUGHT));
  });

  test('a conversation that carries earlier thinking blocks goes upstream untranslated (signatures kept)', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT });
    const first = await claude.messages.create({ model: 'native', max_tokens: 256, messages: [{ role: 'user', content: PROMPT }] });
    const messages: Anthropic.MessageParam[] = [
      { role: 'user', content: PROMPT },
      { role: 'assistant', content: first.content },
      { role: 'user', content: 'and again' },
    ];
    await claude.messages.create({ model: 'native', max_tokens: 256, messages });
    assert.deepEqual(lastPost(up).body.messages, messages);
  });
});

describe('reasoning_content from a Chat Completions server', () => {
  let setup: NativeSetup;
  let up: TestUpstream;
  let openai: OpenAI;
  let claude: Anthropic;

  before(async () => {
    setup = await startNative(['claude-local', 'qwq'], config);
    ({ up, openai, claude } = setup);
  });
  after(() => setup?.close());

  for (const field of ['reasoning_content', 'reasoning'] as const) {
    test(`/v1/responses, not streamed (${field}): a reasoning item before the message, reasoning and cached tokens in usage`, async () => {
      up.setBehavior({ kind: 'ok', reasoning: THOUGHT, reasoningField: field, cache: { read: 4 } });
      const r = await openai.responses.create({ model: 'thinker', input: 'hello there' });
      assert.equal(r.output.length, 2);
      const [rs, msg] = r.output;
      assert.equal(rs!.type, 'reasoning');
      assert.deepEqual((rs as OpenAI.Responses.ResponseReasoningItem).content, [{ type: 'reasoning_text', text: THOUGHT }]);
      assert.deepEqual((rs as OpenAI.Responses.ResponseReasoningItem).summary, []);
      assert.equal(msg!.type, 'message');
      assert.equal(r.output_text, 'echo: hello there', 'the reasoning is not part of the answer text');
      assert.equal(r.usage?.output_tokens_details.reasoning_tokens, completionTokensFor(THOUGHT));
      assert.equal(r.usage?.input_tokens_details.cached_tokens, 4);
      assert.equal(r.usage?.input_tokens, promptTokensFor('chat', lastPost(up).body));
    });
  }

  const shapes: [string, SSEShape | undefined][] = [
    ['compact', undefined],
    ['spaced JSON, CRLF, comments, no [DONE]', { spaced: true, crlf: true, comments: true, done: false }],
  ];
  for (const [name, sse] of shapes) {
    test(`/v1/responses streamed (${name}): reasoning_text events for a reasoning item, then the message`, async () => {
      up.setBehavior({ kind: 'ok', reasoning: THOUGHT, ...(sse ? { sse } : {}) });
      const stream = openai.responses.stream({ model: 'thinker', input: 'hello there' });
      const types: string[] = [];
      let reasoning = '';
      let doneText: string | undefined;
      for await (const ev of stream) {
        types.push(ev.type);
        if (ev.type === 'response.reasoning_text.delta') reasoning += ev.delta;
        if (ev.type === 'response.reasoning_text.done') doneText = ev.text;
      }
      const final = await stream.finalResponse();
      assert.equal(reasoning, THOUGHT, 'the reasoning, incrementally');
      assert.equal(doneText, THOUGHT);
      const first = types.indexOf('response.reasoning_text.delta');
      assert.ok(first > types.indexOf('response.output_item.added') && first > types.indexOf('response.content_part.added'), types.join(' '));
      assert.ok(types.lastIndexOf('response.reasoning_text.delta') < types.indexOf('response.output_text.delta'), 'reasoning before the answer');
      assert.equal(types.filter((t) => t === 'response.output_item.done').length, 2);
      assert.equal(types.at(-1), 'response.completed');
      assert.equal(final.output[0]!.type, 'reasoning');
      assert.deepEqual((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: 'reasoning_text', text: THOUGHT }]);
      assert.equal(final.output[1]!.type, 'message');
      assert.equal(final.output_text, 'echo: hello there');
    });
  }

  test('/v1/responses stored with reasoning: GET gives the same output; the next turn sends no reasoning upstream', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT });
    const r = await openai.responses.create({ model: 'thinker', input: 'hello there', store: true });
    const got = await openai.responses.retrieve(r.id);
    assert.deepEqual(got.output, r.output);
    await openai.responses.create({ model: 'thinker', input: 'and again', previous_response_id: r.id });
    assert.ok(!JSON.stringify(lastPost(up).body.messages).includes(THOUGHT), 'the reasoning stays out of the next prompt');
  });

  test('/v1/messages, streamed and not: reasoning_content becomes a thinking block before the text', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT, cache: { read: 4 } });
    const msg = await claude.messages.create({ model: 'thinker', max_tokens: 256, messages: [{ role: 'user', content: 'hello there' }] });
    assert.deepEqual(msg.content, [
      { type: 'thinking', thinking: THOUGHT, signature: '' },
      { type: 'text', text: 'echo: hello there' },
    ]);
    const prompt = promptTokensFor('chat', lastPost(up).body);
    assert.equal(msg.usage.cache_read_input_tokens, 4);
    assert.equal(msg.usage.input_tokens, prompt - 4);

    const stream = claude.messages.stream({ model: 'thinker', max_tokens: 256, messages: [{ role: 'user', content: 'hello there' }] });
    let thinking = '';
    for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'thinking_delta') thinking += ev.delta.thinking;
    const final = await stream.finalMessage();
    assert.equal(thinking, THOUGHT);
    assert.equal(final.content[0]!.type, 'thinking');
    assert.equal((final.content[0] as Anthropic.ThinkingBlock).thinking, THOUGHT);
    assert.equal(final.content[1]!.type, 'text');
    assert.equal(final.usage.cache_read_input_tokens, 4);
  });

  test('/v1/chat/completions passes reasoning_content through, streamed and not', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT });
    const c = await openai.chat.completions.create({ model: 'thinker', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal((c.choices[0]!.message as unknown as { reasoning_content: string }).reasoning_content, THOUGHT);
    const s = await openai.chat.completions.create({ model: 'thinker', stream: true, messages: [{ role: 'user', content: 'hello there' }] });
    let r = '';
    for await (const ch of s) r += (ch.choices[0]?.delta as { reasoning_content?: string } | undefined)?.reasoning_content ?? '';
    assert.equal(r, THOUGHT);
  });
});
