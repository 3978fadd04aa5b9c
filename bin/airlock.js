#!/usr/bin/env node
// Entry point of the `airlock` command: the compiled CLI in dist/ (built by `npm ci` / `npm run build`).
import { existsSync } from 'node:fs';

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
