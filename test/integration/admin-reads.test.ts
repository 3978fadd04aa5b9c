// An admin's read over a large ledger (the Usage page's time series over a month, its summary)
// runs beside the data plane, not in front of it: the gateway's own process is given ~600,000
// ledger rows, an admin asks for a month of usage, and apps' requests sent while that read runs
// are answered before it is — where a read on the event loop that serves them kept them waiting
// until it was done. The answers of the reads are checked too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const ROWS = 600_000;

describe('admin reads and the data plane', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  const now = Date.now();
  const month = 30 * 86_400_000;

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url) });
    // a month of traffic, written beside the running gateway (WAL: one more writer, as a backup
    // restore or a second tool would be)
    const db = new Database(path.join(gw.dataDir, 'airlock.db'));
    db.pragma('busy_timeout = 10000');
    db.exec(`WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ${ROWS})
      INSERT INTO ledger (request_id, ts, kind, key_name, team, requested_model, alias, latency_ms, status, prompt_tokens, completion_tokens, cost)
      SELECT printf('old-%08d', i), ${now - month} + i * ${Math.floor(month / ROWS)}, 'chat', 'notebook-app', 'research', 'chat', 'chat', 100, CASE WHEN i % 50 = 0 THEN 502 ELSE 200 END, 10, 5, 0.001 FROM n`);
    db.close();
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test("apps' requests sent during an admin's month-long usage read are answered before it", async () => {
    const client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const order: string[] = [];
    const read = gw.admin('GET', `/usage/timeseries?from=${new Date(now - month).toISOString()}&to=${new Date(Date.now() + 60_000).toISOString()}&buckets=500`).then((r) => {
      order.push('admin read');
      return r;
    });
    // the read has begun (the admin request is on its way first); then 10 requests, one by one
    await new Promise((r) => setTimeout(r, 30));
    for (let i = 0; i < 10; i++) {
      const c = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `hi ${i}` }] });
      assert.equal(c.object, 'chat.completion');
      order.push(`request ${i}`);
    }
    const r = await read;
    assert.equal(r.status, 200);
    assert.deepEqual(order, [...Array.from({ length: 10 }, (_, i) => `request ${i}`), 'admin read'], 'the requests did not wait for the read');
    // the read's answer covers the month
    const totals = r.body.totals as { requests: number; errors: number };
    assert.ok(totals.requests >= ROWS, `${totals.requests} requests in the month`);
    assert.equal(totals.errors, ROWS / 50);
    assert.equal(r.body.data.length, 500);
  });

  test('the usage summary over everything counts every row', async () => {
    const r = await gw.admin('GET', '/usage/summary?group_by=team');
    assert.equal(r.status, 200);
    const research = (r.body.data as { group: string; requests: number }[]).find((g) => g.group === 'research')!;
    assert.ok(research.requests >= ROWS + 10, `${research.requests}`);
  });
});
