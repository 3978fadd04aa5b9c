// A simulated OpenAI-compatible model server for tests and benchmarks: plain node:http, fast,
// deterministic, and able to misbehave on demand (errors, 429, slow first byte, hangs, dropped
// connections, garbage, oversized and endless answers). Every request is recorded (bounded) so
// tests can see what the gateway actually sent upstream.
//
// POST /v1/chat/completions, /v1/completions, /v1/embeddings (floats, or base64 float32 when the
// request asks encoding_format "base64", as the openai client does by default); GET /v1/models;
// GET /api/tags (Ollama's native discovery); POST /v1/messages (the Anthropic Messages API, as a
// server that speaks it natively: ok, status, drop-before-content and drop-mid-stream behaviours);
// anything else 404. setBehavior/queue apply to the
// POST endpoints, setModelsResponse to the two discovery endpoints.
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export type Behavior =
  /** A normal answer. `content` replaces the default `echo: <last user message>`;
   * `chunkDelayMs` is the pause before each streamed content chunk (non-stream: the whole answer
   * is delayed by chunkDelayMs × number of chunks, as a model generating at that speed would);
   * `usage` (default true) includes usage (non-stream: in the body; stream: only when the request
   * asked with stream_options.include_usage); `finishReason` overrides the finish reason;
   * `sse` writes a streamed answer in another server's format (see SSEShape; absent: the compact
   * format, byte for byte as without it); `stopReason` adds vLLM's `stop_reason` (the stop string
   * that ended the answer) to a chat choice; `pieces`: the streamed content chunks (joined, the
   * content; default one word each). `reasoning`: the model reasons first — chat: the message's
   * `reasoning_content` (or the field `reasoningField` names: `reasoning`, as newer vLLM says it),
   * streamed one word a delta before the content, its tokens in completion_tokens and
   * completion_tokens_details.reasoning_tokens; messages: a thinking block (signature
   * `sig-<reasoning length>`, streamed as thinking_delta pieces then one signature_delta) followed
   * by a redacted_thinking block (data `redacted-data`). `cache`: prompt tokens served from a
   * cache — chat: usage.prompt_tokens_details.cached_tokens = read (prompt_tokens still counts them);
   * messages: cache_read_input_tokens / cache_creation_input_tokens, with input_tokens leaving
   * them out, as Anthropic counts. */
  | {
      kind: 'ok';
      content?: string;
      chunkDelayMs?: number;
      usage?: boolean;
      finishReason?: string;
      stopReason?: string;
      sse?: SSEShape;
      pieces?: string[];
      reasoning?: string;
      /** the streamed reasoning chunks (joined, the reasoning; default one word each) */
      reasoningPieces?: string[];
      reasoningField?: 'reasoning_content' | 'reasoning';
      cache?: { read: number; creation?: number };
    }
  /** An HTTP error; body defaults to an OpenAI-shaped error JSON. */
  | { kind: 'status'; status: number; retryAfter?: string; body?: string }
  /** Wait before sending anything (headers included), then behave as `then` (default ok). */
  | { kind: 'slow-first-byte'; delayMs: number; then?: Behavior }
  /** Never answer; the request ends when the client disconnects. */
  | { kind: 'hang' }
  /** stream: role chunk + N content chunks, then the socket is destroyed;
   * non-stream: headers and half of the JSON body, then the socket is destroyed. */
  | { kind: 'drop-mid-stream'; afterChunks: number }
  /** stream: headers + role-only chunk, then the socket is destroyed;
   * non-stream: the socket is destroyed without any answer. */
  | { kind: 'drop-before-content' }
  /** stream: 200 + `data: {"error":{...}}` then end (no [DONE]); non-stream: 200 with the error JSON. */
  | { kind: 'error-event-before-content' }
  /** 200, content-type application/json, a body that is not JSON. */
  | { kind: 'invalid-json' }
  /** 200, content-type text/html. */
  | { kind: 'wrong-content-type' }
  /** stream: headers, the role chunk and `afterChunks` content chunks (default 0), then one chat
   * content event whose `data:` line is `bytes` bytes long without a line end (its content is "x"
   * repeated), then the line end and the rest of the answer (the remaining content, finish, usage,
   * [DONE]); non-stream: as huge-body. The bytes are generated in 64 KB pieces as fast as the
   * client reads them (the server holds no copy), and stop when the client disconnects. */
  | { kind: 'huge-event'; bytes: number; afterChunks?: number }
  /** 200, content-type application/json, a body of `bytes` bytes: `{"padding":"xxx…",` followed by
   * the fields of the normal answer (so it is valid JSON, and a valid answer when accepted), also
   * for setModelsResponse. Generated in 64 KB pieces as the client reads them; chunked unless
   * `declareLength` (then content-length is sent first). */
  | { kind: 'huge-body'; bytes: number; declareLength?: boolean }
  /** An answer that never finishes; it ends only when the client disconnects. stream: headers,
   * the role chunk, then a chat content chunk every `chunkDelayMs` (default 10; 0: as fast as the
   * client reads) forever; non-stream (and setModelsResponse): 200 JSON headers, then
   * `{"padding":"xxx…` in 1 KB pieces at that pace, never closed. */
  | { kind: 'endless-stream'; chunkDelayMs?: number };

/** How a streamed answer (chat or completions) is written, as real servers differ. Every option
 * off is the default format: compact JSON, `data: ` with a space, LF line ends, usage in its own
 * chunk with `"choices": []` (when the request asked for it), `data: [DONE]` at the end. The
 * events carry the same fields in the same order whatever the options (but for where
 * usageInLastChunk puts the usage). */
