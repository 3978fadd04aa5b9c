// The appliance commands of the `airlock` CLI: verify-bundle, install, upgrade, uninstall,
// service (start/stop/status of a --prefix install), doctor.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawnSync } from 'node:child_process';
import { UsageError, dataDirOf, parse } from './cli-args.js';
import { VERSION } from './version.js';
import { fingerprint, readPublicKey, verifyBundle } from './ops/release-key.js';
import { doctor } from './ops/doctor.js';
import { install, installedLayout, layoutFor, readEnvFile, readState, serviceStatus, startService, stopService, uninstall, upgrade, waitReady } from './ops/install.js';

const out = (l: string) => process.stdout.write(`airlock: ${l}\n`);

export const OPS_HELP = `  airlock verify-bundle BUNDLE.tar.gz --trust KEYFILE [--sig FILE]
  airlock install [BUNDLE.tar.gz] [--trust KEYFILE] [--prefix DIR [--no-systemd]] [--config FILE]
                  [--host H] [--port N] [--admin-host H] [--admin-port N] [--ready-timeout S]
                  [--no-start] [--unit-dir DIR]   (systemd not running yet: install, start at boot)
  airlock upgrade BUNDLE.tar.gz [--prefix DIR] [--ready-timeout S] [--keep-backups N]
                  (rolls back by itself on failure; keeps the last N database backups, default 3)
  airlock uninstall [--prefix DIR] [--purge]
  airlock service start|stop|status --prefix DIR   (a --no-systemd install)
  airlock doctor [--prefix DIR | --data-dir DIR] [--json] [--min-free-mb N]   (exit 1: a problem found)
`;

function readyTimeout(v: string | undefined): number {
  if (v === undefined) return 60_000;
  const n = Number(v);
  if (!Number.isFinite(n) || n <= 0) throw new UsageError(`--ready-timeout must be a number of seconds, not "${v}"`);
  return n * 1000;
}

function verifyBundleCommand(argv: string[]): number {
  const { values, positionals } = parse(argv, { trust: { type: 'string' }, sig: { type: 'string' } });
  const bundle = positionals[0];
  if (!bundle || positionals.length > 1) throw new UsageError('verify-bundle takes one BUNDLE.tar.gz');
  if (!values.trust) throw new UsageError('verify-bundle needs --trust KEYFILE (the release public key, delivered separately)');
  const key = readPublicKey(values.trust);
  verifyBundle(bundle, values.sig ?? `${bundle}.sig`, key);
  process.stdout.write(`${bundle}: signature good, signed by the key with fingerprint ${fingerprint(key)}\n`);
  return 0;
}

/** The bundle this command runs from, when run from an unpacked bundle: ../airlock-VERSION-linux-x64.tar.gz. */
function ownBundle(): string | undefined {
  const bundleDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const f = path.join(path.dirname(bundleDir), `airlock-${VERSION}-linux-x64.tar.gz`);
  return fs.existsSync(f) ? f : undefined;
}

async function installCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, {
    trust: { type: 'string' },
    sig: { type: 'string' },
    prefix: { type: 'string' },
    'no-systemd': { type: 'boolean' },
    config: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'admin-host': { type: 'string' },
    'admin-port': { type: 'string' },
    'ready-timeout': { type: 'string' },
    'no-start': { type: 'boolean' },
    'unit-dir': { type: 'string' },
  });
  if (positionals.length > 1) throw new UsageError('install takes at most one BUNDLE.tar.gz');
  const bundle = positionals[0] ?? ownBundle();
  if (!bundle) throw new UsageError(`name the bundle: airlock install airlock-${VERSION}-linux-x64.tar.gz (its signature is checked on the file as delivered)`);
  if (values['no-systemd'] && !values.prefix) throw new UsageError('--no-systemd needs --prefix DIR (the folder to install into)');
  if (values['no-systemd'] && values['unit-dir']) throw new UsageError('--unit-dir is for a systemd install; --no-systemd writes no unit');
  const env: Record<string, string> = {};
  for (const [flag, name] of [['host', 'AIRLOCK_HOST'], ['port', 'AIRLOCK_PORT'], ['admin-host', 'AIRLOCK_ADMIN_HOST'], ['admin-port', 'AIRLOCK_ADMIN_PORT']] as const) {
    const v = values[flag];
    if (v === undefined) continue;
    if (!/^[0-9A-Za-z.:[\]-]+$/.test(v)) throw new UsageError(`--${flag} "${v}" is not a host name, address or port`);
    env[name] = v;
  }
  await install({
    bundle,
    sig: values.sig,
    trust: values.trust,
    prefix: values.prefix,
    systemd: !values['no-systemd'],
    config: values.config,
    env,
    readyTimeoutMs: readyTimeout(values['ready-timeout']),
    noStart: values['no-start'],
    unitDir: values['unit-dir'],
    out,
  });
  return 0;
}

