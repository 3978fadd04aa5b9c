// Tracing: spans built from the pipeline's lifecycle events (engine/events.ts), never from calls
// inside the pipeline. One span per data-plane request (OpenTelemetry GenAI conventions: named
// "{gen_ai.operation.name} {gen_ai.request.model}"), a child per upstream attempt (with why it
// failed over), per wait for a slot, per guardrail decision and, from the MCP gateway, one per
// tool call ("tools/call {tool}"). The client's W3C traceparent is honoured (its trace id, its
// span as parent) and each attempt sends its own span's traceparent upstream. x-airlock-session
// groups the traces of one workflow.
//
// Cost: a request's spans are kept as the facts the events carry (its context, an Attempt per
// upstream try) and go to the sinks together when it ends: the local store gets the request's
// stored row written straight from those facts as JSON text (requestRow), with no span or
// attributes objects; span objects (SpanData) are made only for span sinks (the OTLP export,
// while an endpoint is set). The sinks only queue. While tracing is off the tracer is not
// subscribed at all.
import diagnostics_channel from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import { channels, on, type AttemptEnd, type AttemptStart, type FirstContent, type QueueGiveUp, type RequestEnd, type RequestStart } from '../engine/events.js';
import type { RequestContext } from '../engine/stages.js';
import type { TelemetrySettings } from '../config/schema.js';
import { firstAttemptSpanId, formatTraceparent, isOwnRequestId, newSpanId, newTraceId, ownTraceId, parseTraceparent, requestSpanId, traceIdOfRequest, type SpanData } from './span.js';

/** A tool call's span id: derived from its id (a request id, which its ledger row carries) as a
 * model call's is, so GET /usage/requests/{id}/trace finds a tool call's trace too. */
const toolSpanId = (id: string): string => (isOwnRequestId(id) ? requestSpanId(id) : newSpanId());
import { attributesListJson, attributesObjectJson, childJson, jnum, jstr } from './span-store.js';
import type { StoredRow } from './span-writer.js';
import { attemptAttributes, attributesOf, OPERATION, requestAttributes, requestSpanName, type AttemptFacts, type RequestFacts } from './span-attributes.js';
import { LedgerTraceWriter } from './ledger-trace.js';

export type SpanSink = (spans: SpanData[]) => void;

/** The local span store as the tracer feeds it (SpanStore). */
export interface StoreSink {
  /** a request's stored row, written by the tracer (requestRow), and its span count */
  recordRow(row: string, spans: number): void;
  /** other spans (tool calls, late guardrail decisions) */
  record: SpanSink;
}

/** Channels of capabilities built beside this one, subscribed by name (absent publishers are fine). */
export const TOOL_START = 'airlock:tool:start';
export const TOOL_END = 'airlock:tool:end';
export const MCP_CALL_START = 'airlock:mcp:call:start';
export const MCP_CALL_END = 'airlock:mcp:call:end';
export const GUARDRAIL_EVENTS = 'airlock:guardrail:events';

/** A request's trace while it runs, kept on the request (ctx.traceState). */
interface ReqTrace {
  /** the tracer it belongs to (a request's state is read only by the tracer that made it) */
  tracer: Tracer;
  ctx: RequestContext;
  traceId: string;
  spanId: string;
  parentSpanId: string | undefined;
  /** finished child spans (and open attempts, finished in place) */
  children: (SpanData | Attempt)[];
  /** the attempt in flight (time to first chunk lands on it) */
  current: Attempt | undefined;
  currentStart: number;
  resolved: boolean;
  /** where its spans go, once decided (settle): the ledger row (its trace column), a span row, or
   * nowhere (not sampled) */
  stored: 'ledger' | 'row' | 'none' | undefined;
  /** the ledger's trace column when stored there */
  ledgerTrace: string | null;
  /** the ids are the request id's (span.ts); false: random ones (an id not of ours) */
  own: boolean;
  /** decided with where: failed, not sampled, when it ended (wall-clock ms) */
  failed: boolean;
  sampledOut: boolean;
  end: number;
}

