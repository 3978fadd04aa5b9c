// Per-resource permissions: an agent's `resources` / `resources_deny` patterns, matched against a
// server's name (all of its resources, as configs written before per-resource patterns meant) or
// against `server__uri`. resources/list and resources/templates/list are filtered;
// resources/read and resources/subscribe of anything else are refused with a JSON-RPC error that
// says so (the same whether the resource is denied or does not exist). The real gateway, an
// SDK-built Streamable HTTP upstream, agents with the SDK's Client.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer, ResourceTemplate } from '@modelcontextprotocol/sdk/server/mcp.js';
import { McpError, SubscribeRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY_ALL = 'sk-airlock-agent-res-all-0000000000000001';
const KEY_SCOPED = 'sk-airlock-agent-res-scoped-0000000000002';
const KEY_NONE = 'sk-airlock-agent-res-none-000000000000003';

describe('MCP gateway: per-resource permissions', () => {
  let gw: RunningGateway;
  let up: HttpUpstream;
  const subscribedUpstream: string[] = [];
  const clients: Client[] = [];
  const connect = async (key: string, mcpPath = '/mcp') => {
    const { client } = await agentClient(gw.dataUrl, key, {}, {}, undefined, mcpPath);
    clients.push(client);
    return client;
  };
  const read = async (c: Client, uri: string) => {
    const x = (await c.readResource({ uri })).contents[0]!;
    return 'text' in x ? x.text : undefined;
  };
  const uris = async (c: Client) => (await c.listResources()).resources.map((r) => r.uri).sort();
  const templates = async (c: Client) => (await c.listResourceTemplates()).resourceTemplates.map((t) => t.uriTemplate).sort();
  const refused = async (p: Promise<unknown>, uri: string) =>
    assert.rejects(p, (e: unknown) => {
      assert.ok(e instanceof McpError, String(e));
      assert.equal(e.code, -32602);
      assert.match(e.message, new RegExp(`Resource "${uri.replace(/[/.]/g, '\\$&')}" is not available to this agent \\(not permitted, or no such resource\\)`));
      return true;
    });

  before(async () => {
    up = await startHttpUpstream({
      build: () => {
        const s = new McpServer({ name: 'docs', version: '1.0.0' }, { capabilities: { resources: { subscribe: true } } });
        for (const u of ['doc://public/a', 'doc://public/b', 'doc://secret/x']) s.registerResource(u, u, { mimeType: 'text/plain' }, (uri) => ({ contents: [{ uri: uri.href, text: `text of ${uri.href}` }] }));
        for (const t of ['doc://public/{name}', 'doc://secret/{name}'])
          s.registerResource(t, new ResourceTemplate(t, { list: undefined }), { mimeType: 'text/plain' }, (uri) => ({ contents: [{ uri: uri.href, text: `made ${uri.href}` }] }));
        s.server.setRequestHandler(SubscribeRequestSchema, (r) => {
          subscribedUpstream.push(r.params.uri);
          return {};
        });
        return s;
      },
    });
    gw = await startGateway({
      config: {
        mcp_servers: [{ name: 'docs', transport: 'http', url: up.url }],
        agents: [
          // written before per-resource patterns: a server name still means all of its resources
          { name: 'all-docs', key: KEY_ALL, resources: ['docs'] },
          { name: 'public-docs', key: KEY_SCOPED, resources: ['docs__doc://public/*'], resources_deny: ['docs__doc://public/b'] },
          { name: 'no-docs', key: KEY_NONE, tools: ['docs__*'] },
        ],
        mcp_virtual_servers: [{ name: 'pub', tools: [], resources: ['docs__doc://public/*'] }],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await up?.close();
  });

  test('a server name pattern grants all of its resources and templates (configs written before keep their meaning)', async () => {
    const c = await connect(KEY_ALL);
    assert.deepEqual(await uris(c), ['doc://public/a', 'doc://public/b', 'doc://secret/x']);
    assert.deepEqual(await templates(c), ['doc://public/{name}', 'doc://secret/{name}']);
    assert.equal(await read(c, 'doc://secret/x'), 'text of doc://secret/x');
    assert.equal(await read(c, 'doc://secret/made-up'), 'made doc://secret/made-up');
  });

  test('server__uri patterns: only those listed and readable, deny wins; the rest refused with a JSON-RPC error, read and subscribe alike', async () => {
    const c = await connect(KEY_SCOPED);
    assert.deepEqual(await uris(c), ['doc://public/a']);
    assert.deepEqual(await templates(c), ['doc://public/{name}']);
    assert.equal(await read(c, 'doc://public/a'), 'text of doc://public/a');
    // through the template, a URI its pattern allows
    assert.equal(await read(c, 'doc://public/c'), 'made doc://public/c');
    await refused(c.readResource({ uri: 'doc://public/b' }), 'doc://public/b');
    await refused(c.readResource({ uri: 'doc://secret/x' }), 'doc://secret/x');
    await refused(c.readResource({ uri: 'doc://secret/other' }), 'doc://secret/other');
    await refused(c.readResource({ uri: 'doc://nowhere/at-all' }), 'doc://nowhere/at-all');
    const before = subscribedUpstream.length;
    await refused(c.subscribeResource({ uri: 'doc://secret/x' }), 'doc://secret/x');
    await refused(c.subscribeResource({ uri: 'doc://public/b' }), 'doc://public/b');
    assert.equal(subscribedUpstream.length, before, 'nothing refused reached the server');
    await c.subscribeResource({ uri: 'doc://public/a' });
    assert.deepEqual(subscribedUpstream.slice(before), ['doc://public/a']);
  });

  test('no resource patterns: none (default deny), whatever its tools', async () => {
    const c = await connect(KEY_NONE);
    assert.deepEqual(await uris(c), []);
    assert.deepEqual(await templates(c), []);
    await refused(c.readResource({ uri: 'doc://public/a' }), 'doc://public/a');
  });

  test('a virtual server with server__uri patterns: an agent allowed all sees only what the bundle offers', async () => {
    const c = await connect(KEY_ALL, '/mcp/v/pub');
    assert.deepEqual(await uris(c), ['doc://public/a', 'doc://public/b']);
    assert.deepEqual(await templates(c), ['doc://public/{name}']);
    await refused(c.readResource({ uri: 'doc://secret/x' }), 'doc://secret/x');
  });

  test('the admin API and config validate patterns with the field named; resources_deny round-trips; a changed pattern applies to an open session', async () => {
    const bad = await gw.admin('POST', '/agents', { name: 'bad-bot', resources: ['docs__doc://x'], resources_deny: ['has space'] });
    assert.equal(bad.status, 400);
    assert.ok(
      (bad.body.error.issues as { path: string; message: string }[]).some((i) => /resources_deny/.test(i.path) && /server name pattern .* or "server__uri"/.test(i.message)),
      JSON.stringify(bad.body),
    );
    const c = await connect(KEY_SCOPED);
    assert.deepEqual(await uris(c), ['doc://public/a']);
    const got = await gw.admin('GET', '/agents/public-docs');
    assert.deepEqual(got.body.resources_deny, ['docs__doc://public/b']);
    const put = await gw.admin('PUT', '/agents/public-docs', { name: 'public-docs', resources: ['docs__doc://public/*'], resources_deny: ['docs__doc://public/a'] });
    assert.equal(put.status, 200, JSON.stringify(put.body));
    assert.deepEqual(await uris(c), ['doc://public/b']);
    await refused(c.readResource({ uri: 'doc://public/a' }), 'doc://public/a');
    const exp = await gw.admin('GET', '/config');
    const agent = (exp.body.agents as { name: string; resources_deny?: string[] }[]).find((a) => a.name === 'public-docs')!;
    assert.deepEqual(agent.resources_deny, ['docs__doc://public/a']);
  });
});
