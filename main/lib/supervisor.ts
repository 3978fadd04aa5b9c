// Supervises the gateway child process for the desktop shell: start it, wait for its ready
// message, restart it after a crash with exponential backoff (but not after a start-up error,
// exit code 2; at once, without backoff, after "Restart now": exit code 75), stop it gracefully on quit: a `{type:'stop'}` message, handled by the gateway like
// SIGTERM, then up to its shutdown grace plus a margin before kill(). Plain Node:
// the fork function and the clock are injected, so the state machine is unit-tested without
// Electron (main/main.ts passes utilityProcess.fork and the real timers).
import { EventEmitter } from 'node:events';
import { z } from 'zod';

/** What the supervisor needs from a child process (Electron's UtilityProcess fits, so does a fake). */
export interface GatewayChild {
  on(event: 'message', listener: (message: unknown) => void): unknown;
  on(event: 'exit', listener: (code: number) => void): unknown;
  /** Electron: parentPort; a Node fork: process.send. Carries the stop message. */
  postMessage(message: unknown): void;
  /** Not graceful: Electron's kill() is SIGTERM then SIGKILL ~2 s later (TerminateProcess on Windows). */
  kill(): boolean;
}

/** What the supervisor sends to ask the gateway to stop (gateway/cli.ts handles it like SIGTERM). */
export const STOP_MESSAGE = { type: 'stop' } as const;

/** Exit code of the gateway for bad usage, bad config or a start-up problem (gateway/cli.ts). */
export const STARTUP_ERROR_EXIT_CODE = 2;

/** Exit code of the gateway after "Restart now" (gateway/server/admin-restart.ts): started again at
 * once, not counted as a crash. */
export const RESTART_EXIT_CODE = 75;

export type ForkGateway = () => GatewayChild;

export interface Clock {
  now(): number;
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export const realClock: Clock = {
  now: () => Date.now(),
  // Unref'd: the supervisor's timers alone never keep a process alive.
  setTimeout: (fn, ms) => setTimeout(fn, ms).unref(),
  clearTimeout: (h) => clearTimeout(h as ReturnType<typeof setTimeout>),
};

/**
 * - `stopped`: not started, or stopped on purpose.
 * - `starting`: forked, waiting for the ready message.
 * - `running`: ready; `data` and `admin` are known.
 * - `restarting`: the child exited unexpectedly; waiting out the backoff before the next start.
 * - `failed`: gave up (no ready message in time, or too many failed starts in a row);
 *   `error` says why and names the log file. `start()` tries again.
 * - `stopping`: asked to stop; waiting for the child to exit.
 */
export type GatewayState = 'stopped' | 'starting' | 'running' | 'restarting' | 'failed' | 'stopping';

export interface GatewayStatus {
  state: GatewayState;
  /** Data-plane base URL once running, e.g. http://127.0.0.1:4000 */
  data: string | null;
  /** Admin-plane base URL once running, e.g. http://127.0.0.1:4001 */
  admin: string | null;
  /** Gateway version from its ready message. */
  version: string | null;
  /** Why the gateway is failed / restarting, in words for the admin. */
  error: string | null;
  /** Exit code of the last unexpected exit. */
  lastExitCode: number | null;
  /** The last error line the gateway printed (stderr) before it failed to start, if any. */
  lastErrorLine: string | null;
  /** Restarts after crashes since the shell started. */
  restarts: number;
  /** Delay before the pending restart (state `restarting`). */
  restartInMs: number | null;
  /** Where the gateway's and the shell's output is written. */
  logPath: string;
}

export interface SupervisorOptions {
  fork: ForkGateway;
  logPath: string;
  clock?: Clock;
  /** How long to wait for the ready message. Default 30 s. */
  readyTimeoutMs?: number;
  /** First restart delay; doubled after each crash. Default 1 s. */
  initialBackoffMs?: number;
  /** Upper bound of the restart delay. Default 60 s. */
  maxBackoffMs?: number;
  /** Running this long without a crash resets the backoff. Default 60 s. */
  stableAfterMs?: number;
  /** Give up (state `failed`) after this many exits in a row before the ready message. Default 5. */
  maxFailedStarts?: number;
  /** Shutdown grace assumed until the ready message names it (the gateway's default). Default 30 s. */
  defaultShutdownGraceMs?: number;
  /** Waited on top of the grace (the ledger flush, closing the database). Default 10 s. */
  stopMarginMs?: number;
  /** How long stop() waits for the child to exit after kill(). Default 5 s. */
  killWaitMs?: number;
  /** Diagnostic lines (written to the log by the shell). */
  log?: (line: string) => void;
}

/** The message the gateway posts when both planes listen (gateway/cli.ts). */
export const ReadyMessage = z.object({
  type: z.literal('ready'),
  data: z.url({ protocol: /^https?$/ }),
  admin: z.url({ protocol: /^https?$/ }),
  version: z.string().max(100).optional(),
  /** One-time first-run setup token while no owner account exists (null once one does). */
  setup_token: z.string().min(1).max(500).nullable().optional(),
  /** settings.shutdown_grace_ms: how long a graceful stop may take. */
  shutdown_grace_ms: z.number().int().min(0).max(3_600_000).optional(),
});
export type ReadyMessage = z.infer<typeof ReadyMessage>;

/**
 * Parse one line the gateway prints on stdout. The ready message is the primary signal; these
 * lines are the fallback (a gateway run without an IPC channel still prints them).
 */
export function parseGatewayLine(
  line: string,
): { kind: 'data' | 'admin'; url: string } | { kind: 'ready' } | { kind: 'setupToken'; token: string } | null {
  const l = line.trim();
  let m = /^airlock: (data|admin) plane listening on (https?:\/\/\S+)/.exec(l);
  if (m) return { kind: m[1] as 'data' | 'admin', url: m[2]! };
  if (l === 'airlock: ready') return { kind: 'ready' };
  // "airlock: first-run setup: open http://127.0.0.1:4001/setup?token=TOKEN"
  m = /^airlock: first-run setup: open (https?:\/\/\S+)/.exec(l);
  if (m) {
    let token: string | null = null;
    try {
      token = new URL(m[1]!).searchParams.get('token');
    } catch {
      // not a URL after all
    }
    if (token && token.length <= 500) return { kind: 'setupToken', token };
  }
  return null;
}

/**
 * The URL to connect to on this machine: a gateway bound to every interface reports 0.0.0.0 or
 * [::], which a browser must not be sent to (Chromium refuses 0.0.0.0); use loopback instead.
 */
export function connectableUrl(url: string): string {
  const u = new URL(url);
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  else if (u.hostname === '[::]') u.hostname = '[::1]';
  return u.origin + (u.pathname === '/' ? '' : u.pathname);
}

export class GatewaySupervisor extends EventEmitter {
  private readonly fork: ForkGateway;
  private readonly clock: Clock;
  private readonly readyTimeoutMs: number;
  private readonly initialBackoffMs: number;
  private readonly maxBackoffMs: number;
  private readonly stableAfterMs: number;
  private readonly maxFailedStarts: number;
  private readonly defaultGraceMs: number;
  private readonly stopMarginMs: number;
  private readonly killWaitMs: number;
  private graceMs: number;
  private lastErrorLine: string | null = null;
  private readonly log: (line: string) => void;

