// The bench's upstream: the fast simulated model server from the tests, in its own process
// (run pinned to a core by bench/run.ts). Answers every completion with a short fixed content so
// the bench measures gateway overhead, not payload — except the slow-streams scenario's prompt
// (SLOW_PROMPT), answered with SLOW_CONTENT one word every 50-100 ms (drawn per request), as a
// model generating at 10-20 tokens/s would. Prints its URL, then serves until SIGTERM.
import { startUpstream, type Behavior } from '../test/helpers/upstream.js';
import { BENCH_CONTENT, SLOW_CHUNK_DELAY_MS, SLOW_CONTENT, SLOW_PROMPT } from './common.js';

const up = await startUpstream({ maxRecorded: 0 });
const fast: Behavior = { kind: 'ok', content: BENCH_CONTENT };
const { min, max } = SLOW_CHUNK_DELAY_MS;
up.setBehavior((req) => {
  const msgs = (req.body as { messages?: { content?: unknown }[] }).messages;
  if (msgs?.[msgs.length - 1]?.content !== SLOW_PROMPT) return fast;
  return { kind: 'ok', content: SLOW_CONTENT, chunkDelayMs: min + Math.floor(Math.random() * (max - min + 1)) };
});
process.stdout.write(`upstream listening on ${up.url}\n`);
const stop = () => void up.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