async function upgradeCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { sig: { type: 'string' }, prefix: { type: 'string' }, 'ready-timeout': { type: 'string' }, 'keep-backups': { type: 'string' } });
  const bundle = positionals[0];
  if (!bundle || positionals.length > 1) throw new UsageError('upgrade takes one BUNDLE.tar.gz');
  const kb = values['keep-backups'];
  if (kb !== undefined && !/^[1-9][0-9]*$/.test(kb.trim())) throw new UsageError(`--keep-backups must be a whole number of 1 or more (the backup this upgrade makes counts), not "${kb}"`);
  const ok = await upgrade({ bundle, sig: values.sig, prefix: values.prefix, readyTimeoutMs: readyTimeout(values['ready-timeout']), keepBackups: kb === undefined ? undefined : Number(kb), out });
  return ok ? 0 : 1;
}

async function uninstallCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { prefix: { type: 'string' }, purge: { type: 'boolean' } });
  if (positionals.length) throw new UsageError(`uninstall takes no arguments (got "${positionals[0]}")`);
  await uninstall({ prefix: values.prefix, purge: !!values.purge, out });
  return 0;
}

async function serviceCommand(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  const { values, positionals } = parse(rest, { prefix: { type: 'string' }, 'ready-timeout': { type: 'string' } });
  if (positionals.length) throw new UsageError(`service ${sub} takes no arguments`);
  if (!values.prefix) throw new UsageError('service needs --prefix DIR (a systemd install: use systemctl start|stop|status airlock)');
  const { l } = installedLayout(values.prefix);
  switch (sub) {
    case 'start': {
      const pid = startService(l);
      out(`started (PID ${pid}); ready at ${await waitReady(l, pid, readyTimeout(values['ready-timeout']))}`);
      return 0;
    }
    case 'stop':
      out((await stopService(l)) ? 'stopped' : 'was not running');
      return 0;
    case 'status': {
      const s = serviceStatus(values.prefix);
      process.stdout.write(s.running ? `Airlock ${s.version} running (PID ${s.pid})\n` : `Airlock ${s.version} not running\n`);
      return s.running ? 0 : 3;
    }
    default:
      throw new UsageError(`service takes start, stop or status, not "${sub ?? ''}"`);
  }
}

async function doctorCommand(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { prefix: { type: 'string' }, json: { type: 'boolean' }, 'min-free-mb': { type: 'string' } });
  if (positionals.length) throw new UsageError(`doctor takes no arguments (got "${positionals[0]}")`);
  const minFree = values['min-free-mb'] === undefined ? undefined : Number(values['min-free-mb']);
  if (minFree !== undefined && !(minFree >= 0)) throw new UsageError(`--min-free-mb must be a number, not "${values['min-free-mb']}"`);
  let dataDir: string;
  let env: Record<string, string | undefined> = process.env;
  let serviceUid: number | undefined;
  // an install: --prefix DIR, or the system install when there is one and no --data-dir
  const sys = layoutFor(undefined, true);
  const envDir = process.env.AIRLOCK_DATA_DIR;
  const state = values.prefix
    ? readState(layoutFor(values.prefix, false))
    : !values['data-dir'] && (!envDir || path.resolve(envDir) === sys.dataDir)
      ? readState(sys)
      : undefined;
  if (values.prefix && !state) throw new UsageError(`no Airlock install found in ${path.resolve(values.prefix)}`);
  if (state) {
    const l = layoutFor(values.prefix, state.systemd);
    dataDir = l.dataDir;
    env = { ...readEnvFile(l.envFile) };
    if (state.systemd) {
      const id = spawnSync('id', ['-u', 'airlock'], { encoding: 'utf8' });
      serviceUid = id.status === 0 ? Number(id.stdout.trim()) : undefined;
    }
  } else dataDir = dataDirOf(values);
  const findings = await doctor({ dataDir, env, serviceUid, minFreeMb: minFree });
  const bad = findings.filter((x) => !x.ok);
  if (values.json) process.stdout.write(JSON.stringify({ data_dir: dataDir, ok: bad.length === 0, findings }, null, 2) + '\n');
  else {
    for (const x of findings) process.stdout.write(`${x.ok ? 'ok  ' : 'FAIL'} ${x.check}: ${x.message}\n${x.fix ? `     fix: ${x.fix}\n` : ''}`);
    process.stdout.write(bad.length ? `${bad.length} problem${bad.length === 1 ? '' : 's'} found\n` : 'no problems found\n');
  }
  return bad.length ? 1 : 0;
}

export const OPS_COMMANDS = ['verify-bundle', 'install', 'upgrade', 'uninstall', 'service', 'doctor'];

/** Runs an appliance command; undefined when `cmd` is none of them. */
export async function opsCommand(cmd: string, argv: string[]): Promise<number | undefined> {
  switch (cmd) {
    case 'verify-bundle':
      return verifyBundleCommand(argv);
    case 'install':
      return installCommand(argv);
    case 'upgrade':
      return upgradeCommand(argv);
    case 'uninstall':
      return uninstallCommand(argv);
    case 'service':
      return serviceCommand(argv);
    case 'doctor':
      return doctorCommand(argv);
    default:
      return undefined;
  }
}

