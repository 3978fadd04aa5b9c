// The OpenAI Responses API (POST /v1/responses) onto an upstream's Chat Completions: `input`
// (a string or items: messages, function_call, function_call_output), `instructions`, function
// tools, `text.format` and the rest translated into a chat body; the chat answer (after the output
// guards) translated back into a Response object or, streamed, into the semantic events with
// their sequence_number, as the chat events arrive. `store` (default true, as OpenAI's) keeps the
// response for GET/DELETE /v1/responses/{id} and previous_response_id (store.ts). Built-in
// OpenAI tools (web search, file search, code interpreter, …) are refused: nothing leaves the network.
import { ContentTemplate } from '../openai/content-template.js';
import { badRequest, gatewayError, type GatewayError } from '../errors.js';
import type { Usage } from '../openai/stream-inspector.js';
import type { SSEEvent } from '../sse.js';
import { promptEstimate, type RequestContext } from '../stages.js';
import {
  bodyObject,
  compactId,
  eventsText,
  isObject,
  namedEvent,
  optionalBoolean,
  optionalNumber,
  partsText,
  readChatAnswer,
  readChatEvent,
  requiredString,
  usageDetailsOf,
  type AnswerTranslator,
  type ChatDeltaSink,
  type Json,
  type ProtocolAdapter,
  type UsageDetails,
} from '../translate.js';
import type { ResponseStore } from './store.js';

/** What the answer needs of the request (kept per request context). */
interface ResponsesRequest {
  instructions: string | null;
  tools: Json[];
  toolChoice: unknown;
  text: Json;
  store: boolean;
  previousResponseId: string | null;
  maxOutputTokens: number | null;
  temperature: number | null;
  topP: number | null;
  parallelToolCalls: boolean;
  metadata: Json;
  user: string | null;
  reasoning: Json | null;
  truncation: 'auto' | 'disabled';
  /** the conversation as chat messages, without the instructions (what a stored response continues) */
  conversation: Json[];
}

const BUILT_IN = new Set([
  'web_search',
  'web_search_preview',
  'web_search_preview_2025_03_11',
  'file_search',
  'code_interpreter',
  'computer_use_preview',
  'image_generation',
  'local_shell',
  'mcp',
]);

// ---- request ----

function contentParts(v: unknown, path: string, role: string): { text: string; parts: Json[]; image: boolean } {
  if (typeof v === 'string') return { text: v, parts: [{ type: 'text', text: v }], image: false };
  if (!Array.isArray(v)) throw badRequest(`"${path}" must be a string or an array of content parts.`, path);
  const parts: Json[] = [];
  let image = false;
  v.forEach((p: unknown, k) => {
    const pp = `${path}[${k}]`;
    if (!isObject(p) || typeof p.type !== 'string') throw badRequest(`"${pp}.type" is required.`, `${pp}.type`);
    switch (p.type) {
      case 'input_text':
      case 'output_text':
      case 'text':
        if (typeof p.text !== 'string') throw badRequest(`"${pp}.text" must be a string.`, `${pp}.text`);
        parts.push({ type: 'text', text: p.text });
        return;
      case 'refusal':
        parts.push({ type: 'text', text: typeof p.refusal === 'string' ? p.refusal : '' });
        return;
      case 'input_image':
        if (role !== 'user') throw badRequest(`"${pp}": images are accepted in user messages only.`, `${pp}.type`);
        if (typeof p.image_url !== 'string' || !p.image_url)
          throw badRequest(`"${pp}.image_url" is required (a data: or http URL); uploaded files ("file_id") are not kept on this gateway.`, `${pp}.image_url`);
        image = true;
        parts.push({ type: 'image_url', image_url: { url: p.image_url, ...(typeof p.detail === 'string' ? { detail: p.detail } : {}) } });
        return;
      default:
        throw badRequest(`"${pp}.type" "${p.type}" is not supported here (input_text, output_text, input_image).`, `${pp}.type`);
    }
  });
  return { text: parts.map((p) => (p.type === 'text' ? (p.text as string) : '')).join(''), parts, image };
}

