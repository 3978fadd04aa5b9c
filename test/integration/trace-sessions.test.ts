// GET /sessions over the workflow index (trace_sessions, migration 26) on a real SQLite file: the
// list is checked against a reference computed here from the rows as written (the documented
// meaning: a session's steps are its model and tool span rows and its traced ledger rows; a filter
// keeps a session with at least one matching step; newest end first, a tie by name), for every
// filter and for pages of every size; a database written before the index (schema 25) lists the
// same after the upgrade; the stores' prunes remove the workflows they empty and keep the rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import Database from 'better-sqlite3';
import { Ledger } from '../../gateway/engine/ledger.js';
import { newRequestId } from '../../gateway/engine/request-id.js';
import { openDatabase, checksum, type DB } from '../../gateway/store/db.js';
import { MIGRATIONS } from '../../gateway/store/migrations.js';
import { RecorderThread } from '../../gateway/store/recorder.js';
import { SpanStore, listSessions, type SessionQuery } from '../../gateway/telemetry/span-store.js';
import { newSpanId, newTraceId } from '../../gateway/telemetry/span.js';
import type { SessionSummary } from '../../gateway/wire.js';
import { tmpDir } from '../helpers/gateway.js';

const quiet = () => {};
const TRACE = JSON.stringify([1, null, 'openai', null, 't', 'm', null, null, null, 100, 900, 0, null, null]);

/** A step or a row that is not one, as written. */
interface Written {
  store: 'span' | 'ledger';
  session: string | null;
  kind: string; // span rows: model, tool, guardrail, attempt; ledger rows: 'model'
  name: string;
  start: number;
  end: number;
  status: 'ok' | 'error';
  traceId: string;
  team: string | null;
  key: string | null;
  model: string | null;
  tin: number;
  tout: number;
  cost: number;
  traced: boolean; // ledger rows: carries its trace
}

/** A small deterministic generator (mulberry32). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const longTeam = (i: number) => `team-${i}-${'x'.repeat(30)}`;

function dataset(seed: number, t0: number): Written[] {
  const r = rng(seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const teams = ['research', 'ops', 'legal', 'team ü', null] as const;
  const keys = ['nb', 'ci', 'bot', null] as const;
  const models = ['small', 'large', 'coder', null] as const;
  const out: Written[] = [];
  const sessions = Array.from({ length: 40 }, (_, i) => `wf-${String.fromCharCode(97 + (i % 26))}${i}`);
  for (const s of sessions) {
    const n = 1 + Math.floor(r() * 7);
    for (let k = 0; k < n; k++) {
      const start = t0 + Math.floor(r() * 50) * 1000 + (r() < 0.5 ? 0.25 : 0);
      // ends collide often (whole seconds): ties at page edges
      const end = start + Math.floor(r() * 4) * 1000;
      const ledger = r() < 0.35;
      out.push({
        store: ledger ? 'ledger' : 'span',
        session: s,
        kind: ledger ? 'model' : pick(['model', 'tool', 'tool', 'guardrail'] as const),
        name: pick(['chat small', 'tools/call search', 'tools/list', 'guard pii']),
        start,
        end,
        status: ledger ? 'ok' : r() < 0.25 ? 'error' : 'ok',
        traceId: newTraceId(),
        team: pick(teams),
        key: pick(keys),
        model: pick(models),
        tin: Math.floor(r() * 100),
        tout: Math.floor(r() * 100),
        cost: Math.floor(r() * 1000) / 1000,
        traced: !ledger || r() < 0.85,
      });
    }
  }
  // rows that are no step: without a session
  out.push({ ...out[0]!, session: null, traceId: newTraceId() });
  // one workflow with more team names than the index keeps (its set is not used to narrow)
  for (let i = 0; i < 40; i++)
    out.push({ ...out[1]!, store: 'span', kind: 'tool', session: 'wf-many-teams', team: longTeam(i), key: `key-${i}`, model: `model-${i}`, start: t0 + i, end: t0 + 60_000 + i, traceId: newTraceId(), status: i === 39 ? 'error' : 'ok', traced: true });
  return out;
}

function write(db: DB, rows: Written[]): void {
  const span = db.prepare(
    `INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, team, key_name, model, attributes, n) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
  );
  const ledger = db.prepare(
    `INSERT INTO ledger (request_id, ts, kind, requested_model, alias, latency_ms, status, session, team, key_name, prompt_tokens, completion_tokens, cost, trace) VALUES (?, ?, 'chat', ?, ?, ?, 200, ?, ?, ?, ?, ?, ?, ?)`,
  );
  db.transaction(() => {
    for (const w of rows) {
      if (w.store === 'span') {
        const attributes = JSON.stringify({ 'gen_ai.usage.input_tokens': w.tin, 'gen_ai.usage.output_tokens': w.tout, 'airlock.cost': w.cost });
        span.run(w.traceId, newSpanId(), w.session, w.kind, w.name, w.start, w.end, w.status, w.team, w.key, w.model, attributes);
      } else {
        // the ledger's time is whole milliseconds; the request id's trace id is the step's
        const ts = Math.floor(w.start);
        w.start = ts;
        const id = newRequestId(ts);
        w.traceId = id.replace(/-/g, '');
        // the step's model is the alias when there is one, else the model asked for
        ledger.run(id, ts, w.model, w.tin % 2 ? w.model : null, w.end - w.start, w.session, w.team, w.key, w.tin, w.tout, w.cost, w.traced ? TRACE : null);
      }
    }
  })();
}

/** GET /sessions as documented, from the rows as written. */
function reference(rows: Written[], q: SessionQuery): SessionSummary[] {
  const steps = rows.filter((w) => w.session !== null && (w.store === 'ledger' ? w.traced : w.kind === 'model' || w.kind === 'tool'));
  const by = new Map<string, Written[]>();
  for (const s of steps) by.set(s.session!, [...(by.get(s.session!) ?? []), s]);
  const matches = (w: Written) =>
    (q.team === undefined || w.team === q.team) &&
    (q.key === undefined || w.key === q.key) &&
    (q.model === undefined || w.model === q.model) &&
    (q.status === undefined || (q.status === 'error' ? w.status === 'error' : w.status !== 'error')) &&
    (q.from === undefined || w.end >= q.from) &&
    (q.to === undefined || w.start < q.to);
  const distinct = (xs: (string | null)[]) => [...new Set(xs.filter((x): x is string => x !== null))].sort();
  const out: (SessionSummary & { e: number })[] = [];
  for (const [session, ws] of by) {
    if (!ws.some(matches)) continue;
    const e = Math.max(...ws.map((w) => w.end));
    if (q.before !== undefined && !(e < q.before)) continue;
    out.push({
      session,
      e,
      start: new Date(Math.min(...ws.map((w) => w.start))).toISOString(),
      end: new Date(e).toISOString(),
      steps: ws.length,
      model_calls: ws.filter((w) => w.kind === 'model').length,
      tool_calls: ws.filter((w) => w.kind === 'tool' && w.name.startsWith('tools/call ')).length,
      errors: ws.filter((w) => w.status === 'error').length,
      traces: new Set(ws.map((w) => w.traceId)).size,
      teams: distinct(ws.map((w) => w.team)),
      keys: distinct(ws.map((w) => w.key)),
      models: distinct(ws.map((w) => w.model)),
      input_tokens: ws.reduce((a, w) => a + w.tin, 0),
      output_tokens: ws.reduce((a, w) => a + w.tout, 0),
      cost: ws.reduce((a, w) => a + w.cost, 0),
    });
  }
  out.sort((a, b) => b.e - a.e || (a.session < b.session ? 1 : a.session > b.session ? -1 : 0));
  return out.map(({ e: _e, ...s }) => s);
}

