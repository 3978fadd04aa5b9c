// Governance building blocks: budget periods (time zones, month ends, DST), the budget and rate
// counters (atomic reservations, token buckets), and the fair queue (weights, priorities,
// work-conserving).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { periodBounds, zonedMidnight } from '../../gateway/governance/periods.js';
import { MemoryCounters } from '../../gateway/governance/counters.js';
import { formatReset } from '../../gateway/governance/governance.js';
import { FairQueue, type QueueEntry } from '../../gateway/engine/fair-queue.js';
import { parsePriority, parseTags } from '../../gateway/governance/attribution.js';
import { GatewayError } from '../../gateway/engine/errors.js';

const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());

describe('budget periods', () => {
  test('day, week (from Monday), month and total in UTC', () => {
    const now = Date.parse('2026-12-02T08:30:00Z'); // a Wednesday
    assert.deepEqual([iso(periodBounds('day', now, 'UTC').start), iso(periodBounds('day', now, 'UTC').end)], ['2026-12-02T00:00:00.000Z', '2026-12-03T00:00:00.000Z']);
    assert.deepEqual([iso(periodBounds('week', now, 'UTC').start), iso(periodBounds('week', now, 'UTC').end)], ['2026-11-30T00:00:00.000Z', '2026-12-07T00:00:00.000Z']);
    assert.deepEqual([iso(periodBounds('month', now, 'UTC').start), iso(periodBounds('month', now, 'UTC').end)], ['2026-12-01T00:00:00.000Z', '2027-01-01T00:00:00.000Z']);
    assert.deepEqual(periodBounds('total', now, 'UTC'), { start: 0, end: null });
  });

  test('UTC (computed without zone data) gives the same bounds as the zone database\'s Etc/UTC', () => {
    // 2000 instants spread over 1970-2100, plus the ends of days, months and leap years
    const instants = [Date.parse('2028-02-29T23:59:59.999Z'), Date.parse('2026-12-31T23:59:59.999Z'), Date.parse('2027-01-01T00:00:00Z'), 0];
    for (let i = 0; i < 2000; i++) instants.push(Math.floor(((i * 7919) % 2000) / 2000 * 4102444800000) + i);
    for (const t of instants)
      for (const p of ['day', 'week', 'month'] as const) assert.deepEqual(periodBounds(p, t, 'UTC'), periodBounds(p, t, 'Etc/UTC'), `${p} at ${new Date(t).toISOString()}`);
  });
  test('a Sunday belongs to the week that started the Monday before', () => {
    const b = periodBounds('week', Date.parse('2026-12-06T23:59:59Z'), 'UTC');
    assert.equal(iso(b.start), '2026-11-30T00:00:00.000Z');
  });

  test('Europe/Berlin: local midnight, whatever the UTC date', () => {
    // 23:30 UTC on 31 Jan is already 1 Feb in Berlin (UTC+1)
    const b = periodBounds('month', Date.parse('2026-01-31T23:30:00Z'), 'Europe/Berlin');
    assert.equal(iso(b.start), '2026-01-31T23:00:00.000Z');
    assert.equal(iso(b.end), '2026-02-28T23:00:00.000Z');
    const d = periodBounds('day', Date.parse('2026-07-10T21:59:00Z'), 'Europe/Berlin'); // summer: UTC+2
    assert.equal(iso(d.start), '2026-07-09T22:00:00.000Z');
    assert.equal(iso(d.end), '2026-07-10T22:00:00.000Z');
  });

  test('DST: the day clocks go forward is 23 hours long, the day they go back 25', () => {
    const spring = periodBounds('day', Date.parse('2026-03-29T12:00:00Z'), 'Europe/Berlin');
    assert.equal(spring.end! - spring.start, 23 * 3_600_000);
    assert.equal(iso(spring.start), '2026-03-28T23:00:00.000Z');
    const autumn = periodBounds('day', Date.parse('2026-10-25T12:00:00Z'), 'Europe/Berlin');
    assert.equal(autumn.end! - autumn.start, 25 * 3_600_000);
    // New York: the month that contains the March change
    const ny = periodBounds('month', Date.parse('2026-03-15T12:00:00Z'), 'America/New_York');
    assert.equal(iso(ny.start), '2026-03-01T05:00:00.000Z');
    assert.equal(iso(ny.end), '2026-04-01T04:00:00.000Z');
  });

  test('month ends: December rolls into January, leap February', () => {
    assert.equal(iso(zonedMidnight(2027, 13, 1, 'UTC')), '2028-01-01T00:00:00.000Z');
    const feb = periodBounds('month', Date.parse('2028-02-29T10:00:00Z'), 'UTC');
    assert.equal(iso(feb.end), '2028-03-01T00:00:00.000Z');
    const tokyo = periodBounds('day', Date.parse('2026-12-31T15:00:00Z'), 'Asia/Tokyo'); // 1 Jan 00:00 in Tokyo
    assert.equal(iso(tokyo.start), '2026-12-31T15:00:00.000Z');
  });
});

