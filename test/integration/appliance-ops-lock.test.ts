// One install/upgrade/uninstall at a time, and old upgrade backups pruned after a successful
// upgrade: real bundles, real concurrent `airlock` processes on one --prefix install. The upgrade
// that holds the lock is held deterministically: its new version waits for a gate file before it
// serves, so the other commands run while it certainly holds the lock.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { basicConfig, eventually, writeConfig } from '../helpers/gateway.js';
import { testBundle } from '../helpers/bundle.js';
import { PLAIN_ENV, run, scratch, unpackDelivery, type Run } from '../helpers/appliance.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const { dir, killAtEnd } = scratch('airlock-opslock-test-');

function runAsync(cmd: string, args: string[]): { pid: number; done: Promise<Run> } {
  const p = spawn(cmd, args, { env: PLAIN_ENV, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  p.stdout.on('data', (d: Buffer) => (out += d.toString()));
  p.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const done = new Promise<Run>((resolve) => p.on('close', (code) => resolve({ code, out })));
  return { pid: p.pid!, done };
}

// The new version's `serve` waits until PREFIX/gate exists (app/bin/airlock.js lies in PREFIX/VERSION/app/bin).
const GATE = `if (process.argv[2] === 'serve') { const gate = new URL('../../../gate', import.meta.url); while (!existsSync(gate)) await new Promise((r) => setTimeout(r, 100)); }\n`;

function backups(prefix: string): string[] {
  return fs.readdirSync(path.join(prefix, 'data', 'upgrade-backups')).sort();
}

describe('concurrent install/upgrade/uninstall are locked; old upgrade backups are pruned', () => {
  let up: TestUpstream;
  let main: Awaited<ReturnType<typeof testBundle>>;
  let installSh: string;
  let cfg: string;
  before(async () => {
    up = await startUpstream();
    main = await testBundle('main');
    installSh = unpackDelivery(main, dir('airlock-delivery-'));
    cfg = writeConfig(dir(), basicConfig(up.url));
  });
  after(async () => {
    await up?.close();
  });

  test('bad --keep-backups values are refused by name before anything happens', () => {
    const cli = path.join(path.dirname(installSh), 'bin', 'airlock');
    for (const v of ['0', '-1', 'two', '1.5', '']) {
      const r = run(cli, ['upgrade', main.bundle, '--prefix', dir(), `--keep-backups=${v}`]);
      assert.equal(r.code, 2, `${v}: ${r.out}`);
      assert.match(r.out, /--keep-backups must be a whole number of 1 or more/);
    }
  });

  test('a second upgrade, an install and an uninstall while an upgrade runs each fail in one line naming its PID; the upgrade completes and keeps the last N backups', async () => {
    const prefix = path.join(dir(), 'airlock');
    killAtEnd(path.join(prefix, 'run', 'airlock.pid'));
    const inst = run(installSh, ['--trust', main.key.pub, '--prefix', prefix, '--no-systemd', '--port', '0', '--admin-port', '0', '--config', cfg]);
    assert.equal(inst.code, 0, inst.out);
    const [gated, good] = await Promise.all([
      testBundle('gated-upgrade', {
        version: '0.1.3-gated',
        patch: (d) => {
          const f = path.join(d, 'app', 'bin', 'airlock.js');
          const js = fs.readFileSync(f, 'utf8');
          const at = js.indexOf('\nconst cli');
          assert.ok(at > 0);
          fs.writeFileSync(f, js.slice(0, at + 1) + GATE + js.slice(at + 1));
        },
      }),
      testBundle('good-upgrade', { version: '0.1.2-test' }),
    ]);

    // three backups of earlier upgrades (1-3 days old) and a file that is no backup
    const bdir = path.join(prefix, 'data', 'upgrade-backups');
    fs.mkdirSync(bdir, { mode: 0o700 });
    for (const [i, name] of ['before-0.0.3-from-0.0.2-x.db', 'before-0.0.2-from-0.0.1-x.db', 'before-0.0.1-from-0.0.0-x.db'].entries()) {
      fs.writeFileSync(path.join(bdir, name), 'old backup');
      const t = new Date(Date.now() - (i + 1) * 86_400_000);
      fs.utimesSync(path.join(bdir, name), t, t);
    }
    fs.writeFileSync(path.join(bdir, 'NOTES.txt'), 'kept: not a backup');

    const cli = path.join(prefix, 'airlock');
    const first = runAsync(cli, ['upgrade', gated.bundle, '--prefix', prefix, '--ready-timeout', '600', '--keep-backups', '2']);
    // the first upgrade holds the lock: it wrote its PID, and it waits at the gate for its new version
    const holder = path.join(prefix, '.airlock-ops.pid');
    await eventually(() => {
      try {
        return (JSON.parse(fs.readFileSync(holder, 'utf8')) as { pid: number }).pid === first.pid;
      } catch {
        return false;
      }
    }, 'the first upgrade to hold the lock', 60_000);

    // concurrently: another upgrade, an install into the same prefix, an uninstall
    const others = await Promise.all([
      runAsync(cli, ['upgrade', good.bundle, '--prefix', prefix]).done,
      runAsync(cli, ['upgrade', good.bundle, '--prefix', prefix, '--keep-backups', '1']).done,
      runAsync(installSh, ['--trust', main.key.pub, '--prefix', prefix, '--no-systemd']).done,
      runAsync(cli, ['uninstall', '--prefix', prefix, '--purge']).done,
    ]);
    for (const [i, r] of others.entries()) {
      assert.equal(r.code, 2, `attempt ${i}: ${r.out}`);
      assert.equal(r.out.trim().split('\n').length, 1, `one line: ${r.out}`);
      assert.match(r.out, new RegExp(`is locked by "airlock upgrade" \\(PID ${first.pid}, since [^)]+\\): wait for it to finish, then run "airlock (upgrade|install|uninstall)" again; nothing was changed`));
    }
    assert.ok(fs.existsSync(path.join(prefix, 'data', 'airlock.db')), 'the purge did not run');
    assert.ok(!fs.existsSync(path.join(prefix, '0.1.2-test')), 'the second upgrade unpacked nothing');

    // let the first upgrade's new version start: it completes, and prunes the backups to the last 2
    fs.writeFileSync(path.join(prefix, 'gate'), '');
    const r = await first.done;
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /upgraded 0\.1\.0 → 0\.1\.3-gated/);
    assert.match(r.out, /removed 2 older upgrade backups \(keeping the last 2: --keep-backups\): before-0\.0\.2-from-0\.0\.1-x\.db, before-0\.0\.1-from-0\.0\.0-x\.db/);
    const kept = backups(prefix);
    assert.equal(kept.length, 3, kept.join(', '));
    assert.ok(kept.includes('NOTES.txt') && kept.includes('before-0.0.3-from-0.0.2-x.db'));
    assert.ok(kept.some((f) => /^before-0\.1\.3-gated-from-0\.1\.0-.*\.db$/.test(f)), 'the new backup is kept');
    assert.ok(!fs.existsSync(holder), 'the holder file is gone with the lock');

    // the lock is free again: the next upgrade runs (default: keep 3 backups, so none is removed yet)
    const next = run(cli, ['upgrade', good.bundle, '--prefix', prefix]);
    assert.equal(next.code, 0, next.out);
    assert.doesNotMatch(next.out, /removed \d+ older upgrade backup/);
    assert.equal(backups(prefix).filter((f) => f.endsWith('.db')).length, 3);

    const stop = run(cli, ['uninstall', '--prefix', prefix, '--purge']);
    assert.equal(stop.code, 0, stop.out);
  });
});
