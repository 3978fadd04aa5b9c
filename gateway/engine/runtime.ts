// Live state beside the immutable snapshot: one keep-alive connection pool per endpoint,
// concurrency slots, breakers, latency averages and health. Survives snapshot swaps.
import { performance } from 'node:perf_hooks';
import { Pool } from './undici.js';
import { FairQueue, type QueueEntry } from './fair-queue.js';
import type { QueueShare } from './stages.js';
import { CircuitBreaker } from './breaker.js';
import { gatewayError } from './errors.js';
import type { TargetView } from './router.js';
import type { EndpointConfig, Snapshot, TargetConfig } from './snapshot.js';
import type { TargetStatus } from '../wire.js';

export type { TargetStatus };

interface Waiter extends QueueEntry {
  resolve: () => void;
  reject: (e: Error) => void;
  timer: NodeJS.Timeout | undefined;
}

export class EndpointRuntime {
  pool: Pool;
  inflight = 0;
  private readonly waiters = new FairQueue<Waiter>();
  /** most requests that may wait for a slot (settings.queue_max_length) */
  maxQueue = Infinity;
  /** requests that waited for a slot, and their total wait */
  waited = 0;
  waitMs = 0;
  /** health-check verdict; true until a check says otherwise */
  healthy = true;
  healthFailures = 0;
  lastCheckAt: number | undefined;
  lastCheckError: string | undefined;
  /** models the server reported on its last successful check */
  discoveredModels: string[] | undefined;

  constructor(public config: EndpointConfig) {
    this.pool = makePool(config);
  }

  /** requests waiting for a slot (max_concurrency) */
  get waiting(): number {
    return this.waiters.length;
  }

  get free(): boolean {
    return this.config.maxConcurrency === 0 || this.inflight < this.config.maxConcurrency;
  }

  /** Take a concurrency slot, waiting up to timeoutMs. The returned function frees it once.
   * The signal may be given as a function, called only when the request has to wait: creating an
   * AbortSignal costs several µs, too much for every request on the fast path. Waiters are served
   * by weighted fair queuing across their shares' groups (fair-queue.ts). */
  async acquire(timeoutMs: number, abortSignal: AbortSignal | (() => AbortSignal), share?: QueueShare): Promise<() => void> {
    if (this.free && this.waiters.length === 0) {
      this.inflight++;
      return this.releaser();
    }
    if (this.waiters.length >= this.maxQueue)
      throw gatewayError('capacity_timeout', `endpoint "${this.config.name}" is at max_concurrency ${this.config.maxConcurrency} and ${this.waiters.length} requests already wait for it (settings.queue_max_length)`, {
        headers: { 'retry-after': '1' },
      });
    const signal = typeof abortSignal === 'function' ? abortSignal() : abortSignal;
    const queuedAt = performance.now();
    await new Promise<void>((resolve, reject) => {
      const w: Waiter = {
        share,
        seq: this.waiters.nextSeq(),
        resolve: () => {
          signal.removeEventListener('abort', onAbort);
          if (w.timer) clearTimeout(w.timer);
          resolve();
        },
        reject: (e: Error) => {
          signal.removeEventListener('abort', onAbort);
          if (w.timer) clearTimeout(w.timer);
          reject(e);
        },
        timer: undefined,
      };
      const onAbort = () => {
        this.waiters.remove(w);
        w.reject(gatewayError('client_closed', 'client closed the request'));
      };
      w.timer = setTimeout(() => {
        this.waiters.remove(w);
        w.reject(
          gatewayError('capacity_timeout', `endpoint "${this.config.name}" is at max_concurrency ${this.config.maxConcurrency} and no slot freed within ${timeoutMs} ms (settings.queue_timeout_ms)`, { headers: { 'retry-after': '1' } }),
        );
      }, timeoutMs);
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
      // a slot may be free while others wait (they are being handed theirs): keep the order fair
      this.wake();
    });
    this.waited++;
    this.waitMs += performance.now() - queuedAt;
    // The slot was handed over by the releaser (inflight already counts it).
    return this.releaser();
  }

  /** requests waiting for a slot now */
  get queued(): number {
    return this.waiters.length;
  }

  private releaser(): () => void {
    let done = false;
    return () => {
      if (done) return;
      done = true;
      this.inflight--;
      this.wake();
    };
  }

  /** Hand free slots to waiters, in fair-queue order. */
  private wake(): void {
    while (this.waiters.length && this.free) {
      this.inflight++;
      this.waiters.shift()!.resolve();
    }
  }

