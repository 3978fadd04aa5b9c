// What real model servers answer that the happy path does not: usage counts that are not counts,
// an error reported in-band after content (vLLM's way of saying it failed mid-answer), `n` choices
// streamed interleaved, compressed bodies from a server or proxy that compresses anyway, streams
// without usage. Against the real gateway process and a scripted upstream of this file (each
// script is the first path segment of an endpoint's base URL, so every case has endpoints of its
// own and no breaker or health state carries over), through the official clients.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import zlib from 'node:zlib';
import OpenAI from 'openai';
import Anthropic from '@anthropic-ai/sdk';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';

type Script = (res: http.ServerResponse, body: Record<string, any>) => void;

const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
  `data: ${JSON.stringify({ id: 'c1', object: 'chat.completion.chunk', created: 1, model: 'm', choices, ...extra })}\n\n`;
const delta = (content: string, index = 0) => ({ index, delta: { content }, finish_reason: null });
const finish = (index = 0) => ({ index, delta: {}, finish_reason: 'stop' });
const ROLE = chunk([{ index: 0, delta: { role: 'assistant', content: '' }, finish_reason: null }]);
const whole = (content: string, usage?: unknown) =>
  JSON.stringify({ id: 'c1', object: 'chat.completion', created: 1, model: 'm', choices: [{ index: 0, message: { role: 'assistant', content }, finish_reason: 'stop' }], ...(usage === undefined ? {} : { usage }) });

function sse(res: http.ServerResponse, ...parts: string[]): void {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  for (const p of parts) res.write(p);
  res.end();
}

const usageScript =
  (usage: unknown): Script =>
  (res, body) => {
    if (!body.stream) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(whole('four words of answer', usage));
      return;
    }
    sse(res, ROLE, chunk([delta('four ')]), chunk([delta('words')]), chunk([finish()]), chunk([], { usage }), 'data: [DONE]\n\n');
  };

const SCRIPTS: Record<string, Script> = {
  ok: (res, body) => {
    if (body.stream) sse(res, ROLE, chunk([delta('fine')]), chunk([finish()]), chunk([], { usage: { prompt_tokens: 3, completion_tokens: 1 } }), 'data: [DONE]\n\n');
    else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(whole('fine', { prompt_tokens: 3, completion_tokens: 1 }));
    }
  },
  negative: usageScript({ prompt_tokens: -1_000_000, completion_tokens: -5, total_tokens: -1_000_005 }),
  fractional: usageScript({ prompt_tokens: 2.5, completion_tokens: 4 }),
  words: usageScript({ prompt_tokens: 'many', completion_tokens: 4 }),
  empty: usageScript({}),
  // content, then the upstream's error event, then [DONE]: in separate writes, and in one
  'error-mid': (res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(ROLE + chunk([delta('partial ')]));
    setTimeout(() => {
      res.write('data: {"error": {"message": "CUDA out of memory", "type": "InternalServerError", "code": 500}}\n\n');
      res.end('data: [DONE]\n\n');
    }, 30);
  },
  'error-mid-one-write': (res) => sse(res, ROLE + chunk([delta('partial ')]) + 'data: {"error":{"message":"CUDA out of memory"}}\n\n' + 'data: [DONE]\n\n'),
  'error-first': (res) => sse(res, 'data: {"error":{"message":"model is loading"}}\n\n'),
  // a JSON answer, for a request held whole by a response_schema guardrail
  'ok-json': (res) => sse(res, ROLE, chunk([delta('{"a": 1}')]), chunk([finish()]), chunk([], { usage: { prompt_tokens: 3, completion_tokens: 4 } }), 'data: [DONE]\n\n'),
  // two choices interleaved; choice 1 never finishes and the stream just ends (no [DONE])
  'n2-truncated': (res) => sse(res, ROLE, chunk([delta('a', 0)]), chunk([delta('b', 1)]), chunk([finish(0)]), chunk([delta('bb', 1)])),
  // both finish, no [DONE]: complete
  'n2-complete': (res) =>
    sse(res, ROLE, chunk([delta('a', 0)]), chunk([delta('b', 1)]), chunk([finish(0)]), chunk([delta('bb', 1)]), chunk([finish(1)]), chunk([], { usage: { prompt_tokens: 3, completion_tokens: 4 } })),
  gzip: (res, body) => {
    const text = body.stream ? ROLE + chunk([delta('fine')]) + chunk([finish()]) + 'data: [DONE]\n\n' : whole('fine', { prompt_tokens: 3, completion_tokens: 1 });
    res.writeHead(200, { 'content-type': body.stream ? 'text/event-stream' : 'application/json', 'content-encoding': 'gzip' });
    res.end(zlib.gzipSync(text));
  },
  unavailable: (res) => {
    res.writeHead(503, { 'content-type': 'application/json' });
    res.end('{"error":{"message":"overloaded"}}');
  },
  // no usage at all: one 40,000-character content event
  'no-usage-big': (res) => sse(res, ROLE, chunk([delta('x'.repeat(40_000))]), chunk([finish()]), 'data: [DONE]\n\n'),
  // no usage, and the connection breaks after some content
  'no-usage-break': (res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write(ROLE + chunk([delta('first words of an answer that is ')]) + chunk([delta('cut here')]));
    setTimeout(() => res.destroy(), 30);
  },
};

