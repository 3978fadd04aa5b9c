// The model list of a health check / "Test connection" answer, whatever JSON the server sends.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { modelNames, probe } from '../../gateway/engine/health.js';

describe('modelNames', () => {
  test('OpenAI and Ollama lists; entries without a name are skipped', () => {
    assert.deepEqual(modelNames('openai', { object: 'list', data: [{ id: 'a' }, { id: 7 }, null, 'x', { id: 'b' }] }), ['a', 'b']);
    assert.deepEqual(modelNames('ollama', { models: [{ name: 'llama3:8b' }, { model: 'qwen:7b' }, {}, null] }), ['llama3:8b', 'qwen:7b']);
    assert.deepEqual(modelNames('openai', {}), [], 'no list: no models (still an answer)');
    assert.deepEqual(modelNames('openai', { data: null }), []);
  });
  test('JSON that is not a model list is refused, never a TypeError', () => {
    for (const j of [null, 5, 'models', [], [{ id: 'a' }], { data: 5 }, { data: { id: 'a' } }])
      assert.equal(modelNames('openai', j), undefined, JSON.stringify(j));
    assert.equal(modelNames('ollama', { models: 'llama3' }), undefined);
  });
});

test('probe: a server answering JSON null fails with a clear reason and its status', async () => {
  const server = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end('null'));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const r = await probe({ type: 'openai', origin, basePath: '/v1', apiKey: undefined }, 2000, 1 << 20);
    assert.equal(r.ok, false);
    assert.equal(r.status, 200);
    assert.match(r.error ?? '', /did not return a model list/);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
});
