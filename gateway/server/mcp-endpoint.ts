// /mcp on the data plane: one Streamable HTTP MCP endpoint for every agent (the SDK's
// StreamableHTTPServerTransport, one per session, in front of the hub's virtual server).
// - Authenticated by the agent's key (Authorization: Bearer, or x-api-key), checked from the
//   headers before anything else: absent → 401 with `WWW-Authenticate: Bearer realm="airlock-mcp"`,
//   unknown → 401 with `error="invalid_token"` (RFC 6750 §3). Agents use static keys, not OAuth,
//   so no resource_metadata is advertised. The key is never passed to upstream servers.
// - /mcp/v/NAME: the same, within a virtual server (settings mcp_virtual_servers): the agent sees
//   what both it and the virtual server allow; an unknown NAME is 404.
// - Mcp-Session-Id is bound to the key (and the path) that created the session: another key presenting it, an
//   unknown or ended session → 404 (the client starts a new session). DELETE ends a session;
//   idle sessions are swept (settings.mcp_session_idle_ms) and their upstream sessions closed.
// - MCP-Protocol-Version is checked by the transport (400 for an unsupported one).
// - Resumability (SEP-1699): each session keeps its last events (engine/mcp/event-store.ts,
//   bounded by settings.mcp_resume_events / mcp_resume_bytes, freed with the session); SSE streams
//   start with a priming event and a retry field, so an agent whose stream dropped resumes it with
//   Last-Event-ID and gets what it missed; a resume the kept events cannot serve is a 400 saying why.
// - tools/call on an established session takes a fast path (mcp-relay.ts) past the SDK transport;
//   everything else goes through the transport. A tools/call with invalid params (params not an
//   object, name not a string, arguments not an object) is answered -32602 naming the field, on
//   either path.
// - DNS rebinding: an Origin must be the origin the request is addressed to, and while the data
//   plane listens on loopback only, the Host must be a loopback name.
import { randomUUID } from 'node:crypto';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { ServerResponse } from 'node:http';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { ErrorCode, LATEST_PROTOCOL_VERSION, SUPPORTED_PROTOCOL_VERSIONS, isInitializeRequest } from '@modelcontextprotocol/sdk/types.js';
import { extractKey } from '../engine/stages.js';
import type { Gateway } from './gateway.js';
import { isLoopbackName } from './admin-plane.js';
import { ToolCallRelay, acceptableHeaders, relayableToolCall, toolCallParamsProblem } from './mcp-relay.js';
import { DEFAULT_RESUME_BYTES, DEFAULT_RESUME_EVENTS, RESUME_RETRY_MS, SessionEventStore } from '../engine/mcp/event-store.js';

export const MCP_REALM = 'airlock-mcp';
export const DEFAULT_MCP_SESSION_IDLE_MS = 30 * 60_000;

function jsonRpcError(res: ServerResponse, status: number, code: number, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ jsonrpc: '2.0', error: { code, message }, id: null }));
}

