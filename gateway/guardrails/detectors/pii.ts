// Personal data: e-mail addresses, phone numbers (E.164 and common national formats), payment
// cards (Luhn), IBANs (mod-97), US SSNs, IPv4 and IPv6 addresses. Each candidate a regex finds is
// checked the way the format defines (check digits, ranges) so near misses are not reported.
import { isIPv6 } from 'node:net';
import { DIGITS, anchored, matchAll, type Finding } from './types.js';

// An address: a local part (1-64 of [A-Za-z0-9._%+-], first a letter or digit, nothing of that set
// just before it), "@", dotted domain labels and a top-level domain. Not searched with one global
// expression: at every position of a text holding an "@" it would read up to 64 characters before
// failing (~45 µs on 4 kB). The local part of a match is the whole run of its characters before an
// "@" (the lookbehind), so each "@" is looked at once: back over the run, then EMAIL_AT from there.
const EMAIL_AT = /[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-]|\.[A-Za-z0-9])/y;
// +CC then digits with optional single separators
const E164 = /(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){6,14}(?![\d])/g;
// national formats with separators: (555) 123-4567, 555-123-4567, 555.123.4567, 030 1234 5678, 06-12345678, 0171 1234567
const NATIONAL = /(?<![\w.+-])(?:\(\d{2,5}\)[ ]?\d{3,4}[ .-]\d{3,4}|\d{3}[.-]\d{3}[.-]\d{4}|0\d{1,4}[ /-]\d{3,4}[ -]?\d{2,5}|0\d{1,4}[ /-]\d{6,8})(?![\w-]|\.\d)/g;
// 13-19 digits, single spaces or dashes between them, not inside a word or a dashed run. Written
// to begin with the digit it starts at, its "not after [\w-]" checked behind that digit: an
// expression that begins with a lookbehind is tried at every position of the text, one that begins
// with \d only at digits (4.6 vs 8.9 µs on the bench's 4 kB text with ids, dates and amounts).
// The same matches as (?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-]) (a unit test checks it).
export const CARD = /\d(?<![\w-]\d)(?:[ -]?\d){12,18}(?![\w-])/g;
const IBAN = /(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}(?![A-Za-z0-9])/g;
const SSN = /(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])/g;
const IPV4 = /(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)/g;
const IPV6 = /(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])/g;

/** The Luhn check digit algorithm (ISO/IEC 7812). */
export function luhn(digits: string): boolean {
  let sum = 0;
  let dbl = false;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (dbl) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    dbl = !dbl;
  }
  return sum % 10 === 0;
}

/** The IBAN check (ISO 13616): move the first four characters to the end, letters to numbers, mod 97 = 1. */
export function ibanValid(iban: string): boolean {
  const s = iban.replace(/ /g, '').toUpperCase();
  if (s.length < 15 || s.length > 34 || !/^[A-Z]{2}\d{2}[A-Z0-9]+$/.test(s)) return false;
  const len = IBAN_LENGTHS[s.slice(0, 2)];
  if (len !== undefined && len !== s.length) return false;
  const r = s.slice(4) + s.slice(0, 4);
  let rem = 0;
  for (const ch of r) {
    const c = ch.charCodeAt(0);
    const v = c >= 65 ? String(c - 55) : ch;
    for (const d of v) rem = (rem * 10 + (d.charCodeAt(0) - 48)) % 97;
  }
  return rem === 1;
}

const IBAN_LENGTHS: Record<string, number> = {
  AT: 20, BE: 16, BG: 22, CH: 21, CY: 28, CZ: 24, DE: 22, DK: 18, EE: 20, ES: 24, FI: 18, FR: 27, GB: 22, GR: 27, HR: 21, HU: 28,
  IE: 22, IS: 26, IT: 27, LI: 21, LT: 20, LU: 20, LV: 21, MC: 27, MT: 31, NL: 18, NO: 15, PL: 28, PT: 25, RO: 24, SE: 24, SI: 19, SK: 24, SM: 27,
};

