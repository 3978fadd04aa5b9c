// The guardrail engine: the compiled policies of the current configuration, the pipeline's input
// and output guards for the OpenAI protocol (chat, completions, embeddings; whole answers and
// streams), and the protocol-neutral evaluate() for other callers (the MCP gateway's tool_args
// and tool_result). Every decision becomes a Hit, handed to the recorder (events.ts) without the
// matched text.
import type { GuardDirection } from '../config/guardrails-schema.js';
import { GatewayError } from '../engine/errors.js';
import type { Snapshot } from '../engine/snapshot.js';
import type { SSEEvent } from '../engine/sse.js';
import { ContentTemplate } from '../engine/openai/content-template.js';
import { guardBlocked, guardRetry, type BodyVerdict, type EventVerdict, type Guards, type InputGuard, type OutputGuard, type RequestContext } from '../engine/stages.js';
import { responseSchemaProblem } from './response-schema.js';
import { Placeholders, addHit, compilePolicies, evaluatePolicies, evaluateTexts, jsonStrings, type CompiledPolicy, type EvaluateResult, type Finding, type GuardScopeFacts, type Hit } from './policy.js';
import { GuardBlock, TextScanner } from './stream.js';
import type { GuardModelClient, GuardModelSpec, GuardModelVerdict } from './guard-model.js';

/** Where a decision was taken: a data-plane request, or a tool call (MCP). */
export interface GuardRef {
  requestId?: string;
  toolCallId?: string;
  key?: string;
  team?: string;
  model?: string;
}

export interface GuardEvent extends Hit, GuardRef {
  ts: number;
  /** for output: false when the answer ended before all of it was scanned (nothing unscanned was sent) */
  complete: boolean;
}

/** `ctx`: the request whose decisions these are (absent for a tool call's) */
export type GuardSink = (events: GuardEvent[], ctx?: RequestContext) => void;

interface ReqState {
  ph: Placeholders;
  hits: Map<string, Hit>;
  input: CompiledPolicy[];
  output: CompiledPolicy[];
  restore: boolean;
  stream?: StreamGuard;
  streamAttempt?: number;
  outputDone: boolean;
  /** an answer was refused for its JSON schema once already (one retry) */
  schemaRetried?: boolean;
}

const compiled = new WeakMap<Snapshot, CompiledPolicy[]>();

export function policiesOf(s: Snapshot): CompiledPolicy[] {
  let p = compiled.get(s);
  if (!p) compiled.set(s, (p = compilePolicies(s.guardrails)));
  return p;
}

export function scopeOf(ctx: RequestContext): GuardScopeFacts {
  return { model: ctx.model?.name, requestedModel: ctx.requestedModel, team: ctx.key?.team, key: ctx.key?.name };
}

export class GuardrailEngine {
  constructor(
    private readonly sink: GuardSink,
    /** asks a guard_model detector's classifier (absent: such detectors fail, as their on_failure says) */
    private readonly guardModel?: GuardModelClient,
  ) {}

  private stateOf(ctx: RequestContext): ReqState | undefined {
    // kept on the request itself (ctx.guardState), not in a WeakMap keyed by it: one entry per
    // request in a WeakMap is an ephemeron the garbage collector has to visit
    let st = ctx.guardState as ReqState | undefined;
    if (st) return st;
    const all = policiesOf(ctx.snapshot);
    if (!all.length) return undefined;
    const scope = scopeOf(ctx);
    const input = all.filter((p) => p.appliesTo('input', scope));
    const output = all.filter((p) => p.appliesTo('output', scope));
    if (!input.length && !output.length) return undefined;
    st = { ph: new Placeholders(), hits: new Map(), input, output, restore: false, outputDone: false };
    ctx.guardState = st;
    return st;
  }

  /** The pipeline's guards. */
  guards(): Guards {
    const input: InputGuard = {
      name: 'guardrails',
      appliesTo: (ctx) => !!this.stateOf(ctx)?.input.length,
      check: (ctx) => this.checkInput(ctx),
    };
    const output: OutputGuard = {
      name: 'guardrails',
      appliesTo: (ctx) => {
        const st = this.stateOf(ctx);
        return !!st && (st.restore || st.output.some((p) => p.detectsText || p.responseSchema || p.guardModels.length));
      },
      checkBody: (ctx, body) => this.checkBody(ctx, body),
      judge: (ctx, body) => this.judgeOutput(ctx, body),
      checkEvent: (ctx, ev) => this.streamOf(ctx).event(ev),
      endStream: (ctx) => this.streamOf(ctx).end(),
      // an enforced response_schema policy over a JSON-schema request, or a guard_model policy:
      // judged whole, so held whole
      holdsStream: (ctx) => {
        const st = this.stateOf(ctx);
        if (!st) return false;
        if (st.output.some((p) => p.guardModels.length)) return true;
        const rf = ctx.body.response_format as { type?: unknown } | undefined;
        return rf?.type === 'json_schema' && st.output.some((p) => p.responseSchema && p.changes);
      },
    };
    return { input: [input], output: [output] };
  }

