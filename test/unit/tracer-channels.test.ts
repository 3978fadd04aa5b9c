// The tracer's mapping of the channels published by capabilities built beside it: MCP tool calls
// (airlock:tool:start / :end, the MCP gateway's ToolCallContext) and guardrail decisions
// (airlock:guardrail:events, the guardrails' GuardEvent list). Messages are published on the
// real node:diagnostics_channel channels, by name, as those publishers do; the request whose
// guardrail events are traced goes through the real lifecycle channels.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import diagnostics_channel from 'node:diagnostics_channel';
import { channels } from '../../gateway/engine/events.js';
import { newContext } from '../../gateway/engine/pipeline.js';
import { newRequestId } from '../../gateway/engine/request-id.js';
import type { Snapshot } from '../../gateway/engine/snapshot.js';
import { DEFAULT_SETTINGS } from '../../gateway/config/schema.js';
import { Tracer, GUARDRAIL_EVENTS, TOOL_END, TOOL_START } from '../../gateway/telemetry/tracer.js';
import type { SpanData } from '../../gateway/telemetry/span.js';
import { parseTraceparent } from '../../gateway/telemetry/span.js';

const snapshot = { endpoints: new Map(), models: new Map(), settings: DEFAULT_SETTINGS } as unknown as Snapshot;

function tracer(toolSource?: object) {
  const source = {};
  const spans: SpanData[] = [];
  const t = new Tracer(source, [(s) => spans.push(...s)], toolSource);
  t.update(DEFAULT_SETTINGS.telemetry);
  return { t, source, spans };
}

function toolCall(id: string, over: Record<string, unknown> = {}) {
  return {
    id,
    ts: Date.now(),
    t0: performance.now(),
    agent: { name: 'research-agent', team: 'research', resources: [], callsPerMinute: undefined, disabled: false },
    mcpSession: 'mcp-session-1',
    session: 'wf-1',
    user: undefined,
    exposed: 'files__read_file',
    server: 'files',
    tool: 'read_file',
    argsBytes: 12,
    resultBytes: null as number | null,
    status: 0,
    errorClass: undefined as string | undefined,
    isError: false,
    ...over,
  };
}

test('an MCP tool call becomes a span "tools/call {tool}" with the MCP and GenAI attributes', (t) => {
  const hub = {};
  const { t: tr, spans } = tracer(hub);
  t.after(() => tr.close());
  const call = toolCall('tc-1');
  diagnostics_channel.channel(TOOL_START).publish({ source: hub, call });
  call.status = 200;
  call.resultBytes = 345;
  diagnostics_channel.channel(TOOL_END).publish({ source: hub, call, latencyMs: 12.5 });
  // another publisher's messages are not this gateway's
  diagnostics_channel.channel(TOOL_END).publish({ source: {}, call: toolCall('tc-other', { status: 200 }), latencyMs: 1 });
  assert.equal(spans.length, 1);
  const s = spans[0]!;
  assert.equal(s.kind, 'tool');
  assert.equal(s.name, 'tools/call read_file');
  assert.equal(s.session, 'wf-1');
  assert.equal(s.status, 'ok');
  assert.equal(s.end - s.start, 12.5);
  assert.equal(s.team, 'research');
  assert.equal(s.key, 'research-agent');
  assert.deepEqual(
    { ...s.attributes },
    {
      'mcp.method.name': 'tools/call',
      'gen_ai.operation.name': 'execute_tool',
      'gen_ai.tool.name': 'read_file',
      'airlock.tool_call_id': 'tc-1',
      'http.response.status_code': 200,
      'airlock.mcp.server': 'files',
      'airlock.mcp.exposed_name': 'files__read_file',
      'mcp.session.id': 'mcp-session-1',
      'gen_ai.agent.name': 'research-agent',
      'airlock.team': 'research',
      'airlock.session': 'wf-1',
      'airlock.tool.args_bytes': 12,
      'airlock.tool.result_bytes': 345,
    },
  );
});

test("a tool's error result and a refused call are error spans", (t) => {
  const { t: tr, spans } = tracer();
  t.after(() => tr.close());
  const a = toolCall('tc-2', { status: 200, isError: true });
  diagnostics_channel.channel(TOOL_START).publish({ source: {}, call: a });
  diagnostics_channel.channel(TOOL_END).publish({ source: {}, call: a, latencyMs: 3 });
  const b = toolCall('tc-3', { status: 403, errorClass: 'tool_not_allowed' });
  diagnostics_channel.channel(TOOL_END).publish({ source: {}, call: b, latencyMs: 1 });
  assert.equal(spans.length, 2);
  assert.equal(spans[0]!.status, 'error');
  assert.equal(spans[0]!.attributes['error.type'], 'tool_error');
  assert.equal(spans[1]!.status, 'error');
  assert.equal(spans[1]!.attributes['error.type'], 'tool_not_allowed');
  assert.equal(spans[1]!.httpStatus, 403);
});