function newReqTrace(tracer: Tracer, ctx: RequestContext): ReqTrace {
  const own = isOwnRequestId(ctx.id);
  return {
    tracer,
    ctx,
    traceId: '',
    spanId: own ? requestSpanId(ctx.id) : newSpanId(),
    own,
    parentSpanId: undefined,
    children: [],
    current: undefined,
    currentStart: 0,
    resolved: false,
    stored: undefined,
    ledgerTrace: null,
    failed: false,
    sampledOut: false,
    end: 0,
  };
}

/** An upstream attempt's span while its request is traced: its facts as fields, no attributes
 * object. It becomes a SpanData only for span sinks (attemptSpan) and is written straight into
 * its request's row for the store (attemptJson); attemptAttributes() is the one list of its
 * attributes for both. */
class Attempt implements AttemptFacts {
  end: number;
  status: SpanData['status'] = 'unset';
  statusMessage: string | undefined = undefined;
  ttfc: number | undefined = undefined;
  outcome: string | undefined = undefined;
  finishReasons: string[] | undefined = undefined;
  constructor(
    readonly spanId: string,
    readonly start: number,
    readonly op: string,
    readonly upstreamModel: string,
    readonly provider: string,
    readonly endpoint: string,
    readonly target: string,
    readonly attempt: number,
    readonly queueMs: number,
    readonly origin: string | undefined,
  ) {
    this.end = start;
  }
}

/** What the MCP gateway publishes on airlock:tool:start / :end (its ToolCallContext, read defensively). */
export interface ToolCallLike {
  id: string;
  /** the MCP method: tools/call when absent; prompts/get and resources/read come on MCP_CALL_* */
  method?: string;
  /** what a prompts/get or resources/read asked for: the prompt's name, the resource's URI */
  target?: string;
  ts: number;
  t0: number;
  agent?: { name?: string; team?: string };
  mcpSession?: string;
  session?: string;
  user?: string;
  exposed?: string;
  server?: string;
  tool?: string;
  argsBytes?: number;
  resultBytes?: number | null;
  status?: number;
  errorClass?: string;
  isError?: boolean;
  /** the agent's trace context (params._meta.traceparent), validated by the hub */
  traceparent?: string;
  /** set here: what the hub sends upstream in params._meta.traceparent */
  upstreamTraceparent?: string;
}

/** What the guardrails publish on airlock:guardrail:events (their GuardEvent, read defensively). */
export interface GuardEventLike {
  ts: number;
  requestId?: string;
  toolCallId?: string;
  policy: string;
  direction?: string;
  action?: string;
  mode?: string;
  blocked?: boolean;
  complete?: boolean;
  count?: number;
  detectors?: Record<string, number>;
}

interface Ended {
  traceId: string;
  spanId: string;
  session: string | undefined;
}
/** what is remembered of an ended request or tool call: its trace, or, for a request with its
 * own ids (span.ts), only its session (null: none) */
type Remembered = Ended | string | null;

/** The trace of an ended request or tool call from what was remembered of it. */
function ended(id: string, r: Remembered | undefined): Ended | undefined {
  if (r === undefined || (r !== null && typeof r === 'object')) return r;
  const traceId = traceIdOfRequest(id);
  return traceId ? { traceId, spanId: requestSpanId(id), session: r ?? undefined } : undefined;
}
const RECENT_MAX = 2048;

