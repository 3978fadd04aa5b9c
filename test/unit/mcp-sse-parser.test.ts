// The SSE parser of tools/call's direct path to an HTTP upstream (engine/mcp/http-call.ts): the
// event-stream framing a server may use, fed in chunks split anywhere, and the per-event limit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SseParser, type SseEvent } from '../../gateway/engine/mcp/http-call.js';

const TooBig = class extends Error {};
function parse(chunks: string[], max = 1 << 20): { events: SseEvent[]; parser: SseParser } {
  const events: SseEvent[] = [];
  const parser = new SseParser((e) => events.push(e), max, () => {
    throw new TooBig('too big');
  });
  for (const c of chunks) parser.push(c);
  parser.end();
  return { events, parser };
}
/** every way to cut a string in two */
const splits = (s: string) => Array.from({ length: s.length + 1 }, (_, i) => [s.slice(0, i), s.slice(i)]);

test('LF, CRLF and CR line ends, a BOM, comments, fields without a colon, one leading space stripped, multi-line data: the same events however the stream is cut', () => {
  const stream = '\ufeff: comment\r\nretry: 250\rid: 7\nevent: message\r\ndata:  two spaces\r\ndata\ndata:{"a":1}\r\n\r\nid\ndata: x\n\n: trailing comment\n';
  const want: SseEvent[] = [
    { id: '7', event: 'message', data: ' two spaces\n\n{"a":1}' },
    { id: '', event: undefined, data: 'x' },
  ];
  for (const parts of splits(stream)) {
    const { events, parser } = parse(parts);
    assert.deepEqual(events, want, JSON.stringify(parts));
    assert.equal(parser.retry, 250);
  }
  // one character at a time
  assert.deepEqual(parse([...stream]).events, want);
});

test('an event without data is not dispatched but its id is kept; an event cut off by the end of the stream is dropped', () => {
  const { events, parser } = parse(['id: p1\nretry: 5\ndata:\n\n', 'id: p2\n\n', 'data: {"unfinished":']);
  assert.deepEqual(events, [{ id: 'p1', event: undefined, data: '' }]);
  assert.equal(parser.lastEventId, 'p2');
});

test('an event larger than the limit fails as soon as it is over, whether in data lines or in an unended line', () => {
  assert.throws(() => parse(['data: ' + 'x'.repeat(200) + '\n'], 100), TooBig);
  assert.throws(() => parse(['data: ' + 'x'.repeat(60) + '\n', 'data: ' + 'y'.repeat(60) + '\n'], 100), TooBig);
  assert.throws(() => parse(['data: ' + 'x'.repeat(200)], 100), TooBig);
  // the limit is per event: many small events pass
  assert.equal(parse(Array.from({ length: 50 }, () => 'data: ' + 'x'.repeat(60) + '\n\n'), 100).events.length, 50);
});
