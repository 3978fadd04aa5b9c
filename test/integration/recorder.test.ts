// The recorders' shared writer thread over a real SQLite file: ledger rows, audit summaries and
// trace spans written by one thread; one part whose writes fail does not cost the others their
// rows; a thread that dies is restarted, the parts learn what was lost, and later rows are written;
// the thread ends when the last part detaches.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { openDatabase, type DB } from '../../gateway/store/db.js';
import { Secrets } from '../../gateway/store/secrets.js';
import { openAudit } from '../../gateway/audit/index.js';
import { Ledger, LEDGER_COLUMNS, type LedgerRow } from '../../gateway/engine/ledger.js';
import { RecorderThread } from '../../gateway/store/recorder.js';
import { SpanStore, traceById } from '../../gateway/telemetry/span-store.js';
import { newSpanId, newTraceId, type SpanData } from '../../gateway/telemetry/span.js';
import { tmpDir } from '../helpers/gateway.js';

const quiet = (l: string) => { if (process.env.DEBUG_REC) process.stderr.write(l + "\n"); };

function row(i: number): LedgerRow {
  const r = Object.fromEntries(LEDGER_COLUMNS.map((c) => [c, null])) as unknown as LedgerRow;
  return { ...r, request_id: `req-${i}`, ts: Date.now(), kind: 'chat', stream: 0, prompt_tokens: i, completion_tokens: 1, estimated: 0, cost: 0, latency_ms: 1, status: 200, attempts: 1 };
}

function spans(session: string): SpanData[] {
  const traceId = newTraceId();
  const root = newSpanId();
  const t = Date.now();
  const base = { traceId, session, team: undefined, key: undefined, model: undefined, httpStatus: undefined, statusMessage: undefined };
  return [
    { ...base, spanId: root, parentSpanId: undefined, kind: 'model', name: 'chat m', start: t, end: t + 10, status: 'ok', model: 'm', httpStatus: 200, attributes: { 'gen_ai.usage.input_tokens': 3 } },
    { ...base, spanId: newSpanId(), parentSpanId: root, kind: 'queue', name: 'queue', start: t, end: t + 2, status: 'unset', attributes: {} },
    { ...base, spanId: newSpanId(), parentSpanId: root, kind: 'attempt', name: 'attempt 1', start: t + 2, end: t + 10, status: 'ok', attributes: { 'airlock.endpoint': 'e' } },
  ];
}

const count = (db: DB, sql: string) => db.prepare(sql).pluck().get() as number;