export class Tracer {
  private readonly tools = new Map<string, Ended & { start: number; parentSpanId: string | undefined }>();
  /** recently ended requests and tool calls: guardrail events that arrive late still find their
   * trace. Two generations of RECENT_MAX each: when the young one is full it becomes the old one
   * (the old one is dropped), so the last RECENT_MAX to 2 x RECENT_MAX are found, without a delete
   * and an iterator per request. */
  private recent = new Map<string, Remembered>();
  private older = new Map<string, Remembered>();
  private subs: (() => void)[] = [];
  private settings: TelemetrySettings | undefined;
  /** the store gets spans (settings.telemetry.traces) */
  private toStore = false;
  /** the span sinks that get spans now */
  private spanSinks: SpanSink[] = [];
  /** spans handed to the sinks since start */
  recorded = 0;
  /** the gateway's ledger takes plain requests' traces (settle()); without it (tests, tools) every
   * request's spans go to the store as a row */
  ledgerCarries = false;
  /** the request whose request:end this tracer handled last (settle() may be asked after) */
  private lastSettled: ReqTrace | undefined;
  /** a plain request's ledger column (ledger-trace.ts) */
  private readonly ledgerTraces = new LedgerTraceWriter();

  constructor(
    private readonly source: object,
    /** span sinks: with a store, they are the OTLP export, fed while settings.telemetry.otlp_endpoint
     * is set; without one (tests), always */
    private readonly sinks: SpanSink[],
    /** the publisher of tool events, when known; undefined: any (the gateway names its MCP hub
     * here once the hub is loaded) */
    public toolSource?: object,
    /** the local span store, fed while settings.telemetry.traces is on */
    private readonly store?: StoreSink,
  ) {}

  get enabled(): boolean {
    return this.subs.length > 0;
  }

  /** Subscribe while tracing is on (the local store or an OTLP endpoint), unsubscribe when off. */
  update(settings: TelemetrySettings): void {
    this.settings = settings;
    this.toStore = !!this.store && settings.traces;
    this.spanSinks = !this.store || settings.otlp_endpoint ? this.sinks : [];
    const want = settings.traces || !!settings.otlp_endpoint;
    if (want && !this.subs.length) this.subscribe();
    else if (!want && this.subs.length) this.close();
  }

  close(): void {
    for (const u of this.subs) u();
    this.subs = [];
    this.tools.clear();
    this.lastSettled = undefined;
  }

  private subscribe(): void {
    const src = this.source;
    this.subs.push(
      on<RequestStart>(channels.requestStart, src, (m) => this.requestStart(m.ctx)),
      on<AttemptStart>(channels.attemptStart, src, (m) => this.attemptStart(m)),
      on<FirstContent>(channels.firstContent, src, (m) => this.firstContent(m.ctx)),
      on<AttemptEnd>(channels.attemptEnd, src, (m) => this.attemptEnd(m)),
      on<QueueGiveUp>(channels.queueGiveUp, src, (m) => this.queueGiveUp(m)),
      on<RequestEnd>(channels.requestEnd, src, (m) => this.requestEnd(m.ctx, m.latencyMs)),
      this.byName(TOOL_START, (m) => this.toolStart((m as { call: ToolCallLike }).call)),
      this.byName(TOOL_END, (m) => this.toolEnd((m as { call: ToolCallLike; latencyMs: number }).call, (m as { latencyMs: number }).latencyMs)),
      this.byName(MCP_CALL_START, (m) => this.toolStart((m as { call: ToolCallLike }).call)),
      this.byName(MCP_CALL_END, (m) => this.toolEnd((m as { call: ToolCallLike; latencyMs: number }).call, (m as { latencyMs: number }).latencyMs)),
      this.byName(GUARDRAIL_EVENTS, (m) => this.guardEvents((m as { events: GuardEventLike[] }).events, (m as { ctx?: unknown }).ctx), true),
    );
  }

  private byName(name: string, fn: (m: object) => void, anySource = false): () => void {
    const ch = diagnostics_channel.channel(name);
    const h = (m: unknown) => {
      if (!m || typeof m !== 'object') return;
      const s = (m as { source?: unknown }).source;
      if (!anySource && this.toolSource && s !== this.toolSource) return;
      try {
        fn(m);
      } catch {
        // a message of an unexpected shape is not traced; it never disturbs the publisher
      }
    };
    ch.subscribe(h);
    return () => ch.unsubscribe(h);
  }

  /** wall-clock ms of a performance.now() reading within this request */
  private static wall(ctx: RequestContext, perf: number): number {
    return ctx.ts + (perf - ctx.t0);
  }

