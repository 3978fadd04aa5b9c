// The ledger's trace column as LedgerTraceWriter writes it (gateway/telemetry/ledger-trace.ts):
// exactly the text JSON.stringify gives for the LedgerTrace tuple, whatever the strings and
// numbers, while its cached parts (per target and rule, and the usual single finish reason) are
// reused across requests and renewed when what they were made from changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LedgerTraceWriter, type LedgerTrace, type LedgerTraceFacts } from '../../gateway/telemetry/ledger-trace.js';

const reference = (f: LedgerTraceFacts): string =>
  JSON.stringify([
    1,
    f.rule ?? null,
    f.provider,
    f.origin ?? null,
    f.target,
    f.attemptModel,
    f.maxTokens ?? null,
    f.temperature ?? null,
    f.topP ?? null,
    Math.round(f.attemptStart * 1000),
    Math.round(f.attemptEnd * 1000),
    Math.round(f.queueMs * 1000),
    f.ttfcMs === undefined ? null : Math.round(f.ttfcMs * 1000),
    f.finishReasons ? [...f.finishReasons] : null,
  ] satisfies LedgerTrace);

const base: LedgerTraceFacts = {
  rule: 'cheap-first',
  provider: 'vllm',
  origin: 'http://10.0.0.5:8000',
  target: 'gpu-1/llama',
  attemptModel: 'llama-3.1-8b',
  maxTokens: 256,
  temperature: 0.7,
  topP: 1,
  attemptStart: 0.125,
  attemptEnd: 3.4567,
  queueMs: 0,
  ttfcMs: 1.5,
  finishReasons: ['stop'],
};

test('the column is what JSON.stringify writes for the tuple, odd strings and numbers included', () => {
  const w = new LedgerTraceWriter();
  const odd = 'q "1" \\ \u2028 \u0001 é 😀 \n';
  const cases: LedgerTraceFacts[] = [
    base,
    { ...base, rule: undefined, origin: undefined, maxTokens: undefined, temperature: undefined, topP: undefined, ttfcMs: undefined, finishReasons: undefined },
    { ...base, rule: odd, provider: odd, origin: odd, target: odd, attemptModel: odd, finishReasons: [odd] },
    { ...base, finishReasons: [], temperature: 1e-7, topP: 0.30000000000000004, maxTokens: 2 ** 53 },
    { ...base, finishReasons: ['stop', 'length "x"'], attemptStart: 1e-4, attemptEnd: 86_400_000.0005, queueMs: 12.3456789, ttfcMs: 0 },
    { ...base, temperature: Number.NaN, topP: Number.POSITIVE_INFINITY, maxTokens: -0 },
  ];
  // each case twice: written fresh, then from the caches
  for (const f of [...cases, ...cases]) assert.equal(w.write(f), reference(f));
  const t = JSON.parse(w.write(cases[2]!)) as LedgerTrace;
  assert.equal(t[1], odd);
  assert.deepEqual(t[13], [odd]);
});

test('a cached prefix is renewed when the endpoint type, its origin or the upstream model change under the same target and rule', () => {
  const w = new LedgerTraceWriter();
  assert.equal(w.write(base), reference(base));
  for (const change of [{ provider: 'ollama' }, { origin: 'http://10.0.0.6:8000' }, { origin: undefined }, { attemptModel: 'llama-3.1-70b' }, { rule: undefined }, { rule: 'other' }, { finishReasons: ['length'] }]) {
    const f = { ...base, ...change };
    assert.equal(w.write(f), reference(f), JSON.stringify(change));
    assert.equal(w.write(base), reference(base), `back from ${JSON.stringify(change)}`);
  }
});

test('the caches stay bounded and correct past their size: many targets, many rules, many finish reasons', () => {
  const w = new LedgerTraceWriter();
  for (let i = 0; i < 2000; i++) {
    const f = { ...base, target: `t${i % 700}`, rule: `r${i % 300}`, finishReasons: [`reason ${i % 400}`] };
    assert.equal(w.write(f), reference(f));
  }
});
