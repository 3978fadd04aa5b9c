// dispatchCall (engine/upstream-call.ts): the attempt's own reader of an upstream answer, on
// undici's dispatch API, against a real HTTP server through a real Pool. What the Readable of
// undici's request() gave and the attempt relies on: headers by name, chunks in order, a slow
// reader pausing the upstream, destroy() and a limit cutting the connection, the rest of a body
// read and dropped so its connection serves the next request, an abort before the answer (also
// while the request still waits for a connection), a body that breaks failing the next read.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { after, test } from 'node:test';
import { Pool } from '../../gateway/engine/undici.js';
import { BodyDestroyedError, dispatchCall, type UpstreamAnswer } from '../../gateway/engine/upstream-call.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function server(handler: Handler) {
  const sockets = new Set<Socket>();
  let connections = 0;
  let requests = 0;
  const closed: Socket[] = [];
  const srv = http.createServer((req, res) => {
    requests++;
    handler(req, res);
  });
  // an idle connection stays open for the whole test: a connection that closes was cut by the client
  srv.keepAliveTimeout = 60_000;
  srv.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => {
      sockets.delete(s);
      closed.push(s);
    });
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const pools: InstanceType<typeof Pool>[] = [];
  const s = {
    origin,
    get connections() {
      return connections;
    },
    get requests() {
      return requests;
    },
    closed,
    pool(connectionsMax = 4) {
      const p = new Pool(origin, { connections: connectionsMax, pipelining: 1 });
      pools.push(p);
      return p;
    },
    async close() {
      for (const p of pools) await p.destroy().catch(() => undefined);
      for (const so of sockets) so.destroy();
      await new Promise<void>((r) => srv.close(() => r()));
    },
  };
  after(() => s.close());
  return s;
}

const get = (path = '/') => ({ method: 'GET' as const, path, headers: {} });
const until = async (cond: () => boolean, what: string, ms = 5000) => {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
};

async function readAll(up: UpstreamAnswer): Promise<string> {
  let s = '';
  for (;;) {
    const r = await up.body.next();
    if (r.done) return s;
    s += r.value.toString();
  }
}

test('status, headers by lower-case name (repeated ones joined), chunks in order, then done', { timeout: 15_000 }, async () => {
  const s = await server((_req, res) => {
    res.setHeader('Content-Type', 'text/event-stream');
    res.setHeader('X-Twice', ['a', 'b']);
    res.writeHead(201);
    res.write('one,');
    setTimeout(() => {
      res.write('two,');
      res.end('three');
    }, 20);
  });
  const up = await dispatchCall(s.pool(), get()).answer;
  assert.equal(up.statusCode, 201);
  assert.equal(up.header('content-type'), 'text/event-stream');
  assert.equal(up.header('x-twice'), 'a, b');
  assert.equal(up.header('retry-after'), undefined);
  assert.equal(up.body.complete, false);
  assert.equal(await readAll(up), 'one,two,three');
  assert.equal(up.body.complete, true);
  assert.deepEqual(await up.body.next(), { value: undefined, done: true });
});

test('a 1xx before the answer is skipped: the answer is the final status', { timeout: 15_000 }, async () => {
  const s = await server((_req, res) => {
    res.writeProcessing();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end('{"ok":true}');
  });
  const up = await dispatchCall(s.pool(), get()).answer;
  assert.equal(up.statusCode, 200);
  assert.equal((await up.body.all(1024, NaN, () => new Error('too large'))).toString(), '{"ok":true}');
});

test('a reader that does not read pauses the upstream; reading on gets every byte', { timeout: 15_000 }, async () => {
  const CHUNK = Buffer.alloc(64 * 1024, 'x');
  const TOTAL = 1024; // 64 MiB if nothing held it back
  let pushed = 0;
  let blocked = false;
  const s = await server((_req, res) => {
    res.writeHead(200);
    const pump = () => {
      while (pushed < TOTAL) {
        pushed++;
        if (!res.write(CHUNK)) {
          blocked = true;
          res.once('drain', () => {
            blocked = false;
            pump();
          });
          return;
        }
      }
      res.end();
    };
    pump();
  });
  const up = await dispatchCall(s.pool(), get()).answer;
  await until(() => blocked, 'the upstream to be held back');
  await new Promise((r) => setTimeout(r, 200));
  // held back: the 16 queued chunks and the sockets' buffers, far from the whole body
  assert.ok(pushed < TOTAL / 4, `the upstream wrote ${pushed} of ${TOTAL} chunks while nothing was read`);
  let bytes = 0;
  for (;;) {
    const r = await up.body.next();
    if (r.done) break;
    bytes += r.value.length;
  }
  assert.equal(bytes, TOTAL * CHUNK.length);
});

