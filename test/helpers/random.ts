// Seeded randomness for tests: a PRNG (mulberry32) whose sequence is fixed by its seed, so a
// failing case can be regenerated from the seed it prints, and the random chunking of a text that
// the streaming tests feed through the gateway in pieces.

export class Rng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  /** mulberry32 */
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  float(): number {
    return this.u32() / 4294967296;
  }
  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }
  /** integer in [lo, hi] */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  /** integer in [lo, hi], uniform in log scale (small values as likely as large magnitudes) */
  logInt(lo: number, hi: number): number {
    const a = Math.log(lo);
    const b = Math.log(hi);
    return Math.min(hi, Math.max(lo, Math.round(Math.exp(a + this.float() * (b - a)))));
  }
  chance(p: number): boolean {
    return this.float() < p;
  }
  pick<T>(a: readonly T[]): T {
    if (a.length === 0) throw new Error('pick from an empty list');
    return a[this.int(a.length)]!;
  }
  bytes(n: number): Buffer {
    const b = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
}

/** `text` cut into pieces of 1 to `max` UTF-16 code units (a surrogate pair may be cut, as a
 * stream may cut it), the lengths drawn from `seed`; joined, the pieces are `text`. */
export function randomChunks(text: string, seed: number, max = 9): string[] {
  const r = new Rng(seed);
  const out: string[] = [];
  for (let i = 0; i < text.length; ) {
    const n = r.range(1, max);
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}
