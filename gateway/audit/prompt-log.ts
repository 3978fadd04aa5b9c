// Prompt and response logging (issue 12, section 5): off by default; per team
// (teams[].prompt_logging) metadata only, redacted (the guardrails' PII and secret detectors
// replace what they find by typed placeholders) or full. Text is sealed with the install secret
// (AES-256-GCM) before it reaches the database; rows expire after the team's retention_days.
//
// It plugs into the pipeline as guards that never decide anything: an input guard (first) keeps
// the prompt as the client sent it, an output guard (last) sees the answer as the client gets it
// (whole or streamed). On airlock:request:end the row is queued for the database and the
// request's audit summary gets `prompt_log: { mode, sha256 }` (the hash of what was logged,
// before sealing), so the signed audit trail and its exports vouch for every logged row.
// Reading a row's text is itself an audit record (admin-prompt-log.ts).
import type { DB } from '../store/db.js';
import type { Secrets } from '../store/secrets.js';
import type { PromptLoggingSpec } from '../config/schema.js';
import type { Snapshot } from '../engine/snapshot.js';
import type { InputGuard, OutputGuard, RequestContext } from '../engine/stages.js';
import type { SSEEvent } from '../engine/sse.js';
import { channels, on, type RequestEnd } from '../engine/events.js';
import { PII } from '../guardrails/detectors/pii.js';
import { SECRETS } from '../guardrails/detectors/secrets.js';
import { Placeholders, redact as redactText, resolveOverlaps } from '../guardrails/policy.js';
import type { Finding } from '../guardrails/detectors/types.js';
import { core } from './log.js';
import type { PromptLogEntryView } from '../wire.js';
import type { RecorderThread } from '../store/recorder.js';
import { gatewayError } from '../engine/errors.js';
import type { FromPromptLogWriter, ToPromptLogWriter } from './prompt-log-writer.js';
import type { AuditableContext } from './index.js';

export type PromptLogMode = PromptLoggingSpec['mode'];
/** the most characters of prompt or response text kept per request (the rest is cut, and marked) */
export const MAX_TEXT_CHARS = 1_000_000;
const DAY = 86_400_000;

/** The logging a request's team asks for (off for keys without a team). */
export function loggingOf(snap: Snapshot, ctx: RequestContext): PromptLoggingSpec | undefined {
  const team = ctx.key?.team;
  const p = team === undefined ? undefined : snap.teams.get(team)?.prompt_logging;
  return p && p.mode !== 'off' ? p : undefined;
}

const DETECTORS: ((t: string) => Finding[])[] = [...Object.values(PII), ...Object.values(SECRETS)];

/** The text with personal data and secrets replaced by typed placeholders ([EMAIL_1], [SECRET_1]);
 * `found` counts what was replaced, by type. */
export function redactForLog(text: string, ph: Placeholders, found: Record<string, number>): string {
  const findings = resolveOverlaps(DETECTORS.flatMap((d) => d(text)));
  if (!findings.length) return text;
  for (const f of findings) found[f.type] = (found[f.type] ?? 0) + 1;
  return redactText(text, findings, ph);
}

/** Every string inside a JSON value passed through fn (keys kept). */
function mapStrings(v: unknown, fn: (s: string) => string, depth = 0): unknown {
  if (typeof v === 'string') return fn(v);
  if (depth > 64) return null;
  if (Array.isArray(v)) return v.map((x) => mapStrings(x, fn, depth + 1));
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, mapStrings(x, fn, depth + 1)]));
  return v;
}

/** What a request asked: the chat messages (or Responses input, or completion prompt) and the system instructions. */
function promptOf(body: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k of ['messages', 'input', 'instructions', 'prompt', 'system', 'tools']) if (body[k] !== undefined) out[k] = body[k];
  return out;
}

interface Captured {
  spec: PromptLoggingSpec;
  prompt: Record<string, unknown>;
  /** the answer's text, per choice index (streamed: the deltas joined) */
  content: string[];
  toolCalls: unknown[];
  finish: (string | null)[];
  /** a whole (non-streamed) answer's messages */
  messages: unknown[] | undefined;
  chars: number;
  cut: boolean;
}

