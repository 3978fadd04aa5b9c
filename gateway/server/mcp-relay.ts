// The fast path of /mcp for `tools/call` on an established session: the request goes from the
// HTTP handler straight to the hub's call (McpHub.relayToolCall: authorization, rate limits,
// guards, timeout, progress, cancellation, ledger, audit and spans all happen there, as on the SDK
// path) and the answer is written to the response as SSE, skipping what the SDK's server
// transport does per request (a Web Request/Response and ReadableStream per POST, through
// @hono/node-server, and the SDK Server's dispatch and zod validation). Everything else — and any
// tools/call this path does not take (a batch, a task-augmented call) — goes through the SDK
// transport as before. A tools/call with invalid params is answered here: -32602 naming the field.
//
// Same wire behaviour as the SDK path: `text/event-stream` with `mcp-session-id`, a priming event
// (an id, `retry`, empty data) when the session keeps events and negotiated 2025-11-25 or later,
// every message stored in the session's event store and written with its id, a keep-alive comment
// every 15 s, the error response shape of the SDK's Protocol, and no response for a call the agent
// cancelled (notifications/cancelled reaches this path's calls: cancel()). A dropped response
// stream is resumed with Last-Event-ID (resume()): what was missed is replayed from the store and
// the rest follows on the new stream.
import { randomUUID } from 'node:crypto';
import type { ServerResponse } from 'node:http';
import { ErrorCode, SUPPORTED_PROTOCOL_VERSIONS, type JSONRPCMessage, type ServerNotification } from '@modelcontextprotocol/sdk/types.js';
import type { McpHub, McpSession } from '../engine/mcp/hub.js';
import { RESUME_RETRY_MS, type SessionEventStore } from '../engine/mcp/event-store.js';

const KEEP_ALIVE_MS = 15_000;
/** how long a call's response head and priming event wait for its first message (see RelayStream) */
const HEAD_WAIT_MS = 10;
/** stream ids of this path: told apart from the SDK transport's (UUIDs, "_GET_stream") on resume */
const PREFIX = 'relay-';

type Id = string | number;
interface CallParams {
  name: string;
  arguments?: Record<string, unknown>;
  _meta?: Record<string, unknown>;
}

