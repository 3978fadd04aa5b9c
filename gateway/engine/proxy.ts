// The hot path: one data-plane request through every stage of the pipeline.
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { errors as undiciErrors, type Dispatcher } from 'undici';
import { GatewayError, badRequest } from './errors.js';
import type { Ledger } from './ledger.js';
import type { Metrics } from './metrics.js';
import { orderTargets, resolveModel, type RouteFacts } from './router.js';
import type { EndpointRuntime, Runtime } from './runtime.js';
import type { KeyRecord, Snapshot, TargetConfig } from './snapshot.js';
import { SSEParser, SSETooLargeError, formatSSE, type SSEEvent } from './sse.js';
import {
  authenticate,
  authorizeModel,
  guardInput,
  settle,
  type Admission,
  type Guards,
  type KeyHasher,
  type Kind,
  type RequestContext,
} from './stages.js';
import { estimatePromptTokens, estimateTokensFromText } from './tokens.js';

const UPSTREAM_PATH: Record<Kind, string> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
};

export interface ProxyDeps {
  snapshot: () => Snapshot;
  runtime: Runtime;
  hasher: KeyHasher;
  admission: Admission;
  guards: Guards;
  ledger: Ledger;
  metrics: Metrics;
}

type Headers = Record<string, string | string[] | undefined>;

/** Why one attempt failed, and what that means for the next. */
class AttemptFailure extends Error {
  constructor(
    readonly outcome: string,
    message: string,
    readonly opts: { breaker: boolean; status?: number; retryAfterMs?: number; timeout?: boolean } = { breaker: true },
  ) {
    super(message);
  }
}

/** The target's breaker closed the door while this request waited for a slot. */
class TargetSkipped extends Error {}

/** The client's own x-request-id, when well-formed (kept in the ledger beside ours, and echoed). */
export function clientRequestId(h: Headers): string | undefined {
  const v = h['x-request-id'];
  return typeof v === 'string' && /^[\w.:-]{1,128}$/.test(v) ? v : undefined;
}

