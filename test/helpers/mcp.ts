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
import { SSEServerTransport } from '@modelcontextprotocol/sdk/server/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import { InMemoryEventStore } from '@modelcontextprotocol/sdk/examples/shared/inMemoryEventStore.js';
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
  /** the params._meta of every tool call it answered, in order */
  metaSeen: (Record<string, unknown> | undefined)[];
  /** tool calls it answered on a session that was never initialised */
  uninitialisedCalls: { n: number };
  /** drop every session and its streams, as a restarted server would (its next request gets 404) */
  forgetSessions(): Promise<void>;
  /** add a tool to every session's server (they send notifications/tools/list_changed) */
  addTool(name: string): void;
  close(): Promise<void>;
}

/** The fixture's MCP servers (one per upstream session): tools add, whoami (its session id), and
 * the tools added later, a prompt greet and a resource note://hello; the params._meta of each
 * tool call, prompts/get and resources/read is kept. */
function fixture() {
  const built: McpServer[] = [];
  const extra: string[] = [];
  const metaSeen: (Record<string, unknown> | undefined)[] = [];
  const uninitialisedCalls = { n: 0 };
  const addTo = (s: McpServer, name: string) =>
    s.registerTool(name, { description: `Added later: ${name}`, inputSchema: {} }, (_args, x) => {
      metaSeen.push(x._meta);
      return { content: [{ type: 'text' as const, text: name }] };
    });
  const build = () => {
    const s = new McpServer({ name: 'http-fixture', version: '1.0.0' });
    built.push(s);
    for (const n of extra) addTo(s, n);
    s.registerTool('add', { description: 'Adds two numbers', inputSchema: { a: z.number(), b: z.number() } }, ({ a, b }, x) => {
      metaSeen.push(x._meta);
      return { content: [{ type: 'text', text: String(a + b) }] };
    });
    s.registerTool('whoami', { description: 'The upstream session id', inputSchema: {} }, (_args, x) => {
      metaSeen.push(x._meta);
      if (!s.server.getClientVersion()) uninitialisedCalls.n++;
      return { content: [{ type: 'text' as const, text: x.sessionId ?? 'none' }] };
    });
    s.registerPrompt('greet', { description: 'A greeting', argsSchema: { who: z.string() } }, ({ who }, x) => {
      metaSeen.push(x._meta);
      return { messages: [{ role: 'user' as const, content: { type: 'text' as const, text: `Say hello to ${who}` } }] };
    });
    s.registerResource('note', 'note://hello', { description: 'A note', mimeType: 'text/plain' }, (uri, x) => {
      metaSeen.push(x._meta);
      return { contents: [{ uri: uri.href, text: 'hello' }] };
    });
    return s;
  };
  const addTool = (name: string) => {
    extra.push(name);
    for (const s of built) if (s.isConnected()) addTo(s, name);
  };
  return { build, addTool, metaSeen, uninitialisedCalls };
}

/** Read a request's body (JSON) and record its headers. */
function withBody(headersSeen: http.IncomingHttpHeaders[], handle: (req: http.IncomingMessage, res: http.ServerResponse, body: unknown) => Promise<void>): http.RequestListener {
  return (req, res) => {
    headersSeen.push(req.headers);
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => void handle(req, res, data ? JSON.parse(data) : undefined));
  };
}

async function listen(server: http.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as AddressInfo).port;
}

async function shut(server: http.Server, transports: Map<string, { close(): Promise<void> }>): Promise<void> {
  for (const t of transports.values()) await t.close().catch(() => undefined);
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
}

/** A Streamable HTTP MCP server built with the SDK: fixture(), or the server `custom.build` makes
 * per session; `custom.resumable` keeps its events (a client may resume a closed stream). */
export async function startHttpUpstream(custom?: { build: () => { connect(t: Transport): Promise<void> }; resumable?: boolean }): Promise<HttpUpstream> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const sessionsCreated: string[] = [];
  const headersSeen: http.IncomingHttpHeaders[] = [];
  const sessionsDeleted: string[] = [];
  const fx = fixture();
  const server = http.createServer(
    withBody(headersSeen, async (req, res, body) => {
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
        ...(custom?.resumable ? { eventStore: new InMemoryEventStore(), retryInterval: 50 } : {}),
        sessionIdGenerator: () => randomUUID(),
        onsessioninitialized: (id) => {
          transports.set(id, t);
          sessionsCreated.push(id);
        },
      });
      await (custom ?? fx).build().connect(t);
      await t.handleRequest(req, res, body);
    }),
  );
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    sessionsCreated,
    sessionsDeleted,
    headersSeen,
    metaSeen: fx.metaSeen,
    uninitialisedCalls: fx.uninitialisedCalls,
    forgetSessions: async () => {
      const all = [...transports.values()];
      transports.clear();
      for (const t of all) await t.close().catch(() => undefined);
    },
    addTool: fx.addTool,
    close: () => shut(server, transports),
  };
}

/** A legacy HTTP+SSE MCP server (protocol 2024-11-05) built with the SDK: GET /sse opens a session
 * (its stream), POST /messages?sessionId= carries the client's messages. */
export async function startSseUpstream(): Promise<HttpUpstream> {
  const transports = new Map<string, SSEServerTransport>();
  const sessionsCreated: string[] = [];
  const headersSeen: http.IncomingHttpHeaders[] = [];
  const fx = fixture();
  const server = http.createServer(
    withBody(headersSeen, async (req, res, body) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && url.pathname === '/sse') {
        const t = new SSEServerTransport('/messages', res);
        transports.set(t.sessionId, t);
        sessionsCreated.push(t.sessionId);
        t.onclose = () => transports.delete(t.sessionId);
        await fx.build().connect(t);
        return;
      }
      const t = transports.get(url.searchParams.get('sessionId') ?? '');
      if (req.method !== 'POST' || url.pathname !== '/messages' || !t) {
        res.writeHead(404).end();
        return;
      }
      await t.handlePostMessage(req, res, body);
    }),
  );
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}/sse`,
    sessionsCreated,
    sessionsDeleted: [],
    headersSeen,
    metaSeen: fx.metaSeen,
    uninitialisedCalls: fx.uninitialisedCalls,
    forgetSessions: async () => {
      const all = [...transports.values()];
      transports.clear();
      for (const t of all) await t.close().catch(() => undefined);
    },
    addTool: fx.addTool,
    close: () => shut(server, transports),
  };
}