const sseHead = (sessionId: string) => ({ 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', connection: 'keep-alive', 'mcp-session-id': sessionId });
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : v === undefined ? 'nothing' : `a ${typeof v}`);

/** What is wrong with a tools/call's params, naming the field (undefined: nothing). The SDK would
 * answer these with -32603 (its schema check throws before the handler) or, for params that are
 * not an object, a 400 "Parse error"; the agent sent invalid params: -32602, saying which. */
export function toolCallParamsProblem(p: unknown): string | undefined {
  const bad = (field: string, want: string, v: unknown) => `Invalid params for tools/call: "${field}" must be ${want} (got ${kindOf(v)}).`;
  if (!isObject(p)) return bad('params', 'an object with the tool\'s "name" and its "arguments"', p);
  if (typeof p.name !== 'string') return bad('params.name', 'a string, the name of the tool to call', p.name);
  if (p.arguments !== undefined && !isObject(p.arguments)) return bad('params.arguments', 'an object of the tool\'s arguments by name', p.arguments);
  if (p._meta !== undefined && !isObject(p._meta)) return bad('params._meta', 'an object', p._meta);
  const pt = isObject(p._meta) ? p._meta.progressToken : undefined;
  if (pt !== undefined && typeof pt !== 'string' && !(typeof pt === 'number' && Number.isSafeInteger(pt))) return bad('params._meta.progressToken', 'a string or an integer', pt);
  return undefined;
}

/** A tools/call this path takes: one JSON-RPC request with plain params, or with invalid params
 * (`invalid`: what is wrong, answered -32602) (else: the SDK path). */
export function relayableToolCall(body: unknown): { id: Id; params: CallParams; invalid?: undefined } | { id: Id; invalid: string } | undefined {
  if (!isObject(body) || body.jsonrpc !== '2.0' || body.method !== 'tools/call') return undefined;
  const id = body.id;
  if (!((typeof id === 'string' && id.length > 0) || (typeof id === 'number' && Number.isSafeInteger(id)))) return undefined;
  const p = body.params;
  const invalid = toolCallParamsProblem(p);
  if (invalid) return { id, invalid };
  if ('task' in (p as object)) return undefined;
  return { id, params: p as CallParams };
}

/** The headers the SDK transport checks on a POST (else: the SDK path answers them). */
export function acceptableHeaders(h: Record<string, string | string[] | undefined>): boolean {
  const accept = String(h.accept ?? '');
  if (!accept.includes('application/json') || !accept.includes('text/event-stream')) return false;
  if (!/^application\/json\s*(;|$)/i.test(String(h['content-type'] ?? ''))) return false;
  const v = h['mcp-protocol-version'];
  return v === undefined || (typeof v === 'string' && SUPPORTED_PROTOCOL_VERSIONS.includes(v));
}

async function replayTo(store: SessionEventStore, lastEventId: string, res: ServerResponse): Promise<void> {
  await store.replayEventsAfter(lastEventId, {
    send: async (eventId, message) => void res.write(`event: message\nid: ${eventId}\ndata: ${JSON.stringify(message)}\n\n`),
  });
}

/** One response stream of this path. Its head and priming event wait (up to HEAD_WAIT_MS) for the
 * first message: a call answered by then leaves as one write with a content-length (no chunked
 * framing, one syscall instead of two); a longer one gets its head and priming event then, so an
 * agent whose connection drops during it can resume from the priming event. */
class RelayStream {
  readonly id = PREFIX + randomUUID();
  private res: ServerResponse | undefined;
  private keepAlive: NodeJS.Timeout | undefined;
  private headTimer: NodeJS.Timeout | undefined;
  /** what waits for the head (the priming event) */
  private pending = '';
  /** the response was written (the stream ends after it) */
  done = false;
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly store: SessionEventStore | undefined,
    private readonly sessionId: string,
  ) {}

  /** Take the HTTP response (the POST's, or a resuming GET's: `now`, its head at once) for the SSE stream. */
  attach(res: ServerResponse, now = false): void {
    this.detach();
    this.res = res;
    res.on('close', () => {
      if (this.res === res) this.detach();
    });
    this.keepAlive = setInterval(() => this.write(': keepalive\n\n'), KEEP_ALIVE_MS);
    this.keepAlive.unref();
    if (now) this.flushHead();
    else {
      this.headTimer = setTimeout(() => this.flushHead(), HEAD_WAIT_MS);
      this.headTimer.unref();
    }
  }

  /** Send the head, with what waited for it (one write). */
  private flushHead(): void {
    const res = this.res;
    if (this.headTimer) clearTimeout(this.headTimer);
    this.headTimer = undefined;
    if (!res || res.headersSent) return;
    res.writeHead(200, sseHead(this.sessionId));
    const p = this.pending;
    this.pending = '';
    if (p) res.write(p);
  }

  private write(chunk: string): void {
    if (!this.res) return;
    if (!this.res.headersSent) this.flushHead();
    this.res.write(chunk);
  }

  private detach(): void {
    if (this.keepAlive) clearInterval(this.keepAlive);
    if (this.headTimer) clearTimeout(this.headTimer);
    this.keepAlive = undefined;
    this.headTimer = undefined;
    this.res = undefined;
  }

  /** The priming event: an id to resume from, and how long to wait before resuming. */
  prime(): void {
    if (!this.store) return;
    const id = this.store.storeJson(this.id, '{}');
    const event = `id: ${id}\nretry: ${RESUME_RETRY_MS}\ndata: \n\n`;
    if (this.res && !this.res.headersSent) this.pending += event;
    else this.write(event);
  }

  /** Store and write a message, in order; `last` ends the stream after it. */
  send(message: JSONRPCMessage, last = false): Promise<void> {
    this.chain = this.chain.then(() => {
      // serialised once: the store keeps the same JSON that is written
      const json = JSON.stringify(message);
      const id = this.store?.storeJson(this.id, json);
      const event = `event: message\n${id ? `id: ${id}\n` : ''}data: ${json}\n\n`;
      // the response and the end of the stream leave in one write
      if (last) this.finish(event);
      else this.write(event);
    });
    return this.chain;
  }

  /** A resuming GET takes over: what was stored after lastEventId is written to it, then what
   * follows (in the send chain, so nothing is written twice or missed in between). */
  resumeOn(res: ServerResponse, lastEventId: string): Promise<void> {
    this.chain = this.chain.then(async () => {
      this.attach(res, true);
      await replayTo(this.store!, lastEventId, res);
      if (this.done) this.finish();
    });
    return this.chain;
  }

  /** End the stream (after the response, or without one: a cancelled call). */
  finish(last?: string): void {
    this.done = true;
    const res = this.res;
    const body = this.pending + (last ?? '');
    const headless = res !== undefined && !res.headersSent;
    this.pending = '';
    this.detach();
    if (!res) return;
    // nothing sent yet: the whole stream in one write, its length known
    if (headless) res.writeHead(200, { ...sseHead(this.sessionId), 'content-length': Buffer.byteLength(body) });
    if (body) res.end(body);
    else res.end();
  }
}