describe('counters', () => {
  test('reservations: every claim must have room, nothing is reserved when one has none', () => {
    const c = new MemoryCounters();
    const team = { subject: 'team:a', start: 0, limit: 10 };
    const key = { subject: 'key:k', start: 0, limit: 3 };
    assert.equal(c.reserve([team, key], 2), -1);
    assert.equal(c.reserve([team, key], 2), -1); // key: 2 < 3 still has room
    assert.equal(c.reserve([team, key], 2), 1, 'the key is full (4 >= 3)');
    assert.deepEqual(c.budget(team), { spent: 0, reserved: 4 }, 'the refused request reserved nothing on the team');
    c.settle([team, key], 2, 0.5);
    assert.deepEqual(c.budget(key), { spent: 0.5, reserved: 2 });
    c.settle([team, key], 2, 0); // a failed request releases its reservation
    assert.deepEqual(c.budget(key), { spent: 0.5, reserved: 0 });
  });

  test('seed sets only a cell not known yet; periods are separate cells', () => {
    const c = new MemoryCounters();
    c.seed({ subject: 'team:a', start: 100 }, 7);
    c.seed({ subject: 'team:a', start: 100 }, 99);
    assert.equal(c.budget({ subject: 'team:a', start: 100 }).spent, 7);
    assert.equal(c.budget({ subject: 'team:a', start: 200 }).spent, 0);
  });

  test('token bucket per minute: full at first, refills at limit/60 s, may go into debt', () => {
    const c = new MemoryCounters();
    const r = { subject: 'key:k#r', limit: 60 };
    const t0 = 1_000_000;
    for (let i = 0; i < 60; i++) assert.equal(c.rateWait(r, 1, t0), 0);
    for (let i = 0; i < 60; i++) c.take(r, 1, t0);
    assert.equal(c.rateWait(r, 1, t0), 1000, 'one request a second comes back');
    assert.deepEqual(c.rate(r, t0), { remaining: 0, resetMs: 60_000 });
    assert.equal(c.rateWait(r, 1, t0 + 1000), 0);
    const tpm = { subject: 'key:k#t', limit: 100 };
    c.take(tpm, 250, t0); // used more than the limit: waits until the debt is paid
    assert.equal(c.rateWait(tpm, 1, t0), Math.ceil((151 * 60_000) / 100));
  });

  test('reset durations are written as OpenAI does', () => {
    assert.equal(formatReset(120), '120ms');
    assert.equal(formatReset(1500), '1.5s');
    assert.equal(formatReset(360_000), '6m0s');
  });
});

interface E extends QueueEntry {
  id: string;
}
function queue() {
  const q = new FairQueue<E>();
  const add = (id: string, group: string, weight: number, batch = false) => q.push({ id, share: { group, weight, batch }, seq: q.nextSeq() });
  const drain = () => {
    const out: string[] = [];
    for (let e = q.shift(); e; e = q.shift()) out.push(e.id);
    return out;
  };
  return { q, add, drain };
}

