// The simulated model server must itself be right before other tests trust it: the official
// openai client talks to it directly, and each misbehaviour is observed at the HTTP level.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import {
  TOOL_ARGUMENTS,
  completionTokensFor,
  embeddingFor,
  promptTokensFor,
  pythonJson,
  startUpstream,
  type SSEShape,
  type TestUpstream,
} from '../helpers/upstream.js';

async function waitFor(what: string, cond: () => boolean): Promise<void> {
  for (let i = 0; i < 2000; i++) {
    if (cond()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.fail(`gave up waiting for ${what}`);
}

/** The data of each `data:` line of an SSE body. */
function sseData(text: string): string[] {
  return text
    .split('\n\n')
    .filter((b) => b.startsWith('data: '))
    .map((b) => b.slice(6));
}

/** Read a response body until it ends or fails; returns what arrived and the error if any. */
async function readAll(res: Response): Promise<{ text: string; error: unknown }> {
  const reader = res.body!.getReader();
  const dec = new TextDecoder();
  let text = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      text += dec.decode(value, { stream: true });
    }
    return { text, error: undefined };
  } catch (e) {
    return { text, error: e };
  }
}

function post(up: TestUpstream, path: string, body: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(up.origin + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    ...(signal ? { signal } : {}),
  });
}

const chatBody = (stream: boolean, extra: Record<string, unknown> = {}) => ({
  model: 'm',
  stream,
  messages: [{ role: 'user', content: 'hello big world' }],
  ...extra,
});

