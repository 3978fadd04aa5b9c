// The `airlock` command line.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { UsageError, cliActor, dataDirOf, defaultDataDir, parse } from './cli-args.js';
import { adminCommand, keyRotateCommand, keyStateCommand, listCommand } from './cli-admin.js';
import YAML from 'yaml';
import { DEFAULT_LISTEN, formatIssue, nearest } from './config/schema.js';
import { ConfigStore, formatChange, formatSecretOwner } from './store/config-store.js';
import { DB_FILE, ensureDataDir, StartupError } from './store/db.js';
import { SECRET_FILE } from './store/secrets.js';
import { openInstall } from './store/install.js';
import { RESTART_EXIT_CODE, detectSupervisor } from './server/admin-restart.js';
import { checkBackupTarget, checkPassphrase, applyStagedRestore, restoreBackup, writeBackup } from './store/backup.js';
import { DataDirLock } from './store/data-dir-lock.js';
import { VERSION } from './version.js';
import type { GatewayOptions, ListenSource } from './server/gateway.js';
import { promptRowsFor } from './audit/prompt-log.js';
import { openAudit, redact } from './audit/index.js';
import { auditCore } from './audit/core.js';
import { AuditKey } from './audit/key.js';
import { EXPORT_FORMATS, ExportError, exportBundle, type ExportFormat } from './audit/export.js';
import crypto from 'node:crypto';
import type { AuditLog } from './audit/log.js';
import { OPS_COMMANDS, OPS_HELP, opsCommand } from './cli-ops.js';
import { startupDone } from './server/idle-memory.js';


export { defaultDataDir };

const HELP = `airlock ${VERSION} — on-prem AI gateway

Usage:
  airlock serve [--data-dir DIR] [--config FILE] [--host H] [--port N]
                [--admin-host H] [--admin-port N]
  airlock config export [--data-dir DIR] [--format yaml|json]
  airlock config apply FILE [--data-dir DIR] [--dry-run]
  airlock keys create --name NAME [--team T] [--models a,b] [--app A] [--expires ISO] [--data-dir DIR]
  airlock keys list [--data-dir DIR]
  airlock keys disable|enable|revoke NAME [--data-dir DIR]
  airlock keys rotate NAME [--grace 24h] [--data-dir DIR]
  airlock endpoints|models|teams list [--json] [--data-dir DIR]
  airlock admin list [--data-dir DIR]
  airlock admin reset-password NAME [--data-dir DIR]   (prints a one-time password)
  airlock backup --to FILE [--passphrase-file F] [--plain] [--data-dir DIR]
  airlock restore FILE [--passphrase-file F] [--data-dir DIR]   (stop the gateway first)
  airlock audit export --to DIR [--from ISO] [--until ISO] [--format jsonl,csv,cef] [--prompts] [--data-dir DIR]
  airlock audit verify DIR [--key FINGERPRINT]
  airlock audit key [--data-dir DIR]
${OPS_HELP}  airlock --version | --help

Environment: AIRLOCK_DATA_DIR, AIRLOCK_HOST, AIRLOCK_PORT, AIRLOCK_ADMIN_HOST,
AIRLOCK_ADMIN_PORT, AIRLOCK_ADMIN_TOKEN, AIRLOCK_ADMIN_HOSTNAMES, AIRLOCK_BACKUP_PASSPHRASE.
Listen addresses: a flag wins over its environment variable, which wins over the stored
settings.listen (admin app: Settings), then 127.0.0.1:4000 (data) and 127.0.0.1:4001 (admin).
`;

function port(v: string | undefined, fallback: number, what: string): number {
  if (v === undefined || v === '') return fallback;
  // digits only: Number() would also take "0x10" (16) and "1e3" (1000)
  const n = /^\d{1,5}$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new UsageError(`${what} must be a port number from 0 to 65535, not "${v}"`);
  return n;
}

/** AIRLOCK_ADMIN_TOKEN is an owner on the admin API: a short one could be guessed. The rule is
 * one every generated token meets (`openssl rand -hex 16`: 32 characters). Unset or empty: none. */
export const MIN_ADMIN_TOKEN = 24;
function adminTokenOf(v: string | undefined): string | undefined {
  if (!v) return undefined;
  // (the value itself is a secret: never printed)
  if (v.length < MIN_ADMIN_TOKEN || !/^[\x21-\x7e]+$/.test(v))
    throw new UsageError(
      `AIRLOCK_ADMIN_TOKEN must be at least ${MIN_ADMIN_TOKEN} characters of printable ASCII without spaces (this one ${v.length < MIN_ADMIN_TOKEN ? `has ${v.length}` : 'has a space or another character a bearer token cannot carry'}); generate one, e.g. with: openssl rand -hex 16`,
    );
  return v;
}

