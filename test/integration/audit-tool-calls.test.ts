// The tool calls a model asks for are in the request's audit summary (issue 12, section 1):
// ids and names from whole and streamed chat answers, Anthropic tool_use blocks through
// /v1/messages, odd upstream stream formats; arguments only where the team's prompt logging
// allows them. Real gateway process, the official openai and @anthropic-ai/sdk clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { TOOL_ARGUMENTS, startUpstream, type TestUpstream } from '../helpers/upstream.js';

const FULL_KEY = 'sk-airlock-full-log-team-key-00000000001';
const META_KEY = 'sk-airlock-meta-log-team-key-00000000001';
const RED_KEY = 'sk-airlock-redacted-team-key-0000000001';
const tools = [{ type: 'function' as const, function: { name: 'lookup', parameters: { type: 'object', properties: { q: { type: 'string' } } } } }];

/** An upstream that streams two tool calls (the first one's argument is the last message's text) in spaced JSON with CRLF line ends, a comment line and no [DONE]. */
async function oddUpstream(): Promise<{ url: string; close: () => Promise<void> }> {
  const server = http.createServer((req, res) => {
    let raw = '';
    req.on('data', (c: Buffer) => (raw += c.toString()));
    req.on('end', () => {
      const msgs = (JSON.parse(raw) as { messages: { content: string }[] }).messages;
      const city = msgs[msgs.length - 1]!.content;
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const ev = (o: unknown) => `data: ${JSON.stringify(o, null, 1).replace(/\n/g, ' ')}\r\n\r\n`;
      const base = { id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'odd' };
      res.write(': keep-alive\r\n\r\n');
      res.write(ev({ ...base, choices: [{ index: 0, delta: { role: 'assistant', content: null }, finish_reason: null }] }));
      res.write(ev({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, id: 'call_a', type: 'function', function: { name: 'get_weather', arguments: '' } }] }, finish_reason: null }] }));
      res.write(ev({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: '{"city":' } }] }, finish_reason: null }] }));
      res.write(ev({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 1, id: 'call_b', type: 'function', function: { name: 'get_time', arguments: '{}' } }] }, finish_reason: null }] }));
      res.write(ev({ ...base, choices: [{ index: 0, delta: { tool_calls: [{ index: 0, function: { arguments: `${JSON.stringify(city)}}` } }] }, finish_reason: null }] }));
      res.write(ev({ ...base, choices: [{ index: 0, delta: {}, finish_reason: 'tool_calls' }], usage: { prompt_tokens: 5, completion_tokens: 7, total_tokens: 12 } }));
      res.end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`, close: () => new Promise((r) => server.close(() => r())) };
}

describe('audit summaries name the tool calls a model asked for', () => {
  let gw: RunningGateway;
  let up: TestUpstream;
  let odd: Awaited<ReturnType<typeof oddUpstream>>;
  const summaryOf = (id: string) => eventually(async () => ((await gw.admin('GET', '/audit/events?kind=request&limit=1000')).body.data as any[]).find((x) => x.data.request_id === id), `the summary of ${id}`);
  const ai = (key = TEST_KEY) => new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000 });

  before(async () => {
    up = await startUpstream();
    odd = await oddUpstream();
    const cfg = basicConfig(up.url, {
      teams: [{ name: 'research' }, { name: 'full', prompt_logging: { mode: 'full', retention_days: 7 } }, { name: 'meta', prompt_logging: { mode: 'metadata', retention_days: 7 } }, { name: 'red', prompt_logging: { mode: 'redacted', retention_days: 7 } }],
      keys: [
        { name: 'notebook-app', key: TEST_KEY, team: 'research' },
        { name: 'full-app', key: FULL_KEY, team: 'full' },
        { name: 'meta-app', key: META_KEY, team: 'meta' },
        { name: 'red-app', key: RED_KEY, team: 'red' },
      ],
    });
    cfg.endpoints.push({ name: 'odd', base_url: odd.url, health_check: { enabled: false, interval_ms: 60_000 } });
    cfg.models.push({ name: 'odd', targets: [{ endpoint: 'odd', model: 'odd' }], price: { input_per_million: 1, output_per_million: 2 } });
    gw = await startGateway({ config: cfg });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    await odd?.close();
  });

  test('a whole chat answer: the call’s id and name, the arguments’ length only (prompt logging off)', async () => {
    const { data, response } = await ai().chat.completions.create({ model: 'chat', tools, messages: [{ role: 'user', content: 'please use tool now' }] }).withResponse();
    const call = data.choices[0]!.message.tool_calls![0]!;
    const s = await summaryOf(response.headers.get('x-airlock-request-id')!);
    assert.deepEqual(s.data.tool_calls, [{ id: call.id, name: 'lookup', arguments_chars: TOOL_ARGUMENTS.length }]);
    assert.ok(!JSON.stringify(s).includes('"q"'), 'no arguments in the record');
  });

  test('a streamed chat answer: the deltas joined into one call', async () => {
    const { data: stream, response } = await ai().chat.completions.create({ model: 'chat', stream: true, tools, messages: [{ role: 'user', content: 'use tool, streamed' }] }).withResponse();
    let id = '';
    for await (const c of stream) id ||= c.choices[0]?.delta?.tool_calls?.[0]?.id ?? '';
    assert.ok(id, 'the client saw a call');
    const s = await summaryOf(response.headers.get('x-airlock-request-id')!);
    assert.deepEqual(s.data.tool_calls, [{ id, name: 'lookup', arguments_chars: TOOL_ARGUMENTS.length }]);
  });

  test('spaced JSON, CRLF, a comment and no [DONE]: two interleaved calls, in order', async () => {
    const { data: stream, response } = await ai().chat.completions.create({ model: 'odd', stream: true, tools, messages: [{ role: 'user', content: 'Oslo' }] }).withResponse();
    for await (const c of stream) void c;
    const s = await summaryOf(response.headers.get('x-airlock-request-id')!);
    assert.deepEqual(s.data.tool_calls, [
      { id: 'call_a', name: 'get_weather', arguments_chars: '{"city":"Oslo"}'.length },
      { id: 'call_b', name: 'get_time', arguments_chars: 2 },
    ]);
  });

  test('an answer without tool calls, and a request without tools, record none', async () => {
    const a = await ai().chat.completions.create({ model: 'chat', tools, messages: [{ role: 'user', content: 'just talk' }] }).withResponse();
    const b = await ai().chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'use tool (but none given)' }] }).withResponse();
    for (const r of [a, b]) {
      const s = await summaryOf(r.response.headers.get('x-airlock-request-id')!);
      assert.equal(s.data.tool_calls, undefined);
    }
  });

  test('/v1/messages: tool_use blocks (whole and streamed) are recorded with the ids the client got', async () => {
    const claude = new Anthropic({ apiKey: TEST_KEY, baseURL: gw.dataUrl, maxRetries: 0, timeout: 20_000 });
    const atools: Anthropic.Tool[] = [{ name: 'lookup', input_schema: { type: 'object', properties: { q: { type: 'string' } } } }];
    const { data: msg, response } = await claude.messages.create({ model: 'chat', max_tokens: 64, tools: atools, messages: [{ role: 'user', content: 'use tool please' }] }).withResponse();
    const use = msg.content.find((b) => b.type === 'tool_use') as Anthropic.ToolUseBlock;
    assert.ok(use, JSON.stringify(msg));
    const s = await summaryOf(response.headers.get('x-airlock-request-id')!);
    assert.deepEqual(s.data.tool_calls, [{ id: use.id, name: 'lookup', arguments_chars: TOOL_ARGUMENTS.length }]);

    const st = await claude.messages.create({ model: 'chat', max_tokens: 64, stream: true, tools: atools, messages: [{ role: 'user', content: 'use tool streamed' }] }).withResponse();
    let sid = '';
    for await (const ev of st.data) if (ev.type === 'content_block_start' && ev.content_block.type === 'tool_use') sid = ev.content_block.id;
    assert.ok(sid);
    const s2 = await summaryOf(st.response.headers.get('x-airlock-request-id')!);
    assert.deepEqual(s2.data.tool_calls, [{ id: sid, name: 'lookup', arguments_chars: TOOL_ARGUMENTS.length }]);
  });

  test('arguments only where prompt logging allows: full keeps them, redacted masks personal data, metadata does not', async () => {
    const full = await ai(FULL_KEY).chat.completions.create({ model: 'chat', tools, messages: [{ role: 'user', content: 'use tool' }] }).withResponse();
    const sf = await summaryOf(full.response.headers.get('x-airlock-request-id')!);
    assert.equal(sf.data.tool_calls[0].arguments, TOOL_ARGUMENTS);
    const meta = await ai(META_KEY).chat.completions.create({ model: 'chat', tools, messages: [{ role: 'user', content: 'use tool' }] }).withResponse();
    const sm = await summaryOf(meta.response.headers.get('x-airlock-request-id')!);
    assert.equal(sm.data.tool_calls[0].arguments, undefined);
    assert.equal(sm.data.tool_calls[0].name, 'lookup');
    // the odd upstream puts the message's text into the arguments: a redacted team's record masks the address
    const red = await ai(RED_KEY).chat.completions.create({ model: 'odd', stream: true, tools, messages: [{ role: 'user', content: 'jane.doe@example.com' }] }).withResponse();
    for await (const c of red.data) void c;
    const sr = await summaryOf(red.response.headers.get('x-airlock-request-id')!);
    assert.match(sr.data.tool_calls[0].arguments, /^\{"city":"\[EMAIL_1\]"\}$/);
    assert.deepEqual(Object.values(sr.data.tool_calls[0].redacted), [1]);
    assert.equal(sr.data.tool_calls[1].arguments, '{}');
    assert.ok(!JSON.stringify(sr).includes('jane.doe'), 'the address is not in the record');
  });
});
