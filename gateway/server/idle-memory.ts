// Giving memory back after a burst. V8 grows its heap under load (the young generation to 16 MB
// per semi-space, the old generation with what requests in flight held) and, once the load is
// over, keeps it: its memory reducer runs only after a full collection or while the heap is
// still at its start-up size, so a gateway that served a burst of a thousand streams stayed ~60
// MB above its idle RSS for minutes (bench/RESULTS.md, slow streams). Here, once the data plane
// has been quiet for a while — no new request for one interval and none in flight — and the heap
// is well above what it was after the last such collection, one full collection runs; V8 then
// shrinks the young generation (the allocation rate is low) and frees empty pages; and once more
// after a minute of quiet, for what the burst's idle keep-alive connections held. It costs a
// pause of some tens of ms on a quiet process, at most twice per burst.
import v8 from 'node:v8';
import vm from 'node:vm';

/** V8's default growth factor of the young generation (see bin/airlock.js, which holds it at 1 while
 * the process starts). */
const SEMI_SPACE_GROWTH_FACTOR = 2;

/** The gateway is up: let the young generation grow again under load. */
export function startupDone(): void {
  v8.setFlagsFromString(`--semi-space-growth-factor=${SEMI_SPACE_GROWTH_FACTOR}`);
}

type GcFn = () => void;
let gcFn: GcFn | null | undefined;

/** V8's gc() — without --expose-gc on the command line: the flag only matters when a context is
 * created, so a fresh vm context has it. null when that is not possible. */
function collector(): GcFn | null {
  if (gcFn !== undefined) return gcFn;
  try {
    const g = (globalThis as { gc?: unknown }).gc;
    if (typeof g === 'function') gcFn = g as GcFn;
    else {
      v8.setFlagsFromString('--expose-gc');
      const f: unknown = vm.runInNewContext('gc');
      gcFn = typeof f === 'function' ? (f as GcFn) : null;
    }
  } catch {
    gcFn = null;
  }
  return gcFn;
}

export interface IdleMemoryOptions {
  /** requests started so far (any counter that moves with traffic) */
  started(): number;
  /** requests in flight now */
  inflight(): number;
  /** how often to look, and how long the plane must have been quiet (ms) */
  intervalMs?: number;
  /** how far the heap must have grown since the last collection here (bytes) */
  growthBytes?: number;
}

export class IdleMemory {
  private timer: NodeJS.Timeout | undefined;
  private lastStarted = -1;
  private lastInflight = -1;
  private baseline = Infinity;
  /** consecutive quiet looks; whether this quiet spell began with a collection */
  private quietTicks = 0;
  private collectedThisSpell = false;
  /** collections run (for tests and the log) */
  collections = 0;

  constructor(private readonly o: IdleMemoryOptions) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.o.intervalMs ?? 5000);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look: collect when quiet and grown. Returns whether it collected. */
  tick(): boolean {
    const started = this.o.started();
    const inflight = this.o.inflight();
    // quiet for a whole interval: no request started since the last look, none in flight then or now
    const quiet = started === this.lastStarted && inflight === 0 && this.lastInflight === 0;
    this.lastStarted = started;
    this.lastInflight = inflight;
    if (!quiet) {
      this.quietTicks = 0;
      this.collectedThisSpell = false;
      return false;
    }
    this.quietTicks++;
    const heap = v8.getHeapStatistics().total_heap_size;
    // V8's own reducer may have shrunk the heap since: follow it down
    if (heap < this.baseline) this.baseline = heap;
    // the first quiet spell after start collects once in any case: start-up (compiling the
    // schemas, the routes, the admin app's files) leaves garbage V8 would keep for a long time
    const grown = this.collections === 0 || heap >= this.baseline + (this.o.growthBytes ?? 16 * 1024 * 1024);
    // once more after a minute of quiet, when the spell began with a collection: by then the
    // idle keep-alive connections of the burst (to clients and upstreams) have mostly closed
    const sweep = this.collectedThisSpell && this.quietTicks === Math.round(60_000 / (this.o.intervalMs ?? 5000));
    if (!grown && !sweep) return false;
    const gc = collector();
    if (!gc) return false;
    gc();
    this.collections++;
    this.collectedThisSpell = true;
    this.baseline = v8.getHeapStatistics().total_heap_size;
    return true;
  }
}
