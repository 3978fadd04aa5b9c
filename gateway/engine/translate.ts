// Client protocols served by translation onto the upstream's Chat Completions: the Anthropic
// Messages API (anthropic/) and the OpenAI Responses API (responses/). There is no second request
// path: the pipeline translates the client's body into a chat body (ctx.body) before routing, so
// keys, budgets, guards, routing rules, the ledger and the events see a chat request; the
// upstream's chat answer runs through the output guards as it would for /v1/chat/completions and
// only then is translated, as a whole or event by event (never buffered to the end).
import type { ContentTemplate } from './openai/content-template.js';
import { badRequest, type GatewayError } from './errors.js';
import type { EventTransform, Usage } from './openai/stream-inspector.js';
import { readUsage } from './openai/stream-inspector.js';
import { formatSSE, type SSEEvent } from './sse.js';
import type { RequestContext } from './stages.js';

/** A client protocol the pipeline serves by translation. */
export interface ProtocolAdapter {
  /** Validate the client's body (400 naming the field) and translate it into a Chat Completions
   * body: model, messages, stream, tools, user… (ctx.key is known: stored state may be looked up). */
  toChat(body: unknown, ctx: RequestContext): Record<string, unknown>;
  /** an error answer's body in this protocol's shape */
  errorBody(err: GatewayError): unknown;
  /** the translator of one attempt's answer (a new one per attempt: a failed attempt leaves nothing) */
  answer(ctx: RequestContext): AnswerTranslator;
}

export interface AnswerTranslator {
  /** the whole chat answer, after the output guards → this protocol's answer */
  body(chat: Record<string, unknown>): unknown;
  /** streamed chat events, after the output guards → this protocol's events; end() emits the
   * closing events only when the upstream finished (a break ends with failure() instead) */
  stream: EventTransform;
  /** the in-band ending of a stream that cannot finish (a break, a guard's block): SSE text */
  failure(err: GatewayError): string;
}

// ---- request side helpers ----

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** A required object body. */
export function bodyObject(body: unknown): Json {
  if (!isObject(body)) throw badRequest('The request body must be a JSON object.');
  return body;
}

export function optionalNumber(b: Json, field: string, path = field): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw badRequest(`"${path}" must be a number.`, path);
  return v;
}

export function optionalBoolean(b: Json, field: string, path = field): boolean | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`"${path}" must be a boolean.`, path);
  return v;
}

export function requiredString(b: Json, field: string, path = field): string {
  const v = b[field];
  if (typeof v !== 'string' || v === '') throw badRequest(`"${path}" is required and must be a non-empty string.`, path);
  return v;
}

/** The text of a tool's answer (a string, or content parts whose text is joined). */
export function partsText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (!Array.isArray(v)) return v === undefined || v === null ? '' : JSON.stringify(v);
  return v
    .map((p) => (isObject(p) && typeof p.text === 'string' ? p.text : ''))
    .filter((s) => s !== '')
    .join('\n');
}

// ---- answer side helpers ----

export interface ChatToolCall {
  id: string;
  name: string;
  arguments: string;
}

/** What a whole chat answer says (its first choice). */
export interface ChatAnswer {
  text: string;
  toolCalls: ChatToolCall[];
  finishReason: string | undefined;
  /** vLLM's choices[].stop_reason: the stop string that ended the answer, when one did */
  matchedStop: string | undefined;
  /** the model's reasoning ("" when none): `reasoning_content` (vLLM, llama.cpp, DeepSeek) or `reasoning` */
  reasoning: string;
  /** Anthropic thinking blocks as a native endpoint sent them (thinking with its signature,
   * redacted_thinking with its data), carried as `thinking_blocks` beside `reasoning_content` */
  thinkingBlocks: ThinkingBlock[];
}

export type ThinkingBlock = { type: 'thinking'; thinking: string; signature: string } | { type: 'redacted_thinking'; data: string };

/** The reasoning text of a chat message or delta: `reasoning_content`, or `reasoning` (a string). */
export function reasoningOf(m: Json): string {
  if (typeof m.reasoning_content === 'string') return m.reasoning_content;
  return typeof m.reasoning === 'string' ? m.reasoning : '';
}

/** Well-formed thinking blocks of a `thinking_blocks` array (anything else is left out). */
export function thinkingBlocksOf(v: unknown): ThinkingBlock[] {
  const out: ThinkingBlock[] = [];
  if (!Array.isArray(v)) return out;
  for (const b of v) {
    if (!isObject(b)) continue;
    if (b.type === 'thinking') out.push({ type: 'thinking', thinking: typeof b.thinking === 'string' ? b.thinking : '', signature: typeof b.signature === 'string' ? b.signature : '' });
    else if (b.type === 'redacted_thinking' && typeof b.data === 'string') out.push({ type: 'redacted_thinking', data: b.data });
  }
  return out;
}

/** The parts of a chat usage object beyond prompt and completion tokens (0 when not said). */
export interface UsageDetails {
  /** prompt tokens read from a cache (OpenAI's prompt_tokens_details.cached_tokens; Anthropic's cache_read_input_tokens) */
  cacheRead: number;
  /** prompt tokens written to a cache (Anthropic's cache_creation_input_tokens) */
  cacheCreation: number;
  /** completion tokens spent reasoning (completion_tokens_details.reasoning_tokens) */
  reasoning: number;
}

const count = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);

