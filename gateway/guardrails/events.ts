// Guardrail decisions, recorded: counted in metrics at once, and written to the
// guardrail_events table in batches. The writes use their own connection with no busy wait
// (busy_timeout 0), opened at the first event: a database another process holds busy never
// blocks the event loop; the batch stays in memory (bounded) and is tried again.
import diagnostics_channel from 'node:diagnostics_channel';
import Database from 'better-sqlite3';
import { Counter, type Registry } from 'prom-client';
import type { DB } from '../store/db.js';
import type { GuardrailEventRow } from '../wire.js';
import type { GuardEvent } from './engine.js';
import type { RequestContext } from '../engine/stages.js';

const FLUSH_MS = 100;
const MAX_PENDING = 100_000;

/** airlock:guardrail:events — every recorded decision ({ source, events: GuardEvent[], ctx? }):
 * `ctx` is the request whose decisions they are (absent for a tool call's) */
export const guardrailEventsChannel = diagnostics_channel.channel('airlock:guardrail:events');

export class GuardrailRecorder {
  private queue: GuardEvent[] = [];
  private timer: NodeJS.Timeout | undefined;
  private conn: Database.Database | undefined;
  private insert: Database.Statement | undefined;
  dropped = 0;
  private readonly hits: Counter<'policy' | 'direction' | 'action' | 'mode' | 'outcome'>;

  constructor(
    private readonly file: string,
    registry: Registry,
    private readonly log: (line: string) => void,
  ) {
    this.hits = new Counter({
      name: 'airlock_guardrail_hits_total',
      help: 'Guardrail decisions that found something, by policy, direction, action, mode and outcome (blocked|redacted|flagged|shadow)',
      labelNames: ['policy', 'direction', 'action', 'mode', 'outcome'] as const,
      registers: [registry],
    });
  }

  record = (events: GuardEvent[], ctx?: RequestContext): void => {
    // tracing (gateway/telemetry/) makes a span of each decision, on the request's or tool call's trace
    if (guardrailEventsChannel.hasSubscribers) guardrailEventsChannel.publish({ source: this, events, ctx });
    for (const e of events) {
      this.hits.inc({ policy: e.policy, direction: e.direction, action: e.action, mode: e.mode, outcome: outcomeOf(e) });
      if (this.queue.length >= MAX_PENDING) {
        if (this.dropped++ % 1000 === 0) this.log(`guardrail events: ${MAX_PENDING} wait to be written; ${this.dropped} dropped so far`);
        continue;
      }
      this.queue.push(e);
    }
    if (!this.timer && this.queue.length) {
      this.timer = setTimeout(() => this.flush(), FLUSH_MS);
      this.timer.unref();
    }
  };

  /** Write what is queued (false: the database was busy; the events stay queued). */
  flush(): boolean {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (!this.queue.length) return true;
    try {
      if (!this.conn) {
        this.conn = new Database(this.file, { fileMustExist: true });
        this.conn.pragma('busy_timeout = 0');
        this.insert = this.conn.prepare(
          `INSERT INTO guardrail_events (ts, request_id, tool_call_id, policy, direction, action, mode, blocked, complete, count, detectors, key_name, team, model) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
        );
      }
      const rows = this.queue;
      const ins = this.insert!;
      this.conn.transaction(() => {
        for (const e of rows)
          ins.run(e.ts, e.requestId ?? null, e.toolCallId ?? null, e.policy, e.direction, e.action, e.mode, e.blocked ? 1 : 0, e.complete ? 1 : 0, e.count, JSON.stringify(e.detectors), e.key ?? null, e.team ?? null, e.model ?? null);
      })();
      this.queue = [];
      return true;
    } catch (e) {
      this.log(`guardrail events not written yet (${(e as Error).message}); retrying`);
      this.timer = setTimeout(() => this.flush(), 1000);
      this.timer.unref();
      return false;
    }
  }

  close(): void {
    this.flush();
    if (this.timer) clearTimeout(this.timer);
    this.conn?.close();
    this.conn = undefined;
  }
}

export function outcomeOf(e: { mode: string; action: string; blocked: boolean }): 'blocked' | 'redacted' | 'flagged' | 'shadow' {
  if (e.mode === 'shadow') return 'shadow';
  if (e.action === 'block') return 'blocked';
  return e.action === 'redact' ? 'redacted' : 'flagged';
}

/** A row as stored: the wire row's fields, with numbers for time and flags, JSON for the counts. */
type EventDbRow = Omit<GuardrailEventRow, 'ts' | 'outcome' | 'blocked' | 'complete' | 'detectors' | 'key'> & {
  ts: number;
  blocked: number;
  complete: number;
  detectors: string;
  key_name: string | null;
};

/** The most recent events, newest first. */
export function recentGuardrailEvents(db: DB, q: { limit: number; before?: number; policy?: string; request_id?: string }): GuardrailEventRow[] {
  const where: string[] = [];
  const args: (string | number)[] = [];
  const add = (clause: string, v: string | number) => {
    where.push(clause);
    args.push(v);
  };
  if (q.before !== undefined) add('id < ?', q.before);
  if (q.policy) add('policy = ?', q.policy);
  if (q.request_id) add('request_id = ?', q.request_id);
  const rows = db.prepare(`SELECT * FROM guardrail_events ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY id DESC LIMIT ?`).all(...args, q.limit) as EventDbRow[];
  return rows.map((r) => ({
    id: r.id,
    ts: new Date(r.ts).toISOString(),
    request_id: r.request_id,
    tool_call_id: r.tool_call_id,
    policy: r.policy,
    direction: r.direction,
    action: r.action,
    mode: r.mode,
    outcome: outcomeOf({ mode: r.mode, action: r.action, blocked: !!r.blocked }),
    blocked: !!r.blocked,
    complete: !!r.complete,
    count: r.count,
    detectors: JSON.parse(r.detectors) as Record<string, number>,
    key: r.key_name,
    team: r.team,
    model: r.model,
  }));
}
