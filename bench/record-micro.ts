// Micro-bench of the ledger's and the audit log's cost per request, outside the gateway, through
// the real classes: the main thread's part (Ledger.record(ledgerRowOf(ctx)) and
// AuditLog.enqueue(requestSummary(ctx)), plus the hand-over of each batch, as the gateway does per
// finished request), the copy to the writer thread (postMessage's structured clone, measured as
// v8.serialize + deserialize of the messages the parts post) and the writers (ledgerWriter and
// auditWriter on a real, migrated SQLite file in WAL mode, synchronous=NORMAL, batches as the
// parts send them). Also the heap a queued request keeps alive until its batch is handed over
// (what a scavenge in between must copy): used heap after a full GC with BATCH requests queued,
// minus before, per request.
//
// Usage: node --expose-gc dist/bench/record-micro.js   (BENCH_RECORD_ROWS requests per round,
// default 20000; BENCH_RECORD_ROUNDS rounds, default 3). A/B against another build: copy this
// compiled file into that build's dist/bench/ and run it there in turn (or interleaved).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import v8 from 'node:v8';
import { openDatabase } from '../gateway/store/db.js';
import { Secrets } from '../gateway/store/secrets.js';
import type { RecorderThread, PartClient, PartName } from '../gateway/store/recorder.js';
import type { PartWriter } from '../gateway/store/recorder-protocol.js';
import { Ledger, ledgerRowOf } from '../gateway/engine/ledger.js';
import { ledgerWriter } from '../gateway/engine/ledger-writer.js';
import { newRequestId } from '../gateway/engine/request-id.js';
import type { RequestContext } from '../gateway/engine/stages.js';
import { AuditKey } from '../gateway/audit/key.js';
import { AuditLog } from '../gateway/audit/log.js';
import { auditWriter } from '../gateway/audit/writer.js';
import { requestSummary } from '../gateway/audit/index.js';

process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
const ROWS = Number(process.env.BENCH_RECORD_ROWS ?? 20_000);
const ROUNDS = Number(process.env.BENCH_RECORD_ROUNDS ?? 3);
const BATCH = 1000;
const gc = (globalThis as { gc?: () => void }).gc;

/** a finished request as the bench's chat request leaves its context */
function context(i: number): RequestContext {
  const ts = Date.now();
  return {
    id: newRequestId(ts),
    clientRequestId: undefined,
    kind: 'chat',
    t0: 0,
    ts,
    key: { name: 'bench', team: 'bench', app: undefined },
    user: i % 3 === 0 ? 'alice@example.com' : undefined,
    session: undefined,
    requestedModel: 'bench-model',
    model: { name: 'bench-model' },
    rule: undefined,
    stream: false,
    attempts: 1,
    endpoint: 'upstream',
    upstreamModel: 'test-model',
    ttfbMs: 1.2345678 + (i % 7) * 0.013,
    tags: undefined,
    downgradedFrom: undefined,
    promptTokens: 12,
    completionTokens: 9,
    estimated: false,
    cost: 0.0000123 * (1 + (i % 5)),
    status: 200,
    errorClass: undefined,
  } as unknown as RequestContext;
}

/** a stand-in for the recorders' thread that keeps what the parts post */
class Capture {
  posted: { part: PartName; msg: unknown }[] = [];
  clients = new Map<PartName, PartClient>();
  attach(part: PartName, _init: unknown, client: PartClient): void {
    this.clients.set(part, client);
  }
  post(part: PartName, msg: unknown): void {
    this.posted.push({ part, msg });
  }
  ref(): void {}
  unref(): void {}
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-record-micro-'));
const db = openDatabase(dir);
const key = AuditKey.load(dir, Secrets.load(dir));
const capture = new Capture();
const thread = capture as unknown as RecorderThread;
const ledger = new Ledger(db.name, () => ({ maxPendingRows: 1e9, whenUnwritable: 'serve' }), { thread });
const audit = new AuditLog(db, key, { checkpointEvery: () => 1000, maxPending: 1e9 });
audit.startWriter(dir, thread);
const writers: Record<string, PartWriter> = {
  ledger: ledgerWriter({ db, dataDir: dir, send: (m) => capture.clients.get('ledger')!.onMessage(m) }, { retryMs: 250 }),
  audit: auditWriter({ db, dataDir: dir, send: (m) => capture.clients.get('audit')!.onMessage(m) }, { dataDir: dir, retryMs: 1000 }),
};
const cpu = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};
const us = (cpuUs: number) => (cpuUs / ROWS).toFixed(2);

type Part = 'ledger' | 'audit';
const record: Record<Part, (ctx: RequestContext) => void> = {
  ledger: (ctx) => ledger.record(ledgerRowOf(ctx, 2.3456789)),
  audit: (ctx) => audit.enqueue({ kind: 'request', actor: `key:${ctx.key!.name}`, source: 'data-plane', data: requestSummary(ctx, 2.3456789) }),
};
const handOver: Record<Part, () => void> = {
  ledger: () => void ledger.flushed(0).catch(() => undefined),
  audit: () => audit.flush(),
};

/** heap kept alive per queued request (bytes), BATCH requests queued */
function retained(part: Part, ctxs: RequestContext[]): number | undefined {
  if (!gc) return undefined;
  gc();
  const h0 = process.memoryUsage().heapUsed;
  for (let i = 0; i < BATCH; i++) record[part](ctxs[i]!);
  gc();
  const h1 = process.memoryUsage().heapUsed;
  handOver[part]();
  capture.posted = [];
  return (h1 - h0) / BATCH;
}

try {
  for (let round = 1; round <= ROUNDS; round++) {
    for (const part of ['ledger', 'audit'] as const) {
      const ctxs = Array.from({ length: ROWS }, (_, i) => context(i));
      capture.posted = [];
      let t = cpu();
      for (let i = 0; i < ROWS; i++) {
        record[part](ctxs[i]!);
        if ((i + 1) % BATCH === 0) handOver[part]();
      }
      handOver[part]();
      const mainUs = cpu() - t;
      const msgs = capture.posted.splice(0);
      t = cpu();
      const cloned = msgs.map((m) => v8.deserialize(v8.serialize(m.msg)) as unknown);
      const cloneUs = cpu() - t;
      let bytes = 0;
      for (const m of msgs) bytes += v8.serialize(m.msg).length;
      t = cpu();
      for (const m of cloned) writers[part]!(m);
      const writeUs = cpu() - t;
      const kept = retained(part, ctxs);
      process.stdout.write(
        `round ${round} ${part.padEnd(6)}: ${ROWS} requests, ${(bytes / ROWS).toFixed(0)} B cloned per request; CPU µs per request: main ${us(mainUs)}, clone ${us(cloneUs)}, write ${us(writeUs)}, total ${us(mainUs + cloneUs + writeUs)}; heap kept per queued request ${kept === undefined ? '(run with --expose-gc)' : `${kept.toFixed(0)} B`}\n`,
      );
    }
  }
  const n = db.prepare(`SELECT (SELECT COUNT(*) FROM ledger) AS ledger, (SELECT COUNT(*) FROM audit_log) AS audit`).get() as { ledger: number; audit: number };
  const v = audit.verifyLive();
  process.stdout.write(`written: ${n.ledger} ledger rows, ${n.audit} audit records; chain ${v.ok ? 'verifies' : 'FAILS: ' + v.problems[0]} (${v.checkpoints} checkpoints)\n`);
} finally {
  db.close();
  fs.rmSync(dir, { recursive: true, force: true });
}