  private requestStart(ctx: RequestContext): void {
    ctx.traceState = newReqTrace(this, ctx);
  }

  /** The request's trace while it runs (made by this tracer at request:start). */
  private live(ctx: RequestContext): ReqTrace | undefined {
    const r = ctx.traceState as ReqTrace | undefined;
    return r !== undefined && r.tracer === this ? r : undefined;
  }

  /** The trace id is known once the headers were read (after request:start): the client's, or
   * the request id's (span.ts). */
  private resolve(r: ReqTrace): void {
    if (r.resolved) return;
    r.resolved = true;
    const tp = parseTraceparent(r.ctx.traceparent);
    if (tp) {
      r.traceId = tp.traceId;
      r.parentSpanId = tp.parentId;
    } else r.traceId = r.own ? ownTraceId(r.ctx.id) : newTraceId();
  }

  private child(r: ReqTrace, kind: SpanData['kind'], name: string, start: number, end: number, attributes: SpanData['attributes']): SpanData {
    return {
      traceId: r.traceId,
      spanId: newSpanId(),
      parentSpanId: r.spanId,
      session: r.ctx.session,
      kind,
      name,
      start,
      end,
      status: 'unset',
      statusMessage: undefined,
      team: undefined,
      key: undefined,
      model: undefined,
      httpStatus: undefined,
      attributes,
    };
  }

  private attemptStart(m: AttemptStart): void {
    const r = this.live(m.ctx);
    if (!r) return;
    this.resolve(r);
    const now = performance.now();
    const start = Tracer.wall(r.ctx, now);
    if (m.queueMs >= 1) {
      r.children.push(this.child(r, 'queue', `queue ${m.target.endpoint}`, start - m.queueMs, start, { 'airlock.endpoint': m.target.endpoint, 'airlock.queue_ms': round(m.queueMs) }));
    }
    const ep = r.ctx.snapshot.endpoints.get(m.target.endpoint);
    const spanId = m.attempt === 1 && r.own ? firstAttemptSpanId(r.ctx.id) : newSpanId();
    const span = new Attempt(spanId, start, OPERATION[r.ctx.kind], m.target.upstreamModel, ep?.type ?? 'openai', m.target.endpoint, m.target.id, m.attempt, round(m.queueMs), ep?.origin);
    r.children.push(span);
    r.current = span;
    r.currentStart = now;
    // the upstream's parent is this attempt's span
    m.headers.traceparent = formatTraceparent(r.traceId, span.spanId);
  }

  /** A wait for a slot that ended without one (capacity_timeout): its queue span, in error. */
  private queueGiveUp(m: QueueGiveUp): void {
    const r = this.live(m.ctx);
    if (!r) return;
    this.resolve(r);
    const end = Tracer.wall(r.ctx, performance.now());
    const span = this.child(r, 'queue', `queue ${m.target.endpoint}`, end - m.queueMs, end, {
      'airlock.endpoint': m.target.endpoint,
      'airlock.queue_ms': round(m.queueMs),
      'error.type': m.reason,
    });
    span.status = 'error';
    span.statusMessage = m.error;
    r.children.push(span);
  }

  private firstContent(ctx: RequestContext): void {
    const r = this.live(ctx);
    if (r?.current) r.current.ttfc = round(performance.now() - r.currentStart);
  }

  private attemptEnd(m: AttemptEnd): void {
    const r = this.live(m.ctx);
    const span = r?.current;
    if (!r || !span) return;
    r.current = undefined;
    // now, not start + durationMs: the attempt's own clock started before this span's start was
    // taken, so start + durationMs could end the attempt after its request
    span.end = Tracer.wall(m.ctx, performance.now());
    span.outcome = m.outcome;
    if (m.outcome === 'ok') {
      span.status = 'ok';
      span.finishReasons = m.ctx.finishReasons;
    } else {
      span.status = 'error';
      span.statusMessage = m.error;
    }
  }

