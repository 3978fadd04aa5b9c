// Trace and span ids the gateway generates: valid W3C ids (lowercase hex, never all zero), the
// trace ids led by their time so the span store's index grows at one end, with enough
// randomness left that no two collide.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatTraceparent, newSpanId, newTraceId, parseTraceparent } from '../../gateway/telemetry/span.js';

test('generated trace ids are 32 lowercase hex digits that a traceparent carries', () => {
  for (let i = 0; i < 1000; i++) {
    const id = newTraceId();
    assert.match(id, /^[0-9a-f]{32}$/);
    assert.notEqual(id, '0'.repeat(32));
    const span = newSpanId();
    assert.match(span, /^[0-9a-f]{16}$/);
    assert.deepEqual(parseTraceparent(formatTraceparent(id, span)), { traceId: id, parentId: span, sampled: true });
  }
});

test('trace ids begin with the millisecond time, so later ids sort after earlier ones', () => {
  const t = Date.UTC(2026, 11, 2, 14, 0, 0);
  const ids = [t, t + 1, t + 2, t + 1000, t + 86_400_000].map((ms) => newTraceId(ms));
  assert.deepEqual([...ids].sort(), ids);
  assert.equal(parseInt(ids[0]!.slice(0, 12), 16), t);
  // the epoch itself still gives a non-zero id: the random part is never all zero in practice
  assert.match(newTraceId(0), /^000000000000[0-9a-f]{20}$/);
});

test('ids made in the same millisecond differ in their random 80 bits', () => {
  const t = Date.now();
  const seen = new Set<string>();
  for (let i = 0; i < 50_000; i++) seen.add(newTraceId(t).slice(12));
  assert.equal(seen.size, 50_000);
});
