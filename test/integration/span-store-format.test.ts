// The span store's stored form over a real SQLite file: a request's children are written in the
// compact form (tuples, known attribute keys as numbers, the root's id and nulls left out) and
// read back by the admin API's reads exactly as the tracer made them; rows written before the
// compact form (children as objects) still read, side by side with new ones. Retention and the
// size cap prune in write order (no index on start). A request's row that the tracer writes
// itself (without span objects) reads back as the span objects it hands an exporter.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { DEFAULT_SETTINGS } from '../../gateway/config/schema.js';
import { channels } from '../../gateway/engine/events.js';
import { Ledger, ledgerRowOf } from '../../gateway/engine/ledger.js';
import { newContext } from '../../gateway/engine/pipeline.js';
import { newRequestId } from '../../gateway/engine/request-id.js';
import type { RequestContext } from '../../gateway/engine/stages.js';
import type { Snapshot } from '../../gateway/engine/snapshot.js';
import { openDatabase } from '../../gateway/store/db.js';
import { RecorderThread } from '../../gateway/store/recorder.js';
import { SpanStore, listSessions, recentTraces, traceById, traceOfRequest, tracesOfSessionRead } from '../../gateway/telemetry/span-store.js';
import { newSpanId, newTraceId, type SpanData } from '../../gateway/telemetry/span.js';
import { ATTR_KEYS } from '../../gateway/telemetry/span-writer.js';
import { GUARDRAIL_EVENTS, Tracer } from '../../gateway/telemetry/tracer.js';
import type { TraceSpan } from '../../gateway/wire.js';
import { tmpDir } from '../helpers/gateway.js';

const quiet = () => {};

function request(session: string): SpanData[] {
  const traceId = newTraceId();
  const root = newSpanId();
  const attempt1 = newSpanId();
  const t = Date.now() + 0.123456;
  const base = { traceId, session, team: undefined, key: undefined, model: undefined, httpStatus: undefined, statusMessage: undefined };
  return [
    {
      ...base,
      spanId: root,
      parentSpanId: 'aaaaaaaaaaaaaaaa',
      kind: 'model',
      name: 'chat m',
      start: t,
      end: t + 25.5,
      status: 'error',
      statusMessage: 'upstream_error',
      team: 'research',
      key: 'nb',
      model: 'm',
      httpStatus: 502,
      attributes: { 'gen_ai.usage.input_tokens': 3, 'gen_ai.usage.output_tokens': 4, 'airlock.cost': 0.5, 'airlock.team': 'research', 'error.type': 'upstream_error' },
    },
    {
      ...base,
      spanId: newSpanId(),
      parentSpanId: root,
      kind: 'queue',
      name: 'queue gpu-1',
      start: t + 0.001,
      end: t + 2.000001,
      status: 'unset',
      attributes: { 'airlock.endpoint': 'gpu-1', 'airlock.queue_ms': 1.999 },
    },
    {
      ...base,
      spanId: attempt1,
      parentSpanId: root,
      kind: 'attempt',
      name: 'chat up-1',
      start: t + 2,
      end: t + 12,
      status: 'error',
      statusMessage: 'gpu-1 answered 500 "quoted" \u2028 é',
      attributes: {
        'gen_ai.operation.name': 'chat',
        'airlock.attempt': 1,
        'airlock.attempt.outcome': 'http_5xx',
        'error.type': 'http_5xx',
        'airlock.failover_reason': 'HTTP 500',
        'gen_ai.response.finish_reasons': ['stop', 'length'],
        // keys the compact form has no number for are written as they are
        'custom.flag': false,
        '0': 'a key that looks like a number',
      },
    },
    {
      ...base,
      spanId: newSpanId(),
      parentSpanId: attempt1,
      kind: 'guardrail',
      name: 'guardrail pii',
      start: t + 12,
      end: t + 12,
      status: 'error',
      statusMessage: 'guardrail_blocked',
      attributes: { 'airlock.guardrail.policy': 'pii', 'airlock.guardrail.blocked': true, 'airlock.guardrail.complete': false, 'airlock.guardrail.count': 0 },
    },
    {
      ...base,
      spanId: newSpanId(),
      parentSpanId: undefined,
      kind: 'attempt',
      name: 'orphan',
      start: t + 13,
      end: t + 25,
      status: 'ok',
      attributes: {},
    },
  ];
}

