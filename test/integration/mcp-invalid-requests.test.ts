// /mcp answers what an agent got wrong in JSON-RPC's terms: a tools/call with invalid params is
// -32602 naming the field (on the fast path and through the SDK transport alike), and a body
// refused before the MCP handler (too large, nested too deep, not JSON) is a JSON-RPC error object
// with the HTTP status that fits, not the OpenAI routes' error shape (which those routes keep).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { CallToolResultSchema, ErrorCode, McpError } from '@modelcontextprotocol/sdk/types.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY = 'sk-airlock-agent-invalid-00000000000000000051';
const APP_KEY = 'sk-airlock-app-invalid-000000000000000000052';
const MAX_BODY = 16 * 1024;
const MAX_DEPTH = 32;
const VERSION = '2025-06-18';
const HEADERS = { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

interface RpcAnswer {
  status: number;
  type: string;
  /** the JSON-RPC messages of the answer (a JSON body, or the data of its SSE events) */
  messages: { jsonrpc?: string; id?: unknown; result?: unknown; error?: { code: number; message: string } }[];
  raw: string;
}

describe('/mcp: invalid tools/call params and refused bodies are JSON-RPC errors', () => {
  let up: HttpUpstream;
  let gw: RunningGateway;
  let sid: string;
  const clients: Client[] = [];

  const post = async (body: unknown, headers: Record<string, string> = {}, path = '/mcp'): Promise<RpcAnswer> => {
    const res = await fetch(gw.dataUrl + path, { method: 'POST', headers: { ...HEADERS, ...headers }, body: typeof body === 'string' ? body : JSON.stringify(body) });
    const raw = await res.text();
    const type = res.headers.get('content-type') ?? '';
    const messages = type.includes('text/event-stream')
      ? raw.split('\n').filter((l) => l.startsWith('data: ') && l.length > 6).map((l) => JSON.parse(l.slice(6)))
      : raw ? [JSON.parse(raw)].flat() : [];
    return { status: res.status, type, messages, raw };
  };
  const inSession = (body: unknown) => post(body, { 'mcp-session-id': sid, 'mcp-protocol-version': VERSION });

  before(async () => {
    up = await startHttpUpstream();
    gw = await startGateway({
      config: {
        settings: { max_body_bytes: MAX_BODY, limits: { max_json_depth: MAX_DEPTH } },
        mcp_servers: [{ name: 'fx', transport: 'http', url: up.url }],
        agents: [{ name: 'careless', key: KEY, tools: ['fx__*'] }],
        teams: [{ name: 'apps' }],
        keys: [{ name: 'app', key: APP_KEY, team: 'apps' }],
      },
    });
    const init = await fetch(gw.dataUrl + '/mcp', {
      method: 'POST',
      headers: HEADERS,
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: VERSION, capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
    });
    await init.text();
    sid = init.headers.get('mcp-session-id')!;
    assert.ok(sid, 'a session was opened');
    assert.equal((await inSession({ jsonrpc: '2.0', method: 'notifications/initialized' })).status, 202);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await up?.close();
  });

  const cases: [string, unknown, RegExp][] = [
    ['params a number', 5, /"params" must be an object .*\(got a number\)/],
    ['params a string', 'add', /"params" must be an object .*\(got a string\)/],
    ['params an array', [{ name: 'fx__add' }], /"params" must be an object .*\(got an array\)/],
    ['params missing', undefined, /"params" must be an object .*\(got nothing\)/],
    ['name missing', { arguments: { a: 1, b: 2 } }, /"params\.name" must be a string.*\(got nothing\)/],
    ['name a number', { name: 7 }, /"params\.name" must be a string.*\(got a number\)/],
    ['arguments a string', { name: 'fx__add', arguments: '{"a":1}' }, /"params\.arguments" must be an object.*\(got a string\)/],
    ['arguments an array', { name: 'fx__add', arguments: [1, 2] }, /"params\.arguments" must be an object.*\(got an array\)/],
    ['_meta a string', { name: 'fx__add', arguments: { a: 1, b: 2 }, _meta: 'x' }, /"params\._meta" must be an object/],
  ];
  for (const [what, params, message] of cases) {
    test(`raw tools/call, ${what}: -32602 naming the field, answered to the request's id`, async () => {
      const a = await inSession({ jsonrpc: '2.0', id: 'bad-1', method: 'tools/call', ...(params === undefined ? {} : { params }) });
      assert.equal(a.status, 200, a.raw);
      assert.equal(a.messages.length, 1, a.raw);
      const m = a.messages[0]!;
      assert.equal(m.id, 'bad-1');
      assert.equal(m.error?.code, ErrorCode.InvalidParams, a.raw);
      assert.match(m.error.message, /^Invalid params for tools\/call: /);
      assert.match(m.error.message, message);
    });
  }

  test('a tools/call with invalid params inside a batch (through the SDK transport) is -32602 too; the valid call beside it is answered', async () => {
    const a = await inSession([
      { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'fx__add', arguments: 'one and two' } },
      { jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'fx__add', arguments: { a: 1, b: 2 } } },
    ]);
    assert.equal(a.status, 200, a.raw);
    const byId = new Map(a.messages.map((m) => [m.id, m]));
    assert.equal(byId.get(11)?.error?.code, ErrorCode.InvalidParams, a.raw);
    assert.match(byId.get(11)!.error!.message, /"params\.arguments" must be an object/);
    assert.deepEqual((byId.get(12)?.result as { content: unknown[] }).content, [{ type: 'text', text: '3' }], a.raw);
  });

  test('the session still serves a valid call after the invalid ones', async () => {
    const a = await inSession({ jsonrpc: '2.0', id: 20, method: 'tools/call', params: { name: 'fx__add', arguments: { a: 2, b: 40 } } });
    assert.deepEqual((a.messages[0]?.result as { content: unknown[] }).content, [{ type: 'text', text: '42' }], a.raw);
  });

  test('the MCP SDK client: a call with a name that is no string, or arguments that are no object, rejects with McpError -32602 naming the field', async () => {
    const { client } = await agentClient(gw.dataUrl, KEY);
    clients.push(client);
    const invalidParams = (field: RegExp) => (e: unknown) => {
      assert.ok(e instanceof McpError, String(e));
      assert.equal(e.code, ErrorCode.InvalidParams);
      assert.match(e.message, field);
      return true;
    };
    await assert.rejects(client.callTool({ name: 7 as unknown as string, arguments: {} }), invalidParams(/"params\.name" must be a string/));
    await assert.rejects(client.request({ method: 'tools/call', params: { name: 'fx__add', arguments: [1, 2] as unknown as Record<string, unknown> } }, CallToolResultSchema), invalidParams(/"params\.arguments" must be an object/));
    const ok = await client.callTool({ name: 'fx__add', arguments: { a: 1, b: 1 } });
    assert.deepEqual(ok.content, [{ type: 'text', text: '2' }]);
  });

  test('a body over max_body_bytes: 413 with a JSON-RPC error naming the limit', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'fx__add', arguments: { pad: 'x'.repeat(2 * MAX_BODY) } } });
    for (const path of ['/mcp', '/mcp/v/any']) {
      const a = await post(big, { 'mcp-session-id': sid, 'mcp-protocol-version': VERSION }, path);
      assert.equal(a.status, 413, a.raw);
      assert.match(a.type, /application\/json/);
      assert.deepEqual(Object.keys(a.messages[0]!).sort(), ['error', 'id', 'jsonrpc'], a.raw);
      assert.equal(a.messages[0]!.jsonrpc, '2.0');
      assert.equal(a.messages[0]!.id, null);
      assert.equal(a.messages[0]!.error!.code, -32000);
      assert.match(a.messages[0]!.error!.message, new RegExp(`larger than the limit of ${MAX_BODY} bytes`));
    }
  });

  test('a body nested past limits.max_json_depth, or not JSON at all: 400 with a JSON-RPC parse error (-32700) that says why', async () => {
    const deep = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"fx__add","arguments":{"a":${'['.repeat(MAX_DEPTH * 2)}${']'.repeat(MAX_DEPTH * 2)}}}}`;
    const d = await inSession(deep);
    assert.equal(d.status, 400, d.raw);
    assert.deepEqual(d.messages, [{ jsonrpc: '2.0', id: null, error: { code: -32700, message: `The request body nests arrays and objects more than ${MAX_DEPTH} levels deep.` } }]);
    const p = await inSession('{"jsonrpc":"2.0","id":1,');
    assert.equal(p.status, 400, p.raw);
    assert.equal(p.messages[0]!.jsonrpc, '2.0');
    assert.equal(p.messages[0]!.id, null);
    assert.equal(p.messages[0]!.error!.code, -32700);
    assert.match(p.messages[0]!.error!.message, /not valid JSON/);
  });

  test('the OpenAI routes keep their own error shape for the same bodies', async () => {
    const app = { authorization: `Bearer ${APP_KEY}` };
    const big = await post(JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x'.repeat(2 * MAX_BODY) }] }), app, '/v1/chat/completions');
    assert.equal(big.status, 413, big.raw);
    assert.deepEqual(big.messages, [{ error: { message: `The request body is larger than the limit of ${MAX_BODY} bytes.`, type: 'invalid_request_error', code: 'body_too_large', param: null } }]);
    const deep = await post(`{"model":"m","messages":${'['.repeat(MAX_DEPTH * 2)}${']'.repeat(MAX_DEPTH * 2)}}`, app, '/v1/chat/completions');
    assert.equal(deep.status, 400, deep.raw);
    assert.equal((deep.messages[0] as { error?: { code?: string } }).error?.code, 'too_deeply_nested', deep.raw);
  });
});