const quoted = (s: string) => s.replace(/["\\]/g, '');

/** The request's URL (requestInfo.url, as the SDK transport gives it); a Host that is no URL host falls back to localhost. */
function requestUrl(path: string, host: string): URL {
  try {
    return new URL(path, `http://${host}`);
  } catch {
    return new URL(path, 'http://localhost');
  }
}

/** The handler of /mcp and /mcp/v/:name. Loaded by data-plane.ts on the first call, after the hub
 * (gw.mcpHub()): this module and the hub import the MCP SDK, which a gateway without MCP never loads. */
export function mcpHandler(gw: Gateway): (req: FastifyRequest, reply: FastifyReply) => Promise<void> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  /** each session's events, for resuming a dropped stream (none when resumption is off) */
  const stores = new Map<string, SessionEventStore>();
  /** the protocol version each session negotiated */
  const versions = new Map<string, string>();
  /** tools/call's fast path (mcp-relay.ts) */
  const relay = new ToolCallRelay(gw.mcp);
  const loopbackOnly = () => gw.opts.host === '127.0.0.1' || gw.opts.host === '::1' || gw.opts.host === 'localhost';

  const handle = async (req: FastifyRequest, reply: FastifyReply) => {
    const virtual = (req.params as { name?: string }).name;
    reply.hijack();
    const res = reply.raw;
    const id = (req as { airlockId?: string }).airlockId;
    if (id) res.setHeader('x-airlock-request-id', id);
    const host = (req.headers.host ?? '').toLowerCase();
    if (loopbackOnly() && !isLoopbackName(host))
      return jsonRpcError(res, 421, -32000, `Host "${host}" is not a name of this machine's loopback, where this gateway listens.`);
    const origin = req.headers.origin;
    if (origin !== undefined) {
      let same = false;
      try {
        same = new URL(origin).host.toLowerCase() === host;
      } catch {
        same = false;
      }
      if (!same) return jsonRpcError(res, 403, -32000, `Origin "${origin}" may not use this MCP endpoint.`);
    }
    const key = extractKey(req.headers);
    if (!key)
      return jsonRpcError(res, 401, -32001, 'Missing agent key: send "Authorization: Bearer <agent key>".', { 'www-authenticate': `Bearer realm="${MCP_REALM}"` });
    const hash = gw.secrets.hashKey(key);
    const agent = gw.mcp.agentByHash(hash);
    if (!agent)
      return jsonRpcError(res, 401, -32001, 'Invalid agent key: no agent on this gateway has it.', {
        'www-authenticate': `Bearer realm="${MCP_REALM}", error="invalid_token", error_description="${quoted('no agent has this key')}"`,
      });
    if (agent.disabled) return jsonRpcError(res, 403, -32001, `Agent "${agent.name}" is disabled.`);
    if (gw.ledger.refusing) return jsonRpcError(res, 503, -32000, 'The usage ledger cannot be written right now, and this gateway is set to refuse requests it cannot record; try again shortly.', { 'retry-after': '5' });

    if (virtual !== undefined && !gw.mcp.config.virtualServers.has(virtual)) return jsonRpcError(res, 404, -32001, `No virtual MCP server named "${virtual}".`);

    const sid = req.headers['mcp-session-id'];
    if (typeof sid === 'string') {
      const session = gw.mcp.sessions.get(sid);
      const transport = transports.get(sid);
      // another key presenting a session id learns nothing: the same answer as an unknown session
      if (!session || !transport || session.keyHash !== hash || session.virtual !== virtual || session.closed) return jsonRpcError(res, 404, -32001, 'Session not found: start a new session with initialize.');
      session.lastSeen = Date.now();
      // a resume the session's events cannot serve: say why (the SDK would answer "Invalid event ID format")
      const last = req.headers['last-event-id'];
      if (req.method === 'GET' && typeof last === 'string' && last) {
        const store = stores.get(sid);
        const why = store ? store.cannotResume(last) : 'This session keeps no events for resumption (settings.mcp_resume_events or mcp_resume_bytes is 0): send the request again.';
        if (why) return jsonRpcError(res, 400, -32000, why);
        if (await relay.resume(sid, store, last, res)) return;
      }
      if (req.method === 'POST') {
        relay.cancel(sid, req.body);
        const call = relayableToolCall(req.body);
        if (call && acceptableHeaders(req.headers)) return relay.call(session, stores.get(sid), versions.get(sid), req.headers, requestUrl(req.url, host), call.id, call.invalid === undefined ? call.params : { invalid: call.invalid }, res);
      }
      await transport.handleRequest(req.raw, res, req.body);
      return;
    }
    if (req.method !== 'POST' || !isInitializeRequest(req.body))
      return jsonRpcError(res, 400, -32000, 'Bad Request: no Mcp-Session-Id header; the first request of a session is initialize (POST).');
    const sessionId = randomUUID();
    const settings = gw.snapshot.settings;
    const maxEvents = settings.mcp_resume_events ?? DEFAULT_RESUME_EVENTS;
    const maxBytes = settings.mcp_resume_bytes ?? DEFAULT_RESUME_BYTES;
    const store = maxEvents > 0 && maxBytes > 0 ? new SessionEventStore(maxEvents, maxBytes) : undefined;
    const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: () => sessionId, ...(store ? { eventStore: store, retryInterval: RESUME_RETRY_MS } : {}) });
    if (store) stores.set(sessionId, store);
    const asked = (req.body as { params: { protocolVersion: string } }).params.protocolVersion;
    versions.set(sessionId, SUPPORTED_PROTOCOL_VERSIONS.includes(asked) ? asked : LATEST_PROTOCOL_VERSION);
    const session = gw.mcp.newSession(
      sessionId,
      agent,
      hash,
      () => {
        transports.delete(sessionId);
        stores.get(sessionId)?.clear();
        stores.delete(sessionId);
        versions.delete(sessionId);
        relay.forget(sessionId);
        void transport.close().catch(() => undefined);
      },
      virtual,
    );
    session.server.onclose = () => void session.close();
    transports.set(sessionId, transport);
    await session.server.connect(transport);
    // a tools/call with invalid params that reaches the SDK (in a batch, or task-augmented): -32602
    // naming the field, where the SDK's own schema check would answer -32603
    const dispatch = transport.onmessage;
    transport.onmessage = (message, extra) => {
      const m = message as { method?: unknown; id?: unknown; params?: unknown };
      const invalid = m.method === 'tools/call' && m.id !== undefined ? toolCallParamsProblem(m.params) : undefined;
      if (invalid) return void transport.send({ jsonrpc: '2.0', id: m.id as string | number, error: { code: ErrorCode.InvalidParams, message: invalid } }).catch(() => undefined);
      dispatch?.(message, extra);
    };
    await transport.handleRequest(req.raw, res, req.body);
    if (transport.sessionId === undefined) await session.close(); // initialize refused
  };
  return handle;
}
