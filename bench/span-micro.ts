// Micro-bench of tracing's cost per request with the local span store, outside the gateway, in
// CPU µs per request (CPU time of this process: the machine may be shared):
//   tracer  the real Tracer fed the bench's chat request through the real lifecycle channels
//           (request:start, attempt:start, first-content, attempt:end, request:end) until the
//           request's stored row is queued in a batch as SpanStore does (its handlers, ids, the
//           row's encoding, the garbage it leaves);
//   encode  the store's encoding of the same request given as span objects (rowJson; tool calls
//           and late guardrail spans take this way);
//   clone   the copy of the batches to the writer thread (postMessage's structured clone, measured
//           as v8.serialize + deserialize of the message);
//   write   the writer's inserts (spanWriter on a real, migrated SQLite file in WAL mode,
//           synchronous=NORMAL), one transaction per batch.
//
// Usage: node dist/bench/span-micro.js   (BENCH_SPAN_ROWS rows per round, default 50000;
// BENCH_SPAN_ROUNDS rounds, default 3). A/B against another build: copy this compiled file into
// that build's dist/bench/ and run it there in turn; it also runs against builds from before the
// row-as-JSON hand-off (session 7: span objects to the store, pushRow, flat value batches).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { newRequestId } from '../gateway/engine/request-id.js';
import { channels } from '../gateway/engine/events.js';
import { newContext } from '../gateway/engine/pipeline.js';
import type { Snapshot } from '../gateway/engine/snapshot.js';
import { DEFAULT_SETTINGS } from '../gateway/config/schema.js';
import { openDatabase } from '../gateway/store/db.js';
import type { SpanData } from '../gateway/telemetry/span.js';
import { newSpanId, newTraceId } from '../gateway/telemetry/span.js';
import * as spanStore from '../gateway/telemetry/span-store.js';
import { spanWriter } from '../gateway/telemetry/span-writer.js';
import { Tracer } from '../gateway/telemetry/tracer.js';

process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
const ROWS = Number(process.env.BENCH_SPAN_ROWS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_SPAN_ROUNDS ?? 3);
const BATCH = 1000;

// the hand-off of the build this file is compiled into: rows as JSON text (rowJson) or, before
// session 7, flat values (pushRow)
type Old = { pushRow(out: unknown[], spans: SpanData[]): void };
type New = { rowJson(spans: SpanData[]): string };
const OLD = typeof (spanStore as unknown as Partial<Old>).pushRow === 'function';

function request(i: number): SpanData[] {
  const ts = Date.now() + i * 0.27;
  const traceId = newTraceId();
  const rootId = newSpanId();
  const attempt: SpanData = {
    traceId,
    spanId: newSpanId(),
    parentSpanId: rootId,
    session: undefined,
    kind: 'attempt',
    name: 'chat test-model',
    start: ts + 0.412345678,
    end: ts + 1.9876543,
    status: 'ok',
    statusMessage: undefined,
    team: undefined,
    key: undefined,
    model: undefined,
    httpStatus: undefined,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'gen_ai.request.model': 'test-model',
      'gen_ai.provider.name': 'openai',
      'airlock.endpoint': 'upstream',
      'airlock.target': 'upstream/test-model',
      'airlock.attempt': 1,
      'airlock.queue_ms': 0.004,
      'server.address': 'http://127.0.0.1:43533',
      'airlock.time_to_first_chunk_ms': 1.234,
      'airlock.attempt.outcome': 'ok',
      'gen_ai.response.finish_reasons': ['stop'],
    },
  };
  const root: SpanData = {
    traceId,
    spanId: rootId,
    parentSpanId: undefined,
    session: undefined,
    kind: 'model',
    name: 'chat bench-model',
    start: ts,
    end: ts + 2.3456789,
    status: 'ok',
    statusMessage: undefined,
    team: 'bench',
    key: 'bench',
    model: 'bench-model',
    httpStatus: 200,
    attributes: {
      'gen_ai.operation.name': 'chat',
      'airlock.request_id': newRequestId(),
      'http.response.status_code': 200,
      'airlock.attempts': 1,
      'gen_ai.request.model': 'bench-model',
      'airlock.model': 'bench-model',
      'airlock.endpoint': 'upstream',
      'gen_ai.provider.name': 'openai',
      'gen_ai.response.model': 'test-model',
      'gen_ai.response.finish_reasons': ['stop'],
      'gen_ai.request.max_tokens': 64,
      'airlock.stream': false,
      'gen_ai.usage.input_tokens': 12,
      'gen_ai.usage.output_tokens': 9,
      'airlock.cost': 0.00003,
      'airlock.time_to_first_token_ms': 1.987,
      'airlock.key': 'bench',
      'airlock.team': 'bench',
    },
  };
  return [root, attempt];
}

/** Batches as SpanStore hands them to the writer, for either build. */
class Batcher {
  batches: unknown[] = [];
  private rows: unknown[] = [];
  private n = 0;
  private spans = 0;
  addRow(row: string, spans: number): void {
    this.rows.push(row);
    this.count(spans);
  }
  addSpans(spans: SpanData[]): void {
    if (OLD) {
      (spanStore as unknown as Old).pushRow(this.rows, spans);
      this.count(spans.length);
    } else this.addRow((spanStore as unknown as New).rowJson(spans), spans.length);
  }
  private count(spans: number): void {
    this.spans += spans;
    if (++this.n === BATCH) this.end();
  }
  end(): unknown[] {
    if (this.n) this.batches.push(OLD ? { type: 'spans', values: this.rows } : { type: 'spans', rows: `[${this.rows.join(',')}]`, spans: this.spans });
    this.rows = [];
    this.n = 0;
    this.spans = 0;
    return this.batches;
  }
}