export interface SSEShape {
  /** JSON with a space after every colon and comma, and non-ASCII escaped as \uXXXX (Python's
   * json.dumps defaults, as several Python servers emit) */
  spaced?: boolean;
  /** CRLF line ends instead of LF */
  crlf?: boolean;
  /** false: no final `data: [DONE]` (default true) */
  done?: boolean;
  /** comment lines: a `: connected` block before the first event, a `: ping` block before every
   * other content event, and a `: last event` line inside the block of the last JSON event */
  comments?: boolean;
  /** the usage (when sent) as a field of the last finish chunk, beside its choices, instead of
   * its own chunk with `"choices": []` */
  usageInLastChunk?: boolean;
  /** `data:{…}` without the space after the colon */
  noSpaceAfterData?: boolean;
  /** the stream written one byte per write, a moment apart (every byte its own chunk at the
   * reader, as a server flushing a character at a time would); the last byte after a longer pause,
   * so that it surely arrives on its own */
  byteWrites?: boolean;
}

export interface RecordedRequest {
  method: string;
  /** the request target as received, e.g. "/v1/chat/completions" (query string included) */
  path: string;
  headers: Record<string, string | string[] | undefined>;
  /** the body parsed as JSON; the raw text when it is not JSON; undefined when empty */
  body: any;
  /** Date.now() when the request arrived */
  at: number;
  /** the bytes of a streamed answer (kind 'ok'), as the upstream wrote them */
  streamed?: string;
}

export interface TestUpstream {
  /** base URL as an admin would register it, e.g. http://127.0.0.1:PORT/v1 */
  url: string;
  /** http://127.0.0.1:PORT */
  origin: string;
  port: number;
  /** every request received (including GET /v1/models), oldest first. Bounded: once it holds
   * more than maxRecorded (+ 1/8, trimmed in batches), the oldest are dropped. */
  requests: RecordedRequest[];
  /** only the POST requests */
  completions(): RecordedRequest[];
  /** requests currently open */
  readonly inflight: number;
  /** requests that ended because the client disconnected before the response finished */
  readonly aborted: number;
  /** default behaviour of the POST endpoints for all following requests */
  setBehavior(b: Behavior | ((req: RecordedRequest) => Behavior)): void;
  /** one-shot behaviours for the next POST requests, in order; then the default applies */
  queue(...bs: Behavior[]): void;
  /** behaviour of GET /v1/models and GET /api/tags (null: the normal answer); huge-body and
   * endless-stream give an oversized or never-ending model list */
  setModelsResponse(b: Behavior | null): void;
  /** the models GET /v1/models and GET /api/tags list from now on */
  setModels(models: string[]): void;
  /** forget recorded requests and reset the counters (behaviours are kept) */
  reset(): void;
  /** closes the server and destroys open sockets */
  close(): Promise<void>;
}

export interface UpstreamOptions {
  models?: string[];
  port?: number;
  host?: string;
  /** how many requests `requests` keeps (default 10_000; 0: record nothing) */
  maxRecorded?: number;
}

// ---------------------------------------------------------------------------------------------
// Deterministic numbers the tests can compute too.

function textOf(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) {
    let s = '';
    for (const p of v) {
      const t = textOf(p);
      if (t) s = s ? `${s} ${t}` : t;
    }
    return s;
  }
  if (v && typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (typeof o.text === 'string') return o.text;
    if (o.content !== undefined) return textOf(o.content);
  }
  return '';
}

function inputs(v: unknown): string[] {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) {
    // an array of token ids is one input
    if (v.length > 0 && typeof v[0] === 'number') return [v.join(' ')];
    return v.map((x) => (typeof x === 'string' ? x : Array.isArray(x) ? x.join(' ') : textOf(x)));
  }
  return [''];
}

const tokensOfText = (s: string): number => Math.ceil(s.length / 4);

/**
 * The prompt_tokens this upstream reports. Chat: 3 per message + ceil(chars/4) of its text, + 3
 * for the reply; completions: 1 + ceil(chars/4) per prompt; embeddings: 2 + ceil(chars/4) per
 * input. (Deliberately not the gateway's own estimate, so tests can tell the two apart.)
 */
export function promptTokensFor(kind: 'chat' | 'completions' | 'embeddings', body: any): number {
  if (kind === 'chat') {
    let n = 3;
    const msgs: unknown[] = Array.isArray(body?.messages) ? body.messages : [];
    for (const m of msgs) n += 3 + tokensOfText(textOf((m as { content?: unknown })?.content));
    return n;
  }
  let n = 0;
  for (const s of inputs(kind === 'completions' ? body?.prompt : body?.input)) n += (kind === 'completions' ? 1 : 2) + tokensOfText(s);
  return n;
}

/** completion_tokens for a content: the number of whitespace-separated words. */
export function completionTokensFor(content: string): number {
  let n = 0;
  const re = /\S+/g;
  while (re.exec(content)) n++;
  return n;
}

/** The 8-float embedding this upstream returns for a text (deterministic, in [-1, 1)). */
export function embeddingFor(text: string): number[] {
  let h = 0x811c9dc5; // FNV-1a
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  const out = new Array<number>(8);
  let x = h >>> 0 || 1;
  for (let i = 0; i < 8; i++) {
    // xorshift32
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    out[i] = Math.round((x / 0x80000000 - 1) * 1e6) / 1e6;
  }
  return out;
}

/** The input_tokens the native Messages route reports: 5 + ceil(chars/4) of the system prompt and
 * of every message's text. */
export function messagesInputTokens(body: any): number {
  let n = 5 + tokensOfText(textOf(body?.system ?? ''));
  for (const m of Array.isArray(body?.messages) ? body.messages : []) n += tokensOfText(textOf(m?.content));
  return n;
}

