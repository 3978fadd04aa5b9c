// One upstream attempt at one target, whatever the protocol: take a concurrency slot, check the
// breaker, send the request with its timeouts, classify what went wrong, and keep the breaker's
// books. What the answer means (and how it reaches the client) is the protocol's `consume`;
// an upstream's own refusal (4xx) is the protocol's `rejected`. The OpenAI protocol uses it
// today; the Anthropic/Responses translations and MCP-over-HTTP calls reuse it.
import { performance } from 'node:perf_hooks';
import { errors as undiciErrors } from './undici.js';
import { GatewayError } from './errors.js';
import { channels, type AttemptEnd, type AttemptStart, type QueueGiveUp } from './events.js';
import { dispatchCall, type UpstreamAnswer } from './upstream-call.js';
import type { EndpointRuntime, Runtime } from './runtime.js';
import type { TargetConfig } from './snapshot.js';
import type { RequestContext } from './stages.js';

/** Why one attempt failed, and what that means for the next. */
export class AttemptFailure extends Error {
  constructor(
    readonly outcome: string,
    message: string,
    readonly opts: { breaker: boolean; status?: number; retryAfterMs?: number; timeout?: boolean } = { breaker: true },
  ) {
    super(message);
  }
}

/** The target's breaker closed the door while this request waited for a slot. */
export class TargetSkipped extends Error {}

export function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const n = Number(s);
  if (Number.isFinite(n)) return Math.max(0, n * 1000);
  const d = Date.parse(s);
  return Number.isFinite(d) ? Math.max(0, d - Date.now()) : undefined;
}

export function classifyError(e: unknown, clientAborted: boolean, timedOut: boolean): AttemptFailure {
  if (clientAborted) return new AttemptFailure('client_closed', 'client closed the request', { breaker: false });
  if (timedOut) return new AttemptFailure('timeout', 'request timed out', { breaker: true, timeout: true });
  if (e instanceof AttemptFailure) return e;
  const err = e as { code?: string; message?: string; cause?: { code?: string; message?: string } };
  const code = err.code ?? err.cause?.code;
  if (e instanceof undiciErrors.HeadersTimeoutError || code === 'UND_ERR_HEADERS_TIMEOUT')
    return new AttemptFailure('timeout', 'no response headers within the first-byte timeout', { breaker: true, timeout: true });
  if (e instanceof undiciErrors.BodyTimeoutError || code === 'UND_ERR_BODY_TIMEOUT')
    return new AttemptFailure('timeout', 'no data within the first-byte timeout', { breaker: true, timeout: true });
  if (code === 'UND_ERR_CONNECT_TIMEOUT') return new AttemptFailure('connect_error', 'connect timeout', { breaker: true, timeout: true });
  if (code === 'ECONNREFUSED') return new AttemptFailure('connect_error', 'connection refused', { breaker: true });
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new AttemptFailure('connect_error', 'host not found', { breaker: true });
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE')
    return new AttemptFailure('connect_error', 'connection closed by the upstream', { breaker: true });
  return new AttemptFailure('upstream_error', err.message ?? String(e), { breaker: true });
}

/** The message an upstream's error answer carries (OpenAI, FastAPI, TGI shapes), short. */
export function upstreamErrorMessage(text: string): string {
  if (!text) return '';
  try {
    const j = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown; detail?: unknown };
    const m = typeof j.error === 'string' ? j.error : (j.error?.message ?? j.message ?? j.detail);
    if (typeof m === 'string') return m.slice(0, 300);
  } catch {
    /* not JSON */
  }
  return text.slice(0, 200).replace(/\s+/g, ' ').trim();
}

export interface UpstreamCall {
  method: 'POST' | 'GET';
  path: string;
  headers: Record<string, string>;
  body: string | undefined;
  /** for the response headers, and for each body chunk after them */
  firstByteTimeoutMs: number;
}

export interface AttemptTiming {
  /** performance.now() when the request was sent */
  started: number;
  /** the whole-request timeout (endpoint timeout_ms) fired */
  timedOut(): boolean;
}

export interface AttemptProtocol<T> {
  /** Read a 2xx answer and deliver it to the client. Throw AttemptFailure for an answer that failed
   * (falls back when nothing reached the client yet); a GatewayError is the request's own outcome
   * (a guard's decision, the client leaving) and never charges the breaker. */
  consume(up: UpstreamAnswer, timing: AttemptTiming): Promise<T>;
  /** An upstream 4xx other than 408/429: the request's own error, not retried elsewhere. */
  rejected(status: number, text: string): GatewayError;
  /** After consume: did the answer break after content reached the client? (charges the breaker) */
  brokeAfterContent?(): boolean;
}

export interface AttemptInput<T> {
  source: object;
  runtime: Runtime;
  ep: EndpointRuntime;
  target: TargetConfig;
  ctx: RequestContext;
  call: UpstreamCall;
  queueTimeoutMs: number;
  /** subscribe to the client leaving early; returns the unsubscribe */
  onClientGone(fn: () => void): () => void;
  protocol: AttemptProtocol<T>;
}

