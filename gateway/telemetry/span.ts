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