/** The default chat answer: `echo: ` + the text of the last user message. */
export function echoOf(body: any): string {
  const msgs: unknown[] = Array.isArray(body?.messages) ? body.messages : [];
  for (let i = msgs.length - 1; i >= 0; i--) {
    const m = msgs[i] as { role?: unknown; content?: unknown } | undefined;
    if (m?.role === 'user') return `echo: ${textOf(m.content)}`;
  }
  return 'echo: ';
}

/** The answer to a tool's result (the last message, role "tool"): `tool <tool_call_id> said: <content>`. */
export function toolAnswerOf(m: { tool_call_id?: unknown; content?: unknown }): string {
  return `tool ${String(m.tool_call_id)} said: ${textOf(m.content)}`;
}

/** Split a content into stream pieces: one word each, whitespace kept, joined = content. */
export function streamPieces(content: string): string[] {
  if (content === '') return [];
  const m = content.match(/\s*\S+\s*/g);
  return m ?? [content];
}

export const TOOL_ARGUMENTS = '{"q":"x"}';
const TOOL_ARGUMENT_PIECES = ['{"', 'q', '":"', 'x', '"}'];

// ---------------------------------------------------------------------------------------------

/** What an endpoint answers when all goes well. */
type Plan =
  | { kind: 'json'; status: number; body: string }
  /** head: frames before any content (role chunks); content: one frame per piece; tail: finish, usage, [DONE] */
  | { kind: 'stream'; head: string[]; content: string[]; tail: string[] };

interface ReqState {
  req: http.IncomingMessage;
  res: http.ServerResponse;
  closed: boolean;
  dropped: boolean;
  timer: NodeJS.Timeout | undefined;
  rec?: RecordedRequest;
}

const JSON_HEADERS = { 'content-type': 'application/json' } as const;
const SSE_HEADERS = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' } as const;
/** filler for the oversized answers, written again and again rather than allocated */
const FILL = Buffer.alloc(64 * 1024, 'x');
const HUGE_EVENT_PRE = 'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"';
const HUGE_EVENT_POST = '"},"logprobs":null,"finish_reason":null}]}';

function errorJson(status: number, message: string): string {
  const type = status === 429 ? 'rate_limit_error' : status >= 500 ? 'server_error' : 'invalid_request_error';
  const code = status === 429 ? 'rate_limit_exceeded' : status === 404 ? 'not_found' : null;
  return JSON.stringify({ error: { message, type, code, param: null } });
}

type OkBehavior = Extract<Behavior, { kind: 'ok' }>;
const DEFAULT_OK: OkBehavior = { kind: 'ok' };