export function usageDetailsOf(u: unknown): UsageDetails {
  if (!isObject(u)) return { cacheRead: 0, cacheCreation: 0, reasoning: 0 };
  const p = isObject(u.prompt_tokens_details) ? u.prompt_tokens_details : {};
  const c = isObject(u.completion_tokens_details) ? u.completion_tokens_details : {};
  return { cacheRead: count(p.cached_tokens ?? u.cache_read_input_tokens), cacheCreation: count(u.cache_creation_input_tokens), reasoning: count(c.reasoning_tokens) };
}

export function readChatAnswer(chat: Json, fallbackId: (n: number) => string): ChatAnswer {
  const choices = Array.isArray(chat.choices) ? chat.choices : [];
  const c = (choices.find((x) => isObject(x) && (x.index ?? 0) === 0) ?? choices[0]) as Json | undefined;
  const m = isObject(c?.message) ? c.message : {};
  const calls = Array.isArray(m.tool_calls) ? m.tool_calls : [];
  const toolCalls: ChatToolCall[] = calls.filter(isObject).map((tc, n) => {
    const f = isObject(tc.function) ? tc.function : {};
    return {
      id: typeof tc.id === 'string' && tc.id ? tc.id : fallbackId(n),
      name: typeof f.name === 'string' ? f.name : '',
      arguments: typeof f.arguments === 'string' ? f.arguments : f.arguments === undefined ? '' : JSON.stringify(f.arguments),
    };
  });
  return {
    text: typeof m.content === 'string' ? m.content : partsText(m.content),
    toolCalls,
    finishReason: typeof c?.finish_reason === 'string' ? c.finish_reason : undefined,
    matchedStop: typeof c?.stop_reason === 'string' ? c.stop_reason : undefined,
    reasoning: reasoningOf(m),
    thinkingBlocks: thinkingBlocksOf(m.thinking_blocks),
  };
}

/** A tool call's arguments as the object the Anthropic API carries (`input`). */
export function parseArguments(s: string): Json {
  if (!s.trim()) return {};
  try {
    const v: unknown = JSON.parse(s);
    return isObject(v) ? v : { value: v };
  } catch {
    return { arguments: s };
  }
}

/** The parts of one streamed chat event that a translation acts on. */
export interface ChatDeltaSink {
  text(s: string): void;
  /** a tool call starts (index: its position in the upstream's tool_calls) */
  toolStart(index: number, id: string | undefined, name: string): void;
  toolArgs(index: number, s: string): void;
  finish(reason: string, matchedStop: string | undefined): void;
  usage(u: Usage, details: UsageDetails): void;
  /** reasoning text (reasoning_content / reasoning), before the answer's text */
  reasoning(s: string): void;
  /** a thinking block's signature (it ends that block) */
  signature(sig: string): void;
  /** a redacted thinking block, whole */
  redactedThinking(data: string): void;
}

/** Feed one chat data event (already through the output guards) to a sink. Not JSON, an error
 * event, or another choice than the first: ignored (a break is reported by the pipeline). With a
 * stream's ContentTemplate, a chunk that only says some content is read without parsing it. */
export function readChatEvent(ev: SSEEvent, sink: ChatDeltaSink, started: Set<number>, tpl?: ContentTemplate): void {
  if (tpl) {
    const content = tpl.match(ev.data);
    if (content !== undefined) {
      if (tpl.index === 0 && content) sink.text(content);
      return;
    }
  }
  // parsed once: by the stream inspector when a decision of its own needed it (the role chunk,
  // the finish chunk; an event a guard rewrote comes without it), here otherwise
  let j: unknown = ev.parsed;
  if (j === undefined)
    try {
      j = JSON.parse(ev.data);
    } catch {
      return;
    }
  tpl?.learn(ev.data, j);
  if (!isObject(j) || j.error !== undefined) return;
  const u = j.usage !== null && j.usage !== undefined ? readUsage(j.usage) : undefined;
  const choices = Array.isArray(j.choices) ? j.choices : [];
  const c = choices.find((x) => isObject(x) && (x.index ?? 0) === 0) as Json | undefined;
  if (c) {
    const d = isObject(c.delta) ? c.delta : {};
    const r = reasoningOf(d);
    if (r) sink.reasoning(r);
    if (d.thinking_blocks !== undefined)
      for (const b of thinkingBlocksOf(d.thinking_blocks)) {
        if (b.type === 'redacted_thinking') sink.redactedThinking(b.data);
        else if (b.signature) sink.signature(b.signature);
      }
    if (typeof d.content === 'string' && d.content) sink.text(d.content);
    if (Array.isArray(d.tool_calls)) {
      for (const tc of d.tool_calls) {
        if (!isObject(tc)) continue;
        const index = typeof tc.index === 'number' ? tc.index : 0;
        const f = isObject(tc.function) ? tc.function : {};
        if (!started.has(index)) {
          started.add(index);
          sink.toolStart(index, typeof tc.id === 'string' && tc.id ? tc.id : undefined, typeof f.name === 'string' ? f.name : '');
        }
        if (typeof f.arguments === 'string' && f.arguments) sink.toolArgs(index, f.arguments);
      }
    }
    if (typeof c.finish_reason === 'string' && c.finish_reason) sink.finish(c.finish_reason, typeof c.stop_reason === 'string' ? c.stop_reason : undefined);
  }
  if (u) sink.usage(u, usageDetailsOf(j.usage));
}

/** An SSE event with a name and a JSON body, as the translated protocols send them. */
export function namedEvent(name: string, data: unknown): SSEEvent {
  return { event: name, data: JSON.stringify(data), id: undefined };
}

export function eventsText(events: SSEEvent[]): string {
  return events.map(formatSSE).join('');
}

/** The request id without dashes, for protocol ids (msg_…, resp_…). */
export function compactId(id: string): string {
  return id.replace(/-/g, '');
}
