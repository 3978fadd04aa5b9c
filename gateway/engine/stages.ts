// The request pipeline's stages, each behind a narrow interface:
// authenticate → admit → guard input → route → call upstream → guard output → settle → record.
// Stages that have no policy yet (admit, guards) are explicit pass-throughs that later
// capabilities (budgets, rate limits, guardrails) fill in without touching the others.
import { GatewayError, gatewayError } from './errors.js';
import type { SSEEvent } from './sse.js';
import { estimatePromptTokens } from './tokens.js';
import type { KeyRecord, ModelConfig, Snapshot } from './snapshot.js';

/** what the client called: the three OpenAI APIs, and the two translated onto chat (translate.ts) */
export type Kind = 'chat' | 'completions' | 'embeddings' | 'messages' | 'responses';

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
  /** the client's W3C traceparent, as received */
  traceparent: string | undefined;
  /** what goes upstream as traceparent: the client's, until tracing replaces it with its own span's
   * (an airlock:attempt:start subscriber may also set it per attempt on the headers it gets) */
  upstreamTraceparent: string | undefined;
  body: Record<string, unknown>;
  /** a translated protocol's own body (Anthropic Messages), for an endpoint that speaks it
   * natively; the input guards redact it as they redact `body` */
  native?: Record<string, unknown>;
  requestedModel: string | undefined;
  model: ModelConfig | undefined;
  rule: string | undefined;
  stream: boolean;
  clientWantsUsage: boolean;
  attempts: number;
  endpoint: string | undefined;
  upstreamModel: string | undefined;
  ttfbMs: number | undefined;
  /** why the answer's choices ended (finish_reason of each, in order), when the upstream said */
  finishReasons: string[] | undefined;
  /** the prompt's estimated tokens, once something needed it (routing rules, admission, settle): see promptEstimate() */
  promptEstimate: number | undefined;
  /** admission's own record of what it reserved for this request (budgets, token-rate claims),
   * handed back to it at release, after settle; undefined: nothing held */
  admissionHold: unknown;
  /** the guards' own record of this request (guardrails: its policies, placeholders, decisions and
   * stream scanners), made by them when first needed; undefined: none */
  guardState: unknown;
  /** the tracer's record of this request (telemetry/tracer.ts) while tracing is on; undefined:
   * none. On the request itself, not in a map keyed by its id: a Map that every request enters
   * and leaves made the young generation promote ~3x as much (bench/RESULTS.md, tenth session) */
  traceState: unknown;
  /** the caller's x-airlock-tags (attribution) */
  tags: Record<string, string> | undefined;
  /** x-airlock-priority: a caller may lower its key's priority, never raise it */
  priorityHint: 'interactive' | 'batch' | undefined;
  /** where the request waits for an endpoint slot under contention (set by admission; absent: first come, first served) */
  share: QueueShare | undefined;
  /** headers admission wants on the response, whatever it is (rate-limit state, downgrade) */
  responseHeaders: Record<string, string> | undefined;
  /** the alias the client asked for, when cost-aware routing served another */
  downgradedFrom: string | undefined;
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
  if (!key) {
    const auth = headers.authorization;
    // a header that is there but not "Bearer <key>" is a malformed key, not a missing one
    if (typeof auth === 'string' && auth.trim() !== '')
      throw gatewayError('invalid_api_key', 'Invalid API key: the Authorization header must be "Bearer <key>" (the word Bearer, then the key alone).');
    throw gatewayError('missing_api_key', 'Missing API key: send "Authorization: Bearer <key>" or "x-api-key: <key>".');
  }
  const hash = hasher.hashKey(key);
  let rec = s.keysByHash.get(hash);
  if (!rec) {
    // the old secret of a rotated key works until its grace period ends
    const prev = s.previousKeys.get(hash);
    if (prev) {
      if (prev.until <= now)
        throw gatewayError('invalid_api_key', `Invalid API key: key "${prev.key.name}" was rotated and this old secret stopped working at ${new Date(prev.until).toISOString()}; use the new one.`);
      rec = prev.key;
    } else {
      // a playground request's temporary key (engine/temporary-keys.ts)
      rec = s.temporaryKeys?.lookup(hash, now);
      if (!rec) throw gatewayError('invalid_api_key', 'Invalid API key: no such key on this gateway.');
    }
  }
  if (rec.disabled) throw gatewayError('key_disabled', `API key "${rec.name}" is disabled.`);
  if (rec.expiresAt !== undefined && rec.expiresAt <= now)
    throw gatewayError('key_expired', `API key "${rec.name}" expired at ${new Date(rec.expiresAt).toISOString()}.`);
  return rec;
}

