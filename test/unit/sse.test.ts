// SSEParser must give the same events however the network splits the bytes.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SSEParser, SSETooLargeError, formatSSE, type SSEEvent } from '../../gateway/engine/sse.js';

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

describe('SSEParser limits (maxEventBytes)', () => {
  const MAX = 1024;
  /** Feed chunks until one throws; returns the index of the chunk that threw (-1: none) and the error. */
  function feedUntilThrow(p: SSEParser, chunks: (Uint8Array | string)[]): { at: number; error: unknown; events: SSEEvent[] } {
    const events: SSEEvent[] = [];
    for (let i = 0; i < chunks.length; i++) {
      try {
        events.push(...p.feed(chunks[i]!));
      } catch (e) {
        return { at: i, error: e, events };
      }
    }
    return { at: -1, error: undefined, events };
  }
  function assertTooLarge(e: unknown): void {
    assert.ok(e instanceof SSETooLargeError, `expected SSETooLargeError, got ${String(e)}`);
    assert.equal(e.limit, MAX);
    assert.match(e.message, /max_event_bytes/);
    assert.match(e.message, /1024 bytes/);
  }

  test('a line of exactly the limit passes, one byte more throws, however it is chunked', () => {
    for (const size of [1, 3, 100, 1023, 1024, 4096]) {
      const ok = `data: ${'x'.repeat(MAX - 6)}`; // the line, field name included, is MAX bytes
      const bytes = enc.encode(`${ok}\n\n`);
      const chunks: Uint8Array[] = [];
      for (let i = 0; i < bytes.length; i += size) chunks.push(bytes.subarray(i, i + size));
      const r = feedUntilThrow(new SSEParser({ maxEventBytes: MAX }), chunks);
      assert.equal(r.error, undefined, `chunks of ${size}`);
      assert.deepEqual(r.events, [ev('x'.repeat(MAX - 6))]);

      const big = enc.encode(`data: ${'x'.repeat(MAX - 5)}\n\n`);
      const bigChunks: Uint8Array[] = [];
      for (let i = 0; i < big.length; i += size) bigChunks.push(big.subarray(i, i + size));
      const t = feedUntilThrow(new SSEParser({ maxEventBytes: MAX }), bigChunks);
      assertTooLarge(t.error);
      // thrown by the chunk that carried the line past the limit (or completed it), not before
      const before = t.at * size;
      assert.ok(before <= MAX, `chunks of ${size}: threw at chunk ${t.at}, after ${before} bytes had been accepted`);
      assert.ok(Math.min(big.length, before + size) > MAX, `chunks of ${size}: threw at chunk ${t.at}, before the limit was passed`);
    }
  });

  test('a line without a newline that never ends throws once it passes the limit; the parser keeps at most the limit', () => {
    const p = new SSEParser({ maxEventBytes: MAX });
    assert.deepEqual(p.feed('data: '), []);
    let fed = 6;
    let thrown: unknown;
    for (let i = 0; i < 10_000 && thrown === undefined; i++) {
      try {
        p.feed('y'.repeat(100));
        fed += 100;
      } catch (e) {
        thrown = e;
      }
    }
    assertTooLarge(thrown);
    assert.ok(fed <= MAX && fed + 100 > MAX, `accepted ${fed} bytes`);
  });

  test("an event's data is limited across its lines, counting the newlines that join them", () => {
    // 8 lines of 127 bytes of data: 8 * 127 + 7 joining newlines = 1023 bytes of data
    const line = `data: ${'d'.repeat(127)}\n`;
    const p = new SSEParser({ maxEventBytes: MAX });
    const [got] = p.feed(line.repeat(8) + '\n');
    assert.equal(got!.data.length, 1023);
    // one more byte of data: 1024 passes; the next line (1 + 1 + 1024) throws
    const q = new SSEParser({ maxEventBytes: MAX });
    assert.deepEqual(q.feed(line.repeat(8) + 'data:\n'), []); // 1023 + 1 newline = 1024
    assert.throws(() => q.feed('data: z\n'), (e: unknown) => (assertTooLarge(e), true));
    // the count starts again with each event
    const r = new SSEParser({ maxEventBytes: MAX });
    for (let i = 0; i < 50; i++) assert.equal(r.feed(line.repeat(8) + '\n').length, 1);
  });

  test('multi-byte characters count as their UTF-8 bytes', () => {
    const p = new SSEParser({ maxEventBytes: MAX });
    // 341 three-byte characters + "data:" = 1028 bytes > 1024, though only 346 UTF-16 units
    assert.throws(() => p.feed(`data:${'世'.repeat(341)}\n\n`), (e: unknown) => (assertTooLarge(e), true));
    const q = new SSEParser({ maxEventBytes: MAX });
    assert.deepEqual(q.feed(`data:${'世'.repeat(339)}\n\n`), [ev('世'.repeat(339))]); // 1022 bytes
  });

  test('comments and other fields are limited per line too, and do not add up', () => {
    const p = new SSEParser({ maxEventBytes: MAX });
    const comment = `:${'c'.repeat(MAX - 1)}\n`;
    for (let i = 0; i < 20; i++) assert.deepEqual(p.feed(comment + `event: e\nid: ${i}\n`), []);
    assert.deepEqual(p.feed('data: ok\n\n'), [ev('ok', 'e', '19')]);
    assert.throws(() => p.feed(`:${'c'.repeat(MAX)}\n`), SSETooLargeError);
    assert.throws(() => new SSEParser({ maxEventBytes: MAX }).feed(`event: ${'e'.repeat(MAX)}`), SSETooLargeError);
  });

  test('without a limit, a big event passes whole', () => {
    const big = 'b'.repeat(3 * 1024 * 1024);
    assert.deepEqual(parseChunks([`data: ${big}\n\n`]), [ev(big)]);
  });
});

