// `npm run bench:gc`: where the gateway's added p99 at one connection comes from. Each variant is
// a fresh gateway (pinned to core 0, as in run.ts) started with --trace-gc and loaded by one
// connection of sequential requests; reported per variant: latency percentiles, how many requests
// each young-generation collection (scavenge) of the main isolate serves, the scavenges' pause
// times (as V8 reports them), the writer thread's isolate's scavenges, and CPU per thread.
// GC counts and pauses are mechanisms that a busy machine disturbs far less than p99 itself.
//
// Environment:
//   BENCH_SECONDS        measured seconds per variant and round (default 8)
//   BENCH_ROUNDS         rounds; each round runs every variant once, in turn (default 2)
//   BENCH_MODES          non-stream,stream (default non-stream)
//   BENCH_GC_VARIANTS    JSON: [{name, settings?, nodeArgs?}] (default: the gateway as shipped,
//                        traces off, traces and the data-plane audit off)
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import YAML from 'yaml';
import { BENCH_KEY, BENCH_MODEL, requestBody } from './common.js';
import { startServer, type Server } from './proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const SECONDS = Number(process.env.BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 2);
const MODES = (process.env.BENCH_MODES ?? 'non-stream').split(',');
interface Variant {
  name: string;
  settings?: Record<string, unknown>;
  nodeArgs?: string[];
}
const VARIANTS: Variant[] = process.env.BENCH_GC_VARIANTS
  ? (JSON.parse(process.env.BENCH_GC_VARIANTS) as Variant[])
  : [
      { name: 'gateway' },
      { name: 'traces off', settings: { telemetry: { traces: false } } },
      { name: 'traces+audit off', settings: { telemetry: { traces: false }, audit: { data_plane: false } } },
    ];

interface Gc {
  isolate: string;
  kind: string;
  pauseMs: number;
}

/** --trace-gc lines: "[pid:0xISOLATE]  N ms: Scavenge A (B) -> C (D) MB, PAUSE / X ms ..." */
function gcLines(text: string): Gc[] {
  const out: Gc[] = [];
  for (const m of text.matchAll(/\[\d+:(0x[0-9a-f]+)\][^:]*: (Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)[^,]*, ([\d.]+) \/ [\d.]+ ms/g)) out.push({ isolate: m[1]!, kind: m[2]!, pauseMs: Number(m[3]) });
  return out;
}

function threadCpuMs(pid: number): Map<string, number> {
  const m = new Map<string, number>();
  for (const t of fs.readdirSync(`/proc/${pid}/task`)) {
    try {
      const st = fs.readFileSync(`/proc/${pid}/task/${t}/stat`, 'utf8');
      const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
      m.set(t, ((Number(f[11]) + Number(f[12])) * 1000) / 100);
    } catch {
      // the thread ended
    }
  }
  return m;
}

const q = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;