  private child: GatewayChild | null = null;
  private timer: unknown = null; // ready timeout, restart delay, or stop timeout
  private stableTimer: unknown = null;
  private backoffMs: number;
  private failedStarts = 0;
  private stopWaiters: Array<() => void> = [];
  private setupToken: string | null = null;
  private seen: { data?: string; admin?: string } = {};
  private current: GatewayStatus;

  constructor(opts: SupervisorOptions) {
    super();
    this.fork = opts.fork;
    this.clock = opts.clock ?? realClock;
    this.readyTimeoutMs = opts.readyTimeoutMs ?? 30_000;
    this.initialBackoffMs = opts.initialBackoffMs ?? 1_000;
    this.maxBackoffMs = opts.maxBackoffMs ?? 60_000;
    this.stableAfterMs = opts.stableAfterMs ?? 60_000;
    this.maxFailedStarts = opts.maxFailedStarts ?? 5;
    this.defaultGraceMs = opts.defaultShutdownGraceMs ?? 30_000;
    this.stopMarginMs = opts.stopMarginMs ?? 10_000;
    this.killWaitMs = opts.killWaitMs ?? 5_000;
    this.graceMs = this.defaultGraceMs;
    this.log = opts.log ?? (() => {});
    this.backoffMs = this.initialBackoffMs;
    this.current = {
      state: 'stopped',
      data: null,
      admin: null,
      version: null,
      error: null,
      lastExitCode: null,
      lastErrorLine: null,
      restarts: 0,
      restartInMs: null,
      logPath: opts.logPath,
    };
  }

  get status(): GatewayStatus {
    return { ...this.current };
  }

  /** The admin plane's origin while running (what the window may show and IPC may come from). */
  get adminOrigin(): string | null {
    if (this.current.state !== 'running' || !this.current.admin) return null;
    return new URL(this.current.admin).origin;
  }

  /** The first-run setup token of the running gateway, if it has one (never part of `status`). */
  getSetupToken(): string | null {
    return this.setupToken;
  }

  /** The delay the next crash would wait before restarting. */
  get nextBackoffMs(): number {
    return this.backoffMs;
  }

