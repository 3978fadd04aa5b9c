// The pipeline's lifecycle events (engine/events.ts): a subscriber that throws must not take the
// gateway down. diagnostics_channel rethrows a subscriber's error on the next tick as an uncaught
// exception; on() reports it on stderr instead, and the other subscribers still get the message.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { on } from '../../gateway/engine/events.js';

test('a subscriber that throws is reported, not rethrown, and the others still hear the message', async () => {
  const ch = diagnostics_channel.channel(`airlock:test:events:${process.pid}`);
  const source = {};
  const heard: number[] = [];
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown) => uncaught.push(e);
  process.on('uncaughtException', onUncaught);
  const written: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  process.stderr.write = ((chunk: string | Uint8Array) => {
    written.push(String(chunk));
    return true;
  });
  const offs = [
    on<{ source: object; n: number }>(ch, source, () => {
      throw new Error('counter cannot add -5');
    }),
    on<{ source: object; n: number }>(ch, source, (m) => heard.push(m.n)),
  ];
  try {
    ch.publish({ source, n: 1 });
    ch.publish({ source: {}, n: 2 }); // another source: neither subscriber runs
    ch.publish({ source, n: 3 });
    await new Promise((r) => setImmediate(r)); // where diagnostics_channel would rethrow
  } finally {
    process.stderr.write = write;
    process.off('uncaughtException', onUncaught);
    for (const off of offs) off();
  }
  assert.deepEqual(uncaught, [], 'nothing reached uncaughtException');
  assert.deepEqual(heard, [1, 3]);
  const lines = written.join('').split('\n').filter((l) => l.startsWith('airlock: a recorder of'));
  assert.equal(lines.length, 2, 'each failure is reported');
  assert.match(lines[0]!, /a recorder of airlock:test:events:\d+ failed \(1 time\(s\) so far\): Error: counter cannot add -5/);
});
