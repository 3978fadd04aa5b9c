// What a detector reports: where in the text it found something, and of what kind. Never the
// matched text itself beyond this call: callers record types and counts only.
export interface Finding {
  /** the detector family: pii | secrets | injection | regex | keywords | max_size */
  detector: string;
  /** the kind of thing found, upper case, used in placeholders ([EMAIL_1]) and events */
  type: string;
  /** [start, end) in UTF-16 code units of the scanned text */
  start: number;
  end: number;
  /** the replacement when redacting, when not a placeholder (hidden characters are removed: "") */
  replacement?: string;
  /** the injection detector's score contribution (0..1) */
  score?: number;
}

export interface Detector {
  (text: string): Finding[];
  /** The prefilter: characters of which every match contains at least one. A text holding none of
   * them cannot match, and the policy skips the detector (policy.ts); absent: always run. */
  anchors?: string;
}

export const DIGITS = '0123456789';

/** The detector, declaring its anchors (see Detector.anchors). */
export function anchored(d: (text: string) => Finding[], anchors: string): Detector {
  return Object.assign(d, { anchors });
}

/** Whether `text` holds one of `chars`: one indexOf per character (a memchr over the text, far
 * cheaper than a regex or a loop over its characters). */
export function holdsAny(text: string, chars: string): boolean {
  for (let i = 0; i < chars.length; i++) if (text.indexOf(chars[i]!) !== -1) return true;
  return false;
}

const FORMAT_CHAR = /\p{Cf}/u;
const FORMAT_CHARS = /\p{Cf}+/gu;

/** Whether `text` holds a Unicode format character (\p{Cf}: zero-width space, non-joiner and
 * joiner, word joiner, BOM, soft hyphen, bidi controls, tag characters, …): invisible to a reader,
 * so a word split by one still reads as the word. One regex test; most texts hold none. */
export function holdsFormatChars(text: string): boolean {
  return FORMAT_CHAR.test(text);
}

/** The text without its format characters, with each kept UTF-16 unit's index in `text` (at[k]);
 * undefined when it holds none (no copy, no map). A match [i, j) of the stripped text is
 * [at[i], at[j - 1] + 1) of the original: the format characters inside it are covered, so a
 * redaction removes them with the word. */
export function withoutFormatChars(text: string): { s: string; at: number[] } | undefined {
  if (!FORMAT_CHAR.test(text)) return undefined;
  let s = '';
  const at: number[] = [];
  let from = 0;
  FORMAT_CHARS.lastIndex = 0;
  for (let m = FORMAT_CHARS.exec(text); ; m = FORMAT_CHARS.exec(text)) {
    const to = m ? m.index : text.length;
    s += text.slice(from, to);
    for (let i = from; i < to; i++) at.push(i);
    if (!m) break;
    from = m.index + m[0].length;
  }
  return { s, at };
}

/** Every match of a global regex as findings, optionally validated. */
export function matchAll(re: RegExp, text: string, detector: string, type: string, valid?: (m: RegExpExecArray) => boolean, group = 0): Finding[] {
  const out: Finding[] = [];
  re.lastIndex = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    if (valid && !valid(m)) continue;
    if (group === 0) out.push({ detector, type, start: m.index, end: m.index + m[0].length });
    else {
      const idx = (m as RegExpExecArray & { indices?: [number, number][] }).indices?.[group];
      if (idx) out.push({ detector, type, start: idx[0], end: idx[1] });
    }
  }
  return out;
}

/** Shannon entropy of a string, in bits per character. */
export function entropy(s: string): number {
  const counts = new Map<string, number>();
  for (const c of s) counts.set(c, (counts.get(c) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}
