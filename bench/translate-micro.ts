// `node dist/bench/translate-micro.js`: what translating a streamed chat answer into Anthropic
// Messages events costs per request, in-process, without HTTP noise: the bench upstream's answer
// (a role chunk, one chunk per word, the finish chunk, the usage chunk) through the Messages
// translator (messagesAdapter.answer(ctx).stream) and the events written as SSE text, as the
// gateway does for /v1/messages. BENCH_AB_DIST=/path/to/another/dist runs the same against that
// build's translator, in alternating rounds (an A/B under the same machine load).
import os from 'node:os';
import path from 'node:path';
import { messagesAdapter } from '../gateway/engine/anthropic/messages.js';
import { formatSSE } from '../gateway/engine/sse.js';
import { BENCH_CONTENT, alternatingRounds, chatStreamEvents, measure, roundsSummary } from './common.js';

const USAGE = { prompt_tokens: 20, completion_tokens: 9, total_tokens: 29 };
const SHORT = chatStreamEvents(BENCH_CONTENT, USAGE);
const LONG = chatStreamEvents(`${BENCH_CONTENT} `.repeat(50), USAGE);

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
  const got = alternatingRounds(variants, 6, (adapter) => measure(run(adapter, [...events]), 40, per, 100).p50);
  for (const [name, xs] of got) console.log(`${label} [${name}]: ${roundsSummary(xs)}`);
}