export function startUpstream(opts: UpstreamOptions = {}): Promise<TestUpstream> {
  const models = opts.models ?? ['test-model'];
  const host = opts.host ?? '127.0.0.1';
  const maxRecorded = opts.maxRecorded ?? 10_000;
  const listBodies = (list: string[]) => ({
    models: JSON.stringify({ object: 'list', data: list.map((id) => ({ id, object: 'model', created: 0, owned_by: 'test' })) }),
    tags: JSON.stringify({ models: list.map((m) => ({ name: m, model: m, size: 0, modified_at: '2024-01-01T00:00:00Z', digest: '0'.repeat(64) })) }),
  });
  let { models: modelsBody, tags: tagsBody } = listBodies(models);

  let behavior: Behavior | ((r: RecordedRequest) => Behavior) = DEFAULT_OK;
  const queued: Behavior[] = [];
  let modelsBehavior: Behavior | null = null;
  let inflight = 0;
  let aborted = 0;
  let seq = 0;
  let closing = false;
  let onIdle: (() => void) | undefined;
  const requests: RecordedRequest[] = [];

  function record(r: RecordedRequest): void {
    if (maxRecorded <= 0) return;
    requests.push(r);
    // trim in batches so recording stays O(1) amortised
    if (requests.length >= maxRecorded + Math.max(1, maxRecorded >> 3)) requests.splice(0, requests.length - maxRecorded);
  }

  // --- plans for the normal answers ----------------------------------------------------------

  function chatPlan(body: any, b: OkBehavior): Plan {
    const id = `chatcmpl-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const model = typeof body?.model === 'string' ? body.model : 'unknown';
    const n = Number.isInteger(body?.n) && body.n > 0 ? Math.min(body.n as number, 128) : 1;
    const tools: any[] = Array.isArray(body?.tools) ? body.tools : [];
    const last = echoOf(body);
    const msgs: any[] = Array.isArray(body?.messages) ? body.messages : [];
    const toolResult = msgs.length > 0 && msgs[msgs.length - 1]?.role === 'tool' ? msgs[msgs.length - 1] : undefined;
    // a tool's result (the last message) is answered, not followed by another call
    const toolCall = tools.length > 0 && !toolResult && last.includes('use tool');
    const toolName: string = tools[0]?.function?.name ?? tools[0]?.name ?? 'tool';
    const content = b.pieces ? b.pieces.join('') : (b.content ?? (toolResult ? toolAnswerOf(toolResult) : last));
    const finish = b.finishReason ?? (toolCall ? 'tool_calls' : 'stop');
    const promptTokens = promptTokensFor('chat', body);
    const reasoning = toolCall ? undefined : (b.reasoningPieces?.join('') ?? b.reasoning);
    const rField = b.reasoningField ?? 'reasoning_content';
    const reasoningTokens = reasoning ? completionTokensFor(reasoning) : 0;
    const perChoice = (toolCall ? completionTokensFor(TOOL_ARGUMENTS) : completionTokensFor(content)) + reasoningTokens;
    const usage: Record<string, unknown> = { prompt_tokens: promptTokens, completion_tokens: perChoice * n, total_tokens: promptTokens + perChoice * n };
    if (b.cache) usage.prompt_tokens_details = { cached_tokens: b.cache.read };
    if (reasoning) usage.completion_tokens_details = { reasoning_tokens: reasoningTokens * n };
    const withUsage = b.usage !== false;

    if (body?.stream !== true) {
      const choices = [];
      for (let i = 0; i < n; i++) {
        const message = toolCall
          ? { role: 'assistant', content: null, tool_calls: [{ id: `call_${seq}_${i}`, type: 'function', function: { name: toolName, arguments: TOOL_ARGUMENTS } }] }
          : { role: 'assistant', content, ...(reasoning ? { [rField]: reasoning } : {}) };
        choices.push({ index: i, message, logprobs: null, finish_reason: finish, ...(b.stopReason !== undefined ? { stop_reason: b.stopReason } : {}) });
      }
      const out: Record<string, unknown> = { id, object: 'chat.completion', created, model, choices };
      if (withUsage) out.usage = usage;
      return { kind: 'json', status: 200, body: JSON.stringify(out) };
    }

    const pre = `data: {"id":"${id}","object":"chat.completion.chunk","created":${created},"model":${JSON.stringify(model)},"choices":[`;
    const head: string[] = [];
    const frames: string[] = [];
    const tail: string[] = [];
    const pieces = toolCall ? TOOL_ARGUMENT_PIECES : (b.pieces ?? streamPieces(content));
    for (let i = 0; i < n; i++) {
      head.push(`${pre}{"index":${i},"delta":{"role":"assistant","content":${toolCall ? 'null' : '""'}},"logprobs":null,"finish_reason":null}]}\n\n`);
    }
    for (let i = 0; i < n; i++) {
      if (toolCall) {
        const call = { index: 0, id: `call_${seq}_${i}`, type: 'function', function: { name: toolName, arguments: '' } };
        frames.push(`${pre}{"index":${i},"delta":{"tool_calls":[${JSON.stringify(call)}]},"logprobs":null,"finish_reason":null}]}\n\n`);
        for (const p of pieces)
          frames.push(`${pre}{"index":${i},"delta":{"tool_calls":[{"index":0,"function":{"arguments":${JSON.stringify(p)}}}]},"logprobs":null,"finish_reason":null}]}\n\n`);
      } else {
        if (reasoning) for (const p of b.reasoningPieces ?? streamPieces(reasoning)) frames.push(`${pre}{"index":${i},"delta":{"${rField}":${JSON.stringify(p)}},"logprobs":null,"finish_reason":null}]}\n\n`);
        for (const p of pieces) frames.push(`${pre}{"index":${i},"delta":{"content":${JSON.stringify(p)}},"logprobs":null,"finish_reason":null}]}\n\n`);
      }
    }
    const stopReason = b.stopReason !== undefined ? `,"stop_reason":${JSON.stringify(b.stopReason)}` : '';
    for (let i = 0; i < n; i++) tail.push(`${pre}{"index":${i},"delta":{},"logprobs":null,"finish_reason":${JSON.stringify(finish)}${stopReason}}]}\n\n`);
    if (withUsage && body?.stream_options?.include_usage === true) tail.push(`${pre}],"usage":${JSON.stringify(usage)}}\n\n`);
    tail.push('data: [DONE]\n\n');
    return { kind: 'stream', head, content: frames, tail };
  }

  /** POST /v1/messages: the Anthropic Messages answer — `echo: <last user text>`, a tool_use when
   * tools are given and the last user text says "use tool", the tool's result answered; streamed
   * in Anthropic's event sequence (head: message_start + ping + the text block's start; content:
   * one frame per delta; tail: block stop, message_delta with stop_reason and usage, message_stop). */
  function messagesPlan(body: any, b: OkBehavior): Plan {
    const id = `msg_up_${++seq}`;
    const model = typeof body?.model === 'string' ? body.model : 'unknown';
    const tools: any[] = Array.isArray(body?.tools) ? body.tools : [];
    const msgs: any[] = Array.isArray(body?.messages) ? body.messages : [];
    const lastMsg = msgs.at(-1);
    const result = Array.isArray(lastMsg?.content) ? lastMsg.content.find((x: any) => x?.type === 'tool_result') : undefined;
    const last = `echo: ${textOf(lastMsg?.content)}`;
    const toolCall = tools.length > 0 && !result && last.includes('use tool');
    const content = b.pieces ? b.pieces.join('') : (b.content ?? (result ? toolAnswerOf({ tool_call_id: result.tool_use_id, content: result.content }) : last));
    const stop = b.finishReason ?? (toolCall ? 'tool_use' : 'end_turn');
    const reasoning = toolCall ? undefined : (b.reasoningPieces?.join('') ?? b.reasoning);
    const cacheRead = b.cache?.read ?? 0;
    const cacheCreation = b.cache?.creation ?? 0;
    const cacheUsage = b.cache ? { cache_creation_input_tokens: cacheCreation, cache_read_input_tokens: cacheRead } : {};
    const usage = {
      input_tokens: messagesInputTokens(body) - cacheRead - cacheCreation,
      output_tokens: completionTokensFor(toolCall ? TOOL_ARGUMENTS : content) + (reasoning ? completionTokensFor(reasoning) : 0),
      ...cacheUsage,
    };
    const toolId = `toolu_up_${seq}`;
    const signature = `sig-${reasoning?.length ?? 0}`;
    const thinkingBlocks = reasoning ? [{ type: 'thinking', thinking: reasoning, signature }, { type: 'redacted_thinking', data: 'redacted-data' }] : [];
    if (body?.stream !== true) {
      const blocks = toolCall ? [{ type: 'tool_use', id: toolId, name: tools[0]?.name ?? 'tool', input: JSON.parse(TOOL_ARGUMENTS) }] : [...thinkingBlocks, { type: 'text', text: content }];
      return { kind: 'json', status: 200, body: JSON.stringify({ id, type: 'message', role: 'assistant', model, content: blocks, stop_reason: stop, stop_sequence: null, usage }) };
    }
    const ev = (name: string, data: object) => `event: ${name}\ndata: ${JSON.stringify({ type: name, ...data })}\n\n`;
    const head = [ev('message_start', { message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: usage.input_tokens, output_tokens: 1, ...cacheUsage } } }), ev('ping', {})];
    const frames: string[] = [];
    let lastBlock = 0;
    if (reasoning) {
      frames.push(ev('content_block_start', { index: 0, content_block: { type: 'thinking', thinking: '', signature: '' } }));
      for (const p of b.reasoningPieces ?? streamPieces(reasoning)) frames.push(ev('content_block_delta', { index: 0, delta: { type: 'thinking_delta', thinking: p } }));
      frames.push(ev('content_block_delta', { index: 0, delta: { type: 'signature_delta', signature } }), ev('content_block_stop', { index: 0 }));
      frames.push(ev('content_block_start', { index: 1, content_block: { type: 'redacted_thinking', data: 'redacted-data' } }), ev('content_block_stop', { index: 1 }));
      frames.push(ev('content_block_start', { index: 2, content_block: { type: 'text', text: '' } }));
      lastBlock = 2;
      for (const p of b.pieces ?? streamPieces(content)) frames.push(ev('content_block_delta', { index: 2, delta: { type: 'text_delta', text: p } }));
    } else if (toolCall) {
      frames.push(ev('content_block_start', { index: 0, content_block: { type: 'tool_use', id: toolId, name: tools[0]?.name ?? 'tool', input: {} } }));
      for (const p of TOOL_ARGUMENT_PIECES) frames.push(ev('content_block_delta', { index: 0, delta: { type: 'input_json_delta', partial_json: p } }));
    } else {
      head.push(ev('content_block_start', { index: 0, content_block: { type: 'text', text: '' } }));
      for (const p of b.pieces ?? streamPieces(content)) frames.push(ev('content_block_delta', { index: 0, delta: { type: 'text_delta', text: p } }));
    }
    const tail = [ev('content_block_stop', { index: lastBlock }), ev('message_delta', { delta: { stop_reason: stop, stop_sequence: null }, usage: { output_tokens: usage.output_tokens } }), ev('message_stop', {})];
    return { kind: 'stream', head, content: frames, tail };
  }

  function completionsPlan(body: any, b: OkBehavior): Plan {
    const id = `cmpl-${++seq}`;
    const created = Math.floor(Date.now() / 1000);
    const model = typeof body?.model === 'string' ? body.model : 'unknown';
    const n = Number.isInteger(body?.n) && body.n > 0 ? Math.min(body.n as number, 128) : 1;
    const prompts = inputs(body?.prompt);
    const finish = b.finishReason ?? 'stop';
    const texts: string[] = [];
    for (const p of prompts) for (let i = 0; i < n; i++) texts.push(b.pieces ? b.pieces.join('') : (b.content ?? `echo: ${p}`));
    const promptTokens = promptTokensFor('completions', body);
    let completionTokens = 0;
    for (const t of texts) completionTokens += completionTokensFor(t);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const withUsage = b.usage !== false;

    if (body?.stream !== true) {
      const choices = texts.map((text, index) => ({ index, text, logprobs: null, finish_reason: finish }));
      const out: Record<string, unknown> = { id, object: 'text_completion', created, model, choices };
      if (withUsage) out.usage = usage;
      return { kind: 'json', status: 200, body: JSON.stringify(out) };
    }
    const pre = `data: {"id":"${id}","object":"text_completion","created":${created},"model":${JSON.stringify(model)},"choices":[`;
    const frames: string[] = [];
    const tail: string[] = [];
    texts.forEach((t, i) => {
      for (const p of b.pieces ?? streamPieces(t)) frames.push(`${pre}{"index":${i},"text":${JSON.stringify(p)},"logprobs":null,"finish_reason":null}]}\n\n`);
    });
    for (let i = 0; i < texts.length; i++) tail.push(`${pre}{"index":${i},"text":"","logprobs":null,"finish_reason":${JSON.stringify(finish)}}]}\n\n`);
    if (withUsage && body?.stream_options?.include_usage === true) tail.push(`${pre}],"usage":${JSON.stringify(usage)}}\n\n`);
    tail.push('data: [DONE]\n\n');
    return { kind: 'stream', head: [], content: frames, tail };
  }

  function embeddingsPlan(body: any, b: OkBehavior): Plan {
    const model = typeof body?.model === 'string' ? body.model : 'unknown';
    const ins = inputs(body?.input);
    // like OpenAI (and what the openai client asks for by default): base64 of little-endian float32
    const b64 = body?.encoding_format === 'base64';
    const data = ins.map((s, index) => {
      const v = embeddingFor(s);
      return { object: 'embedding', index, embedding: b64 ? Buffer.from(new Float32Array(v).buffer).toString('base64') : v };
    });
    const pt = promptTokensFor('embeddings', body);
    const out: Record<string, unknown> = { object: 'list', data, model };
    if (b.usage !== false) out.usage = { prompt_tokens: pt, total_tokens: pt };
    return { kind: 'json', status: 200, body: JSON.stringify(out) };
  }

  // --- delivery --------------------------------------------------------------------------------

  function sendJson(st: ReqState, status: number, body: string, extra?: Record<string, string>): void {
    if (st.closed) return;
    st.res.writeHead(status, { ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(body)), ...extra });
    st.res.end(body);
  }

  /** Flush what was written, then cut the connection. */
  function drop(st: ReqState, last?: string): void {
    if (st.closed) return;
    st.dropped = true;
    const kill = () => st.req.socket.destroy();
    if (last !== undefined && last !== '') st.res.write(last, kill);
    else if (st.res.headersSent) st.res.write('', kill);
    else kill();
  }

  function later(st: ReqState, ms: number, fn: () => void): void {
    if (st.closed) return;
    st.timer = setTimeout(() => {
      st.timer = undefined;
      if (!st.closed) fn();
    }, ms);
  }

  /** Write content frames [from, to) with the configured delay, then `done`. */
  function writeFrames(st: ReqState, frames: string[], from: number, to: number, delay: number, done: (rest: string) => void): void {
    if (delay <= 0) {
      let s = '';
      for (let i = from; i < to; i++) s += frames[i];
      done(s);
      return;
    }
    if (from >= to) {
      done('');
      return;
    }
    later(st, delay, () => {
      st.res.write(frames[from]!);
      writeFrames(st, frames, from + 1, to, delay, done);
    });
  }

  /** Write `b` one byte at a time, `gapMs` apart (the last byte 100 ms after the one before), then end. */
  function writeBytes(st: ReqState, b: Buffer, gapMs: number): void {
    let i = 0;
    const step = (): void => {
      if (i >= b.length) {
        st.res.end();
        return;
      }
      st.res.write(b.subarray(i, i + 1));
      i++;
      if (i < b.length) later(st, i === b.length - 1 ? 100 : gapMs, step);
      else step();
    };
    step();
  }

  /** Write `n` filler bytes in 64 KB pieces as fast as the client takes them, then `done` (not if the client left). */
  function writeFiller(st: ReqState, n: number, done: () => void): void {
    const step = () => {
      while (n > 0) {
        if (st.closed) return;
        const k = Math.min(n, FILL.length);
        n -= k;
        if (!st.res.write(k === FILL.length ? FILL : FILL.subarray(0, k))) {
          st.res.once('drain', step);
          return;
        }
      }
      if (!st.closed) done();
    };
    step();
  }

  /** Write `frame()` forever: one every `delay` ms, or (0) as fast as the client takes them; stops when the client leaves. */
  function writeForever(st: ReqState, delay: number, frame: () => string | Buffer): void {
    const step = (): void => {
      if (delay > 0) {
        later(st, delay, () => {
          st.res.write(frame());
          step();
        });
        return;
      }
      while (!st.closed) {
        if (!st.res.write(frame())) {
          st.res.once('drain', step);
          return;
        }
      }
    };
    step();
  }

  /** huge-body: `{"padding":"xxx…",` + the fields of `base` (a JSON object), `bytes` bytes in all. */
  function sendHugeBody(st: ReqState, base: string | undefined, bytes: number, declareLength: boolean): void {
    const pre = '{"padding":"';
    const post = base && base.length > 2 ? `",${base.slice(1)}` : '"}';
    const fill = Math.max(0, bytes - pre.length - Buffer.byteLength(post));
    const headers: Record<string, string> = { ...JSON_HEADERS };
    if (declareLength) headers['content-length'] = String(pre.length + fill + Buffer.byteLength(post));
    st.res.writeHead(200, headers);
    st.res.write(pre);
    writeFiller(st, fill, () => st.res.end(post));
  }

  function deliver(st: ReqState, b: Behavior, plan: (ok: OkBehavior) => Plan, stream: boolean): void {
    if (st.closed) return;
    const { res } = st;
    switch (b.kind) {
      case 'ok': {
        const p0 = plan(b);
        const p = b.sse && p0.kind === 'stream' ? shapeStream(p0, b.sse) : p0;
        const delay = b.chunkDelayMs ?? 0;
        if (p.kind === 'json') {
          if (delay > 0 && p.status === 200) {
            const parts = countChunks(p.body);
            later(st, delay * parts, () => sendJson(st, p.status, p.body));
          } else sendJson(st, p.status, p.body);
          return;
        }
        res.writeHead(200, SSE_HEADERS);
        const head = p.head.join('');
        if (st.rec) st.rec.streamed = head + p.content.join('') + p.tail.join('');
        if (b.sse?.byteWrites) {
          writeBytes(st, Buffer.from(st.rec?.streamed ?? head + p.content.join('') + p.tail.join('')), Math.max(delay, 1));
          return;
        }
        if (delay > 0) {
          if (head) res.write(head);
          writeFrames(st, p.content, 0, p.content.length, delay, (rest) => res.end(rest + p.tail.join('')));
        } else {
          let s = head;
          for (const f of p.content) s += f;
          for (const f of p.tail) s += f;
          res.end(s);
        }
        return;
      }
      case 'status': {
        const body = b.body ?? errorJson(b.status, `simulated upstream error ${b.status}`);
        const headers: Record<string, string> = { 'content-length': String(Buffer.byteLength(body)) };
        headers['content-type'] = b.body === undefined || looksLikeJson(b.body) ? 'application/json' : 'text/plain';
        if (b.retryAfter !== undefined) headers['retry-after'] = b.retryAfter;
        res.writeHead(b.status, headers);
        res.end(body);
        return;
      }
      case 'slow-first-byte':
        later(st, b.delayMs, () => deliver(st, b.then ?? DEFAULT_OK, plan, stream));
        return;
      case 'hang':
        return;
      case 'drop-mid-stream': {
        const p = plan(DEFAULT_OK);
        if (p.kind === 'json' || !stream) {
          const body = p.kind === 'json' ? p.body : '{"id":"x","choices":[{"index":0,"message":{"role":"assistant","content":"half';
          res.writeHead(200, { ...JSON_HEADERS, 'content-length': String(Buffer.byteLength(body)) });
          drop(st, body.slice(0, Math.floor(body.length / 2)));
          return;
        }
        res.writeHead(200, SSE_HEADERS);
        const n = Math.min(Math.max(0, b.afterChunks), p.content.length);
        writeFrames(st, p.content, 0, n, 0, (rest) => drop(st, p.head.join('') + rest));
        return;
      }
      case 'drop-before-content': {
        if (!stream) {
          drop(st);
          return;
        }
        const p = plan(DEFAULT_OK);
        res.writeHead(200, SSE_HEADERS);
        drop(st, p.kind === 'stream' ? p.head.join('') : '');
        return;
      }
      case 'error-event-before-content': {
        const err = errorJson(500, 'simulated error event from the model server');
        if (!stream) {
          sendJson(st, 200, err);
          return;
        }
        res.writeHead(200, SSE_HEADERS);
        res.end(`data: ${err}\n\n`);
        return;
      }
      case 'invalid-json': {
        const body = '{"id":"chatcmpl-garbage","choices":[{"message": <<not json>>';
        sendJson(st, 200, body);
        return;
      }
      case 'wrong-content-type': {
        const body = '<!DOCTYPE html><html><body><h1>502 Bad Gateway</h1></body></html>';
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) });
        res.end(body);
        return;
      }
      case 'huge-event':
      case 'huge-body': {
        const p = plan(DEFAULT_OK);
        if (b.kind === 'huge-body' || !stream || p.kind !== 'stream') {
          sendHugeBody(st, p.kind === 'json' ? p.body : undefined, b.bytes, b.kind === 'huge-body' && b.declareLength === true);
          return;
        }
        const n = Math.min(Math.max(0, b.afterChunks ?? 0), p.content.length);
        res.writeHead(200, SSE_HEADERS);
        res.write(p.head.join('') + p.content.slice(0, n).join('') + HUGE_EVENT_PRE);
        const fill = Math.max(0, b.bytes - HUGE_EVENT_PRE.length - HUGE_EVENT_POST.length);
        writeFiller(st, fill, () => res.end(`${HUGE_EVENT_POST}\n\n${p.content.slice(n).join('')}${p.tail.join('')}`));
        return;
      }
      case 'endless-stream': {
        const delay = b.chunkDelayMs ?? 10;
        if (!stream) {
          res.writeHead(200, JSON_HEADERS);
          res.write('{"padding":"');
          writeForever(st, delay, () => FILL.subarray(0, 1024));
          return;
        }
        const p = plan(DEFAULT_OK);
        res.writeHead(200, SSE_HEADERS);
        res.write(p.kind === 'stream' ? p.head.join('') : '');
        let i = 0;
        writeForever(st, delay, () => `data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"tick${i++} "},"logprobs":null,"finish_reason":null}]}\n\n`);
        return;
      }
    }
  }

  // --- request handling ------------------------------------------------------------------------

  function route(method: string, path: string): 'chat' | 'completions' | 'embeddings' | 'messages' | 'models' | 'tags' | undefined {
    const q = path.indexOf('?');
    const p = q === -1 ? path : path.slice(0, q);
    if (method === 'POST') {
      if (p === '/v1/chat/completions') return 'chat';
      if (p === '/v1/completions') return 'completions';
      if (p === '/v1/embeddings') return 'embeddings';
      if (p === '/v1/messages') return 'messages';
    } else if (method === 'GET') {
      if (p === '/v1/models') return 'models';
      if (p === '/api/tags') return 'tags';
    }
    return undefined;
  }

  function handle(st: ReqState, raw: string): void {
    const { req } = st;
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    let body: any;
    let badJson = false;
    if (raw.length > 0) {
      try {
        body = JSON.parse(raw);
      } catch {
        body = raw;
        badJson = true;
      }
    }
    const rec: RecordedRequest = { method, path, headers: req.headers, body, at: Date.now() };
    record(rec);
    st.rec = rec;
    const r = route(method, path);
    if (r === undefined) {
      sendJson(st, 404, errorJson(404, `${method} ${path} not found`));
      return;
    }
    if (r === 'models' || r === 'tags') {
      const text = r === 'models' ? modelsBody : tagsBody;
      deliver(st, modelsBehavior ?? DEFAULT_OK, () => ({ kind: 'json', status: 200, body: text }), false);
      return;
    }
    if (badJson || body === null || typeof body !== 'object' || Array.isArray(body)) {
      sendJson(st, 400, errorJson(400, 'request body is not a JSON object'));
      return;
    }
    const b = queued.length > 0 ? queued.shift()! : typeof behavior === 'function' ? behavior(rec) : behavior;
    const stream = r !== 'embeddings' && body.stream === true;
    const plan = (ok: OkBehavior): Plan =>
      r === 'chat' ? chatPlan(body, ok)
      : r === 'completions' ? completionsPlan(body, ok)
      : r === 'messages' ? messagesPlan(body, ok)
      : embeddingsPlan(body, ok);
    deliver(st, b, plan, stream);
  }

  const server = http.createServer({ keepAliveTimeout: 65_000, requestTimeout: 0, noDelay: true }, (req, res) => {
    inflight++;
    const st: ReqState = { req, res, closed: false, dropped: false, timer: undefined };
    res.once('close', () => {
      st.closed = true;
      if (--inflight === 0 && onIdle) onIdle();
      if (st.timer) clearTimeout(st.timer);
      if (!res.writableFinished && !st.dropped && !closing) aborted++;
    });
    let first: Buffer | undefined;
    let more: Buffer[] | undefined;
    req.on('data', (c: Buffer) => {
      if (first === undefined) first = c;
      else (more ??= [first]).push(c);
    });
    req.on('end', () => {
      const raw = more ? Buffer.concat(more).toString('utf8') : first ? first.toString('utf8') : '';
      handle(st, raw);
    });
    req.on('error', () => {});
  });
  server.keepAliveTimeout = 65_000;
  server.headersTimeout = 66_000;

  return new Promise((resolve, reject) => {
    server.once('error', reject);
    // a large accept queue: the bench opens a thousand streams at once through a gateway
    server.listen({ port: opts.port ?? 0, host, backlog: 4096 }, () => {
      server.off('error', reject);
      const port = (server.address() as AddressInfo).port;
      const origin = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
      const up: TestUpstream = {
        url: `${origin}/v1`,
        origin,
        port,
        requests,
        completions: () => requests.filter((r) => r.method === 'POST'),
        get inflight() {
          return inflight;
        },
        get aborted() {
          return aborted;
        },
        setBehavior(b) {
          behavior = b;
        },
        queue(...bs) {
          queued.push(...bs);
        },
        setModelsResponse(b) {
          modelsBehavior = b;
        },
        setModels(list) {
          ({ models: modelsBody, tags: tagsBody } = listBodies(list));
        },
        reset() {
          requests.length = 0;
          aborted = 0;
        },
        close() {
          closing = true;
          return new Promise<void>((res) => {
            server.close(() => {
              // the responses' 'close' events may follow the server's
              if (inflight === 0) res();
              else onIdle = res;
            });
            server.closeAllConnections();
          });
        },
      };
      resolve(up);
    });
  });
}