describe('test upstream through the openai client', () => {
  let up: TestUpstream;
  let client: OpenAI;
  before(async () => {
    up = await startUpstream({ models: ['alpha', 'beta'] });
    client = new OpenAI({ baseURL: up.url, apiKey: 'sk-upstream-test', maxRetries: 0 });
  });
  after(() => up.close());
  beforeEach(() => {
    up.setBehavior({ kind: 'ok' });
    up.setModelsResponse(null);
  });

  test('url, origin and port describe the listening server', () => {
    assert.match(up.origin, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(up.url, `${up.origin}/v1`);
    assert.equal(up.origin, `http://127.0.0.1:${up.port}`);
  });

  test('models.list returns the configured models; /api/tags answers in Ollama shape', async () => {
    const ids: string[] = [];
    for await (const m of client.models.list()) ids.push(m.id);
    assert.deepEqual(ids, ['alpha', 'beta']);
    const tags = (await (await fetch(`${up.origin}/api/tags`)).json()) as { models: { name: string; model: string; size: number }[] };
    assert.deepEqual(
      tags.models.map((m) => [m.name, m.model, m.size]),
      [
        ['alpha', 'alpha', 0],
        ['beta', 'beta', 0],
      ],
    );
    const last = up.requests.at(-1)!;
    assert.equal(last.method, 'GET');
    assert.equal(last.path, '/api/tags');
  });

  test('non-stream chat: echo of the last user message, the requested model, usage', async () => {
    const messages = [
      { role: 'system' as const, content: 'be brief' },
      { role: 'user' as const, content: 'first question' },
      { role: 'assistant' as const, content: 'an answer' },
      { role: 'user' as const, content: 'hello big world' },
    ];
    const r = await client.chat.completions.create({ model: 'alpha', messages });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'alpha');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.equal(r.choices[0]!.message.content, 'echo: hello big world');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    const pt = promptTokensFor('chat', { messages });
    // 3 + (3+2) + (3+4) + (3+3) + (3+4): the count is per message, not the gateway's estimate
    assert.equal(pt, 28);
    assert.deepEqual(r.usage, { prompt_tokens: pt, completion_tokens: 4, total_tokens: pt + 4 });

    const rec = up.completions().at(-1)!;
    assert.equal(rec.path, '/v1/chat/completions');
    assert.equal(rec.headers.authorization, 'Bearer sk-upstream-test');
    assert.deepEqual(rec.body.messages, messages);
  });

  test('non-stream chat honours n', async () => {
    const r = await client.chat.completions.create({ model: 'alpha', n: 3, messages: [{ role: 'user', content: 'a b' }] });
    assert.deepEqual(
      r.choices.map((c) => [c.index, c.message.content]),
      [
        [0, 'echo: a b'],
        [1, 'echo: a b'],
        [2, 'echo: a b'],
      ],
    );
    assert.equal(r.usage!.completion_tokens, 9);
  });

  test('streamed chat: role chunk, one chunk per word, finish, usage only when asked, [DONE]', async () => {
    const content = 'echo: the  quick brown fox';
    const stream = await client.chat.completions.create({
      model: 'beta',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'the  quick brown fox' }],
    });
    const chunks = [];
    for await (const c of stream) chunks.push(c);
    const ids = new Set(chunks.map((c) => c.id));
    assert.equal(ids.size, 1);
    assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk' && c.model === 'beta'));
    assert.deepEqual(chunks[0]!.choices[0]!.delta, { role: 'assistant', content: '' });
    const words = chunks.slice(1, -2);
    assert.equal(words.length, 5);
    assert.equal(words.map((c) => c.choices[0]!.delta.content).join(''), content);
    const fin = chunks.at(-2)!;
    assert.deepEqual(fin.choices[0]!.delta, {});
    assert.equal(fin.choices[0]!.finish_reason, 'stop');
    const usage = chunks.at(-1)!;
    assert.deepEqual(usage.choices, []);
    assert.deepEqual(usage.usage, {
      prompt_tokens: promptTokensFor('chat', { messages: [{ role: 'user', content: 'the  quick brown fox' }] }),
      completion_tokens: 5,
      total_tokens: usage.usage!.prompt_tokens + 5,
    });

    // without include_usage: no usage chunk; the raw stream ends with [DONE]
    const res = await post(up, '/v1/chat/completions', chatBody(true));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const data = sseData(await res.text());
    assert.equal(data.at(-1), '[DONE]');
    const parsed = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.ok(parsed.every((p) => p.usage === undefined));
    assert.equal(parsed.map((p) => p.choices[0].delta.content ?? '').join(''), 'echo: hello big world');
  });

  test('streamed chat honours n: every choice gets its role, content and finish', async () => {
    const stream = await client.chat.completions.create({ model: 'alpha', n: 2, stream: true, messages: [{ role: 'user', content: 'x y' }] });
    const text = ['', ''];
    const finish: (string | null)[] = [null, null];
    for await (const c of stream) {
      for (const ch of c.choices) {
        text[ch.index] += ch.delta.content ?? '';
        if (ch.finish_reason) finish[ch.index] = ch.finish_reason;
      }
    }
    assert.deepEqual(text, ['echo: x y', 'echo: x y']);
    assert.deepEqual(finish, ['stop', 'stop']);
  });

  const tools = [
    { type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } },
    { type: 'function' as const, function: { name: 'other', parameters: { type: 'object' } } },
  ];

  test('tools + "use tool": a tool call to the first tool (non-stream)', async () => {
    const r = await client.chat.completions.create({ model: 'alpha', tools, messages: [{ role: 'user', content: 'please use tool now' }] });
    const c = r.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.content, null);
    assert.equal(c.message.tool_calls!.length, 1);
    const call = c.message.tool_calls![0]!;
    assert.equal(call.type, 'function');
    assert.ok(call.type === 'function');
    assert.equal(call.function.name, 'lookup');
    assert.deepEqual(JSON.parse(call.function.arguments), { q: 'x' });
    assert.ok(call.id.length > 0);

    // tools present but not asked for: a normal answer
    const plain = await client.chat.completions.create({ model: 'alpha', tools, messages: [{ role: 'user', content: 'just talk' }] });
    assert.equal(plain.choices[0]!.message.content, 'echo: just talk');
    assert.equal(plain.choices[0]!.finish_reason, 'stop');
  });

  test('tools + "use tool": tool-call deltas the openai stream helper assembles', async () => {
    const runner = client.chat.completions.stream({ model: 'alpha', tools, messages: [{ role: 'user', content: 'use tool' }] });
    const final = await runner.finalChatCompletion();
    const c = final.choices[0]!;
    assert.equal(c.finish_reason, 'tool_calls');
    assert.equal(c.message.tool_calls!.length, 1);
    const call = c.message.tool_calls![0]!;
    assert.ok(call.type === 'function');
    assert.equal(call.function.name, 'lookup');
    assert.equal(call.function.arguments, TOOL_ARGUMENTS);
  });

  test('completions: text choices, streamed pieces join to the full text', async () => {
    const r = await client.completions.create({ model: 'alpha', prompt: 'once upon' });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.model, 'alpha');
    assert.equal(r.choices[0]!.text, 'echo: once upon');
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    assert.deepEqual(r.usage, { prompt_tokens: 1 + 3, completion_tokens: 3, total_tokens: 7 });

    const s = await client.completions.create({ model: 'alpha', prompt: 'once upon', stream: true, stream_options: { include_usage: true } });
    let text = '';
    let finish: string | null = null;
    let usage: unknown;
    for await (const c of s) {
      for (const ch of c.choices) {
        text += ch.text;
        if (ch.finish_reason) finish = ch.finish_reason;
      }
      if (c.usage) usage = c.usage;
    }
    assert.equal(text, 'echo: once upon');
    assert.equal(finish, 'stop');
    assert.deepEqual(usage, { prompt_tokens: 4, completion_tokens: 3, total_tokens: 7 });
  });

  test('embeddings: one deterministic 8-float vector per input (float and base64 encodings)', async () => {
    const one = await client.embeddings.create({ model: 'alpha', input: 'hello' });
    assert.equal(one.object, 'list');
    assert.equal(one.data.length, 1);
    assert.deepEqual(one.data[0]!.embedding, embeddingFor('hello').map(Math.fround));
    // the client asked for base64 (its default) and decoded it
    assert.equal(up.completions().at(-1)!.body.encoding_format, 'base64');

    const many = await client.embeddings.create({ model: 'alpha', input: ['a', 'bb', 'a'], encoding_format: 'float' });
    assert.deepEqual(
      many.data.map((d) => d.index),
      [0, 1, 2],
    );
    assert.deepEqual(many.data[0]!.embedding, embeddingFor('a'));
    assert.deepEqual(many.data[2]!.embedding, many.data[0]!.embedding);
    assert.notDeepEqual(many.data[1]!.embedding, many.data[0]!.embedding);
    assert.ok(many.data.every((d) => d.embedding.length === 8 && d.embedding.every((x) => Number.isFinite(x) && x >= -1 && x < 1)));
    assert.equal(many.model, 'alpha');
    assert.deepEqual(many.usage, { prompt_tokens: 3 * 2 + 1 + 1 + 1, total_tokens: 9 });
  });

  test('helpers agree with what the server reports', () => {
    assert.equal(completionTokensFor(' a  b\tc\n'), 3);
    assert.equal(completionTokensFor(''), 0);
    assert.deepEqual(embeddingFor('same'), embeddingFor('same'));
  });

  test('ok options: content, finishReason, usage:false, chunkDelayMs', async () => {
    up.setBehavior({ kind: 'ok', content: 'fixed reply', finishReason: 'length', usage: false });
    const r = await client.chat.completions.create({ model: 'alpha', messages: [{ role: 'user', content: 'q' }] });
    assert.equal(r.choices[0]!.message.content, 'fixed reply');
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage, undefined);

    const s = await client.chat.completions.create({
      model: 'alpha',
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: 'user', content: 'q' }],
    });
    let sawUsage = false;
    let text = '';
    for await (const c of s) {
      if (c.usage) sawUsage = true;
      text += c.choices[0]?.delta.content ?? '';
    }
    assert.equal(sawUsage, false);
    assert.equal(text, 'fixed reply');

    up.setBehavior({ kind: 'ok', chunkDelayMs: 2 });
    const slow = await client.chat.completions.create({ model: 'alpha', stream: true, messages: [{ role: 'user', content: 'one two three' }] });
    text = '';
    for await (const c of slow) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'echo: one two three');
    const slowWhole = await client.chat.completions.create({ model: 'alpha', messages: [{ role: 'user', content: 'one two' }] });
    assert.equal(slowWhole.choices[0]!.message.content, 'echo: one two');
  });

  test('ok sse: each format option as written on the wire; no option = the default bytes; the openai client reads them all', async () => {
    const body = chatBody(true, { stream_options: { include_usage: true } });
    const raw = async (sse?: SSEShape, path = '/v1/chat/completions', b: unknown = body) => {
      up.setBehavior(sse ? { kind: 'ok', sse } : { kind: 'ok' });
      const r = await post(up, path, b);
      assert.equal(r.status, 200);
      // ids and timestamps differ from one answer to the next
      return (await r.text()).replace(/"id":( ?)"(?:chat)?cmpl-\d+"/g, (_, sp: string) => `"id":${sp}"X"`).replace(/"created":( ?)\d+/g, (_, sp: string) => `"created":${sp}0`);
    };
    const plain = await raw();
    assert.equal(await raw({}), plain, 'sse: {} writes the default format byte for byte');
    assert.equal(await raw({ done: true }), plain);
    const events = sseData(plain).map((d) => (d === '[DONE]' ? d : JSON.parse(d)));

    const spaced = await raw({ spaced: true });
    assert.ok(spaced.includes('{"id": "X", "object": "chat.completion.chunk", "created": 0, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}'), spaced);
    assert.deepEqual(sseData(spaced).map((d) => (d === '[DONE]' ? d : JSON.parse(d))), events, 'the same events');
    assert.equal(pythonJson({ a: [1, 'é', null, { b: true }], c: {} }), '{"a": [1, "\\u00e9", null, {"b": true}], "c": {}}');

    const crlf = await raw({ crlf: true });
    assert.equal(crlf, plain.replaceAll('\n', '\r\n'));
    assert.equal(await raw({ done: false }), plain.replace('data: [DONE]\n\n', ''));
    assert.equal(await raw({ noSpaceAfterData: true }), plain.replaceAll('data: ', 'data:'));

    const comments = await raw({ comments: true });
    assert.ok(comments.startsWith(': connected\n\ndata: '), comments);
    assert.ok(comments.includes('\n\n: ping\n\ndata: '), comments);
    assert.ok(comments.includes('\n\n: last event\ndata: {"id":"X","object":"chat.completion.chunk","created":0,"model":"m","choices":[],"usage":'), comments);
    assert.equal(comments.replace(/^: [^\n]*\n(\n)?/gm, ''), plain, 'only comment lines added');

    const inLast = await raw({ usageInLastChunk: true });
    const lastEvents = sseData(inLast);
    assert.equal(lastEvents.length, events.length - 1, 'no usage-only chunk');
    const finish = JSON.parse(lastEvents.at(-2)!);
    assert.equal(finish.choices[0].finish_reason, 'stop');
    assert.deepEqual(finish.usage, (events.at(-2) as { usage: unknown }).usage, 'the usage moved into the finish chunk');
    // without include_usage there is no usage to move
    assert.equal(await raw({ usageInLastChunk: true }, '/v1/chat/completions', chatBody(true)), await raw(undefined, '/v1/chat/completions', chatBody(true)));

    // completions: the same options apply
    const cBody = { model: 'm', prompt: 'abc', stream: true, stream_options: { include_usage: true } };
    const cPlain = await raw(undefined, '/v1/completions', cBody);
    assert.equal(await raw({ crlf: true, noSpaceAfterData: true }, '/v1/completions', cBody), cPlain.replaceAll('data: ', 'data:').replaceAll('\n', '\r\n'));

    // the openai client reads every format
    const all: SSEShape = { spaced: true, crlf: true, done: false, comments: true, usageInLastChunk: true, noSpaceAfterData: true };
    for (const sse of [{ spaced: true }, { crlf: true }, { done: false }, { comments: true }, { usageInLastChunk: true }, { noSpaceAfterData: true }, all]) {
      up.setBehavior({ kind: 'ok', sse });
      const s = await client.chat.completions.create({ model: 'alpha', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content: 'one two three' }] });
      let text = '';
      let usage: OpenAI.CompletionUsage | undefined | null;
      for await (const c of s) {
        text += c.choices[0]?.delta.content ?? '';
        usage ??= c.usage;
      }
      assert.equal(text, 'echo: one two three', JSON.stringify(sse));
      assert.equal(usage?.completion_tokens, completionTokensFor('echo: one two three'), JSON.stringify(sse));
    }
  });

  test('inflight returns to 0 and nothing counts as aborted after normal requests', async () => {
    await waitFor('inflight 0', () => up.inflight === 0);
    assert.equal(up.aborted, 0);
  });
});

