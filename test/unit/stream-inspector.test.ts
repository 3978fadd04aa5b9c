// The byte-level stream inspector against the formats real servers send: every fixture is fed
// whole, byte by byte and in random chunkings, and must give the same bytes and the same facts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { StreamInspector, probeKey, type EventTransform, type InspectorOptions } from '../../gateway/engine/openai/stream-inspector.js';
import { SSETooLargeError, type SSEEvent } from '../../gateway/engine/sse.js';
import { Rng } from '../helpers/random.js';

const chunk = (content: string | null, extra: Record<string, unknown> = {}, finish: string | null = null) => ({
  id: 'c1',
  object: 'chat.completion.chunk',
  created: 1,
  model: 'm',
  choices: [{ index: 0, delta: content === null ? { role: 'assistant', content: '' } : { content }, finish_reason: finish }],
  ...extra,
});
const usageChunk = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [], usage: { prompt_tokens: 11, completion_tokens: 7, total_tokens: 18 } };

/** JSON as Python's json.dumps writes it: ", " and ": " */
const spaced = (v: unknown) => JSON.stringify(v).replace(/([,:])(?=["{[\d\-tfn])/g, '$1 ');

interface Fixture {
  name: string;
  bytes: string;
  /** the client's view of the text */
  text: string;
  usage?: { prompt: number; completion: number };
  done: boolean;
  finished: boolean;
  /** what the client receives when it did not ask for usage */
  expectOut?: string;
}

function build(o: { fmt?: (v: unknown) => string; eol?: string; done?: boolean; comments?: boolean; usageInLast?: boolean; noSpace?: boolean; ownUsage?: boolean }): string {
  const fmt = o.fmt ?? JSON.stringify;
  const eol = o.eol ?? '\n';
  const d = o.noSpace ? 'data:' : 'data: ';
  const ev = (s: string) => `${d}${s}${eol}${eol}`;
  let s = '';
  if (o.comments) s += `: keep-alive${eol}${eol}`;
  s += ev(fmt(chunk(null)));
  s += ev(fmt(chunk('Hel')));
  if (o.comments) s += `: ping${eol}`;
  s += ev(fmt(chunk('lo')));
  s += ev(fmt(chunk(null, o.usageInLast ? { usage: usageChunk.usage } : {}, 'stop')).replace('"role":"assistant","content":""', '').replace('"role": "assistant", "content": ""', ''));
  if (o.ownUsage !== false && !o.usageInLast) s += ev(fmt(usageChunk));
  if (o.done !== false) s += ev('[DONE]');
  return s;
}

const FIXTURES: Fixture[] = [
  { name: 'compact JSON', bytes: build({}), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: 'spaced JSON (Python servers)', bytes: build({ fmt: spaced }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: 'spaced JSON without [DONE]', bytes: build({ fmt: spaced, done: false }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: false, finished: true },
  { name: 'CRLF line ends', bytes: build({ eol: '\r\n' }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: 'CR line ends', bytes: build({ eol: '\r' }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: 'comment lines', bytes: build({ comments: true }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: 'usage in the last content chunk', bytes: build({ usageInLast: true }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: '"data:" without a space', bytes: build({ noSpace: true, fmt: spaced }), text: 'Hello', usage: { prompt: 11, completion: 7 }, done: true, finished: true },
  { name: 'no usage at all', bytes: build({ ownUsage: false }), text: 'Hello', usage: undefined, done: true, finished: true },
];

/** What a client's SSE parser makes of the bytes: the concatenated content deltas, and whether a usage chunk arrived. */
function clientView(bytes: string): { text: string; usageChunks: number; events: string[] } {
  const events: string[] = [];
  for (const block of bytes.replace(/\r\n|\r/g, '\n').split('\n\n')) {
    const data = block
      .split('\n')
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length) events.push(data.join('\n'));
  }
  let text = '';
  let usageChunks = 0;
  for (const e of events) {
    if (e === '[DONE]') continue;
    const j = JSON.parse(e) as { choices: { delta?: { content?: string } }[]; usage?: unknown };
    text += j.choices[0]?.delta?.content ?? '';
    if (j.usage && j.choices.length === 0) usageChunks++;
  }
  return { text, usageChunks, events };
}

function run(bytes: Buffer, sizes: (i: number) => number, o: Partial<InspectorOptions> = {}) {
  const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, ...o });
  const out: Buffer[] = [];
  let firstContentAt = -1;
  for (let at = 0, k = 0; at < bytes.length; k++) {
    const n = Math.max(1, sizes(k));
    out.push(...insp.push(bytes.subarray(at, at + n)));
    at += n;
    if (firstContentAt < 0 && insp.contentSeen) firstContentAt = at;
  }
  out.push(...insp.end());
  return { insp, out: Buffer.concat(out).toString('utf8'), firstContentAt, parts: out };
}

const rng = new Rng(42);

for (const f of FIXTURES) {
  test(`stream formats: ${f.name} — same bytes and facts whole, byte by byte and in random chunks`, () => {
    const bytes = Buffer.from(f.bytes);
    const chunkings: [string, (i: number) => number][] = [
      ['whole', () => bytes.length],
      ['1 byte', () => 1],
      ['random', () => rng.range(1, 40)],
      ['7 bytes', () => 7],
    ];
    let reference: string | undefined;
    for (const [how, sizes] of chunkings) {
      const { insp, out } = run(bytes, sizes);
      reference ??= out;
      assert.equal(out, reference, `${how}: the same bytes whatever the chunking`);
      const view = clientView(out);
      assert.equal(view.text, f.text, `${how}: the client gets the whole text`);
      assert.equal(view.usageChunks, 0, `${how}: no usage chunk leaks to a client that did not ask`);
      assert.deepEqual(insp.usage, f.usage, `${how}: usage read`);
      assert.equal(insp.done, f.done, `${how}: [DONE]`);
      assert.equal(insp.finished, f.finished, `${how}: finish reason seen`);
      assert.equal(insp.contentSeen, true);
      assert.equal(insp.errorEvent, undefined);
    }
    // a client that asked for usage gets the upstream's bytes untouched
    const asked = run(bytes, () => rng.range(1, 40), { clientWantsUsage: true });
    assert.equal(asked.out, f.bytes.endsWith('\n') || f.bytes.endsWith('\r') ? f.bytes : asked.out, 'untouched');
    assert.equal(clientView(asked.out).usageChunks, f.usage && !f.name.includes('last content') ? 1 : 0);
  });
}

test('forwarding is zero-copy: an unchanged chunk of whole events is sent as the same buffer', () => {
  const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  const c1 = Buffer.from(`data: ${JSON.stringify(chunk(null))}\n\ndata: ${JSON.stringify(chunk('hi'))}\n\n`);
  const out = insp.push(c1);
  assert.equal(out.length, 1);
  assert.equal(out[0], c1, 'the very buffer the upstream sent');
  const c2 = Buffer.from(`data: ${JSON.stringify(chunk(' there'))}\n\ndata: ${JSON.stringify(usageChunk)}\n\ndata: [DONE]\n\n`);
  const out2 = insp.push(c2);
  assert.equal(out2.length, 2, 'two slices around the removed usage chunk');
  assert.equal(out2[0]!.buffer, c2.buffer, 'slices of the same memory');
  assert.equal(Buffer.concat(out2).toString(), `data: ${JSON.stringify(chunk(' there'))}\n\ndata: [DONE]\n\n`);
});

test('content is recognised at the first event that carries it; the role chunk alone is not content', () => {
  const bytes = Buffer.from(build({ fmt: spaced }));
  const { firstContentAt } = run(bytes, () => 1);
  const firstContentEvent = bytes.indexOf('Hel');
  assert.ok(firstContentAt > firstContentEvent, 'not before the content event');
  assert.ok(firstContentAt <= bytes.indexOf('\n\n', firstContentEvent) + 2, 'as soon as the content event is complete');
  const roleOnly = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  roleOnly.push(Buffer.from(`data: ${spaced(chunk(null))}\n\n`));
  assert.equal(roleOnly.contentSeen, false);
  const tools = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  tools.push(Buffer.from(`data: ${spaced({ choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 't1', function: { name: 'f', arguments: '' } }] }, finish_reason: null }] })}\n\n`));
  assert.equal(tools.contentSeen, true, 'a tool call is content');
  assert.equal(tools.toolCalls, true);
  const text = new StreamInspector({ kind: 'completions', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  text.push(Buffer.from(`data: {"choices":[{"text":"","index":0}]}\n\ndata: {"choices":[{"text":"x","index":0}]}\n\n`));
  assert.equal(text.contentSeen, true);
});

test('an error event is recognised in any spacing; escaped keys inside strings are not taken for keys', () => {
  const e = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  e.push(Buffer.from(`data: { "error" : { "message": "model overloaded" } }\r\n\r\n`));
  assert.match(e.errorEvent ?? '', /model overloaded/);
  assert.equal(e.contentSeen, false);
  const named = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  named.push(Buffer.from(`event: error\ndata: {"message":"x"}\n\n`));
  assert.ok(named.errorEvent);
  // "error": null (or false, "") as the first key of every chunk, as some servers write: content
  for (const v of ['null', 'false', '""']) {
    const quiet = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
    const out = quiet.push(Buffer.from(`data: {"error": ${v}, "choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": null}]}\n\ndata: [DONE]\n\n`));
    assert.equal(quiet.errorEvent, undefined, v);
    assert.equal(quiet.contentSeen, true, v);
    assert.equal(quiet.done, true, v);
    assert.match(Buffer.concat(out).toString(), /\[DONE\]/, `${v}: nothing is held back`);
  }
  // after an error event nothing more of the stream goes on, [DONE] included
  const after = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  const sent = Buffer.concat(after.push(Buffer.from(`data: ${JSON.stringify(chunk('part'))}\n\ndata: {"error":{"message":"oom"}}\n\ndata: ${JSON.stringify(chunk('more'))}\n\ndata: [DONE]\n\n`))).toString();
  assert.match(sent, /part/);
  assert.match(sent, /oom/);
  assert.doesNotMatch(sent, /more|\[DONE\]/);
  assert.equal(after.done, true);
  // content that talks about usage and finish_reason is not usage or a finish
  const sneaky = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  sneaky.push(Buffer.from(`data: ${JSON.stringify(chunk('{"usage": {"prompt_tokens": 1}, "finish_reason": "stop"}'))}\n\n`));
  assert.equal(sneaky.usage, undefined);
  assert.equal(sneaky.finished, false);
  assert.equal(probeKey(Buffer.from('{"a": "usage", "b": 1}'), Buffer.from('"usage"')), 'none', 'a string value is not a key');
  assert.equal(probeKey(Buffer.from('{"usage" :\n null}'), Buffer.from('"usage"')), 'null');
});

test('keys are read only in the data of the event that holds them: not in comments, other fields, longer keys or later events', () => {
  const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  // one chunk: a comment and an id field that read like a finish and usage, a role chunk whose
  // logprobs carry a "content" array, a key that ends in "usage", then a real finish and usage
  const roleWithLogprobs = { choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: { content: [{ token: 'x' }] }, finish_reason: null }], x_usage: { n: 1 } };
  const c = Buffer.from(
    `: {"finish_reason":"stop","usage":{"prompt_tokens":5}}\n` +
      `id: {"usage":{"prompt_tokens":6}}\n` +
      `data: ${JSON.stringify(roleWithLogprobs)}\n\n`,
  );
  insp.push(c);
  assert.equal(insp.contentSeen, false, 'an empty content string and a logprobs "content" array are not content');
  assert.equal(insp.finished, false, 'a comment is not a finish');
  assert.equal(insp.usage, undefined, 'neither a comment, an id field nor "x_usage" is usage');
  insp.push(Buffer.from(`data: ${JSON.stringify(chunk('', {}, ''))}\n\ndata: ${JSON.stringify(chunk('a'))}\n\n`));
  assert.equal(insp.finished, false, 'an empty finish_reason is no finish');
  assert.equal(insp.contentSeen, true);
  insp.push(Buffer.from(`data: ${JSON.stringify(chunk(null, {}, 'length'))}\n\ndata: ${spaced(usageChunk)}\n\n`));
  assert.equal(insp.finished, true);
  assert.deepEqual(insp.usage, { prompt: 11, completion: 7 });
});

test('multi-line data is one event; a comment-only block passes through; an unterminated last event is dropped', () => {
  const insp = new StreamInspector({ kind: 'completions', clientWantsUsage: false, maxEventBytes: 1 << 20 });
  const out = Buffer.concat(insp.push(Buffer.from(': hi\n\ndata: {"choices":\ndata: [{"text":"ab","index":0}]}\n\ndata: {"choices":[{"text":"cd"'))).toString();
  assert.equal(out, ': hi\n\ndata: {"choices":\ndata: [{"text":"ab","index":0}]}\n\n');
  assert.equal(insp.contentSeen, true);
  assert.equal(insp.events, 1);
  assert.deepEqual(insp.end(), []);
});

test('an event larger than maxEventBytes throws, whether it arrives whole or in pieces', () => {
  const big = `data: ${'x'.repeat(5000)}\n\n`;
  assert.throws(() => new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 4096 }).push(Buffer.from(big)), SSETooLargeError);
  const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 4096 });
  assert.throws(() => {
    for (let i = 0; i < big.length; i += 100) insp.push(Buffer.from(big.slice(i, i + 100)));
  }, SSETooLargeError);
  const ok = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 4096 });
  for (let i = 0; i < 50; i++) ok.push(Buffer.from(`data: ${JSON.stringify(chunk('y'.repeat(3000)))}\n\n`));
  assert.equal(ok.events, 50, 'many events each under the limit are fine');
});