describe('SSEParser work is linear in the input, however it is chunked', () => {
  // The parser counts every byte it searches, copies into its unfinished-line buffer or decodes
  // (bytesExamined). A parser that re-scanned or re-joined its pending line on every chunk would
  // examine about n²/(2·chunk) bytes: for a 16 MB line in 1-byte chunks, ~10^14. Here it must stay
  // within a small constant times n for every chunk size.
  const N = 16 * 1024 * 1024;
  const body = Buffer.alloc(N, 0x61); // 'a'
  body.write('data: ', 0);
  body.write('\n\n', N - 2);

  for (const size of [1, 7, 1024, 64 * 1024]) {
    test(`a 16 MB event in chunks of ${size} bytes`, () => {
      const p = new SSEParser({ maxEventBytes: 32 * 1024 * 1024 });
      const out: SSEEvent[] = [];
      let feeds = 0;
      for (let i = 0; i < N; i += size) {
        out.push(...p.feed(body.subarray(i, i + size)));
        feeds++;
      }
      assert.equal(feeds, Math.ceil(N / size));
      assert.equal(out.length, 1);
      assert.equal(out[0]!.data.length, N - 8);
      assert.ok(/^a+$/.test(out[0]!.data));
      const work = p.bytesExamined;
      assert.ok(work >= N - 2, `every byte is looked at at least once (${work})`);
      assert.ok(work <= 6 * N, `examined ${work} bytes for ${N} bytes of input (${(work / N).toFixed(2)} per byte)`);
    });
  }

  test('many small events with every kind of line end, in chunks of every size from 1 to 64 KB', () => {
    const eols = ['\n', '\r\n', '\r'];
    let text = '';
    for (let i = 0; text.length < 2 * 1024 * 1024; i++) {
      const e = eols[i % 3]!;
      text += `: c${i}${e}id: ${i}${e}data: {"n":${i}}${e}data: second${e}${e}`;
    }
    const bytes = Buffer.from(text);
    const expected = parseChunks([bytes]);
    assert.ok(expected.length > 30_000);
    for (const size of [1, 2, 5, 64, 1000, 4096, 65536]) {
      const p = new SSEParser();
      const out: SSEEvent[] = [];
      for (let i = 0; i < bytes.length; i += size) out.push(...p.feed(bytes.subarray(i, i + size)));
      assert.equal(out.length, expected.length, `chunks of ${size}`);
      assert.deepEqual(out[out.length - 1], expected[expected.length - 1]);
      assert.ok(p.bytesExamined <= 6 * bytes.length, `chunks of ${size}: examined ${p.bytesExamined} for ${bytes.length}`);
    }
  });
});
