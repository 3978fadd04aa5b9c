// The counters behind budgets and rate limits, behind one small interface: this process keeps
// them in memory; a later cluster mode backs the same interface with a shared store. No stage
// reaches into their internals.

/** A budget subject in one period, e.g. "team:research" from the month starting at `start`. */
export interface BudgetCell {
  subject: string;
  start: number;
}
export interface BudgetClaim extends BudgetCell {
  limit: number;
}

/** A rate-limited subject, e.g. "key:notebook-app" at `limit` requests (or tokens) per minute. */
export interface RateClaim {
  subject: string;
  limit: number;
}

export interface RateState {
  /** whole units left now */
  remaining: number;
  /** ms until the bucket is full again */
  resetMs: number;
}

export interface Counters {
  /** settled spend and open reservations of a subject in a period */
  budget(cell: BudgetCell): { spent: number; reserved: number };
  /** Reserve `amount` on every claim at once if each still has room (spent + reserved < limit).
   * Returns the index of the first claim without room (nothing is then reserved), or -1. */
  reserve(claims: readonly BudgetClaim[], amount: number): number;
  /** A request finished: its reservation is replaced by its real cost. */
  settle(cells: readonly BudgetCell[], reserved: number, cost: number): void;
  /** Spend recorded before this process counted (from the ledger); only sets a cell not yet known. */
  seed(cell: BudgetCell, spent: number): void;
  known(cell: BudgetCell): boolean;
  /** Token bucket per minute: what is left of a rate limit now. */
  rate(claim: RateClaim, now: number): RateState;
  /** ms until `need` units are available (0: now) */
  rateWait(claim: RateClaim, need: number, now: number): number;
  /** take n units (may go below zero: a request that used more than was reserved) */
  take(claim: RateClaim, n: number, now: number): void;
}

const MINUTE = 60_000;

interface Bucket {
  level: number;
  at: number;
}

export class MemoryCounters implements Counters {
  private readonly cells = new Map<string, { spent: number; reserved: number }>();
  private readonly buckets = new Map<string, Bucket>();
  private takes = 0;

  private cell(c: BudgetCell): { spent: number; reserved: number } {
    const k = `${c.subject}@${c.start}`;
    let v = this.cells.get(k);
    if (!v) {
      v = { spent: 0, reserved: 0 };
      this.cells.set(k, v);
    }
    return v;
  }

  budget(c: BudgetCell): { spent: number; reserved: number } {
    const v = this.cells.get(`${c.subject}@${c.start}`);
    return v ? { spent: v.spent, reserved: v.reserved } : { spent: 0, reserved: 0 };
  }

  reserve(claims: readonly BudgetClaim[], amount: number): number {
    for (let i = 0; i < claims.length; i++) {
      const c = claims[i]!;
      const v = this.cell(c);
      if (v.spent + v.reserved >= c.limit) return i;
    }
    for (const c of claims) this.cell(c).reserved += amount;
    return -1;
  }

  settle(cells: readonly BudgetCell[], reserved: number, cost: number): void {
    for (const c of cells) {
      const v = this.cell(c);
      v.reserved = Math.max(0, v.reserved - reserved);
      v.spent += cost;
    }
  }

  seed(c: BudgetCell, spent: number): void {
    const k = `${c.subject}@${c.start}`;
    if (!this.cells.has(k)) this.cells.set(k, { spent, reserved: 0 });
  }

  known(c: BudgetCell): boolean {
    return this.cells.has(`${c.subject}@${c.start}`);
  }

  /** Forget cells of periods that ended (no reservation open on them). */
  prune(isCurrent: (cell: BudgetCell) => boolean): void {
    for (const [k, v] of this.cells) {
      const at = k.lastIndexOf('@');
      if (v.reserved === 0 && !isCurrent({ subject: k.slice(0, at), start: Number(k.slice(at + 1)) })) this.cells.delete(k);
    }
  }

  private level(c: RateClaim, now: number): Bucket {
    const k = `${c.subject}/${c.limit}`;
    let b = this.buckets.get(k);
    if (!b) {
      b = { level: c.limit, at: now };
      this.buckets.set(k, b);
    }
    if (now > b.at) {
      b.level = Math.min(c.limit, b.level + ((now - b.at) * c.limit) / MINUTE);
      b.at = now;
    }
    return b;
  }

  rate(c: RateClaim, now: number): RateState {
    const b = this.level(c, now);
    return { remaining: Math.max(0, Math.floor(b.level)), resetMs: Math.ceil(((c.limit - b.level) * MINUTE) / c.limit) };
  }

  rateWait(c: RateClaim, need: number, now: number): number {
    const b = this.level(c, now);
    if (b.level >= need) return 0;
    return Math.ceil(((need - b.level) * MINUTE) / c.limit);
  }

  take(c: RateClaim, n: number, now: number): void {
    this.level(c, now).level -= n;
    // Full buckets hold nothing worth keeping: drop them now and then (end users come and go).
    if (++this.takes % 10_000 === 0) {
      for (const [k, b] of this.buckets) {
        const limit = Number(k.slice(k.lastIndexOf('/') + 1));
        if (b.level + ((now - b.at) * limit) / MINUTE >= limit) this.buckets.delete(k);
      }
    }
  }
}
