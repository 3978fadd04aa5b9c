// Ledger integrity (issue 7, item 3) against the real gateway process: the ledger key is the
// gateway's own id and a client's x-request-id never replaces a row; a database that cannot be
// written (another process holds its write lock) is reported by /readyz, the admin status and
// the metrics, and settings.ledger_when_unwritable decides whether requests are served (rows kept
// in memory, up to settings.ledger_max_pending_rows) or refused; nothing kept is lost once the
// lock is gone; retention deletes old rows at start; and the event loop keeps serving while a
// write waits for the lock (the writes run in a worker thread).
//
// The lock is taken from this test process with better-sqlite3 on <dataDir>/airlock.db and
// `BEGIN EXCLUSIVE` (in WAL mode: the write lock; readers, such as the admin API, still read).
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { ADMIN_TOKEN, TEST_KEY, basicConfig, eventually, startGateway, tmpDir, type RunningGateway, type StartOptions } from '../helpers/gateway.js';
import { completionTokensFor, startUpstream, type TestUpstream } from '../helpers/upstream.js';

type Row = Record<string, any>;

/** A gateway (its own data dir) over a fresh upstream, both closed when the test ends. */
async function setup(t: TestContext, settings: Record<string, unknown> = {}, opts: StartOptions = {}): Promise<{ gw: RunningGateway; up: TestUpstream; ai: OpenAI }> {
  const up = await startUpstream();
  t.after(() => up.close());
  const gw = await startGateway({ config: basicConfig(up.url, { settings }), ...opts });
  t.after(async () => {
    // a lock still held (a failed test) is released first: a gateway stops after writing its rows
    locks.get(gw)?.();
    await gw.stop();
  });
  const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000 });
  return { gw, up, ai };
}

const locks = new Map<RunningGateway, () => void>();

/** Hold the write lock of the gateway's database from this process until release() (released
 * before the gateway stops when the test ends). */
function lockDatabase(gw: RunningGateway): { release(): void } {
  const db = new Database(path.join(gw.dataDir, 'airlock.db'));
  db.exec('BEGIN EXCLUSIVE');
  let held = true;
  const release = () => {
    if (!held) return;
    held = false;
    db.exec('COMMIT');
    db.close();
    locks.delete(gw);
  };
  locks.set(gw, release);
  return { release };
}

interface Ready {
  status: string;
  ledger: { writable: boolean; pending: number; dropped: number; last_error: string | null };
}

async function readyz(gw: RunningGateway): Promise<{ status: number; body: Ready }> {
  const r = await fetch(`${gw.dataUrl}/readyz`);
  return { status: r.status, body: (await r.json()) as Ready };
}

interface LedgerState {
  writable: boolean;
  mode: string;
  pending: number;
  written: number;
  dropped: number;
  failed_writes: number;
  last_error: string | null;
  last_error_at: string | null;
}

async function ledgerState(gw: RunningGateway): Promise<LedgerState> {
  const r = await gw.admin('GET', '/status');
  assert.equal(r.status, 200);
  assert.ok(r.body.ledger, `GET /status reports the ledger: ${JSON.stringify(r.body)}`);
  return r.body.ledger as LedgerState;
}

