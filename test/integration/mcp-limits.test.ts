// An upstream MCP server that sends too much: max_response_bytes bounds what the gateway buffers
// of one message (a JSON body, an SSE event, a stdio line). The call gets an error result naming
// the limit, the connection is closed (a stdio process restarted), and the next call works.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { ROOT, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY = 'sk-airlock-agent-big-000000000000000000041';
const LIMIT = 64 * 1024;
const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

/** an MCP server with one tool, big: `size` characters of text */
const bigServer = () => {
  const s = new McpServer({ name: 'big', version: '1.0.0' });
  s.registerTool('big', { description: 'Answers size characters', inputSchema: { size: z.number() } }, ({ size }) => ({ content: [{ type: 'text', text: 'x'.repeat(size) }] }));
  s.registerPrompt('big_prompt', { description: 'A prompt of size characters', argsSchema: { size: z.string() } }, ({ size }) => ({ messages: [{ role: 'user', content: { type: 'text', text: 'p'.repeat(Number(size)) } }] }));
  return s;
};
const STDIO_SERVER = `
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { z } from 'zod';
const s = new McpServer({ name: 'big', version: '1.0.0' });
s.registerTool('big', { description: 'Answers size characters', inputSchema: { size: z.number() } }, ({ size }) => ({ content: [{ type: 'text', text: 'x'.repeat(size) }] }));
await s.connect(new StdioServerTransport());
`;

describe('MCP: an upstream answer larger than max_response_bytes', () => {
  let up: HttpUpstream;
  let gw: RunningGateway;
  let agent: Client;

  before(async () => {
    up = await startHttpUpstream({ build: bigServer });
    gw = await startGateway({
      config: {
        mcp_servers: [
          { name: 'web', transport: 'http', url: up.url, max_response_bytes: LIMIT },
          { name: 'proc', transport: 'stdio', command: process.execPath, args: ['--input-type=module', '-e', STDIO_SERVER], cwd: ROOT, max_response_bytes: LIMIT },
        ],
        agents: [{ name: 'big-bot', key: KEY, tools: ['web__*', 'proc__*'] }],
      },
    });
    agent = (await agentClient(gw.dataUrl, KEY)).client;
  });
  after(async () => {
    await agent?.close().catch(() => undefined);
    await gw?.stop();
    await up?.close();
  });

  for (const server of ['web', 'proc']) {
    test(`${server}: the call gets an error result naming the limit; a call within it works, before and after`, async () => {
      assert.equal(text(await agent.callTool({ name: `${server}__big`, arguments: { size: 1000 } })).length, 1000);
      const r = await agent.callTool({ name: `${server}__big`, arguments: { size: 4 * LIMIT } });
      assert.equal(r.isError, true);
      assert.match(text(r), new RegExp(`MCP server "${server}" sent a message larger than ${LIMIT} bytes \\(its max_response_bytes\\)`));
      // just under the limit (the JSON-RPC envelope takes a little room) still passes
      assert.equal(text(await agent.callTool({ name: `${server}__big`, arguments: { size: LIMIT - 512 } })).length, LIMIT - 512);
      const status = (await gw.admin('GET', `/mcp-servers/${server}/status`)).body as { lastError?: string; last_error?: string; stderr?: string[] };
      assert.match(JSON.stringify(status), /max_response_bytes/);
    });
  }

  test('prompts/get: an answer too large is an error that says so', async () => {
    await assert.rejects(agent.getPrompt({ name: 'web__big_prompt', arguments: { size: String(4 * LIMIT) } }), /sent a message larger than 65536 bytes/);
    const ok = await agent.getPrompt({ name: 'web__big_prompt', arguments: { size: '10' } });
    assert.equal(ok.messages.length, 1);
  });

  test('max_response_bytes is checked: below 1024 is refused with the field named', async () => {
    const r = await gw.admin('POST', '/mcp-servers', { name: 'tiny', transport: 'http', url: up.url, max_response_bytes: 10 });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body), /max_response_bytes/);
  });
});