/** Costs are sums of floats: compared to the cent's thousandth, everything else exactly. */
function same(actual: SessionSummary[], expected: SessionSummary[], what: string): void {
  const round = (xs: SessionSummary[]) => xs.map((x) => ({ ...x, cost: Math.round(x.cost * 1e6) / 1e6 }));
  assert.deepEqual(round(actual), round(expected), what);
}

function queries(t0: number): SessionQuery[] {
  const qs: Omit<SessionQuery, 'limit'>[] = [
    {},
    { team: 'research' },
    { team: 'team ü' },
    { team: longTeam(7) },
    { team: 'nobody' },
    { key: 'bot' },
    { model: 'large' },
    { model: 'model-3' },
    { status: 'error' },
    { status: 'ok' },
    { from: t0 + 40_000 },
    { to: t0 + 5_000 },
    { from: t0 + 10_000, to: t0 + 20_000 },
    { team: 'ops', status: 'error' },
    { key: 'nb', model: 'coder', status: 'ok' },
    { before: t0 + 30_000 },
    { team: 'legal', before: t0 + 45_000 },
  ];
  return qs.map((q) => ({ ...q, limit: 500 }));
}

function checkAll(db: DB, rows: Written[], t0: number): void {
  for (const q of queries(t0)) {
    const want = reference(rows, q);
    const what = JSON.stringify({ ...q, from: q.from && q.from - t0, to: q.to && q.to - t0, before: q.before && q.before - t0 });
    same(listSessions(db, q).data, want, what);
    // pages of every size give the same list, each session once
    for (const limit of [1, 3, 7]) {
      const seen: SessionSummary[] = [];
      let cursor: string | undefined;
      for (let pages = 0; pages < 200; pages++) {
        const page = listSessions(db, { ...q, limit, cursor });
        assert.ok(page.data.length <= limit);
        seen.push(...page.data);
        if (!page.next_cursor) break;
        cursor = page.next_cursor;
      }
      same(seen, want, `${what}, pages of ${limit}`);
    }
  }
}

