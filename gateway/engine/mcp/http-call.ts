// tools/call to a Streamable HTTP upstream without the SDK Client on the way (the upstream side of
// the /mcp relay): the JSON-RPC request is POSTed straight to the upstream session the agent
// session's SDK Client opened (its Mcp-Session-Id and protocol version), over an undici Agent, and
// the answer — a JSON body or an SSE stream — is read here. The SDK path costs a web Request,
// fetch, a ReadableStream pipeline per response, zod on every message and a pending-request map
// per call; this path costs a plain undici request and a small SSE parser.
//
// What stays as on the SDK path:
// - a 404 (the upstream lost our session) is an UpstreamSessionLost, which the hub answers with one
//   new upstream session (re-initialised) and the call sent again;
// - any other message in the answer (a log notification, a sampling or elicitation request of the
//   server's) is handed to the session's SDK Client as its transport would hand it (deliver), so it
//   is relayed to the agent and answered as before; calls that carry a progressToken do not come
//   here (the hub keeps them on the SDK path, whose progress handlers relay the notifications);
// - an SSE stream that ends, or drops, before the answer after an event id was seen is resumed
//   with a GET and Last-Event-ID (the server's `retry`, else 1 s, 1.5 s; two attempts, as the SDK);
// - each message is held to max_response_bytes (onOver: the connection is closed, the error names
//   the limit); the per-call timeout and the agent's cancellation abort the request and tell the
//   upstream (notifications/cancelled, over the SDK Client).
import { Agent, type Dispatcher } from '../undici.js';
import { ErrorCode, McpError, type CallToolResult, type JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { ResponseTooLarge } from './bounded.js';
import { sleep } from '../io.js';

/** The upstream no longer knows our session (404): re-initialise and send again. */
export class UpstreamSessionLost extends Error {
  readonly code = 404;
}

/** Where the call goes: one upstream session of an HTTP server. */
export interface DirectSession {
  readonly url: URL;
  /** the configured headers, Mcp-Session-Id and MCP-Protocol-Version */
  readonly headers: Record<string, string>;
  readonly dispatcher: Dispatcher;
  /** a message in the answer that is not the call's response: to the session's SDK Client */
  deliver(message: JSONRPCMessage): void;
  /** tell the upstream a call was given up (notifications/cancelled) */
  cancelled(requestId: string, reason: string): void;
  /** a message over max_response_bytes: closes the connection, returns the error to throw */
  onOver(): ResponseTooLarge;
  readonly maxMessageBytes: number;
}

export const newDispatcher = (): Agent => new Agent({ keepAliveTimeout: 30_000, connections: 64 });

const RESUME_ATTEMPTS = 2;
const RESUME_FIRST_MS = 1000;
const RESUME_GROWTH = 1.5;
let seq = 0;

/** One SSE event as the spec's parser dispatches it. */
export interface SseEvent {
  id: string | undefined;
  event: string | undefined;
  data: string;
}

/** An incremental text/event-stream parser (the HTML spec's algorithm): LF, CRLF or CR line ends,
 * comments, fields without a value, a leading BOM, data lines joined with LF. Each event's size is
 * held to maxBytes (counted in UTF-16 units of its fields: enough to bound memory). */
export class SseParser {
  private buf = '';
  private data: string[] = [];
  private dataLen = 0;
  private event: string | undefined;
  private hasData = false;
  private first = true;
  /** the last event id seen (it persists across events, as the spec says) */
  lastEventId: string | undefined;
  /** the server's reconnection time (ms), if it sent one */
  retry: number | undefined;
  constructor(
    private readonly onEvent: (e: SseEvent) => void,
    private readonly maxBytes: number,
    private readonly onOver: () => never,
  ) {}

  push(text: string): void {
    if (this.first && text.length) {
      this.first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    let s = this.buf + text;
    let start = 0;
    for (;;) {
      let i = start;
      while (i < s.length && s.charCodeAt(i) !== 10 && s.charCodeAt(i) !== 13) i++;
      if (i >= s.length) break;
      // a CR at the very end may be the first half of CRLF: wait for the next chunk
      if (s.charCodeAt(i) === 13 && i + 1 >= s.length) break;
      this.line(s.slice(start, i));
      start = s.charCodeAt(i) === 13 && s.charCodeAt(i + 1) === 10 ? i + 2 : i + 1;
    }
    s = s.slice(start);
    if (s.length + this.dataLen > this.maxBytes) this.onOver();
    this.buf = s;
  }

  /** the stream ended: an event not ended by a blank line is dropped (as the spec says) */
  end(): void {
    if (this.buf.endsWith('\r')) this.line(this.buf.slice(0, -1));
    this.buf = '';
  }

  private line(l: string): void {
    if (l === '') {
      if (this.hasData) this.onEvent({ id: this.lastEventId, event: this.event, data: this.data.join('\n') });
      this.data = [];
      this.dataLen = 0;
      this.hasData = false;
      this.event = undefined;
      return;
    }
    if (l.charCodeAt(0) === 58) return; // ":" a comment (keep-alive)
    const c = l.indexOf(':');
    const field = c < 0 ? l : l.slice(0, c);
    let value = c < 0 ? '' : l.slice(c + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    switch (field) {
      case 'data':
        this.hasData = true;
        this.data.push(value);
        this.dataLen += value.length + 1;
        if (this.dataLen > this.maxBytes) this.onOver();
        break;
      case 'event':
        this.event = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The call's answer out of one JSON-RPC message (undefined: not ours; it goes to deliver). */
function answerOf(m: unknown, id: string): { result: CallToolResult } | undefined {
  if (!isObject(m) || m.id !== id || 'method' in m) return undefined;
  if (isObject(m.error)) {
    const e = m.error;
    throw new McpError(typeof e.code === 'number' ? e.code : ErrorCode.InternalError, typeof e.message === 'string' ? e.message : 'the MCP server answered with an error', e.data);
  }
  const r = m.result;
  // CallToolResult: an object whose content (default []) is a list of objects
  if (!isObject(r) || (r.content !== undefined && !(Array.isArray(r.content) && r.content.every(isObject))) || (r.isError !== undefined && typeof r.isError !== 'boolean'))
    throw new McpError(ErrorCode.InternalError, 'the MCP server answered tools/call with something that is not a tool result');
  return { result: (r.content === undefined ? { ...r, content: [] } : r) as CallToolResult };
}

/** Send tools/call with `params` over the session and return its result. */
export async function callToolDirect(s: DirectSession, params: Record<string, unknown>, signal: AbortSignal, timeoutMs: number): Promise<CallToolResult> {
  const id = `airlock-${++seq}`;
  const ac = new AbortController();
  let why: Error | undefined;
  const stop = (e: Error, reason: string) => {
    if (why) return;
    why = e;
    ac.abort(e);
    s.cancelled(id, reason);
  };
  /** the call was given up (timeout, cancellation): say why */
  const halt = () => {
    if (why) throw why;
  };
  const timer = setTimeout(() => stop(new McpError(ErrorCode.RequestTimeout, 'Request timed out', { timeout: timeoutMs }), `timed out after ${timeoutMs} ms`), timeoutMs);
  const onAbort = () => stop(signal.reason instanceof Error ? signal.reason : new Error('cancelled'), typeof signal.reason === 'string' ? signal.reason : 'cancelled by the agent');
  if (signal.aborted) onAbort();
  else signal.addEventListener('abort', onAbort, { once: true });
  let answer: { result: CallToolResult } | undefined;
  const take = (m: unknown) => {
    const a = answerOf(m, id);
    if (a) answer ??= a;
    else if (isObject(m)) s.deliver(m as JSONRPCMessage);
  };
  try {
    const body = JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params });
    let res: Dispatcher.ResponseData;
    try {
      res = await s.dispatcher.request({
        origin: s.url.origin,
        path: s.url.pathname + s.url.search,
        method: 'POST',
        headers: { ...s.headers, 'content-type': 'application/json', accept: 'application/json, text/event-stream', 'accept-encoding': 'identity' },
        body,
        signal: ac.signal,
      });
    } catch (e) {
      throw why ?? e;
    }
    if (res.statusCode === 404) {
      await res.body.dump().catch(() => undefined);
      throw new UpstreamSessionLost('the MCP server no longer knows our session (HTTP 404)');
    }
    if (res.statusCode < 200 || res.statusCode > 299) {
      const text = await res.body.text().catch(() => '');
      throw new Error(`the MCP server answered tools/call with HTTP ${res.statusCode}: ${text.slice(0, 500)}`);
    }
    const type = String(res.headers['content-type'] ?? '').toLowerCase();
    if (type.includes('text/event-stream')) {
      let parser = new SseParser((e) => readEvent(e, take), s.maxMessageBytes, () => tooLarge(s, ac));
      let lastId: string | undefined;
      let retry: number | undefined;
      for (let attempt = 0; ; attempt++) {
        let dropped: Error | undefined;
        try {
          await readStream(res.body, parser, () => answer !== undefined);
        } catch (e) {
          halt();
          if (e instanceof ResponseTooLarge) throw e;
          dropped = e as Error;
        }
        if (answer) return answer.result;
        halt();
        lastId = parser.lastEventId ?? lastId;
        retry = parser.retry ?? retry;
        // ended (or dropped) before the answer: resume from the last event id, if there was one
        if (lastId === undefined || attempt >= RESUME_ATTEMPTS) {
          if (dropped) throw dropped;
          throw new McpError(ErrorCode.ConnectionClosed, 'Connection closed');
        }
        await sleep(retry ?? RESUME_FIRST_MS * RESUME_GROWTH ** attempt, ac.signal);
        halt();
        try {
          res = await s.dispatcher.request({ origin: s.url.origin, path: s.url.pathname + s.url.search, method: 'GET', headers: { ...s.headers, accept: 'text/event-stream', 'accept-encoding': 'identity', 'last-event-id': lastId }, signal: ac.signal });
        } catch (e) {
          throw why ?? e;
        }
        if (res.statusCode === 404) {
          await res.body.dump().catch(() => undefined);
          throw new UpstreamSessionLost('the MCP server no longer knows our session (HTTP 404 on resuming)');
        }
        if (res.statusCode !== 200 || !String(res.headers['content-type'] ?? '').includes('text/event-stream')) {
          await res.body.dump().catch(() => undefined);
          throw new Error(`resuming the call's stream failed (HTTP ${res.statusCode})`);
        }
        parser = new SseParser((e) => readEvent(e, take), s.maxMessageBytes, () => tooLarge(s, ac));
      }
    }
    if (type.includes('application/json')) {
      const chunks: Buffer[] = [];
      let n = 0;
      try {
        for await (const c of res.body as AsyncIterable<Buffer>) {
          n += c.length;
          if (n > s.maxMessageBytes) tooLarge(s, ac);
          chunks.push(c);
        }
      } catch (e) {
        throw why ?? e;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(Buffer.concat(chunks, n).toString('utf8'));
      } catch {
        throw new McpError(ErrorCode.ParseError, 'the MCP server answered tools/call with a body that is not JSON');
      }
      for (const m of Array.isArray(parsed) ? parsed : [parsed]) take(m);
      if (answer) return answer.result;
      throw new McpError(ErrorCode.InternalError, 'the MCP server answered tools/call without a response to it');
    }
    await res.body.dump().catch(() => undefined);
    throw new Error(`the MCP server answered tools/call with HTTP ${res.statusCode} and content-type "${type}" (expected application/json or text/event-stream)`);
  } finally {
    clearTimeout(timer);
    signal.removeEventListener('abort', onAbort);
  }
}

function tooLarge(s: DirectSession, ac: AbortController): never {
  const e = s.onOver();
  ac.abort(e);
  throw e;
}

function readEvent(e: SseEvent, take: (m: unknown) => void): void {
  if (!e.data || (e.event !== undefined && e.event !== 'message')) return;
  let m: unknown;
  try {
    m = JSON.parse(e.data);
  } catch {
    return; // as the SDK: a malformed event is skipped
  }
  for (const x of Array.isArray(m) ? m : [m]) take(x);
}

/** Feed a response body into the parser until it ends or the answer is in; the rest of the
 * stream then drains unread (the connection stays open for the next call). */
function readStream(body: Dispatcher.ResponseData['body'], parser: SseParser, done: () => boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const dec = new TextDecoder();
    let settled = false;
    const finish = (e?: unknown) => {
      if (settled) return;
      settled = true;
      if (e) reject(e instanceof Error ? e : new Error('the stream failed'));
      else resolve();
    };
    body.on('data', (c: Buffer) => {
      if (settled) return;
      try {
        parser.push(dec.decode(c, { stream: true }));
      } catch (e) {
        body.destroy();
        return finish(e);
      }
      if (done()) finish();
    });
    body.on('end', () => {
      if (settled) return;
      try {
        parser.push(dec.decode());
        parser.end();
      } catch (e) {
        return finish(e);
      }
      finish();
    });
    body.on('error', (e) => finish(e));
  });
}