/** May this key use the alias (or the name it asked for)? */
export function authorizeModel(key: KeyRecord, requested: string, alias: string): void {
  if (!key.models || key.models.has(requested) || key.models.has(alias)) return;
  throw gatewayError('model_not_allowed', `API key "${key.name}" may not use model "${requested}".`, { param: 'model' });
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

/** A request's place in an endpoint's queue: weighted fair queuing across groups (teams), and
 * interactive before batch within a group. */
export interface QueueShare {
  group: string;
  weight: number;
  batch: boolean;
}

/** Something admission holds for a request until it is settled (e.g. an estimated cost against a budget). */
/** The prompt's estimated tokens, computed once per request. */
export function promptEstimate(ctx: RequestContext): number {
  return (ctx.promptEstimate ??= estimatePromptTokens(ctx.body));
}

// ---- guards ----

/** An input guard may change ctx.body (redact) or throw a GatewayError (block, e.g. guardrail_blocked).
 * Any other exception is the guard's own failure: guard_failed (500), never an upstream's fault. */
export interface InputGuard {
  name: string;
  /** does the guard look at this request at all? (omitted: yes) */
  appliesTo?(ctx: RequestContext): boolean;
  check(ctx: RequestContext): void | Promise<void>;
}

/** A guard's decision on a whole (non-streamed) answer. */
export type BodyVerdict = { action: 'pass' } | { action: 'replace'; body: unknown } | { action: 'block'; message: string };
/** A guard's decision on one streamed event: pass it (with any it held before), hold it back,
 * replace it (and the held ones) by other events, or block the answer. */
export type EventVerdict = { action: 'pass' } | { action: 'hold' } | { action: 'replace'; events: SSEEvent[] } | { action: 'block'; message: string };

export interface OutputGuard {
  name: string;
  /** does the guard look at this request's answer at all? (omitted: yes; no: a stream keeps the
   * plain byte path, never decoded) */
  appliesTo?(ctx: RequestContext): boolean;
  /** the whole non-streamed answer (parsed JSON); nothing (undefined) is a pass */
  checkBody?(ctx: RequestContext, body: unknown): BodyVerdict | void;
  /** each streamed data event (never [DONE]); nothing is a pass */
  checkEvent?(ctx: RequestContext, ev: SSEEvent): EventVerdict | void;
  /** the stream ended: what to do with the events it still holds (pass releases them; hold counts as pass) */
  endStream?(ctx: RequestContext): EventVerdict | void;
  /** the guard judges the answer only whole (a JSON schema): nothing of the stream reaches the
   * client before it ends, so the guard may still ask for a retry or refuse it with a plain error */
  holdsStream?(ctx: RequestContext): boolean;
  /** an asynchronous judgement of the whole answer (a classifier model), before any of it reaches
   * the client: a non-streamed body after checkBody; a held stream (holdsStream) once complete,
   * with body undefined. Throws (guardBlocked) to refuse. */
  judge?(ctx: RequestContext, body: unknown): Promise<void> | void;
}
export interface Guards {
  input: readonly InputGuard[];
  output: readonly OutputGuard[];
}
export const noGuards: Guards = { input: [], output: [] };

/** A guard blocked the request or its answer (never counts against an upstream). */
export function guardBlocked(guard: string, message: string): GatewayError {
  return gatewayError('guardrail_blocked', `Blocked by guardrail "${guard}": ${message}`);
}

/** An output guard asks for the answer once more (it does not satisfy, e.g., the JSON schema the
 * request asked for): the pipeline makes one more attempt when it may; otherwise, or when the
 * guard refuses the next answer too, this is the request's error (guardrail_blocked). Never
 * charges a breaker. */
export class GuardRetry extends GatewayError {}
export function guardRetry(guard: string, message: string): GuardRetry {
  const e = guardBlocked(guard, message);
  return new GuardRetry(e.status, e.type, e.code, e.message);
}

/** A guard threw something that is not its decision: its own failure. */
export function guardFailed(guard: string, e: unknown): GatewayError {
  if (e instanceof GatewayError) return e;
  return gatewayError('guard_failed', `Guardrail "${guard}" failed: ${(e as Error)?.message ?? String(e)}`);
}

/** The input guards' checks, in order; undefined when none applies, so an unguarded request takes
 * no extra turn. */
export function guardInput(g: Guards, ctx: RequestContext): Promise<void> | undefined {
  const xs = g.input;
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i]!;
    if (!x.appliesTo || x.appliesTo(ctx)) return checkInput(xs, i, ctx);
  }
  return undefined;
}

/** xs[first] applies (already asked); the ones after it are asked in their turn. */
async function checkInput(xs: Guards['input'], first: number, ctx: RequestContext): Promise<void> {
  for (let i = first; i < xs.length; i++) {
    const x = xs[i]!;
    if (i > first && x.appliesTo && !x.appliesTo(ctx)) continue;
    try {
      await x.check(ctx);
    } catch (e) {
      throw guardFailed(x.name, e);
    }
  }
}

