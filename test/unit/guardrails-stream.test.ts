// The hold-back scanner over streamed text: whatever the chunking (char by char, random), a
// secret or card number split across chunks never reaches the output; text without findings
// comes out exactly as it went in; a block policy stops the stream before the match is sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { guardrailSchema } from '../../gateway/config/guardrails-schema.js';
import { Placeholders, compilePolicy, evaluatePolicies, type Hit } from '../../gateway/guardrails/policy.js';
import { GuardBlock, MAX_HOLD, TextScanner } from '../../gateway/guardrails/stream.js';
import { guardEvents } from '../../gateway/engine/stages.js';
import { StreamInspector, type EventTransform } from '../../gateway/engine/openai/stream-inspector.js';
import type { SSEEvent } from '../../gateway/engine/sse.js';
import { GuardrailEngine } from '../../gateway/guardrails/engine.js';
import { randomChunks } from '../helpers/random.js';

const policy = (o: Record<string, unknown>) => compilePolicy(guardrailSchema.parse({ name: 'p', direction: ['output'], ...o }));
const redactAll = policy({ name: 'no-leaks', detectors: ['pii', 'secrets'], action: 'redact' });
const blockSecrets = policy({ name: 'no-secrets', detectors: ['secrets'], action: 'block' });
const shadow = policy({ name: 'watch', detectors: ['pii', 'secrets'], action: 'block', mode: 'shadow' });

function chunkings(text: string): [string, string[]][] {
  const out: [string, string[]][] = [['char by char', [...text]], ['whole', [text]]];
  for (let s = 1; s <= 20; s++) out.push([`random chunking #${s}`, randomChunks(text, s, s % 3 === 0 ? 40 : 7)]);
  return out;
}

function run(policies: ReturnType<typeof policy>[], parts: string[], hits = new Map<string, Hit>()): string {
  const sc = new TextScanner(policies, 'output', new Placeholders(), hits, false);
  let out = '';
  for (const p of parts) out += sc.push(p);
  return out + sc.end();
}

const SECRETS = {
  card: '4111 1111 1111 1111',
  github: 'ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5',
  airlock: 'sk-airlock-AbCdEfGhIjKlMnOpQrStUv12',
  email: 'jane.doe@example.com',
  iban: 'DE89 3704 0044 0532 0130 00',
};
const filler = 'The quarterly report is attached; revenue grew in every region and the team did well. ';
const TEXT = `${filler}Card ${SECRETS.card}, token ${SECRETS.github}.\r\n${filler}Key ${SECRETS.airlock} for ${SECRETS.email}, IBAN ${SECRETS.iban}. ${filler}`;

describe('redaction across chunk boundaries', () => {
  for (const [how, parts] of chunkings(TEXT))
    test(how, () => {
      const out = run([redactAll], parts);
      for (const [k, v] of Object.entries(SECRETS)) assert.ok(!out.includes(v), `${k} leaked: ${out}`);
      for (const ph of ['[CARD_1]', '[GITHUB_TOKEN_1]', '[API_KEY_1]', '[EMAIL_1]', '[IBAN_1]']) assert.ok(out.includes(ph), `${ph} missing: ${out}`);
      // everything else is as it was
      let expected = TEXT;
      expected = expected.replace(SECRETS.card, '[CARD_1]').replace(SECRETS.github, '[GITHUB_TOKEN_1]').replace(SECRETS.airlock, '[API_KEY_1]').replace(SECRETS.email, '[EMAIL_1]').replace(SECRETS.iban, '[IBAN_1]');
      assert.equal(out, expected);
    });
});

test('text without findings comes out unchanged, whatever the chunking', () => {
  const t = filler.repeat(20) + 'Ünïcödé 👩‍💻 text 😀 stays whole.';
  for (const [, parts] of chunkings(t)) assert.equal(run([redactAll], parts), t);
});

