// The MCP gateway end to end: the real gateway process, the real npm MCP servers
// (server-everything, server-filesystem) as supervised stdio upstreams, an HTTP upstream built
// with the SDK, and agents using the SDK's Client over Streamable HTTP on /mcp.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { EVERYTHING, FILESYSTEM, agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const KEY_A = 'sk-airlock-agent-a-00000000000000000000001';
const KEY_B = 'sk-airlock-agent-b-00000000000000000000002';
const KEY_ENV = 'sk-airlock-agent-env-000000000000000000003';
const CANARY = 'canary-of-the-gateway-environment-7f3a';
const FILE_SECRET = 'token-for-everything-9c1e';

const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

interface LedgerRow {
  request_id: string;
  kind: string;
  key_name: string;
  team: string | null;
  session: string | null;
  requested_model: string;
  endpoint: string | null;
  upstream_model: string | null;
  status: number;
  error_class: string | null;
  args_bytes: number | null;
  result_bytes: number | null;
  latency_ms: number;
}
function ledgerRows(gw: RunningGateway, session: string): LedgerRow[] {
  const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true });
  try {
    return db.prepare(`SELECT * FROM ledger WHERE session = ? ORDER BY ts, request_id`).all(session) as LedgerRow[];
  } finally {
    db.close();
  }
}