function translateItems(input: unknown, out: Json[]): void {
  if (typeof input === 'string') {
    out.push({ role: 'user', content: input });
    return;
  }
  if (!Array.isArray(input) || input.length === 0) throw badRequest('"input" is required: a string or a non-empty array of items.', 'input');
  input.forEach((item: unknown, i) => {
    const path = `input[${i}]`;
    if (!isObject(item)) throw badRequest(`"${path}" must be an object.`, path);
    const type = item.type ?? (item.role !== undefined ? 'message' : undefined);
    switch (type) {
      case 'message': {
        const role = item.role;
        if (role !== 'user' && role !== 'assistant' && role !== 'system' && role !== 'developer')
          throw badRequest(`"${path}.role" must be "user", "assistant", "system" or "developer".`, `${path}.role`);
        const c = contentParts(item.content, `${path}.content`, role);
        if (role === 'user' && c.image) out.push({ role, content: c.parts });
        else out.push({ role: role === 'developer' ? 'system' : role, content: c.text });
        return;
      }
      case 'function_call': {
        const callId = requiredString(item, 'call_id', `${path}.call_id`);
        const name = requiredString(item, 'name', `${path}.name`);
        if (typeof item.arguments !== 'string') throw badRequest(`"${path}.arguments" must be a string (JSON).`, `${path}.arguments`);
        const call = { id: callId, type: 'function', function: { name, arguments: item.arguments } };
        const last = out[out.length - 1];
        // calls after an assistant message (or after each other) belong to that one assistant turn
        if (last?.role === 'assistant') last.tool_calls = [...((last.tool_calls as Json[] | undefined) ?? []), call];
        else out.push({ role: 'assistant', content: null, tool_calls: [call] });
        return;
      }
      case 'function_call_output': {
        const callId = requiredString(item, 'call_id', `${path}.call_id`);
        if (item.output === undefined || item.output === null) throw badRequest(`"${path}.output" is required.`, `${path}.output`);
        out.push({ role: 'tool', tool_call_id: callId, content: partsText(item.output) });
        return;
      }
      case 'reasoning':
        return; // a reasoning model's earlier reasoning: not sent back to a chat upstream
      default:
        throw badRequest(`"${path}.type" ${JSON.stringify(type) ?? '(missing)'} is not supported here (message, function_call, function_call_output).`, `${path}.type`);
    }
  });
}

function translateTools(v: unknown): { chat: Json[]; echo: Json[] } {
  if (v === undefined || v === null) return { chat: [], echo: [] };
  if (!Array.isArray(v)) throw badRequest('"tools" must be an array.', 'tools');
  const chat: Json[] = [];
  const echo: Json[] = [];
  v.forEach((t: unknown, i) => {
    const p = `tools[${i}]`;
    if (!isObject(t) || typeof t.type !== 'string') throw badRequest(`"${p}.type" is required.`, `${p}.type`);
    if (t.type !== 'function') {
      const what = BUILT_IN.has(t.type) || t.type.startsWith('web_search') ? 'the built-in OpenAI tool' : 'the tool type';
      throw badRequest(`"${p}.type": ${what} "${t.type}" is not available on this gateway (nothing leaves the network); only "function" tools are.`, `${p}.type`);
    }
    const name = requiredString(t, 'name', `${p}.name`);
    if (t.parameters !== undefined && t.parameters !== null && !isObject(t.parameters)) throw badRequest(`"${p}.parameters" must be a JSON schema object.`, `${p}.parameters`);
    const fn: Json = { name, parameters: t.parameters ?? { type: 'object', properties: {} } };
    if (typeof t.description === 'string') fn.description = t.description;
    if (typeof t.strict === 'boolean') fn.strict = t.strict;
    chat.push({ type: 'function', function: fn });
    echo.push({ type: 'function', name, description: t.description ?? null, parameters: fn.parameters, strict: typeof t.strict === 'boolean' ? t.strict : null });
  });
  return { chat, echo };
}

