// Key rotation (issue 15): a key gets a new secret (shown once) through the admin API or
// `airlock keys rotate`; the old secret works for the grace period asked for, then is refused
// with a message that says it was rotated. The key keeps its name, team and usage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import OpenAI from 'openai';
import { basicConfig, eventually, runCli, startGateway, type CliResult, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const out = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const ask = (key: string, baseURL: string) => new OpenAI({ apiKey: key, baseURL, maxRetries: 0 }).chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
async function refused(key: string, baseURL: string): Promise<string> {
  try {
    await ask(key, baseURL);
  } catch (e) {
    const err = e as InstanceType<typeof OpenAI.APIError>;
    assert.equal(err.status, 401, String(e));
    assert.equal((err.error as { code?: string }).code, 'invalid_api_key');
    return err.message;
  }
  assert.fail('the key was accepted');
}

describe('key rotation', () => {
  let up: TestUpstream;
  let gw: RunningGateway;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url) });
  });
  after(async () => {
    await gw.stop();
    await up.close();
    fs.rmSync(gw.dataDir, { recursive: true, force: true });
  });
  const create = async (name: string): Promise<string> => {
    const r = await gw.admin<{ key: string }>('POST', '/keys', { name, team: 'research', budget: { amount: 100, period: 'month' } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.key;
  };

  test('API: with a grace period both secrets work; the key keeps its name, team, budget and usage; rotating again without grace stops the older ones at once', async () => {
    const first = await create('rotating-app');
    await ask(first, gw.baseURL);
    // (the ledger is written by a worker thread: the key shows its last use once the row is written)
    const before = await eventually(async () => {
      const b = (await gw.admin('GET', '/keys/rotating-app')).body;
      return b.last_used_at ? b : undefined;
    }, 'the key shows when it was last used');
    assert.ok(Math.abs(Date.parse(before.last_used_at) - Date.now()) < 60_000);
    assert.equal(before.previous_valid_until, null);

    const t0 = Date.now();
    const r = await gw.admin('POST', '/keys/rotating-app/rotate', { grace_seconds: 3600 });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.match(r.body.key, /^sk-airlock-[A-Za-z0-9_-]{22,}$/);
    assert.notEqual(r.body.key, first);
    assert.equal(r.body.prefix, r.body.key.slice(0, 15) + '…');
    const until = Date.parse(r.body.previous_valid_until);
    assert.ok(until >= t0 + 3_600_000 && until <= Date.now() + 3_600_000, r.body.previous_valid_until);
    const second: string = r.body.key;
    await ask(second, gw.baseURL);
    await ask(first, gw.baseURL); // in its grace period

    const k = (await gw.admin('GET', '/keys/rotating-app')).body;
    assert.deepEqual([k.name, k.team, k.budget, k.prefix, k.previous_valid_until], ['rotating-app', 'research', { amount: 100, period: 'month', warn_at_percent: 80 }, r.body.prefix, r.body.previous_valid_until]);
    assert.equal(JSON.stringify(k).includes(second), false, 'the secret is shown only in the rotation answer');
    const usage = (await gw.admin('GET', '/usage/summary?group_by=key&key=rotating-app')).body;
    assert.equal(usage.data[0].requests, 3, 'the requests with both secrets count for the same key');

    const again = await gw.admin('POST', '/keys/rotating-app/rotate', {});
    assert.equal(again.status, 200);
    assert.equal(again.body.previous_valid_until, null);
    await ask(again.body.key, gw.baseURL);
    await refused(second, gw.baseURL);
    await refused(first, gw.baseURL);
    assert.equal((await gw.admin('GET', '/keys/rotating-app')).body.previous_valid_until, null);
  });

  test('API: the old secret is refused once its grace period is over, naming the rotation', async () => {
    const old = await create('short-grace');
    const r = await gw.admin('POST', '/keys/short-grace/rotate', { grace_seconds: 1 });
    assert.equal(r.status, 200);
    await ask(r.body.key, gw.baseURL);
    const msg = await eventually(async () => {
      try {
        await ask(old, gw.baseURL);
        return undefined;
      } catch {
        return refused(old, gw.baseURL);
      }
    }, 'the old secret is refused after its grace period');
    assert.match(msg, /key "short-grace" was rotated and this old secret stopped working at \d{4}-\d\d-\d\dT/);
    await ask(r.body.key, gw.baseURL);
  });

  test('API: bad input is a 400 naming the field; an unknown key is a 404; nothing changes', async () => {
    const key = await create('steady-app');
    for (const [body, field] of [
      [{ grace_seconds: -1 }, /grace_seconds: must be 0 or more/],
      [{ grace_seconds: '3600' }, /grace_seconds/],
      [{ grace_seconds: 1.5 }, /grace_seconds: must be a whole number of seconds/],
      [{ grace_seconds: 31 * 86_400 }, /grace_seconds: must be at most 2592000/],
      [{ grace: 60 }, /grace/],
    ] as const) {
      const r = await gw.admin('POST', '/keys/steady-app/rotate', body);
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(r.body.error.message, field, JSON.stringify(r.body));
    }
    const none = await gw.admin('POST', '/keys/no-such-key/rotate', {});
    assert.equal(none.status, 404);
    assert.match(none.body.error.message, /No key named "no-such-key"/);
    await ask(key, gw.baseURL); // unchanged
  });

  test('CLI: keys rotate prints the new secret once; a running gateway follows; --grace keeps the old one; bad input is one line, exit 2', async () => {
    const old = await create('cli-app');
    const r = await runCli(['keys', 'rotate', 'cli-app', '--grace', '1h', '--data-dir', gw.dataDir]);
    assert.equal(r.code, 0, out(r));
    const fresh = r.stdout.trim();
    assert.match(fresh, /^sk-airlock-[A-Za-z0-9_-]{22,}$/);
    assert.match(r.stderr, /key "cli-app" has a new secret .*the old one keeps working until \d{4}-/);
    await eventually(async () => {
      try {
        await ask(fresh, gw.baseURL);
        return true;
      } catch {
        return false;
      }
    }, 'the running gateway accepts the new secret');
    await ask(old, gw.baseURL);
    const k = (await gw.admin('GET', '/keys/cli-app')).body;
    assert.ok(k.previous_valid_until);

    const now = await runCli(['keys', 'rotate', 'cli-app', '--data-dir', gw.dataDir]);
    assert.equal(now.code, 0, out(now));
    assert.match(now.stderr, /the old one is refused from now on/);
    await eventually(async () => {
      try {
        await ask(fresh, gw.baseURL);
        return false;
      } catch {
        return true;
      }
    }, 'the running gateway refuses the replaced secret');
    await refused(old, gw.baseURL);

    for (const [args, msg] of [
      [['keys', 'rotate', 'nope'], /no key named "nope" \(keys: .*cli-app/],
      [['keys', 'rotate', 'cli-app', '--grace', '31d'], /--grace must be seconds or a time like 30m, 24h or 7d, at most 30d/],
      [['keys', 'rotate', 'cli-app', '--grace', 'soon'], /--grace must be/],
      [['keys', 'rotate'], /keys rotate takes one key NAME/],
    ] as const) {
      const bad = await runCli([...args, '--data-dir', gw.dataDir]);
      assert.equal(bad.code, 2, out(bad));
      assert.match(bad.stderr.split('\n')[0]!, msg);
      assert.equal(bad.stdout, '');
    }
  });
});
