// Output guardrails over what a model thinks before it answers: a Chat Completions server's
// `reasoning_content` / `reasoning` (streamed and not), the reasoning item of /v1/responses and the
// thinking block of /v1/messages made from it, and a native `type: anthropic` endpoint's thinking
// blocks — redacted, blocked or recorded by the same policies as the answer's text, with a secret
// split across reasoning chunks character by character and at random. Through the real gateway
// process with the official `openai` and `@anthropic-ai/sdk` clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { TEST_KEY, eventually, type RunningGateway } from '../helpers/gateway.js';
import { nativeEndpoints, startNative, type NativeSetup } from '../helpers/native-messages.js';
import { randomChunks } from '../helpers/random.js';
import type { TestUpstream } from '../helpers/upstream.js';

const GH = 'ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5';
const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const filler = 'Let me think about the quarterly numbers across every region before I answer. ';
const THOUGHT = `${filler}The token in the config is ${GH} and the card is ${CARD}. ${filler}`;
const REDACTED = THOUGHT.replace(GH, '[GITHUB_TOKEN_1]').replace(CARD, '[CARD_1]');
const ANSWER = 'echo: hello there';

function config(url: string) {
  const target = (endpoint: string, model: string) => [{ endpoint, model }];
  return {
    endpoints: nativeEndpoints(url),
    models: [
      { name: 'thinker', targets: target('gpu-1', 'qwq') },
      { name: 'native', targets: target('claude-box', 'claude-local') },
      { name: 'strict', targets: target('gpu-1', 'qwq') },
      { name: 'watched', targets: target('gpu-1', 'qwq') },
    ],
    teams: [{ name: 'research' }],
    keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research' }],
    guardrails: [
      { name: 'no-secrets-out', direction: ['output'], detectors: ['secrets', 'card'], action: 'redact', scope: { models: ['thinker', 'native'] } },
      { name: 'no-forbidden-out', direction: ['output'], detectors: [{ type: 'keywords', words: ['forbidden topic'] }], action: 'block', scope: { models: ['strict'] } },
      { name: 'watch-emails', direction: ['output'], detectors: ['email'], action: 'block', mode: 'shadow', scope: { models: ['watched'] } },
    ],
  };
}

const chunkings: [string, string[]][] = [
  ['char by char', [...THOUGHT]],
  ['random chunks', randomChunks(THOUGHT, 7)],
];

type Reasoned = { reasoning_content?: string; reasoning?: string };

