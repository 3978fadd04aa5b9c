// An upstream MCP server's notifications/tools/list_changed, end to end: a Streamable HTTP server
// (its standalone GET stream) and a legacy HTTP+SSE server, both built with the SDK, behind the
// real gateway; agents on /mcp with the SDK's Client. Also after the upstream "restarts" (drops
// every session and stream): the gateway opens a new session at once and hears it again.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ToolListChangedNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, startSseUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY_A = 'sk-airlock-agent-a-00000000000000000000011';
const KEY_B = 'sk-airlock-agent-b-00000000000000000000012';
const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

describe('MCP gateway: an upstream list_changed reaches the agents', () => {
  let gw: RunningGateway;
  let httpUp: HttpUpstream;
  let sseUp: HttpUpstream;
  const clients: Client[] = [];
  /** an agent session counting the tools/list_changed it is sent */
  const agent = async (key: string) => {
    const told = { n: 0 };
    const { client } = await agentClient(gw.dataUrl, key, {}, {}, (c) => c.setNotificationHandler(ToolListChangedNotificationSchema, () => void told.n++));
    clients.push(client);
    return { client, told };
  };
  const names = async (c: Client) => (await c.listTools()).tools.map((t) => t.name);

  before(async () => {
    httpUp = await startHttpUpstream();
    sseUp = await startSseUpstream();
    gw = await startGateway({
      config: {
        mcp_servers: [
          { name: 'calc', transport: 'http', url: httpUp.url },
          { name: 'legacy', transport: 'sse', url: sseUp.url },
        ],
        agents: [
          { name: 'tool-bot', key: KEY_A, tools: ['calc__*', 'legacy__*'] },
          { name: 'add-bot', key: KEY_B, tools: ['calc__add', 'legacy__add'] },
        ],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await httpUp?.close();
    await sseUp?.close();
  });

  for (const [server, up] of [['calc', () => httpUp], ['legacy', () => sseUp]] as const) {
    test(`${server} (${server === 'calc' ? 'Streamable HTTP' : 'legacy SSE'}): a tool added upstream is announced to the agent allowed it, listed and callable; an agent not allowed it is not told`, async () => {
      const a = await agent(KEY_A);
      const b = await agent(KEY_B);
      await eventually(async () => (await names(a.client)).includes(`${server}__whoami`), `${server}'s catalog`);
      assert.deepEqual((await names(b.client)).filter((n) => n.startsWith(server)), [`${server}__add`]);
      a.told.n = 0;
      b.told.n = 0;
      up().addTool('late_tool');
      // the agent is told, and the list it then fetches has the new tool
      await eventually(async () => a.told.n > 0 && (await names(a.client)).includes(`${server}__late_tool`), `tools/list_changed and ${server}__late_tool for tool-bot`);
      assert.equal(text(await a.client.callTool({ name: `${server}__late_tool`, arguments: {} })), 'late_tool');
      assert.equal(b.told.n, 0, 'add-bot may not use the new tool: its list did not change');
      assert.deepEqual((await names(b.client)).filter((n) => n.startsWith(server)), [`${server}__add`]);
      const refused = await b.client.callTool({ name: `${server}__late_tool`, arguments: {} });
      assert.equal(refused.isError, true);
    });

    test(`${server}: after the upstream restarted (every session and stream dropped), a tool it adds is still announced`, async () => {
      const a = await agent(KEY_A);
      await eventually(async () => (await names(a.client)).includes(`${server}__whoami`), `${server}'s catalog`);
      const sessions = up().sessionsCreated.length;
      await up().forgetSessions();
      // the gateway notices at once (its notification stream ended) and opens a new session
      await eventually(() => up().sessionsCreated.length > sessions, `a new upstream session for ${server}`);
      a.told.n = 0;
      up().addTool('after_restart');
      await eventually(async () => a.told.n > 0 && (await names(a.client)).includes(`${server}__after_restart`), `${server}__after_restart announced`);
      assert.equal(text(await a.client.callTool({ name: `${server}__after_restart`, arguments: {} })), 'after_restart');
      const status = (await gw.admin('GET', `/mcp-servers/${server}/status`)).body as { state: string };
      assert.equal(status.state, 'ready');
    });

    test(`${server}: an agent session's own upstream session, lost when the upstream restarts, is opened again (initialised) for its next call`, async () => {
      const a = await agent(KEY_A);
      const before = text(await a.client.callTool({ name: `${server}__whoami`, arguments: {} }));
      assert.equal(text(await a.client.callTool({ name: `${server}__whoami`, arguments: {} })), before, 'the same upstream session while it lives');
      await up().forgetSessions();
      const after = text(await a.client.callTool({ name: `${server}__whoami`, arguments: {} }));
      assert.notEqual(after, before, 'a new upstream session');
      assert.ok(up().sessionsCreated.includes(after), after);
      assert.equal(text(await a.client.callTool({ name: `${server}__whoami`, arguments: {} })), after, 'and it is kept');
      assert.equal(up().uninitialisedCalls.n, 0, 'no call was answered on a session that was never initialised');
    });
  }
});