function translateToolChoice(v: unknown): unknown {
  if (v === undefined || v === null) return undefined;
  if (v === 'auto' || v === 'none' || v === 'required') return v;
  if (isObject(v) && v.type === 'function') return { type: 'function', function: { name: requiredString(v, 'name', 'tool_choice.name') } };
  if (isObject(v) && typeof v.type === 'string')
    throw badRequest(`"tool_choice.type": the built-in tool "${v.type}" is not available on this gateway (nothing leaves the network).`, 'tool_choice.type');
  throw badRequest('"tool_choice" must be "auto", "none", "required" or {"type":"function","name":…}.', 'tool_choice');
}

function translateFormat(text: unknown, out: Json): Json {
  if (text === undefined || text === null) return { format: { type: 'text' } };
  if (!isObject(text)) throw badRequest('"text" must be an object.', 'text');
  const f = text.format;
  if (f === undefined || f === null) return { format: { type: 'text' } };
  if (!isObject(f) || typeof f.type !== 'string') throw badRequest('"text.format.type" is required.', 'text.format.type');
  if (f.type === 'json_schema') {
    const name = requiredString(f, 'name', 'text.format.name');
    if (!isObject(f.schema)) throw badRequest('"text.format.schema" is required and must be a JSON schema object.', 'text.format.schema');
    const js: Json = { name, schema: f.schema };
    if (typeof f.strict === 'boolean') js.strict = f.strict;
    if (typeof f.description === 'string') js.description = f.description;
    out.response_format = { type: 'json_schema', json_schema: js };
  } else if (f.type === 'json_object') out.response_format = { type: 'json_object' };
  else if (f.type !== 'text') throw badRequest('"text.format.type" must be "text", "json_schema" or "json_object".', 'text.format.type');
  return { format: f };
}

/** What `include` may ask for (OpenAI's list). Nothing here adds to our answers: the built-in tools'
 * results never exist on this gateway, there is no encrypted reasoning, and images and logprobs
 * are answered as they are; an unknown value is the client's mistake (400 naming it). */
const INCLUDABLE = new Set([
  'file_search_call.results',
  'web_search_call.results',
  'web_search_call.action.sources',
  'message.input_image.image_url',
  'computer_call_output.output.image_url',
  'code_interpreter_call.outputs',
  'reasoning.encrypted_content',
  'message.output_text.logprobs',
]);

export function checkInclude(v: unknown, path = 'include'): void {
  if (v === undefined || v === null) return;
  if (!Array.isArray(v)) throw badRequest(`"${path}" must be an array of strings.`, path);
  v.forEach((x: unknown, i) => {
    if (typeof x !== 'string' || !INCLUDABLE.has(x))
      throw badRequest(`"${path}[${i}]": ${JSON.stringify(x)} is not something a response can include (${[...INCLUDABLE].join(', ')}).`, `${path}[${i}]`);
  });
}

const EFFORTS = new Set(['none', 'minimal', 'low', 'medium', 'high', 'xhigh', 'max']);

/** `reasoning`: its effort goes upstream as Chat Completions' `reasoning_effort` (vLLM, llama.cpp
 * and Ollama read it for reasoning models); echoed in the Response. */
function translateReasoning(v: unknown, out: Json): Json | null {
  if (v === undefined || v === null) return null;
  if (!isObject(v)) throw badRequest('"reasoning" must be an object.', 'reasoning');
  const effort = v.effort ?? null;
  if (effort !== null && (typeof effort !== 'string' || !EFFORTS.has(effort)))
    throw badRequest(`"reasoning.effort" must be one of ${[...EFFORTS].join(', ')}.`, 'reasoning.effort');
  const summary = v.summary ?? v.generate_summary ?? null;
  if (summary !== null && summary !== 'auto' && summary !== 'concise' && summary !== 'detailed')
    throw badRequest('"reasoning.summary" must be "auto", "concise" or "detailed".', 'reasoning.summary');
  if (effort !== null) out.reasoning_effort = effort;
  return { effort, summary };
}

