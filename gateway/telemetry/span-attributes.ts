// The attributes of a data-plane request's span and of its upstream attempts' spans (OpenTelemetry
// GenAI conventions), each as ONE list over plain facts: the tracer fills them from a request's
// context (tracer.ts), the span store from a ledger row that carries a plain request's trace
// (ledger-trace.ts), so a trace reads the same whichever way it was stored.
import type { Kind } from '../engine/stages.js';
import type { AttrValue, SpanData } from './span.js';

/** Puts one attribute (an undefined value is left out). */
export type PutAttribute = (key: string, value: AttrValue | undefined) => void;

// gen_ai.operation.name per kind: Messages and Responses are chat operations (translated to the upstream's chat)
export const OPERATION = { chat: 'chat', completions: 'text_completion', embeddings: 'embeddings', messages: 'chat', responses: 'chat' } as const satisfies Record<Kind, string>;

/** What a request's span says: its context's facts, or its ledger row's. */
export interface RequestFacts {
  kind: Kind;
  id: string;
  status: number;
  attempts: number;
  requestedModel: string | undefined;
  /** the alias it was routed as */
  model: string | undefined;
  rule: string | undefined;
  endpoint: string | undefined;
  /** the endpoint's type (gen_ai.provider.name), with an endpoint */
  provider: string | undefined;
  upstreamModel: string | undefined;
  finishReasons: string[] | undefined;
  maxTokens: number | undefined;
  temperature: number | undefined;
  topP: number | undefined;
  stream: boolean;
  promptTokens: number;
  completionTokens: number;
  estimated: boolean;
  cost: number;
  /** ms, rounded to the µs */
  ttfbMs: number | undefined;
  user: string | undefined;
  keyName: string | undefined;
  team: string | undefined;
  session: string | undefined;
  errorClass: string | undefined;
}

/** The request span's attributes, in order. */
export function requestAttributes(f: RequestFacts, put: PutAttribute): void {
  put('gen_ai.operation.name', OPERATION[f.kind]);
  put('airlock.request_id', f.id);
  put('http.response.status_code', f.status);
  put('airlock.attempts', f.attempts);
  put('gen_ai.request.model', f.requestedModel);
  if (f.model) put('airlock.model', f.model);
  if (f.rule) put('airlock.routing_rule', f.rule);
  if (f.endpoint) {
    put('airlock.endpoint', f.endpoint);
    put('gen_ai.provider.name', f.provider ?? 'openai');
  }
  if (f.upstreamModel) put('gen_ai.response.model', f.upstreamModel);
  put('gen_ai.response.finish_reasons', f.finishReasons);
  if (f.maxTokens !== undefined) put('gen_ai.request.max_tokens', f.maxTokens);
  if (f.temperature !== undefined) put('gen_ai.request.temperature', f.temperature);
  if (f.topP !== undefined) put('gen_ai.request.top_p', f.topP);
  if (f.kind !== 'embeddings') put('airlock.stream', f.stream);
  if (f.promptTokens || f.completionTokens) {
    put('gen_ai.usage.input_tokens', f.promptTokens);
    put('gen_ai.usage.output_tokens', f.completionTokens);
    if (f.estimated) put('airlock.usage.estimated', true);
  }
  if (f.cost) put('airlock.cost', f.cost);
  if (f.ttfbMs !== undefined) put('airlock.time_to_first_token_ms', f.ttfbMs);
  if (f.user) put('enduser.id', f.user);
  if (f.keyName) {
    put('airlock.key', f.keyName);
    if (f.team) put('airlock.team', f.team);
  }
  if (f.session) put('airlock.session', f.session);
  if (f.errorClass) put('error.type', f.errorClass);
}

/** The request span's name: "{gen_ai.operation.name} {gen_ai.request.model}". */
export const requestSpanName = (kind: Kind, requestedModel: string | undefined): string =>
  requestedModel !== undefined ? `${OPERATION[kind]} ${requestedModel}` : OPERATION[kind];

/** What an upstream attempt's span says. */
export interface AttemptFacts {
  readonly op: string;
  readonly upstreamModel: string;
  readonly provider: string;
  readonly endpoint: string;
  readonly target: string;
  readonly attempt: number;
  readonly queueMs: number;
  readonly origin: string | undefined;
  ttfc: number | undefined;
  outcome: string | undefined;
  status: SpanData['status'];
  statusMessage: string | undefined;
  finishReasons: string[] | undefined;
}

/** The attempt span's attributes, in order. */
export function attemptAttributes(a: AttemptFacts, put: PutAttribute): void {
  put('gen_ai.operation.name', a.op);
  put('gen_ai.request.model', a.upstreamModel);
  put('gen_ai.provider.name', a.provider);
  put('airlock.endpoint', a.endpoint);
  put('airlock.target', a.target);
  put('airlock.attempt', a.attempt);
  put('airlock.queue_ms', a.queueMs);
  put('server.address', a.origin);
  put('airlock.time_to_first_chunk_ms', a.ttfc);
  put('airlock.attempt.outcome', a.outcome);
  if (a.status === 'ok') put('gen_ai.response.finish_reasons', a.finishReasons);
  else if (a.status === 'error') {
    put('error.type', a.outcome);
    if (a.statusMessage) put('airlock.failover_reason', a.statusMessage);
  }
}

/** The attributes `fill` puts, as a span object's (undefined values left out). */
export function attributesOf(fill: (put: PutAttribute) => void): SpanData['attributes'] {
  const attributes: SpanData['attributes'] = {};
  fill((k, v) => {
    if (v !== undefined) attributes[k] = v;
  });
  return attributes;
}
