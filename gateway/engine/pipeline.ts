// The hot path: one data-plane request through every stage of the pipeline —
// authenticate → admit → guard input → route (pick target, retry, fall back) → call upstream
// (attempt.ts; the protocol's part in openai/protocol.ts) → guard output → settle → release →
// record. Recording is not done here: the request's lifecycle events (events.ts) carry it to
// whoever subscribes — the ledger, the metrics, tracing.
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { AttemptFailure, TargetSkipped, classifyError, runAttempt } from './attempt.js';
import { GatewayError, badRequest, clientClosed, gatewayError } from './errors.js';
import { channels, type RequestEnd, type RequestStart } from './events.js';
import { sleep } from './io.js';
import { openAIProtocol, upstreamHeaders, upstreamPath, upstreamPayload, validateBody } from './openai/protocol.js';
import { orderTargets, resolveModel, type RouteFacts } from './router.js';
import type { Runtime } from './runtime.js';
import type { KeyRecord, Snapshot } from './snapshot.js';
import { parsePriority, parseTags } from '../governance/attribution.js';
import type { ProtocolAdapter } from './translate.js';
import { GuardRetry, authenticate, authorizeModel, guardInput, promptEstimate, settle, type Admission, type Guards, type KeyHasher, type Kind, type RequestContext } from './stages.js';

export interface PipelineDeps {
  snapshot: () => Snapshot;
  runtime: Runtime;
  hasher: KeyHasher;
  admission: Admission;
  guards: Guards;
  /** client protocols served by translation onto chat (Anthropic Messages, Responses): translate.ts */
  adapters?: Partial<Record<Kind, ProtocolAdapter>>;
}

type Headers = Record<string, string | string[] | undefined>;

/** The client's own x-request-id, when well-formed (kept in the ledger beside ours, and echoed). */
export function clientRequestId(h: Headers): string | undefined {
  const v = h['x-request-id'];
  return typeof v === 'string' && /^[\w.:-]{1,128}$/.test(v) ? v : undefined;
}

function firstHeader(h: Headers, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v[0] : v;
}

export function newContext(kind: Kind, id: string, snapshot: Snapshot, clientId?: string): RequestContext {
  return {
    id,
    clientRequestId: clientId,
    kind,
    t0: performance.now(),
    ts: Date.now(),
    snapshot,
    abort: new AbortController(),
    key: undefined,
    user: undefined,
    session: undefined,
    traceparent: undefined,
    upstreamTraceparent: undefined,
    finishReasons: undefined,
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
    promptEstimate: undefined,
    admissionHold: undefined,
    guardState: undefined,
    traceState: undefined,
    tags: undefined,
    priorityHint: undefined,
    share: undefined,
    responseHeaders: undefined,
    downgradedFrom: undefined,
    promptTokens: 0,
    completionTokens: 0,
    estimated: false,
    cost: 0,
    status: 0,
    errorClass: undefined,
  };
}

export class Pipeline {
  constructor(private readonly d: PipelineDeps) {}

  /** An error answer's body in the shape the client's protocol uses. */
  errorBody(kind: Kind, err: GatewayError): unknown {
    return this.d.adapters?.[kind]?.errorBody(err) ?? err.body();
  }

  /** A request refused before it reached the pipeline (e.g. malformed JSON): recorded only. */
  recordRejected(kind: Kind, id: string, headers: Headers, err: GatewayError, key?: KeyRecord): void {
    const ctx = newContext(kind, id, this.d.snapshot(), clientRequestId(headers));
    ctx.key = key;
    ctx.status = err.status;
    ctx.errorClass = err.code;
    this.end(ctx);
  }