  /** The request is over: its decisions go to the recorder. */
  finish(ctx: RequestContext): void {
    const st = ctx.guardState as ReqState | undefined;
    if (!st || !st.hits.size) return;
    const ref: GuardRef = { requestId: ctx.id, key: ctx.key?.name, team: ctx.key?.team, model: ctx.model?.name };
    const ts = Date.now();
    this.sink([...st.hits.values()].map((h) => ({ ...h, ...ref, ts, complete: h.direction !== 'output' || st.outputDone })), ctx);
  }

  /** The protocol-neutral check (the MCP gateway calls it with tool_args / tool_result): a text or
   * any JSON value, whose strings are checked. Records what it decides. */
  evaluate<T>(snapshot: Snapshot, direction: GuardDirection, input: T, scope: GuardScopeFacts, ref: GuardRef = {}): EvaluateResult<T> {
    const r = evaluatePolicies(policiesOf(snapshot), direction, input, scope);
    if (r.hits.length) {
      const ts = Date.now();
      this.sink(r.hits.map((h) => ({ ...h, ...ref, ts, complete: true })));
    }
    return r;
  }

  private checkInput(ctx: RequestContext): void | Promise<void> {
    const st = this.stateOf(ctx);
    if (!st) return;
    const body = ctx.body;
    const slots = inputSlots(ctx.kind, body);
    if (!slots.length) return;
    const r = evaluateTexts(st.input, 'input', slots.map((s) => s.get()), st.ph, st.hits);
    if (r.blocked) throw guardBlocked(r.blocked.policy, r.blocked.message);
    // the classifier models, last: asked about what the model would read (after any redaction)
    this.redactInput(ctx, st, r);
    const asking = st.input.filter((p) => p.guardModels.length);
    if (asking.length) return this.judgeOrBlock(ctx.snapshot, asking, 'input', r.texts.join('\n'), st.hits);
  }

  private async judgeOrBlock(snapshot: Snapshot, policies: readonly CompiledPolicy[], direction: GuardDirection, text: string, hits: Map<string, Hit>): Promise<void> {
    const block = await this.askGuardModels(snapshot, policies, direction, text, hits);
    if (block) throw guardBlocked(block.policy, block.message);
  }

  /** The guard_model detectors of `policies` asked about `text`, all at once (nothing recorded). */
  private askAll(snapshot: Snapshot, policies: readonly CompiledPolicy[], text: string): Promise<GuardModelDecision[]> {
    const ask = this.guardModel;
    return Promise.all(
      policies.flatMap((p) => p.guardModels.map(async (spec) => ({ p, spec, v: ask ? await ask(snapshot, spec, text) : ({ verdict: 'failed', reason: 'no guard model client' } as const) }))),
    );
  }

  /** The guard_model detectors of `policies` asked about `text`, all at once; each verdict that is
   * not "safe" is a hit; the first enforcing block (unsafe, or unanswered and failing closed). */
  private async askGuardModels(snapshot: Snapshot, policies: readonly CompiledPolicy[], direction: GuardDirection, text: string, hits: Map<string, Hit>): Promise<{ policy: string; message: string } | undefined> {
    let block: { policy: string; message: string } | undefined;
    for (const d of await this.askAll(snapshot, policies, text)) {
      const o = outcomeOf(d, direction);
      if (!o) continue;
      addHit(hits, d.p, direction, [o.finding], o.blocks);
      if (o.blocks && !block) block = { policy: d.p.name, message: o.message };
    }
    return block;
  }

  /** The "try it" endpoint's guard_model part: every guard_model detector of the policies that
   * apply, asked about `text` through the gateway's routing with its timeout and on_failure, as a
   * request would be — nothing recorded. Each verdict, its finding (when not safe), whether it
   * blocks, and the first block. */
  async tryGuardModels(
    snapshot: Snapshot,
    policies: readonly CompiledPolicy[],
    direction: GuardDirection,
    text: string,
    /** set: no classifier is asked (each verdict is "skipped", for this reason) */
    skip?: string,
  ): Promise<{ verdicts: GuardModelTry[]; blocked: { policy: string; message: string } | undefined }> {
    const asking = policies.filter((p) => p.guardModels.length);
    let blocked: { policy: string; message: string } | undefined;
    const verdicts: GuardModelTry[] = [];
    if (!asking.length) return { verdicts, blocked };
    if (skip !== undefined) {
      for (const p of asking) for (const spec of p.guardModels) verdicts.push({ policy: p.name, model: spec.model, verdict: 'skipped', reason: skip, finding: undefined, blocks: false });
      return { verdicts, blocked };
    }
    for (const d of await this.askAll(snapshot, asking, text)) {
      const o = outcomeOf(d, direction);
      if (o?.blocks && !blocked) blocked = { policy: d.p.name, message: o.message };
      verdicts.push({
        policy: d.p.name,
        model: d.spec.model,
        verdict: d.v.verdict,
        ...(d.v.verdict === 'unsafe' && d.v.category ? { category: d.v.category } : {}),
        ...(d.v.verdict === 'failed' ? { reason: d.v.reason, on_failure: d.spec.on_failure } : {}),
        finding: o?.finding,
        blocks: o?.blocks ?? false,
      });
    }
    return { verdicts, blocked };
  }