test('output guards: events pass, are held and released, replaced, or blocked; unchanged events keep their bytes', () => {
  const held: SSEEvent[] = [];
  // a guard that holds events until it has seen a sentence end, then masks digits in what it held
  const transform: EventTransform = {
    event(ev) {
      held.push(ev);
      const text = (JSON.parse(ev.data) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '';
      if (!/[.!?]/.test(text)) return [];
      return held.splice(0).map((h) => {
        const j = JSON.parse(h.data) as { choices: { delta: { content: string } }[] };
        j.choices[0]!.delta.content = j.choices[0]!.delta.content.replace(/\d/g, '#');
        return { ...h, data: JSON.stringify(j) };
      });
    },
    end() {
      return held.splice(0);
    },
  };
  const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform });
  const a = insp.push(Buffer.from(`data: ${JSON.stringify(chunk('call 555'))}\n\n`));
  assert.deepEqual(a, [], 'held');
  const b = Buffer.concat(insp.push(Buffer.from(`data: ${JSON.stringify(chunk('-1234.'))}\n\n`))).toString();
  assert.equal(clientView(b).text, 'call ###-####.');
  const c = Buffer.concat(insp.push(Buffer.from(`data: ${JSON.stringify(chunk('tail'))}\n\n`)));
  assert.deepEqual(c.length, 0);
  const d = Buffer.concat(insp.end()).toString();
  assert.equal(clientView(d).text, 'tail', 'released at the end');

  const passAll: EventTransform = { event: (ev) => [ev], end: () => [] };
  const p = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform: passAll });
  const raw = Buffer.from(`data:{"choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}]}\r\n\r\n`);
  assert.equal(Buffer.concat(p.push(raw)).toString(), raw.toString(), 'a passed event keeps its exact bytes');

  const blocker: EventTransform = {
    event() {
      throw new Error('blocked by policy');
    },
    end: () => [],
  };
  const blk = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform: blocker });
  assert.throws(() => blk.push(raw), /blocked by policy/, 'a block surfaces to the caller, which ends the stream');
});

