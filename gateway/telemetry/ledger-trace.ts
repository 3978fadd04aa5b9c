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
