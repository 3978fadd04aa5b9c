// The Anthropic Messages API (POST /v1/messages) onto an upstream's Chat Completions: the request
// translated into a chat body, the chat answer (after the output guards) translated back into a
// Message, or, streamed, into Anthropic's event sequence as the chat events arrive.
import { ContentTemplate } from '../openai/content-template.js';
import { badRequest, gatewayError, type GatewayError } from '../errors.js';
import type { KeyRecord, Snapshot } from '../snapshot.js';
import { estimatePromptTokens } from '../tokens.js';
import type { Usage } from '../openai/stream-inspector.js';
import type { SSEEvent } from '../sse.js';
import { authorizeModel, promptEstimate, type RequestContext } from '../stages.js';
import {
  bodyObject,
  compactId,
  eventsText,
  isObject,
  namedEvent,
  optionalBoolean,
  optionalNumber,
  parseArguments,
  partsText,
  readChatAnswer,
  readChatEvent,
  requiredString,
  usageDetailsOf,
  type AnswerTranslator,
  type ChatDeltaSink,
  type Json,
  type UsageDetails,
  type ProtocolAdapter,
} from '../translate.js';

// ---- errors ----

/** Anthropic's error types by HTTP status. */
export function anthropicErrorType(status: number): string {
  if (status === 401) return 'authentication_error';
  if (status === 403) return 'permission_error';
  if (status === 404) return 'not_found_error';
  if (status === 413) return 'request_too_large';
  if (status === 429) return 'rate_limit_error';
  if (status === 503) return 'overloaded_error';
  if (status >= 500) return 'api_error';
  return 'invalid_request_error';
}

export function anthropicErrorBody(err: GatewayError): Json {
  return { type: 'error', error: { type: anthropicErrorType(err.status), message: err.message } };
}

// ---- request ----

const ROLES = new Set(['user', 'assistant']);

function imageUrl(block: Json, path: string): string {
  const src = block.source;
  if (!isObject(src)) throw badRequest(`"${path}.source" is required for an image block.`, `${path}.source`);
  if (src.type === 'base64') {
    if (typeof src.media_type !== 'string' || typeof src.data !== 'string')
      throw badRequest(`"${path}.source" needs "media_type" and "data" strings for a base64 image.`, `${path}.source`);
    return `data:${src.media_type};base64,${src.data}`;
  }
  if (src.type === 'url' && typeof src.url === 'string') return src.url;
  throw badRequest(`"${path}.source.type" must be "base64" or "url".`, `${path}.source.type`);
}

/** One Anthropic message → chat messages (tool results become tool messages, before the rest). */
function translateMessage(m: unknown, i: number, out: Json[]): void {
  const path = `messages[${i}]`;
  if (!isObject(m)) throw badRequest(`"${path}" must be an object.`, path);
  if (typeof m.role !== 'string' || !ROLES.has(m.role)) throw badRequest(`"${path}.role" must be "user" or "assistant".`, `${path}.role`);
  const role = m.role;
  if (typeof m.content === 'string') {
    out.push({ role, content: m.content });
    return;
  }
  if (!Array.isArray(m.content)) throw badRequest(`"${path}.content" must be a string or an array of content blocks.`, `${path}.content`);
  const parts: Json[] = [];
  let hasImage = false;
  const toolCalls: Json[] = [];
  const toolResults: Json[] = [];
  m.content.forEach((b: unknown, k) => {
    const bp = `${path}.content[${k}]`;
    if (!isObject(b) || typeof b.type !== 'string') throw badRequest(`"${bp}.type" is required.`, `${bp}.type`);
    switch (b.type) {
      case 'text':
        if (typeof b.text !== 'string') throw badRequest(`"${bp}.text" must be a string.`, `${bp}.text`);
        parts.push({ type: 'text', text: b.text });
        return;
      case 'image':
        if (role !== 'user') throw badRequest(`"${bp}": image blocks are accepted in user messages only.`, `${bp}.type`);
        hasImage = true;
        parts.push({ type: 'image_url', image_url: { url: imageUrl(b, bp) } });
        return;
      case 'tool_use':
        if (role !== 'assistant') throw badRequest(`"${bp}": tool_use blocks belong to assistant messages.`, `${bp}.type`);
        if (typeof b.id !== 'string' || !b.id) throw badRequest(`"${bp}.id" is required.`, `${bp}.id`);
        if (typeof b.name !== 'string' || !b.name) throw badRequest(`"${bp}.name" is required.`, `${bp}.name`);
        toolCalls.push({ id: b.id, type: 'function', function: { name: b.name, arguments: JSON.stringify(b.input ?? {}) } });
        return;
      case 'tool_result': {
        if (role !== 'user') throw badRequest(`"${bp}": tool_result blocks belong to user messages.`, `${bp}.type`);
        if (typeof b.tool_use_id !== 'string' || !b.tool_use_id) throw badRequest(`"${bp}.tool_use_id" is required.`, `${bp}.tool_use_id`);
        const text = partsText(b.content);
        toolResults.push({ role: 'tool', tool_call_id: b.tool_use_id, content: b.is_error === true ? `Error: ${text}` : text });
        return;
      }
      case 'thinking':
      case 'redacted_thinking':
        return; // the model's own earlier reasoning: not sent back to a chat upstream
      default:
        throw badRequest(`"${bp}.type" "${b.type}" is not supported here (text, image, tool_use, tool_result).`, `${bp}.type`);
    }
  });
  out.push(...toolResults);
  if (role === 'assistant') {
    const text = parts.map((p) => p.text as string).join('');
    if (toolCalls.length || text) out.push({ role, content: text || null, ...(toolCalls.length ? { tool_calls: toolCalls } : {}) });
    return;
  }
  if (!parts.length) return;
  if (hasImage) out.push({ role, content: parts });
  else out.push({ role, content: parts.map((p) => p.text as string).join('\n') });
}

