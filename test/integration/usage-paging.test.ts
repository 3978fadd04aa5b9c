// GET /usage/requests page by page (issue 15): a cursor walks the ledger newest first without
// showing a row twice or skipping one, also while new requests arrive; filters by team, key,
// model, user and outcome; a bad cursor or filter is a 400 naming it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

interface Row {
  request_id: string;
  ts: number;
  key_name: string | null;
  team: string | null;
  user: string | null;
  alias: string | null;
  status: number;
}
interface Page {
  data: Row[];
  next_cursor: string | null;
  cost_unit: string;
}

describe('usage requests paging', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  let other: string;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url, { teams: [{ name: 'research' }, { name: 'ops' }] }) });
    other = (await gw.admin('POST', '/keys', { name: 'ops-app', team: 'ops' })).body.key;
    const a = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const b = new OpenAI({ apiKey: other, baseURL: gw.baseURL, maxRetries: 0 });
    // concurrently: many rows share a millisecond, which the cursor must still tell apart
    await Promise.all([
      ...Array.from({ length: 8 }, (_, i) => a.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `a${i}` }], user: i % 2 ? 'alice' : 'bob' })),
      ...Array.from({ length: 5 }, (_, i) => b.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `b${i}` }] })),
    ]);
    await assert.rejects(a.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
    await eventually(async () => (await gw.admin<Page>('GET', '/usage/requests?limit=100')).body.data.length >= 14, 'the ledger rows');
  });
  after(async () => {
    await gw.stop();
    await up.close();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
  });

  const all = async (query: string, limit: number, between?: () => Promise<void>): Promise<{ rows: Row[]; pages: number }> => {
    const rows: Row[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const r: { status: number; body: Page } = await gw.admin<Page>('GET', `/usage/requests?limit=${limit}${query}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
      assert.equal(r.status, 200, JSON.stringify(r.body));
      assert.ok(r.body.data.length <= limit);
      if (r.body.next_cursor) assert.equal(r.body.data.length, limit, 'only a full page has a next page');
      rows.push(...r.body.data);
      cursor = r.body.next_cursor;
      pages++;
      await between?.();
    } while (cursor);
    return { rows, pages };
  };

  test('pages of 3 give every row once, newest first, the same as one big page, also while requests arrive', async () => {
    const whole = (await gw.admin<Page>('GET', '/usage/requests?limit=1000')).body;
    assert.equal(whole.next_cursor, null);
    assert.equal(whole.cost_unit, 'USD');
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const paged = await all('', 3, async () => {
      await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'meanwhile' }] });
    });
    assert.equal(paged.pages, Math.ceil(whole.data.length / 3));
    assert.deepEqual(
      paged.rows.map((r) => r.request_id),
      whole.data.map((r) => r.request_id),
      'the pages hold exactly the rows there were when paging began, in order',
    );
    for (let i = 1; i < paged.rows.length; i++) assert.ok(paged.rows[i - 1]!.ts >= paged.rows[i]!.ts);
  });

  test('filters: team, key, model, user and outcome; combined with paging', async () => {
    const ops = await all('&team=ops', 2);
    assert.equal(ops.rows.length, 5);
    assert.ok(ops.rows.every((r) => r.team === 'ops' && r.key_name === 'ops-app'));
    assert.equal((await all('&key=ops-app', 100)).rows.length, 5);
    const alice = await all('&user=alice', 3);
    assert.equal(alice.rows.length, 4);
    assert.ok(alice.rows.every((r) => r.user === 'alice' && r.key_name === 'notebook-app'));
    const errors = await all('&outcome=error', 100);
    assert.ok(errors.rows.length >= 1 && errors.rows.every((r) => r.status >= 400), JSON.stringify(errors.rows));
    const ok = await all('&outcome=ok', 100);
    assert.ok(ok.rows.every((r) => r.status < 400));
    const chat = await all('&model=chat&team=research', 100);
    assert.ok(chat.rows.length >= 8 && chat.rows.every((r) => r.alias === 'chat' && r.team === 'research'));
    assert.equal((await all('&team=nobody', 10)).rows.length, 0);
  });

  test('a bad cursor, outcome or limit is a 400 naming it', async () => {
    for (const [q, field] of [
      ['cursor=not-a-cursor', /cursor: is not a cursor this gateway gave out/],
      [`cursor=${Buffer.from('1.2.3').toString('base64url')}`, /cursor:/],
      ['outcome=failed', /outcome: must be ok or error/],
      ['limit=0', /limit: must be an integer from 1 to 10000/],
      ['limit=abc', /limit:/],
    ] as const) {
      const r = await gw.admin('GET', `/usage/requests?${q}`);
      assert.equal(r.status, 400, q);
      assert.match(r.body.error.message, field, q);
    }
  });
});
