// `npm run bench`: the gateway against a bare passthrough (fastify + undici, nothing else) under
// the same load, in one run, and bench/RESULTS.md with the figures, the command and the machine.
//
// Layout (2+ cores): each server under test runs alone, pinned to core 0 (`taskset -c 0`); this
// process (autocannon, the load) and the simulated upstream run pinned to core 1. The servers are
// measured one after the other, never at the same time.
//
// Environment:
//   BENCH_SECONDS         measured seconds per run (default 8)
//   BENCH_WARMUP_SECONDS  warm-up seconds before each measured run (default 2)
//   BENCH_ROUNDS          rounds (default 2): each round starts, measures and stops every server in
//                         turn, alternating which goes first; per configuration the round with the
//                         most requests/s (the least disturbed one) is reported. The req/s ratio
//                         targets (gateway vs passthrough, guardrails and tracing on vs off) are
//                         judged by the median of the per-round ratios from 3 rounds on (the two
//                         servers of a round are measured minutes apart; best rounds of each can
//                         come from different phases of the host), by the best rounds below 3
//   BENCH_SLICES          0 (default) or N: each round starts every server once and keeps them all
//                         up (each pinned to core 0, idle while another is measured), and measures
//                         each configuration as N slices of BENCH_SECONDS, the servers alternating
//                         within each slice (A B, then B A, ...). Every slice pairs the servers
//                         seconds apart instead of a minute, so the host's phases (which move one
//                         server's req/s by 25-50 % between rounds here) cancel out of the paired
//                         ratios; each slice counts as a round in the tables and the medians
//   BENCH_TOGETHER=1      with BENCH_SLICES: in each slice every server is loaded at the same time
//                         (each by its own connections), all pinned to the one server core, so the
//                         kernel shares that core out between them and the host's phase is the same
//                         for each: the paired req/s ratio is then the inverse of the CPU-per-request
//                         ratio, without the phase noise of measuring one after the other (an on/off
//                         A/B of two gateways; "other load" leaves the others out). The kernel gives
//                         equal shares only to servers that are always runnable: the bare passthrough
//                         waits on I/O more and took ~46 % against the gateway's ~54 %, so for gateway
//                         vs passthrough read the CPU/req ratio, not the req/s ratio
//   BENCH_CONNECTIONS     comma-separated concurrencies (default 1,32,256)
//   BENCH_SERVERS         comma-separated subset of passthrough,dispatch,gateway,governed,guardrails,
//                         untraced,variant (default passthrough,gateway); dispatch: the bare passthrough
//                         on undici's dispatch API instead of request() + pipe (a cheaper baseline, as
//                         the gateway's attempt reads its upstream since the thirteenth session: the
//                         targets stay judged against "passthrough", this one is for reference); governed: the gateway with budgets and rate limits on the
//                         key and its team (never reached), to measure governance's cost against "gateway"
//                         in one run; guardrails: the gateway with the default policy set, pii + secrets
//                         redacted on input and output, compared with the gateway without policies;
//                         untraced: the gateway with settings.telemetry.traces off (no spans stored),
//                         compared with the gateway, whose traces are on by default;
//                         variant: the gateway with BENCH_VARIANT_ENV / BENCH_VARIANT_NODE_ARGS /
//                         BENCH_VARIANT_SETTINGS (same forms as the BENCH_GATEWAY_* knobs) on top, for
//                         an A/B experiment measured in the same interleaved rounds as "gateway";
//                         BENCH_VARIANT_BIN runs another build's airlock.js as the variant only, and
//                         BENCH_VARIANT_GUARDRAILS=1 gives it the guardrails server's policy set (so
//                         BENCH_SERVERS=gateway,guardrails,variant compares two builds' guardrails)
//   BENCH_MODES           comma-separated subset of non-stream,stream (default both)
//   BENCH_PROMPT_BYTES    the measured requests' user message is that many bytes of ordinary
//                         business prose (default: a 20-byte prompt); the guardrails comparison's
//                         target is for a 4 kB prompt: BENCH_PROMPT_BYTES=4096
//   BENCH_PROMPT_KIND     prose (default) or mixed: the prose with numbers, dates, ids and
//                         punctuation, so every detector's expression runs (none finds anything)
//   BENCH_PROFILE_DIR     run the servers with --cpu-prof, writing NAME-TIME.cpuprofile there
//                         (summarise with: node dist/bench/profile-summary.js FILE)
//   BENCH_SERVER_LOG_DIR  write what each server printed there when it stops (NAME-PID.log), e.g.
//                         with BENCH_GATEWAY_NODE_ARGS=--trace-gc to count collections
//   BENCH_NO_WRITE=1      do not write bench/RESULTS.md (it is written only for a full run anyway)
//   BENCH_GATEWAY_BIN     another airlock.js to run as the gateway (A/B experiments)
//   BENCH_VARIANT_BIN     another airlock.js to run as "variant" only (A/B of two builds in the
//                         same interleaved rounds, e.g. a checkout of main built in /tmp)
//   BENCH_GATEWAY_NODE_ARGS  extra node options for the gateway, space-separated (A/B experiments)
//   BENCH_GATEWAY_ENV     extra environment for the gateway, space-separated NAME=value (A/B
//                         experiments; the gateway otherwise gets no AIRLOCK_* variable of this shell)
//   BENCH_GATEWAY_SETTINGS   a JSON object merged into the gateway's settings (A/B experiments, e.g.
//                         '{"audit":{"data_plane":false},"telemetry":{"traces":false}}')
//   BENCH_SLOW_STREAMS    streams of the slow-streams scenario (default 1000; 0 skips it): that many
//                         streaming requests at once over as many connections, each answered with
//                         40 content chunks 50-100 ms apart (~3-4 s), run on a fresh server after
//                         the rounds
//   BENCH_SLOW_SETTLE_SECONDS  how long the server is left idle after the slow streams before
//                         its RSS is compared with its idle RSS (default 75: the gateway's idle
//                         collection runs 5-10 s and again ~65 s after the last request)
//
// Exits non-zero only when the harness itself fails (a server does not start, a request is not
// answered 2xx, ...); missed targets are reported, not fatal.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { BENCH_CONTENT, BENCH_KEY, BENCH_MODEL, SLOW_CHUNK_DELAY_MS, SLOW_CONTENT, SLOW_PROMPT, businessPrompt, requestBody } from './common.js';
import { runLoad, type LoadResult } from './load.js';
import { runSlowStreams, type SlowResult } from './slow.js';
import { CAN_PIN, cpuMs, cpusAllowed, mainThreadCpuMs, machine, rssMB, startServer, systemBusyMs, type Server } from './proc.js';

const HERE = path.dirname(fileURLToPath(import.meta.url)); // dist/bench
const ROOT = path.resolve(HERE, '../..');
const RESULTS = path.join(ROOT, 'bench', 'RESULTS.md');
const SERVER_CORE = 0;
const LOAD_CORE = 1;

// ---- pin this process (the load generator) to core 1 by re-executing under taskset ----
if (CAN_PIN && process.env.AIRLOCK_BENCH_PINNED !== '1') {
  const r = spawnSync('taskset', ['-c', String(LOAD_CORE), process.execPath, ...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, AIRLOCK_BENCH_PINNED: '1' },
  });
  process.exit(r.status ?? 1);
}