describe('MCP gateway', () => {
  let gw: RunningGateway;
  let share: string;
  let httpUp: HttpUpstream;
  const clients: Client[] = [];
  const connect = async (key: string | undefined, headers: Record<string, string> = {}) => {
    const c = await agentClient(gw.dataUrl, key, headers);
    clients.push(c.client);
    return c;
  };

  before(async () => {
    share = tmpDir('airlock-share-');
    fs.mkdirSync(path.join(share, 'docs'));
    fs.writeFileSync(path.join(share, 'docs', 'hello.txt'), 'hello from the share');
    fs.writeFileSync(path.join(path.dirname(share), `${path.basename(share)}-outside.txt`), 'outside the share');
    httpUp = await startHttpUpstream();
    gw = await startGateway({
      env: { CANARY_VAR: CANARY, EVERYTHING_TOKEN: FILE_SECRET },
      config: {
        teams: [{ name: 'support' }],
        mcp_servers: [
          { name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'], env: { SOME_TOKEN: '${env:EVERYTHING_TOKEN}' } },
          { name: 'slow', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'], call_timeout_ms: 300 },
          { name: 'files', transport: 'stdio', command: process.execPath, args: [FILESYSTEM, share] },
          { name: 'calc', transport: 'http', url: httpUp.url, headers: { Authorization: 'Bearer upstream-secret-1' } },
        ],
        agents: [
          {
            name: 'support-bot',
            team: 'support',
            key: KEY_A,
            tools: ['every__echo', 'every__get-*', 'every__trigger-long-running-operation', 'every__trigger-sampling-request', 'files__read_*', 'files__list_directory', 'calc__*', 'slow__trigger-long-running-operation'],
            deny: ['every__get-env', 'every__get-tiny-image'],
            resources: ['every'],
          },
          { name: 'file-bot', key: KEY_B, tools: ['files__*'], deny: ['files__write_*', 'files__edit_*', 'files__move_*', 'files__create_*'] },
          { name: 'env-bot', key: KEY_ENV, tools: ['every__get-env'] },
        ],
        mcp_virtual_servers: [{ name: 'readonly', tools: ['*__read_*', 'every__echo'] }],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
    await httpUp?.close();
    // the file beside the share (tmpDir removes the share itself)
    if (share) fs.rmSync(`${share}-outside.txt`, { force: true });
  });

  test('no key: 401 with WWW-Authenticate: Bearer; a wrong key: 401 invalid_token; nothing about the servers is revealed', async () => {
    const init = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } };
    const post = (headers: Record<string, string>) =>
      fetch(gw.dataUrl + '/mcp', { method: 'POST', headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers }, body: JSON.stringify(init) });
    const none = await post({});
    assert.equal(none.status, 401);
    assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="airlock-mcp"');
    const wrong = await post({ authorization: 'Bearer sk-airlock-not-an-agent-0000000000000000' });
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate') ?? '', /^Bearer realm="airlock-mcp", error="invalid_token"/);
    const body = (await wrong.json()) as { error: { message: string } };
    assert.doesNotMatch(body.error.message, /every|files|calc/);
    // an app key is not an agent key; the SDK client refuses to connect without one
    await assert.rejects(agentClient(gw.dataUrl, 'sk-airlock-not-an-agent-0000000000000000'));
  });

  test('an agent lists exactly its tools (patterns, default deny, deny wins, always server__tool) and calls them', async () => {
    const { client } = await connect(KEY_A);
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name.startsWith('files__')) && (await client.listTools()).tools.some((t) => t.name.startsWith('calc__')), 'every server to be up');
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.ok(names.includes('every__echo'));
    assert.ok(names.includes('every__get-sum'));
    assert.ok(names.includes('files__read_text_file'));
    assert.ok(names.includes('files__list_directory'));
    assert.ok(names.includes('calc__add') && names.includes('calc__whoami'));
    for (const n of names) assert.match(n, /^(every|files|calc|slow)__[A-Za-z0-9_-]+$/, n);
    assert.ok(!names.includes('every__get-env'), 'denied: deny wins over every__get-*');
    assert.ok(!names.includes('every__get-tiny-image'));
    assert.ok(!names.some((n) => n.startsWith('files__write') || n === 'files__directory_tree'), 'not allowed: default deny');
    assert.ok(!names.includes('slow__echo'));
    const echo = await client.callTool({ name: 'every__echo', arguments: { message: 'über 🙂' } });
    assert.equal(echo.isError, undefined);
    assert.match(text(echo), /über 🙂/);
    assert.equal(text(await client.callTool({ name: 'calc__add', arguments: { a: 2, b: 40 } })), '42');
    // the tool's schema and annotations pass through
    const lro = (await client.listTools()).tools.find((t) => t.name === 'every__trigger-long-running-operation')!;
    assert.equal(lro.annotations?.readOnlyHint, true);
    assert.ok(lro.inputSchema.properties && 'duration' in lro.inputSchema.properties);
  });

  test('a denied or unknown tool called anyway: an error result saying it is not permitted, and a ledger row', async () => {
    const { client } = await connect(KEY_A, { 'x-airlock-session': 'wf-denied' });
    for (const name of ['every__get-env', 'files__write_file', 'every__no-such-tool', 'get-env', 'EVERY__echo']) {
      const r = await client.callTool({ name, arguments: { path: path.join(share, 'x.txt'), content: 'x' } });
      assert.equal(r.isError, true, name);
      assert.match(text(r), /not permitted for agent "support-bot"/, name);
    }
    assert.equal(fs.existsSync(path.join(share, 'x.txt')), false);
    const rows = await eventually(() => { const r = ledgerRows(gw, 'wf-denied'); return r.length === 5 ? r : undefined; }, 'five ledger rows');
    for (const r of rows) {
      assert.equal(r.kind, 'mcp_tool');
      assert.equal(r.status, 403);
      assert.equal(r.error_class, 'tool_not_permitted');
      assert.equal(r.key_name, 'support-bot');
    }
  });

  test('every call is recorded: agent, team, x-airlock-session, server, tool, status, argument and result sizes', async () => {
    const { client } = await connect(KEY_A, { 'x-airlock-session': 'wf-ledger' });
    await client.callTool({ name: 'every__echo', arguments: { message: 'x'.repeat(1000) } });
    await client.callTool({ name: 'calc__add', arguments: { a: 1, b: 2 } });
    const rows = await eventually(() => { const r = ledgerRows(gw, 'wf-ledger'); return r.length === 2 ? r : undefined; }, 'two ledger rows');
    const echo = rows.find((r) => r.requested_model === 'every__echo')!;
    assert.equal(echo.team, 'support');
    assert.equal(echo.endpoint, 'every');
    assert.equal(echo.upstream_model, 'echo');
    assert.equal(echo.status, 200);
    assert.equal(echo.error_class, null);
    assert.ok(echo.args_bytes! > 1000 && echo.args_bytes! < 1100, String(echo.args_bytes));
    assert.ok(echo.result_bytes! > 1000, String(echo.result_bytes));
    const add = rows.find((r) => r.requested_model === 'calc__add')!;
    assert.equal(add.endpoint, 'calc');
    assert.equal(add.upstream_model, 'add');
  });

  test("a session is bound to its agent: B's key with A's Mcp-Session-Id gets 404; DELETE ends a session", async () => {
    const { client, transport } = await connect(KEY_A);
    await client.listTools();
    const sid = transport.sessionId!;
    assert.ok(sid);
    const list = (key: string) =>
      fetch(gw.dataUrl + '/mcp', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${key}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
      });
    const stolen = await list(KEY_B);
    assert.equal(stolen.status, 404);
    assert.doesNotMatch(await stolen.text(), /every__|files__/);
    const own = await list(KEY_A);
    assert.equal(own.status, 200);
    assert.match(await own.text(), /every__echo/);
    // an unsupported protocol version is refused
    const old = await fetch(gw.dataUrl + '/mcp', {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEY_A}`, 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 8, method: 'tools/list' }),
    });
    assert.equal(old.status, 400);
    await transport.terminateSession();
    assert.equal((await list(KEY_A)).status, 404);
    const unknown = await fetch(gw.dataUrl + '/mcp', { method: 'GET', headers: { accept: 'text/event-stream', authorization: `Bearer ${KEY_A}`, 'mcp-session-id': 'no-such-session' } });
    assert.equal(unknown.status, 404);
  });

  test('a virtual server (/mcp/v/NAME) offers what both it and the agent allow; its sessions stay on its path', async () => {
    const { client, transport } = await agentClient(gw.dataUrl, KEY_A, {}, {}, undefined, '/mcp/v/readonly');
    clients.push(client);
    const names = (await client.listTools()).tools.map((t) => t.name).sort();
    assert.ok(names.includes('every__echo') && names.includes('files__read_text_file'), names.join());
    for (const n of names) assert.ok(n === 'every__echo' || /^files__read_/.test(n), n);
    const sum = await client.callTool({ name: 'every__get-sum', arguments: { a: 1, b: 2 } });
    assert.equal(sum.isError, true, 'allowed for the agent, not offered by the virtual server');
    assert.match(text(sum), /not permitted/);
    const b = await agentClient(gw.dataUrl, KEY_B, {}, {}, undefined, '/mcp/v/readonly');
    clients.push(b.client);
    assert.ok((await b.client.listTools()).tools.every((t) => /^files__read_/.test(t.name)));
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEY_A}`, 'mcp-protocol-version': '2025-11-25' };
    const other = await fetch(gw.dataUrl + '/mcp', { method: 'POST', headers: { ...h, 'mcp-session-id': transport.sessionId! }, body: JSON.stringify({ jsonrpc: '2.0', id: 3, method: 'tools/list' }) });
    assert.equal(other.status, 404, 'a virtual server session is not usable on /mcp');
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    assert.equal((await fetch(gw.dataUrl + '/mcp/v/nope', { method: 'POST', headers: h, body: init })).status, 404);
  });

  test('a foreign Origin and a non-loopback Host are refused (DNS rebinding)', async () => {
    const init = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } });
    const h = { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${KEY_A}` };
    const foreign = await fetch(gw.dataUrl + '/mcp', { method: 'POST', headers: { ...h, origin: 'http://evil.example' }, body: init });
    assert.equal(foreign.status, 403);
    const port = new URL(gw.dataUrl).port;
    const rebound = await new Promise<number>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port, path: '/mcp', method: 'POST', headers: { ...h, host: `evil.example:${port}`, origin: `http://evil.example:${port}` } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.end(init);
    });
    assert.equal(rebound, 421);
  });

  test('filesystem: the share is readable, paths outside it are refused by the server\'s roots', async () => {
    const { client } = await connect(KEY_B);
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name === 'files__read_text_file'), 'files up');
    const ok = await client.callTool({ name: 'files__read_text_file', arguments: { path: path.join(share, 'docs', 'hello.txt') } });
    assert.equal(text(ok), 'hello from the share');
    const outside = `${share}-outside.txt`;
    for (const p of [path.join(share, '..', path.basename(outside)), outside, path.join(share, 'docs', '..', '..', path.basename(outside)), '/etc/passwd']) {
      const r = await client.callTool({ name: 'files__read_text_file', arguments: { path: p } });
      assert.equal(r.isError, true, p);
      assert.doesNotMatch(text(r), /outside the share|root:/, p);
    }
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(!names.includes('files__write_file') && names.includes('files__directory_tree'));
  });

  test('a stdio server gets only the environment it is given: its env secret, not the gateway\'s variables', async () => {
    const { client } = await connect(KEY_ENV);
    const r = text(await client.callTool({ name: 'every__get-env', arguments: {} }));
    assert.match(r, new RegExp(FILE_SECRET));
    assert.doesNotMatch(r, new RegExp(CANARY));
    assert.doesNotMatch(r, /AIRLOCK_ADMIN_TOKEN|test-admin-token/);
  });

  test('progress passes through; cancellation by the agent ends the call (ledger 499)', async () => {
    const { client } = await connect(KEY_A, { 'x-airlock-session': 'wf-progress' });
    const seen: { progress: number; total?: number }[] = [];
    const r = await client.callTool({ name: 'every__trigger-long-running-operation', arguments: { duration: 0.3, steps: 4 } }, undefined, { onprogress: (p) => seen.push(p) });
    assert.match(text(r), /completed/);
    // the SDK's client runs notification handlers a microtask after reading them, so the progress
    // sent just before the result may arrive after its request is settled: the ones before it pass
    assert.ok(seen.length >= 3, JSON.stringify(seen));
    seen.forEach((p, i) => assert.deepEqual(p, { progress: i + 1, total: 4 }));
    const ac = new AbortController();
    const cancelled = client.callTool({ name: 'every__trigger-long-running-operation', arguments: { duration: 30, steps: 300 } }, undefined, {
      signal: ac.signal,
      onprogress: () => ac.abort('enough'),
    });
    await assert.rejects(cancelled);
    const rows = await eventually(() => { const x = ledgerRows(gw, 'wf-progress'); return x.length === 2 ? x : undefined; }, 'two rows');
    assert.deepEqual(rows.map((x) => x.status).sort(), [200, 499]);
  });

  test("an upstream's sampling request during a call is relayed to the calling agent; an agent without sampling gets an error", async () => {
    const { CreateMessageRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const asked: string[] = [];
    const { client } = await agentClient(gw.dataUrl, KEY_A, {}, { sampling: {} }, (c) =>
      c.setRequestHandler(CreateMessageRequestSchema, (req) => {
        const m = req.params.messages[0]?.content;
        asked.push(m && 'text' in m ? String(m.text) : '');
        return { role: 'assistant', content: { type: 'text', text: 'sampled by the agent' }, model: 'agent-model' };
      }),
    );
    clients.push(client);
    const r = await client.callTool({ name: 'every__trigger-sampling-request', arguments: { prompt: 'hi there', maxTokens: 10 } });
    assert.equal(r.isError, undefined, text(r));
    assert.match(text(r), /sampled by the agent/);
    assert.equal(asked.length, 1);
    assert.match(asked[0]!, /hi there/);
    const { client: plain } = await connect(KEY_A);
    const refused = await plain.callTool({ name: 'every__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } }).catch((e: Error) => e);
    assert.match(refused instanceof Error ? refused.message : text(refused), /does not support sampling/);
  });

  test('sampling over a shared stdio server with two agent sessions calling at once: each sampling request reaches the session whose call asked for it', async () => {
    const { CreateMessageRequestSchema } = await import('@modelcontextprotocol/sdk/types.js');
    const asked = { a: [] as string[], b: [] as string[] };
    const sessionOf = async (who: 'a' | 'b', onAsk?: () => Promise<void>) => {
      const { client } = await agentClient(gw.dataUrl, KEY_A, {}, { sampling: {} }, (c) =>
        c.setRequestHandler(CreateMessageRequestSchema, async (req) => {
          const m = req.params.messages[0]?.content;
          asked[who].push(m && 'text' in m ? String(m.text) : '');
          await onAsk?.();
          return { role: 'assistant', content: { type: 'text', text: `answered by session ${who}` }, model: 'agent-model' };
        }),
      );
      clients.push(client);
      return client;
    };
    let callB: Promise<unknown> | undefined;
    const b = await sessionOf('b');
    // while session a is asked to sample, session b calls the same tool of the same process
    const a = await sessionOf('a', async () => {
      callB ??= b.callTool({ name: 'every__trigger-sampling-request', arguments: { prompt: 'from b', maxTokens: 5 } });
      await new Promise((r) => setTimeout(r, 300)); // room for b's call to reach the gateway meanwhile
    });
    const ra = await a.callTool({ name: 'every__trigger-sampling-request', arguments: { prompt: 'from a', maxTokens: 5 } });
    const rb = (await callB) as Awaited<typeof ra>;
    assert.equal(ra.isError, undefined, text(ra));
    assert.equal(rb.isError, undefined, text(rb));
    assert.match(text(ra), /answered by session a/);
    assert.match(text(rb), /answered by session b/);
    assert.equal(asked.a.length, 1);
    assert.match(asked.a[0]!, /from a/);
    assert.equal(asked.b.length, 1);
    assert.match(asked.b[0]!, /from b/);
  });

  test('an upstream that hangs: the per-call timeout gives an error result (504 in the ledger)', async () => {
    const { client } = await connect(KEY_A, { 'x-airlock-session': 'wf-slow' });
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name === 'slow__trigger-long-running-operation'), 'slow up');
    const r = await client.callTool({ name: 'slow__trigger-long-running-operation', arguments: { duration: 20, steps: 2 } });
    assert.equal(r.isError, true);
    assert.match(text(r), /timed out after 300 ms/);
    const [row] = await eventually(() => { const x = ledgerRows(gw, 'wf-slow'); return x.length === 1 ? x : undefined; }, 'row');
    assert.equal(row!.status, 504);
    assert.equal(row!.error_class, 'timeout');
  });

  test('a stdio server killed mid-call: an error result, it is restarted (stderr kept), and works again', async () => {
    const { client } = await connect(KEY_A, { 'x-airlock-session': 'wf-crash' });
    const before = (await gw.admin('GET', '/mcp-servers/every/status')).body as { pid: number; restarts: number; state: string };
    assert.equal(before.state, 'ready');
    assert.ok(alive(before.pid));
    let killed = false;
    const r = await client.callTool({ name: 'every__trigger-long-running-operation', arguments: { duration: 60, steps: 600 } }, undefined, {
      onprogress: () => {
        if (!killed) process.kill(before.pid, 'SIGKILL');
        killed = true;
      },
    });
    assert.equal(r.isError, true);
    assert.match(text(r), /closed the connection during the call/);
    const after = await eventually(async () => {
      const s = (await gw.admin('GET', '/mcp-servers/every/status')).body as { pid: number; restarts: number; state: string; stderr: string[] };
      return s.state === 'ready' && s.pid !== before.pid ? s : undefined;
    }, 'the restarted server', 20_000);
    assert.equal(after.restarts, before.restarts + 1);
    assert.ok(after.stderr.some((l) => /process exited/.test(l)), after.stderr.join('\n'));
    assert.ok(after.stderr.some((l) => /Starting default \(STDIO\) server/.test(l)), 'its own stderr is captured');
    assert.match(text(await client.callTool({ name: 'every__echo', arguments: { message: 'back' } })), /back/);
    const rows = await eventually(() => { const x = ledgerRows(gw, 'wf-crash'); return x.length === 2 ? x : undefined; }, 'rows');
    assert.deepEqual(rows.map((x) => [x.status, x.error_class]), [[502, 'upstream_closed'], [200, null]]);
  });

  test('concurrent calls from several sessions each get their own answer', async () => {
    const sessions = await Promise.all([connect(KEY_A), connect(KEY_A), connect(KEY_B)]);
    const calls: Promise<void>[] = [];
    for (let i = 0; i < 60; i++) {
      const s = sessions[i % 3]!;
      calls.push(
        (async () => {
          if (i % 3 === 2) {
            const r = await s.client.callTool({ name: 'files__read_text_file', arguments: { path: path.join(share, 'docs', 'hello.txt') } });
            assert.equal(text(r), 'hello from the share');
          } else if (i % 2) {
            assert.match(text(await s.client.callTool({ name: 'every__echo', arguments: { message: `m-${i}` } })), new RegExp(`m-${i}$`));
          } else {
            assert.equal(text(await s.client.callTool({ name: 'calc__add', arguments: { a: i, b: 1000 } })), String(i + 1000));
          }
        })(),
      );
    }
    await Promise.all(calls);
  });

  test('HTTP upstream: one upstream session per agent session, re-initialised when the upstream loses it; gateway credentials only', async () => {
    const a1 = await connect(KEY_A);
    const a2 = await connect(KEY_A);
    const s1 = text(await a1.client.callTool({ name: 'calc__whoami', arguments: {} }));
    const s2 = text(await a2.client.callTool({ name: 'calc__whoami', arguments: {} }));
    assert.notEqual(s1, s2);
    assert.equal(text(await a1.client.callTool({ name: 'calc__whoami', arguments: {} })), s1, 'the same upstream session for the same agent session');
    await httpUp.forgetSessions();
    const s1b = text(await a1.client.callTool({ name: 'calc__whoami', arguments: {} }));
    assert.notEqual(s1b, s1, 'a new upstream session');
    assert.equal(text(await a1.client.callTool({ name: 'calc__add', arguments: { a: 1, b: 1 } })), '2');
    // the upstream saw the configured credential, never an agent's key
    assert.ok(httpUp.headersSeen.length > 0);
    for (const h of httpUp.headersSeen) {
      assert.equal(h.authorization, 'Bearer upstream-secret-1');
      assert.doesNotMatch(JSON.stringify(h), /sk-airlock-/);
    }
  });

  test('resources: listed and read from the servers the agent may read; others refused', async () => {
    const { client } = await connect(KEY_A);
    const { resources } = await client.listResources();
    assert.ok(resources.length > 0);
    const first = resources[0]!;
    const read = await client.readResource({ uri: first.uri });
    assert.ok(read.contents.length > 0);
    const b = await connect(KEY_B);
    assert.deepEqual((await b.client.listResources()).resources, []);
    await assert.rejects(b.client.readResource({ uri: first.uri }), /not available to this agent/);
  });

  test('secrets in env and headers are stored encrypted, never exported', async () => {
    const db = fs.readFileSync(path.join(gw.dataDir, 'airlock.db'));
    const wal = fs.existsSync(path.join(gw.dataDir, 'airlock.db-wal')) ? fs.readFileSync(path.join(gw.dataDir, 'airlock.db-wal')) : Buffer.alloc(0);
    for (const secret of ['upstream-secret-1', FILE_SECRET, KEY_A]) {
      assert.equal(db.includes(secret), false, secret);
      assert.equal(wal.includes(secret), false, secret);
    }
    const exp = await gw.admin('GET', '/config');
    const calc = (exp.body.mcp_servers as { name: string; headers?: Record<string, string | null> }[]).find((m) => m.name === 'calc')!;
    assert.deepEqual(calc.headers, { Authorization: null });
    const every = (exp.body.mcp_servers as { name: string; env?: Record<string, string | null> }[]).find((m) => m.name === 'every')!;
    assert.deepEqual(every.env, { SOME_TOKEN: '${env:EVERYTHING_TOKEN}' });
    assert.doesNotMatch(JSON.stringify(exp.body), /sk-airlock-agent/);
  });
});

