// Constants shared by the bench's processes, and the micro-benchmarks' helpers (measure, the
// bench upstream's streamed chat answer as event data, A/B rounds in alternating order).
import { performance } from 'node:perf_hooks';

/** What the bench upstream answers: 8 words, so the bench measures overhead, not payload. */
export const BENCH_CONTENT = 'the quick brown fox jumps over the dog';
/** The literal virtual key the bench gateway is configured with. */
export const BENCH_KEY = 'sk-airlock-bench-key-000000000000000000000001';
export const BENCH_MODEL = 'chat';

/** The slow-streams scenario's user message: the bench upstream answers it slowly (upstream-server.ts). */
export const SLOW_PROMPT = 'Say something slowly.';
/** Its answer: 40 words, one content chunk each. */
export const SLOW_CONTENT = Array.from({ length: 5 }, () => BENCH_CONTENT).join(' ');
/** The pause before each content chunk of a slow stream: drawn per stream from [min, max] ms. */
export const SLOW_CHUNK_DELAY_MS = { min: 50, max: 100 };

export function requestBody(stream: boolean, prompt = 'Say something short.'): string {
  return JSON.stringify({
    model: BENCH_MODEL,
    messages: [
      { role: 'system', content: 'You are a helpful assistant.' },
      { role: 'user', content: prompt },
    ],
    max_tokens: 16,
    ...(stream ? { stream: true } : {}),
  });
}

const PROSE = [
  'Please summarise the quarterly planning notes for the operations team.',
  'The warehouse in the north region finished the inventory count on schedule.',
  'Customer feedback on the new invoicing portal was mostly positive this month.',
  'We expect the supplier contract renewal to be signed before the end of the quarter.',
  'The training sessions for the support staff are booked for the second week.',
  'Budget figures for travel and equipment stay within last year\'s limits.',
];

/** Business prose with what sets the detectors' prefilters off (digits, dates, times, ids,
 * versions, `-`, `:`, `=`, `@` in a handle, an address-like host) and still no personal data or
 * secret: every detector's expression runs, none finds anything. */
const MIXED = [
  'Ticket OPS-4821 was closed on 2026-11-30 at 14:05 after the rollout of version 2.3.1 to 12 sites.',
  'Order 55120 (3 pallets, 480 kg) left the north warehouse at 07:45; ETA is 2 days.',
  'Set retries=3 and timeout=30 for the nightly batch job; it ran 4,812 records in 96 s.',
  'The Q3 review moved from room B-204 to the main hall; 27 people confirmed by 16:00.',
  'Ask @ops-oncall in the team channel before changing build.internal settings for release 41.',
  'Invoice batch 2026/11 totals 18,430.50 EUR across 64 lines; the audit found 0 issues.',
];

/** An ordinary business prompt of about `bytes` bytes (no personal data, no secrets: what the
 * detectors scan on every request, not what they find). `mixed`: with numbers, dates, ids and
 * punctuation that the detectors' prefilters react to (MIXED), so their expressions run too. */
export function businessPrompt(bytes: number, mixed = false): string {
  const lines = mixed ? MIXED : PROSE;
  let s = '';
  for (let i = 0; s.length < bytes; i++) s += (s ? ' ' : '') + lines[i % lines.length]!;
  return s.slice(0, bytes);
}

/** Per-call µs of `fn`: `warmup` calls, then `batches` batches of `per` calls; the median and p90
 * over the batches (on a shared machine, the median of many short batches is the least disturbed
 * figure). */
export function measure(fn: () => void, batches = 200, per = 20, warmup = 200): { p50: number; p90: number } {
  for (let i = 0; i < warmup; i++) fn();
  const t: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < per; i++) fn();
    t.push(((performance.now() - t0) * 1000) / per);
  }
  t.sort((a, b) => a - b);
  return { p50: t[Math.floor(t.length / 2)]!, p90: t[Math.floor(t.length * 0.9)]! };
}

/** A streamed chat answer as the bench upstream writes it (compact chunks: the role chunk, one
 * chunk per word, the finish chunk, and the usage chunk when given), each event's data. */
export function chatStreamEvents(content: string, usage?: { prompt_tokens: number; completion_tokens: number; total_tokens: number }): string[] {
  const pre = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764633600,"model":"test-model","choices":[';
  return [
    `${pre}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
    ...(content.match(/\s*\S+\s*/g) ?? []).map((w) => `${pre}{"index":0,"delta":{"content":${JSON.stringify(w)}},"logprobs":null,"finish_reason":null}]}`),
    `${pre}{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
    ...(usage ? [`${pre}],"usage":${JSON.stringify(usage)}}`] : []),
  ];
}

/** An A/B in one process: `rounds` rounds, each running every variant once, the order reversed
 * every other round (so that all see the same machine load); each variant's figures, one a round. */
export function alternatingRounds<T>(variants: readonly (readonly [string, T])[], rounds: number, run: (v: T) => number): Map<string, number[]> {
  const got = new Map<string, number[]>();
  for (let round = 0; round < rounds; round++)
    for (const [name, v] of round % 2 ? [...variants].reverse() : variants) got.set(name, [...(got.get(name) ?? []), run(v)]);
  return got;
}

/** The median of some figures, and the figures in order, as a report line's tail. */
export function roundsSummary(xs: readonly number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  return `p50 ${s[Math.floor(s.length / 2)]!.toFixed(1)} µs per request (rounds ${s.map((x) => x.toFixed(1)).join(', ')})`;
}
