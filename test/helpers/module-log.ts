// Preloaded into a gateway under test (`node --import dist/test/helpers/module-log.js`, through
// NODE_OPTIONS): appends the URL of every ES module the process loads to $AIRLOCK_TEST_MODULE_LOG,
// so a test can tell which packages a running gateway has loaded (e.g. the MCP SDK only when MCP
// is used). The hooks run in Node's loader thread (module-log-hooks.ts).
import { register } from 'node:module';
import { isMainThread } from 'node:worker_threads';

const file = process.env.AIRLOCK_TEST_MODULE_LOG;
// the gateway's own worker threads load modules through the same hooks; register them once
if (file && isMainThread) register(new URL('./module-log-hooks.js', import.meta.url).href, { data: { file } });