/** What the admin API must show for a span the tracer made, given its row's root. */
function expected(s: SpanData, root: SpanData): TraceSpan {
  return {
    trace_id: root.traceId,
    span_id: s.spanId,
    parent_span_id: s.parentSpanId ?? null,
    kind: s.kind,
    name: s.name,
    start: new Date(s.start).toISOString(),
    end: new Date(s.end).toISOString(),
    start_ms: s.start,
    end_ms: s.end,
    duration_ms: Math.round((s.end - s.start) * 1000) / 1000,
    status: { code: s.status, message: s.statusMessage ?? null },
    session: root.session ?? null,
    attributes: s.attributes,
  };
}

test('a request stored in the compact form reads back as the tracer made it; a row written before it still reads', async () => {
  const dir = tmpDir('airlock-span-format-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const store = SpanStore.forDatabase(db, () => ({ retentionHours: 24, maxSpans: 100_000 }), quiet, thread);
  try {
    const spans = request('wf-1');
    store.record(spans);
    assert.equal(await store.flush(), true);

    // the stored children: tuples without the trace id, the root's span id or the known keys' names
    const children = db.prepare(`SELECT children FROM trace_spans WHERE trace_id = ?`).pluck().get(spans[0]!.traceId) as string;
    assert.ok(children.startsWith('[['), children);
    assert.ok(!children.includes(spans[0]!.traceId), 'no trace id in the children');
    assert.equal(children.split(spans[0]!.spanId).length - 1, 0, "the root's span id is not repeated");
    for (const k of ['airlock.endpoint', 'airlock.failover_reason', 'airlock.guardrail.policy']) assert.ok(!children.includes(k), k);
    assert.equal(db.prepare(`SELECT json_array_length(children) FROM trace_spans WHERE trace_id = ?`).pluck().get(spans[0]!.traceId), 4);
    // the root's attributes: known keys as numbers, the ones SQL sums (tokens, cost) by name
    const attrs = db.prepare(`SELECT attributes FROM trace_spans WHERE trace_id = ?`).pluck().get(spans[0]!.traceId) as string;
    assert.ok(!attrs.includes('airlock.team') && !attrs.includes('error.type'), attrs);
    assert.ok(attrs.includes('"gen_ai.usage.input_tokens":3') && attrs.includes('"airlock.cost":0.5'), attrs);

    const t = traceById(db, spans[0]!.traceId)!;
    const want = spans.map((s) => expected(s, spans[0]!)).sort((a, b) => a.start_ms - b.start_ms);
    assert.deepEqual(t.spans, want);

    // a row as written before the compact form: its children are objects
    const old = request('wf-1');
    const c = old.slice(1).map((s) => ({
      span_id: s.spanId,
      parent_span_id: s.parentSpanId ?? null,
      kind: s.kind,
      name: s.name,
      start: s.start,
      end: s.end,
      status: s.status,
      status_message: s.statusMessage ?? null,
      attributes: s.attributes,
    }));
    const r = old[0]!;
    db.prepare(
      `INSERT INTO trace_spans (trace_id, span_id, parent_span_id, session, kind, name, start, end, status, status_message, team, key_name, model, http_status, attributes, children, n)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ).run(r.traceId, r.spanId, r.parentSpanId ?? null, r.session ?? null, r.kind, r.name, r.start, r.end, r.status, r.statusMessage ?? null, r.team ?? null, r.key ?? null, r.model ?? null, r.httpStatus ?? null, JSON.stringify(r.attributes), JSON.stringify(c), old.length);
    assert.deepEqual(traceById(db, r.traceId)!.spans, old.map((s) => expected(s, r)).sort((a, b) => a.start_ms - b.start_ms));

    // both kinds of row in one session: the workflow view and the session list see both
    const both = tracesOfSessionRead(db, 'wf-1').traces;
    assert.deepEqual(both.map((x) => x.trace_id).sort(), [spans[0]!.traceId, r.traceId].sort());
    assert.deepEqual(both.map((x) => x.spans.length), [5, 5]);
    const list = listSessions(db, { limit: 10 });
    assert.equal(list.data.length, 1);
    assert.equal(list.data[0]!.steps, 2);
    assert.equal(list.data[0]!.errors, 2);
    assert.equal(list.data[0]!.input_tokens, 6);
    assert.equal(list.data[0]!.cost, 1);
  } finally {
    await store.close();
    db.close();
  }
});

test('the compact form keeps its numbering of attribute keys: a key written as a number reads as its name', () => {
  // the list is part of the stored format; rows already written depend on these positions
  assert.deepEqual(ATTR_KEYS.slice(0, 4), ['gen_ai.operation.name', 'gen_ai.request.model', 'gen_ai.provider.name', 'airlock.endpoint']);
  assert.equal(ATTR_KEYS.indexOf('airlock.guardrail.detectors'), 20);
  assert.equal(new Set(ATTR_KEYS).size, ATTR_KEYS.length);
});

test('retention deletes in write order: rows older than the retention go, a long request written after a younger row goes once that one has aged out; the cap still takes the oldest', async () => {
  const dir = tmpDir('airlock-span-prune-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  let policy = { retentionHours: 1, maxSpans: 100_000 };
  const store = SpanStore.forDatabase(db, () => policy, quiet, thread);
  const insert = db.prepare(
    `INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, 's', 'model', ?, ?, ?, 'ok', '{}', 2)`,
  );
  const ids = (): string[] => db.prepare(`SELECT name FROM trace_spans ORDER BY rowid`).pluck().all() as string[];
  const now = Date.now();
  const h = 3_600_000;
  const rows: [string, number][] = [
    ['old-1', now - 3 * h],
    ['old-2', now - 2 * h],
    ['young-1', now - 10 * 60_000],
    // began before the retention, ended (and was written) after young-1
    ['old-long', now - 1.5 * h],
    ['young-2', now - 60_000],
  ];
  try {
    for (const [name, start] of rows) insert.run(newTraceId(), newSpanId(), name, start, start + 1);
    assert.equal(await store.prune(), 4, 'two rows of two spans');
    assert.deepEqual(ids(), ['young-1', 'old-long', 'young-2']);
    // once young-1 is older than the retention, old-long goes with it
    policy = { retentionHours: 0.1, maxSpans: 100_000 };
    assert.equal(await store.prune(), 4);
    assert.deepEqual(ids(), ['young-2']);
    // the cap: the newest rows that hold at most maxSpans spans are kept
    for (let i = 0; i < 3; i++) {
      store.record(request(`s-${i}`));
      assert.equal(await store.flush(), true);
    }
    assert.equal(db.prepare(`SELECT SUM(n) FROM trace_spans`).pluck().get(), 2 + 15);
    policy = { retentionHours: 1, maxSpans: 10 };
    assert.equal(await store.prune(), 7, 'young-2 (2 spans) and the first request (5)');
    assert.deepEqual(db.prepare(`SELECT session FROM trace_spans ORDER BY rowid`).pluck().all(), ['s-1', 's-2']);
  } finally {
    await store.close();
    db.close();
  }
});

test('a tool call and a late guardrail span, each a row of its own, read back as the tracer made them', async () => {
  const dir = tmpDir('airlock-span-format-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const store = SpanStore.forDatabase(db, () => ({ retentionHours: 24, maxSpans: 100_000 }), quiet, thread);
  try {
    const t = Date.now();
    const tool: SpanData = {
      traceId: newTraceId(),
      spanId: newSpanId(),
      parentSpanId: undefined,
      session: 'wf-2',
      kind: 'tool',
      name: 'tools/call fs__read',
      start: t,
      end: t + 3.25,
      status: 'error',
      statusMessage: 'tool_error',
      team: 'ops',
      key: 'agent-1',
      model: undefined,
      httpStatus: 200,
      attributes: {
        'mcp.method.name': 'tools/call',
        'gen_ai.operation.name': 'execute_tool',
        'gen_ai.tool.name': 'fs__read',
        'airlock.tool_call_id': 'call-1',
        'http.response.status_code': 200,
        'airlock.mcp.server': 'fs',
        'mcp.session.id': 'abc',
        'gen_ai.agent.name': 'agent-1',
        'airlock.team': 'ops',
        'airlock.session': 'wf-2',
        'airlock.tool.args_bytes': 12,
        'airlock.tool.is_error': true,
        'error.type': 'tool_error',
        'airlock.mcp.exposed_name': 'fs "read" \\ \u2028 é',
        // not in the list: written by name
        'some.future.key': 'x',
        'a "quoted" key': ['one', 'two'],
      },
    };
    const guard: SpanData = { ...tool, spanId: newSpanId(), parentSpanId: tool.spanId, kind: 'guardrail', name: 'guardrail pii', start: t + 4, end: t + 4, status: 'unset', statusMessage: undefined, team: undefined, key: undefined, httpStatus: undefined, attributes: { 'airlock.guardrail.policy': 'pii', 'airlock.guardrail.detectors': '{"email":1}' } };
    store.record([tool]);
    store.record([guard]);
    assert.equal(await store.flush(), true);
    assert.deepEqual(traceById(db, tool.traceId)!.spans, [expected(tool, tool), expected(guard, guard)]);
    const list = listSessions(db, { limit: 10 });
    assert.deepEqual([list.data[0]!.session, list.data[0]!.tool_calls, list.data[0]!.errors, list.data[0]!.teams, list.data[0]!.keys], ['wf-2', 1, 1, ['ops'], ['agent-1']]);
  } finally {
    await store.close();
    db.close();
  }
});

// A request in odd strings (quotes, backslashes, line separators, astral characters), for the
// stored forms' round trips below.
const snapshot = {
  endpoints: new Map([['gpu "1"', { name: 'gpu "1"', type: 'ollama', origin: 'http://10.0.0.5:11434' }]]),
  models: new Map(),
  settings: DEFAULT_SETTINGS,
} as unknown as Snapshot;
const odd = 'wf "1" \\ \u2028 é 😀 \n end';
const target = { id: 'gpu "1"/llama', endpoint: 'gpu "1"', upstreamModel: 'llama "3"' };
/** who and what of the request, set on its context before request:end */
const ODD_WHO = {
  key: { name: 'key "k"', team: 'team ü' },
  user: 'user \u0001 "u"',
  requestedModel: 'model "m" 😀',
  model: { name: 'model "m" 😀' },
  rule: 'rule\\1',
  endpoint: 'gpu "1"',
};

test("a request's row that the tracer writes without span objects reads back as the spans it gives an exporter, odd strings and every kind of child included", async () => {
  const dir = tmpDir('airlock-span-row-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const store = SpanStore.forDatabase(db, () => ({ retentionHours: 24, maxSpans: 100_000 }), quiet, thread);
  const exported: SpanData[] = [];
  const source = {};
  // the store and a span sink together (as with an OTLP endpoint set): the row is written from
  // the request's facts, the span objects are made from the same facts for the sink
  const tracer = new Tracer(source, [(s) => exported.push(...s)], undefined, store);
  tracer.update({ ...DEFAULT_SETTINGS.telemetry, traces: true, otlp_endpoint: 'http://127.0.0.1:9/v1/traces' });
  try {
    const ctx = newContext('chat', `req-${newSpanId()}`, snapshot);
    Object.assign(ctx, { session: odd, traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` });
    channels.requestStart.publish({ source, ctx });
    // a wait for a slot, an attempt that fails over, a guardrail decision in flight, and an
    // attempt the client left (no attempt:end)
    channels.attemptStart.publish({ source, ctx, target, attempt: 1, headers: {}, queueMs: 3.25 });
    channels.attemptEnd.publish({ source, ctx, target, attempt: 1, outcome: 'http_5xx', error: 'answered 500 "busy"\n\u2028', durationMs: 4.5 });
    diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ source: {}, events: [{ ts: Date.now(), requestId: ctx.id, policy: 'pii "strict"', direction: 'input', action: 'redact', count: 2, detectors: { email: 2 } }], ctx });
    channels.attemptStart.publish({ source, ctx, target, attempt: 2, headers: {}, queueMs: 0 });
    channels.firstContent.publish({ source, ctx });
    Object.assign(ctx, {
      ...ODD_WHO,
      upstreamModel: 'llama "3"',
      body: { max_tokens: 7, temperature: 0.25, top_p: 1 },
      stream: true,
      status: 499,
      errorClass: 'client_closed',
      attempts: 2,
      promptTokens: 3,
      completionTokens: 0,
      estimated: true,
      cost: 1e-7,
      ttfbMs: 12.3456789,
    });
    channels.requestEnd.publish({ source, ctx, latencyMs: 20 });
    assert.equal(await store.flush(), true);

    assert.deepEqual(exported.map((s) => s.kind), ['model', 'queue', 'attempt', 'guardrail', 'attempt']);
    const root = exported[0]!;
    assert.equal(root.traceId, 'ab'.repeat(16), "the client's trace");
    assert.equal(root.session, odd);
    assert.equal(exported[4]!.attributes['airlock.attempt.outcome'], 'unfinished');
    assert.equal(exported[2]!.attributes['airlock.failover_reason'], 'answered 500 "busy"\n\u2028');
    const t = traceById(db, root.traceId)!;
    assert.deepEqual(t.spans, exported.map((s) => expected(s, root)).sort((a, b) => a.start_ms - b.start_ms));
    // one row; the session list reads its team, key, model and sums from it
    assert.equal(db.prepare(`SELECT COUNT(*) FROM trace_spans WHERE trace_id = ?`).pluck().get(root.traceId), 1);
    const list = listSessions(db, { limit: 10 }).data.find((x) => x.session === odd)!;
    assert.deepEqual([list.teams, list.keys, list.models, list.errors, list.input_tokens, list.cost], [['team ü'], ['key "k"'], ['model "m" 😀'], 1, 3, 1e-7]);
  } finally {
    tracer.close();
    await store.close();
    db.close();
  }
});