  /** An answer's guard_model policies: the whole body's texts (after the other checks), or a held
   * stream's content once it is complete (body undefined) — before anything reaches the client. */
  private judgeOutput(ctx: RequestContext, body: unknown): Promise<void> | void {
    const st = this.stateOf(ctx);
    const asking = st?.output.filter((p) => p.guardModels.length);
    if (!st || !asking?.length) return;
    const texts = body === undefined ? (st.stream?.judgedTexts() ?? []) : outputSlots(body).map((x) => x.get());
    if (!texts.some((t) => t.trim())) return; // nothing said (a tool call's arguments are checked as text by the other detectors)
    return this.judgeOrBlock(ctx.snapshot, asking, 'output', texts.join('\n'), st.hits);
  }

  /** A tool call's guard_model policies (direction tool_args or tool_result) over the strings of
   * `value`; records its decisions. Undefined at once when no such policy applies. */
  judgeValue(snapshot: Snapshot, direction: GuardDirection, value: unknown, scope: GuardScopeFacts, ref: GuardRef = {}): Promise<{ policy: string; message: string } | undefined> | undefined {
    const asking = policiesOf(snapshot).filter((p) => p.guardModels.length && p.appliesTo(direction, scope));
    if (!asking.length) return undefined;
    const text = typeof value === 'string' ? value : jsonStrings(value, false).texts.join('\n');
    const hits = new Map<string, Hit>();
    return this.askGuardModels(snapshot, asking, direction, text, hits).then((block) => {
      if (hits.size) {
        const ts = Date.now();
        this.sink([...hits.values()].map((h) => ({ ...h, ...ref, ts, complete: true })));
      }
      return block;
    });
  }

  private redactInput(ctx: RequestContext, st: ReqState, r: ReturnType<typeof evaluateTexts>): void {
    const body = ctx.body;
    if (r.changed) {
      // a copy: the client's parsed body is not changed in place
      ctx.body = structuredClone(body);
      const again = inputSlots(ctx.kind, ctx.body);
      again.forEach((s, i) => s.set(r.texts[i]!));
      st.restore = st.input.some((p) => p.restore && p.changes && p.action === 'redact');
      if (ctx.native) ctx.native = redactNative(st, ctx.native);
    }
  }

  private checkBody(ctx: RequestContext, body: unknown): BodyVerdict | void {
    const st = this.stateOf(ctx);
    if (!st) return;
    st.outputDone = true;
    checkSchema(st, responseSchemaProblem(ctx.body, body), false);
    const slots = outputSlots(body);
    if (!slots.length) return;
    const r = evaluateTexts(st.output, 'output', slots.map((s) => s.get()), st.ph, st.hits);
    if (r.blocked) throw guardBlocked(r.blocked.policy, r.blocked.message);
    let texts = r.texts;
    if (st.restore) texts = texts.map((t, i) => (slots[i]!.restorable ? st.ph.restore(t) : t));
    if (!r.changed && texts.every((t, i) => t === r.texts[i])) return;
    const copy = structuredClone(body);
    outputSlots(copy).forEach((s, i) => s.set(texts[i]!));
    joinThinking(copy);
    if (dropsLogprobs(st)) for (const c of (copy as { choices?: Record<string, unknown>[] }).choices ?? []) if (c && typeof c === 'object' && c.logprobs) c.logprobs = null;
    return { action: 'replace', body: copy };
  }

  private streamOf(ctx: RequestContext): StreamGuard {
    const st = this.stateOf(ctx)!;
    // one per attempt: a retried or fallen-back answer starts with nothing held of the one before
    if (!st.stream || st.streamAttempt !== ctx.attempts) {
      st.stream = new StreamGuard(ctx.kind === 'completions' ? 'completions' : 'chat', st, ctx);
      st.streamAttempt = ctx.attempts;
    }
    return st.stream;
  }
}

/** The client's own Messages body (sent as it is to a server that speaks Messages), redacted as its
 * chat translation was: the same policies over its texts, the same placeholders for the same
 * values (the decisions were recorded once, on the translation). */