function toChat(store: ResponseStore | undefined, requests: WeakMap<RequestContext, ResponsesRequest>, body: unknown, ctx: RequestContext): Json {
  const b = bodyObject(body);
  const model = requiredString(b, 'model');
  const stream = optionalBoolean(b, 'stream') ?? false;
  if (b.background === true) throw badRequest('"background": background responses are not supported by this gateway; wait for the answer or stream it.', 'background');
  if (b.conversation !== undefined && b.conversation !== null)
    throw badRequest('"conversation": the Conversations API is not available on this gateway; continue a conversation with "previous_response_id" (stored responses).', 'conversation');
  if (b.prompt !== undefined && b.prompt !== null)
    throw badRequest('"prompt": stored prompt templates are not available on this gateway; send "instructions" and "input".', 'prompt');
  checkInclude(b.include);
  const truncation = b.truncation ?? 'disabled';
  if (truncation !== 'auto' && truncation !== 'disabled') throw badRequest('"truncation" must be "auto" or "disabled".', 'truncation');
  const keep = optionalBoolean(b, 'store') ?? true;
  const instructions = b.instructions ?? null;
  if (instructions !== null && typeof instructions !== 'string') throw badRequest('"instructions" must be a string.', 'instructions');
  const conversation: Json[] = [];
  const prev = b.previous_response_id ?? null;
  if (prev !== null) {
    if (typeof prev !== 'string' || !prev) throw badRequest('"previous_response_id" must be a non-empty string.', 'previous_response_id');
    const stored = store?.get(prev, ctx.key!.name);
    if (!stored)
      throw gatewayError('response_not_found', `No stored response "${prev}" for this API key (it may have expired, been deleted, or been made with store: false).`, { param: 'previous_response_id' });
    conversation.push(...stored.conversation);
  }
  if (b.input === undefined || b.input === null) throw badRequest('"input" is required: a string or an array of items.', 'input');
  translateItems(b.input, conversation);
  if (prev !== null) {
    // a chain of stored responses grows with every turn: what it sends upstream (and stores again)
    // is held to what one request may carry
    const limit = ctx.snapshot.settings.max_body_bytes;
    const size = Buffer.byteLength(JSON.stringify(conversation));
    if (size > limit)
      throw gatewayError('body_too_large', `The conversation continued from "${prev}" with this input is ${size} bytes, more than settings.max_body_bytes (${limit}); start a new conversation or send a shorter input.`, { param: 'previous_response_id' });
  }
  const messages: Json[] = instructions ? [{ role: 'system', content: instructions }, ...conversation] : [...conversation];
  const out: Json = { model, messages };
  if (stream) {
    out.stream = true;
    out.stream_options = { include_usage: true };
  }
  const maxOut = b.max_output_tokens;
  if (maxOut !== undefined && maxOut !== null) {
    if (typeof maxOut !== 'number' || !Number.isInteger(maxOut) || maxOut < 1) throw badRequest('"max_output_tokens" must be a positive integer.', 'max_output_tokens');
    out.max_tokens = maxOut;
  }
  const temperature = optionalNumber(b, 'temperature');
  if (temperature !== undefined) out.temperature = temperature;
  const topP = optionalNumber(b, 'top_p');
  if (topP !== undefined) out.top_p = topP;
  const tools = translateTools(b.tools);
  if (tools.chat.length) out.tools = tools.chat;
  const choice = translateToolChoice(b.tool_choice);
  if (choice !== undefined) out.tool_choice = choice;
  const parallel = optionalBoolean(b, 'parallel_tool_calls');
  if (parallel !== undefined) out.parallel_tool_calls = parallel;
  const text = translateFormat(b.text, out);
  const reasoning = translateReasoning(b.reasoning, out);
  const user = b.user ?? null;
  if (user !== null && typeof user !== 'string') throw badRequest('"user" must be a string.', 'user');
  const safety = b.safety_identifier ?? null;
  if (safety !== null && typeof safety !== 'string') throw badRequest('"safety_identifier" must be a string.', 'safety_identifier');
  // the end user, for attribution: "user", or its newer name "safety_identifier"
  if (user || safety) out.user = user || safety;
  if (b.metadata !== undefined && b.metadata !== null && !isObject(b.metadata)) throw badRequest('"metadata" must be an object.', 'metadata');
  requests.set(ctx, {
    instructions,
    tools: tools.echo,
    toolChoice: b.tool_choice ?? 'auto',
    text,
    store: keep,
    previousResponseId: prev,
    maxOutputTokens: typeof maxOut === 'number' ? maxOut : null,
    temperature: temperature ?? null,
    topP: topP ?? null,
    parallelToolCalls: parallel ?? true,
    metadata: isObject(b.metadata) ? b.metadata : {},
    user,
    reasoning,
    truncation,
    conversation,
  });
  return out;
}