/**
 * The spans as read, times compared to the µs and the rest exactly. A ledger row keeps a span's
 * start and end each rounded to the µs, so a time may differ by half a µs and a duration (the
 * difference of two rounded times, where the exporter rounds the difference once) by one µs;
 * the slack of 1e-9 ms absorbs binary fractions (0.061 − 0.06 is 0.0010000000000000009).
 */
function assertSameSpans(actual: TraceSpan[], want: TraceSpan[]): void {
  const strip = (s: TraceSpan) => ({ ...s, start: undefined, end: undefined, start_ms: undefined, end_ms: undefined, duration_ms: undefined });
  assert.deepEqual(actual.map(strip), want.map(strip));
  for (let i = 0; i < want.length; i++) {
    for (const k of ['start_ms', 'end_ms', 'duration_ms'] as const) assert.ok(Math.abs(actual[i]![k] - want[i]![k]) <= 0.001 + 1e-9, `${want[i]!.kind} ${k}: ${actual[i]![k]} vs ${want[i]![k]}`);
  }
}

test("a plain request's spans ride in its ledger row (no span row), with its request id's ids, and read back as the spans it gives an exporter; any other request keeps its row", async () => {
  const dir = tmpDir('airlock-ledger-trace-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const store = SpanStore.forDatabase(db, () => ({ retentionHours: 24, maxSpans: 100_000 }), quiet, thread);
  const ledger = new Ledger(db.name, () => ({ maxPendingRows: 1000, whenUnwritable: 'serve' }), { thread, log: quiet });
  const exported: SpanData[] = [];
  const source = {};
  const tracer = new Tracer(source, [(s) => exported.push(...s)], undefined, store);
  tracer.ledgerCarries = true;
  tracer.update({ ...DEFAULT_SETTINGS.telemetry, traces: true, otlp_endpoint: 'http://127.0.0.1:9/v1/traces' });
  // as the gateway does: the ledger's request:end handler asks the tracer for the row's trace
  const onEnd = (m: unknown) => {
    const { ctx, latencyMs } = m as { ctx: RequestContext; latencyMs: number };
    ledger.record(ledgerRowOf(ctx, latencyMs, tracer.settle(ctx, latencyMs)));
  };
  channels.requestEnd.subscribe(onEnd);
  const run = (traceparent?: string) => {
    const ctx = newContext('chat', newRequestId(), snapshot);
    Object.assign(ctx, { session: odd, traceparent });
    channels.requestStart.publish({ source, ctx });
    const headers: Record<string, string> = {};
    channels.attemptStart.publish({ source, ctx, target, attempt: 1, headers, queueMs: 0.25 });
    channels.firstContent.publish({ source, ctx });
    Object.assign(ctx, {
      ...ODD_WHO,
      upstreamModel: 'llama "3" (served)',
      body: { max_completion_tokens: 7, temperature: 0.25, top_p: 1 },
      stream: true,
      status: 200,
      attempts: 1,
      promptTokens: 3,
      completionTokens: 5,
      estimated: true,
      cost: 1e-7,
      ttfbMs: 12.3456789,
      finishReasons: ['stop', 'length "x"'],
    });
    channels.attemptEnd.publish({ source, ctx, target, attempt: 1, outcome: 'ok', error: undefined, durationMs: 4.5 });
    channels.requestEnd.publish({ source, ctx, latencyMs: 20.123456 });
    return { ctx, sent: headers.traceparent };
  };
  try {
    const plain = run();
    assert.equal(await ledger.flushed(), true);
    assert.equal(await store.flush(), true);
    const id = plain.ctx.id;
    const traceId = id.replaceAll('-', '');
    const root = exported.find((s) => s.kind === 'model' && s.traceId === traceId)!;
    const attempt = exported.find((s) => s.kind === 'attempt' && s.traceId === traceId)!;
    assert.ok(root && attempt, 'the trace id is the request id without its dashes');
    assert.equal(root.spanId, id.slice(19, 23) + id.slice(24));
    assert.equal(attempt.spanId, id.slice(14, 18) + id.slice(24));
    assert.equal(plain.sent, `00-${traceId}-${attempt.spanId}-01`, "the upstream's parent is the attempt");
    assert.equal(db.prepare(`SELECT COUNT(*) FROM trace_spans`).pluck().get(), 0, 'no span row');
    assert.ok(db.prepare(`SELECT trace FROM ledger WHERE request_id = ?`).pluck().get(id), 'the ledger row carries it');
    const want = [expected(root, root), expected(attempt, root)];
    assertSameSpans(traceById(db, traceId)!.spans, want);
    assertSameSpans(tracesOfSessionRead(db, odd).traces[0]!.spans, want);
    const listed = listSessions(db, { limit: 10 }).data.find((x) => x.session === odd)!;
    assert.deepEqual([listed.steps, listed.model_calls, listed.errors, listed.traces, listed.teams, listed.keys, listed.models, listed.input_tokens, listed.output_tokens, listed.cost], [1, 1, 0, 1, ['team ü'], ['key "k"'], ['model "m" 😀'], 3, 5, 1e-7]);
    assert.deepEqual(listSessions(db, { limit: 10, status: 'error' }).data, []);
    assert.equal(listSessions(db, { limit: 10, team: 'team ü' }).data.length, 1);

    // a client's traceparent: not plain, its spans are a row; the same session lists both
    const other = run(`00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01`);
    assert.equal(await ledger.flushed(), true);
    assert.equal(await store.flush(), true);
    assert.equal(db.prepare(`SELECT trace FROM ledger WHERE request_id = ?`).pluck().get(other.ctx.id), null);
    assert.equal(db.prepare(`SELECT COUNT(*) FROM trace_spans WHERE trace_id = ?`).pluck().get('ab'.repeat(16)), 1);
    assert.deepEqual(tracesOfSessionRead(db, odd).traces.map((t) => t.trace_id).sort(), [traceId, 'ab'.repeat(16)].sort());
    assert.equal(listSessions(db, { limit: 10 }).data.find((x) => x.session === odd)!.steps, 2);
    // an id the ledger does not hold, and one that is no request id of ours
    assert.equal(traceById(db, traceId.replace(/^./, (c) => (c === '0' ? '1' : '0'))), undefined);
    assert.equal(traceById(db, 'ab'.repeat(16))!.spans.length, 2);
  } finally {
    channels.requestEnd.unsubscribe(onEnd);
    tracer.close();
    await ledger.close();
    await store.close();
    db.close();
  }
});

test('retention and the size cap take span rows and traced ledger rows together, oldest first; a ledger row keeps its usage and loses only its trace', async () => {
  const dir = tmpDir('airlock-ledger-prune-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  let policy = { retentionHours: 1, maxSpans: 100_000 };
  const store = SpanStore.forDatabase(db, () => policy, quiet, thread);
  const spanRow = db.prepare(`INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, 's', 'model', ?, ?, ?, 'ok', '{}', 3)`);
  const ledgerRow = db.prepare(`INSERT INTO ledger (request_id, ts, kind, requested_model, latency_ms, status, trace) VALUES (?, ?, 'chat', ?, 1, 200, ?)`);
  const trace = JSON.stringify([1, null, "openai", null, "t", "m", null, null, null, 100, 900, 0, null, null]);
  const now = Date.now();
  const h = 3_600_000;
  const traced = (): string[] => db.prepare(`SELECT requested_model FROM ledger WHERE trace IS NOT NULL ORDER BY ts`).pluck().all() as string[];
  const spanNames = (): string[] => db.prepare(`SELECT name FROM trace_spans ORDER BY rowid`).pluck().all() as string[];
  try {
    // interleaved in time: span rows of 3 spans, ledger rows of 2
    spanRow.run(newTraceId(), newSpanId(), 'span-old', now - 3 * h, now - 3 * h + 1);
    ledgerRow.run(newRequestId(now - 2.5 * h), now - 2.5 * h, 'ledger-old', trace);
    ledgerRow.run(newRequestId(now - 30 * 60_000), now - 30 * 60_000, 'ledger-1', trace);
    spanRow.run(newTraceId(), newSpanId(), 'span-1', now - 20 * 60_000, now - 20 * 60_000 + 1);
    ledgerRow.run(newRequestId(now - 10 * 60_000), now - 10 * 60_000, 'ledger-2', trace);
    ledgerRow.run(newRequestId(now - 60_000), now - 60_000, 'untraced', null);
    spanRow.run(newTraceId(), newSpanId(), 'span-2', now - 5 * 60_000, now - 5 * 60_000 + 1);

    assert.equal(await store.prune(), 3 + 2, 'the span row and the ledger row older than an hour');
    assert.deepEqual(spanNames(), ['span-1', 'span-2']);
    assert.deepEqual(traced(), ['ledger-1', 'ledger-2']);
    assert.equal(db.prepare(`SELECT COUNT(*) FROM ledger`).pluck().get(), 4, 'every ledger row is kept');

    // the cap: 3 + 3 + 2 + 2 = 10 spans; at most 6 → ledger-1 (2), span-1 (3) go, in order of time
    policy = { retentionHours: 1, maxSpans: 6 };
    assert.equal(await store.prune(), 5);
    assert.deepEqual(spanNames(), ['span-2']);
    assert.deepEqual(traced(), ['ledger-2']);
    assert.equal(await store.prune(), 0, 'nothing more: 5 spans kept');
  } finally {
    await store.close();
    db.close();
  }
});

test('the recent traces are those that started last, whichever store holds them: a long request that ended last does not push out the ones that started after it', () => {
  const dir = tmpDir('airlock-recent-traces-');
  const db = openDatabase(dir);
  const spanRow = db.prepare(`INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, NULL, 'model', ?, ?, ?, 'ok', '{}', 1)`);
  const ledgerRow = db.prepare(`INSERT INTO ledger (request_id, ts, kind, requested_model, latency_ms, status, trace) VALUES (?, ?, 'chat', ?, ?, 200, ?)`);
  const trace = JSON.stringify([1, null, 'openai', null, 't', 'm', null, null, null, 100, 900, 0, null, null]);
  const t = Date.now() - 60_000;
  const names = (limit: number) => recentTraces(db, limit).map((x) => x.spans[0]!.name).sort();
  try {
    // started in this order: a long failed request (a span row, ended last), a long plain one (a
    // ledger row, ended after the short ones), then three short plain and one short span row
    spanRow.run(newTraceId(), newSpanId(), 'long-span', t, t + 50_000);
    ledgerRow.run(newRequestId(t + 1000), t + 1000, 'long-ledger', 40_000, trace);
    ledgerRow.run(newRequestId(t + 2000), t + 2000, 'short-1', 5, trace);
    spanRow.run(newTraceId(), newSpanId(), 'short-span', t + 3000, t + 3005);
    ledgerRow.run(newRequestId(t + 4000), t + 4000, 'short-2', 5, trace);
    ledgerRow.run(newRequestId(t + 5000), t + 5000, 'short-3', 5, trace);
    ledgerRow.run(newRequestId(t + 6000), t + 6000, 'untraced', 5, null);
    assert.deepEqual(names(1), ['chat short-3']);
    assert.deepEqual(names(3), ['chat short-2', 'chat short-3', 'short-span']);
    assert.deepEqual(names(5), ['chat long-ledger', 'chat short-1', 'chat short-2', 'chat short-3', 'short-span']);
    assert.equal(recentTraces(db, 10).length, 6, 'every trace once; the untraced row is none');
  } finally {
    db.close();
  }
});

test('GET /sessions pages by next_cursor: sessions that ended at the same time are neither lost nor repeated at a page edge, whichever store their steps are in', () => {
  const dir = tmpDir('airlock-session-pages-');
  const db = openDatabase(dir);
  const spanRow = db.prepare(`INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, ?, 'model', 'chat m', ?, ?, 'ok', '{}', 1)`);
  const ledgerRow = db.prepare(`INSERT INTO ledger (request_id, ts, kind, requested_model, latency_ms, status, session, trace) VALUES (?, ?, 'chat', 'm', ?, 200, ?, ?)`);
  const trace = JSON.stringify([1, null, 'openai', null, 't', 'm', null, null, null, 100, 900, 0, null, null]);
  const t = Date.now() - 60_000;
  try {
    // five sessions; three end at exactly t + 5000.25 (one of them a plain request's ledger row)
    spanRow.run(newTraceId(), newSpanId(), 'wf-a', t, t + 5000.25);
    spanRow.run(newTraceId(), newSpanId(), 'wf-b', t + 100, t + 5000.25);
    ledgerRow.run(newRequestId(t + 4000), t + 4000, 1000.25, 'wf-c', trace);
    spanRow.run(newTraceId(), newSpanId(), 'wf-d', t + 200, t + 9000);
    spanRow.run(newTraceId(), newSpanId(), 'wf-e', t + 300, t + 1000);
    const all = listSessions(db, { limit: 10 }).data.map((s) => s.session);
    assert.deepEqual(all, ['wf-d', 'wf-c', 'wf-b', 'wf-a', 'wf-e'], 'newest end first; a tie by name, last first');
    for (const limit of [1, 2, 3]) {
      const seen: string[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 10; pages++) {
        const page = listSessions(db, { limit, cursor });
        seen.push(...page.data.map((s) => s.session));
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      assert.deepEqual(seen, all, `pages of ${limit}`);
    }
    assert.throws(() => listSessions(db, { limit: 1, cursor: 'not-a-cursor' }), /not a cursor/);
    assert.throws(() => listSessions(db, { limit: 1, cursor: Buffer.from('[1,2]').toString('base64url') }), /not a cursor/);
  } finally {
    db.close();
  }
});

test("a session longer than one read is cut at one time in both stores: its first steps whole, never one store's later steps without the other's", () => {
  const dir = tmpDir('airlock-session-cut-');
  const db = openDatabase(dir);
  const spanRow = db.prepare(`INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, ?, 'model', ?, ?, ?, 'error', '{}', 1)`);
  const ledgerRow = db.prepare(`INSERT INTO ledger (request_id, ts, kind, requested_model, latency_ms, status, session, trace) VALUES (?, ?, 'chat', ?, 1, 200, ?, ?)`);
  const trace = JSON.stringify([1, null, 'openai', null, 't', 'm', null, null, null, 100, 900, 0, null, null]);
  const t = Date.now() - 60_000;
  const names = (r: { traces: { spans: TraceSpan[] }[] }) => r.traces.map((x) => x.spans[0]!.name);
  try {
    // plain requests (ledger rows) every 10 ms from t, failed ones (span rows) every 10 ms from t + 5
    for (let i = 0; i < 6; i++) ledgerRow.run(newRequestId(t + 10 * i), t + 10 * i, `plain-${i}`, 'long', trace);
    for (let i = 0; i < 4; i++) spanRow.run(newTraceId(), newSpanId(), 'long', `failed-${i}`, t + 10 * i + 5, t + 10 * i + 6);
    // a read of 4 span rows and 2 ledger rows: the ledger's stop at t + 10, so the span rows' too
    const cut = tracesOfSessionRead(db, 'long', 4);
    assert.equal(cut.truncated, true);
    assert.deepEqual(names(cut), ['chat plain-0', 'failed-0', 'chat plain-1']);
    const whole = tracesOfSessionRead(db, 'long');
    assert.equal(whole.truncated, false);
    assert.equal(whole.traces.length, 10);
  } finally {
    db.close();
  }
});

test("a request's trace by its request id, whichever store holds it; once pruned, none, while the ledger keeps the request", async () => {
  const dir = tmpDir('airlock-request-trace-prune-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  let policy = { retentionHours: 24, maxSpans: 100_000 };
  const store = SpanStore.forDatabase(db, () => policy, quiet, thread);
  const ledgerRow = db.prepare(`INSERT INTO ledger (request_id, ts, kind, requested_model, latency_ms, status, trace) VALUES (?, ?, 'chat', ?, 1, ?, ?)`);
  const spanRow = db.prepare(`INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, NULL, 'model', ?, ?, ?, 'error', '{}', 3)`);
  const trace = JSON.stringify([1, null, 'openai', null, 't', 'm', null, null, null, 100, 900, 0, null, null]);
  const t = Date.now() - 60_000;
  try {
    // a plain request (its trace in its ledger row), a failed one (a span row under a client's
    // trace id, found by its own span id), then newer plain requests
    const plain = newRequestId(t);
    ledgerRow.run(plain, t, 'plain', 200, trace);
    const failed = newRequestId(t + 10);
    ledgerRow.run(failed, t + 10, 'failed', 502, null);
    spanRow.run('ab'.repeat(16), failed.slice(19, 23) + failed.slice(24), 'chat failed', t + 10, t + 11);
    for (let i = 0; i < 5; i++) ledgerRow.run(newRequestId(t + 100 + i), t + 100 + i, `newer-${i}`, 200, trace);
    const before = traceOfRequest(db, plain);
    assert.deepEqual([before.inLedger, before.trace?.trace_id], [true, plain.replaceAll('-', '')]);
    assert.equal(traceOfRequest(db, failed).trace?.trace_id, 'ab'.repeat(16), "the client's trace, found by the request's own span");
    // a cap of 10 spans: 2 + 3 + 5 x 2 = 15; the oldest (plain 2, failed 3) go
    policy = { retentionHours: 24, maxSpans: 10 };
    assert.equal(await store.prune(), 5);
    for (const id of [plain, failed]) assert.deepEqual(traceOfRequest(db, id), { trace: undefined, inLedger: true }, `${id} pruned, its ledger row kept`);
    assert.ok(traceOfRequest(db, newRequestId(t + 104)).inLedger === false, 'an id the ledger does not hold');
    assert.ok(traceOfRequest(db, db.prepare(`SELECT request_id FROM ledger WHERE requested_model = 'newer-4'`).pluck().get() as string).trace, 'the newest are kept');
  } finally {
    await store.close();
    db.close();
  }
});
