// The audit trail's entry points: open the log (with its key), redact secrets from what is
// recorded, and the data-plane recorder (a subscriber of airlock:request:end, so the pipeline
// does not know it is audited).
import type { DB } from '../store/db.js';
import type { Secrets } from '../store/secrets.js';
import { channels, on, type RequestEnd, type ToolEnd } from '../engine/events.js';
import type { GuardEvent, GuardSink } from '../guardrails/engine.js';
import type { RequestContext } from '../engine/stages.js';
import { AuditKey } from './key.js';
import { AuditLog, type AuditLogOptions } from './log.js';

export function openAudit(db: DB, dataDir: string, secrets: Secrets, opts: AuditLogOptions = {}): AuditLog {
  return new AuditLog(db, AuditKey.load(dataDir, secrets), opts);
}

const SECRET_FIELD = /(pass(word)?|secret|token|api_?key|^key$|^hash$|authorization|cookie|csrf|private)/i;
export const REDACTED = '[redacted]';

/** A copy with every secret-looking value replaced (an `${env:NAME}` reference is kept: it names, not holds). */
export function redact(v: unknown, depth = 0): unknown {
  if (depth > 32) return REDACTED;
  if (Array.isArray(v)) return v.map((x) => redact(x, depth + 1));
  if (v && typeof v === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (SECRET_FIELD.test(k) && x !== null && x !== undefined && typeof x !== 'object' && typeof x !== 'boolean' && !(typeof x === 'string' && /^\$\{env:[A-Za-z_][A-Za-z0-9_]*\}$/.test(x)))
        out[k] = x === '' ? '' : REDACTED;
      else out[k] = redact(x, depth + 1);
    }
    return out;
  }
  return v;
}

/**
 * Optional fields a capability may put on the request context for the audit summary: guardrail
 * outcomes (guardrails), MCP tool calls (toolCalls) and anything else under `audit`. Each is
 * recorded as given when present.
 */
export interface AuditableContext {
  guardrails?: unknown;
  toolCalls?: unknown;
  audit?: Record<string, unknown>;
}

export function requestSummary(ctx: RequestContext, latencyMs: number): Record<string, unknown> {
  const ext = ctx as RequestContext & AuditableContext;
  // keys in sorted order: the canonical encoding (core.ts) then need not sort them
  return {
    alias: ctx.model?.name,
    app: ctx.key?.app ?? undefined,
    attempts: ctx.attempts,
    client_request_id: ctx.clientRequestId,
    completion_tokens: ctx.completionTokens,
    cost: ctx.cost,
    decision: ctx.status < 400 ? 'served' : ctx.status < 500 && ctx.status !== 499 ? 'refused' : 'failed',
    endpoint: ctx.endpoint,
    endpoint_kind: ctx.kind,
    error_class: ctx.errorClass,
    guardrails: ext.guardrails,
    key: ctx.key?.name,
    latency_ms: Math.round(latencyMs * 10) / 10,
    model: ctx.requestedModel,
    prompt_tokens: ctx.promptTokens,
    request_id: ctx.id,
    rule: ctx.rule,
    session: ctx.session,
    status: ctx.status,
    stream: ctx.stream,
    team: ctx.key?.team ?? undefined,
    tool_calls: ext.toolCalls,
    upstream_model: ctx.upstreamModel,
    user: ctx.user,
    ...(ext.audit ?? {}),
  };
}

/**
 * The guardrail outcomes of the request that is finishing, for its summary. The guardrail engine
 * reports a request's hits to its sink from its own airlock:request:end subscriber, which runs
 * before the audit recorder's in the same synchronous dispatch: the sink is wrapped to keep the
 * last request's events, and the recorder takes them when the request id matches.
 */
export class GuardOutcomes {
  private last: { requestId: string; events: GuardEvent[] } | undefined;
  /** wrap the guardrail engine's sink */
  wrap(sink: GuardSink): GuardSink {
    return (events, ctx) => {
      const id = events[0]?.requestId;
      if (id !== undefined && events[0]?.toolCallId === undefined) this.last = { requestId: id, events };
      sink(events, ctx);
    };
  }
  /** the outcomes of request `id` (types and counts, never text), once */
  take(id: string): unknown[] | undefined {
    const l = this.last;
    if (!l || l.requestId !== id) return undefined;
    this.last = undefined;
    return l.events.map((e) => ({ policy: e.policy, direction: e.direction, action: e.action, mode: e.mode, blocked: e.blocked, count: e.count, detectors: e.detectors }));
  }
}

/** Queue a record of every finished MCP tool call of `source` (the hub): who, which server and tool, the outcome. */
export function recordToolCalls(log: AuditLog, source: object, enabled: () => boolean): () => void {
  return on<ToolEnd>(channels.toolEnd, source, (m) => {
    if (!enabled()) return;
    const c = m.call;
    log.enqueue({
      kind: 'tool',
      actor: `agent:${c.agent.name}`,
      source: 'mcp',
      data: {
        tool_call_id: c.id,
        agent: c.agent.name,
        team: c.agent.team,
        session: c.session,
        user: c.user,
        tool: c.exposed,
        server: c.server,
        upstream_tool: c.tool,
        status: c.status,
        decision: c.status < 400 ? 'served' : c.status === 403 || c.status === 429 || c.status === 400 ? 'refused' : 'failed',
        error_class: c.errorClass,
        is_error: c.isError || undefined,
        args_bytes: c.argsBytes,
        result_bytes: c.resultBytes,
        latency_ms: Math.round(m.latencyMs * 10) / 10,
      },
    });
  });
}

/** Queue a summary of every finished data-plane request of `source` (settings.audit.data_plane). */
export function recordRequests(log: AuditLog, source: object, enabled: () => boolean, guards?: GuardOutcomes): () => void {
  return on<RequestEnd>(channels.requestEnd, source, (m) => {
    const outcomes = guards?.take(m.ctx.id);
    if (!enabled()) return;
    const ext = m.ctx as RequestContext & AuditableContext;
    if (outcomes && ext.guardrails === undefined) ext.guardrails = outcomes;
    log.enqueue({
      kind: 'request',
      actor: m.ctx.key ? `key:${m.ctx.key.name}` : 'anonymous',
      source: 'data-plane',
      data: requestSummary(m.ctx, m.latencyMs),
    });
  });
}
