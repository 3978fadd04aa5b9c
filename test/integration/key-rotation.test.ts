// Key rotation (issue 15): a key gets a new secret (shown once) through the admin API or
// `airlock keys rotate`; the old secret works for the grace period asked for, then is refused
// with a message that says it was rotated. The key keeps its name, team and usage.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, runCli, startGateway, tmpDir, writeConfig, type CliResult, type RunningGateway } from '../helpers/gateway.js';
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
    // the secret rotated away without grace is refused saying so, not as an unknown key
    assert.match(await refused(second, gw.baseURL), /key "rotating-app" was rotated and this old secret stopped working at \d{4}-/);
    await refused(first, gw.baseURL);
    assert.equal((await gw.admin('GET', '/keys/rotating-app')).body.previous_valid_until, null);
  });

  test('each replaced secret keeps its own grace period: a second rotation does not end the first one\'s; rotations at the same time (CLI processes, API calls) each hand out a secret that works', async () => {
    const works = async (key: string, what: string) => {
      await eventually(async () => {
        try {
          await ask(key, gw.baseURL);
          return true;
        } catch {
          return false;
        }
      }, what);
    };
    const first = await create('busy-app');
    const second = await gw.admin('POST', '/keys/busy-app/rotate', { grace_seconds: 3600 });
    assert.equal(second.status, 200, JSON.stringify(second.body));
    const third = await gw.admin('POST', '/keys/busy-app/rotate', { grace_seconds: 600 });
    assert.equal(third.status, 200, JSON.stringify(third.body));
    await ask(first, gw.baseURL); // still in the 1 h grace the first rotation gave it
    await ask(second.body.key, gw.baseURL); // in its own 10 min grace
    await ask(third.body.key, gw.baseURL);
    // the key shows the latest end of its old secrets' grace periods
    const shown = (await gw.admin('GET', '/keys/busy-app')).body.previous_valid_until;
    assert.ok(Date.parse(shown) >= Date.parse(second.body.previous_valid_until), `${shown} vs ${second.body.previous_valid_until}`);

    // four CLI processes and four API calls rotate the same key at once, each with a grace period
    const [cli, api] = await Promise.all([
      Promise.all([1, 2, 3, 4].map(() => runCli(['keys', 'rotate', 'busy-app', '--grace', '1h', '--data-dir', gw.dataDir]))),
      Promise.all([1, 2, 3, 4].map(() => gw.admin('POST', '/keys/busy-app/rotate', { grace_seconds: 3600 }))),
    ]);
    const handedOut = [...cli.map((r) => (assert.equal(r.code, 0, out(r)), r.stdout.trim())), ...api.map((r) => (assert.equal(r.status, 200, JSON.stringify(r.body)), r.body.key as string))];
    assert.equal(new Set(handedOut).size, 8);
    for (const [i, key] of handedOut.entries()) await works(key, `secret ${i + 1} of the 8 handed out at the same time works`);
    await ask(first, gw.baseURL);
    await ask(second.body.key, gw.baseURL);
    await ask(third.body.key, gw.baseURL);

    // the same in the database a restarted gateway reads: every secret handed out authenticates
    const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true });
    try {
      const n = db.prepare(`SELECT COUNT(*) FROM key_retired_secrets WHERE key_name = 'busy-app' AND valid_until > ?`).pluck().get(Date.now());
      assert.equal(n, 10, 'the first secret, the two rotated in turn and 7 of the 8 rotated at once are in their grace period');
    } finally {
      db.close();
    }

    // rotating without grace stops all of them at once, as documented
    const now = await runCli(['keys', 'rotate', 'busy-app', '--data-dir', gw.dataDir]);
    assert.equal(now.code, 0, out(now));
    await works(now.stdout.trim(), 'the newest secret works');
    for (const key of [first, second.body.key, ...handedOut]) await refused(key, gw.baseURL);
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

  test('a secret rotated away is never given to another key or agent (API and file)', async () => {
    const old = await create('leaky-app');
    const rot = await gw.admin('POST', '/keys/leaky-app/rotate', {});
    assert.equal(rot.status, 200, JSON.stringify(rot.body));
    await create('other-app');
    const put = await gw.admin('PUT', '/keys/other-app', { name: 'other-app', team: 'research', key: old });
    assert.equal(put.status, 400, JSON.stringify(put.body));
    assert.match(put.body.error.message, /this secret was retired from key "leaky-app"/);
    const viaFile = await gw.admin('POST', '/config/apply', { agents: [{ name: 'leaky-agent', key: old }] });
    assert.equal(viaFile.status, 400, JSON.stringify(viaFile.body));
    assert.match(viaFile.body.error.message, /^agents\[0\]\.key: this secret was retired from key "leaky-app"/);
    await refused(old, gw.baseURL);
  });

  test("one secret is never both a key's and an agent's, whichever entry the file writes it in", async () => {
    const agent = await gw.admin<{ key: string }>('POST', '/agents', { name: 'solo-agent', team: 'research', tools: ['*'] });
    assert.equal(agent.status, 201, JSON.stringify(agent.body));
    const keys = (await gw.admin('GET', '/config')).body.keys as { name: string }[];
    const agents = (await gw.admin('GET', '/config')).body.agents as { name: string }[];
    // the agent's entry without "key:" keeps its secret; a key entry writes that same secret
    const r = await gw.admin('POST', '/config/apply', { agents, keys: [...keys, { name: 'twin-key', team: 'research', key: agent.body.key }] });
    assert.equal(r.status, 400, JSON.stringify(r.body));
    assert.match(r.body.error.message, /agent "solo-agent" and key "twin-key" would have the same secret/);
    assert.equal((await gw.admin('GET', '/keys/twin-key')).status, 404, 'nothing applied');
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

// Who owns a secret the config file writes literally (keys[].key): the file. Such a key is not
// rotated through the API or CLI (the next apply of the file would silently put the literal back,
// stopping the new secret and reviving the old one); the refusal names the file field. A file
// entry without "key:" hands the secret over; after a rotation, a file that would bring the
// replaced secret back is refused, naming the key and the fix.
describe('key rotation and a secret written in the config file', () => {
  let up: TestUpstream;
  let dir: string;
  let dataDir: string;
  let file: string;
  let handedOver: string;
  before(async () => {
    up = await startUpstream();
    dir = tmpDir('airlock-keyfile-');
    dataDir = path.join(dir, 'data');
    file = writeConfig(dir, basicConfig(up.url));
    const cfg = basicConfig(up.url);
    handedOver = writeConfig(dir, { ...cfg, keys: [{ name: 'notebook-app', team: 'research' }] }, 'handed-over.yaml');
  });
  after(async () => {
    await up.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the file owns it: rotation is refused by the API (409) and the CLI (exit 2) naming keys[0].key and the file; a secret set through the API is refused too; a restart with the same --config keeps the key working', async () => {
    let gw = await startGateway({ dataDir, config: file });
    try {
      const k = (await gw.admin('GET', '/keys/notebook-app')).body;
      assert.equal(k.secret_from_file, `keys[0].key in ${file}`);
      const r = await gw.admin('POST', '/keys/notebook-app/rotate', { grace_seconds: 3600 });
      assert.equal(r.status, 409, JSON.stringify(r.body));
      assert.equal(r.body.error.code, 'secret_from_file');
      assert.ok(r.body.error.message.includes(`the secret of key "notebook-app" is written in the config file (keys[0].key in ${file})`), r.body.error.message);
      assert.match(r.body.error.message, /Rotate it in the file/);
      // by role: an auditor is refused for the role (403) before anything is said about the file; an admin gets the same 409
      assert.equal((await gw.admin('POST', '/users', { name: 'root', password: 'correct horse battery staple', role: 'owner' })).status, 201);
      for (const [role, status] of [['auditor', 403], ['admin', 409]] as const) {
        const t = await gw.admin('POST', '/tokens', { name: `t-${role}`, role });
        assert.equal(t.status, 201, JSON.stringify(t.body));
        const res = await gw.admin('POST', '/keys/notebook-app/rotate', {}, { authorization: `Bearer ${t.body.token}` });
        assert.equal(res.status, status, `${role}: ${JSON.stringify(res.body)}`);
      }
      const anon = await fetch(`${gw.adminUrl}/admin/api/v1/keys/notebook-app/rotate`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      assert.equal(anon.status, 401);

      const cli = await runCli(['keys', 'rotate', 'notebook-app', '--grace', '1h', '--data-dir', dataDir]);
      assert.equal(cli.code, 2, out(cli));
      assert.equal(cli.stdout, '');
      assert.ok(cli.stderr.split('\n')[0]!.includes(`(keys[0].key in ${file})`), cli.stderr);

      const put = await gw.admin('PUT', '/keys/notebook-app', { name: 'notebook-app', team: 'research', key: 'sk-airlock-set-through-the-api-000000000001' });
      assert.equal(put.status, 400, JSON.stringify(put.body));
      assert.deepEqual(put.body.error.issues.map((i: { path: unknown }) => i.path), ['key']);
      assert.match(put.body.error.message, /keys\[0\]\.key in /);

      // an edit of its other fields is fine and keeps the file's ownership
      assert.equal((await gw.admin('PUT', '/keys/notebook-app', { name: 'notebook-app', team: 'research', app: 'notebooks' })).status, 200);
      assert.equal((await gw.admin('GET', '/keys/notebook-app')).body.secret_from_file, `keys[0].key in ${file}`);
      await ask(TEST_KEY, gw.baseURL);
    } finally {
      await gw.stop();
    }
    // a data dir from before the column (the file's literal applied, nothing marked): the next
    // start with the file marks it, though nothing else changes; it says so (from then on the
    // API and CLI no longer rotate that key)
    const reverted = await runCli(['config', 'apply', file, '--data-dir', dataDir]);
    assert.match(reverted.stdout, /~ keys\/notebook-app \(app\)/, out(reverted)); // the file's fields again; its secret unchanged
    const db = new Database(path.join(dataDir, 'airlock.db'));
    db.prepare(`UPDATE keys SET secret_from_file = NULL`).run();
    db.close();
    gw = await startGateway({ dataDir, config: file });
    try {
      assert.ok(gw.stderr().includes(`applied 1 change:\nairlock:   ~ keys/notebook-app (secret: now written by keys[0].key in ${file})\n`), gw.stderr());
      await ask(TEST_KEY, gw.baseURL);
      const k = (await gw.admin('GET', '/keys/notebook-app')).body;
      assert.deepEqual([k.previous_valid_until, k.secret_from_file], [null, `keys[0].key in ${file}`]);
      assert.equal((await gw.admin('POST', '/keys/notebook-app/rotate', {})).status, 409);
    } finally {
      await gw.stop();
    }
  });

  test('handed over (the file entry without "key:"): rotation works; restarting with the old file is refused naming the key and the fix, the file without "key:" keeps the rotated secret', async () => {
    let gw = await startGateway({ dataDir, config: file });
    let fresh: string;
    try {
      const apply = await runCli(['config', 'apply', handedOver, '--data-dir', dataDir]);
      assert.equal(apply.code, 0, out(apply));
      await eventually(async () => (await gw.admin('GET', '/keys/notebook-app')).body.secret_from_file === null, 'the key no longer names the file');
      await ask(TEST_KEY, gw.baseURL); // the stored secret stays

      const r = await gw.admin('POST', '/keys/notebook-app/rotate', { grace_seconds: 0 });
      assert.equal(r.status, 200, JSON.stringify(r.body));
      fresh = r.body.key;
      await ask(fresh, gw.baseURL);
      await refused(TEST_KEY, gw.baseURL);

      // config apply of the old file while serving: refused, nothing changes
      const back = await runCli(['config', 'apply', file, '--data-dir', dataDir]);
      assert.equal(back.code, 2, out(back));
      assert.match(back.stderr, /keys\[0\]\.key: this is a secret key "notebook-app" no longer has: it was replaced on \d{4}-.*Remove "key:" from this entry to keep the current secret, or write a new secret here/);
      await ask(fresh, gw.baseURL);
    } finally {
      await gw.stop();
    }

    // a restart with the old file: refused up front, never silently undone
    const dead = await runCli(['serve', '--data-dir', dataDir, '--port', '0', '--admin-port', '0', '--config', file]);
    assert.equal(dead.code, 2, out(dead));
    assert.match(dead.stderr, /keys\[0\]\.key: this is a secret key "notebook-app" no longer has/);

    gw = await startGateway({ dataDir, config: handedOver });
    try {
      await ask(fresh, gw.baseURL);
      await refused(TEST_KEY, gw.baseURL);
      // a new literal in the file takes the secret over again (the file's explicit choice)
      const next = 'sk-airlock-new-literal-in-file-00000000000001';
      const cfg = basicConfig(up.url);
      const taken = writeConfig(dir, { ...cfg, keys: [{ name: 'notebook-app', key: next, team: 'research' }] }, 'new-literal.yaml');
      const apply = await runCli(['config', 'apply', taken, '--data-dir', dataDir]);
      assert.equal(apply.code, 0, out(apply));
      await eventually(async () => (await gw.admin('GET', '/keys/notebook-app')).body.secret_from_file === `keys[0].key in ${taken}`, 'the new file owns the secret');
      await eventually(() => ask(next, gw.baseURL).then(() => true), 'the new literal works');
      assert.equal((await gw.admin('POST', '/keys/notebook-app/rotate', {})).status, 409);
    } finally {
      await gw.stop();
    }
  });

  test("an agent's key the file writes: a key set through PUT /agents is refused naming agents[0].key and the file; applying the file again leaves its key alone", async () => {
    const cfg = writeConfig(dir, { ...basicConfig(up.url), agents: [{ name: 'bot', key: 'sk-airlock-agent-literal-0000000000000001' }] }, 'agents.yaml');
    const gw = await startGateway({ dataDir: path.join(dir, 'agents-data'), config: cfg });
    try {
      const put = await gw.admin('PUT', '/agents/bot', { name: 'bot', key: 'sk-airlock-agent-set-by-api-00000000000001' });
      assert.equal(put.status, 400, JSON.stringify(put.body));
      assert.deepEqual(put.body.error.issues.map((i: { path: unknown }) => i.path), ['key']);
      assert.ok(put.body.error.message.includes(`the key of agent "bot" is written in the config file (agents[0].key in ${cfg})`), put.body.error.message);
      // other fields change; the key stays the file's
      assert.equal((await gw.admin('PUT', '/agents/bot', { name: 'bot', calls_per_minute: 10 })).status, 200, 'an edit without a key');
      const again = await runCli(['config', 'apply', cfg, '--data-dir', gw.dataDir]);
      assert.equal(again.code, 0, out(again));
      assert.doesNotMatch(again.stdout + again.stderr, /agents\/bot \(hash/);
    } finally {
      await gw.stop();
    }
  });
});
