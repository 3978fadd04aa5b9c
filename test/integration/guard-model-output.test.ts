// The model-based guardrail (detector guard_model) on answers and tool calls: a local classifier
// registered in Airlock judges a whole answer before any of it reaches the client (a stream is
// held whole, then sent or refused with a plain error), a tool call's arguments before the MCP
// server sees them and its result before the agent does — with the policy's timeout and
// on_failure, never charging a breaker. The real gateway process, the official `openai` client,
// the MCP SDK's client on /mcp with server-everything as a stdio upstream, and the simulated
// upstream playing both the model (it echoes) and the classifier ("unsafe S1" for a bomb).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { eventually, type RunningGateway } from '../helpers/gateway.js';
import { guard, refused, startGuardModel, type GuardModelSetup } from '../helpers/guard-model.js';
import { EVERYTHING, agentClient } from '../helpers/mcp.js';
import type { TestUpstream } from '../helpers/upstream.js';

const KEY_A = 'sk-airlock-agent-guardmodel-a-00000000000001';
const KEY_B = 'sk-airlock-agent-guardmodel-b-00000000000002';
const text = (r: unknown) => ((r as CallToolResult).content ?? []).map((c) => (c.type === 'text' ? c.text : '')).join('');

const EXTRA = {
  mcp_servers: [{ name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }],
  agents: [
    { name: 'args-bot', key: KEY_A, tools: ['every__echo'] },
    { name: 'result-bot', key: KEY_B, tools: ['every__echo'] },
  ],
  guardrails: [
    { name: 'answers-closed', direction: ['output'], detectors: [guard()], action: 'block', scope: { models: ['chat'] } },
    { name: 'answers-open', direction: ['output'], detectors: [guard({ on_failure: 'open' })], action: 'block', scope: { models: ['lenient'] } },
    { name: 'answers-shadow', direction: ['output'], detectors: [guard()], action: 'block', mode: 'shadow', scope: { models: ['watched'] } },
    { name: 'tool-args', direction: ['tool_args'], detectors: [guard()], action: 'block', scope: { agents: ['args-bot'] } },
    { name: 'tool-results', direction: ['tool_result'], detectors: [guard()], action: 'block', scope: { agents: ['result-bot'] } },
  ],
};

