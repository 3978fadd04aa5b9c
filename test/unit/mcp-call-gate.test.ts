// CallGate (gateway/engine/mcp/call-gate.ts): calls that may be asked for sampling or elicitation
// run alone on a shared upstream connection; others run together; first come, first served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CallGate } from '../../gateway/engine/mcp/call-gate.js';

const never = new AbortController().signal;
const settled = async (p: Promise<unknown>) => {
  let done = false;
  void p.then(() => (done = true), () => (done = true));
  await new Promise((r) => setImmediate(r));
  return done;
};

test('shared calls run together; an exclusive one waits for them, and later shared ones wait behind it', async () => {
  const g = new CallGate();
  const s1 = await g.enter(false, never, 60_000, 'x');
  const s2 = await g.enter(false, never, 60_000, 'x');
  const ex = g.enter(true, never, 60_000, 'x');
  const s3 = g.enter(false, never, 60_000, 'x');
  assert.equal(await settled(ex), false);
  s1();
  assert.equal(await settled(ex), false, 'one shared call still runs');
  s2();
  const endEx = await ex;
  assert.equal(await settled(s3), false, 'the exclusive call runs alone');
  endEx();
  (await s3)();
});

test('a second exclusive call waits for the first; ending a turn twice counts once', async () => {
  const g = new CallGate();
  const e1 = await g.enter(true, never, 60_000, 'x');
  const e2 = g.enter(true, never, 60_000, 'x');
  assert.equal(await settled(e2), false);
  e1();
  e1();
  const end2 = await e2;
  const s = g.enter(false, never, 60_000, 'x');
  assert.equal(await settled(s), false, 'the double end did not open the gate');
  end2();
  (await s)();
});

test('a waiting call given up (cancelled, or waiting too long) leaves the queue and lets the next one in', async () => {
  const g = new CallGate();
  const s1 = await g.enter(false, never, 60_000, 'x');
  const ac = new AbortController();
  const ex = g.enter(true, ac.signal, 60_000, 'x');
  const late = g.enter(true, never, 1, 'srv');
  ac.abort();
  await assert.rejects(ex, /cancelled/);
  await assert.rejects(late, /waited 1 ms for calls to MCP server "srv"/);
  const s2 = g.enter(false, never, 60_000, 'x');
  (await s2)();
  s1();
  await assert.rejects(g.enter(false, ac.signal, 60_000, 'x'), /cancelled/);
});