export function cardValid(m: RegExpExecArray): boolean {
  const raw = m[0];
  const digits = raw.replace(/[ -]/g, '');
  if (digits.length < 13 || digits.length > 19) return false;
  // one kind of separator, in groups (4-4-4-4, 4-6-5): not a random run of digits and dashes
  if (/ /.test(raw) && /-/.test(raw)) return false;
  if (/[ -]{2}/.test(raw)) return false;
  const first = digits.charCodeAt(0) - 48;
  if (first < 2 || first > 6) return false; // issuer identification: 2 (Mastercard), 3 (Amex/Diners/JCB), 4 (Visa), 5, 6
  if (/^(\d)\1+$/.test(digits)) return false;
  return luhn(digits);
}

/** Four dotted numbers after "version", "patch", "release", "build" or "v" are a version. */
export function ipv4Valid(t: string, m: RegExpExecArray): boolean {
  return !/(?:\b(?:version|patch|release|build|firmware)\s*|\bv)$/i.test(t.slice(Math.max(0, m.index - 12), m.index));
}

function phoneDigits(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 48 && c <= 57) n++;
  }
  return n;
}

/** [A-Za-z0-9._%+-]: a local part's characters (and the lookbehind's: \w adds only "_", already in). */
function localChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 46 || c === 95 || c === 37 || c === 43 || c === 45;
}

export const email = anchored((t: string): Finding[] => {
  const out: Finding[] = [];
  // as a global expression would: the next address starts at the end of the last one or later
  let from = 0;
  for (let at = t.indexOf('@'); at !== -1; at = t.indexOf('@', at + 1)) {
    let start = at;
    while (start > from && at - start <= 64 && localChar(t.charCodeAt(start - 1))) start--;
    // an empty run, one longer than 64 characters, or one that goes on before `from` (the
    // lookbehind fails at every position of it): no address ends at this "@"
    if (start === at || at - start > 64 || (start > 0 && localChar(t.charCodeAt(start - 1)))) continue;
    EMAIL_AT.lastIndex = start;
    const m = EMAIL_AT.exec(t);
    if (!m) continue;
    from = start + m[0].length;
    out.push({ detector: 'pii', type: 'EMAIL', start, end: from });
    at = from - 1;
  }
  return out;
}, '@');

/** E.164: 8-15 digits. */
export function e164Valid(m: RegExpExecArray): boolean {
  const n = phoneDigits(m[0]);
  return n >= 8 && n <= 15;
}

/** A national format: 7-12 digits, and not a date (2024-01-15 has 8 digits in 4-2-2). */
export function nationalValid(m: RegExpExecArray): boolean {
  const n = phoneDigits(m[0]);
  return n >= 7 && n <= 12 && !/^\d{4}-\d{2}-\d{2}$/.test(m[0]);
}

// ---- the digit-based detectors' candidates: one pass over the text, shared ----
// Each of CARD, SSN, IPV4, NATIONAL and E164 was a global expression run over the whole text, each
// tried at every digit (or every position, for those that began with a lookbehind): ~11 µs
// together on the bench's 4 kB business text with ids, dates and amounts, though none matched.
// Now one expression finds the places where any of the digit-started ones can begin (DIGIT_START,
// ~3-4 µs with the checks below, shared by the four detectors through a cache of the last text,
// which it keeps until the next: at most one text), a few character checks per place tell which
// of them can match there, and only those are tried there, as sticky expressions
// over the whole text (their lookbehinds and lookaheads see the real text around the place). A
// global expression's matches are its sticky matches at increasing positions, each search going
// on from the end of the last match (matched, whether its check passed or not): atPlaces() does
// the same over a list of positions that holds every position where the expression can match, so
// the findings are the same (test/unit/guardrails-digit-candidates.test.ts checks it on generated
// texts against the global expressions).
//
// Every match of CARD, SSN, IPV4 and NATIONAL's digit alternatives starts at a digit with no word
// character before it (their lookbehinds), and holds four digits joined by at most single " ./-"
// from there (13 digits with " -" for a card, 3-2 with "- " for an SSN, four numbers with "." for
// an address, 3-3 with ".-" or "0" 1-4 "/ -" 3 for a national number): DIGIT_START. It is written
// to consume those digits (an expression that consumes a fixed pattern of digits is scanned faster
// than one with a lookahead) and the next search starts one character after each place found, so
// no place inside a found one is missed. E.164 starts at a "+", NATIONAL's first form at a "(":
// indexOf finds those.
const DIGIT_START = /\b\d(?:[ ./-]?\d){3}/g;
const CARD_AT = new RegExp(CARD.source, 'y');
const SSN_AT = new RegExp(SSN.source, 'y');
const IPV4_AT = new RegExp(IPV4.source, 'y');
const NATIONAL_AT = new RegExp(NATIONAL.source, 'y');
const E164_AT = new RegExp(E164.source, 'y');

