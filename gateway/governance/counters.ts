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
  limit: number;
}
interface Cell {
  spent: number;
  reserved: number;
}

// Keys are the subjects as given, cells keyed by period start in a nested map: building a string
// key from a millisecond number on every request cost more than the rest of admission.
export class MemoryCounters implements Counters {
  private readonly cells = new Map<string, Map<number, Cell>>();
  private readonly buckets = new Map<string, Bucket>();
  private takes = 0;

  private cell(c: BudgetCell): Cell {
    let byStart = this.cells.get(c.subject);
    if (!byStart) {
      byStart = new Map();
      this.cells.set(c.subject, byStart);
    }
    let v = byStart.get(c.start);
    if (!v) {
      v = { spent: 0, reserved: 0 };
      byStart.set(c.start, v);
      // periods that ended and hold no reservation are of no use any more
      if (byStart.size > 2) for (const [start, old] of byStart) if (start < c.start && old.reserved === 0) byStart.delete(start);
    }
    return v;
  }

  budget(c: BudgetCell): { spent: number; reserved: number } {
    const v = this.cells.get(c.subject)?.get(c.start);
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
    if (!this.known(c)) this.cell(c).spent = spent;
  }

  known(c: BudgetCell): boolean {
    return this.cells.get(c.subject)?.has(c.start) ?? false;
  }

  private level(c: RateClaim, now: number): Bucket {
    let b = this.buckets.get(c.subject);
    if (!b) {
      b = { level: c.limit, at: now, limit: c.limit };
      this.buckets.set(c.subject, b);
    } else if (b.limit !== c.limit) {
      // the limit changed (a config edit): keep what was used, within the new limit
      b.level = Math.min(c.limit, b.level + c.limit - b.limit);
      b.limit = c.limit;
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
      for (const [k, b] of this.buckets) if (b.level + ((now - b.at) * b.limit) / MINUTE >= b.limit) this.buckets.delete(k);
    }
  }
}
