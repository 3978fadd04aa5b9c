// Install, upgrade (with automatic rollback) and uninstall of the server bundle, and the service
// it runs as: systemd on a real host (root), or — with --prefix DIR --no-systemd — a detached
// process this module starts and stops itself (pid file), for tests and hosts without systemd.
//
// Layout (system / --prefix DIR):
//   /opt/airlock/VERSION/, /opt/airlock/current → VERSION   DIR/VERSION/, DIR/current
//   /opt/airlock/install.json (what is installed)             DIR/install.json
//   /var/lib/airlock (data dir, 0700, the service user's)      DIR/data
//   /etc/airlock/airlock.env, airlock.yaml, release.pub.pem    DIR/etc/…
//   /etc/systemd/system/airlock.service, /usr/local/bin/airlock   DIR/run/airlock.pid, DIR/log/airlock.log
import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { DB_FILE, StartupError } from '../store/db.js';
import { readHolder } from '../store/data-dir-lock.js';
import { fingerprint, publicPem, readPublicKey, verifyBundle } from './release-key.js';
import { withOpsLock } from './ops-lock.js';

export interface Layout {
  systemd: boolean;
  root: string;
  dataDir: string;
  etcDir: string;
  trustFile: string;
  stateFile: string;
  envFile: string;
  configFile: string;
  pidFile: string;
  logFile: string;
  unitFile: string;
  commandLink: string;
}

/** Where systemd reads administrator units from; `--unit-dir` changes it (e.g. an image being built). */
export const SYSTEM_UNIT_DIR = '/etc/systemd/system';

/** systemd is the running init (sd_booted(): /run/systemd/system exists). */
export function systemdRunning(): boolean {
  return fs.existsSync('/run/systemd/system');
}

export function layoutFor(prefix: string | undefined, systemd: boolean, unitDir?: string): Layout {
  if (prefix) {
    const p = path.resolve(prefix);
    return {
      systemd,
      root: p,
      dataDir: path.join(p, 'data'),
      etcDir: path.join(p, 'etc'),
      trustFile: path.join(p, 'etc', 'release.pub.pem'),
      stateFile: path.join(p, 'install.json'),
      envFile: path.join(p, 'etc', 'airlock.env'),
      configFile: path.join(p, 'etc', 'airlock.yaml'),
      pidFile: path.join(p, 'run', 'airlock.pid'),
      logFile: path.join(p, 'log', 'airlock.log'),
      // a systemd install under DIR still needs its unit where systemd reads units
      unitFile: path.join(unitDir ? path.resolve(unitDir) : systemd ? SYSTEM_UNIT_DIR : p, 'airlock.service'),
      commandLink: path.join(p, 'airlock'),
    };
  }
  return {
    systemd,
    root: '/opt/airlock',
    dataDir: '/var/lib/airlock',
    etcDir: '/etc/airlock',
    trustFile: '/etc/airlock/release.pub.pem',
    stateFile: '/opt/airlock/install.json',
    envFile: '/etc/airlock/airlock.env',
    configFile: '/etc/airlock/airlock.yaml',
    pidFile: '/run/airlock/airlock.pid',
    logFile: '/var/log/airlock/airlock.log',
    unitFile: path.join(unitDir ? path.resolve(unitDir) : SYSTEM_UNIT_DIR, 'airlock.service'),
    commandLink: '/usr/local/bin/airlock',
  };
}

export interface InstallState {
  version: string;
  previous: string | null;
  systemd: boolean;
  data_dir: string;
  installed_at: string;
  last_backup?: string;
  /** the unit file, when --unit-dir put it elsewhere than the layout's default */
  unit_file?: string;
}

export function readState(l: Layout): InstallState | undefined {
  try {
    return JSON.parse(fs.readFileSync(l.stateFile, 'utf8')) as InstallState;
  } catch {
    return undefined;
  }
}

function writeAtomic(file: string, text: string, mode = 0o644): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, text, { mode });
  fs.renameSync(tmp, file);
}

