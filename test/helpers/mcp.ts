// MCP test parts: the real npm MCP servers as stdio upstreams, an HTTP upstream built with the
// SDK (in this process, on 127.0.0.1 port 0), and an SDK Client connected to a gateway's /mcp.
import http from 'node:http';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { isInitializeRequest, type ClientCapabilities } from '@modelcontextprotocol/sdk/types.js';
import { ROOT } from './gateway.js';

export const EVERYTHING = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-everything', 'dist', 'index.js');
export const FILESYSTEM = path.join(ROOT, 'node_modules', '@modelcontextprotocol', 'server-filesystem', 'dist', 'index.js');

/** An agent's SDK client on a gateway's /mcp. */
export async function agentClient(dataUrl: string, key: string | undefined, headers: Record<string, string> = {}, capabilities: ClientCapabilities = {}, setup?: (c: Client) => void, mcpPath = '/mcp'): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const transport = new StreamableHTTPClientTransport(new URL(dataUrl + mcpPath), {
    requestInit: { headers: { ...(key ? { authorization: `Bearer ${key}` } : {}), ...headers } },
  });
  const client = new Client({ name: 'test-agent', version: '1.0.0' }, { capabilities });
  setup?.(client);
  await client.connect(transport);
  return { client, transport };
}

export interface HttpUpstream {
  url: string;
  /** every session id it created, in order */
  sessionsCreated: string[];
  /** the headers of every request it received */
  headersSeen: http.IncomingHttpHeaders[];
  /** session ids ended by a DELETE */
  sessionsDeleted: string[];
  /** drop every session, as a restarted server would (its next request gets 404) */
  forgetSessions(): void;
  /** add a tool to every session's server (they send notifications/tools/list_changed) */
  addTool(name: string): void;
  close(): Promise<void>;
}

/** A Streamable HTTP MCP server built with the SDK: tools add, whoami (its session id). */
export async function startHttpUpstream(): Promise<HttpUpstream> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const sessionsCreated: string[] = [];
  const headersSeen: http.IncomingHttpHeaders[] = [];
  const sessionsDeleted: string[] = [];
  const built: McpServer[] = [];
  const extra: string[] = [];
  const addTo = (s: McpServer, name: string) => s.registerTool(name, { description: `Added later: ${name}`, inputSchema: {} }, () => ({ content: [{ type: 'text' as const, text: name }] }));
  const build = () => {
    const s = new McpServer({ name: 'http-fixture', version: '1.0.0' });
    built.push(s);
    for (const n of extra) addTo(s, n);
    s.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, ({ a, b }) => ({ content: [{ type: 'text', text: String(a + b) }] }));
    s.registerTool('whoami', { description: 'The upstream session id', inputSchema: {} }, (_args, extra) => ({ content: [{ type: 'text' as const, text: extra.sessionId ?? 'none' }] }));
    return s;
  };
  const server = http.createServer((req, res) => {
    headersSeen.push(req.headers);
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      void (async () => {
        const body: unknown = data ? JSON.parse(data) : undefined;
        const sid = req.headers['mcp-session-id'];
        if (typeof sid === 'string') {
          const t = transports.get(sid);
          if (!t) {
            res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
            return;
          }
          if (req.method === 'DELETE') sessionsDeleted.push(sid);
          await t.handleRequest(req, res, body);
          return;
        }
        if (req.method !== 'POST' || !isInitializeRequest(body)) {
          res.writeHead(400).end();
          return;
        }
        const t = new StreamableHTTPServerTransport({
          sessionIdGenerator: () => randomUUID(),
          onsessioninitialized: (id) => {
            transports.set(id, t);
            sessionsCreated.push(id);
          },
        });
        await build().connect(t);
        await t.handleRequest(req, res, body);
      })();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    sessionsCreated,
    sessionsDeleted,
    headersSeen,
    forgetSessions: () => transports.clear(),
    addTool: (name) => {
      extra.push(name);
      for (const s of built) addTo(s, name);
    },
    close: async () => {
      for (const t of transports.values()) await t.close().catch(() => undefined);
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