// ---- settings ----
function num(name: string, dflt: number, zeroOk = false): number {
  const v = process.env[name];
  if (v === undefined || v === '') return dflt;
  const n = Number(v);
  if (!Number.isFinite(n) || n < 0 || (n === 0 && !zeroOk)) throw new Error(`${name} must be a positive number, not "${v}"`);
  return n;
}
function list(name: string, dflt: string[], allowed?: string[]): string[] {
  const v = process.env[name];
  const items = v ? v.split(',').map((s) => s.trim()).filter(Boolean) : dflt;
  if (allowed) for (const i of items) if (!allowed.includes(i)) throw new Error(`${name}: unknown "${i}" (use ${allowed.join(', ')})`);
  return items;
}
const SECONDS = num('BENCH_SECONDS', 8);
const WARMUP = num('BENCH_WARMUP_SECONDS', 2);
const ROUNDS = Math.round(num('BENCH_ROUNDS', 2, true)); // 0: only the slow-streams scenario
const SLICES = Math.round(num('BENCH_SLICES', 0, true));
const TOGETHER = process.env.BENCH_TOGETHER === '1';
if (TOGETHER && !SLICES) throw new Error('BENCH_TOGETHER=1 needs BENCH_SLICES (the servers kept up together)');
/** the rounds of the tables and the paired ratios: a round, or with BENCH_SLICES each slice of one */
const PAIRINGS = ROUNDS * Math.max(1, SLICES);
const CONNECTIONS = list('BENCH_CONNECTIONS', ['1', '32', '256']).map((s) => {
  const n = Number(s);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_CONNECTIONS: "${s}" is not a positive integer`);
  return n;
});
type ServerName = 'passthrough' | 'dispatch' | 'gateway' | 'governed' | 'guardrails' | 'untraced' | 'variant';
type Mode = 'non-stream' | 'stream';
const SERVERS = list('BENCH_SERVERS', ['passthrough', 'gateway'], ['passthrough', 'dispatch', 'gateway', 'governed', 'guardrails', 'untraced', 'variant']) as ServerName[];
const MODES = list('BENCH_MODES', ['non-stream', 'stream'], ['non-stream', 'stream']) as Mode[];
const PROFILE_DIR = process.env.BENCH_PROFILE_DIR ? path.resolve(process.env.BENCH_PROFILE_DIR) : undefined;

// Targets (issue 7)
const TARGET_RPS_RATIO = 0.75; // at 32 connections
const TARGET_GOVERNED_RPS_RATIO = 0.9; // issue 8: governance on vs off, at 32 connections
const TARGET_ADDED_P50_MS = 0.2; // at 1 connection
const TARGET_ADDED_P99_MS = 1; // at 1 connection
const TARGET_IDLE_RSS_MB = 100;
const TARGET_SLOW_PEAK_RSS_MB = 250; // during the slow streams
const TARGET_SLOW_BACK_TO_IDLE = 0.1; // RSS after the slow streams within ± 10 % of idle
const TARGET_GUARD_RPS_RATIO = 0.85; // guardrails on vs off, at 32 connections
const PROMPT_BYTES = Number(process.env.BENCH_PROMPT_BYTES ?? 0);
if (!Number.isInteger(PROMPT_BYTES) || PROMPT_BYTES < 0) throw new Error('BENCH_PROMPT_BYTES must be a whole number of bytes');
/** the measured requests' user message (undefined: requestBody's short default) */
const PROMPT_KIND = process.env.BENCH_PROMPT_KIND ?? 'prose';
if (PROMPT_KIND !== 'prose' && PROMPT_KIND !== 'mixed') throw new Error('BENCH_PROMPT_KIND must be prose or mixed');
const PROMPT = PROMPT_BYTES ? businessPrompt(PROMPT_BYTES, PROMPT_KIND === 'mixed') : undefined;
const TARGET_GUARD_ADDED_P50_MS = 0.5; // guardrails on vs off, at 1 connection
const TARGET_TRACE_RPS_RATIO = 0.9; // tracing (local span store) on vs off, at 32 connections
/** A 32-connection ratio is only meaningful when both servers are CPU-bound on their core. */
const SATURATED_CPU_PCT = 90;

const SLOW_STREAMS = Math.round(num('BENCH_SLOW_STREAMS', 1000, true));
const SLOW_SETTLE_SECONDS = num('BENCH_SLOW_SETTLE_SECONDS', 75);
/** How long a server is left alone after its start before its idle RSS is read (V8's memory
 * reducer shrinks the young generation grown by start-up ~8 s after activity stops). */
const IDLE_SETTLE_SECONDS = 12;

interface RunRecord extends LoadResult {
  round: number;
  server: ServerName;
  mode: Mode;
  connections: number;
  cpuMsTotal: number;
  /** server CPU time per request, µs */
  cpuUsPerReq: number;
  /** the part of cpuUsPerReq spent outside the main thread (writer threads, GC helpers, libuv) */
  otherThreadsUsPerReq: number;
  /** server CPU use during the run, % of one core */
  cpuPct: number;
  /** CPU used during the run by processes other than the server, the upstream and this one, % of one core */
  otherPct: number;
}
interface ServerRecord {
  round: number;
  name: ServerName;
  /** 1 s after the server said it was ready */
  startRssMB: number;
  /** IDLE_SETTLE_SECONDS after it was ready, nothing served yet but one request of each mode */
  idleRssMB: number;
  afterRssMB: number;
  cpus: string;
}
interface SlowRecord extends SlowResult {
  name: ServerName;
  idleRssMB: number;
  /** RSS after each second of the settle period */
  settleRssMB: number[];
  /** seconds after the streams until RSS was within ± TARGET_SLOW_BACK_TO_IDLE of idle (and stayed) */
  backAfterS: number | undefined;
  cpuS: number;
  otherPct: number;
}

const log = (s: string) => process.stdout.write(s + '\n');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const tmpRoots: string[] = [];

// ---- starting the processes ----

function profileArgs(name: ServerName): string[] {
  return PROFILE_DIR ? ['--cpu-prof', `--cpu-prof-dir=${PROFILE_DIR}`, `--cpu-prof-name=${name}-${Date.now()}.cpuprofile`] : [];
}

async function startUpstream(): Promise<Server> {
  return startServer('upstream', LOAD_CORE, [path.join(HERE, 'upstream-server.js')], /upstream listening on (http:\/\/\S+)/);
}

// Every server runs with one malloc arena (glibc), as the server bundle's launcher and the
// desktop shell start the gateway (MALLOC_ARENA_MAX=1 unless set; gateway/ops/package-server.ts,
// main/lib/gateway-env.ts); the passthrough too, so the two differ only in what they run.
// BENCH_GATEWAY_ENV / BENCH_VARIANT_ENV may set another value (glibc's default is 8 arenas per
// core: e.g. BENCH_VARIANT_ENV=MALLOC_ARENA_MAX=16 compares with it).
const SERVER_ENV: NodeJS.ProcessEnv = { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '1' };

async function startPassthrough(upstreamUrl: string, name: 'passthrough' | 'dispatch'): Promise<Server> {
  const args = [...profileArgs(name), path.join(HERE, 'passthrough.js'), upstreamUrl, ...(name === 'dispatch' ? ['--dispatch'] : [])];
  return startServer(name, SERVER_CORE, args, /passthrough listening on (http:\/\/\S+)/, { env: SERVER_ENV });
}

/** Budgets and limits far above what a bench run spends: checked on every request, never refusing. */
const GOVERNANCE = { budget: { amount: 1e12, period: 'month' }, limits: { rpm: 1e9, tpm: 1e12 } };

const EXTRA_SETTINGS = ((): Record<string, unknown> => {
  const raw = process.env.BENCH_GATEWAY_SETTINGS;
  if (!raw) return {};
  const v: unknown = JSON.parse(raw);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('BENCH_GATEWAY_SETTINGS: not a JSON object');
  return v as Record<string, unknown>;
})();

async function startServerNamed(name: ServerName, upstreamUrl: string): Promise<Server> {
  return name === 'passthrough' || name === 'dispatch' ? startPassthrough(upstreamUrl, name) : startGateway(upstreamUrl, name);
}

/** "NAME=value NAME2=value2" → pairs (BENCH_GATEWAY_ENV, BENCH_VARIANT_ENV) */
function envPairs(knob: string): [string, string][] {
  return (process.env[knob] ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map((kv) => {
      const at = kv.indexOf('=');
      if (at < 1) throw new Error(`${knob}: "${kv}" is not NAME=value`);
      return [kv.slice(0, at), kv.slice(at + 1)];
    });
}
const VARIANT_SETTINGS = ((): Record<string, unknown> => {
  const raw = process.env.BENCH_VARIANT_SETTINGS;
  if (!raw) return {};
  const v: unknown = JSON.parse(raw);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('BENCH_VARIANT_SETTINGS: not a JSON object');
  return v as Record<string, unknown>;
})();

async function startGateway(upstreamUrl: string, name: Exclude<ServerName, 'passthrough' | 'dispatch'>): Promise<Server> {
  const governed = name === 'governed';
  const guardrails = name === 'guardrails';
  const untraced = name === 'untraced';
  const variant = name === 'variant';
  const guarded = guardrails || (variant && process.env.BENCH_VARIANT_GUARDRAILS === '1');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-bench-'));
  tmpRoots.push(dir);
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir);
  const configFile = path.join(dir, 'airlock.yaml');
  fs.writeFileSync(
    configFile,
    YAML.stringify({
      // max_concurrency: the slow-streams scenario holds SLOW_STREAMS streams upstream at once
      // (unset, the endpoint's connection pool has 256 connections and the rest would queue)
      endpoints: [{ name: 'upstream', base_url: upstreamUrl, max_concurrency: Math.max(1024, SLOW_STREAMS + 64) }],
      models: [{ name: BENCH_MODEL, targets: [{ endpoint: 'upstream', model: 'test-model' }], price: { input_per_million: 1, output_per_million: 2 } }],
      teams: [{ name: 'bench', ...(governed ? GOVERNANCE : {}) }],
      keys: [{ name: 'bench', key: BENCH_KEY, team: 'bench', ...(governed ? GOVERNANCE : {}) }],
      // the slow-streams scenario's connections, with room to spare (default 1024)
      settings: { http: { max_connections: Math.max(1024, SLOW_STREAMS + 64) }, ...EXTRA_SETTINGS, ...(untraced ? { telemetry: { traces: false } } : {}), ...(variant ? VARIANT_SETTINGS : {}) },
      ...(guarded ? { guardrails: [{ name: 'default', direction: ['input', 'output'], detectors: ['pii', 'secrets'], action: 'redact' }] } : {}),
    }),
  );
  const nodeArgs = [
    ...profileArgs(name),
    ...(process.env.BENCH_GATEWAY_NODE_ARGS ?? '').split(/\s+/).filter(Boolean),
    ...(variant ? (process.env.BENCH_VARIANT_NODE_ARGS ?? '').split(/\s+/).filter(Boolean) : []),
  ];
  const env: NodeJS.ProcessEnv = { ...SERVER_ENV };
  for (const k of Object.keys(env)) if (k.startsWith('AIRLOCK_')) delete env[k];
  env.AIRLOCK_ADMIN_TOKEN = 'bench-admin-token-0123456789';
  for (const [k, v] of [...envPairs('BENCH_GATEWAY_ENV'), ...(variant ? envPairs('BENCH_VARIANT_ENV') : [])]) env[k] = v;
  return startServer(
    name,
    SERVER_CORE,
    [...nodeArgs, (variant && process.env.BENCH_VARIANT_BIN) || process.env.BENCH_GATEWAY_BIN || path.join(ROOT, 'bin', 'airlock.js'), 'serve', '--data-dir', dataDir, '--config', configFile, '--port', '0', '--admin-port', '0'],
    /data plane listening on (http:\/\/\S+)/,
    { readyRe: /airlock: ready/, env },
  );
}

// ---- checks ----

const HEADERS = { 'content-type': 'application/json', authorization: `Bearer ${BENCH_KEY}` };

/** One request of each mode, checked, before any load: the bench must measure working answers. */
async function sanityCheck(s: Server): Promise<void> {
  const url = `${s.url}/v1/chat/completions`;
  const r1 = await fetch(url, { method: 'POST', headers: HEADERS, body: requestBody(false) });
  const t1 = await r1.text();
  if (r1.status !== 200) throw new Error(`${s.name}: non-stream check answered ${r1.status}: ${t1.slice(0, 300)}`);
  const j = JSON.parse(t1) as { choices?: { message?: { content?: string } }[] };
  if (j.choices?.[0]?.message?.content !== BENCH_CONTENT) throw new Error(`${s.name}: non-stream check got an unexpected body: ${t1.slice(0, 300)}`);

  const r2 = await fetch(url, { method: 'POST', headers: HEADERS, body: requestBody(true) });
  const t2 = await r2.text();
  if (r2.status !== 200) throw new Error(`${s.name}: stream check answered ${r2.status}: ${t2.slice(0, 300)}`);
  let text = '';
  for (const line of t2.split('\n')) {
    if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
    const c = (JSON.parse(line.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content;
    if (typeof c === 'string') text += c;
  }
  if (text !== BENCH_CONTENT || !t2.includes('data: [DONE]')) throw new Error(`${s.name}: stream check got an unexpected stream: ${t2.slice(0, 500)}`);
}

function assertClean(s: Server, what: string, r: LoadResult, needRequests = true): void {
  if (r.non2xx > 0 || r.errors > 0 || r.timeouts > 0 || (needRequests && r.requests === 0)) {
    throw new Error(
      `${s.name} ${what}: ${r.requests} ok, ${r.non2xx} non-2xx, ${r.errors} errors, ${r.timeouts} timeouts; status codes ${JSON.stringify(r.statusCodes)}\n` +
        `server stderr (tail):\n${s.err().slice(-2000)}`,
    );
  }
  if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`${s.name} exited during ${what}\n${s.err().slice(-2000)}`);
}

// ---- measuring ----

function selfCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

/** Wait until the server has finished the work a run left behind (requests cut off when the
 * load stopped): its CPU use over 200 ms falls under 10 % of a core, or 15 s pass. */
async function quiesce(s: Server): Promise<void> {
  const deadline = Date.now() + 15_000;
  let prev = cpuMs(s.pid);
  for (;;) {
    await sleep(200);
    const now = cpuMs(s.pid);
    if (now - prev < 20 || Date.now() > deadline) return;
    prev = now;
  }
}

/** RSS 1 s after the start, then (after one checked request of each mode) after
 * IDLE_SETTLE_SECONDS without traffic. */
async function idleRss(s: Server): Promise<{ startRssMB: number; idleRssMB: number }> {
  const t0 = Date.now();
  await sleep(1000);
  const startRssMB = rssMB(s.pid);
  await sanityCheck(s);
  await sleep(Math.max(0, t0 + IDLE_SETTLE_SECONDS * 1000 - Date.now()));
  return { startRssMB, idleRssMB: rssMB(s.pid) };
}

async function measureServer(round: number, name: ServerName, s: Server, upstream: Server, runs: RunRecord[]): Promise<ServerRecord> {
  const { startRssMB, idleRssMB } = await idleRss(s);
  const cpus = logStart(round, name, s, startRssMB, idleRssMB);
  await initialWarmUp(s);
  for (const mode of MODES) {
    for (const connections of CONNECTIONS) {
      await warmUp(s, mode, connections);
      runs.push(await measureRun(round, name, s, upstream, mode, connections));
    }
  }
  const afterRssMB = rssMB(s.pid);
  return { round, name, startRssMB, idleRssMB, afterRssMB, cpus };
}

function logStart(round: number, name: ServerName, s: Server, startRssMB: number, idleRssMB: number): string {
  const cpus = cpusAllowed(s.pid);
  log(`round ${round + 1}/${ROUNDS}, ${name}: pid ${s.pid}, cpus ${cpus}, RSS ${startRssMB.toFixed(1)} MB 1 s after start, ${idleRssMB.toFixed(1)} MB after ${IDLE_SETTLE_SECONDS} s idle`);
  return cpus;
}

/** Let the JIT settle on both paths before the first measured run. */
async function initialWarmUp(s: Server): Promise<void> {
  for (const mode of MODES) {
    const r = await runLoad({ url: `${s.url}/v1/chat/completions`, headers: HEADERS, body: requestBody(mode === 'stream', PROMPT), connections: 8, seconds: WARMUP });
    assertClean(s, `${mode} initial warm-up`, r, false);
  }
  await quiesce(s);
}

const loadSpec = (s: Server, mode: Mode, connections: number) => ({ url: `${s.url}/v1/chat/completions`, headers: HEADERS, body: requestBody(mode === 'stream', PROMPT), connections });

async function warmUp(s: Server, mode: Mode, connections: number): Promise<void> {
  const warm = await runLoad({ ...loadSpec(s, mode, connections), seconds: WARMUP });
  assertClean(s, `${mode} c=${connections} warm-up`, warm, false);
  await quiesce(s);
}

/** One measured run of BENCH_SECONDS (the server warmed up and quiet). */
async function measureRun(round: number, name: ServerName, s: Server, upstream: Server, mode: Mode, connections: number, together: Server[] = []): Promise<RunRecord> {
  // BENCH_TOGETHER: the servers measured at the same time are ours too, not other load
  const others = () => together.reduce((sum, o) => sum + cpuMs(o.pid), 0);
  const c0 = cpuMs(s.pid);
  const m0 = mainThreadCpuMs(s.pid);
  const ours0 = c0 + cpuMs(upstream.pid) + selfCpuMs() + others();
  const busy0 = systemBusyMs();
  const r = await runLoad({ ...loadSpec(s, mode, connections), seconds: SECONDS });
  const busy1 = systemBusyMs();
  const c1 = cpuMs(s.pid);
  const m1 = mainThreadCpuMs(s.pid);
  const ours1 = c1 + cpuMs(upstream.pid) + selfCpuMs() + others();
  assertClean(s, `${mode} c=${connections}`, r);
  const rec: RunRecord = {
    ...r,
    round,
    server: name,
    mode,
    connections,
    cpuMsTotal: c1 - c0,
    cpuUsPerReq: ((c1 - c0) * 1000) / r.requests,
    otherThreadsUsPerReq: ((c1 - c0 - (m1 - m0)) * 1000) / r.requests,
    cpuPct: ((c1 - c0) / (r.seconds * 1000)) * 100,
    otherPct: Math.max(0, ((busy1 - busy0 - (ours1 - ours0)) / (r.seconds * 1000)) * 100),
  };
  await quiesce(s);
  log(
    `  ${name.padEnd(11)} ${mode.padEnd(10)} c=${String(connections).padEnd(3)} ${fmt(rec.rps, 0).padStart(6)} req/s  p50 ${fmt(rec.p50, 3)} ms  p99 ${fmt(rec.p99, 3)} ms  CPU ${fmt(rec.cpuUsPerReq, 0)} µs/req (${fmt(rec.otherThreadsUsPerReq, 0)} outside the main thread; ${fmt(rec.cpuPct, 0)}%), other load ${fmt(rec.otherPct, 0)}%${SLICES ? ` [slice ${(round % SLICES) + 1}/${SLICES}]` : ''}`,
  );
  return rec;
}

/** BENCH_SLICES: one round with every server up at once, each configuration measured as SLICES
 * slices in which the servers take turns (alternating which goes first); slice k of round n is
 * recorded as round n * SLICES + k. */
async function measureInterleaved(round: number, upstream: Server, runs: RunRecord[]): Promise<ServerRecord[]> {
  const up: { name: ServerName; s: Server }[] = [];
  try {
    for (const name of round % 2 === 0 ? SERVERS : [...SERVERS].reverse()) up.push({ name, s: await startServerNamed(name, upstream.url) });
    // each server's idle RSS 12 s after its start: read side by side (they started moments apart)
    const idle = await Promise.all(up.map(({ s }) => idleRss(s)));
    const cpus = up.map(({ name, s }, i) => logStart(round, name, s, idle[i]!.startRssMB, idle[i]!.idleRssMB));
    for (const { s } of up) await initialWarmUp(s);
    for (const mode of MODES) {
      for (const connections of CONNECTIONS) {
        for (const { s } of up) await warmUp(s, mode, connections);
        for (let k = 0; k < SLICES; k++) {
          if (TOGETHER) {
            // every server loaded at once, all on the one pinned core: the kernel shares it out
            // between them, so the host's phase is the same for each
            const recs = await Promise.all(up.map(({ name, s }) => measureRun(round * SLICES + k, name, s, upstream, mode, connections, up.map((u) => u.s).filter((o) => o !== s))));
            runs.push(...recs);
          } else for (const { name, s } of k % 2 === 0 ? up : [...up].reverse()) runs.push(await measureRun(round * SLICES + k, name, s, upstream, mode, connections));
        }
      }
    }
    return up.map(({ name, s }, i) => ({ round, name, startRssMB: idle[i]!.startRssMB, idleRssMB: idle[i]!.idleRssMB, afterRssMB: rssMB(s.pid), cpus: cpus[i]! }));
  } finally {
    for (const { s } of up) await s.stop();
  }
}

/** The slow-streams scenario on a fresh server: idle RSS, SLOW_STREAMS slow streams at once
 * (peak RSS), then SLOW_SETTLE_SECONDS with nothing to do, RSS read every second. */
async function measureSlow(name: ServerName, s: Server, upstream: Server): Promise<SlowRecord> {
  const { idleRssMB } = await idleRss(s);
  log(`slow streams, ${name}: ${SLOW_STREAMS} streams, idle RSS ${idleRssMB.toFixed(1)} MB`);
  const c0 = cpuMs(s.pid);
  const ours0 = c0 + cpuMs(upstream.pid) + selfCpuMs();
  const busy0 = systemBusyMs();
  const r = await runSlowStreams({
    url: s.url,
    headers: HEADERS,
    body: requestBody(true, SLOW_PROMPT),
    content: SLOW_CONTENT,
    streams: SLOW_STREAMS,
    pid: s.pid,
    timeoutMs: 120_000,
  });
  const busy1 = systemBusyMs();
  const c1 = cpuMs(s.pid);
  const ours1 = c1 + cpuMs(upstream.pid) + selfCpuMs();
  if (s.child.exitCode !== null || s.child.signalCode !== null) throw new Error(`${name} exited during the slow streams\n${s.err().slice(-2000)}`);
  const settleRssMB: number[] = [];
  for (let i = 0; i < SLOW_SETTLE_SECONDS; i++) {
    await sleep(1000);
    settleRssMB.push(rssMB(s.pid));
  }
  const within = (mb: number) => Math.abs(mb - idleRssMB) <= idleRssMB * TARGET_SLOW_BACK_TO_IDLE;
  let backAfterS: number | undefined;
  for (let i = settleRssMB.length - 1; i >= 0 && within(settleRssMB[i]!); i--) backAfterS = i + 1;
  const rec: SlowRecord = {
    ...r,
    name,
    idleRssMB,
    settleRssMB,
    backAfterS,
    cpuS: (c1 - c0) / 1000,
    otherPct: Math.max(0, ((busy1 - busy0 - (ours1 - ours0)) / r.wallMs) * 100),
  };
  log(
    `  ${name}: ${r.completed}/${r.streams} complete${r.errors.length ? ` (${r.errors.join('; ')})` : ''}, at most ${r.peakOpen} open at once, ${fmt(r.wallMs / 1000, 1)} s, ` +
      `RSS idle ${fmt(idleRssMB, 1)} → peak ${fmt(r.peakRssMB, 1)} → ${fmt(settleRssMB[settleRssMB.length - 1], 1)} MB after ${SLOW_SETTLE_SECONDS} s (${settleRssMB.map((x) => x.toFixed(0)).join(' ')}), other load ${fmt(rec.otherPct, 0)}%`,
  );
  return rec;
}

// ---- reporting ----

function fmt(n: number | undefined, digits: number): string {
  return n === undefined || !Number.isFinite(n) ? 'n/a' : n.toFixed(digits);
}

function table(head: string[], rows: string[][]): string {
  const align = head.map((h, i) => (i === 0 || /^(server|mode|target|status)$/i.test(h) ? ':--' : '--:'));
  return [`| ${head.join(' | ')} |`, `| ${align.join(' | ')} |`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function commandLine(): string {
  const env = Object.entries(process.env)
    .filter(([k]) => k.startsWith('BENCH_'))
    .map(([k, v]) => `${k}=${v}`)
    .sort();
  const cmd = process.env.npm_lifecycle_event === 'bench' ? 'npm run bench' : `node ${path.relative(ROOT, fileURLToPath(import.meta.url))}`;
  return [...env, cmd].join(' ');
}

interface Verdict {
  target: string;
  measured: string;
  met: boolean | undefined;
}

function report(runs: RunRecord[], servers: ServerRecord[], slow: SlowRecord[], started: Date): { text: string; verdicts: Verdict[] } {
  // Per configuration, the round with the most requests/s: the one least disturbed by other work.
  const find = (server: ServerName, mode: Mode, c: number) =>
    runs.filter((r) => r.server === server && r.mode === mode && r.connections === c).reduce<RunRecord | undefined>((a, r) => (!a || r.rps > a.rps ? r : a), undefined);
  // The same configuration's requests/s moves by up to 25 % between rounds on this kind of host
  // (slow and fast phases of the machine), and the best round of one server and the best round of
  // the other can come from different phases. An on/off comparison is therefore also made round by
  // round (both servers measured minutes apart, in alternating order) and judged by the median of
  // those paired ratios once there are 3 or more rounds; with fewer, by the best rounds.
  const paired = (on: ServerName, off: ServerName, mode: Mode, c: number): { ratio: number; rounds: number[]; how: string } | undefined => {
    const rounds: number[] = [];
    for (let r = 0; r < PAIRINGS; r++) {
      const a = runs.find((x) => x.server === on && x.mode === mode && x.connections === c && x.round === r);
      const b = runs.find((x) => x.server === off && x.mode === mode && x.connections === c && x.round === r);
      if (a && b) rounds.push(a.rps / b.rps);
    }
    const bestOn = find(on, mode, c);
    const bestOff = find(off, mode, c);
    if (!bestOn || !bestOff) return undefined;
    if (rounds.length < 3) return { ratio: bestOn.rps / bestOff.rps, rounds, how: 'best rounds' };
    const sorted = [...rounds].sort((x, y) => x - y);
    const mid = sorted.length / 2;
    const median = sorted.length % 2 ? sorted[Math.floor(mid)]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
    return { ratio: median, rounds, how: `median of ${rounds.length} rounds` };
  };
  const pairedText = (x: { ratio: number; rounds: number[]; how: string }) =>
    `${fmt(x.ratio * 100, 1)} % (${x.how}${x.rounds.length ? `; per round ${x.rounds.map((r) => fmt(r * 100, 1)).join(', ')} %` : ''})`;
  /** An on/off verdict's measured text: the paired ratio, then the best rounds' figures (their
   * ratio too unless the paired one is theirs) and `detail`. */
  const onOffText = (pr: { ratio: number; rounds: number[]; how: string }, on: RunRecord, off: RunRecord, detail = '') =>
    `${pairedText(pr)}; best rounds ${pr.how === 'best rounds' ? '' : `${fmt((on.rps / off.rps) * 100, 1)} % `}(${fmt(on.rps, 0)} vs ${fmt(off.rps, 0)} req/s${detail})`;
  const best: RunRecord[] = [];
  for (const server of SERVERS) for (const mode of MODES) for (const c of CONNECTIONS) {
    const r = find(server, mode, c);
    if (r) best.push(r);
  }
  const row = (r: RunRecord) => [r.server, r.mode, String(r.connections), fmt(r.rps, 0), fmt(r.p50, 3), fmt(r.p99, 3), fmt(r.mean, 3), fmt(r.cpuUsPerReq, 1), fmt(r.cpuPct, 0), fmt(r.otherPct, 0), String(r.requests)];
  const head = ['server', 'mode', 'connections', 'req/s', 'p50 ms', 'p99 ms', 'mean ms', 'CPU µs/req', 'server CPU %', 'other load %', 'requests'];
  const figures = table([...head, 'round'], best.map((r) => [...row(r), String(r.round + 1)]));
  const allRuns = table(['round', ...head], runs.map((r) => [String(r.round + 1), ...row(r)]));
  const memory = table(
    ['round', 'server', 'RSS 1 s after start MB', `idle RSS MB (${IDLE_SETTLE_SECONDS} s after start)`, 'RSS after load MB', 'pinned to CPUs'],
    servers.map((s) => [String(s.round + 1), s.name, fmt(s.startRssMB, 1), fmt(s.idleRssMB, 1), fmt(s.afterRssMB, 1), s.cpus]),
  );

  const ratioRows: string[][] = [];
  const verdicts: Verdict[] = [];
  for (const mode of MODES) {
    const on = find('governed', mode, 32);
    const off = find('gateway', mode, 32);
    if (!on || !off) continue;
    verdicts.push({
      target: `${mode}, 32 connections: governance on (budgets + limits on key and team) ≥ ${TARGET_GOVERNED_RPS_RATIO * 100} % of the gateway's req/s without`,
      measured: `${fmt((on.rps / off.rps) * 100, 1)} % (${fmt(on.rps, 0)} vs ${fmt(off.rps, 0)} req/s; CPU µs/req ${fmt(on.cpuUsPerReq, 1)} vs ${fmt(off.cpuUsPerReq, 1)}; server CPU ${fmt(on.cpuPct, 0)} / ${fmt(off.cpuPct, 0)} %)`,
      met: on.rps / off.rps >= TARGET_GOVERNED_RPS_RATIO,
    });
  }
  for (const mode of MODES) {
    for (const c of CONNECTIONS) {
      const g = find('gateway', mode, c);
      const p = find('passthrough', mode, c);
      if (!g || !p) continue;
      ratioRows.push([
        mode,
        String(c),
        `${fmt((g.rps / p.rps) * 100, 1)} %`,
        fmt(g.p50 - p.p50, 3),
        fmt(g.p99 - p.p99, 3),
        fmt(g.cpuUsPerReq / p.cpuUsPerReq, 2),
      ]);
      if (c === 32) {
        const pr = paired('gateway', 'passthrough', mode, c)!;
        const ratio = pr.ratio;
        // BENCH_TOGETHER: the two share the core, so together they must fill it
        const saturated = TOGETHER ? g.cpuPct + p.cpuPct >= SATURATED_CPU_PCT : g.cpuPct >= SATURATED_CPU_PCT && p.cpuPct >= SATURATED_CPU_PCT;
        verdicts.push({
          target: `${mode}, 32 connections: gateway req/s ≥ ${TARGET_RPS_RATIO * 100} % of passthrough`,
          measured: onOffText(
            pr,
            g,
            p,
            `; server CPU ${fmt(g.cpuPct, 0)} / ${fmt(p.cpuPct, 0)} %` +
              `${saturated ? '' : `: not ${TOGETHER ? 'together' : 'both'} ≥ ${SATURATED_CPU_PCT} %, so something other than the server's own CPU (the load generator's core, other load on the machine) set the pace — the ratio says little`}`,
          ),
          met: ratio >= TARGET_RPS_RATIO,
        });
      }
      if (c === 1) {
        const added = g.p50 - p.p50;
        verdicts.push({ target: `${mode}, 1 connection: added p50 latency ≤ ${TARGET_ADDED_P50_MS} ms`, measured: `${fmt(added, 3)} ms (${fmt(g.p50, 3)} vs ${fmt(p.p50, 3)} ms)`, met: added <= TARGET_ADDED_P50_MS });
        const added99 = g.p99 - p.p99;
        verdicts.push({ target: `${mode}, 1 connection: added p99 latency ≤ ${TARGET_ADDED_P99_MS} ms`, measured: `${fmt(added99, 3)} ms (${fmt(g.p99, 3)} vs ${fmt(p.p99, 3)} ms)`, met: added99 <= TARGET_ADDED_P99_MS });
      }
    }
  }
  // guardrails on (pii + secrets, input and output) vs off, same load
  const guardRows: string[][] = [];
  for (const mode of MODES)
    for (const c of CONNECTIONS) {
      const on = find('guardrails', mode, c);
      const off = find('gateway', mode, c);
      if (!on || !off) continue;
      const pr = paired('guardrails', 'gateway', mode, c)!;
      guardRows.push([mode, String(c), `${fmt((on.rps / off.rps) * 100, 1)} %`, pairedText(pr), fmt(on.p50 - off.p50, 3), fmt(on.p99 - off.p99, 3), fmt(on.cpuUsPerReq / off.cpuUsPerReq, 2)]);
      if (c === 32)
        verdicts.push({
          target: `${mode}, 32 connections: with guardrails (pii + secrets, input and output) req/s ≥ ${TARGET_GUARD_RPS_RATIO * 100} % of without`,
          measured: onOffText(pr, on, off),
          met: pr.ratio >= TARGET_GUARD_RPS_RATIO,
        });
      if (c === 1)
        verdicts.push({
          target: `${mode}, 1 connection: guardrails add ≤ ${TARGET_GUARD_ADDED_P50_MS} ms p50 (${PROMPT_BYTES ? `a ${PROMPT_BYTES}-byte prompt` : 'the short prompt; the target is for BENCH_PROMPT_BYTES=4096'})`,
          measured: `${fmt(on.p50 - off.p50, 3)} ms (${fmt(on.p50, 3)} vs ${fmt(off.p50, 3)} ms)`,
          met: on.p50 - off.p50 <= TARGET_GUARD_ADDED_P50_MS,
        });
    }
  // tracing (the local span store) on, as shipped, vs off, same load
  const traceRows: string[][] = [];
  for (const mode of MODES)
    for (const c of CONNECTIONS) {
      const on = find('gateway', mode, c);
      const off = find('untraced', mode, c);
      if (!on || !off) continue;
      const pr = paired('gateway', 'untraced', mode, c)!;
      traceRows.push([mode, String(c), `${fmt((on.rps / off.rps) * 100, 1)} %`, pairedText(pr), fmt(on.p50 - off.p50, 3), fmt(on.p99 - off.p99, 3), fmt(on.cpuUsPerReq / off.cpuUsPerReq, 2)]);
      if (c === 32)
        verdicts.push({
          target: `${mode}, 32 connections: with tracing (local span store) req/s ≥ ${TARGET_TRACE_RPS_RATIO * 100} % of without`,
          measured: onOffText(pr, on, off, `; CPU µs/req ${fmt(on.cpuUsPerReq, 1)} vs ${fmt(off.cpuUsPerReq, 1)}`),
          met: pr.ratio >= TARGET_TRACE_RPS_RATIO,
        });
    }
  // an experiment (BENCH_VARIANT_*) vs the gateway as shipped, same load, interleaved rounds
  const variantRows: string[][] = [];
  for (const mode of MODES)
    for (const c of CONNECTIONS) {
      const v = find('variant', mode, c);
      const g = find('gateway', mode, c);
      if (!v || !g) continue;
      variantRows.push([mode, String(c), `${fmt((v.rps / g.rps) * 100, 1)} %`, pairedText(paired('variant', 'gateway', mode, c)!), fmt(v.p50 - g.p50, 3), fmt(v.p99 - g.p99, 3), fmt(v.cpuUsPerReq / g.cpuUsPerReq, 2)]);
    }
  const gw = servers.filter((s) => s.name === 'gateway');
  const pt = servers.filter((s) => s.name === 'passthrough');
  const slowGw = slow.find((r) => r.name === 'gateway');
  const idleGw = [...gw.map((s) => s.idleRssMB), ...(slowGw ? [slowGw.idleRssMB] : [])];
  if (idleGw.length) {
    const worst = Math.max(...idleGw);
    verdicts.push({
      target: `gateway idle RSS ≤ ${TARGET_IDLE_RSS_MB} MB (${IDLE_SETTLE_SECONDS} s after start; largest of the starts)`,
      measured:
        `${fmt(worst, 1)} MB${pt.length ? ` (passthrough ${fmt(Math.max(...pt.map((s) => s.idleRssMB)), 1)} MB)` : ''}` +
        `${gw.length ? `; 1 s after start: ${fmt(Math.max(...gw.map((s) => s.startRssMB)), 1)} MB` : ''}`,
      met: worst <= TARGET_IDLE_RSS_MB,
    });
  }
  if (slowGw) {
    const r = slowGw;
    const concurrent = r.peakOpen >= r.streams * 0.9;
    verdicts.push({
      target: `${r.streams} concurrent slow streams: all complete`,
      measured: `${r.completed} of ${r.streams} complete, at most ${r.peakOpen} open at once${r.errors.length ? ` (${r.errors[0]})` : ''}`,
      met: r.completed === r.streams && concurrent,
    });
    verdicts.push({ target: `slow streams: gateway peak RSS ≤ ${TARGET_SLOW_PEAK_RSS_MB} MB`, measured: `${fmt(r.peakRssMB, 1)} MB`, met: r.peakRssMB <= TARGET_SLOW_PEAK_RSS_MB });
    const after = r.settleRssMB[r.settleRssMB.length - 1]!;
    verdicts.push({
      target: `slow streams: RSS back to idle ± ${TARGET_SLOW_BACK_TO_IDLE * 100} % (${SLOW_SETTLE_SECONDS} s after the last stream, clients gone)`,
      measured: `${fmt(after, 1)} MB vs idle ${fmt(r.idleRssMB, 1)} MB (${fmt(((after - r.idleRssMB) / r.idleRssMB) * 100, 1)} %)${r.backAfterS !== undefined ? `; within the band from ${r.backAfterS} s on` : ''}`,
      met: Math.abs(after - r.idleRssMB) <= r.idleRssMB * TARGET_SLOW_BACK_TO_IDLE,
    });
  }
  const slowTable = slow.length
    ? table(
        ['server', 'streams', 'completed', 'most open at once', 'wall s', 'stream p50 s', 'stream max s', 'headers p50 ms', 'headers max ms', 'idle RSS MB', 'peak RSS MB', `RSS after ${SLOW_SETTLE_SECONDS} s MB`, 'back within ±10 % after s', 'server CPU s', 'other load %'],
        slow.map((r) => [
          r.name,
          String(r.streams),
          String(r.completed),
          String(r.peakOpen),
          fmt(r.wallMs / 1000, 1),
          fmt(r.p50Ms / 1000, 2),
          fmt(r.maxMs / 1000, 2),
          fmt(r.ttfbP50Ms, 0),
          fmt(r.ttfbMaxMs, 0),
          fmt(r.idleRssMB, 1),
          fmt(r.peakRssMB, 1),
          fmt(r.settleRssMB[r.settleRssMB.length - 1], 1),
          r.backAfterS === undefined ? 'no' : String(r.backAfterS),
          fmt(r.cpuS, 1),
          fmt(r.otherPct, 0),
        ]),
      ) +
      '\n\nRSS (MB) each second after the last stream ended:\n\n' +
      slow.map((r) => `- ${r.name}: ${r.settleRssMB.map((x) => x.toFixed(0)).join(', ')}`).join('\n')
    : '(not run: BENCH_SLOW_STREAMS=0)';
  const ratios = table(['mode', 'connections', 'gateway ÷ passthrough req/s', 'added p50 ms', 'added p99 ms', 'CPU/req ratio'], ratioRows);
  const targets = table(
    ['target', 'measured', 'status'],
    verdicts.map((v) => [v.target, v.measured, v.met === undefined ? 'n/a' : v.met ? '**met**' : '**missed**']),
  );

  const m = machine();
  const load = cpusAllowed('self');
  const text = [
    `- Command: \`${commandLine()}\``,
    `- Date: ${started.toISOString()}`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGB} GB memory, ${m.kernel}; Node ${m.node}`,
    `- Servers' environment: MALLOC_ARENA_MAX=${SERVER_ENV.MALLOC_ARENA_MAX} (one glibc malloc arena, as the bundle's launcher and the desktop shell start the gateway)${process.env.BENCH_GATEWAY_ENV ? `; gateway also ${process.env.BENCH_GATEWAY_ENV}` : ''}`,
    `- Pinning: ${CAN_PIN ? `server under test on CPU ${SERVER_CORE} (taskset -c ${SERVER_CORE}); load generator (this process, CPUs ${load}) and upstream on CPU ${LOAD_CORE}` : 'none (taskset or a second CPU unavailable)'}`,
    `- Per run: ${WARMUP} s warm-up, then ${SECONDS} s measured, HTTP/1.1 keep-alive, no pipelining; concurrency ${CONNECTIONS.join(', ')}; ${MODES.join(' and ')} chat completions; user message ${PROMPT_BYTES ? `${PROMPT_BYTES} bytes of ordinary business prose${PROMPT_KIND === 'mixed' ? ' with numbers, dates, ids and punctuation that set the detectors off (BENCH_PROMPT_KIND=mixed)' : ''} (BENCH_PROMPT_BYTES)` : 'a 20-byte prompt'}`,
    SLICES
      ? `- Rounds: ${ROUNDS}, each with every server started once and kept up, and each configuration measured as ${SLICES} slices in which ${TOGETHER ? 'the servers are loaded at the same time, sharing the pinned core (BENCH_TOGETHER)' : 'the servers take turns (alternating which goes first)'} (BENCH_SLICES); every slice counts as a round below (${PAIRINGS} in all): the tables use, per configuration, the slice with the most requests/s, the paired ratios pair the servers within each slice (all runs are listed at the end)`
      : `- Rounds: ${ROUNDS}; each starts, measures and stops every server in turn (alternating which goes first); the tables use, per configuration, the round with the most requests/s (all runs are listed at the end)`,
    `- Idle RSS: read ${IDLE_SETTLE_SECONDS} s after the server is ready, having answered one request of each mode (V8 shrinks the young generation that start-up grew ~8-10 s after activity stops; the RSS 1 s after start is listed too)`,
    `- Slow streams: ${SLOW_STREAMS ? `${SLOW_STREAMS} streaming requests opened at once over ${SLOW_STREAMS} connections (undici Pool), each answered with ${SLOW_CONTENT.split(' ').length} content chunks ${SLOW_CHUNK_DELAY_MS.min}-${SLOW_CHUNK_DELAY_MS.max} ms apart (drawn per stream), on a fresh server after the rounds; RSS sampled every 100 ms; then the client connections are closed and RSS read every second for ${SLOW_SETTLE_SECONDS} s` : 'not run'}`,
    '',
    '### Targets',
    '',
    targets,
    '',
    '### Gateway vs passthrough',
    '',
    ratios,
    '',
    ...(guardRows.length
      ? ['### Guardrails on vs off', '', table(['mode', 'connections', 'req/s with / without (best rounds)', 'paired by round', 'added p50 ms', 'added p99 ms', 'CPU/req ratio'], guardRows), '']
      : []),
    ...(variantRows.length
      ? ['### Variant vs gateway', '', table(['mode', 'connections', 'req/s variant / gateway (best rounds)', 'paired by round', 'p50 ms, variant - gateway', 'p99 ms, variant - gateway', 'CPU/req ratio'], variantRows), '']
      : []),
    ...(traceRows.length
      ? ['### Tracing on vs off', '', table(['mode', 'connections', 'req/s with / without (best rounds)', 'paired by round', 'added p50 ms', 'added p99 ms', 'CPU/req ratio'], traceRows), '']
      : []),
    '### Figures (best round per configuration)',
    '',
    figures,
    '',
    '### Memory',
    '',
    memory,
    '',
    '### Slow streams',
    '',
    slowTable,
    '',
    '### All runs',
    '',
    allRuns,
  ].join('\n');
  return { text, verdicts };
}

function writeResults(body: string): void {
  let findings = '';
  try {
    const old = fs.readFileSync(RESULTS, 'utf8');
    const i = old.indexOf('\n## Findings');
    if (i >= 0) findings = old.slice(i + 1).trimEnd() + '\n';
  } catch {
    /* first run */
  }
  const doc = [
    '# Airlock bench results',
    '',
    'Written by `npm run bench` (bench/run.ts); each run overwrites everything above "## Findings",',
    'which is kept as is. The gateway (compiled JS, `node bin/airlock.js serve`) and a bare',
    'passthrough (bench/passthrough.ts: fastify + an undici Pool, nothing else) run one after the',
    'other against the same fast simulated upstream (test/helpers/upstream.ts, answering 8 words),',
    'under the same autocannon load. Latency percentiles are computed from every response\'s own',
    'duration (sub-millisecond); CPU time per request is the server process\'s utime+stime delta',
    'from /proc over the measured run, divided by the requests completed; RSS is VmRSS. "Other',
    'load %" is the CPU every other process on the machine used during the run (busy time from',
    '/proc/stat minus the server, the upstream and the load generator), in % of one core: a run',
    'with a high value was disturbed. "dispatch", when listed, is the same bare passthrough reading',
    'the upstream through undici\'s dispatch API (`--dispatch`) instead of request() + pipe, as the',
    'gateway\'s attempt does: a cheaper baseline for reference; the targets are judged against',
    '"passthrough".',
    '',
    '**Noise:** the machine has 2 cores that are shared with other work (test suites of other',
    'helpers may run at the same time), so absolute figures are noisy; the ratios between the',
    'gateway and the passthrough within one run are what the targets judge.',
    '',
    '## Latest run',
    '',
    body,
    '',
    findings || '## Findings\n\n(none recorded yet)\n',
  ].join('\n');
  fs.writeFileSync(RESULTS, doc);
}

// ---- main ----

async function main(): Promise<number> {
  const started = new Date();
  log(`airlock bench: ${SERVERS.join(' + ')}, ${MODES.join(' + ')}, connections ${CONNECTIONS.join('/')}, ${WARMUP} s warm-up + ${SECONDS} s per run, ${ROUNDS} round(s)${SLICES ? ` of ${SLICES} interleaved slices` : ''}`);
  if (!CAN_PIN) log('warning: cannot pin processes to cores (needs Linux, taskset and 2+ CPUs); figures will be noisier');
  const runs: RunRecord[] = [];
  const servers: ServerRecord[] = [];
  const slow: SlowRecord[] = [];
  const upstream = await startUpstream();
  log(`upstream: ${upstream.url} (pid ${upstream.pid}, cpus ${cpusAllowed(upstream.pid)})`);
  // Warm the upstream up first, so the server measured first does not pay for its JIT warm-up.
  for (const stream of [false, true]) {
    const r = await runLoad({ url: `${upstream.url}/chat/completions`, headers: HEADERS, body: requestBody(stream), connections: 8, seconds: WARMUP });
    assertClean(upstream, 'upstream warm-up', r);
  }
  try {
    for (let round = 0; round < ROUNDS; round++) {
      if (SLICES) {
        servers.push(...(await measureInterleaved(round, upstream, runs)));
        continue;
      }
      for (const name of round % 2 === 0 ? SERVERS : [...SERVERS].reverse()) {
        const s = await startServerNamed(name, upstream.url);
        try {
          servers.push(await measureServer(round, name, s, upstream, runs));
        } finally {
          await s.stop();
        }
      }
    }
    if (SLOW_STREAMS > 0) {
      for (const name of SERVERS.filter((n) => n === 'passthrough' || n === 'gateway')) {
        const s = await startServerNamed(name, upstream.url);
        try {
          slow.push(await measureSlow(name, s, upstream));
        } finally {
          await s.stop();
        }
      }
    }
  } finally {
    await upstream.stop();
    for (const d of tmpRoots) fs.rmSync(d, { recursive: true, force: true });
  }

  const { text, verdicts } = report(runs, servers, slow, started);
  log('');
  log(text);
  const full = SERVERS.includes('passthrough') && SERVERS.includes('gateway') && MODES.length === 2 && [1, 32].every((c) => CONNECTIONS.includes(c)) && !process.env.BENCH_GATEWAY_SETTINGS && !process.env.BENCH_GATEWAY_BIN && !process.env.BENCH_GATEWAY_ENV && !process.env.BENCH_GATEWAY_NODE_ARGS;
  if (full && process.env.BENCH_NO_WRITE !== '1') {
    writeResults(text);
    log(`\nwrote ${path.relative(process.cwd(), RESULTS) || RESULTS}`);
  } else log('\n(bench/RESULTS.md not written: partial run or BENCH_NO_WRITE=1)');
  const missed = verdicts.filter((v) => v.met === false).length;
  log(missed ? `${missed} target(s) missed` : verdicts.length ? 'all targets met' : '');
  if (PROFILE_DIR) log(`CPU profiles in ${PROFILE_DIR}`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (e: Error) => {
    process.stderr.write(`bench failed: ${e.stack ?? e.message}\n`);
    process.exit(1);
  },
);