function firstHeader(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export function newContext(kind: Kind, id: string, snapshot: Snapshot, clientRequestId?: string): RequestContext {
  return {
    id,
    clientRequestId,
    kind,
    t0: performance.now(),
    ts: Date.now(),
    snapshot,
    abort: new AbortController(),
    key: undefined,
    user: undefined,
    session: undefined,
    traceparent: undefined,
    body: {},
    requestedModel: undefined,
    model: undefined,
    rule: undefined,
    stream: false,
    clientWantsUsage: false,
    attempts: 0,
    endpoint: undefined,
    upstreamModel: undefined,
    ttfbMs: undefined,
    promptTokens: 0,
    completionTokens: 0,
    estimated: false,
    cost: 0,
    status: 0,
    errorClass: undefined,
  };
}

function validateBody(kind: Kind, body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') throw badRequest('"model" is required and must be a non-empty string.', 'model');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw badRequest('"stream" must be a boolean.', 'stream');
  if (kind === 'chat') {
    if (!Array.isArray(b.messages) || b.messages.length === 0) throw badRequest('"messages" is required and must be a non-empty array.', 'messages');
    for (let i = 0; i < b.messages.length; i++) {
      const m = b.messages[i] as Record<string, unknown> | null;
      if (!m || typeof m !== 'object' || typeof m.role !== 'string')
        throw badRequest(`"messages[${i}].role" is required and must be a string.`, `messages[${i}].role`);
    }
    if (b.tools !== undefined && b.tools !== null && !Array.isArray(b.tools)) throw badRequest('"tools" must be an array.', 'tools');
  } else if (kind === 'completions') {
    if (b.prompt === undefined || b.prompt === null) throw badRequest('"prompt" is required.', 'prompt');
  } else if (b.input === undefined || b.input === null) throw badRequest('"input" is required.', 'input');
  if (b.stream_options !== undefined && b.stream_options !== null && typeof b.stream_options !== 'object')
    throw badRequest('"stream_options" must be an object.', 'stream_options');
  return b;
}

function parseRetryAfter(v: string | string[] | undefined): number | undefined {
  const s = Array.isArray(v) ? v[0] : v;
  if (!s) return undefined;
  const n = Number(s);
  if (Number.isFinite(n)) return Math.max(0, n * 1000);
  const d = Date.parse(s);
  return Number.isFinite(d) ? Math.max(0, d - Date.now()) : undefined;
}

function classifyError(e: unknown, clientAborted: boolean, timedOut: boolean): AttemptFailure {
  if (clientAborted) return new AttemptFailure('client_closed', 'client closed the request', { breaker: false });
  if (timedOut) return new AttemptFailure('timeout', 'request timed out', { breaker: true, timeout: true });
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

// The usual shape of a chat content chunk, recognised without parsing it (JSON.parse of every
// event before the first content was a visible share of a streamed request's CPU).
const CHAT_CONTENT_RE = /"delta":\{"content":"[^"]/;
// ... and the usual first chunk (role, empty content), recognised as not content: only objects of
// plain fields around one choice whose delta has nothing but the role and an empty content.
// (a field is a key with a plain string/number/literal value; "usage" only as null, as JSON.parse
// would then say exactly the same)
const PLAIN_FIELDS = '(?:"usage":null|"(?!usage")[^"\\\\]*":(?:"[^"\\\\]*"|-?\\d+(?:\\.\\d+)?|null|true|false))';
const CHAT_ROLE_CHUNK_RE = new RegExp(
  `^\\{(?:${PLAIN_FIELDS},)*"choices":\\[\\{"index":0,"delta":\\{"role":"assistant"(?:,"content":(?:""|null))?(?:,"refusal":null)?\\}(?:,"logprobs":null)?,"finish_reason":null\\}\\](?:,${PLAIN_FIELDS})*\\}$`,
);
// Events that may carry a finish reason or usage (checked precisely when this matches).
const FINISH_OR_USAGE_RE = /"(?:usage":\{|finish_reason":")/;

function isContentEvent(kind: Kind, ev: SSEEvent): boolean {
  if (ev.data === '[DONE]') return true;
  if (kind === 'chat' && CHAT_CONTENT_RE.test(ev.data)) return true;
  if (kind === 'chat' && CHAT_ROLE_CHUNK_RE.test(ev.data)) return false;
  let j: { choices?: { delta?: { content?: unknown; tool_calls?: unknown; refusal?: unknown }; text?: unknown; finish_reason?: unknown }[]; usage?: unknown };
  try {
    j = JSON.parse(ev.data);
  } catch {
    return true; // not ours to judge; pass it on
  }
  if (j.usage) return true;
  const c = j.choices?.[0];
  if (!c) return false;
  if (c.finish_reason) return true;
  if (kind === 'completions') return typeof c.text === 'string' && c.text.length > 0;
  const d = c.delta;
  return !!d && ((typeof d.content === 'string' && d.content.length > 0) || !!d.tool_calls || !!d.refusal);
}

function readUsage(u: unknown): { prompt: number; completion: number } | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const o = u as Record<string, unknown>;
  const prompt = Number(o.prompt_tokens ?? o.input_tokens ?? 0);
  const completion = Number(o.completion_tokens ?? o.output_tokens ?? 0);
  if (!Number.isFinite(prompt) || !Number.isFinite(completion)) return undefined;
  return { prompt, completion };
}

function completionText(json: unknown): string {
  const choices = (json as { choices?: { message?: { content?: unknown; tool_calls?: unknown }; text?: unknown }[] })?.choices;
  if (!Array.isArray(choices)) return '';
  let s = '';
  for (const c of choices) {
    if (typeof c.message?.content === 'string') s += c.message.content;
    if (c.message?.tool_calls) s += JSON.stringify(c.message.tool_calls);
    if (typeof c.text === 'string') s += c.text;
  }
  return s;
}

export class Proxy {
  constructor(private readonly d: ProxyDeps) {}

  /** Handle one request. Writes the response on `res` (raw Node response) itself. */
  /** A request refused before it reached the pipeline (e.g. malformed JSON): ledger and metrics only. */
  recordRejected(kind: Kind, id: string, headers: Headers, err: GatewayError, key?: KeyRecord): void {
    const ctx = newContext(kind, id, this.d.snapshot(), clientRequestId(headers));
    ctx.key = key;
    ctx.status = err.status;
    ctx.errorClass = err.code;
    this.finish(ctx);
  }

  /** `key`: already authenticated from the headers (the data plane does it before reading the body). */
  async handle(kind: Kind, id: string, body: unknown, headers: Headers, res: ServerResponse, preKey?: KeyRecord): Promise<void> {
    const ctx = newContext(kind, id, this.d.snapshot(), clientRequestId(headers));
    res.setHeader('x-airlock-request-id', ctx.id);
    if (ctx.clientRequestId) res.setHeader('x-request-id', ctx.clientRequestId);
    const onClose = () => {
      if (!res.writableFinished) ctx.abort.abort();
    };
    res.on('close', onClose);
    let admitted = false;
    try {
      ctx.key = preKey ?? authenticate(ctx.snapshot, this.d.hasher, headers);
      ctx.body = validateBody(kind, body);
      const b = ctx.body;
      ctx.requestedModel = b.model as string;
      ctx.stream = kind !== 'embeddings' && b.stream === true;
      ctx.clientWantsUsage = !!(b.stream_options as { include_usage?: unknown } | undefined)?.include_usage;
      const u = typeof b.user === 'string' && b.user ? b.user : firstHeader(headers, 'x-airlock-user');
      ctx.user = u ? u.slice(0, 256) : undefined;
      ctx.session = firstHeader(headers, 'x-airlock-session')?.slice(0, 256);
      ctx.traceparent = firstHeader(headers, 'traceparent');

      // route (alias resolution) before admission, so limits know the model
      const key = ctx.key;
      let promptEstimate: number | undefined;
      const facts: RouteFacts = {
        requestedModel: ctx.requestedModel,
        team: key.team,
        app: key.app,
        headers,
        hasTools: Array.isArray(b.tools) && b.tools.length > 0,
        promptTokens: () => (promptEstimate ??= estimatePromptTokens(b)),
      };
      const resolution = resolveModel(ctx.snapshot, facts);
      if (!resolution)
        throw new GatewayError(404, 'not_found_error', 'model_not_found', `The model "${ctx.requestedModel}" does not exist on this gateway.`, 'model');
      ctx.model = resolution.model;
      ctx.rule = resolution.rule;
      authorizeModel(key, ctx.requestedModel, ctx.model.name);

      await this.d.admission.admit(ctx);
      admitted = true;
      await guardInput(this.d.guards, ctx);
      await this.callUpstream(ctx, res);
    } catch (e) {
      this.fail(ctx, e, res);
    } finally {
      res.off('close', onClose);
      if (admitted) this.d.admission.release(ctx);
      this.finish(ctx);
    }
  }

  private fail(ctx: RequestContext, e: unknown, res: ServerResponse): void {
    const err =
      e instanceof GatewayError
        ? e
        : new GatewayError(500, 'server_error', 'internal_error', `Internal gateway error: ${(e as Error)?.message ?? String(e)}`);
    if (!ctx.errorClass) ctx.errorClass = err.code;
    if (err.status === 499 || ctx.abort.signal.aborted) {
      ctx.status = 499;
      ctx.errorClass = 'client_closed';
      if (!res.headersSent) res.destroy();
      return;
    }
    ctx.status = err.status;
    if (res.headersSent) {
      res.destroy();
      return;
    }
    const payload = JSON.stringify(err.body());
    const h: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), ...err.headers };
    if (ctx.attempts > 0) h['x-airlock-attempts'] = ctx.attempts;
    res.writeHead(err.status, h);
    res.end(payload);
  }

  private finish(ctx: RequestContext): void {
    settle(ctx);
    const latency = performance.now() - ctx.t0;
    const alias = ctx.model?.name ?? null;
    const team = ctx.key?.team ?? null;
    this.d.ledger.record({
      request_id: ctx.id,
      client_request_id: ctx.clientRequestId ?? null,
      ts: ctx.ts,
      kind: ctx.kind,
      key_name: ctx.key?.name ?? null,
      team,
      app: ctx.key?.app ?? null,
      user: ctx.user ?? null,
      session: ctx.session ?? null,
      requested_model: ctx.requestedModel ?? null,
      alias,
      endpoint: ctx.endpoint ?? null,
      upstream_model: ctx.upstreamModel ?? null,
      stream: ctx.stream ? 1 : 0,
      prompt_tokens: ctx.promptTokens,
      completion_tokens: ctx.completionTokens,
      estimated: ctx.estimated ? 1 : 0,
      cost: ctx.cost,
      ttfb_ms: ctx.ttfbMs === undefined ? null : Math.round(ctx.ttfbMs * 1000) / 1000,
      latency_ms: Math.round(latency * 1000) / 1000,
      status: ctx.status,
      attempts: ctx.attempts,
      error_class: ctx.errorClass ?? null,
    });
    const m = this.d.metrics;
    const model = alias ?? '';
    m.requests.inc({ kind: ctx.kind, model, endpoint: ctx.endpoint ?? '', status: String(ctx.status) });
    m.latency.observe({ kind: ctx.kind, model }, latency / 1000);
    if (ctx.ttfbMs !== undefined) m.ttfb.observe({ model }, ctx.ttfbMs / 1000);
    if (ctx.promptTokens || ctx.completionTokens) {
      const t = team ?? '';
      m.tokens.inc({ model, team: t, direction: 'prompt' }, ctx.promptTokens);
      m.tokens.inc({ model, team: t, direction: 'completion' }, ctx.completionTokens);
      if (ctx.cost) m.cost.inc({ model, team: t }, ctx.cost);
    }
  }

  // ---- route + call ----

  private async callUpstream(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const model = ctx.model!;
    const runtime = this.d.runtime;
    const settings = ctx.snapshot.settings;
    const failures: string[] = [];
    let last: AttemptFailure | undefined;
    let cycle = 0;
    while (ctx.attempts < model.maxAttempts) {
      const order = orderTargets(model, runtime);
      if (order.length === 0) break;
      // Prefer targets with a free slot now; the rest wait for one.
      const free = order.filter((t) => runtime.endpoint(t.endpoint)?.free);
      const ordered = free.length === order.length ? order : [...free, ...order.filter((t) => !free.includes(t))];
      for (const t of ordered) {
        if (ctx.attempts >= model.maxAttempts) break;
        if (ctx.attempts > 0 && !runtime.target(t).breaker.canPass()) continue;
        const ep = runtime.endpoint(t.endpoint);
        if (!ep) continue;
        ctx.attempts++;
        try {
          await this.attempt(ctx, t, ep, res);
          return;
        } catch (e) {
          if (e instanceof TargetSkipped) {
            ctx.attempts--;
            continue;
          }
          if (e instanceof GatewayError) throw e; // not an upstream failure (capacity, client closed)
          const f = e instanceof AttemptFailure ? e : classifyError(e, ctx.abort.signal.aborted, false);
          if (f.outcome === 'client_closed') throw new GatewayError(499, 'invalid_request_error', 'client_closed', 'client closed the request');
          last = f;
          failures.push(`${t.id}: ${f.message}`);
        }
      }
      cycle++;
      if (ctx.attempts >= model.maxAttempts) break;
      // Before going around again: honour a short retry-after, else back off a little.
      const wait = last?.opts.retryAfterMs !== undefined && last.opts.retryAfterMs <= settings.retry_after_cap_ms ? last.opts.retryAfterMs : Math.min(100 * 2 ** (cycle - 1), 1000);
      if (last?.opts.retryAfterMs !== undefined && last.opts.retryAfterMs > settings.retry_after_cap_ms) break;
      await sleep(wait, ctx.abort.signal);
      if (ctx.abort.signal.aborted) throw new GatewayError(499, 'invalid_request_error', 'client_closed', 'client closed the request');
    }
    throw this.exhausted(ctx, failures, last);
  }

  private exhausted(ctx: RequestContext, failures: string[], last: AttemptFailure | undefined): GatewayError {
    const model = ctx.model!;
    if (failures.length === 0) {
      const states = model.targets.map((t) => {
        const st = this.d.runtime.targetStatus(t);
        return `${t.id}: circuit ${st.breaker}${st.retry_at ? ` until ${st.retry_at}` : ''}${st.last_error ? ` (last error: ${st.last_error})` : ''}`;
      });
      ctx.errorClass = 'no_available_target';
      return new GatewayError(503, 'server_error', 'no_available_target', `No target of model "${model.name}" is available: ${states.join('; ')}`, null, { 'retry-after': '5' });
    }
    const summary = `All ${ctx.attempts} attempt${ctx.attempts === 1 ? '' : 's'} for model "${model.name}" failed: ${failures.join('; ')}`;
    ctx.errorClass = last?.outcome ?? 'upstream_error';
    if (last?.opts.status === 429) {
      const ra = last.opts.retryAfterMs;
      return new GatewayError(429, 'rate_limit_error', 'upstream_rate_limited', summary, null, ra !== undefined ? { 'retry-after': String(Math.ceil(ra / 1000)) } : {});
    }
    if (last?.opts.timeout) return new GatewayError(504, 'timeout_error', 'upstream_timeout', summary);
    return new GatewayError(502, 'upstream_error', 'upstream_failed', summary);
  }

  private async attempt(ctx: RequestContext, t: TargetConfig, ep: EndpointRuntime, res: ServerResponse): Promise<void> {
    const runtime = this.d.runtime;
    const tr = runtime.target(t);
    const cfg = ep.config;
    // Built before the upstream is contacted: a body that cannot be serialised is the client's
    // problem (GatewayError, 400) and never charges the target's breaker.
    const payload = upstreamPayload(ctx, t);
    const release = await ep.acquire(ctx.snapshot.settings.queue_timeout_ms, () => ctx.abort.signal);
    // Checked again after a wait for a slot: the breaker may have opened, or a half-open probe left.
    if (!tr.breaker.canPass()) {
      release();
      throw new TargetSkipped();
    }
    // undici accepts an EventEmitter as the signal: a fresh AbortSignal and its first listener cost
    // several µs per attempt, an emitter almost nothing (bench/RESULTS.md).
    const ctl = new EventEmitter();
    let timedOut = false;
    // The client leaving aborts the upstream request. Watched on the response, as handle() does
    // to abort ctx.abort, not on ctx.abort.signal: an AbortSignal and its first listener cost
    // several µs per request.
    const onClientAbort = () => {
      if (!res.writableFinished) ctl.emit('abort');
    };
    res.once('close', onClientAbort);
    const timer = setTimeout(() => {
      timedOut = true;
      ctl.emit('abort');
    }, cfg.timeoutMs);
    tr.breaker.onAttempt();
    tr.inflight++;
    const started = performance.now();
    let outcome = 'ok';
    try {
      const headers: Record<string, string> = { 'content-type': 'application/json', accept: ctx.stream ? 'text/event-stream' : 'application/json', 'x-request-id': ctx.id };
      if (cfg.apiKey) headers.authorization = `Bearer ${cfg.apiKey}`;
      if (ctx.traceparent) headers.traceparent = ctx.traceparent;
      let up: Dispatcher.ResponseData;
      try {
        up = await ep.pool.request({
          method: 'POST',
          path: upstreamPath(cfg.type, cfg.basePath, ctx.kind),
          headers,
          body: payload,
          signal: ctl,
          headersTimeout: ctx.stream ? cfg.firstByteTimeoutMs : cfg.firstByteTimeoutNonStreamMs,
          bodyTimeout: ctx.stream ? cfg.firstByteTimeoutMs : cfg.firstByteTimeoutNonStreamMs,
        });
      } catch (e) {
        throw classifyError(e, ctx.abort.signal.aborted, timedOut);
      }
      const status = up.statusCode;
      if (status < 200 || status >= 300) {
        const text = await readText(up.body, 64 * 1024).catch(() => '');
        const detail = upstreamErrorMessage(text);
        if (status === 429) {
          throw new AttemptFailure('http_429', `upstream returned 429${detail ? ` (${detail})` : ''}`, { breaker: false, status, retryAfterMs: parseRetryAfter(up.headers['retry-after']) });
        }
        if (status >= 500 || status === 408) {
          throw new AttemptFailure(`http_${status >= 500 ? '5xx' : status}`, `upstream returned ${status}${detail ? ` (${detail})` : ''}`, { breaker: true, status, timeout: status === 504 || status === 408 });
        }
        // The upstream refused the request itself: tell the client, do not retry elsewhere.
        tr.breaker.onSuccess();
        ctx.endpoint = t.endpoint;
        ctx.upstreamModel = t.upstreamModel;
        throw upstreamClientError(status, t, text);
      }
      ctx.endpoint = t.endpoint;
      ctx.upstreamModel = t.upstreamModel;
      if (ctx.stream) await this.pipeStream(ctx, t, up, res, started, () => timedOut);
      else await this.sendWhole(ctx, t, up, res, started, () => timedOut);
      if (ctx.errorClass === 'stream_interrupted') {
        // The client got a partial answer: the target failed, though nothing can be retried.
        outcome = 'stream_interrupted';
        tr.breaker.onFailure('stream broke after content was sent');
        tr.failures++;
      } else {
        tr.breaker.onSuccess();
        tr.successes++;
      }
    } catch (e) {
      const f = e instanceof AttemptFailure ? e : e instanceof GatewayError ? undefined : classifyError(e, ctx.abort.signal.aborted, timedOut);
      if (f) {
        outcome = f.outcome;
        if (f.outcome === 'client_closed') tr.breaker.onNeutral();
        else if (f.opts.breaker) {
          tr.breaker.onFailure(f.message);
          tr.failures++;
        } else tr.breaker.onNeutral();
        throw f;
      }
      outcome = 'rejected';
      throw e;
    } finally {
      // Whatever ended the attempt (e.g. the client leaving mid-stream), a half-open probe slot is freed.
      tr.breaker.onNeutral();
      clearTimeout(timer);
      res.off('close', onClientAbort);
      tr.inflight--;
      release();
      this.d.metrics.attempts.inc({ endpoint: t.endpoint, outcome });
    }
  }

  private headerBlock(ctx: RequestContext, t: TargetConfig, contentType: string): Record<string, string | number> {
    return {
      'content-type': contentType,
      'x-airlock-request-id': ctx.id,
      'x-airlock-endpoint': t.endpoint,
      'x-airlock-attempts': ctx.attempts,
      'x-airlock-model': ctx.model!.name,
    };
  }

  private async sendWhole(ctx: RequestContext, t: TargetConfig, up: Dispatcher.ResponseData, res: ServerResponse, started: number, timedOut: () => boolean): Promise<void> {
    const ct = String(up.headers['content-type'] ?? '');
    let buf: Buffer;
    try {
      buf = await readBytes(up.body, ctx.snapshot.settings.limits.max_response_bytes, Number(up.headers['content-length']));
    } catch (e) {
      if (e instanceof AttemptFailure) throw e;
      throw classifyError(e, ctx.abort.signal.aborted, timedOut());
    }
    this.d.runtime.target(t).observeTtfb(performance.now() - started);
    if (!/json/i.test(ct)) throw new AttemptFailure('invalid_response', `upstream answered with content-type "${ct || 'none'}", not JSON`);
    let json: unknown;
    try {
      json = JSON.parse(buf.toString('utf8'));
    } catch {
      throw new AttemptFailure('invalid_response', 'upstream answered with invalid JSON');
    }
    if (!json || typeof json !== 'object' || Array.isArray(json)) throw new AttemptFailure('invalid_response', 'upstream answered with JSON that is not an object');
    // A 200 that carries an error instead of an answer is a failed attempt, not a success.
    const list = ctx.kind === 'embeddings' ? (json as { data?: unknown }).data : (json as { choices?: unknown }).choices;
    if (!Array.isArray(list)) {
      const err = (json as { error?: unknown }).error;
      if (err !== undefined && err !== null) throw new AttemptFailure('upstream_error', `upstream answered 200 with an error: ${upstreamErrorMessage(JSON.stringify(json)) || 'no message'}`);
      throw new AttemptFailure('invalid_response', `upstream answered 200 without ${ctx.kind === 'embeddings' ? '"data"' : '"choices"'}`);
    }
    for (const g of this.d.guards.output) g.checkBody?.(ctx, json);
    const usage = readUsage((json as { usage?: unknown }).usage);
    if (usage) {
      ctx.promptTokens = usage.prompt;
      ctx.completionTokens = usage.completion;
    } else {
      ctx.estimated = true;
      ctx.promptTokens = estimatePromptTokens(ctx.body);
      ctx.completionTokens = estimateTokensFromText(completionText(json));
    }
    ctx.ttfbMs = performance.now() - ctx.t0;
    ctx.status = 200;
    const h = this.headerBlock(ctx, t, 'application/json');
    h['content-length'] = buf.length;
    res.writeHead(200, h);
    res.end(buf);
  }

  private async pipeStream(ctx: RequestContext, t: TargetConfig, up: Dispatcher.ResponseData, res: ServerResponse, started: number, timedOut: () => boolean): Promise<void> {
    const ct = String(up.headers['content-type'] ?? '');
    if (!/text\/event-stream/i.test(ct)) {
      await readText(up.body, 64 * 1024).catch(() => '');
      throw new AttemptFailure('invalid_response', `upstream answered a stream request with content-type "${ct || 'none'}", not text/event-stream`);
    }
    const parser = new SSEParser({ maxEventBytes: ctx.snapshot.settings.limits.max_event_bytes });
    const it = chunkReader(up.body);
    const outputGuards = this.d.guards.output.filter((g) => g.checkEvent);
    let committed = false;
    let pending = '';
    let done = false;
    let finished = false;
    let chunks = 0;
    let usageSeen = false;
    let upstreamError: string | undefined;

    // Returns the text to write for these events, and records what they tell.
    const take = (events: SSEEvent[]): string => {
      let out = '';
      for (const ev of events) {
        if (ev.data === '[DONE]') {
          done = true;
          out += 'data: [DONE]\n\n';
          continue;
        }
        const d = ev.data;
        if (d.startsWith('{"error"')) upstreamError = d.slice(0, 500);
        // one regex scan instead of two includes() per event (3x cheaper on typical chunks)
        const marked = FINISH_OR_USAGE_RE.test(d);
        if (marked && !finished && d.includes('"finish_reason":"')) finished = true;
        if (marked && d.includes('"usage":{')) {
          try {
            const j = JSON.parse(d) as { usage?: unknown; choices?: unknown[] };
            const u = readUsage(j.usage);
            if (u) {
              usageSeen = true;
              ctx.promptTokens = u.prompt;
              ctx.completionTokens = u.completion;
            }
            if (!ctx.clientWantsUsage && Array.isArray(j.choices) && j.choices.length === 0) continue; // the extra chunk we asked for
          } catch {
            /* pass through as is */
          }
        }
        chunks++;
        for (const g of outputGuards) g.checkEvent!(ctx, ev);
        out += formatSSE(ev);
      }
      return out;
    };

    const commit = () => {
      committed = true;
      ctx.ttfbMs = performance.now() - ctx.t0;
      ctx.status = 200;
      const h = this.headerBlock(ctx, t, 'text/event-stream; charset=utf-8');
      h['cache-control'] = 'no-cache';
      h['x-accel-buffering'] = 'no';
      res.writeHead(200, h);
      if (done) res.end(pending); // the whole stream is already here: one write, not two
      else if (pending) res.write(pending);
      pending = '';
    };

    try {
      // Phase 1: hold everything until the first content event, so a failure before it can fall back.
      while (!committed) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (e) {
          throw classifyError(e, ctx.abort.signal.aborted, timedOut());
        }
        if (r.done) {
          const tail = take(parser.end());
          if (done || finished) {
            pending += tail;
            this.d.runtime.target(t).observeTtfb(performance.now() - started);
            commit();
            break;
          }
          throw new AttemptFailure('stream_error', 'upstream closed the stream before sending any content');
        }
        const events = parser.feed(r.value);
        const content = events.some((ev) => isContentEvent(ctx.kind, ev));
        if (events.length && events[0]!.data.startsWith('{"error"')) {
          throw new AttemptFailure('stream_error', `upstream sent an error before any content: ${events[0]!.data.slice(0, 300)}`);
        }
        pending += take(events);
        if (content) {
          this.d.runtime.target(t).observeTtfb(performance.now() - started);
          commit();
        }
      }
      // Phase 2: pass through as it arrives.
      while (!done) {
        let r: IteratorResult<Buffer>;
        try {
          r = await it.next();
        } catch (e) {
          if (ctx.abort.signal.aborted) throw new GatewayError(499, 'invalid_request_error', 'client_closed', 'client closed the request');
          this.breakStream(ctx, res, `${timedOut() ? 'upstream stream timed out' : 'upstream connection broke'} after ${chunks} chunks (${(e as Error).message})`);
          return;
        }
        if (r.done) {
          parser.end();
          if (finished && !upstreamError) {
            res.end('data: [DONE]\n\n');
            done = true;
            break;
          }
          this.breakStream(ctx, res, `upstream ended the stream after ${chunks} chunks without finishing${upstreamError ? `: ${upstreamError}` : ''}`);
          return;
        }
        const out = take(parser.feed(r.value));
        if (out && !res.write(out)) await drain(res, ctx.abort.signal);
      }
      if (!res.writableEnded) res.end();
      // drain anything after [DONE] so the connection can be reused (up to a limit: then it is cut)
      void (async () => {
        try {
          for (let left = ctx.snapshot.settings.limits.max_event_bytes; ; ) {
            const r = await it.next();
            if (r.done) break;
            if ((left -= r.value.length) < 0) return void up.body.destroy();
          }
        } catch {
          /* ignore */
        }
      })();
    } catch (e) {
      if (!(e instanceof SSETooLargeError)) throw e;
      up.body.destroy(); // cut, not drained (chunkReader listens for the error this raises)
      const why = `upstream sent a streamed event larger than settings.limits.max_event_bytes (${e.limit} bytes)`;
      if (!committed) throw new AttemptFailure('too_large', why);
      this.breakStream(ctx, res, why);
    } finally {
      if (!usageSeen) {
        ctx.estimated = true;
        ctx.promptTokens = estimatePromptTokens(ctx.body);
        // one chunk is about one token for streaming servers; the role chunk and finish chunk carry none
        ctx.completionTokens = Math.max(0, chunks - 2);
      }
      // (res.destroyed first: ctx.abort is only ever aborted by the response closing early, and
      // reading ctx.abort.signal creates an AbortSignal, several µs on every stream)
      if (committed && res.destroyed && ctx.abort.signal.aborted) {
        ctx.status = 499;
        ctx.errorClass = 'client_closed';
      }
    }
  }

  /** The stream broke after content reached the client: say so in-band, then cut the connection. */
  private breakStream(ctx: RequestContext, res: ServerResponse, why: string): void {
    ctx.errorClass = 'stream_interrupted';
    const ev = { error: { message: `Stream interrupted: ${why}. The answer is incomplete.`, type: 'upstream_error', code: 'stream_interrupted', param: null } };
    res.write(`data: ${JSON.stringify(ev)}\n\n`);
    res.socket?.uncork(); // node corks a response's writes until the next tick: without this the cut loses the event
    // No terminating chunk: HTTP clients see a truncated body, not a clean end.
    res.destroy();
  }
}