describe('MCP gateway: configuration changes and shutdown', () => {
  test('permissions changed by an admin apply to open sessions (list_changed), rate limits refuse with an error result, and stopping the gateway stops its servers', async () => {
    const gw = await startGateway({
      config: {
        mcp_servers: [{ name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'], tool_calls_per_minute: 1000 }],
        agents: [{ name: 'bot', key: KEY_A, tools: ['every__echo'], calls_per_minute: 3 }],
      },
    });
    const { client } = await agentClient(gw.dataUrl, KEY_A, { 'x-airlock-session': 'wf-limits' });
    try {
      let changed = 0;
      const { ToolListChangedNotificationSchema } = await import('@modelcontextprotocol/sdk/types.js');
      client.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++);
      await eventually(async () => (await client.listTools()).tools.length === 1, 'echo visible');
      // rate limit: 3 per minute for this agent, a 4th is refused
      const results = await Promise.all([1, 2, 3, 4].map((i) => client.callTool({ name: 'every__echo', arguments: { message: `r${i}` } })));
      const refused = results.filter((r) => r.isError);
      assert.equal(refused.length, 1);
      assert.match(text(refused[0]), /Rate limit exceeded: agent "bot" may make 3 tool calls per minute; retry in \d+ s/);
      const rows = await eventually(() => { const x = ledgerRows(gw, 'wf-limits'); return x.length === 4 ? x : undefined; }, 'rows');
      assert.deepEqual(rows.map((r) => r.status).sort(), [200, 200, 200, 429]);
      // an admin widens the agent's tools: the open session is told, and sees them
      const put = await gw.admin('PUT', '/agents/bot', { name: 'bot', tools: ['every__echo', 'every__get-sum'], calls_per_minute: 100 });
      assert.equal(put.status, 200, JSON.stringify(put.body));
      assert.deepEqual(put.body.allowed_tools.sort(), ['every__echo', 'every__get-sum']);
      await eventually(() => changed > 0, 'notifications/tools/list_changed');
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['every__echo', 'every__get-sum']);
      const status = (await gw.admin('GET', '/mcp-servers/every/status')).body as { pid: number };
      assert.ok(alive(status.pid));
      await client.close();
      assert.equal((await gw.stop()).code, 0);
      assert.equal(alive(status.pid), false, 'the stdio server is stopped with the gateway');
    } finally {
      await client.close().catch(() => undefined);
      await gw.stop();
    }
  });
});


