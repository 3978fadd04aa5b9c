// Packages a gateway loads only when it needs them (docs/ARCHITECTURE.md, Memory): the MCP SDK
// (server, client, transports, ajv, its schemas: several MB) when MCP is configured or first used
// — a gateway with no MCP servers and no agents serves models without it, and an MCP server and
// an agent added through the admin API at runtime then work without a restart — and
// OpenTelemetry's SDK parts when an OTLP endpoint is set (otlp-export.test.ts sets one at
// runtime). Which modules the gateway process loaded is read from a module log its loader hooks
// write (test/helpers/module-log.ts).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ROOT, TEST_KEY, basicConfig, eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const AGENT_KEY = 'sk-airlock-lazy-mcp-agent-000000000001';
const HOOK = path.join(ROOT, 'dist', 'test', 'helpers', 'module-log.js');

describe('the MCP SDK loads on first need', () => {
  let upstream: TestUpstream;
  let mcpUp: HttpUpstream;
  let gw: RunningGateway;
  let log: string;
  const modulesOf = (...dirs: string[]) => fs.readFileSync(log, 'utf8').split('\n').filter((u) => dirs.some((d) => u.includes(d)));
  const sdkModules = () => modulesOf('/@modelcontextprotocol/sdk/');
  const loadedAny = () => fs.readFileSync(log, 'utf8').split('\n').filter(Boolean).length;

  before(async () => {
    upstream = await startUpstream();
    mcpUp = await startHttpUpstream();
    log = path.join(tmpDir(), 'modules.log');
    gw = await startGateway({ config: basicConfig(upstream.url), env: { AIRLOCK_TEST_MODULE_LOG: log, NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --import ${HOOK}` } });
  });
  after(async () => {
    await gw?.stop();
    await mcpUp?.close();
    await upstream?.close();
  });

  test('no MCP servers, no agents, no OTLP endpoint: models are served without the MCP SDK or OTLP export parts; /mcp then loads it and refuses an unknown key', async () => {
    assert.ok(loadedAny() > 50, 'the module log records the gateway’s modules');
    const openai = new OpenAI({ baseURL: gw.baseURL, apiKey: TEST_KEY, maxRetries: 0 });
    const r = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    assert.ok(r.choices[0]?.message.content);
    const s = await openai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: true });
    for await (const _ of s);
    for (const p of ['/mcp-servers', '/agents']) assert.equal((await gw.admin('GET', p)).status, 200, p);
    assert.deepEqual(sdkModules(), [], 'no MCP SDK module loaded');
    assert.deepEqual(modulesOf('/@opentelemetry/core/', '/@opentelemetry/resources/', '/@opentelemetry/exporter-trace-otlp-proto/'), [], 'no OTLP export part loaded');
    // undici: the parts the gateway uses (its pools, agents, request), not the package's index
    // that loads fetch, WebSocket, the mocks and the cache stores too (gateway/engine/undici.ts)
    const undici = modulesOf('/node_modules/undici/');
    assert.ok(undici.some((u) => u.endsWith('/undici/lib/dispatcher/pool.js')), 'the module log sees CommonJS modules too');
    assert.ok(!undici.some((u) => u.endsWith('/undici/index.js')), 'undici’s index is not loaded');
    assert.ok(!undici.some((u) => u.includes('/undici/lib/web/')), 'no part of undici’s fetch, WebSocket or EventSource is loaded');
    // an MCP request before any agent exists: the endpoint loads, and answers as it always did
    const res = await fetch(`${gw.dataUrl}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer sk-airlock-nobody-000000000000000000000', 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    assert.equal(res.status, 401);
    assert.match(((await res.json()) as { error: { message: string } }).error.message, /Invalid agent key/);
    assert.ok(sdkModules().length > 0, 'the SDK is loaded once /mcp is used');
  });

  test('an MCP server and an agent added through the admin API at runtime work without a restart', async () => {
    const pid = gw.proc.pid;
    const srv = await gw.admin('POST', '/mcp-servers', { name: 'calc', transport: 'http', url: mcpUp.url });
    assert.equal(srv.status, 201, JSON.stringify(srv.body));
    const ag = await gw.admin('POST', '/agents', { name: 'bot', key: AGENT_KEY, tools: ['calc__add'] });
    assert.equal(ag.status, 201, JSON.stringify(ag.body));
    const st = await eventually(async () => {
      const r = await gw.admin('GET', '/mcp-servers/calc/status');
      return r.body.state === 'ready' ? r.body : undefined;
    }, 'calc ready');
    assert.ok(st.catalog.tools.some((t: { name: string }) => t.name === 'calc__add'));
    const { client } = await agentClient(gw.dataUrl, AGENT_KEY);
    try {
      const tools = await client.listTools();
      assert.deepEqual(tools.tools.map((t) => t.name), ['calc__add']);
      const r = (await client.callTool({ name: 'calc__add', arguments: { a: 2, b: 40 } })) as CallToolResult;
      assert.deepEqual(r.content, [{ type: 'text', text: '42' }]);
    } finally {
      await client.close();
    }
    assert.equal(gw.proc.pid, pid, 'same process');
    assert.equal(gw.proc.exitCode, null);
  });
});

describe('a gateway configured with MCP loads it at start', () => {
  let mcpUp: HttpUpstream;
  let gw: RunningGateway;

  before(async () => {
    mcpUp = await startHttpUpstream();
    gw = await startGateway({ config: { mcp_servers: [{ name: 'calc', transport: 'http', url: mcpUp.url }], agents: [{ name: 'bot', key: AGENT_KEY, tools: ['calc__*'] }] } });
  });
  after(async () => {
    await gw?.stop();
    await mcpUp?.close();
  });

  test('its server is connected at start (status without any /mcp call) and tool calls go through', async () => {
    const st = await eventually(async () => {
      const r = await gw.admin('GET', '/mcp-servers');
      const calc = (r.body.data as { name: string; status: { state: string } | null }[]).find((m) => m.name === 'calc');
      return calc?.status?.state === 'ready' ? calc : undefined;
    }, 'calc ready');
    assert.equal(st.name, 'calc');
    const { client } = await agentClient(gw.dataUrl, AGENT_KEY);
    try {
      const r = (await client.callTool({ name: 'calc__add', arguments: { a: 1, b: 1 } })) as CallToolResult;
      assert.deepEqual(r.content, [{ type: 'text', text: '2' }]);
    } finally {
      await client.close();
    }
  });
});
