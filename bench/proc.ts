// Process helpers for the bench: spawn a server pinned to a core, wait for its "listening" line,
// and read its CPU time and memory from /proc.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
});

export function hasTaskset(): boolean {
  try {
    execFileSync('taskset', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Pinning needs taskset and at least two CPUs (server on 0, load + upstream on 1). */
export const CAN_PIN = process.platform === 'linux' && os.cpus().length >= 2 && hasTaskset();

export interface Server {
  name: string;
  child: ChildProcess;
  pid: number;
  url: string;
  out(): string;
  err(): string;
  stop(): Promise<void>;
}

/**
 * Start `node ARGS` (pinned with `taskset -c CORE` when possible) and wait until its stdout
 * matches urlRe (group 1: the URL) and, if given, readyRe.
 */
export async function startServer(
  name: string,
  core: number,
  nodeArgs: string[],
  urlRe: RegExp,
  opts: { readyRe?: RegExp; env?: NodeJS.ProcessEnv; timeoutMs?: number; cwd?: string } = {},
): Promise<Server> {
  const [cmd, args] = CAN_PIN ? ['taskset', ['-c', String(core), process.execPath, ...nodeArgs]] : [process.execPath, nodeArgs];
  const child = spawn(cmd, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<void>((resolve) =>
    child.on('exit', () => {
      live.delete(child);
      resolve();
    }),
  );
  const url = await new Promise<string>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${name} did not start within ${opts.timeoutMs ?? 20_000} ms\nstdout:\n${out}\nstderr:\n${err}`)), opts.timeoutMs ?? 20_000);
    const check = () => {
      const m = urlRe.exec(out);
      if (m && (!opts.readyRe || opts.readyRe.test(out))) {
        clearTimeout(t);
        resolve(m[1]!);
      }
    };
    child.stdout.on('data', check);
    child.on('error', (e) => {
      clearTimeout(t);
      reject(e);
    });
    void exited.then(() => {
      clearTimeout(t);
      reject(new Error(`${name} exited (code ${child.exitCode}, signal ${child.signalCode}) before it was ready\nstdout:\n${out}\nstderr:\n${err}`));
    });
  });
  // taskset execs node, so the spawned PID is the server's own.
  const pid = child.pid!;
  return {
    name,
    child,
    pid,
    url,
    out: () => out,
    err: () => err,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(t);
      // BENCH_SERVER_LOG_DIR: what the server printed (e.g. with BENCH_GATEWAY_NODE_ARGS=--trace-gc)
      const dir = process.env.BENCH_SERVER_LOG_DIR;
      if (dir) {
        fs.mkdirSync(dir, { recursive: true });
        fs.writeFileSync(path.join(dir, `${name}-${pid}.log`), `${out}\n--- stderr ---\n${err}`);
      }
    },
  };
}

let clkTck: number | undefined;
function ticksPerSecond(): number {
  if (clkTck === undefined) {
    try {
      clkTck = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
    } catch {
      clkTck = 100;
    }
  }
  return clkTck;
}

/** user + system CPU time the process has used so far, in ms (from /proc/PID/stat). */
export function cpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  // fields after "(comm)": state is field 3, utime 14, stime 15
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot parse /proc/${pid}/stat: ${stat}`);
  return ((utime + stime) * 1000) / ticksPerSecond();
}

/** user + system CPU time of the process's main thread (its thread id is the pid) so far, in ms:
 * the rest of cpuMs() is spent in its other threads (worker threads, V8's and libuv's helpers). */
export function mainThreadCpuMs(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/task/${pid}/stat`, 'utf8');
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const utime = Number(rest[11]);
  const stime = Number(rest[12]);
  if (!Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error(`cannot parse /proc/${pid}/task/${pid}/stat: ${stat}`);
  return ((utime + stime) * 1000) / ticksPerSecond();
}

/** CPU time all processes have used so far (busy time of every CPU, from /proc/stat), in ms. */
export function systemBusyMs(): number {
  const line = fs.readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!; // "cpu  user nice system idle iowait irq softirq steal ..."
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
  return (busy * 1000) / ticksPerSecond();
}

function statusField(pid: number, field: string): string {
  const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = new RegExp(`^${field}:\\s*(.+)$`, 'm').exec(s);
  if (!m) throw new Error(`no ${field} in /proc/${pid}/status`);
  return m[1]!.trim();
}

/** Resident set size in MB (VmRSS). */
export function rssMB(pid: number): number {
  const v = statusField(pid, 'VmRSS'); // "12345 kB"
  return Number(v.split(/\s+/)[0]) / 1024;
}

/** The CPUs the process may run on, e.g. "0" (Cpus_allowed_list). */
export function cpusAllowed(pid: number | 'self'): string {
  return statusField(pid as number, 'Cpus_allowed_list');
}

export function machine(): { cpu: string; cores: number; memoryGB: number; node: string; kernel: string } {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const m = /^model name\s*:\s*(.+)$/m.exec(fs.readFileSync('/proc/cpuinfo', 'utf8'));
    if (m) cpu = m[1]!.trim();
  } catch {
    /* not linux */
  }
  return { cpu, cores: os.cpus().length, memoryGB: Math.round((os.totalmem() / 1024 ** 3) * 10) / 10, node: process.version, kernel: `${os.type()} ${os.release()}` };
}
