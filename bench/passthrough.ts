// The baseline: a bare passthrough with the same building blocks as the gateway (fastify +
// an undici Pool) and nothing else. POST /v1/chat/completions parses the JSON body, forwards it
// to the upstream and streams the answer back as it arrives (stream and non-stream alike).
//
// Run: node dist/bench/passthrough.js UPSTREAM_BASE_URL   (e.g. http://127.0.0.1:PORT/v1)
// Prints "passthrough listening on http://HOST:PORT".
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool } from 'undici';

export function buildPassthrough(upstreamBaseUrl: string): { app: FastifyInstance; pool: Pool } {
  const u = new URL(upstreamBaseUrl);
  const basePath = u.pathname.replace(/\/$/, '');
  // enough connections for the slow-streams scenario's streams (like the gateway's endpoint in the bench)
  const pool = new Pool(u.origin, { connections: 4096, pipelining: 1, keepAliveTimeout: 30_000 });
  const app = Fastify({ logger: false, keepAliveTimeout: 72_000, requestTimeout: 0, bodyLimit: 10 * 1024 * 1024 });
  app.post('/v1/chat/completions', async (req, reply) => {
    const up = await pool.request({
      method: 'POST',
      path: `${basePath}/chat/completions`,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(req.body),
    });
    reply.hijack();
    const res = reply.raw;
    res.writeHead(up.statusCode, { 'content-type': String(up.headers['content-type'] ?? 'application/json') });
    // .pipe, not stream.pipeline: pipeline allocates an AbortController per call and aborts it
    // (a DOMException with a stack) when done, a cost that is the baseline's, not the gateway's.
    up.body.on('error', () => res.destroy());
    res.on('close', () => {
      if (!up.body.readableEnded) up.body.destroy();
    });
    up.body.pipe(res);
  });
  app.addHook('onClose', async () => {
    await pool.close();
  });
  return { app, pool };
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const upstream = process.argv[2];
  if (!upstream) {
    process.stderr.write('usage: node dist/bench/passthrough.js UPSTREAM_BASE_URL\n');
    process.exit(2);
  }
  const { app } = buildPassthrough(upstream);
  const addr = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
  process.stdout.write(`passthrough listening on ${addr}\n`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
