// The systemd unit that `airlock install` writes: hardened as documented, and accepted by
// `systemd-analyze verify` where that tool exists (skipped, saying why, elsewhere).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tmpDir } from '../helpers/gateway.js';
import { commandWrapper, layoutFor, unitText } from '../../gateway/ops/install.js';

const TEMPLATE = fs.readFileSync(path.join(ROOT, 'installers', 'airlock.service'), 'utf8');
const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

const analyze = spawnSync('systemd-analyze', ['--version']);
const noAnalyze = analyze.status === 0 ? false : 'systemd-analyze is not installed here (no systemd): the unit is checked on hosts that have it';
if (noAnalyze) process.stdout.write(`# skip systemd-analyze verify: ${noAnalyze}\n`);

describe('systemd unit', () => {
  test('the system install: the bundle runtime through the current symlink, hardening, data dir the only writable path, restart on failure and on "Restart now" (exit 75)', () => {
    const unit = unitText(layoutFor(undefined, true), false, TEMPLATE);
    const directives = new Map<string, string[]>();
    for (const line of unit.split('\n')) {
      const m = /^([A-Za-z]+)=(.*)$/.exec(line);
      if (m) directives.set(m[1]!, [...(directives.get(m[1]!) ?? []), m[2]!]);
    }
    const one = (k: string) => directives.get(k)?.join(' | ');
    assert.equal(one('ExecStart'), '/opt/airlock/current/bin/airlock serve');
    assert.equal(one('User'), 'airlock');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('ReadWritePaths'), '/var/lib/airlock');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(one('ProtectHome'), 'yes');
    assert.equal(one('RestrictAddressFamilies'), 'AF_INET AF_INET6 AF_UNIX AF_NETLINK');
    assert.equal(one('Restart'), 'on-failure');
    // "Restart now" (admin app): the gateway exits 75 and systemd starts it again; never on 2 (a start-up error)
    assert.equal(one('RestartForceExitStatus'), '75');
    assert.equal(one('RestartPreventExitStatus'), '2');
    assert.equal(one('CapabilityBoundingSet'), '');
    assert.equal(one('Environment'), 'NODE_ENV=production | AIRLOCK_DATA_DIR=/var/lib/airlock | AIRLOCK_SUPERVISOR=systemd');
    assert.match(unitText(layoutFor(undefined, true), true, TEMPLATE), /^ExecStart=\/opt\/airlock\/current\/bin\/airlock serve --config \/etc\/airlock\/airlock\.yaml$/m);
  });

  test('systemd-analyze verify accepts the unit', { skip: noAnalyze }, () => {
    // the unit names its programs by absolute path, so it is verified against a folder laid out
    // like /opt/airlock (the paths replaced, as for any other root)
    const root = tmpDir('airlock-unit-');
    cleanup.push(root);
    fs.mkdirSync(path.join(root, '9.9.9', 'bin'), { recursive: true });
    fs.writeFileSync(path.join(root, '9.9.9', 'bin', 'airlock'), '#!/bin/sh\n', { mode: 0o755 });
    fs.symlinkSync('9.9.9', path.join(root, 'current'));
    const file = path.join(root, 'airlock.service');
    fs.writeFileSync(file, unitText(layoutFor(root, true), true, TEMPLATE));
    const r = spawnSync('systemd-analyze', ['verify', file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.equal(r.stderr.trim(), '', 'no warnings');
  });

  test('the installed command wrapper is valid sh; on a systemd install root runs data commands as the service user', () => {
    for (const systemd of [true, false]) {
      const text = commandWrapper(layoutFor(systemd ? undefined : '/srv/airlock', systemd));
      const r = spawnSync('sh', ['-n'], { input: text, encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.equal(/runuser -u airlock/.test(text), systemd);
      assert.match(text, systemd ? /AIRLOCK_DATA_DIR=\$\{AIRLOCK_DATA_DIR:-\/var\/lib\/airlock\}/ : /AIRLOCK_DATA_DIR:-\/srv\/airlock\/data\}/);
    }
  });
});
