#!/usr/bin/env node
// Entry point of the `airlock` command: the compiled CLI in dist/ (built by `npm ci` / `npm run build`).
import { existsSync } from 'node:fs';
import v8 from 'node:v8';

// Start-up allocates a lot that survives (modules, schemas, the config): V8 would double its young
// generation at each such collection, up to 2 x 16 MB, and keep it while the gateway idles (idle RSS
// ~120-145 MB instead of ~100). The young generation does not grow while the gateway starts;
// `serve` restores the default growth once it is ready (startupDone() in
// gateway/server/idle-memory.ts), so a loaded gateway still gets its full young generation.
v8.setFlagsFromString('--semi-space-growth-factor=1');

const cli = new URL('../dist/gateway/cli.js', import.meta.url);
if (!existsSync(cli)) {
  process.stderr.write('airlock: not built yet; run "npm run build" (npm ci does it for you)\n');
  process.exit(2);
}
const { main } = await import(cli.href);
const code = await main(process.argv.slice(2));
process.exitCode = code;
// Let output flush; do not wait for stray handles longer than that.
setTimeout(() => process.exit(code), 2000).unref();
