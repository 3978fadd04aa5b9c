// Install, upgrade with automatic rollback, and uninstall of the server bundle, as an operator
// does it on a host without systemd (--prefix DIR --no-systemd): real bundles, real processes,
// the official openai client, the real SQLite file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, writeConfig } from '../helpers/gateway.js';
import { flippedCopy, keys, testBundle } from '../helpers/bundle.js';
import { run, scratch, unpackDelivery } from '../helpers/appliance.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const { dir, killAtEnd } = scratch('airlock-install-test-');

/** The PID and data-plane URL of the serving gateway of an install (from its data dir's airlock.pid). */
function serving(prefix: string): { pid: number; data: string; exe: string } {
  const h = JSON.parse(fs.readFileSync(path.join(prefix, 'data', 'airlock.pid'), 'utf8')) as { pid: number; data: string };
  return { pid: h.pid, data: h.data, exe: fs.realpathSync(`/proc/${h.pid}/exe`) };
}

function ledgerRows(prefix: string): number {
  const db = new Database(path.join(prefix, 'data', 'airlock.db'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM ledger').pluck().get() as number;
  } finally {
    db.close();
  }
}

const FAILING_MIGRATION = `MIGRATIONS.push({ version: 9999, name: 'deliberately failing (test bundle)', sql: 'INSERT INTO no_such_table_in_test_bundle VALUES (1);' });\n`;

describe('install, upgrade, rollback, uninstall (--prefix, no systemd)', () => {
  let up: TestUpstream;
  let a: Awaited<ReturnType<typeof testBundle>>;
  let delivery: string;
  let installSh: string;
  let cfg: string;
  before(async () => {
    up = await startUpstream();
    a = await testBundle('main');
    // the delivery folder as carried to the server: bundle + signature, unpacked next to them
    delivery = dir('airlock-delivery-');
    installSh = unpackDelivery(a, delivery);
    cfg = writeConfig(dir(), basicConfig(up.url));
  });
  after(async () => {
    await up?.close();
  });

  test('a bundle with a flipped byte, or signed by another key, is refused before anything is written', () => {
    const target = path.join(dir(), 'never');
    const flipped = flippedCopy(a.bundle, dir());
    const r1 = run(installSh, [flipped, '--trust', a.key.pub, '--prefix', target, '--no-systemd']);
    assert.equal(r1.code, 2, r1.out);
    assert.match(r1.out, /is NOT signed by the trusted key .*nothing was installed/);
    assert.ok(!fs.existsSync(target), 'nothing written');
    // the genuine bundle, signed again by somebody else's key
    const otherDir = dir();
    const resigned = path.join(otherDir, path.basename(a.bundle));
    fs.copyFileSync(a.bundle, resigned);
    fs.writeFileSync(`${resigned}.sig`, crypto.sign(null, fs.readFileSync(resigned), crypto.createPrivateKey(fs.readFileSync(keys().other.priv))));
    const r2 = run(installSh, [resigned, '--trust', a.key.pub, '--prefix', target, '--no-systemd']);
    assert.equal(r2.code, 2, r2.out);
    assert.match(r2.out, /is NOT signed by the trusted key/);
    assert.ok(!fs.existsSync(target), 'nothing written');
    // no key to trust at all
    const r3 = run(installSh, ['--prefix', target, '--no-systemd']);
    assert.equal(r3.code, 2, r3.out);
    assert.match(r3.out, /no trusted release key: pass --trust KEYFILE/);
    assert.ok(!fs.existsSync(target));
  });

  test('install, a failing upgrade that rolls back by itself, a good upgrade, uninstall keeping the data, reinstall with the pinned key, purge', async () => {
    const prefix = path.join(dir(), 'airlock');
    killAtEnd(path.join(prefix, 'run', 'airlock.pid'));
    // ---- install (install.sh finds the bundle it was unpacked from) ----
    const inst = run(installSh, ['--trust', a.key.pub, '--prefix', prefix, '--no-systemd', '--port', '0', '--admin-port', '0', '--config', cfg]);
    assert.equal(inst.code, 0, inst.out);
    assert.match(inst.out, new RegExp(`Airlock ${a.version.replace(/\./g, '\\.')} installed in`));
    assert.match(inst.out, /first-run setup: open http:\/\/127\.0\.0\.1:\d+\/setup\?token=/);
    assert.equal(fs.readlinkSync(path.join(prefix, 'current')), a.version);
    assert.equal(fs.statSync(path.join(prefix, 'data')).mode & 0o777, 0o700);
    let s = serving(prefix);
    assert.equal(s.exe, fs.realpathSync(path.join(prefix, a.version, 'runtime', 'bin', 'node')), 'the service runs on the bundled runtime');
    const ask = async (content: string) => {
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: `${serving(prefix).data}/v1`, maxRetries: 0 });
      const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content }] });
      return r.choices[0]!.message.content;
    };
    assert.equal(await ask('before upgrade 1'), 'echo: before upgrade 1');
    assert.equal(await ask('before upgrade 2'), 'echo: before upgrade 2');
    await eventually(() => ledgerRows(prefix) === 2, 'two ledger rows');
    const status = run(path.join(prefix, 'airlock'), ['service', 'status', '--prefix', prefix]);
    assert.equal(status.code, 0, status.out);
    assert.match(status.out, new RegExp(`running \\(PID ${s.pid}\\)`));

    // ---- a second bundle with a deliberately failing extra migration: rolls back ----
    const bad = await testBundle('failing-migration', {
      version: '0.1.1-failing',
      patch: (d) => {
        const f = path.join(d, 'app', 'dist', 'gateway', 'store', 'migrations.js');
        const js = fs.readFileSync(f, 'utf8');
        assert.match(js, /export const LATEST_VERSION/);
        fs.writeFileSync(f, js.replace('export const LATEST_VERSION', `${FAILING_MIGRATION}export const LATEST_VERSION`));
      },
    });
    const oldPid = s.pid;
    const r = run(path.join(prefix, 'airlock'), ['upgrade', bad.bundle, '--prefix', prefix, '--ready-timeout', '60']);
    assert.equal(r.code, 1, r.out);
    assert.match(r.out, /upgrade to 0\.1\.1-failing FAILED/);
    assert.match(r.out, /no_such_table_in_test_bundle/, 'the reason is shown (the migration error from the log)');
    assert.match(r.out, /database restored from .*upgrade-backups/);
    assert.match(r.out, new RegExp(`rolled back: Airlock ${a.version.replace(/\./g, '\\.')} is serving again`));
    assert.equal(fs.readlinkSync(path.join(prefix, 'current')), a.version);
    assert.ok(!fs.existsSync(path.join(prefix, '0.1.1-failing')), 'the failed version is removed');
    s = serving(prefix);
    assert.notEqual(s.pid, oldPid);
    assert.equal(s.exe, fs.realpathSync(path.join(prefix, a.version, 'runtime', 'bin', 'node')));
    assert.equal(ledgerRows(prefix), 2, 'no ledger row lost');
    assert.equal(await ask('after the rollback'), 'echo: after the rollback', 'the config (endpoint, model, key) is intact');
    await eventually(() => ledgerRows(prefix) === 3, 'a third ledger row');

    // ---- a tampered upgrade is refused, nothing changes ----
    const before = fs.readdirSync(prefix).sort();
    const t = run(path.join(prefix, 'airlock'), ['upgrade', flippedCopy(bad.bundle, dir()), '--prefix', prefix]);
    assert.equal(t.code, 2, t.out);
    assert.match(t.out, /is NOT signed by the trusted key/);
    assert.deepEqual(fs.readdirSync(prefix).sort(), before);
    assert.equal(serving(prefix).pid, s.pid, 'the running gateway was not touched');

    // ---- a good upgrade ----
    const good = await testBundle('good-upgrade', { version: '0.1.2-test' });
    const g = run(path.join(prefix, 'airlock'), ['upgrade', good.bundle, '--prefix', prefix]);
    assert.equal(g.code, 0, g.out);
    assert.match(g.out, new RegExp(`upgraded ${a.version.replace(/\./g, '\\.')} → 0\\.1\\.2-test`));
    assert.equal(fs.readlinkSync(path.join(prefix, 'current')), '0.1.2-test');
    s = serving(prefix);
    assert.equal(s.exe, fs.realpathSync(path.join(prefix, '0.1.2-test', 'runtime', 'bin', 'node')));
    assert.equal(ledgerRows(prefix), 3);
    assert.equal(await ask('on the new version'), 'echo: on the new version');
    await eventually(() => ledgerRows(prefix) === 4, 'a fourth ledger row');
    const again = run(path.join(prefix, 'airlock'), ['upgrade', good.bundle, '--prefix', prefix]);
    assert.equal(again.code, 2, again.out);
    assert.match(again.out, /0\.1\.2-test is installed already/);

    // ---- uninstall keeps the data and the pinned key ----
    const u = run(path.join(prefix, 'airlock'), ['uninstall', '--prefix', prefix]);
    assert.equal(u.code, 0, u.out);
    await eventually(() => { try { process.kill(s.pid, 0); return false; } catch { return true; } }, 'the gateway to stop'); // prettier-ignore
    assert.ok(!fs.existsSync(path.join(prefix, 'current')));
    assert.ok(!fs.existsSync(path.join(prefix, '0.1.2-test')));
    assert.equal(ledgerRows(prefix), 4, 'the data is kept');
    assert.ok(fs.existsSync(path.join(prefix, 'etc', 'release.pub.pem')));

    // ---- reinstall: the pinned key is trusted without --trust; another key is refused ----
    const wrong = run(installSh, ['--trust', keys().other.pub, '--prefix', prefix, '--no-systemd']);
    assert.equal(wrong.code, 2, wrong.out);
    assert.match(wrong.out, /is not the release key pinned by the earlier install/);
    const re = run(installSh, ['--prefix', prefix, '--no-systemd']);
    assert.equal(re.code, 0, re.out);
    assert.equal(ledgerRows(prefix), 4);
    assert.equal(await ask('reinstalled'), 'echo: reinstalled');

    // ---- purge ----
    const stopped = run(path.join(prefix, 'airlock'), ['service', 'stop', '--prefix', prefix]);
    assert.equal(stopped.code, 0, stopped.out);
    assert.match(stopped.out, /stopped/);
    const p = run(path.join(delivery, `airlock-${a.version}`, 'bin', 'airlock'), ['uninstall', '--prefix', prefix, '--purge']);
    assert.equal(p.code, 0, p.out);
    assert.ok(!fs.existsSync(prefix), 'purged');
  });
});