describe('MCP gateway: admin API', () => {
  let gw: RunningGateway;
  let httpUp: HttpUpstream;
  let adminToken: string;
  before(async () => {
    httpUp = await startHttpUpstream();
    gw = await startGateway({ config: { settings: { mcp_session_idle_ms: 1000 } } });
    const t = await gw.admin('POST', '/tokens', { name: 'mcp-admin', role: 'admin' });
    assert.equal(t.status, 201, JSON.stringify(t.body));
    adminToken = t.body.token as string;
  });
  after(async () => {
    await gw?.stop();
    await httpUp?.close();
  });
  const asAdmin = (method: string, p: string, body?: unknown) => gw.admin(method, p, body, { authorization: `Bearer ${adminToken}` });
  const stdio = { name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] };

  test('a stdio server runs a program on this machine: only an owner may register, change, test or remove one; an admin may manage URL servers', async () => {
    for (const [method, p, body] of [['POST', '/mcp-servers', stdio], ['POST', '/mcp-servers/test', stdio]] as const) {
      const r = await asAdmin(method, p, body);
      assert.equal(r.status, 403, JSON.stringify(r.body));
      assert.match(r.body.error.message, /Only an owner may register, change or remove a stdio MCP server/);
    }
    const calc = await asAdmin('POST', '/mcp-servers', { name: 'calc', transport: 'http', url: httpUp.url, headers: { Authorization: 'Bearer up-1' } });
    assert.equal(calc.status, 201, JSON.stringify(calc.body));
    assert.deepEqual(calc.body.headers, { Authorization: null }, 'the secret is not returned');
    const owner = await gw.admin('POST', '/mcp-servers', stdio);
    assert.equal(owner.status, 201, JSON.stringify(owner.body));
    assert.equal((await asAdmin('PUT', '/mcp-servers/every', { ...stdio, args: [EVERYTHING] })).status, 403);
    assert.equal((await asAdmin('DELETE', '/mcp-servers/every')).status, 403);
    const st = await eventually(async () => {
      const r = await gw.admin('GET', '/mcp-servers/every/status');
      return r.body.state === 'ready' ? r.body : undefined;
    }, 'every ready');
    assert.ok(st.catalog.tools.some((t: { name: string; upstream_name: string }) => t.name === 'every__echo' && t.upstream_name === 'echo'));
    const list = await gw.admin('GET', '/mcp-servers');
    assert.deepEqual(list.body.data.map((m: { name: string }) => m.name), ['calc', 'every']);
  });

  test('POST /config/apply is held to the same rule: an admin cannot add, change, remove or switch to a stdio server through the file', async () => {
    const marker = path.join(tmpDir('airlock-stdio-marker-'), 'ran');
    const planted = { name: 'planted', transport: 'stdio', command: process.execPath, args: ['-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`] };
    const current = (await gw.admin('GET', '/config')).body.mcp_servers as { name: string; transport: string }[];
    const every = current.find((m) => m.name === 'every')!;
    const calc = current.find((m) => m.name === 'calc')!;
    const attempts: [string, unknown[]][] = [
      ['adds a stdio server', [...current, planted]],
      ["changes the owner's stdio server", current.map((m) => (m.name === 'every' ? { ...every, args: ['-e', `require('fs').writeFileSync(${JSON.stringify(marker)}, 'ran')`] } : m))],
      ['removes a stdio server', [calc]],
      ['switches an http server to stdio', current.map((m) => (m.name === 'calc' ? { name: 'calc', transport: 'stdio', command: process.execPath, args: ['-e', '0'] } : m))],
    ];
    for (const [what, mcp_servers] of attempts) {
      for (const q of ['', '?dry_run=true']) {
        const r = await asAdmin('POST', `/config/apply${q}`, { mcp_servers });
        assert.equal(r.status, 403, `${what}${q}: ${JSON.stringify(r.body)}`);
        assert.match(r.body.error.message, /Only an owner may register, change or remove a stdio MCP server/, what);
      }
    }
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(fs.existsSync(marker), false, 'no program ran');
    const after = (await gw.admin('GET', '/config')).body.mcp_servers as unknown[];
    assert.deepEqual(after, current, 'nothing changed');
    // the file with the stdio server as it is, and an http server changed: the admin's to apply
    const ok = await asAdmin('POST', '/config/apply', { mcp_servers: current.map((m) => (m.name === 'calc' ? { ...calc, call_timeout_ms: 7000 } : m)) });
    assert.equal(ok.status, 200, JSON.stringify(ok.body));
    assert.deepEqual(ok.body.changes, ['~ mcp_servers/calc (call_timeout_ms)']);
    // and an owner may do what the admin may not
    const owner = await gw.admin('POST', '/config/apply?dry_run=true', { mcp_servers: [...current, planted] });
    assert.equal(owner.status, 200, JSON.stringify(owner.body));
  });

  test('Test: initialize and list tools without saving; a failing command says why', async () => {
    const ok = await gw.admin('POST', '/mcp-servers/test', { ...stdio, name: 'probe' });
    assert.equal(ok.body.ok, true, JSON.stringify(ok.body));
    assert.ok(ok.body.tools.some((t: { name: string }) => t.name === 'echo'));
    const bad = await gw.admin('POST', '/mcp-servers/test', { name: 'probe', transport: 'stdio', command: process.execPath, args: ['-e', 'console.error("boom: no config"); process.exit(3)'] });
    assert.equal(bad.body.ok, false);
    assert.ok(bad.body.error);
    assert.ok(bad.body.stderr.some((l: string) => /boom: no config/.test(l)), JSON.stringify(bad.body));
    const http = await asAdmin('POST', '/mcp-servers/test', { name: 'calc2', transport: 'http', url: httpUp.url });
    assert.deepEqual(http.body.tools.map((t: { name: string }) => t.name).sort(), ['add', 'whoami']);
    assert.equal((await gw.admin('GET', '/mcp-servers/probe')).status, 404, 'nothing saved');
  });

  test('bad input names the field; ${env:…} from the admin API only AIRLOCK_SECRET_*; a stored header is not sent to a new host', async () => {
    const dup = await gw.admin('POST', '/mcp-servers', { name: 'a__b', transport: 'http', url: httpUp.url });
    assert.equal(dup.status, 400);
    assert.equal(dup.body.error.issues[0].path, 'name');
    const env = await gw.admin('POST', '/mcp-servers', { name: 'e', transport: 'http', url: httpUp.url, headers: { Authorization: '${env:HOME}' } });
    assert.equal(env.status, 400, JSON.stringify(env.body));
    assert.match(JSON.stringify(env.body), /AIRLOCK_SECRET_/);
    const keep = await asAdmin('PUT', '/mcp-servers/calc', { name: 'calc', transport: 'http', url: httpUp.url, headers: { Authorization: null }, call_timeout_ms: 5000 });
    assert.equal(keep.status, 200, JSON.stringify(keep.body));
    const moved = await asAdmin('PUT', '/mcp-servers/calc', { name: 'calc', transport: 'http', url: 'http://127.0.0.2:9/mcp', headers: { Authorization: null } });
    assert.equal(moved.status, 400, JSON.stringify(moved.body));
    assert.match(JSON.stringify(moved.body), /give the header's value again/);
  });

  test('agents: the key is shown once; idle sessions are swept and their upstream sessions ended', async () => {
    const created = await asAdmin('POST', '/agents', { name: 'bot', tools: ['calc__*'] });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const key = created.body.key as string;
    assert.match(key, /^sk-airlock-/);
    assert.deepEqual(created.body.allowed_tools.sort(), ['calc__add', 'calc__whoami']);
    const again = await gw.admin('GET', '/agents/bot');
    assert.equal(again.body.key, undefined);
    assert.equal(JSON.stringify(again.body).includes(key), false);
    const { client, transport } = await agentClient(gw.dataUrl, key);
    try {
      assert.equal(text(await client.callTool({ name: 'calc__add', arguments: { a: 20, b: 22 } })), '42');
      const upstreamSession = httpUp.sessionsCreated.at(-1)!;
      const sid = transport.sessionId!;
      // idle past settings.mcp_session_idle_ms: the session is gone and the upstream told
      await eventually(() => httpUp.sessionsDeleted.includes(upstreamSession), 'the upstream session ended', 15_000);
      const r = await fetch(gw.dataUrl + '/mcp', {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${key}`, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 9, method: 'tools/list' }),
      });
      assert.equal(r.status, 404);
    } finally {
      await client.close().catch(() => undefined);
    }
    // deleting the agent: its key stops working
    assert.equal((await asAdmin('DELETE', '/agents/bot')).status, 204);
    await assert.rejects(agentClient(gw.dataUrl, key));
  });
});
