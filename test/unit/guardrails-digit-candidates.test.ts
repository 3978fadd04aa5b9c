// The digit-based PII detectors (phone, card, SSN, IPv4) try their expressions only where one
// shared pass says one can start (pii.ts, DIGIT_START): their findings must be those of the global
// expressions run over the whole text, as they were before. The old expressions are kept here as
// the reference and run with the same checks, over generated texts: digits, separators, letters,
// country codes, and valid card numbers, IBANs, SSNs, phone numbers and addresses at random
// places, at the start and at the end of a text.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PII, cardValid, digitStarts, e164Valid, ipv4Valid, nationalValid } from '../../gateway/guardrails/detectors/pii.js';
import { matchAll, type Finding } from '../../gateway/guardrails/detectors/types.js';
import { Rng } from '../helpers/random.js';

// the expressions as they were run before (global, over the whole text)
const E164 = /(?<![\w+])\+[1-9](?:[ .-]?\(?\d\)?){6,14}(?![\d])/g;
const NATIONAL = /(?<![\w.+-])(?:\(\d{2,5}\)[ ]?\d{3,4}[ .-]\d{3,4}|\d{3}[.-]\d{3}[.-]\d{4}|0\d{1,4}[ /-]\d{3,4}[ -]?\d{2,5}|0\d{1,4}[ /-]\d{6,8})(?![\w-]|\.\d)/g;
const CARD = /(?<![\w-])(?:\d[ -]?){12,18}\d(?![\w-])/g;
const SSN = /(?<![\w-])(?!000|666|9\d\d)\d{3}([- ])(?!00)\d{2}\1(?!0000)\d{4}(?![\w-])/g;
const IPV4 = /(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\w]|\.\d)/g;

function reference(t: string): Record<string, Finding[]> {
  const ipv4 = matchAll(IPV4, t, 'pii', 'IP', (m) => ipv4Valid(t, m));
  return {
    phone: [...matchAll(E164, t, 'pii', 'PHONE', e164Valid), ...matchAll(NATIONAL, t, 'pii', 'PHONE', nationalValid)],
    card: matchAll(CARD, t, 'pii', 'CARD', cardValid),
    ssn: matchAll(SSN, t, 'pii', 'SSN'),
    // (the IPv6 part of the ip detector is unchanged: compared without it, on texts without ":")
    ip: ipv4,
  };
}

/** Every match, checks aside: the places the expressions would have to be tried at. */
function rawSpans(t: string): string {
  return [E164, NATIONAL, CARD, SSN, IPV4].map((re) => [...t.matchAll(re)].map((m) => `${m.index}+${m[0].length}`).join(',')).join(' | ');
}

const VALID = [
  '4111 1111 1111 1111',
  '4111111111111111',
  '5500-0000-0000-0004',
  '3782-822463-10005',
  '378282246310005',
  '6011000990139424',
  '2223003122003222',
  '4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1',
  '123-45-6789',
  '078 05 1120',
  '219-09-9999',
  '+14155552671',
  '+49 30 12345678',
  '+1 (415) 555-2671',
  '+44.20.7946.0958',
  '(415) 555-2671',
  '(030)1234-5678',
  '415-555-2671',
  '415.555.2671',
  '030 1234 5678',
  '06-12345678',
  '0171 1234567',
  '030/123456',
  '192.168.0.1',
  '10.0.0.255',
  '255.255.255.255',
  '8.8.8.8',
  'DE89370400440532013000',
  'GB82 WEST 1234 5698 7654 32',
  'FR1420041010050500013M02606',
];
const NOISE = ['0', '1', '12', '123', '1234', '00', '000', '666', '999', '2026-11-30', '14:05', '2.3.1', '18,430.50', 'v', 'version ', 'build', 'x', 'Ab', 'DE', 'GB', 'ZZ', '_', 'é', '\n', '\t'];
const SEPARATORS = [' ', '-', '.', '/', '(', ')', '+', '  ', '--', ' - '];

function text(rng: Rng): string {
  let s = '';
  const n = rng.range(1, 14);
  for (let j = 0; j < n; j++) {
    const r = rng.float();
    if (r < 0.12) s += rng.pick(VALID);
    else if (r < 0.45) s += rng.pick(SEPARATORS);
    else if (r < 0.6) s += rng.pick(NOISE);
    else if (r < 0.85) {
      // a random run of digits (1-19 of them)
      const len = rng.logInt(1, 19);
      for (let k = 0; k < len; k++) s += String(rng.int(10));
    } else s += String.fromCharCode(rng.chance(0.5) ? 65 + rng.int(26) : 97 + rng.int(26));
  }
  return s;
}

test('digit-based PII: the same findings as the global expressions, on 60,000 generated texts', () => {
  const rng = new Rng(1010);
  const counts: Record<string, number> = { phone: 0, card: 0, ssn: 0, ip: 0 };
  for (let i = 0; i < 60000; i++) {
    const t = text(rng);
    const want = reference(t);
    const got: Record<string, Finding[]> = { phone: PII.phone(t), card: PII.card(t), ssn: PII.ssn(t), ip: PII.ip(t) };
    if (t.includes(':')) got.ip = got.ip!.filter((f) => !t.slice(f.start, f.end).includes(':'));
    for (const k of Object.keys(want)) {
      assert.deepEqual(got[k], want[k], `${k} in ${JSON.stringify(t)} (raw matches ${rawSpans(t)}; places ${digitStarts(t).join(',')})`);
      counts[k]! += want[k]!.length;
    }
  }
  // the generated texts hold findings of every kind (and near misses: rejected by the checks)
  for (const [k, n] of Object.entries(counts)) assert.ok(n > 500, `${k}: ${n} findings`);
});

test('digit-based PII: the same findings on long texts (places across the whole text, the one-text cache)', () => {
  const rng = new Rng(77);
  for (let i = 0; i < 400; i++) {
    let t = '';
    while (t.length < 2000) t += text(rng) + rng.pick([' ', '. ', '\n', ', ', 'x']);
    const want = reference(t);
    // twice: the second call is answered from the cache of places
    for (let round = 0; round < 2; round++) {
      const got: Record<string, Finding[]> = { phone: PII.phone(t), card: PII.card(t), ssn: PII.ssn(t), ip: PII.ip(t) };
      if (t.includes(':')) got.ip = got.ip!.filter((f) => !t.slice(f.start, f.end).includes(':'));
      for (const k of Object.keys(want)) assert.deepEqual(got[k], want[k], `${k} in text ${i}`);
    }
    // another text of the same length in between: the cache is not mistaken for it
    const other = t.replace(/\d/g, (d) => String((Number(d) + 1) % 10));
    assert.deepEqual(PII.card(other), reference(other).card);
  }
});