async function metric(gw: RunningGateway, name: string): Promise<number> {
  const r = await fetch(`${gw.dataUrl}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  assert.equal(r.status, 200);
  const text = await r.text();
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
  assert.ok(m, `${name} in /metrics`);
  return Number(m[1]);
}

/** The rows kept for a client's x-request-id (admin API), newest first. */
async function rowsOf(gw: RunningGateway, clientRequestId: string): Promise<Row[]> {
  const r = await gw.admin('GET', `/usage/requests?limit=10000&client_request_id=${encodeURIComponent(clientRequestId)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body.data as Row[];
}

async function rowById(gw: RunningGateway, id: string): Promise<Row | undefined> {
  const r = await gw.admin('GET', `/usage/requests?limit=10&request_id=${encodeURIComponent(id)}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return (r.body.data as Row[])[0];
}

/** A chat through the openai client with the given x-request-id: the gateway's id and the echoed one. */
async function chat(ai: OpenAI, clientId: string, text = 'hello ledger'): Promise<{ id: string; echoed: string | null; content: string | null | undefined }> {
  const { data, response } = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: text }] }, { headers: { 'x-request-id': clientId } }).withResponse();
  const id = response.headers.get('x-airlock-request-id');
  assert.ok(id, 'x-airlock-request-id');
  return { id, echoed: response.headers.get('x-request-id'), content: data.choices[0]?.message.content };
}

// ---------------------------------------------------------------------------------------------

describe('ledger key', () => {
  test('three requests with the same x-request-id keep three rows; a keyless 401 with that id adds its own and overwrites nothing', async (t) => {
    const { gw, ai } = await setup(t);
    const cid = `dup-${randomUUID()}`;
    const served = [];
    for (let i = 0; i < 3; i++) {
      const r = await chat(ai, cid, `same id, request ${i}`);
      assert.equal(r.content, `echo: same id, request ${i}`);
      assert.equal(r.echoed, cid, 'the response echoes the client x-request-id');
      assert.notEqual(r.id, cid, 'the ledger key is the gateway’s own id, not the client’s');
      served.push(r.id);
    }
    assert.equal(new Set(served).size, 3, `a distinct x-airlock-request-id each time: ${served.join(', ')}`);

    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-request-id': cid },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'no key' }] }),
    });
    assert.equal(res.status, 401);
    await res.arrayBuffer();
    assert.equal(res.headers.get('x-request-id'), cid, 'the 401 echoes x-request-id too');
    const refusedId = res.headers.get('x-airlock-request-id');
    assert.ok(refusedId, 'the 401 carries x-airlock-request-id');
    assert.ok(!served.includes(refusedId) && refusedId !== cid, 'the 401 has an id of its own');

    const rows = await eventually(async () => {
      const r = await rowsOf(gw, cid);
      return r.length >= 4 ? r : undefined;
    }, 'four rows with the client request id');
    assert.equal(rows.length, 4, `exactly four rows: ${JSON.stringify(rows)}`);
    assert.deepEqual(new Set(rows.map((r) => r.request_id)), new Set([...served, refusedId]));
    for (const r of rows) assert.equal(r.client_request_id, cid);
    for (const [i, id] of served.entries()) {
      const r = rows.find((x) => x.request_id === id)!;
      assert.equal(r.status, 200, `served row ${i}`);
      assert.equal(r.key_name, 'notebook-app', `served row ${i} keeps its key`);
      assert.equal(r.completion_tokens, completionTokensFor(`echo: same id, request ${i}`), `served row ${i} keeps its tokens`);
      assert.ok(r.prompt_tokens > 0);
      assert.equal(r.estimated, false);
    }
    const refused = rows.find((x) => x.request_id === refusedId)!;
    assert.equal(refused.status, 401);
    assert.equal(refused.key_name, null);
    assert.equal(refused.prompt_tokens, 0);
    // and by the gateway's id
    assert.equal((await rowById(gw, served[1]!))?.client_request_id, cid);
  });
});

// ---------------------------------------------------------------------------------------------

describe('a database that cannot be written', () => {
  test('serve (default): requests are served, /readyz degraded, status and metrics say unwritable; after the lock, every row is written', async (t) => {
    const { gw, ai } = await setup(t);
    const cid = `serve-${randomUUID()}`;
    await chat(ai, `${cid}-before`);
    await eventually(async () => (await rowsOf(gw, `${cid}-before`)).length === 1, 'the row before the lock');
    assert.equal((await readyz(gw)).body.status, 'ready');
    assert.equal(await metric(gw, 'airlock_ledger_writable'), 1);

    const lock = lockDatabase(gw);
    const ids: string[] = [];
    ids.push((await chat(ai, cid, 'while locked 0')).id);
    // the writer has tried, waited for the lock, and failed
    const st = await eventually(async () => {
      const s = await ledgerState(gw);
      return s.writable === false ? s : undefined;
    }, 'the ledger to report that it cannot be written');
    assert.equal(st.mode, 'serve');
    assert.ok(st.last_error, 'status names the last error');
    assert.match(st.last_error, /lock|busy/i);
    assert.ok(st.last_error_at);
    assert.ok(st.failed_writes >= 1);
    assert.ok(st.pending >= 1, 'the row waits in memory');

    // still served
    for (let i = 1; i < 5; i++) {
      const r = await chat(ai, cid, `while locked ${i}`);
      assert.equal(r.content, `echo: while locked ${i}`);
      ids.push(r.id);
    }
    const rz = await readyz(gw);
    assert.equal(rz.status, 200, 'serve mode: /readyz stays 200');
    assert.equal(rz.body.status, 'degraded');
    assert.equal(rz.body.ledger.writable, false);
    assert.ok(rz.body.ledger.pending >= 1);
    assert.equal(rz.body.ledger.dropped, 0);
    assert.ok(rz.body.ledger.last_error);
    assert.equal(await metric(gw, 'airlock_ledger_writable'), 0);
    assert.ok((await metric(gw, 'airlock_ledger_pending_rows')) >= 1);
    // the admin API still reads what was committed
    assert.equal((await rowsOf(gw, `${cid}-before`)).length, 1);
    assert.equal((await rowsOf(gw, cid)).length, 0, 'nothing written while the lock is held');

    lock.release();
    await eventually(async () => (await readyz(gw)).body.status === 'ready', '/readyz back to ready');
    const rows = await eventually(async () => {
      const r = await rowsOf(gw, cid);
      return r.length === ids.length ? r : undefined;
    }, 'the rows kept in memory to be written');
    assert.deepEqual(new Set(rows.map((r) => r.request_id)), new Set(ids), 'nothing lost');
    for (const r of rows) assert.equal(r.status, 200);
    const after = await ledgerState(gw);
    assert.equal(after.writable, true);
    assert.equal(after.pending, 0);
    assert.equal(after.dropped, 0);
    assert.equal(await metric(gw, 'airlock_ledger_writable'), 1);
    const rz2 = await readyz(gw);
    assert.equal(rz2.status, 200);
    assert.equal(rz2.body.ledger.writable, true);
  });

  test('refuse: once the failure is seen, new requests get 503 ledger_unavailable and /readyz 503; after the lock, served again and the rows written', async (t) => {
    const { gw, ai, up } = await setup(t, { ledger_when_unwritable: 'refuse' });
    const cid = `refuse-${randomUUID()}`;
    const lock = lockDatabase(gw);
    // this one is served: the ledger has not failed yet
    const first = await chat(ai, cid, 'before the failure is known');
    assert.equal(first.content, 'echo: before the failure is known');
    const rz = await eventually(async () => {
      const r = await readyz(gw);
      return r.status === 503 ? r : undefined;
    }, '/readyz to answer 503');
    assert.equal(rz.body.status, 'ledger_unwritable');
    assert.equal(rz.body.ledger.writable, false);
    assert.ok(rz.body.ledger.last_error);
    const st = await ledgerState(gw);
    assert.equal(st.writable, false);
    assert.equal(st.mode, 'refuse');
    assert.equal(await metric(gw, 'airlock_ledger_writable'), 0);

    const posts = up.completions().length;
    for (let i = 0; i < 3; i++) {
      let err: unknown;
      try {
        await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `refused ${i}` }] }, { headers: { 'x-request-id': cid } });
      } catch (e) {
        err = e;
      }
      assert.ok(err instanceof OpenAI.APIError, `request ${i} refused with an API error, got ${String(err)}`);
      assert.equal(err.status, 503);
      assert.equal(err.code, 'ledger_unavailable');
      assert.ok(err.headers?.get('retry-after'), '503 says when to retry');
    }
    assert.equal(up.completions().length, posts, 'refused requests never reach the upstream');

    lock.release();
    await eventually(async () => (await readyz(gw)).status === 200, '/readyz 200 again');
    assert.equal((await readyz(gw)).body.status, 'ready');
    const second = await chat(ai, cid, 'after the lock');
    assert.equal(second.content, 'echo: after the lock');
    const rows = await eventually(async () => {
      const r = await rowsOf(gw, cid);
      return r.length >= 2 ? r : undefined;
    }, 'the rows to be written');
    assert.deepEqual(new Set(rows.map((r) => r.request_id)), new Set([first.id, second.id]), 'the served requests are recorded (the refused ones were never served)');
  });

  test('ledger_max_pending_rows: with the lock held, N > max requests drop exactly N - max rows; after the lock exactly max are written', async (t) => {
    const MAX = 100; // the minimum the schema allows
    const N = 130;
    const { gw, ai } = await setup(t, { ledger_max_pending_rows: MAX });
    const cid = `pending-${randomUUID()}`;
    const lock = lockDatabase(gw);
    // in batches of 10 at a time
    for (let i = 0; i < N; i += 10) {
      const batch = await Promise.all(Array.from({ length: Math.min(10, N - i) }, (_, j) => chat(ai, cid, `pending ${i + j}`)));
      for (const [j, r] of batch.entries()) assert.equal(r.content, `echo: pending ${i + j}`, 'served while the database is locked');
    }
    const st = await eventually(async () => {
      const s = await ledgerState(gw);
      return s.writable === false && s.pending + s.dropped === N ? s : undefined;
    }, 'the ledger to account for every request');
    assert.equal(st.dropped, N - MAX, `dropped: ${JSON.stringify(st)}`);
    assert.equal(st.pending, MAX);
    const rz = await readyz(gw);
    assert.equal(rz.body.ledger.dropped, N - MAX);
    assert.equal(await metric(gw, 'airlock_ledger_dropped_rows'), N - MAX);

    lock.release();
    await eventually(async () => (await ledgerState(gw)).pending === 0, 'the pending rows to be written');
    const rows = await rowsOf(gw, cid);
    assert.equal(rows.length, MAX, `exactly ${MAX} rows written`);
    assert.equal(new Set(rows.map((r) => r.request_id)).size, MAX);
    const after = await ledgerState(gw);
    assert.equal(after.dropped, N - MAX, 'the drop count stays');
    assert.equal(after.writable, true);
  });

  test('the event loop is not blocked while a write waits for the lock: sequential /healthz calls keep completing meanwhile', async (t) => {
    const { gw, ai, up } = await setup(t);
    const WAIT_MS = 1000; // the writer's busy timeout (gateway/engine/ledger.ts: LedgerOptions.busyTimeoutMs)

    // Sequential /healthz calls (and a /readyz every 10th) until `stop` says so; how many completed.
    const probe = async (stop: (ready: Ready) => boolean, running?: () => boolean): Promise<number> => {
      let n = 0;
      for (let i = 0; i < 100_000; i++) {
        const r = await fetch(`${gw.dataUrl}/healthz`);
        assert.equal(r.status, 200);
        await r.arrayBuffer();
        n++;
        if (running && !running()) return n;
        if (n % 10 === 0 && stop((await readyz(gw)).body)) return n;
      }
      assert.fail('the probe did not end');
    };

    // Calibration, without the lock: the calls that complete while an upstream takes as long as
    // one wait for the lock (this machine's pace, measured by events, not by a clock here).
    let warm = 0;
    await probe(() => ++warm >= 20); // warm up: 200 calls
    up.queue({ kind: 'slow-first-byte', delayMs: WAIT_MS });
    let inFlight = true;
    const slow = chat(ai, `loop-cal-${randomUUID()}`, 'slow answer').finally(() => (inFlight = false));
    const calibration = await probe(() => false, () => inFlight);
    await slow;

    // The same, while the first write of a row waits for the lock, until it has failed.
    const lock = lockDatabase(gw);
    const cid = `loop-${randomUUID()}`;
    await chat(ai, cid, 'a row to write');
    const during = await probe((ready) => ready.ledger.writable === false);
    const st = await ledgerState(gw);
    assert.equal(st.writable, false);
    assert.equal(st.failed_writes, 1, 'one write attempt waited for the lock and failed');
    console.log(`# /healthz calls completed: ${calibration} while an upstream took ${WAIT_MS} ms, ${during} while the ledger's write waited ${WAIT_MS} ms for the lock`);
    // A write on the event loop's thread would let through only the calls of the flush delay
    // (~5 % of the wait); a write off it, about as many as the calibration.
    assert.ok(during >= calibration / 4, `/healthz kept answering while the write waited for the lock: ${during} calls, vs ${calibration} in a comparable wait without the lock`);

    lock.release();
    await eventually(async () => (await rowsOf(gw, cid)).length === 1, 'the row to be written after the lock');
  });
});