/** Aliases (*name) a config file may expand, counted as the yaml library does (each alias weighed by the aliases inside what it copies). */
const MAX_ALIAS_COUNT = 100;

/** Read a YAML or JSON config file; errors name the file, line and column. */
export function readConfigFile(file: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new StartupError(`config file ${file} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  // prettyErrors: linePos is only filled in when it is on; its " at line L, column C:" suffix is dropped.
  const doc = YAML.parseDocument(text, { prettyErrors: true, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    const pos = e.linePos?.[0];
    // (the library's own advice for this one names its API: a config file is one document)
    const msg =
      e.code === 'MULTIPLE_DOCS'
        ? 'a second YAML document begins here ("---"): a config file holds one document; merge them into one, or remove the "---" line'
        : e.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
    throw new StartupError(`config file ${file}${pos ? `:${pos.line}:${pos.col}` : ''}: ${msg}`);
  }
  try {
    return doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT }) ?? {};
  } catch (e) {
    // a "billion laughs" file: aliases that would expand into far more data than the file holds
    if (e instanceof ReferenceError && /alias/i.test(e.message))
      throw new StartupError(`config file ${file}: its YAML aliases (*name) expand too far (more than ${MAX_ALIAS_COUNT} copies of aliased data; an alias bomb?): write the repeated parts out, or use fewer aliases`);
    throw e;
  }
}

/** `existing`: a read-only command, refused on a data dir that holds no install (it never creates one). */
/** The audit log is opened when a command first records (or reads) it: listing keys or
 * exporting the config needs no signing key. */
function openStore(dataDir: string, existing: boolean | 'read-only' = false): { store: ConfigStore; audit: () => AuditLog; promptRows: () => ReturnType<typeof promptRowsFor>; close: () => void } {
  const { db, secrets } = openInstall(dataDir, { existing: !!existing, readOnly: existing === 'read-only' });
  const store = new ConfigStore(db, secrets);
  let log: AuditLog | undefined;
  return { store, audit: () => (log ??= openAudit(db, dataDir, secrets)), promptRows: () => promptRowsFor(db, secrets), close: () => db.close() };
}

function applyFile(store: ConfigStore, file: string, dryRun: boolean, out: (s: string) => void, err: (s: string) => void = out, audit?: () => AuditLog): boolean {
  const doc = readConfigFile(file);
  const r = store.apply(doc, { dryRun, source: 'file', file: path.resolve(file) });
  // (a secret that changes owner is a line of the plan, though the configuration is the same)
  const lines = r.ok ? [...r.changes.map(formatChange), ...r.secretOwners.map(formatSecretOwner)] : [];
  // Recorded when it changed something (a refused or idempotent apply leaves the database as it was).
  // A secret's new owner is named (the key, the file field), never the secret.
  if (!dryRun && audit && r.ok && lines.length)
    audit().append({
      kind: 'config.apply',
      actor: cliActor(),
      source: 'cli',
      data: {
        action: 'config apply',
        file: path.resolve(file),
        changes: lines,
        ...(r.secretOwners.length ? { secret_owners: r.secretOwners.map((o) => ({ [o.section === 'keys' ? 'key' : 'agent']: o.name, written_by: o.field })) } : {}),
        applied: redact(doc),
      },
    });
  if (!r.ok) {
    err(`config ${file} refused (${r.issues.length} problem${r.issues.length === 1 ? '' : 's'}; nothing was applied):`);
    for (const i of r.issues) err(`  ${formatIssue(i)}`);
    return false;
  }
  if (lines.length === 0) out(`config ${file}: no changes`);
  else {
    out(`config ${file}: ${dryRun ? 'would apply' : 'applied'} ${lines.length} change${lines.length === 1 ? '' : 's'}:`);
    for (const l of lines) out(`  ${l}`);
  }
  for (const k of r.createdKeys) out(`  new key for ${k.section === 'agents' ? 'agent' : 'key'} "${k.name}" (shown once): ${k.key}`);
  return true;
}

/** Electron's utilityProcess parent port (process.parentPort in a utility process). */
interface ParentPort {
  postMessage(message: unknown): void;
  on(event: 'message', listener: (event: { data: unknown }) => void): unknown;
  off(event: 'message', listener: (event: { data: unknown }) => void): unknown;
}
const parentPort = (process as unknown as { parentPort?: ParentPort }).parentPort;

/**
 * The desktop shell asks the gateway to stop with `{type:'stop'}` over its parent port (Electron's
 * utilityProcess) or its IPC channel (a Node fork): handled exactly like SIGTERM, because
 * UtilityProcess.kill() is no graceful stop (SIGKILL shortly after SIGTERM, or TerminateProcess on
 * Windows). Listening from the start: a stop asked for during start-up is kept until the handlers exist.
 */
function listenForStop() {
  let handler: ((why: string) => void) | null = null;
  let pending = false;
  const onMessage = (m: unknown) => {
    if (!m || typeof m !== 'object' || (m as { type?: unknown }).type !== 'stop') return;
    if (handler) handler('stop message');
    else pending = true;
  };
  const onPortMessage = (e: { data: unknown }) => onMessage(e?.data);
  parentPort?.on('message', onPortMessage);
  process.on('message', onMessage);
  return {
    /** Install the stop handler; runs it at once when a stop was asked for already. */
    handle(fn: (why: string) => void) {
      handler = fn;
      if (pending) fn('stop message');
    },
    /** Stop listening (an IPC channel with a 'message' listener keeps the process alive). */
    close() {
      parentPort?.off('message', onPortMessage);
      process.off('message', onMessage);
    },
  };
}

async function serve(argv: string[]): Promise<number> {
  const control = listenForStop();
  try {
    return await serveUntilStopped(argv, control);
  } finally {
    control.close();
  }
}

async function serveUntilStopped(argv: string[], control: ReturnType<typeof listenForStop>): Promise<number> {
  const { values } = parse(argv, {
    config: { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'admin-host': { type: 'string' },
    'admin-port': { type: 'string' },
  });
  const env = process.env;
  const dataDir = dataDirOf(values);
  // Listen addresses: flag > environment > stored settings.listen > default. Flags and
  // environment are checked now (a bad port is a usage error before anything is opened); the
  // stored settings are read once the store is open and --config (which may set them) applied.
  const given = (flag: string | undefined, flagName: string, envName: string) =>
    flag ? { value: flag, source: 'flag' as const, what: flagName } : env[envName] ? { value: env[envName], source: 'env' as const, what: envName } : undefined;
  const over = {
    data_host: given(values.host, '--host', 'AIRLOCK_HOST'),
    data_port: given(values.port, '--port', 'AIRLOCK_PORT'),
    admin_host: given(values['admin-host'], '--admin-host', 'AIRLOCK_ADMIN_HOST'),
    admin_port: given(values['admin-port'], '--admin-port', 'AIRLOCK_ADMIN_PORT'),
  };
  const dataPort = over.data_port && port(over.data_port.value, 0, over.data_port.what);
  const adminPort = over.admin_port && port(over.admin_port.value, 0, over.admin_port.what);
  if (dataPort !== undefined && adminPort !== undefined)
    samePort(over.data_host?.value ?? DEFAULT_LISTEN.data_host, dataPort, over.data_port!.what, over.admin_host?.value ?? DEFAULT_LISTEN.admin_host, adminPort, over.admin_port!.what);
  const opts: GatewayOptions = {
    dataDir,
    host: DEFAULT_LISTEN.data_host,
    port: DEFAULT_LISTEN.data_port,
    adminHost: DEFAULT_LISTEN.admin_host,
    adminPort: DEFAULT_LISTEN.admin_port,
    adminToken: adminTokenOf(env.AIRLOCK_ADMIN_TOKEN),
  };
  const err = (s: string) => process.stderr.write(`airlock: ${s}\n`);
  // One gateway per data dir. A start that fails leaves no new data dir behind.
  const existed = fs.existsSync(dataDir);
  ensureDataDir(dataDir);
  let lock: DataDirLock | undefined;
  let gw: InstanceType<typeof import('./server/gateway.js').Gateway> | undefined;
  const abandon = async () => {
    // a new data dir is removed: its writer threads (ledger, audit, spans) and MCP servers stop
    // first. An existing one is left byte for byte as it was (stopping would write a checkpoint);
    // the process exits right after.
    if (gw && !existed) await gw.stop(0).catch(() => undefined);
    gw?.db.close();
    lock?.release();
    if (!existed) fs.rmSync(dataDir, { recursive: true, force: true });
  };
  let urls: { data: string; admin: string };
  try {
    lock = DataDirLock.acquire(dataDir, 'serve', 'stop it first, or choose another --data-dir');
    const restored = await applyStagedRestore(dataDir, (line) => process.stdout.write(`airlock: ${line}\n`));
    if (restored)
      process.stdout.write(
        `airlock: applied the restore staged by ${restored.staged_by} at ${restored.staged_at}${restored.backup_created_at ? ` (backup made ${restored.backup_created_at})` : ''}${restored.previous ? `; the replaced data is kept in ${restored.previous}` : ''}\n`,
      );
    // Loaded here: the server stack (fastify, undici, prom-client) would double the start-up time of every other command.
    const { Gateway } = await import('./server/gateway.js');
    gw = new Gateway(opts);
    if (values.config) {
      if (!applyFile(gw.store, values.config, false, err, err, () => gw!.audit)) {
        await abandon();
        return 2;
      }
      gw.reload();
    }
    urls = await startListening(gw, opts, over, dataPort, adminPort);
    lock.update(urls);
  } catch (e) {
    await abandon();
    throw e;
  }
  const held = lock;
  const running = gw;
  return announceAndRun(running, urls, dataDir, control, () => held.release());
}

type Overrides = Record<keyof ListenSource, { value: string | undefined; source: 'flag' | 'env'; what: string } | undefined>;

async function startListening(
  gw: InstanceType<typeof import('./server/gateway.js').Gateway>,
  opts: GatewayOptions,
  over: Overrides,
  dataPort: number | undefined,
  adminPort: number | undefined,
): Promise<{ data: string; admin: string }> {
  // The stored listen settings (the schema fills in defaults; "settings" means the stored
  // settings document holds the value, "default" that it predates the listen settings).
  const stored = gw.snapshot.settings.listen;
  let storedKeys: Record<string, unknown> = {};
  try {
    const raw = gw.db.prepare(`SELECT spec FROM settings WHERE id = 1`).pluck().get() as string | undefined;
    storedKeys = (raw ? (JSON.parse(raw) as { listen?: Record<string, unknown> }).listen : undefined) ?? {};
  } catch {
    storedKeys = {};
  }
  const from = (k: keyof ListenSource) => (over[k] ? over[k].source : k in storedKeys ? 'settings' : 'default');
  opts.host = over.data_host?.value ?? stored.data_host;
  opts.port = dataPort ?? stored.data_port;
  opts.adminHost = over.admin_host?.value ?? stored.admin_host;
  opts.adminPort = adminPort ?? stored.admin_port;
  opts.listenSource = { data_host: from('data_host'), data_port: from('data_port'), admin_host: from('admin_host'), admin_port: from('admin_port') };
  const what = (k: 'data_port' | 'admin_port') => over[k]?.what ?? (from(k) === 'settings' ? `settings.listen.${k}` : `the default ${k === 'data_port' ? 'data' : 'admin'} port`);
  samePort(opts.host, opts.port, what('data_port'), opts.adminHost, opts.adminPort, what('admin_port'));
  return gw.start();
}

/** The data plane and the admin plane on one address: refused naming where each port comes from. */
function samePort(dataHost: string, dataPort: number, dataWhat: string, adminHost: string, adminPort: number, adminWhat: string): void {
  const any = (h: string) => h === '0.0.0.0' || h === '::' || h === '';
  if (dataPort === 0 || dataPort !== adminPort || (dataHost !== adminHost && !any(dataHost) && !any(adminHost))) return;
  throw new UsageError(
    `${dataWhat} and ${adminWhat} are both ${dataPort}${dataHost === adminHost ? ` (on ${dataHost})` : ''}: the data plane and the admin plane need a port each; choose another for one of them`,
  );
}

async function announceAndRun(
  gw: InstanceType<typeof import('./server/gateway.js').Gateway>,
  urls: { data: string; admin: string },
  dataDir: string,
  control: ReturnType<typeof listenForStop>,
  release: () => void,
): Promise<number> {
  const err = (s: string) => process.stderr.write(`airlock: ${s}\n`);
  const out = (s: string) => process.stdout.write(`airlock: ${s}\n`);
  // Signal handlers before "ready" is announced: whoever waits for it may stop us at once.
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  let stopping = false;
  let exitCode = 0;
  const stop = (sig: string) => {
    if (stopping) {
      if (sig === 'stop message') return; // the shell waits for the exit; only a signal escalates
      err(`${sig} again: exiting now`);
      process.exit(130);
    }
    stopping = true;
    out(`${sig}: stopping (in-flight requests may finish for up to ${gw.snapshot.settings.shutdown_grace_ms} ms)`);
    gw.stop().then(
      () => {
        release();
        out(exitCode === RESTART_EXIT_CODE ? `stopped; exiting with code ${RESTART_EXIT_CODE} for ${gw.supervisor} to start it again` : 'stopped');
        resolveExit(exitCode);
      },
      (e: Error) => {
        release();
        err(`shutdown failed: ${e.message}`);
        resolveExit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  control.handle(stop);
  if (stopping) return exited; // asked to stop while starting: never announce ready
  // "Restart now" (server/admin-restart.ts): the same graceful stop, then the exit code the
  // supervisor (systemd, the desktop shell) restarts on; without one the route refuses.
  gw.supervisor = detectSupervisor(process.env, !!parentPort || typeof process.send === 'function');
  gw.requestRestart = (why) => {
    if (stopping) return;
    exitCode = RESTART_EXIT_CODE;
    stop(why);
  };

  out(`version ${VERSION}, data dir ${dataDir}`);
  out(`data plane listening on ${urls.data} (OpenAI-compatible API at ${urls.data}/v1)`);
  out(`admin plane listening on ${urls.admin}`);
  const tls = gw.tls?.info;
  if (tls) {
    const planes = [tls.data_plane && 'data plane', tls.admin_plane && 'admin plane'].filter(Boolean).join(' and ');
    out(`TLS on the ${planes}: certificate ${tls.cert_file} (${tls.subject}), SHA-256 fingerprint ${tls.fingerprint_sha256}, expires ${tls.valid_to}`);
    if (tls.expired) err(`warning: the TLS certificate ${tls.cert_file} expired on ${tls.valid_to}; clients will refuse it until it is renewed`);
  }
  const setupToken = gw.auth.setupToken;
  // A wildcard bind address is no name to browse to (and the Host check refuses it): print loopback.
  const setupBase = urls.admin.replace(/^(https?):\/\/(0\.0\.0\.0|\[::\])(?=:)/, '$1://127.0.0.1');
  if (setupToken) out(`first-run setup: open ${setupBase}/setup?token=${setupToken}`);
  out('ready');
  startupDone();
  // shutdown_grace_ms: how long a stop may take, so the shell waits that long (plus a margin) before it kills.
  const ready = {
    type: 'ready',
    data: urls.data,
    admin: urls.admin,
    version: VERSION,
    setup_token: setupToken ?? null,
    shutdown_grace_ms: gw.snapshot.settings.shutdown_grace_ms,
  };
  parentPort?.postMessage(ready);
  process.send?.(ready);
  return exited;
}

async function config(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'export') {
    const { values } = parse(rest, { format: { type: 'string' } });
    const { store, close } = openStore(dataDirOf(values), 'read-only');
    try {
      const fmt = values.format ?? 'yaml';
      if (fmt !== 'yaml' && fmt !== 'json') throw new UsageError(`--format must be yaml or json, not "${fmt}"`);
      const doc = store.export();
      // Every literal secret left out, said where a person applying this file elsewhere will look.
      const left = store
        .state()
        .endpoints.filter((e) => e.api_key_enc && !e.api_key_ref)
        .map((e) => `endpoints/${e.name}: api_key (a literal secret, stored encrypted): write it back, e.g. as api_key: \${env:NAME}, before applying this file on another install`);
      // an MCP server's literal env/headers values: exported as null (keep the stored value, which
      // this install has; another install has none and refuses the file until they are written back)
      for (const m of doc.mcp_servers)
        for (const field of ['headers', 'env'] as const) {
          const names = Object.entries(m[field] ?? {})
            .filter(([, v]) => v === null)
            .map(([k]) => k);
          if (names.length)
            left.push(
              `mcp_servers/${m.name}: ${field} ${names.join(', ')} (literal secret${names.length === 1 ? '' : 's'}, stored encrypted; null here keeps the stored value on this install): write ${names.length === 1 ? 'it' : 'them'} back, e.g. as \${env:NAME}, before applying this file on another install`,
            );
        }
      if (doc.keys.length)
        left.push(`keys: the secrets of ${doc.keys.length} key${doc.keys.length === 1 ? '' : 's'} (stored only as hashes): on another install, applying this file makes new keys, shown once`);
      if (fmt === 'json') {
        process.stdout.write(JSON.stringify(doc, null, 2) + '\n');
        for (const l of left) process.stderr.write(`airlock: not exported: ${l}\n`);
      } else {
        const note = left.length ? ['# Not exported (secrets never leave the install):', ...left.map((l) => `#   ${l}`), ''].join('\n') + '\n' : '';
        process.stdout.write(note + YAML.stringify(doc));
      }
      return 0;
    } finally {
      close();
    }
  }
  if (sub === 'apply') {
    const { values, positionals } = parse(rest, { 'dry-run': { type: 'boolean' } });
    const file = positionals[0];
    if (!file || positionals.length > 1) throw new UsageError('config apply takes one FILE');
    const dir = dataDirOf(values);
    const dryRun = !!values['dry-run'];
    const out = (s: string) => process.stdout.write(s + '\n');
    const err = (s: string) => process.stderr.write(s + '\n');
    readConfigFile(file); // a file that cannot be read or parsed: refused before anything is created
    if (!fs.existsSync(path.join(dir, DB_FILE))) {
      // No install here yet: the file is tried on a scratch one first, so a dry run or a refused
      // file creates nothing (no database, no install key) where the install would be.
      const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-apply-'));
      try {
        const s = openStore(scratch);
        try {
          const r = s.store.apply(readConfigFile(file), { dryRun: true, source: 'file', file: path.resolve(file) });
          if (dryRun || !r.ok) {
            if (r.ok) out(`config ${file}: no install at ${dir} yet; applying would create it with:`);
            return applyFile(s.store, file, true, out, err) ? 0 : 2;
          }
        } finally {
          s.close();
        }
      } finally {
        fs.rmSync(scratch, { recursive: true, force: true });
      }
    }
    const { store, audit, close } = openStore(dir);
    try {
      return applyFile(store, file, dryRun, out, err, audit) ? 0 : 2;
    } finally {
      close();
    }
  }
  throw new UsageError(`unknown command "config ${sub ?? ''}"; try "config export" or "config apply FILE"`);
}

