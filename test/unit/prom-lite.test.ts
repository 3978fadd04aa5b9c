// prom-lite's counters and histograms must expose exactly what prom-client's own would for the
// same updates: scrapers and dashboards see no difference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Counter, Histogram, Registry } from 'prom-client';
import { LiteCounter, LiteHistogram } from '../../gateway/engine/prom-lite.js';
import { Rng } from '../helpers/random.js';

const BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The exposition with each series' labels in one order (prom-client lists a counter's labels in
 * the order of the first update's object; the order carries no meaning in the format). */
function canonical(text: string): string {
  return text
    .split('\n')
    .map((line) => {
      const m = /^([^{\s]+)\{(.*)\} (\S+)$/.exec(line);
      if (!m) return line;
      const labels = m[2]!.match(/[a-z_]+="(?:[^"\\]|\\.)*"/g) ?? [];
      assert.equal(labels.join(','), m[2], `labels parse back: ${line}`);
      return `${m[1]}{${[...labels].sort().join(',')}} ${m[3]}`;
    })
    .join('\n');
}

function both() {
  const ref = new Registry();
  const lite = new Registry();
  const labelNames = ['kind', 'model', 'status'] as const;
  return {
    ref,
    lite,
    refCounter: new Counter({ name: 'x_requests_total', help: 'Requests "quoted" \\ and more', labelNames, registers: [ref] }),
    liteCounter: new LiteCounter('x_requests_total', 'Requests "quoted" \\ and more', labelNames).registerIn(lite),
    refHist: new Histogram({ name: 'x_duration_seconds', help: 'Duration', labelNames: ['model'] as const, buckets: BUCKETS, registers: [ref] }),
    liteHist: new LiteHistogram('x_duration_seconds', 'Duration', ['model'] as const, BUCKETS).registerIn(lite),
  };
}

test('the exposition is the same as prom-client for the same counter and histogram updates', async () => {
  const m = both();
  // label values with characters the exposition must escape, label objects in any key order
  const series = [
    { kind: 'chat', model: 'llama "3"', status: '200' },
    { status: '502', model: 'back\\slash', kind: 'embeddings' },
    { kind: 'chat', model: 'new\nline', status: '200' },
    // series that share their first labels and differ only in a later one, and the same values
    // under other label names: each is a series of its own
    { kind: 'chat', model: 'llama "3"', status: '502' },
    { kind: 'chat', model: 'new\nline', status: '429' },
    { kind: 'llama "3"', model: 'chat', status: '200' },
    { kind: '', model: '', status: '' },
  ];
  const rng = new Rng(7);
  const rnd = () => rng.float();
  for (let i = 0; i < 500; i++) {
    const l = series[i % series.length]!;
    const n = i % 7 === 0 ? 2.5 : 1;
    m.refCounter.inc(l, n);
    m.liteCounter.inc(l, n);
    // values on, between and beyond the bucket bounds
    const v = i % 11 === 0 ? BUCKETS[i % BUCKETS.length]! : i % 13 === 0 ? 99 : rnd() * 3;
    m.refHist.observe({ model: l.model }, v);
    m.liteHist.observe({ model: l.model }, v);
  }
  assert.equal(canonical(await m.lite.metrics()), canonical(await m.ref.metrics()));
});

test('a metric with no updates exposes its help and type only; reset clears the series', async () => {
  const m = both();
  assert.equal(canonical(await m.lite.metrics()), canonical(await m.ref.metrics()));
  m.liteCounter.inc({ kind: 'a', model: 'b', status: 'c' });
  m.refCounter.inc({ kind: 'a', model: 'b', status: 'c' });
  m.lite.resetMetrics();
  m.ref.resetMetrics();
  assert.equal(canonical(await m.lite.metrics()), canonical(await m.ref.metrics()));
  // a series seen before the reset starts again from zero
  for (const l of [{ kind: 'a', model: 'b', status: 'c' }, { kind: 'a', model: 'b', status: 'd' }]) {
    m.liteCounter.inc(l, 3);
    m.refCounter.inc(l, 3);
  }
  m.liteHist.observe({ model: 'b' }, 0.2);
  m.refHist.observe({ model: 'b' }, 0.2);
  assert.equal(canonical(await m.lite.metrics()), canonical(await m.ref.metrics()));
});

test('a metric without labels is one series', async () => {
  const ref = new Registry();
  const lite = new Registry();
  const refCounter = new Counter({ name: 'x_total', help: 'All', registers: [ref] });
  const liteCounter = new LiteCounter('x_total', 'All', [] as const).registerIn(lite);
  for (let i = 1; i <= 4; i++) {
    refCounter.inc(i);
    liteCounter.inc({}, i);
  }
  assert.equal(canonical(await lite.metrics()), canonical(await ref.metrics()));
  assert.match(await lite.metrics(), /^x_total 10$/m);
});

test('bad values are refused as prom-client refuses them, and change nothing', async () => {
  const m = both();
  const l = { kind: 'chat', model: 'm', status: '200' };
  assert.throws(() => m.liteCounter.inc(l, -1), /cannot add -1/);
  assert.throws(() => m.liteCounter.inc(l, Number.NaN), /cannot add NaN/);
  assert.throws(() => m.liteHist.observe({ model: 'm' }, Number.POSITIVE_INFINITY), /cannot observe Infinity/);
  assert.throws(() => m.refCounter.inc(l, -1));
  assert.equal(canonical(await m.lite.metrics()), canonical(await m.ref.metrics()));
});