// ---- answer ----

type OutputItem = Json & { id: string; type: 'message' | 'function_call' | 'reasoning' };

function outputText(output: OutputItem[]): string {
  let s = '';
  for (const it of output) if (it.type === 'message') for (const p of it.content as Json[]) if (typeof p.text === 'string') s += p.text;
  return s;
}

/** The chat finish reason as a Response's status. */
function statusOf(finish: string | undefined): { status: 'completed' | 'incomplete'; incomplete: Json | null } {
  if (finish === 'length') return { status: 'incomplete', incomplete: { reason: 'max_output_tokens' } };
  if (finish === 'content_filter') return { status: 'incomplete', incomplete: { reason: 'content_filter' } };
  return { status: 'completed', incomplete: null };
}

class ResponsesAnswer implements AnswerTranslator {
  private readonly id: string;
  private readonly hex: string;
  private readonly createdAt = Math.floor(Date.now() / 1000);
  // streaming state
  private seq = 0;
  private started = false;
  private readonly output: OutputItem[] = [];
  private current: OutputItem | undefined;
  private toolIndex = -1;
  private readonly toolStarted = new Set<number>();
  /** the stream's content-only chunks, read without parsing them (readChatEvent) */
  private readonly template = new ContentTemplate();
  private finishReason: string | undefined;
  private usage: Usage | undefined;
  private details: UsageDetails | undefined;
  private chars = 0;
  private out: SSEEvent[] = [];

  constructor(
    private readonly ctx: RequestContext,
    private readonly req: ResponsesRequest,
    private readonly store: ResponseStore | undefined,
  ) {
    this.hex = compactId(ctx.id);
    this.id = `resp_${this.hex}`;
  }

  private response(status: string, extra: { error?: Json | null; incomplete?: Json | null; usage?: Usage; details?: UsageDetails } = {}): Json {
    const r = this.req;
    const u = extra.usage;
    const d = extra.details;
    return {
      id: this.id,
      object: 'response',
      created_at: this.createdAt,
      status,
      error: extra.error ?? null,
      incomplete_details: extra.incomplete ?? null,
      instructions: r.instructions,
      max_output_tokens: r.maxOutputTokens,
      model: this.ctx.requestedModel,
      output: this.output,
      output_text: outputText(this.output),
      parallel_tool_calls: r.parallelToolCalls,
      previous_response_id: r.previousResponseId,
      store: r.store,
      temperature: r.temperature,
      text: r.text,
      tool_choice: r.toolChoice,
      tools: r.tools,
      top_p: r.topP,
      truncation: r.truncation,
      reasoning: r.reasoning,
      metadata: r.metadata,
      user: r.user,
      usage: u
        ? {
            input_tokens: u.prompt,
            input_tokens_details: { cached_tokens: d?.cacheRead ?? 0 },
            output_tokens: u.completion,
            output_tokens_details: { reasoning_tokens: d?.reasoning ?? 0 },
            total_tokens: u.prompt + u.completion,
          }
        : null,
    };
  }

