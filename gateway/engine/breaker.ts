// Per-target circuit breaker: closed → open after N consecutive failures; after a cooldown one
// request may probe (half-open); its success closes the breaker, its failure re-opens it.
import type { BreakerState } from '../wire.js';

export type { BreakerState };

export interface BreakerOptions {
  failureThreshold: number;
  cooldownMs: number;
}

export class CircuitBreaker {
  private failures = 0;
  private openedAt = 0;
  private state_: BreakerState = 'closed';
  private probeInFlight = false;
  lastError: string | undefined;

  constructor(
    private opts: BreakerOptions,
    private readonly now: () => number = Date.now,
  ) {}

  configure(opts: BreakerOptions): void {
    this.opts = opts;
  }

  get state(): BreakerState {
    if (this.state_ === 'open' && this.now() - this.openedAt >= this.opts.cooldownMs) return 'half-open';
    return this.state_;
  }

  get consecutiveFailures(): number {
    return this.failures;
  }

  /** When the breaker (if open) lets a probe through. */
  get retryAt(): number | undefined {
    return this.state_ === 'open' ? this.openedAt + this.opts.cooldownMs : undefined;
  }

  /** May a request go to this target now? A half-open breaker admits one probe at a time. */
  canPass(): boolean {
    const s = this.state;
    if (s === 'closed') return true;
    if (s === 'open') return false;
    return !this.probeInFlight;
  }

  /** Call when a request is actually sent (after canPass). */
  onAttempt(): void {
    if (this.state === 'half-open') this.probeInFlight = true;
  }

  onSuccess(): void {
    this.failures = 0;
    this.state_ = 'closed';
    this.probeInFlight = false;
    this.lastError = undefined;
  }

  onFailure(reason: string): void {
    this.lastError = reason;
    this.failures++;
    const wasProbe = this.probeInFlight || this.state === 'half-open';
    this.probeInFlight = false;
    if (wasProbe || this.failures >= this.opts.failureThreshold) {
      this.state_ = 'open';
      this.openedAt = this.now();
    }
  }

  /** A failure that says nothing about the target's health (e.g. the client went away). */
  onNeutral(): void {
    this.probeInFlight = false;
  }
}