let gw: RunningGateway;
let upstream: http.Server;
let origin = '';
const seen: { script: string; headers: http.IncomingHttpHeaders }[] = [];
let client: OpenAI;

before(async () => {
  upstream = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (raw += d));
    req.on('end', () => {
      const script = (req.url ?? '').split('/')[1] ?? '';
      seen.push({ script, headers: req.headers });
      const run = SCRIPTS[script];
      if (!run || req.method !== 'POST') {
        res.writeHead(404).end();
        return;
      }
      run(res, raw ? (JSON.parse(raw) as Record<string, any>) : {});
    });
  });
  await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
  origin = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`;
  const names = Object.keys(SCRIPTS);
  gw = await startGateway({
    config: {
      endpoints: names.map((n) => ({ name: `ep-${n}`, base_url: `${origin}/${n}/v1`, health_check: { enabled: false } })),
      models: [
        ...names.map((n) => ({ name: n, targets: [{ endpoint: `ep-${n}`, model: 'm' }], price: { input_per_million: 1000, output_per_million: 1000 } })),
        // a compressing server first, a plain one behind it
        { name: 'gzip-then-ok', strategy: 'fallback', targets: [{ endpoint: 'ep-gzip', model: 'm' }, { endpoint: 'ep-ok', model: 'm' }] },
        { name: 'error-then-json', strategy: 'fallback', targets: [{ endpoint: 'ep-error-mid-one-write', model: 'm' }, { endpoint: 'ep-ok-json', model: 'm' }] },
      ],
      teams: [{ name: 'qa' }],
      keys: [
        { name: 'qa-app', key: TEST_KEY, team: 'qa' },
        { name: 'narrow', key: 'sk-airlock-narrow-key-00000000000000000001', team: 'qa', models: ['ok'] },
      ],
      settings: { breaker: { failure_threshold: 1000, cooldown_ms: 60_000 } },
      guardrails: [{ name: 'json-out', direction: ['output'], detectors: [{ type: 'response_schema' }], action: 'block', scope: { models: ['error-then-json'] } }],
    },
  });
  client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 });
});

after(async () => {
  await gw?.stop();
  await new Promise((r) => upstream?.close(r));
});

async function ledgerRow(id: string): Promise<Record<string, any>> {
  return eventually(async () => {
    const r = await gw.admin('GET', `/usage/requests?limit=5&request_id=${encodeURIComponent(id)}`);
    assert.equal(r.status, 200);
    return r.body.data[0] as Record<string, any> | undefined;
  }, `ledger row ${id}`);
}

/** A streamed chat request read raw: status, request id, body, and whether the body was cut. */
async function rawStream(model: string, extra: Record<string, unknown> = {}): Promise<{ status: number; id: string; raw: string; cut: boolean }> {
  return new Promise((resolve, reject) => {
    const req = http.request(`${gw.baseURL}/chat/completions`, { method: 'POST', headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' } }, (res) => {
      let raw = '';
      let cut = false;
      res.setEncoding('utf8');
      res.on('data', (d: string) => (raw += d));
      res.on('aborted', () => (cut = true));
      res.on('error', () => (cut = true));
      res.on('close', () => resolve({ status: res.statusCode ?? 0, id: String(res.headers['x-airlock-request-id']), raw, cut: cut || !res.complete }));
    });
    req.on('error', reject);
    req.end(JSON.stringify({ model, stream: true, messages: [{ role: 'user', content: 'hello there' }], ...extra }));
  });
}

const dataEvents = (raw: string) =>
  raw
    .split(/\n\n/)
    .map((b) => b.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5).trimStart()).join('\n'))
    .filter((d) => d !== '');

describe('usage an upstream reports that is not a count', () => {
  test('negative counts: the request is estimated, nothing is credited, and the gateway keeps serving', async () => {
    const { data, response } = await client.chat.completions.create({ model: 'negative', messages: [{ role: 'user', content: 'hello there' }] }).withResponse();
    assert.equal(data.choices[0]!.message.content, 'four words of answer', 'the client gets the answer as the upstream wrote it');
    const streamed = await client.chat.completions.create({ model: 'negative', messages: [{ role: 'user', content: 'hello there' }], stream: true }).withResponse();
    let text = '';
    for await (const c of streamed.data) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'four words');
    for (const id of [response.headers.get('x-airlock-request-id')!, streamed.response.headers.get('x-airlock-request-id')!]) {
      const row = await ledgerRow(id);
      assert.equal(row.status, 200);
      assert.equal(row.estimated, true, 'a count that is not one is replaced by the estimate');
      assert.ok(row.prompt_tokens > 0 && row.prompt_tokens < 100, `estimated prompt tokens, got ${row.prompt_tokens}`);
      assert.ok(row.completion_tokens > 0 && row.completion_tokens < 100, `estimated completion tokens, got ${row.completion_tokens}`);
      assert.ok(row.cost > 0, 'charged for the estimate, never credited');
    }
    // still alive, and its metrics hold no negative count
    assert.equal((await fetch(`${gw.dataUrl}/readyz`)).status, 200);
    const metrics = await gw.admin<string>('GET', '/metrics');
    assert.equal(metrics.status, 200);
    assert.doesNotMatch(String(metrics.body), /^airlock_(tokens|cost)_total\{[^}]*\} -/m);
    assert.doesNotMatch(gw.stderr(), /recorder of .* failed/, 'no recorder saw a bad count');
  });

  test('fractional, wordy and empty usage blocks are estimated too, never charged as zero', async () => {
    for (const model of ['fractional', 'words', 'empty']) {
      for (const stream of [false, true]) {
        const req = { model, messages: [{ role: 'user' as const, content: 'hello there' }] };
        let id: string;
        if (stream) {
          const r = await client.chat.completions.create({ ...req, stream: true }).withResponse();
          for await (const c of r.data) void c;
          id = r.response.headers.get('x-airlock-request-id')!;
        } else id = (await client.chat.completions.create(req).withResponse()).response.headers.get('x-airlock-request-id')!;
        const row = await ledgerRow(id);
        const what = `${model}, ${stream ? 'streamed' : 'whole'}`;
        assert.equal(row.estimated, true, what);
        assert.ok(Number.isInteger(row.prompt_tokens) && row.prompt_tokens > 0, `${what}: prompt tokens ${row.prompt_tokens}`);
        assert.ok(Number.isInteger(row.completion_tokens) && row.completion_tokens > 0, `${what}: completion tokens ${row.completion_tokens}`);
      }
    }
    // a usage chunk the gateway asked for goes only to a client that asked, whatever it holds
    const r = await rawStream('words');
    assert.ok(!dataEvents(r.raw).some((d) => d.includes('"usage"')), `no usage chunk for a client that did not ask: ${r.raw}`);
    const asked = await rawStream('words', { stream_options: { include_usage: true } });
    assert.ok(dataEvents(asked.raw).some((d) => d.includes('"usage"')), 'the usage chunk for a client that asked');
  });
});

describe("the upstream's own error after content", () => {
  for (const model of ['error-mid', 'error-mid-one-write']) {
    test(`chat (${model}): the client hears it in-band, the connection is cut, the ledger and the breaker count a failure`, async () => {
      const r = await rawStream(model);
      assert.equal(r.status, 200);
      const events = dataEvents(r.raw);
      assert.ok(events.some((d) => d.includes('"partial "')), 'the content before the error reached the client');
      const last = JSON.parse(events.at(-1)!) as { error: { code: string; message: string } };
      assert.equal(last.error.code, 'stream_interrupted');
      assert.match(last.error.message, /CUDA out of memory/, "the upstream's message is carried");
      assert.ok(!events.includes('[DONE]'), 'no [DONE] after the error');
      assert.ok(r.cut, 'the body is cut, not ended cleanly');
      const row = await ledgerRow(r.id);
      assert.equal(row.error_class, 'stream_interrupted');
      assert.equal(row.endpoint, `ep-${model}`);

      // the openai client raises
      const s = await client.chat.completions.create({ model, messages: [{ role: 'user', content: 'hello there' }], stream: true });
      await assert.rejects(async () => {
        for await (const c of s) void c;
      }, OpenAI.APIError);

    });
  }

  test('Anthropic Messages: an error event and a truncated connection, and the Anthropic SDK raises', async () => {
    const claude = new Anthropic({ apiKey: TEST_KEY, baseURL: gw.dataUrl, maxRetries: 0 });
    const res = await fetch(`${gw.dataUrl}/v1/messages`, {
      method: 'POST',
      headers: { 'x-api-key': TEST_KEY, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'error-mid', max_tokens: 16, stream: true, messages: [{ role: 'user', content: 'hello there' }] }),
    });
    assert.equal(res.status, 200);
    let raw = '';
    const dec = new TextDecoder();
    await assert.rejects(async () => {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) raw += dec.decode(c, { stream: true });
    }, 'a truncated body, not a clean end');
    assert.match(raw, /event: content_block_delta\n/);
    assert.match(raw, /event: error\ndata: \{"type":"error","error":\{"type":"api_error","message":"Stream interrupted: [^\n]*CUDA out of memory[^\n]*"\}\}\n\n$/);
    assert.doesNotMatch(raw, /message_stop/);
    const row = await ledgerRow(res.headers.get('x-airlock-request-id')!);
    assert.equal(row.error_class, 'stream_interrupted');
    await assert.rejects(claude.messages.stream({ model: 'error-mid', max_tokens: 16, messages: [{ role: 'user', content: 'hello there' }] }).finalMessage(), /Stream interrupted/);
  });

  test('Responses: the error and response.failed, never response.completed, and the openai client raises', async () => {
    const res = await fetch(`${gw.baseURL}/responses`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'error-mid', input: 'hello there', stream: true }),
    });
    assert.equal(res.status, 200);
    let raw = '';
    const dec = new TextDecoder();
    await assert.rejects(async () => {
      for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) raw += dec.decode(c, { stream: true });
    });
    assert.match(raw, /response\.output_text\.delta/);
    assert.match(raw, /CUDA out of memory/);
    assert.match(raw, /event: response\.failed\n/);
    assert.doesNotMatch(raw, /response\.completed/);
    const row = await ledgerRow(res.headers.get('x-airlock-request-id')!);
    assert.equal(row.error_class, 'stream_interrupted');
    await assert.rejects(async () => {
      const s = await client.responses.create({ model: 'error-mid', input: 'hello there', stream: true });
      for await (const e of s) void e;
    });
  });

  test('held whole for a guardrail, nothing reached the client: the error is a failed attempt, and the next target serves', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: 'error-then-json',
        stream: true,
        messages: [{ role: 'user', content: 'hello there' }],
        response_format: { type: 'json_schema', json_schema: { name: 'a', schema: { type: 'object', properties: { a: { type: 'number' } }, required: ['a'] } } },
      }),
    });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('x-airlock-attempts'), '2');
    assert.equal(res.headers.get('x-airlock-endpoint'), 'ep-ok-json');
    const raw = await res.text();
    assert.match(raw, /\{\\"a\\": 1\}/);
    assert.doesNotMatch(raw, /partial|CUDA|stream_interrupted/);
    assert.equal(dataEvents(raw).at(-1), '[DONE]');
  });

  test('an error before any content is a failed attempt that costs nothing', async () => {
    const r = await rawStream('error-first');
    assert.equal(r.status, 502);
    const row = await ledgerRow(r.id);
    assert.equal(row.error_class, 'stream_error');
    assert.equal(row.prompt_tokens, 0);
    assert.equal(row.completion_tokens, 0);
    assert.equal(row.cost, 0, 'a failure for nothing');
    assert.equal(row.endpoint, 'ep-error-first', 'the failed request names the endpoint that failed it');
  });
});

describe('n choices streamed together', () => {
  test('a stream that ends before every choice finished is interrupted, not completed', async () => {
    const r = await rawStream('n2-truncated', { n: 2 });
    assert.equal(r.status, 200);
    const events = dataEvents(r.raw);
    assert.ok(!events.includes('[DONE]'), `no [DONE] is made up for a truncated answer: ${r.raw}`);
    assert.equal((JSON.parse(events.at(-1)!) as { error: { code: string } }).error.code, 'stream_interrupted');
    assert.ok(r.cut);
    assert.equal((await ledgerRow(r.id)).error_class, 'stream_interrupted');
  });

  test('every choice finished without [DONE]: complete, the client gets the usual end', async () => {
    const r = await rawStream('n2-complete', { n: 2 });
    assert.equal(r.status, 200);
    assert.ok(!r.cut, 'a clean end');
    assert.equal(dataEvents(r.raw).at(-1), '[DONE]');
    const row = await ledgerRow(r.id);
    assert.equal(row.error_class, null);
    assert.equal(row.estimated, false, 'the usage chunk after the last finish was read');
    assert.equal(row.completion_tokens, 4);
  });
});

describe('compressed answers', () => {
  test('the gateway asks for identity; a server that compresses anyway fails the attempt by name, and the next target serves', async () => {
    seen.length = 0;
    const whole = await client.chat.completions.create({ model: 'gzip-then-ok', messages: [{ role: 'user', content: 'hello there' }] });
    assert.equal(whole.choices[0]!.message.content, 'fine');
    const streamed = await client.chat.completions.create({ model: 'gzip-then-ok', messages: [{ role: 'user', content: 'hello there' }], stream: true });
    let text = '';
    for await (const c of streamed) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'fine');
    assert.ok(seen.length >= 4);
    for (const s of seen) assert.equal(s.headers['accept-encoding'], 'identity', `${s.script}: asked for no compression`);

    for (const stream of [false, true]) {
      const res = await fetch(`${gw.baseURL}/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'gzip', stream, messages: [{ role: 'user', content: 'hello there' }] }),
      });
      assert.equal(res.status, 502);
      const body = (await res.json()) as { error: { message: string } };
      assert.match(body.error.message, /content-encoding "gzip"/, 'the error names the encoding');
      const row = await ledgerRow(res.headers.get('x-airlock-request-id')!);
      assert.equal(row.endpoint, 'ep-gzip');
      assert.equal(row.cost, 0);
    }
  });
});