export interface PromptLogRow {
  request_id: string;
  ts: number;
  expires_at: number;
  mode: PromptLogMode;
  team: string | null;
  key_name: string | null;
  user: string | null;
  model: string | null;
  endpoint: string | null;
  status: number;
  meta: Record<string, unknown>;
  /** sealed */
  prompt: string | null;
  response: string | null;
  sha256: string;
}

export interface PromptLogOptions {
  log?: (line: string) => void;
  /** rows kept in memory while the database cannot be written */
  maxPending?: number;
}

export class PromptLog {
  private readonly captured = new WeakMap<RequestContext, Captured>();
  private pending: PromptLogRow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private dropped = 0;
  /** the recorders' writer thread, once startWriter() attached this part */
  private writer: RecorderThread | undefined;
  private inWriter = 0;
  private writerClosed: ((unwritten: number) => void) | undefined;
  /** false after a write failed, until one succeeds */
  writable = true;
  lastError: string | undefined;
  private lastRecheck = 0;

  constructor(
    private readonly db: DB,
    private readonly secrets: Secrets,
    private readonly snapshot: () => Snapshot,
    private readonly opts: PromptLogOptions = {},
  ) {}

  /** First of the input guards: the prompt as the client sent it. */
  readonly inputGuard: InputGuard = {
    name: 'prompt-log',
    appliesTo: (ctx) => loggingOf(this.snapshot(), ctx) !== undefined,
    check: (ctx) => {
      const snap = this.snapshot();
      const spec = loggingOf(snap, ctx);
      if (!spec) return;
      // settings.audit.fail_closed: admin_and_data — a request whose prompt log row cannot be written is not served
      if (snap.settings.audit.fail_closed === 'admin_and_data' && !this.canWrite())
        throw gatewayError('audit_unavailable', "The prompt log cannot be written right now, and this gateway is set to refuse requests it cannot record (the team's prompt logging is on); try again shortly.", {
          headers: { 'retry-after': '5' },
        });
      // copied now: later guards may redact ctx.body in place
      this.captured.set(ctx, { spec, prompt: structuredClone(promptOf(ctx.body)), content: [], toolCalls: [], finish: [], messages: undefined, chars: 0, cut: false });
    },
  };

  /** Last of the output guards: the answer as the client gets it. Always passes. */
  readonly outputGuard: OutputGuard = {
    name: 'prompt-log',
    appliesTo: (ctx) => this.captured.has(ctx),
    checkBody: (ctx, body) => {
      const c = this.captured.get(ctx);
      const choices = (body as { choices?: unknown } | null)?.choices;
      if (!c || !Array.isArray(choices)) return;
      c.messages = choices.map((ch: { message?: unknown; text?: unknown; finish_reason?: unknown }) => ({ message: ch.message ?? ch.text ?? null, finish_reason: ch.finish_reason ?? null }));
    },
    checkEvent: (ctx, ev: SSEEvent) => {
      const c = this.captured.get(ctx);
      if (!c || c.cut) return;
      let chunk: { choices?: { index?: number; delta?: { content?: unknown; tool_calls?: unknown[] }; text?: unknown; finish_reason?: string | null }[] };
      try {
        chunk = JSON.parse(ev.data) as typeof chunk;
      } catch {
        return;
      }
      for (const ch of chunk.choices ?? []) {
        const i = typeof ch.index === 'number' && ch.index >= 0 && ch.index < 128 ? ch.index : 0;
        const piece = typeof ch.delta?.content === 'string' ? ch.delta.content : typeof ch.text === 'string' ? ch.text : '';
        if (piece) {
          if (c.chars + piece.length > MAX_TEXT_CHARS) {
            c.cut = true;
            return;
          }
          c.chars += piece.length;
          c.content[i] = (c.content[i] ?? '') + piece;
        }
        if (Array.isArray(ch.delta?.tool_calls)) c.toolCalls.push(...ch.delta.tool_calls.slice(0, 128));
        if (ch.finish_reason) c.finish[i] = ch.finish_reason;
      }
    },
  };