function redactNative(st: ReqState, native: Record<string, unknown>): Record<string, unknown> {
  const copy = structuredClone(native);
  const slots: Slot[] = [];
  const walk = (o: unknown, depth: number): void => {
    if (depth > 64 || !o || typeof o !== 'object') return;
    for (const k of Object.keys(o)) {
      const v = (o as Record<string, unknown>)[k];
      if (typeof v === 'string') slots.push(field(o as Record<string, unknown>, k));
      else walk(v, depth + 1);
    }
  };
  // what a model reads: the system prompt and the messages (not the model name, tools' schemas or metadata)
  const texts = (list: unknown) => {
    for (const b of Array.isArray(list) ? (list as Record<string, unknown>[]) : []) if (b && typeof b === 'object' && typeof b.text === 'string') slots.push(field(b, 'text'));
  };
  if (typeof copy.system === 'string') slots.push(field(copy, 'system'));
  else texts(copy.system);
  for (const m of Array.isArray(copy.messages) ? (copy.messages as unknown[]) : []) {
    if (!m || typeof m !== 'object') continue;
    const msg = m as Record<string, unknown>;
    if (typeof msg.content === 'string') slots.push(field(msg, 'content'));
    else
      for (const b of Array.isArray(msg.content) ? (msg.content as Record<string, unknown>[]) : []) {
        if (!b || typeof b !== 'object') continue;
        if (typeof b.text === 'string') slots.push(field(b, 'text'));
        if (typeof b.content === 'string') slots.push(field(b, 'content'));
        else texts(b.content);
        if (b.input && typeof b.input === 'object') walk(b.input, 0);
      }
  }
  const r = evaluateTexts(st.input, 'input', slots.map((s) => s.get()), st.ph, new Map());
  slots.forEach((s, i) => s.set(r.texts[i]!));
  return copy;
}

interface GuardModelDecision {
  p: CompiledPolicy;
  spec: GuardModelSpec;
  v: GuardModelVerdict;
}

/** One guard_model verdict in the "try it" endpoint. */
export interface GuardModelTry {
  policy: string;
  model: string;
  verdict: GuardModelVerdict['verdict'] | 'skipped';
  category?: string;
  reason?: string;
  on_failure?: 'open' | 'closed';
  /** the finding it counts as (absent: safe) */
  finding: Finding | undefined;
  blocks: boolean;
}

/** What a guard_model verdict amounts to: nothing (safe), or a finding (its category, or
 * UNAVAILABLE when it could not answer), whether it blocks (unsafe, or failing closed; an
 * enforcing block policy) and the message that would say so. */
function outcomeOf({ p, spec, v }: GuardModelDecision, direction: GuardDirection): { finding: Finding; blocks: boolean; message: string } | undefined {
  if (v.verdict === 'safe') return undefined;
  const what = direction === 'input' ? 'the request' : direction === 'output' ? 'the answer' : direction === 'tool_args' ? 'the tool arguments' : 'the tool result';
  const failed = v.verdict === 'failed';
  const refuses = !failed || spec.on_failure === 'closed';
  return {
    finding: { detector: 'guard_model', type: failed ? 'UNAVAILABLE' : (v.category ?? 'UNSAFE'), start: 0, end: 0 },
    blocks: refuses && p.changes && p.action === 'block',
    message: failed ? `${v.reason}, and the policy fails closed` : `the guard model "${spec.model}" judged ${what} unsafe${v.category ? ` (${v.category})` : ''}`,
  };
}

/** A response_schema decision (problem: why the answer does not satisfy the requested schema).
 * Enforced: once a retry (the pipeline asks again while nothing reached the client), then a block
 * — at once when the answer already streamed to the client (`sent`): it ends with an in-band error. */
function checkSchema(st: ReqState, problem: string | undefined, sent: boolean): void {
  if (!problem) return;
  const schemaPolicies = st.output.filter((p) => p.responseSchema);
  const enforcing = schemaPolicies.find((p) => p.changes);
  const retry = !!enforcing && !st.schemaRetried && !sent;
  for (const p of schemaPolicies) addHit(st.hits, p, 'output', [{ detector: 'response_schema', type: 'SCHEMA_MISMATCH', start: 0, end: 0 }], !retry && p === enforcing);
  if (!enforcing) return;
  if (retry) {
    st.schemaRetried = true;
    throw guardRetry(enforcing.name, problem);
  }
  throw guardBlocked(enforcing.name, problem);
}

interface Slot {
  get(): string;
  set(v: string): void;
  /** placeholders may be put back (not inside JSON arguments) */
  restorable?: boolean;
}

function field(o: Record<string, unknown>, k: string, restorable = true): Slot {
  return { get: () => o[k] as string, set: (v) => (o[k] = v), restorable };
}