describe('a failed request names its endpoint', () => {
  test('an upstream 503 on every attempt: the ledger row and the request metric carry the endpoint', async () => {
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'unavailable', messages: [{ role: 'user', content: 'hello there' }] }),
    });
    assert.equal(res.status, 502);
    const row = await ledgerRow(res.headers.get('x-airlock-request-id')!);
    assert.equal(row.endpoint, 'ep-unavailable');
    assert.equal(row.error_class, 'http_5xx');
    const metrics = String((await gw.admin<string>('GET', '/metrics')).body);
    assert.match(metrics, /^airlock_requests_total\{[^}]*endpoint="ep-unavailable"[^}]*status="502"[^}]*\} \d+/m);
  });
});

describe('streams without usage', () => {
  test('one large content event is estimated by its text, not as one token', async () => {
    const r = await rawStream('no-usage-big');
    assert.equal(r.status, 200);
    const row = await ledgerRow(r.id);
    assert.equal(row.estimated, true);
    // 40,000 characters at about 4 a token
    assert.ok(row.completion_tokens >= 9_000 && row.completion_tokens <= 11_000, `completion tokens ${row.completion_tokens}`);
  });

  test('a stream that broke after content is charged for what was delivered', async () => {
    const r = await rawStream('no-usage-break');
    assert.equal(r.status, 200);
    assert.ok(r.cut);
    const row = await ledgerRow(r.id);
    assert.equal(row.error_class, 'stream_interrupted');
    assert.equal(row.estimated, true);
    assert.ok(row.completion_tokens >= 2, `completion tokens for the delivered words, got ${row.completion_tokens}`);
  });
});

