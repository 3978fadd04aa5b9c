// `airlock doctor`: checks an install (or a data dir) for what stops a gateway from serving, each
// finding with its fix. Read-only: it opens the database read-only and changes nothing.
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { DB_FILE } from '../store/db.js';
import { SECRET_FILE } from '../store/secrets.js';
import { readHolder } from '../store/data-dir-lock.js';

export interface Finding {
  check: 'ports' | 'data-dir' | 'database' | 'install-key' | 'endpoints' | 'mcp-servers' | 'disk' | 'clock';
  ok: boolean;
  message: string;
  fix?: string;
}

export interface DoctorOptions {
  dataDir: string;
  /** the service's user id (a systemd install: the airlock user's); default: who runs doctor */
  serviceUid?: number | undefined;
  /** environment of the service (AIRLOCK_HOST, AIRLOCK_PORT, …) */
  env: Record<string, string | undefined>;
  /** below this much free space in the data dir's file system: a problem (default 1024 MiB) */
  minFreeMb?: number | undefined;
  timeoutMs?: number | undefined;
}

const DEFAULTS = { data_host: '127.0.0.1', data_port: 4000, admin_host: '127.0.0.1', admin_port: 4001 };

function canBind(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', (e: NodeJS.ErrnoException) => resolve(e));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(undefined)));
  });
}

/** Any answer (even 401/404) means the server is there; a network error means it is not. */
async function reachable(url: string, timeoutMs: number): Promise<string | undefined> {
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' });
    await r.body?.cancel();
    return undefined;
  } catch (e) {
    const c = (e as { cause?: { code?: string; message?: string } }).cause;
    return c?.code ?? c?.message ?? (e as Error).message;
  }
}

function openReadOnly(dataDir: string): Database.Database | undefined {
  const file = path.join(dataDir, DB_FILE);
  if (!fs.existsSync(file)) return undefined;
  return new Database(file, { readonly: true, fileMustExist: true });
}