/** The texts of a request a model reads. */
function inputSlots(kind: RequestContext['kind'], b: Record<string, unknown>): Slot[] {
  const out: Slot[] = [];
  const strings = (o: Record<string, unknown>, k: string) => {
    const v = o[k];
    if (typeof v === 'string') out.push(field(o, k));
    else if (Array.isArray(v)) v.forEach((x, i) => typeof x === 'string' && out.push(field(v as unknown as Record<string, unknown>, String(i))));
  };
  // (Messages and Responses requests are chat bodies here: translated before the guards)
  if (kind === 'chat' || kind === 'messages' || kind === 'responses') {
    for (const m of b.messages as Record<string, unknown>[]) {
      if (typeof m.content === 'string') out.push(field(m, 'content'));
      else if (Array.isArray(m.content))
        for (const part of m.content as Record<string, unknown>[]) if (part && typeof part === 'object' && typeof part.text === 'string') out.push(field(part, 'text'));
      if (Array.isArray(m.tool_calls))
        for (const tc of m.tool_calls as { function?: Record<string, unknown> }[]) if (tc?.function && typeof tc.function.arguments === 'string') out.push(field(tc.function, 'arguments', false));
    }
  } else if (kind === 'completions') strings(b, 'prompt');
  else strings(b, 'input');
  return out;
}

/** A message's thinking blocks with text (a native Messages endpoint's, carried as `thinking_blocks`). */
function thinkingWithText(m: Record<string, unknown>): Record<string, unknown>[] {
  if (!Array.isArray(m.thinking_blocks)) return [];
  return (m.thinking_blocks as unknown[]).filter((b): b is Record<string, unknown> => !!b && typeof b === 'object' && (b as Record<string, unknown>).type === 'thinking' && typeof (b as Record<string, unknown>).thinking === 'string');
}

/** After the thinking blocks were redacted: `reasoning_content` is their text again (it is their
 * concatenation, and was not scanned a second time). */
function joinThinking(body: unknown): void {
  const choices = (body as { choices?: unknown })?.choices;
  if (!Array.isArray(choices)) return;
  for (const c of choices as Record<string, unknown>[]) {
    const m = c?.message as Record<string, unknown> | undefined;
    if (!m || typeof m !== 'object') continue;
    const blocks = thinkingWithText(m);
    if (blocks.length && typeof m.reasoning_content === 'string') m.reasoning_content = blocks.map((b) => b.thinking as string).join('');
  }
}

/** Logprobs carry each token's text (and its bytes, and the alternatives): an answer whose text an
 * enforced output policy may hold back or rewrite loses them, or the redacted text would reach the
 * client through them. (Shadow policies change nothing, logprobs included.) */
function dropsLogprobs(st: ReqState): boolean {
  return st.output.some((p) => p.changes && p.detectsText);
}

/** The texts of a whole answer: content, refusal, tool-call arguments, and the model's reasoning
 * (`reasoning_content` / `reasoning`, or the thinking blocks of a native Messages endpoint). */
function outputSlots(body: unknown): Slot[] {
  const out: Slot[] = [];
  const choices = (body as { choices?: unknown })?.choices;
  if (!Array.isArray(choices)) return out;
  for (const c of choices as Record<string, unknown>[]) {
    if (!c || typeof c !== 'object') continue;
    if (typeof c.text === 'string') out.push(field(c, 'text'));
    const m = c.message as Record<string, unknown> | undefined;
    if (m && typeof m === 'object') {
      const thinking = thinkingWithText(m);
      if (thinking.length) for (const b of thinking) out.push(field(b, 'thinking'));
      else {
        if (typeof m.reasoning_content === 'string') out.push(field(m, 'reasoning_content'));
        if (typeof m.reasoning === 'string') out.push(field(m, 'reasoning'));
      }
      if (typeof m.content === 'string') out.push(field(m, 'content'));
      if (typeof m.refusal === 'string') out.push(field(m, 'refusal'));
      if (Array.isArray(m.tool_calls))
        for (const tc of m.tool_calls as { function?: Record<string, unknown> }[]) if (tc?.function && typeof tc.function.arguments === 'string') out.push(field(tc.function, 'arguments', false));
    }
  }
  return out;
}

interface ToolAcc {
  id?: unknown;
  type?: unknown;
  name?: unknown;
  args: string;
}

interface ChoiceState {
  text: TextScanner;
  /** the reasoning text (chat only): scanned on its own, released before the answer's text
   * (made when the first reasoning comes: most answers have none) */
  reasoning: TextScanner | undefined;
  /** the key the upstream said its reasoning with (`reasoning_content`, or newer vLLM's `reasoning`) */
  reasoningKey: 'reasoning_content' | 'reasoning';
  /** the reasoning as the upstream sent it, kept only for a guard_model judgement */
  rawReasoning: string;
  /** the tool calls being said (made when the first comes) */
  tools: Map<number, ToolAcc> | undefined;
  /** the content as the upstream sent it, kept only when a response_schema policy applies */
  raw: string;
  finished: boolean;
  /** it called tools: no content to check (as for a whole answer) */
  called: boolean;
}

type Chunk = { choices?: Record<string, unknown>[]; [k: string]: unknown };