test('messages of an unexpected shape are ignored, never thrown at the publisher', (t) => {
  const { t: tr, spans } = tracer();
  t.after(() => tr.close());
  assert.doesNotThrow(() => {
    diagnostics_channel.channel(TOOL_END).publish(null);
    diagnostics_channel.channel(TOOL_END).publish({ source: {}, call: { nothing: true } });
    diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: 'no' });
    diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [{ policy: 'p', ts: 1 }] });
    diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [{ policy: 'p', ts: 1, requestId: 'r' }], ctx: 'not a request' });
    diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [{ policy: 'p', ts: 1, requestId: 'r' }], ctx: { id: 5, traceState: 'x' } });
  });
  assert.equal(spans.length, 0);
});

test("guardrail decisions become children of the request's span, in flight or just ended", (t) => {
  const { t: tr, source, spans } = tracer();
  t.after(() => tr.close());
  const ctx = newContext('chat', 'req-1', snapshot);
  channels.requestStart.publish({ source, ctx });
  ctx.session = 'wf-1';
  ctx.traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  ctx.requestedModel = 'chat';
  const ev = { ts: Date.now(), requestId: 'req-1', policy: 'pii', direction: 'input', action: 'redact', mode: 'enforce', blocked: false, complete: true, count: 2, detectors: { email: 2 } };
  // as the guardrails publish a request's decisions: with the request (its trace is kept on it)
  diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [ev], ctx });
  // another request's context does not make these decisions its own
  const other = newContext('chat', 'req-2', snapshot);
  channels.requestStart.publish({ source, ctx: other });
  diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [{ ...ev, policy: 'not-this-one' }], ctx: other });
  ctx.status = 400;
  ctx.errorClass = 'guardrail_blocked';
  channels.requestEnd.publish({ source, ctx, latencyMs: 5 });
  // an output decision recorded after the request ended
  diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [{ ...ev, direction: 'output', action: 'block', blocked: true }] });

  assert.equal(spans.length, 3);
  const [root, input, output] = spans;
  assert.equal(root!.kind, 'model');
  assert.equal(root!.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  assert.equal(root!.parentSpanId, '00f067aa0ba902b7');
  assert.equal(root!.status, 'error');
  for (const g of [input!, output!]) {
    assert.equal(g.kind, 'guardrail');
    assert.equal(g.name, 'guardrail pii');
    assert.equal(g.traceId, root!.traceId);
    assert.equal(g.parentSpanId, root!.spanId);
    assert.equal(g.session, 'wf-1');
  }
  assert.equal(input!.attributes['airlock.guardrail.action'], 'redact');
  assert.equal(input!.attributes['airlock.guardrail.detectors'], '{"email":2}');
  assert.equal(output!.status, 'error');
  assert.equal(output!.attributes['airlock.guardrail.blocked'], true);
});

test("a guardrail decision after a request with its own ids ended finds that request's trace (session or not); a request sampled out gets none", (t) => {
  const { t: tr, source, spans } = tracer();
  t.after(() => tr.close());
  const ended = (session: string | undefined) => {
    const ctx = newContext('chat', newRequestId(), snapshot);
    channels.requestStart.publish({ source, ctx });
    ctx.session = session;
    ctx.requestedModel = 'chat';
    ctx.status = 200;
    channels.requestEnd.publish({ source, ctx, latencyMs: 5 });
    return ctx.id;
  };
  const late = (requestId: string) => diagnostics_channel.channel(GUARDRAIL_EVENTS).publish({ events: [{ ts: Date.now(), requestId, policy: 'pii', direction: 'output', action: 'flag' }] });
  for (const session of [undefined, 'wf-9']) {
    const id = ended(session);
    const root = spans.at(-1)!;
    assert.equal(root.traceId, id.replaceAll('-', ''), "the request's own ids");
    late(id);
    const g = spans.at(-1)!;
    assert.deepEqual([g.kind, g.traceId, g.parentSpanId, g.session], ['guardrail', root.traceId, root.spanId, session]);
  }
  // an id of ours that no request of this tracer had is not a trace when some requests are sampled out
  tr.update({ ...DEFAULT_SETTINGS.telemetry, sample_ratio: 0 });
  const n = spans.length;
  const out = ended(undefined);
  assert.equal(spans.length, n, 'sampled out: no span');
  late(out);
  assert.equal(spans.length, n, "no guardrail span for a request that was not traced");
  // a request id not of ours, never seen: nothing to attach to
  tr.update(DEFAULT_SETTINGS.telemetry);
  late('req-unknown');
  assert.equal(spans.length, n);
});

test('traceparent parsing follows W3C trace-context', () => {
  assert.deepEqual(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'), { traceId: '4bf92f3577b34da6a3ce929d0e0e4736', parentId: '00f067aa0ba902b7', sampled: true });
  assert.equal(parseTraceparent('00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00')?.sampled, false);
  // a later version may carry more fields
  assert.equal(parseTraceparent('01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra')?.traceId, '4bf92f3577b34da6a3ce929d0e0e4736');
  for (const bad of [
    '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
    'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
    '00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01',
    '00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01',
    '',
    'garbage',
  ])
    assert.equal(parseTraceparent(bad), undefined, bad);
});