export async function doctor(o: DoctorOptions): Promise<Finding[]> {
  const f: Finding[] = [];
  const uid = o.serviceUid ?? process.getuid?.() ?? 0;
  const timeoutMs = o.timeoutMs ?? 5000;
  const dataDir = o.dataDir;

  // ---- data dir: exists, owned by the service, private ----
  let st: fs.Stats | undefined;
  try {
    st = fs.statSync(dataDir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOTDIR')
      f.push({ check: 'data-dir', ok: false, message: `data dir ${dataDir} cannot be a directory: a part of that path is a file`, fix: `point --data-dir (or AIRLOCK_DATA_DIR) at a directory` });
    else f.push({ check: 'data-dir', ok: false, message: `data dir ${dataDir} does not exist`, fix: `install Airlock (airlock install) or start it once: it creates ${dataDir}` });
  }
  if (st && !st.isDirectory()) {
    // (no owner or mode advice: it is no directory; nor any check of what would be inside it)
    f.push({
      check: 'data-dir',
      ok: false,
      message: `data dir ${dataDir} is ${st.isFile() ? 'a file, not a directory' : 'not a directory'}`,
      fix: `point --data-dir (or AIRLOCK_DATA_DIR) at a directory, or move ${dataDir} away: Airlock creates the directory at its first start`,
    });
    st = undefined;
  }
  if (st) {
    const problems: string[] = [];
    if (st.uid !== uid) problems.push(`owned by uid ${st.uid}, not by the service's uid ${uid}`);
    if (st.mode & 0o077) problems.push(`mode ${(st.mode & 0o777).toString(8)} lets other users in`);
    f.push(
      problems.length
        ? { check: 'data-dir', ok: false, message: `data dir ${dataDir} is ${problems.join(' and ')}`, fix: `chown -R ${uid} ${dataDir} && chmod 700 ${dataDir}` }
        : { check: 'data-dir', ok: true, message: `data dir ${dataDir}: owned by the service (uid ${uid}), mode 700` },
    );
  }

  // ---- install.key ----
  const keyFile = path.join(dataDir, SECRET_FILE);
  if (st) {
    let k: fs.Stats | undefined;
    try {
      k = fs.statSync(keyFile);
    } catch {
      /* missing */
    }
    if (!k)
      f.push({
        check: 'install-key',
        ok: false,
        message: `${keyFile} is missing: the stored secrets (endpoint API keys) cannot be decrypted`,
        fix: `put back the install.key of this database (it is inside every encrypted backup: airlock restore BACKUP), or start with a new data dir`,
      });
    else if (k.mode & 0o077 || k.uid !== uid)
      f.push({
        check: 'install-key',
        ok: false,
        message: `${keyFile} is readable by others (mode ${(k.mode & 0o777).toString(8)}, uid ${k.uid}): only the service (uid ${uid}) may read it`,
        fix: `chown ${uid} ${keyFile} && chmod 600 ${keyFile}`,
      });
    else f.push({ check: 'install-key', ok: true, message: `${keyFile}: readable by the service only` });
  }

  // ---- database ----
  let db: Database.Database | undefined;
  try {
    db = openReadOnly(dataDir);
    if (!db) {
      if (st) f.push({ check: 'database', ok: true, message: 'no database yet (it is created at the first start)' });
    } else {
      const rows = db.prepare('PRAGMA integrity_check').pluck().all() as string[];
      if (rows.length === 1 && rows[0] === 'ok') f.push({ check: 'database', ok: true, message: `${path.join(dataDir, DB_FILE)}: integrity_check ok` });
      else
        f.push({
          check: 'database',
          ok: false,
          message: `${path.join(dataDir, DB_FILE)} is damaged: ${rows.slice(0, 3).join('; ')}`,
          fix: 'stop the gateway and restore the latest backup (airlock restore BACKUP; an upgrade keeps one in DATA/upgrade-backups)',
        });
    }
  } catch (e) {
    f.push({ check: 'database', ok: false, message: `${path.join(dataDir, DB_FILE)} cannot be read: ${(e as Error).message}`, fix: 'stop the gateway and restore the latest backup (airlock restore BACKUP)' });
    db?.close();
    db = undefined;
  }

  // ---- ports: free, or held by this install's gateway ----
  let listen = { ...DEFAULTS };
  try {
    const spec = db?.prepare('SELECT spec FROM settings WHERE id = 1').pluck().get() as string | undefined;
    if (spec) listen = { ...listen, ...((JSON.parse(spec) as { listen?: Partial<typeof DEFAULTS> }).listen ?? {}) };
  } catch {
    /* reported by the database check */
  }
  const holder = st ? readHolder(dataDir) : undefined;
  const ours = holder && holder.role === 'serve' && fs.existsSync(`/proc/${holder.pid}`) ? holder : undefined;
  for (const [plane, host, port, hostVar, portVar] of [
    ['data', o.env.AIRLOCK_HOST || listen.data_host, o.env.AIRLOCK_PORT || listen.data_port, 'AIRLOCK_HOST', 'AIRLOCK_PORT'],
    ['admin', o.env.AIRLOCK_ADMIN_HOST || listen.admin_host, o.env.AIRLOCK_ADMIN_PORT || listen.admin_port, 'AIRLOCK_ADMIN_HOST', 'AIRLOCK_ADMIN_PORT'],
  ] as const) {
    const p = Number(port);
    const url = plane === 'data' ? ours?.data : ours?.admin;
    if (url) {
      f.push({ check: 'ports', ok: true, message: `${plane} plane: ${url}, served by this Airlock (PID ${ours!.pid})` });
      continue;
    }
    if (p === 0) {
      f.push({ check: 'ports', ok: true, message: `${plane} plane: any free port on ${host} (port 0)` });
      continue;
    }
    const e = await canBind(String(host), p);
    if (!e) f.push({ check: 'ports', ok: true, message: `${plane} plane: ${host}:${p} is free` });
    else
      f.push({
        check: 'ports',
        ok: false,
        message: `${plane} plane: ${host}:${p} cannot be used (${e.code === 'EADDRINUSE' ? 'in use by another program' : e.code === 'EADDRNOTAVAIL' ? 'no such address on this host' : e.code === 'EACCES' ? 'a privileged port' : e.message})`,
        fix: `stop the other program (ss -ltnp 'sport = :${p}' names it) or choose another port: ${portVar}=N (or ${hostVar}) in the service environment, or settings.listen`,
      });
  }

  // ---- endpoints and MCP servers ----
  if (db) {
    let endpoints: { name: string; base_url: string }[] = [];
    let mcp: { name: string; spec: string }[] = [];
    try {
      endpoints = db.prepare('SELECT name, base_url FROM endpoints ORDER BY name').all() as typeof endpoints;
      mcp = db.prepare('SELECT name, spec FROM mcp_servers ORDER BY position, name').all() as typeof mcp;
    } catch {
      /* reported by the database check */
    }
    const checks = endpoints.map(async (e): Promise<Finding> => {
      const err = await reachable(e.base_url.replace(/\/+$/, '') + '/models', timeoutMs);
      return err
        ? { check: 'endpoints', ok: false, message: `endpoint "${e.name}" (${e.base_url}) is unreachable: ${err}`, fix: `start the model server, or correct its address (admin app → Endpoints, or airlock config apply)` }
        : { check: 'endpoints', ok: true, message: `endpoint "${e.name}" (${e.base_url}) answers` };
    });
    const mcpChecks = mcp.map(async (m): Promise<Finding> => {
      const spec = JSON.parse(m.spec) as { transport?: string; url?: string; command?: string };
      if (spec.url) {
        const err = await reachable(spec.url, timeoutMs);
        return err
          ? { check: 'mcp-servers', ok: false, message: `MCP server "${m.name}" (${spec.url}) is unreachable: ${err}`, fix: 'start the MCP server, or correct its URL (admin app → MCP servers)' }
          : { check: 'mcp-servers', ok: true, message: `MCP server "${m.name}" (${spec.url}) answers` };
      }
      const cmd = spec.command ?? '';
      const found = path.isAbsolute(cmd) ? fs.existsSync(cmd) : spawnSync('sh', ['-c', 'command -v "$1"', 'sh', cmd]).status === 0;
      return found
        ? { check: 'mcp-servers', ok: true, message: `MCP server "${m.name}": its program ${cmd} exists` }
        : { check: 'mcp-servers', ok: false, message: `MCP server "${m.name}": its program ${cmd} is not found`, fix: `install ${cmd}, or correct the server's command (admin app → MCP servers)` };
    });
    f.push(...(await Promise.all(checks)), ...(await Promise.all(mcpChecks)));
  }

  // ---- disk space ----
  if (st) {
    const s = fs.statfsSync(dataDir);
    const freeMb = Math.floor((s.bavail * s.bsize) / 1048576);
    const min = o.minFreeMb ?? 1024;
    f.push(
      freeMb < min
        ? { check: 'disk', ok: false, message: `only ${freeMb} MiB free where the data dir is (less than ${min} MiB)`, fix: 'free space on that file system or move the data dir to a larger one (the ledger, audit trail and backups grow)' }
        : { check: 'disk', ok: true, message: `${freeMb} MiB free where the data dir is` },
    );
  }

  // ---- clock: not before what the database recorded ----
  const now = Date.now();
  let newest = 0;
  try {
    newest = Math.max(
      Number(db?.prepare('SELECT max(applied_at) FROM schema_migrations').pluck().get() ?? 0),
      Number(db?.prepare('SELECT max(ts) FROM ledger').pluck().get() ?? 0),
    );
  } catch {
    /* an older schema or a damaged database: the year check still runs */
  }
  if (new Date(now).getUTCFullYear() < 2025)
    f.push({ check: 'clock', ok: false, message: `the system clock says ${new Date(now).toISOString()}`, fix: 'set the clock (timedatectl set-time, or an NTP server of your network)' });
  else if (newest > now + 5 * 60_000)
    f.push({
      check: 'clock',
      ok: false,
      message: `the system clock (${new Date(now).toISOString()}) is behind what the database recorded (${new Date(newest).toISOString()}): budgets, limits and the audit trail would be misdated`,
      fix: 'set the clock (timedatectl set-time, or an NTP server of your network)',
    });
  else f.push({ check: 'clock', ok: true, message: `clock ${new Date(now).toISOString()}, not behind the database` });
  db?.close();
  return f;
}