// the verdicts of most events, not allocated per event (nothing changes them: frozen)
const PASS: EventVerdict = Object.freeze({ action: 'pass' });
const HELD: EventVerdict = Object.freeze({ action: 'replace', events: Object.freeze([]) as unknown as SSEEvent[] });


/** The output guard over one stream: per choice, a TextScanner over the content, and the tool
 * calls' arguments held whole until the choice finishes (then checked, redacted, sent as one delta). */
class StreamGuard {
  private readonly choices = new Map<number, ChoiceState>();
  /** the last parsed chunk (its id/model/created are those of events the guard makes at the end;
   * read from it only then) */
  private metaChunk: Chunk | undefined;
  /** the last chunk, when it took the fast path (its meta is read from it only if needed) */
  private metaSource: string | undefined;
  /** the fast path's template: the text of a content-only chunk before and after its content */
  private readonly template = new ContentTemplate();

  /** a response_schema policy applies and the request asked for a JSON schema: the content is kept */
  private readonly schema: boolean;
  /** the content is kept: for the schema, or for a guard_model policy's judgement of the held stream */
  private readonly keeps: boolean;
  /** a guard_model policy applies: the reasoning is kept too, for its judgement */
  private readonly judges: boolean;
  private kept = 0;
  private tooLarge = false;
  /** an enforced output policy may hold back or rewrite text: logprobs go (see dropsLogprobs) */
  private readonly dropLogprobs: boolean;

  constructor(
    private readonly kind: 'chat' | 'completions',
    private readonly st: ReqState,
    private readonly ctx: RequestContext,
  ) {
    const rf = ctx.body.response_format as { type?: unknown } | undefined;
    this.schema = kind === 'chat' && rf?.type === 'json_schema' && st.output.some((p) => p.responseSchema);
    this.judges = st.output.some((p) => p.guardModels.length);
    this.keeps = this.schema || this.judges;
    this.dropLogprobs = dropsLogprobs(st);
  }

  /** What a guard_model policy judges of a held stream: each finished choice's reasoning and content. */
  judgedTexts(): string[] {
    return [...this.choices.entries()]
      .filter(([, c]) => c.finished && !c.called)
      .sort((a, b) => a[0] - b[0])
      .flatMap(([, c]) => (c.rawReasoning ? [c.rawReasoning, c.raw] : [c.raw]));
  }

  /** The content of the choices that finished without calling tools (kept whole; see keep()). */
  texts(): string[] {
    return [...this.choices.entries()]
      .filter(([, c]) => c.finished && !c.called)
      .sort((a, b) => a[0] - b[0])
      .map(([, c]) => c.raw);
  }

  private choice(i: number): ChoiceState {
    let c = this.choices.get(i);
    if (!c) {
      this.choices.set(i, (c = { text: this.scanner(), reasoning: undefined, reasoningKey: 'reasoning_content', rawReasoning: '', tools: undefined, raw: '', finished: false, called: false }));
    }
    return c;
  }

  private scanner(): TextScanner {
    return new TextScanner(this.st.output, 'output', this.st.ph, this.st.hits, this.st.restore);
  }

  /** Keep content for the schema check, up to settings.limits.max_response_bytes (what a whole answer may be). */
  private keep(cs: ChoiceState, s: string, reasoning = false): void {
    if (!this.keeps || this.tooLarge) return;
    if (reasoning && !this.judges) return;
    this.kept += s.length;
    if (this.kept > this.ctx.snapshot.settings.limits.max_response_bytes) {
      this.tooLarge = true;
      for (const c of this.choices.values()) c.raw = c.rawReasoning = '';
      return;
    }
    if (reasoning) cs.rawReasoning += s;
    else cs.raw += s;
  }

  /** The streamed answer's content against the requested schema, once it finished. */
  private checkSchema(): void {
    if (!this.schema) return;
    const finished = this.texts();
    if (!finished.length) return; // a break: the stream ends with its own error
    const problem = this.tooLarge
      ? `the streamed answer is larger than settings.limits.max_response_bytes (${this.ctx.snapshot.settings.limits.max_response_bytes}): it cannot be checked against the requested JSON schema`
      : responseSchemaProblem(this.ctx.body, { choices: finished.map((content) => ({ message: { content } })) });
    // status 200: the answer's first content is already on its way to the client
    checkSchema(this.st, problem, this.ctx.status === 200);
  }

