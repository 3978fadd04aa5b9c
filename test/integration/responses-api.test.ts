// POST /v1/responses (OpenAI Responses API) onto the upstream's Chat Completions, seen through the
// official `openai` client's responses API, unmodified, against the real gateway process and the
// simulated upstream; stored responses (store, previous_response_id, GET/DELETE) in the real
// SQLite file, owned by the key that made them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { TOOL_ARGUMENTS, completionTokensFor, promptTokensFor, startUpstream, toolAnswerOf, type RecordedRequest, type SSEShape, type TestUpstream } from '../helpers/upstream.js';

const UPSTREAM_MODEL = 'qwen2.5-7b';
const OTHER_KEY = 'sk-airlock-test-key-other-000000000000000005';
const BROKE_KEY = 'sk-airlock-test-key-broke-000000000000000006';
const PRICE = { input_per_million: 500, output_per_million: 1500 };

function config(url: string) {
  return {
    endpoints: [{ name: 'gpu-1', base_url: url, health_check: { enabled: true, interval_ms: 60_000 } }],
    models: [
      { name: 'chat', targets: [{ endpoint: 'gpu-1', model: UPSTREAM_MODEL }], price: PRICE },
      { name: 'fb', strategy: 'fallback', targets: [{ endpoint: 'gpu-1', model: 'first' }, { endpoint: 'gpu-1', model: 'second' }] },
    ],
    teams: [{ name: 'research' }],
    keys: [
      { name: 'notebook-app', key: TEST_KEY, team: 'research' },
      { name: 'other-app', key: OTHER_KEY, team: 'research' },
      { name: 'broke-app', key: BROKE_KEY, team: 'research', budget: { amount: 0, period: 'total' } },
    ],
    // (a small body limit: a chain of stored responses is held to it too)
    settings: { breaker: { failure_threshold: 1000, cooldown_ms: 300 }, retry_after_cap_ms: 0, max_body_bytes: 64 * 1024 },
  };
}

type LedgerRow = Record<string, any>;

async function ledgerRow(gw: RunningGateway, requestId: string): Promise<LedgerRow> {
  return eventually(async () => {
    const r = await gw.admin<{ data: LedgerRow[] }>('GET', `/usage/requests?request_id=${requestId}`);
    assert.equal(r.status, 200);
    return r.body.data[0];
  }, `ledger row of ${requestId}`);
}

function lastCompletion(up: TestUpstream): RecordedRequest {
  const r = up.completions().at(-1);
  assert.ok(r, 'the upstream received a request');
  return r;
}

async function apiError(p: PromiseLike<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  assert.fail('expected the request to fail with an API error');
}

const tools: OpenAI.Responses.FunctionTool[] = [
  { type: 'function', name: 'lookup', description: 'look something up', parameters: { type: 'object', properties: { q: { type: 'string' } }, required: ['q'] }, strict: false },
];

