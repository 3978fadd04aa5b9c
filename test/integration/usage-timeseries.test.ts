// GET /admin/api/v1/usage/timeseries: requests, errors, tokens, cost and latency percentiles
// per time bucket, computed by the gateway from the whole ledger (not a sample of recent rows).
// A real gateway process and a simulated upstream; the expected values come from what the client
// saw (usage, failures) and from the ledger rows the gateway reports on /usage/requests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface Point {
  t: number;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
  p50_ms: number | null;
  p99_ms: number | null;
}
interface Series {
  from: number;
  to: number;
  bucket_ms: number;
  data: Point[];
  totals: Omit<Point, 't'>;
}
interface Row {
  ts: number;
  status: number;
  latency_ms: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
}

/** Nearest-rank percentile, the definition the API documents. */
function nearestRank(values: number[], p: number): number | null {
  if (!values.length) return null;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)]!;
}

describe('usage time series', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let client: OpenAI;
  /** what the client saw */
  let sent = 0;
  let failed = 0;
  let promptTokens = 0;
  let completionTokens = 0;
  let t0 = 0;
  let t1 = 0;

  const chat = async (content: string, stream = false) => {
    sent++;
    try {
      if (stream) {
        const s = await client.chat.completions.create({ model: 'chat', stream: true, stream_options: { include_usage: true }, messages: [{ role: 'user', content }] });
        for await (const chunk of s) {
          if (chunk.usage) {
            promptTokens += chunk.usage.prompt_tokens;
            completionTokens += chunk.usage.completion_tokens;
          }
        }
      } else {
        const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content }] });
        promptTokens += r.usage!.prompt_tokens;
        completionTokens += r.usage!.completion_tokens;
      }
    } catch (e) {
      assert.ok(e instanceof OpenAI.APIError && (e.status ?? 0) >= 400, `an HTTP error reached the client: ${String(e)}`);
      failed++;
    }
  };

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url, { settings: { breaker: { failure_threshold: 1000, cooldown_ms: 300 } } }) });
    client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    t0 = Date.now();
    // First burst: successes with varied latency (some streamed), and upstream failures.
    up.setBehavior(() => ({ kind: 'ok', chunkDelayMs: Math.floor(Math.random() * 6) }));
    for (let i = 0; i < 10; i++) await chat(`first burst ${i} ${'word '.repeat(i * 3)}`, i % 4 === 3);
    up.setBehavior({ kind: 'status', status: 500 });
    for (let i = 0; i < 3; i++) await chat(`failing ${i}`);
    // An unknown model is refused by the gateway itself: also an error row.
    up.setBehavior(() => ({ kind: 'ok', chunkDelayMs: Math.floor(Math.random() * 6) }));
    sent++;
    await assert.rejects(client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }), (e: unknown) => {
      assert.ok(e instanceof OpenAI.APIError && (e.status ?? 0) >= 400);
      failed++;
      return true;
    });
    // A pause of more than a bucket (1 s below), then a second burst.
    const pauseFrom = Date.now();
    await eventually(() => Date.now() > pauseFrom + 1_300, 'time to pass', 5_000);
    for (let i = 0; i < 6; i++) await chat(`second burst ${i} ${'token '.repeat(i * 5)}`, i % 3 === 2);
    t1 = Date.now();
    assert.ok(failed >= 4, `some requests failed (${failed})`);
    assert.ok(promptTokens > 0 && completionTokens > 0);
  });

  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  const series = async (q: string) => {
    const r = await gw.admin<Series>('GET', `/usage/timeseries${q}`);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    return r.body;
  };
  const ledgerRows = async () => {
    const r = await gw.admin<{ data: Row[] }>('GET', '/usage/requests?limit=10000');
    assert.equal(r.status, 200);
    return r.body.data;
  };

  test('buckets count every request, error and token, and match the ledger bucket by bucket', async () => {
    const rows = await ledgerRows();
    assert.equal(rows.length, sent, 'one ledger row per request');
    // 1-second buckets from a whole second before the first request to a few seconds after the last.
    const from = Math.floor(t0 / 1000) * 1000 - 1000;
    const n = Math.ceil((t1 + 1 - from) / 1000) + 3;
    const s = await series(`?from=${from}&to=${from + n * 1000}&buckets=${n}`);
    assert.equal(s.from, from);
    assert.equal(s.to, from + n * 1000);
    assert.equal(s.bucket_ms, 1000);
    assert.equal(s.data.length, n);
    assert.deepEqual(
      s.data.map((p) => p.t),
      Array.from({ length: n }, (_, i) => from + i * 1000),
      'every bucket is present, in order',
    );

    // Totals: what the client saw.
    const sum = (k: keyof Omit<Point, 't' | 'p50_ms' | 'p99_ms'>) => s.data.reduce((a, p) => a + p[k], 0);
    assert.equal(sum('requests'), sent);
    assert.equal(sum('errors'), failed);
    assert.equal(sum('prompt_tokens'), promptTokens, 'prompt tokens equal the upstream usage');
    assert.equal(sum('completion_tokens'), completionTokens, 'completion tokens equal the upstream usage');
    assert.ok(sum('cost') > 0, 'the model has a price');
    assert.deepEqual(
      { requests: s.totals.requests, errors: s.totals.errors, prompt_tokens: s.totals.prompt_tokens, completion_tokens: s.totals.completion_tokens },
      { requests: sent, errors: failed, prompt_tokens: promptTokens, completion_tokens: completionTokens },
    );

    // Bucket by bucket: the ledger rows that fall in it.
    let nonEmpty = 0;
    let empty = 0;
    s.data.forEach((p, i) => {
      const inside = rows.filter((r) => r.ts >= p.t && r.ts < p.t + s.bucket_ms);
      const lat = inside.map((r) => r.latency_ms);
      assert.equal(p.requests, inside.length, `bucket ${i} requests`);
      assert.equal(p.errors, inside.filter((r) => r.status >= 400).length, `bucket ${i} errors`);
      assert.equal(p.prompt_tokens, inside.reduce((a, r) => a + r.prompt_tokens, 0), `bucket ${i} prompt tokens`);
      assert.equal(p.completion_tokens, inside.reduce((a, r) => a + r.completion_tokens, 0), `bucket ${i} completion tokens`);
      assert.ok(Math.abs(p.cost - inside.reduce((a, r) => a + r.cost, 0)) < 1e-6, `bucket ${i} cost`);
      if (inside.length === 0) {
        empty++;
        assert.deepEqual(
          { requests: p.requests, errors: p.errors, prompt_tokens: p.prompt_tokens, completion_tokens: p.completion_tokens, cost: p.cost, p50_ms: p.p50_ms, p99_ms: p.p99_ms },
          { requests: 0, errors: 0, prompt_tokens: 0, completion_tokens: 0, cost: 0, p50_ms: null, p99_ms: null },
          `empty bucket ${i} is zeros`,
        );
        return;
      }
      nonEmpty++;
      const min = Math.min(...lat);
      const max = Math.max(...lat);
      assert.ok(p.p50_ms !== null && p.p99_ms !== null, `bucket ${i} has percentiles`);
      assert.ok(p.p50_ms >= min && p.p50_ms <= max, `bucket ${i} p50 ${p.p50_ms} within ${min}..${max}`);
      assert.ok(p.p99_ms >= min && p.p99_ms <= max, `bucket ${i} p99 ${p.p99_ms} within ${min}..${max}`);
      assert.ok(p.p50_ms <= p.p99_ms, `bucket ${i} p50 <= p99`);
      assert.equal(p.p50_ms, nearestRank(lat, 50), `bucket ${i} p50 is the nearest-rank median`);
      assert.equal(p.p99_ms, nearestRank(lat, 99), `bucket ${i} p99 is the nearest-rank 99th percentile`);
    });
    assert.ok(nonEmpty >= 2, `the two bursts fall in different buckets (${nonEmpty} non-empty)`);
    assert.ok(empty >= 1, 'some buckets are empty');
    const all = rows.map((r) => r.latency_ms);
    assert.equal(s.totals.p50_ms, nearestRank(all, 50));
    assert.equal(s.totals.p99_ms, nearestRank(all, 99));
  });

  test('a range that ends before the traffic is all zeros; a bucket count that does not divide the range rounds "to" up', async () => {
    const before = await series(`?from=${t0 - 60_000}&to=${t0 - 1000}&buckets=5`);
    assert.equal(before.data.length, 5);
    assert.ok(before.data.every((p) => p.requests === 0 && p.errors === 0 && p.prompt_tokens === 0 && p.p50_ms === null && p.p99_ms === null));
    assert.equal(before.totals.requests, 0);
    assert.equal(before.totals.p50_ms, null);

    // 10 001 ms in 7 buckets: 1429 ms each, the range is 7 × 1429 ms long.
    const from = t0 - 2000;
    const odd = await series(`?from=${new Date(from).toISOString()}&to=${from + 10_001}&buckets=7`);
    assert.equal(odd.from, from, 'ISO times are accepted');
    assert.equal(odd.bucket_ms, Math.ceil(10_001 / 7));
    assert.equal(odd.data.length, 7);
    assert.equal(odd.to, from + 7 * odd.bucket_ms);
    const rows = await ledgerRows();
    assert.equal(
      odd.data.reduce((a, p) => a + p.requests, 0),
      rows.filter((r) => r.ts >= odd.from && r.ts < odd.to).length,
    );
  });

  test('defaults: the last hour in 60 buckets, ending now', async () => {
    const asked = Date.now();
    const s = await series('');
    assert.equal(s.data.length, 60);
    assert.equal(s.bucket_ms, 60_000);
    assert.equal(s.to - s.from, 3_600_000);
    assert.ok(s.to >= t1 && s.to >= asked, 'the range ends now');
    assert.equal(s.data.reduce((a, p) => a + p.requests, 0), sent, 'every request of the test is in the last hour');
    assert.equal(s.data.reduce((a, p) => a + p.errors, 0), failed);
    // from alone: one hour from it
    const f = await series(`?from=${t0 - 1000}&buckets=10`);
    assert.equal(f.from, t0 - 1000);
    assert.equal(f.data.reduce((a, p) => a + p.requests, 0), sent);
  });

  test('bad parameters: 400 naming the field', async () => {
    const cases: [string, string][] = [
      ['?buckets=0', 'buckets'],
      ['?buckets=501', 'buckets'],
      ['?buckets=1.5', 'buckets'],
      ['?buckets=ten', 'buckets'],
      ['?buckets=-3', 'buckets'],
      ['?from=yesterday', 'from'],
      ['?to=2026-13-45T99:00:00Z', 'to'],
      [`?from=${t1}&to=${t0}`, 'to'],
      [`?from=${t0}&to=${t0}`, 'to'],
      [`?from=${Date.now() + 3_600_000}`, 'from'],
    ];
    for (const [q, param] of cases) {
      const r = await gw.admin('GET', `/usage/timeseries${q}`);
      assert.equal(r.status, 400, `${q}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.error.code, 'validation_failed', q);
      assert.equal(r.body.error.param, param, q);
      assert.equal(r.body.error.type, 'invalid_request_error', q);
    }
    assert.equal((await gw.admin('GET', '/usage/timeseries?buckets=500')).status, 200);
    assert.equal((await gw.admin('GET', '/usage/timeseries?buckets=1')).body.data.length, 1);
  });

  test('needs an admin credential', async () => {
    const r = await gw.admin('GET', '/usage/timeseries', undefined, { authorization: 'Bearer wrong' });
    assert.equal(r.status, 401);
  });
});