  /** Start the gateway (also: try again after `failed`). No-op while already starting/running. */
  start(): void {
    const s = this.current.state;
    if (s === 'starting' || s === 'running' || s === 'stopping') return;
    if (s === 'restarting') this.clearTimer();
    if (s === 'failed' || s === 'stopped') {
      this.failedStarts = 0;
      this.backoffMs = this.initialBackoffMs;
    }
    this.spawn();
  }

  /** How long stop() waits for a graceful exit before it kills: the gateway's grace plus the margin. */
  get stopWaitMs(): number {
    return this.graceMs + this.stopMarginMs;
  }

  /**
   * Stop the gateway without restarting it; resolves once the child has exited (or given up
   * waiting). Asks with the stop message (in-flight requests and streams finish, the ledger is
   * flushed); kills only when the child has not exited within `stopWaitMs`.
   */
  stop(): Promise<void> {
    const s = this.current.state;
    this.clearTimer();
    this.clearStableTimer();
    if (!this.child) {
      if (s !== 'stopped') this.set({ state: 'stopped', restartInMs: null });
      return Promise.resolve();
    }
    const done = new Promise<void>((resolve) => this.stopWaiters.push(resolve));
    if (s !== 'stopping') {
      const child = this.child;
      this.set({ state: 'stopping', restartInMs: null });
      const wait = this.stopWaitMs;
      try {
        child.postMessage(STOP_MESSAGE);
      } catch (e) {
        this.log(`could not ask the gateway to stop (${(e as Error).message}); killing it`);
        this.forceKill(child);
        return done;
      }
      this.log(`asked the gateway to stop; waiting up to ${formatDelay(wait)} for in-flight requests to finish`);
      this.timer = this.clock.setTimeout(() => {
        this.timer = null;
        if (this.child !== child) return;
        this.log(`the gateway did not exit within ${formatDelay(wait)} of being asked to stop; killing it`);
        this.forceKill(child);
      }, wait);
    }
    return done;
  }