  /** A finished response: kept when the request asked to store it. */
  private finished(finish: string | undefined, usage: Usage, details: UsageDetails | undefined): Json {
    const s = statusOf(finish);
    const resp = this.response(s.status, { incomplete: s.incomplete, usage, details });
    if (this.req.store && this.store) {
      const answer: Json = { role: 'assistant', content: outputText(this.output) || null };
      const calls = this.output.filter((o) => o.type === 'function_call');
      if (calls.length) answer.tool_calls = calls.map((c) => ({ id: c.call_id, type: 'function', function: { name: c.name, arguments: c.arguments } }));
      try {
        this.store.save(this.id, this.ctx.key!.name, { response: resp, conversation: [...this.req.conversation, answer] });
      } catch (e) {
        // the gateway's own failure, never the upstream's: a 500, or in-band after content
        throw gatewayError('internal_error', `The response could not be stored (store: true): ${(e as Error).message}`);
      }
    }
    return resp;
  }

  body(chat: Json): unknown {
    const a = readChatAnswer(chat, (n) => `call_${this.hex}_${n}`);
    // the model's reasoning (reasoning_content, or a native endpoint's thinking): a reasoning item first
    if (a.reasoning)
      this.output.push({ id: `rs_${this.hex}`, type: 'reasoning', status: 'completed', summary: [], content: [{ type: 'reasoning_text', text: a.reasoning }] });
    if (a.text)
      this.output.push({ id: `msg_${this.hex}`, type: 'message', status: 'completed', role: 'assistant', content: [{ type: 'output_text', text: a.text, annotations: [], logprobs: [] }] });
    a.toolCalls.forEach((tc, n) =>
      this.output.push({ id: `fc_${this.hex}_${n}`, type: 'function_call', status: 'completed', call_id: tc.id, name: tc.name, arguments: tc.arguments }),
    );
    return this.finished(a.finishReason, { prompt: this.ctx.promptTokens, completion: this.ctx.completionTokens }, usageDetailsOf(chat.usage));
  }

  private emit(type: string, data: Json): void {
    this.out.push(namedEvent(type, { type, ...data, sequence_number: this.seq++ }));
  }

  private begin(): void {
    if (this.started) return;
    this.started = true;
    this.emit('response.created', { response: this.response('in_progress') });
    this.emit('response.in_progress', { response: this.response('in_progress') });
  }

  private closeItem(): void {
    const it = this.current;
    if (!it) return;
    this.current = undefined;
    const output_index = this.output.indexOf(it);
    it.status = 'completed';
    if (it.type === 'message') {
      const part = (it.content as Json[])[0]!;
      this.emit('response.output_text.done', { item_id: it.id, output_index, content_index: 0, text: part.text, logprobs: [] });
      this.emit('response.content_part.done', { item_id: it.id, output_index, content_index: 0, part });
    } else if (it.type === 'reasoning') {
      const part = (it.content as Json[])[0]!;
      this.emit('response.reasoning_text.done', { item_id: it.id, output_index, content_index: 0, text: part.text });
      this.emit('response.content_part.done', { item_id: it.id, output_index, content_index: 0, part });
    } else {
      this.emit('response.function_call_arguments.done', { item_id: it.id, output_index, name: it.name, arguments: it.arguments });
    }
    this.emit('response.output_item.done', { output_index, item: it });
  }

  private open(it: OutputItem): number {
    this.closeItem();
    this.current = it;
    this.output.push(it);
    const output_index = this.output.length - 1;
    this.emit('response.output_item.added', { output_index, item: { ...it, ...(it.type === 'function_call' ? {} : { content: [] }) } });
    return output_index;
  }

