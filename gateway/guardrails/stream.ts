// Incremental scanning of a text that arrives in pieces (a streamed answer): a hold-back window
// so a secret split across chunks is caught and redacted before any of it is forwarded.
//
// Text is held until more than WINDOW + STEP characters wait; then everything up to WINDOW
// characters from the end is released, except that the release point never falls inside a
// finding of an enforcing policy, nor inside a run of token characters (a key or token is held
// whole, however long, up to MAX_HOLD). Released text is redacted with the findings of enforcing
// redact policies; a settled finding of an enforcing block policy throws. The last few released
// characters stay as context for the next scan (key-like contexts such as `password=`).
// Policies that change nothing (flag, shadow) are scanned the same way and their findings
// recorded once (by position); when no policy changes anything, nothing is held back: the text
// goes on as it came while the scan runs the same windows beside it (shadow counts what enforce
// would).
import { addHit, blockMessage, redact, type CompiledPolicy, type Finding, type GuardDirection, type Hit, type Placeholders } from './policy.js';

export const WINDOW = 128;
export const STEP = 32;
export const MAX_HOLD = 64 * 1024;
const CONTEXT = 64;

function isTokenChar(c: number): boolean {
  return (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45 || c === 46 || c === 43 || c === 47 || c === 61 || c === 91 || c === 93 || c === 64 || c === 126;
}

export class GuardBlock extends Error {
  constructor(
    readonly policy: string,
    message: string,
  ) {
    super(message);
  }
}

export class TextScanner {
  private pending = '';
  /** the last released characters, as they were (for detection context) */
  private ctxText = '';
  /** absolute offset of pending[0] */
  private base = 0;
  private readonly recorded = new Set<string>();
  private readonly holds: boolean;

  private readonly policies: readonly CompiledPolicy[];

  constructor(
    policies: readonly CompiledPolicy[],
    private readonly direction: GuardDirection,
    private readonly ph: Placeholders,
    private readonly hits: Map<string, Hit>,
    private readonly restore: boolean,
  ) {
    this.policies = policies.filter((p) => p.detectsText);
    this.holds = restore || this.policies.some((p) => p.changes);
  }

  /** text is held back (not released yet) */
  get holding(): boolean {
    return this.pending !== '';
  }

  /** More text; returns what may be sent now (possibly ""). Throws GuardBlock. */
  push(text: string): string {
    this.pending += text;
    if (this.pending.length <= WINDOW + STEP) return this.holds ? '' : text;
    const out = this.scan(false);
    return this.holds ? out : text;
  }

  /** The text is complete: everything left, scanned and redacted. Throws GuardBlock. */
  end(): string {
    if (!this.pending) return '';
    const out = this.scan(true);
    return this.holds ? out : '';
  }

  private scan(final: boolean): string {
    const p = this.pending;
    const off = this.ctxText.length;
    const scanText = this.ctxText + p;
    const per: { pol: CompiledPolicy; f: Finding[] }[] = [];
    for (const pol of this.policies) {
      const f: Finding[] = [];
      for (const x of pol.detect(scanText)) {
        const start = x.start - off;
        const end = x.end - off;
        if (end <= 0 && x.end > x.start) continue; // in the context: already decided
        f.push({ ...x, start, end });
      }
      if (f.length) per.push({ pol, f });
    }
    let cut = p.length;
    if (!final) {
      cut = Math.max(0, p.length - WINDOW);
      for (let changed = true; changed; ) {
        changed = false;
        while (cut > 0 && cut < p.length && isTokenChar(p.charCodeAt(cut - 1)) && isTokenChar(p.charCodeAt(cut))) cut--;
        for (const { pol, f } of per) {
          if (this.holds && !pol.changes) continue;
          for (const x of f)
            if (x.start < cut && x.end > cut) {
              cut = Math.max(0, x.start);
              changed = true;
            }
        }
      }
      if (cut === 0 && p.length > MAX_HOLD) cut = p.length - WINDOW; // bounded: redact what is inside
      const hi = p.charCodeAt(cut - 1);
      if (cut > 0 && cut < p.length && hi >= 0xd800 && hi <= 0xdbff) cut--;
    }
    // findings settled in [0, cut): recorded once; an enforcing block stops here
    const redactions: Finding[] = [];
    for (const { pol, f } of per) {
      const settled = final ? f : f.filter((x) => x.start < cut);
      const fresh = settled.filter((x) => {
        const k = `${pol.name}|${x.type}|${this.base + x.start}`;
        if (this.recorded.has(k)) return false;
        this.recorded.add(k);
        return true;
      });
      const blocks = pol.changes && pol.action === 'block' && settled.length > 0;
      addHit(this.hits, pol, this.direction, fresh, blocks);
      if (blocks) throw new GuardBlock(pol.name, blockMessage(this.direction, settled));
      if (pol.changes && pol.action === 'redact') redactions.push(...settled);
    }
    let out = redactions.length ? redact(p, redactions, this.ph, cut) : p.slice(0, cut);
    if (this.restore) out = this.ph.restore(out);
    this.ctxText = (this.ctxText + p.slice(0, cut)).slice(-CONTEXT);
    this.pending = p.slice(cut);
    this.base += cut;
    return out;
  }
}
