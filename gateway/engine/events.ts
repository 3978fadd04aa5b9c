// Lifecycle events of data-plane requests, published through node:diagnostics_channel. The
// ledger and the metrics subscribe here (and the coming tracing): the pipeline does not know
// who listens. Every message names the pipeline that sent it, so a subscriber can tell two
// gateways in one process apart.
import diagnostics_channel from 'node:diagnostics_channel';
import type { RequestContext } from './stages.js';
import type { TargetConfig } from './snapshot.js';
import type { ToolCallContext } from './mcp/hub.js';

export interface RequestStart {
  source: object;
  ctx: RequestContext;
}
export interface AttemptStart {
  source: object;
  ctx: RequestContext;
  target: TargetConfig;
  /** 1-based */
  attempt: number;
  /** the headers about to be sent upstream: a subscriber may set tracing headers (traceparent) */
  headers: Record<string, string>;
  /** ms this attempt waited for a free slot at the endpoint (max_concurrency) before it started */
  queueMs: number;
}
export interface AttemptEnd {
  source: object;
  ctx: RequestContext;
  target: TargetConfig;
  attempt: number;
  /** ok, connect_error, timeout, http_5xx, http_429, invalid_response, too_large, stream_interrupted, client_closed, rejected, ... */
  outcome: string;
  /** why it failed (absent when ok) */
  error: string | undefined;
  /** ms from the attempt's start */
  durationMs: number;
}
/** A wait for a free slot of an endpoint (max_concurrency) that ended without one: the queue
 * timed out or was full (capacity_timeout), or the client left while waiting. */
export interface QueueGiveUp {
  source: object;
  ctx: RequestContext;
  target: TargetConfig;
  /** ms waited */
  queueMs: number;
  /** the error code: capacity_timeout, client_closed, ... */
  reason: string;
  error: string;
}
export interface FirstContent {
  source: object;
  ctx: RequestContext;
}
export interface RequestEnd {
  source: object;
  /** settled: tokens, cost, status and error class are final */
  ctx: RequestContext;
  /** ms from arrival */
  latencyMs: number;
}

/** MCP tool calls (gateway/engine/mcp/hub.ts): `call` is the tool call's context (agent, session,
 * server, tool; status and sizes are final on tool:end). Tracing and audit subscribe here. */
export interface ToolStart {
  source: object;
  call: ToolCallContext;
}
export interface ToolEnd {
  source: object;
  call: ToolCallContext;
  /** ms from arrival */
  latencyMs: number;
}

export const channels = {
  requestStart: diagnostics_channel.channel('airlock:request:start'),
  attemptStart: diagnostics_channel.channel('airlock:attempt:start'),
  attemptEnd: diagnostics_channel.channel('airlock:attempt:end'),
  queueGiveUp: diagnostics_channel.channel('airlock:attempt:queue-give-up'),
  firstContent: diagnostics_channel.channel('airlock:request:first-content'),
  requestEnd: diagnostics_channel.channel('airlock:request:end'),
  toolStart: diagnostics_channel.channel('airlock:tool:start'),
  toolEnd: diagnostics_channel.channel('airlock:tool:end'),
  /** an agent's other MCP calls through /mcp (prompts/get, resources/read): traced, not ledger rows */
  mcpCallStart: diagnostics_channel.channel('airlock:mcp:call:start'),
  mcpCallEnd: diagnostics_channel.channel('airlock:mcp:call:end'),
};

let failures = 0;

/** A subscriber's error, on stderr: the first ones, then every 1000th (a bug that fires on every
 * request must not flood the log). */
function subscriberFailed(channel: string, e: unknown): void {
  failures++;
  if (failures <= 10 || failures % 1000 === 0)
    process.stderr.write(`airlock: a recorder of ${channel} failed (${failures} time(s) so far): ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
}

/** Subscribe to one channel for messages of one source; returns the unsubscribe function. */
export function on<T extends { source: object }>(ch: diagnostics_channel.Channel, source: object, fn: (m: T) => void): () => void {
  const h = (m: unknown) => {
    if ((m as T).source !== source) return;
    // A subscriber that throws must not take the gateway down: diagnostics_channel rethrows a
    // subscriber's error on the next tick, as an uncaught exception. It is reported instead.
    try {
      fn(m as T);
    } catch (e) {
      subscriberFailed(String(ch.name), e);
    }
  };
  ch.subscribe(h);
  return () => ch.unsubscribe(h);
}