describe('GET /v1/models/{id}', () => {
  test("the openai client's models.retrieve: a model the key may call; others are not found", async () => {
    const m = await client.models.retrieve('ok');
    assert.deepEqual({ id: m.id, object: m.object, owned_by: m.owned_by }, { id: 'ok', object: 'model', owned_by: 'airlock' });
    // other spellings of the path
    for (const p of ['/v1/models/%6Fk', '/v1//models/ok', '/v1/models/./ok']) {
      const r = await fetch(`${gw.dataUrl}${p}`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
      assert.equal(r.status, 200, p);
      assert.equal(((await r.json()) as { id: string }).id, 'ok', p);
    }
    const deeper = await fetch(`${gw.baseURL}/models/ok/more`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
    assert.equal(deeper.status, 404);
    const missing = await client.models.retrieve('no-such-model').catch((e: unknown) => e);
    assert.ok(missing instanceof OpenAI.NotFoundError, String(missing));
    assert.equal(missing.code, 'model_not_found');
    // a key limited to "ok" sees only that one
    const narrow = new OpenAI({ apiKey: 'sk-airlock-narrow-key-00000000000000000001', baseURL: gw.baseURL, maxRetries: 0 });
    assert.equal((await narrow.models.retrieve('ok')).id, 'ok');
    assert.ok((await narrow.models.retrieve('negative').catch((e: unknown) => e)) instanceof OpenAI.NotFoundError);
    assert.deepEqual((await narrow.models.list()).data.map((x) => x.id), ['ok']);
    // no key: 401, as for the list
    const anon = await fetch(`${gw.baseURL}/models/ok`);
    assert.equal(anon.status, 401);
  });
});
