// Windows log-off and shutdown while the shell runs (main/lib/session-end.ts): the gateway gets
// its graceful stop once, the session's end is held while the stop runs, the shell quits after.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SessionEndHandler, afterWindowClosed, needsSessionSentinel } from '../../main/lib/session-end.js';

function harness() {
  let release!: () => void;
  let stops = 0;
  let quits = 0;
  const lines: string[] = [];
  const h = new SessionEndHandler({
    stopGateway: () => {
      stops++;
      return new Promise<void>((r) => (release = r));
    },
    quit: () => quits++,
    log: (l) => lines.push(l),
  });
  const event = (reasons: string[] = ['logoff']) => {
    const e = { reasons, prevented: 0, preventDefault: () => e.prevented++ };
    return e;
  };
  return { h, event, lines, stops: () => stops, quits: () => quits, release: () => release() };
}

test('log-off asked (query-session-end): the stop starts at once, the end is held until it is done, then the shell quits', async () => {
  const t = harness();
  const q = t.event(['logoff']);
  t.h.onQuerySessionEnd(q);
  assert.equal(t.stops(), 1);
  assert.equal(q.prevented, 1, 'the session end waits for the drain');
  assert.match(t.lines[0]!, /query-session-end \(logoff\): stopping the gateway/);
  // Windows asks again while the gateway drains: no second stop, still held
  const again = t.event(['logoff']);
  t.h.onQuerySessionEnd(again);
  assert.equal(t.stops(), 1);
  assert.equal(again.prevented, 1);
  assert.equal(t.quits(), 0, 'not before the gateway stopped');
  t.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(t.h.done, true);
  assert.equal(t.quits(), 1);
  const late = t.event();
  t.h.onQuerySessionEnd(late);
  assert.equal(late.prevented, 0, 'once stopped, the session may end');
  assert.equal(t.stops(), 1);
});

test('the session ends without asking (session-end): the stop starts if it had not, once', async () => {
  const t = harness();
  t.h.onSessionEnd(t.event(['shutdown', 'critical']));
  t.h.onSessionEnd(t.event(['shutdown']));
  assert.equal(t.stops(), 1);
  assert.match(t.lines[0]!, /session-end \(shutdown, critical\)/);
  t.release();
  await new Promise((r) => setImmediate(r));
  assert.equal(t.quits(), 1);
});

test('a failing stop is logged and the shell still quits', async () => {
  const lines: string[] = [];
  let quits = 0;
  const h = new SessionEndHandler({ stopGateway: () => Promise.reject(new Error('child is gone')), quit: () => quits++, log: (l) => lines.push(l) });
  h.onSessionEnd({ preventDefault: () => {} });
  await new Promise((r) => setImmediate(r));
  assert.equal(quits, 1);
  assert.match(lines.join('\n'), /no reason given/);
  assert.match(lines.join('\n'), /failed: child is gone/);
});

test('only Windows needs the hidden sentinel window; closing the admin window quits unless the gateway keeps serving', () => {
  assert.equal(needsSessionSentinel('win32'), true);
  assert.equal(needsSessionSentinel('linux'), false);
  assert.equal(needsSessionSentinel('darwin'), false);
  assert.equal(afterWindowClosed({ keepServing: false, quitting: false }), 'quit');
  assert.equal(afterWindowClosed({ keepServing: true, quitting: false }), 'keep-serving');
  assert.equal(afterWindowClosed({ keepServing: false, quitting: true }), 'nothing');
});
