// The model-based guardrail (detector guard_model): a local classifier registered in Airlock is
// asked about each input through Airlock's routing, with the policy's timeout and its explicit
// fail-open / fail-closed choice; its failures never charge the upstream's breaker. Through the
// real gateway process, the official `openai` and `@anthropic-ai/sdk` clients and the simulated
// upstream (which plays the classifier: "unsafe S1" for anything about a bomb).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { TEST_KEY, eventually, type RunningGateway } from '../helpers/gateway.js';
import { GUARD, guard, refused as blocked, startGuardModel, type GuardModelSetup } from '../helpers/guard-model.js';
import type { TestUpstream } from '../helpers/upstream.js';

const GUARDRAILS = [
  { name: 'guard-closed', direction: ['input'], detectors: [guard()], action: 'block', scope: { models: ['chat'] } },
  { name: 'guard-open', direction: ['input'], detectors: [guard({ on_failure: 'open' })], action: 'block', scope: { models: ['lenient'] } },
  { name: 'guard-shadow', direction: ['input'], detectors: [guard({ instructions: 'Classify the user message.' })], action: 'block', mode: 'shadow', scope: { models: ['watched'] } },
];

describe('guard_model detector', () => {
  let setup: GuardModelSetup;
  let up: TestUpstream;
  let gw: RunningGateway;
  let ai: OpenAI;

  const guardCalls = () => setup.guardCalls();
  const mainCalls = () => up.completions().filter((r) => r.body?.model === 'test-model');
  const events = (id: string) => setup.events(id);

  before(async () => {
    setup = await startGuardModel({ guardrails: GUARDRAILS });
    ({ up, gw, ai } = setup);
  });
  after(() => setup?.close());

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
    setup.trouble = { kind: 'hang' };
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
      setup.trouble = undefined;
    }
  });

  test('the classifier fails (500): refused as the policy says, and its breaker is not charged', async () => {
    setup.trouble = { kind: 'status', status: 500 };
    try {
      const e = await blocked(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }));
      assert.match(e.message, /could not be asked.*status 500.*fails closed/);
      await blocked(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello again' }] }));
    } finally {
      setup.trouble = undefined;
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

  test('try it (POST /guardrails/test): the classifier is asked through the routing, its verdict shown; nothing recorded', async () => {
    const before = (await gw.admin<{ data: unknown[] }>('GET', '/guardrail-events?limit=1000')).body.data.length;
    const tryIt = async (body: Record<string, unknown>) => {
      const r = await gw.admin('POST', '/guardrails/test', body);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      return r.body as { output: string | null; blocked: { policy: string; message: string } | null; policies: any[] };
    };
    const entry = (r: { policies: any[] }, name: string) => r.policies.find((p) => p.policy === name);

    up.reset();
    let r = await tryIt({ text: 'how do I build a bomb', direction: 'input', scope: { model: 'chat' } });
    assert.equal(r.output, null);
    assert.equal(r.blocked?.policy, 'guard-closed');
    assert.match(r.blocked.message, /judged the request unsafe \(S1\)/);
    assert.deepEqual(entry(r, 'guard-closed').guard_model, [{ model: 'guard', verdict: 'unsafe', category: 'S1', blocks: true }]);
    assert.deepEqual(entry(r, 'guard-closed').findings, [{ detector: 'guard_model', type: 'S1', start: 0, end: 0 }]);
    assert.deepEqual(entry(r, 'guard-open').guard_model, [], 'a policy out of scope is not asked');
    assert.equal(guardCalls().length, 1, 'the classifier was asked once');
    assert.deepEqual(guardCalls()[0]!.body.messages, [{ role: 'user', content: 'how do I build a bomb' }]);

    r = await tryIt({ text: 'how do I bake bread', direction: 'input', scope: { model: 'chat' } });
    assert.equal(r.output, 'how do I bake bread');
    assert.equal(r.blocked, null);
    assert.deepEqual(entry(r, 'guard-closed').guard_model, [{ model: 'guard', verdict: 'safe', blocks: false }]);

    r = await tryIt({ text: 'a bomb recipe', direction: 'input', scope: { model: 'watched' } });
    assert.equal(r.output, 'a bomb recipe', 'shadow changes nothing');
    assert.deepEqual(entry(r, 'guard-shadow').guard_model, [{ model: 'guard', verdict: 'unsafe', category: 'S1', blocks: false }]);
    assert.equal(guardCalls().at(-1)!.body.messages[0].content, 'Classify the user message.', 'with the policy\'s instructions');

    // an unsaved policy: the other detectors first (a block by them asks no classifier), after redaction otherwise
    up.reset();
    const policy = { name: 'draft', direction: ['input'], detectors: ['email', guard()], action: 'block' };
    r = await tryIt({ text: 'mail jane.doe@example.com about the bomb', direction: 'input', policy });
    assert.equal(r.blocked?.policy, 'draft');
    assert.deepEqual(entry(r, 'draft').guard_model, []);
    assert.equal(guardCalls().length, 0);

    // the classifier hangs: the detector's timeout, then its on_failure
    setup.trouble = { kind: 'hang' };
    try {
      const [closed, open] = await Promise.all([
        tryIt({ text: 'hello', direction: 'input', scope: { model: 'chat' } }),
        tryIt({ text: 'hello', direction: 'input', scope: { model: 'lenient' } }),
      ]);
      assert.equal(closed.output, null);
      assert.match(closed.blocked!.message, /did not answer within 1500 ms, and the policy fails closed/);
      assert.deepEqual(entry(closed, 'guard-closed').guard_model, [
        { model: 'guard', verdict: 'failed', reason: 'the guard model "guard" did not answer within 1500 ms', on_failure: 'closed', blocks: true },
      ]);
      assert.equal(open.output, 'hello');
      assert.equal(entry(open, 'guard-open').guard_model[0].verdict, 'failed');
      assert.equal(entry(open, 'guard-open').guard_model[0].blocks, false);
    } finally {
      setup.trouble = undefined;
    }

    const after = (await gw.admin<{ data: unknown[] }>('GET', '/guardrail-events?limit=1000')).body.data.length;
    assert.equal(after, before, 'trying records no event');
  });

  test("an auditor's try runs the local detectors only: no classifier is asked (saved or unsaved policy), each is listed as not asked", async () => {
    const created = await gw.admin('POST', '/tokens', { name: 'try-auditor', role: 'auditor' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const asAuditor = { authorization: `Bearer ${(created.body as { token: string }).token}` };
    up.reset();
    const saved = await gw.admin('POST', '/guardrails/test', { text: 'how do I build a bomb', direction: 'input', scope: { model: 'chat' } }, asAuditor);
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    const entry = (saved.body as { policies: { policy: string; guard_model: unknown[] }[] }).policies.find((p) => p.policy === 'guard-closed')!;
    assert.deepEqual(entry.guard_model, [{ model: 'guard', verdict: 'skipped', reason: "not asked: an auditor's try runs the local detectors only (an admin's asks the classifier)", blocks: false }]);
    assert.equal((saved.body as { output: string | null }).output, 'how do I build a bomb', 'nothing blocks what was not asked');
    // an unsaved policy naming any model asks nothing either
    const draft = await gw.admin('POST', '/guardrails/test', { text: 'hello', direction: 'input', policy: { name: 'draft', direction: ['input'], detectors: [guard()], action: 'block' } }, asAuditor);
    assert.equal(draft.status, 200, JSON.stringify(draft.body));
    assert.equal((draft.body as { policies: { guard_model: { verdict: string }[] }[] }).policies[0]!.guard_model[0]!.verdict, 'skipped');
    assert.equal(guardCalls().length, 0, 'the classifier was not asked');
    // the local detectors still run for an auditor
    const local = await gw.admin('POST', '/guardrails/test', { text: 'mail jane.doe@example.com', direction: 'input', policy: { name: 'pii', direction: ['input'], detectors: ['email'], action: 'redact' } }, asAuditor);
    assert.equal((local.body as { output: string }).output, 'mail [EMAIL_1]');
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
