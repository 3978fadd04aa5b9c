// The MCP bench's upstream: the tests' Streamable HTTP MCP server (SDK-built; tools add, whoami)
// in its own process, pinned by bench/mcp.ts. Prints its URL, then serves until SIGTERM.
import { startHttpUpstream } from '../test/helpers/mcp.js';

const up = await startHttpUpstream();
up.headersSeen.length = 0;
process.stdout.write(`mcp upstream listening on ${up.url}\n`);
// the bench makes thousands of calls: keep no per-request record
setInterval(() => (up.headersSeen.length = 0), 1000).unref();
const stop = () => void up.close().then(() => process.exit(0));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