  /** Handle one request; writes the response on `res` (the raw Node response) itself.
   * `preKey`: already authenticated from the headers (the data plane does it before reading the body). */
  async handle(kind: Kind, id: string, body: unknown, headers: Headers, res: ServerResponse, preKey?: KeyRecord): Promise<void> {
    const ctx = newContext(kind, id, this.d.snapshot(), clientRequestId(headers));
    res.setHeader('x-airlock-request-id', ctx.id);
    if (ctx.clientRequestId) res.setHeader('x-request-id', ctx.clientRequestId);
    const onClose = () => {
      if (!res.writableFinished) ctx.abort.abort();
    };
    res.on('close', onClose);
    if (channels.requestStart.hasSubscribers) channels.requestStart.publish({ source: this, ctx } satisfies RequestStart);
    let admitted = false;
    try {
      // authenticate
      ctx.key = preKey ?? authenticate(ctx.snapshot, this.d.hasher, headers);
      const adapter = this.d.adapters?.[kind];
      // a translated protocol becomes a chat body here: every stage after this sees a chat request
      ctx.body = adapter ? adapter.toChat(body, ctx) : validateBody(kind, body);
      const b = ctx.body;
      ctx.requestedModel = b.model as string;
      ctx.stream = kind !== 'embeddings' && b.stream === true;
      ctx.clientWantsUsage = !!(b.stream_options as { include_usage?: unknown } | undefined)?.include_usage;
      const u = typeof b.user === 'string' && b.user ? b.user : firstHeader(headers, 'x-airlock-user');
      ctx.user = u ? u.slice(0, 256) : undefined;
      ctx.session = firstHeader(headers, 'x-airlock-session')?.slice(0, 256);
      ctx.traceparent = firstHeader(headers, 'traceparent');
      ctx.tags = parseTags(headers);
      ctx.priorityHint = parsePriority(headers);

      // route (alias resolution) before admission, so limits know the model
      const key = ctx.key;
      const facts: RouteFacts = {
        requestedModel: ctx.requestedModel,
        team: key.team,
        app: key.app,
        headers,
        hasTools: Array.isArray(b.tools) && b.tools.length > 0,
        promptTokens: () => promptEstimate(ctx),
      };
      const resolution = resolveModel(ctx.snapshot, facts);
      if (!resolution) throw gatewayError('model_not_found', `The model "${ctx.requestedModel}" does not exist on this gateway.`, { param: 'model' });
      ctx.model = resolution.model;
      ctx.rule = resolution.rule;
      authorizeModel(key, ctx.requestedModel, ctx.model.name);

      // admit → guard input → call
      try {
        await this.d.admission.admit(ctx);
      } finally {
        if (ctx.responseHeaders) for (const h in ctx.responseHeaders) res.setHeader(h, ctx.responseHeaders[h]!);
      }
      admitted = true;
      const guarding = guardInput(this.d.guards, ctx);
      if (guarding) await guarding;
      await this.callUpstream(ctx, res);
    } catch (e) {
      this.fail(ctx, e, res);
    } finally {
      res.off('close', onClose);
      // settle before release: admission sees the real tokens and cost of what it admitted
      settle(ctx);
      if (admitted) this.d.admission.release(ctx);
      this.end(ctx, true);
    }
  }

