// Micro-bench of the local span store's cost per request, outside the gateway: the main thread's
// encoding of a request's spans (pushRow), the copy to the writer thread (structured clone, measured
// as v8.serialize + deserialize) and the writer's inserts (spanWriter on a real, migrated SQLite
// file in WAL mode, synchronous=NORMAL, batches as the store sends them). The spans are those of
// the bench's chat request (a root and one attempt, the attributes the tracer sets).
//
// Usage: node dist/bench/span-micro.js   (BENCH_SPAN_ROWS rows per round, default 50000;
// BENCH_SPAN_ROUNDS rounds, default 3). A/B against another build: copy this compiled file into
// that build's dist/bench/ and run it there in turn.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { openDatabase } from '../gateway/store/db.js';
import type { SpanData } from '../gateway/telemetry/span.js';
import { newSpanId, newTraceId } from '../gateway/telemetry/span.js';
import { pushRow } from '../gateway/telemetry/span-store.js';
import { spanWriter, type SpanValue } from '../gateway/telemetry/span-writer.js';

process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
const ROWS = Number(process.env.BENCH_SPAN_ROWS ?? 50_000);
const ROUNDS = Number(process.env.BENCH_SPAN_ROUNDS ?? 3);
const BATCH = 1000;

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
      'airlock.request_id': `req_${(1e9 + i).toString(36)}Xk2pQ9`,
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

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-span-micro-'));
const db = openDatabase(dir);
const write = spanWriter({ db, dataDir: dir, send: () => {} });
const reqs = Array.from({ length: ROWS }, (_, i) => request(i));
const us = (cpuUs: number) => (cpuUs / ROWS).toFixed(2);
// CPU time of this process (the machine is shared: wall time would count the others' work)
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

try {
  for (let round = 1; round <= ROUNDS; round++) {
    // encode: pushRow per request into batches of BATCH rows, as SpanStore.record does
    const batches: SpanValue[][] = [];
    let t = cpu();
    let cur: SpanValue[] = [];
    for (let i = 0; i < ROWS; i++) {
      pushRow(cur, reqs[i]!);
      if ((i + 1) % BATCH === 0) {
        batches.push(cur);
        cur = [];
      }
    }
    if (cur.length) batches.push(cur);
    const encodeMs = cpu() - t;
    // the copy to the writer thread (postMessage's structured clone, both ends)
    t = cpu();
    const cloned = batches.map((b) => v8.deserialize(v8.serialize(b)) as SpanValue[]);
    const cloneMs = cpu() - t;
    let bytes = 0;
    for (const b of cloned) for (const v of b) if (typeof v === 'string') bytes += Buffer.byteLength(v);
    // the writer: one transaction per batch
    t = cpu();
    for (const values of cloned) write({ type: 'spans', values });
    const writeMs = cpu() - t;
    process.stdout.write(
      `round ${round}: ${ROWS} rows, ${(bytes / ROWS).toFixed(0)} B of text per row; CPU µs per request: encode ${us(encodeMs)}, clone ${us(cloneMs)}, write ${us(writeMs)}\n`,
    );
  }
} finally {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
