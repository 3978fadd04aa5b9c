// The content-only chunk template (gateway/engine/openai/content-template.ts): learnt from a parsed
// chunk that holds only plain content; a later event matches only when it is that chunk with other
// content, and its content is read exactly (escapes included); anything else is left to the parser.
// readChatEvent with a template tells a sink exactly what it tells it without one.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ContentTemplate } from '../../gateway/engine/openai/content-template.js';
import { readChatEvent, type ChatDeltaSink } from '../../gateway/engine/translate.js';

const pre = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":';
const chunk = (delta: string, rest = ',"logprobs":null,"finish_reason":null') => `${pre}${delta}${rest}}]}`;
const content = (s: string) => chunk(`{"content":${JSON.stringify(s)}}`);

function learnt(from = content('Hello')): ContentTemplate {
  const t = new ContentTemplate();
  t.learn(from, JSON.parse(from));
  return t;
}

test('learnt from a plain content-only chunk; the same chunk with other content matches, escapes read exactly', () => {
  const t = learnt();
  assert.equal(t.index, 0);
  for (const s of ['world', ' ', 'ünï 😀', 'a\\b', 'tab\there', 'line\nbreak', '\\', 'C:\\dir\\', '{"delta":{"content":"x"}}'.replace(/"/g, "'")]) {
    const got = t.match(content(s));
    assert.equal(got, s, `content ${JSON.stringify(s)}`);
    assert.deepEqual(JSON.parse(t.with(s)), JSON.parse(content(s)), 'with() writes the same chunk');
  }
  assert.deepEqual(JSON.parse(t.with('say "hi" \\ now')), JSON.parse(content('say "hi" \\ now')));
});

test('anything but that chunk with quote-free content is left to the parser', () => {
  const t = learnt();
  const others = [
    content('say "hi"'), // escaped quotes
    chunk('{"content":"x","role":"assistant"}'),
    chunk('{"content":"x"}', ',"logprobs":null,"finish_reason":"stop"'),
    chunk('{"reasoning_content":"x"}'),
    chunk('{"content":"x"},"logprobs":null,"finish_reason":null},{"index":1,"delta":{"content":"y"}'),
    content('x').replace('"index":0', '"index":1'),
    content('x').replace('"c1"', '"c2"'),
    `${pre}{"content":"x\\"}` + ',"logprobs":null,"finish_reason":null}]}', // a trailing backslash would escape the quote
    '{"error":{"message":"boom"}}',
    content('x').replace(/\}\]\}$/, '}],"usage":{"prompt_tokens":1}}'),
  ];
  for (const s of others) assert.equal(t.match(s), undefined, s);
});

test('nothing is learnt from a chunk with more than plain content', () => {
  for (const s of [content('say "hi"'), content('a\\b'), chunk('{"role":"assistant","content":"x"}'), chunk('{"content":"x"}', ',"logprobs":null,"finish_reason":"stop"'), chunk('{"content":""}')]) {
    const t = new ContentTemplate();
    t.learn(s, JSON.parse(s));
    assert.equal(t.index, -1, s);
    assert.equal(t.match(content('x')), undefined);
  }
});

test('readChatEvent tells a sink the same with a template as without', () => {
  const events = [
    chunk('{"role":"assistant","content":""}'),
    chunk('{"reasoning_content":"think"}'),
    content('Hello'),
    content(' "quoted"'),
    content(' back\\slash'),
    content(' ünï'),
    chunk('{"tool_calls":[{"index":0,"id":"t1","function":{"name":"f","arguments":"{}"}}]}'),
    chunk('{}', ',"logprobs":null,"finish_reason":"stop"'),
  ];
  const record = (tpl?: ContentTemplate) => {
    const calls: unknown[][] = [];
    const sink = new Proxy({} as ChatDeltaSink, { get: (_, k) => (...a: unknown[]) => calls.push([k, ...a]) });
    const started = new Set<number>();
    for (const data of events) readChatEvent({ event: undefined, id: undefined, data }, sink, started, tpl);
    return calls;
  };
  const tpl = new ContentTemplate();
  assert.deepEqual(record(tpl), record());
  assert.equal(tpl.index, 0, 'the template was learnt (and used) on the way');
});

test("the role chunk that starts most streams teaches the template (compact, either order): the content chunks after it need no parse", () => {
  for (const role of ['{"role":"assistant","content":""}', '{"content":"","role":"assistant"}']) {
    const t = learnt(chunk(role));
    assert.equal(t.index, 0, role);
    for (const s of ['Hello', ' ünï 😀', 'a\\b']) assert.equal(t.match(content(s)), s, `${role}: content ${JSON.stringify(s)}`);
    assert.deepEqual(JSON.parse(t.with('say "hi"')), JSON.parse(content('say "hi"')), 'with() writes a content-only chunk');
    // the role chunk itself, a finish, another choice: not content-only chunks
    for (const s of [chunk(role), chunk('{"content":"x"}', ',"logprobs":null,"finish_reason":"stop"'), content('x').replace('"index":0', '"index":1')]) assert.equal(t.match(s), undefined, s);
  }
  // an upstream that names the role in every chunk: its content chunks do not match, and are parsed
  assert.equal(learnt(chunk('{"role":"assistant","content":""}')).match(chunk('{"role":"assistant","content":"x"}')), undefined);
});

test('nothing is learnt from a role chunk written otherwise: spaced, another role, another field', () => {
  for (const role of ['{"role": "assistant", "content": ""}', '{"role":"user","content":""}', '{"role":"assistant","content":"","refusal":null}', '{"role":"assistant"}']) {
    const t = learnt(chunk(role));
    assert.equal(t.index, -1, role);
  }
  // the role chunk's delta text elsewhere in the event (not where its delta is) teaches nothing
  const odd = chunk('{"role": "assistant", "content": ""}').replace('"object"', '"x":{"delta":{"role":"assistant","content":""}},"object"');
  assert.equal(learnt(odd).index, -1);
});