  private fail(ctx: RequestContext, e: unknown, res: ServerResponse): void {
    const err = e instanceof GatewayError ? e : gatewayError('internal_error', `Internal gateway error: ${(e as Error)?.message ?? String(e)}`);
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
    const payload = JSON.stringify(this.errorBody(ctx.kind, err));
    const h: Record<string, string | number> = { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), ...err.headers };
    if (ctx.attempts > 0) h['x-airlock-attempts'] = ctx.attempts;
    res.writeHead(err.status, h);
    res.end(payload);
  }

  /** The request is over: settled, published to the recorders. */
  private end(ctx: RequestContext, settled = false): void {
    if (!settled) settle(ctx);
    if (channels.requestEnd.hasSubscribers) channels.requestEnd.publish({ source: this, ctx, latencyMs: performance.now() - ctx.t0 } satisfies RequestEnd);
  }

  // ---- route + call ----

  private async callUpstream(ctx: RequestContext, res: ServerResponse): Promise<void> {
    const model = ctx.model!;
    const runtime = this.d.runtime;
    const settings = ctx.snapshot.settings;
    const failures: string[] = [];
    const adapter = this.d.adapters?.[ctx.kind];
    const onClientGone = (fn: () => void) => {
      // watched on the response, not on ctx.abort.signal: an AbortSignal and its first listener
      // cost several µs per request
      const h = () => {
        if (!res.writableFinished) fn();
      };
      res.once('close', h);
      return () => res.off('close', h);
    };
    let last: AttemptFailure | undefined;
    let cycle = 0;
    let guardRetried = false;
    while (ctx.attempts < model.maxAttempts) {
      let order = orderTargets(model, runtime);
      if (order.length === 0) break;
      // an endpoint that speaks only the Anthropic Messages API serves only /v1/messages
      if (ctx.kind !== 'messages') {
        const all = order;
        order = order.filter((t) => runtime.endpoint(t.endpoint)?.config.type !== 'anthropic');
        if (order.length === 0)
          throw badRequest(`The model "${model.name}" is served by Anthropic Messages endpoints only (${all.map((t) => t.endpoint).join(', ')}): call POST /v1/messages.`, 'model');
      }
      // Prefer targets with a free slot now; the rest wait for one.
      const free = order.filter((t) => runtime.endpoint(t.endpoint)?.free);
      const ordered = free.length === order.length ? order : [...free, ...order.filter((t) => !free.includes(t))];
      for (const t of ordered) {
        if (ctx.attempts >= model.maxAttempts) break;
        if (ctx.attempts > 0 && !runtime.target(t).breaker.canPass()) continue;
        const ep = runtime.endpoint(t.endpoint);
        if (!ep) continue;
        const cfg = ep.config;
        const native = cfg.type === 'anthropic';
        // the body is built before anything is contacted (a failure here is the client's)
        const call = {
          method: 'POST' as const,
          path: upstreamPath(cfg.type, cfg.basePath, ctx.kind),
          headers: upstreamHeaders(ctx, cfg.apiKey, native),
          body: upstreamPayload(ctx, t, cfg.acceptsTopK, native),
          firstByteTimeoutMs: ctx.stream ? cfg.firstByteTimeoutMs : cfg.firstByteTimeoutNonStreamMs,
        };
        ctx.attempts++;
        try {
          await runAttempt({
            source: this,
            runtime,
            ep,
            target: t,
            ctx,
            call,
            queueTimeoutMs: settings.queue_timeout_ms,
            onClientGone,
            protocol: openAIProtocol({ source: this, runtime, guards: this.d.guards }, ctx, t, res, adapter?.answer(ctx), native),
          });
          return;
        } catch (e) {
          if (e instanceof TargetSkipped) {
            ctx.attempts--;
            continue;
          }
          // an output guard wants the answer once more (one retry per request, never a breaker's business)
          if (e instanceof GuardRetry && !guardRetried && ctx.attempts < model.maxAttempts) {
            guardRetried = true;
            failures.push(`${t.id}: ${e.message}`);
            continue;
          }
          if (e instanceof GatewayError) throw e; // not an upstream failure (capacity, a guard, the client)
          const f = e instanceof AttemptFailure ? e : classifyError(e, ctx.abort.signal.aborted, false);
          if (f.outcome === 'client_closed') throw clientClosed();
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
      if (ctx.abort.signal.aborted) throw clientClosed();
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
      return gatewayError('no_available_target', `No target of model "${model.name}" is available: ${states.join('; ')}`, { headers: { 'retry-after': '5' } });
    }
    const summary = `All ${ctx.attempts} attempt${ctx.attempts === 1 ? '' : 's'} for model "${model.name}" failed: ${failures.join('; ')}`;
    ctx.errorClass = last?.outcome ?? 'upstream_error';
    if (last?.opts.status === 429) {
      const ra = last.opts.retryAfterMs;
      return gatewayError('upstream_rate_limited', summary, { headers: ra !== undefined ? { 'retry-after': String(Math.ceil(ra / 1000)) } : {} });
    }
    if (last?.opts.timeout) return gatewayError('upstream_timeout', summary);
    return gatewayError('upstream_failed', summary);
  }
}
