// The pipeline's seams, where the next capabilities plug in: lifecycle events on
// diagnostics_channel (in order, with the upstream traceparent replaceable per attempt), admission
// that sees the settled cost before it releases, and output guards that pass, hold, replace or
// block — a guard's decision or failure never charging the upstream's breaker. The pipeline runs
// in this process (guards have no configuration yet) over a real SQLite store, behind a real
// HTTP server, against the simulated upstream over real HTTP.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import diagnostics_channel from 'node:diagnostics_channel';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { ensureDataDir, openDatabase, type DB } from '../../gateway/store/db.js';
import { Secrets } from '../../gateway/store/secrets.js';
import { ConfigStore } from '../../gateway/store/config-store.js';
import { buildSnapshot, type Snapshot } from '../../gateway/engine/snapshot.js';
import { Runtime } from '../../gateway/engine/runtime.js';
import { Pipeline } from '../../gateway/engine/pipeline.js';
import { messagesAdapter } from '../../gateway/engine/anthropic/messages.js';
import { responsesAdapter } from '../../gateway/engine/responses/responses.js';
import { newRequestId } from '../../gateway/engine/request-id.js';
import { channels } from '../../gateway/engine/events.js';
import { gatewayError, type GatewayError } from '../../gateway/engine/errors.js';
import type { Admission, Guards, InputGuard, OutputGuard, RequestContext } from '../../gateway/engine/stages.js';
import type { SSEEvent } from '../../gateway/engine/sse.js';
import { TEST_KEY, basicConfig, tmpDir } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface Harness {
  url: string;
  pipeline: Pipeline;
  runtime: Runtime;
  snapshot: Snapshot;
  close(): Promise<void>;
}

const guards: { input: InputGuard[]; output: OutputGuard[] } = { input: [], output: [] };
const released: { cost: number; prompt: number; completion: number; status: number }[] = [];
/** set by a test: admission refuses with it (as a budget would) */
let refuseWith: GatewayError | undefined;
const admission: Admission = {
  admit() {
    if (refuseWith) throw refuseWith;
  },
  release(ctx: RequestContext) {
    released.push({ cost: ctx.cost, prompt: ctx.promptTokens, completion: ctx.completionTokens, status: ctx.status });
  },
};