  event(ev: SSEEvent): EventVerdict {
    if (this.kind === 'chat') {
      const fast = this.contentOnly(ev);
      if (fast) return fast;
    }
    // parsed once: by the stream inspector when a decision of its own needed it (the role chunk,
    // the finish chunk), here otherwise; never changed (what is sent on is a copy)
    let j: Chunk;
    if (ev.parsed) j = ev.parsed as Chunk;
    else
      try {
        j = JSON.parse(ev.data) as Chunk;
      } catch {
        return PASS;
      }
    if (!j || typeof j !== 'object' || !Array.isArray(j.choices) || j.choices.length === 0 || 'error' in j) return PASS;
    this.metaChunk = j;
    this.metaSource = undefined;
    if (this.kind === 'chat') {
      this.template.learn(ev.data, j);
      // nothing the guard reads or changes (the role chunk that starts most streams): as it is
      if (j.choices.every((c) => this.saysNothing(c))) return PASS;
      const fin = this.finishOnly(ev, j);
      if (fin) return fin;
    }
    let changed = false;
    const kept: Record<string, unknown>[] = [];
    try {
      for (const [k, raw] of j.choices.entries()) {
        const c = { ...raw };
        const idx = typeof c.index === 'number' ? c.index : k;
        const cs = this.choice(idx);
        let holder: Record<string, unknown> | undefined = c;
        if (this.kind === 'chat') holder = c.delta && typeof c.delta === 'object' ? (c.delta = { ...(c.delta as Record<string, unknown>) }) : undefined;
        const textKey = this.kind === 'chat' ? 'content' : 'text';
        // the reasoning (chat only), released before the text: what it still holds goes out as
        // soon as the answer's text, a tool call, a thinking block's signature or the finish comes
        let thought = '';
        const rKey = this.kind !== 'chat' || !holder ? undefined : typeof holder.reasoning_content === 'string' ? 'reasoning_content' : typeof holder.reasoning === 'string' ? 'reasoning' : undefined;
        if (rKey) {
          const r = holder![rKey] as string;
          cs.reasoningKey = rKey;
          if (r) {
            this.keep(cs, r, true);
            thought = (cs.reasoning ??= this.scanner()).push(r);
          }
          changed = true;
        }
        let text = '';
        const incoming = holder?.[textKey];
        const hasText = typeof incoming === 'string' && incoming !== '';
        if (this.kind === 'chat' && (hasText || c.finish_reason || (holder && (holder.tool_calls !== undefined || holder.thinking_blocks !== undefined)))) {
          const rest = cs.reasoning?.end();
          if (rest) {
            thought += rest;
            changed = true;
          }
        }
        if (hasText) {
          this.keep(cs, incoming);
          text = cs.text.push(incoming);
          changed = true;
        }
        const tcs = this.kind === 'chat' ? holder?.tool_calls : undefined;
        let tools: unknown[] | undefined;
        if (Array.isArray(tcs) && tcs.length) {
          changed = true;
          cs.called = true;
          for (const [n, t] of (tcs as Record<string, unknown>[]).entries()) {
            const ti = typeof t?.index === 'number' ? t.index : n;
            const accs = (cs.tools ??= new Map<number, ToolAcc>());
            let acc = accs.get(ti);
            if (!acc) accs.set(ti, (acc = { args: '' }));
            if (t?.id !== undefined) acc.id = t.id;
            if (t?.type !== undefined) acc.type = t.type;
            const fn = t?.function as Record<string, unknown> | undefined;
            if (fn?.name !== undefined) acc.name = fn.name;
            if (typeof fn?.arguments === 'string') acc.args += fn.arguments;
          }
          delete holder!.tool_calls;
        }
        if (c.finish_reason) {
          cs.finished = true;
          text += cs.text.end();
          tools = this.flushTools(cs);
          changed = true;
        }
        if (holder) {
          if (rKey) delete holder[rKey];
          if (thought) holder[cs.reasoningKey] = thought;
          if (text) holder[textKey] = text;
          else if (typeof holder[textKey] === 'string') delete holder[textKey];
          if (tools) holder.tool_calls = tools;
        }
        if (this.dropLogprobs && c.logprobs) {
          c.logprobs = null;
          changed = true;
        }
        // a choice with nothing left to say this time is left out
        const rest = this.kind === 'chat' ? Object.keys((c.delta as object) ?? {}).length > 0 : typeof c.text === 'string' && c.text !== '';
        if (rest || c.finish_reason || c.logprobs) kept.push(this.kind === 'completions' && !c.text ? { ...c, text: '' } : c);
      }
    } catch (e) {
      throw this.blocked(e);
    }
    if (!changed) return PASS;
    const others = Object.keys(j).some((k) => k === 'usage' && j.usage);
    if (!kept.length && !others) return HELD;
    return { action: 'replace', events: [{ event: ev.event, id: ev.id, data: JSON.stringify({ ...j, choices: kept }) }] };
  }

  /** A chat choice the full path would pass unchanged, known without copying it: no finish
   * reason, no logprobs to drop, a delta with at most a role and an empty content. */
  private saysNothing(c: unknown): boolean {
    if (!c || typeof c !== 'object') return false;
    const o = c as Record<string, unknown>;
    if (o.finish_reason || (this.dropLogprobs && o.logprobs)) return false;
    return emptyDelta(o.delta);
  }

