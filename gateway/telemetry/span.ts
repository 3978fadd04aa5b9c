// A finished span as the tracer records it: plain data, shared by the local store (span-store.ts)
// and the OTLP export (otlp.ts). Times are wall-clock milliseconds (fractional).
import { randomFillSync } from 'node:crypto';

export type SpanKind = 'model' | 'attempt' | 'queue' | 'guardrail' | 'tool';
/** OpenTelemetry attribute values: a string array for the conventions' array attributes
 * (gen_ai.response.finish_reasons) */
export type AttrValue = string | number | boolean | string[];

export interface SpanData {
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** x-airlock-session: the workflow this span belongs to */
  session: string | undefined;
  kind: SpanKind;
  name: string;
  start: number;
  end: number;
  status: 'ok' | 'error' | 'unset';
  statusMessage: string | undefined;
  /** on root spans: who and what, for the session list */
  team: string | undefined;
  key: string | undefined;
  model: string | undefined;
  httpStatus: number | undefined;
  attributes: Record<string, AttrValue>;
}

// Span and trace ids come from a pool of random bytes refilled 4 KiB at a time: one
// randomFillSync per ~340 spans instead of one randomBytes call (and buffer) per id.
const pool = Buffer.alloc(4096);
let pos = pool.length;
function randomHex(bytes: number): string {
  if (pos + bytes > pool.length) {
    randomFillSync(pool);
    pos = 0;
  }
  const s = pool.toString('hex', pos, pos + bytes);
  pos += bytes;
  return s;
}
const ZERO16 = '0'.repeat(16);
const ZERO32 = '0'.repeat(32);
export function newSpanId(): string {
  let id = randomHex(8);
  while (id === ZERO16) id = randomHex(8);
  return id;
}
/** A trace id of ours: the Unix time in milliseconds (12 hex digits, as AWS X-Ray's ids begin
 * with the time) and 80 random bits. Time-ordered ids keep the span store's trace-id index
 * growing at one end; random ones land all over that B-tree and made each stored request cost
 * about twice as much writer CPU (bench/RESULTS.md). W3C Trace Context only asks that the right
 * 7 bytes be random when the "random" flag is set, and we never set it. Ids that come from a
 * client's traceparent are kept as they are. */
export function newTraceId(now = Date.now()): string {
  if (now !== lastMs) {
    lastMs = now;
    lastPrefix = now.toString(16).padStart(12, '0').slice(-12);
  }
  return lastPrefix + randomHex(10);
}
// the time part of the last trace id (requests that start in the same millisecond share it)
let lastMs = -1;
let lastPrefix = '';

export interface TraceParent {
  traceId: string;
  parentId: string;
  sampled: boolean;
}

const TP_RE = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** W3C trace-context `traceparent`: version 00 exactly (four fields), later versions by their
 * first four fields; all-zero ids, version ff and malformed values are ignored (undefined). */
export function parseTraceparent(v: string | undefined): TraceParent | undefined {
  if (!v || v.length > 512) return undefined;
  const m = TP_RE.exec(v.trim());
  if (!m) return undefined;
  const [, version, traceId, parentId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (traceId === ZERO32 || parentId === ZERO16) return undefined;
  return { traceId, parentId, sampled: (parseInt(flags, 16) & 1) === 1 };
}

export function formatTraceparent(traceId: string, spanId: string, sampled = true): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

// ---- ids derived from a request id ----
//
// A data-plane request's ids are its request id's (a UUID version 7 of ours, engine/request-id.ts:
// tttttttt-tttt-7rrr-Vrrr-rrrrrrrrrrrr, V one of 8-b): its trace id is the request id without its
// dashes (time-led, as newTraceId's, and readable back into the request id: the trace of a plain
// request is found by the ledger's primary key, ledger-trace.ts), its span the last two groups
// (first digit 8-b), its first upstream attempt's span the third and last groups (first digit 7):
// never zero, never equal. A client's traceparent still names the trace (its trace id, its span
// as our parent); later attempts and other spans get random ids.

const hex = (s: string, from: number, to: number): boolean => {
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
};

/** Whether `id` is a request id of ours (lower-case UUID version 7 with the RFC 9562 variant). */
export function isOwnRequestId(id: string): boolean {
  if (id.length !== 36 || id[8] !== '-' || id[13] !== '-' || id[18] !== '-' || id[23] !== '-' || id[14] !== '7') return false;
  const v = id.charCodeAt(19);
  if (!(v === 56 || v === 57 || v === 97 || v === 98)) return false;
  return hex(id, 0, 8) && hex(id, 9, 13) && hex(id, 14, 18) && hex(id, 19, 23) && hex(id, 24, 36);
}

/** The trace id of a request (its id without dashes); undefined for an id not of ours. */
export function traceIdOfRequest(id: string): string | undefined {
  return isOwnRequestId(id) ? ownTraceId(id) : undefined;
}

/** The trace id of a request id known to be ours (isOwnRequestId checked before). */
export const ownTraceId = (id: string): string => id.slice(0, 8) + id.slice(9, 13) + id.slice(14, 18) + id.slice(19, 23) + id.slice(24);

/** The request id whose trace id this is (traceIdOfRequest read back); undefined when it is not one. */
export function requestIdOfTrace(traceId: string): string | undefined {
  if (traceId.length !== 32) return undefined;
  const id = `${traceId.slice(0, 8)}-${traceId.slice(8, 12)}-${traceId.slice(12, 16)}-${traceId.slice(16, 20)}-${traceId.slice(20)}`;
  return isOwnRequestId(id) ? id : undefined;
}

/** A request's own span id (the request id's last two groups); call only for isOwnRequestId ids. */
export const requestSpanId = (id: string): string => id.slice(19, 23) + id.slice(24);
/** The span id of a request's first upstream attempt (third and last groups); isOwnRequestId ids only. */
export const firstAttemptSpanId = (id: string): string => id.slice(14, 18) + id.slice(24);
