// W3C trace context across the MCP gateway (issue 11): an agent's traceparent in params._meta
// (the MCP convention; else the HTTP traceparent header) makes the tool call's span a child of
// the agent's span in the agent's trace, and the upstream MCP server — a real one built with the
// SDK, which records the _meta of every call it answers — gets our span as its parent. A missing
// or malformed one starts a new trace; with tracing off the agent's context passes unchanged.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';
import type { TraceSpan, TracesBody } from '../../gateway/wire.js';

const KEY = 'sk-airlock-agent-trace-000000000000000021';
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT = '00f067aa0ba902b7';

describe('MCP gateway: trace context in params._meta', () => {
  let gw: RunningGateway;
  let up: HttpUpstream;
  const clients: Client[] = [];
  const agent = async (session: string, headers: Record<string, string> = {}) => {
    const { client } = await agentClient(gw.dataUrl, KEY, { 'x-airlock-session': session, ...headers });
    clients.push(client);
    return client;
  };
  /** the tool span of a session (stored off the request path: waited for) */
  const toolSpan = (session: string) =>
    eventually(async () => {
      const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data;
      // (the tests share the agent's trace id: a trace holds the spans of several sessions)
      return traces.flatMap((t) => t.spans).find((s) => s.kind === 'tool' && s.session === session);
    }, `the tool span of ${session}`);
  /** the _meta the upstream got with the call it answered last */
  const lastMeta = () => up.metaSeen[up.metaSeen.length - 1] ?? {};

  before(async () => {
    up = await startHttpUpstream();
    gw = await startGateway({
      config: {
        mcp_servers: [{ name: 'calc', transport: 'http', url: up.url }],
        agents: [{ name: 'traced-bot', key: KEY, tools: ['calc__*'], resources: ['calc'] }],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await up?.close();
  });

  test("the agent's traceparent and tracestate in _meta: our span joins its trace under its span, the upstream gets our span as parent and the same tracestate", async () => {
    const session = `mcp-tp-${randomUUID()}`;
    const c = await agent(session);
    const r = await c.callTool({ name: 'calc__add', arguments: { a: 1, b: 2 }, _meta: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc,other=1' } });
    assert.equal(r.isError, undefined);
    const span = await toolSpan(session);
    assert.equal(span.trace_id, TRACE);
    assert.equal(span.parent_span_id, PARENT);
    assert.equal(span.name, 'tools/call add');
    assert.equal(span.attributes['gen_ai.tool.name'], 'add');
    assert.equal(span.attributes['mcp.method.name'], 'tools/call');
    const meta = lastMeta();
    assert.equal(meta.traceparent, `00-${TRACE}-${span.span_id}-01`);
    assert.equal(meta.tracestate, 'vendor=abc,other=1');
  });

  test('with a progress token too: both reach the upstream in one _meta', async () => {
    const session = `mcp-tp-progress-${randomUUID()}`;
    const c = await agent(session);
    await c.callTool({ name: 'calc__add', arguments: { a: 2, b: 2 }, _meta: { traceparent: `00-${TRACE}-${PARENT}-01` } }, undefined, { onprogress: () => undefined });
    const span = await toolSpan(session);
    const meta = lastMeta();
    assert.equal(meta.traceparent, `00-${TRACE}-${span.span_id}-01`);
    assert.ok(meta.progressToken !== undefined, JSON.stringify(meta));
  });

  test('the HTTP traceparent header is honoured when _meta has none; _meta wins over it', async () => {
    const session = `mcp-tp-header-${randomUUID()}`;
    const headerTrace = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
    const c = await agent(session, { traceparent: `00-${headerTrace}-bbbbbbbbbbbbbbbb-01` });
    await c.callTool({ name: 'calc__whoami', arguments: {} });
    const span = await toolSpan(session);
    assert.equal(span.trace_id, headerTrace);
    assert.equal(span.parent_span_id, 'bbbbbbbbbbbbbbbb');
    assert.equal(lastMeta().traceparent, `00-${headerTrace}-${span.span_id}-01`);
    const session2 = `mcp-tp-both-${randomUUID()}`;
    const c2 = await agent(session2, { traceparent: `00-${headerTrace}-bbbbbbbbbbbbbbbb-01` });
    await c2.callTool({ name: 'calc__whoami', arguments: {}, _meta: { traceparent: `00-${TRACE}-${PARENT}-01` } });
    assert.equal((await toolSpan(session2)).trace_id, TRACE);
  });

  for (const [what, tp] of [
    ['none', undefined],
    ['all-zero trace id', `00-${'0'.repeat(32)}-${PARENT}-01`],
    ['not hex', `00-${'z'.repeat(32)}-${PARENT}-01`],
    ['a number', 42],
    ['version 00 with extra fields', `00-${TRACE}-${PARENT}-01-extra`],
  ] as const) {
    test(`traceparent ${what}: a new trace of ours, and the upstream gets our span (never the bad value)`, async () => {
      const session = `mcp-tp-bad-${randomUUID()}`;
      const c = await agent(session);
      await c.callTool({ name: 'calc__add', arguments: { a: 0, b: 0 }, ...(tp === undefined ? {} : { _meta: { traceparent: tp, tracestate: 'vendor=abc' } }) });
      const span: TraceSpan = await toolSpan(session);
      assert.match(span.trace_id, /^[0-9a-f]{32}$/);
      assert.notEqual(span.trace_id, '0'.repeat(32));
      assert.notEqual(span.trace_id, TRACE);
      assert.equal(span.parent_span_id, null);
      assert.equal(lastMeta().traceparent, `00-${span.trace_id}-${span.span_id}-01`);
      assert.equal(lastMeta().tracestate, undefined, 'a tracestate without a valid traceparent is dropped');
    });
  }

  test('prompts/get and resources/read are traced like tool calls: under the agent\'s span, our span upstream, not counted as tool calls', async () => {
    const session = `mcp-tp-other-${randomUUID()}`;
    const c = await agent(session);
    const p = await c.getPrompt({ name: 'calc__greet', arguments: { who: 'Ada' }, _meta: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=p' } });
    assert.match(JSON.stringify(p.messages), /Say hello to Ada/);
    const promptMeta = lastMeta();
    const r = await c.readResource({ uri: 'note://hello', _meta: { traceparent: `00-${TRACE}-${PARENT}-01` } });
    assert.equal((r.contents[0] as { text?: string }).text, 'hello');
    const resourceMeta = lastMeta();
    await assert.rejects(c.getPrompt({ name: 'calc__nope', arguments: {} }), /not available to this agent/);
    const spans = await eventually(async () => {
      const all = (await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data.flatMap((t) => t.spans).filter((x) => x.session === session);
      return all.length >= 3 ? all : undefined;
    }, 'three spans of the session');
    const prompt = spans.find((x) => x.name === 'prompts/get calc__greet')!;
    const resource = spans.find((x) => x.name === 'resources/read note://hello')!;
    const denied = spans.find((x) => x.name === 'prompts/get calc__nope')!;
    assert.ok(prompt && resource && denied, JSON.stringify(spans.map((x) => x.name)));
    assert.equal(prompt.trace_id, TRACE);
    assert.equal(prompt.parent_span_id, PARENT);
    assert.equal(prompt.attributes['mcp.method.name'], 'prompts/get');
    assert.equal(prompt.attributes['gen_ai.prompt.name'], 'calc__greet');
    assert.equal(prompt.attributes['mcp.session.id'] !== undefined, true);
    assert.equal(promptMeta.traceparent, `00-${TRACE}-${prompt.span_id}-01`, 'the upstream got our span as parent');
    assert.equal(promptMeta.tracestate, 'vendor=p');
    assert.equal(resource.attributes['mcp.resource.uri'], 'note://hello');
    assert.equal(resourceMeta.traceparent, `00-${TRACE}-${resource.span_id}-01`);
    assert.equal(denied.status.code, 'error');
    assert.equal(denied.attributes['error.type'], 'not_permitted');
    // the workflow's summary: three steps, none of them a tool call
    const s = await eventually(async () => (await gw.admin<{ data: { session: string; steps: number; tool_calls: number }[] }>('GET', '/sessions?limit=100')).body.data.find((x) => x.session === session), 'the session in the list');
    assert.equal(s.steps, 3);
    assert.equal(s.tool_calls, 0);
  });

  test("tracing off: the agent's trace context reaches the upstream unchanged; nothing is stored", async () => {
    const cur = (await gw.admin('GET', '/settings')).body;
    const put = await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, traces: false } });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    try {
      const session = `mcp-tp-off-${randomUUID()}`;
      const c = await agent(session);
      await c.callTool({ name: 'calc__add', arguments: { a: 1, b: 1 }, _meta: { traceparent: `00-${TRACE}-${PARENT}-01`, tracestate: 'vendor=abc' } });
      assert.deepEqual(lastMeta().traceparent, `00-${TRACE}-${PARENT}-01`);
      assert.deepEqual(lastMeta().tracestate, 'vendor=abc');
      await c.callTool({ name: 'calc__add', arguments: { a: 1, b: 1 } });
      assert.equal(lastMeta().traceparent, undefined, 'no context of ours is made up while tracing is off');
      assert.deepEqual((await gw.admin<TracesBody>('GET', `/traces?session=${session}`)).body.data, []);
    } finally {
      await gw.admin('PUT', '/settings', cur);
    }
  });
});