describe('fair queue', () => {
  test('weights 1 and 3: served 1:3 while both wait, then the rest of the lone group (work-conserving)', () => {
    const { add, drain } = queue();
    for (let i = 0; i < 20; i++) add(`a${i}`, 'a', 1);
    for (let i = 0; i < 20; i++) add(`b${i}`, 'b', 3);
    const order = drain();
    assert.equal(order.length, 40);
    const first20 = order.slice(0, 20);
    assert.equal(first20.filter((x) => x.startsWith('a')).length, 5);
    assert.equal(first20.filter((x) => x.startsWith('b')).length, 15);
    assert.deepEqual(order.slice(-10), ['a10', 'a11', 'a12', 'a13', 'a14', 'a15', 'a16', 'a17', 'a18', 'a19'].slice(-10));
    // within a group, oldest first
    assert.deepEqual(order.filter((x) => x.startsWith('a')), Array.from({ length: 20 }, (_, i) => `a${i}`));
  });

  test('interactive before batch within a group; an idle group earns no credit', () => {
    const { q, add, drain } = queue();
    add('batch1', 'a', 1, true);
    add('batch2', 'a', 1, true);
    add('inter1', 'a', 1);
    assert.deepEqual(drain(), ['inter1', 'batch1', 'batch2']);
    // group b served many times alone; then a arrives: they alternate from now on
    for (let i = 0; i < 5; i++) add(`b${i}`, 'b', 1);
    assert.equal(q.shift()!.id, 'b0');
    assert.equal(q.shift()!.id, 'b1');
    add('a0', 'a', 1);
    add('a1', 'a', 1);
    assert.deepEqual(drain().slice(0, 4), ['a0', 'b2', 'a1', 'b3']);
  });

  test('removing a waiter (timeout, client gone) keeps the queue consistent', () => {
    const { q } = queue();
    const e1: E = { id: 'x', share: { group: 'a', weight: 1, batch: false }, seq: q.nextSeq() };
    const e2: E = { id: 'y', share: undefined, seq: q.nextSeq() };
    q.push(e1);
    q.push(e2);
    assert.equal(q.remove(e1), true);
    assert.equal(q.remove(e1), false);
    assert.equal(q.length, 1);
    assert.equal(q.shift()!.id, 'y');
    assert.equal(q.shift(), undefined);
  });
});

describe('attribution headers', () => {
  const refused = (v: string) => {
    try {
      parseTags({ 'x-airlock-tags': v });
    } catch (e) {
      assert.ok(e instanceof GatewayError);
      assert.equal(e.status, 400);
      assert.equal(e.param, 'x-airlock-tags');
      return e.message;
    }
    assert.fail(`accepted ${JSON.stringify(v)}`);
  };
  test('tags: key=value pairs, spaces trimmed, empty header is none', () => {
    assert.deepEqual(parseTags({ 'x-airlock-tags': 'project=alpha, env = prod,empty=' }), { project: 'alpha', env: 'prod', empty: '' });
    assert.equal(parseTags({ 'x-airlock-tags': '  ' }), undefined);
    assert.equal(parseTags({}), undefined);
  });
  test('tags: every malformed spelling is a 400 naming the problem', () => {
    assert.match(refused(Array.from({ length: 11 }, (_, i) => `k${i}=v`).join(',')), /11 tags, at most 10/);
    assert.match(refused(`k=${'x'.repeat(63)}`), /at most 64/);
    assert.match(refused('novalue'), /has no "="/);
    assert.match(refused('a=1,,b=2'), /empty tag/);
    assert.match(refused('a=1,'), /empty tag/);
    assert.match(refused('=v'), /tag key ""/);
    assert.match(refused('a b=1'), /tag key "a b"/);
    assert.match(refused('a=1,a=2'), /given twice/);
    assert.match(refused('a=x=y'), /value of tag "a"/);
    assert.match(refused('a=é'), /value of tag "a"/);
  });
  test('priority: batch or interactive, any case; anything else is a 400', () => {
    assert.equal(parsePriority({ 'x-airlock-priority': 'Batch' }), 'batch');
    assert.equal(parsePriority({}), undefined);
    assert.throws(() => parsePriority({ 'x-airlock-priority': 'urgent' }), /must be "interactive" or "batch"/);
  });
});
