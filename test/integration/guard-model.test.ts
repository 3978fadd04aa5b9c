// The model-based guardrail (detector guard_model): a local classifier registered in Airlock is
// asked about each input through Airlock's routing, with the policy's timeout and its explicit
// fail-open / fail-closed choice; its failures never charge the upstream's breaker. Through the
// real gateway process, the official `openai` and `@anthropic-ai/sdk` clients and the simulated
// upstream (which plays the classifier: "unsafe S1" for anything about a bomb).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type Behavior, type RecordedRequest, type TestUpstream } from '../helpers/upstream.js';

const GUARD = 'llama-guard-3-1b';
const guard = (over: Record<string, unknown> = {}) => ({ type: 'guard_model', model: 'guard', timeout_ms: 1500, on_failure: 'closed', ...over });

function config(url: string) {
  return {
    endpoints: [{ name: 'gpu-1', base_url: url, health_check: { enabled: true, interval_ms: 60_000 } }],
    models: [
      { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      { name: 'lenient', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      { name: 'watched', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      { name: 'guard', targets: [{ endpoint: 'gpu-1', model: GUARD }] },
    ],
    teams: [{ name: 'research' }],
    keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research' }],
    guardrails: [
      { name: 'guard-closed', direction: ['input'], detectors: [guard()], action: 'block', scope: { models: ['chat'] } },
      { name: 'guard-open', direction: ['input'], detectors: [guard({ on_failure: 'open' })], action: 'block', scope: { models: ['lenient'] } },
      { name: 'guard-shadow', direction: ['input'], detectors: [guard({ instructions: 'Classify the user message.' })], action: 'block', mode: 'shadow', scope: { models: ['watched'] } },
    ],
    // one failure opens a breaker: a guard call that charged it would shut the guard model out
    settings: { breaker: { failure_threshold: 1, cooldown_ms: 600_000 }, retry_after_cap_ms: 0 },
  };
}

/** The classifier's part: Llama Guard's answers; `trouble` for what the guard model does instead. */
function classifier(trouble: () => Behavior | undefined) {
  return (req: RecordedRequest): Behavior => {
    if (req.body?.model !== GUARD) return { kind: 'ok' };
    const t = trouble();
    if (t) return t;
    const text = JSON.stringify(req.body.messages);
    return { kind: 'ok', content: /bomb/i.test(text) ? 'unsafe\nS1' : 'safe' };
  };
}

describe('guard_model detector', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let ai: OpenAI;
  let trouble: Behavior | undefined;

  const guardCalls = () => up.completions().filter((r) => r.body?.model === GUARD);
  const mainCalls = () => up.completions().filter((r) => r.body?.model === 'test-model');
  const events = async (id: string): Promise<any[]> => (await gw.admin<{ data: any[] }>('GET', `/guardrail-events?request_id=${id}`)).body.data;
  const blocked = async (p: PromiseLike<unknown>) => {
    try {
      await p;
    } catch (e) {
      if (e instanceof OpenAI.APIError) return e;
      throw e;
    }
    assert.fail('expected a refusal');
  };

  before(async () => {
    up = await startUpstream({ models: ['test-model', GUARD] });
    up.setBehavior(classifier(() => trouble));
    gw = await startGateway({ config: config(up.url) });
    ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('unsafe: 400 guardrail_blocked naming the policy and the category; the model is never asked; the event is recorded', async () => {
    up.reset();
    const e = await blocked(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'how do I build a bomb' }] }));
    assert.equal(e.status, 400);
    assert.equal(e.code, 'guardrail_blocked');
    assert.match(e.message, /guard-closed.*judged the request unsafe \(S1\)/);
    assert.ok(!e.message.includes('bomb'), 'the text is never repeated');
    const [call] = guardCalls();
    assert.ok(call, 'the classifier was asked');
    assert.deepEqual(call.body.messages, [{ role: 'user', content: 'how do I build a bomb' }]);
    assert.equal(call.body.max_tokens, 16);
    assert.equal(mainCalls().length, 0, 'nothing reached the model');
    const id = e.headers?.get('x-airlock-request-id');
    assert.ok(id);
    const ev = await eventually(async () => (await events(id)).find((x) => x.policy === 'guard-closed'), 'the guard event');
    assert.equal(ev.blocked, true);
    assert.deepEqual(ev.detectors, { 'guard_model:S1': 1 });
  });

  test('safe: the classifier first, then the model; the Messages API goes through it too', async () => {
    up.reset();
    const r = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'how do I bake bread' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: how do I bake bread');
    assert.deepEqual(up.completions().map((x) => x.body.model), [GUARD, 'test-model']);

    const claude = new Anthropic({ apiKey: TEST_KEY, baseURL: gw.dataUrl, maxRetries: 0 });
    await assert.rejects(claude.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'a bomb, please' }] }), (e: unknown) => {
      assert.ok(e instanceof Anthropic.BadRequestError);
      assert.match((e as Error).message, /guard-closed/);
      return true;
    });
  });

  test('the classifier hangs: fail-closed refuses, fail-open lets through (recorded), each after its timeout', async () => {
    trouble = { kind: 'hang' };
    try {
      up.reset();
      const e = await blocked(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }));
      assert.equal(e.status, 400);
      assert.match(e.message, /guard-closed.*did not answer within 1500 ms, and the policy fails closed/);
      assert.equal(mainCalls().length, 0);

      const { data, response } = await ai.chat.completions.create({ model: 'lenient', messages: [{ role: 'user', content: 'hello' }] }).withResponse();
      assert.equal(data.choices[0]!.message.content, 'echo: hello');
      const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((x) => x.policy === 'guard-open'), 'the fail-open event');
      assert.equal(ev.blocked, false);
      assert.deepEqual(ev.detectors, { 'guard_model:UNAVAILABLE': 1 });
    } finally {
      trouble = undefined;
    }
  });

  test('the classifier fails (500): refused as the policy says, and its breaker is not charged', async () => {
    trouble = { kind: 'status', status: 500 };
    try {
      const e = await blocked(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }));
      assert.match(e.message, /could not be asked.*status 500.*fails closed/);
      await blocked(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello again' }] }));
    } finally {
      trouble = undefined;
    }
    // with failure_threshold 1, one charged failure would have opened the guard target's breaker
    const { data, response } = await ai.chat.completions.create({ model: 'guard', messages: [{ role: 'user', content: 'is this safe' }] }).withResponse();
    assert.equal(data.choices[0]!.message.content, 'safe');
    assert.equal(response.headers.get('x-airlock-attempts'), '1');
    const ok = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'fine now' }] });
    assert.equal(ok.choices[0]!.message.content, 'echo: fine now');
  });

  test('shadow mode: asked (with its instructions), recorded, nothing changed', async () => {
    up.reset();
    const { data, response } = await ai.chat.completions.create({ model: 'watched', messages: [{ role: 'user', content: 'a bomb recipe' }] }).withResponse();
    assert.equal(data.choices[0]!.message.content, 'echo: a bomb recipe');
    assert.deepEqual(guardCalls()[0]!.body.messages, [
      { role: 'system', content: 'Classify the user message.' },
      { role: 'user', content: 'a bomb recipe' },
    ]);
    const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((x) => x.policy === 'guard-shadow'), 'the shadow event');
    assert.equal(ev.blocked, false);
    assert.equal(ev.mode, 'shadow');
  });

  test('the policy is checked: no redaction, an explicit on_failure, a timeout in range (each named by its field)', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ name: 'g', direction: ['output'], detectors: [guard()], action: 'redact' }, /detectors\[0\].*no span to redact/],
      [{ name: 'g', direction: ['input'], detectors: [{ type: 'guard_model', model: 'guard' }], action: 'block' }, /"param":"detectors\[0\]\.on_failure"/],
      [{ name: 'g', direction: ['input'], detectors: [guard({ timeout_ms: 10 })], action: 'block' }, /"param":"detectors\[0\]\.timeout_ms"/],
    ];
    for (const [p, re] of cases) {
      const r = await gw.admin('POST', '/guardrails', p);
      assert.equal(r.status, 400, JSON.stringify(p));
      assert.match(JSON.stringify(r.body), re);
    }
  });
});
