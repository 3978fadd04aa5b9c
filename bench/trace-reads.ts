// The admin reads of the Traces page over a full span store, and what the workflow index
// (trace_sessions, migration 26) costs the writer. A real, migrated SQLite file is filled with
// BENCH_TRACE_SPANS span rows (default 1,000,000: settings.telemetry.max_spans' default) as agent
// workflows of BENCH_SESSION_STEPS steps (default 20: model and tool calls, one in ten failed, four
// teams), then each read is timed BENCH_TRACE_READS times (default 5; median and max, wall ms; the
// reads run on the gateway's main thread, so this is how long the data plane waits behind one):
//   sessions             GET /sessions (limit 50): the workflows list the Traces page opens with
//   sessions team=...    the same, filtered by a team
//   sessions status=...  the same, the failed ones
//   sessions page 2      the next page (next_cursor)
//   traces               GET /traces (limit 50): the traces that started last
// and the inserts, in the writer's form (prepared INSERT, 1000 rows per transaction), µs per row:
// a step of a workflow (the index's trigger runs) and a span row without a session (it does not).
//
// Usage: taskset -c 0 node dist/bench/trace-reads.js. A/B against another build: copy this compiled
// file into that build's dist/bench/ and run it there (before migration 26 there is no index: the
// reads aggregate every stored step).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../gateway/store/db.js';
import { listSessions, recentTraces } from '../gateway/telemetry/span-store.js';

process.stdout.on('error', () => process.exit(0)); // e.g. piped into head
const SPANS = Number(process.env.BENCH_TRACE_SPANS ?? 1_000_000);
const STEPS = Number(process.env.BENCH_SESSION_STEPS ?? 20);
const READS = Number(process.env.BENCH_TRACE_READS ?? 5);
const BATCH = 1000;

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-trace-reads-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const db = openDatabase(dir);
const hasIndex = (db.prepare(`SELECT COUNT(*) FROM sqlite_master WHERE name = 'trace_sessions'`).pluck().get() as number) === 1;

const insert = db.prepare(
  `INSERT INTO trace_spans (trace_id, span_id, parent_span_id, session, kind, name, start, end, status, team, key_name, model, attributes, n) VALUES (?, ?, NULL, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1)`,
);
const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
const ATTRS = JSON.stringify({ 'gen_ai.usage.input_tokens': 120, 'gen_ai.usage.output_tokens': 40, 'airlock.cost': 0.0002 });
const t0 = Date.now() - 6 * 86_400_000;
/** rows [from, to) of the fill; `session` false: span rows without one */
function rows(from: number, to: number, session = true): void {
  const tx = db.transaction((a: number, b: number) => {
    for (let i = a; i < b; i++) {
      const s = Math.floor(i / STEPS);
      const tool = i % 2 === 1;
      insert.run(
        hex(i, 32),
        hex(i, 16),
        session ? `wf-${s}` : null,
        tool ? 'tool' : 'model',
        tool ? 'tools/call search' : 'chat small',
        t0 + i * 500,
        t0 + i * 500 + 400,
        i % 10 === 7 ? 'error' : 'ok',
        `team-${s % 4}`,
        `key-${s % 16}`,
        tool ? null : 'small',
        ATTRS,
      );
    }
  });
  for (let k = from; k < to; k += BATCH) tx(k, Math.min(to, k + BATCH));
}

function cpuUs(f: () => void): number {
  const c = process.cpuUsage();
  f();
  const d = process.cpuUsage(c);
  return d.user + d.system;
}

const fillStart = performance.now();
const probe = Math.min(100_000, Math.floor(SPANS / 10));
// the inserts, measured on the first rows (a workflow's steps) and on as many rows without a session
const withSession = cpuUs(() => rows(0, probe)) / probe;
const withoutSession = cpuUs(() => rows(SPANS, SPANS + probe, false)) / probe;
db.prepare(`DELETE FROM trace_spans WHERE session IS NULL`).run();
rows(probe, SPANS);
const fillS = (performance.now() - fillStart) / 1000;

function time(name: string, f: () => unknown): void {
  const ms: number[] = [];
  for (let r = 0; r < READS; r++) {
    const t = performance.now();
    f();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  console.log(`| ${name} | ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} | ${ms[ms.length - 1]!.toFixed(1)} |`);
}

console.log(`${SPANS} span rows in ${Math.ceil(SPANS / STEPS)} workflows of ${STEPS} steps (filled in ${fillS.toFixed(0)} s); workflow index: ${hasIndex ? 'yes' : 'no'}`);
console.log(`insert, writer's form: ${withSession.toFixed(2)} µs per workflow step, ${withoutSession.toFixed(2)} µs per span row without a session`);
console.log('');
console.log('| read | median ms | max ms |');
console.log('| :-- | --: | --: |');
time('sessions (limit 50)', () => listSessions(db, { limit: 50 }));
time('sessions team=team-2', () => listSessions(db, { limit: 50, team: 'team-2' }));
time('sessions status=error', () => listSessions(db, { limit: 50, status: 'error' }));
const first = listSessions(db, { limit: 50 });
time('sessions page 2', () => listSessions(db, { limit: 50, cursor: first.next_cursor ?? undefined }));
time('traces (limit 50)', () => recentTraces(db, 50));
db.close();
