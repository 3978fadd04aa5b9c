// The audit log: an append-only hash chain in SQLite (migration audit-trail), with checkpoints
// signed by the audit key. Each record's hash covers its sequence number, time, kind, actor,
// source, data and the previous record's hash; the database refuses a record that does not
// follow the last one, and any change or deletion (migrations.ts).
//
// Admin actions are appended at once (append(): the caller learns when it failed); data-plane
// summaries are queued and written in batches off the request's path (enqueue()).
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { DB } from '../store/db.js';
import { auditCore, type AuditRecord } from './core.js';
import type { AuditKey } from './key.js';
import type { AuditVerifyBody } from '../wire.js';
import type { FromAuditWriter, ToAuditWriter } from './writer.js';
import { RecorderThread } from '../store/recorder.js';

export const core = auditCore({ crypto, fs, path });
export type { AuditRecord };

export interface AuditEntry {
  kind: string;
  actor: string;
  /** where it came from: an address, "cli", "data-plane" */
  source: string;
  data: Record<string, unknown>;
  /** when it happened (ms since the epoch); default: now */
  at?: number;
}

/** Queued entries as they wait and as the writer thread gets them: flat, ENCODED_FIELDS values
 * per entry (kind, actor, source, at, the data's canonical encoding), encoded by enqueue().
 * Encoding here and cloning strings costs a fraction of cloning each entry's data object to the
 * thread and encoding it there. */
export type EncodedValue = string | number;
export const ENCODED_FIELDS = 5;

export interface AuditFilter {
  /** a kind, or a prefix ending in "." (e.g. "admin.") */
  kind?: string;
  actor?: string;
  /** ms since the epoch */
  from?: number;
  until?: number;
  before_seq?: number;
  limit: number;
}

export interface Checkpoint {
  seq: number;
  hash: string;
  ts: string;
  key_fingerprint: string;
  signature: string;
}

/** The live log checked (GET /audit/verify adds the key's fingerprint). */
export type LiveVerdict = Omit<AuditVerifyBody, 'key_fingerprint'>;

interface Row {
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  source: string;
  data: string;
  prev_hash: string;
  hash: string;
}

/** how long a queued write or a probe waits for another writer's lock (ms) */
const QUICK_BUSY_MS = 100;

const encodeEntry = (e: AuditEntry): EncodedValue[] => [e.kind, e.actor, e.source, e.at ?? Date.now(), core.canonical(e.data ?? {})];

/** The record that says how many queued records were dropped. */
const droppedRecord = (count: number, reason: string) => encodeEntry({ kind: 'audit.dropped', actor: 'airlock', source: 'gateway', data: { count, reason } });

export const toRecord = (r: Row): AuditRecord => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> });

/** The payload a checkpoint signs. */
export const checkpointPayload = (c: Omit<Checkpoint, 'signature'>) => core.canonical({ seq: c.seq, hash: c.hash, ts: c.ts, key_fingerprint: c.key_fingerprint });

export interface AuditLogOptions {
  /** a signed checkpoint every this many records */
  checkpointEvery?: () => number;
  log?: (line: string) => void;
  /** queued data-plane summaries kept while the database cannot be written */
  maxPending?: number;
}

export class AuditLog {
  /** queued records, encoded when queued (ENCODED_FIELDS values each): a queued record keeps its
   * canonical data string alive, not the summary object it was made from (fewer and smaller
   * survivors for the scavenges before its batch is handed over) */
  private pending: EncodedValue[] = [];
  private timer: NodeJS.Timeout | undefined;
  private dropped = 0;
  /** false after a write failed, until one succeeds */
  writable = true;
  lastError: string | undefined;

  constructor(
    readonly db: DB,
    readonly key: AuditKey,
    private readonly opts: AuditLogOptions = {},
  ) {}

  /** The last record's sequence number and hash (an archived one when the log is empty). */
  head(): { seq: number; hash: string } {
    const r = this.db.prepare(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).get() as { seq: number; hash: string } | undefined;
    if (r) return r;
    const a = this.archivedThrough();
    return a ? { seq: a.through_seq, hash: a.last_hash } : { seq: 0, hash: core.GENESIS };
  }

