// The tool calls a model asks for, in the request's audit summary (issue 12, section 1): each
// call's id and function name, from a whole answer (choices[].message.tool_calls, or the legacy
// function_call) or a stream (the deltas, joined per choice and call index). /v1/messages and
// /v1/responses answers pass the output guards in chat form too (engine/anthropic/native.ts,
// translate.ts), so a Messages tool_use is recorded the same way.
//
// Arguments are recorded only where the team's prompt logging allows it: `full` keeps them as
// the model sent them, `redacted` through the same detectors as the prompt log; `metadata` and
// off record only their length. The guard applies only to requests that offer the model tools
// (a model cannot call what it was not given), so every other stream keeps the plain byte path;
// among a stream's events only those that name tool_calls are decoded.
import type { Snapshot } from '../engine/snapshot.js';
import type { OutputGuard, RequestContext } from '../engine/stages.js';
import type { SSEEvent } from '../engine/sse.js';
import { channels, on, type RequestEnd } from '../engine/events.js';
import { Placeholders } from '../guardrails/policy.js';
import type { AuditableContext } from './index.js';
import { loggingOf, redactForLog } from './prompt-log.js';

/** the most tool calls recorded per request (the rest are counted) */
export const MAX_RECORDED_CALLS = 128;
/** the most characters of one call's arguments recorded (where prompt logging allows them) */
export const MAX_ARGUMENT_CHARS = 16_384;

interface Call {
  choice: number;
  index: number;
  id: string | undefined;
  name: string;
  args: string;
}

interface State {
  attempt: number;
  calls: Map<string, Call>;
  extra: number;
}

/** What one recorded call says in the summary. */
export interface ToolCallRecord {
  id?: string;
  name: string;
  choice?: number;
  arguments_chars: number;
  arguments?: string;
  arguments_truncated?: true;
  redacted?: Record<string, number>;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Does the request give the model tools it may call (chat `tools`, legacy `functions`)? */
function offersTools(body: Record<string, unknown>): boolean {
  return (Array.isArray(body.tools) && body.tools.length > 0) || (Array.isArray(body.functions) && body.functions.length > 0);
}

export class ModelToolCalls {
  private readonly state = new WeakMap<RequestContext, State>();

  constructor(private readonly snapshot: () => Snapshot) {}

  private stateOf(ctx: RequestContext): State {
    let s = this.state.get(ctx);
    // a new attempt answers afresh: what an earlier one asked for never reached the client
    if (!s || s.attempt !== ctx.attempts) {
      s = { attempt: ctx.attempts, calls: new Map(), extra: 0 };
      this.state.set(ctx, s);
    }
    return s;
  }

  private add(s: State, choice: number, index: number, part: { id?: unknown; name?: unknown; args?: unknown }): void {
    const key = `${choice}:${index}`;
    let c = s.calls.get(key);
    if (!c) {
      if (s.calls.size >= MAX_RECORDED_CALLS) {
        // counted once, at its first delta
        if (str(part.id) !== undefined || str(part.name) !== undefined) s.extra++;
        return;
      }
      c = { choice, index, id: undefined, name: '', args: '' };
      s.calls.set(key, c);
    }
    const id = str(part.id);
    if (id) c.id ??= id;
    const name = str(part.name);
    // the name comes whole in the first delta (some servers repeat it; pieces are joined)
    if (name && name !== c.name) c.name += name;
    const args = str(part.args);
    if (args && c.args.length <= MAX_ARGUMENT_CHARS * 4) c.args += args;
  }