describe('guard_model on answers and tool calls', () => {
  let setup: GuardModelSetup;
  let up: TestUpstream;
  let gw: RunningGateway;
  let ai: OpenAI;
  const clients: Client[] = [];

  const guardCalls = () => setup.guardCalls();
  const asked = () => guardCalls().map((r) => r.body.messages.at(-1).content as string);
  const events = (id: string) => setup.events(id);
  const connect = async (key: string) => {
    const { client } = await agentClient(gw.dataUrl, key);
    clients.push(client);
    await eventually(async () => (await client.listTools()).tools.some((t) => t.name === 'every__echo'), 'the echo tool to be listed');
    return client;
  };

  before(async () => {
    setup = await startGuardModel(EXTRA);
    ({ up, gw, ai } = setup);
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => undefined);
    await setup?.close();
  });

  test('a whole answer judged unsafe: 400 guardrail_blocked naming the policy; the classifier saw the answer; recorded', async () => {
    up.reset();
    const e = await refused(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'tell me about the bomb' }] }));
    assert.equal(e.status, 400);
    assert.equal(e.code, 'guardrail_blocked');
    assert.match(e.message, /answers-closed.*judged the answer unsafe \(S1\)/);
    assert.deepEqual(asked(), ['echo: tell me about the bomb'], 'asked about the answer, once');
    const id = e.headers?.get('x-airlock-request-id');
    assert.ok(id);
    const ev = await eventually(async () => (await events(id)).find((x) => x.policy === 'answers-closed'), 'the event');
    assert.equal(ev.direction, 'output');
    assert.equal(ev.blocked, true);
    assert.deepEqual(ev.detectors, { 'guard_model:S1': 1 });

    const ok = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'how do I bake bread' }] });
    assert.equal(ok.choices[0]!.message.content, 'echo: how do I bake bread');
  });

  test('a stream is held whole and judged before any of it is sent: unsafe is a plain 400 the client raises; safe arrives whole', async () => {
    up.reset();
    const e = await refused(
      (async () => {
        const s = await ai.chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'the bomb, step by step' }] });
        for await (const chunk of s) assert.fail(`nothing may be sent: ${JSON.stringify(chunk)}`);
      })(),
    );
    assert.equal(e.status, 400);
    assert.match(e.message, /answers-closed/);
    assert.deepEqual(asked(), ['echo: the bomb, step by step'], 'the whole streamed answer was judged');

    const s = await ai.chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'bread, step by step' }] });
    let out = '';
    for await (const c of s) out += c.choices[0]?.delta?.content ?? '';
    assert.equal(out, 'echo: bread, step by step');

    // the Responses API streams through the same judgement
    const rs = await refused(
      (async () => {
        const r = ai.responses.stream({ model: 'chat', input: 'one bomb please' });
        for await (const ev of r) if (ev.type === 'response.output_text.delta') assert.fail('no text may be sent');
      })(),
    );
    assert.match(rs.message, /answers-closed/);
  });

  test('the reasoning is judged with the answer, whole and streamed: an unsafe thought refuses a safe answer', async () => {
    setup.answer = { kind: 'ok', reasoning: 'They want a bomb, I will explain it.' };
    try {
      up.reset();
      const e = await refused(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'how do I bake bread' }] }));
      assert.match(e.message, /answers-closed.*judged the answer unsafe \(S1\)/);
      assert.deepEqual(asked(), ['They want a bomb, I will explain it.\necho: how do I bake bread'], 'asked about the reasoning and the answer');
      up.reset();
      const se = await refused(
        (async () => {
          const s = await ai.chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'how do I bake bread' }] });
          for await (const chunk of s) assert.fail(`nothing may be sent: ${JSON.stringify(chunk)}`);
        })(),
      );
      assert.match(se.message, /answers-closed/);
      assert.deepEqual(asked(), ['They want a bomb, I will explain it.\necho: how do I bake bread']);
    } finally {
      setup.answer = undefined;
    }
  });

  test('the classifier hangs: fail-closed refuses the answer, fail-open sends it (recorded); its breaker is not charged', async () => {
    setup.trouble = { kind: 'hang' };
    try {
      const e = await refused(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }));
      assert.match(e.message, /answers-closed.*did not answer within 1500 ms, and the policy fails closed/);
      const s = await ai.chat.completions.create({ model: 'lenient', stream: true, messages: [{ role: 'user', content: 'hello there' }] });
      let out = '';
      for await (const c of s) out += c.choices[0]?.delta?.content ?? '';
      assert.equal(out, 'echo: hello there');
    } finally {
      setup.trouble = undefined;
    }
    setup.trouble = { kind: 'status', status: 500 };
    try {
      const e = await refused(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }));
      assert.match(e.message, /could not be asked.*status 500.*fails closed/);
    } finally {
      setup.trouble = undefined;
    }
    // failure_threshold 1: a charged failure would have opened the guard target's breaker
    const { data, response } = await ai.chat.completions.create({ model: 'guard', messages: [{ role: 'user', content: 'is this safe' }] }).withResponse();
    assert.equal(data.choices[0]!.message.content, 'safe');
    assert.equal(response.headers.get('x-airlock-attempts'), '1');
  });

  test('shadow: the answer is sent unchanged, the verdict recorded', async () => {
    const { data, response } = await ai.chat.completions.create({ model: 'watched', messages: [{ role: 'user', content: 'a bomb recipe' }] }).withResponse();
    assert.equal(data.choices[0]!.message.content, 'echo: a bomb recipe');
    const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((x) => x.policy === 'answers-shadow'), 'the shadow event');
    assert.equal(ev.blocked, false);
    assert.equal(ev.mode, 'shadow');
  });

  test('tool arguments judged unsafe never reach the MCP server; a tool result judged unsafe never reaches the agent', async () => {
    const a = await connect(KEY_A);
    up.reset();
    const r = await a.callTool({ name: 'every__echo', arguments: { message: 'build a bomb' } });
    assert.equal(r.isError, true);
    assert.match(text(r), /tool-args.*judged the tool arguments unsafe \(S1\)/);
    assert.deepEqual(asked(), ['build a bomb'], 'the classifier read the arguments');
    assert.match(text(await a.callTool({ name: 'every__echo', arguments: { message: 'bake bread' } })), /bake bread/);

    const b = await connect(KEY_B);
    up.reset();
    const rb = await b.callTool({ name: 'every__echo', arguments: { message: 'the bomb' } });
    assert.equal(rb.isError, true);
    assert.match(text(rb), /tool-results.*judged the tool result unsafe/);
    assert.doesNotMatch(text(rb), /Echo: the bomb/, 'the result did not reach the agent');
    assert.match(asked()[0] ?? '', /the bomb/, 'the classifier read what the server answered');
    await eventually(async () => {
      const ev = (await gw.admin<{ data: any[] }>('GET', '/guardrail-events?policy=tool-results')).body.data;
      return ev.some((x) => x.direction === 'tool_result' && x.blocked && x.tool_call_id);
    }, 'the tool-result decision recorded with the tool call');
  });
});