async function measure(v: Variant, mode: string, upstreamUrl: string): Promise<string[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-gc-'));
  try {
    fs.mkdirSync(path.join(dir, 'data'));
    fs.writeFileSync(
      path.join(dir, 'airlock.yaml'),
      YAML.stringify({
        endpoints: [{ name: 'upstream', base_url: upstreamUrl }],
        models: [{ name: BENCH_MODEL, targets: [{ endpoint: 'upstream', model: 'test-model' }], price: { input_per_million: 1, output_per_million: 2 } }],
        teams: [{ name: 'bench' }],
        keys: [{ name: 'bench', key: BENCH_KEY, team: 'bench' }],
        settings: v.settings ?? {},
      }),
    );
    const env: NodeJS.ProcessEnv = { ...process.env };
    for (const k of Object.keys(env)) if (k.startsWith('AIRLOCK_')) delete env[k];
    const s: Server = await startServer(
      v.name,
      0,
      ['--trace-gc', ...(v.nodeArgs ?? []), path.join(ROOT, 'bin', 'airlock.js'), 'serve', '--data-dir', path.join(dir, 'data'), '--config', path.join(dir, 'airlock.yaml'), '--port', '0', '--admin-port', '0'],
      /data plane listening on (http:\/\/\S+)/,
      { readyRe: /airlock: ready/, env },
    );
    try {
      const agent = new Agent({ connections: 1 });
      const body = requestBody(mode === 'stream');
      const once = async () => {
        const r = await request(`${s.url}/v1/chat/completions`, { method: 'POST', dispatcher: agent, headers: { authorization: `Bearer ${BENCH_KEY}`, 'content-type': 'application/json' }, body });
        await r.body.text();
        if (r.statusCode !== 200) throw new Error(`${v.name}: status ${r.statusCode}`);
      };
      for (let i = 0; i < 2000; i++) await once(); // the JIT settles; start-up's collections are over
      const from = s.out().length;
      const cpu0 = threadCpuMs(s.pid);
      const lat: number[] = [];
      const end = performance.now() + SECONDS * 1000;
      while (performance.now() < end) {
        const t = performance.now();
        await once();
        lat.push(performance.now() - t);
      }
      const cpu1 = threadCpuMs(s.pid);
      await agent.close();
      const gcs = gcLines(s.out().slice(from));
      const main = gcs.filter((g) => g.isolate === gcs.find((x) => x.kind === 'Scavenge')?.isolate);
      // the main isolate scavenges most often; the other one is the writer thread's
      const counts = new Map<string, number>();
      for (const g of gcs) if (g.kind === 'Scavenge') counts.set(g.isolate, (counts.get(g.isolate) ?? 0) + 1);
      const mainIso = [...counts.entries()].sort((a, b) => b[1] - a[1])[0]?.[0];
      const sc = gcs.filter((g) => g.kind === 'Scavenge' && g.isolate === mainIso).map((g) => g.pauseMs).sort((a, b) => a - b);
      const writerSc = gcs.filter((g) => g.kind === 'Scavenge' && g.isolate !== mainIso).map((g) => g.pauseMs).sort((a, b) => a - b);
      const majors = main.filter((g) => g.kind !== 'Scavenge').length;
      lat.sort((a, b) => a - b);
      const n = lat.length;
      const mainTid = String(s.pid);
      const cpu = [...cpu1.entries()].map(([t, ms]) => [t, ms - (cpu0.get(t) ?? 0)] as const).filter(([, ms]) => ms > 0);
      const mainCpu = cpu.find(([t]) => t === mainTid)?.[1] ?? 0;
      const other = cpu.filter(([t]) => t !== mainTid).map(([, ms]) => ms);
      return [
        v.name,
        mode,
        String(n),
        q(lat, 0.5).toFixed(3),
        q(lat, 0.99).toFixed(3),
        String(lat.filter((x) => x > 2 * q(lat, 0.5) + 1).length),
        sc.length ? (n / sc.length).toFixed(0) : '-',
        sc.length ? `${q(sc, 0.5).toFixed(2)} / ${q(sc, 0.9).toFixed(2)}` : '-',
        writerSc.length ? `${writerSc.length}, ${q(writerSc, 0.5).toFixed(2)}` : '0',
        String(majors),
        ((mainCpu * 1000) / n).toFixed(0),
        ((Math.max(0, ...other) * 1000) / n).toFixed(0),
      ];
    } finally {
      await s.stop();
    }
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const upstream = await startServer('upstream', 1, [path.join(HERE, 'upstream-server.js')], /upstream listening on (http:\/\/\S+)/);
const rows: string[][] = [];
try {
  for (let r = 0; r < ROUNDS; r++)
    for (const mode of MODES)
      for (const v of r % 2 ? [...VARIANTS].reverse() : VARIANTS) {
        const row = await measure(v, mode, upstream.url);
        console.log(`round ${r + 1}: ${row.join(' | ')}`);
        rows.push(row);
      }
} finally {
  await upstream.stop();
}
const head = ['variant', 'mode', 'requests', 'p50 ms', 'p99 ms', 'slow requests (> 2×p50 + 1 ms)', 'requests per main scavenge', 'main scavenge pause p50 / p90 ms', 'writer scavenges, pause p50 ms', 'main major GCs', 'main thread CPU µs/req', 'busiest other thread CPU µs/req'];
console.log(`\n| ${head.join(' | ')} |\n| ${head.map(() => '--').join(' | ')} |`);
for (const r of rows) console.log(`| ${r.join(' | ')} |`);