  /** Last output guards' neighbour: sees the answer as the client gets it. Always passes. */
  readonly outputGuard: OutputGuard = {
    name: 'audit-tool-calls',
    appliesTo: (ctx) => this.snapshot().settings.audit.data_plane && offersTools(ctx.body),
    checkBody: (ctx, body) => {
      const choices = (body as { choices?: unknown } | null)?.choices;
      const s = this.stateOf(ctx);
      s.calls.clear();
      s.extra = 0;
      if (!Array.isArray(choices)) return;
      choices.forEach((ch: { index?: unknown; message?: { tool_calls?: unknown; function_call?: { name?: unknown; arguments?: unknown } } } | null, n) => {
        const choice = typeof ch?.index === 'number' ? ch.index : n;
        const calls = ch?.message?.tool_calls;
        if (Array.isArray(calls))
          calls.forEach((tc: { id?: unknown; function?: { name?: unknown; arguments?: unknown } } | null, j) => this.add(s, choice, j, { id: tc?.id, name: tc?.function?.name, args: tc?.function?.arguments }));
        const fc = ch?.message?.function_call;
        if (fc && typeof fc === 'object') this.add(s, choice, -1, { name: fc.name, args: fc.arguments });
      });
    },
    checkEvent: (ctx, ev: SSEEvent) => {
      // only the events that carry a call are decoded
      if (!ev.data.includes('"tool_calls"') && !ev.data.includes('"function_call"')) return;
      let chunk: { choices?: { index?: unknown; delta?: { tool_calls?: unknown; function_call?: { name?: unknown; arguments?: unknown } } }[] };
      try {
        chunk = JSON.parse(ev.data) as typeof chunk;
      } catch {
        return;
      }
      if (!Array.isArray(chunk?.choices)) return;
      const s = this.stateOf(ctx);
      for (const ch of chunk.choices) {
        const choice = typeof ch?.index === 'number' ? ch.index : 0;
        const calls = ch?.delta?.tool_calls;
        if (Array.isArray(calls))
          calls.forEach((tc: { index?: unknown; id?: unknown; function?: { name?: unknown; arguments?: unknown } } | null, j) =>
            this.add(s, choice, typeof tc?.index === 'number' ? tc.index : j, { id: tc?.id, name: tc?.function?.name, args: tc?.function?.arguments }),
          );
        const fc = ch?.delta?.function_call;
        if (fc && typeof fc === 'object') this.add(s, choice, -1, { name: fc.name, args: fc.arguments });
      }
    },
  };

  /** The calls of a finished request, as its summary records them (undefined: none). */
  finish(ctx: RequestContext): { calls: ToolCallRecord[]; unrecorded: number } | undefined {
    const s = this.state.get(ctx);
    if (!s) return undefined;
    this.state.delete(ctx);
    if (!s.calls.size) return undefined;
    const mode = loggingOf(this.snapshot(), ctx)?.mode;
    const calls = [...s.calls.values()].sort((a, b) => a.choice - b.choice || a.index - b.index);
    const out = calls.map((c): ToolCallRecord => {
      const r: ToolCallRecord = { ...(c.id !== undefined ? { id: c.id } : {}), name: c.name, ...(c.choice !== 0 ? { choice: c.choice } : {}), arguments_chars: c.args.length };
      if (mode === 'full' || mode === 'redacted') {
        let a = c.args.length > MAX_ARGUMENT_CHARS ? c.args.slice(0, MAX_ARGUMENT_CHARS) : c.args;
        if (c.args.length > MAX_ARGUMENT_CHARS) r.arguments_truncated = true;
        if (mode === 'redacted') {
          const found: Record<string, number> = {};
          a = redactForLog(a, new Placeholders(), found);
          if (Object.keys(found).length) r.redacted = found;
        }
        r.arguments = a;
      }
      return r;
    });
    return { calls: out, unrecorded: s.extra };
  }

  /** On airlock:request:end (before the audit recorder): the calls go into the request's summary. */
  subscribe(pipeline: object): () => void {
    return on<RequestEnd>(channels.requestEnd, pipeline, (m) => {
      const r = this.finish(m.ctx);
      if (!r) return;
      const ext = m.ctx as RequestContext & AuditableContext;
      ext.toolCalls = r.calls;
      if (r.unrecorded) ext.audit = { ...ext.audit, tool_calls_unrecorded: r.unrecorded };
    });
  }
}