  /** The chunk that ends most streams — one choice's finish reason and nothing else to say (its
   * delta empty or only a role) — while that choice has only content held (no reasoning, no tool
   * calls): the held content is released as a content chunk of its own (the template's), and the
   * finish chunk goes on as it came, not copied and re-encoded. undefined: the full path. */
  private finishOnly(ev: SSEEvent, j: Chunk): EventVerdict | undefined {
    const tpl = this.template;
    const choices = j.choices!;
    if (choices.length !== 1 || (j.usage !== undefined && j.usage !== null)) return undefined;
    const c = choices[0]!;
    if (!c || typeof c !== 'object' || typeof c.finish_reason !== 'string' || !c.finish_reason || c.index !== tpl.index || (this.dropLogprobs && c.logprobs)) return undefined;
    if (!emptyDelta(c.delta)) return undefined;
    const cs = this.choices.get(tpl.index);
    if (!cs || cs.reasoning || cs.tools?.size) return undefined;
    cs.finished = true;
    let text: string;
    try {
      text = cs.text.end();
    } catch (err) {
      throw this.blocked(err);
    }
    if (!text) return PASS;
    return { action: 'replace', events: [{ event: ev.event, id: ev.id, data: tpl.with(text) }, ev] };
  }

  /** The fast path for the commonest event, a chunk that only says some content for one choice
   * (ContentTemplate): its content is cut out, not parsed, and the event sent on is the same text
   * with the released content. Anything else takes the full path (parse, decide, re-encode). */
  private contentOnly(ev: SSEEvent): EventVerdict | undefined {
    const tpl = this.template;
    const content = tpl.match(ev.data);
    if (content === undefined) return undefined;
    const cs = this.choice(tpl.index);
    if (cs.reasoning?.holding) return undefined; // the full path releases the reasoning first
    this.metaSource = ev.data;
    if (!content) return PASS;
    this.keep(cs, content);
    let text: string;
    try {
      text = cs.text.push(content);
    } catch (err) {
      throw this.blocked(err);
    }
    if (text === content) return PASS;
    if (!text) return HELD;
    return { action: 'replace', events: [{ event: ev.event, id: ev.id, data: tpl.with(text) }] };
  }

  /** The stream ended (with or without [DONE]): what the scanners still hold, as events. */
  end(): EventVerdict {
    this.st.outputDone = true;
    if (this.metaSource !== undefined) {
      try {
        this.metaChunk = JSON.parse(this.metaSource) as Chunk;
      } catch {
        // (it parsed when it came)
      }
      this.metaSource = undefined;
    }
    const m = this.metaChunk;
    const meta = m ? { id: m.id, object: m.object, created: m.created, model: m.model } : {};
    const events: SSEEvent[] = [];
    this.checkSchema();
    try {
      for (const [idx, cs] of this.choices) {
        // (also a choice that finished: text an upstream sent after its finish reason is not lost)
        const thought = cs.reasoning?.end() ?? '';
        const text = cs.text.end();
        const tools = this.flushTools(cs);
        if (!thought && !text && !tools) continue;
        const choice =
          this.kind === 'chat'
            ? { index: idx, delta: { ...(thought ? { [cs.reasoningKey]: thought } : {}), ...(text ? { content: text } : {}), ...(tools ? { tool_calls: tools } : {}) }, finish_reason: null }
            : { index: idx, text, finish_reason: null };
        events.push({ event: undefined, id: undefined, data: JSON.stringify({ ...meta, choices: [choice] }) });
      }
    } catch (e) {
      throw this.blocked(e);
    }
    return events.length ? { action: 'replace', events } : { action: 'pass' };
  }

  private flushTools(cs: ChoiceState): unknown[] | undefined {
    if (!cs.tools?.size) return undefined;
    const list = [...cs.tools.entries()].sort((a, b) => a[0] - b[0]);
    const r = evaluateTexts(this.st.output, 'output', list.map(([, t]) => t.args), this.st.ph, this.st.hits);
    if (r.blocked) throw new GuardBlock(r.blocked.policy, r.blocked.message);
    cs.tools.clear();
    return list.map(([index, t], i) => ({ index, ...(t.id !== undefined ? { id: t.id } : {}), ...(t.type !== undefined ? { type: t.type } : {}), function: { ...(t.name !== undefined ? { name: t.name } : {}), arguments: r.texts[i] } }));
  }

  private blocked(e: unknown): unknown {
    this.st.outputDone = true;
    if (e instanceof GuardBlock) return guardBlocked(e.policy, e.message);
    if (e instanceof GatewayError) return e;
    return e;
  }
}

/** A chat delta that says nothing: absent, or at most a role and an empty content. */
function emptyDelta(d: unknown): boolean {
  if (d === undefined || d === null) return true;
  if (typeof d !== 'object' || Array.isArray(d)) return false;
  for (const k of Object.keys(d)) {
    if (k === 'role') continue;
    if (k === 'content' && ((d as Record<string, unknown>).content === '' || (d as Record<string, unknown>).content === null)) continue;
    return false;
  }
  return true;
}
