// The per-session event store behind /mcp's resumability: bounded by count and bytes (oldest
// first), a message too large to keep leaves a gap that refuses the resume instead of skipping it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { SessionEventStore } from '../../gateway/engine/mcp/event-store.js';

const note = (i: number, pad = ''): JSONRPCMessage => ({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 1, progress: i, pad } });
const replay = async (s: SessionEventStore, id: string) => {
  const got: [string, JSONRPCMessage][] = [];
  const stream = await s.replayEventsAfter(id, { send: async (eventId, m) => void got.push([eventId, m]) });
  return { stream, got };
};

test('replays the events of the same stream after the one given, skipping the priming event and other streams', async () => {
  const s = new SessionEventStore(100, 1 << 20);
  const prime = await s.storeEvent('a', {} as JSONRPCMessage);
  await s.storeEvent('b', note(0));
  const one = await s.storeEvent('a', note(1));
  await s.storeEvent('a', note(2));
  await s.storeEvent('b', note(3));
  const all = await replay(s, prime);
  assert.equal(all.stream, 'a');
  assert.deepEqual(all.got.map(([, m]) => (m as unknown as { params: { progress: number } }).params.progress), [1, 2]);
  assert.deepEqual((await replay(s, one)).got.length, 1);
  assert.equal(await s.getStreamIdForEventId(one), 'a');
  assert.equal(s.cannotResume(one), undefined);
});

test('bounded by count: the oldest go first, and a resume from one of them says it is no longer kept', async () => {
  const s = new SessionEventStore(3, 1 << 20);
  const ids: string[] = [];
  for (let i = 0; i < 2000; i++) ids.push(await s.storeEvent('a', note(i)));
  assert.equal(s.size.events, 3);
  assert.match(s.cannotResume(ids[0]!) ?? '', /is not an event this session still keeps \(this session keeps its last 3 events/);
  assert.equal(await s.getStreamIdForEventId(ids[0]!), undefined);
  const r = await replay(s, ids[1997]!);
  assert.deepEqual(r.got.map(([id]) => id), [ids[1998], ids[1999]]);
});

test('bounded by bytes: events are dropped until the rest fit; one larger than the bound leaves a gap that refuses the resume', async () => {
  const s = new SessionEventStore(1000, 2000);
  const first = await s.storeEvent('a', note(1, 'x'.repeat(900)));
  await s.storeEvent('a', note(2, 'x'.repeat(900)));
  const third = await s.storeEvent('a', note(3, 'x'.repeat(900)));
  assert.ok(s.size.bytes <= 2000, `bytes ${s.size.bytes}`);
  assert.ok(s.cannotResume(first));
  await s.storeEvent('a', note(4, 'x'.repeat(5000)));
  await s.storeEvent('a', note(5));
  assert.ok(s.size.bytes <= 2000);
  assert.match(s.cannotResume(third) ?? '', /An event after Last-Event-ID "\d+" was larger than this session keeps/);
  await assert.rejects(replay(s, third), /too large to keep/);
});

test('ids that are not events of this session are refused, and clear() frees everything', async () => {
  const s = new SessionEventStore();
  const id = await s.storeEvent('a', note(1));
  for (const bad of ['0', '-1', 'abc', '1e3', '99999999999999999999', '2']) assert.ok(s.cannotResume(bad), bad);
  s.clear();
  assert.deepEqual(s.size, { events: 0, bytes: 0 });
  assert.ok(s.cannotResume(id));
});
