// Client connection limits and timeouts (settings.http) on both planes, against the real gateway
// process over real sockets: a client that is slow to send its headers or its body is answered
// 408 / disconnected, a streamed answer that lasts longer than the request timeout still completes,
// connections beyond max_connections (data plane) and admin_max_connections (admin plane) are
// closed while those inside keep working, and max_requests_per_socket ends a keep-alive
// connection.
//
// No timed assertions: a close is awaited (a deadline far above the setting, but far below
// Node's default 30 s check interval, fails the test only if it never comes); the one time
// comparison made is "not before the timeout", which the server guarantees.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, streamPieces, type TestUpstream } from '../helpers/upstream.js';

const HEADERS_TIMEOUT = 600;
const REQUEST_TIMEOUT = 1500;
/** Longest a close may take before the test fails: well above the timeouts, well below Node's default 30 s check. */
const CLOSE_DEADLINE = 12_000;

interface Closed {
  /** everything the server sent before closing */
  data: string;
  /** ms from `since` to the close */
  afterMs: number;
}

/** A raw TCP connection to a plane, recording what the server sends and when it closes. */
function connect(url: string): Promise<{ sock: net.Socket; closed: (since: number) => Promise<Closed> }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    let data = '';
    sock.on('data', (d: Buffer) => (data += d.toString('latin1')));
    sock.on('error', () => {
      /* a reset is a close too */
    });
    const done = new Promise<number>((r) => sock.on('close', () => r(performance.now())));
    sock.once('connect', () =>
      resolve({
        sock,
        closed: async (since) => {
          let timer: NodeJS.Timeout | undefined;
          const deadline = new Promise<never>((_, rej) => {
            timer = setTimeout(() => rej(new Error(`the server did not close the connection within ${CLOSE_DEADLINE} ms; it sent: ${JSON.stringify(data)}`)), CLOSE_DEADLINE);
          });
          try {
            const at = await Promise.race([done, deadline]);
            return { data, afterMs: at - since };
          } finally {
            clearTimeout(timer);
            sock.destroy();
          }
        },
      }),
    );
    sock.once('error', reject);
  });
}

/** One request over a given keep-alive agent (one agent = one connection here). */
function get(agent: http.Agent, url: string): Promise<{ status: number; reused: boolean; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, reused: req.reusedSocket, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}
const oneConnection = () => new http.Agent({ keepAlive: true, maxSockets: 1, maxFreeSockets: 1 });

/** A 408 from the server or a close without an answer: both end a too-slow client. */
function assertTimedOut(c: Closed, what: string): void {
  assert.ok(c.data === '' || /^HTTP\/1\.1 408 /.test(c.data), `${what}: expected a 408 or a bare close, got ${JSON.stringify(c.data.slice(0, 200))}`);
}