// ---------------------------------------------------------------------------------------------

// The ledger table's columns (gateway/engine/ledger-protocol.ts, LEDGER_COLUMNS), copied: the
// rows below are written as an older gateway would have written them.
const LEDGER_COLUMNS = [
  'request_id', 'client_request_id', 'ts', 'kind', 'key_name', 'team', 'app', 'user', 'session', 'requested_model', 'alias',
  'endpoint', 'upstream_model', 'stream', 'prompt_tokens', 'completion_tokens', 'estimated', 'cost', 'ttfb_ms', 'latency_ms',
  'status', 'attempts', 'error_class',
] as const;

describe('retention', () => {
  test('settings.ledger_retention_days: at start, rows older than the retention are deleted, recent ones kept', async (t) => {
    const DAY = 86_400_000;
    const up = await startUpstream();
    t.after(() => up.close());
    const dataDir = tmpDir();
    // a first run writes a real row, then stops
    const gw1 = await startGateway({ dataDir, config: basicConfig(up.url) });
    const ai1 = new OpenAI({ apiKey: TEST_KEY, baseURL: gw1.baseURL, maxRetries: 0, timeout: 30_000 });
    const live = `live-${randomUUID()}`;
    await chat(ai1, live);
    await eventually(async () => (await rowsOf(gw1, live)).length === 1, 'the live row');
    assert.equal((await gw1.stop()).code, 0);

    // rows from the past, inserted directly
    const now = Date.now();
    const tag = randomUUID();
    const ages = { old: [400, 90, 31], recent: [29, 7, 0.5] };
    const db = new Database(path.join(dataDir, 'airlock.db'));
    try {
      const insert = db.prepare(`INSERT INTO ledger (${LEDGER_COLUMNS.join(', ')}) VALUES (${LEDGER_COLUMNS.map((c) => '@' + c).join(', ')})`);
      for (const [which, days] of Object.entries(ages))
        for (const d of days)
          insert.run({
            request_id: randomUUID(),
            client_request_id: `${which}-${tag}`,
            ts: Math.round(now - d * DAY),
            kind: 'chat',
            key_name: 'notebook-app',
            team: 'research',
            app: 'notebook-app',
            user: null,
            session: null,
            requested_model: 'chat',
            alias: 'chat',
            endpoint: 'gpu-1',
            upstream_model: 'test-model',
            stream: 0,
            prompt_tokens: 10,
            completion_tokens: 5,
            estimated: 0,
            cost: 0.00002,
            ttfb_ms: 12.5,
            latency_ms: 13.25,
            status: 200,
            attempts: 1,
            error_class: null,
          });
    } finally {
      db.close();
    }

    const gw2 = await startGateway({ dataDir, config: basicConfig(up.url, { settings: { ledger_retention_days: 30 } }) });
    t.after(() => gw2.stop());
    await eventually(async () => (await rowsOf(gw2, `old-${tag}`)).length === 0, 'the old rows to be deleted');
    await eventually(() => /ledger retention: deleted \d+ rows/.test(gw2.stderr()), 'the retention log line');
    assert.match(gw2.stderr(), new RegExp(`ledger retention: deleted ${ages.old.length} rows`), gw2.stderr());
    const recent = await rowsOf(gw2, `recent-${tag}`);
    assert.equal(recent.length, ages.recent.length, 'recent rows kept');
    assert.equal((await rowsOf(gw2, live)).length, 1, 'the live row kept');
  });
});
