// Resumability of /mcp (SEP-1699): an agent (the SDK's Client over Streamable HTTP) whose
// connection to the gateway is cut in the middle of a tool call resumes the response stream with
// Last-Event-ID and receives the progress notifications and the result it missed. The cut is real:
// a TCP relay between the agent and the gateway destroys every connection. The upstream is an
// SDK-built Streamable HTTP server whose tool waits for the test between its steps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { CallToolResult, Progress } from '@modelcontextprotocol/sdk/types.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY = 'sk-airlock-agent-resume-0000000000000000001';
const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

/** A TCP relay to the gateway that can cut every connection through it, and records the requests' heads (and what the gateway sent). */
async function relay(target: string): Promise<{ url: string; cut(): void; heads: string[]; received: string[]; close(): Promise<void> }> {
  const { hostname, port } = new URL(target);
  const sockets = new Set<net.Socket>();
  const heads: string[] = [];
  const received: string[] = [];
  const server = net.createServer((inbound) => {
    const outbound = net.connect(Number(port), hostname);
    sockets.add(inbound).add(outbound);
    inbound.on('data', (b: Buffer) => {
      const s = b.toString('latin1');
      if (/^(GET|POST|DELETE) /.test(s)) heads.push(s.slice(0, s.indexOf('\r\n\r\n')));
    });
    outbound.on('data', (b: Buffer) => void received.push(b.toString('latin1')));
    inbound.pipe(outbound).pipe(inbound);
    const drop = () => {
      inbound.destroy();
      outbound.destroy();
      sockets.delete(inbound);
      sockets.delete(outbound);
    };
    inbound.on('error', drop).on('close', drop);
    outbound.on('error', drop).on('close', drop);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    heads,
    received,
    cut: () => {
      for (const s of sockets) s.destroy();
      sockets.clear();
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

describe('MCP gateway: a dropped stream is resumed with Last-Event-ID', () => {
  let gw: RunningGateway;
  let up: HttpUpstream;
  const clients: Client[] = [];
  /** the test lets the upstream tool go on past step 1 */
  let release: (() => void) | undefined;

  before(async () => {
    up = await startHttpUpstream({
      build: () => {
        const s = new McpServer({ name: 'steps', version: '1.0.0' });
        s.registerTool('steps', { description: 'Three steps, waiting for the test after the first', inputSchema: { n: z.number() } }, async ({ n }, x) => {
          const token = x._meta?.progressToken;
          const progress = (p: number) => (token === undefined ? Promise.resolve() : x.sendNotification({ method: 'notifications/progress', params: { progressToken: token, progress: p, total: 3 } }));
          await progress(1);
          await new Promise<void>((r) => (release = r));
          release = undefined;
          await progress(2);
          await progress(3);
          return { content: [{ type: 'text', text: `done ${n}` }] };
        });
        return s;
      },
    });
    gw = await startGateway({
      config: {
        mcp_servers: [{ name: 'up', transport: 'http', url: up.url }],
        agents: [{ name: 'resume-bot', key: KEY, tools: ['up__*'] }],
        settings: { mcp_resume_events: 50 },
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await up?.close();
  });

  test('the connection is cut after the first progress: the agent resumes and gets the rest of the progress and the result', async () => {
    const r = await relay(gw.dataUrl);
    try {
      const { client } = await agentClient(r.url, KEY);
      clients.push(client);
      const seen: Progress[] = [];
      const call = client.callTool({ name: 'up__steps', arguments: { n: 7 } }, undefined, { onprogress: (p) => seen.push(p), timeout: 30_000 });
      await eventually(() => seen.length === 1 && release, 'the first progress notification, the tool waiting');
      const posts = r.heads.length;
      r.cut();
      release!();
      const result = await call;
      assert.equal(text(result), 'done 7');
      assert.deepEqual(
        seen.map((p) => p.progress),
        [1, 2, 3],
        'every progress notification, in order, the missed ones replayed',
      );
      const resumed = r.heads.slice(posts).filter((h) => /^GET /.test(h) && /\r\nlast-event-id: \S+/i.test(h));
      assert.ok(resumed.length >= 1, `the agent resumed with Last-Event-ID: ${JSON.stringify(r.heads.slice(posts))}`);
      // the session goes on as before
      assert.ok((await client.listTools()).tools.some((t) => t.name === 'up__steps'));
    } finally {
      r.cut();
      await r.close();
    }
  });

  test('a call without progress that takes a while still gets its priming event early: cut while the tool waits, the agent resumes and gets the result', async () => {
    const r = await relay(gw.dataUrl);
    try {
      const { client } = await agentClient(r.url, KEY);
      clients.push(client);
      const before = r.received.length;
      const call = client.callTool({ name: 'up__steps', arguments: { n: 8 } }, undefined, { timeout: 30_000 });
      // the tool holds the call open until released: the priming event can only come before the answer
      await eventually(() => r.received.slice(before).some((x) => /\nretry: \d+/.test(x)) && release, 'the priming event while the tool waits');
      const posts = r.heads.length;
      r.cut();
      release!();
      assert.equal(text(await call), 'done 8');
      assert.ok(r.heads.slice(posts).some((h) => /^GET /.test(h) && /\r\nlast-event-id: \S+/i.test(h)), 'resumed with Last-Event-ID');
    } finally {
      r.cut();
      await r.close();
    }
  });

  test('a Last-Event-ID the session no longer keeps (or never had) is refused with a 400 that says why; another key cannot resume', async () => {
    const { client, transport } = await agentClient(gw.dataUrl, KEY);
    clients.push(client);
    const sid = transport.sessionId!;
    const get = (lastEventId: string, key = KEY) =>
      fetch(gw.dataUrl + '/mcp', { headers: { authorization: `Bearer ${key}`, accept: 'text/event-stream', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25', 'last-event-id': lastEventId } });
    for (const id of ['999999', 'not-an-id']) {
      const res = await get(id);
      assert.equal(res.status, 400);
      const body = (await res.json()) as { error: { message: string } };
      assert.match(body.error.message, /is not an event this session still keeps \(this session keeps its last 50 events, at most 4194304 bytes\); the stream cannot be resumed/);
    }
    const other = await get('1', 'sk-airlock-agent-other-000000000000000009');
    assert.equal(other.status, 401);
  });
});

describe('MCP gateway: tools/call on the wire (the fast path past the SDK transport, and what it leaves to the SDK)', () => {
  let gw: RunningGateway;
  let up: HttpUpstream;
  before(async () => {
    up = await startHttpUpstream();
    gw = await startGateway({ config: { mcp_servers: [{ name: 'calc', transport: 'http', url: up.url }], agents: [{ name: 'wire-bot', key: KEY, tools: ['calc__*'] }] } });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('an SSE stream with the session id, a priming event (id, retry) first, then the result with its id; invalid params are -32602 naming the field; a batch and a wrong Accept get the SDK answers', async () => {
    const { client, transport } = await agentClient(gw.dataUrl, KEY);
    try {
      const sid = transport.sessionId!;
      const post = (body: unknown, accept = 'application/json, text/event-stream') =>
        fetch(gw.dataUrl + '/mcp', { method: 'POST', headers: { authorization: `Bearer ${KEY}`, accept, 'content-type': 'application/json', 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' }, body: JSON.stringify(body) });
      const res = await post({ jsonrpc: '2.0', id: 'call-1', method: 'tools/call', params: { name: 'calc__add', arguments: { a: 2, b: 3 } } });
      assert.equal(res.status, 200);
      assert.equal(res.headers.get('content-type'), 'text/event-stream');
      assert.equal(res.headers.get('mcp-session-id'), sid);
      const events = (await res.text()).split('\n\n').filter(Boolean);
      assert.match(events[0]!, /^id: \d+\nretry: 1000\ndata: $/, 'the priming event first');
      const m = /^event: message\nid: (\d+)\ndata: (.*)$/.exec(events[1]!);
      assert.ok(m, events[1]);
      assert.deepEqual(JSON.parse(m[2]!), { result: { content: [{ type: 'text', text: '5' }] }, jsonrpc: '2.0', id: 'call-1' });
      assert.equal(events.length, 2);
      // invalid params: -32602 naming the field (the SDK's own validation would answer -32603)
      const odd = await post({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 5 } });
      assert.match(await odd.text(), /"id":2,"error":\{"code":-32602,"message":"Invalid params for tools\/call: \\"params\.name\\" must be a string/);
      const batch = await post([{ jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'calc__add', arguments: { a: 1, b: 1 } } }]);
      assert.match(await batch.text(), /"text":"2"/);
      const wrongAccept = await post({ jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'calc__add', arguments: { a: 1, b: 1 } } }, 'application/json');
      assert.equal(wrongAccept.status, 406);
      // the session still serves the SDK client
      assert.equal(text(await client.callTool({ name: 'calc__add', arguments: { a: 20, b: 22 } })), '42');
    } finally {
      await client.close();
    }
  });
});
