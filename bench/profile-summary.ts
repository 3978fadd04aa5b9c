// Summarise a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, and self
// time by file. Usage: node dist/bench/profile-summary.js FILE.cpuprofile [N]
import fs from 'node:fs';
import path from 'node:path';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}
interface Profile {
  nodes: Node[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

const file = process.argv[2];
if (!file) {
  process.stderr.write('usage: node dist/bench/profile-summary.js FILE.cpuprofile [N]\n');
  process.exit(2);
}
const top = Number(process.argv[3] ?? 30);
process.stdout.on("error", () => process.exit(0)); // e.g. piped into head
const p = JSON.parse(fs.readFileSync(file, 'utf8')) as Profile;
const byId = new Map(p.nodes.map((n) => [n.id, n]));

// self time per node from samples × time deltas (µs)
const self = new Map<number, number>();
const samples = p.samples ?? [];
const deltas = p.timeDeltas ?? [];
for (let i = 0; i < samples.length; i++) {
  const id = samples[i]!;
  const dt = deltas[i + 1] ?? deltas[i] ?? 0;
  self.set(id, (self.get(id) ?? 0) + Math.max(0, dt));
}
const total = [...self.values()].reduce((a, b) => a + b, 0);

const short = (url: string): string => {
  if (!url) return '(native)';
  const u = url.replace(/^file:\/\//, '');
  const i = u.indexOf('node_modules/');
  if (i >= 0) return u.slice(i + 'node_modules/'.length);
  const d = u.indexOf('/dist/');
  if (d >= 0) return u.slice(d + 1);
  return path.basename(u);
};

const fn = new Map<string, number>();
const files = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const cf = n.callFrame;
  const key = `${cf.functionName || '(anonymous)'}  ${short(cf.url)}${cf.url ? `:${cf.lineNumber + 1}` : ''}`;
  fn.set(key, (fn.get(key) ?? 0) + t);
  const f = cf.url ? short(cf.url).replace(/^((@[^/]+\/)?[^/]+)\/.*$/, (m, pkg: string) => (cf.url.includes('node_modules') ? pkg : m)) : `(${cf.functionName || 'native'})`;
  files.set(f, (files.get(f) ?? 0) + t);
}
// inclusive time per function: each sample counts once for every distinct function on its stack
const parent = new Map<number, number>();
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const keyOf = (n: Node) => `${n.callFrame.functionName || '(anonymous)'}  ${short(n.callFrame.url)}${n.callFrame.url ? `:${n.callFrame.lineNumber + 1}` : ''}`;
const incl = new Map<string, number>();
for (const [id, t] of self) {
  const seen = new Set<string>();
  for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
    const k = keyOf(byId.get(cur)!);
    if (seen.has(k)) continue;
    seen.add(k);
    incl.set(k, (incl.get(k) ?? 0) + t);
  }
}

const pct = (t: number) => ((t / total) * 100).toFixed(1).padStart(5) + ' %';
process.stdout.write(`${file}: ${(total / 1e6).toFixed(2)} s sampled\n\nTop ${top} functions by self time:\n`);
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t)}  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}\n`);
process.stdout.write(`\nSelf time by file / package:\n`);
for (const [k, t] of [...files].sort((a, b) => b[1] - a[1]).slice(0, top)) process.stdout.write(`${pct(t)}  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}\n`);
process.stdout.write(`\nInclusive time of the project's own functions (dist/gateway, dist/bench) and key libraries:\n`);
for (const [k, t] of [...incl]
  .filter(([k]) => /dist\/(gateway|bench)|prom-client|better-sqlite3|secure-json-parse|undici\/lib\/(api|dispatcher\/client-h1)|fastify\/lib\/(route|handle-request|content-type-parser)|Hmac|digest|randomUUID|hash:/.test(k))
  .sort((a, b) => b[1] - a[1])
  .slice(0, top))
  process.stdout.write(`${pct(t)}  ${(t / 1000).toFixed(0).padStart(6)} ms  ${k}\n`);
