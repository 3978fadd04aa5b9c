// `npm run bench:messages`: what translating the Anthropic Messages API onto Chat Completions
// costs. One gateway, one simulated upstream, streamed `POST /v1/messages` against streamed
// `POST /v1/chat/completions` with the same prompt and answer, in one run, alternating which goes
// first each round. The cost is the median over rounds of 1 - messages/chat requests/s, each round
// comparing two back-to-back runs (robust against other work on the machine drifting between
// rounds); the best run of each path is shown too. Target: the translation costs at most 15 %
// requests/s. Writes bench/RESULTS-messages.md.
//
// Layout as bench/run.ts: the gateway pinned to core 0, this process (autocannon) and the
// upstream to core 1, when taskset and two cores are there.
//
// Environment: BENCH_SECONDS (default 8), BENCH_WARMUP_SECONDS (default 2), BENCH_ROUNDS
// (default 3), BENCH_CONNECTIONS (default 32), BENCH_NO_WRITE=1 (do not write the results file),
// BENCH_GATEWAY_BIN (another airlock.js as the gateway: A/B experiments).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { BENCH_CONTENT, BENCH_KEY, BENCH_MODEL, requestBody } from './common.js';
import { runLoad, type LoadResult } from './load.js';
import { CAN_PIN, machine, startServer, type Server } from './proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const RESULTS = path.join(ROOT, 'bench', 'RESULTS-messages.md');