function upstreamPayload(ctx: RequestContext, t: TargetConfig): string {
  const upstreamBody: Record<string, unknown> = { ...ctx.body, model: t.upstreamModel };
  if (ctx.stream) upstreamBody.stream_options = { ...(ctx.body.stream_options as object | undefined), include_usage: true };
  try {
    return JSON.stringify(upstreamBody);
  } catch (e) {
    throw new GatewayError(400, 'invalid_request_error', 'invalid_body', `The request body cannot be forwarded: ${(e as Error).message}`);
  }
}

function upstreamPath(type: 'openai' | 'ollama', basePath: string, kind: Kind): string {
  const base = type === 'ollama' && !/\/v1$/.test(basePath) ? `${basePath}/v1` : basePath;
  return base + UPSTREAM_PATH[kind];
}

function upstreamErrorMessage(text: string): string {
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

function upstreamClientError(status: number, t: TargetConfig, text: string): GatewayError {
  const type = status === 401 || status === 403 ? 'upstream_error' : status === 404 ? 'not_found_error' : status === 413 ? 'invalid_request_error' : 'invalid_request_error';
  const msg = upstreamErrorMessage(text) || `status ${status}`;
  // 401/403 from the upstream is a gateway misconfiguration (its api_key), not the client's fault.
  const st = status === 401 || status === 403 ? 502 : status;
  return new GatewayError(st, type, 'upstream_rejected', `Endpoint "${t.endpoint}" rejected the request for model "${t.upstreamModel}": ${msg}`, null, { 'x-airlock-endpoint': t.endpoint });
}

/**
 * The chunks of a response body, one `next()` at a time, like its async iterator but about half
 * the cost per streamed request (the iterator was the largest single overhead of a short stream).
 * Buffers at most ~16 chunks before pausing the body, so a slow client still slows the upstream.
 */
function chunkReader(body: Dispatcher.ResponseData['body']): { next(): Promise<IteratorResult<Buffer, undefined>> } {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: unknown;
  let waiter: { resolve: (r: IteratorResult<Buffer, undefined>) => void; reject: (e: unknown) => void } | undefined;
  const settle = () => {
    if (!waiter) return;
    const w = waiter;
    if (queue.length) {
      waiter = undefined;
      w.resolve({ value: queue.shift()!, done: false });
    } else if (failure !== undefined) {
      waiter = undefined;
      w.reject(failure);
    } else if (ended) {
      waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  };
  body.on('data', (c: Buffer) => {
    queue.push(c);
    if (queue.length >= 16) body.pause();
    settle();
  });
  body.once('end', () => {
    ended = true;
    settle();
  });
  body.once('error', (e: unknown) => {
    failure = e;
    settle();
  });
  body.once('close', () => {
    if (ended || failure !== undefined) return;
    failure = Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    settle();
  });
  return {
    next() {
      if (queue.length) {
        const value = queue.shift()!;
        if (queue.length < 4 && body.isPaused()) body.resume();
        return Promise.resolve({ value, done: false });
      }
      if (failure !== undefined) return Promise.reject(failure);
      if (ended) return Promise.resolve({ value: undefined, done: true });
      if (body.isPaused()) body.resume();
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
  };
}

// Events rather than `for await`: the async iterator costs a promise per chunk on the hot path.
// Past `limit` (settings.limits.max_response_bytes) the body is destroyed, which cuts the connection.
function readBytes(body: Dispatcher.ResponseData['body'], limit: number, declared: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const tooLarge = () => {
      reject(new AttemptFailure('too_large', `upstream answer is larger than settings.limits.max_response_bytes (${limit} bytes)`));
      body.destroy();
    };
    body.on('data', (chunk: Buffer) => {
      n += chunk.length;
      if (n > limit) return tooLarge();
      parts.push(chunk);
    });
    let ended = false;
    body.once('end', () => {
      ended = true;
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, n));
    });
    body.once('error', reject);
    body.once('close', () => {
      if (!ended) reject(new Error('upstream response closed before its end')); // (an Error per request is not free)
    });
    if (declared > limit) tooLarge(); // a content-length over the limit: nothing is read
  });
}

async function readText(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  let s = '';
  for await (const chunk of body as AsyncIterable<Buffer>) {
    s += chunk.toString('utf8');
    if (s.length >= limit) break; // the rest is not read: leaving the loop destroys the body (the connection is cut)
  }
  return s.slice(0, limit);
}

function drain(res: ServerResponse, signal: AbortSignal): Promise<void> {
  // A client already gone fires neither 'drain' nor 'close' again: waiting would hold the slot forever.
  if (res.destroyed || res.writableEnded || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
