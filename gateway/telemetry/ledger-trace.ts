// A plain request's trace, carried by its ledger row (migration 24). Most requests are plain:
// successful, one upstream attempt, no wait for a slot, no guardrail decision and no client
// traceparent. Their two spans (the request and its attempt) say little that the ledger row does
// not already hold, so the tracer stores them there (tracer.ts, settle()) instead of in a
// trace_spans row: one insert per request instead of two, and no span row to build. The ledger's
// `trace` column holds the rest, as a JSON array (LedgerTrace); the ids are the request id's
// (span.ts: traceIdOfRequest, requestSpanId, firstAttemptSpanId). The span store reads such a row
// back into the same spans the tracer would have stored (span-store.ts).
import type { LedgerRow } from '../engine/ledger-protocol.js';
import type { Kind } from '../engine/stages.js';
import type { TraceSpan } from '../wire.js';
import { attemptAttributes, attributesOf, OPERATION, requestAttributes, requestSpanName, type AttemptFacts } from './span-attributes.js';
import { firstAttemptSpanId, requestSpanId, traceIdOfRequest } from './span.js';

/** The ledger's `trace` column, version 1: what a plain request's spans need beyond the row. */
export type LedgerTrace = [
  version: 1,
  rule: string | null,
  /** the endpoint's type (gen_ai.provider.name) */
  provider: string,
  /** the endpoint's origin (server.address) */
  origin: string | null,
  target: string,
  /** the model the attempt asked the upstream for */
  attemptModel: string,
  maxTokens: number | null,
  temperature: number | null,
  topP: number | null,
  /** the attempt's start, µs after the request's (integers: JSON writes them faster than fractional ms) */
  attemptStartUs: number,
  /** the attempt's end, µs after the request's start */
  attemptEndUs: number,
  queueUs: number,
  /** the attempt's time to first chunk, µs */
  ttfcUs: number | null,
  finishReasons: string[] | null,
];

/** What a plain request's trace is written from (the tracer's request context and first attempt). */
export interface LedgerTraceFacts {
  rule: string | undefined;
  provider: string;
  origin: string | undefined;
  target: string;
  attemptModel: string;
  maxTokens: number | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  /** ms after the request's start */
  attemptStart: number;
  attemptEnd: number;
  queueMs: number;
  ttfcMs: number | undefined;
  finishReasons: readonly string[] | undefined;
}

interface Prefix {
  provider: string;
  origin: string | undefined;
  attemptModel: string;
  /** `[1,rule,provider,origin,target,attemptModel,` as JSON */
  json: string;
}

/**
 * Writes the ledger's `trace` column: the text JSON.stringify gives for the LedgerTrace tuple,
 * built per request from a cached prefix. The first six values are the same for every request
 * routed to one target by one rule, so their JSON is made once per (target, rule) and kept while
 * the endpoint's type and origin and the target's model stay what they were; the rest are numbers
 * (and the finish reasons, whose usual single value is kept too). Both caches are bounded.
 */
export class LedgerTraceWriter {
  private readonly prefixes = new Map<string, Map<string | undefined, Prefix>>();
  private readonly reasons = new Map<string, string>();
  private static readonly MAX = 256;

  write(f: LedgerTraceFacts): string {
    return (
      this.prefix(f) +
      `${num(f.maxTokens)},${num(f.temperature)},${num(f.topP)},` +
      // integers (µs): they format several times faster than fractional ms
      `${Math.round(f.attemptStart * 1000)},${Math.round(f.attemptEnd * 1000)},${Math.round(f.queueMs * 1000)},` +
      `${f.ttfcMs === undefined ? 'null' : Math.round(f.ttfcMs * 1000)},${this.finishReasons(f.finishReasons)}]`
    );
  }

  private prefix(f: LedgerTraceFacts): string {
    let byRule = this.prefixes.get(f.target);
    const hit = byRule?.get(f.rule);
    if (hit && hit.provider === f.provider && hit.origin === f.origin && hit.attemptModel === f.attemptModel) return hit.json;
    if (!byRule) {
      if (this.prefixes.size >= LedgerTraceWriter.MAX) this.prefixes.clear();
      byRule = new Map();
      this.prefixes.set(f.target, byRule);
    } else if (byRule.size >= LedgerTraceWriter.MAX) byRule.clear();
    const json = JSON.stringify([1, f.rule ?? null, f.provider, f.origin ?? null, f.target, f.attemptModel]).slice(0, -1) + ',';
    byRule.set(f.rule, { provider: f.provider, origin: f.origin, attemptModel: f.attemptModel, json });
    return json;
  }

  private finishReasons(r: readonly string[] | undefined): string {
    if (r === undefined) return 'null';
    if (r.length !== 1) return JSON.stringify(r);
    const one = r[0]!;
    let json = this.reasons.get(one);
    if (json === undefined) {
      json = JSON.stringify(r);
      if (this.reasons.size >= LedgerTraceWriter.MAX) this.reasons.clear();
      this.reasons.set(one, json);
    }
    return json;
  }
}

