// The systemd install as root, as far as it runs without systemd as PID 1: `install.sh --prefix DIR
// --unit-dir DIR/etc/systemd/system --no-start` creates the airlock system user (useradd), gives
// the data dir to it, the settings to root, writes the hardened unit where --unit-dir says; the
// installed command runs data commands as the service user; the service's own command line, run
// as that user the way the unit runs it, serves with these files and modes. What cannot run here
// (systemctl daemon-reload/enable/start, the unit's sandbox at run time, journald) is named in
// installers/README.md.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { basicConfig, eventually, tmpDir, writeConfig } from '../helpers/gateway.js';
import { testBundle } from '../helpers/bundle.js';
import { run as runCmd, unpackDelivery } from '../helpers/appliance.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const isRoot = process.getuid?.() === 0;
const hasUseradd = spawnSync('sh', ['-c', 'command -v useradd && command -v runuser']).status === 0;
const userExisted = spawnSync('id', ['-u', 'airlock']).status === 0;
const skip = !isRoot ? 'not root: the systemd install creates a system user' : !hasUseradd ? 'useradd/runuser are not installed' : userExisted ? 'a user "airlock" exists on this machine already: not touching it' : false;
if (skip) process.stdout.write(`# skip the root install: ${skip}\n`);

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
  // never leave the test's system user behind
  if (!skip && spawnSync('id', ['-u', 'airlock']).status === 0) spawnSync('userdel', ['airlock']);
});

const ENV = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env.HOME ?? '/root' };
const run = (cmd: string, args: string[]) => runCmd(cmd, args, ENV);
function owner(file: string): { user: string; group: string; mode: number } {
  const st = fs.lstatSync(file);
  const name = (id: number, db: string) => run('getent', [db, String(id)]).out.split(':')[0]!;
  return { user: name(st.uid, 'passwd'), group: name(st.gid, 'group'), mode: st.mode & 0o7777 };
}