describe('test upstream misbehaviours', () => {
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());
  beforeEach(async () => {
    await waitFor('previous requests to end', () => up.inflight === 0);
    up.setBehavior({ kind: 'ok' });
    up.setModelsResponse(null);
    up.reset();
  });

  test('status: code, retry-after and an OpenAI-shaped error body; custom body', async () => {
    up.setBehavior({ kind: 'status', status: 429, retryAfter: '3' });
    const res = await post(up, '/v1/chat/completions', chatBody(false));
    assert.equal(res.status, 429);
    assert.equal(res.headers.get('retry-after'), '3');
    const j = (await res.json()) as { error: { message: string; type: string } };
    assert.equal(typeof j.error.message, 'string');
    assert.equal(typeof j.error.type, 'string');

    up.setBehavior({ kind: 'status', status: 503, body: 'overloaded' });
    const r2 = await post(up, '/v1/completions', { model: 'm', prompt: 'x' });
    assert.equal(r2.status, 503);
    assert.equal(r2.headers.get('retry-after'), null);
    assert.equal(await r2.text(), 'overloaded');
  });

  test('the openai client sees a status behaviour as an API error', async () => {
    const client = new OpenAI({ baseURL: up.url, apiKey: 'k', maxRetries: 0 });
    up.setBehavior({ kind: 'status', status: 500 });
    await assert.rejects(
      client.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'x' }] }),
      (e: unknown) => e instanceof OpenAI.APIError && e.status === 500,
    );
  });

  test('queue: one-shot behaviours in order, then the default', async () => {
    up.queue({ kind: 'status', status: 500 }, { kind: 'status', status: 429 });
    const statuses = [];
    for (let i = 0; i < 3; i++) {
      const r = await post(up, '/v1/chat/completions', chatBody(false));
      await r.arrayBuffer();
      statuses.push(r.status);
    }
    assert.deepEqual(statuses, [500, 429, 200]);
  });

  test('queue is consumed by POSTs only, not by model discovery', async () => {
    up.queue({ kind: 'status', status: 502 });
    const m = await fetch(`${up.url}/models`);
    assert.equal(m.status, 200);
    await m.arrayBuffer();
    const r = await post(up, '/v1/embeddings', { model: 'm', input: 'x' });
    assert.equal(r.status, 502);
    await r.arrayBuffer();
  });

  test('a behaviour function decides per request', async () => {
    up.setBehavior((req) => (req.body?.model === 'sick' ? { kind: 'status', status: 503 } : { kind: 'ok' }));
    const a = await post(up, '/v1/chat/completions', chatBody(false, { model: 'sick' }));
    const b = await post(up, '/v1/chat/completions', chatBody(false, { model: 'fine' }));
    assert.equal(a.status, 503);
    assert.equal(b.status, 200);
    assert.equal(((await b.json()) as { model: string }).model, 'fine');
    await a.arrayBuffer();
  });

  test('slow-first-byte then another behaviour', async () => {
    up.setBehavior({ kind: 'slow-first-byte', delayMs: 10, then: { kind: 'status', status: 504 } });
    const r = await post(up, '/v1/chat/completions', chatBody(false));
    assert.equal(r.status, 504);
    await r.arrayBuffer();
    up.setBehavior({ kind: 'slow-first-byte', delayMs: 10 });
    const ok = await post(up, '/v1/chat/completions', chatBody(true));
    assert.equal(ok.status, 200);
    assert.equal(sseData(await ok.text()).at(-1), '[DONE]');
  });

  test('slow-first-byte sends no headers before the delay; a client that gives up counts as aborted', async () => {
    up.setBehavior({ kind: 'slow-first-byte', delayMs: 600_000 });
    const ctl = new AbortController();
    let gotHeaders = false;
    const p = post(up, '/v1/chat/completions', chatBody(true), ctl.signal).then(() => {
      gotHeaders = true;
    });
    await waitFor('the request to arrive', () => up.inflight === 1 && up.completions().length === 1);
    ctl.abort();
    await assert.rejects(p, { name: 'AbortError' });
    assert.equal(gotHeaders, false);
    await waitFor('the upstream to notice', () => up.inflight === 0);
    assert.equal(up.aborted, 1);
  });

  test('hang: never answers; ends when the client disconnects', async () => {
    up.setBehavior({ kind: 'hang' });
    const ctl = new AbortController();
    const p = post(up, '/v1/chat/completions', chatBody(false), ctl.signal);
    const p2 = post(up, '/v1/embeddings', { model: 'm', input: 'x' }, ctl.signal);
    await waitFor('two hanging requests', () => up.inflight === 2);
    assert.equal(up.aborted, 0);
    ctl.abort();
    await assert.rejects(p, { name: 'AbortError' });
    await assert.rejects(p2, { name: 'AbortError' });
    await waitFor('the upstream to notice', () => up.inflight === 0);
    assert.equal(up.aborted, 2);
  });

  test('drop-mid-stream (stream): role chunk + N content chunks, then the connection is cut', async () => {
    up.setBehavior({ kind: 'drop-mid-stream', afterChunks: 2 });
    const res = await post(up, '/v1/chat/completions', chatBody(true, { messages: [{ role: 'user', content: 'one two three four' }] }));
    assert.equal(res.status, 200);
    const { text, error } = await readAll(res);
    assert.ok(error, 'reading the body must fail');
    const data = sseData(text).map((d) => JSON.parse(d));
    assert.equal(data.length, 3);
    assert.deepEqual(data[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.equal(data[1].choices[0].delta.content + data[2].choices[0].delta.content, 'echo: one ');
    assert.ok(!text.includes('[DONE]') && !text.includes('finish_reason":"'));
    await waitFor('close', () => up.inflight === 0);
    assert.equal(up.aborted, 0, 'a drop by the upstream is not a client abort');
  });

  test('drop-mid-stream (non-stream): half of the JSON, then the connection is cut', async () => {
    up.setBehavior({ kind: 'drop-mid-stream', afterChunks: 1 });
    const res = await post(up, '/v1/chat/completions', chatBody(false));
    assert.equal(res.status, 200);
    const { text, error } = await readAll(res);
    assert.ok(error, 'reading the body must fail');
    assert.ok(text.startsWith('{"id":"chatcmpl-'));
    assert.throws(() => JSON.parse(text));
  });

  test('drop-before-content: headers and a role-only chunk, then the cut; non-stream: no answer', async () => {
    up.setBehavior({ kind: 'drop-before-content' });
    const res = await post(up, '/v1/chat/completions', chatBody(true));
    assert.equal(res.status, 200);
    const { text, error } = await readAll(res);
    assert.ok(error);
    const data = sseData(text).map((d) => JSON.parse(d));
    assert.equal(data.length, 1);
    assert.deepEqual(data[0].choices[0].delta, { role: 'assistant', content: '' });

    await assert.rejects(post(up, '/v1/chat/completions', chatBody(false)));
    await waitFor('close', () => up.inflight === 0);
    assert.equal(up.aborted, 0);
  });

  test('error-event-before-content: 200 and an error event, then a clean end without [DONE]', async () => {
    up.setBehavior({ kind: 'error-event-before-content' });
    const res = await post(up, '/v1/chat/completions', chatBody(true));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const { text, error } = await readAll(res);
    assert.equal(error, undefined);
    const data = sseData(text);
    assert.equal(data.length, 1);
    assert.ok(data[0]!.startsWith('{"error"'));
    assert.equal(typeof JSON.parse(data[0]!).error.message, 'string');
  });

  test('invalid-json and wrong-content-type', async () => {
    up.setBehavior({ kind: 'invalid-json' });
    const a = await post(up, '/v1/chat/completions', chatBody(false));
    assert.equal(a.status, 200);
    assert.match(a.headers.get('content-type')!, /application\/json/);
    const body = await a.text();
    assert.ok(body.length > 0);
    assert.throws(() => JSON.parse(body));

    up.setBehavior({ kind: 'wrong-content-type' });
    const b = await post(up, '/v1/chat/completions', chatBody(true));
    assert.equal(b.status, 200);
    assert.match(b.headers.get('content-type')!, /^text\/html/);
    assert.match(await b.text(), /<html/);
  });

  test('setModelsResponse changes both discovery endpoints; null restores them', async () => {
    up.setModelsResponse({ kind: 'status', status: 500 });
    for (const path of ['/v1/models', '/api/tags']) {
      const r = await fetch(up.origin + path);
      assert.equal(r.status, 500, path);
      await r.arrayBuffer();
    }
    up.setModelsResponse({ kind: 'invalid-json' });
    const g = await fetch(`${up.url}/models`);
    assert.equal(g.status, 200);
    await assert.rejects(g.json());
    // the POST endpoints are not affected
    const c = await post(up, '/v1/chat/completions', chatBody(false));
    assert.equal(c.status, 200);
    await c.arrayBuffer();
    up.setModelsResponse(null);
    const ok = (await (await fetch(`${up.url}/models`)).json()) as { object: string; data: { id: string; object: string; owned_by: string }[] };
    assert.deepEqual(ok, { object: 'list', data: [{ id: 'test-model', object: 'model', created: 0, owned_by: 'test' }] });
  });

  test('unknown paths and methods get 404 JSON; a body that is not JSON gets 400', async () => {
    for (const [method, path] of [
      ['GET', '/v1/chat/completions'],
      ['POST', '/v1/models'],
      ['POST', '/chat/completions'],
      ['GET', '/nope'],
    ] as const) {
      const r = await fetch(up.origin + path, { method, ...(method === 'POST' ? { body: '{}' } : {}) });
      assert.equal(r.status, 404, `${method} ${path}`);
      assert.equal(typeof ((await r.json()) as { error: { message: string } }).error.message, 'string');
    }
    const bad = await fetch(`${up.url}/chat/completions`, { method: 'POST', body: '{"model":' });
    assert.equal(bad.status, 400);
    await bad.arrayBuffer();
    const rec = up.requests.at(-1)!;
    assert.equal(rec.body, '{"model":', 'an unparseable body is recorded raw');
  });

  test('requests are recorded with method, path, headers, parsed body and time; completions() filters POSTs', async () => {
    const before = Date.now();
    await (await fetch(`${up.url}/models`)).arrayBuffer();
    const r = await fetch(`${up.url}/chat/completions?x=1`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-custom': 'v' },
      body: JSON.stringify(chatBody(false)),
    });
    await r.arrayBuffer();
    assert.equal(up.requests.length, 2);
    assert.equal(up.requests[0]!.method, 'GET');
    assert.equal(up.requests[0]!.body, undefined);
    const post1 = up.requests[1]!;
    assert.equal(post1.path, '/v1/chat/completions?x=1');
    assert.equal(post1.headers['x-custom'], 'v');
    assert.deepEqual(post1.body, chatBody(false));
    assert.ok(post1.at >= before);
    assert.deepEqual(up.completions(), [post1]);
  });
});