describe('output guardrails scan the reasoning', () => {
  let setup: NativeSetup;
  let up: TestUpstream;
  let gw: RunningGateway;
  let openai: OpenAI;
  let claude: Anthropic;
  const events = async (id: string): Promise<any[]> => (await gw.admin<{ data: any[] }>('GET', `/guardrail-events?request_id=${id}`)).body.data;

  before(async () => {
    setup = await startNative(['claude-local', 'qwq'], config);
    ({ up, gw, openai, claude } = setup);
  });
  after(() => setup?.close());

  for (const field of ['reasoning_content', 'reasoning'] as const) {
    test(`/v1/chat/completions, whole (${field}): the reasoning is redacted, the answer untouched, the hits recorded`, async () => {
      up.setBehavior({ kind: 'ok', reasoning: THOUGHT, reasoningField: field });
      const { data, response } = await openai.chat.completions.create({ model: 'thinker', messages: [{ role: 'user', content: 'hello there' }] }).withResponse();
      const m = data.choices[0]!.message as unknown as Reasoned & { content: string };
      assert.equal(m[field], REDACTED);
      assert.equal(m.content, ANSWER);
      const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((e) => e.policy === 'no-secrets-out'), 'the event');
      assert.equal(ev.outcome, 'redacted');
      assert.deepEqual(ev.detectors, { 'secrets:GITHUB_TOKEN': 1, 'pii:CARD': 1 });
    });

    for (const [how, pieces] of chunkings)
      test(`/v1/chat/completions streamed (${field}, ${how}): the split secret never reaches the client; reasoning before the answer`, async () => {
        up.setBehavior({ kind: 'ok', reasoningPieces: pieces, reasoningField: field });
        const s = await openai.chat.completions.create({ model: 'thinker', stream: true, messages: [{ role: 'user', content: 'hello there' }] });
        let thought = '';
        let text = '';
        for await (const c of s) {
          const d = c.choices[0]?.delta as (Reasoned & { content?: string }) | undefined;
          const r = d?.[field] ?? '';
          if (r) assert.equal(text, '', 'no reasoning after the answer started');
          thought += r;
          text += d?.content ?? '';
        }
        assert.equal(thought, REDACTED);
        assert.equal(text, ANSWER);
      });
  }

  test('/v1/responses, whole and streamed (random chunks): the reasoning item is redacted', async () => {
    up.setBehavior({ kind: 'ok', reasoning: THOUGHT });
    const r = await openai.responses.create({ model: 'thinker', input: 'hello there' });
    assert.deepEqual((r.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: 'reasoning_text', text: REDACTED }]);
    assert.equal(r.output_text, ANSWER);

    up.setBehavior({ kind: 'ok', reasoningPieces: randomChunks(THOUGHT, 11) });
    const stream = openai.responses.stream({ model: 'thinker', input: 'hello there' });
    let deltas = '';
    for await (const ev of stream) if (ev.type === 'response.reasoning_text.delta') deltas += ev.delta;
    const final = await stream.finalResponse();
    assert.equal(deltas, REDACTED);
    assert.deepEqual((final.output[0] as OpenAI.Responses.ResponseReasoningItem).content, [{ type: 'reasoning_text', text: REDACTED }]);
    assert.equal(final.output_text, ANSWER);
  });

  for (const model of ['thinker', 'native'])
    test(`/v1/messages (${model === 'native' ? 'a native endpoint' : 'translated'}), whole and streamed char by char: the thinking block is redacted`, async () => {
      up.setBehavior({ kind: 'ok', reasoning: THOUGHT });
      const body = { model, max_tokens: 256, messages: [{ role: 'user' as const, content: 'hello there' }] };
      const msg = await claude.messages.create(body);
      const thinking = msg.content.find((b) => b.type === 'thinking') as Anthropic.ThinkingBlock;
      assert.equal(thinking.thinking, REDACTED);
      assert.equal((msg.content.at(-1) as Anthropic.TextBlock).text, ANSWER);
      if (model === 'native') assert.equal(thinking.signature, `sig-${THOUGHT.length}`, 'the signature is passed on as the server sent it');

      up.setBehavior({ kind: 'ok', reasoningPieces: [...THOUGHT] });
      const stream = claude.messages.stream(body);
      let deltas = '';
      for await (const ev of stream) if (ev.type === 'content_block_delta' && ev.delta.type === 'thinking_delta') deltas += ev.delta.thinking;
      const final = await stream.finalMessage();
      assert.equal(deltas, REDACTED);
      assert.equal((final.content.find((b) => b.type === 'thinking') as Anthropic.ThinkingBlock).thinking, REDACTED);
      assert.equal((final.content.at(-1) as Anthropic.TextBlock).text, ANSWER);
    });

  test('a blocked word in the reasoning: a whole answer is a 400, a stream ends with an in-band error the SDK raises, nothing of the word sent', async () => {
    const thought = `${filler.repeat(3)}Now the forbidden topic itself. ${filler}`;
    up.setBehavior({ kind: 'ok', reasoning: thought });
    await assert.rejects(openai.chat.completions.create({ model: 'strict', messages: [{ role: 'user', content: 'hello there' }] }), (e: unknown) => {
      assert.equal((e as { code?: string }).code, 'guardrail_blocked');
      assert.match((e as Error).message, /no-forbidden-out/);
      assert.ok(!/forbidden/i.test((e as Error).message.replace('no-forbidden-out', '')), 'the message never repeats the text');
      return true;
    });

    up.setBehavior({ kind: 'ok', reasoningPieces: [...thought] });
    const s = await openai.chat.completions.create({ model: 'strict', stream: true, messages: [{ role: 'user', content: 'hello there' }] });
    let got = '';
    await assert.rejects(
      (async () => {
        for await (const c of s) got += (c.choices[0]?.delta as Reasoned | undefined)?.reasoning_content ?? '';
      })(),
      /no-forbidden-out/,
    );
    assert.ok(got.length > 0, 'reasoning before the word reached the client');
    assert.ok(!/forbidden/i.test(got), got);

    const ms = claude.messages.stream({ model: 'strict', max_tokens: 256, messages: [{ role: 'user', content: 'hello there' }] });
    await assert.rejects(
      (async () => {
        for await (const ev of ms) void ev;
      })(),
      /no-forbidden-out/,
    );
  });

  test('shadow: the reasoning goes on unchanged, the hit is recorded', async () => {
    const thought = `${filler}Mail ${EMAIL} about it. ${filler}`;
    up.setBehavior({ kind: 'ok', reasoningPieces: [...thought] });
    const { data: s, response } = await openai.chat.completions.create({ model: 'watched', stream: true, messages: [{ role: 'user', content: 'hello there' }] }).withResponse();
    let got = '';
    for await (const c of s) got += (c.choices[0]?.delta as Reasoned | undefined)?.reasoning_content ?? '';
    assert.equal(got, thought);
    const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((e) => e.policy === 'watch-emails'), 'the shadow event');
    assert.equal(ev.outcome, 'shadow');
    assert.equal(ev.blocked, false);
    assert.deepEqual(ev.detectors, { 'pii:EMAIL': 1 });
  });
});
