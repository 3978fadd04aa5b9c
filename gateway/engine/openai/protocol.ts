// The OpenAI protocol parts of the pipeline: what a valid request is, what goes upstream, and
// how an answer reaches the client — a whole JSON answer, or a stream passed through byte for
// byte by the stream inspector (held until the first content, so a failure before it can still
// fall back).
import type { ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import { AttemptFailure, classifyError, upstreamErrorMessage, type AttemptProtocol, type AttemptTiming } from '../attempt.js';
import { GatewayError, badRequest, clientClosed, gatewayError } from '../errors.js';
import { channels, type FirstContent } from '../events.js';
import { drain } from '../io.js';
import type { Runtime } from '../runtime.js';
import type { EndpointConfig, TargetConfig } from '../snapshot.js';
import { ANTHROPIC_VERSION, MessagesStreamAsChat, decodedReader, messageAsChat, nativePayload } from '../anthropic/native.js';
import { SSETooLargeError } from '../sse.js';
import type { UpstreamAnswer } from '../upstream-call.js';
import { guardBody, guardEvents, guardJudge, promptEstimate, type Guards, type Kind, type RequestContext } from '../stages.js';
import { estimateTokensFromText } from '../tokens.js';
import type { AnswerTranslator } from '../translate.js';
import { MAX_FINISH_REASONS, StreamInspector, readUsage, type EventTransform } from './stream-inspector.js';

const DONE = Buffer.from('data: [DONE]\n\n');
const NOTHING = Buffer.alloc(0);

const UPSTREAM_PATH: Record<Kind, string> = {
  chat: '/chat/completions',
  completions: '/completions',
  embeddings: '/embeddings',
  // translated onto the upstream's Chat Completions (translate.ts)
  messages: '/chat/completions',
  responses: '/chat/completions',
};

export function validateBody(kind: Kind, body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw badRequest('The request body must be a JSON object.');
  const b = body as Record<string, unknown>;
  if (typeof b.model !== 'string' || b.model === '') throw badRequest('"model" is required and must be a non-empty string.', 'model');
  if (b.stream !== undefined && b.stream !== null && typeof b.stream !== 'boolean') throw badRequest('"stream" must be a boolean.', 'stream');
  if (kind === 'chat') {
    if (!Array.isArray(b.messages) || b.messages.length === 0) throw badRequest('"messages" is required and must be a non-empty array.', 'messages');
    for (let i = 0; i < b.messages.length; i++) {
      const m = b.messages[i] as Record<string, unknown> | null;
      if (!m || typeof m !== 'object' || typeof m.role !== 'string')
        throw badRequest(`"messages[${i}].role" is required and must be a string.`, `messages[${i}].role`);
    }
    if (b.tools !== undefined && b.tools !== null && !Array.isArray(b.tools)) throw badRequest('"tools" must be an array.', 'tools');
  } else if (kind === 'completions') {
    if (b.prompt === undefined || b.prompt === null) throw badRequest('"prompt" is required.', 'prompt');
  } else if (b.input === undefined || b.input === null) throw badRequest('"input" is required.', 'input');
  if (b.stream_options !== undefined && b.stream_options !== null && (typeof b.stream_options !== 'object' || Array.isArray(b.stream_options)))
    throw badRequest('"stream_options" must be an object.', 'stream_options');
  if (kind !== 'embeddings') {
    // what the answer may cost is reserved against budgets from these (governance estimate): a
    // negative or fractional one would reserve a negative cost, and so make room for others
    // (completions may ask for 0 tokens: the prompt's logprobs with echo)
    const least = kind === 'completions' ? 0 : 1;
    for (const f of ['max_tokens', 'max_completion_tokens'] as const) {
      const v = b[f];
      if (v !== undefined && v !== null && !(typeof v === 'number' && Number.isSafeInteger(v) && v >= least)) throw badRequest(`"${f}" must be a whole number of tokens, at least ${least}.`, f);
    }
    const n = b.n;
    if (n !== undefined && n !== null && !(typeof n === 'number' && Number.isSafeInteger(n) && n >= 1 && n <= 128)) throw badRequest('"n" must be a whole number from 1 to 128.', 'n');
  }
  return b;
}

export function upstreamPath(type: EndpointConfig['type'], basePath: string, kind: Kind): string {
  if (type === 'anthropic') return `${basePath}/messages`; // (only Messages requests are routed to one)
  const base = type === 'ollama' && !/\/v1$/.test(basePath) ? `${basePath}/v1` : basePath;
  return base + UPSTREAM_PATH[kind];
}

/** The body sent upstream: the client's, with the target's model name; a stream asks for usage.
 * Built before the upstream is contacted: a body that cannot be serialised is the client's
 * problem (400) and never charges a breaker. */
export function upstreamPayload(ctx: RequestContext, t: TargetConfig, acceptsTopK = true, native = false): string {
  // a server that speaks the client's protocol gets the client's body (after the input guards)
  if (native && ctx.native) return JSON.stringify(nativePayload(ctx.native, t.upstreamModel));
  const upstreamBody: Record<string, unknown> = { ...ctx.body, model: t.upstreamModel };
  // Anthropic's top_k, not a Chat Completions field: only to a server that reads it (per endpoint,
  // so a fallback from one kind of server to another sends each what it accepts)
  if (!acceptsTopK && ctx.kind === 'messages') delete upstreamBody.top_k;
  if (ctx.stream) upstreamBody.stream_options = { ...(ctx.body.stream_options as object | undefined), include_usage: true };
  try {
    return JSON.stringify(upstreamBody);
  } catch (e) {
    throw gatewayError('invalid_body', `The request body cannot be forwarded: ${(e as Error).message}`);
  }
}

export function upstreamHeaders(ctx: RequestContext, apiKey: string | undefined, anthropic = false): Record<string, string> {
  // accept-encoding identity: the answer's bytes are inspected and forwarded as they come, never
  // compressed (without the header, RFC 9110 lets a server or proxy pick any encoding)
  const h: Record<string, string> = {
    'content-type': 'application/json',
    accept: ctx.stream ? 'text/event-stream' : 'application/json',
    'accept-encoding': 'identity',
    'x-request-id': ctx.id,
  };
  if (apiKey) h.authorization = `Bearer ${apiKey}`;
  if (anthropic) {
    // Anthropic-compatible servers read one or the other
    h['anthropic-version'] = ANTHROPIC_VERSION;
    if (apiKey) h['x-api-key'] = apiKey;
  }
  const tp = ctx.upstreamTraceparent ?? ctx.traceparent;
  if (tp) h.traceparent = tp;
  return h;
}

/** An upstream's own 4xx: passed to the client with its status and message (401/403 are the
 * gateway's misconfigured api_key, not the client's fault: 502). */
export function upstreamClientError(status: number, t: TargetConfig, text: string): GatewayError {
  const msg = upstreamErrorMessage(text) || `status ${status}`;
  const misconfigured = status === 401 || status === 403;
  return gatewayError('upstream_rejected', `Endpoint "${t.endpoint}" rejected the request for model "${t.upstreamModel}": ${msg}`, {
    status: misconfigured ? 502 : status,
    type: misconfigured ? 'upstream_error' : status === 404 ? 'not_found_error' : 'invalid_request_error',
    headers: { 'x-airlock-endpoint': t.endpoint },
  });
}

function completionText(json: unknown): string {
  const choices = (json as { choices?: { message?: { content?: unknown; tool_calls?: unknown }; text?: unknown }[] })?.choices;
  if (!Array.isArray(choices)) return '';
  let s = '';
  for (const c of choices) {
    if (typeof c.message?.content === 'string') s += c.message.content;
    if (c.message?.tool_calls) s += JSON.stringify(c.message.tool_calls);
    if (typeof c.text === 'string') s += c.text;
  }
  return s;
}

function headerBlock(ctx: RequestContext, t: TargetConfig, contentType: string): Record<string, string | number> {
  return {
    'content-type': contentType,
    'x-airlock-request-id': ctx.id,
    'x-airlock-endpoint': t.endpoint,
    'x-airlock-attempts': ctx.attempts,
    'x-airlock-model': ctx.model!.name,
  };
}

export interface OpenAIDeps {
  source: object;
  runtime: Runtime;
  guards: Guards;
}

/** How one attempt's answer reaches the client, for runAttempt(). `tr`: the client speaks another
 * protocol (Anthropic Messages, Responses): the chat answer, after the output guards, is translated. */
export function openAIProtocol(d: OpenAIDeps, ctx: RequestContext, t: TargetConfig, res: ServerResponse, tr?: AnswerTranslator, native = false): AttemptProtocol<void> {
  return {
    consume: (up, timing) => (ctx.stream ? pipeStream(d, ctx, t, up, res, timing, tr, native) : sendWhole(d, ctx, t, up, res, timing, tr, native)),
    rejected: (status, text) => upstreamClientError(status, t, text),
    brokeAfterContent: () => ctx.errorClass === 'stream_interrupted',
  };
}

async function sendWhole(
  d: OpenAIDeps,
  ctx: RequestContext,
  t: TargetConfig,
  up: UpstreamAnswer,
  res: ServerResponse,
  timing: AttemptTiming,
  tr: AnswerTranslator | undefined,
  native: boolean,
): Promise<void> {
  const ct = up.header('content-type') ?? '';
  const limit = ctx.snapshot.settings.limits.max_response_bytes;
  let buf: Buffer;
  try {
    buf = await up.body.all(limit, Number(up.header('content-length')), () => new AttemptFailure('too_large', `upstream answer is larger than settings.limits.max_response_bytes (${limit} bytes)`));
  } catch (e) {
    throw classifyError(e, ctx.abort.signal.aborted, timing.timedOut());
  }
  d.runtime.target(t).observeTtfb(performance.now() - timing.started);
  if (!/json/i.test(ct)) throw new AttemptFailure('invalid_response', `upstream answered with content-type "${ct || 'none'}", not JSON`);
  let json: unknown;
  try {
    json = JSON.parse(buf.toString('utf8'));
  } catch {
    throw new AttemptFailure('invalid_response', 'upstream answered with invalid JSON');
  }
  if (!json || typeof json !== 'object' || Array.isArray(json)) throw new AttemptFailure('invalid_response', 'upstream answered with JSON that is not an object');
  // a native Messages answer, read as the chat answer it amounts to (the translator writes it back)
  if (native) json = messageAsChat(json) ?? {};
  // A 200 that carries an error instead of an answer is a failed attempt, not a success.
  const list = ctx.kind === 'embeddings' ? (json as { data?: unknown }).data : (json as { choices?: unknown }).choices;
  if (!Array.isArray(list)) {
    const err = (json as { error?: unknown }).error;
    if (err !== undefined && err !== null) throw new AttemptFailure('upstream_error', `upstream answered 200 with an error: ${upstreamErrorMessage(JSON.stringify(json)) || 'no message'}`);
    throw new AttemptFailure('invalid_response', `upstream answered 200 without ${ctx.kind === 'embeddings' ? '"data"' : '"choices"'}`);
  }
  if (ctx.kind !== 'embeddings') ctx.finishReasons = finishReasonsOf(list);
  const usage = readUsage((json as { usage?: unknown }).usage);
  if (usage) {
    ctx.promptTokens = usage.prompt;
    ctx.completionTokens = usage.completion;
  } else {
    ctx.estimated = true;
    ctx.promptTokens = promptEstimate(ctx);
    ctx.completionTokens = estimateTokensFromText(completionText(json));
  }
  // output guards: the same bytes when they pass, their body when they replace it
  const guarded = guardBody(d.guards, ctx, json);
  const judged = guardJudge(d.guards, ctx, guarded);
  if (judged) await judged;
  const out = tr ? Buffer.from(JSON.stringify(tr.body(guarded as Record<string, unknown>))) : guarded === json ? buf : Buffer.from(JSON.stringify(guarded));
  ctx.ttfbMs = performance.now() - ctx.t0;
  ctx.status = 200;
  if (channels.firstContent.hasSubscribers) channels.firstContent.publish({ source: d.source, ctx } satisfies FirstContent);
  const h = headerBlock(ctx, t, 'application/json');
  h['content-length'] = out.length;
  res.writeHead(200, h);
  res.end(out);
}

/** The output guards, then the translation: a translated stream's guards see the chat events. */
function streamTransform(guards: EventTransform | undefined, tr: AnswerTranslator | undefined): EventTransform | undefined {
  if (!tr) return guards;
  if (!guards) return tr.stream;
  const g = guards;
  return {
    event: (ev) => g.event(ev).flatMap((x) => tr.stream.event(x)),
    end: () => [...g.end().flatMap((x) => tr.stream.event(x)), ...tr.stream.end()],
  };
}

async function pipeStream(
  d: OpenAIDeps,
  ctx: RequestContext,
  t: TargetConfig,
  up: UpstreamAnswer,
  res: ServerResponse,
  timing: AttemptTiming,
  tr: AnswerTranslator | undefined,
  native: boolean,
): Promise<void> {
  const ct = up.header('content-type') ?? '';
  if (!/text\/event-stream/i.test(ct)) {
    await up.body.text(64 * 1024).catch(() => '');
    throw new AttemptFailure('invalid_response', `upstream answered a stream request with content-type "${ct || 'none'}", not text/event-stream`);
  }
  const limits = ctx.snapshot.settings.limits;
  const guards = guardEvents(d.guards, ctx);
  // a guard that judges only the whole answer: the stream is held to its end (then sent at once),
  // up to what a whole answer may be
  const hold = guards?.hold === true;
  let held = 0;
  const insp = new StreamInspector({
    kind: ctx.kind === 'completions' ? 'completions' : 'chat',
    // a translation reads the usage chunk itself (and says the usage its own way)
    clientWantsUsage: ctx.clientWantsUsage || tr !== undefined,
    maxEventBytes: limits.max_event_bytes,
    transform: streamTransform(guards, tr),
    dropDone: tr !== undefined,
    choices: choicesAsked(ctx),
  });
  // chat's end marker; a translated protocol's end is its own last event
  const done = tr ? NOTHING : DONE;
  // a native Messages stream, read as the chat stream it amounts to
  const it = native ? decodedReader(up.body, new MessagesStreamAsChat(limits.max_event_bytes), () => up.body.destroy()) : up.body;
  let committed = false;
  let pending: Buffer[] = [];
  // a held stream, complete: the guards' judgement (a classifier model) before any of it is sent
  const judgeHeld = async () => {
    const j = guardJudge(d.guards, ctx, undefined);
    if (j) await j;
  };

  const commit = (end: boolean) => {
    committed = true;
    ctx.ttfbMs = performance.now() - ctx.t0;
    ctx.status = 200;
    d.runtime.target(t).observeTtfb(performance.now() - timing.started);
    if (channels.firstContent.hasSubscribers) channels.firstContent.publish({ source: d.source, ctx } satisfies FirstContent);
    const h = headerBlock(ctx, t, 'text/event-stream; charset=utf-8');
    h['cache-control'] = 'no-cache';
    h['x-accel-buffering'] = 'no';
    res.writeHead(200, h);
    const body = pending.length === 1 ? pending[0]! : Buffer.concat(pending);
    pending = [];
    if (end) res.end(body); // the whole stream is already here: one write, not two
    else if (body.length) res.write(body);
  };
  const write = async (bufs: Buffer[]) => {
    let ok = true;
    // a translation turns one upstream chunk into many small events: one write, not one per event
    if (tr && bufs.length > 1) ok = res.write(Buffer.concat(bufs));
    else for (const b of bufs) ok = res.write(b);
    if (!ok) await drain(res, ctx.abort.signal);
  };

  try {
    // Phase 1: hold everything until the first content event, so a failure before it can fall back.
    while (!committed) {
      let r: IteratorResult<Buffer>;
      try {
        r = await it.next();
      } catch (e) {
        throw classifyError(e, ctx.abort.signal.aborted, timing.timedOut());
      }
      if (r.done) {
        pending.push(...insp.end());
        if (insp.errorEvent) throw new AttemptFailure('stream_error', `upstream sent an error before any content: ${insp.errorEvent.slice(0, 300)}`);
        if (!insp.done && !insp.finished) throw new AttemptFailure('stream_error', 'upstream closed the stream before sending any content');
        if (!insp.done && done.length) pending.push(done);
        if (hold) await judgeHeld();
        commit(true);
        return;
      }
      pending.push(...insp.push(r.value));
      if (insp.errorEvent && !insp.contentSeen) throw new AttemptFailure('stream_error', `upstream sent an error before any content: ${insp.errorEvent.slice(0, 300)}`);
      if (hold && !insp.done) {
        if ((held += r.value.length) > limits.max_response_bytes) {
          up.body.destroy();
          throw new AttemptFailure('too_large', `upstream answer is larger than settings.limits.max_response_bytes (${limits.max_response_bytes} bytes), held whole for a guardrail's JSON schema check`);
        }
        continue;
      }
      if (insp.contentSeen) {
        if (hold) await judgeHeld();
        if (insp.errorEvent) {
          // content, then the upstream's own error (how vLLM reports a failure mid-answer). Held
          // whole for a guard, nothing has reached the client: a failed attempt (falls back).
          if (hold) throw new AttemptFailure('stream_error', `upstream sent an error after ${insp.events} events, before the held answer was sent: ${insp.errorEvent.slice(0, 300)}`);
          commit(false);
          breakStream(ctx, res, tr, `upstream sent an error after ${insp.events} events: ${insp.errorEvent}`);
          return;
        }
        commit(insp.done);
      }
    }
    // Phase 2: pass through as it arrives.
    while (!insp.done) {
      let r: IteratorResult<Buffer>;
      try {
        r = await it.next();
      } catch (e) {
        if (ctx.abort.signal.aborted) throw clientClosed();
        breakStream(ctx, res, tr, `${timing.timedOut() ? 'upstream stream timed out' : 'upstream connection broke'} after ${insp.events} events (${(e as Error).message})`);
        return;
      }
      if (r.done) {
        const tail = insp.end();
        if (insp.finished && !insp.errorEvent) {
          // complete without [DONE]: the client still gets the usual end
          if (done.length) tail.push(done);
          await write(tail);
          res.end();
          return;
        }
        if (tail.length) await write(tail);
        breakStream(ctx, res, tr, `upstream ended the stream after ${insp.events} events without finishing${insp.errorEvent ? `: ${insp.errorEvent}` : ''}`);
        return;
      }
      const out = insp.push(r.value);
      if (out.length) await write(out);
      if (insp.errorEvent) {
        // the upstream failed mid-answer and said so in-band (then perhaps [DONE]): the answer
        // is incomplete, and the client hears it in its own protocol, never a clean end
        breakStream(ctx, res, tr, `upstream sent an error after ${insp.events} events: ${insp.errorEvent}`);
        return;
      }
    }
    if (!res.writableEnded) res.end();
    // read anything after [DONE] so the connection can be reused (up to a limit: then it is cut)
    up.body.discard(limits.max_event_bytes);
  } catch (e) {
    if (e instanceof SSETooLargeError) {
      up.body.destroy(); // cut, not drained
      const why = `upstream sent a streamed event larger than settings.limits.max_event_bytes (${e.limit} bytes)`;
      if (!committed) throw new AttemptFailure('too_large', why);
      breakStream(ctx, res, tr, why);
      return;
    }
    if (committed && e instanceof GatewayError && e.code !== 'client_closed') {
      // a guard's decision after content reached the client: said in-band, the stream ends cleanly
      up.body.destroy();
      ctx.errorClass = e.code;
      res.end(tr ? tr.failure(e) : `data: ${JSON.stringify(e.body())}\n\n`);
      return;
    }
    if (e instanceof GatewayError) up.body.destroy();
    throw e;
  } finally {
    if (insp.finishReasons.length) ctx.finishReasons = insp.finishReasons;
    if (insp.usage) {
      ctx.promptTokens = insp.usage.prompt;
      ctx.completionTokens = insp.usage.completion;
    } else if (committed || insp.contentSeen) {
      // no usage from the upstream: estimated for the content it produced (sent, or held for a
      // guard). An attempt that failed before any content is a failure for nothing, as a
      // non-streamed one is.
      ctx.estimated = true;
      ctx.promptTokens = promptEstimate(ctx);
      ctx.completionTokens = streamedTokensEstimate(insp);
    }
    // (res.destroyed first: ctx.abort is only ever aborted by the response closing early, and
    // reading ctx.abort.signal creates an AbortSignal, several µs on every stream)
    if (committed && res.destroyed && ctx.abort.signal.aborted) {
      ctx.status = 499;
      ctx.errorClass = 'client_closed';
    }
  }
}

/** The choices a request asked for (`n`; 1 when absent or not a whole number). */
function choicesAsked(ctx: RequestContext): number {
  const n = (ctx.body as { n?: unknown }).n;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 1 ? n : 1;
}

/** Completion tokens of a stream the upstream reported no usage for: the larger of one token per
 * event (streaming servers send about one; the role chunk and the finish chunk carry none) and
 * the events' data beyond their envelope (the shortest event's size) at 4 characters a token, as
 * for a whole answer's text. */
function streamedTokensEstimate(insp: StreamInspector): number {
  const perEvent = insp.events - 1 - (insp.finished ? 1 : 0);
  const byText = insp.events ? Math.round((insp.dataChars - insp.events * insp.minDataChars) / 4) : 0;
  return Math.max(0, perEvent, byText);
}

/** The stream broke after content reached the client: say so in-band, then cut the connection. */
function breakStream(ctx: RequestContext, res: ServerResponse, tr: AnswerTranslator | undefined, why: string): void {
  ctx.errorClass = 'stream_interrupted';
  const err = gatewayError('stream_interrupted', `Stream interrupted: ${why}. The answer is incomplete.`);
  res.write(tr ? tr.failure(err) : `data: ${JSON.stringify(err.body())}\n\n`);
  res.socket?.uncork(); // node corks a response's writes until the next tick: without this the cut loses the event
  // No terminating chunk: HTTP clients see a truncated body, not a clean end.
  res.destroy();
}

/** The finish_reason of each choice of a whole answer (those that have one). */
function finishReasonsOf(choices: unknown[]): string[] | undefined {
  const out: string[] = [];
  for (const c of choices.slice(0, MAX_FINISH_REASONS)) {
    const f = (c as { finish_reason?: unknown } | null)?.finish_reason;
    if (typeof f === 'string' && f) out.push(f.slice(0, 64));
  }
  return out.length ? out : undefined;
}
