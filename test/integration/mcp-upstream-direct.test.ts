// tools/call to a Streamable HTTP upstream goes straight to the upstream session (engine/mcp/
// http-call.ts), not through the SDK Client: what an agent relies on still holds — against an
// SDK-built server (its SSE answers, a sampling request and a log message in the call's stream,
// progress) and against a hand-written server that answers in every way the transport allows and
// misbehaves: application/json, SSE with CRLF, comments, multi-line data and chunks split anywhere,
// a stream that ends before the answer (resumed with Last-Event-ID), a lost session (404), an
// answer over max_response_bytes, a result that is not a tool result, and no answer at all.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import Database from 'better-sqlite3';
import { z } from 'zod';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CreateMessageRequestSchema, CreateMessageResultSchema, LoggingMessageNotificationSchema, type CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY = 'sk-airlock-agent-direct-0000000000000000051';
const LIMIT = 8 * 1024;
const TIMEOUT_MS = 1500;
const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

/** An SDK-built server whose tool asks its client for sampling, and logs, within the call. */
const samplingServer = () => {
  const s = new McpServer({ name: 'sdk-sampling', version: '1.0.0' }, { capabilities: { logging: {} } });
  s.registerTool('ask', { description: 'Asks the client to sample', inputSchema: { q: z.string() } }, async ({ q }, x) => {
    await x.sendNotification({ method: 'notifications/message', params: { level: 'info', data: `asking about ${q}` } });
    const r = await x.sendRequest({ method: 'sampling/createMessage', params: { messages: [{ role: 'user', content: { type: 'text', text: q } }], maxTokens: 5 } }, CreateMessageResultSchema);
    return { content: [{ type: 'text', text: `the client said: ${r.content.type === 'text' ? r.content.text : '?'}` }] };
  });
  s.registerTool('steps', { description: 'Reports progress', inputSchema: {} }, async (_a, x) => {
    const token = x._meta?.progressToken;
    if (token !== undefined) for (let i = 1; i <= 3; i++) await x.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: i, total: 3 } });
    return { content: [{ type: 'text', text: 'stepped' }] };
  });
  return s;
};

interface Raw {
  url: string;
  inits: number;
  /** notifications/cancelled it received */
  cancelled: { requestId: unknown; reason?: unknown }[];
  /** tools/call requests left unanswered (hang) */
  hangs: number;
  /** Last-Event-ID of each GET that resumed a stream */
  resumedFrom: string[];
  /** drop every session (the next request on one gets 404) */
  forget(): void;
  close(): Promise<void>;
}

/** A Streamable HTTP MCP server written by hand: initialize and tools/list as JSON; tools/call
 * answered as its tool's name says. */