describe('systemd install as root without systemd running (--no-start)', { skip }, () => {
  let up: TestUpstream;
  let b: Awaited<ReturnType<typeof testBundle>>;
  let installSh: string;
  let cfg: string;
  let parent: string;
  before(async () => {
    up = await startUpstream();
    b = await testBundle('main');
    const delivery = tmpDir('airlock-delivery-');
    cleanup.push(delivery);
    installSh = unpackDelivery(b, delivery);
    cfg = writeConfig(tmpDir(), basicConfig(up.url));
    // the service user must be able to reach the install, as it reaches /opt and /var/lib
    parent = tmpDir('airlock-root-install-');
    cleanup.push(parent);
    fs.chmodSync(parent, 0o755);
  });
  after(async () => {
    await up?.close();
  });

  test('without systemd running, a systemd install without --no-start is refused before anything is written', () => {
    const prefix = path.join(parent, 'refused');
    const r = run(installSh, ['--trust', b.key.pub, '--prefix', prefix]);
    assert.equal(r.code, 2, r.out);
    assert.match(r.out, /systemd is not running here \(no \/run\/systemd\/system\): add --no-start/);
    assert.ok(!fs.existsSync(prefix));
    assert.notEqual(spawnSync('id', ['-u', 'airlock']).status, 0, 'no user created');
  });

  test('creates the airlock system user, root-owned code and settings, the data dir private to the service user, the unit where --unit-dir says; data commands run as the service user; the service command serves as that user', async () => {
    const prefix = path.join(parent, 'airlock');
    const unitDir = path.join(prefix, 'etc', 'systemd', 'system');
    const r = run(installSh, ['--trust', b.key.pub, '--prefix', prefix, '--unit-dir', unitDir, '--no-start', '--config', cfg, '--port', '0', '--admin-port', '0']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, new RegExp(`Airlock ${b.version.replace(/\./g, '\\.')} installed in .*, not started \\(--no-start\\)`));
    assert.match(r.out, /once systemd runs, "systemctl daemon-reload && systemctl enable --now airlock"/);

    // the user: a system account (uid below UID_MIN), no login shell, home the system data dir
    const pw = run('getent', ['passwd', 'airlock']).out.trim().split(':');
    assert.equal(pw[0], 'airlock', 'the user exists');
    assert.ok(Number(pw[2]) < 1000, `a system uid, not ${pw[2]}`);
    assert.equal(pw[5], '/var/lib/airlock');
    assert.equal(pw[6], '/usr/sbin/nologin');
    assert.ok(!fs.existsSync('/var/lib/airlock'), 'no home folder created');

    // ownership and modes
    assert.deepEqual(owner(path.join(prefix, 'data')), { user: 'airlock', group: 'airlock', mode: 0o700 });
    assert.deepEqual(owner(path.join(prefix, 'etc', 'airlock.env')), { user: 'root', group: 'root', mode: 0o600 });
    assert.deepEqual(owner(path.join(prefix, 'etc', 'airlock.yaml')), { user: 'root', group: 'airlock', mode: 0o640 });
    assert.equal(owner(path.join(prefix, 'etc', 'release.pub.pem')).user, 'root');
    for (const f of ['bin/airlock', 'runtime/bin/node', 'app/dist/gateway/cli.js']) {
      const o = owner(path.join(prefix, b.version, f));
      assert.equal(o.user, 'root', f);
      assert.equal(o.mode & 0o022, 0, `${f} is writable only by root`);
    }
    assert.equal(fs.readlinkSync(path.join(prefix, 'current')), b.version);
    const unitFile = path.join(unitDir, 'airlock.service');
    assert.deepEqual(owner(unitFile), { user: 'root', group: 'root', mode: 0o644 });
    const unit = fs.readFileSync(unitFile, 'utf8');
    assert.match(unit, new RegExp(`^ExecStart=${prefix}/current/bin/airlock serve --config ${prefix}/etc/airlock\\.yaml$`, 'm'));
    assert.match(unit, /^User=airlock$/m);
    assert.match(unit, new RegExp(`^ReadWritePaths=${prefix}/data$`, 'm'));
    assert.match(unit, new RegExp(`^EnvironmentFile=-${prefix}/etc/airlock\\.env$`, 'm'));
    if (spawnSync('systemd-analyze', ['--version']).status === 0) {
      const v = spawnSync('systemd-analyze', ['verify', unitFile], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout + v.stderr);
    }
    const state = JSON.parse(fs.readFileSync(path.join(prefix, 'install.json'), 'utf8')) as { systemd: boolean; unit_file: string };
    assert.equal(state.systemd, true);
    assert.equal(state.unit_file, unitFile);

    // root runs a data command through the installed command: it runs as airlock, so the files it makes are the service's
    const created = run(path.join(prefix, 'airlock'), ['keys', 'create', '--name', 'root-made']);
    assert.equal(created.code, 0, created.out);
    assert.match(created.out, /sk-airlock-/);
    for (const f of ['airlock.db', 'install.key']) assert.equal(owner(path.join(prefix, 'data', f)).user, 'airlock', `${f} belongs to the service user`);
    assert.equal(owner(path.join(prefix, 'data', 'install.key')).mode, 0o600);

    // the unit's command line, as the service user with the unit's environment: it reads the 0640 config and serves
    const env = ['NODE_ENV=production', `AIRLOCK_DATA_DIR=${prefix}/data`, ...fs.readFileSync(path.join(prefix, 'etc', 'airlock.env'), 'utf8').split('\n').filter((l) => /^[A-Z_]+=/.test(l))];
    const execStart = /^ExecStart=(.*)$/m.exec(unit)![1]!.split(' ');
    const svc = spawn('runuser', ['-u', 'airlock', '--', 'env', '-i', `PATH=${ENV.PATH}`, ...env, ...execStart], { stdio: ['ignore', 'pipe', 'pipe'] });
    let log = '';
    svc.stdout.on('data', (d: Buffer) => (log += d.toString()));
    svc.stderr.on('data', (d: Buffer) => (log += d.toString()));
    const exited = new Promise<number | null>((resolve) => svc.on('close', (code) => resolve(code)));
    try {
      const url = await eventually(() => /data plane listening on (http:\/\/\S+?) /.exec(log)?.[1], `the service to listen (log: ${log})`, 60_000);
      const ready = await fetch(`${url}/readyz`);
      assert.equal(ready.status, 200);
      const holder = JSON.parse(fs.readFileSync(path.join(prefix, 'data', 'airlock.pid'), 'utf8')) as { pid: number };
      assert.equal(owner(`/proc/${holder.pid}`).user, 'airlock', 'the gateway runs as the service user');
      assert.equal(fs.realpathSync(`/proc/${holder.pid}/exe`), fs.realpathSync(path.join(prefix, b.version, 'runtime', 'bin', 'node')));
      process.kill(holder.pid, 'SIGTERM');
      assert.equal(await exited, 0, log);
    } finally {
      svc.kill('SIGKILL');
    }

    // uninstall --purge without systemd running: removes the unit, the code, the data and the user
    const u = run(path.join(prefix, 'airlock'), ['uninstall', '--prefix', prefix, '--purge']);
    assert.equal(u.code, 0, u.out);
    assert.ok(!fs.existsSync(unitFile));
    assert.ok(!fs.existsSync(prefix));
    assert.notEqual(spawnSync('id', ['-u', 'airlock']).status, 0, 'the user is removed');
  });
});