  archivedThrough(): { through_seq: number; last_hash: string } | undefined {
    return this.db.prepare(`SELECT through_seq, last_hash FROM audit_archives ORDER BY through_seq DESC LIMIT 1`).get() as { through_seq: number; last_hash: string } | undefined;
  }

  /** Queued records go to the recorders' writer thread (startWriter()) instead of this thread's connection. */
  private writer: RecorderThread | undefined;
  private inWriter = 0;
  private writerClosed: ((unwritten: number) => void) | undefined;

  /** Write queued records (data-plane summaries) in the recorders' writer thread (`thread`, or
   * one of its own), which has its own connection. */
  startWriter(dataDir: string, thread?: RecorderThread): void {
    const t = thread ?? new RecorderThread(this.db.name, { dataDir, log: this.opts.log });
    t.attach('audit', { dataDir, retryMs: 1000 }, {
      onMessage: (raw) => {
        const m = raw as FromAuditWriter;
        if (m.type === 'written') {
          this.inWriter -= m.count;
          if (!this.writable) this.opts.log?.('audit log can be written again');
          this.writable = true;
          this.lastError = undefined;
        } else if (m.type === 'failed') this.fail(new Error(m.error));
        else this.writerClosed?.(m.unwritten);
      },
      onLost: (e) => {
        this.opts.log?.(`audit writer failed (${e.message}); ${this.inWriter} queued record(s) lost`);
        this.dropped += this.inWriter;
        this.inWriter = 0;
        this.writerClosed?.(0);
      },
    });
    this.writer = t;
  }

  /** Write what is queued, then detach from the writer thread. */
  async stopWriter(): Promise<void> {
    const t = this.writer;
    if (!t) return;
    this.writer = undefined;
    this.post(t);
    const unwritten = await t.stopPart('audit', { type: 'close' } satisfies ToAuditWriter, (resolve) => {
      this.writerClosed = resolve;
    });
    this.writerClosed = undefined;
    if (unwritten) this.opts.log?.(`audit: ${unwritten} queued record(s) could not be written before the stop`);
  }

  private post(t: RecorderThread): void {
    const values = this.pending;
    this.pending = [];
    if (this.dropped) {
      values.push(...droppedRecord(this.dropped, 'the queue was full or the writer failed while the audit log could not be written'));
      this.dropped = 0;
    }
    const n = values.length / ENCODED_FIELDS;
    if (!n) return;
    this.inWriter += n;
    t.post('audit', { type: 'entries', values, checkpointEvery: this.opts.checkpointEvery?.() ?? 1000 } satisfies ToAuditWriter);
  }

  /** Write records now in this thread's connection (after nothing else: queued ones stay queued). */
  writeNow(entries: AuditEntry[]): AuditRecord[] {
    return this.write(entries);
  }

  /** Write encoded entries (post()'s) now in this thread's connection: the writer thread's entry point. */
  writeEncoded(values: readonly EncodedValue[], pace?: () => void): void {
    this.guarded(() => this.db.transaction(() => this.insertRows(values, false, pace)).immediate());
  }

  /** Write one record now (after anything queued in this thread); throws when it cannot be written. */
  append(e: AuditEntry): AuditRecord {
    // queued records stay in their own order: with a writer thread they go there, else first here
    if (this.writer) this.post(this.writer);
    const queued = this.pending;
    this.pending = [];
    try {
      return this.guarded(() =>
        this.db
          .transaction(() => {
            if (queued.length) this.insertRows(queued);
            return this.insertChain([e])[0]!;
          })
          .immediate(),
      );
    } catch (err) {
      // the queued ones stay queued; the caller's own record is the caller's to handle
      this.pending = queued.concat(this.pending);
      throw err;
    }
  }

