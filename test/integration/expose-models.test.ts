// endpoints[].expose_models: apps call the models a server lists by their upstream names, without
// an alias per model. Through the real gateway process, the official openai client and simulated
// model servers whose model lists are found by the health check.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { eventually, runCli, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const KEY_ALL = 'sk-airlock-expose-all-00000000000000000001';
const KEY_CHAT = 'sk-airlock-expose-chat-0000000000000000001';
const started: { close(): Promise<void> }[] = [];
const gateways: RunningGateway[] = [];
after(async () => {
  for (const g of gateways) await g.stop();
  for (const u of started) await u.close();
});

async function upstream(models: string[]): Promise<TestUpstream> {
  const u = await startUpstream({ models });
  started.push(u);
  return u;
}

const hc = { interval_ms: 200, timeout_ms: 2000, unhealthy_after: 1 };

async function listed(gw: RunningGateway, key: string): Promise<string[]> {
  const client = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
  return (await client.models.list()).data.map((m) => m.id).sort();
}

describe('endpoints[].expose_models', () => {
  test('the models a server lists are callable by their own names; a configured model of that name wins; keys limited to some models do not get them', async () => {
    const a = await upstream(['meta-llama/Llama-3.1-8B-Instruct', 'llama3.1:8b', 'chat']);
    const b = await upstream(['llama3.1:8b', 'qwen2.5']);
    const hidden = await upstream(['not-exposed']);
    const gw = await startGateway({
      config: {
        endpoints: [
          { name: 'gpu-a', base_url: a.url, expose_models: true, health_check: hc },
          { name: 'gpu-b', base_url: b.url, expose_models: true, health_check: hc },
          { name: 'gpu-hidden', base_url: hidden.url, health_check: hc },
        ],
        models: [{ name: 'chat', targets: [{ endpoint: 'gpu-hidden', model: 'not-exposed' }] }],
        keys: [
          { name: 'all', key: KEY_ALL },
          { name: 'chat-only', key: KEY_CHAT, models: ['chat'] },
        ],
      },
    });
    gateways.push(gw);
    const expected = ['chat', 'llama3.1:8b', 'meta-llama/Llama-3.1-8B-Instruct', 'qwen2.5'];
    await eventually(async () => JSON.stringify(await listed(gw, KEY_ALL)) === JSON.stringify(expected) || undefined, 'the exposed models are listed');
    assert.deepEqual(await listed(gw, KEY_CHAT), ['chat'], 'a key limited to some models sees only those');

    const client = new OpenAI({ apiKey: KEY_ALL, baseURL: gw.baseURL, maxRetries: 0 });
    const r1 = await client.chat.completions.create({ model: 'meta-llama/Llama-3.1-8B-Instruct', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal(r1.choices[0]?.message.content, 'echo: hi');
    assert.equal(a.completions().at(-1)?.body.model, 'meta-llama/Llama-3.1-8B-Instruct', 'sent upstream under its own name');
    const r2 = await client.chat.completions.create({ model: 'qwen2.5', messages: [{ role: 'user', content: 'q' }], stream: true });
    let text = '';
    for await (const c of r2) text += c.choices[0]?.delta.content ?? '';
    assert.equal(text, 'echo: q');
    assert.equal(b.completions().at(-1)?.body.model, 'qwen2.5');
    // a configured model of the same name wins over gpu-a's "chat"
    const before = a.completions().length;
    await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] });
    assert.equal(hidden.completions().at(-1)?.body.model, 'not-exposed');
    assert.equal(a.completions().length, before);
    // a name listed by two exposing servers falls back from one to the other
    a.setBehavior({ kind: 'status', status: 503 });
    const fb = await client.chat.completions.create({ model: 'llama3.1:8b', messages: [{ role: 'user', content: 'fb' }] }).withResponse();
    assert.equal(fb.data.choices[0]?.message.content, 'echo: fb');
    assert.equal(b.completions().at(-1)?.body.model, 'llama3.1:8b');
    assert.equal(fb.response.headers.get('x-airlock-endpoint'), 'gpu-b');
    a.setBehavior({ kind: 'ok' });
    // the key limited to "chat" is refused the exposed names
    const limited = new OpenAI({ apiKey: KEY_CHAT, baseURL: gw.baseURL, maxRetries: 0 });
    await assert.rejects(limited.chat.completions.create({ model: 'qwen2.5', messages: [{ role: 'user', content: 'no' }] }), (e: { status?: number }) => e.status === 403 || e.status === 404);
    // a model not listed by an exposing server stays unknown
    await assert.rejects(client.chat.completions.create({ model: 'not-exposed', messages: [{ role: 'user', content: 'no' }] }), (e: { status?: number }) => e.status === 404);

    // the admin API shows what each endpoint exposes
    const ep = await gw.admin('GET', '/endpoints/gpu-a');
    assert.equal(ep.body.expose_models, true);
    assert.deepEqual([...ep.body.status.exposed_models].sort(), ['llama3.1:8b', 'meta-llama/Llama-3.1-8B-Instruct']);
    assert.deepEqual((await gw.admin('GET', '/endpoints/gpu-hidden')).body.status.exposed_models, []);

    // switched off: the names go away; the config round-trips
    const off = await gw.admin('PUT', '/endpoints/gpu-b', { name: 'gpu-b', base_url: b.url, expose_models: false, health_check: hc });
    assert.equal(off.status, 200, JSON.stringify(off.body));
    await eventually(async () => !(await listed(gw, KEY_ALL)).includes('qwen2.5') || undefined, 'qwen2.5 is no longer listed');
    const exported = await runCli(['config', 'export', '--data-dir', gw.dataDir]);
    assert.match(exported.stdout, /expose_models: true/);
    assert.match(exported.stdout, /expose_models: false/);
  });

  test('a server that starts listing another model: the new name becomes callable without a config change', async () => {
    const a = await upstream(['first']);
    const gw = await startGateway({
      config: { endpoints: [{ name: 'gpu-a', base_url: a.url, expose_models: true, health_check: hc }], keys: [{ name: 'all', key: KEY_ALL }] },
    });
    gateways.push(gw);
    await eventually(async () => (await listed(gw, KEY_ALL)).includes('first') || undefined, 'first is listed');
    a.setModels(['first', 'second']);
    await eventually(async () => (await listed(gw, KEY_ALL)).includes('second') || undefined, 'second is listed');
    const client = new OpenAI({ apiKey: KEY_ALL, baseURL: gw.baseURL, maxRetries: 0 });
    const r = await client.chat.completions.create({ model: 'second', messages: [{ role: 'user', content: 'new' }] });
    assert.equal(r.choices[0]?.message.content, 'echo: new');
  });

  test('expose_models must be true or false (the field is named)', async () => {
    const gw = await startGateway();
    gateways.push(gw);
    const r = await gw.admin('POST', '/endpoints', { name: 'gpu-x', base_url: 'http://127.0.0.1:9/v1', expose_models: 'yes' });
    assert.equal(r.status, 400);
    assert.match(JSON.stringify(r.body), /expose_models/);
  });
});
