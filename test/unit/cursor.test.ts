// The admin API's page cursors (gateway/store/cursor.ts): what a page gives out reads back as the
// same values, whatever the strings; anything else — another shape, another kind of value, text
// that is not base64url JSON — is refused with CursorError, never read as some other position.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CursorError, decodeCursor, encodeCursor } from '../../gateway/store/cursor.js';

test('a cursor reads back as the values it was made from', () => {
  for (const session of ['wf-1', '', 'ünïcode 😀 "quoted" \\ / +=', 'a'.repeat(500)]) {
    assert.deepEqual(decodeCursor(encodeCursor(1796316625451.125, session), ['number', 'string']), [1796316625451.125, session]);
  }
  assert.deepEqual(decodeCursor(encodeCursor(1796316625451, 0), ['int', 'int']), [1796316625451, 0]);
  assert.deepEqual(decodeCursor(encodeCursor(Number.MAX_SAFE_INTEGER, 7), ['int', 'int']), [Number.MAX_SAFE_INTEGER, 7]);
  // URL-safe: no characters that need escaping in a query string
  assert.match(encodeCursor(1.5, '?&=/+'), /^[A-Za-z0-9_-]+$/);
});

test('anything a page did not give out is refused', () => {
  const b64 = (s: string) => Buffer.from(s).toString('base64url');
  const bad: [string, readonly ('number' | 'int' | 'string')[]][] = [
    ['not-a-cursor', ['int', 'int']],
    ['', ['int', 'int']],
    [b64('1.2.3'), ['int', 'int']],
    [b64('[1,2,3]'), ['int', 'int']],
    [b64('[1]'), ['int', 'int']],
    [b64('{"0":1,"1":2}'), ['int', 'int']],
    [b64('[1.5,2]'), ['int', 'int']],
    [b64('[-1,2]'), ['int', 'int']],
    [b64('[1e300,2]'), ['int', 'int']],
    [b64('["1",2]'), ['int', 'int']],
    [b64('[1,2]'), ['number', 'string']],
    [b64('[null,"s"]'), ['number', 'string']],
    [b64('["s",1]'), ['number', 'string']],
    [encodeCursor(1, 'x'), ['int', 'int']],
  ];
  for (const [c, kinds] of bad) assert.throws(() => decodeCursor(c, kinds), (e: unknown) => e instanceof CursorError && /is not a cursor this gateway gave out/.test(e.message), c);
});