test('all(): the whole body; over the limit (or a declared length over it) the connection is cut', { timeout: 15_000 }, async () => {
  const s = await server((req, res) => {
    if (req.url === '/small') return res.end('a'.repeat(100));
    res.writeHead(200, req.url === '/declared' ? { 'content-length': 5000 } : {});
    res.write('b'.repeat(1000));
    setTimeout(() => res.end('c'.repeat(4000)), 20);
  });
  const pool = s.pool(1);
  const small = await dispatchCall(pool, get('/small')).answer;
  assert.equal((await small.body.all(1000, NaN, () => new Error('x'))).length, 100);

  const big = await dispatchCall(pool, get('/big')).answer;
  await assert.rejects(big.body.all(2000, NaN, () => new Error('over the limit')), /over the limit/);
  await until(() => s.closed.length === 1, 'the connection to be cut');

  const declared = await dispatchCall(pool, get('/declared')).answer;
  await assert.rejects(declared.body.all(2000, Number(declared.header('content-length')), () => new Error('declared over')), /declared over/);
  await until(() => s.closed.length === 2, 'the connection to be cut');
  await assert.rejects(declared.body.next(), BodyDestroyedError);
});

test('discard(): the rest of a body is read and dropped and the connection serves the next request; past the limit it is cut', { timeout: 15_000 }, async () => {
  const s = await server((req, res) => {
    res.writeHead(200);
    res.write('head;');
    setTimeout(() => res.end(req.url === '/long' ? 'z'.repeat(100_000) : 'tail'), 20);
  });
  const pool = s.pool(1);
  const first = await dispatchCall(pool, get('/short')).answer;
  assert.equal((await first.body.next()).value?.toString(), 'head;');
  first.body.discard(1024);
  const second = await dispatchCall(pool, get('/short')).answer;
  assert.equal(await readAll(second), 'head;tail');
  assert.equal(s.connections, 1, 'one connection served both requests');
  assert.equal(s.closed.length, 0);

  const long = await dispatchCall(pool, get('/long')).answer;
  long.body.discard(1024);
  long.body.discard(1_000_000); // a later call changes nothing
  await until(() => s.closed.length === 1, 'the connection to be cut');
});

test('destroy() before the end cuts the connection and fails further reads; after the end it changes nothing', { timeout: 15_000 }, async () => {
  const s = await server((req, res) => {
    res.writeHead(200);
    if (req.url === '/done') return res.end('all');
    res.write('part');
  });
  const pool = s.pool(1);
  const done = await dispatchCall(pool, get('/done')).answer;
  assert.equal(await readAll(done), 'all');
  done.body.destroy();
  const open = await dispatchCall(pool, get('/open')).answer;
  assert.equal(s.closed.length, 0, 'a complete body does not cut its connection');
  assert.equal((await open.body.next()).value?.toString(), 'part');
  open.body.destroy();
  await assert.rejects(open.body.next(), BodyDestroyedError);
  await until(() => s.closed.length === 1, 'the connection to be cut');
});

test('abort() before the answer rejects it with the given error and cuts the connection', { timeout: 15_000 }, async () => {
  const s = await server(() => {
    /* never answers */
  });
  const c = dispatchCall(s.pool(), get());
  await until(() => s.requests === 1, 'the request to arrive');
  c.abort(new Error('timed out here'));
  await assert.rejects(c.answer, /timed out here/);
  await until(() => s.closed.length === 1, 'the connection to be cut');
});

test('abort() while the request waits for a connection: rejected at once, never sent; the pool goes on', { timeout: 15_000 }, async () => {
  let release: (() => void) | undefined;
  const s = await server((req, res) => {
    if (req.url === '/hold') release = () => res.end('held');
    else res.end('next');
  });
  const pool = s.pool(1);
  const holding = dispatchCall(pool, get('/hold')).answer;
  await until(() => release !== undefined, 'the first request to arrive');
  const queued = dispatchCall(pool, get('/queued'));
  queued.abort(new Error('client left'));
  await assert.rejects(queued.answer, /client left/);
  release!();
  assert.equal(await readAll(await holding), 'held');
  assert.equal(await readAll(await dispatchCall(pool, get('/after')).answer), 'next');
  assert.equal(s.requests, 2, 'the aborted request never reached the server');
});

test('a body the upstream breaks off fails the next read (and a pending one)', { timeout: 15_000 }, async () => {
  const s = await server((_req, res) => {
    res.writeHead(200);
    res.write('partial');
    setTimeout(() => res.socket?.destroy(), 30);
  });
  const up = await dispatchCall(s.pool(), get()).answer;
  assert.equal((await up.body.next()).value?.toString(), 'partial');
  await assert.rejects(up.body.next(), (e: Error) => e instanceof Error && !(e instanceof BodyDestroyedError));
  assert.equal(up.body.complete, false);
});

test('text(limit): at most limit characters, and the rest is not read (the connection is cut)', { timeout: 15_000 }, async () => {
  const s = await server((req, res) => {
    res.writeHead(400);
    if (req.url === '/short') return res.end('{"error":"bad"}');
    res.write('e'.repeat(5000));
  });
  const pool = s.pool(1);
  assert.equal(await (await dispatchCall(pool, get('/short')).answer).body.text(100), '{"error":"bad"}');
  assert.equal(await (await dispatchCall(pool, get('/long')).answer).body.text(100), 'e'.repeat(100));
  await until(() => s.closed.length === 1, 'the connection to be cut');
});