test('GET /sessions lists what the stores hold, for every filter and page size, as the documented meaning gives it', () => {
  const dir = tmpDir('airlock-sessions-index-');
  const db = openDatabase(dir);
  try {
    const t0 = Date.now() - 3_600_000;
    const rows = dataset(20261204, t0);
    write(db, rows);
    checkAll(db, rows, t0);
    // one summary row per workflow; the one with 40 long team names is not narrowed by its (dropped) set
    assert.equal(db.prepare(`SELECT COUNT(*) FROM trace_sessions`).pluck().get(), new Set(reference(rows, { limit: 1000 }).map((s) => s.session)).size);
    assert.equal(db.prepare(`SELECT teams FROM trace_sessions WHERE session = 'wf-many-teams'`).pluck().get(), null);
  } finally {
    db.close();
  }
});

test('a database written before the workflow index (schema 25) lists the same workflows after the upgrade', () => {
  const dir = tmpDir('airlock-sessions-upgrade-');
  const t0 = Date.now() - 3_600_000;
  const rows = dataset(7, t0);
  // schema 25, as an older Airlock left it, with its rows
  const old = new Database(`${dir}/airlock.db`);
  old.exec(`CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) STRICT;
            CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, checksum TEXT NOT NULL, applied_at INTEGER NOT NULL) STRICT;`);
  for (const m of MIGRATIONS.filter((x) => x.version <= 25)) {
    old.exec(m.sql);
    old.prepare(`INSERT INTO schema_migrations (version, name, checksum, applied_at) VALUES (?, ?, ?, ?)`).run(m.version, m.name, checksum(m), Date.now());
  }
  old.prepare(`INSERT INTO meta (key, value) VALUES ('app', 'airlock'), ('config_version', '0')`).run();
  write(old, rows);
  assert.equal(old.prepare(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'trace_sessions'`).pluck().get(), 0);
  old.close();
  const db = openDatabase(dir);
  try {
    assert.equal(db.prepare(`SELECT MAX(version) FROM schema_migrations`).pluck().get(), MIGRATIONS[MIGRATIONS.length - 1]!.version);
    checkAll(db, rows, t0);
  } finally {
    db.close();
  }
});

test("the stores' prunes remove the workflows they empty and keep the others whole: the span store's retention and the ledger's", async () => {
  const dir = tmpDir('airlock-sessions-prune-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const store = SpanStore.forDatabase(db, () => ({ retentionHours: 1, maxSpans: 100_000 }), quiet, thread);
  const ledger = Ledger.forDatabase(db, () => ({ maxPendingRows: 1000, whenUnwritable: 'serve' as const }), { thread, log: quiet });
  const h = 3_600_000;
  const now = Date.now();
  const span = (session: string, start: number, name = 'tools/call x') =>
    db.prepare(`INSERT INTO trace_spans (trace_id, span_id, session, kind, name, start, end, status, attributes, n) VALUES (?, ?, ?, 'tool', ?, ?, ?, 'ok', '{}', 1)`).run(newTraceId(), newSpanId(), session, name, start, start + 10);
  const led = (session: string, ts: number) =>
    db.prepare(`INSERT INTO ledger (request_id, ts, kind, requested_model, latency_ms, status, session, trace) VALUES (?, ?, 'chat', 'm', 5, 200, ?, ?)`).run(newRequestId(ts), ts, session, TRACE);
  const listed = () => listSessions(db, { limit: 50 }).data.map((s) => `${s.session}:${s.steps}:${s.start}`);
  const indexed = () => db.prepare(`SELECT session FROM trace_sessions ORDER BY session`).pluck().all();
  try {
    span('old-spans', now - 3 * h);
    span('old-spans', now - 2.5 * h);
    led('old-ledger', now - 3 * h);
    span('mixed', now - 3 * h);
    span('mixed', now - 10 * 60_000);
    span('young', now - 60_000);
    // a plain request two days old: the span store's retention takes its trace, the ledger keeps the row
    led('ledger-days', now - 2 * 86_400_000);
    assert.deepEqual(indexed(), ['ledger-days', 'mixed', 'old-ledger', 'old-spans', 'young']);

    assert.equal(await store.prune(), 2 + 1 + 2 + 2, 'the span rows (one span each) and the traced ledger rows (two) older than an hour');
    assert.deepEqual(indexed(), ['mixed', 'young'], 'the emptied workflows are gone from the index');
    assert.deepEqual(listed(), ['young:1:' + new Date(now - 60_000).toISOString(), 'mixed:1:' + new Date(now - 10 * 60_000).toISOString()], "mixed lost its old step: its start is its first step left's");
    assert.equal(db.prepare(`SELECT first FROM trace_sessions WHERE session = 'mixed'`).pluck().get(), now - 10 * 60_000);

    // the ledger's own retention (days): a workflow whose only steps were its ledger rows goes too
    led('ledger-only', now - 3 * 86_400_000);
    span('keeps', now - 30 * 60_000);
    led('keeps', now - 3 * 86_400_000);
    assert.equal(await ledger.prune(1), 3, 'ledger-days, ledger-only and the old row of keeps');
    assert.deepEqual(indexed(), ['keeps', 'mixed', 'young']);
    const keeps = listSessions(db, { limit: 50 }).data.find((s) => s.session === 'keeps')!;
    assert.deepEqual([keeps.steps, keeps.start], [1, new Date(now - 30 * 60_000).toISOString()]);
  } finally {
    await ledger.close();
    await store.close();
    db.close();
  }
});
