// One agent workflow in one view: an agent's model calls (the official openai client) and its MCP
// tool calls (the SDK's Client on /mcp) in one x-airlock-session, with a guardrail that acts on
// both, land in one workflow: GET /traces?session= has the model steps with their attempts, the
// tool steps, and the guardrail decisions on the steps they concern; GET /sessions counts both.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { EVERYTHING, agentClient } from '../helpers/mcp.js';
import type { SessionsBody, TraceSpan, TracesBody } from '../../gateway/wire.js';

const AGENT_KEY = 'sk-airlock-agent-workflow-00000000000000001';
const SESSION = 'workflow-ticket-4711';

describe('a workflow of model calls and tool calls', () => {
  let gw: RunningGateway;
  let upstream: TestUpstream;
  let mcp: Client | undefined;
  before(async () => {
    upstream = await startUpstream();
    const cfg = basicConfig(upstream.url);
    gw = await startGateway({
      config: {
        ...cfg,
        mcp_servers: [{ name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }],
        agents: [{ name: 'support-bot', team: 'research', key: AGENT_KEY, tools: ['every__echo'] }],
        guardrails: [{ name: 'no-pii', direction: ['input', 'tool_args'], detectors: ['pii'], action: 'redact' }],
      },
    });
  });
  after(async () => {
    await mcp?.close().catch(() => undefined);
    await gw?.stop();
    await upstream?.close();
  });

  test('model calls, tool calls and guardrail decisions of one session are one workflow', async () => {
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: { 'x-airlock-session': SESSION } });
    mcp = (await agentClient(gw.dataUrl, AGENT_KEY, { 'x-airlock-session': SESSION })).client;
    await eventually(async () => (await mcp!.listTools()).tools.some((t) => t.name === 'every__echo'), 'the echo tool');

    // plan (a model call) → act (a tool call, with an e-mail address the guardrail redacts) → answer (a model call)
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'plan: contact jane.doe@example.com' }] });
    await mcp.callTool({ name: 'every__echo', arguments: { message: 'mail jane.doe@example.com' } });
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'answer the ticket' }] });

    const spans = await eventually(async () => {
      const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${SESSION}`)).body.data;
      const all: TraceSpan[] = traces.flatMap((t) => t.spans);
      const kinds = new Set(all.map((s) => s.kind));
      return ['model', 'attempt', 'tool', 'guardrail'].every((k) => kinds.has(k as TraceSpan['kind'])) && all.filter((s) => s.kind === 'guardrail').length >= 2 ? all : undefined;
    }, 'model, attempt, tool and guardrail spans in the session');

    const models = spans.filter((s) => s.kind === 'model');
    const tools = spans.filter((s) => s.kind === 'tool');
    assert.equal(models.length, 2, 'two model calls');
    assert.equal(tools.length, 1, 'one tool call');
    assert.match(tools[0]!.name, /every__echo|echo/);
    // each attempt hangs under its model call
    for (const a of spans.filter((s) => s.kind === 'attempt')) assert.ok(models.some((m) => m.span_id === a.parent_span_id && m.trace_id === a.trace_id));
    // the guardrail decisions sit on the steps they concern: the first model call (input) and the tool call (tool_args)
    const guards = spans.filter((s) => s.kind === 'guardrail');
    const onModel = guards.filter((g) => models.some((m) => m.trace_id === g.trace_id));
    const onTool = guards.filter((g) => tools.some((t) => t.trace_id === g.trace_id));
    assert.equal(onModel.length, 1, 'the input redaction is on the plan step');
    assert.equal(onTool.length, 1, 'the tool_args redaction is on the tool step');
    assert.equal(onTool[0]!.attributes['airlock.guardrail.direction'], 'tool_args');
    assert.ok(!JSON.stringify(spans).includes('jane.doe@example.com'), 'no span carries the redacted value');

    // the tool call's ledger row leads to its trace, as a model call's does (the Usage page's trace link)
    const toolRow = ((await gw.admin('GET', '/usage/requests?limit=50')).body.data as { request_id: string; kind: string }[]).find((r) => r.kind === 'mcp_tool');
    assert.ok(toolRow, 'the tool call has a ledger row');
    const byRow = await gw.admin<{ trace_id: string; spans: TraceSpan[] }>('GET', `/usage/requests/${toolRow.request_id}/trace`);
    assert.equal(byRow.status, 200, JSON.stringify(byRow.body));
    assert.equal(byRow.body.trace_id, tools[0]!.trace_id);
    assert.ok(byRow.body.spans.some((x) => x.kind === 'tool' && x.attributes['airlock.tool_call_id'] === toolRow.request_id));

    const sessions = (await gw.admin<SessionsBody>('GET', '/sessions?limit=50')).body.data;
    const s = sessions.find((x) => x.session === SESSION);
    assert.ok(s, 'the session is listed');
    assert.equal(s.model_calls, 2);
    assert.equal(s.tool_calls, 1);
  });
});
