// Logprobs carry each token's text: with an enforced output redaction, an answer's secret must not
// reach the client through them (whole or streamed), while a shadow policy changes nothing.
// The upstream here is a plain HTTP server of this test that answers with logprobs.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TEST_KEY, basicConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';

const SECRET = 'ghp_aB3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5';
const PIECES = ['Your token is ', SECRET.slice(0, 12), SECRET.slice(12), ' — keep it safe.'];
const lp = (token: string) => ({ content: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)], top_logprobs: [{ token, logprob: -0.1, bytes: [...Buffer.from(token)] }] }] });

let up: http.Server;
let gw: RunningGateway;

before(async () => {
  up = http.createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(200, { 'content-type': 'application/json' }).end('{"object":"list","data":[]}');
      const stream = (JSON.parse(body) as { stream?: boolean }).stream === true;
      const base = { id: 'c1', created: 1, model: 'test-model' };
      if (!stream) {
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(
          JSON.stringify({
            ...base,
            object: 'chat.completion',
            choices: [{ index: 0, message: { role: 'assistant', content: PIECES.join('') }, logprobs: { content: PIECES.flatMap((p) => lp(p).content) }, finish_reason: 'stop' }],
            usage: { prompt_tokens: 5, completion_tokens: 4, total_tokens: 9 },
          }),
        );
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const chunk = (delta: object, logprobs: object | null, finish: string | null) => `data: ${JSON.stringify({ ...base, object: 'chat.completion.chunk', choices: [{ index: 0, delta, logprobs, finish_reason: finish }] })}\n\n`;
      res.write(chunk({ role: 'assistant', content: '' }, null, null));
      for (const p of PIECES) res.write(chunk({ content: p }, lp(p), null));
      res.write(chunk({}, null, 'stop'));
      res.end('data: [DONE]\n\n');
    });
  });
  await new Promise<void>((r) => up.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(up.address() as AddressInfo).port}/v1`;
  const base = basicConfig(url);
  gw = await startGateway({
    config: {
      ...base,
      models: [...base.models, { name: 'shadow', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] }],
      guardrails: [
        { name: 'no-secrets-out', direction: ['output'], detectors: ['secrets'], action: 'redact', scope: { models: ['chat'] } },
        { name: 'watch-secrets-out', direction: ['output'], detectors: ['secrets'], action: 'redact', mode: 'shadow', scope: { models: ['shadow'] } },
      ],
    },
  });
});

after(async () => {
  await gw?.stop();
  await new Promise((r) => up?.close(r));
});

async function ask(model: string, stream: boolean): Promise<string> {
  const r = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
    body: JSON.stringify({ model, stream, logprobs: true, top_logprobs: 1, messages: [{ role: 'user', content: 'my token?' }] }),
  });
  assert.equal(r.status, 200);
  return r.text();
}

for (const stream of [false, true]) {
  test(`${stream ? 'streamed' : 'whole'}: an enforced redaction removes the logprobs, so the secret is nowhere in the answer`, async () => {
    const text = await ask('chat', stream);
    // neither the secret nor any piece of it that the upstream sent as a token (as text or as bytes)
    assert.ok(!text.includes(SECRET.slice(0, 12)) && !text.includes(SECRET.slice(12)), text);
    assert.ok(!text.includes(JSON.stringify([...Buffer.from(SECRET.slice(0, 12))]).slice(1, -1)), 'the token bytes leaked');
    assert.ok(!text.includes('"logprobs":{'), 'logprobs were passed on');
    assert.match(text, /Your token is/);
  });

  test(`${stream ? 'streamed' : 'whole'}: a shadow policy changes nothing, logprobs included`, async () => {
    const text = await ask('shadow', stream);
    assert.ok(text.includes('"logprobs":{'), text);
    assert.ok(text.includes(SECRET.slice(0, 12)));
  });
}