function writeState(l: Layout, s: InstallState): void {
  writeAtomic(l.stateFile, JSON.stringify(s, null, 2) + '\n');
}

type Out = (line: string) => void;

// ---- the bundle ----

/** Verify `bundle` with the trusted key, then unpack it into ROOT/VERSION; returns the version. Nothing is written when the check fails. */
function verifyAndUnpack(l: Layout, bundle: string, sigFile: string, trusted: crypto.KeyObject, out: Out, refuseVersion?: string): string {
  verifyBundle(bundle, sigFile, trusted);
  out(`bundle ${path.basename(bundle)}: signature good (key ${fingerprint(trusted).slice(0, 16)}…)`);
  fs.mkdirSync(l.root, { recursive: true, mode: 0o755 });
  const incoming = fs.mkdtempSync(path.join(l.root, '.incoming-'));
  try {
    const r = spawnSync('tar', ['-xzf', path.resolve(bundle), '-C', incoming, '--no-same-owner'], { encoding: 'utf8' });
    if (r.status !== 0) throw new StartupError(`bundle ${bundle} cannot be unpacked: ${(r.stderr || r.error?.message || '').trim()}`);
    const top = fs.readdirSync(incoming);
    if (top.length !== 1 || !/^airlock-/.test(top[0]!)) throw new StartupError(`bundle ${bundle} is not an Airlock server bundle (expected one folder airlock-VERSION)`);
    const dir = path.join(incoming, top[0]!);
    let version: string;
    try {
      version = (JSON.parse(fs.readFileSync(path.join(dir, 'BUNDLE.json'), 'utf8')) as { version: string }).version;
    } catch {
      throw new StartupError(`bundle ${bundle} has no BUNDLE.json: not an Airlock server bundle`);
    }
    if (!/^[0-9A-Za-z.+-]+$/.test(version)) throw new StartupError(`bundle ${bundle} names an invalid version "${version}"`);
    if (version === refuseVersion) throw new StartupError(`Airlock ${version} is installed already; nothing to do`);
    const dest = path.join(l.root, version);
    fs.rmSync(dest, { recursive: true, force: true });
    fs.renameSync(dir, dest);
    return version;
  } finally {
    fs.rmSync(incoming, { recursive: true, force: true });
  }
}

function pointCurrent(l: Layout, version: string): void {
  const link = path.join(l.root, 'current');
  const tmp = `${link}.tmp-${process.pid}`;
  fs.rmSync(tmp, { force: true });
  fs.symlinkSync(version, tmp);
  fs.renameSync(tmp, link);
}

// ---- the service ----

function run(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.error) throw new StartupError(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new StartupError(`${cmd} ${args.join(' ')} failed (exit ${r.status}): ${(r.stderr || r.stdout).trim()}`);
}

/** KEY=value lines (comments, blank lines skipped), as systemd's EnvironmentFile reads them. */
export function readEnvFile(file: string): Record<string, string> {
  const env: Record<string, string> = {};
  let text = '';
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    return env;
  }
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (!m || line.trimStart().startsWith('#')) continue;
    env[m[1]!] = m[2]!.replace(/^"(.*)"$/, '$1');
  }
  return env;
}