// what each place may start (bits), decided once per place for the four detectors
const MAY_CARD = 1;
const MAY_SSN = 2;
const MAY_IPV4 = 4;
const MAY_NATIONAL = 8;

let placesOf: string | undefined;
let places: number[] = [];
let kinds: number[] = [];

/** Where DIGIT_START matches in `t` (each match's first digit) and one of the four detectors may
 * start (which, in `kinds`), for the last text asked about: the detectors of one policy ask about
 * the same text one after another. */
export function digitStarts(t: string): readonly number[] {
  if (t === placesOf) return places;
  const out: number[] = [];
  const may: number[] = [];
  DIGIT_START.lastIndex = 0;
  for (let m = DIGIT_START.exec(t); m; m = DIGIT_START.exec(t)) {
    const p = m.index;
    const k = (cardAt(t, p) ? MAY_CARD : 0) | (ssnAt(t, p) ? MAY_SSN : 0) | (ipv4At(t, p) ? MAY_IPV4 : 0) | (nationalAt(t, p) ? MAY_NATIONAL : 0);
    if (k) {
      out.push(p);
      may.push(k);
    }
    DIGIT_START.lastIndex = p + 1;
  }
  placesOf = t;
  places = out;
  kinds = may;
  return out;
}

function isDigit(c: number): boolean {
  return c >= 48 && c <= 57;
}

/** [0-9 -]: what a card's first 13 characters are. */
function cardChar(c: number): boolean {
  return (c >= 48 && c <= 57) || c === 32 || c === 45;
}

/** Whether 13 digits joined by at most single spaces or dashes start at p (a card can). The 13
 * characters from p are all digits, spaces or dashes: looked at first at a few of them, which
 * lets most places off (the loop below costs ~2-3 ns a character, ~1.3 µs on the bench's text). */
function cardAt(t: string, p: number): boolean {
  if (!cardChar(t.charCodeAt(p + 12)) || !cardChar(t.charCodeAt(p + 4)) || !cardChar(t.charCodeAt(p + 8))) return false;
  let n = 0;
  for (let i = p; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (isDigit(c)) {
      if (++n >= 13) return true;
    } else if (!((c === 32 || c === 45) && isDigit(t.charCodeAt(i + 1)))) return false;
  }
  return false;
}

/** Three digits and a dash or a space at p (an SSN can start there; DIGIT_START saw the digits). */
function ssnAt(t: string, p: number): boolean {
  const c = t.charCodeAt(p + 3);
  return (c === 45 || c === 32) && isDigit(t.charCodeAt(p + 2)) && isDigit(t.charCodeAt(p + 1));
}

/** A "." after one to three digits at p (an IPv4 address can start there). */
function ipv4At(t: string, p: number): boolean {
  return t.charCodeAt(p + 1) === 46 || t.charCodeAt(p + 2) === 46 || t.charCodeAt(p + 3) === 46;
}

/** NATIONAL's digit forms: three digits and "." or "-", or a "0" and within 2-5 characters " ", "/" or "-". */
function nationalAt(t: string, p: number): boolean {
  const c = t.charCodeAt(p + 3);
  if ((c === 46 || c === 45) && isDigit(t.charCodeAt(p + 1)) && isDigit(t.charCodeAt(p + 2))) return true;
  if (t.charCodeAt(p) !== 48) return false;
  for (let k = 2; k <= 5; k++) {
    const s = t.charCodeAt(p + k);
    if (s === 32 || s === 47 || s === 45) return true;
    if (!isDigit(s)) return false;
  }
  return false;
}

/** The findings of the global expression `re` (given sticky) in t, tried only at `at` (ascending,
 * holding every position where it can match; see above). */