  private readonly sink: ChatDeltaSink = {
    reasoning: (s: string) => {
      let it = this.current;
      if (it?.type !== 'reasoning') {
        it = { id: `rs_${this.hex}_${this.output.length}`, type: 'reasoning', status: 'in_progress', summary: [], content: [{ type: 'reasoning_text', text: '' }] };
        const output_index = this.open(it);
        this.emit('response.content_part.added', { item_id: it.id, output_index, content_index: 0, part: { type: 'reasoning_text', text: '' } });
      }
      const part = (it.content as Json[])[0]!;
      part.text = (part.text as string) + s;
      this.chars += s.length;
      this.emit('response.reasoning_text.delta', { item_id: it.id, output_index: this.output.length - 1, content_index: 0, delta: s });
    },
    // Anthropic's signatures and redacted thinking have no place in a Response (they are opaque to
    // any other server than the one that made them)
    signature: () => undefined,
    redactedThinking: () => undefined,
    text: (s: string) => {
      let it = this.current;
      if (it?.type !== 'message') {
        it = { id: `msg_${this.hex}_${this.output.length}`, type: 'message', status: 'in_progress', role: 'assistant', content: [{ type: 'output_text', text: '', annotations: [], logprobs: [] }] };
        const output_index = this.open(it);
        this.emit('response.content_part.added', { item_id: it.id, output_index, content_index: 0, part: { type: 'output_text', text: '', annotations: [], logprobs: [] } });
      }
      const part = (it.content as Json[])[0]!;
      part.text = (part.text as string) + s;
      this.chars += s.length;
      // the hot event, written directly: the same JSON as emit() would give, at a fraction of the cost
      this.out.push({
        event: 'response.output_text.delta',
        data: `{"type":"response.output_text.delta","item_id":"${it.id}","output_index":${this.output.length - 1},"content_index":0,"delta":${JSON.stringify(s)},"logprobs":[],"sequence_number":${this.seq++}}`,
        id: undefined,
      });
    },
    toolStart: (index: number, id: string | undefined, name: string) => {
      this.toolIndex = index;
      this.chars += name.length;
      this.open({ id: `fc_${this.hex}_${this.output.length}`, type: 'function_call', status: 'in_progress', call_id: id ?? `call_${this.hex}_${index}`, name, arguments: '' });
    },
    toolArgs: (index: number, s: string) => {
      const it = this.current;
      if (it?.type !== 'function_call' || this.toolIndex !== index) return;
      it.arguments = (it.arguments as string) + s;
      this.chars += s.length;
      this.emit('response.function_call_arguments.delta', { item_id: it.id, output_index: this.output.length - 1, delta: s });
    },
    finish: (reason: string) => {
      this.closeItem();
      this.finishReason = reason;
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
      if (this.finishReason === undefined) return this.out.splice(0);
      this.begin();
      this.closeItem();
      const usage = this.usage ?? { prompt: promptEstimate(this.ctx), completion: Math.ceil(this.chars / 4) };
      const resp = this.finished(this.finishReason, usage, this.details);
      this.emit(resp.status === 'completed' ? 'response.completed' : 'response.incomplete', { response: resp });
      return this.out.splice(0);
    },
  };

  failure(err: GatewayError): string {
    this.emit('error', { code: err.code, message: err.message, param: null });
    this.emit('response.failed', { response: this.response('failed', { error: { code: 'server_error', message: err.message } }) });
    return eventsText(this.out.splice(0));
  }
}

export function responsesAdapter(store: ResponseStore | undefined): ProtocolAdapter {
  const requests = new WeakMap<RequestContext, ResponsesRequest>();
  return {
    toChat: (body, ctx) => toChat(store, requests, body, ctx),
    errorBody: (err) => err.body(),
    answer: (ctx) => new ResponsesAnswer(ctx, requests.get(ctx)!, store),
  };
}