test('a private key streamed line by line is held whole and redacted', () => {
  const pem = '-----BEGIN PRIVATE KEY-----\n' + 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7VJTUt9Us8cKj\n'.repeat(30) + '-----END PRIVATE KEY-----';
  const t = `here it is:\n${pem}\nkeep it safe`;
  for (const [, parts] of chunkings(t).slice(0, 6)) {
    const out = run([redactAll], parts);
    assert.equal(out, 'here it is:\n[PRIVATE_KEY_1]\nkeep it safe');
  }
});

describe('the prefilter (detector anchors) never skips a match whose anchor came in an earlier chunk', () => {
  // the chunk with the detector's anchor ("@", "=") comes first; the chunks after it hold none of
  // the detector's anchors (so a prefilter over each chunk alone would skip them)
  const splits: [string, string[], string, string][] = [
    ['an e-mail address', ['mail jane.doe@', 'exam', 'ple.', 'com', ' today.'], 'mail [EMAIL_1] today.', 'pii:EMAIL'],
    ['a key-like assignment', ['the api_key=', 'Zx8Q', 'p2Lm', '9Rt4', 'Vb7N', 'c1Kd', ' is set.'], 'the api_key=[SECRET_1] is set.', 'secrets:SECRET'],
  ];
  const anchorsOf = (type: string) => (type === 'pii:EMAIL' ? '@' : ':=');
  for (const [what, parts, redacted, type] of splits)
    for (const lead of [0, 40, 150, 300]) {
      const head = filler.repeat(4).slice(0, lead);
      test(`${what}, after ${lead} characters`, () => {
        for (const p of parts.slice(1)) assert.ok(![...anchorsOf(type)].some((c) => p.includes(c)), `chunk ${JSON.stringify(p)} holds an anchor`);
        const chunks = [...(head ? [head] : []), ...parts, filler];
        assert.equal(run([redactAll], chunks), head + redacted + filler);
        const hits = new Map<string, Hit>();
        assert.equal(run([shadow], chunks, hits), chunks.join(''));
        assert.deepEqual(hits.get('watch\u0000output')?.detectors, { [type]: 1 });
      });
    }
});

test('a block policy throws before any of the match is released', () => {
  const t = `${filler.repeat(3)}use ${SECRETS.github} now`;
  for (const [how, parts] of chunkings(t)) {
    const sc = new TextScanner([blockSecrets], 'output', new Placeholders(), new Map(), false);
    let out = '';
    assert.throws(
      () => {
        for (const p of parts) out += sc.push(p);
        out += sc.end();
      },
      (e: unknown) => e instanceof GuardBlock && e.policy === 'no-secrets',
      how,
    );
    assert.ok(!out.includes('ghp_'), `${how}: part of the token was sent: ${out}`);
  }
});

test('shadow mode: the text goes on as it came, at once, and the findings are counted once', () => {
  for (const [how, parts] of chunkings(TEXT)) {
    const hits = new Map<string, Hit>();
    const sc = new TextScanner([shadow], 'output', new Placeholders(), hits, false);
    let out = '';
    for (const p of parts) {
      const r = sc.push(p);
      assert.equal(r, p, `${how}: shadow mode held or changed a chunk`);
      out += r;
    }
    out += sc.end();
    assert.equal(out, TEXT);
    const h = hits.get('watch\u0000output')!;
    assert.equal(h.blocked, false);
    assert.deepEqual(
      Object.keys(h.detectors).sort(),
      ['pii:CARD', 'pii:EMAIL', 'pii:IBAN', 'secrets:API_KEY', 'secrets:GITHUB_TOKEN'],
      `${how}: ${JSON.stringify(h.detectors)}`,
    );
    for (const [k, n] of Object.entries(h.detectors)) assert.equal(n, 1, `${how}: ${k} counted ${n} times`);
  }
});

test('an endless token is held at most MAX_HOLD characters', () => {
  const sc = new TextScanner([redactAll], 'output', new Placeholders(), new Map(), false);
  let out = '';
  for (let i = 0; i < 200; i++) out += sc.push('A'.repeat(1024));
  assert.ok(out.length > 200 * 1024 - MAX_HOLD - 1024, `released ${out.length}`);
});

