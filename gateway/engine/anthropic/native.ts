// Endpoints that speak the Messages API natively (`type: anthropic`: a vLLM build that serves
// /v1/messages, any Anthropic-compatible server). A /v1/messages request routed to one is sent
// untranslated — the client's own body (after the input guards' redactions), the target's model
// name — to {base_url}/messages. Its answer is read as the chat answer it amounts to (text,
// tool_use, stop_reason, usage), so the same stream inspector, output guards, fallback-before-
// content, break handling, ledger and traces apply as to every other answer, and the Messages
// translator writes what the client receives. No second answer path skips a stage.
import { SSEParser, type SSEEvent } from '../sse.js';
import { isObject, thinkingBlocksOf, type Json } from '../translate.js';

export const ANTHROPIC_VERSION = '2023-06-01';

/** Anthropic's stop_reason as a chat finish_reason. */
function finishOf(stop: unknown): string {
  switch (stop) {
    case 'max_tokens':
    case 'model_context_window_exceeded':
      return 'length';
    case 'tool_use':
      return 'tool_calls';
    case 'refusal':
      return 'content_filter';
    default:
      return 'stop'; // end_turn, stop_sequence, pause_turn
  }
}

const tokens = (v: unknown): number => (typeof v === 'number' && Number.isFinite(v) && v > 0 ? v : 0);

/** Anthropic's usage as chat usage. Anthropic's input_tokens leaves out the prompt tokens read
 * from or written to its cache; prompt_tokens counts them all (what the ledger charges), with
 * the cached part in prompt_tokens_details.cached_tokens and Anthropic's two fields kept beside. */
export function chatUsage(input: number, output: number, cacheRead: number, cacheCreation: number): Json {
  const prompt = input + cacheRead + cacheCreation;
  const u: Json = { prompt_tokens: prompt, completion_tokens: output, total_tokens: prompt + output };
  if (cacheRead || cacheCreation) {
    u.prompt_tokens_details = { cached_tokens: cacheRead };
    u.cache_read_input_tokens = cacheRead;
    u.cache_creation_input_tokens = cacheCreation;
  }
  return u;
}

function usageOf(u: unknown): Json | undefined {
  if (!isObject(u)) return undefined;
  if (typeof u.input_tokens !== 'number' && typeof u.output_tokens !== 'number') return undefined;
  return chatUsage(tokens(u.input_tokens), tokens(u.output_tokens), tokens(u.cache_read_input_tokens), tokens(u.cache_creation_input_tokens));
}

/** A whole Message as the chat completion it amounts to; undefined when it is no Message. */
export function messageAsChat(m: unknown): Json | undefined {
  if (!isObject(m)) return undefined;
  if (m.type === 'error' || isObject(m.error)) return { error: isObject(m.error) ? m.error : { message: 'error' } };
  if (!Array.isArray(m.content)) return undefined;
  let text = '';
  let reasoning = '';
  const calls: Json[] = [];
  const thinking = thinkingBlocksOf(m.content);
  for (const b of thinking) if (b.type === 'thinking') reasoning += b.thinking;
  for (const b of m.content) {
    if (!isObject(b)) continue;
    if (b.type === 'text' && typeof b.text === 'string') text += b.text;
    else if (b.type === 'tool_use')
      calls.push({ id: typeof b.id === 'string' ? b.id : undefined, type: 'function', function: { name: typeof b.name === 'string' ? b.name : '', arguments: JSON.stringify(b.input ?? {}) } });
  }
  const message: Json = { role: 'assistant', content: text || (calls.length ? null : '') };
  if (calls.length) message.tool_calls = calls;
  // thinking as chat servers say it (reasoning_content), the blocks themselves as LiteLLM does
  if (thinking.length) {
    message.reasoning_content = reasoning;
    message.thinking_blocks = thinking;
  }
  const choice: Json = { index: 0, message, finish_reason: finishOf(m.stop_reason) };
  if (typeof m.stop_sequence === 'string') choice.stop_reason = m.stop_sequence;
  const out: Json = { id: m.id, object: 'chat.completion', model: m.model, choices: [choice] };
  const u = usageOf(m.usage);
  if (u) out.usage = u;
  return out;
}

const enc = (o: unknown) => `data: ${JSON.stringify(o)}\n\n`;

/** A Messages event stream, event by event, as chat completion chunks (SSE text). */
export class MessagesStreamAsChat {
  private readonly parser: SSEParser;
  private id: unknown;
  private model: unknown;
  private inputTokens = 0;
  private cacheRead = 0;
  private cacheCreation = 0;
  /** the chat tool_calls index of each content block that is a tool_use */
  private readonly tools = new Map<number, number>();

  constructor(maxEventBytes: number) {
    this.parser = new SSEParser({ maxEventBytes });
  }

  /** Bytes of the upstream's stream → bytes of a chat stream. Throws SSETooLargeError past the limit. */
  feed(chunk: Buffer): Buffer {
    let s = '';
    for (const ev of this.parser.feed(chunk)) s += this.event(ev);
    return Buffer.from(s);
  }

