// Workflow traces against the real gateway process: the official openai client makes an agent's
// model calls in one session (x-airlock-session), one of them hits a failing target and falls
// back; the admin API shows every step with its attempts, parent links and why it fell back.
// Also: an incoming W3C traceparent is honoured and the upstream gets our attempt's span as
// parent; failed requests are always kept when sampling; bad queries are named.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { TEST_KEY, eventually, type RunningGateway } from '../helpers/gateway.js';
import type { TestUpstream } from '../helpers/upstream.js';
import { startFallbackGateway, type FallbackGateway } from '../helpers/fallback.js';
import type { SessionsBody, Trace, TraceSpan, TracesBody } from '../../gateway/wire.js';

let f: FallbackGateway;
let gw: RunningGateway;
let primary: TestUpstream;
let backup: TestUpstream;

function client(session: string, extra: Record<string, string> = {}): OpenAI {
  return new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 15_000, defaultHeaders: { 'x-airlock-session': session, ...extra } });
}

before(async () => {
  f = await startFallbackGateway({ team: 'research', keyName: 'notebook-app', upstreamModel: 'test-model', model: { price: { input_per_million: 1, output_per_million: 2 } } });
  ({ gw, primary, backup } = f);
});

after(async () => {
  await f?.close();
});

const roots = (traces: Trace[]) => traces.map((t) => t.spans.find((s) => s.kind === 'model')!).sort((a, b) => a.start_ms - b.start_ms);
const childrenOf = (t: Trace, s: TraceSpan) => t.spans.filter((c) => c.parent_span_id === s.span_id);

