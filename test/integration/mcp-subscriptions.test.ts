// Resource subscriptions survive an upstream that restarts: the gateway subscribes its new
// connection again to every live subscription, so notifications/resources/updated still reaches
// the agent. Two cases, both with SDK-built servers: a Streamable HTTP server that forgets every
// session (one upstream session per agent session: the gateway reopens it on its own, without
// waiting for the agent's next request), and a stdio process killed and restarted by the gateway
// (one shared connection: subscribed once for every session).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { ResourceUpdatedNotificationSchema, SubscribeRequestSchema, UnsubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { ROOT, eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY = 'sk-airlock-agent-subs-00000000000000000001';
const SDK = (p: string) => pathToFileURL(path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'sdk', 'dist', 'esm', p)).href;

/** A stdio MCP server: resource note://a, subscriptions kept in its memory, and a tool poke that
 * sends resources/updated for each URI subscribed to in this process. */
const STDIO_SERVER = `
import { McpServer } from '${SDK('server/mcp.js')}';
import { StdioServerTransport } from '${SDK('server/stdio.js')}';
import { SubscribeRequestSchema, UnsubscribeRequestSchema } from '${SDK('types.js')}';
const subscribed = new Set();
const s = new McpServer({ name: 'stdio-subs', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } });
s.registerResource('a', 'note://a', { mimeType: 'text/plain' }, (uri) => ({ contents: [{ uri: uri.href, text: 'a' }] }));
s.server.setRequestHandler(SubscribeRequestSchema, (r) => { subscribed.add(r.params.uri); return {}; });
s.server.setRequestHandler(UnsubscribeRequestSchema, (r) => { subscribed.delete(r.params.uri); return {}; });
s.registerTool('poke', { description: 'send resources/updated for what is subscribed', inputSchema: {} }, async () => {
  for (const uri of subscribed) await s.server.sendResourceUpdated({ uri });
  return { content: [{ type: 'text', text: [...subscribed].join(',') || 'none' }] };
});
await s.connect(new StdioServerTransport());
`;

describe('MCP gateway: resource subscriptions after an upstream restart', () => {
  let gw: RunningGateway;
  let up: HttpUpstream;
  const clients: Client[] = [];
  /** per upstream session of the HTTP server: the URIs subscribed there, and a way to notify them */
  const httpSessions: { subscribed: Set<string>; server: McpServer }[] = [];
  const notifyHttp = async (uri: string) => {
    for (const x of httpSessions) if (x.subscribed.has(uri) && x.server.isConnected()) await x.server.server.sendResourceUpdated({ uri }).catch(() => undefined);
  };
  const agent = async () => {
    const updates: string[] = [];
    const { client } = await agentClient(gw.dataUrl, KEY, {}, {}, (c) => c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void updates.push(n.params.uri)));
    clients.push(client);
    return { client, updates };
  };

  before(async () => {
    up = await startHttpUpstream({
      build: () => {
        const server = new McpServer({ name: 'http-subs', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } });
        const mine = { subscribed: new Set<string>(), server };
        httpSessions.push(mine);
        server.registerResource('b', 'note://b', { mimeType: 'text/plain' }, (uri) => ({ contents: [{ uri: uri.href, text: 'b' }] }));
        server.server.setRequestHandler(SubscribeRequestSchema, (r) => {
          mine.subscribed.add(r.params.uri);
          return {};
        });
        server.server.setRequestHandler(UnsubscribeRequestSchema, (r) => {
          mine.subscribed.delete(r.params.uri);
          return {};
        });
        return server;
      },
    });
    const dir = tmpDir('airlock-subs-');
    const script = path.join(dir, 'stdio-subs.mjs');
    fs.writeFileSync(script, STDIO_SERVER);
    gw = await startGateway({
      config: {
        mcp_servers: [
          { name: 'web', transport: 'http', url: up.url },
          { name: 'local', transport: 'stdio', command: process.execPath, args: [script] },
        ],
        agents: [{ name: 'subs-bot', key: KEY, tools: ['local__poke'], resources: ['*'] }],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await up?.close();
  });

  test('HTTP upstream (a session per agent session) forgets every session: the gateway opens a new one, subscribes again, and the update reaches the agent', async () => {
    const a = await agent();
    await a.client.subscribeResource({ uri: 'note://b' });
    const first = httpSessions.findIndex((x) => x.subscribed.has('note://b'));
    assert.ok(first >= 0, 'subscribed upstream');
    await notifyHttp('note://b');
    await eventually(() => a.updates.length === 1, 'the first update');
    const before = httpSessions.length;
    await up.forgetSessions();
    // no request from the agent: the gateway notices the lost session and subscribes a new one
    const renewed = await eventually(() => httpSessions.slice(before).find((x) => x.subscribed.has('note://b')), 'a new upstream session subscribed to note://b', 20_000);
    await renewed.server.server.sendResourceUpdated({ uri: 'note://b' });
    await eventually(() => a.updates.length === 2, 'the update after the restart');
    assert.deepEqual(a.updates, ['note://b', 'note://b']);
    // unsubscribed: nothing is kept subscribed any more
    await a.client.unsubscribeResource({ uri: 'note://b' });
    await eventually(() => !renewed.subscribed.has('note://b'), 'unsubscribed upstream');
  });

  test('stdio upstream (one shared connection) killed and restarted: subscribed again, the update reaches the agent', async () => {
    const a = await agent();
    const b = await agent();
    await a.client.subscribeResource({ uri: 'note://a' });
    const poke = async () => (await a.client.callTool({ name: 'local__poke', arguments: {} })).content as { text: string }[];
    assert.equal((await poke())[0]!.text, 'note://a');
    await eventually(() => a.updates.length === 1, 'the first update');
    const pid = (await gw.admin('GET', '/mcp-servers/local/status')).body.pid as number;
    assert.ok(pid > 0);
    process.kill(pid, 'SIGKILL');
    await eventually(async () => {
      const st = (await gw.admin('GET', '/mcp-servers/local/status')).body as { pid?: number; state: string };
      return st.state === 'ready' && st.pid !== undefined && st.pid !== pid;
    }, 'the restarted process', 20_000);
    // the new process was told again what is subscribed (poke answers with its own set)
    const after = await eventually(async () => ((await poke())[0]!.text === 'note://a' ? true : undefined), 'the new process subscribed to note://a');
    assert.ok(after);
    await eventually(() => a.updates.length >= 2, 'the update after the restart');
    assert.deepEqual(b.updates, [], 'a session that did not subscribe is not sent updates');
  });
});
