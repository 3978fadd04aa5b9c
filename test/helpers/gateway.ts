// Starts the real gateway as a separate process (the compiled CLI, as a user would run it)
// on port 0, and talks to it over real HTTP.
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, fetch as undiciFetch } from 'undici';
import YAML from 'yaml';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const BIN = path.join(ROOT, 'bin', 'airlock.js');
export const ADMIN_TOKEN = 'test-admin-token-0123456789';

const live = new Set<ChildProcess>();
const made: string[] = [];
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
  // the test file's temporary folders go with it (AIRLOCK_KEEP_TEST_DIRS=1 keeps them to look into)
  if (process.env.AIRLOCK_KEEP_TEST_DIRS !== '1') for (const d of made) fs.rmSync(d, { recursive: true, force: true, maxRetries: 2 });
});

/** A new folder under the system's temporary folder, removed when the test process exits. */
export function tmpDir(prefix = 'airlock-test-'): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  made.push(d);
  return d;
}

export function writeConfig(dir: string, config: unknown, name = 'airlock.yaml'): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, typeof config === 'string' ? config : YAML.stringify(config));
  return file;
}

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run `airlock ARGS` to completion. */
export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    live.add(p);
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const t = setTimeout(() => {
      p.kill('SIGKILL');
      reject(new Error(`airlock ${args.join(' ')} did not finish in time\n${stdout}\n${stderr}`));
    }, opts.timeoutMs ?? 30_000);
    p.on('error', reject);
    p.on('close', (code, signal) => {
      clearTimeout(t);
      live.delete(p);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

export interface AdminResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
}

export interface RunningGateway {
  proc: ChildProcess;
  dataDir: string;
  /** e.g. http://127.0.0.1:PORT */
  dataUrl: string;
  adminUrl: string;
  /** base URL for OpenAI clients: dataUrl + '/v1' */
  baseURL: string;
  stdout: () => string;
  stderr: () => string;
  admin<T = any>(method: string, p: string, body?: unknown, headers?: Record<string, string>): Promise<AdminResponse<T>>;
  /** send a signal and wait for the exit */
  stop(signal?: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

export interface StartOptions {
  dataDir?: string;
  /** a config document (written as YAML) or a path to an existing file */
  config?: unknown;
  env?: NodeJS.ProcessEnv;
  args?: string[];
  adminToken?: string | null;
  /** false: start without the default `--port 0 --admin-port 0` (the stored settings.listen or
   * the environment decide; make sure they name loopback and port 0) */
  listenFlags?: boolean;
  /** PEM certificate(s) `admin()` trusts: for a gateway serving HTTPS with settings.tls */
  ca?: string | Buffer;
}

export async function startGateway(opts: StartOptions = {}): Promise<RunningGateway> {
  const dataDir = opts.dataDir ?? tmpDir();
  const args = ['serve', '--data-dir', dataDir, ...(opts.listenFlags === false ? [] : ['--port', '0', '--admin-port', '0']), ...(opts.args ?? [])];
  if (opts.config !== undefined) {
    const file = typeof opts.config === 'string' && fs.existsSync(opts.config) ? opts.config : writeConfig(tmpDir('airlock-cfg-'), opts.config);
    args.push('--config', file);
  }
  const env: NodeJS.ProcessEnv = { ...process.env, ...opts.env };
  if (opts.adminToken !== null) env.AIRLOCK_ADMIN_TOKEN = opts.adminToken ?? ADMIN_TOKEN;
  else delete env.AIRLOCK_ADMIN_TOKEN;
  const proc = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(proc);
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  proc.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.on('exit', (code, signal) => {
      live.delete(proc);
      resolve({ code, signal });
    }),
  );
  const urls = await new Promise<{ data: string; admin: string }>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`gateway did not become ready\nstdout:\n${out}\nstderr:\n${err}`)), 20_000);
    const check = () => {
      const d = /data plane listening on (https?:\/\/\S+)/.exec(out);
      const a = /admin plane listening on (https?:\/\/\S+)/.exec(out);
      if (d && a && /airlock: ready/.test(out)) {
        clearTimeout(t);
        resolve({ data: d[1]!, admin: a[1]! });
      }
    };
    proc.stdout.on('data', check);
    void exited.then(({ code, signal }) => {
      clearTimeout(t);
      reject(new Error(`gateway exited (code ${code}, signal ${signal}) before it was ready\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
  const token = opts.adminToken === null ? undefined : (opts.adminToken ?? ADMIN_TOKEN);
  const dispatcher = opts.ca ? new Agent({ connect: { ca: opts.ca } }) : undefined;
  return {
    proc,
    dataDir,
    dataUrl: urls.data,
    adminUrl: urls.admin,
    baseURL: urls.data + '/v1',
    stdout: () => out,
    stderr: () => err,
    exited,
    async admin(method, p, body, headers = {}) {
      const h: Record<string, string> = { ...headers };
      if (token && !('authorization' in h)) h.authorization = `Bearer ${token}`;
      if (body !== undefined) h['content-type'] = 'application/json';
      const url = urls.admin + (p.startsWith('/admin') ? p : `/admin/api/v1${p}`);
      const init = { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) };
      // HTTPS with a test certificate: undici's own fetch, trusting it (global fetch takes no CA)
      const res = dispatcher ? ((await undiciFetch(url, { ...init, dispatcher })) as unknown as Response) : await fetch(url, init);
      const text = await res.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        /* keep text */
      }
      return { status: res.status, headers: res.headers, body: parsed as any };
    },
    async stop(signal = 'SIGTERM') {
      if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
      const r = await exited;
      await dispatcher?.close();
      return r;
    },
  };
}

/** A minimal config with one endpoint, one model and one key with a known literal. */
export const TEST_KEY = 'sk-airlock-test-key-0000000000000000000001';
export function basicConfig(upstreamUrl: string, extra: Record<string, unknown> = {}) {
  return {
    endpoints: [{ name: 'gpu-1', base_url: upstreamUrl, health_check: { enabled: true, interval_ms: 60_000 } }],
    models: [{ name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }], price: { input_per_million: 1, output_per_million: 2 } }],
    teams: [{ name: 'research' }],
    keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research' }],
    ...extra,
  };
}

/** Poll until fn returns a truthy value (no timing assertions: it fails only on the deadline). */
export async function eventually<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 50): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