describe('a workflow in one view', () => {
  test('40 model calls of one session, one falling back, are 40 traces with their attempts', async () => {
    const session = `agent-run-${randomUUID()}`;
    const ai = client(session);
    const failAt = 17;
    for (let i = 0; i < 40; i++) {
      if (i === failAt) primary.queue({ kind: 'status', status: 503 });
      const stream = i % 2 === 1;
      if (stream) {
        const s = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `step ${i}` }], stream: true, stream_options: { include_usage: true } });
        for await (const _ of s) void _;
      } else {
        const r = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `step ${i}` }], max_tokens: 50, temperature: 0.2 });
        assert.ok(r.choices[0]?.message.content);
      }
    }

    const res = await gw.admin<TracesBody>('GET', `/traces?session=${encodeURIComponent(session)}`);
    assert.equal(res.status, 200);
    const traces = res.body.data;
    assert.equal(traces.length, 40, 'one trace per model call');
    const steps = roots(traces);
    assert.equal(steps.length, 40);
    for (const s of steps) {
      assert.equal(s.name, 'chat chat', 'GenAI name: {gen_ai.operation.name} {gen_ai.request.model}');
      assert.equal(s.attributes['gen_ai.operation.name'], 'chat');
      assert.equal(s.attributes['gen_ai.request.model'], 'chat');
      assert.equal(s.attributes['gen_ai.response.model'], 'test-model');
      assert.equal(s.attributes['gen_ai.provider.name'], 'openai');
      assert.equal(s.attributes['airlock.session'], session);
      assert.equal(s.attributes['airlock.team'], 'research');
      assert.equal(typeof s.attributes['gen_ai.usage.input_tokens'], 'number');
      assert.ok((s.attributes['gen_ai.usage.output_tokens'] as number) > 0);
      assert.equal(typeof s.attributes['airlock.time_to_first_token_ms'], 'number');
      assert.equal(s.status.code, 'ok');
      assert.equal(s.parent_span_id, null, 'no traceparent came in: each call is a root');
      assert.ok(s.end_ms >= s.start_ms);
    }
    assert.equal(steps[0]!.attributes['gen_ai.request.max_tokens'], 50);
    assert.equal(steps[0]!.attributes['gen_ai.request.temperature'], 0.2);

    // the fallback: two attempts under the step's span, the first failed with its reason
    const fell = traces.filter((t) => t.spans.filter((s) => s.kind === 'attempt').length === 2);
    assert.equal(fell.length, 1, 'exactly one step fell back');
    const t = fell[0]!;
    const root = t.spans.find((s) => s.kind === 'model')!;
    assert.equal(root.attributes['airlock.attempts'], 2);
    assert.equal(root.attributes['airlock.endpoint'], 'gpu-2');
    const attempts = childrenOf(t, root).filter((s) => s.kind === 'attempt');
    assert.equal(attempts.length, 2);
    const [first, second] = attempts.sort((a, b) => (a.attributes['airlock.attempt'] as number) - (b.attributes['airlock.attempt'] as number));
    assert.equal(first!.status.code, 'error');
    assert.equal(first!.attributes['airlock.endpoint'], 'gpu-1');
    assert.equal(first!.attributes['error.type'], 'http_5xx');
    assert.match(String(first!.attributes['airlock.failover_reason']), /503/);
    assert.equal(second!.status.code, 'ok');
    assert.equal(second!.attributes['airlock.endpoint'], 'gpu-2');
    assert.equal(second!.attributes['gen_ai.request.model'], 'test-model');
    assert.ok(second!.start_ms >= first!.end_ms - 1, 'the fallback starts after the failure');

    // every other step: one attempt, a child of its step
    for (const tr of traces) {
      const r = tr.spans.find((s) => s.kind === 'model')!;
      for (const s of tr.spans) if (s !== r) assert.equal(s.parent_span_id, r.span_id);
    }

    // one trace by id
    const one = await gw.admin<Trace>('GET', `/traces/${t.trace_id.toUpperCase()}`);
    assert.equal(one.status, 200);
    assert.equal(one.body.trace_id, t.trace_id);
    assert.equal(one.body.spans.length, t.spans.length);

    // the session list
    const list = await gw.admin<SessionsBody>('GET', `/sessions?team=research&limit=500`);
    const mine = list.body.data.find((s) => s.session === session);
    assert.ok(mine, 'the session is listed');
    assert.equal(mine.steps, 40);
    assert.equal(mine.model_calls, 40);
    assert.equal(mine.tool_calls, 0);
    assert.equal(mine.errors, 0, 'the fallback answered: no step failed');
    assert.deepEqual(mine.teams, ['research']);
    assert.deepEqual(mine.models, ['chat']);
    assert.ok(mine.input_tokens > 0 && mine.output_tokens > 0);
    const none = await gw.admin<SessionsBody>('GET', `/sessions?team=nobody`);
    assert.equal(none.body.data.some((s) => s.session === session), false);
  });

  test("the client's traceparent is honoured and the upstream gets our attempt's span as parent", async () => {
    const session = `tp-${randomUUID()}`;
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    backup.reset();
    primary.reset();
    await client(session, { traceparent: `00-${traceId}-${parent}-01` }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
    assert.equal(traces.length, 1);
    assert.equal(traces[0]!.trace_id, traceId);
    const root = traces[0]!.spans.find((s) => s.kind === 'model')!;
    assert.equal(root.parent_span_id, parent);
    const attempt = traces[0]!.spans.find((s) => s.kind === 'attempt')!;
    const sent = primary.requests.find((r) => r.method === 'POST')!.headers.traceparent;
    assert.equal(sent, `00-${traceId}-${attempt.span_id}-01`);
  });

  test('a malformed traceparent starts a new trace (and is not sent upstream as ours)', async () => {
    const session = `badtp-${randomUUID()}`;
    primary.reset();
    await client(session, { traceparent: '00-00000000000000000000000000000000-00f067aa0ba902b7-01' }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    const [t] = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
    assert.ok(t);
    assert.match(t.trace_id, /^[0-9a-f]{32}$/);
    assert.notEqual(t.trace_id, '0'.repeat(32));
    assert.equal(t.spans.find((s) => s.kind === 'model')!.parent_span_id, null);
    const sent = String(primary.requests.find((r) => r.method === 'POST')!.headers.traceparent);
    assert.match(sent, new RegExp(`^00-${t.trace_id}-[0-9a-f]{16}-01$`));
  });

  test('a request that fails on every target is traced, with the error where it started and where it surfaced', async () => {
    const session = `fail-${randomUUID()}`;
    primary.queue({ kind: 'status', status: 500 });
    backup.queue({ kind: 'status', status: 502 });
    await assert.rejects(client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }), (e: { status?: number }) => e.status === 502);
    const [t] = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
    assert.ok(t);
    const root = t.spans.find((s) => s.kind === 'model')!;
    assert.equal(root.status.code, 'error');
    assert.equal(root.attributes['http.response.status_code'], 502);
    assert.equal(root.attributes['error.type'], 'http_5xx');
    const attempts = t.spans.filter((s) => s.kind === 'attempt');
    assert.equal(attempts.length, 2);
    assert.ok(attempts.every((a) => a.status.code === 'error' && a.attributes['airlock.failover_reason']));
    const s = (await gw.admin<SessionsBody>('GET', `/sessions?status=error`)).body.data.find((x) => x.session === session);
    assert.ok(s);
    assert.equal(s.errors, 1);
  });

  test('with sample_ratio 0 successful requests are not kept, failed ones are', async () => {
    const cur = (await gw.admin('GET', '/settings')).body;
    const put = await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, sample_ratio: 0 } });
    assert.equal(put.status, 200);
    try {
      const session = `sampled-${randomUUID()}`;
      await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'ok' }] });
      await assert.rejects(client(session).chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
      const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
      assert.equal(traces.length, 1);
      const root = traces[0]!.spans[0]!;
      assert.equal(root.name, 'chat no-such-model');
      assert.equal(root.attributes['error.type'], 'model_not_found');
      assert.equal(root.attributes['http.response.status_code'], 404);
    } finally {
      await gw.admin('PUT', '/settings', cur);
    }
  });

  test('traces off: nothing is stored', async () => {
    const cur = (await gw.admin('GET', '/settings')).body;
    await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, traces: false } });
    try {
      const session = `off-${randomUUID()}`;
      await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'ok' }] });
      await assert.rejects(client(session).chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
      assert.deepEqual((await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data, []);
    } finally {
      await gw.admin('PUT', '/settings', cur);
    }
  });
});