describe('test upstream: oversized and endless answers', () => {
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
  });
  after(() => up.close());
  beforeEach(() => {
    up.setBehavior({ kind: 'ok' });
    up.setModelsResponse(null);
    up.reset();
  });

  /** Read a body up to `limit` bytes, then give up (the connection is cut); returns what arrived. */
  async function readSome(res: Response, limit: number, ctl: AbortController): Promise<Buffer> {
    const reader = res.body!.getReader();
    const parts: Uint8Array[] = [];
    let n = 0;
    while (n < limit) {
      const { done, value } = await reader.read();
      if (done) break;
      parts.push(value);
      n += value.length;
    }
    ctl.abort();
    await reader.cancel().catch(() => {});
    return Buffer.concat(parts);
  }

  test('huge-event (stream): content chunks, then one data line of exactly N bytes, then the rest of the answer', async () => {
    const N = 300_000;
    up.setBehavior({ kind: 'huge-event', bytes: N, afterChunks: 1 });
    const res = await post(up, '/v1/chat/completions', chatBody(true, { messages: [{ role: 'user', content: 'one two three' }] }));
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    const text = await res.text();
    const lines = text.split('\n');
    const big = lines.find((l) => l.length > 1000)!;
    assert.equal(big.length, N, 'the event line is N bytes, line end excluded');
    const data = sseData(text).filter((d) => d !== '[DONE]').map((d) => JSON.parse(d));
    const content = data.map((d) => d.choices[0]?.delta?.content ?? '').join('');
    const xs = content.match(/x+/)![0];
    assert.equal(content, `echo: ${xs}one two three`);
    assert.equal(data.at(-1).choices[0].finish_reason, 'stop');
    assert.ok(text.endsWith('data: [DONE]\n\n'));
  });

  test('huge-event: the event never ends for a client that stops reading; generated lazily, stopped by the disconnect', async () => {
    up.setBehavior({ kind: 'huge-event', bytes: 1024 * 1024 * 1024 });
    const ctl = new AbortController();
    const res = await post(up, '/v1/chat/completions', chatBody(true), ctl.signal);
    const got = await readSome(res, 2 * 1024 * 1024, ctl);
    const s = got.toString('utf8');
    const at = s.indexOf('data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"xxx');
    assert.ok(at > 0, 'the role chunk, then the huge event');
    assert.ok(!s.slice(at).includes('\n'), 'no line end in the first 2 MB of the event');
    await waitFor('the upstream to notice the disconnect', () => up.inflight === 0);
    assert.equal(up.aborted, 1);
  });

  test('huge-body: N bytes of valid JSON carrying the normal answer; chunked, or with content-length when declared', async () => {
    for (const declareLength of [false, true]) {
      up.setBehavior({ kind: 'huge-body', bytes: 200_000, declareLength });
      const res = await post(up, '/v1/chat/completions', chatBody(false));
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-type')!, /application\/json/);
      assert.equal(res.headers.get('content-length'), declareLength ? '200000' : null);
      const body = await res.text();
      assert.equal(Buffer.byteLength(body), 200_000);
      const j = JSON.parse(body);
      assert.equal(j.padding.length > 190_000, true);
      assert.equal(j.choices[0].message.content, 'echo: hello big world');
    }
    // a stream request gets the same JSON answer (not SSE)
    up.setBehavior({ kind: 'huge-body', bytes: 5_000 });
    const s = await post(up, '/v1/chat/completions', chatBody(true));
    assert.match(s.headers.get('content-type')!, /application\/json/);
    assert.equal(Buffer.byteLength(await s.text()), 5_000);
  });

  test('huge-body on the model list: a valid list with padding; a client that gives up early stops it', async () => {
    up.setModelsResponse({ kind: 'huge-body', bytes: 100_000 });
    const r = await fetch(`${up.url}/models`);
    const body = await r.text();
    assert.equal(body.length, 100_000);
    assert.deepEqual((JSON.parse(body) as { data: { id: string }[] }).data.map((d) => d.id), ['test-model']);

    up.reset();
    up.setModelsResponse({ kind: 'huge-body', bytes: 1024 * 1024 * 1024 });
    const ctl = new AbortController();
    const big = await fetch(`${up.url}/models`, { signal: ctl.signal });
    const got = await readSome(big, 1024 * 1024, ctl);
    assert.ok(got.toString('latin1').startsWith('{"padding":"xxxx'));
    await waitFor('the upstream to notice', () => up.inflight === 0);
    assert.equal(up.aborted, 1);
  });

  test('endless-stream (stream): content chunks forever, until the client disconnects', async () => {
    up.setBehavior({ kind: 'endless-stream', chunkDelayMs: 1 });
    const ctl = new AbortController();
    const res = await post(up, '/v1/chat/completions', chatBody(true), ctl.signal);
    const got = await readSome(res, 20_000, ctl);
    const data = sseData(got.toString('utf8').slice(0, got.toString('utf8').lastIndexOf('\n\n') + 2)).map((d) => JSON.parse(d));
    assert.deepEqual(data[0].choices[0].delta, { role: 'assistant', content: '' });
    assert.ok(data.length > 20);
    assert.deepEqual(
      data.slice(1, 4).map((d) => d.choices[0].delta.content),
      ['tick0 ', 'tick1 ', 'tick2 '],
    );
    await waitFor('the upstream to notice', () => up.inflight === 0);
    assert.equal(up.aborted, 1);
  });

  test('endless-stream (non-stream and model list, as fast as read): a JSON body that never ends', async () => {
    up.setBehavior({ kind: 'endless-stream', chunkDelayMs: 0 });
    up.setModelsResponse({ kind: 'endless-stream', chunkDelayMs: 0 });
    for (const [path, method] of [
      ['/v1/chat/completions', 'POST'],
      ['/v1/models', 'GET'],
    ] as const) {
      const ctl = new AbortController();
      const res = method === 'POST' ? await post(up, path, chatBody(false), ctl.signal) : await fetch(up.origin + path, { signal: ctl.signal });
      assert.equal(res.status, 200);
      const got = await readSome(res, 4 * 1024 * 1024, ctl);
      assert.ok(got.length >= 4 * 1024 * 1024, path);
      assert.ok(got.toString('latin1').startsWith('{"padding":"xxxx'), path);
      await waitFor('the upstream to notice', () => up.inflight === 0);
    }
    assert.equal(up.aborted, 2);
  });
});

