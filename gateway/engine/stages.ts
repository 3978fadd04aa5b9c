// The request pipeline's stages, each behind a narrow interface:
// authenticate → admit → guard input → route → call upstream → guard output → settle → record.
// Stages that have no policy yet (admit, guards) are explicit pass-throughs that later
// capabilities (budgets, rate limits, guardrails) fill in without touching the others.
import { GatewayError } from './errors.js';
import type { SSEEvent } from './sse.js';
import type { KeyRecord, ModelConfig, Snapshot } from './snapshot.js';

export type Kind = 'chat' | 'completions' | 'embeddings';

export interface RequestContext {
  /** the gateway's own request id (UUIDv7): the ledger's key */
  readonly id: string;
  /** the client's x-request-id, when well-formed: kept beside ours and echoed */
  clientRequestId: string | undefined;
  readonly kind: Kind;
  /** performance.now() at arrival */
  readonly t0: number;
  /** wall clock at arrival */
  readonly ts: number;
  readonly snapshot: Snapshot;
  readonly abort: AbortController;
  key: KeyRecord | undefined;
  user: string | undefined;
  session: string | undefined;
  traceparent: string | undefined;
  body: Record<string, unknown>;
  requestedModel: string | undefined;
  model: ModelConfig | undefined;
  rule: string | undefined;
  stream: boolean;
  clientWantsUsage: boolean;
  attempts: number;
  endpoint: string | undefined;
  upstreamModel: string | undefined;
  ttfbMs: number | undefined;
  promptTokens: number;
  completionTokens: number;
  estimated: boolean;
  cost: number;
  status: number;
  errorClass: string | undefined;
}

// ---- authenticate ----

export interface KeyHasher {
  hashKey(key: string): string;
}

export function extractKey(headers: Record<string, string | string[] | undefined>): string | undefined {
  const auth = headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    if (m) return m[1];
  }
  const x = headers['x-api-key'];
  return typeof x === 'string' && x ? x.trim() : undefined;
}

export function authenticate(
  s: Snapshot,
  hasher: KeyHasher,
  headers: Record<string, string | string[] | undefined>,
  now = Date.now(),
): KeyRecord {
  const key = extractKey(headers);
  if (!key)
    throw new GatewayError(401, 'authentication_error', 'missing_api_key', 'Missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>".');
  const rec = s.keysByHash.get(hasher.hashKey(key));
  if (!rec) throw new GatewayError(401, 'authentication_error', 'invalid_api_key', 'Invalid API key: no such key on this gateway.');
  if (rec.disabled) throw new GatewayError(401, 'authentication_error', 'key_disabled', `API key "${rec.name}" is disabled.`);
  if (rec.expiresAt !== undefined && rec.expiresAt <= now)
    throw new GatewayError(401, 'authentication_error', 'key_expired', `API key "${rec.name}" expired at ${new Date(rec.expiresAt).toISOString()}.`);
  return rec;
}

/** May this key use the alias (or the name it asked for)? */
export function authorizeModel(key: KeyRecord, requested: string, alias: string): void {
  if (!key.models || key.models.has(requested) || key.models.has(alias)) return;
  throw new GatewayError(403, 'permission_error', 'model_not_allowed', `API key "${key.name}" may not use model "${requested}".`, 'model');
}

// ---- admit ----

/** Admission: limits, budget reservation and the capacity queue plug in here. */
export interface Admission {
  admit(ctx: RequestContext): void | Promise<void>;
  /** called once when the request is finished, whatever happened */
  release(ctx: RequestContext): void;
}

export const admitAll: Admission = {
  admit() {},
  release() {},
};

// ---- guards ----

export interface InputGuard {
  name: string;
  check(ctx: RequestContext): void | Promise<void>;
}
export interface OutputGuard {
  name: string;
  /** whole non-streamed response body */
  checkBody?(ctx: RequestContext, body: unknown): void;
  /** each streamed event; may throw to end the stream with an error */
  checkEvent?(ctx: RequestContext, ev: SSEEvent): void;
}
export interface Guards {
  input: readonly InputGuard[];
  output: readonly OutputGuard[];
}
export const noGuards: Guards = { input: [], output: [] };

export async function guardInput(g: Guards, ctx: RequestContext): Promise<void> {
  for (const x of g.input) await x.check(ctx);
}

// ---- settle ----

export function settle(ctx: RequestContext): void {
  const price = ctx.model?.price;
  ctx.cost = price ? (ctx.promptTokens * price.input_per_million + ctx.completionTokens * price.output_per_million) / 1e6 : 0;
}
