// Span attributes of model calls against the real gateway process (issue 11), with the official
// openai client: gen_ai.response.finish_reasons on the request span and its attempt span, whole
// and streamed answers, one reason per choice, in the formats real servers stream; and a queue
// span also for a wait for a slot that timed out (capacity_timeout), in error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import OpenAI from 'openai';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type SSEShape, type TestUpstream } from '../helpers/upstream.js';
import type { Trace, TraceSpan, TracesBody } from '../../gateway/wire.js';

let gw: RunningGateway;
let up: TestUpstream;
let narrow: TestUpstream;

function client(session: string): OpenAI {
  return new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 15_000, defaultHeaders: { 'x-airlock-session': session } });
}
const traceOf = (session: string) =>
  eventually(async () => (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data[0], `the trace of ${session}`);
const span = (t: Trace, kind: TraceSpan['kind']) => t.spans.find((s) => s.kind === kind);

before(async () => {
  up = await startUpstream();
  narrow = await startUpstream();
  gw = await startGateway({
    config: {
      endpoints: [
        { name: 'gpu-1', base_url: up.url, health_check: { enabled: false } },
        { name: 'one-slot', base_url: narrow.url, max_concurrency: 1, health_check: { enabled: false } },
      ],
      models: [
        { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
        { name: 'narrow', targets: [{ endpoint: 'one-slot', model: 'test-model' }] },
      ],
      keys: [{ name: 'app', key: TEST_KEY }],
      settings: { queue_timeout_ms: 300 },
    },
  });
});
after(async () => {
  await gw?.stop();
  await up?.close();
  await narrow?.close();
});

describe('gen_ai.response.finish_reasons', () => {
  test('a whole answer: the reason of each choice, on the request span and the attempt span', async () => {
    const session = `fin-whole-${randomUUID()}`;
    up.queue({ kind: 'ok', finishReason: 'length' });
    const r = await client(session).chat.completions.create({ model: 'chat', n: 2, messages: [{ role: 'user', content: 'hi' }] });
    assert.deepEqual(r.choices.map((c) => c.finish_reason), ['length', 'length']);
    const t = await traceOf(session);
    assert.deepEqual(span(t, 'model')!.attributes['gen_ai.response.finish_reasons'], ['length', 'length']);
    assert.deepEqual(span(t, 'attempt')!.attributes['gen_ai.response.finish_reasons'], ['length', 'length']);
  });

  const shapes: [string, SSEShape | undefined][] = [
    ['compact', undefined],
    ['spaced JSON, CRLF, comments, no [DONE]', { spaced: true, crlf: true, comments: true, done: false }],
    ['usage in the last chunk, data: without a space', { usageInLastChunk: true, noSpaceAfterData: true }],
  ];
  for (const [name, sse] of shapes) {
    test(`a streamed answer (${name}): the reason of each choice`, async () => {
      const session = `fin-stream-${randomUUID()}`;
      up.queue({ kind: 'ok', ...(sse ? { sse } : {}) });
      const stream = await client(session).chat.completions.create({ model: 'chat', n: 2, stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'hello there' }] });
      const got: string[] = [];
      for await (const ch of stream) for (const c of ch.choices) if (c.finish_reason) got.push(c.finish_reason);
      assert.deepEqual(got, ['stop', 'stop']);
      const t = await traceOf(session);
      assert.deepEqual(span(t, 'model')!.attributes['gen_ai.response.finish_reasons'], ['stop', 'stop']);
      assert.deepEqual(span(t, 'attempt')!.attributes['gen_ai.response.finish_reasons'], ['stop', 'stop']);
    });
  }

  test('a streamed tool call: tool_calls', async () => {
    const session = `fin-tools-${randomUUID()}`;
    up.queue({ kind: 'ok', finishReason: 'tool_calls' });
    const stream = await client(session).chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'x' }] });
    for await (const _ of stream) void _;
    const t = await traceOf(session);
    assert.deepEqual(span(t, 'model')!.attributes['gen_ai.response.finish_reasons'], ['tool_calls']);
  });

  test('a stream broken before it finished has none', async () => {
    const session = `fin-broken-${randomUUID()}`;
    up.queue({ kind: 'drop-mid-stream', afterChunks: 2 });
    const stream = await client(session).chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'one two three four' }] });
    await assert.rejects(async () => {
      for await (const _ of stream) void _;
    });
    const t = await traceOf(session);
    assert.equal(span(t, 'model')!.attributes['gen_ai.response.finish_reasons'], undefined);
  });
});

describe('queue spans', () => {
  test('a wait for a slot that timed out (capacity_timeout) is traced as a queue span in error; the one that got the slot is not', async () => {
    const holder = `q-holder-${randomUUID()}`;
    const waiter = `q-waiter-${randomUUID()}`;
    // the only slot is held by an answer that takes longer than the queue timeout
    narrow.queue({ kind: 'slow-first-byte', delayMs: 2000 });
    const first = client(holder).chat.completions.create({ model: 'narrow', messages: [{ role: 'user', content: 'slow' }] });
    await eventually(() => narrow.requests.some((r) => r.method === 'POST'), 'the first request upstream');
    await assert.rejects(client(waiter).chat.completions.create({ model: 'narrow', messages: [{ role: 'user', content: 'waits' }] }), (e: { status?: number }) => e.status === 503);
    await first;
    const t = await traceOf(waiter);
    const root = span(t, 'model')!;
    assert.equal(root.status.code, 'error');
    assert.equal(root.attributes['error.type'], 'capacity_timeout');
    const q = span(t, 'queue');
    assert.ok(q, JSON.stringify(t.spans.map((s) => s.kind)));
    assert.equal(q.parent_span_id, root.span_id);
    assert.equal(q.status.code, 'error');
    assert.equal(q.attributes['error.type'], 'capacity_timeout');
    assert.equal(q.attributes['airlock.endpoint'], 'one-slot');
    assert.ok((q.attributes['airlock.queue_ms'] as number) >= 300, String(q.attributes['airlock.queue_ms']));
    assert.equal(span(t, 'attempt'), undefined, 'no attempt was made');
    const held = await traceOf(holder);
    assert.equal(span(held, 'queue'), undefined);
    assert.equal(span(held, 'model')!.status.code, 'ok');
  });
});
