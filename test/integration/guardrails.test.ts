// Guardrails through the real gateway process, with the official `openai` client: input
// redaction (the upstream never sees the card number), input blocks, output redaction and
// blocks (whole and streamed, in-band mid-stream), the hold-back window across every chunking
// and SSE format, shadow mode (changes nothing, records), the events and metrics, and the admin
// API (CRUD with the shared schema, refused pathological regexes, the "try it" endpoint).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { Agent, fetch as undiciFetch } from 'undici';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { randomChunks } from '../helpers/random.js';
import { startUpstream, type SSEShape, type TestUpstream } from '../helpers/upstream.js';

let gw: RunningGateway;
let up: TestUpstream;
let client: OpenAI;
const agent = new Agent();
const fetch = ((url: string | URL, init?: Record<string, unknown>) => undiciFetch(url, { ...init, dispatcher: agent })) as unknown as typeof globalThis.fetch;

const CARD = '4111 1111 1111 1111';
const EMAIL = 'jane.doe@example.com';
const GH = 'ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5';
const AIRLOCK_KEY = 'sk-airlock-AbCdEfGhIjKlMnOpQrStUv12';

const POLICIES = [
  { name: 'no-pii-in', direction: ['input'], detectors: ['pii', 'secrets'], action: 'redact', scope: { models: ['chat'] } },
  { name: 'restore-pii', direction: ['input'], detectors: ['email'], action: 'redact', restore: true, scope: { models: ['restore'] } },
  { name: 'no-project-names', direction: ['input'], detectors: [{ type: 'keywords', words: ['Falcon', 'Osprey'] }], action: 'block' },
  { name: 'no-secrets-out', direction: ['output'], detectors: ['secrets', 'card'], action: 'redact', scope: { models: ['chat'] } },
  { name: 'no-forbidden-out', direction: ['output'], detectors: [{ type: 'keywords', words: ['forbidden topic'] }], action: 'block', scope: { models: ['chat'] } },
  { name: 'watch-emails', direction: ['output'], detectors: ['email'], action: 'block', mode: 'shadow', scope: { models: ['chat', 'shadow'] } },
  { name: 'json-out', direction: ['output'], detectors: [{ type: 'response_schema' }], action: 'block', scope: { models: ['json'] } },
];

