// `node dist/bench/audit-export.js [N]`: the audit export's memory bound, measured. Writes N audit
// records (default 1,000,000, each like a data-plane summary) into a fresh data dir, then exports
// them with exportBundle() and verifies the bundle with the verifier verify.mjs carries. The
// records are written by a child process, so this one starts small; peak RSS is the process's
// own maximum (process.resourceUsage().maxRSS), which also catches synchronous peaks. Prints a
// Markdown block for bench/AUDIT-EXPORT.md.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openDatabase } from '../gateway/store/db.js';
import { Secrets } from '../gateway/store/secrets.js';
import { openAudit } from '../gateway/audit/index.js';
import { exportBundle } from '../gateway/audit/export.js';
import { core } from '../gateway/audit/log.js';

const N = Number(process.argv[2] ?? 1_000_000);
const mb = (b: number) => (b / 1048576).toFixed(1);

if (process.argv[3]) {
  // the child: write N records into the data dir argv[3]
  const db = openDatabase(process.argv[3]);
  const log = openAudit(db, process.argv[3], Secrets.load(process.argv[3]), { checkpointEvery: () => 10_000 });
  for (let done = 0; done < N; ) {
    const n = Math.min(10_000, N - done);
    for (let i = 0; i < n; i++)
      log.enqueue({
        kind: 'request',
        actor: 'key:notebook-app',
        source: 'data-plane',
        data: { request_id: `0190${(done + i).toString(16).padStart(12, '0')}`, team: 'research', model: 'chat', endpoint: 'gpu-1', status: 200, decision: 'served', prompt_tokens: 812, completion_tokens: 230, cost: 0.00134, latency_ms: 412.5 },
      });
    if (!log.flush()) throw new Error(log.lastError);
    done += n;
  }
  db.close();
  process.exit(0);
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-audit-'));
const usb = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-usb-'));
const t = performance.now();
const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), String(N), dir], { stdio: 'inherit' });
if (child.status !== 0) throw new Error('writing the records failed');
const writeS = (performance.now() - t) / 1000;
const db = openDatabase(dir);
const log = openAudit(db, dir, Secrets.load(dir), { checkpointEvery: () => 10_000 });

const maxRss = () => process.resourceUsage().maxRSS * 1024;
async function sampled<T>(fn: () => Promise<T> | T): Promise<{ r: T; base: number; peak: number; s: number }> {
  const base = process.memoryUsage().rss;
  const t0 = performance.now();
  const r = await fn();
  return { r, base, peak: maxRss(), s: (performance.now() - t0) / 1000 };
}

const exp = await sampled(() => exportBundle(log, { to: usb, actor: 'bench', source: 'bench', formats: ['csv'] }));
const ver = await sampled(() => core.verifyBundle(exp.r.dir));
if (!ver.r.ok) throw new Error(ver.r.problems.join('; '));
const bytes = exp.r.files.reduce((a, f) => a + f.bytes, 0);
const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
process.stdout.write(`### ${N.toLocaleString('en')} audit records, ${new Date().toISOString().slice(0, 10)}

Command: \`npx tsc -p . && node dist/bench/audit-export.js ${N}\` on ${os.cpus().length} × ${cpu}, Node ${process.version}.

| step | time | RSS before | process peak RSS after | growth |
| --- | --- | --- | --- | --- |
| write ${N.toLocaleString('en')} records (batches of 10,000, a child process) | ${writeS.toFixed(1)} s | | | |
| export (events.jsonl + events.csv, ${mb(bytes)} MB, fsync, read-back verification) | ${exp.s.toFixed(1)} s | ${mb(exp.base)} MB | ${mb(exp.peak)} MB | ${mb(exp.peak - exp.base)} MB |
| verify the bundle (the verify.mjs code) | ${ver.s.toFixed(1)} s | ${mb(ver.base)} MB | ${mb(ver.peak)} MB | ${mb(ver.peak - ver.base)} MB |
`);
db.close();
fs.rmSync(dir, { recursive: true, force: true });
fs.rmSync(usb, { recursive: true, force: true });