if (CAN_PIN && process.env.AIRLOCK_BENCH_PINNED !== '1') {
  const r = spawnSync('taskset', ['-c', '1', process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, AIRLOCK_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

const env = (name: string, dflt: number) => {
  const n = Number(process.env[name] ?? dflt);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number`);
  return n;
};
const SECONDS = env('BENCH_SECONDS', 8);
const WARMUP = env('BENCH_WARMUP_SECONDS', 2);
const ROUNDS = Math.round(env('BENCH_ROUNDS', 3));
const CONNECTIONS = Math.round(env('BENCH_CONNECTIONS', 32));
const TARGET_COST = 0.15;

const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` };
const MESSAGES_BODY = JSON.stringify({
  model: BENCH_MODEL,
  max_tokens: 16,
  system: 'You are a helpful assistant.',
  messages: [{ role: 'user', content: 'Say something short.' }],
  stream: true,
});
const PATHS = {
  chat: { path: '/v1/chat/completions', body: requestBody(true) },
  messages: { path: '/v1/messages', body: MESSAGES_BODY },
} as const;
type PathName = keyof typeof PATHS;

const log = (s: string) => process.stderr.write(`bench: ${s}\n`);

async function startGateway(upstreamUrl: string, dir: string): Promise<Server> {
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const configFile = path.join(dir, 'airlock.yaml');
  fs.writeFileSync(
    configFile,
    YAML.stringify({
      endpoints: [{ name: 'upstream', base_url: upstreamUrl, max_concurrency: 1024 }],
      models: [{ name: BENCH_MODEL, targets: [{ endpoint: 'upstream', model: 'test-model' }], price: { input_per_million: 1, output_per_million: 2 } }],
      teams: [{ name: 'bench' }],
      keys: [{ name: 'bench', key: BENCH_KEY, team: 'bench' }],
    }),
  );
  const childEnv: NodeJS.ProcessEnv = { ...process.env };
  for (const k of Object.keys(childEnv)) if (k.startsWith('AIRLOCK_')) delete childEnv[k];
  return startServer('gateway', 0, [process.env.BENCH_GATEWAY_BIN || path.join(ROOT, 'bin', 'airlock.js'), 'serve', '--data-dir', dataDir, '--config', configFile, '--port', '0', '--admin-port', '0'], /data plane listening on (http:\/\/\S+)/, {
    readyRe: /airlock: ready/,
    env: childEnv,
  });
}

/** One checked request per path before any load: the bench must measure working answers. */
async function sanityCheck(gw: Server): Promise<void> {
  for (const [name, p] of Object.entries(PATHS)) {
    const r = await fetch(gw.url + p.path, { method: 'POST', headers: HEADERS, body: p.body });
    const t = await r.text();
    const text = [...t.matchAll(name === 'chat' ? /"content":("(?:[^"\\]|\\.)*")/g : /"text_delta","text":("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]!) as string).join('');
    const ended = name === 'chat' ? t.includes('data: [DONE]') : t.includes('event: message_stop');
    if (r.status !== 200 || text !== BENCH_CONTENT || !ended) throw new Error(`${name} check failed (${r.status}): ${t.slice(0, 500)}`);
  }
}

function clean(what: string, r: LoadResult): LoadResult {
  if (r.non2xx || r.errors || r.timeouts || r.requests === 0) throw new Error(`${what}: ${r.requests} ok, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts`);
  return r;
}

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-msgs-'));
const upstream = await startServer('upstream', 1, [path.join(HERE, 'upstream-server.js')], /upstream listening on (http:\/\/\S+)/);
let gw: Server | undefined;
try {
  gw = await startGateway(upstream.url, dir);
  await sanityCheck(gw);
  const best: Record<PathName, LoadResult | undefined> = { chat: undefined, messages: undefined };
  for (const name of Object.keys(PATHS) as PathName[]) {
    clean(`${name} warm-up`, await runLoad({ url: gw.url + PATHS[name].path, headers: HEADERS, body: PATHS[name].body, connections: 8, seconds: WARMUP }));
  }
  const costs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const order: PathName[] = round % 2 === 0 ? ['chat', 'messages'] : ['messages', 'chat'];
    const rps: Partial<Record<PathName, number>> = {};
    for (const name of order) {
      const r = clean(`${name} round ${round + 1}`, await runLoad({ url: gw.url + PATHS[name].path, headers: HEADERS, body: PATHS[name].body, connections: CONNECTIONS, seconds: SECONDS }));
      log(`round ${round + 1}/${ROUNDS} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`);
      rps[name] = r.rps;
      if (!best[name] || r.rps > best[name].rps) best[name] = r;
    }
    costs.push(1 - rps.messages! / rps.chat!);
  }
  const chat = best.chat!;
  const msgs = best.messages!;
  const sorted = [...costs].sort((a, b) => a - b);
  const cost = sorted.length % 2 ? sorted[(sorted.length - 1) / 2]! : (sorted[sorted.length / 2 - 1]! + sorted[sorted.length / 2]!) / 2;
  const m = machine();
  const row = (name: string, r: LoadResult) => `| ${name} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |`;
  const md = [
    '# /v1/messages (translated) vs /v1/chat/completions, streamed, through the gateway',
    '',
    `Command: \`BENCH_SECONDS=${SECONDS} BENCH_ROUNDS=${ROUNDS} BENCH_CONNECTIONS=${CONNECTIONS} npm run bench:messages\` (${new Date().toISOString()})`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB, Node ${m.node}, ${m.kernel}; gateway ${CAN_PIN ? 'pinned to core 0, load and upstream to core 1' : 'not pinned (no taskset or one core)'}.`,
    `Load average when it ended (other work on the machine): ${os.loadavg().map((x) => x.toFixed(1)).join(', ')}.`,
    `Each path: ${CONNECTIONS} connections, ${SECONDS} s per run, best of ${ROUNDS} alternating rounds; the answer is 8 words (one chunk each) plus role, finish and usage chunks.`,
    '',
    '| path (best run) | requests/s | p50 ms | p99 ms |',
    '| --- | --- | --- | --- |',
    row('`POST /v1/chat/completions` stream', chat),
    row('`POST /v1/messages` stream (translated)', msgs),
    '',
    `Per round, 1 - messages/chat requests/s: ${costs.map((c) => `${(c * 100).toFixed(1)} %`).join(', ')}.`,
    '',
    `Translation cost (median of the rounds): ${(cost * 100).toFixed(1)} % requests/s (target ≤ ${TARGET_COST * 100} %): ${cost <= TARGET_COST ? 'met' : 'missed'}.`,
    '',
  ].join('\n');
  process.stdout.write(md);
  if (process.env.BENCH_NO_WRITE !== '1') fs.writeFileSync(RESULTS, md);
} finally {
  await gw?.stop();
  await upstream.stop();
  fs.rmSync(dir, { recursive: true, force: true });
}
