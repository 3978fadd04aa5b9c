// `npm run bench:mcp`: tool-call latency through the gateway's /mcp against calling the same MCP
// server directly, in one run, one call at a time (an agent's sequential tool calls), alternating
// direct and gateway calls so both see the same machine state. The gateway runs pinned to core 0,
// the upstream and this process to core 1 (as bench/run.ts). Writes bench/MCP-RESULTS.md.
//
// Environment: BENCH_MCP_CALLS (measured calls per path, default 3000), BENCH_MCP_WARMUP (default
// 300), BENCH_NO_WRITE=1 (print only), BENCH_PROFILE_DIR (run the gateway(s) with --cpu-prof,
// writing NAME-TIME.cpuprofile there; summarise with dist/bench/profile-summary.js),
// BENCH_MCP_BASELINE=DIR (also run the gateway of another build — DIR holds its bin/airlock.js and
// dist/, e.g. a checkout of the parent commit after `npm run build` — as a third path in the same
// run, interleaved: an A/B of a change on one machine state). Also reported: the gateway's CPU time
// per call (its process, and its main thread), from /proc.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CAN_PIN, cpuMs, machine, mainThreadCpuMs, startServer, type Server } from './proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const RESULTS = path.join(ROOT, 'bench', 'MCP-RESULTS.md');
const KEY = 'sk-airlock-bench-agent-000000000000000000001';
const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 3000);
const WARMUP = Number(process.env.BENCH_MCP_WARMUP ?? 300);
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR ? path.resolve(process.env.BENCH_PROFILE_DIR) : undefined;
const BASELINE = process.env.BENCH_MCP_BASELINE ? path.resolve(process.env.BENCH_MCP_BASELINE) : undefined;

async function client(url: string, headers: Record<string, string>): Promise<Client> {
  const c = new Client({ name: 'bench', version: '1' }, { capabilities: {} });
  await c.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }));
  return c;
}

const pct = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
const ms = (n: number) => `${n.toFixed(3)} ms`;

const servers: Server[] = [];
try {
  const up = await startServer('mcp upstream', 1, [path.join(HERE, 'mcp-upstream.js')], /mcp upstream listening on (http:\/\/\S+)/);
  servers.push(up);
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AIRLOCK_')) delete env[k];
  const gateway = async (name: string, root: string): Promise<Server> => {
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-mcp-'));
    const configFile = path.join(dataDir, 'airlock.yaml');
    fs.writeFileSync(configFile, YAML.stringify({ mcp_servers: [{ name: 'bench', transport: 'http', url: up.url }], agents: [{ name: 'bench', key: KEY, tools: ['bench__*'] }] }));
    const prof = PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
    const gw = await startServer(name, 0, [...prof, path.join(root, 'bin', 'airlock.js'), 'serve', '--data-dir', dataDir, '--config', configFile, '--port', '0', '--admin-port', '0'], /data plane listening on (http:\/\/\S+)/, { readyRe: /airlock: ready/, env });
    servers.push(gw);
    return gw;
  };
  interface Path {
    what: string;
    client: Client;
    tool: string;
    times: number[];
    pid?: number;
    cpu?: { total: number; main: number };
  }
  const gw = await gateway('gateway', ROOT);
  const paths: Path[] = [
    { what: 'direct', client: await client(up.url, {}), tool: 'add', times: [] },
    { what: 'through the gateway', client: await client(`${gw.url}/mcp`, { authorization: `Bearer ${KEY}` }), tool: 'bench__add', times: [], pid: gw.pid },
  ];
  if (BASELINE) {
    const base = await gateway('baseline', BASELINE);
    paths.push({ what: `through the baseline gateway (${BASELINE})`, client: await client(`${base.url}/mcp`, { authorization: `Bearer ${KEY}` }), tool: 'bench__add', times: [], pid: base.pid });
  }
  const call = async (p: Path, i: number) => {
    const r = await p.client.callTool({ name: p.tool, arguments: { a: i, b: 1 } });
    const text = (r.content as { type: string; text?: string }[])[0]?.text;
    if (text !== String(i + 1)) throw new Error(`${p.what}: unexpected answer ${JSON.stringify(r)}`);
  };
  for (let i = 0; i < WARMUP; i++) for (const p of paths) await call(p, i);
  for (const p of paths) if (p.pid !== undefined) p.cpu = { total: cpuMs(p.pid), main: mainThreadCpuMs(p.pid) };
  for (let i = 0; i < CALLS; i++) {
    // rotate which goes first, so none always runs right after another
    for (let k = 0; k < paths.length; k++) {
      const p = paths[(i + k) % paths.length]!;
      const t0 = performance.now();
      await call(p, i);
      p.times.push(performance.now() - t0);
    }
  }
  for (const p of paths) if (p.pid !== undefined && p.cpu) p.cpu = { total: cpuMs(p.pid) - p.cpu.total, main: mainThreadCpuMs(p.pid) - p.cpu.main };
  for (const p of paths) await p.client.close();
  for (const p of paths) p.times.sort((a, b) => a - b);
  const us = (x: number) => `${Math.round((x * 1000) / CALLS)} µs`;
  const row = (p: Path) => `| ${p.what} | ${ms(pct(p.times, 50))} | ${ms(pct(p.times, 99))} | ${p.cpu ? `${us(p.cpu.total)} (main thread ${us(p.cpu.main)})` : ''} |`;
  const direct = paths[0]!;
  const added = (p: Path) => `p50 ${ms(pct(p.times, 50) - pct(direct.times, 50))}, p99 ${ms(pct(p.times, 99) - pct(direct.times, 99))}`;
  const added50 = pct(paths[1]!.times, 50) - pct(direct.times, 50);
  const m = machine();
  const report = [
    '# MCP tool-call latency: through the gateway vs direct',
    '',
    `Command: \`npm run bench:mcp\` (BENCH_MCP_CALLS=${CALLS}, warm-up ${WARMUP}${BASELINE ? ', BENCH_MCP_BASELINE=DIR' : ''}). ${new Date().toISOString().slice(0, 10)}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, Node ${m.node}, ${m.kernel}. ${CAN_PIN ? 'Gateway pinned to core 0; upstream and client to core 1.' : 'Not pinned (taskset unavailable).'} Load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(', ')} (figures from a busy machine are not the gateway's).`,
    '',
    'One `tools/call` at a time over Streamable HTTP (the SDK Client), to an SDK-built MCP server',
    '(`add`), directly and through `/mcp` (agent key check, permission check, rate-limit check,',
    'guard seam, per-session upstream session, ledger row), in rotation.',
    '',
    '| path | p50 | p99 | gateway CPU per call |',
    '| --- | --- | --- | --- |',
    ...paths.map(row),
    '',
    ...paths.slice(1).map((p) => `Added ${p.what}: ${added(p)}.`),
    '',
    `Target: added p50 ≤ 1 ms: ${added50 <= 1 ? 'met' : 'missed'}.`,
    '',
  ].join('\n');
  process.stdout.write(report);
  if (process.env.BENCH_NO_WRITE !== '1') fs.writeFileSync(RESULTS, report);
} finally {
  for (const s of servers.reverse()) await s.stop();
}