async function keys(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'create') {
    const { values } = parse(rest, {
      name: { type: 'string' },
      team: { type: 'string' },
      models: { type: 'string' },
      app: { type: 'string' },
      expires: { type: 'string' },
    });
    if (!values.name) throw new UsageError('keys create needs --name NAME');
    const { store, audit, close } = openStore(dataDirOf(values));
    try {
      const current = store.export().keys;
      if (current.some((k) => k.name === values.name)) {
        process.stderr.write(`airlock: a key named "${values.name}" already exists\n`);
        return 2;
      }
      const spec: Record<string, unknown> = { name: values.name };
      if (values.team) spec.team = values.team;
      if (values.app) spec.app = values.app;
      if (values.expires) spec.expires_at = values.expires;
      if (values.models !== undefined) {
        // an empty list (an unset $MODELS in a script) must not become "every model"
        const models = values.models.split(',').map((s) => s.trim()).filter(Boolean);
        if (!models.length) throw new UsageError('--models needs at least one model name (leave --models out to allow every model)');
        const twice = models.find((m, i) => models.indexOf(m) !== i);
        if (twice) throw new UsageError(`--models names "${twice}" twice`);
        spec.models = models;
      }
      const r = store.apply({ keys: [...current, spec] }, { source: 'cli' });
      if (!r.ok) {
        for (const i of r.issues) {
          const p = i.path[0] === 'keys' && i.path[1] === current.length ? i.path.slice(2) : i.path;
          process.stderr.write(`airlock: ${formatIssue({ path: p, message: i.message })}\n`);
        }
        return 2;
      }
      const created = r.createdKeys.find((k) => k.name === values.name && k.section === undefined)!;
      audit().append({ kind: 'key.create', actor: cliActor(), source: 'cli', data: { action: 'keys create', key: redact(spec), changes: r.changes.map(formatChange) } });
      process.stdout.write(created.key + '\n');
      process.stderr.write(`airlock: key "${values.name}" created; it is shown only this once\n`);
      return 0;
    } finally {
      close();
    }
  }
  if (sub === 'list') {
    const { values } = parse(rest, {});
    const { store, close } = openStore(dataDirOf(values), 'read-only');
    try {
      for (const k of store.state().keys)
        process.stdout.write(`${k.name}\t${k.prefix}\tteam=${k.team ?? '-'}\tmodels=${k.models?.join(',') ?? '*'}${k.disabled ? '\tdisabled' : ''}\n`);
      return 0;
    } finally {
      close();
    }
  }
  if (sub === 'disable' || sub === 'enable' || sub === 'revoke') return keyStateCommand(sub, rest);
  if (sub === 'rotate') return keyRotateCommand(rest);
  throw new UsageError(`unknown command "keys ${sub ?? ''}"; try "keys create --name NAME", "keys list", "keys rotate NAME [--grace 24h]" or "keys disable|enable|revoke NAME"`);
}

