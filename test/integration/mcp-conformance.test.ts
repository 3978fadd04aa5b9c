// The official MCP conformance suite (@modelcontextprotocol/conformance, server mode) against the
// gateway's /mcp, in front of an upstream fixture of ours that implements the suite's scenarios
// (test/helpers/mcp-conformance.ts): every scenario exercises the gateway's relaying of a feature
// (tools and their content types, logging, progress, sampling, elicitation, resources and their
// templates and subscriptions, prompts, completion, SSE streams, DNS rebinding protection).
// The suite needs Node ≥ 22: it runs on the node22 runtime pinned in installers/runtimes.json, every server scenario
// (--suite all) in one process. The test-only naming proxy adds the agent's key and maps the suite's
// bare names to the gateway's "fixture__name". Set AIRLOCK_CONFORMANCE_REPORT=FILE to write the
// results table (docs/MCP-CONFORMANCE.md holds the last one).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { ResourceUpdatedNotificationSchema, LoggingMessageNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';
import { conformanceFixture, resultsTable, runSuite, startNamingProxy, type ConformanceFixture, type NamingProxy } from '../helpers/mcp-conformance.js';

const KEY = 'sk-airlock-conformance-0000000000000000031';
const KEY_NARROW = 'sk-airlock-conformance-0000000000000000032';

describe('MCP conformance suite against /mcp', () => {
  let fx: ConformanceFixture;
  let up: HttpUpstream;
  let gw: RunningGateway;
  let proxy: NamingProxy;
  const clients: Client[] = [];

  before(async () => {
    fx = conformanceFixture();
    up = await startHttpUpstream({ build: () => fx.build(), resumable: true });
    gw = await startGateway({
      config: {
        mcp_servers: [{ name: 'fixture', transport: 'http', url: up.url }],
        agents: [
          { name: 'conformance', key: KEY, tools: ['fixture__*'], resources: ['fixture'] },
          { name: 'narrow', key: KEY_NARROW, tools: ['fixture__test_simple_text'] },
        ],
      },
    });
    proxy = await startNamingProxy(gw.dataUrl + '/mcp', KEY, 'fixture__');
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await proxy?.close();
    await gw?.stop();
    await up?.close();
  });

  test('every server scenario of the suite passes: no failed check, each scenario ran to its end', async () => {
    const run = await runSuite(proxy.url);
    if (process.env.AIRLOCK_CONFORMANCE_REPORT) writeFileSync(process.env.AIRLOCK_CONFORMANCE_REPORT, resultsTable(run.results));
    assert.ok(run.total >= 30, `the suite runs its server scenarios (${run.total}):\n${run.output.slice(-2000)}`);
    assert.equal(run.results.length, run.total, `every scenario started:\n${run.output.slice(-2000)}`);
    const bad = run.results.filter((r) => !r.finished || !r.checks.length || r.checks.some((c) => c.status === 'FAILURE'));
    assert.deepEqual(
      bad.map((r) => ({ scenario: r.scenario, finished: r.finished, failed: r.checks.filter((c) => c.status === 'FAILURE').map((c) => `${c.name}: ${c.errorMessage ?? ''}`) })),
      [],
    );
    assert.equal(run.exitCode, 0, run.output.slice(-2000));
  });

  test('resources/subscribe: the subscribed agent is told of an update, another is not; after unsubscribe nobody is, and the upstream subscription ends', async () => {
    const told = new Map<string, string[]>();
    const agent = async (name: string) => {
      const seen: string[] = [];
      told.set(name, seen);
      const { client } = await agentClient(gw.dataUrl, KEY, {}, {}, (c) => c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void seen.push(n.params.uri)));
      clients.push(client);
      return client;
    };
    const a = await agent('a');
    await agent('b');
    const before = fx.subscriptions('test://watched-resource');
    await a.subscribeResource({ uri: 'test://watched-resource' });
    assert.equal(fx.subscriptions('test://watched-resource'), before + 1, 'subscribed upstream');
    fx.touch('test://watched-resource');
    await eventually(() => told.get('a')!.length === 1, 'the update reaches agent a');
    assert.deepEqual(told.get('b'), []);
    await a.unsubscribeResource({ uri: 'test://watched-resource' });
    assert.equal(fx.subscriptions('test://watched-resource'), before, 'unsubscribed upstream');
    fx.touch('test://watched-resource');
    await a.ping();
    assert.deepEqual(told.get('a'), ['test://watched-resource'], 'no update after unsubscribing');
    // a resource the agent may not read cannot be subscribed to
    const narrow = (await agentClient(gw.dataUrl, KEY_NARROW)).client;
    clients.push(narrow);
    await assert.rejects(narrow.subscribeResource({ uri: 'test://watched-resource' }), /not available to this agent/);
  });

  test('completion/complete: relayed for a prompt the agent may use (by its exposed name); refused, like an unknown one, for a prompt it may not use', async () => {
    const { client } = await agentClient(gw.dataUrl, KEY);
    clients.push(client);
    const r = await client.complete({ ref: { type: 'ref/prompt', name: 'fixture__test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'par' } });
    assert.deepEqual(r.completion.values, ['paris', 'park', 'party', 'par-completed']);
    const t = await client.complete({ ref: { type: 'ref/resource', uri: 'test://template/{id}/data' }, argument: { name: 'id', value: '1' } });
    assert.deepEqual(t.completion.values, ['1-completed']);
    const narrow = (await agentClient(gw.dataUrl, KEY_NARROW)).client;
    clients.push(narrow);
    await assert.rejects(narrow.complete({ ref: { type: 'ref/prompt', name: 'fixture__test_prompt_with_arguments' }, argument: { name: 'arg1', value: 'p' } }), /not available to this agent/);
    await assert.rejects(narrow.complete({ ref: { type: 'ref/prompt', name: 'fixture__nope' }, argument: { name: 'arg1', value: 'p' } }), /not available to this agent/);
  });

  test("logging/setLevel: the upstream's messages below the agent's level are not relayed to it", async () => {
    const logs: string[] = [];
    const { client } = await agentClient(gw.dataUrl, KEY, {}, {}, (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(`${n.params.level} ${String(n.params.data)}`)));
    clients.push(client);
    await client.setLoggingLevel('warning');
    await client.callTool({ name: 'fixture__test_tool_with_logging', arguments: {} });
    await client.setLoggingLevel('info');
    await client.callTool({ name: 'fixture__test_tool_with_logging', arguments: {} });
    await eventually(() => logs.length === 3, 'the three info messages of the second call');
    assert.deepEqual(logs, ['info Tool execution started', 'info Tool processing data', 'info Tool execution completed']);
  });
});