  /** Queue a record; written within a moment, in one transaction with its neighbours. */
  enqueue(e: AuditEntry): void {
    const max = this.opts.maxPending ?? 100_000;
    if (this.pending.length / ENCODED_FIELDS + this.inWriter >= max) {
      this.dropped++;
      return;
    }
    let data: string;
    try {
      data = core.canonical(e.data ?? {});
    } catch (err) {
      // data that has no canonical encoding (a non-finite number, a function) would fail the
      // whole batch on every retry: that record alone is left out, and said
      this.opts.log?.(`audit: a ${e.kind} record cannot be encoded (${(err as Error).message}); it is not written`);
      return;
    }
    this.pending.push(e.kind, e.actor, e.source, e.at ?? Date.now(), data);
    if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.flush();
      }, this.writable ? 50 : 1000);
      this.timer.unref();
    }
  }

  /** Write what is queued; false when the database refused (the records stay queued). */
  flush(): boolean {
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (this.writer) {
      this.post(this.writer);
      return this.writable;
    }
    const queued = this.pending;
    this.pending = [];
    const batch = this.dropped ? queued.concat(droppedRecord(this.dropped, 'the queue was full while the audit log could not be written')) : queued;
    if (!batch.length) return true;
    try {
      this.quick(() => this.writeEncoded(batch));
      this.dropped = 0;
      return true;
    } catch {
      this.pending = queued.concat(this.pending);
      if (!this.timer) {
        this.timer = setTimeout(() => {
          this.timer = undefined;
          this.flush();
        }, 1000);
        this.timer.unref();
      }
      return false;
    }
  }

  private lastRecheck = 0;
  /** Whether records can be written now: after a failure, looked at again at most once a second
   * (writing what is queued, or a probe), so a refusal based on it ends once the database recovers. */
  canWrite(): boolean {
    if (this.writable) return true;
    const now = Date.now();
    if (now - this.lastRecheck < 1000) return false;
    this.lastRecheck = now;
    if (this.writer) {
      // the writer thread looks (writing what it holds, or a probe) and reports
      this.writer.post('audit', { type: 'probe' } satisfies ToAuditWriter);
      return false;
    }
    if (this.pending.length) return this.flush();
    try {
      this.probe();
    } catch {
      /* still failing */
    }
    return this.writable;
  }

  /** Would a record be accepted now? (Inserts one and rolls it back; throws the database's refusal.) */
  probe(): void {
    const rollback = new Error('probe');
    try {
      this.quick(() =>
        this.db
          .transaction(() => {
            this.insertChain([{ kind: 'audit.probe', actor: 'airlock', source: 'gateway', data: {} }]);
            throw rollback;
          })
          .immediate(),
      );
    } catch (e) {
      if (e === rollback) {
        this.writable = true;
        return;
      }
      this.fail(e as Error);
      throw e;
    }
  }

  /** Run fn with a short busy timeout: queued summaries and probes run on the gateway's main
   * thread, which must not wait the connection's 5 s for another writer (they retry instead). */
  private quick<T>(fn: () => T): T {
    const prev = this.db.pragma('busy_timeout', { simple: true }) as number;
    this.db.pragma(`busy_timeout = ${QUICK_BUSY_MS}`);
    try {
      return fn();
    } finally {
      this.db.pragma(`busy_timeout = ${prev}`);
    }
  }

  private fail(e: Error): void {
    if (this.writable) this.opts.log?.(`audit log cannot be written: ${e.message}`);
    this.writable = false;
    this.lastError = e.message;
  }

  private write(entries: AuditEntry[]): AuditRecord[] {
    return this.guarded(() => this.db.transaction(() => this.insertChain(entries)).immediate());
  }

  /** Run a write, keeping `writable` and `lastError` up to date. */
  private guarded<T>(fn: () => T): T {
    try {
      const out = fn();
      if (!this.writable) this.opts.log?.('audit log can be written again');
      this.writable = true;
      this.lastError = undefined;
      return out;
    } catch (e) {
      this.fail(e as Error);
      throw e;
    }
  }

  private insertChain(entries: AuditEntry[]): AuditRecord[] {
    const values: EncodedValue[] = [];
    for (const e of entries) values.push(...encodeEntry(e));
    const recs = this.insertRows(values, true);
    return recs.map((r, i) => ({ seq: r.seq, ts: r.ts, kind: r.kind, actor: r.actor, source: r.source, prev_hash: r.prev_hash, data: entries[i]!.data ?? {}, hash: r.hash }));
  }

  /** Append encoded entries to the chain (inside the caller's transaction); the records without
   * their data when `collect` (the writer thread's batches need none: nothing is built per record
   * but its time and hash). */
  private insertRows(values: readonly EncodedValue[], collect = false, pace?: () => void): Omit<AuditRecord, 'data'>[] {
    const ins = this.db.prepare(`INSERT INTO audit_log (seq, ts, kind, actor, source, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`);
    let { seq, hash } = this.head();
    const start = seq;
    const out: Omit<AuditRecord, 'data'>[] = [];
    for (let k = 0; k < values.length; k += ENCODED_FIELDS) {
      const kind = values[k] as string;
      const actor = values[k + 1] as string;
      const source = values[k + 2] as string;
      const ts = new Date(values[k + 3] as number).toISOString();
      const data = values[k + 4] as string;
      const prev_hash = hash;
      seq++;
      hash = core.recordHashOf({ seq, ts, kind, actor, source, prev_hash }, data);
      ins.run(seq, ts, kind, actor, source, data, prev_hash, hash);
      if (collect) out.push({ seq, ts, kind, actor, source, prev_hash, hash });
      pace?.();
    }
    const every = Math.max(1, this.opts.checkpointEvery?.() ?? 1000);
    if (Math.floor(start / every) !== Math.floor(seq / every)) this.insertCheckpoint(seq, hash);
    return out;
  }

  private insertCheckpoint(seq: number, hash: string): Checkpoint {
    const c = { seq, hash, ts: new Date().toISOString(), key_fingerprint: this.key.fingerprint };
    const cp: Checkpoint = { ...c, signature: this.key.sign(checkpointPayload(c)) };
    this.db.prepare(`INSERT INTO audit_checkpoints (seq, hash, ts, key_fingerprint, signature) VALUES (?, ?, ?, ?, ?)`).run(cp.seq, cp.hash, cp.ts, cp.key_fingerprint, cp.signature);
    return cp;
  }

  /** Sign the head now (after writing what is queued), unless it is signed already. */
  checkpoint(): Checkpoint | undefined {
    this.flush();
    return this.db
      .transaction(() => {
        const h = this.head();
        if (h.seq === 0) return undefined;
        const last = this.db.prepare(`SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).get() as Checkpoint | undefined;
        if (last && last.seq >= h.seq) return last;
        return this.insertCheckpoint(h.seq, h.hash);
      })
      .immediate();
  }

  lastCheckpoint(): Checkpoint | undefined {
    return this.db.prepare(`SELECT * FROM audit_checkpoints ORDER BY seq DESC LIMIT 1`).get() as Checkpoint | undefined;
  }

  /** Newest first. */
  list(f: AuditFilter): AuditRecord[] {
    const where: string[] = [];
    const args: (string | number)[] = [];
    if (f.kind) {
      if (f.kind.endsWith('.')) {
        where.push(`kind >= ? AND kind < ?`);
        args.push(f.kind, f.kind.slice(0, -1) + '/');
      } else {
        where.push(`kind = ?`);
        args.push(f.kind);
      }
    }
    if (f.actor) {
      where.push(`actor = ?`);
      args.push(f.actor);
    }
    if (f.from !== undefined) {
      where.push(`ts >= ?`);
      args.push(new Date(f.from).toISOString());
    }
    if (f.until !== undefined) {
      where.push(`ts <= ?`);
      args.push(new Date(f.until).toISOString());
    }
    if (f.before_seq !== undefined) {
      where.push(`seq < ?`);
      args.push(f.before_seq);
    }
    const sql = `SELECT * FROM audit_log ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY seq DESC LIMIT ?`;
    return (this.db.prepare(sql).all(...args, f.limit) as Row[]).map(toRecord);
  }

  /** Records with seq in [first, last], in order, a chunk at a time (bounded memory). */
  *range(first: number, last: number, chunk = 2000): Generator<AuditRecord[]> {
    const stmt = this.db.prepare(`SELECT * FROM audit_log WHERE seq >= ? AND seq <= ? ORDER BY seq LIMIT ?`);
    let next = first;
    while (next <= last) {
      const rows = stmt.all(next, last, chunk) as Row[];
      if (!rows.length) return;
      yield rows.map(toRecord);
      next = rows[rows.length - 1]!.seq + 1;
    }
  }

  /** The sequence numbers of the records written in [from, until] (ms), or undefined when none. */
  seqRange(from: number | undefined, until: number | undefined): { first: number; last: number } | undefined {
    const first = this.db.prepare(`SELECT MIN(seq) FROM audit_log WHERE ts >= ?`).pluck().get(from === undefined ? '' : new Date(from).toISOString()) as number | null;
    const last = this.db.prepare(`SELECT MAX(seq) FROM audit_log WHERE ts <= ?`).pluck().get(until === undefined ? '9' : new Date(until).toISOString()) as number | null;
    if (first === null || last === null || last < first) return undefined;
    return { first, last };
  }

  /** The hash the record `seq` links to. */
  prevHashOf(seq: number): string {
    const r = this.db.prepare(`SELECT prev_hash FROM audit_log WHERE seq = ?`).pluck().get(seq) as string | undefined;
    if (r === undefined) throw new Error(`no audit record ${seq}`);
    return r;
  }

  /** Check the live log: every record's hash and link, consecutive sequence numbers from the
   * last archive segment on, and every checkpoint's signature and hash. */
  verifyLive(): LiveVerdict {
    this.flush();
    const problems: string[] = [];
    const archived = this.archivedThrough();
    let prev = archived?.last_hash ?? core.GENESIS;
    let expect = (archived?.through_seq ?? 0) + 1;
    let records = 0;
    let first: number | null = null;
    let last: number | null = null;
    const head = this.head();
    for (const chunk of this.range(expect, head.seq)) {
      for (const r of chunk) {
        if (problems.length) break;
        first ??= r.seq;
        if (r.seq !== expect) problems.push(`seq ${r.seq}: expected seq ${expect} (records are missing)`);
        else if (core.recordHash(r) !== r.hash) problems.push(`seq ${r.seq}: its hash does not match its contents (the record was edited)`);
        else if (r.prev_hash !== prev) problems.push(`seq ${r.seq}: it does not link to the record before it`);
        prev = r.hash;
        expect = r.seq + 1;
        last = r.seq;
        records++;
      }
    }
    if (!problems.length && head.seq >= expect) problems.push(`seq ${expect}: missing (the log ends at ${expect - 1}, its head is ${head.seq})`);
    const cps = this.db.prepare(`SELECT * FROM audit_checkpoints ORDER BY seq`).all() as Checkpoint[];
    const hashAt = this.db.prepare(`SELECT hash FROM audit_log WHERE seq = ?`).pluck();
    for (const c of cps) {
      const { signature, ...payload } = c;
      if (c.key_fingerprint === this.key.fingerprint && !this.key.verify(checkpointPayload(payload), signature)) problems.push(`checkpoint at seq ${c.seq}: its signature does not verify`);
      const h = hashAt.get(c.seq) as string | undefined;
      if (h !== undefined && h !== c.hash) problems.push(`checkpoint at seq ${c.seq}: the record's hash is not the one that was signed (the record was replaced)`);
    }
    return { ok: problems.length === 0, problems, records, first_seq: first, last_seq: last, checkpoints: cps.length, archived_through: archived?.through_seq ?? 0 };
  }

  close(): void {
    this.flush();
  }
}
