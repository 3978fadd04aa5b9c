// Stored responses (POST /v1/responses with store) in a real SQLite file: owned by one key, gone
// after the retention period (never served after it, deleted by prune).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ensureDataDir, openDatabase } from '../../gateway/store/db.js';
import { DEFAULT_RESPONSES_RETENTION_DAYS, ResponseStore } from '../../gateway/engine/responses/store.js';
import { tmpDir } from '../helpers/gateway.js';

const DAY = 86_400_000;

test('a stored response belongs to its key and lives for the retention period', () => {
  const dir = tmpDir();
  ensureDataDir(dir);
  const db = openDatabase(dir);
  let days: number | undefined;
  const store = new ResponseStore(db, () => days);
  try {
    const t0 = Date.UTC(2026, 0, 1);
    const s = { response: { id: 'resp_a', output: [] }, conversation: [{ role: 'user', content: 'hi' }] };
    store.save('resp_a', 'app-1', s, t0);
    assert.deepEqual(store.get('resp_a', 'app-1', t0 + 1), s);
    assert.equal(store.get('resp_a', 'app-2', t0 + 1), undefined, 'another key does not see it');
    assert.equal(store.delete('resp_a', 'app-2', t0 + 1), false, 'nor delete it');
    // the default retention: served until it ends, not after (even before prune runs)
    const end = t0 + DEFAULT_RESPONSES_RETENTION_DAYS * DAY;
    assert.ok(store.get('resp_a', 'app-1', end - 1));
    assert.equal(store.get('resp_a', 'app-1', end), undefined);
    assert.equal(store.prune(end - 1), 0);
    assert.equal(store.prune(end), 1);

    // settings.responses_retention_days applies to responses stored after it is set
    days = 2;
    store.save('resp_b', 'app-1', s, t0);
    assert.ok(store.get('resp_b', 'app-1', t0 + 2 * DAY - 1));
    assert.equal(store.get('resp_b', 'app-1', t0 + 2 * DAY), undefined);
    assert.equal(store.delete('resp_b', 'app-1', t0), true);
    assert.equal(store.get('resp_b', 'app-1', t0), undefined);
  } finally {
    db.close();
  }
});