describe('evaluate(direction, text|json, scope): the protocol-neutral entry point', () => {
  const p = compilePolicy(guardrailSchema.parse({ name: 'tools', direction: ['tool_args'], detectors: ['pii'], action: 'redact', scope: { tools: ['send_mail'] } }));
  test('redacts every string inside a JSON value, keeps its shape', () => {
    const r = evaluatePolicies([p], 'tool_args', { to: 'jane.doe@example.com', cc: ['bob@example.org'], n: 3, ok: true }, { tool: 'send_mail' });
    assert.equal(r.action, 'redact');
    assert.deepEqual(r.value, { to: '[EMAIL_1]', cc: ['[EMAIL_2]'], n: 3, ok: true });
    assert.deepEqual(r.hits[0]!.detectors, { 'pii:EMAIL': 2 });
  });
  test("object keys are text too: a secret or a name in a free-form map's key is found and redacted there", () => {
    const r = evaluatePolicies([p], 'tool_args', { contacts: { 'jane.doe@example.com': 'Jane', note: 'x' }, list: [{ 'bob@example.org': 1 }] }, { tool: 'send_mail' });
    assert.equal(r.action, 'redact');
    assert.deepEqual(r.value, { contacts: { '[EMAIL_1]': 'Jane', note: 'x' }, list: [{ '[EMAIL_2]': 1 }] });
    const b = compilePolicy(guardrailSchema.parse({ name: 'no-secrets', direction: ['tool_args'], detectors: ['secrets'], action: 'block' }));
    const key = 'ghp_' + 'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8';
    assert.equal(evaluatePolicies([b], 'tool_args', { [key]: 'x' }, {}).action, 'block');
    assert.equal(evaluatePolicies([b], 'tool_args', { note: key }, {}).action, 'block');
    assert.equal(evaluatePolicies([b], 'tool_args', { note: 'fine', __proto__x: 'y' }, {}).action, 'pass');
  });
  test('out of scope or another direction: nothing', () => {
    assert.equal(evaluatePolicies([p], 'tool_args', 'jane.doe@example.com', { tool: 'search' }).action, 'pass');
    assert.equal(evaluatePolicies([p], 'tool_result', 'jane.doe@example.com', { tool: 'send_mail' }).action, 'pass');
  });
  test('block names the policy and the kinds, never the text', () => {
    const b = compilePolicy(guardrailSchema.parse({ name: 'no-cards', direction: ['tool_result'], detectors: ['card'], action: 'block' }));
    const r = evaluatePolicies([b], 'tool_result', 'card 4111 1111 1111 1111', {});
    assert.equal(r.action, 'block');
    assert.equal(r.blocked!.policy, 'no-cards');
    assert.ok(!r.blocked!.message.includes('4111'));
    assert.match(r.blocked!.message, /CARD/);
  });
});