  /** Subscribe to the pipeline's request:end (before the audit recorder, so its summary names the row). */
  subscribe(pipeline: object): () => void {
    return on<RequestEnd>(channels.requestEnd, pipeline, (m) => this.finish(m.ctx));
  }

  /** Build the row of a finished request, queue it, and name it in the request's audit summary. */
  finish(ctx: RequestContext): PromptLogRow | undefined {
    const c = this.captured.get(ctx);
    if (!c) return undefined;
    this.captured.delete(ctx);
    const mode = c.spec.mode;
    const response = c.messages !== undefined ? { choices: c.messages } : { choices: Array.from(c.content, (t, i) => ({ message: { role: 'assistant', content: t ?? '' }, finish_reason: c.finish[i] ?? null })), ...(c.toolCalls.length ? { tool_calls: c.toolCalls } : {}) };
    const promptText = core.canonical(c.prompt);
    const responseText = core.canonical(response);
    const meta: Record<string, unknown> = {
      messages: Array.isArray(c.prompt.messages) ? c.prompt.messages.length : Array.isArray(c.prompt.input) ? c.prompt.input.length : undefined,
      prompt_chars: promptText.length,
      response_chars: responseText.length,
      stream: ctx.stream,
      prompt_tokens: ctx.promptTokens,
      completion_tokens: ctx.completionTokens,
      finish_reasons: c.messages ? c.messages.map((m) => (m as { finish_reason: unknown }).finish_reason) : c.finish,
      error_class: ctx.errorClass,
    };
    if (c.cut) meta.response_truncated = true;
    let logged: { prompt: unknown; response: unknown } | undefined;
    if (mode === 'full') logged = { prompt: c.prompt, response };
    else if (mode === 'redacted') {
      const ph = new Placeholders();
      const found: Record<string, number> = {};
      const r = (s: string) => redactForLog(s, ph, found);
      logged = { prompt: mapStrings(c.prompt, r), response: mapStrings(response, r) };
      meta.redacted = found;
    }
    // a prompt over the limit is kept as the start of its JSON text (still valid JSON: a string)
    const clip = (s: string) => {
      if (s.length <= MAX_TEXT_CHARS) return s;
      meta.prompt_truncated = true;
      return core.canonical({ truncated_json: s.slice(0, MAX_TEXT_CHARS) });
    };
    const p = logged ? clip(core.canonical(logged.prompt)) : null;
    const a = logged ? core.canonical(logged.response) : null;
    const cleanMeta = JSON.parse(JSON.stringify(meta)) as Record<string, unknown>;
    const sha256 = core.sha256(core.canonical({ request_id: ctx.id, mode, meta: cleanMeta, prompt: p, response: a }));
    const row: PromptLogRow = {
      request_id: ctx.id,
      ts: ctx.ts,
      expires_at: ctx.ts + c.spec.retention_days * DAY,
      mode,
      team: ctx.key?.team ?? null,
      key_name: ctx.key?.name ?? null,
      user: ctx.user ?? null,
      model: ctx.requestedModel ?? null,
      endpoint: ctx.endpoint ?? null,
      status: ctx.status,
      meta: cleanMeta,
      prompt: p === null ? null : this.secrets.encrypt(p),
      response: a === null ? null : this.secrets.encrypt(a),
      sha256,
    };
    const ext = ctx as RequestContext & AuditableContext;
    ext.audit = { ...ext.audit, prompt_log: { mode, sha256 } };
    this.enqueue(row);
    return row;
  }

  private enqueue(row: PromptLogRow): void {
    if (this.pending.length + this.inWriter >= (this.opts.maxPending ?? 10_000)) {
      this.dropped++;
      return;
    }
    this.pending.push(row);
    if (!this.timer) {
      this.timer = setTimeout(() => this.flush(), 50);
      this.timer.unref();
    }
  }