describe('test upstream bookkeeping', () => {
  test('requests stay bounded and keep the newest', async () => {
    const up = await startUpstream({ maxRecorded: 5 });
    try {
      for (let i = 0; i < 23; i++) {
        const r = await post(up, '/v1/embeddings', { model: 'm', input: `n${i}` });
        await r.arrayBuffer();
      }
      assert.ok(up.requests.length <= 5 + 1);
      assert.ok(up.requests.length >= 5);
      assert.equal(up.requests.at(-1)!.body.input, 'n22');
      const inputs = up.requests.map((r) => r.body.input);
      assert.deepEqual(inputs, [...inputs].sort((a, b) => Number(a.slice(1)) - Number(b.slice(1))));
    } finally {
      await up.close();
    }
  });

  test('close() ends open requests and frees the port', async () => {
    const up = await startUpstream();
    up.setBehavior({ kind: 'hang' });
    const p = post(up, '/v1/chat/completions', chatBody(false)).then(
      () => 'answered',
      () => 'failed',
    );
    await waitFor('the hanging request', () => up.inflight === 1);
    await up.close();
    assert.equal(await p, 'failed');
    assert.equal(up.aborted, 0, 'closing the server is not a client abort');
    assert.equal(up.inflight, 0);
    await assert.rejects(fetch(`${up.url}/models`));
  });

  test('port and host options', async () => {
    const a = await startUpstream();
    const port = a.port;
    await a.close();
    const b = await startUpstream({ port, host: '127.0.0.1', models: ['x'] });
    try {
      assert.equal(b.port, port);
      const j = (await (await fetch(`${b.url}/models`)).json()) as { data: { id: string }[] };
      assert.deepEqual(
        j.data.map((d) => d.id),
        ['x'],
      );
    } finally {
      await b.close();
    }
  });
});