  private forceKill(child: GatewayChild): void {
    try {
      child.kill();
    } catch (e) {
      this.log(`could not kill the gateway: ${(e as Error).message}`);
    }
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (this.child !== child) return;
      this.log(`the gateway did not exit within ${formatDelay(this.killWaitMs)} of being killed; leaving it`);
      this.child = null;
      this.finishStop();
    }, this.killWaitMs);
  }

  /** Feed one line of the child's stderr: the last `airlock: …` line names a start-up error. */
  handleErrorLine(line: string): void {
    const l = line.trim();
    if (!l.startsWith('airlock: ')) return;
    this.lastErrorLine = l.length > 1000 ? `${l.slice(0, 1000)}…` : l;
  }

  /** Feed one line of the child's stdout (fallback ready detection, setup token). */
  handleOutputLine(line: string): void {
    const p = parseGatewayLine(line);
    if (!p) return;
    if (p.kind === 'setupToken') this.setupToken = p.token;
    else if (p.kind === 'data' || p.kind === 'admin') this.seen[p.kind] = p.url;
    else if (p.kind === 'ready' && this.current.state === 'starting' && this.seen.data && this.seen.admin) {
      this.onReady({ type: 'ready', data: this.seen.data, admin: this.seen.admin });
    }
  }

  private spawn(): void {
    this.seen = {};
    this.setupToken = null; // each gateway start has its own token
    this.graceMs = this.defaultGraceMs;
    this.lastErrorLine = null;
    this.set({ state: 'starting', data: null, admin: null, version: null, restartInMs: null, error: null, lastErrorLine: null });
    let child: GatewayChild;
    try {
      child = this.fork();
    } catch (e) {
      this.log(`could not start the gateway: ${(e as Error).message}`);
      this.fail(`The gateway could not be started: ${(e as Error).message}. See the log: ${this.current.logPath}`);
      return;
    }
    this.child = child;
    child.on('message', (m) => {
      if (this.child !== child) return;
      const r = ReadyMessage.safeParse(m);
      if (r.success) {
        if (this.current.state === 'starting') this.onReady(r.data);
        else if (this.current.state === 'running') this.completeReady(r.data); // stdout said ready first
      } else if (m && typeof m === 'object' && (m as { type?: unknown }).type === 'ready') {
        this.log(`ignored a malformed ready message from the gateway: ${r.error.issues.map((i) => `${i.path.join('.') || '(message)'}: ${i.message}`).join('; ')}`);
      }
    });
    child.on('exit', (code) => this.onExit(child, code));
    this.timer = this.clock.setTimeout(() => this.onReadyTimeout(child), this.readyTimeoutMs);
  }

  private onReady(msg: ReadyMessage): void {
    this.clearTimer();
    if (msg.setup_token !== undefined) this.setupToken = msg.setup_token; // null: an owner exists
    if (msg.shutdown_grace_ms !== undefined) this.graceMs = msg.shutdown_grace_ms;
    this.failedStarts = 0;
    const data = connectableUrl(msg.data);
    const admin = connectableUrl(msg.admin);
    this.log(`gateway ready: data plane ${data}, admin plane ${admin}`);
    this.set({ state: 'running', data, admin, version: msg.version ?? null, error: null });
    this.stableTimer = this.clock.setTimeout(() => {
      this.stableTimer = null;
      this.backoffMs = this.initialBackoffMs;
    }, this.stableAfterMs);
  }

  /** The ready message after the stdout fallback already made us running: take what only it carries. */
  private completeReady(msg: ReadyMessage): void {
    if (msg.setup_token) this.setupToken = msg.setup_token;
    if (msg.shutdown_grace_ms !== undefined) this.graceMs = msg.shutdown_grace_ms;
    if (msg.version && this.current.version !== msg.version) this.set({ version: msg.version });
  }

  private onReadyTimeout(child: GatewayChild): void {
    this.timer = null;
    if (this.child !== child || this.current.state !== 'starting') return;
    const secs = this.readyTimeoutMs / 1000;
    this.log(`the gateway did not report ready within ${secs} s; stopping it`);
    this.child = null; // its exit is expected now, not a crash
    child.kill();
    this.fail(`The gateway did not become ready within ${secs} seconds. See the log for what it printed: ${this.current.logPath}`);
  }

  private onExit(child: GatewayChild, code: number): void {
    if (this.child !== child) return; // a child we already let go of
    this.child = null;
    const s = this.current.state;
    if (s === 'stopping') {
      this.clearTimer();
      this.log(`the gateway stopped (exit code ${code})`);
      this.finishStop();
      return;
    }
    this.clearTimer();
    this.clearStableTimer();
    if (s === 'running' && code === RESTART_EXIT_CODE) {
      // asked for by an owner in the admin app: the gateway stopped gracefully; start it again now
      this.log(`the gateway stopped to be restarted (exit code ${code}); starting it again`);
      this.set({ state: 'restarting', data: null, admin: null, restartInMs: 0, error: null });
      this.spawn();
      return;
    }
    const beforeReady = s === 'starting';
    if (beforeReady) this.failedStarts++;
    this.log(`the gateway exited unexpectedly with code ${code}${beforeReady ? ' before it was ready' : ''}`);
    if (beforeReady && code === STARTUP_ERROR_EXIT_CODE) {
      // A busy port, a bad config, a refused database: the same start fails the same way; say why at once.
      const line = this.lastErrorLine;
      this.set({ lastExitCode: code, lastErrorLine: line });
      this.fail(
        `The gateway could not start (exit code ${code}): ${line ? line.replace(/^airlock: /, '') : 'it printed no error message'}. Not retrying: fix the cause, then start it again from the tray menu. See the log: ${this.current.logPath}`,
      );
      return;
    }
    if (beforeReady && this.failedStarts >= this.maxFailedStarts) {
      this.set({ lastExitCode: code });
      this.fail(
        `The gateway exited with code ${code} before it was ready, ${this.failedStarts} times in a row; not restarting it again. See the log: ${this.current.logPath}`,
      );
      return;
    }
    const delay = this.backoffMs;
    this.backoffMs = Math.min(this.backoffMs * 2, this.maxBackoffMs);
    this.set({
      state: 'restarting',
      data: null,
      admin: null,
      lastExitCode: code,
      restartInMs: delay,
      error: `The gateway exited unexpectedly (code ${code}); restarting in ${formatDelay(delay)}. See the log: ${this.current.logPath}`,
    });
    this.timer = this.clock.setTimeout(() => {
      this.timer = null;
      if (this.current.state !== 'restarting') return;
      this.current.restarts++;
      this.spawn();
    }, delay);
  }

  private fail(error: string): void {
    this.clearTimer();
    this.clearStableTimer();
    this.set({ state: 'failed', data: null, admin: null, restartInMs: null, error });
  }

  private finishStop(): void {
    this.set({ state: 'stopped', data: null, admin: null, restartInMs: null });
    const waiters = this.stopWaiters;
    this.stopWaiters = [];
    for (const w of waiters) w();
  }

  private clearTimer(): void {
    if (this.timer !== null) this.clock.clearTimeout(this.timer);
    this.timer = null;
  }

  private clearStableTimer(): void {
    if (this.stableTimer !== null) this.clock.clearTimeout(this.stableTimer);
    this.stableTimer = null;
  }

  private set(patch: Partial<GatewayStatus>): void {
    this.current = { ...this.current, ...patch };
    this.emit('status', this.status);
  }
}

function formatDelay(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${Math.round(ms / 100) / 10} s`;
}
