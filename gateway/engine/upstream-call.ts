// One request to an upstream through undici's dispatch API: the handler below is the answer's
// head and body at once. undici's request() wraps every response in a Readable stream (an
// AsyncResource, a parsed header object, stream state, events and ticks per chunk) that the
// gateway read back out chunk by chunk; a bare passthrough built on dispatch instead of
// request() + pipe used ~12-14 µs less CPU per request (bench/RESULTS.md, thirteenth session).
//
// What it keeps of the Readable's behaviour, because the attempt relies on it:
// - backpressure: at most HIGH_WATER chunks wait to be read, then the socket is paused (undici
//   stops reading it) until the reader has taken them, so a slow client slows the upstream;
// - destroy(): cuts the connection (it is not drained), also before the request reached a socket;
// - a body that breaks (the upstream closes early, a timeout) fails the next read.
import type { Dispatcher } from './undici.js';

/** chunks buffered before the socket is paused, and the level below which it is resumed */
const HIGH_WATER = 16;
const LOW_WATER = 4;

/** Why a body can no longer be read after destroy(). */
export class BodyDestroyedError extends Error {
  constructor() {
    super('upstream body destroyed');
  }
}

interface Waiter {
  resolve(r: IteratorResult<Buffer, undefined>): void;
  reject(e: unknown): void;
}

interface Collector {
  parts: Buffer[];
  n: number;
  limit: number;
  overLimit: () => Error;
  resolve(b: Buffer): void;
  reject(e: unknown): void;
}

/** The upstream's answer: its status, its headers (read by name) and its body. */
export interface UpstreamAnswer {
  readonly statusCode: number;
  /** a response header's value (`name` in lower case); several of one name joined by ", " */
  header(name: string): string | undefined;
  readonly body: UpstreamBody;
}

export interface UpstreamBody {
  /** the next chunk, as an async iterator's next() (a promise per chunk, no iterator object) */
  next(): Promise<IteratorResult<Buffer, undefined>>;
  /** the whole body; over `limit` bytes (or a declared length over it) the connection is cut and
   * the promise rejects with overLimit() */
  all(limit: number, declared: number, overLimit: () => Error): Promise<Buffer>;
  /** the body as text, at most `limit` characters; the rest is not read (the connection is cut) */
  text(limit: number): Promise<string>;
  /** stop reading: the connection is cut unless the body is complete */
  destroy(): void;
  /** no more reading: what is queued and what still arrives is dropped, so the connection can be
   * reused; past `limit` more bytes it is cut (destroy()). Later calls change nothing. */
  discard(limit: number): void;
  /** the whole body arrived */
  readonly complete: boolean;
}

/** Send one request; resolves with the answer once its status line and headers arrived (1xx are
 * skipped). `abort(e)` ends the call: before the head the promise rejects with `e`, after it the
 * body's next read does. */
export function dispatchCall(pool: Dispatcher, opts: Dispatcher.DispatchOptions): { answer: Promise<UpstreamAnswer>; abort: (e: Error) => void } {
  const call = new UpstreamCall();
  const answer = new Promise<UpstreamAnswer>((resolve, reject) => {
    call.head = { resolve, reject };
  });
  pool.dispatch(opts, call);
  return { answer, abort: (e) => call.abort(e) };
}

class UpstreamCall implements UpstreamAnswer, UpstreamBody, Dispatcher.DispatchHandler {
  statusCode = 0;
  head: { resolve(a: UpstreamAnswer): void; reject(e: unknown): void } | undefined;
  private rawHeaders: Buffer[] = [];
  private cut: ((e?: Error) => void) | undefined;
  private resumeSocket: (() => void) | undefined;
  private paused = false;
  private queue: Buffer[] = [];
  private waiter: Waiter | undefined;
  private collector: Collector | undefined;
  /** bytes still to drop before the connection is cut (discard()); undefined: reading */
  private discarding: number | undefined;
  /** why the body cannot be read further (an error from undici, or destroy()) */
  private failure: Error | undefined;
  /** abort() or destroy() before undici handed over its abort function */
  private early: Error | undefined;
  complete = false;

  get body(): UpstreamBody {
    return this;
  }