function translateTools(v: unknown): Json[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v)) throw badRequest('"tools" must be an array.', 'tools');
  return v.map((t: unknown, i) => {
    const p = `tools[${i}]`;
    if (!isObject(t)) throw badRequest(`"${p}" must be an object.`, p);
    if (t.type !== undefined && t.type !== null && t.type !== 'custom')
      throw badRequest(`"${p}.type": the server tool ${JSON.stringify(t.type)} is not available on this gateway (nothing leaves the network); define a client tool with "name" and "input_schema".`, `${p}.type`);
    const name = requiredString(t, 'name', `${p}.name`);
    if (!isObject(t.input_schema)) throw badRequest(`"${p}.input_schema" is required and must be a JSON schema object.`, `${p}.input_schema`);
    const fn: Json = { name, parameters: t.input_schema };
    if (typeof t.description === 'string') fn.description = t.description;
    return { type: 'function', function: fn };
  });
}

function translateToolChoice(v: unknown, out: Json): void {
  if (v === undefined || v === null) return;
  if (!isObject(v) || typeof v.type !== 'string') throw badRequest('"tool_choice.type" is required.', 'tool_choice.type');
  if (v.type === 'auto') out.tool_choice = 'auto';
  else if (v.type === 'any') out.tool_choice = 'required';
  else if (v.type === 'none') out.tool_choice = 'none';
  else if (v.type === 'tool') out.tool_choice = { type: 'function', function: { name: requiredString(v, 'name', 'tool_choice.name') } };
  else throw badRequest('"tool_choice.type" must be "auto", "any", "tool" or "none".', 'tool_choice.type');
  if (v.disable_parallel_tool_use === true) out.parallel_tool_calls = false;
}

/** The system prompt: a string or text blocks. */
function systemText(v: unknown): string | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) throw badRequest('"system" must be a string or an array of text blocks.', 'system');
  return v
    .map((b: unknown, i) => {
      if (!isObject(b) || b.type !== 'text' || typeof b.text !== 'string') throw badRequest(`"system[${i}]" must be a text block.`, `system[${i}]`);
      return b.text;
    })
    .join('\n');
}

