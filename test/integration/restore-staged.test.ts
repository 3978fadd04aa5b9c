// Restore from the admin app: the gateway holding a data dir cannot replace its own database in
// place, so POST /admin/api/v1/restore checks the uploaded backup in full and stages it; the next
// start applies it. Through real processes: a backup downloaded from one gateway, uploaded to
// another (with its own install.key), applied by a real restart.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import { ADMIN_TOKEN, TEST_KEY, basicConfig, runCli, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

const PASS = 'correct horse battery staple ünïcode';
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

async function upload(gw: RunningGateway, body: Uint8Array | string, headers: Record<string, string> = {}) {
  const res = await fetch(`${gw.adminUrl}/admin/api/v1/restore`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/octet-stream', ...headers },
    body,
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text };
}

async function download(gw: RunningGateway, passphrase: string): Promise<Buffer> {
  const res = await fetch(`${gw.adminUrl}/admin/api/v1/backup`, {
    method: 'POST',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ passphrase }),
  });
  assert.equal(res.status, 200);
  return Buffer.from(await res.arrayBuffer());
}

async function modelsStatus(gw: RunningGateway, key: string): Promise<number> {
  const res = await fetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${key}` } });
  await res.arrayBuffer();
  return res.status;
}

const staged = (dataDir: string) => fs.existsSync(path.join(dataDir, 'restore-staged'));

describe('restore from the admin app (staged, applied at the next start)', () => {
  test('a backup from one gateway, uploaded to another install, is staged, then applied by a restart: its keys and upstream secrets work', async () => {
    const up = await startUpstream();
    const secret = 'upstream-secret-' + Date.now();
    const source = await startGateway({ config: basicConfig(up.url, { endpoints: [{ name: 'gpu-1', base_url: up.url, api_key: secret, health_check: { enabled: false } }] }) });
    let target = await startGateway({ config: { teams: [{ name: 'only-on-the-new-server' }] } });
    cleanup.push(source.dataDir, target.dataDir);
    try {
      const before = await source.admin('POST', '/keys', { name: 'made-before' });
      assert.equal(before.status, 201);
      const bundle = await download(source, PASS);
      const later = await source.admin('POST', '/keys', { name: 'made-after' });
      assert.equal(later.status, 201);

      const targetKey = fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8');
      const r = await upload(target, bundle, { 'x-airlock-backup-passphrase': b64(PASS) });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.staged.kind, 'encrypted');
      assert.equal(r.body.staged.bytes, bundle.length);
      assert.match(r.body.staged.staged_by, /./);
      // staged, not applied: the running gateway still serves its own data
      assert.equal(await modelsStatus(target, before.body.key), 401);
      assert.match(JSON.stringify((await target.admin('GET', '/config')).body), /only-on-the-new-server/);
      assert.equal((await target.admin('GET', '/restore')).body.staged.kind, 'encrypted');
      const leftovers = fs.readdirSync(target.dataDir).filter((f) => f.startsWith('.upload-') || f.startsWith('.stage-'));
      assert.deepEqual(leftovers, [], 'no upload or scratch file stays behind');
      for (const f of fs.readdirSync(path.join(target.dataDir, 'restore-staged'))) assert.equal(fs.statSync(path.join(target.dataDir, 'restore-staged', f)).mode & 0o077, 0, f);

      const events = await target.admin('GET', '/audit/events?limit=50');
      assert.ok(
        events.body.data.some((e: any) => e.data?.action === 'stage restore from backup' && e.data?.outcome === 'ok'),
        'staging is in the audit log',
      );

      await target.stop();
      target = await startGateway({ dataDir: target.dataDir });
      assert.match(target.stdout(), /applied the restore staged by/);
      assert.equal(staged(target.dataDir), false);
      assert.equal(await modelsStatus(target, before.body.key), 200, 'a key made before the backup works on the new install');
      assert.equal(await modelsStatus(target, later.body.key), 401, 'a key made after the backup does not exist there');
      assert.equal(fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8'), fs.readFileSync(path.join(source.dataDir, 'install.key'), 'utf8'));
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: target.baseURL, maxRetries: 0 });
      const res = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'restored' }] });
      assert.equal(res.choices[0]?.message.content, 'echo: restored');
      assert.equal(up.completions().at(-1)?.headers.authorization, `Bearer ${secret}`, 'the stored upstream secret decrypts');

      const status = (await target.admin('GET', '/restore')).body;
      assert.equal(status.staged, null);
      assert.equal(status.last_applied.kind, 'encrypted');
      const previous: string = status.last_applied.previous;
      assert.ok(fs.existsSync(path.join(previous, 'airlock.db')));
      assert.equal(fs.readFileSync(path.join(previous, 'install.key'), 'utf8'), targetKey, 'the replaced install is kept');
      const old = await runCli(['config', 'export', '--data-dir', previous]);
      assert.match(old.stdout, /only-on-the-new-server/);
    } finally {
      await source.stop();
      await target.stop();
      await up.close();
    }
  });

  test('bad uploads are refused with the problem named, nothing is staged, and an earlier staged restore survives them', async () => {
    const gw0 = await startGateway({ config: { teams: [{ name: 'first' }] } });
    let gw = await startGateway({ config: { teams: [{ name: 'second' }] } });
    cleanup.push(gw0.dataDir, gw.dataDir);
    try {
      const bundle = await download(gw0, PASS);
      const pass = { 'x-airlock-backup-passphrase': b64(PASS) };
      const cases: [string, Uint8Array | string, Record<string, string>, number, string, RegExp][] = [
        ['wrong passphrase', bundle, { 'x-airlock-backup-passphrase': b64('not the passphrase') }, 422, 'wrong_passphrase', /wrong passphrase/],
        ['no passphrase', bundle, {}, 422, 'wrong_passphrase', /passphrase is needed/],
        ['passphrase not base64', bundle, { 'x-airlock-backup-passphrase': 'not base64!' }, 400, 'invalid_passphrase_header', /base64/],
        ['junk', 'this is not a backup at all', pass, 400, 'invalid_backup', /not an Airlock backup/],
        ['truncated', bundle.subarray(0, bundle.length - 100), pass, 400, 'invalid_backup', /truncated/],
        ['one byte changed', Buffer.concat([bundle.subarray(0, bundle.length - 40), Buffer.from([bundle[bundle.length - 40]! ^ 1]), bundle.subarray(bundle.length - 39)]), pass, 400, 'invalid_backup', /damaged|authentication/],
        ['appended bytes', Buffer.concat([bundle, Buffer.from('x')]), pass, 400, 'invalid_backup', /more than it should/],
        ['empty', '', pass, 400, 'empty_backup', /empty/],
      ];
      for (const [what, body, headers, status, code, message] of cases) {
        const r = await upload(gw, body, headers);
        assert.equal(r.status, status, `${what}: ${r.text}`);
        assert.equal(r.body.error.code, code, what);
        assert.match(r.body.error.message, message, what);
        assert.doesNotMatch(r.body.error.message, /\.upload-|\.stage-|\/tmp\//, `${what}: no temporary path`);
        assert.equal(staged(gw.dataDir), false, what);
      }
      const json = await gw.admin('POST', '/restore', { passphrase: PASS });
      assert.equal(json.status, 415);
      assert.match(json.body.error.message, /application\/octet-stream/);

      // a plain database from another install: its install.key is not here
      const plain = path.join(tmpDir('airlock-plain-'), 'x.db');
      cleanup.push(path.dirname(plain));
      const p = await runCli(['backup', '--plain', '--to', plain, '--data-dir', gw0.dataDir]);
      assert.equal(p.code, 0, p.stderr);
      const r = await upload(gw, fs.readFileSync(plain));
      assert.equal(r.status, 400, r.text);
      assert.match(r.body.error.message, /another install\.key/);

      // a good one staged; bad ones after it leave it as it was; DELETE drops it
      assert.equal((await upload(gw, bundle, pass)).status, 200);
      const stagedBefore = (await gw.admin('GET', '/restore')).body.staged;
      assert.equal((await upload(gw, 'junk', pass)).status, 400);
      assert.deepEqual((await gw.admin('GET', '/restore')).body.staged, stagedBefore);
      const del = await gw.admin('DELETE', '/restore');
      assert.equal(del.status, 200);
      assert.equal(del.body.staged, null);
      assert.equal((await gw.admin('DELETE', '/restore')).status, 404);
      await gw.stop();
      gw = await startGateway({ dataDir: gw.dataDir });
      assert.doesNotMatch(gw.stdout(), /applied the restore/);
      const cfg = JSON.stringify((await gw.admin('GET', '/config')).body);
      assert.match(cfg, /second/);
      assert.doesNotMatch(cfg, /first/);
    } finally {
      await gw0.stop();
      await gw.stop();
    }
  });

  test('concurrent uploads: one is checked at a time (the other is told to retry), and what is staged is one whole backup', async () => {
    const a = await startGateway({ config: { teams: [{ name: 'from-a' }] } });
    const b = await startGateway({ config: { teams: [{ name: 'from-b' }] } });
    let gw = await startGateway();
    cleanup.push(a.dataDir, b.dataDir, gw.dataDir);
    try {
      const [ba, bb] = [await download(a, PASS), await download(b, PASS)];
      const pass = { 'x-airlock-backup-passphrase': b64(PASS) };
      const results = await Promise.all([upload(gw, ba, pass), upload(gw, bb, pass), upload(gw, ba, pass), upload(gw, bb, pass)]);
      for (const r of results) assert.ok(r.status === 200 || (r.status === 409 && r.body.error.code === 'restore_in_progress'), r.text);
      assert.ok(results.some((r) => r.status === 200));
      await gw.stop();
      gw = await startGateway({ dataDir: gw.dataDir });
      const cfg = JSON.stringify((await gw.admin('GET', '/config')).body);
      assert.ok(/from-a/.test(cfg) !== /from-b/.test(cfg), `exactly one backup was applied: ${cfg}`);
    } finally {
      await a.stop();
      await b.stop();
      await gw.stop();
    }
  });

  test('only the owner may stage, see or cancel a restore', async () => {
    const gw = await startGateway();
    cleanup.push(gw.dataDir);
    try {
      for (const role of ['admin', 'auditor'] as const) {
        const t = await gw.admin('POST', '/tokens', { name: `t-${role}`, role });
        assert.equal(t.status, 201);
        const h = { authorization: `Bearer ${t.body.token}` };
        for (const method of ['GET', 'DELETE']) assert.equal((await gw.admin(method, '/restore', undefined, h)).status, 403, `${role} ${method}`);
        const res = await fetch(`${gw.adminUrl}/admin/api/v1/restore`, { method: 'POST', headers: { ...h, 'content-type': 'application/octet-stream' }, body: 'x' });
        assert.equal(res.status, 403, role);
      }
      const anon = await fetch(`${gw.adminUrl}/admin/api/v1/restore`, { method: 'POST', headers: { 'content-type': 'application/octet-stream' }, body: 'x' });
      assert.equal(anon.status, 401);
      assert.equal(staged(gw.dataDir), false);
    } finally {
      await gw.stop();
    }
  });
});

describe('applying a restore is crash-safe (the journal)', () => {
  const CRASH = 'AIRLOCK_TEST_RESTORE_CRASH_AFTER_STEP';
  const journal = (dataDir: string) => path.join(dataDir, 'restore-journal.json');
  const serveArgs = (dataDir: string) => ['serve', '--data-dir', dataDir, '--port', '0', '--admin-port', '0'];

  test('a start killed after any move of the apply leaves a journal; the next start completes it: the restored install works, the replaced one is kept whole', async () => {
    const up = await startUpstream();
    const source = await startGateway({ config: basicConfig(up.url) });
    cleanup.push(source.dataDir);
    let steps = Infinity;
    try {
      const made = await source.admin('POST', '/keys', { name: 'in-the-backup' });
      assert.equal(made.status, 201);
      const bundle = await download(source, PASS);
      const sourceKey = fs.readFileSync(path.join(source.dataDir, 'install.key'), 'utf8');
      for (let n = 1; n < steps; n++) {
        let target = await startGateway({ config: { teams: [{ name: 'replaced-install' }] } });
        cleanup.push(target.dataDir);
        const targetKey = fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8');
        assert.equal((await upload(target, bundle, { 'x-airlock-backup-passphrase': b64(PASS) })).status, 200);
        await target.stop();

        const crashed = await runCli(serveArgs(target.dataDir), { env: { [CRASH]: String(n), AIRLOCK_ADMIN_TOKEN: ADMIN_TOKEN } });
        assert.equal(crashed.signal, 'SIGKILL', `step ${n}: the start was killed mid-apply\n${crashed.stdout}${crashed.stderr}`);
        const plan = JSON.parse(fs.readFileSync(journal(target.dataDir), 'utf8'));
        steps = plan.steps.length;
        assert.ok(steps >= 4, `the plan moves the database and install.key out and in: ${JSON.stringify(plan.steps)}`);

        target = await startGateway({ dataDir: target.dataDir });
        try {
          assert.match(target.stdout(), /applied the restore staged by/, `step ${n}`);
          assert.equal(fs.existsSync(journal(target.dataDir)), false, `step ${n}: the journal is gone`);
          assert.equal(staged(target.dataDir), false);
          assert.equal(fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8'), sourceKey, `step ${n}: the bundle's install.key is in place`);
          assert.equal(await modelsStatus(target, made.body.key), 200, `step ${n}: a key from the backup works`);
          const last = (await target.admin('GET', '/restore')).body.last_applied;
          assert.equal(last.kind, 'encrypted', `step ${n}`);
          assert.equal(fs.readFileSync(path.join(last.previous, 'install.key'), 'utf8'), targetKey, `step ${n}: the replaced install.key is kept`);
          const old = await runCli(['config', 'export', '--data-dir', last.previous]);
          assert.equal(old.code, 0, old.stderr);
          assert.match(old.stdout, /replaced-install/, `step ${n}: the replaced database is kept whole`);
        } finally {
          await target.stop();
        }
      }
      assert.ok(Number.isFinite(steps));
    } finally {
      await source.stop();
      await up.close();
    }
  });

  test('an apply that cannot be completed (its staged files were deleted after the crash) is undone: the data dir is the replaced install again', async () => {
    const source = await startGateway({ config: { teams: [{ name: 'from-the-backup' }] } });
    let target = await startGateway({ config: { teams: [{ name: 'still-here' }] } });
    cleanup.push(source.dataDir, target.dataDir);
    try {
      const bundle = await download(source, PASS);
      const targetKey = fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8');
      const mine = await target.admin('POST', '/keys', { name: 'mine' });
      assert.equal((await upload(target, bundle, { 'x-airlock-backup-passphrase': b64(PASS) })).status, 200);
      await target.stop();
      const crashed = await runCli(serveArgs(target.dataDir), { env: { [CRASH]: '2', AIRLOCK_ADMIN_TOKEN: ADMIN_TOKEN } });
      assert.equal(crashed.signal, 'SIGKILL');
      assert.equal(fs.existsSync(path.join(target.dataDir, 'airlock.db')), false, 'half-applied: the database has been moved out');
      // other commands refuse a data dir between two installs, naming why and what to do
      const before = fs.readdirSync(target.dataDir).sort();
      for (const args of [['config', 'export'], ['keys', 'list'], ['keys', 'create', '--name', 'mid-restore']]) {
        const r = await runCli([...args, '--data-dir', target.dataDir]);
        assert.notEqual(r.code, 0, `${args.join(' ')} is refused`);
        assert.match(r.stderr, /a restore into .* is being applied or was interrupted \(restore-journal\.json is there\).*start "airlock serve"/, args.join(' '));
      }
      assert.deepEqual(fs.readdirSync(target.dataDir).sort(), before, 'nothing was created or changed');
      fs.rmSync(path.join(target.dataDir, 'restore-staged'), { recursive: true, force: true });

      target = await startGateway({ dataDir: target.dataDir });
      assert.match(target.stdout(), /could not be completed .* it was undone/);
      assert.equal(fs.existsSync(journal(target.dataDir)), false);
      assert.equal(fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8'), targetKey);
      assert.equal(await modelsStatus(target, mine.body.key), 200, 'the install is the one it was');
      assert.match(JSON.stringify((await target.admin('GET', '/config')).body), /still-here/);
      assert.deepEqual(fs.readdirSync(target.dataDir).filter((f) => f.startsWith('before-restore-')), [], 'no half-filled kept folder stays behind');
    } finally {
      await source.stop();
      await target.stop();
    }
  });

  test('"airlock restore" killed mid-apply: the next "airlock serve" completes it', async () => {
    const source = await startGateway({ config: { teams: [{ name: 'from-the-cli-backup' }] } });
    const target = await startGateway({ config: { teams: [{ name: 'before-cli-restore' }] } });
    const dir = tmpDir('airlock-cli-restore-');
    cleanup.push(source.dataDir, target.dataDir, dir);
    try {
      const file = path.join(dir, 'b.backup');
      fs.writeFileSync(file, await download(source, PASS));
      const pass = path.join(dir, 'pass');
      fs.writeFileSync(pass, PASS + '\n');
      await target.stop();
      const r = await runCli(['restore', file, '--passphrase-file', pass, '--data-dir', target.dataDir], { env: { [CRASH]: '3' } });
      assert.equal(r.signal, 'SIGKILL', r.stderr);
      assert.ok(fs.existsSync(journal(target.dataDir)));
      const again = await startGateway({ dataDir: target.dataDir });
      try {
        assert.match(again.stdout(), /had been interrupted: it was completed; the replaced data is kept in .*before-restore-/);
        assert.match(JSON.stringify((await again.admin('GET', '/config')).body), /from-the-cli-backup/);
        assert.equal(fs.readFileSync(path.join(target.dataDir, 'install.key'), 'utf8'), fs.readFileSync(path.join(source.dataDir, 'install.key'), 'utf8'));
        assert.deepEqual(fs.readdirSync(target.dataDir).filter((f) => f.startsWith('.restore-')), [], 'the scratch dir is cleared');
      } finally {
        await again.stop();
      }
    } finally {
      await source.stop();
    }
  });
});
