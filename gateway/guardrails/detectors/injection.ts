// Prompt injection: instruction-override and role-hijack phrasings (read past format characters:
// a zero-width space or soft hyphen inside a word does not hide it), hidden characters
// (zero-width, Unicode tag characters, bidi controls) and instructions hidden in base64. Each
// finding carries a score; the policy compares their sum (at most 1) with its threshold.
import { withoutFormatChars, type Finding } from './types.js';

const PHRASES: { re: RegExp; score: number }[] = [
  { re: /\b(?:ignore|disregard|forget|override|bypass)\s+(?:all\s+|any\s+|the\s+|every\s+|your\s+)*(?:previous|prior|above|earlier|preceding|original|system)\s+(?:instructions?|prompts?|rules?|directions?|guidelines?|messages?|context)\b/gi, score: 0.7 },
  { re: /\bforget\s+(?:everything|all)\s+(?:you\s+(?:were|have\s+been)\s+told|above|before)\b/gi, score: 0.6 },
  { re: /\byou\s+are\s+(?:now\s+)?(?:DAN|in\s+developer\s+mode|jailbroken|an?\s+(?:unrestricted|unfiltered|uncensored)\b)/gi, score: 0.6 },
  { re: /\b(?:act|behave|respond)\s+as\s+(?:if\s+you\s+(?:are|were)\s+)?(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|jailbroken)\b/gi, score: 0.5 },
  { re: /\b(?:reveal|print|show|repeat|output|leak)\s+(?:me\s+)?(?:your|the)\s+(?:full\s+|entire\s+|hidden\s+|original\s+)?(?:system\s+prompt|hidden\s+instructions|initial\s+instructions|developer\s+message)\b/gi, score: 0.6 },
  { re: /\b(?:new|updated)\s+(?:system\s+)?instructions\s*:/gi, score: 0.4 },
  { re: /\b(?:system\s+override|developer\s+mode\s+enabled|do\s+anything\s+now)\b/gi, score: 0.5 },
  // role hijack: chat-template markers and a fake role line inside content
  { re: /<\|im_start\|>|<\|im_end\|>|<\|start_header_id\|>|\[\/?INST\]|<<\/?SYS>>|<\|system\|>/g, score: 0.5 },
  { re: /(?:^|\n)\s*(?:###\s*)?(?:system|assistant)\s*:\s*(?=\S)/gi, score: 0.3 },
];

// zero-width space/joiners, word joiner, BOM inside text, soft hyphen runs are left alone
const ZERO_WIDTH = /[\u200B-\u200D\u2060\u2062-\u2064\uFEFF]/g;
const BIDI = /[\u202A-\u202E\u2066-\u2069]/g;
const TAGS = /(?:\uDB40[\uDC00-\uDC7F])+/g; // U+E0000-E007F
const BASE64 = /(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])/g;

function phrases(t: string, base = 0, scale = 1): Finding[] {
  const out: Finding[] = [];
  for (const p of PHRASES) {
    p.re.lastIndex = 0;
    for (let m = p.re.exec(t); m; m = p.re.exec(t)) {
      if (!m[0]) {
        p.re.lastIndex++;
        continue;
      }
      out.push({ detector: 'injection', type: 'INJECTION', start: base + m.index, end: base + m.index + m[0].length, score: p.score * scale });
    }
  }
  return out;
}

/** The phrasings, read past format characters (a zero-width space or soft hyphen inside
 * "ignore" still reads "ignore"); each finding covers the original text, the format characters
 * inside it included. Text without any is read as it is. */
function visiblePhrases(t: string): Finding[] {
  const v = withoutFormatChars(t);
  if (!v) return phrases(t);
  return phrases(v.s).map((f) => ({ ...f, start: v.at[f.start]!, end: v.at[f.end - 1]! + 1 }));
}

export function injection(t: string): Finding[] {
  const out = visiblePhrases(t);
  for (const [re, score] of [
    [ZERO_WIDTH, 0.2],
    [BIDI, 0.3],
  ] as const) {
    re.lastIndex = 0;
    let n = 0;
    for (let m = re.exec(t); m; m = re.exec(t)) {
      // a lone zero-width joiner in an emoji sequence is ordinary text
      if (m[0] === '\u200D' && /\p{Extended_Pictographic}/u.test(t.slice(Math.max(0, m.index - 2), m.index + 3))) continue;
      out.push({ detector: 'injection', type: 'HIDDEN_CHAR', start: m.index, end: m.index + m[0].length, replacement: '', score: n++ === 0 ? score : 0.05 });
    }
  }
  TAGS.lastIndex = 0;
  for (let m = TAGS.exec(t); m; m = TAGS.exec(t)) out.push({ detector: 'injection', type: 'HIDDEN_CHAR', start: m.index, end: m.index + m[0].length, replacement: '', score: 0.8 });
  // instructions hidden in base64: decoded, then the same phrasings
  BASE64.lastIndex = 0;
  for (let m = BASE64.exec(t); m; m = BASE64.exec(t)) {
    if (m[0].length > 8192) continue;
    const decoded = Buffer.from(m[0], 'base64').toString('utf8');
    if (!/^[\x20-\x7E\s]+$/.test(decoded)) continue;
    if (phrases(decoded).length) out.push({ detector: 'injection', type: 'INJECTION', start: m.index, end: m.index + m[0].length, score: 0.7 });
  }
  return out;
}

/** The injection score of a set of findings: their sum, at most 1. */
export function injectionScore(f: readonly Finding[]): number {
  let s = 0;
  for (const x of f) s += x.score ?? 0;
  return Math.min(1, s);
}
