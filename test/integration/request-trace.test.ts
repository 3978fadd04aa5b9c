// A request's trace by its request id (GET /usage/requests/{request_id}/trace), against the real
// gateway process over HTTP: a plain request (its trace carried by its ledger row), one that fell
// back and one that failed on every target (span rows), and one sent with a client traceparent
// (a span row in the client's trace, found through the span id derived from the request id) each
// resolve to their whole trace, as GET /traces/{trace_id} gives it; a pruned trace, an unknown
// request and a malformed id are answered with a 404 or 400 that says why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import Database from 'better-sqlite3';
import { TEST_KEY, type RunningGateway } from '../helpers/gateway.js';
import { startFallbackGateway, type FallbackGateway } from '../helpers/fallback.js';
import type { TestUpstream } from '../helpers/upstream.js';
import type { Trace, TraceSpan } from '../../gateway/wire.js';

let f: FallbackGateway;
let gw: RunningGateway;
let primary: TestUpstream;
let backup: TestUpstream;

before(async () => {
  f = await startFallbackGateway({ team: 'research', keyName: 'notebook-app', upstreamModel: 'test-model' });
  ({ gw, primary, backup } = f);
});

after(async () => {
  await f?.close();
});

/** One chat completion over HTTP; its status and the request id the gateway answered with. */
async function chat(content: string, headers: Record<string, string> = {}): Promise<{ status: number; id: string }> {
  const res = await fetch(`${gw.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content }] }),
  });
  await res.text();
  const id = res.headers.get('x-airlock-request-id');
  assert.ok(id, 'the gateway names the request');
  return { status: res.status, id };
}

const traceOf = (id: string) => gw.admin<Trace>('GET', `/usage/requests/${id}/trace`);
/** the answer whatever it is (an error body when there is no trace) */
const answerFor = (id: string) => gw.admin('GET', `/usage/requests/${id}/trace`);
const rootOf = (t: Trace, id: string): TraceSpan => {
  const root = t.spans.find((s) => s.attributes['airlock.request_id'] === id);
  assert.ok(root, `the trace holds request ${id}'s span`);
  return root;
};
const show = (r: { status: number; body: unknown }) => `${r.status} ${JSON.stringify(r.body).slice(0, 300)}`;

describe("a request's trace by its request id", () => {
  test('a plain request: its ledger row carries the trace, the trace id is the request id without dashes', async () => {
    const { status, id } = await chat('hi');
    assert.equal(status, 200);
    const r = await traceOf(id);
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.trace_id, id.replaceAll('-', ''));
    assert.deepEqual(r.body.spans.map((s) => s.kind), ['model', 'attempt']);
    const root = rootOf(r.body, id);
    assert.equal(root.span_id, id.slice(19, 23) + id.slice(24), "the request's span id is its id's last two groups");
    assert.equal(root.status.code, 'ok');
    assert.deepEqual(r.body, (await gw.admin<Trace>('GET', `/traces/${r.body.trace_id}`)).body, 'the same answer as GET /traces/ID');
    const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true, fileMustExist: true });
    try {
      assert.ok(db.prepare('SELECT trace FROM ledger WHERE request_id = ?').pluck().get(id), 'carried by its ledger row');
      assert.equal(db.prepare('SELECT COUNT(*) FROM trace_spans WHERE trace_id = ?').pluck().get(r.body.trace_id), 0, 'no span row');
    } finally {
      db.close();
    }
    // an id in capitals (pasted from elsewhere) is the same request
    assert.equal((await traceOf(id.toUpperCase())).body.trace_id, r.body.trace_id);
  });

  test('a request that fell back and one that failed on every target: their span rows', async () => {
    primary.queue({ kind: 'status', status: 503 });
    const fell = await chat('fall back');
    assert.equal(fell.status, 200);
    const t = await traceOf(fell.id);
    assert.equal(t.status, 200, show(t));
    assert.equal(t.body.trace_id, fell.id.replaceAll('-', ''));
    const root = rootOf(t.body, fell.id);
    assert.equal(root.attributes['airlock.attempts'], 2);
    assert.deepEqual(
      t.body.spans.filter((s) => s.kind === 'attempt').map((s) => [s.attributes['airlock.endpoint'], s.status.code]),
      [
        ['gpu-1', 'error'],
        ['gpu-2', 'ok'],
      ],
    );

    primary.queue({ kind: 'status', status: 500 });
    backup.queue({ kind: 'status', status: 502 });
    const failed = await chat('fail');
    assert.equal(failed.status, 502);
    const f = await traceOf(failed.id);
    assert.equal(f.status, 200, show(f));
    const froot = rootOf(f.body, failed.id);
    assert.equal(froot.status.code, 'error');
    assert.equal(froot.attributes['http.response.status_code'], 502);
    assert.equal(f.body.spans.filter((s) => s.kind === 'attempt' && s.status.code === 'error').length, 2);

    const db = new Database(path.join(gw.dataDir, 'airlock.db'), { readonly: true, fileMustExist: true });
    try {
      assert.equal(db.prepare('SELECT trace FROM ledger WHERE request_id = ?').pluck().get(failed.id), null, 'not carried by the ledger row');
      const plan = db.prepare(`EXPLAIN QUERY PLAN SELECT trace_id FROM trace_spans WHERE span_id = ? AND kind = 'model' ORDER BY rowid DESC LIMIT 1`).all('x') as { detail: string }[];
      assert.match(plan.map((p) => p.detail).join('; '), /USING INDEX trace_spans_span/, 'the span row is found by its span id through an index (migration 25)');
    } finally {
      db.close();
    }
  });

  test("a request sent with a client's traceparent: its trace is the client's, found by the request id all the same", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const parent = '00f067aa0ba902b7';
    const first = await chat('plan', { traceparent: `00-${traceId}-${parent}-01` });
    const second = await chat('act', { traceparent: `00-${traceId}-${parent}-01` });
    assert.equal((await gw.admin('GET', `/traces/${first.id.replaceAll('-', '')}`)).status, 404, 'the trace id is not the request id');
    const r = await traceOf(first.id);
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.trace_id, traceId);
    const root = rootOf(r.body, first.id);
    assert.equal(root.parent_span_id, parent, "our request's span is under the client's");
    assert.ok(r.body.spans.some((s) => s.attributes['airlock.request_id'] === second.id), 'the whole trace: the other request that joined it too');
    assert.deepEqual((await traceOf(second.id)).body, r.body, 'either request opens the same trace');
  });

  test('a malformed id → 400 naming request_id; an unknown request → 404 that says the ledger has none', async () => {
    for (const bad of ['not-a-request-id', '4bf92f3577b34da6a3ce929d0e0e4736', '0190b7e4-5c1a-4d2e-9f00-0123456789ab' /* version 4 */, '0190b7e4-5c1a-7d2e-1f00-0123456789ab' /* variant */]) {
      const r = await gw.admin('GET', `/usage/requests/${bad}/trace`);
      assert.equal(r.status, 400, `${bad}: ${show(r)}`);
      assert.equal(r.body.error.param, 'request_id');
      assert.match(r.body.error.message, /request id of this gateway/);
    }
    const r = await gw.admin('GET', '/usage/requests/0190b7e4-5c1a-7d2e-9f00-0123456789ab/trace');
    assert.equal(r.status, 404, show(r));
    assert.equal(r.body.error.code, 'not_found');
    assert.match(r.body.error.message, /No request 0190b7e4-5c1a-7d2e-9f00-0123456789ab is in the ledger/);
  });

  test('traces off: the request is in the ledger, its trace is not stored (404 saying why)', async () => {
    const cur = (await gw.admin('GET', '/settings')).body;
    assert.equal((await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, traces: false } })).status, 200);
    try {
      const { id } = await chat('untraced');
      const r = await answerFor(id);
      assert.equal(r.status, 404, show(r));
      assert.match(r.body.error.message, new RegExp(`The trace of request ${id} is not stored: it was pruned .*not sampled .*traces were off`));
    } finally {
      await gw.admin('PUT', '/settings', cur);
    }
  });
});