export async function runAttempt<T>(a: AttemptInput<T>): Promise<T> {
  const { runtime, ep, target: t, ctx, call } = a;
  const tr = runtime.target(t);
  const cfg = ep.config;
  const queued = performance.now();
  let release: () => void;
  try {
    release = await ep.acquire(a.queueTimeoutMs, () => ctx.abort.signal, ctx.share);
  } catch (e) {
    if (channels.queueGiveUp.hasSubscribers) {
      const reason = e instanceof GatewayError ? e.code : 'error';
      channels.queueGiveUp.publish({ source: a.source, ctx, target: t, queueMs: performance.now() - queued, reason, error: (e as Error).message } satisfies QueueGiveUp);
    }
    throw e;
  }
  // Checked again after a wait for a slot: the breaker may have opened, or a half-open probe left.
  if (!tr.breaker.canPass()) {
    release();
    throw new TargetSkipped();
  }
  let abort: ((e: Error) => void) | undefined;
  let timedOut = false;
  const offClient = a.onClientGone(() => abort?.(new AttemptFailure('client_closed', 'client closed the request', { breaker: false })));
  const timer = setTimeout(() => {
    timedOut = true;
    abort?.(new AttemptFailure('timeout', 'request timed out', { breaker: true, timeout: true }));
  }, cfg.timeoutMs);
  // the endpoint the request is with: it served the answer, or (when every attempt failed) it
  // was the last one tried — the ledger row and the metrics name it either way
  ctx.endpoint = t.endpoint;
  ctx.upstreamModel = t.upstreamModel;
  tr.breaker.onAttempt();
  tr.inflight++;
  const started = performance.now();
  const attemptNo = ctx.attempts;
  if (channels.attemptStart.hasSubscribers) channels.attemptStart.publish({ source: a.source, ctx, target: t, attempt: attemptNo, headers: call.headers, queueMs: started - queued } satisfies AttemptStart);
  let outcome = 'ok';
  let error: string | undefined;
  let up: UpstreamAnswer | undefined;
  try {
    try {
      const c = dispatchCall(ep.pool, {
        method: call.method,
        path: call.path,
        headers: call.headers,
        body: call.body,
        headersTimeout: call.firstByteTimeoutMs,
        bodyTimeout: call.firstByteTimeoutMs,
      });
      abort = c.abort;
      up = await c.answer;
    } catch (e) {
      throw classifyError(e, ctx.abort.signal.aborted, timedOut);
    }
    const status = up.statusCode;
    if (status < 200 || status >= 300) {
      const text = await up.body.text(64 * 1024).catch(() => '');
      const detail = upstreamErrorMessage(text);
      if (status === 429)
        throw new AttemptFailure('http_429', `upstream returned 429${detail ? ` (${detail})` : ''}`, { breaker: false, status, retryAfterMs: parseRetryAfter(up.header('retry-after')) });
      if (status >= 500 || status === 408)
        throw new AttemptFailure(`http_${status >= 500 ? '5xx' : status}`, `upstream returned ${status}${detail ? ` (${detail})` : ''}`, { breaker: true, status, timeout: status === 504 || status === 408 });
      // The upstream refused the request itself: the client's answer, not retried elsewhere.
      tr.breaker.onSuccess();
      throw a.protocol.rejected(status, text);
    }
    // the gateway asks for identity (upstreamHeaders) and reads bytes as they come: a compressed
    // answer (a server or proxy that compresses regardless) cannot be inspected or forwarded
    const encoding = up.header('content-encoding');
    if (encoding !== undefined && encoding.trim() !== '' && encoding.trim().toLowerCase() !== 'identity') {
      up.body.discard(64 * 1024);
      throw new AttemptFailure(
        'invalid_response',
        `upstream answered with content-encoding "${encoding.slice(0, 40)}" although the gateway asked for none (accept-encoding: identity); turn compression off for this server or its proxy`,
      );
    }
    const result = await a.protocol.consume(up, { started, timedOut: () => timedOut });
    if (a.protocol.brokeAfterContent?.()) {
      // The client got a partial answer: the target failed, though nothing can be retried.
      outcome = 'stream_interrupted';
      error = 'stream broke after content was sent';
      tr.breaker.onFailure(error);
      tr.failures++;
    } else {
      tr.breaker.onSuccess();
      tr.successes++;
    }
    return result;
  } catch (e) {
    if (e instanceof GatewayError) {
      // the request's own outcome (the upstream's refusal, a guard's decision, the client leaving)
      outcome = e.code === 'client_closed' ? 'client_closed' : 'rejected';
      error = e.message;
      throw e;
    }
    const f = classifyError(e, ctx.abort.signal.aborted, timedOut);
    outcome = f.outcome;
    error = f.message;
    if (f.outcome !== 'client_closed' && f.opts.breaker) {
      tr.breaker.onFailure(f.message);
      tr.failures++;
    }
    throw f;
  } finally {
    // Whatever ended the attempt (e.g. the client leaving mid-stream), a half-open probe slot is freed.
    tr.breaker.onNeutral();
    // what is left of a body nobody reads to its end (after a stream's [DONE], an answer that
    // failed a check) is read and dropped so the connection can serve the next request; past
    // 64 KiB the connection is cut instead
    up?.body.discard(64 * 1024);
    clearTimeout(timer);
    offClient();
    tr.inflight--;
    release();
    if (channels.attemptEnd.hasSubscribers)
      channels.attemptEnd.publish({ source: a.source, ctx, target: t, attempt: attemptNo, outcome, error, durationMs: performance.now() - started } satisfies AttemptEnd);
  }
}
