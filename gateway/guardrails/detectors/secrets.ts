// Secrets: cloud access keys, PEM private keys, platform tokens (GitHub, Slack, Stripe), JWTs,
// sk-style API keys (Airlock's own included), and high-entropy values in key-like contexts
// (`api_key = ...`, `"password": "..."`).
import { anchored, entropy, matchAll, type Finding } from './types.js';

const AWS_KEY_ID = /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/g;
const GCP_KEY = /(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])/g;
const AZURE_KEY = /AccountKey=[A-Za-z0-9+/]{86}==/g;
// a PEM private key: the header through the footer, or (footer not there yet) to the end of the text
const PEM = /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*$)/g;
const GITHUB = /(?<![A-Za-z0-9_])(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])/g;
const SLACK = /(?<![A-Za-z0-9-])xox[abposr]-(?:\d+-)+[A-Za-z0-9]{10,48}(?![A-Za-z0-9-])|https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]{6,12}\/B[A-Z0-9]{6,12}\/[A-Za-z0-9]{20,32}/g;
const STRIPE = /(?<![A-Za-z0-9_])(?:sk|rk)_live_[A-Za-z0-9]{20,99}(?![A-Za-z0-9_])/g;
const JWT = /(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![\w-])/g;
const SK = /(?<![\w-])sk-(?:airlock-|proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,200}(?![\w-])/g;
// key-like names, then = or :, then the value (quoted or not); the value is what is reported
const KEYLIKE =
  /(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key|auth[_-]?token|access[_-]?token|refresh[_-]?token|client[_-]?secret|password|passwd|pwd|private[_-]?key|token|bearer)["']?\s*(?:[:=]|=>)\s*["']?(?:Bearer\s+)?([A-Za-z0-9+/_.~=-]{16,256})/dgi;

function jwtValid(m: RegExpExecArray): boolean {
  try {
    const header = JSON.parse(Buffer.from(m[0].slice(0, m[0].indexOf('.')), 'base64url').toString('utf8')) as unknown;
    return !!header && typeof header === 'object' && 'alg' in header;
  } catch {
    return false;
  }
}

/** Random-looking: letters and digits mixed, and enough bits per character. */
export function looksRandom(s: string, minEntropy = 3.5): boolean {
  if (!/\d/.test(s) || !/[A-Za-z]/.test(s)) return false;
  return entropy(s) >= minEntropy;
}

// (anchors, the prefilter: AKIA/ASIA/ABIA/ACCA, AIza and AccountKey= all hold an "A"; a PEM header,
// an sk- key and a Slack token a "-"; GitHub and Stripe tokens a "_", a Slack webhook a "/"; a JWT
// "eyJ"; a key-like assignment its ":" or "=")
//
// Past the anchors, each expression runs only when the literal text every match of it holds is
// there. That text is looked for from its rarest character: indexOf of a string whose first
// character is common in prose ("sk-", "eyJ", "-----BEGIN" among dashes, "hooks.slack.com") stops
// at each occurrence of that character, ~0.8-1.8 µs each on the bench's 4 kB business text, where
// indexOf of "J", "BEGIN" or a loop over the few "A", "-" or "_" takes 0.05-0.4 µs.

/** Whether `before` stands just before some `ch` in t (from the positions of ch, found with indexOf). */
export function before(t: string, ch: string, prefix: string): boolean {
  for (let i = t.indexOf(ch); i !== -1; i = t.indexOf(ch, i + 1)) if (i >= prefix.length && t.startsWith(prefix, i - prefix.length)) return true;
  return false;
}

const AWS = 1;
const GCP = 2;
const AZURE = 4;

/** Which of the cloud keys' literal prefixes t holds (AKIA/ASIA/ABIA/ACCA, AIza, AccountKey=): one loop over its "A"s. */
export function cloudPrefixes(t: string): number {
  let found = 0;
  for (let i = t.indexOf('A'); i !== -1; i = t.indexOf('A', i + 1)) {
    const c = t.charCodeAt(i + 1);
    if ((c === 75 || c === 83 || c === 66) && t.startsWith('IA', i + 2)) found |= AWS; // AKIA ASIA ABIA
    else if (c === 67 && t.startsWith('CA', i + 2)) found |= AWS; // ACCA
    else if (c === 73 && t.startsWith('za', i + 2)) found |= GCP; // AIza
    else if (c === 99 && t.startsWith('countKey=', i + 2)) found |= AZURE;
  }
  return found;
}

/** Whether a GitHub token's prefix (ghp_ gho_ ghu_ ghs_ ghr_, github_pat_) is in t: from its "_"s. */
export function githubPrefix(t: string): boolean {
  for (let i = t.indexOf('_'); i !== -1; i = t.indexOf('_', i + 1)) {
    if (i >= 3 && t.charCodeAt(i - 3) === 103 && t.charCodeAt(i - 2) === 104 && 'pousr'.includes(t[i - 1]!)) return true;
    if (i >= 6 && t.startsWith('github_pat_', i - 6)) return true;
  }
  return false;
}

export const cloudKeys = anchored((t: string): Finding[] => {
  const has = cloudPrefixes(t);
  if (!has) return [];
  return [
    ...(has & AWS ? matchAll(AWS_KEY_ID, t, 'secrets', 'AWS_KEY') : []),
    ...(has & GCP ? matchAll(GCP_KEY, t, 'secrets', 'GCP_KEY') : []),
    ...(has & AZURE ? matchAll(AZURE_KEY, t, 'secrets', 'AZURE_KEY') : []),
  ];
}, 'A');
export const privateKeys = anchored((t: string): Finding[] => (t.indexOf('BEGIN') === -1 || t.indexOf('-----BEGIN') === -1 ? [] : matchAll(PEM, t, 'secrets', 'PRIVATE_KEY')), '-');
export const platformTokens = anchored(
  (t: string): Finding[] => [
    ...(!githubPrefix(t) ? [] : matchAll(GITHUB, t, 'secrets', 'GITHUB_TOKEN')),
    ...(t.indexOf('xox') === -1 && (t.indexOf('://') === -1 || t.indexOf('hooks.slack.com') === -1) ? [] : matchAll(SLACK, t, 'secrets', 'SLACK_TOKEN')),
    ...(t.indexOf('_live_') === -1 ? [] : matchAll(STRIPE, t, 'secrets', 'STRIPE_KEY')),
  ],
  '_-/',
);
export const jwt = anchored((t: string): Finding[] => (!before(t, 'J', 'ey') ? [] : matchAll(JWT, t, 'secrets', 'JWT', jwtValid)), 'J');
export const skKeys = anchored(
  (t: string): Finding[] => (!before(t, '-', 'sk') ? [] : matchAll(SK, t, 'secrets', 'API_KEY', (m) => m[0].startsWith('sk-airlock-') || looksRandom(m[0].slice(3), 3.2))),
  '-',
);
/** A KEYLIKE value's characters: [A-Za-z0-9+/_.~=-]. */
function valueChar(c: number): boolean {
  return (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 43 || c === 47 || c === 95 || c === 46 || c === 126 || c === 61 || c === 45;
}

const SPACE = /\s/;

/** \s, without an expression for ASCII. */
function space(t: string, i: number): boolean {
  const c = t.charCodeAt(i);
  return c === 32 || (c >= 9 && c <= 13) || (c > 127 && SPACE.test(t[i]!));
}

function skipSpace(t: string, i: number): number {
  while (i < t.length && space(t, i)) i++;
  return i;
}

/** Whether 16 value characters start at i. */
function longValueAt(t: string, i: number): boolean {
  if (i + 16 > t.length) return false;
  for (let n = 0; n < 16; n++) if (!valueChar(t.charCodeAt(i + n))) return false;
  return true;
}

/** Whether some ":" or "=" (or "=>") is followed, past white space, a quote and a "Bearer ", by
 * the 16 value characters a KEYLIKE match needs after it. Business text is full of "=" and ":"
 * (times, key=value with short values), and KEYLIKE, a case-insensitive alternation of key names
 * tried at every position, is the slowest of the secrets' expressions; most texts are let off by
 * this look at the few characters after each "=" and ":" (found with indexOf). */
export function assignsLongValue(t: string): boolean {
  return assignsAfter(t, ':') || assignsAfter(t, '=');
}

function assignsAfter(t: string, sign: string): boolean {
  for (let at = t.indexOf(sign); at !== -1; at = t.indexOf(sign, at + 1)) {
    let i = at + 1;
    if (t.charCodeAt(i) === 62 && sign === '=') i++; // "=>"
    i = skipSpace(t, i);
    const q = t.charCodeAt(i);
    if (q === 34 || q === 39) i++;
    if (longValueAt(t, i)) return true;
    // "Bearer" and white space before the value (the expression's optional part, any case)
    if ((t.charCodeAt(i) | 32) === 98 && i + 6 < t.length && space(t, i + 6) && t.slice(i, i + 6).toLowerCase() === 'bearer' && longValueAt(t, skipSpace(t, i + 6))) return true;
  }
  return false;
}

export const keyLike = anchored((t: string): Finding[] => (assignsLongValue(t) ? matchAll(KEYLIKE, t, 'secrets', 'SECRET', (m) => looksRandom(m[1]!), 1) : []), ':=');

export const SECRETS = { cloud_keys: cloudKeys, private_keys: privateKeys, platform_tokens: platformTokens, jwt, sk_keys: skKeys, keylike_entropy: keyLike } as const;