  /** Slots changed (config edit): let waiters in. */
  recheck(): void {
    this.wake();
  }
}

function makePool(c: EndpointConfig): Pool {
  return new Pool(c.origin, {
    connections: c.maxConcurrency > 0 ? c.maxConcurrency : 256,
    pipelining: 1,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 600_000,
    connect: { timeout: Math.min(10_000, c.firstByteTimeoutMs) },
  });
}

export class TargetRuntime {
  readonly breaker: CircuitBreaker;
  /** exponentially weighted moving average of time to first byte, ms */
  ttfbEwma: number | undefined;
  inflight = 0;
  successes = 0;
  failures = 0;

  constructor(opts: { failureThreshold: number; cooldownMs: number }) {
    this.breaker = new CircuitBreaker(opts);
  }

  observeTtfb(ms: number): void {
    this.ttfbEwma = this.ttfbEwma === undefined ? ms : this.ttfbEwma * 0.8 + ms * 0.2;
  }
}

export class Runtime implements TargetView {
  readonly endpoints = new Map<string, EndpointRuntime>();
  readonly targets = new Map<string, TargetRuntime>();
  private breakerOpts = { failureThreshold: 5, cooldownMs: 30_000 };

  update(s: Snapshot): void {
    this.breakerOpts = { failureThreshold: s.settings.breaker.failure_threshold, cooldownMs: s.settings.breaker.cooldown_ms };
    for (const [name, cfg] of s.endpoints) {
      const rt = this.endpoints.get(name);
      if (!rt) {
        const fresh = new EndpointRuntime(cfg);
        fresh.maxQueue = s.settings.queue_max_length;
        this.endpoints.set(name, fresh);
      }
      else {
        if (rt.config.poolKey !== cfg.poolKey) {
          const old = rt.pool;
          rt.pool = makePool(cfg);
          void old.close().catch(() => undefined);
        }
        rt.config = cfg;
        rt.maxQueue = s.settings.queue_max_length;
        rt.recheck();
      }
    }
    for (const [name, rt] of this.endpoints) {
      if (!s.endpoints.has(name)) {
        this.endpoints.delete(name);
        void rt.pool.close().catch(() => undefined);
      }
    }
    const live = new Set<string>();
    for (const m of s.models.values()) {
      for (const t of m.targets) {
        live.add(t.id);
        const tr = this.targets.get(t.id);
        if (tr) tr.breaker.configure(this.breakerOpts);
        else this.targets.set(t.id, new TargetRuntime(this.breakerOpts));
      }
    }
    for (const id of this.targets.keys()) if (!live.has(id)) this.targets.delete(id);
  }

  target(t: TargetConfig): TargetRuntime {
    let tr = this.targets.get(t.id);
    if (!tr) {
      tr = new TargetRuntime(this.breakerOpts);
      this.targets.set(t.id, tr);
    }
    return tr;
  }

  endpoint(name: string): EndpointRuntime | undefined {
    return this.endpoints.get(name);
  }

  // TargetView
  canPass(t: TargetConfig): boolean {
    return this.endpoints.has(t.endpoint) && this.target(t).breaker.canPass();
  }
  healthy(t: TargetConfig): boolean {
    return this.endpoints.get(t.endpoint)?.healthy ?? false;
  }
  load(t: TargetConfig): number {
    const ep = this.endpoints.get(t.endpoint);
    if (!ep) return Infinity;
    return ep.config.maxConcurrency > 0 ? ep.inflight / ep.config.maxConcurrency : ep.inflight;
  }
  latency(t: TargetConfig): number | undefined {
    return this.targets.get(t.id)?.ttfbEwma;
  }

  targetStatus(t: TargetConfig): TargetStatus {
    const tr = this.target(t);
    const retryAt = tr.breaker.retryAt;
    return {
      id: t.id,
      endpoint: t.endpoint,
      model: t.upstreamModel,
      breaker: tr.breaker.state,
      consecutive_failures: tr.breaker.consecutiveFailures,
      retry_at: retryAt !== undefined && tr.breaker.state === 'open' ? new Date(retryAt).toISOString() : null,
      last_error: tr.breaker.lastError ?? null,
      ttfb_ewma_ms: tr.ttfbEwma === undefined ? null : Math.round(tr.ttfbEwma * 100) / 100,
      inflight: tr.inflight,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.endpoints.values()].map((e) => e.pool.close().catch(() => undefined)));
  }
}
