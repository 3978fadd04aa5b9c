// SSEParser must give the same events however the network splits the bytes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEParser, formatSSE, type SSEEvent } from '../../gateway/engine/sse.js';

const enc = new TextEncoder();

function ev(data: string, event?: string, id?: string): SSEEvent {
  return { event, data, id };
}

/** Parse a whole input given as a list of chunks, end included. */
function parseChunks(chunks: (Uint8Array | string)[]): SSEEvent[] {
  const p = new SSEParser();
  const out: SSEEvent[] = [];
  for (const c of chunks) out.push(...p.feed(c));
  out.push(...p.end());
  return out;
}

// A stream exercising every rule: comments, event and id fields, multi-line data, multi-byte
// characters (2, 3 and 4 bytes), the optional single space after the colon, a field without a
// colon, unknown fields, and a final event that never gets its blank line.
const LINES = [
  ': this is a comment',
  'event: delta',
  'id: 42',
  'data: héllo wörld 😀',
  'data: 世界',
  '',
  'data:no-space',
  'data:  two-spaces',
  '',
  'retry: 1000',
  'unknown: field',
  'data',
  '',
  ': keep-alive',
  '',
  'data: {"choices":[{"delta":{"content":"ü"}}]}',
  '',
  'data: [DONE]',
  '',
  'data: never terminated',
];
const EXPECTED: SSEEvent[] = [
  ev('héllo wörld 😀\n世界', 'delta', '42'),
  // the last event id persists across events; the event type does not
  ev('no-space\n two-spaces', undefined, '42'),
  ev('', undefined, '42'),
  ev('{"choices":[{"delta":{"content":"ü"}}]}', undefined, '42'),
  ev('[DONE]', undefined, '42'),
];

const EOLS = { LF: '\n', CRLF: '\r\n', CR: '\r' } as const;
function doc(eol: string): string {
  return LINES.join(eol);
}
/** Line endings varying line by line. */
function mixedDoc(): string {
  const eols = ['\r\n', '\n', '\r'];
  return LINES.map((l, i) => (i < LINES.length - 1 ? l + eols[i % 3] : l)).join('');
}