/** Prometheus text format → sample name{labels} → value (labels as written, sorted by name). */
function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(m, `a sample line: ${line}`);
    const labels = [...(m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)].map((l) => `${l[1]}=${l[2]}`).sort();
    out.set(`${m[1]}{${labels.join(',')}}`, Number(m[3]));
  }
  return out;
}

describe("where a request's spans are kept", () => {
  test("a plain request's trace is its ledger row's: the trace id is its request id's, the upstream's parent its attempt's span; a fallback keeps a span row", async () => {
    const session = `plain-${randomUUID()}`;
    primary.reset();
    const { data, response } = await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], max_tokens: 9, temperature: 0.5 }).withResponse();
    assert.ok(data.choices[0]?.message.content);
    const id = response.headers.get('x-airlock-request-id')!;
    const traceId = id.replaceAll('-', '');
    const t = (await gw.admin<Trace>('GET', `/traces/${traceId}`)).body;
    assert.equal(t.trace_id, traceId);
    const root = t.spans.find((s) => s.kind === 'model')!;
    const attempt = t.spans.find((s) => s.kind === 'attempt')!;
    assert.deepEqual([root.parent_span_id, attempt.parent_span_id, t.spans.length], [null, root.span_id, 2]);
    assert.equal(String(primary.requests.find((r) => r.method === 'POST')!.headers.traceparent), `00-${traceId}-${attempt.span_id}-01`);
    assert.equal(root.attributes['airlock.request_id'], id);
    assert.equal(root.attributes['gen_ai.request.max_tokens'], 9);
    assert.equal(root.attributes['gen_ai.request.temperature'], 0.5);
    assert.deepEqual(root.attributes['gen_ai.response.finish_reasons'], ['stop']);
    assert.equal(root.attributes['gen_ai.usage.input_tokens'], data.usage!.prompt_tokens);
    assert.equal(attempt.attributes['server.address'], new URL(primary.url).origin);
    assert.equal(attempt.attributes['airlock.attempt.outcome'], 'ok');
    assert.ok(attempt.start_ms >= root.start_ms && attempt.end_ms <= root.end_ms, 'the attempt within its request');

    // the same request twice more, the second falling back: its trace is a span row
    primary.queue({ kind: 'status', status: 503 });
    const fell = await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'again' }] }).withResponse();
    const fellId = fell.response.headers.get('x-airlock-request-id')!;
    const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
    assert.deepEqual(traces.map((x) => x.trace_id), [traceId, fellId.replaceAll('-', '')]);
    assert.deepEqual(traces[1]!.spans.filter((s) => s.kind === 'attempt').map((s) => s.status.code), ['error', 'ok']);
    const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true, fileMustExist: true });
    try {
      const trace = db.prepare('SELECT trace FROM ledger WHERE request_id = ?').pluck();
      const rows = db.prepare('SELECT COUNT(*) FROM trace_spans WHERE trace_id = ?').pluck();
      assert.ok(trace.get(id), 'the plain request: its ledger row carries its trace');
      assert.equal(rows.get(traceId), 0, '... and no span row');
      assert.equal(trace.get(fellId), null, 'the fallback: no trace in its ledger row');
      assert.equal(rows.get(fellId.replaceAll('-', '')), 1, '... its spans are a row');
    } finally {
      db.close();
    }
    const s = (await gw.admin<SessionsBody>('GET', '/sessions')).body.data.find((x) => x.session === session)!;
    assert.deepEqual([s.steps, s.model_calls, s.traces, s.errors], [2, 2, 2, 0]);
    // the usage API's rows do not show the trace column
    const usage = (await gw.admin<{ data: Record<string, unknown>[] }>('GET', `/usage/requests?request_id=${id}`)).body.data;
    assert.equal(usage.length, 1);
    assert.equal('trace' in usage[0]!, false);
  });
});