  /**
   * A request has ended: where its spans go (once; the tracer's own request:end handler and the
   * ledger's, in either order). A plain request's (failed: no; one upstream attempt, ok; no queue
   * or guardrail span; no client traceparent) go into its ledger row, as the returned `trace`
   * column — when the gateway's ledger takes them (ledgerCarries) and the store is on. null: the
   * ledger row carries no trace.
   */
  settle(ctx: RequestContext, latencyMs: number): string | null {
    let r = this.live(ctx);
    if (!r && this.lastSettled?.ctx === ctx) r = this.lastSettled;
    if (!r) return null;
    if (r.stored === undefined) this.decide(r, latencyMs);
    return r.ledgerTrace;
  }

  /** `latencyMs`: request:end's, so the request span ends where its ledger row says it did */
  private decide(r: ReqTrace, latencyMs: number): void {
    const ctx = r.ctx;
    this.resolve(r);
    r.failed = ctx.status >= 400 || ctx.status === 0 || !!ctx.errorClass;
    const s = this.settings;
    if (!r.failed && s && s.sample_ratio < 1 && Math.random() >= s.sample_ratio) {
      r.sampledOut = true;
      r.stored = 'none';
      return;
    }
    r.end = ctx.ts + latencyMs;
    // an attempt still open (the client left mid-attempt and no attempt:end came) ends with the request
    if (r.current) {
      r.current.end = r.end;
      r.current.outcome = 'unfinished';
    }
    const a = r.children.length === 1 ? r.children[0] : undefined;
    if (this.ledgerCarries && this.toStore && !r.failed && a instanceof Attempt && a.attempt === 1 && a.status === 'ok' && r.own && r.parentSpanId === undefined) {
      r.stored = 'ledger';
      const b = ctx.body;
      r.ledgerTrace = this.ledgerTraces.write({
        rule: ctx.rule,
        provider: a.provider,
        origin: a.origin,
        target: a.target,
        attemptModel: a.upstreamModel,
        maxTokens: maxTokensOf(b),
        temperature: typeof b.temperature === 'number' ? b.temperature : undefined,
        topP: typeof b.top_p === 'number' ? b.top_p : undefined,
        attemptStart: a.start - ctx.ts,
        attemptEnd: a.end - ctx.ts,
        queueMs: a.queueMs,
        ttfcMs: a.ttfc,
        finishReasons: ctx.finishReasons,
      });
    } else r.stored = this.toStore ? 'row' : 'none';
  }

  private requestEnd(ctx: RequestContext, latencyMs: number): void {
    let r = this.live(ctx);
    // ended: a guardrail event that comes after finds it as an ended request (lateTrace)
    if (r) ctx.traceState = undefined;
    // refused before the pipeline (recordRejected) or begun before tracing was switched on
    else r = newReqTrace(this, ctx);
    if (r.stored === undefined) this.decide(r, latencyMs);
    // the ledger's request:end handler may come after this one (settle() finds it here)
    this.lastSettled = r;
    if (r.sampledOut) return;
    // a request with its own ids (span.ts) is remembered by its session alone (no object per
    // request), and not at all when it has none and every request is sampled: a late guardrail
    // event finds its trace from its id (lateTrace)
    if (!(r.own && r.parentSpanId === undefined)) this.remember(ctx.id, { traceId: r.traceId, spanId: r.spanId, session: ctx.session });
    else if (ctx.session !== undefined || !this.allSampled) this.remember(ctx.id, ctx.session ?? null);
    const n = r.children.length + 1;
    this.recorded += n;
    if (r.stored === 'row') this.store!.recordRow(requestRow(r, r.end, r.failed), n);
    if (this.spanSinks.length) {
      const spans: SpanData[] = [rootSpan(r, r.end, r.failed)];
      for (const c of r.children) spans.push(c instanceof Attempt ? attemptSpan(r, c) : c);
      for (const sink of this.spanSinks) sink(spans);
    }
  }