/** The output guards' decision on a whole answer: the body to send (the same object when unchanged). */
export function guardBody(g: Guards, ctx: RequestContext, body: unknown): unknown {
  let cur = body;
  for (const x of g.output) {
    if (!x.checkBody || (x.appliesTo && !x.appliesTo(ctx))) continue;
    let v: BodyVerdict | void;
    try {
      v = x.checkBody(ctx, cur);
    } catch (e) {
      throw guardFailed(x.name, e);
    }
    if (!v || v.action === 'pass') continue;
    if (v.action === 'block') throw guardBlocked(x.name, v.message);
    cur = v.body;
  }
  return cur;
}

/** The output guards' asynchronous judgements of a whole answer (see OutputGuard.judge); undefined
 * when none applies, so an unjudged answer takes no extra turn. */
export function guardJudge(g: Guards, ctx: RequestContext, body: unknown): Promise<void> | undefined {
  const js = g.output.filter((x) => x.judge && (!x.appliesTo || x.appliesTo(ctx)));
  if (!js.length) return undefined;
  return (async () => {
    for (const x of js) {
      try {
        await x.judge!(ctx, body);
      } catch (e) {
        throw guardFailed(x.name, e);
      }
    }
  })();
}

/** The output guards over a stream, chained: each sees what the one before let through. Returns
 * undefined when no guard looks at events (then no event is ever decoded). */
export function guardEvents(g: Guards, ctx: RequestContext): { event(ev: SSEEvent): SSEEvent[]; end(): SSEEvent[]; hold: boolean } | undefined {
  const stages = g.output.filter((x) => (x.checkEvent !== undefined || x.endStream !== undefined) && (!x.appliesTo || x.appliesTo(ctx)));
  if (!stages.length) return undefined;
  const held: SSEEvent[][] = stages.map(() => []);
  const decide = (k: number, v: EventVerdict | void, ev: SSEEvent | undefined): SSEEvent[] => {
    const name = stages[k]!.name;
    if (!v || v.action === 'pass' || (v.action === 'hold' && !ev)) {
      const out = held[k]!;
      if (!out.length) return ev ? [ev] : [];
      held[k] = [];
      if (ev) out.push(ev);
      return out;
    }
    if (v.action === 'hold') {
      held[k]!.push(ev!);
      return [];
    }
    if (v.action === 'block') throw guardBlocked(name, v.message);
    held[k] = [];
    return v.events;
  };
  /** one event through stage k */
  const check = (k: number, ev: SSEEvent): SSEEvent[] => {
    const x = stages[k]!;
    let v: EventVerdict | void;
    try {
      v = x.checkEvent?.(ctx, ev);
    } catch (e) {
      throw guardFailed(x.name, e);
    }
    return decide(k, v, ev);
  };
  const through = (from: number, events: SSEEvent[]): SSEEvent[] => {
    let cur = events;
    for (let k = from; k < stages.length; k++) {
      if (cur.length === 1) cur = check(k, cur[0]!); // the usual case: one event in, no arrays joined
      else {
        const next: SSEEvent[] = [];
        for (const ev of cur) next.push(...check(k, ev));
        cur = next;
      }
    }
    return cur;
  };
  return {
    hold: stages.some((x) => x.holdsStream?.(ctx) === true),
    // one output guard (the usual case): each event straight to it, without through()'s array
    event: stages.length === 1 ? (ev) => check(0, ev) : (ev) => through(0, [ev]),
    end: () => {
      const out: SSEEvent[] = [];
      for (let k = 0; k < stages.length; k++) {
        const x = stages[k]!;
        let v: EventVerdict | void;
        try {
          v = x.endStream?.(ctx);
        } catch (e) {
          throw guardFailed(x.name, e);
        }
        const released = decide(k, v, undefined);
        out.push(...through(k + 1, released));
      }
      return out;
    },
  };
}

// ---- settle ----

/** Tokens and cost are final: the price of the model alias at the time of the request (a
 * per_request price is charged for an answered request). */
export function settle(ctx: RequestContext): void {
  const price = ctx.model?.price;
  // per_request: for an answer that reached the client — a stream the client closed (499) after
  // content arrived is as answered as one it read to the end
  const answered = (ctx.status >= 200 && ctx.status < 300) || ctx.ttfbMs !== undefined;
  ctx.cost = price
    ? (ctx.promptTokens * price.input_per_million + ctx.completionTokens * price.output_per_million) / 1e6 + (price.per_request && answered ? price.per_request : 0)
    : 0;
}