const snapshot = {
  endpoints: new Map([['upstream', { name: 'upstream', type: 'openai', origin: 'http://127.0.0.1:43533' }]]),
  models: new Map(),
  settings: DEFAULT_SETTINGS,
} as unknown as Snapshot;
const target = { id: 'upstream/test-model', endpoint: 'upstream', upstreamModel: 'test-model' };

/** the bench's chat request as the pipeline leaves its context, ready to be published */
function context() {
  const ctx = newContext('chat', newRequestId(), snapshot);
  Object.assign(ctx, {
    key: { name: 'bench', team: 'bench' },
    requestedModel: 'bench-model',
    model: { name: 'bench-model' },
    body: { model: 'bench-model', max_tokens: 64, messages: [{ role: 'user', content: 'hi' }] },
    endpoint: 'upstream',
    upstreamModel: 'test-model',
    status: 200,
    attempts: 1,
    promptTokens: 12,
    completionTokens: 9,
    cost: 0.00003,
    ttfbMs: 1.987,
    finishReasons: ['stop'],
  });
  return ctx;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-span-micro-'));
const db = openDatabase(dir);
const write = spanWriter({ db, dataDir: dir, send: () => {} });
const us = (cpuUs: number) => (cpuUs / ROWS).toFixed(2);
// CPU time of this process (the machine is shared: wall time would count the others' work)
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const source = {};
let sink = new Batcher();
const settings = { ...DEFAULT_SETTINGS.telemetry, traces: true, sample_ratio: 1 };
const tracer = OLD
  ? new Tracer(source, [(spans) => sink.addSpans(spans)])
  : new Tracer(source, [], undefined, { recordRow: (row, n) => sink.addRow(row, n), record: (spans) => sink.addSpans(spans) });
// BENCH_SPAN_LEDGER=1: the gateway's way since session 9 — a plain request's spans ride in its
// ledger row: the ledger's request:end handler asks settle() for the row's trace column (kept
// here in a list as the ledger's queue keeps it), no span row is made
const LEDGER = process.env.BENCH_SPAN_LEDGER === '1';
const ledgerQueue: unknown[] = [];
type Settles = { ledgerCarries: boolean; settle(ctx: unknown, latencyMs: number): string | null };
if (LEDGER) {
  (tracer as unknown as Settles).ledgerCarries = true;
  channels.requestEnd.subscribe((m) => {
    const { ctx, latencyMs } = m as { ctx: unknown; latencyMs: number };
    ledgerQueue.push((tracer as unknown as Settles).settle(ctx, latencyMs));
    if (ledgerQueue.length >= BATCH) ledgerQueue.length = 0;
  });
}
tracer.update(settings);

try {
  process.stdout.write(`hand-off: ${OLD ? 'span objects, pushRow, flat values (before session 7)' : 'a row as one JSON string, one string per batch'}\n`);
  for (let round = 1; round <= ROUNDS; round++) {
    // tracer: the lifecycle events of each request, as the pipeline publishes them
    const ctxs = Array.from({ length: ROWS }, context);
    sink = new Batcher();
    let t = cpu();
    for (let i = 0; i < ROWS; i++) {
      const ctx = ctxs[i]!;
      channels.requestStart.publish({ source, ctx });
      channels.attemptStart.publish({ source, ctx, target, attempt: 1, headers: {}, queueMs: 0.004 });
      channels.firstContent.publish({ source, ctx });
      channels.attemptEnd.publish({ source, ctx, target, attempt: 1, outcome: 'ok', error: undefined, durationMs: 1.5 });
      channels.requestEnd.publish({ source, ctx, latencyMs: 2 });
    }
    const batches = sink.end();
    const tracerUs = cpu() - t;
    if (LEDGER) {
      process.stdout.write(`round ${round}: ${ROWS} requests, traces in their ledger rows (${batches.length} batches of span rows); CPU µs per request: tracer ${us(tracerUs)}\n`);
      continue;
    }
    ctxs.length = 0;
    // encode: the same request as span objects, into batches (tool calls take this way)
    const reqs = Array.from({ length: ROWS }, (_, i) => request(i));
    const enc = new Batcher();
    t = cpu();
    for (let i = 0; i < ROWS; i++) enc.addSpans(reqs[i]!);
    enc.end();
    const encodeUs = cpu() - t;
    // the copy to the writer thread (postMessage's structured clone, both ends)
    t = cpu();
    const cloned = batches.map((b) => v8.deserialize(v8.serialize(b)) as unknown);
    const cloneUs = cpu() - t;
    const rows = db.prepare(`SELECT COUNT(*) FROM trace_spans`).pluck();
    const before = rows.get() as number;
    // the writer: one transaction per batch
    t = cpu();
    for (const m of cloned) write(m);
    const writeUs = cpu() - t;
    const stored = (rows.get() as number) - before;
    if (stored !== ROWS) throw new Error(`${stored} rows stored, ${ROWS} expected`);
    const bytes = db.prepare(`SELECT AVG(length(attributes) + length(children)) FROM (SELECT attributes, children FROM trace_spans ORDER BY rowid DESC LIMIT ?)`).pluck().get(ROWS) as number;
    process.stdout.write(
      `round ${round}: ${ROWS} rows, ${bytes.toFixed(0)} B of attributes and children per row; CPU µs per request: tracer ${us(tracerUs)}, encode ${us(encodeUs)}, clone ${us(cloneUs)}, write ${us(writeUs)}\n`,
    );
  }
} finally {
  tracer.close();
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