/** Alive and not a zombie (a process that ended but was not reaped yet counts as gone). */
export function alive(pid: number): boolean {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function servicePid(l: Layout): number | undefined {
  if (l.systemd) {
    const r = spawnSync('systemctl', ['show', '-p', 'MainPID', '--value', 'airlock'], { encoding: 'utf8' });
    const pid = Number(r.stdout.trim());
    return pid > 0 ? pid : undefined;
  }
  try {
    const pid = Number(fs.readFileSync(l.pidFile, 'utf8').trim());
    // only a process of this install: its command line names this install's root
    const cmd = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return pid > 0 && alive(pid) && cmd.includes(l.root + path.sep) ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** Start the installed version; returns its PID. */
export function startService(l: Layout): number {
  if (l.systemd) {
    run('systemctl', ['start', 'airlock']);
    for (let i = 0; i < 50; i++) {
      const pid = servicePid(l);
      if (pid) return pid;
      spawnSync('sleep', ['0.1']);
    }
    throw new StartupError('systemd started airlock but it has no main process: see journalctl -u airlock');
  }
  const running = servicePid(l);
  if (running) throw new StartupError(`Airlock is running already (PID ${running})`);
  fs.mkdirSync(path.dirname(l.pidFile), { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(l.logFile), { recursive: true, mode: 0o700 });
  const log = fs.openSync(l.logFile, 'a', 0o600);
  const args = ['serve', '--data-dir', l.dataDir];
  if (fs.existsSync(l.configFile)) args.push('--config', l.configFile);
  // A clean environment, like systemd's: a fixed PATH (the bundle never needs it for node), the env file.
  const env = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', NODE_ENV: 'production', ...readEnvFile(l.envFile), AIRLOCK_DATA_DIR: l.dataDir };
  const p = spawn(path.join(l.root, 'current', 'bin', 'airlock'), args, { detached: true, stdio: ['ignore', log, log], env, cwd: l.root });
  fs.closeSync(log);
  p.unref();
  if (!p.pid) throw new StartupError(`cannot start ${path.join(l.root, 'current', 'bin', 'airlock')}`);
  writeAtomic(l.pidFile, `${p.pid}\n`);
  return p.pid;
}

/** Stop the service and wait until its process is gone (SIGTERM; SIGKILL after `graceMs`). */
export async function stopService(l: Layout, graceMs = 60_000): Promise<boolean> {
  if (l.systemd) {
    if (!systemdRunning()) return false; // no systemd running: no service of it either
    const had = servicePid(l) !== undefined;
    run('systemctl', ['stop', 'airlock']);
    return had;
  }
  const pid = servicePid(l);
  fs.rmSync(l.pidFile, { force: true });
  if (!pid) return false;
  process.kill(pid, 'SIGTERM');
  const until = Date.now() + graceMs;
  while (alive(pid)) {
    if (Date.now() > until) {
      process.kill(pid, 'SIGKILL');
      await sleep(200);
      break;
    }
    await sleep(100);
  }
  return true;
}

export function logTail(l: Layout, lines = 15): string {
  let text = '';
  if (l.systemd) text = spawnSync('journalctl', ['-u', 'airlock', '-n', String(lines), '-o', 'cat', '--no-pager'], { encoding: 'utf8' }).stdout ?? '';
  else {
    try {
      text = fs.readFileSync(l.logFile, 'utf8');
    } catch {
      /* no log yet */
    }
  }
  return text.trimEnd().split('\n').slice(-lines).join('\n');
}

/**
 * Wait until the service process `pid` answers GET /readyz with 200 (its listen URL is read from
 * the data dir's airlock.pid). Throws naming why not: it exited, or not ready in `timeoutMs`.
 */
export async function waitReady(l: Layout, pid: number, timeoutMs: number): Promise<string> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    if (!alive(pid)) throw new StartupError(`the gateway (PID ${pid}) exited while starting`);
    const h = readHolder(l.dataDir);
    if (h?.pid === pid && h.data) {
      try {
        const r = await fetch(`${h.data.replace(/^(https?):\/\/(0\.0\.0\.0|\[::\])(?=:)/, '$1://127.0.0.1')}/readyz`, { signal: AbortSignal.timeout(2000) });
        await r.body?.cancel();
        if (r.status === 200) return h.data;
      } catch {
        /* not yet */
      }
    }
    if (Date.now() > until) throw new StartupError(`the gateway (PID ${pid}) was not ready within ${Math.round(timeoutMs / 1000)} s`);
    await sleep(150);
  }
}

// ---- systemd ----

/**
 * The unit: the bundle's installers/airlock.service with this layout's paths (a --prefix install
 * with systemd keeps everything under DIR) and, when given, the config file after "serve".
 */
export function unitText(l: Layout, withConfig: boolean, template = fs.readFileSync(path.join(l.root, 'current', 'installers', 'airlock.service'), 'utf8')): string {
  return template
    .replaceAll('/var/lib/airlock', l.dataDir)
    .replaceAll('/etc/airlock/airlock.env', l.envFile)
    .replaceAll('/opt/airlock', l.root)
    .replace(/^(ExecStart=\S+ serve)$/m, withConfig ? `$1 --config ${l.configFile}` : '$1');
}

function ensureUser(): void {
  if (spawnSync('id', ['-u', 'airlock']).status === 0) return;
  run('useradd', ['--system', '--home-dir', '/var/lib/airlock', '--no-create-home', '--shell', '/usr/sbin/nologin', 'airlock']);
}

function chownToService(l: Layout, file: string): void {
  if (l.systemd) run('chown', ['-R', 'airlock:airlock', file]);
}

/**
 * The installed command (whichever version "current" points to), on the install's data dir. On a
 * systemd install, root running a data command (keys, config, backup, …) runs it as the service
 * user: files root created in the data dir would lock the service out.
 */
export function commandWrapper(l: Layout): string {
  const bin = path.join(l.root, 'current', 'bin', 'airlock');
  const asService = l.systemd
    ? `case "\${1:-}" in
  install|upgrade|uninstall|doctor|verify-bundle|service|help|--help|-h|--version|-v|'') ;;
  *) if [ "$(id -u)" = 0 ]; then exec runuser -u airlock -- env AIRLOCK_DATA_DIR="$AIRLOCK_DATA_DIR" ${bin} "$@"; fi ;;
esac
`
    : '';
  return `#!/bin/sh
# the installed Airlock (whichever version "current" points to), on its data dir
AIRLOCK_DATA_DIR=\${AIRLOCK_DATA_DIR:-${l.dataDir}}
export AIRLOCK_DATA_DIR
${asService}exec ${bin} "$@"
`;
}

// ---- install ----

export interface InstallOptions {
  bundle: string;
  sig?: string | undefined;
  trust?: string | undefined;
  prefix?: string | undefined;
  systemd: boolean;
  config?: string | undefined;
  env: Record<string, string>;
  readyTimeoutMs: number;
  /** systemd: install and write the unit, but run no systemctl (systemd not running yet: an image, a container build) */
  noStart?: boolean | undefined;
  /** systemd: where the unit goes (default /etc/systemd/system) */
  unitDir?: string | undefined;
  out: Out;
}

/** The trusted key: --trust, or the one pinned by an earlier install; both must agree. */
function trustedKey(l: Layout, trust: string | undefined): crypto.KeyObject {
  const pinned = fs.existsSync(l.trustFile) ? readPublicKey(l.trustFile) : undefined;
  const given = trust ? readPublicKey(trust) : undefined;
  if (pinned && given && fingerprint(pinned) !== fingerprint(given))
    throw new StartupError(
      `--trust ${trust} (fingerprint ${fingerprint(given)}) is not the release key pinned by the earlier install in ${l.trustFile} (fingerprint ${fingerprint(pinned)}); to change the release key, replace that file yourself`,
    );
  const key = given ?? pinned;
  if (!key) throw new StartupError('no trusted release key: pass --trust KEYFILE (the public key delivered separately from the bundle)');
  return key;
}

/** What install checks before it writes anything; returns the trusted key. */
function installChecks(o: InstallOptions, l: Layout): crypto.KeyObject {
  const state = readState(l);
  if (state) throw new StartupError(`Airlock ${state.version} is installed in ${l.root} already: use "airlock upgrade BUNDLE"`);
  if (l.systemd && process.getuid?.() !== 0) throw new StartupError('installing as a systemd service needs root (sudo); or install into a folder with --prefix DIR --no-systemd');
  if (l.systemd && !o.noStart && !systemdRunning())
    throw new StartupError('systemd is not running here (no /run/systemd/system): add --no-start to install now and start the service once systemd runs, or install with --prefix DIR --no-systemd');
  if (o.config && !fs.existsSync(o.config)) throw new StartupError(`config file ${o.config} does not exist`);
  return trustedKey(l, o.trust);
}

export async function install(o: InstallOptions): Promise<void> {
  const l = layoutFor(o.prefix, o.systemd, o.unitDir);
  // into a new root, everything is checked before the first write (the lock file is one)
  if (!fs.existsSync(l.root)) verifyBundle(o.bundle, o.sig ?? `${o.bundle}.sig`, installChecks(o, l));
  await withOpsLock(l.root, 'install', () => installLocked(o, l));
}

async function installLocked(o: InstallOptions, l: Layout): Promise<void> {
  const key = installChecks(o, l);
  const version = verifyAndUnpack(l, o.bundle, o.sig ?? `${o.bundle}.sig`, key, o.out);
  fs.mkdirSync(l.etcDir, { recursive: true, mode: 0o755 });
  writeAtomic(l.trustFile, publicPem(key));
  pointCurrent(l, version);
  fs.mkdirSync(l.dataDir, { recursive: true, mode: 0o700 });
  fs.chmodSync(l.dataDir, 0o700);
  const envLines = Object.entries(o.env).map(([k, v]) => `${k}=${v}\n`);
  if (envLines.length || !fs.existsSync(l.envFile)) writeAtomic(l.envFile, `# Airlock service environment (KEY=value), read at each start\n${envLines.join('')}`, 0o600);
  if (o.config) fs.copyFileSync(o.config, l.configFile);
  writeAtomic(l.commandLink, commandWrapper(l), 0o755);
  if (l.systemd) {
    ensureUser();
    chownToService(l, l.dataDir);
    if (fs.existsSync(l.configFile)) {
      fs.chmodSync(l.configFile, 0o640);
      run('chown', ['root:airlock', l.configFile]);
    }
    fs.mkdirSync(path.dirname(l.unitFile), { recursive: true, mode: 0o755 });
    writeAtomic(l.unitFile, unitText(l, fs.existsSync(l.configFile)));
    if (!o.noStart) {
      run('systemctl', ['daemon-reload']);
      run('systemctl', ['enable', 'airlock']);
    }
  } else if (fs.existsSync(l.configFile)) fs.chmodSync(l.configFile, 0o600);
  const unitFile = l.systemd && o.unitDir ? { unit_file: l.unitFile } : {};
  writeState(l, { version, previous: null, systemd: l.systemd, data_dir: l.dataDir, installed_at: new Date().toISOString(), ...unitFile });
  if (o.noStart) {
    o.out(`Airlock ${version} installed in ${path.join(l.root, version)}, not started (--no-start); data in ${l.dataDir}`);
    o.out(l.systemd ? `unit ${l.unitFile}: once systemd runs, "systemctl daemon-reload && systemctl enable --now airlock"` : `start it with: ${l.commandLink} service start --prefix ${l.root}`);
    return;
  }
  const pid = startService(l);
  let url: string;
  try {
    url = await waitReady(l, pid, o.readyTimeoutMs);
  } catch (e) {
    throw new StartupError(`Airlock ${version} is installed in ${l.root} but did not start: ${(e as Error).message}\n${logTail(l)}`);
  }
  o.out(`Airlock ${version} installed in ${path.join(l.root, version)} and serving at ${url} (PID ${pid}); data in ${l.dataDir}`);
  const setup = /first-run setup: open (\S+)/.exec(logTail(l, 50));
  if (setup) o.out(`first-run setup: open ${setup[1]}`);
  o.out(l.systemd ? 'service: systemctl status airlock; log: journalctl -u airlock' : `service: ${l.commandLink} service start|stop|status --prefix ${l.root}; log: ${l.logFile}`);
}

// ---- upgrade ----

export interface UpgradeOptions {
  bundle: string;
  sig?: string | undefined;
  prefix?: string | undefined;
  readyTimeoutMs: number;
  /** upgrade backups kept after a successful upgrade, the new one included (default DEFAULT_KEEP_BACKUPS) */
  keepBackups?: number | undefined;
  out: Out;
}

export const DEFAULT_KEEP_BACKUPS = 3;
const BACKUPS_DIR = 'upgrade-backups';

function installedLayout(prefix: string | undefined): { l: Layout; state: InstallState } {
  const probe = layoutFor(prefix, !prefix);
  const state = readState(probe);
  if (!state) throw new StartupError(`no Airlock install found in ${probe.root}${prefix ? '' : ' (for a folder install, pass --prefix DIR)'}`);
  return { l: layoutFor(prefix, state.systemd, state.unit_file && path.dirname(state.unit_file)), state };
}

/** A consistent copy of the (stopped) gateway's database, with SQLite's online-backup API. */
async function backupDatabase(l: Layout, tag: string): Promise<string | undefined> {
  const file = path.join(l.dataDir, DB_FILE);
  if (!fs.existsSync(file)) return undefined;
  const dir = path.join(l.dataDir, BACKUPS_DIR);
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const to = path.join(dir, `${tag}-${new Date().toISOString().replace(/[:.]/g, '-')}.db`);
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    fs.writeFileSync(to, '', { mode: 0o600 });
    await db.backup(to);
  } finally {
    db.close();
  }
  chownToService(l, dir);
  return to;
}

/** Put the backup back as the database; what the failed version left is kept aside. */
function restoreDatabase(l: Layout, backup: string): string {
  const file = path.join(l.dataDir, DB_FILE);
  const aside = `${file}.failed-upgrade-${Date.now()}`;
  for (const s of ['', '-wal', '-shm']) if (fs.existsSync(file + s)) fs.renameSync(file + s, aside + s);
  const tmp = `${file}.restore-${process.pid}`;
  fs.copyFileSync(backup, tmp);
  fs.chmodSync(tmp, 0o600);
  fs.renameSync(tmp, file);
  chownToService(l, file);
  return aside;
}

/**
 * Keep the `keep` newest upgrade backups (by modification time), delete the older ones; returns
 * what was deleted. Only the backups' own files (*.db in DATA/upgrade-backups) are looked at.
 */
export function pruneBackups(l: Layout, keep: number): string[] {
  const dir = path.join(l.dataDir, BACKUPS_DIR);
  let files: { f: string; t: number }[];
  try {
    files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.db'))
      .map((f) => ({ f: path.join(dir, f), t: fs.statSync(path.join(dir, f)).mtimeMs }));
  } catch {
    return [];
  }
  files.sort((a, b) => b.t - a.t || b.f.localeCompare(a.f));
  const gone = files.slice(keep).map((x) => x.f);
  for (const f of gone) fs.rmSync(f, { force: true });
  return gone;
}

export async function upgrade(o: UpgradeOptions): Promise<boolean> {
  const keep = o.keepBackups ?? DEFAULT_KEEP_BACKUPS;
  if (!Number.isInteger(keep) || keep < 1) throw new StartupError(`keep at least 1 upgrade backup (the one this upgrade makes), not ${keep}`);
  const { l } = installedLayout(o.prefix);
  return withOpsLock(l.root, 'upgrade', () => upgradeLocked(o, keep));
}

async function upgradeLocked(o: UpgradeOptions, keepBackups: number): Promise<boolean> {
  // read again under the lock: an upgrade that ran just before may have changed it
  const { l, state } = installedLayout(o.prefix);
  if (!fs.existsSync(l.trustFile)) throw new StartupError(`no pinned release key in ${l.trustFile}; reinstall with --trust KEYFILE`);
  const key = readPublicKey(l.trustFile);
  const from = state.version;
  const to = verifyAndUnpack(l, o.bundle, o.sig ?? `${o.bundle}.sig`, key, o.out, from);
  o.out(`stopping Airlock ${from}`);
  await stopService(l);
  const backup = await backupDatabase(l, `before-${to}-from-${from}`);
  if (backup) o.out(`database backed up to ${backup}`);
  pointCurrent(l, to);
  if (l.systemd) writeAtomic(l.unitFile, unitText(l, fs.existsSync(l.configFile)));
  o.out(`starting Airlock ${to}`);
  let why: string | undefined;
  try {
    const pid = startService(l);
    const url = await waitReady(l, pid, o.readyTimeoutMs);
    const keep = state.previous;
    writeState(l, { ...state, version: to, previous: from, ...(backup ? { last_backup: backup } : {}) });
    // keep the version just replaced (for a manual switch back); older ones go
    if (keep && keep !== to && keep !== from) fs.rmSync(path.join(l.root, keep), { recursive: true, force: true });
    o.out(`upgraded ${from} → ${to}: serving at ${url} (PID ${pid})`);
  } catch (e) {
    why = `${(e as Error).message}\n${logTail(l)}`;
  }
  if (why === undefined) {
    // only after a successful upgrade; a failure here is reported, the upgrade stands
    try {
      const pruned = pruneBackups(l, keepBackups);
      if (pruned.length) o.out(`removed ${pruned.length} older upgrade backup${pruned.length === 1 ? '' : 's'} (keeping the last ${keepBackups}: --keep-backups): ${pruned.map((f) => path.basename(f)).join(', ')}`);
    } catch (e) {
      o.out(`warning: old upgrade backups could not be removed: ${(e as Error).message}`);
    }
    return true;
  }
  o.out(`upgrade to ${to} FAILED: ${why}`);
  o.out(`rolling back to ${from}`);
  await stopService(l);
  pointCurrent(l, from);
  if (l.systemd) writeAtomic(l.unitFile, unitText(l, fs.existsSync(l.configFile)));
  if (backup) o.out(`database restored from ${backup} (what ${to} left is kept in ${restoreDatabase(l, backup)})`);
  fs.rmSync(path.join(l.root, to), { recursive: true, force: true });
  const pid = startService(l);
  const url = await waitReady(l, pid, o.readyTimeoutMs);
  o.out(`rolled back: Airlock ${from} is serving again at ${url} (PID ${pid})`);
  return false;
}

// ---- uninstall ----

export async function uninstall(o: { prefix?: string | undefined; purge: boolean; out: Out }): Promise<void> {
  await withOpsLock(installedLayout(o.prefix).l.root, 'uninstall', () => uninstallLocked(o));
}

async function uninstallLocked(o: { prefix?: string | undefined; purge: boolean; out: Out }): Promise<void> {
  const { l, state } = installedLayout(o.prefix);
  await stopService(l);
  if (l.systemd) {
    if (systemdRunning()) spawnSync('systemctl', ['disable', 'airlock']);
    fs.rmSync(l.unitFile, { force: true });
    if (systemdRunning()) spawnSync('systemctl', ['daemon-reload']);
  }
  for (const v of new Set([state.version, state.previous])) if (v) fs.rmSync(path.join(l.root, v), { recursive: true, force: true });
  for (const f of [path.join(l.root, 'current'), l.stateFile, l.commandLink, l.pidFile]) fs.rmSync(f, { force: true });
  if (o.purge) {
    for (const d of [l.dataDir, l.etcDir, path.dirname(l.logFile)]) fs.rmSync(d, { recursive: true, force: true });
    fs.rmSync(l.root, { recursive: true, force: true });
    if (l.systemd) spawnSync('userdel', ['airlock']);
    o.out(`Airlock ${state.version} uninstalled; its data (${l.dataDir}) and settings (${l.etcDir}) deleted`);
  } else o.out(`Airlock ${state.version} uninstalled; kept the data in ${l.dataDir} and the settings and pinned release key in ${l.etcDir} (--purge deletes them)`);
}

export function serviceStatus(prefix: string | undefined): { running: boolean; pid?: number; version: string } {
  const { l, state } = installedLayout(prefix);
  const pid = servicePid(l);
  return pid ? { running: true, pid, version: state.version } : { running: false, version: state.version };
}

export { installedLayout };