describe('POST /v1/responses (OpenAI Responses API)', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let ai: OpenAI;
  let other: OpenAI;

  before(async () => {
    up = await startUpstream({ models: [UPSTREAM_MODEL, 'first', 'second'] });
    gw = await startGateway({ config: config(up.url) });
    ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });
    other = new OpenAI({ apiKey: OTHER_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('non-streamed: instructions, input, max_output_tokens translated; output, output_text, status, usage and the ledger row', async () => {
    up.setBehavior({ kind: 'ok' });
    const { data: r, response } = await ai.responses
      .create({ model: 'chat', instructions: 'be terse', input: 'hello responses', max_output_tokens: 50, temperature: 0.3, user: 'bob', store: false })
      .withResponse();
    const sent = lastCompletion(up);
    assert.equal(sent.path, '/v1/chat/completions');
    assert.deepEqual(sent.body.messages, [
      { role: 'system', content: 'be terse' },
      { role: 'user', content: 'hello responses' },
    ]);
    assert.equal(sent.body.model, UPSTREAM_MODEL);
    assert.equal(sent.body.max_tokens, 50);
    assert.equal(sent.body.temperature, 0.3);
    assert.equal(sent.body.user, 'bob');
    assert.equal(r.object, 'response');
    assert.match(r.id, /^resp_/);
    assert.equal(r.status, 'completed');
    assert.equal(r.model, 'chat');
    assert.equal(r.output_text, 'echo: hello responses');
    assert.equal(r.output.length, 1);
    const msg = r.output[0] as OpenAI.Responses.ResponseOutputMessage;
    assert.equal(msg.type, 'message');
    assert.equal(msg.role, 'assistant');
    assert.equal((msg.content[0] as OpenAI.Responses.ResponseOutputText).text, 'echo: hello responses');
    assert.equal(r.usage?.input_tokens, promptTokensFor('chat', sent.body));
    assert.equal(r.usage?.output_tokens, completionTokensFor('echo: hello responses'));
    assert.ok(r.usage);
    assert.equal(r.usage.total_tokens, r.usage.input_tokens + r.usage.output_tokens);
    const row = await ledgerRow(gw, response.headers.get('x-airlock-request-id')!);
    assert.equal(row.kind, 'responses', 'the ledger tells Responses requests apart');
    assert.equal(row.user, 'bob');
    assert.equal(row.prompt_tokens, r.usage?.input_tokens);
    assert.equal(row.completion_tokens, r.usage?.output_tokens);
    assert.ok(Math.abs(row.cost - (row.prompt_tokens * PRICE.input_per_million + row.completion_tokens * PRICE.output_per_million) / 1e6) < 1e-9);
  });

  test('streamed: the semantic events with increasing sequence_number, deltas as they come, response.completed', async () => {
    up.setBehavior({ kind: 'ok', content: 'one two three four' });
    const stream = await ai.responses.create({ model: 'chat', input: 'count', stream: true, store: false });
    const events: OpenAI.Responses.ResponseStreamEvent[] = [];
    for await (const ev of stream) events.push(ev);
    const types = events.map((e) => e.type);
    assert.deepEqual(types.slice(0, 4), ['response.created', 'response.in_progress', 'response.output_item.added', 'response.content_part.added']);
    assert.deepEqual(types.slice(-4), ['response.output_text.done', 'response.content_part.done', 'response.output_item.done', 'response.completed']);
    assert.equal(types.filter((t) => t === 'response.output_text.delta').length, 4);
    assert.deepEqual(
      events.map((e) => e.sequence_number),
      events.map((_, i) => i),
    );
    const text = events.flatMap((e) => (e.type === 'response.output_text.delta' ? [e.delta] : [])).join('');
    assert.equal(text, 'one two three four');
    const done = events.at(-1) as OpenAI.Responses.ResponseCompletedEvent;
    assert.equal(done.response.status, 'completed');
    assert.equal(done.response.output_text, 'one two three four');
    assert.equal(done.response.usage?.output_tokens, completionTokensFor('one two three four'));
    assert.equal(done.response.usage?.input_tokens, promptTokensFor('chat', lastCompletion(up).body));

    // the SDK's stream helper assembles the same response from the events
    const helper = ai.responses.stream({ model: 'chat', input: 'count', store: false });
    const final = await helper.finalResponse();
    assert.equal(final.output_text, 'one two three four');
    up.setBehavior({ kind: 'ok' });
  });

  test('function call round trip by items: call_id preserved, function_call_output back as a tool message, then the answer', async () => {
    up.setBehavior({ kind: 'ok' });
    const first = await ai.responses.create({ model: 'chat', input: 'please use tool lookup', tools, tool_choice: 'auto', store: false });
    const sent1 = lastCompletion(up);
    assert.deepEqual(sent1.body.tools, [{ type: 'function', function: { name: 'lookup', description: 'look something up', parameters: tools[0]!.parameters, strict: false } }]);
    assert.equal(sent1.body.tool_choice, 'auto');
    const call = first.output.find((o): o is OpenAI.Responses.ResponseFunctionToolCall => o.type === 'function_call');
    assert.ok(call, 'a function_call item');
    assert.match(call.call_id, /^call_\d+_0$/, 'the upstream tool call id is kept');
    assert.equal(call.name, 'lookup');
    assert.equal(call.arguments, TOOL_ARGUMENTS);
    assert.equal(first.output_text, '');

    const second = await ai.responses.create({
      model: 'chat',
      tools,
      store: false,
      input: [
        { role: 'user', content: 'please use tool lookup' },
        { type: 'function_call', call_id: call.call_id, name: call.name, arguments: call.arguments },
        { type: 'function_call_output', call_id: call.call_id, output: '42' },
      ],
    });
    const sent2 = lastCompletion(up);
    assert.deepEqual(sent2.body.messages, [
      { role: 'user', content: 'please use tool lookup' },
      { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'lookup', arguments: TOOL_ARGUMENTS } }] },
      { role: 'tool', tool_call_id: call.call_id, content: '42' },
    ]);
    assert.equal(second.output_text, toolAnswerOf({ tool_call_id: call.call_id, content: '42' }));
  });

  test('streamed function call: function_call_arguments deltas, done events and the completed item', async () => {
    up.setBehavior({ kind: 'ok' });
    const stream = await ai.responses.create({ model: 'chat', input: 'use tool now', tools, stream: true, store: false });
    let args = '';
    let added: OpenAI.Responses.ResponseOutputItem | undefined;
    let argsDone: string | undefined;
    let final: OpenAI.Responses.Response | undefined;
    for await (const ev of stream) {
      if (ev.type === 'response.output_item.added') added = ev.item;
      if (ev.type === 'response.function_call_arguments.delta') args += ev.delta;
      if (ev.type === 'response.function_call_arguments.done') argsDone = ev.arguments;
      if (ev.type === 'response.completed') final = ev.response;
    }
    assert.equal(added?.type, 'function_call');
    assert.equal(args, TOOL_ARGUMENTS);
    assert.equal(argsDone, TOOL_ARGUMENTS);
    const call = final?.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    assert.equal(call.type, 'function_call');
    assert.equal(call.status, 'completed');
    assert.match(call.call_id, /^call_\d+_0$/);
    assert.equal(call.arguments, TOOL_ARGUMENTS);
  });

  test('store and previous_response_id: kept in SQLite, continued, retrieved and deleted only by the key that made it', async () => {
    up.setBehavior({ kind: 'ok' });
    const first = await ai.responses.create({ model: 'chat', instructions: 'use tools', input: 'please use tool lookup', tools });
    assert.equal((first as unknown as { store: boolean }).store, true, 'stored by default, as OpenAI does');
    const call = first.output[0] as OpenAI.Responses.ResponseFunctionToolCall;

    const got = await ai.responses.retrieve(first.id);
    assert.equal(got.id, first.id);
    assert.deepEqual(got.output, first.output);

    // another key: as if it did not exist
    const e404 = await apiError(other.responses.retrieve(first.id));
    assert.equal(e404.status, 404);
    assert.equal(e404.code, 'response_not_found');
    const eprev = await apiError(other.responses.create({ model: 'chat', previous_response_id: first.id, input: 'hi' }));
    assert.equal(eprev.status, 404);
    assert.equal(eprev.param, 'previous_response_id');
    assert.equal((await apiError(other.responses.delete(first.id))).status, 404);
    const nokey = new OpenAI({ apiKey: 'sk-airlock-nope', baseURL: gw.baseURL, maxRetries: 0 });
    const e401 = await apiError(nokey.responses.retrieve(first.id));
    assert.equal(e401.status, 401);
    assert.equal(e401.type, 'authentication_error');

    // continued: the stored conversation (without the earlier instructions) + the new items
    const second = await ai.responses.create({
      model: 'chat',
      previous_response_id: first.id,
      instructions: 'answer briefly',
      tools,
      input: [{ type: 'function_call_output', call_id: call.call_id, output: 'forty-two' }],
    });
    assert.deepEqual(lastCompletion(up).body.messages, [
      { role: 'system', content: 'answer briefly' },
      { role: 'user', content: 'please use tool lookup' },
      { role: 'assistant', content: null, tool_calls: [{ id: call.call_id, type: 'function', function: { name: 'lookup', arguments: TOOL_ARGUMENTS } }] },
      { role: 'tool', tool_call_id: call.call_id, content: 'forty-two' },
    ]);
    assert.equal(second.previous_response_id, first.id);
    assert.equal(second.output_text, toolAnswerOf({ tool_call_id: call.call_id, content: 'forty-two' }));

    // a streamed response is stored too, when it completes
    const s = await ai.responses.stream({ model: 'chat', previous_response_id: second.id, input: 'and then?' }).finalResponse();
    assert.deepEqual(lastCompletion(up).body.messages.slice(-2), [
      { role: 'assistant', content: second.output_text },
      { role: 'user', content: 'and then?' },
    ]);
    assert.equal((await ai.responses.retrieve(s.id)).output_text, 'echo: and then?');

    await ai.responses.delete(first.id);
    assert.equal((await apiError(ai.responses.retrieve(first.id))).status, 404);
    assert.equal((await apiError(ai.responses.create({ model: 'chat', previous_response_id: first.id, input: 'x' }))).status, 404);

    // store: false keeps nothing
    const unstored = await ai.responses.create({ model: 'chat', input: 'forget me', store: false });
    assert.equal((await apiError(ai.responses.retrieve(unstored.id))).status, 404);
  });

  test('text.format json_schema and json_object become response_format', async () => {
    up.setBehavior({ kind: 'ok', content: '{"ok":true}' });
    const schema = { type: 'object', properties: { ok: { type: 'boolean' } }, required: ['ok'], additionalProperties: false };
    const r = await ai.responses.create({ model: 'chat', input: 'json please', store: false, text: { format: { type: 'json_schema', name: 'answer', schema, strict: true } } });
    assert.deepEqual(lastCompletion(up).body.response_format, { type: 'json_schema', json_schema: { name: 'answer', schema, strict: true } });
    assert.equal(r.output_text, '{"ok":true}');
    await ai.responses.create({ model: 'chat', input: 'json please', store: false, text: { format: { type: 'json_object' } } });
    assert.deepEqual(lastCompletion(up).body.response_format, { type: 'json_object' });
    up.setBehavior({ kind: 'ok' });
  });

  test('include, reasoning, truncation, safety_identifier: checked, reasoning effort sent upstream, echoed; conversation and prompt refused by name', async () => {
    up.setBehavior({ kind: 'ok' });
    const r = await ai.responses.create({
      model: 'chat',
      input: 'think first',
      store: false,
      include: ['reasoning.encrypted_content', 'message.output_text.logprobs'],
      reasoning: { effort: 'low', summary: 'auto' },
      truncation: 'auto',
      safety_identifier: 'user-7',
    });
    const sent = lastCompletion(up).body;
    assert.equal(sent.reasoning_effort, 'low');
    assert.equal(sent.user, 'user-7', 'safety_identifier is the end user');
    for (const f of ['include', 'reasoning', 'truncation', 'safety_identifier']) assert.equal(f in sent, false, `${f} is not a chat field`);
    assert.deepEqual(r.reasoning, { effort: 'low', summary: 'auto' });
    assert.equal(r.truncation, 'auto');
    assert.equal(r.output_text, 'echo: think first');
    const plain = await ai.responses.create({ model: 'chat', input: 'plain', store: false });
    assert.equal('reasoning_effort' in lastCompletion(up).body, false);
    assert.equal(plain.truncation, 'disabled');
    assert.equal(plain.reasoning, null);

    const before = up.completions().length;
    const cases: [Record<string, unknown>, string][] = [
      [{ include: ['web_search_call.everything'] }, 'include[0]'],
      [{ include: 'reasoning.encrypted_content' }, 'include'],
      [{ reasoning: { effort: 'extreme' } }, 'reasoning.effort'],
      [{ reasoning: 'high' }, 'reasoning'],
      [{ truncation: 'sometimes' }, 'truncation'],
      [{ conversation: 'conv_123' }, 'conversation'],
      [{ conversation: { id: 'conv_123' } }, 'conversation'],
      [{ prompt: { id: 'pmpt_1' } }, 'prompt'],
      [{ safety_identifier: 7 }, 'safety_identifier'],
    ];
    for (const [extra, param] of cases) {
      const e = await apiError(ai.responses.create({ model: 'chat', input: 'x', ...extra } as unknown as OpenAI.Responses.ResponseCreateParamsNonStreaming));
      assert.equal(e.status, 400, JSON.stringify(extra));
      assert.equal(e.param, param, JSON.stringify(extra));
      assert.ok(e.message.includes(`"${param}`), e.message);
    }
    assert.match((await apiError(ai.responses.create({ model: 'chat', input: 'x', conversation: 'conv_1' }))).message, /previous_response_id/);
    assert.equal(up.completions().length, before, 'nothing refused reached the upstream');
  });

  test('GET /v1/responses/{id}/input_items: the whole conversation as items, paged by the SDK, owned by its key', async () => {
    up.setBehavior({ kind: 'ok' });
    const first = await ai.responses.create({ model: 'chat', instructions: 'not an item', input: 'please use tool lookup', tools });
    const call = first.output[0] as OpenAI.Responses.ResponseFunctionToolCall;
    const second = await ai.responses.create({
      model: 'chat',
      previous_response_id: first.id,
      tools,
      input: [
        { type: 'function_call_output', call_id: call.call_id, output: 'forty-two' },
        { role: 'developer', content: 'be brief' },
        { role: 'user', content: [{ type: 'input_text', text: 'and ' }, { type: 'input_text', text: 'now?' }] },
      ],
    });
    // every item, oldest first, fetched two at a time by the SDK's own paging
    const items: OpenAI.Responses.ResponseItem[] = [];
    for await (const it of ai.responses.inputItems.list(second.id, { order: 'asc', limit: 2 })) items.push(it);
    assert.deepEqual(
      items.map((i) => i.type),
      ['message', 'function_call', 'function_call_output', 'message', 'message'],
    );
    const [u, fc, fco, dev, last] = items as any[];
    assert.equal(u.role, 'user');
    assert.deepEqual(u.content, [{ type: 'input_text', text: 'please use tool lookup' }]);
    assert.equal(fc.call_id, call.call_id);
    assert.equal(fc.name, 'lookup');
    assert.equal(fc.arguments, TOOL_ARGUMENTS);
    assert.equal(fco.call_id, call.call_id);
    assert.equal(fco.output, 'forty-two');
    assert.equal(dev.role, 'system');
    assert.deepEqual(last.content, [{ type: 'input_text', text: 'and now?' }]);
    assert.equal(new Set(items.map((i) => i.id)).size, items.length, 'ids are unique');

    // the default order is newest first, 20 to a page; the ids are stable
    const page = await ai.responses.inputItems.list(second.id);
    assert.deepEqual(page.data.map((i) => i.id), items.map((i) => i.id).reverse());
    assert.equal(page.has_more, false);
    const firstItems = await ai.responses.inputItems.list(first.id);
    assert.deepEqual(firstItems.data.map((i) => i.type), ['message'], 'the first response answered one message (instructions are not items)');

    // after = an item id; raw paging fields
    const raw = await fetch(`${gw.baseURL}/responses/${second.id}/input_items?order=asc&limit=2&after=${items[1]!.id}`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
    const body = (await raw.json()) as any;
    assert.deepEqual(body.data.map((i: any) => i.id), [items[2]!.id, items[3]!.id]);
    assert.equal(body.first_id, items[2]!.id);
    assert.equal(body.last_id, items[3]!.id);
    assert.equal(body.has_more, true);

    for (const [q, param] of [
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=ten', 'limit'],
      ['order=sideways', 'order'],
      ['after=msg_nope', 'after'],
    ] as const) {
      const r = await fetch(`${gw.baseURL}/responses/${second.id}/input_items?${q}`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
      assert.equal(r.status, 400, q);
      assert.equal(((await r.json()) as any).error.param, param, q);
    }
    assert.equal((await apiError(other.responses.inputItems.list(second.id))).status, 404, 'another key sees nothing');
    const nokey = await fetch(`${gw.baseURL}/responses/${second.id}/input_items`);
    assert.equal(nokey.status, 401);
    await ai.responses.delete(second.id);
    assert.equal((await apiError(ai.responses.inputItems.list(second.id))).status, 404);
  });

  test('a chain of stored responses is held to settings.max_body_bytes: 413 naming previous_response_id, nothing sent upstream', async () => {
    up.setBehavior({ kind: 'ok' });
    const big = 'x'.repeat(24 * 1024);
    const a = await ai.responses.create({ model: 'chat', input: big });
    const b = await ai.responses.create({ model: 'chat', previous_response_id: a.id, input: 'short' });
    assert.equal(b.output_text, 'echo: short');
    const before = up.completions().length;
    // a's input + its echo + b's input and echo + this one: past 64 kB
    const e = await apiError(ai.responses.create({ model: 'chat', previous_response_id: b.id, input: big }));
    assert.equal(e.status, 413);
    assert.equal(e.param, 'previous_response_id');
    assert.match(e.message, /settings\.max_body_bytes/);
    assert.equal(up.completions().length, before);
  });

  test('length → status incomplete with the reason', async () => {
    up.setBehavior({ kind: 'ok', finishReason: 'length' });
    try {
      const r = await ai.responses.create({ model: 'chat', input: 'a long story', max_output_tokens: 3, store: false });
      assert.equal(r.status, 'incomplete');
      assert.deepEqual(r.incomplete_details, { reason: 'max_output_tokens' });
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('built-in OpenAI tools are refused with a 400 that names them; bad fields are named', async () => {
    const before = up.completions().length;
    for (const type of ['web_search_preview', 'file_search', 'code_interpreter']) {
      const e = await apiError(ai.responses.create({ model: 'chat', input: 'search the web', tools: [{ type } as OpenAI.Responses.Tool] }));
      assert.equal(e.status, 400);
      assert.equal(e.param, 'tools[0].type');
      assert.match(e.message, new RegExp(`built-in OpenAI tool "${type}".*nothing leaves the network`));
    }
    const cases: [unknown, string][] = [
      [{ model: 'chat' }, 'input'],
      [{ model: 'chat', input: [] }, 'input'],
      [{ input: 'x' }, 'model'],
      [{ model: 'chat', input: [{ type: 'function_call_output', output: 'x' }] }, 'input[0].call_id'],
      [{ model: 'chat', input: [{ role: 'robot', content: 'x' }] }, 'input[0].role'],
      [{ model: 'chat', input: [{ role: 'user', content: [{ type: 'input_file', file_id: 'f' }] }] }, 'input[0].content[0].type'],
      [{ model: 'chat', input: 'x', max_output_tokens: -1 }, 'max_output_tokens'],
      [{ model: 'chat', input: 'x', text: { format: { type: 'json_schema', name: 'a' } } }, 'text.format.schema'],
      [{ model: 'chat', input: 'x', tool_choice: { type: 'web_search_preview' } }, 'tool_choice.type'],
      [{ model: 'chat', input: 'x', previous_response_id: 'resp_nope' }, 'previous_response_id'],
    ];
    for (const [body, param] of cases) {
      const e = await apiError(ai.responses.create(body as OpenAI.Responses.ResponseCreateParamsNonStreaming));
      assert.ok(e.status === 400 || (param === 'previous_response_id' && e.status === 404), `${JSON.stringify(body)}: ${e.status}`);
      assert.equal(e.param, param, JSON.stringify(body));
      assert.ok(e.message.includes(`"${param}"`) || param === 'previous_response_id', e.message);
    }
    assert.equal(up.completions().length, before, 'nothing refused reached the upstream');
  });

  test('errors in OpenAI shape: 401, 404 model, 429 budget, 429 from the upstream', async () => {
    const bad = new OpenAI({ apiKey: 'sk-airlock-nope', baseURL: gw.baseURL, maxRetries: 0 });
    const e401 = await apiError(bad.responses.create({ model: 'chat', input: 'hi' }));
    assert.equal(e401.status, 401);
    assert.equal(e401.type, 'authentication_error');
    const e404 = await apiError(ai.responses.create({ model: 'nope', input: 'hi' }));
    assert.equal(e404.status, 404);
    assert.equal(e404.code, 'model_not_found');
    // a spent budget: 429 in OpenAI's shape, nothing sent upstream
    const before = up.completions().length;
    const broke = new OpenAI({ apiKey: BROKE_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const budget = await apiError(broke.responses.create({ model: 'chat', input: 'hi' }));
    assert.equal(budget.status, 429);
    assert.equal(budget.type, 'rate_limit_error');
    assert.equal(budget.code, 'budget_exceeded');
    assert.equal(up.completions().length, before);
    up.setBehavior({ kind: 'status', status: 429, retryAfter: '30' });
    try {
      const e429 = await apiError(ai.responses.create({ model: 'chat', input: 'hi' }));
      assert.equal(e429.status, 429);
      assert.equal(e429.type, 'rate_limit_error');
      assert.equal(e429.headers?.get('retry-after'), '30');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('every upstream stream format translates the same', async () => {
    const shapes: SSEShape[] = [{ spaced: true }, { crlf: true }, { done: false }, { comments: true }, { usageInLastChunk: true }, { noSpaceAfterData: true }, { spaced: true, crlf: true, done: false, comments: true }];
    for (const sse of shapes) {
      up.setBehavior({ kind: 'ok', content: 'héllo wörld ✓', sse });
      const r = await ai.responses.stream({ model: 'chat', input: 'x', store: false }).finalResponse();
      const what = JSON.stringify(sse);
      assert.equal(r.output_text, 'héllo wörld ✓', what);
      assert.equal(r.status, 'completed', what);
      assert.equal(r.usage?.output_tokens, completionTokensFor('héllo wörld ✓'), what);
    }
    up.setBehavior({ kind: 'ok' });
  });

  test('a break after content: error and response.failed events, a truncated connection, the SDK raises; fallback before content', async () => {
    up.setBehavior({ kind: 'drop-mid-stream', afterChunks: 2 });
    try {
      const res = await fetch(`${gw.baseURL}/responses`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', input: 'one two three four', stream: true }),
      });
      assert.equal(res.status, 200);
      const id = res.headers.get('x-airlock-request-id')!;
      let raw = '';
      const dec = new TextDecoder();
      await assert.rejects(async () => {
        for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) raw += dec.decode(c, { stream: true });
      });
      assert.match(raw, /^event: response\.created\n/);
      assert.match(raw, /event: response\.output_text\.delta\n/);
      assert.match(raw, /event: error\ndata: \{"type":"error","code":"stream_interrupted","message":"Stream interrupted: [^\n]+\n\nevent: response\.failed\ndata: \{"type":"response\.failed","response":\{[^\n]*"status":"failed"[^\n]*\n\n$/);
      assert.doesNotMatch(raw, /response\.completed/);
      const row = await ledgerRow(gw, id);
      assert.equal(row.error_class, 'stream_interrupted');
      assert.equal(row.kind, 'responses');
      await assert.rejects(ai.responses.stream({ model: 'chat', input: 'one two three four' }).finalResponse());
    } finally {
      up.setBehavior({ kind: 'ok' });
    }

    up.queue({ kind: 'drop-before-content' });
    const { data: stream, response } = await ai.responses.create({ model: 'fb', input: 'fall back', stream: true, store: false }).withResponse();
    const types: string[] = [];
    let text = '';
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'response.output_text.delta') text += ev.delta;
    }
    assert.equal(types.filter((t) => t === 'response.created').length, 1);
    assert.equal(text, 'echo: fall back');
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
  });
});