  /** every request is traced (no sampling): a request with its own ids and no session need not be remembered */
  private get allSampled(): boolean {
    return !this.settings || this.settings.sample_ratio >= 1;
  }

  /** The trace of a request or tool call that has ended, for a guardrail event that came after. */
  private lateTrace(e: GuardEventLike, id: string): Ended | undefined {
    const r = this.recent.get(id) ?? this.older.get(id);
    if (r !== undefined) return ended(id, r);
    // not remembered: a request with its own ids and no session, while every request is traced
    return e.requestId !== undefined && this.allSampled ? ended(id, null) : undefined;
  }

  private remember(id: string, e: Remembered): void {
    if (this.recent.size >= RECENT_MAX) {
      this.older = this.recent;
      this.recent = new Map();
    }
    this.recent.set(id, e);
  }

  private emit(spans: SpanData[]): void {
    this.recorded += spans.length;
    if (this.toStore) this.store!.record(spans);
    for (const sink of this.spanSinks) sink(spans);
  }

  // ---- MCP tool calls ----

  private toolStart(call: ToolCallLike): void {
    if (!call || typeof call.id !== 'string') return;
    if (this.tools.size >= RECENT_MAX) this.tools.delete(this.tools.keys().next().value!);
    // the agent's trace context (params._meta.traceparent): its trace, its span as our parent
    const tp = parseTraceparent(call.traceparent);
    const t = { traceId: tp?.traceId ?? newTraceId(), spanId: toolSpanId(call.id), parentSpanId: tp?.parentId, session: call.session, start: call.ts };
    this.tools.set(call.id, t);
    // the upstream MCP server's parent is this tool call's span
    call.upstreamTraceparent = formatTraceparent(t.traceId, t.spanId);
  }

  private toolEnd(call: ToolCallLike, latencyMs: number): void {
    if (!call || typeof call.id !== 'string') return;
    const t = this.tools.get(call.id) ?? { traceId: newTraceId(), spanId: toolSpanId(call.id), parentSpanId: undefined, session: call.session, start: call.ts };
    this.tools.delete(call.id);
    const status = typeof call.status === 'number' ? call.status : 0;
    const failed = status >= 400 || !!call.errorClass || call.isError === true;
    const method = call.method ?? 'tools/call';
    const tool = call.tool ?? call.exposed ?? 'unknown';
    const target = method === 'tools/call' ? tool : (call.target ?? 'unknown');
    const attrs: SpanData['attributes'] =
      method === 'tools/call'
        ? { 'mcp.method.name': method, 'gen_ai.operation.name': 'execute_tool', 'gen_ai.tool.name': tool, 'airlock.tool_call_id': call.id, 'http.response.status_code': status }
        : { 'mcp.method.name': method, [method === 'prompts/get' ? 'gen_ai.prompt.name' : 'mcp.resource.uri']: target, 'airlock.mcp_call_id': call.id, 'http.response.status_code': status };
    if (call.server) attrs['airlock.mcp.server'] = call.server;
    if (call.exposed) attrs['airlock.mcp.exposed_name'] = call.exposed;
    if (call.mcpSession) attrs['mcp.session.id'] = call.mcpSession;
    if (call.agent?.name) attrs['gen_ai.agent.name'] = call.agent.name;
    if (call.agent?.team) attrs['airlock.team'] = call.agent.team;
    if (call.session) attrs['airlock.session'] = call.session;
    if (call.user) attrs['enduser.id'] = call.user;
    if (typeof call.argsBytes === 'number') attrs['airlock.tool.args_bytes'] = call.argsBytes;
    if (typeof call.resultBytes === 'number') attrs['airlock.tool.result_bytes'] = call.resultBytes;
    if (call.isError) attrs['airlock.tool.is_error'] = true;
    if (call.errorClass) attrs['error.type'] = call.errorClass;
    else if (call.isError) attrs['error.type'] = 'tool_error';
    this.remember(call.id, t);
    this.emit([
      {
        traceId: t.traceId,
        spanId: t.spanId,
        parentSpanId: t.parentSpanId,
        session: call.session,
        kind: 'tool',
        name: `${method} ${target}`,
        start: t.start,
        end: t.start + (typeof latencyMs === 'number' ? latencyMs : 0),
        status: failed ? 'error' : 'ok',
        statusMessage: call.errorClass ?? (call.isError ? 'tool_error' : undefined),
        team: call.agent?.team,
        key: call.agent?.name,
        model: undefined,
        httpStatus: status,
        attributes: attrs,
      },
    ]);
  }