async function eventually(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!check()) {
    if (Date.now() > until) assert.fail(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function setup() {
  const dir = tmpDir('airlock-recorder-');
  const db = openDatabase(dir);
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const ledger = new Ledger(db.name, () => ({ maxPendingRows: 100_000, whenUnwritable: 'serve' }), { thread, log: quiet, retryMs: 50 });
  const audit = openAudit(db, dir, Secrets.load(dir), { checkpointEvery: () => 50 });
  audit.startWriter(dir, thread);
  const store = SpanStore.forDatabase(db, () => ({ retentionHours: 24, maxSpans: 100_000 }), quiet, thread);
  return { dir, db, thread, ledger, audit, store };
}

test('one thread writes the ledger, the audit summaries and the spans; it ends with the last part', async () => {
  const { db, thread, ledger, audit, store } = setup();
  try {
    for (let i = 0; i < 120; i++) {
      ledger.record(row(i));
      audit.enqueue({ kind: 'request', actor: 'key:k', source: 'data-plane', data: { request_id: `req-${i}` } });
      store.record(spans(`s-${i % 3}`));
    }
    audit.flush();
    assert.equal(await ledger.flushed(), true);
    assert.equal(await store.flush(), true);
    await eventually(() => count(db, `SELECT COUNT(*) FROM audit_log WHERE kind = 'request'`) === 120, 'the audit summaries are written');
    assert.equal(count(db, `SELECT COUNT(*) FROM ledger`), 120);
    assert.equal(count(db, `SELECT COUNT(*) FROM trace_spans`), 120, 'one row per request');
    assert.equal(count(db, `SELECT SUM(n) FROM trace_spans`), 360, 'holding its three spans');
    const v = audit.verifyLive();
    assert.equal(v.ok, true, v.problems.join('; '));
    // a trace reads back whole: the root and its children, in order of start
    const id = db.prepare(`SELECT trace_id FROM trace_spans LIMIT 1`).pluck().get() as string;
    const t = traceById(db, id)!;
    assert.deepEqual(t.spans.map((s) => s.kind), ['model', 'queue', 'attempt']);
    assert.equal(t.spans[2]!.parent_span_id, t.spans[0]!.span_id);
    assert.equal(t.spans[2]!.session, t.spans[0]!.session);
    assert.deepEqual(t.spans[2]!.attributes, { 'airlock.endpoint': 'e' });
  } finally {
    assert.equal(await ledger.close(), 0);
    await store.close();
    await audit.stopWriter();
    db.close();
  }
  assert.equal((thread as unknown as { worker: unknown }).worker, undefined, 'the thread ended with the last part');
  // a late span (a tool call ending during the stop) is dropped, not thrown at a detached writer
  store.record(spans('late'));
  assert.equal(await store.flush(), false);
  assert.equal(await ledger.prune(1), 0);
});

test('audit summaries are encoded before they go to the thread: a record that has no encoding is left out and said, its neighbours are written', async () => {
  const dir = tmpDir('airlock-recorder-');
  const db = openDatabase(dir);
  const lines: string[] = [];
  const thread = new RecorderThread(db.name, { dataDir: dir, log: quiet });
  const audit = openAudit(db, dir, Secrets.load(dir), { checkpointEvery: () => 50, log: (l) => lines.push(l) });
  audit.startWriter(dir, thread);
  try {
    const at = Date.UTC(2026, 11, 2, 12, 0, 0, 123);
    audit.enqueue({ kind: 'request', actor: 'key:a', source: 'data-plane', at, data: { request_id: 'r1', z: 'é\u2028"', a: [1, null, { d: 2, c: -0 }] } });
    audit.enqueue({ kind: 'request', actor: 'key:b', source: 'data-plane', data: { request_id: 'r2', latency_ms: NaN } });
    audit.enqueue({ kind: 'request', actor: 'key:c', source: 'data-plane', data: { request_id: 'r3' } });
    audit.flush();
    await eventually(() => count(db, `SELECT COUNT(*) FROM audit_log WHERE kind = 'request'`) === 2, 'the two encodable summaries are written');
    const rows = db.prepare(`SELECT actor, ts, data FROM audit_log WHERE kind = 'request' ORDER BY seq`).all() as { actor: string; ts: string; data: string }[];
    assert.deepEqual(rows.map((r) => r.actor), ['key:a', 'key:c']);
    assert.equal(rows[0]!.ts, '2026-12-02T12:00:00.123Z', 'the time the entry was queued with');
    assert.equal(rows[0]!.data, '{"a":[1,null,{"c":0,"d":2}],"request_id":"r1","z":"é\u2028\\""}');
    assert.ok(lines.some((l) => /a request record cannot be encoded \(canonical encoding: numbers must be finite\); it is not written/.test(l)), lines.join('\n'));
    const v = audit.verifyLive();
    assert.equal(v.ok, true, v.problems.join('; '));
  } finally {
    await audit.stopWriter();
    db.close();
  }
});

test('a part whose writes fail keeps its rows and retries; the other parts are written meanwhile', async () => {
  const { db, ledger, audit, store } = setup();
  try {
    // the span table goes away (a damaged or hand-edited database): span writes fail
    const ddl = db.prepare(`SELECT sql FROM sqlite_master WHERE name = 'trace_spans'`).pluck().get() as string;
    const indexes = db.prepare(`SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'trace_spans' AND sql IS NOT NULL`).pluck().all() as string[];
    db.exec(`DROP TABLE trace_spans`);
    for (let i = 0; i < 50; i++) {
      store.record(spans('broken'));
      ledger.record(row(i));
    }
    assert.equal(await store.flush(), false, 'the span store says it could not write');
    assert.equal(await ledger.flushed(), true, 'the ledger is written all the same');
    assert.equal(count(db, `SELECT COUNT(*) FROM ledger`), 50);
    audit.enqueue({ kind: 'request', actor: 'key:k', source: 'data-plane', data: {} });
    audit.flush();
    await eventually(() => count(db, `SELECT COUNT(*) FROM audit_log`) === 1, 'the audit record is written');
    assert.match(store.lastError ?? '', /no such table: trace_spans/);
    // repaired: the kept spans are written by the next retry, none lost
    db.exec(ddl + ';' + indexes.join(';'));
    await eventually(() => count(db, `SELECT COALESCE(SUM(n), 0) FROM trace_spans`) === 150, 'the kept spans are written after the repair');
    assert.equal(store.dropped, 0);
  } finally {
    await ledger.close();
    await store.close();
    await audit.stopWriter();
    db.close();
  }
});

test('a thread that dies is restarted: the parts count what was lost, and later rows are written', async () => {
  const { db, thread, ledger, audit, store } = setup();
  try {
    ledger.record(row(1));
    assert.equal(await ledger.flushed(), true);
    // the thread dies (as on an out-of-memory error in the writer)
    const worker = (thread as unknown as { worker: { terminate(): Promise<number> } }).worker;
    await worker.terminate();
    await eventually(() => !ledger.writable, 'the ledger heard of it');
    for (let i = 2; i <= 10; i++) ledger.record(row(i));
    store.record(spans('after'));
    audit.enqueue({ kind: 'request', actor: 'key:k', source: 'data-plane', data: { after: true } });
    audit.flush();
    assert.equal(await ledger.flushed(5000), true, 'rows recorded after the restart are written');
    assert.equal(ledger.writable, true);
    assert.equal(count(db, `SELECT COUNT(*) FROM ledger`), 10);
    assert.equal(await store.flush(), true);
    assert.equal(count(db, `SELECT SUM(n) FROM trace_spans WHERE session = 'after'`), 3);
    await eventually(() => count(db, `SELECT COUNT(*) FROM audit_log`) === 1, 'the audit part works after the restart');
  } finally {
    await ledger.close();
    await store.close();
    await audit.stopWriter();
    db.close();
  }
});

test('max_spans counts spans, not rows: pruning keeps the newest rows that hold at most that many', async () => {
  const { db, ledger, audit, store } = setup();
  let max = 100_000;
  const limited = SpanStore.forDatabase(db, () => ({ retentionHours: 24, maxSpans: max }), quiet);
  try {
    for (let i = 0; i < 40; i++) limited.record(spans(`p-${i}`)); // 120 spans in 40 rows
    assert.equal(await limited.flush(), true);
    max = 31;
    assert.equal(await limited.prune(), 90, 'the 30 oldest rows (90 spans) went');
    assert.equal(count(db, `SELECT SUM(n) FROM trace_spans`), 30);
    assert.deepEqual(db.prepare(`SELECT session FROM trace_spans ORDER BY rowid`).pluck().all(), Array.from({ length: 10 }, (_, i) => `p-${30 + i}`));
    // the store keeps its count of stored spans up to date between prunes
    for (let i = 0; i < 5; i++) limited.record(spans(`q-${i}`));
    assert.equal(await limited.flush(), true);
    assert.equal(await limited.prune(), 15, 'the 5 oldest rows went (45 spans, at most 31 kept)');
    assert.deepEqual(db.prepare(`SELECT session FROM trace_spans ORDER BY rowid`).pluck().all(), [...Array.from({ length: 5 }, (_, i) => `p-${35 + i}`), ...Array.from({ length: 5 }, (_, i) => `q-${i}`)]);
    assert.equal(await limited.prune(), 0, 'nothing more while under the cap');
  } finally {
    await limited.close();
    await ledger.close();
    await store.close();
    await audit.stopWriter();
    db.close();
  }
});