test('output guards read each event\'s data as its UTF-8 text, ASCII or not, whole or split at any byte', () => {
  const datas = [
    JSON.stringify(chunk('plain ascii')),
    JSON.stringify(chunk('Grüße, 東京 — 🙂')),
    JSON.stringify(chunk('back to ascii')),
    '{"choices":[{"index":0,"delta":{"content":"caf\u00e9"}}]}',
  ];
  const stream = Buffer.from(`${datas.map((d) => `data: ${d}\r\n\r\n`).join('')}data: first line\ndata: é second\n\n`);
  const want = [...datas, 'first line\né second'];
  const seen = (pieces: Buffer[]): string[] => {
    const got: string[] = [];
    const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform: { event: (ev) => (got.push(ev.data), [ev]), end: () => [] } });
    for (const p of pieces) insp.push(p);
    return got;
  };
  assert.deepEqual(seen([stream]), want, 'whole');
  for (let cut = 1; cut < stream.length; cut++) assert.deepEqual(seen([stream.subarray(0, cut), stream.subarray(cut)]), want, `split at byte ${cut}`);
  // an all-ASCII chunk after a multi-byte character was cut in two by the previous one
  const at = stream.indexOf(Buffer.from('東'));
  assert.deepEqual(seen([stream.subarray(0, at + 1), stream.subarray(at + 1, at + 2), stream.subarray(at + 2)]), want, 'a character in three chunks');
});
