// guardEvents (engine/stages.ts): the output guards over a stream's events — one guard called
// directly, several chained (each sees what the one before sent on, in order, and what each holds
// is released at the end through the guards after it); a block or a guard's own failure surfaces
// as its error, never as an upstream's.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { GatewayError } from '../../gateway/engine/errors.js';
import type { SSEEvent } from '../../gateway/engine/sse.js';
import { guardEvents, type OutputGuard, type RequestContext } from '../../gateway/engine/stages.js';

const ctx = {} as RequestContext;
const ev = (data: string): SSEEvent => ({ event: undefined, id: undefined, data });
const datas = (evs: SSEEvent[]) => evs.map((e) => e.data);

test('one output guard: events pass, are held and released in order, or replaced', () => {
  const g = guardEvents(
    {
      input: [],
      output: [
        {
          name: 'g',
          checkEvent: (_c, e) => {
            if (e.data === 'pass') return undefined;
            if (e.data.startsWith('hold')) return { action: 'hold' };
            return { action: 'replace', events: [ev(`R(${e.data})`)] };
          },
          endStream: () => ({ action: 'pass' }),
        },
      ],
    },
    ctx,
  )!;
  const p = ev('pass');
  const out = g.event(p);
  assert.equal(out.length, 1);
  assert.equal(out[0], p, 'a passed event is the same object (the inspector then sends its bytes)');
  assert.deepEqual(g.event(ev('hold 1')), []);
  assert.deepEqual(datas(g.event(ev('hold 2'))), []);
  assert.deepEqual(datas(g.event(ev('pass'))), ['hold 1', 'hold 2', 'pass'], 'a pass releases what was held first');
  assert.deepEqual(datas(g.event(ev('hold 3'))), []);
  assert.deepEqual(datas(g.event(ev('x'))), ['R(x)'], 'a replace drops what was held');
  assert.deepEqual(datas(g.event(ev('hold 4'))), []);
  assert.deepEqual(datas(g.end()), ['hold 4'], 'the end releases the rest');
});

test('chained output guards: each sees what the one before sent on; the end releases through the later ones', () => {
  const seenBySecond: string[] = [];
  const first: OutputGuard = {
    name: 'first',
    checkEvent: (_c, e) => (e.data.includes('wait') ? { action: 'hold' } : undefined),
    endStream: () => ({ action: 'pass' }),
  };
  const second: OutputGuard = {
    name: 'second',
    checkEvent: (_c, e) => {
      seenBySecond.push(e.data);
      return { action: 'replace', events: [ev(e.data.toUpperCase())] };
    },
  };
  const g = guardEvents({ input: [], output: [first, second] }, ctx)!;
  assert.deepEqual(datas(g.event(ev('a'))), ['A']);
  assert.deepEqual(datas(g.event(ev('wait b'))), []);
  assert.deepEqual(datas(g.event(ev('c'))), ['WAIT B', 'C']);
  assert.deepEqual(datas(g.event(ev('wait d'))), []);
  assert.deepEqual(datas(g.end()), ['WAIT D'], "held by the first, released at the end through the second");
  assert.deepEqual(seenBySecond, ['a', 'wait b', 'c', 'wait d']);
  // a guard that does not apply to the request is left out; none left: no transform at all
  assert.equal(guardEvents({ input: [], output: [{ name: 'elsewhere', checkEvent: () => ({ action: 'hold' }), appliesTo: () => false }] }, ctx), undefined);
});

test('a block is guardrail_blocked and a guard that throws is guard_failed, alone or chained', () => {
  for (const before of [[], [{ name: 'pass-all', checkEvent: () => undefined } satisfies OutputGuard]]) {
    const blocking = guardEvents({ input: [], output: [...before, { name: 'b', checkEvent: () => ({ action: 'block', message: 'no' }) }] }, ctx)!;
    assert.throws(() => blocking.event(ev('x')), (e: unknown) => e instanceof GatewayError && e.code === 'guardrail_blocked' && /"b"/.test(e.message));
    const failing = guardEvents({ input: [], output: [...before, { name: 'f', checkEvent: () => { throw new Error('bug'); } }] }, ctx)!;
    assert.throws(() => failing.event(ev('x')), (e: unknown) => e instanceof GatewayError && e.code === 'guard_failed' && /"f" failed: bug/.test(e.message));
  }
});
