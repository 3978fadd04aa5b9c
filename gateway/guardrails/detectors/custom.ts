// Custom detectors: regexes (checked for catastrophic backtracking before they are accepted),
// keyword lists (case- and accent-insensitive, whole words, format characters such as a zero-width
// space ignored), and a maximum text size.
import { holdsFormatChars, type Finding } from './types.js';

export { MAX_PATTERN_LENGTH, unsafeRegexReason } from '../../config/regex-safety.js';

export function regexDetector(pattern: string, flags: string | undefined, label: string): (t: string) => Finding[] {
  const re = new RegExp(pattern, `g${(flags ?? '').replace(/[gyd]/g, '')}`);
  return (t) => {
    const out: Finding[] = [];
    re.lastIndex = 0;
    for (let m = re.exec(t); m; m = re.exec(t)) {
      if (!m[0]) {
        re.lastIndex++;
        continue;
      }
      out.push({ detector: 'regex', type: label, start: m.index, end: m.index + m[0].length });
    }
    return out;
  };
}

const FORMAT_CHAR = /^\p{Cf}$/u;

/** Lower case without accents and without format characters (\p{Cf}: zero-width space and
 * joiners, word joiner, BOM, soft hyphen, bidi controls; invisible, so "pass\u200Bword" reads
 * "password"), with the position in the original text of each folded character (at[k]) and of
 * the end of the original character it came from (to[k]). ASCII text (no format characters) is
 * only lower-cased; format characters are looked for once per text, before any per-character
 * test. */
export function fold(t: string): { s: string; at: number[] | undefined; to: number[] | undefined } {
  // eslint-disable-next-line no-control-regex
  if (/^[\x00-\x7F]*$/.test(t)) return { s: t.toLowerCase(), at: undefined, to: undefined };
  const cf = holdsFormatChars(t);
  let s = '';
  const at: number[] = [];
  const to: number[] = [];
  for (let i = 0; i < t.length; ) {
    const cp = t.codePointAt(i)!;
    const ch = String.fromCodePoint(cp);
    if (cf && FORMAT_CHAR.test(ch)) {
      i += ch.length;
      continue;
    }
    const f = ch.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase();
    for (let k = 0; k < f.length; k++) {
      at.push(i);
      to.push(i + ch.length);
    }
    s += f;
    i += ch.length;
  }
  at.push(t.length);
  return { s, at, to };
}

const isWordChar = (c: string | undefined) => !!c && /[\p{L}\p{N}_]/u.test(c);

export function keywordDetector(words: readonly string[]): (t: string) => Finding[] {
  const folded = [...new Set(words.map((w) => fold(w.trim()).s).filter((w) => w.length > 0))];
  return (t) => {
    const { s, at, to } = fold(t);
    const out: Finding[] = [];
    for (const w of folded) {
      for (let i = s.indexOf(w); i !== -1; i = s.indexOf(w, i + 1)) {
        if (isWordChar(s[i - 1]) || isWordChar(s[i + w.length])) continue;
        // the original characters the match came from: the format characters inside it too
        const start = at ? at[i]! : i;
        const end = to ? to[i + w.length - 1]! : i + w.length;
        out.push({ detector: 'keywords', type: 'KEYWORD', start, end });
      }
    }
    return out;
  };
}

export function maxSizeDetector(chars: number): (t: string) => Finding[] {
  return (t) => (t.length > chars ? [{ detector: 'max_size', type: 'TOO_LARGE', start: 0, end: 0 }] : []);
}