  /** Write rows in the recorders' writer thread (its own connection and transactions) instead of this thread. */
  startWriter(thread: RecorderThread): void {
    thread.attach('prompt-log', { retryMs: 1000 }, {
      onMessage: (raw) => {
        const m = raw as FromPromptLogWriter;
        if (m.type === 'written') {
          this.inWriter -= m.count;
          if (!this.writable) this.opts.log?.('prompt log can be written again');
          this.writable = true;
          this.lastError = undefined;
        } else if (m.type === 'failed') this.fail(m.error);
        else this.writerClosed?.(m.unwritten);
      },
      onLost: (e) => {
        this.opts.log?.(`prompt log writer failed (${e.message}); ${this.inWriter} row(s) lost`);
        this.inWriter = 0;
        this.writerClosed?.(0);
      },
    });
    this.writer = thread;
  }

  private fail(error: string): void {
    if (this.writable) this.opts.log?.(`prompt log cannot be written: ${error}`);
    this.writable = false;
    this.lastError = error;
  }

  /** Whether rows can be written now: after a failure, looked at again at most once a second (the
   * writer retries what it holds, or probes), so a refusal based on it ends once the database recovers. */
  canWrite(): boolean {
    if (this.writable) return true;
    const now = Date.now();
    if (now - this.lastRecheck >= 1000) {
      this.lastRecheck = now;
      if (this.writer) this.writer.post('prompt-log', { type: 'probe' } satisfies ToPromptLogWriter);
      else this.flush();
    }
    return this.writable;
  }

  /** Write what is queued, then detach from the writer thread. */
  async stopWriter(): Promise<void> {
    const t = this.writer;
    if (!t) return this.close();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.writer = undefined;
    this.post(t);
    const unwritten = await t.stopPart('prompt-log', { type: 'close' } satisfies ToPromptLogWriter, (resolve) => {
      this.writerClosed = resolve;
    });
    this.writerClosed = undefined;
    if (unwritten) this.opts.log?.(`prompt log: ${unwritten} row(s) could not be written before the stop`);
  }

  private post(t: RecorderThread): void {
    const rows = this.pending.splice(0);
    if (!rows.length) return;
    this.inWriter += rows.length;
    t.post('prompt-log', { type: 'rows', rows } satisfies ToPromptLogWriter);
  }