/** The request as a chat body. `forCount`: count_tokens, where max_tokens is not required. */
export function messagesToChat(body: unknown, forCount = false): Json {
  const b = bodyObject(body);
  const model = requiredString(b, 'model');
  const maxTokens = b.max_tokens;
  if (!forCount && (typeof maxTokens !== 'number' || !Number.isInteger(maxTokens) || maxTokens < 1))
    throw badRequest('"max_tokens" is required and must be a positive integer.', 'max_tokens');
  if (!Array.isArray(b.messages) || b.messages.length === 0) throw badRequest('"messages" is required and must be a non-empty array.', 'messages');
  const stream = optionalBoolean(b, 'stream') ?? false;
  const messages: Json[] = [];
  const system = systemText(b.system);
  if (system) messages.push({ role: 'system', content: system });
  b.messages.forEach((m, i) => translateMessage(m, i, messages));
  const out: Json = { model, messages };
  if (!forCount) out.max_tokens = maxTokens;
  if (stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  for (const f of ['temperature', 'top_p', 'top_k'] as const) {
    const n = optionalNumber(b, f);
    if (n !== undefined) out[f] = n;
  }
  if (b.stop_sequences !== undefined && b.stop_sequences !== null) {
    if (!Array.isArray(b.stop_sequences) || !b.stop_sequences.every((s) => typeof s === 'string'))
      throw badRequest('"stop_sequences" must be an array of strings.', 'stop_sequences');
    if (b.stop_sequences.length) out.stop = b.stop_sequences;
  }
  const tools = translateTools(b.tools);
  if (tools?.length) out.tools = tools;
  translateToolChoice(b.tool_choice, out);
  if (b.metadata !== undefined && b.metadata !== null) {
    if (!isObject(b.metadata)) throw badRequest('"metadata" must be an object.', 'metadata');
    const u = b.metadata.user_id;
    if (u !== undefined && u !== null && typeof u !== 'string') throw badRequest('"metadata.user_id" must be a string.', 'metadata.user_id');
    if (u) out.user = u;
  }
  return out;
}

// ---- answer ----

/** The chat finish reason as Anthropic's stop_reason (and the stop sequence that matched, when known). */
export function stopReason(finish: string | undefined, matched: string | undefined, stops: unknown): { reason: string; sequence: string | null } {
  switch (finish) {
    case 'length':
      return { reason: 'max_tokens', sequence: null };
    case 'tool_calls':
    case 'function_call':
      return { reason: 'tool_use', sequence: null };
    case 'content_filter':
      return { reason: 'refusal', sequence: null };
    default:
      if (matched !== undefined && Array.isArray(stops) && stops.includes(matched)) return { reason: 'stop_sequence', sequence: matched };
      return { reason: 'end_turn', sequence: null };
  }
}

function messageId(ctx: RequestContext): string {
  return `msg_${compactId(ctx.id)}`;
}

class MessagesAnswer implements AnswerTranslator {
  // streaming state
  private started = false;
  private block = -1;
  private blockType: 'text' | 'tool' | 'thinking' | undefined;
  private toolIndex = -1;
  private readonly toolStarted = new Set<number>();
  /** the stream's content-only chunks, read without parsing them (readChatEvent) */
  private readonly template = new ContentTemplate();
  private finish: { reason: string; sequence: string | null } | undefined;
  private usage: Usage | undefined;
  private details: UsageDetails | undefined;
  private chars = 0;
  private out: SSEEvent[] = [];

  constructor(private readonly ctx: RequestContext) {}

  /** Anthropic's usage: input_tokens leaves out the prompt tokens read from or written to a cache. */
  private usageBody(prompt: number, completion: number, d: UsageDetails | undefined): Json {
    if (!d || (!d.cacheRead && !d.cacheCreation)) return { input_tokens: prompt, output_tokens: completion };
    return {
      input_tokens: Math.max(0, prompt - d.cacheRead - d.cacheCreation),
      output_tokens: completion,
      cache_creation_input_tokens: d.cacheCreation,
      cache_read_input_tokens: d.cacheRead,
    };
  }

  body(chat: Json): unknown {
    const ctx = this.ctx;
    const a = readChatAnswer(chat, (n) => `toolu_${compactId(ctx.id)}_${n}`);
    const content: Json[] = [];
    // thinking first, as Anthropic sends it: a native endpoint's blocks as they were (signatures
    // included), or a chat server's reasoning_content as one thinking block (no signature)
    if (a.thinkingBlocks.length) content.push(...a.thinkingBlocks);
    else if (a.reasoning) content.push({ type: 'thinking', thinking: a.reasoning, signature: '' });
    if (a.text) content.push({ type: 'text', text: a.text });
    for (const tc of a.toolCalls) content.push({ type: 'tool_use', id: tc.id, name: tc.name, input: parseArguments(tc.arguments) });
    const stop = stopReason(a.finishReason ?? (a.toolCalls.length ? 'tool_calls' : 'stop'), a.matchedStop, ctx.body.stop);
    return {
      id: messageId(ctx),
      type: 'message',
      role: 'assistant',
      model: ctx.requestedModel,
      content,
      stop_reason: stop.reason,
      stop_sequence: stop.sequence,
      usage: this.usageBody(ctx.promptTokens, ctx.completionTokens, usageDetailsOf(chat.usage)),
    };
  }

  private emit(name: string, data: Json): void {
    this.out.push(namedEvent(name, { type: name, ...data }));
  }

  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.emit('message_start', {
      message: {
        id: messageId(this.ctx),
        type: 'message',
        role: 'assistant',
        model: this.ctx.requestedModel,
        content: [],
        stop_reason: null,
        stop_sequence: null,
        usage: { input_tokens: promptEstimate(this.ctx), output_tokens: 0 },
      },
    });
    this.emit('ping', {});
  }

  private closeBlock(): void {
    if (this.blockType === undefined) return;
    this.emit('content_block_stop', { index: this.block });
    this.blockType = undefined;
  }

  private openBlock(type: 'text' | 'thinking' | 'tool', block: Json): void {
    this.closeBlock();
    this.block++;
    this.blockType = type;
    this.emit('content_block_start', { index: this.block, content_block: block });
  }

  private readonly sink: ChatDeltaSink = {
    reasoning: (s: string) => {
      if (this.blockType !== 'thinking') this.openBlock('thinking', { type: 'thinking', thinking: '', signature: '' });
      this.chars += s.length;
      this.emit('content_block_delta', { index: this.block, delta: { type: 'thinking_delta', thinking: s } });
    },
    signature: (sig: string) => {
      if (this.blockType !== 'thinking') this.openBlock('thinking', { type: 'thinking', thinking: '', signature: '' });
      this.emit('content_block_delta', { index: this.block, delta: { type: 'signature_delta', signature: sig } });
      this.closeBlock(); // a signature ends its thinking block
    },
    redactedThinking: (data: string) => {
      this.openBlock('thinking', { type: 'redacted_thinking', data });
      this.closeBlock();
    },
    text: (s: string) => {
      if (this.blockType !== 'text') this.openBlock('text', { type: 'text', text: '' });
      this.chars += s.length;
      // the hot event, written directly: the same JSON as emit() would give, at a fraction of the cost
      this.out.push({ event: 'content_block_delta', data: `{"type":"content_block_delta","index":${this.block},"delta":{"type":"text_delta","text":${JSON.stringify(s)}}}`, id: undefined });
    },
    toolStart: (index: number, id: string | undefined, name: string) => {
      this.toolIndex = index;
      this.chars += name.length;
      this.openBlock('tool', { type: 'tool_use', id: id ?? `toolu_${compactId(this.ctx.id)}_${index}`, name, input: {} });
    },
    toolArgs: (index: number, s: string) => {
      if (this.blockType !== 'tool' || this.toolIndex !== index) return; // interleaved calls: not sent by chat servers
      this.chars += s.length;
      this.emit('content_block_delta', { index: this.block, delta: { type: 'input_json_delta', partial_json: s } });
    },
    finish: (reason: string, matched: string | undefined) => {
      this.closeBlock();
      this.finish = stopReason(reason, matched, this.ctx.body.stop);
    },
    usage: (u: Usage, d: UsageDetails) => {
      this.usage = u;
      this.details = d;
    },
  };

  readonly stream = {
    event: (ev: SSEEvent): SSEEvent[] => {
      this.begin();
      readChatEvent(ev, this.sink, this.toolStarted, this.template);
      return this.out.splice(0);
    },
    end: (): SSEEvent[] => {
      if (!this.finish) return this.out.splice(0);
      this.begin();
      this.closeBlock();
      const usage = this.usage ?? { prompt: promptEstimate(this.ctx), completion: Math.ceil(this.chars / 4) };
      this.emit('message_delta', {
        delta: { stop_reason: this.finish.reason, stop_sequence: this.finish.sequence },
        usage: this.usageBody(usage.prompt, usage.completion, this.details),
      });
      this.emit('message_stop', {});
      return this.out.splice(0);
    },
  };

  failure(err: GatewayError): string {
    return eventsText([namedEvent('error', anthropicErrorBody(err))]);
  }
}

export const messagesAdapter: ProtocolAdapter = {
  toChat: (body, ctx) => {
    const chat = messagesToChat(body);
    ctx.native = body as Json; // (an object: messagesToChat checked it) for endpoints that speak Messages
    return chat;
  },
  errorBody: anthropicErrorBody,
  answer: (ctx) => new MessagesAnswer(ctx),
};

/** POST /v1/messages/count_tokens: the gateway's own estimate of the prompt (no upstream is asked). */
export function countTokens(s: Snapshot, key: KeyRecord, body: unknown): { input_tokens: number; estimated: true } {
  const chat = messagesToChat(body, true);
  const model = chat.model as string;
  if (!s.models.has(model) && !s.virtualModels.has(model)) throw gatewayError('model_not_found', `The model "${model}" does not exist on this gateway.`, { param: 'model' });
  authorizeModel(key, model, model);
  return { input_tokens: estimatePromptTokens(chat), estimated: true };
}
