// Guardrails on MCP tool calls, end to end: the real gateway, server-everything as a supervised
// stdio upstream, an agent using the SDK's Client on /mcp. tool_args policies see the arguments
// before the server does; tool_result policies see the answer before the agent does.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { EVERYTHING, agentClient } from '../helpers/mcp.js';

const KEY_A = 'sk-airlock-agent-guard-a-000000000000000001';
const KEY_B = 'sk-airlock-agent-guard-b-000000000000000002';
// an AWS-style access key id and secret (the secrets detector's cloud keys)
const AWS = 'AKIAIOSFODNN7EXAMPLE';
const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

function rows<T>(gw: RunningGateway, sql: string, ...args: unknown[]): T[] {
  const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true });
  try {
    return db.prepare(sql).all(...args) as T[];
  } finally {
    db.close();
  }
}

describe('guardrails on MCP tool calls', () => {
  let gw: RunningGateway;
  const clients: Client[] = [];
  before(async () => {
    gw = await startGateway({
      config: {
        teams: [{ name: 'support' }],
        mcp_servers: [{ name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }],
        agents: [
          { name: 'support-bot', team: 'support', key: KEY_A, tools: ['every__echo'] },
          { name: 'other-bot', key: KEY_B, tools: ['every__echo'] },
        ],
        guardrails: [
          { name: 'no-secrets-to-tools', direction: ['tool_args'], detectors: ['secrets'], action: 'block' },
          { name: 'no-pii-from-tools', direction: ['tool_result'], detectors: ['pii'], action: 'redact', scope: { agents: ['support-bot'] } },
          { name: 'no-falcon-for-other-bot', direction: ['tool_args'], detectors: [{ type: 'keywords', words: ['Falcon'] }], action: 'block', scope: { agents: ['other-bot'] } },
        ],
      },
    });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await gw?.stop();
  });
  const connect = async (key: string) => {
    const { client } = await agentClient(gw.dataUrl, key, { 'x-airlock-session': 'guard-session' });
    clients.push(client);
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name === 'every__echo'), 'the echo tool to be listed');
    return client;
  };

  test('a secret in the arguments is blocked before the server sees it: an error result naming the policy, never the secret', async () => {
    const client = await connect(KEY_A);
    const r = await client.callTool({ name: 'every__echo', arguments: { message: `deploy with ${AWS}` } });
    assert.equal(r.isError, true);
    assert.match(text(r), /no-secrets-to-tools/);
    assert.doesNotMatch(text(r), new RegExp(AWS), 'the secret is not echoed back');
    await eventually(
      () => rows<{ error_class: string | null }>(gw, `SELECT error_class FROM ledger WHERE kind = 'mcp_tool' AND key_name = 'support-bot' AND error_class = 'guardrail_blocked'`).length === 1,
      'the blocked call on the ledger',
    );
    await eventually(
      () => rows(gw, `SELECT * FROM guardrail_events WHERE policy = 'no-secrets-to-tools' AND direction = 'tool_args' AND blocked = 1 AND tool_call_id IS NOT NULL`).length === 1,
      'the decision recorded with the tool call id',
    );
    // a clean call still goes through
    assert.match(text(await client.callTool({ name: 'every__echo', arguments: { message: 'hello' } })), /hello/);
  });

  test('personal data in a tool result is redacted before the agent sees it (only for the agent in scope)', async () => {
    const a = await connect(KEY_A);
    const ra = await a.callTool({ name: 'every__echo', arguments: { message: 'write to jane.doe@example.com' } });
    assert.equal(ra.isError, undefined);
    assert.match(text(ra), /\[EMAIL_1\]/);
    assert.doesNotMatch(text(ra), /jane\.doe@example\.com/);
    const b = await connect(KEY_B);
    const rb = await b.callTool({ name: 'every__echo', arguments: { message: 'write to jane.doe@example.com' } });
    assert.match(text(rb), /jane\.doe@example\.com/, 'the redaction policy is scoped to support-bot');
    await eventually(() => rows(gw, `SELECT * FROM guardrail_events WHERE policy = 'no-pii-from-tools' AND direction = 'tool_result' AND key_name = 'support-bot'`).length >= 1, 'the redaction recorded');
  });

  test('a policy scoped to another agent does not apply', async () => {
    const a = await connect(KEY_A);
    assert.match(text(await a.callTool({ name: 'every__echo', arguments: { message: 'project Falcon' } })), /Falcon/);
    const b = await connect(KEY_B);
    const rb = await b.callTool({ name: 'every__echo', arguments: { message: 'project Falcon' } });
    assert.equal(rb.isError, true);
    assert.match(text(rb), /no-falcon-for-other-bot/);
  });
});