/** The fast path's state for the sessions of one /mcp endpoint. */
export class ToolCallRelay {
  /** per session: calls in flight (by JSON-RPC id) and streams that may still be resumed */
  private readonly bySession = new Map<string, { calls: Map<Id, AbortController>; streams: Map<string, RelayStream> }>();

  constructor(private readonly hub: McpHub) {}

  private state(sid: string) {
    let s = this.bySession.get(sid);
    if (!s) this.bySession.set(sid, (s = { calls: new Map(), streams: new Map() }));
    return s;
  }

  forget(sid: string): void {
    const s = this.bySession.get(sid);
    if (!s) return;
    this.bySession.delete(sid);
    for (const c of s.calls.values()) c.abort(new Error('the session ended'));
    for (const st of s.streams.values()) st.finish();
  }

  /** notifications/cancelled for a call of this path: abort it (true: it was one). */
  cancel(sid: string, body: unknown): boolean {
    if (!isObject(body) || body.method !== 'notifications/cancelled' || !isObject(body.params)) return false;
    const c = this.bySession.get(sid)?.calls.get(body.params.requestId as Id);
    if (!c) return false;
    c.abort(typeof body.params.reason === 'string' ? body.params.reason : 'cancelled by the agent');
    return true;
  }

  /** Is this Last-Event-ID one of this path's streams? Then resume it on res (true). */
  async resume(sid: string, store: SessionEventStore | undefined, lastEventId: string, res: ServerResponse): Promise<boolean> {
    if (!store) return false;
    const streamId = await store.getStreamIdForEventId(lastEventId);
    if (!streamId?.startsWith(PREFIX)) return false;
    const live = this.bySession.get(sid)?.streams.get(streamId);
    if (live && !live.done) {
      await live.resumeOn(res, lastEventId);
      return true;
    }
    // the call has finished: what was missed is all in the store
    res.writeHead(200, sseHead(sid));
    await replayTo(store, lastEventId, res);
    res.end();
    return true;
  }

  /** Run one tools/call and answer it on res. */
  async call(session: McpSession, store: SessionEventStore | undefined, protocolVersion: string | undefined, headers: Record<string, string | string[] | undefined>, url: URL, id: Id, params: CallParams | { invalid: string }, res: ServerResponse): Promise<void> {
    const st = this.state(session.id);
    const stream = new RelayStream(store, session.id);
    const abort = new AbortController();
    st.calls.set(id, abort);
    st.streams.set(stream.id, stream);
    stream.attach(res);
    try {
      if (protocolVersion !== undefined && protocolVersion >= '2025-11-25') stream.prime();
      const extra = {
        signal: abort.signal,
        sessionId: session.id,
        requestId: id,
        requestInfo: { headers, url },
        sendNotification: (n: ServerNotification) => stream.send({ jsonrpc: '2.0', ...n }),
      };
      let response: JSONRPCMessage | undefined;
      try {
        if ('invalid' in params) throw Object.assign(new Error(params.invalid), { code: ErrorCode.InvalidParams });
        const result = await this.hub.relayToolCall(session, params, extra);
        if (!abort.signal.aborted) response = { result, jsonrpc: '2.0', id };
      } catch (e) {
        const err = e as { code?: unknown; message?: string; data?: unknown };
        if (!abort.signal.aborted)
          response = {
            jsonrpc: '2.0',
            id,
            error: { code: Number.isSafeInteger(err.code) ? (err.code as number) : ErrorCode.InternalError, message: err.message ?? 'Internal error', ...(err.data !== undefined ? { data: err.data } : {}) },
          };
      }
      if (response) await stream.send(response, true);
      else stream.finish();
    } finally {
      st.calls.delete(id);
      // a finished stream stays resumable from the store alone: nothing more is written to it
      st.streams.delete(stream.id);
    }
  }
}