async function harness(upstreamUrl: string): Promise<Harness & { db: DB }> {
  const dir = tmpDir();
  ensureDataDir(dir);
  const db = openDatabase(dir);
  const secrets = Secrets.load(dir);
  const store = new ConfigStore(db, secrets);
  const r = store.apply({ ...basicConfig(upstreamUrl), settings: { breaker: { failure_threshold: 1, cooldown_ms: 60_000 } } }, { source: 'file' });
  assert.ok(r.ok, JSON.stringify(r.issues));
  const snapshot = buildSnapshot(store.state(), secrets, 1);
  const runtime = new Runtime();
  runtime.update(snapshot);
  const g: Guards = guards;
  const pipeline = new Pipeline({ snapshot: () => snapshot, runtime, hasher: secrets, admission, guards: g, adapters: { messages: messagesAdapter, responses: responsesAdapter(undefined) } });
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    const kind = req.url === '/v1/messages' ? 'messages' : req.url === '/v1/responses' ? 'responses' : 'chat';
    req.on('end', () => void pipeline.handle(kind, newRequestId(), JSON.parse(body), req.headers, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/v1`;
  return {
    url,
    pipeline,
    runtime,
    snapshot,
    db,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
      await runtime.close();
      db.close();
    },
  };
}

function target(h: Harness) {
  const t = h.snapshot.models.get('chat')!.targets[0]!;
  return h.runtime.targetStatus(t);
}

const text = (j: { choices: { delta?: { content?: string | null } }[] }) => j.choices[0]?.delta?.content ?? '';

describe('pipeline seams (in-process pipeline, real HTTP, real SQLite)', () => {
  let up: TestUpstream;
  let h: Harness & { db: DB };
  let ai: OpenAI;

  before(async () => {
    up = await startUpstream();
    h = await harness(up.url);
    ai = new OpenAI({ apiKey: TEST_KEY, baseURL: h.url, maxRetries: 0 });
  });
  after(async () => {
    await h?.close();
    await up?.close();
  });

  test('lifecycle events arrive in order for each request, and a subscriber replaces the upstream traceparent', async () => {
    const seen: string[] = [];
    const mine = (m: unknown) => (m as { source: object }).source === h.pipeline;
    const subs: [diagnostics_channel.Channel, (m: unknown) => void][] = [
      [channels.requestStart, (m) => mine(m) && seen.push('request:start')],
      [
        channels.attemptStart,
        (m) => {
          if (!mine(m)) return;
          seen.push('attempt:start');
          (m as { headers: Record<string, string> }).headers.traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
        },
      ],
      [channels.firstContent, (m) => mine(m) && seen.push('first-content')],
      [channels.attemptEnd, (m) => mine(m) && seen.push(`attempt:end ${(m as { outcome: string }).outcome}`)],
      [channels.requestEnd, (m) => mine(m) && seen.push(`request:end ${(m as { ctx: RequestContext }).ctx.status}`)],
    ];
    for (const [ch, fn] of subs) ch.subscribe(fn);
    try {
      up.reset();
      const r = await ai.chat.completions.create(
        { model: 'chat', messages: [{ role: 'user', content: 'trace me' }] },
        { headers: { traceparent: '00-11111111111111111111111111111111-2222222222222222-01' } },
      );
      assert.equal(r.choices[0]?.message.content, 'echo: trace me');
      assert.deepEqual(seen, ['request:start', 'attempt:start', 'first-content', 'attempt:end ok', 'request:end 200']);
      assert.equal(up.completions()[0]?.headers.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01', 'our span, not the client\'s');
    } finally {
      for (const [ch, fn] of subs) ch.unsubscribe(fn);
    }
  });

  test('admission releases after settle: it sees the real tokens and cost', async () => {
    released.length = 0;
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'count these words please' }] });
    assert.equal(released.length, 1);
    const r = released[0]!;
    assert.equal(r.status, 200);
    assert.ok(r.prompt > 0 && r.completion > 0, JSON.stringify(r));
    assert.equal(r.cost, (r.prompt * 1 + r.completion * 2) / 1e6, 'priced at settle, before release');
  });

  test('a stream guard holds events across chunk boundaries and replaces them: the client gets the redacted text', async () => {
    let held: SSEEvent[] = [];
    let seenText = '';
    guards.output = [
      {
        name: 'no-secret-word',
        checkEvent(_ctx, ev) {
          held.push(ev);
          seenText += text(JSON.parse(ev.data));
          // decide once a space ends a word (the word may arrive split over events)
          if (!/\s$/.test(seenText) && !JSON.parse(ev.data).choices[0]?.finish_reason) return { action: 'hold' };
          const events = held.map((e) => {
            const j = JSON.parse(e.data);
            if (j.choices[0]?.delta?.content) j.choices[0].delta.content = j.choices[0].delta.content.replace(/[A-Za-z]/g, (c: string) => c);
            return { ...e, data: JSON.stringify(j) };
          });
          // mask the word "banana" in the joined text by rewriting the held events into one
          const joined = held.map((e) => text(JSON.parse(e.data))).join('');
          held = [];
          if (!/banana/.test(joined)) return { action: 'replace', events };
          const first = JSON.parse(events[0]!.data);
          first.choices[0].delta = { content: joined.replace(/banana/g, '[redacted]') };
          return { action: 'replace', events: [{ event: undefined, id: undefined, data: JSON.stringify(first) }] };
        },
        endStream() {
          return { action: 'pass' };
        },
      },
    ];
    try {
      up.setBehavior({ kind: 'ok', content: 'I like banana bread and banana split ' });
      const stream = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }], stream: true });
      let out = '';
      for await (const c of stream) out += c.choices[0]?.delta?.content ?? '';
      assert.equal(out, 'I like [redacted] bread and [redacted] split ');
    } finally {
      guards.output = [];
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('a guard that blocks mid-stream ends the answer with guardrail_blocked in-band; the upstream\'s breaker is not charged', async () => {
    guards.output = [
      {
        name: 'stop-on-bread',
        checkEvent(_ctx, ev) {
          return /bread/.test(ev.data) ? { action: 'block', message: 'no bread talk' } : undefined;
        },
      },
    ];
    try {
      up.setBehavior({ kind: 'ok', content: 'I like banana bread a lot', chunkDelayMs: 20 }); // events arrive apart: the first is sent before the guard blocks
      const res = await fetch(`${h.url}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'x' }], stream: true }),
      });
      assert.equal(res.status, 200);
      const body = await res.text();
      assert.match(body, /"code":"guardrail_blocked"/);
      const sent = body
        .split('\n\n')
        .filter((b) => b.startsWith('data: {') && !b.includes('"error"'))
        .map((b) => text(JSON.parse(b.slice(6))))
        .join('');
      assert.equal(sent, 'I like banana ', 'what came before the blocked event, and nothing after');
      const st = target(h);
      assert.equal(st.breaker, 'closed');
      assert.equal(st.consecutive_failures, 0);
    } finally {
      guards.output = [];
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('guards written for chat apply unchanged to /v1/messages and /v1/responses: they see the chat request and the chat events, before translation', async () => {
    const seen: unknown[] = [];
    guards.input = [{ name: 'look', check: (ctx) => void seen.push(structuredClone(ctx.body.messages)) }];
    guards.output = [
      {
        name: 'no-bread',
        checkEvent(_ctx, ev) {
          const j = JSON.parse(ev.data) as { choices: { delta?: { content?: string } }[] };
          const d = j.choices[0]?.delta;
          if (!d?.content?.includes('bread')) return undefined;
          d.content = d.content.replace('bread', '[redacted]');
          return { action: 'replace', events: [{ ...ev, data: JSON.stringify(j) }] };
        },
        checkBody(_ctx, body) {
          const j = structuredClone(body) as { choices: { message: { content: string } }[] };
          j.choices[0]!.message.content = j.choices[0]!.message.content.replace('bread', '[redacted]');
          return { action: 'replace', body: j };
        },
      },
    ];
    try {
      up.setBehavior({ kind: 'ok', content: 'I like banana bread a lot' });
      const claude = new Anthropic({ apiKey: TEST_KEY, baseURL: h.url.replace(/\/v1$/, ''), maxRetries: 0 });
      const m = await claude.messages.create({ model: 'chat', max_tokens: 16, system: 'be nice', messages: [{ role: 'user', content: 'x' }] });
      assert.equal((m.content[0] as Anthropic.TextBlock).text, 'I like banana [redacted] a lot');
      assert.deepEqual(seen.at(-1), [
        { role: 'system', content: 'be nice' },
        { role: 'user', content: 'x' },
      ]);
      const s = await claude.messages.stream({ model: 'chat', max_tokens: 16, messages: [{ role: 'user', content: 'x' }] }).finalMessage();
      assert.equal((s.content[0] as Anthropic.TextBlock).text, 'I like banana [redacted] a lot');
      const r = await ai.responses.create({ model: 'chat', instructions: 'be kind', input: 'y' });
      assert.equal(r.output_text, 'I like banana [redacted] a lot');
      assert.deepEqual(seen.at(-1), [
        { role: 'system', content: 'be kind' },
        { role: 'user', content: 'y' },
      ]);
      const rs = await ai.responses.stream({ model: 'chat', input: 'y' }).finalResponse();
      assert.equal(rs.output_text, 'I like banana [redacted] a lot');

      // a block after content: said in the protocol's own error event, and the stream ends cleanly
      guards.output = [{ name: 'stop-on-bread', checkEvent: (_ctx, ev) => (/bread/.test(ev.data) ? { action: 'block', message: 'no bread talk' } : undefined) }];
      up.setBehavior({ kind: 'ok', content: 'I like banana bread a lot', chunkDelayMs: 20 });
      const res = await fetch(`${h.url}/messages`, {
        method: 'POST',
        headers: { 'x-api-key': TEST_KEY, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'x' }] }),
      });
      const body = await res.text();
      const deltas = [...body.matchAll(/"text_delta","text":("[^"]*")/g)].map((x) => JSON.parse(x[1]!) as string).join('');
      assert.equal(deltas, 'I like banana ', 'what came before the blocked event, and nothing after');
      assert.match(body, /event: error\ndata: \{"type":"error","error":\{"type":"invalid_request_error","message":"Blocked by guardrail \\"stop-on-bread\\": no bread talk"\}\}\n\n$/);
      assert.doesNotMatch(body, /message_stop/);
    } finally {
      guards.input = [];
      guards.output = [];
      up.setBehavior({ kind: 'ok' });
    }
  });

  test('admission refusing (a budget) answers each protocol in its own shape: 429 with retry-after', async () => {
    refuseWith = gatewayError('budget_exceeded', 'Team "research" has used its monthly budget.', { headers: { 'retry-after': '3600' } });
    try {
      const claude = new Anthropic({ apiKey: TEST_KEY, baseURL: h.url.replace(/\/v1$/, ''), maxRetries: 0 });
      const e1 = await claude.messages.create({ model: 'chat', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }).catch((x: unknown) => x);
      assert.ok(e1 instanceof Anthropic.RateLimitError, String(e1));
      assert.deepEqual(e1.error, { type: 'error', error: { type: 'rate_limit_error', message: 'Team "research" has used its monthly budget.' } });
      assert.equal(e1.headers?.get('retry-after'), '3600');
      const e2 = await ai.responses.create({ model: 'chat', input: 'x' }).catch((x: unknown) => x);
      assert.ok(e2 instanceof OpenAI.RateLimitError, String(e2));
      assert.equal(e2.code, 'budget_exceeded');
      assert.equal(e2.headers?.get('retry-after'), '3600');
    } finally {
      refuseWith = undefined;
    }
  });

  test('a guard that throws is its own failure (guard_failed, 500), never the upstream\'s: with failure_threshold 1 the breaker stays closed', async () => {
    guards.output = [
      {
        name: 'buggy',
        checkBody() {
          throw new Error('detector crashed');
        },
      },
    ];
    try {
      for (let i = 0; i < 3; i++) {
        const e = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }).catch((x: unknown) => x);
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.equal(e.status, 500);
        assert.match(e.message, /Guardrail "buggy" failed: detector crashed/);
      }
      const st = target(h);
      assert.equal(st.breaker, 'closed', 'three guard failures did not open the circuit');
      guards.output = [];
      const ok = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'still fine' }] });
      assert.equal(ok.choices[0]?.message.content, 'echo: still fine');
    } finally {
      guards.output = [];
    }
  });

  test('a body guard replaces a whole answer; an input guard that blocks stops the request before any upstream is contacted', async () => {
    guards.output = [
      {
        name: 'replace',
        checkBody(_ctx, body) {
          const j = structuredClone(body) as { choices: { message: { content: string } }[] };
          j.choices[0]!.message.content = j.choices[0]!.message.content.toUpperCase();
          return { action: 'replace', body: j };
        },
      },
    ];
    try {
      const r = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'shout' }] });
      assert.equal(r.choices[0]?.message.content, 'ECHO: SHOUT');
    } finally {
      guards.output = [];
    }
    guards.input = [
      {
        name: 'no-falcon',
        check(ctx) {
          if (JSON.stringify(ctx.body.messages).includes('Falcon')) throw Object.assign(new Error('x'), { name: 'x' });
        },
      },
    ];
    try {
      up.reset();
      const e = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Project Falcon' }] }).catch((x: unknown) => x);
      assert.ok(e instanceof OpenAI.APIError);
      assert.equal(e.status, 500);
      assert.equal(up.completions().length, 0, 'no upstream was contacted');
    } finally {
      guards.input = [];
    }
  });
});
