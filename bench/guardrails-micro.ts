// `node dist/bench/guardrails-micro.js`: what the default policy set (pii + secrets, redact, on
// input and output) costs per request for a 4 kB prompt, in-process, without HTTP noise: the
// input check of a 4 kB chat prompt (ordinary business text, and the same with an e-mail address
// and a card number to redact), and the output scan of a 4 kB answer streamed in ~4-character
// chunks (the hold-back scanner). On a shared machine the run's wall clock is disturbed by
// others; the figures are the medians of many short batches, with the machine's load printed.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Placeholders, compilePolicies, evaluateTexts, type Hit } from '../gateway/guardrails/policy.js';
import { TextScanner } from '../gateway/guardrails/stream.js';
import { BENCH_CONTENT, alternatingRounds, businessPrompt, chatStreamEvents, measure, requestBody, roundsSummary } from './common.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const corpus = fs
  .readFileSync(path.join(ROOT, 'test', 'fixtures', 'benign-corpus.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim());

const policies = compilePolicies([{ name: 'default', direction: ['input', 'output'], detectors: ['pii', 'secrets'], action: 'redact', mode: 'enforce' }]);

function text(bytes: number, offset: number): string {
  let s = '';
  for (let i = offset; s.length < bytes; i++) s += corpus[i % corpus.length] + ' ';
  return s.slice(0, bytes);
}

const PROMPT = text(4096, 0);
const PROMPT_PII = `${PROMPT.slice(0, 2000)} mail jane.doe@example.com, card 4111 1111 1111 1111 ${PROMPT.slice(2000, 4096 - 60)}`;
const ANSWER = text(4096, 97);
// business text with ids, dates, times, amounts and key=value: every detector's expression runs
const PROMPT_MIXED = businessPrompt(4096, true);

function input(prompt: string): void {
  const r = evaluateTexts(policies, 'input', ['You are a helpful assistant.', prompt], new Placeholders(), new Map<string, Hit>());
  if (r.blocked) throw new Error('blocked');
}

function output(answer: string): void {
  const sc = new TextScanner(policies, 'output', new Placeholders(), new Map<string, Hit>(), false);
  let out = 0;
  for (let i = 0; i < answer.length; i += 4) out += sc.push(answer.slice(i, i + 4)).length;
  out += sc.end().length;
  if (out < answer.length - 64) throw new Error('lost text');
}

const load = os.loadavg().map((x) => x.toFixed(2)).join(' / ');
console.log(`node ${process.version}, ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), load average ${load} (1/5/15 min)`);
/** The text and a copy that differs in its first character, in turn: each call scans another
 * string, as each request does (the digit-based PII detectors keep what they found for the last
 * text they were asked about, pii.ts: one text over and over would be answered from there). */
function turns(s: string): () => string {
  const both = [s, `${s[0] === 'x' ? 'y' : 'x'}${s.slice(1)}`];
  let i = 0;
  return () => both[i++ & 1]!;
}
const prompt = turns(PROMPT);
const promptPii = turns(PROMPT_PII);
const promptMixed = turns(PROMPT_MIXED);
const rows: [string, () => void][] = [
  ['input, 4 kB prompt, nothing found', () => input(prompt())],
  ['input, 4 kB prompt, e-mail + card redacted', () => input(promptPii())],
  ['input, 4 kB prompt with ids, dates and amounts, nothing found', () => input(promptMixed())],
  ['output, 4 kB answer streamed in 4-char chunks', () => output(ANSWER)],
];
for (const [name, fn] of rows) {
  const m = measure(fn);
  console.log(`${name}: p50 ${m.p50.toFixed(1)} µs, p90 ${m.p90.toFixed(1)} µs per request`);
}

// ---- the output guard over a whole chat stream, as the gateway runs it per request ----
// The HTTP bench's streamed answer (its upstream's compact chunks: a role chunk, one chunk per
// word, the finish chunk) through the pipeline's output guards (guardEvents: decode, scan, hold,
// re-encode), per request. BENCH_AB_DIST=/path/to/another/dist runs the same against that build's
// guardrail engine too, in alternating batches (an A/B in one process on the same machine load).
const { GuardrailEngine } = await import('../gateway/guardrails/engine.js');
const { guardEvents } = await import('../gateway/engine/stages.js');
type Engine = InstanceType<typeof GuardrailEngine>;
const SPEC = [{ name: 'default', direction: ['input', 'output'], detectors: ['pii', 'secrets'], action: 'redact', mode: 'enforce' }];
const snapshot = { guardrails: SPEC, settings: { limits: { max_response_bytes: 8 << 20 } } };
const BENCH_STREAM = chatStreamEvents(BENCH_CONTENT);
const LONG_STREAM = chatStreamEvents(ANSWER);

function streamGuard(engine: Engine, guards: ReturnType<Engine['guards']>, guardEventsFn: typeof guardEvents, events: string[]): () => void {
  return () => {
    const ctx = { kind: 'chat', attempts: 1, body: {}, snapshot, model: { name: 'chat' }, requestedModel: 'chat', key: undefined, status: 200 } as unknown as Parameters<typeof guardEvents>[1];
    const t = guardEventsFn(guards, ctx);
    if (!t) throw new Error('no output guard');
    let n = 0;
    for (const data of events) n += t.event({ event: undefined, id: undefined, data }).length;
    n += t.end().length;
    engine.finish(ctx);
    if (!n) throw new Error('nothing sent');
  };
}
const mine = new GuardrailEngine(() => undefined);
const variants: [string, () => void, () => void][] = [['this build', streamGuard(mine, mine.guards(), guardEvents, BENCH_STREAM), streamGuard(mine, mine.guards(), guardEvents, LONG_STREAM)]];
const other = process.env.BENCH_AB_DIST;
if (other) {
  const e = (await import(path.resolve(other, 'gateway/guardrails/engine.js'))) as { GuardrailEngine: typeof GuardrailEngine };
  const st = (await import(path.resolve(other, 'gateway/engine/stages.js'))) as { guardEvents: typeof guardEvents };
  const theirs = new e.GuardrailEngine(() => undefined);
  variants.push([other, streamGuard(theirs, theirs.guards(), st.guardEvents, BENCH_STREAM), streamGuard(theirs, theirs.guards(), st.guardEvents, LONG_STREAM)]);
}
for (const [which, label] of [
  [1, `output guard, the HTTP bench's stream (${BENCH_STREAM.length} events)`],
  [2, `output guard, a 4 kB answer one word a chunk (${LONG_STREAM.length} events)`],
] as const) {
  // alternating rounds, so that both builds see the same machine load
  const per = alternatingRounds(
    variants.map(([name, short, long]) => [name, which === 1 ? short : long] as const),
    6,
    (fn) => measure(fn, 40, which === 1 ? 50 : 5).p50,
  );
  for (const [name, xs] of per) console.log(`${label} [${name}]: ${roundsSummary(xs)}`);
}

// ---- the same stream as bytes through the stream inspector, as pipeStream runs it ----
// The bench upstream's bytes (the role chunk, then the rest with the usage chunk and [DONE] in a
// second read) through the StreamInspector alone (the gateway without guardrails) and with the
// output guard as its transform (decode each event, guard, re-encode): the output side's whole
// cost per stream, without HTTP. BENCH_AB_DIST adds that build's inspector and guard.
const { StreamInspector } = await import('../gateway/engine/openai/stream-inspector.js');
const USAGE = { prompt_tokens: 1030, completion_tokens: 8, total_tokens: 1038 };
const sse = chatStreamEvents(BENCH_CONTENT, USAGE).map((d) => `data: ${d}\n\n`);
const HEAD = Buffer.from(sse[0]!);
const REST = Buffer.from(`${sse.slice(1).join('')}data: [DONE]\n\n`);
function inspected(Inspector: typeof StreamInspector, guarded: { engine: Engine; guardEventsFn: typeof guardEvents } | undefined): () => void {
  const guards = guarded?.engine.guards();
  return () => {
    const ctx = { kind: 'chat', attempts: 1, body: {}, snapshot, model: { name: 'chat' }, requestedModel: 'chat', key: undefined, status: 200 } as unknown as Parameters<typeof guardEvents>[1];
    const transform = guarded ? guarded.guardEventsFn(guards!, ctx) : undefined;
    const insp = new Inspector({ kind: 'chat', clientWantsUsage: false, maxEventBytes: 1 << 20, transform });
    let n = 0;
    for (const b of [...insp.push(HEAD), ...insp.push(REST), ...insp.end()]) n += b.length;
    guarded?.engine.finish(ctx);
    if (!n) throw new Error('nothing sent');
  };
}
const byteVariants: [string, () => void][] = [
  ['this build, no guardrails', inspected(StreamInspector, undefined)],
  ['this build, output guard', inspected(StreamInspector, { engine: mine, guardEventsFn: guardEvents })],
];
if (other) {
  const si = (await import(path.resolve(other, 'gateway/engine/openai/stream-inspector.js'))) as { StreamInspector: typeof StreamInspector };
  const e = (await import(path.resolve(other, 'gateway/guardrails/engine.js'))) as { GuardrailEngine: typeof GuardrailEngine };
  const st = (await import(path.resolve(other, 'gateway/engine/stages.js'))) as { guardEvents: typeof guardEvents };
  byteVariants.push([`${other}, no guardrails`, inspected(si.StreamInspector, undefined)], [`${other}, output guard`, inspected(si.StreamInspector, { engine: new e.GuardrailEngine(() => undefined), guardEventsFn: st.guardEvents })]);
}
for (const [name, xs] of alternatingRounds(byteVariants, 8, (fn) => measure(fn, 40, 50).p50))
  console.log(`stream inspector, the HTTP bench's stream as bytes (${sse.length + 1} events) [${name}]: ${roundsSummary(xs)}`);

// ---- a whole non-streamed request's guards, as the HTTP bench's guardrails server runs them ----
// The input check of the bench's 4 kB prompt (BENCH_PROMPT_BYTES=4096: ordinary prose, so the
// detectors' prefilter skips them all) and the check of the bench upstream's short answer, per
// request, beside parsing the same request body (which both servers of the HTTP A/B do): what
// guardrails add to a non-streamed request. BENCH_AB_DIST adds that build's engine.
const REQUEST = requestBody(false, businessPrompt(4096));
const ANSWER_BODY = { id: 'chatcmpl-1', object: 'chat.completion', created: 1764633600, model: 'test-model', choices: [{ index: 0, message: { role: 'assistant', content: BENCH_CONTENT }, logprobs: null, finish_reason: 'stop' }], usage: { prompt_tokens: 1030, completion_tokens: 8, total_tokens: 1038 } };
function wholeRequest(engine: Engine, request = REQUEST): () => void {
  const g = engine.guards();
  const input = g.input[0]!;
  const output = g.output[0]!;
  return () => {
    const ctx = { kind: 'chat', attempts: 1, body: JSON.parse(request) as unknown, snapshot, model: { name: 'chat' }, requestedModel: 'chat', key: undefined, status: 200, guardState: undefined } as unknown as Parameters<typeof guardEvents>[1];
    if (input.appliesTo?.(ctx) !== false && input.check(ctx)) throw new Error('asynchronous input check');
    if (output.appliesTo?.(ctx) !== false && output.checkBody?.(ctx, ANSWER_BODY)) throw new Error('the answer changed');
    engine.finish(ctx);
  };
}
// and the same with the mixed prompt (ids, dates, amounts, key=value: BENCH_PROMPT_KIND=mixed),
// with which every detector's expression runs
const REQUEST_MIXED = requestBody(false, businessPrompt(4096, true));
for (const [label, request] of [
  ['4 kB prose prompt', REQUEST],
  ['4 kB mixed prompt', REQUEST_MIXED],
] as const) {
  const requestVariants: [string, () => void][] = [
    ['body parse only', () => void JSON.parse(request)],
    ['this build', wholeRequest(mine, request)],
  ];
  if (other) {
    const e = (await import(path.resolve(other, 'gateway/guardrails/engine.js'))) as { GuardrailEngine: typeof GuardrailEngine };
    requestVariants.push([other, wholeRequest(new e.GuardrailEngine(() => undefined), request)]);
  }
  for (const [name, xs] of alternatingRounds(requestVariants, 8, (fn) => measure(fn, 40, 50).p50))
    console.log(`non-streamed request, ${label}: body parse + input and answer checks [${name}]: ${roundsSummary(xs)}`);
}