  private chunk(delta: Json, finish: string | null = null, extra: Json = {}): string {
    return enc({ id: this.id, object: 'chat.completion.chunk', model: this.model, choices: [{ index: 0, delta, finish_reason: finish, ...extra }] });
  }

  private event(ev: SSEEvent): string {
    let j: unknown;
    try {
      j = JSON.parse(ev.data);
    } catch {
      return '';
    }
    if (!isObject(j)) return '';
    const type = typeof j.type === 'string' ? j.type : ev.event;
    switch (type) {
      case 'message_start': {
        const m = isObject(j.message) ? j.message : {};
        this.id = m.id;
        this.model = m.model;
        const u = isObject(m.usage) ? m.usage : {};
        this.inputTokens = tokens(u.input_tokens);
        this.cacheRead = tokens(u.cache_read_input_tokens);
        this.cacheCreation = tokens(u.cache_creation_input_tokens);
        return this.chunk({ role: 'assistant', content: '' });
      }
      case 'content_block_start': {
        const b = isObject(j.content_block) ? j.content_block : {};
        const index = typeof j.index === 'number' ? j.index : 0;
        if (b.type === 'tool_use') {
          const n = this.tools.size;
          this.tools.set(index, n);
          return this.chunk({ tool_calls: [{ index: n, id: b.id, type: 'function', function: { name: b.name, arguments: '' } }] });
        }
        if (b.type === 'text' && typeof b.text === 'string' && b.text) return this.chunk({ content: b.text });
        if (b.type === 'thinking' && typeof b.thinking === 'string' && b.thinking) return this.chunk({ reasoning_content: b.thinking });
        if (b.type === 'redacted_thinking' && typeof b.data === 'string') return this.chunk({ thinking_blocks: [{ type: 'redacted_thinking', data: b.data }] });
        return '';
      }
      case 'content_block_delta': {
        const d = isObject(j.delta) ? j.delta : {};
        const index = typeof j.index === 'number' ? j.index : 0;
        if (d.type === 'text_delta' && typeof d.text === 'string' && d.text) return this.chunk({ content: d.text });
        const n = this.tools.get(index);
        if (d.type === 'input_json_delta' && n !== undefined && typeof d.partial_json === 'string' && d.partial_json)
          return this.chunk({ tool_calls: [{ index: n, function: { arguments: d.partial_json } }] });
        if (d.type === 'thinking_delta' && typeof d.thinking === 'string' && d.thinking) return this.chunk({ reasoning_content: d.thinking });
        if (d.type === 'signature_delta' && typeof d.signature === 'string')
          return this.chunk({ thinking_blocks: [{ type: 'thinking', thinking: '', signature: d.signature }] });
        return '';
      }
      case 'message_delta': {
        const d = isObject(j.delta) ? j.delta : {};
        let s = '';
        if (d.stop_reason !== undefined && d.stop_reason !== null)
          s += this.chunk({}, finishOf(d.stop_reason), typeof d.stop_sequence === 'string' ? { stop_reason: d.stop_sequence } : {});
        const u = isObject(j.usage) ? j.usage : undefined;
        if (u && typeof u.output_tokens === 'number') {
          // message_delta's usage is cumulative; fields it leaves out keep message_start's values
          const pick = (v: unknown, was: number) => (typeof v === 'number' ? tokens(v) : was);
          const usage = chatUsage(pick(u.input_tokens, this.inputTokens), tokens(u.output_tokens), pick(u.cache_read_input_tokens, this.cacheRead), pick(u.cache_creation_input_tokens, this.cacheCreation));
          s += enc({ id: this.id, object: 'chat.completion.chunk', model: this.model, choices: [], usage });
        }
        return s;
      }
      case 'message_stop':
        return 'data: [DONE]\n\n';
      case 'error':
        return enc({ error: isObject(j.error) ? j.error : { message: 'error' } });
      default:
        return ''; // ping, content_block_stop, unknown events
    }
  }
}

/** The reader of an upstream body, with each chunk turned into chat stream bytes. */
export function decodedReader(
  inner: { next(): Promise<IteratorResult<Buffer, undefined>> },
  decoder: MessagesStreamAsChat,
  destroy: () => void,
): { next(): Promise<IteratorResult<Buffer, undefined>> } {
  return {
    async next() {
      for (;;) {
        const r = await inner.next();
        if (r.done) return r;
        let out: Buffer;
        try {
          out = decoder.feed(r.value);
        } catch (e) {
          destroy(); // an event past the limit: the upstream is cut, not read further
          throw e;
        }
        if (out.length) return { value: out, done: false };
      }
    },
  };
}

/** The body a native endpoint receives: the client's own Messages body with the target's model. */
export function nativePayload(native: Json, upstreamModel: string): Json {
  return { ...native, model: upstreamModel };
}