before(async () => {
  up = await startUpstream();
  const base = basicConfig(up.url);
  gw = await startGateway({
    config: {
      ...base,
      models: [
        ...base.models,
        { name: 'restore', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
        { name: 'shadow', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
        { name: 'plain', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
        { name: 'json', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      ],
      guardrails: POLICIES,
    },
  });
  client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000, fetch });
});

after(async () => {
  await agent.destroy();
  await gw?.stop();
  await up?.close();
});

async function events(requestId: string): Promise<any[]> {
  const r = await gw.admin('GET', `/guardrail-events?request_id=${requestId}`);
  assert.equal(r.status, 200);
  return r.body.data;
}

describe('input', () => {
  test('redaction: the upstream never sees the card number or the e-mail address; placeholders instead', async () => {
    up.reset();
    const { data, response } = await client.chat.completions
      .create({ model: 'chat', messages: [{ role: 'system', content: 'be brief' }, { role: 'user', content: `Charge ${CARD} and mail ${EMAIL}, then ${EMAIL} again` }] })
      .withResponse();
    const sent = JSON.stringify(up.completions().at(-1)!.body);
    assert.ok(!sent.includes('4111') && !sent.includes(EMAIL), sent);
    assert.match(sent, /Charge \[CARD_1\] and mail \[EMAIL_1\], then \[EMAIL_1\] again/);
    assert.equal(data.choices[0]!.message.content, 'echo: Charge [CARD_1] and mail [EMAIL_1], then [EMAIL_1] again');
    const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((e) => e.policy === 'no-pii-in'), 'the input event');
    assert.equal(ev.outcome, 'redacted');
    assert.deepEqual(ev.detectors, { 'pii:CARD': 1, 'pii:EMAIL': 2 });
    assert.equal(ev.key, 'notebook-app');
    assert.equal(ev.team, 'research');
    assert.ok(!JSON.stringify(ev).includes('jane'), 'an event never holds the matched text');
  });

  test('array content parts and completions prompts are redacted too', async () => {
    up.reset();
    await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: [{ type: 'text', text: `my key is ${AIRLOCK_KEY}` }] }] });
    const sent = JSON.stringify(up.completions().at(-1)!.body);
    assert.ok(!sent.includes(AIRLOCK_KEY), sent);
    assert.match(sent, /\[API_KEY_1\]/);
  });

  test('embeddings inputs and completions prompt lists are redacted too', async () => {
    up.reset();
    await client.embeddings.create({ model: 'chat', input: [`row for ${EMAIL}`, 'plain row'] });
    await client.completions.create({ model: 'chat', prompt: ['nothing here', `card ${CARD}`] });
    const [emb, cmp] = up.completions().map((r) => JSON.stringify(r.body));
    assert.ok(!emb!.includes(EMAIL) && emb!.includes('row for [EMAIL_1]') && emb!.includes('plain row'), emb);
    assert.ok(!cmp!.includes('4111') && cmp!.includes('card [CARD_1]'), cmp);
  });

  test('restore: the model sees placeholders, the user gets their own data back (whole and streamed)', async () => {
    up.reset();
    const r = await client.chat.completions.create({ model: 'restore', messages: [{ role: 'user', content: `reply to ${EMAIL}` }] });
    assert.ok(!JSON.stringify(up.completions().at(-1)!.body).includes(EMAIL));
    assert.equal(r.choices[0]!.message.content, `echo: reply to ${EMAIL}`);
    const s = await client.chat.completions.create({ model: 'restore', messages: [{ role: 'user', content: `reply to ${EMAIL} please` }], stream: true });
    let got = '';
    for await (const c of s) got += c.choices[0]?.delta.content ?? '';
    assert.equal(got, `echo: reply to ${EMAIL} please`);
  });

  test('block: 400 guardrail_blocked naming the policy, never the matched text; nothing goes upstream', async () => {
    up.reset();
    for (const word of ['Falcon', 'FALCON', 'fálcon']) {
      await assert.rejects(
        client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: `status of project ${word}?` }] }),
        (e: unknown) => {
          const err = e as InstanceType<typeof OpenAI.APIError>;
          assert.equal(err.status, 400);
          assert.equal(err.code, 'guardrail_blocked');
          assert.match(err.message, /no-project-names/);
          assert.ok(!err.message.toLowerCase().includes('falcon'), err.message);
          return true;
        },
      );
    }
    // "Falconer" is another word
    await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'the falconer came' }] });
    assert.equal(up.completions().length, 1);
  });
});