async function rawUpstream(): Promise<Raw> {
  const sessions = new Set<string>();
  const resumable = new Map<string, unknown>();
  const hanging = new Set<http.ServerResponse>();
  let n = 0;
  const raw: Omit<Raw, 'url' | 'close'> = { inits: 0, hangs: 0, cancelled: [], resumedFrom: [], forget: () => sessions.clear() };
  const tools = ['json', 'split', 'log', 'drop', 'hang', 'big', 'whoami', 'notresult', 'rpcerror', 'garbage', 'headers'].map((name) => ({ name, inputSchema: { type: 'object' } }));
  const json = (res: http.ServerResponse, body: unknown, headers: Record<string, string> = {}) => res.writeHead(200, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(body));
  const sse = (res: http.ServerResponse) => res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const ok = (id: unknown, t: string) => ({ jsonrpc: '2.0', id, result: { content: [{ type: 'text', text: t }] } });
  const server = http.createServer((req, res) => {
    let data = '';
    req.on('data', (c: Buffer) => (data += c.toString()));
    req.on('end', () => {
      const sid = req.headers['mcp-session-id'];
      if (req.method === 'GET') {
        const last = req.headers['last-event-id'];
        if (typeof last === 'string' && resumable.has(last) && typeof sid === 'string' && sessions.has(sid)) {
          raw.resumedFrom.push(last);
          sse(res);
          res.end(`id: ${last}-done\ndata: ${JSON.stringify(ok(resumable.get(last), 'resumed'))}\n\n`);
          return;
        }
        res.writeHead(405).end();
        return;
      }
      if (req.method === 'DELETE') {
        if (typeof sid === 'string') sessions.delete(sid);
        res.writeHead(200).end();
        return;
      }
      const m = JSON.parse(data) as { id?: unknown; method: string; params: Record<string, unknown> };
      if (m.method === 'initialize') {
        raw.inits++;
        const id = `raw-session-${++n}`;
        sessions.add(id);
        return json(res, { jsonrpc: '2.0', id: m.id, result: { protocolVersion: m.params.protocolVersion, capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } } }, { 'mcp-session-id': id });
      }
      if (typeof sid !== 'string' || !sessions.has(sid)) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
      if (m.id === undefined) {
        if (m.method === 'notifications/cancelled') raw.cancelled.push(m.params as Raw['cancelled'][number]);
        return void res.writeHead(202).end();
      }
      if (m.method === 'tools/list') return json(res, { jsonrpc: '2.0', id: m.id, result: { tools } });
      if (m.method !== 'tools/call') return json(res, { jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
      switch (m.params.name) {
        case 'json': // a batch-shaped JSON body: the answer in an array
          return json(res, [ok(m.id, 'as json')]);
        case 'whoami':
          return json(res, ok(m.id, sid));
        case 'headers': // the request's headers as they came, names in their case, repeats kept
          return json(res, ok(m.id, JSON.stringify(req.rawHeaders)));
        case 'split': {
          // CRLF line ends, a comment, a priming event, `event: message`, the JSON spread over
          // three data lines, and the bytes written a few at a time (CRLF split across writes)
          const body = JSON.stringify(ok(m.id, 'split ok – ünïcode')).replace('"result":', '\r\ndata: "result":').replace('"content"', '\r\ndata: "content"');
          const whole = Buffer.from(`: hello\r\nid: s1\r\nretry: 5\r\ndata:\r\n\r\nevent: message\r\nid: s2\r\ndata: ${body}\r\n\r\n`);
          sse(res);
          let i = 0;
          const next = () => {
            if (i >= whole.length) return void res.end();
            res.write(whole.subarray(i, (i += 3)));
            setImmediate(next);
          };
          return next();
        }
        case 'log':
          sse(res);
          res.write(`data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'warning', logger: 'raw', data: 'careful' } })}\n\n`);
          return void res.end(`data: ${JSON.stringify(ok(m.id, 'logged'))}\n\n`);
        case 'drop': {
          // a priming event, then the stream ends without the answer: the client resumes
          const ev = `drop-${++n}`;
          resumable.set(ev, m.id);
          sse(res);
          return void res.end(`id: ${ev}\nretry: 20\ndata:\n\n`);
        }
        case 'hang':
          sse(res);
          hanging.add(res);
          raw.hangs++;
          return;
        case 'big':
          sse(res);
          return void res.end(`data: ${JSON.stringify(ok(m.id, 'x'.repeat(LIMIT * 2)))}\n\n`);
        case 'notresult':
          return json(res, { jsonrpc: '2.0', id: m.id, result: { content: 'not a list' } });
        case 'rpcerror':
          return json(res, { jsonrpc: '2.0', id: m.id, error: { code: -32602, message: 'no such argument: q' } });
        case 'garbage':
          return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"jsonrpc": "2.0", "id": ');
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return Object.assign(raw, {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/mcp`,
    close: async () => {
      for (const r of hanging) r.end();
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    },
  });
}

function ledger(gw: RunningGateway, tool: string): { status: number; error_class: string | null }[] {
  const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true });
  try {
    return db.prepare('SELECT status, error_class FROM ledger WHERE requested_model = ? ORDER BY ts').all(tool) as { status: number; error_class: string | null }[];
  } finally {
    db.close();
  }
}

describe('MCP: tools/call straight to an HTTP upstream session', () => {
  let sdkUp: HttpUpstream;
  let raw: Raw;
  let gw: RunningGateway;
  const clients: Client[] = [];
  const connect = async (caps: Parameters<typeof agentClient>[3] = {}, setup?: (c: Client) => void) => {
    const { client } = await agentClient(gw.dataUrl, KEY, {}, caps, setup);
    clients.push(client);
    return client;
  };

  before(async () => {
    sdkUp = await startHttpUpstream({ build: samplingServer });
    raw = await rawUpstream();
    gw = await startGateway({
      config: {
        mcp_servers: [
          { name: 'sdk', transport: 'http', url: sdkUp.url },
          {
            name: 'raw',
            transport: 'http',
            url: raw.url,
            max_response_bytes: LIMIT,
            call_timeout_ms: TIMEOUT_MS,
            // headers the call sets itself, in another case: the call's win, none goes twice
            headers: { 'Content-Type': 'text/plain', ACCEPT: 'text/html', 'X-Tenant': 'blue' },
          },
        ],
        agents: [{ name: 'direct-bot', key: KEY, tools: ['sdk__*', 'raw__*'] }],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await sdkUp?.close();
    await raw?.close();
  });

  test("an SDK server's sampling request and log message in the call's stream reach the agent; its answer goes back and the call completes", async () => {
    const asked: string[] = [];
    const logs: unknown[] = [];
    const agent = await connect({ sampling: {} }, (c) => {
      c.setRequestHandler(CreateMessageRequestSchema, (req) => {
        const m = req.params.messages[0]?.content;
        asked.push(m && 'text' in m ? String(m.text) : '');
        return { role: 'assistant', content: { type: 'text', text: 'forty-two' }, model: 'agent-model' };
      });
      c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params.data));
    });
    const r = await agent.callTool({ name: 'sdk__ask', arguments: { q: 'the answer?' } });
    assert.equal(r.isError, undefined, text(r));
    assert.equal(text(r), 'the client said: forty-two');
    assert.deepEqual(asked, ['the answer?']);
    await eventually(() => logs.includes('asking about the answer?') || undefined, 'the log message');
    // an agent that cannot sample: the upstream's request is refused, which the tool reports
    const plain = await connect();
    const refused = await plain.callTool({ name: 'sdk__ask', arguments: { q: 'x' } });
    assert.equal(refused.isError, true, text(refused));
    assert.deepEqual(asked, ['the answer?']);
  });

  test('a call with a progress token: the progress reaches the agent, in order, before the result', async () => {
    const agent = await connect();
    const seen: number[] = [];
    const r = await agent.callTool({ name: 'sdk__steps', arguments: {} }, undefined, { onprogress: (p) => seen.push(p.progress) });
    assert.equal(text(r), 'stepped');
    assert.ok(seen.length >= 2, JSON.stringify(seen));
    assert.deepEqual(seen, [1, 2, 3].slice(0, seen.length));
  });

  test("configured headers reach the upstream; one that the call sets itself (in another case) gives way, and no header goes twice", async () => {
    const agent = await connect();
    const raw = JSON.parse(text(await agent.callTool({ name: 'raw__headers', arguments: {} }))) as string[];
    const got = new Map<string, string[]>();
    for (let i = 0; i < raw.length; i += 2) got.set(raw[i]!.toLowerCase(), [...(got.get(raw[i]!.toLowerCase()) ?? []), raw[i + 1]!]);
    assert.deepEqual(got.get('content-type'), ['application/json']);
    assert.equal(got.get('accept')?.length, 1);
    assert.match(got.get('accept')![0]!, /text\/event-stream/);
    assert.deepEqual(got.get('x-tenant'), ['blue']);
    assert.equal(got.get('mcp-session-id')?.length, 1);
  });

  test('JSON and SSE answers in any framing the spec allows are read: a JSON array, CRLF, comments, multi-line data, split writes, UTF-8 across chunks', async () => {
    const agent = await connect();
    assert.equal(text(await agent.callTool({ name: 'raw__json', arguments: {} })), 'as json');
    assert.equal(text(await agent.callTool({ name: 'raw__split', arguments: {} })), 'split ok – ünïcode');
  });

  test("a log message before the answer in the call's SSE stream is relayed to the agent (named after its server)", async () => {
    const logs: { logger?: string; data: unknown }[] = [];
    const agent = await connect({}, (c) => c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void logs.push(n.params)));
    assert.equal(text(await agent.callTool({ name: 'raw__log', arguments: {} })), 'logged');
    const l = await eventually(() => logs.find((x) => x.data === 'careful'), 'the log message');
    assert.equal(l.logger, 'raw: raw');
  });

  test('a stream that ends after its priming event, before the answer, is resumed with Last-Event-ID and the answer arrives', async () => {
    const agent = await connect();
    const before = raw.resumedFrom.length;
    assert.equal(text(await agent.callTool({ name: 'raw__drop', arguments: {} })), 'resumed');
    assert.equal(raw.resumedFrom.length, before + 1);
    assert.match(raw.resumedFrom.at(-1)!, /^drop-\d+$/);
  });

  test('the upstream lost the session (404): a new session is initialised and the call answered, transparently', async () => {
    const agent = await connect();
    const s1 = text(await agent.callTool({ name: 'raw__whoami', arguments: {} }));
    const inits = raw.inits;
    raw.forget();
    const s2 = text(await agent.callTool({ name: 'raw__whoami', arguments: {} }));
    assert.match(s2, /^raw-session-\d+$/);
    assert.notEqual(s2, s1);
    assert.ok(raw.inits > inits, 'initialised again');
    assert.equal(text(await agent.callTool({ name: 'raw__whoami', arguments: {} })), s2, 'and kept');
  });

  test('an answer over max_response_bytes: an error result naming the limit (ledger 502), and the next call works on a new session', async () => {
    const agent = await connect();
    const r = await agent.callTool({ name: 'raw__big', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(text(r), new RegExp(`larger than ${LIMIT} bytes \\(its max_response_bytes\\)`));
    assert.equal(text(await agent.callTool({ name: 'raw__json', arguments: {} })), 'as json');
    const rows = await eventually(() => { const x = ledger(gw, 'raw__big'); return x.length ? x : undefined; }, 'a ledger row');
    assert.deepEqual(rows.at(-1), { status: 502, error_class: 'response_too_large' });
  });

  test('no answer: the per-call timeout gives an error result (ledger 504) and the upstream is told the call was cancelled', async () => {
    const agent = await connect();
    const r = await agent.callTool({ name: 'raw__hang', arguments: {} });
    assert.equal(r.isError, true);
    assert.match(text(r), new RegExp(`timed out after ${TIMEOUT_MS} ms`));
    const c = await eventually(() => raw.cancelled.find((x) => /timed out/.test(String(x.reason))), 'notifications/cancelled upstream');
    assert.match(String(c.requestId), /\S/);
    const rows = await eventually(() => { const x = ledger(gw, 'raw__hang'); return x.length ? x : undefined; }, 'a ledger row');
    assert.deepEqual(rows.at(-1), { status: 504, error_class: 'timeout' });
    // the connection still serves
    assert.equal(text(await agent.callTool({ name: 'raw__json', arguments: {} })), 'as json');
  });

  test('the agent cancels a call that gets no answer: the upstream is told (ledger 499)', async () => {
    const agent = await connect();
    const ac = new AbortController();
    const call = agent.callTool({ name: 'raw__hang', arguments: {} }, undefined, { signal: ac.signal, timeout: 60_000 });
    const had = raw.cancelled.length;
    const hangs = raw.hangs;
    // cancelled once the upstream has the call
    await eventually(() => raw.hangs > hangs || undefined, 'the call upstream');
    ac.abort('enough');
    await assert.rejects(call);
    await eventually(() => raw.cancelled.length > had || undefined, 'notifications/cancelled upstream');
    const rows = await eventually(() => { const x = ledger(gw, 'raw__hang').filter((y) => y.status === 499); return x.length ? x : undefined; }, 'a 499 row');
    assert.equal(rows[0]!.error_class, 'client_cancelled');
  });

  test('a result that is not a tool result, a JSON-RPC error and a body that is not JSON: errors that say so', async () => {
    const agent = await connect();
    const bad = await agent.callTool({ name: 'raw__notresult', arguments: {} }).catch((e: Error) => e);
    assert.match(bad instanceof Error ? bad.message : text(bad), /not a tool result/);
    const rpc = await agent.callTool({ name: 'raw__rpcerror', arguments: {} }).catch((e: Error) => e);
    assert.ok(rpc instanceof Error);
    assert.match(rpc.message, /no such argument: q/);
    const garbage = await agent.callTool({ name: 'raw__garbage', arguments: {} }).catch((e: Error) => e);
    assert.match(garbage instanceof Error ? garbage.message : text(garbage), /not JSON/);
    assert.equal(text(await agent.callTool({ name: 'raw__json', arguments: {} })), 'as json');
  });
});