/**
 * The backup passphrase: --passphrase-file FILE (its first line), AIRLOCK_BACKUP_PASSPHRASE, or
 * asked for on the terminal (twice when `confirm`).
 */
async function passphrase(file: string | undefined, confirm: boolean): Promise<string> {
  if (file) {
    try {
      return fs.readFileSync(file, 'utf8').split(/\r?\n/)[0]!;
    } catch (e) {
      throw new StartupError(`passphrase file ${file} cannot be read: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
    }
  }
  if (process.env.AIRLOCK_BACKUP_PASSPHRASE) return process.env.AIRLOCK_BACKUP_PASSPHRASE;
  if (!process.stdin.isTTY) throw new UsageError('the backup passphrase is needed: pass --passphrase-file FILE, set AIRLOCK_BACKUP_PASSPHRASE, or run this in a terminal to be asked');
  const first = await askHidden('Backup passphrase: ');
  if (confirm) {
    const bad = checkPassphrase(first);
    if (bad) throw new StartupError(bad);
    if ((await askHidden('Repeat it: ')) !== first) throw new StartupError('the two passphrases differ; nothing was written');
  }
  return first;
}

/** Read a line from the terminal without echoing it. */
function askHidden(prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const stdin = process.stdin;
    process.stderr.write(prompt);
    stdin.setRawMode(true);
    stdin.resume();
    let line = '';
    const done = (fn: () => void) => {
      stdin.setRawMode(false);
      stdin.pause();
      stdin.off('data', onData);
      process.stderr.write('\n');
      fn();
    };
    const onData = (d: Buffer) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done(() => resolve(line));
        if (ch === '\u0003') return done(() => reject(new StartupError('interrupted; nothing was changed')));
        if (ch === '\u007f' || ch === '\b') line = [...line].slice(0, -1).join('');
        else line += ch;
      }
    };
    stdin.on('data', onData);
  });
}

const isoTime = (v: string | undefined, flag: string): number | undefined => {
  if (v === undefined) return undefined;
  const n = Date.parse(v);
  if (!/^\d{4}-\d{2}-\d{2}/.test(v) || !Number.isFinite(n)) throw new UsageError(`${flag} must be an ISO 8601 date or date-time (e.g. 2026-01-31 or 2026-01-31T12:00:00Z), not "${v}"`);
  return n;
};

/** Parse "--format jsonl,csv,cef" (any order, spaces, case). */
export function exportFormats(v: string | undefined): ExportFormat[] {
  if (v === undefined) return ['jsonl'];
  const out = v.split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
  const bad = out.filter((f) => !(EXPORT_FORMATS as readonly string[]).includes(f));
  if (bad.length || !out.length) throw new UsageError(`--format takes a comma-separated list of ${EXPORT_FORMATS.join(', ')}, not "${v}"`);
  return out as ExportFormat[];
}

async function audit(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'export') {
    const { values, positionals } = parse(rest, { to: { type: 'string' }, from: { type: 'string' }, until: { type: 'string' }, format: { type: 'string' }, prompts: { type: 'boolean' } });
    if (!values.to) throw new UsageError('audit export needs --to DIR (e.g. the mount point of a USB stick)');
    if (positionals.length) throw new UsageError(`audit export takes no arguments besides its options (got "${positionals[0]}")`);
    const from = isoTime(values.from, '--from');
    const until = isoTime(values.until, '--until');
    if (from !== undefined && until !== undefined && until < from) throw new UsageError('--until must not be earlier than --from');
    const formats = exportFormats(values.format);
    const { audit: openLog, promptRows, close } = openStore(dataDirOf(values), true);
    const log = openLog();
    try {
      const r = await exportBundle(log, { to: values.to, from, until, formats, ...(values.prompts ? { prompts: promptRows() } : {}), actor: cliActor(), source: 'cli' });
      process.stdout.write(`${r.dir}\n`);
      process.stderr.write(`airlock: exported ${r.count} audit records${r.count ? ` (seq ${r.first_seq} to ${r.last_seq})` : ''} to ${r.dir}, signed by ${r.key_fingerprint}; verified after writing\n`);
      return 0;
    } catch (e) {
      if (e instanceof ExportError) {
        process.stderr.write(`airlock: audit export: ${e.message}\n`);
        return 2;
      }
      throw e;
    } finally {
      close();
    }
  }
  if (sub === 'verify') {
    const { values, positionals } = parse(rest, { key: { type: 'string' } });
    const dir = positionals[0];
    if (!dir || positionals.length > 1) throw new UsageError('audit verify takes one DIR (an exported bundle)');
    const core = auditCore({ crypto, fs, path });
    const bad = values.key === undefined ? undefined : core.fingerprintProblem(values.key);
    if (bad) throw new UsageError(bad);
    const v = core.verifyBundle(path.resolve(dir), { key: values.key });
    if (v.ok) {
      process.stdout.write(`OK: ${v.count} records (seq ${v.first_seq ?? '-'} to ${v.last_seq ?? '-'}), signed by key ${v.key_fingerprint}\n`);
      if (!values.key) process.stderr.write('airlock: compare that fingerprint with "airlock audit key" on the gateway, or pass --key FINGERPRINT\n');
      return 0;
    }
    process.stdout.write(`FAILED: ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'} in ${path.resolve(dir)}\n`);
    for (const p of v.problems) process.stdout.write(`  ${p}\n`);
    return 1;
  }
  if (sub === 'key') {
    const { values } = parse(rest, {});
    const dataDir = dataDirOf(values);
    // read-only: an install must exist (it is never created here)
    const { db, secrets } = openInstall(dataDir, { existing: true, readOnly: true });
    try {
      const k = AuditKey.load(dataDir, secrets);
      process.stdout.write(`${k.fingerprint}\n${k.publicKeyPem}`);
    } finally {
      db.close();
    }
    return 0;
  }
  throw new UsageError(`unknown command "audit ${sub ?? ''}"; try "audit export --to DIR", "audit verify DIR" or "audit key"`);
}

async function backup(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { to: { type: 'string' }, plain: { type: 'boolean' }, 'passphrase-file': { type: 'string' } });
  if (!values.to) throw new UsageError('backup needs --to FILE');
  if (positionals.length) throw new UsageError(`backup takes no positional arguments (got "${positionals[0]}"); use --to FILE`);
  const dataDir = dataDirOf(values);
  const to = checkBackupTarget(values.to);
  const { db } = openInstall(dataDir, { existing: true });
  try {
    const pass = values.plain ? undefined : await passphrase(values['passphrase-file'], true);
    const r = await writeBackup({ db, dataDir, to, passphrase: pass, plain: !!values.plain });
    if (values.plain)
      process.stdout.write(
        `plain database backup written to ${to} (${r.bytes} bytes, mode 0600); it does not hold the install secret: keep a copy of ${path.join(dataDir, SECRET_FILE)} too\n`,
      );
    else process.stdout.write(`encrypted backup written to ${to} (${r.bytes} bytes, mode 0600): the database and its install.key, under your passphrase (keep the passphrase apart from the file)\n`);
    return 0;
  } finally {
    db.close();
  }
}

async function restore(argv: string[]): Promise<number> {
  const { values, positionals } = parse(argv, { 'passphrase-file': { type: 'string' } });
  const file = positionals[0];
  if (!file || positionals.length > 1) throw new UsageError('restore takes one FILE');
  const dataDir = dataDirOf(values);
  const r = await restoreBackup({
    file,
    dataDir,
    passphrase: () => passphrase(values['passphrase-file'], false),
    warn: (l) => process.stderr.write(`airlock: warning: ${l}\n`),
  });
  process.stdout.write(
    `restored ${path.resolve(file)} into ${dataDir}${r.kind === 'bundle' ? ' (database and install.key)' : ''}; start the gateway now` +
      (r.previous ? `. What it replaced is kept in ${r.previous} (a complete data dir); delete it once the restored gateway works` : '') +
      '\n',
  );
  return 0;
}

const COMMANDS = ['serve', 'config', 'keys', 'endpoints', 'models', 'teams', 'admin', 'audit', 'backup', 'restore', 'help', ...OPS_COMMANDS];

/** `; did you mean "keys"?` for a near miss, else nothing. */
function didYouMean(word: string): string {
  const hit = nearest(word, COMMANDS);
  return hit ? `; did you mean "${hit}"?` : '';
}

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case 'serve':
        return await serve(rest);
      case 'config':
        return await config(rest);
      case 'keys':
        return await keys(rest);
      case 'endpoints':
      case 'models':
      case 'teams':
        return listCommand(cmd, rest);
      case 'admin':
        return await adminCommand(rest);
      case 'audit':
        return await audit(rest);
      case 'backup':
        return await backup(rest);
      case 'restore':
        return await restore(rest);
      case '--version':
      case '-v':
        process.stdout.write(VERSION + '\n');
        return 0;
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        process.stdout.write(HELP);
        return cmd === undefined ? 2 : 0;
      default: {
        const code = await opsCommand(cmd, rest);
        if (code === undefined) throw new UsageError(`unknown command "${cmd}"${didYouMean(cmd)}`);
        return code;
      }
    }
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`airlock: ${e.message}\nRun "airlock --help" for usage.\n`);
      return 2;
    }
    if (e instanceof StartupError) {
      process.stderr.write(`airlock: ${e.message}\n`);
      return 2;
    }
    // Anything else is a bug or an unexpected system error: one line, the stack only when asked for.
    process.stderr.write(`airlock: ${process.env.AIRLOCK_DEBUG ? ((e as Error).stack ?? String(e)) : ((e as Error).message ?? String(e))}\n`);
    return 1;
  }
}