  /** Write what is queued (handed to the writer thread when there is one); false when the database
   * refused (the rows stay queued, retried in a second). */
  flush(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.dropped) {
      this.opts.log?.(`prompt log: ${this.dropped} row(s) dropped while the database could not be written`);
      this.dropped = 0;
    }
    if (this.writer) {
      this.post(this.writer);
      return this.writable;
    }
    if (!this.pending.length) return true;
    const batch = this.pending.splice(0);
    const prev = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma('busy_timeout = 100');
    try {
      const ins = this.db.prepare(
        `INSERT OR REPLACE INTO prompt_log (request_id, ts, expires_at, mode, team, key_name, user, model, endpoint, status, meta, prompt, response, sha256) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      );
      this.db.transaction(() => {
        for (const r of batch) ins.run(r.request_id, r.ts, r.expires_at, r.mode, r.team, r.key_name, r.user, r.model, r.endpoint, r.status, JSON.stringify(r.meta), r.prompt, r.response, r.sha256);
      })();
      this.writable = true;
      return true;
    } catch (e) {
      this.fail((e as Error).message);
      this.opts.log?.(`prompt log: could not write ${batch.length} row(s) (${(e as Error).message}); retrying`);
      this.pending.unshift(...batch);
      this.timer = setTimeout(() => this.flush(), 1000);
      this.timer.unref();
      return false;
    } finally {
      this.db.pragma(`busy_timeout = ${prev}`);
    }
  }

  /** Delete rows past their expiry; returns how many. */
  purge(now = Date.now()): number {
    this.flush();
    return this.db.prepare(`DELETE FROM prompt_log WHERE expires_at <= ?`).run(now).changes;
  }

  /** Newest first, without text. */
  list(f: { team?: string; key?: string; request_id?: string; from?: number; until?: number; before?: number; limit: number }): PromptLogEntryView[] {
    this.flush();
    const where: string[] = [];
    const args: (string | number)[] = [];
    const eq = (col: string, v: string | number | undefined) => {
      if (v === undefined) return;
      where.push(`${col} = ?`);
      args.push(v);
    };
    eq('team', f.team);
    eq('key_name', f.key);
    eq('request_id', f.request_id);
    const cmp = (sql: string, v: number | undefined) => {
      if (v === undefined) return;
      where.push(sql);
      args.push(v);
    };
    cmp('ts >= ?', f.from);
    cmp('ts <= ?', f.until);
    cmp('ts < ?', f.before);
    const rows = this.db
      .prepare(`SELECT request_id, ts, expires_at, mode, team, key_name, user, model, endpoint, status, meta, sha256 FROM prompt_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ts DESC, request_id DESC LIMIT ?`)
      .all(...args, f.limit) as (Omit<PromptLogRow, 'meta' | 'prompt' | 'response'> & { meta: string })[];
    return rows.map(viewOf);
  }

  /** One row with its text unsealed; undefined when there is none. */
  get(requestId: string): PromptLogEntryView | undefined {
    this.flush();
    const r = this.db.prepare(`SELECT * FROM prompt_log WHERE request_id = ?`).get(requestId) as (Omit<PromptLogRow, 'meta'> & { meta: string }) | undefined;
    if (!r) return undefined;
    const open = (s: string | null) => (s === null ? null : (JSON.parse(this.secrets.decrypt(s)) as unknown));
    return { ...viewOf(r), prompt: open(r.prompt), response: open(r.response) };
  }

  close(): void {
    this.flush();
  }
}

function viewOf(r: Omit<PromptLogRow, 'meta' | 'prompt' | 'response'> & { meta: string }): PromptLogEntryView {
  return {
    request_id: r.request_id,
    ts: new Date(r.ts).toISOString(),
    expires_at: new Date(r.expires_at).toISOString(),
    mode: r.mode,
    team: r.team,
    key: r.key_name,
    user: r.user,
    model: r.model,
    endpoint: r.endpoint,
    status: r.status,
    meta: JSON.parse(r.meta) as Record<string, unknown>,
    sha256: r.sha256,
  };
}

/** The sha256 a row must carry (what the audit summary recorded): recompute from the unsealed row. */
export function promptLogHash(v: { request_id: string; mode: string; meta: Record<string, unknown>; prompt?: unknown; response?: unknown }): string {
  return core.promptRowHash(v);
}

/** For an audit export with the logged prompts: the rows of these requests, text unsealed (what
 * verify.mjs hashes against the request records). */
export function promptRowsFor(db: DB, secrets: Secrets): (requestIds: string[]) => Iterable<Record<string, unknown>> {
  return function* (ids) {
    for (let i = 0; i < ids.length; i += 500) {
      const part = ids.slice(i, i + 500);
      const rows = db.prepare(`SELECT * FROM prompt_log WHERE request_id IN (${part.map(() => '?').join(',')})`).all(...part) as (Omit<PromptLogRow, 'meta'> & { meta: string })[];
      const order = new Map(part.map((id, n) => [id, n]));
      rows.sort((a, b) => order.get(a.request_id)! - order.get(b.request_id)!);
      for (const r of rows) {
        const open = (s: string | null) => (s === null ? null : (JSON.parse(secrets.decrypt(s)) as unknown));
        yield { request_id: r.request_id, ts: new Date(r.ts).toISOString(), mode: r.mode, team: r.team, key: r.key_name, user: r.user, model: r.model, endpoint: r.endpoint, status: r.status, meta: JSON.parse(r.meta) as unknown, prompt: open(r.prompt), response: open(r.response), sha256: r.sha256 };
      }
    }
  };
}