describe('client timeouts (settings.http)', () => {
  let up: TestUpstream;
  let gw: RunningGateway;

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      config: basicConfig(up.url, {
        settings: { http: { headers_timeout_ms: HEADERS_TIMEOUT, request_timeout_ms: REQUEST_TIMEOUT, max_requests_per_socket: 2 } },
      }),
    });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  for (const plane of ['data', 'admin'] as const) {
    test(`${plane} plane: a client sending a partial request line is disconnected after headers_timeout_ms`, async () => {
      const { sock, closed } = await connect(plane === 'data' ? gw.dataUrl : gw.adminUrl);
      const since = performance.now();
      sock.write(plane === 'data' ? 'POST /v1/chat/compl' : 'GET /admin/api/v1/sta');
      const c = await closed(since);
      assertTimedOut(c, 'slow request line');
      assert.ok(c.afterMs >= HEADERS_TIMEOUT * 0.9, `closed after ${c.afterMs} ms, before the headers timeout`);
    });

    test(`${plane} plane: a client that connects and sends nothing is disconnected too`, async () => {
      const { closed } = await connect(plane === 'data' ? gw.dataUrl : gw.adminUrl);
      assertTimedOut(await closed(performance.now()), 'silent client');
    });
  }

  test('data plane: headers sent, then a body dribbled a byte at a time, gets 408 / a close after request_timeout_ms', async () => {
    const { sock, closed } = await connect(gw.dataUrl);
    const since = performance.now();
    sock.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${TEST_KEY}\r\n` +
        `Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{"model":"chat","messages":[`,
    );
    // Keep sending, slowly: past the headers timeout (the headers are complete) up to the request timeout.
    let lastWriteMs = 0;
    const drip = setInterval(() => {
      if (sock.destroyed || !sock.writable) return;
      sock.write(' ');
      lastWriteMs = performance.now() - since;
    }, 100);
    try {
      const c = await closed(since);
      assertTimedOut(c, 'dribbled body');
      assert.ok(c.afterMs >= REQUEST_TIMEOUT * 0.9, `closed after ${c.afterMs} ms, before the request timeout`);
      assert.ok(lastWriteMs > HEADERS_TIMEOUT, 'the body was still arriving after the headers timeout: only the request timeout ended it');
    } finally {
      clearInterval(drip);
    }
    assert.equal(up.completions().length, 0, 'nothing reached the upstream');
  });

  test('admin plane: a dribbled body gets 408 / a close too', async () => {
    const { sock, closed } = await connect(gw.adminUrl);
    const port = new URL(gw.adminUrl).port;
    const since = performance.now();
    sock.write(`POST /admin/api/v1/auth/login HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{`);
    const drip = setInterval(() => !sock.destroyed && sock.writable && sock.write(' '), 100);
    try {
      const c = await closed(since);
      assertTimedOut(c, 'dribbled admin body');
      assert.ok(c.afterMs >= REQUEST_TIMEOUT * 0.9, `closed after ${c.afterMs} ms, before the request timeout`);
    } finally {
      clearInterval(drip);
    }
  });

  test('a streamed answer that lasts longer than request_timeout_ms completes (the timeout is on receiving the request)', async () => {
    const content = 'one two three four five six seven eight nine ten';
    const pieces = streamPieces(content);
    const chunkDelayMs = 250;
    assert.ok(pieces.length * chunkDelayMs > REQUEST_TIMEOUT * 1.5, 'the stream is meant to outlast the request timeout');
    up.setBehavior({ kind: 'ok', content, chunkDelayMs });
    const started = performance.now();
    const res = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'count' }] }),
    });
    assert.equal(res.status, 200);
    const text = await res.text();
    const took = performance.now() - started;
    const got = text
      .split('\n')
      .filter((l) => l.startsWith('data: {'))
      .map((l) => JSON.parse(l.slice(6)).choices?.[0]?.delta?.content ?? '')
      .join('');
    assert.equal(got, content, 'every chunk arrived');
    assert.match(text, /data: \[DONE\]\s*$/, 'the stream ended cleanly');
    assert.ok(took > REQUEST_TIMEOUT, `the stream took ${took} ms: longer than the request timeout`);

    // A non-streamed answer that takes as long is not cut either.
    const slow = await fetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content: 'count' }] }),
    });
    assert.equal(slow.status, 200);
    assert.equal(((await slow.json()) as { choices: { message: { content: string } }[] }).choices[0]!.message.content, content);
    up.setBehavior({ kind: 'ok' });
  });

  test('max_requests_per_socket: the last allowed answer closes the keep-alive connection', async () => {
    const agent = oneConnection();
    try {
      const first = await get(agent, `${gw.dataUrl}/healthz`);
      assert.equal(first.status, 200);
      assert.notEqual(first.headers.connection, 'close');
      const second = await get(agent, `${gw.dataUrl}/healthz`);
      assert.equal(second.status, 200);
      assert.equal(second.reused, true, 'the second request used the same connection');
      assert.equal(second.headers.connection, 'close', 'the second request (of 2 allowed) ends the connection');
      const third = await get(agent, `${gw.dataUrl}/healthz`);
      assert.equal(third.status, 200);
      assert.equal(third.reused, false, 'the third request needed a new connection');
    } finally {
      agent.destroy();
    }
  });
});

describe('connection caps (settings.http.max_connections, admin_max_connections)', () => {
  const DATA_MAX = 3;
  const ADMIN_MAX = 2;
  let up: TestUpstream;
  let gw: RunningGateway;
  const agents: http.Agent[] = [];
  const agent = () => {
    const a = oneConnection();
    agents.push(a);
    return a;
  };

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url, { settings: { http: { max_connections: DATA_MAX, admin_max_connections: ADMIN_MAX } } }) });
  });
  after(async () => {
    for (const a of agents) a.destroy();
    await gw?.stop();
    await up?.close();
  });

  for (const plane of ['data', 'admin'] as const) {
    test(`${plane} plane: connections beyond the cap are closed; those inside keep working; a freed slot is usable again`, async () => {
      const max = plane === 'data' ? DATA_MAX : ADMIN_MAX;
      const url = plane === 'data' ? `${gw.dataUrl}/healthz` : `${gw.adminUrl}/admin/api/v1/auth/state`;
      const inside = Array.from({ length: max }, agent);
      // Each connection has had an answer: the server holds all of them (keep-alive) before the next one comes.
      for (const a of inside) {
        const r = await get(a, url);
        assert.equal(r.status, 200);
        assert.equal(r.reused, false);
      }
      const extra = agent();
      await assert.rejects(get(extra, url), (e: NodeJS.ErrnoException) => {
        assert.ok(['ECONNRESET', 'EPIPE'].includes(e.code ?? ''), `refused connection: ${e.code} ${e.message}`);
        return true;
      });
      // The connections inside the cap still work, on the same sockets.
      for (const a of inside) {
        const r = await get(a, url);
        assert.equal(r.status, 200);
        assert.equal(r.reused, true, 'same connection as before');
      }
      // Close one: a new connection gets in (once the server has seen the close).
      inside[0]!.destroy();
      const r = await eventually(async () => {
        const fresh = agent();
        try {
          return await get(fresh, url);
        } catch {
          fresh.destroy();
          return undefined;
        }
      }, 'a new connection after one inside the cap closed');
      assert.equal(r.status, 200);
      for (const a of [...agents]) a.destroy();
      agents.length = 0;
    });
  }
});