function atPlaces(re: RegExp, t: string, at: readonly number[], type: string, valid?: (m: RegExpExecArray) => boolean): Finding[] {
  const out: Finding[] = [];
  let from = 0;
  for (let i = 0; i < at.length; i++) {
    const p = at[i]!;
    if (p < from) continue;
    re.lastIndex = p;
    const m = re.exec(t);
    if (!m) continue;
    from = p + m[0].length;
    if (valid && !valid(m)) continue;
    out.push({ detector: 'pii', type, start: p, end: from });
  }
  return out;
}

/** The positions of `ch` in t from which `ok` says an expression can start. */
function charPlaces(t: string, ch: string, ok: (t: string, p: number) => boolean): number[] {
  const out: number[] = [];
  for (let p = t.indexOf(ch); p !== -1; p = t.indexOf(ch, p + 1)) if (ok(t, p)) out.push(p);
  return out;
}

/** The places (digitStarts) where what `bit` says may start. */
function placesWhere(t: string, bit: number): number[] {
  const at = digitStarts(t);
  const out: number[] = [];
  for (let i = 0; i < at.length; i++) if (kinds[i]! & bit) out.push(at[i]!);
  return out;
}

/** Two ascending lists as one. */
function merged(a: readonly number[], b: readonly number[]): number[] {
  if (!b.length) return a as number[];
  if (!a.length) return b as number[];
  const out: number[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) out.push(j >= b.length || (i < a.length && a[i]! < b[j]!) ? a[i++]! : b[j++]!);
  return out;
}

export const phone = anchored((t: string): Finding[] => {
  const out = t.indexOf('+') === -1 ? [] : atPlaces(E164_AT, t, charPlaces(t, '+', (s, p) => isDigit(s.charCodeAt(p + 1))), 'PHONE', e164Valid);
  const parens = t.indexOf('(') === -1 ? [] : charPlaces(t, '(', (s, p) => isDigit(s.charCodeAt(p + 1)));
  const national = atPlaces(NATIONAL_AT, t, merged(placesWhere(t, MAY_NATIONAL), parens), 'PHONE', nationalValid);
  for (let i = 0; i < national.length; i++) out.push(national[i]!);
  return out;
}, DIGITS);

/** Whether some ":" is followed, within five characters that are all hex digits, by another ":"
 * (every IPv6 match holds such a pair): indexOf from colon to colon, not an expression tried at
 * every position of a text with a colon in it. */
export function colonPair(t: string): boolean {
  for (let at = t.indexOf(':'); at !== -1; ) {
    const next = t.indexOf(':', at + 1);
    if (next === -1) return false;
    if (next - at <= 5) {
      let hex = true;
      for (let i = at + 1; i < next && hex; i++) {
        const c = t.charCodeAt(i) | 32;
        hex = (c >= 48 && c <= 57) || (c >= 97 && c <= 102);
      }
      if (hex) return true;
    }
    at = next;
  }
  return false;
}

export const card = anchored((t: string): Finding[] => atPlaces(CARD_AT, t, placesWhere(t, MAY_CARD), 'CARD', cardValid), DIGITS);
export const iban = anchored((t: string): Finding[] => matchAll(IBAN, t, 'pii', 'IBAN', (m) => ibanValid(m[0])), DIGITS);
export const ssn = anchored((t: string): Finding[] => atPlaces(SSN_AT, t, placesWhere(t, MAY_SSN), 'SSN'), DIGITS);
export const ip = anchored((t: string): Finding[] => {
  const out = atPlaces(IPV4_AT, t, placesWhere(t, MAY_IPV4), 'IP', (m) => ipv4Valid(t, m));
  // every IPv6 match holds two colons at most four hex digits apart: a cheap search first (the
  // full pattern tries every position of a text with a colon, ~15 µs on 4 kB of prose)
  if (colonPair(t))
    out.push(
      ...matchAll(IPV6, t, 'pii', 'IP', (m) => {
        const s = m[0];
        // at least three groups with digits: not "a::b"-like C++ scopes or a clock time
        return isIPv6(s) && (s.match(/[0-9A-Fa-f]+/g)?.length ?? 0) >= 3 && /\d/.test(s);
      }),
    );
  return out;
}, DIGITS); // an IPv6 address counts only with a digit in it

export const PII = { email, phone, card, iban, ssn, ip } as const;