describe('the output guard behind the stream inspector (the gateway\'s stream path)', () => {
  const spec = guardrailSchema.parse({ name: 'no-leaks', direction: ['output'], detectors: ['pii', 'secrets'], action: 'redact' });
  const snapshot = { guardrails: [spec], settings: { limits: { max_response_bytes: 1 << 20 } } };
  const pre = '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[';
  const ev = (choice: string) => `data: ${pre}${choice}]}\n\n`;
  // the role chunk and the finish chunk are parsed by the inspector for its own decisions, and
  // that parse goes along to the guard; here the secret is split between the last content chunk
  // and the finish chunk, which carries content too
  const bytes =
    ev('{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}') +
    ev('{"index":0,"delta":{"content":"Use the key sk-airlock-AbCdEfGh"},"logprobs":null,"finish_reason":null}') +
    ev('{"index":0,"delta":{"content":"IjKlMnOpQrStUv12 and write to jane.doe@"},"logprobs":null,"finish_reason":null}') +
    ev('{"index":0,"delta":{"content":"example.com today."},"logprobs":null,"finish_reason":"stop"}') +
    `data: ${pre}],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}\n\n` +
    'data: [DONE]\n\n';
  for (const [how, parts] of [['whole', [bytes]], ...Array.from({ length: 12 }, (_, s) => [`random chunking #${s + 1}`, randomChunks(bytes, s + 1, s % 2 ? 60 : 9)] as const)] as const)
    test(`secrets split across chunks are redacted; the events handed over are not changed (${how})`, () => {
      const engine = new GuardrailEngine(() => undefined);
      const ctx = { kind: 'chat', attempts: 1, body: {}, snapshot, model: { name: 'chat' }, requestedModel: 'chat', key: undefined, status: 200 } as unknown as Parameters<typeof guardEvents>[1];
      const guard = guardEvents(engine.guards(), ctx)!;
      const seen: { ev: SSEEvent; before: string | undefined }[] = [];
      const transform: EventTransform = {
        event(e) {
          const rec = { ev: e, before: e.parsed ? JSON.stringify(e.parsed) : undefined };
          seen.push(rec);
          return guard.event(e);
        },
        end: () => guard.end(),
      };
      const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform });
      const out: Buffer[] = [];
      for (const p of parts) out.push(...insp.push(Buffer.from(p)));
      out.push(...insp.end());
      const text = Buffer.concat(out)
        .toString()
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => (JSON.parse(e.slice(6)) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '')
        .join('');
      assert.equal(text, 'Use the key [API_KEY_1] and write to [EMAIL_1] today.');
      assert.ok(insp.done && insp.finished);
      // the inspector's parse went along for the role and the finish chunk, and no guard changed it
      assert.ok(seen.filter((s) => s.ev.parsed).length >= 2, 'the role and finish chunks carry their parse');
      for (const s of seen) if (s.ev.parsed) assert.deepEqual(s.ev.parsed, JSON.parse(s.ev.data), 'parsed is the event data, unchanged');
      for (const s of seen) if (s.before !== undefined) assert.equal(JSON.stringify(s.ev.parsed), s.before);
    });

  // the usual end of a stream: a finish chunk with an empty delta. The held text goes out as a
  // content chunk of its own before it, and the finish chunk as the upstream wrote it (not parsed
  // into a copy and re-encoded); written with spaces (no template), the same text comes out
  for (const spaced of [false, true])
    test(`a finish chunk that says nothing else goes on as it came, the held text before it (${spaced ? 'spaced JSON' : 'compact JSON'})`, () => {
      const engine = new GuardrailEngine(() => undefined);
      const ctx = { kind: 'chat', attempts: 1, body: {}, snapshot, model: { name: 'chat' }, requestedModel: 'chat', key: undefined, status: 200 } as unknown as Parameters<typeof guardEvents>[1];
      const guard = guardEvents(engine.guards(), ctx)!;
      const fmt = (o: unknown) => (spaced ? JSON.stringify(o, null, 1).replace(/\n/g, '') : JSON.stringify(o));
      const chunk = (delta: object, finish: string | null) => fmt({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices: [{ index: 0, delta, logprobs: null, finish_reason: finish }] });
      const finish = chunk({}, 'stop');
      const upstream = [chunk({ role: 'assistant', content: '' }, null), chunk({ content: 'Mail jane.doe@' }, null), chunk({ content: 'example.com now.' }, null), finish];
      const insp = new StreamInspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform: guard });
      const out: Buffer[] = [];
      out.push(...insp.push(Buffer.from(upstream.map((d) => `data: ${d}\n\n`).join('') + 'data: [DONE]\n\n')));
      out.push(...insp.end());
      const datas = Buffer.concat(out)
        .toString()
        .split('\n\n')
        .filter((e) => e.startsWith('data: {'))
        .map((e) => e.slice(6));
      const parsed = datas.map((d) => JSON.parse(d) as { choices: { delta: { content?: string }; finish_reason: string | null }[] });
      assert.equal(parsed.map((p) => p.choices[0]?.delta.content ?? '').join(''), 'Mail [EMAIL_1] now.');
      assert.equal(parsed.at(-1)!.choices[0]!.finish_reason, 'stop', 'the finish comes last');
      assert.equal(parsed.filter((p) => p.choices[0]?.finish_reason).length, 1, 'one finish');
      if (!spaced) assert.equal(datas.at(-1), finish, 'the finish chunk as the upstream wrote it');
      engine.finish(ctx);
    });
});
