// `node dist/bench/translate-micro.js`: what translating a streamed chat answer into Anthropic
// Messages events costs per request, in-process, without HTTP noise: the bench upstream's answer
// (a role chunk, one chunk per word, the finish chunk, the usage chunk) through the Messages
// translator (messagesAdapter.answer(ctx).stream) and the events written as SSE text, as the
// gateway does for /v1/messages. BENCH_AB_DIST=/path/to/another/dist runs the same against that
// build's translator, in alternating rounds (an A/B under the same machine load).
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { messagesAdapter } from '../gateway/engine/anthropic/messages.js';
import { formatSSE } from '../gateway/engine/sse.js';

const pre = '{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1764633600,"model":"test-model","choices":[';
const streamOf = (content: string) => [
  `${pre}{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}`,
  ...(content.match(/\s*\S+\s*/g) ?? []).map((w) => `${pre}{"index":0,"delta":{"content":${JSON.stringify(w)}},"logprobs":null,"finish_reason":null}]}`),
  `${pre}{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}`,
  `${pre}],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}`,
];
const SHORT = streamOf('the quick brown fox jumps over the dog');
const LONG = streamOf('the quick brown fox jumps over the dog '.repeat(50));

type Adapter = typeof messagesAdapter;
function run(adapter: Adapter, events: string[]): () => void {
  return () => {
    const ctx = { id: '0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b', requestedModel: 'chat', body: { model: 'chat', messages: [{ role: 'user', content: 'hi' }] }, promptTokens: 0, completionTokens: 0, promptEstimate: 20 };
    const a = adapter.answer(ctx as never);
    let out = '';
    for (const data of events) for (const ev of a.stream.event({ event: undefined, id: undefined, data })) out += formatSSE(ev);
    for (const ev of a.stream.end()) out += formatSSE(ev);
    if (!out.includes('message_stop')) throw new Error('no message_stop');
  };
}

function measure(fn: () => void, batches: number, per: number): number {
  for (let i = 0; i < 100; i++) fn();
  const t: number[] = [];
  for (let b = 0; b < batches; b++) {
    const t0 = performance.now();
    for (let i = 0; i < per; i++) fn();
    t.push(((performance.now() - t0) * 1000) / per);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)]!;
}

console.log(`node ${process.version}, ${os.cpus().length} cores, load average ${os.loadavg().map((x) => x.toFixed(2)).join(' / ')}`);
const variants: [string, Adapter][] = [['this build', messagesAdapter]];
if (process.env.BENCH_AB_DIST) {
  const other = (await import(path.resolve(process.env.BENCH_AB_DIST, 'gateway/engine/anthropic/messages.js'))) as { messagesAdapter: Adapter };
  variants.push([process.env.BENCH_AB_DIST, other.messagesAdapter]);
}
for (const [label, events, per] of [
  [`chat → Messages, the HTTP bench's stream (${SHORT.length} events)`, SHORT, 100],
  [`chat → Messages, 400 words one a chunk (${LONG.length} events)`, LONG, 5],
] as const) {
  const got = new Map<string, number[]>();
  for (let round = 0; round < 6; round++)
    for (const [name, adapter] of round % 2 ? [...variants].reverse() : variants) got.set(name, [...(got.get(name) ?? []), measure(run(adapter, [...events]), 40, per)]);
  for (const [name, xs] of got) {
    xs.sort((a, b) => a - b);
    console.log(`${label} [${name}]: p50 ${xs[Math.floor(xs.length / 2)]!.toFixed(1)} µs per request (rounds ${xs.map((x) => x.toFixed(1)).join(', ')})`);
  }
}
