// `npm run bench:mcp`: tool-call latency through the gateway's /mcp against calling the same MCP
// server directly, in one run, one call at a time (an agent's sequential tool calls), alternating
// direct and gateway calls so both see the same machine state. The gateway runs pinned to core 0,
// the upstream and this process to core 1 (as bench/run.ts). Writes bench/MCP-RESULTS.md.
//
// Environment: BENCH_MCP_CALLS (measured calls per path, default 3000), BENCH_MCP_WARMUP (default
// 300), BENCH_NO_WRITE=1 (print only).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CAN_PIN, machine, startServer, type Server } from './proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const RESULTS = path.join(ROOT, 'bench', 'MCP-RESULTS.md');
const KEY = 'sk-airlock-bench-agent-000000000000000000001';
const CALLS = Number(process.env.BENCH_MCP_CALLS ?? 3000);
const WARMUP = Number(process.env.BENCH_MCP_WARMUP ?? 300);

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
  const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-mcp-'));
  const configFile = path.join(dataDir, 'airlock.yaml');
  fs.writeFileSync(configFile, YAML.stringify({ mcp_servers: [{ name: 'bench', transport: 'http', url: up.url }], agents: [{ name: 'bench', key: KEY, tools: ['bench__*'] }] }));
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(env)) if (k.startsWith('AIRLOCK_')) delete env[k];
  const gw = await startServer('gateway', 0, [path.join(ROOT, 'bin', 'airlock.js'), 'serve', '--data-dir', dataDir, '--config', configFile, '--port', '0', '--admin-port', '0'], /data plane listening on (http:\/\/\S+)/, { readyRe: /airlock: ready/, env });
  servers.push(gw);

  const direct = await client(up.url, {});
  const viaGateway = await client(`${gw.url}/mcp`, { authorization: `Bearer ${KEY}` });
  const call = async (c: Client, name: string, i: number) => {
    const r = await c.callTool({ name, arguments: { a: i, b: 1 } });
    const text = (r.content as { type: string; text?: string }[])[0]?.text;
    if (text !== String(i + 1)) throw new Error(`${name}: unexpected answer ${JSON.stringify(r)}`);
  };
  for (let i = 0; i < WARMUP; i++) {
    await call(direct, 'add', i);
    await call(viaGateway, 'bench__add', i);
  }
  const d: number[] = [];
  const g: number[] = [];
  for (let i = 0; i < CALLS; i++) {
    // alternate which goes first, so neither always runs right after the other
    const order: [Client, string, number[]][] = i % 2 ? [[direct, 'add', d], [viaGateway, 'bench__add', g]] : [[viaGateway, 'bench__add', g], [direct, 'add', d]];
    for (const [c, name, out] of order) {
      const t0 = performance.now();
      await call(c, name, i);
      out.push(performance.now() - t0);
    }
  }
  await direct.close();
  await viaGateway.close();
  d.sort((a, b) => a - b);
  g.sort((a, b) => a - b);
  const row = (what: string, x: number[]) => `| ${what} | ${ms(pct(x, 50))} | ${ms(pct(x, 99))} |`;
  const added50 = pct(g, 50) - pct(d, 50);
  const added99 = pct(g, 99) - pct(d, 99);
  const m = machine();
  const report = [
    '# MCP tool-call latency: through the gateway vs direct',
    '',
    `Command: \`npm run bench:mcp\` (BENCH_MCP_CALLS=${CALLS}, warm-up ${WARMUP}). ${new Date().toISOString().slice(0, 10)}.`,
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, Node ${m.node}, ${m.kernel}. ${CAN_PIN ? 'Gateway pinned to core 0; upstream and client to core 1.' : 'Not pinned (taskset unavailable).'} Load average at the end: ${os.loadavg().map((x) => x.toFixed(1)).join(', ')} (figures from a busy machine are not the gateway's).`,
    '',
    'One `tools/call` at a time over Streamable HTTP (the SDK Client), to an SDK-built MCP server',
    '(`add`), directly and through `/mcp` (agent key check, permission check, rate-limit check,',
    'guard seam, per-session upstream session, ledger row), alternating.',
    '',
    '| path | p50 | p99 |',
    '| --- | --- | --- |',
    row('direct', d),
    row('through the gateway', g),
    '',
    `Added by the gateway: p50 ${ms(added50)}, p99 ${ms(added99)} (target: added p50 ≤ 1 ms: ${added50 <= 1 ? 'met' : 'missed'}).`,
    '',
  ].join('\n');
  process.stdout.write(report);
  if (process.env.BENCH_NO_WRITE !== '1') fs.writeFileSync(RESULTS, report);
} finally {
  for (const s of servers.reverse()) await s.stop();
}