  // ---- guardrail decisions ----

  /** `ctx`: the request whose decisions these are, when the publisher names it (a running request
   * is found only so: its trace is kept on it, not by its id) */
  private guardEvents(events: GuardEventLike[], ctx: unknown): void {
    if (!Array.isArray(events)) return;
    const running = ctx !== null && typeof ctx === 'object' && typeof (ctx as { id?: unknown }).id === 'string' ? this.live(ctx as RequestContext) : undefined;
    for (const e of events) {
      const id = e.requestId ?? e.toolCallId;
      if (!id) continue;
      const live = e.requestId !== undefined && running?.ctx.id === e.requestId ? running : undefined;
      if (live?.sampledOut) continue;
      if (live) this.resolve(live);
      const tool = e.toolCallId ? this.tools.get(e.toolCallId) : undefined;
      const at: Ended | undefined = live ? { traceId: live.traceId, spanId: live.spanId, session: live.ctx.session } : (tool ?? this.lateTrace(e, id));
      if (!at) continue;
      const attrs: SpanData['attributes'] = { 'airlock.guardrail.policy': String(e.policy) };
      if (e.direction) attrs['airlock.guardrail.direction'] = e.direction;
      if (e.action) attrs['airlock.guardrail.action'] = e.action;
      if (e.mode) attrs['airlock.guardrail.mode'] = e.mode;
      if (typeof e.count === 'number') attrs['airlock.guardrail.count'] = e.count;
      if (e.blocked) attrs['airlock.guardrail.blocked'] = true;
      if (e.complete === false) attrs['airlock.guardrail.complete'] = false;
      if (e.detectors) attrs['airlock.guardrail.detectors'] = JSON.stringify(e.detectors);
      const span: SpanData = {
        traceId: at.traceId,
        spanId: newSpanId(),
        parentSpanId: at.spanId,
        session: at.session,
        kind: 'guardrail',
        name: `guardrail ${e.policy}`,
        start: e.ts,
        end: e.ts,
        status: e.blocked ? 'error' : 'unset',
        statusMessage: e.blocked ? 'guardrail_blocked' : undefined,
        team: undefined,
        key: undefined,
        model: undefined,
        httpStatus: undefined,
        attributes: attrs,
      };
      // a child of its request's span row while that row is still to be written; a span of its
      // own once the request's ledger row carries its trace
      if (live && live.stored !== 'ledger') live.children.push(span);
      else this.emit([span]);
    }
  }
}

function round(ms: number): number {
  return Math.round(ms * 1000) / 1000;
}

/** A request's context as the facts its span's attributes are made of (span-attributes.ts). */
function factsOf(ctx: RequestContext): RequestFacts {
  const b = ctx.body;
  return {
    kind: ctx.kind,
    id: ctx.id,
    status: ctx.status,
    attempts: ctx.attempts,
    requestedModel: ctx.requestedModel,
    model: ctx.model?.name,
    rule: ctx.rule,
    endpoint: ctx.endpoint,
    provider: ctx.endpoint ? (ctx.snapshot.endpoints.get(ctx.endpoint)?.type ?? 'openai') : undefined,
    upstreamModel: ctx.upstreamModel,
    finishReasons: ctx.finishReasons,
    maxTokens: maxTokensOf(b),
    temperature: typeof b.temperature === 'number' ? b.temperature : undefined,
    topP: typeof b.top_p === 'number' ? b.top_p : undefined,
    stream: ctx.stream,
    promptTokens: ctx.promptTokens,
    completionTokens: ctx.completionTokens,
    estimated: ctx.estimated,
    cost: ctx.cost,
    ttfbMs: ctx.ttfbMs !== undefined ? round(ctx.ttfbMs) : undefined,
    user: ctx.user,
    keyName: ctx.key?.name,
    team: ctx.key?.team,
    session: ctx.session,
    errorClass: ctx.errorClass,
  };
}

