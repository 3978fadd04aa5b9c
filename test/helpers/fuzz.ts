// Tools for the security fuzz and fault suite (test/integration/security-fuzz.test.ts): a seeded
// PRNG, a JSON builder that can write what JSON.stringify cannot (duplicate keys, raw bytes,
// nesting deeper than the stack, numbers out of range), body and header mutators, a raw-socket
// HTTP/1.1 exchange with a small response parser, /proc readings, and an endless streaming
// upstream that honours backpressure and counts what the gateway took from it. (The PRNG lives in
// random.ts, with the random chunking the streaming tests share.)
import http from 'node:http';
import net from 'node:net';
import fs from 'node:fs';
import type { AddressInfo } from 'node:net';
import { Rng } from './random.js';

// ---------------------------------------------------------------------------------------------
// Seeded randomness: every case is generated from (seed, stream, index), so one case can be
// regenerated alone from the numbers a failure prints.

export { Rng };

/** The seed of case `index` of a named stream of cases. */
export function caseSeed(seed: number, stream: string, index: number): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  const s = `${stream}#${index}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  // splitmix-style finaliser
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

// ---------------------------------------------------------------------------------------------
// A JSON document that may be invalid on purpose. Objects keep their entries as a list (so a key
// can appear twice, or be "__proto__"); Raw is written verbatim (deep nesting, invalid UTF-8,
// numbers JSON.parse turns into Infinity, bare control characters).

export class JObj {
  constructor(public entries: [string, J][]) {}
}
export class Raw {
  constructor(
    public bytes: Buffer,
    public label: string,
  ) {}
}
export type J = null | boolean | number | string | J[] | JObj | Raw;

export function toJ(v: unknown): J {
  if (v === null || typeof v === 'boolean' || typeof v === 'number' || typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(toJ);
  if (v instanceof JObj || v instanceof Raw) return v;
  if (typeof v === 'object') return new JObj(Object.entries(v as Record<string, unknown>).filter(([, x]) => x !== undefined).map(([k, x]) => [k, toJ(x)]));
  return null;
}

export function serialize(j: J): Buffer {
  const parts: Buffer[] = [];
  let text = '';
  const flush = () => {
    if (text) parts.push(Buffer.from(text, 'utf8'));
    text = '';
  };
  const walk = (v: J): void => {
    if (v instanceof Raw) {
      flush();
      parts.push(v.bytes);
    } else if (v instanceof JObj) {
      text += '{';
      v.entries.forEach(([k, x], i) => {
        if (i) text += ',';
        text += JSON.stringify(k) + ':';
        walk(x);
      });
      text += '}';
    } else if (Array.isArray(v)) {
      text += '[';
      v.forEach((x, i) => {
        if (i) text += ',';
        walk(x);
      });
      text += ']';
    } else if (typeof v === 'number') {
      text += Number.isFinite(v) ? (Object.is(v, -0) ? '-0' : String(v)) : 'null';
    } else {
      text += JSON.stringify(v);
    }
  };
  walk(j);
  flush();
  return Buffer.concat(parts);
}

/** A place in the document that can be read and replaced. */
interface Slot {
  path: string;
  get(): J;
  set(v: J): void;
  /** the object holding it, when it is an entry of one */
  owner?: JObj;
  index?: number;
}

function slotsOf(holder: { v: J }, limit = 2000): Slot[] {
  const out: Slot[] = [{ path: '$', get: () => holder.v, set: (v) => (holder.v = v) }];
  const queue: { v: J; path: string }[] = [{ v: holder.v, path: '$' }];
  while (queue.length && out.length < limit) {
    const { v, path } = queue.shift()!;
    if (v instanceof JObj) {
      v.entries.forEach((e, i) => {
        const p = `${path}.${e[0]}`;
        out.push({ path: p, get: () => e[1], set: (x) => (e[1] = x), owner: v, index: i });
        queue.push({ v: e[1], path: p });
      });
    } else if (Array.isArray(v)) {
      v.forEach((x, i) => {
        const p = `${path}[${i}]`;
        out.push({ path: p, get: () => v[i]!, set: (y) => (v[i] = y) });
        queue.push({ v: x, path: p });
      });
    }
  }
  return out;
}

function objectsOf(holder: { v: J }): { obj: JObj; path: string }[] {
  const out: { obj: JObj; path: string }[] = [];
  for (const s of slotsOf(holder)) {
    const v = s.get();
    if (v instanceof JObj) out.push({ obj: v, path: s.path });
  }
  return out;
}

const raw = (s: string | Buffer, label = typeof s === 'string' ? s : 'bytes') => new Raw(typeof s === 'string' ? Buffer.from(s, 'latin1') : s, label);

/** Values of every JSON type, and a few that are not JSON at all. */
function oddValue(rng: Rng): J {
  return rng.pick<() => J>([
    () => null,
    () => true,
    () => false,
    () => 0,
    () => -1,
    () => 3.5,
    () => '',
    () => 'x',
    () => [],
    () => new JObj([]),
    () => [null],
    () => [[]],
    () => new JObj([['a', 1]]),
    () => [1, 'two', false, null, new JObj([])],
    () => raw('1e400'),
    () => raw('-1e400'),
    () => raw('123456789012345678901234567890'),
    () => -0,
    () => 2 ** 53, // past Number.MAX_SAFE_INTEGER (the literal 9007199254740993 is this double)
    () => 1.7976931348623157e308,
  ])();
}

const UNICODE = [
  '\ud800',
  '\udfff',
  'a\ud800b\udc00c',
  '\ud83d\ude00\ud83d\udc4d',
  '\u202eevil\u202c',
  'zero\u200bwidth\u200d',
  '\ufeffbom',
  'line\u2028sep\u2029',
  'e\u0301\u0301\u0301\u0301',
  '\uffff\ufffe',
  '\u001b[31mred\u001b[0m',
  'Ｆｕｌｌｗｉｄｔｈ',
  'ᚠᛇᚻ᛫ᛒᛦᚦ',
  '\u0000',
  'a\u0000b',
  '\r\n\r\nGET / HTTP/1.1\r\n',
  '%00%ff%2e%2e%2f',
  '../../../../etc/passwd',
  "'; DROP TABLE ledger; --",
  '<script>alert(1)</script>',
  '${env:AIRLOCK_ADMIN_TOKEN}',
  '{{7*7}}',
];

const BAD_UTF8: number[][] = [
  [0xff],
  [0xfe, 0xff],
  [0xc0, 0xaf],
  [0xe0, 0x80, 0xaf],
  [0xed, 0xa0, 0x80],
  [0xf8, 0x88, 0x80, 0x80, 0x80],
  [0xc3],
  [0x80],
  [0xf4, 0x90, 0x80, 0x80],
  [0xe2, 0x82],
];

const OUT_OF_RANGE: (() => J)[] = [
  () => raw('1e400'),
  () => raw('-1e400'),
  () => raw('1e-400'),
  () => raw('123456789012345678901234567890'),
  () => raw('-123456789012345678901234567890.5e10'),
  () => -1,
  () => 0,
  () => -0,
  () => 2 ** 31,
  () => -(2 ** 31) - 1,
  () => 2 ** 32,
  () => 2 ** 53 + 2,
  () => 1e308,
  () => -1e308,
  () => 0.1,
  () => 1e-300,
  // not JSON at all
  () => raw('NaN'),
  () => raw('Infinity'),
  () => raw('0x10'),
  () => raw('01'),
  () => raw('1.'),
  () => raw('.5'),
  () => raw('+1'),
];

/** Nesting `depth` levels deep, written directly (JSON.stringify of it would overflow the stack). */
export function deepText(depth: number, kind: 'array' | 'object' | 'mixed', leaf = '"deep"'): Buffer {
  if (kind === 'array') return Buffer.from('['.repeat(depth) + leaf + ']'.repeat(depth));
  if (kind === 'object') return Buffer.from('{"a":'.repeat(depth) + leaf + '}'.repeat(depth));
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    if (i % 2) {
      open += '{"content":';
      close = '}' + close;
    } else {
      open += '[';
      close = ']' + close;
    }
  }
  return Buffer.from(open + leaf + close);
}

export interface MutateOptions {
  /** largest generated string, in characters */
  hugeMax: number;
  /** probability of a string larger than the body limit */
  oversizeChance: number;
  oversizeBytes: number;
  /** deepest generated nesting */
  deepMax: number;
}

type Mutation = (rng: Rng, holder: { v: J }, o: MutateOptions) => string | undefined;

function pickSlot(rng: Rng, holder: { v: J }, filter?: (v: J) => boolean): Slot | undefined {
  const all = slotsOf(holder).filter((s) => (filter ? filter(s.get()) : true));
  return all.length ? rng.pick(all) : undefined;
}

const MUTATIONS: [string, number, Mutation][] = [
  [
    'wrong-type',
    6,
    (rng, h) => {
      const s = pickSlot(rng, h);
      if (!s) return undefined;
      const v = oddValue(rng);
      s.set(v);
      return `${s.path}=${describeJ(v)}`;
    },
  ],
  [
    'remove-field',
    4,
    (rng, h) => {
      const objs = objectsOf(h).filter((o) => o.obj.entries.length > 0);
      if (!objs.length) return undefined;
      const o = rng.pick(objs);
      const i = rng.int(o.obj.entries.length);
      const [k] = o.obj.entries.splice(i, 1)[0]!;
      return `${o.path}.${k}`;
    },
  ],
  [
    'huge-string',
    2,
    (rng, h, o) => {
      const s = pickSlot(rng, h, (v) => typeof v === 'string') ?? pickSlot(rng, h);
      if (!s) return undefined;
      const n = rng.chance(o.oversizeChance) ? o.oversizeBytes : rng.logInt(1000, o.hugeMax);
      const ch = rng.pick(['a', ' ', '€', '😀', '\\u0000', '"']);
      // built as raw text: a string of n characters is n × the escape for the odd ones
      const unit = ch === '\\u0000' ? '\\u0000' : ch === '"' ? '\\"' : ch;
      s.set(raw(Buffer.from('"' + unit.repeat(n) + '"', 'utf8'), `"${ch}"×${n}`));
      return `${s.path}="${ch}"×${n}`;
    },
  ],
  [
    'huge-array',
    1,
    (rng, h) => {
      const s = pickSlot(rng, h);
      if (!s) return undefined;
      const n = rng.logInt(100, 200_000);
      const item = rng.pick(['0', '"x"', '{}', '{"role":"user","content":"x"}', 'null']);
      s.set(raw(Buffer.from('[' + Array(n).fill(item).join(',') + ']'), `[${item}×${n}]`));
      return `${s.path}=[${item}×${n}]`;
    },
  ],
  [
    'deep-nesting',
    3,
    (rng, h, o) => {
      const s = pickSlot(rng, h);
      if (!s) return undefined;
      // half shallow-ish, half deep enough to overflow a recursive walk of the document
      const depth = rng.chance(0.5) ? rng.logInt(8, Math.min(300, o.deepMax)) : rng.range(Math.min(1000, o.deepMax), o.deepMax);
      const kind = rng.pick(['array', 'object', 'mixed'] as const);
      s.set(raw(deepText(depth, kind), `${kind}×${depth}`));
      return `${s.path}=${kind} nested ${depth} deep`;
    },
  ],
  [
    'unicode',
    3,
    (rng, h) => {
      const s = pickSlot(rng, h, (v) => typeof v === 'string') ?? pickSlot(rng, h);
      if (!s) return undefined;
      const u = rng.pick(UNICODE);
      s.set(u);
      return `${s.path}=${JSON.stringify(u)}`;
    },
  ],
  [
    'invalid-utf8',
    3,
    (rng, h) => {
      const s = pickSlot(rng, h, (v) => typeof v === 'string') ?? pickSlot(rng, h);
      if (!s) return undefined;
      const bad = rng.pick(BAD_UTF8);
      s.set(raw(Buffer.concat([Buffer.from('"a'), Buffer.from(bad), Buffer.from('b"')]), `bytes ${hex(Buffer.from(bad))}`));
      return `${s.path}="a<${hex(Buffer.from(bad))}>b"`;
    },
  ],
  [
    'nul',
    2,
    (rng, h) => {
      const s = pickSlot(rng, h, (v) => typeof v === 'string') ?? pickSlot(rng, h);
      if (!s) return undefined;
      if (rng.chance(0.5)) {
        s.set('a\u0000b');
        return `${s.path}="a\\u0000b"`;
      }
      s.set(raw(Buffer.from([0x22, 0x61, 0x00, 0x62, 0x22]), 'bare NUL in string'));
      return `${s.path}="a<00>b" (bare NUL byte)`;
    },
  ],
  [
    'duplicate-key',
    3,
    (rng, h) => {
      const objs = objectsOf(h).filter((o) => o.obj.entries.length > 0);
      if (!objs.length) return undefined;
      const o = rng.pick(objs);
      const [k] = rng.pick(o.obj.entries);
      const v = oddValue(rng);
      if (rng.chance(0.5)) o.obj.entries.push([k, v]);
      else o.obj.entries.unshift([k, v]);
      return `${o.path}.${k} twice (other value ${describeJ(v)})`;
    },
  ],
  [
    'number-out-of-range',
    3,
    (rng, h) => {
      const s = pickSlot(rng, h, (v) => typeof v === 'number') ?? pickSlot(rng, h);
      if (!s) return undefined;
      const v = rng.pick(OUT_OF_RANGE)();
      s.set(v);
      return `${s.path}=${describeJ(v)}`;
    },
  ],
  [
    'proto-key',
    3,
    (rng, h) => {
      const objs = objectsOf(h);
      if (!objs.length) return undefined;
      const o = rng.pick(objs);
      const e = rng.pick<[string, J]>([
        ['__proto__', new JObj([['isAdmin', true], ['role', 'owner']])],
        ['__proto__', null],
        ['constructor', new JObj([['prototype', new JObj([['polluted', true]])]])],
        ['constructor', 'x'],
        ['prototype', new JObj([])],
        ['hasOwnProperty', 1],
        ['toString', 'x'],
      ]);
      o.obj.entries.splice(rng.int(o.obj.entries.length + 1), 0, e);
      return `${o.path}.${e[0]}=${describeJ(e[1])}`;
    },
  ],
  [
    'extra-field',
    2,
    (rng, h) => {
      const objs = objectsOf(h);
      if (!objs.length) return undefined;
      const o = rng.pick(objs);
      const k = rng.pick(['x_unknown', '', ' ', 'a'.repeat(5000), '\u0000', 'name ', 'NAME', 'model\u0000']);
      const v = oddValue(rng);
      o.obj.entries.push([k, v]);
      return `${o.path}[${JSON.stringify(k.length > 20 ? `${k[0]}×${k.length}` : k)}]=${describeJ(v)}`;
    },
  ],
  [
    'array-for-object',
    2,
    (rng, h) => {
      const s = pickSlot(rng, h, (v) => v instanceof JObj);
      if (!s) return undefined;
      const obj = s.get() as JObj;
      if (rng.chance(0.5)) s.set([obj]);
      else s.set(obj.entries.map((e) => e[1]));
      return `${s.path} as an array`;
    },
  ],
];

const TOTAL_WEIGHT = MUTATIONS.reduce((n, m) => n + m[1], 0);

function pickMutation(rng: Rng): [string, Mutation] {
  let x = rng.int(TOTAL_WEIGHT);
  for (const [name, w, f] of MUTATIONS) {
    if (x < w) return [name, f];
    x -= w;
  }
  return [MUTATIONS[0]![0], MUTATIONS[0]![2]];
}

export function describeJ(v: J): string {
  if (v instanceof Raw) return v.label;
  const s = serialize(v).toString('utf8');
  return s.length > 60 ? s.slice(0, 57) + '...' : s;
}

/** A valid body with exactly the named mutations, none at the root (the document stays an
 * object the gateway can route); JSON content type, no byte-level change. */
export function mutateWith(rng: Rng, base: unknown, names: string[], o: MutateOptions): GeneratedBody {
  for (let tries = 0; ; tries++) {
    const holder = { v: toJ(structuredClone(base)) };
    const notes: string[] = [];
    for (const name of names) {
      const m = MUTATIONS.find((x) => x[0] === name);
      if (!m) throw new Error(`no mutation named ${name}`);
      const what = m[2](rng, holder, o);
      if (what !== undefined) notes.push(`${name}: ${what}`);
    }
    if (holder.v instanceof JObj || tries >= 20) return { body: serialize(holder.v), contentType: 'application/json', notes };
  }
}

export const JSON_TYPES = ['application/json', 'application/json; charset=utf-8'] as const;
/** content types that are clearly not JSON */
export const NON_JSON_TYPES = ['text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=xyz', 'application/xml', 'application/octet-stream'] as const;
/** content types a server might or might not take for JSON */
export const ODD_TYPES = ['APPLICATION/JSON', 'application/json; charset=utf-16', 'application/json;;;', 'application/jsonx', 'application/json-patch+json', 'application/vnd.api+json', 'json', '*/*', 'application/json, text/plain', 'text/json'] as const;

export interface GeneratedBody {
  /** undefined: no body at all */
  body: Buffer | undefined;
  contentType: string | undefined;
  notes: string[];
}

/** A mutated form of a valid body: 1-3 structural mutations, sometimes a byte-level one, sometimes another content type. */
export function mutateBody(rng: Rng, base: unknown, o: MutateOptions, typeChoices: { nonJson: boolean; odd: boolean } = { nonJson: true, odd: true }): GeneratedBody {
  const notes: string[] = [];
  const holder = { v: toJ(structuredClone(base)) };
  const n = rng.range(1, 3);
  for (let i = 0; i < n; i++) {
    const [name, f] = pickMutation(rng);
    const what = f(rng, holder, o);
    if (what !== undefined) notes.push(`${name}: ${what}`);
  }
  // the root replaced by something that is not an object
  if (rng.chance(0.05)) {
    const root = rng.pick<J>([[holder.v], 'a string', 123, null, true, [], raw('"unterminated')]);
    holder.v = root;
    notes.push(`root=${describeJ(root)}`);
  }
  let body: Buffer | undefined = serialize(holder.v);
  const b = rng.float();
  if (b < 0.05) {
    const cut = rng.int(body.length);
    body = body.subarray(0, cut);
    notes.push(`truncated at byte ${cut}`);
  } else if (b < 0.07) {
    body = rng.bytes(rng.logInt(1, 4096));
    notes.push(`random bytes (${body.length})`);
  } else if (b < 0.09) {
    body = Buffer.alloc(0);
    notes.push('empty body');
  } else if (b < 0.1) {
    body = undefined;
    notes.push('no body');
  } else if (b < 0.12) {
    const tail = rng.pick(['}', '{}', ',', '\u0000', ' garbage', '\n{"model":"x"}']);
    body = Buffer.concat([body, Buffer.from(tail)]);
    notes.push(`trailing ${JSON.stringify(tail)}`);
  } else if (b < 0.13) {
    body = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]);
    notes.push('UTF-8 BOM first');
  } else if (b < 0.14) {
    body = Buffer.from(body.toString('utf8'), 'utf16le');
    notes.push('UTF-16LE encoded');
  } else if (b < 0.15) {
    body = Buffer.concat([Buffer.alloc(rng.logInt(1000, 200_000), 0x20), body]);
    notes.push('leading whitespace');
  }
  let contentType: string | undefined = rng.pick(JSON_TYPES);
  const t = rng.float();
  if (typeChoices.nonJson && t < 0.06) contentType = rng.pick(NON_JSON_TYPES);
  else if (typeChoices.nonJson && t < 0.08) contentType = undefined;
  else if (typeChoices.odd && t < 0.11) contentType = rng.pick(ODD_TYPES);
  if (contentType !== JSON_TYPES[0]) notes.push(`content-type: ${contentType ?? '(none)'}`);
  return { body, contentType, notes };
}

// ---------------------------------------------------------------------------------------------
// Printing a case so that it can be reproduced by hand.

export function hex(b: Buffer): string {
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(' ');
}

/** Bytes as readable text: printable ASCII as is, everything else as \xNN, long runs shortened. */
export function printable(b: Buffer | string, max = 300): string {
  const buf = typeof b === 'string' ? Buffer.from(b, 'latin1') : b;
  let s = '';
  let i = 0;
  while (i < buf.length && s.length < max) {
    // a run of one byte value: say how long it is
    let j = i + 1;
    while (j < buf.length && buf[j] === buf[i]) j++;
    const c = buf[i]!;
    const one = c >= 0x20 && c < 0x7f && c !== 0x5c ? String.fromCharCode(c) : c === 0x5c ? '\\\\' : c === 0x0d ? '\\r' : c === 0x0a ? '\\n' : `\\x${c.toString(16).padStart(2, '0')}`;
    if (j - i > 12) {
      s += `${one}{×${j - i}}`;
      i = j;
    } else {
      s += one;
      i++;
    }
  }
  if (i < buf.length) s += `… (${buf.length} bytes in all)`;
  return s;
}

// ---------------------------------------------------------------------------------------------
// Raw HTTP/1.1 over a socket, for what no HTTP client will send.

export interface RawResponse {
  status: number;
  reason: string;
  headers: Record<string, string>;
  body: Buffer;
}

export interface RawResult {
  responses: RawResponse[];
  /** the server closed (or reset) the connection */
  closed: boolean;
  /** the safety deadline passed with the connection still open and `until` not satisfied */
  timedOut: boolean;
  /** bytes received that do not parse as a complete response */
  rest: Buffer;
  error?: string;
}

/** Parse as many complete responses as `buf` holds; `eof`: the connection ended (a body without a length runs to it). */
export function parseResponses(buf: Buffer, eof: boolean): { responses: RawResponse[]; rest: Buffer } {
  const responses: RawResponse[] = [];
  let off = 0;
  for (;;) {
    const headEnd = buf.indexOf('\r\n\r\n', off);
    if (headEnd < 0) break;
    const head = buf.subarray(off, headEnd).toString('latin1').split('\r\n');
    const m = /^HTTP\/1\.[01] (\d{3})(?: (.*))?$/.exec(head[0] ?? '');
    if (!m) break;
    const status = Number(m[1]);
    const headers: Record<string, string> = {};
    for (const line of head.slice(1)) {
      const i = line.indexOf(':');
      if (i > 0) {
        const k = line.slice(0, i).trim().toLowerCase();
        const v = line.slice(i + 1).trim();
        headers[k] = headers[k] === undefined ? v : `${headers[k]}, ${v}`;
      }
    }
    let p = headEnd + 4;
    let body: Buffer;
    if ((status >= 100 && status < 200) || status === 204 || status === 304) {
      body = Buffer.alloc(0);
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      const parts: Buffer[] = [];
      let complete = false;
      for (;;) {
        const le = buf.indexOf('\r\n', p);
        if (le < 0) break;
        const size = parseInt(buf.subarray(p, le).toString('latin1').split(';')[0]!.trim(), 16);
        if (!Number.isFinite(size)) break;
        if (size === 0) {
          const end = buf.indexOf('\r\n\r\n', le);
          if (end < 0) break;
          p = end + 4;
          complete = true;
          break;
        }
        if (le + 2 + size + 2 > buf.length) break;
        parts.push(buf.subarray(le + 2, le + 2 + size));
        p = le + 2 + size + 2;
      }
      if (!complete) {
        if (!eof) break;
        body = Buffer.concat(parts);
        p = buf.length;
      } else body = Buffer.concat(parts);
    } else if (headers['content-length'] !== undefined) {
      const n = Number(headers['content-length']);
      if (p + n > buf.length) {
        if (!eof) break;
        body = buf.subarray(p);
        p = buf.length;
      } else {
        body = buf.subarray(p, p + n);
        p += n;
      }
    } else {
      if (!eof) break;
      body = buf.subarray(p);
      p = buf.length;
    }
    responses.push({ status, reason: m[2] ?? '', headers, body });
    off = p;
  }
  return { responses, rest: buf.subarray(off) };
}

/**
 * Send bytes on a fresh connection and collect the responses, until the server closes the
 * connection or `until(responses)` holds. `deadlineMs` only bounds the wait (the result then says
 * timedOut); it is not a timing assertion.
 */
export function rawExchange(
  port: number,
  parts: (Buffer | string)[],
  opts: { until?: (rs: RawResponse[]) => boolean; deadlineMs?: number; host?: string } = {},
): Promise<RawResult> {
  return new Promise((resolve) => {
    const sock = net.connect(port, opts.host ?? '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    let error: string | undefined;
    const finish = (closed: boolean, timedOut: boolean) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const { responses, rest } = parseResponses(Buffer.concat(chunks), closed);
      sock.destroy();
      resolve({ responses, closed, timedOut, rest, ...(error ? { error } : {}) });
    };
    const timer = setTimeout(() => finish(false, true), opts.deadlineMs ?? 10_000);
    sock.on('data', (d: Buffer) => {
      chunks.push(d);
      if (opts.until && opts.until(parseResponses(Buffer.concat(chunks), false).responses)) finish(false, false);
    });
    sock.on('error', (e: NodeJS.ErrnoException) => {
      error = e.code ?? e.message;
    });
    sock.on('close', () => finish(true, false));
    sock.on('connect', () => {
      for (const p of parts) sock.write(typeof p === 'string' ? Buffer.from(p, 'latin1') : p);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// The gateway process as the kernel sees it.

export interface ProcStatus {
  rssKiB: number;
  hwmKiB: number;
  threads: number;
}

export function procStatus(pid: number): ProcStatus {
  const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  const num = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
  return { rssKiB: num('VmRSS'), hwmKiB: num('VmHWM'), threads: num('Threads') };
}

// ---------------------------------------------------------------------------------------------
// An upstream that streams a chat answer without end (up to capBytes), writing only as fast as
// its reader takes the bytes: `written` counts what the gateway's connection accepted, `blocked`
// says it is waiting for the gateway to read.

export interface Firehose {
  url: string;
  port: number;
  /** bytes of the current/last stream accepted by the socket */
  readonly written: number;
  /** waiting for 'drain' right now */
  readonly blocked: boolean;
  /** how many times a full buffer drained */
  readonly drains: number;
  /** streams started / ended because the gateway went away before the end / ended normally */
  readonly streams: number;
  readonly closedEarly: number;
  readonly finished: number;
  /** non-streamed answers given */
  readonly answered: number;
  close(): Promise<void>;
}

const FRAME = (i: number) =>
  `data: {"id":"chatcmpl-hose","object":"chat.completion.chunk","created":1,"model":"hose-model","choices":[{"index":0,"delta":{"content":"w${i % 10} "},"logprobs":null,"finish_reason":null}]}\n\n`;

export function startFirehose(opts: { capBytes: number }): Promise<Firehose> {
  let block = '';
  for (let i = 0; block.length < 64 * 1024; i++) block += FRAME(i);
  const state = { written: 0, blocked: false, drains: 0, streams: 0, closedEarly: 0, finished: 0, answered: 0 };
  const sockets = new Set<net.Socket>();
  const server = http.createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => {
      if (raw.length < 1_000_000) raw += c;
    });
    req.on('end', () => {
      if (req.method === 'GET' && req.url?.startsWith('/v1/models')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', data: [{ id: 'hose-model', object: 'model' }] }));
        return;
      }
      let body: Record<string, unknown> = {};
      try {
        body = JSON.parse(raw) as Record<string, unknown>;
      } catch {
        /* answered as non-stream below */
      }
      if (body.stream !== true) {
        state.answered++;
        const out = JSON.stringify({
          id: 'chatcmpl-hose',
          object: 'chat.completion',
          created: 1,
          model: 'hose-model',
          choices: [{ index: 0, message: { role: 'assistant', content: 'hose says hi' }, logprobs: null, finish_reason: 'stop' }],
          usage: { prompt_tokens: 3, completion_tokens: 3, total_tokens: 6 },
        });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(out) });
        res.end(out);
        return;
      }
      state.streams++;
      state.written = 0;
      state.blocked = false;
      // max_tokens given: a short stream of that many 64 KiB blocks (for warming up)
      const limit = typeof body.max_tokens === 'number' ? body.max_tokens * block.length : opts.capBytes;
      let closed = false;
      res.on('close', () => {
        closed = true;
        state.blocked = false;
        if (!res.writableFinished) state.closedEarly++;
      });
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
      res.write('data: {"id":"chatcmpl-hose","object":"chat.completion.chunk","created":1,"model":"hose-model","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}\n\n');
      const pump = (): void => {
        while (!closed) {
          if (state.written >= limit) {
            state.finished++;
            res.end(
              'data: {"id":"chatcmpl-hose","object":"chat.completion.chunk","created":1,"model":"hose-model","choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n',
            );
            return;
          }
          state.written += block.length;
          if (!res.write(block)) {
            state.blocked = true;
            res.once('drain', () => {
              state.blocked = false;
              state.drains++;
              pump();
            });
            return;
          }
        }
      };
      pump();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as AddressInfo).port;
      resolve({
        url: `http://127.0.0.1:${port}/v1`,
        port,
        get written() {
          return state.written;
        },
        get blocked() {
          return state.blocked;
        },
        get drains() {
          return state.drains;
        },
        get streams() {
          return state.streams;
        },
        get closedEarly() {
          return state.closedEarly;
        },
        get finished() {
          return state.finished;
        },
        get answered() {
          return state.answered;
        },
        close() {
          return new Promise<void>((r) => {
            server.close(() => r());
            for (const s of sockets) s.destroy();
          });
        },
      });
    });
  });
}

/** Open `n` connections and keep them idle (or send each the bytes `send(i)` gives). */
export async function openConnections(port: number, n: number, send?: (i: number) => string | undefined): Promise<net.Socket[]> {
  const socks: net.Socket[] = [];
  try {
    await Promise.all(
      Array.from(
        { length: n },
        (_, i) =>
          new Promise<void>((resolve, reject) => {
            const s = net.connect(port, '127.0.0.1');
            socks.push(s);
            s.on('error', () => {});
            s.once('connect', () => {
              const b = send?.(i);
              if (b) s.write(b);
              resolve();
            });
            s.once('close', () => reject(new Error(`idle connection ${i} was closed before all were open`)));
          }),
      ),
    );
  } catch (e) {
    for (const s of socks) s.destroy();
    throw e;
  }
  return socks;
}
