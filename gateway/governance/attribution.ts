// Attribution a caller adds to its requests: free-form tags (x-airlock-tags: k=v,k2=v2) and a
// lower priority (x-airlock-priority: batch). Bad values are a 400 that names the problem.
import { badRequest } from '../engine/errors.js';
import type { Priority } from '../config/governance-schema.js';

export const MAX_TAGS = 10;
export const MAX_TAG_CHARS = 64;
const TAG_KEY_RE = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
// printable ASCII but the separators
const TAG_VALUE_RE = /^[\x20-\x7e]*$/;

type Headers = Record<string, string | string[] | undefined>;
const one = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join(',') : v);

/** The request's tags, or undefined when it sends none. */
export function parseTags(headers: Headers): Record<string, string> | undefined {
  const raw = one(headers['x-airlock-tags']);
  if (raw === undefined || raw.trim() === '') return undefined;
  const bad = (why: string) => badRequest(`Invalid x-airlock-tags header: ${why}. Send "key=value" pairs separated by commas, e.g. "project=alpha,env=prod".`, 'x-airlock-tags');
  const parts = raw.split(',').map((p) => p.trim());
  if (parts.length > MAX_TAGS) throw bad(`${parts.length} tags, at most ${MAX_TAGS} are allowed`);
  const tags: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const p of parts) {
    if (p === '') throw bad('an empty tag (two commas in a row, or a trailing comma)');
    if (p.length > MAX_TAG_CHARS) throw bad(`the tag "${p.slice(0, 20)}…" is ${p.length} characters long, at most ${MAX_TAG_CHARS} are allowed`);
    const eq = p.indexOf('=');
    if (eq < 0) throw bad(`the tag "${p}" has no "="`);
    const k = p.slice(0, eq).trim();
    const v = p.slice(eq + 1).trim();
    if (!TAG_KEY_RE.test(k)) throw bad(`the tag key "${k}" must start with a letter or digit and contain only letters, digits, ".", "_", ":", "/" or "-"`);
    if (!TAG_VALUE_RE.test(v) || v.includes('=')) throw bad(`the value of tag "${k}" may contain only printable ASCII characters other than "=" and ","`);
    if (k in tags) throw bad(`the tag "${k}" is given twice`);
    tags[k] = v;
  }
  return { ...tags };
}

/** The priority a caller asks for; undefined: the key's own. */
export function parsePriority(headers: Headers): Priority | undefined {
  const raw = one(headers['x-airlock-priority'])?.trim().toLowerCase();
  if (raw === undefined || raw === '') return undefined;
  if (raw !== 'batch' && raw !== 'interactive') throw badRequest(`Invalid x-airlock-priority header "${raw.slice(0, 40)}": must be "interactive" or "batch".`, 'x-airlock-priority');
  return raw;
}