const maxTokensOf = (b: RequestContext['body']): number | undefined =>
  typeof b.max_tokens === 'number' ? b.max_tokens : typeof b.max_completion_tokens === 'number' ? b.max_completion_tokens : undefined;

const spanName = (ctx: RequestContext): string => requestSpanName(ctx.kind, ctx.requestedModel);

/** The request's span as an object (span sinks: the OTLP export). */
function rootSpan(r: ReqTrace, end: number, failed: boolean): SpanData {
  const ctx = r.ctx;
  const attributes = attributesOf((put) => requestAttributes(factsOf(ctx), put));
  return {
    traceId: r.traceId,
    spanId: r.spanId,
    parentSpanId: r.parentSpanId,
    session: ctx.session,
    kind: 'model',
    name: spanName(ctx),
    start: ctx.ts,
    end,
    status: failed ? 'error' : 'ok',
    statusMessage: ctx.errorClass,
    team: ctx.key?.team,
    key: ctx.key?.name,
    model: ctx.model?.name ?? ctx.requestedModel,
    httpStatus: ctx.status,
    attributes,
  };
}

function attemptSpan(r: ReqTrace, a: Attempt): SpanData {
  const attributes = attributesOf((put) => attemptAttributes(a, put));
  return {
    traceId: r.traceId,
    spanId: a.spanId,
    parentSpanId: r.spanId,
    session: r.ctx.session,
    kind: 'attempt',
    name: `${a.op} ${a.upstreamModel}`,
    start: a.start,
    end: a.end,
    status: a.status,
    statusMessage: a.statusMessage,
    team: undefined,
    key: undefined,
    model: undefined,
    httpStatus: undefined,
    attributes,
  };
}

/** An attempt in its request's row: a CompactChild (span-writer.ts) written as JSON, as
 * childJson(attemptSpan(...)) would write it. */
function attemptJson(a: Attempt): string {
  return (
    `[${jstr(a.spanId)},"attempt",${jstr(`${a.op} ${a.upstreamModel}`)},${jnum(a.start)},${jnum(a.end)},"${a.status}",` +
    attributesListJson((put) => attemptAttributes(a, put)) +
    (a.statusMessage !== undefined ? `,${jstr(a.statusMessage)}]` : ']')
  );
}

/** The request's stored row (the span store's format, SPAN_COLUMNS in span-writer.ts), written
 * straight from the request's context and attempts: the same row as rowJson() of the spans that
 * rootSpan() and attemptSpan() make, without making them. */
function requestRow(r: ReqTrace, end: number, failed: boolean): string {
  const ctx = r.ctx;
  let children: string | null = null;
  if (r.children.length) {
    children = '[';
    for (let i = 0; i < r.children.length; i++) {
      const c = r.children[i]!;
      children += (i ? ',' : '') + (c instanceof Attempt ? attemptJson(c) : childJson(c, r.spanId));
    }
    children += ']';
  }
  const row: StoredRow = [
    r.traceId,
    r.spanId,
    r.parentSpanId ?? null,
    ctx.session ?? null,
    'model',
    spanName(ctx),
    ctx.ts,
    end,
    failed ? 'error' : 'ok',
    ctx.errorClass ?? null,
    ctx.key?.team ?? null,
    ctx.key?.name ?? null,
    ctx.model?.name ?? ctx.requestedModel ?? null,
    ctx.status,
    attributesObjectJson((put) => requestAttributes(factsOf(ctx), put)),
    children,
    r.children.length + 1,
  ];
  return JSON.stringify(row);
}
