// The bench's upstream: the fast simulated model server from the tests, in its own process
// (run pinned to a core by bench/run.ts). Answers every completion with a short fixed content so
// the bench measures gateway overhead, not payload. Prints its URL, then serves until SIGTERM.
import { startUpstream } from '../test/helpers/upstream.js';
import { BENCH_CONTENT } from './common.js';

const up = await startUpstream({ maxRecorded: 0 });
up.setBehavior({ kind: 'ok', content: BENCH_CONTENT });
process.stdout.write(`upstream listening on ${up.url}\n`);
const stop = () => void up.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