/** JSON as Python's json.dumps writes it by default: ", " and ": " separators, non-ASCII escaped. */
export function pythonJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return (JSON.stringify(v) ?? 'null').replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
  if (Array.isArray(v)) return `[${v.map(pythonJson).join(', ')}]`;
  return `{${Object.entries(v as Record<string, unknown>)
    .map(([k, x]) => `${pythonJson(k)}: ${pythonJson(x)}`)
    .join(', ')}}`;
}

const DONE_FRAME = 'data: [DONE]\n\n';

/** A stream plan (frames in the default format, `data: JSON\n\n`) rewritten in the format `s` asks for. */
function shapeStream(p: Extract<Plan, { kind: 'stream' }>, s: SSEShape): Extract<Plan, { kind: 'stream' }> {
  type Frame = { json: Record<string, any>; raw: string; changed: boolean } | 'done';
  const parse = (f: string): Frame => (f === DONE_FRAME ? 'done' : { json: JSON.parse(f.slice(6, -2)) as Record<string, any>, raw: f.slice(6, -2), changed: false });
  const head = p.head.map(parse);
  const content = p.content.map(parse);
  let tail = p.tail.map(parse);
  if (s.usageInLastChunk) {
    const u = tail.findIndex((f) => f !== 'done' && f.json.usage && Array.isArray(f.json.choices) && f.json.choices.length === 0);
    if (u !== -1) {
      const usage = (tail[u] as Exclude<Frame, 'done'>).json.usage;
      tail = tail.filter((_, i) => i !== u);
      for (let i = tail.length - 1; i >= 0; i--) {
        const f = tail[i]!;
        if (f !== 'done' && Array.isArray(f.json.choices) && f.json.choices.some((c: any) => c?.finish_reason)) {
          f.json.usage = usage;
          f.changed = true;
          break;
        }
      }
    }
  }
  if (s.done === false) tail = tail.filter((f) => f !== 'done');
  const eol = s.crlf ? '\r\n' : '\n';
  const lastJson = tail.reduce((at, f, i) => (f !== 'done' ? i : at), -1);
  const write = (f: Frame, comment?: string): string => {
    const data = f === 'done' ? '[DONE]' : s.spaced ? pythonJson(f.json) : f.changed ? JSON.stringify(f.json) : f.raw;
    return `${comment !== undefined ? `: ${comment}${eol}` : ''}data:${s.noSpaceAfterData ? '' : ' '}${data}${eol}${eol}`;
  };
  const ping = (text: string) => (s.comments ? `: ${text}${eol}${eol}` : '');
  const out = {
    kind: 'stream' as const,
    head: head.map((f) => write(f)),
    content: content.map((f, i) => (i % 2 === 0 ? ping('ping') : '') + write(f)),
    tail: tail.map((f, i) => write(f, s.comments && i === lastJson ? 'last event' : undefined)),
  };
  const first = out.head.length ? out.head : out.content.length ? out.content : out.tail;
  if (first.length) first[0] = ping('connected') + first[0];
  return out;
}

/** How many stream chunks a non-stream answer would have had (for chunkDelayMs). */
function countChunks(body: string): number {
  try {
    const j = JSON.parse(body) as { choices?: { message?: { content?: unknown }; text?: unknown }[] };
    const c = j.choices?.[0];
    const text = typeof c?.message?.content === 'string' ? c.message.content : typeof c?.text === 'string' ? c.text : '';
    return Math.max(1, streamPieces(text).length);
  } catch {
    return 1;
  }
}

function looksLikeJson(s: string): boolean {
  try {
    JSON.parse(s);
    return true;
  } catch {
    return false;
  }
}