  header(name: string): string | undefined {
    const raw = this.rawHeaders;
    let out: string | undefined;
    for (let i = 0; i + 1 < raw.length; i += 2) {
      const k = raw[i]!;
      if (k.length !== name.length || k.toString('latin1').toLowerCase() !== name) continue;
      const v = raw[i + 1]!.toString('latin1');
      out = out === undefined ? v : `${out}, ${v}`;
    }
    return out;
  }

  // ---- undici's handler ----

  onConnect(abort: (e?: Error) => void): void {
    if (this.early) return abort(this.early);
    this.cut = abort;
  }

  onHeaders(statusCode: number, rawHeaders: Buffer[], resume: () => void): boolean {
    if (statusCode < 200) return true; // 1xx: the answer's head is still to come
    this.statusCode = statusCode;
    this.rawHeaders = rawHeaders;
    this.resumeSocket = resume;
    const h = this.head;
    this.head = undefined;
    h?.resolve(this);
    return true;
  }

  onData(chunk: Buffer): boolean {
    if (this.discarding !== undefined) {
      if ((this.discarding -= chunk.length) >= 0) return true;
      this.destroy();
      return false;
    }
    const c = this.collector;
    if (c) {
      if ((c.n += chunk.length) > c.limit) {
        this.collector = undefined;
        c.reject(c.overLimit());
        this.destroy();
        return false;
      }
      c.parts.push(chunk);
      return true;
    }
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: chunk, done: false });
      return true;
    }
    this.queue.push(chunk);
    if (this.queue.length < HIGH_WATER) return true;
    this.paused = true;
    return false;
  }

  onComplete(): void {
    this.complete = true;
    const c = this.collector;
    if (c) {
      this.collector = undefined;
      c.resolve(c.parts.length === 1 ? c.parts[0]! : Buffer.concat(c.parts, c.n));
    }
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  onError(e: Error): void {
    this.failure ??= e;
    const h = this.head;
    if (h) {
      this.head = undefined;
      h.reject(e);
    }
    const c = this.collector;
    if (c) {
      this.collector = undefined;
      c.reject(e);
    }
    const w = this.waiter;
    if (w) {
      this.waiter = undefined;
      w.reject(e);
    }
  }

  // ---- the caller's side ----

  /** let undici read the socket again, if onData paused it */
  private resume(): void {
    if (!this.paused) return;
    this.paused = false;
    this.resumeSocket?.();
  }

  abort(e: Error): void {
    if (this.complete || this.failure !== undefined) return;
    if (this.cut) this.cut(e);
    else {
      // not on a socket yet: undici aborts it when it gets one (onConnect); the caller hears now
      this.early = e;
      this.onError(e);
    }
  }

  destroy(): void {
    if (this.complete || this.failure !== undefined) return;
    this.abort(new BodyDestroyedError());
  }

  discard(limit: number): void {
    if (this.complete || this.failure !== undefined || this.discarding !== undefined) return;
    this.discarding = limit;
    this.queue = [];
    this.resume();
  }

  next(): Promise<IteratorResult<Buffer, undefined>> {
    const q = this.queue;
    if (q.length) {
      const value = q.shift()!;
      if (q.length < LOW_WATER) this.resume();
      return Promise.resolve({ value, done: false });
    }
    if (this.failure !== undefined) return Promise.reject(this.failure);
    if (this.complete) return Promise.resolve({ value: undefined, done: true });
    this.resume();
    return new Promise((resolve, reject) => {
      this.waiter = { resolve, reject };
    });
  }

  all(limit: number, declared: number, overLimit: () => Error): Promise<Buffer> {
    if (this.failure !== undefined) return Promise.reject(this.failure);
    const parts = this.queue;
    this.queue = [];
    let n = 0;
    for (const p of parts) n += p.length;
    if (declared > limit || n > limit) {
      // announced (content-length) or already queued over the limit: nothing more is read
      this.destroy();
      return Promise.reject(overLimit());
    }
    if (this.complete) return Promise.resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, n));
    return new Promise<Buffer>((resolve, reject) => {
      this.collector = { parts, n, limit, overLimit, resolve, reject };
      this.resume();
    });
  }

  async text(limit: number): Promise<string> {
    let s = '';
    for (;;) {
      const r = await this.next();
      if (r.done) break;
      s += r.value.toString('utf8');
      if (s.length >= limit) {
        this.destroy(); // the rest is not read: the connection is cut
        break;
      }
    }
    return s.slice(0, limit);
  }
}