describe('/sessions over both stores', () => {
  test("a request that joins a plain request's trace by its traceparent is a step of that one trace", async () => {
    const session = `joined-${randomUUID()}`;
    const first = await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'plan' }] }).withResponse();
    const traceId = first.response.headers.get('x-airlock-request-id')!.replaceAll('-', '');
    // the agent carries on in the same trace (its span under our request's): a span row of that trace
    await client(session, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'act' }] });
    const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
    assert.deepEqual(traces.map((t) => [t.trace_id, t.spans.filter((s) => s.kind === 'model').length]), [[traceId, 2]]);
    const s = (await gw.admin<SessionsBody>('GET', '/sessions?limit=500')).body.data.find((x) => x.session === session)!;
    assert.deepEqual([s.steps, s.model_calls, s.traces], [2, 2, 1], 'two steps of one trace, as GET /traces?session= shows them');
  });

  test("GET /traces?session= shows a trace whole when its plain request was in another session", async () => {
    const planner = `planner-${randomUUID()}`;
    const worker = `worker-${randomUUID()}`;
    const first = await client(planner).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'plan' }] }).withResponse();
    const traceId = first.response.headers.get('x-airlock-request-id')!.replaceAll('-', '');
    await client(worker, { traceparent: `00-${traceId}-00f067aa0ba902b7-01` }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'act' }] });
    const whole = (await gw.admin<Trace>('GET', `/traces/${traceId}`)).body;
    assert.equal(whole.spans.length, 4, 'two requests, an attempt each');
    const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${worker}`)).body.data;
    assert.deepEqual(
      traces.map((t) => [t.trace_id, t.spans.map((s) => s.span_id)]),
      [[whole.trace_id, whole.spans.map((s) => s.span_id)]],
      'the worker session sees the trace as GET /traces/ID does, the planner\'s spans included',
    );
  });

  test('next_before pages through every session, ledger-carried and span rows alike, none twice', async () => {
    const since = Date.now();
    const mine: string[] = [];
    for (let i = 0; i < 5; i++) {
      const session = `page-${i}-${randomUUID()}`;
      mine.push(session);
      // sessions 1 and 3 fall back (span rows), the others are plain (ledger rows)
      if (i % 2 === 1) primary.queue({ kind: 'status', status: 503 });
      await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `step ${i}` }] });
    }
    // every page, following next_before (as `before`) or next_cursor (as `cursor`)
    const pages = async (param: 'before' | 'cursor'): Promise<string[]> => {
      const out: string[] = [];
      let next: string | null = null;
      for (let page = 0; page < 10; page++) {
        const r: { status: number; body: SessionsBody } = await gw.admin<SessionsBody>('GET', `/sessions?limit=2&from=${since}${next === null ? '' : `&${param}=${next}`}`);
        assert.equal(r.status, 200, `page ${page} (${param}=${next}): ${JSON.stringify(r.body)}`);
        out.push(...r.body.data.map((x) => x.session));
        next = param === 'before' ? r.body.next_before : r.body.next_cursor;
        if (next === null) break;
      }
      return out;
    };
    const seen = await pages('before');
    assert.deepEqual(seen, [...mine].reverse(), 'newest activity first, each session once');
    // the same pages by next_cursor
    assert.deepEqual(await pages('cursor'), seen);
  });
});

describe('/metrics', () => {
  test('requests by team and the wait for a slot move as requests are made', async () => {
    const read = async () => parseProm((await gw.admin('GET', '/metrics')).body as string);
    const key = 'airlock_requests_total{endpoint=gpu-1,kind=chat,model=chat,status=200,team=research}';
    const waits = 'airlock_queue_wait_seconds_count{endpoint=gpu-1}';
    const before = await read();
    const session = `m-${randomUUID()}`;
    await client(session).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'count me' }] });
    await gw.admin('GET', `/traces?session=${session}`); // (written before it answers)
    const after = await read();
    assert.equal((after.get(key) ?? 0) - (before.get(key) ?? 0), 1);
    assert.equal((after.get(waits) ?? 0) - (before.get(waits) ?? 0), 1);
    assert.ok(after.has('airlock_endpoint_queue_depth{endpoint=gpu-1}'));
    assert.ok((after.get('airlock_trace_spans_written_total{}') ?? 0) > 0);
    for (const k of after.keys()) assert.doesNotMatch(k, /session=|request_id=|user=/, 'no per-request labels');
  });
});

describe('retention', () => {
  test('lowering max_spans deletes the oldest spans at once and keeps the newest', async () => {
    const old = `oldest-${randomUUID()}`;
    await client(old).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'first' }] });
    const bulk = client(`bulk-${randomUUID()}`);
    for (let i = 0; i < 30; i++) await Promise.all(Array.from({ length: 20 }, () => bulk.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] })));
    const newest = `newest-${randomUUID()}`;
    await client(newest).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'last' }] });
    assert.equal((await gw.admin<TracesBody>('GET', `/traces?session=${old}`)).body.data.length, 1);

    const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true, fileMustExist: true });
    try {
      // a request's spans are one row (its children in a JSON column; n counts the spans in a
      // row), or, for a plain request, its ledger row's trace column (the request and its attempt)
      const inRows = () => db.prepare('SELECT COALESCE(SUM(n), 0) FROM trace_spans').pluck().get() as number;
      const inLedger = () => 2 * (db.prepare('SELECT COUNT(*) FROM ledger WHERE trace IS NOT NULL').pluck().get() as number);
      const count = () => inRows() + inLedger();
      const inChildren = () => db.prepare('SELECT COALESCE(SUM(json_array_length(children)), 0) + COUNT(*) FROM trace_spans').pluck().get() as number;
      assert.equal(inChildren(), inRows(), 'n counts every stored span');
      assert.ok(inLedger() > 1200, `${inLedger()} spans carried by ledger rows before`);
      assert.ok(count() > 1200, `${count()} spans stored before`);
      const cur = (await gw.admin('GET', '/settings')).body;
      assert.equal((await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, max_spans: 1000 } })).status, 200);
      await eventually(() => count() <= 1000, 'the store pruned to max_spans');
      assert.ok(count() >= 900, 'only the excess went');
      const ledgerRows = db.prepare('SELECT COUNT(*) FROM ledger').pluck().get() as number;
      assert.ok(ledgerRows >= 602, `the ledger keeps its rows (${ledgerRows}), only their traces went`);
      assert.deepEqual((await gw.admin<TracesBody>('GET', `/traces?session=${old}`)).body.data, [], 'the oldest trace is gone');
      assert.equal((await gw.admin<TracesBody>('GET', `/traces?session=${newest}`)).body.data.length, 1, 'the newest is kept');
      await gw.admin('PUT', '/settings', cur);
    } finally {
      db.close();
    }
  });
});

describe('the traces API refuses bad queries, naming the field', () => {
  const cases: [string, number, string | null][] = [
    ['/traces/not-a-trace-id', 400, 'trace_id'],
    [`/traces/${'ab'.repeat(16)}`, 404, null],
    ['/traces?limit=0', 400, 'limit'],
    ['/traces?limit=1001', 400, 'limit'],
    ['/traces?limit=1e3', 400, 'limit'],
    [`/traces?session=${'x'.repeat(300)}`, 400, 'session'],
    // a session's traces are listed whole: a limit with it would be silently ignored
    ['/traces?session=wf-1&limit=abc', 400, 'limit'],
    ['/traces?session=wf-1&limit=5', 400, 'limit'],
    ['/sessions?status=failed', 400, 'status'],
    ['/sessions?from=yesterday', 400, 'from'],
    ['/sessions?limit=-1', 400, 'limit'],
    ['/sessions?cursor=bm90IGEgY3Vyc29y', 400, 'cursor'],
  ];
  for (const [path, status, param] of cases)
    test(`${path.slice(0, 60)} → ${status}`, async () => {
      const r = await gw.admin('GET', path);
      assert.equal(r.status, status);
      if (param) assert.equal(r.body.error.param, param);
    });

  test('settings.telemetry refuses a bad collector URL and a literal header secret', async () => {
    const cur = (await gw.admin('GET', '/settings')).body;
    const bad = await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, otlp_endpoint: 'ftp://collector:4318' } });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'telemetry.otlp_endpoint');
    const lit = await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, otlp_endpoint: 'http://10.0.0.9:4318/v1/traces', otlp_headers: { authorization: 'Bearer abc' } } });
    assert.equal(lit.status, 400);
    assert.equal(lit.body.error.param, 'telemetry.otlp_headers.authorization');
    const ratio = await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, sample_ratio: 1.5 } });
    assert.equal(ratio.status, 400);
    assert.equal(ratio.body.error.param, 'telemetry.sample_ratio');
  });
});