describe('output', () => {
  test('whole answer: secrets redacted, a blocked answer is a 400', async () => {
    up.setBehavior({ kind: 'ok', content: `here: ${GH} and card ${CARD}.` });
    try {
      const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.equal(r.choices[0]!.message.content, 'here: [GITHUB_TOKEN_1] and card [CARD_1].');
      up.setBehavior({ kind: 'ok', content: 'let us talk about the Forbidden Topic now' });
      await assert.rejects(client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }), (e: unknown) => {
        assert.equal((e as { code?: string }).code, 'guardrail_blocked');
        assert.match((e as Error).message, /no-forbidden-out/);
        return true;
      });
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  const filler = 'Thanks for asking. The quarterly numbers look good across every region this year. ';
  const TEXT = `${filler}Your token is ${GH} and the card is ${CARD}.\n${filler}Also ${AIRLOCK_KEY} works. ${filler}`;
  const EXPECTED = TEXT.replace(GH, '[GITHUB_TOKEN_1]').replace(CARD, '[CARD_1]').replace(AIRLOCK_KEY, '[API_KEY_1]');
  const shapes: [string, SSEShape | undefined, string[]][] = [
    ['char by char', undefined, [...TEXT]],
    ['random chunks', undefined, randomChunks(TEXT, 1)],
    ['random chunks, spaced JSON', { spaced: true }, randomChunks(TEXT, 2)],
    ['char by char, CRLF', { crlf: true }, [...TEXT]],
    ['random chunks, comments, no [DONE]', { comments: true, done: false }, randomChunks(TEXT, 3)],
    ['random chunks, data: without space, usage in the last chunk', { noSpaceAfterData: true, usageInLastChunk: true }, randomChunks(TEXT, 4)],
  ];
  for (const [how, sse, pieces] of shapes)
    test(`stream (${how}): split secrets are redacted before they are forwarded`, async () => {
      up.setBehavior({ kind: 'ok', pieces, ...(sse ? { sse } : {}) });
      try {
        const s = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: true, stream_options: { include_usage: true } });
        let got = '';
        let finish: string | null | undefined;
        let usage = 0;
        for await (const c of s) {
          got += c.choices[0]?.delta.content ?? '';
          finish ??= c.choices[0]?.finish_reason;
          if (c.usage) usage++;
        }
        assert.equal(got, EXPECTED);
        assert.equal(finish, 'stop');
        assert.equal(usage, 1);
      } finally {
        up.setBehavior({ kind: 'ok' });
      }
    });

  // compact chunks take the guard's fast path (the content cut out of the event's text, not parsed):
  // text that looks like JSON keys, escapes and non-ASCII must come out exactly, secrets redacted
  const TRICKY = `${filler}He said "use ${GH}" \\ in C:\\dir\\ {"delta":{"content":"x"},"finish_reason":"stop"} 😀 ünï\ttab\n card ${CARD} "index":7 ${filler}`;
  const TRICKY_EXPECTED = TRICKY.replace(GH, '[GITHUB_TOKEN_1]').replace(CARD, '[CARD_1]');
  for (const [how, pieces] of [
    ['char by char', [...TRICKY]],
    ['random chunks', randomChunks(TRICKY, 5)],
  ] as const)
    test(`stream (compact, ${how}): quotes, backslashes, key-like text and non-ASCII in the content come out exactly; secrets redacted`, async () => {
      up.setBehavior({ kind: 'ok', pieces: [...pieces] });
      try {
        const s = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: true });
        let got = '';
        let finish: string | null | undefined;
        for await (const c of s) {
          got += c.choices[0]?.delta.content ?? '';
          finish ??= c.choices[0]?.finish_reason;
        }
        assert.equal(got, TRICKY_EXPECTED);
        assert.equal(finish, 'stop');
      } finally {
        up.setBehavior({ kind: 'ok' });
      }
    });

  test('stream with two choices (n: 2), char by char: each choice is scanned on its own', async () => {
    up.setBehavior({ kind: 'ok', pieces: [...TEXT] });
    try {
      const s = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: true, n: 2 });
      const got = ['', ''];
      const finished = [false, false];
      for await (const c of s)
        for (const ch of c.choices) {
          got[ch.index] += ch.delta.content ?? '';
          if (ch.finish_reason) finished[ch.index] = true;
        }
      assert.deepEqual(got, [EXPECTED, EXPECTED]);
      assert.deepEqual(finished, [true, true]);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('stream (completions, char by char): redacted too', async () => {
    up.setBehavior({ kind: 'ok', pieces: [...TEXT] });
    try {
      const s = await client.completions.create({ model: 'chat', prompt: 'hi', stream: true });
      let got = '';
      for await (const c of s) got += c.choices[0]?.text ?? '';
      assert.equal(got, EXPECTED);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('stream: a block after content has been sent ends it with an in-band error the client raises', async () => {
    const text = `${filler.repeat(4)}and now the forbidden topic itself.`;
    up.setBehavior({ kind: 'ok', pieces: [...text] });
    try {
      const { data: s, response } = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
      let got = '';
      await assert.rejects(
        (async () => {
          for await (const c of s) got += c.choices[0]?.delta.content ?? '';
        })(),
        (e: unknown) => {
          assert.match((e as Error).message, /no-forbidden-out/);
          return true;
        },
      );
      assert.ok(got.length > 0, 'content before the block reached the client');
      assert.ok(!got.toLowerCase().includes('forbidden'), got);
      const id = response.headers.get('x-airlock-request-id')!;
      const ev = await eventually(async () => (await events(id)).find((e) => e.policy === 'no-forbidden-out'), 'the block event');
      assert.equal(ev.outcome, 'blocked');
      assert.equal(ev.blocked, true);
      const row = await eventually(async () => (await gw.admin('GET', `/usage/requests?request_id=${id}`)).body.data[0], 'the ledger row');
      assert.equal(row.error_class, 'guardrail_blocked');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('stream: tool-call arguments are held, checked and redacted whole', async () => {
    up.reset();
    // the test upstream answers "use tool" with a tool call whose arguments are {"q":"x"}
    const s = await client.chat.completions.create({
      model: 'chat',
      messages: [{ role: 'user', content: 'use tool' }],
      tools: [{ type: 'function', function: { name: 'lookup', parameters: { type: 'object' } } }],
      stream: true,
    });
    let args = '';
    let name = '';
    for await (const c of s) {
      const tc = c.choices[0]?.delta.tool_calls?.[0];
      if (tc?.function?.arguments) args += tc.function.arguments;
      if (tc?.function?.name) name = tc.function.name;
    }
    assert.equal(args, '{"q":"x"}');
    assert.equal(name, 'lookup');
  });

  test('shadow mode changes nothing and records what it would have done', async () => {
    up.setBehavior({ kind: 'ok', pieces: [...`write to ${EMAIL} today`] });
    try {
      const { data: s, response } = await client.chat.completions.create({ model: 'shadow', messages: [{ role: 'user', content: 'hi' }], stream: true }).withResponse();
      let got = '';
      for await (const c of s) got += c.choices[0]?.delta.content ?? '';
      assert.equal(got, `write to ${EMAIL} today`);
      const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((e) => e.policy === 'watch-emails'), 'the shadow event');
      assert.equal(ev.outcome, 'shadow');
      assert.equal(ev.blocked, false);
      assert.deepEqual(ev.detectors, { 'pii:EMAIL': 1 });
      const m = await gw.admin('GET', '/metrics');
      assert.match(m.body, /airlock_guardrail_hits_total\{policy="watch-emails",direction="output",action="block",mode="shadow",outcome="shadow"\} [1-9]/);
      const sum = await gw.admin('GET', '/guardrail-events/summary?buckets=4');
      const p = sum.body.policies.find((x: { policy: string }) => x.policy === 'watch-emails');
      assert.ok(p.shadow >= 1 && p.enforced === 0, JSON.stringify(p));
      // the hit rate: requests in the policy's scope (models chat and shadow) that it found something in
      assert.ok(p.hit_requests >= 1 && p.requests >= p.hit_requests, JSON.stringify(p));
      const unhit = sum.body.policies.find((x: { policy: string }) => x.policy === 'json-out');
      assert.ok(unhit && unhit.total === 0 && unhit.hit_requests === 0, 'every configured policy is listed, with or without hits');
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('a model no output policy applies to keeps the plain path', async () => {
    up.setBehavior({ kind: 'ok', pieces: [...`token ${GH}`] });
    try {
      const s = await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'hi' }], stream: true });
      let got = '';
      for await (const c of s) got += c.choices[0]?.delta.content ?? '';
      assert.equal(got, `token ${GH}`);
    } finally {
      up.setBehavior({ kind: 'ok' });
    }
  });
});

describe('response_format JSON schema', () => {
  const response_format = {
    type: 'json_schema' as const,
    json_schema: { name: 'person', schema: { type: 'object', properties: { name: { type: 'string' }, age: { type: 'integer', minimum: 0 } }, required: ['name', 'age'], additionalProperties: false } },
  };
  test('an answer that does not satisfy it is asked for once more', async () => {
    up.reset();
    up.queue({ kind: 'ok', content: '{"name": "Ada"}' }, { kind: 'ok', content: '{"name": "Ada", "age": 36}' });
    const { data, response } = await client.chat.completions.create({ model: 'json', messages: [{ role: 'user', content: 'who?' }], response_format }).withResponse();
    assert.equal(data.choices[0]!.message.content, '{"name": "Ada", "age": 36}');
    assert.equal(up.completions().length, 2);
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
    const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((e) => e.policy === 'json-out'), 'the schema event');
    assert.equal(ev.blocked, false);
    assert.deepEqual(ev.detectors, { 'response_schema:SCHEMA_MISMATCH': 1 });
  });
  test('twice wrong (not JSON, then a wrong type): 400 guardrail_blocked naming the policy and the place', async () => {
    up.reset();
    up.queue({ kind: 'ok', content: 'Ada, 36' }, { kind: 'ok', content: '{"name": "Ada", "age": "old"}' });
    await assert.rejects(client.chat.completions.create({ model: 'json', messages: [{ role: 'user', content: 'who?' }], response_format }), (e: unknown) => {
      assert.equal((e as { status?: number }).status, 400);
      assert.equal((e as { code?: string }).code, 'guardrail_blocked');
      assert.match((e as Error).message, /json-out.*at age/);
      assert.ok(!(e as Error).message.includes('old'));
      return true;
    });
    assert.equal(up.completions().length, 2);
  });
  test('streamed: the answer is held whole and checked when it ends; a wrong one is asked for once more, then a 400', async () => {
    up.reset();
    up.queue({ kind: 'ok', content: '{"name": "Ada", "age": -1}', chunkDelayMs: 5 }, { kind: 'ok', content: '{"name": "Ada", "age": 36}', chunkDelayMs: 5 });
    const { data: stream, response } = await client.chat.completions.create({ model: 'json', messages: [{ role: 'user', content: 'who?' }], response_format, stream: true }).withResponse();
    let got = '';
    for await (const c of stream) got += c.choices[0]?.delta.content ?? '';
    assert.equal(got, '{"name": "Ada", "age": 36}', 'only the second answer reached the client');
    assert.equal(up.completions().length, 2);
    assert.equal(response.headers.get('x-airlock-attempts'), '2');
    const ev = await eventually(async () => (await events(response.headers.get('x-airlock-request-id')!)).find((e) => e.policy === 'json-out'), 'the schema event');
    assert.equal(ev.blocked, false);

    up.reset();
    up.queue({ kind: 'ok', content: 'Ada, 36' }, { kind: 'ok', content: '{"name": "Ada"}' });
    await assert.rejects(
      (async () => {
        const s = await client.chat.completions.create({ model: 'json', messages: [{ role: 'user', content: 'who?' }], response_format, stream: true });
        for await (const c of s) void c;
      })(),
      (e: unknown) => {
        assert.equal((e as { status?: number }).status, 400, 'a plain error: nothing of the stream was sent');
        assert.equal((e as { code?: string }).code, 'guardrail_blocked');
        assert.match((e as Error).message, /json-out/);
        return true;
      },
    );
    assert.equal(up.completions().length, 2);

    // a valid answer passes in every SSE format
    for (const sse of [{ crlf: true }, { done: false }, { spaced: true, comments: true }] as SSEShape[]) {
      up.reset();
      up.setBehavior({ kind: 'ok', content: '{"name":"Bo","age":7}', sse });
      const s = await client.chat.completions.create({ model: 'json', messages: [{ role: 'user', content: 'who?' }], response_format, stream: true });
      let text = '';
      for await (const c of s) text += c.choices[0]?.delta.content ?? '';
      assert.equal(text, '{"name":"Bo","age":7}', JSON.stringify(sse));
      assert.equal(up.completions().length, 1);
    }
    up.setBehavior({ kind: 'ok' });
  });

  test('without a response_format nothing is checked; streams keep the plain path', async () => {
    up.reset();
    up.queue({ kind: 'ok', content: 'free text' });
    const r = await client.chat.completions.create({ model: 'json', messages: [{ role: 'user', content: 'who?' }] });
    assert.equal(r.choices[0]!.message.content, 'free text');
    assert.equal(up.completions().length, 1);
  });
});

describe('admin API', () => {
  test('CRUD with the shared schema; errors name the field', async () => {
    const p = { name: 'ids', direction: ['input'], detectors: [{ type: 'regex', pattern: '\\bPRJ-\\d{4}\\b', label: 'PROJECT' }], action: 'redact' };
    const c = await gw.admin('POST', '/guardrails', p);
    assert.equal(c.status, 201, JSON.stringify(c.body));
    assert.equal(c.body.mode, 'enforce');
    up.reset();
    await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'see PRJ-1234' }] });
    assert.match(JSON.stringify(up.completions().at(-1)!.body), /see \[PROJECT_1\]/);
    const u = await gw.admin('PUT', '/guardrails/ids', { ...p, mode: 'shadow' });
    assert.equal(u.status, 200);
    assert.equal((await gw.admin('GET', '/guardrails/ids')).body.mode, 'shadow');
    const dup = await gw.admin('POST', '/guardrails', p);
    assert.equal(dup.status, 409);
    const bad = await gw.admin('POST', '/guardrails', { ...p, name: 'x', action: 'explode' });
    assert.equal(bad.status, 400);
    assert.equal(bad.body.error.param, 'action');
    assert.equal((await gw.admin('DELETE', '/guardrails/ids')).status, 204);
    assert.equal((await gw.admin('GET', '/guardrails/ids')).status, 404);
  });

  test('a pathological regex is refused before it can stall anything', async () => {
    for (const pattern of ['(a+)+$', '(a|aa)*b', '(\\w+\\s?)*$']) {
      const r = await gw.admin('POST', '/guardrails', { name: 'evil', direction: ['input'], detectors: [{ type: 'regex', pattern }], action: 'block' });
      assert.equal(r.status, 400, pattern);
      assert.equal(r.body.error.param, 'detectors[0].pattern');
      assert.match(r.body.error.message, /exponential/);
    }
    const cfg = await gw.admin('POST', '/config/apply', { guardrails: [{ name: 'evil', direction: ['input'], detectors: [{ type: 'regex', pattern: '(x+x+)+y' }], action: 'block' }] });
    assert.equal(cfg.status, 400);
    assert.match(JSON.stringify(cfg.body), /guardrails\[0\]\.detectors\[0\]\.pattern/, 'the config names the field inside the detector');
    // any bad field inside an object detector is named by its path, not only detectors[N]
    const nested = await gw.admin('POST', '/guardrails', { name: 'n', direction: ['input'], detectors: ['pii', { type: 'keywords', words: ['ok', ''] }], action: 'block' });
    assert.equal(nested.status, 400);
    assert.equal(nested.body.error.param, 'detectors[1].words[1]');
    assert.match(nested.body.error.message, /must not be empty/);
    const typo = await gw.admin('POST', '/guardrails', { name: 'n', direction: ['input'], detectors: [{ type: 'guard_model', model: 'guard', on_failure: 'ajar' }], action: 'block' });
    assert.equal(typo.status, 400);
    assert.equal(typo.body.error.param, 'detectors[0].on_failure');
    // and requests still flow
    await client.chat.completions.create({ model: 'plain', messages: [{ role: 'user', content: 'a'.repeat(50_000) + '!' }] });
  });

  test('try it: what each policy finds and what would be sent on', async () => {
    const r = await gw.admin('POST', '/guardrails/test', { text: `mail ${EMAIL}, card ${CARD}`, direction: 'input', scope: { model: 'chat' } });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.output, 'mail [EMAIL_1], card [CARD_1]');
    const p = r.body.policies.find((x: { policy: string }) => x.policy === 'no-pii-in');
    assert.equal(p.applies, true);
    assert.deepEqual(p.findings.map((f: { type: string }) => f.type).sort(), ['CARD', 'EMAIL']);
    const blocked = await gw.admin('POST', '/guardrails/test', { text: 'Osprey', direction: 'input' });
    assert.deepEqual(blocked.body.blocked?.policy, 'no-project-names');
    assert.equal(blocked.body.output, null);
    const draft = await gw.admin('POST', '/guardrails/test', { text: 'AKIAIOSFODNN7EXAMPLE', policy: { name: 'draft', direction: ['input'], detectors: ['cloud_keys'], action: 'redact' } });
    assert.equal(draft.body.output, '[AWS_KEY_1]');
  });
});
