// The admin reads' worker (gateway/server/admin-reader.ts) over a real, migrated SQLite file: a
// read answers what the file holds (also rows committed after the worker started), a bad cursor
// comes back as the CursorError the route turns into a 400, the worker goes after a quiet spell
// and comes back at the next read, and a worker that dies fails the read it held, saying so,
// while the next read gets a new worker.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AdminReader } from '../../gateway/server/admin-reader.js';
import { CursorError } from '../../gateway/store/cursor.js';
import { openDatabase } from '../../gateway/store/db.js';
import { eventually, tmpDir } from '../helpers/gateway.js';

test('admin reads run on their own connection in a worker, which stops when quiet and starts again', async () => {
  const dir = tmpDir('airlock-admin-reader-');
  const db = openDatabase(dir);
  const reader = new AdminReader(db.name, { idleMs: 200 });
  const row = db.prepare(`INSERT INTO ledger (request_id, ts, kind, team, requested_model, latency_ms, status, prompt_tokens, completion_tokens, cost) VALUES (?, ?, 'chat', ?, 'm', 10, 200, 3, 4, 0.5)`);
  try {
    assert.equal(reader.running, false, 'no worker before the first read');
    row.run('a', Date.now() - 1000, 'research');
    let usage = await reader.read('usageAggregates', { group_by: 'team', where: {} });
    assert.deepEqual(usage.map((u) => [u.group, u.requests, u.prompt_tokens]), [['research', 1, 3]]);
    assert.equal(reader.running, true);
    // committed after the worker started: the next read sees it
    row.run('b', Date.now() - 500, 'ops');
    usage = await reader.read('usageAggregates', { group_by: 'team', where: {} });
    assert.deepEqual(usage.map((u) => u.group).sort(), ['ops', 'research']);

    await assert.rejects(reader.read('listSessions', { limit: 5, cursor: 'not-a-cursor' }), (e) => e instanceof CursorError && /not a cursor/.test(e.message));
    // arguments that cannot be copied to the worker fail that read only
    await assert.rejects(reader.read('listSessions', { limit: 5, team: (() => 'x') as unknown as string }), /could not be cloned/);

    await eventually(() => !reader.running || undefined, 'the worker goes after the quiet spell');
    usage = await reader.read('usageAggregates', { group_by: 'team', where: {} });
    assert.equal(usage.length, 2, 'a new worker answers');

    // the worker dies during a read: that read fails, saying so; the next one works
    const worker = (reader as unknown as { worker: import('node:worker_threads').Worker }).worker;
    const held = reader.read('usageTimeseries', { from: Date.now() - 3_600_000, to: Date.now(), buckets: 10 });
    await worker.terminate();
    await assert.rejects(held, /admin reads' worker stopped/);
    assert.equal((await reader.read('usageTimeseries', { from: Date.now() - 3_600_000, to: Date.now(), buckets: 10 })).data.length, 10);
  } finally {
    await reader.close();
    db.close();
  }
  await assert.rejects(reader.read('usageAggregates', { group_by: 'team', where: {} }), /stopping/);
});
