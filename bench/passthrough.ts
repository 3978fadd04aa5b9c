// The baseline: a bare passthrough with the same building blocks as the gateway (fastify +
// an undici Pool) and nothing else. POST /v1/chat/completions parses the JSON body, forwards it
// to the upstream and streams the answer back as it arrives (stream and non-stream alike).
//
// With --dispatch it reads the upstream's answer through undici's dispatch API (a handler that
// writes each chunk to the client as it comes, pausing the upstream while the client is slow)
// instead of request()'s Readable piped to the client: cheaper per request, as the gateway's
// attempt reads since the thirteenth session (bench/run.ts's "dispatch" server).
//
// Run: node dist/bench/passthrough.js UPSTREAM_BASE_URL [--dispatch]   (e.g. http://127.0.0.1:PORT/v1)
// Prints "passthrough listening on http://HOST:PORT".
import { fileURLToPath } from 'node:url';
import Fastify, { type FastifyInstance } from 'fastify';
import { Pool, type Dispatcher } from 'undici';

export function buildPassthrough(upstreamBaseUrl: string, dispatch = false): { app: FastifyInstance; pool: Pool } {
  const u = new URL(upstreamBaseUrl);
  const basePath = u.pathname.replace(/\/$/, '');
  // enough connections for the slow-streams scenario's streams (like the gateway's endpoint in the bench)
  const pool = new Pool(u.origin, { connections: 4096, pipelining: 1, keepAliveTimeout: 30_000 });
  const app = Fastify({ logger: false, keepAliveTimeout: 72_000, requestTimeout: 0, bodyLimit: 10 * 1024 * 1024 });
  if (dispatch) {
    app.post('/v1/chat/completions', (req, reply) => {
      reply.hijack();
      const res = reply.raw;
      let resume: (() => void) | undefined;
      let abort: ((e?: Error) => void) | undefined;
      res.on('close', () => {
        if (!res.writableFinished) abort?.();
      });
      const handler: Dispatcher.DispatchHandler = {
        onConnect: (a) => {
          abort = a;
        },
        onHeaders: (status, raw, r) => {
          resume = r;
          let ct = 'application/json';
          for (let i = 0; i + 1 < raw.length; i += 2) if (raw[i]!.length === 12 && raw[i]!.toString('latin1').toLowerCase() === 'content-type') ct = raw[i + 1]!.toString('latin1');
          res.writeHead(status, { 'content-type': ct });
          return true;
        },
        onData: (chunk) => {
          if (res.write(chunk)) return true;
          res.once('drain', () => resume?.());
          return false;
        },
        onComplete: () => res.end(),
        onError: () => res.destroy(),
      };
      pool.dispatch({ method: 'POST', path: `${basePath}/chat/completions`, headers: { 'content-type': 'application/json' }, body: JSON.stringify(req.body) }, handler);
    });
  } else app.post('/v1/chat/completions', async (req, reply) => {
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
    process.stderr.write('usage: node dist/bench/passthrough.js UPSTREAM_BASE_URL [--dispatch]\n');
    process.exit(2);
  }
  const { app } = buildPassthrough(upstream, process.argv.includes('--dispatch'));
  const addr = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
  process.stdout.write(`passthrough listening on ${addr}\n`);
  const stop = () => void app.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