/** A number as JSON.stringify writes it (non-finite: null); undefined: null. */
const num = (n: number | undefined): string => (n === undefined || !Number.isFinite(n) ? 'null' : String(n));

/** The ledger columns a plain request's spans are read from. */
const TRACED_COLUMNS = [
  'request_id', 'ts', 'kind', 'key_name', 'team', 'user', 'session', 'requested_model', 'alias', 'endpoint', 'upstream_model', 'stream',
  'prompt_tokens', 'completion_tokens', 'estimated', 'cost', 'ttfb_ms', 'latency_ms', 'status', 'attempts', 'error_class',
] as const satisfies readonly (keyof LedgerRow)[];

/** A ledger row that carries a plain request's trace, as the span store reads it. */
export type TracedLedgerRow = Pick<LedgerRow, (typeof TRACED_COLUMNS)[number]> & { trace: string };

export const TRACED_LEDGER_COLUMNS = [...TRACED_COLUMNS, 'trace'].join(', ');

const iso = (ms: number): string => new Date(ms).toISOString();
const us = (ms: number): number => Math.round(ms * 1000) / 1000;
const orUndefined = <T>(v: T | null): T | undefined => (v === null ? undefined : v);

/** A traced ledger row's spans: the request's and its attempt's, as the admin API shows spans.
 * undefined when the row's trace is not one this version reads. */
export function ledgerSpans(row: TracedLedgerRow): TraceSpan[] | undefined {
  const traceId = traceIdOfRequest(row.request_id);
  let t: unknown;
  try {
    t = JSON.parse(row.trace);
  } catch {
    return undefined;
  }
  if (!traceId || !Array.isArray(t) || t[0] !== 1 || t.length < 14) return undefined;
  const [, rule, provider, origin, target, attemptModel, maxTokens, temperature, topP, attemptStartUs, attemptEndUs, queueUs, ttfcUs, finishReasons] = t as LedgerTrace;
  const kind = row.kind as Kind;
  const spanId = requestSpanId(row.request_id);
  const end = row.ts + row.latency_ms;
  const root: TraceSpan = {
    trace_id: traceId,
    span_id: spanId,
    parent_span_id: null,
    kind: 'model',
    name: requestSpanName(kind, orUndefined(row.requested_model)),
    start: iso(row.ts),
    end: iso(end),
    start_ms: row.ts,
    end_ms: end,
    duration_ms: us(end - row.ts),
    status: { code: 'ok', message: null },
    session: row.session,
    attributes: attributesOf((put) =>
      requestAttributes(
        {
          kind,
          id: row.request_id,
          status: row.status,
          attempts: row.attempts,
          requestedModel: orUndefined(row.requested_model),
          model: orUndefined(row.alias),
          rule: orUndefined(rule),
          endpoint: orUndefined(row.endpoint),
          provider,
          upstreamModel: orUndefined(row.upstream_model),
          finishReasons: orUndefined(finishReasons),
          maxTokens: orUndefined(maxTokens),
          temperature: orUndefined(temperature),
          topP: orUndefined(topP),
          stream: row.stream === 1,
          promptTokens: row.prompt_tokens,
          completionTokens: row.completion_tokens,
          estimated: row.estimated === 1,
          cost: row.cost,
          ttfbMs: orUndefined(row.ttfb_ms),
          user: orUndefined(row.user),
          keyName: orUndefined(row.key_name),
          team: orUndefined(row.team),
          session: orUndefined(row.session),
          errorClass: orUndefined(row.error_class),
        },
        put,
      ),
    ),
  };
  const a: AttemptFacts = {
    op: OPERATION[kind],
    upstreamModel: attemptModel,
    provider,
    endpoint: row.endpoint ?? '',
    target,
    attempt: 1,
    queueMs: queueUs / 1000,
    origin: orUndefined(origin),
    ttfc: ttfcUs === null ? undefined : ttfcUs / 1000,
    outcome: 'ok',
    status: 'ok',
    statusMessage: undefined,
    finishReasons: orUndefined(finishReasons),
  };
  const aStart = row.ts + attemptStartUs / 1000;
  const aEnd = row.ts + attemptEndUs / 1000;
  const attempt: TraceSpan = {
    trace_id: traceId,
    span_id: firstAttemptSpanId(row.request_id),
    parent_span_id: spanId,
    kind: 'attempt',
    name: `${a.op} ${attemptModel}`,
    start: iso(aStart),
    end: iso(aEnd),
    start_ms: aStart,
    end_ms: aEnd,
    duration_ms: us(aEnd - aStart),
    status: { code: 'ok', message: null },
    session: row.session,
    attributes: attributesOf((put) => attemptAttributes(a, put)),
  };
  return [root, attempt];
}