describe('SSEParser', () => {
  test('a simple event', () => {
    assert.deepEqual(parseChunks(['data: hello\n\n']), [ev('hello')]);
  });

  for (const [name, eol] of Object.entries(EOLS)) {
    test(`${name} line endings, whole input`, () => {
      assert.deepEqual(parseChunks([enc.encode(doc(eol))]), EXPECTED);
    });
  }

  test('mixed line endings', () => {
    assert.deepEqual(parseChunks([enc.encode(mixedDoc())]), EXPECTED);
  });

  const variants: [string, string][] = [...Object.entries(EOLS).map(([n, e]): [string, string] => [n, doc(e)]), ['mixed', mixedDoc()]];
  for (const [name, text] of variants) {
    test(`${name}: split into two chunks at every byte position`, () => {
      const bytes = enc.encode(text);
      for (let i = 0; i <= bytes.length; i++) {
        const got = parseChunks([bytes.subarray(0, i), bytes.subarray(i)]);
        assert.deepEqual(got, EXPECTED, `split at byte ${i} of ${bytes.length}`);
      }
    });

    test(`${name}: one byte at a time`, () => {
      const bytes = enc.encode(text);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i++) chunks.push(bytes.subarray(i, i + 1));
      assert.deepEqual(parseChunks(chunks), EXPECTED);
    });

    // (non-empty middle chunk: an empty chunk is covered, as a known bug, below)
    test(`${name}: split into three chunks at many pairs of positions`, () => {
      const bytes = enc.encode(text);
      for (let i = 0; i <= bytes.length; i += 3) {
        for (let j = i + 1; j <= bytes.length; j++) {
          const got = parseChunks([bytes.subarray(0, i), bytes.subarray(i, j), bytes.subarray(j)]);
          assert.deepEqual(got, EXPECTED, `split at bytes ${i} and ${j}`);
        }
      }
    });

    test(`${name}: string chunks split at every character`, () => {
      for (let i = 0; i <= text.length; i++) {
        assert.deepEqual(parseChunks([text.slice(0, i), text.slice(i)]), EXPECTED, `split at char ${i}`);
      }
    });
  }

  test('a multi-byte character split across chunks is decoded whole', () => {
    const bytes = enc.encode('data: 😀\n\n'); // 4-byte character at offsets 6..9
    for (const [a, b] of [
      [7, 8],
      [6, 9],
      [8, 10],
    ] as const) {
      const p = new SSEParser();
      assert.deepEqual(p.feed(bytes.subarray(0, a)), []);
      assert.deepEqual(p.feed(bytes.subarray(a, b)), []);
      assert.deepEqual(p.feed(bytes.subarray(b)), [ev('😀')]);
    }
  });

  test('\\r at the end of one chunk and \\n at the start of the next is one line break', () => {
    const p = new SSEParser();
    assert.deepEqual(p.feed('data: a\r'), []);
    assert.deepEqual(p.feed('\ndata: b\r'), []);
    assert.deepEqual(p.feed('\n\r'), [ev('a\nb')]);
    assert.deepEqual(p.feed('\ndata: c\n\n'), [ev('c')]);
  });

  test(
    'an empty chunk between \\r and \\n does not turn the pair into two line breaks',
    () => {
      const p = new SSEParser();
      const out = [...p.feed('data: a\r'), ...p.feed(new Uint8Array(0)), ...p.feed('\ndata: b\r\n\r\n')];
      assert.deepEqual(out, [ev('a\nb')]);
    },
  );

  test('events are returned by the chunk that completes them', () => {
    const p = new SSEParser();
    assert.deepEqual(p.feed('data: one\n'), []);
    assert.deepEqual(p.feed('\ndata: two\n\ndata: thr'), [ev('one'), ev('two')]);
    assert.deepEqual(p.feed('ee\n\n'), [ev('three')]);
  });

  test('event type applies to one event only', () => {
    assert.deepEqual(parseChunks(['event: a\ndata: 1\n\ndata: 2\n\n']), [ev('1', 'a'), ev('2')]);
  });

  test('a later id replaces the earlier one; an empty id clears it to ""', () => {
    assert.deepEqual(parseChunks(['id: 1\ndata: a\n\nid: 2\ndata: b\n\nid\ndata: c\n\n']), [ev('a', undefined, '1'), ev('b', undefined, '2'), ev('c', undefined, '')]);
  });

  test('comments and blank lines alone produce nothing', () => {
    assert.deepEqual(parseChunks([': ping\n\n\n\n:another\r\n\r\n']), []);
  });

  test(
    'a block with an event type but no data is not dispatched (WHATWG)',
    () => {
      assert.deepEqual(parseChunks(['event: ping\n\ndata: x\n\n']), [ev('x')]);
    },
  );

  test('only the first space after the colon is removed; colons in the value are kept', () => {
    assert.deepEqual(parseChunks(['data:   a: b:c\n\n']), [ev('  a: b:c')]);
  });

  test('an unterminated final event is dropped at end()', () => {
    const p = new SSEParser();
    assert.deepEqual(p.feed('data: complete\n\ndata: partial\n'), [ev('complete')]);
    assert.deepEqual(p.end(), []);
    const q = new SSEParser();
    assert.deepEqual(q.feed('data: partial without newline'), []);
    assert.deepEqual(q.end(), []);
  });

  test('a byte-order mark at the start of the stream is ignored', () => {
    const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...enc.encode('data: x\n\n')]);
    assert.deepEqual(parseChunks([bytes.subarray(0, 2), bytes.subarray(2)]), [ev('x')]);
  });
});

describe('formatSSE', () => {
  const cases: SSEEvent[] = [
    ev('hello'),
    ev(''),
    ev('line one\nline two\n\nline four'),
    ev('{"a":"b"}', 'message', '7'),
    ev('x', 'only-event'),
    ev('with id', undefined, 'abc'),
    ev('ünïcödé 😀 世界'),
    ev(' leading space'),
  ];

  test('the formatted text is well-formed SSE', () => {
    assert.equal(formatSSE(ev('a\nb', 'e', '1')), 'event: e\nid: 1\ndata: a\ndata: b\n\n');
    assert.equal(formatSSE(ev('[DONE]')), 'data: [DONE]\n\n');
  });

  for (const c of cases) {
    test(`round trip ${JSON.stringify(c)}`, () => {
      assert.deepEqual(parseChunks([formatSSE(c)]), [c]);
    });
  }

  test('round trip of a sequence, split at every byte', () => {
    const seq = [ev('a', undefined, '1'), ev('b\nc', 'x', '2'), ev('😀', undefined, '3')];
    const bytes = enc.encode(seq.map(formatSSE).join(''));
    for (let i = 0; i <= bytes.length; i++) {
      assert.deepEqual(parseChunks([bytes.subarray(0, i), bytes.subarray(i)]), seq, `split at ${i}`);
    }
  });
});
