// The proof that the admin origin is the shell's own gateway (main/lib/admin-proof.ts, the
// gateway's side in gateway/server/shell-proof.ts): the check's logic, then the real gateway (its
// responses are proven, for every kind of answer) and a squatting server on the same port spelled
// differently (its own answers, a replayed proof and a relay to the real gateway are all refused).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  AdminOriginProof,
  endpointOf,
  expectedProof,
  headerValue,
  SHELL_CHALLENGE_HEADER,
  SHELL_PROOF_HEADER,
  SHELL_PROOF_KEY_ENV,
} from '../../main/lib/admin-proof.js';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';

const ADMIN = 'http://127.0.0.1:4001';

/** A gateway's answer to a challenge, computed as gateway/server/shell-proof.ts does. */
function answer(key: string, challenge: string, url = `${ADMIN}/`): Record<string, string[]> {
  const ep = endpointOf(url)!;
  return { 'X-Airlock-Shell-Proof': [expectedProof(key, challenge, ep.address, ep.port)] };
}

describe('AdminOriginProof', () => {
  test('a proven response grants trust; before it, none', () => {
    const p = new AdminOriginProof();
    const key = p.rotate();
    p.setAdminOrigin(ADMIN);
    assert.equal(p.proven, false);
    assert.equal(p.trustedOrigin(ADMIN), null, 'no IPC before a proof');
    const c = p.challengeFor(1, `${ADMIN}/`);
    assert.ok(c && c.length >= 22);
    assert.notEqual(p.challengeFor(2, `${ADMIN}/x`), c, 'a new challenge for every request');
    assert.deepEqual(p.check(1, `${ADMIN}/`, answer(key, c)), { kind: 'proven' });
    assert.equal(p.proven, true);
    assert.equal(p.trustedOrigin(ADMIN), ADMIN);
    assert.equal(p.trustedOrigin('http://127.0.0.1:4002'), null, 'only for the origin that was proven');
  });

  test('missing, wrong, repeated, replayed and other-key proofs are refused', () => {
    const p = new AdminOriginProof();
    const key = p.rotate();
    p.setAdminOrigin(ADMIN);
    const c1 = p.challengeFor(1, `${ADMIN}/`)!;
    assert.equal(p.check(1, `${ADMIN}/`, { 'content-type': ['text/html'] }).kind, 'refused');
    const c2 = p.challengeFor(2, `${ADMIN}/`)!;
    assert.equal(p.check(2, `${ADMIN}/`, answer(key, c1)).kind, 'refused', 'a proof for another challenge (replay)');
    const c3 = p.challengeFor(3, `${ADMIN}/`)!;
    const other = new AdminOriginProof().rotate();
    assert.equal(p.check(3, `${ADMIN}/`, answer(other, c3)).kind, 'refused', 'another key');
    const c4 = p.challengeFor(4, `${ADMIN}/`)!;
    const good = answer(key, c4)['X-Airlock-Shell-Proof']![0]!;
    assert.equal(p.check(4, `${ADMIN}/`, { [SHELL_PROOF_HEADER]: [good, good] }).kind, 'refused', 'a repeated header');
    assert.equal(p.check(5, `${ADMIN}/`, answer(key, c2)).kind, 'refused', 'a request that carried no challenge');
    const c6 = p.challengeFor(6, `${ADMIN}/`)!;
    assert.equal(p.check(6, `${ADMIN}/`, answer(key, c6, 'http://127.0.0.2:4001/')).kind, 'refused', 'proven for another local address');
    const c7 = p.challengeFor(7, `${ADMIN}/`)!;
    p.check(7, `${ADMIN}/`, answer(key, c7));
    assert.equal(p.check(7, `${ADMIN}/`, answer(key, c7)).kind, 'refused', 'a challenge is answered once');
    assert.equal(p.proven, true, 'the one good answer (7) proved it');
  });

  test('other origins are not challenged and need no proof; another spelling of the admin host is another origin', () => {
    const p = new AdminOriginProof();
    p.rotate();
    p.setAdminOrigin(ADMIN);
    for (const url of ['http://127.0.0.1:4000/v1/models', 'http://localhost:4001/', 'https://127.0.0.1:4001/', 'data:text/html,x']) {
      assert.equal(p.challengeFor(1, url), null, url);
      assert.deepEqual(p.check(1, url, {}), { kind: 'other' }, url);
    }
    assert.equal(p.proven, false);
  });

  test('a new gateway process (rotate) or a new admin origin must prove itself again', () => {
    const p = new AdminOriginProof();
    let key = p.rotate();
    p.setAdminOrigin(ADMIN);
    const c = p.challengeFor(1, `${ADMIN}/`)!;
    p.check(1, `${ADMIN}/`, answer(key, c));
    assert.equal(p.proven, true);
    const old = key;
    key = p.rotate();
    assert.notEqual(key, old);
    assert.equal(p.proven, false);
    assert.equal(p.trustedOrigin(ADMIN), null);
    const c2 = p.challengeFor(2, `${ADMIN}/`)!;
    assert.equal(p.check(2, `${ADMIN}/`, answer(old, c2)).kind, 'refused', "the old process's key no longer proves anything");
    const c3 = p.challengeFor(3, `${ADMIN}/`)!;
    p.check(3, `${ADMIN}/`, answer(key, c3));
    assert.equal(p.proven, true);
    p.setAdminOrigin('http://127.0.0.1:5001');
    assert.equal(p.proven, false);
  });

  test('before any fork every admin-origin response is refused; errors forget their challenge', () => {
    const p = new AdminOriginProof();
    p.setAdminOrigin(ADMIN);
    assert.equal(p.check(1, `${ADMIN}/`, {}).kind, 'refused');
    p.rotate();
    p.challengeFor(9, `${ADMIN}/`);
    p.forget(9);
    assert.equal(p.check(9, `${ADMIN}/`, {}).kind, 'refused');
  });

  test('helpers', () => {
    assert.deepEqual(endpointOf('http://[::1]:4001/x'), { address: '::1', port: 4001 });
    assert.deepEqual(endpointOf('https://10.0.0.5/'), { address: '10.0.0.5', port: 443 });
    assert.deepEqual(endpointOf('http://127.0.0.1/'), { address: '127.0.0.1', port: 80 });
    assert.equal(endpointOf('file:///etc/passwd'), null);
    assert.equal(headerValue({ 'X-AIRLOCK-SHELL-PROOF': ['a'] }, SHELL_PROOF_HEADER), 'a');
    assert.equal(headerValue({ [SHELL_PROOF_HEADER]: 'b' }, SHELL_PROOF_HEADER), 'b');
    assert.equal(headerValue(undefined, SHELL_PROOF_HEADER), undefined);
  });
});

/** Electron's responseHeaders shape from a fetch Response. */
function headersOf(res: Response | http.IncomingMessage): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  if ('rawHeaders' in res) {
    for (let i = 0; i < res.rawHeaders.length; i += 2) (out[res.rawHeaders[i]!] ??= []).push(res.rawHeaders[i + 1]!);
  } else {
    res.headers.forEach((v, k) => (out[k] ??= []).push(v));
  }
  return out;
}

/** A request the way the window makes it: challenged by the shell, checked on the way back. */
async function windowRequest(p: AdminOriginProof, id: number, url: string, init: RequestInit = {}) {
  const challenge = p.challengeFor(id, url);
  const headers = new Headers(init.headers);
  if (challenge) headers.set(SHELL_CHALLENGE_HEADER, challenge);
  const res = await fetch(url, { ...init, headers, redirect: 'manual' });
  await res.arrayBuffer();
  return { res, verdict: p.check(id, url, headersOf(res)) };
}

function listen(server: http.Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
}

describe('the proof with the real gateway and a squatting server', () => {
  let gw: RunningGateway | undefined;
  const servers: http.Server[] = [];
  after(async () => {
    for (const s of servers) s.close();
    await gw?.stop();
  });

  test('the real gateway proves every kind of admin answer; a squatter on 127.0.0.2 (same port) cannot, even relaying or replaying', { timeout: 60_000 }, async () => {
    const proof = new AdminOriginProof();
    const key = proof.rotate();
    gw = await startGateway({ env: { [SHELL_PROOF_KEY_ENV]: key } });
    const admin = gw.adminUrl;
    const port = Number(new URL(admin).port);
    proof.setAdminOrigin(admin);
    assert.equal(proof.trustedOrigin(admin), null, 'nothing proven yet');

    // The admin app, the API (public and authenticated), a 404 and an authorization refusal: all proven.
    let id = 0;
    for (const [path, init] of [
      ['/', {}],
      ['/admin/api/v1/auth/state', {}],
      ['/admin/api/v1/status', {}],
      ['/admin/api/v1/status', { headers: { authorization: 'Bearer test-admin-token-0123456789' } }],
      ['/no/such/page', {}],
      ['/admin/api/v1/settings', { method: 'PUT', headers: { 'content-type': 'application/json', origin: 'http://evil.example' }, body: '{}' }],
    ] as [string, RequestInit][]) {
      const { res, verdict } = await windowRequest(proof, ++id, `${admin}${path}`, init);
      assert.deepEqual(verdict, { kind: 'proven' }, `${init.method ?? 'GET'} ${path} → ${res.status}`);
    }
    assert.equal(proof.trustedOrigin(admin), admin, 'IPC is granted once proven');

    // Without the shell's challenge the gateway proves nothing (browsers on the LAN get no header).
    const plain = await fetch(`${admin}/admin/api/v1/auth/state`);
    await plain.arrayBuffer();
    assert.equal(plain.headers.get(SHELL_PROOF_HEADER), null);
    // The key is nowhere to be seen.
    const status = await gw.admin('GET', '/status');
    assert.equal(status.status, 200);
    assert.ok(!JSON.stringify(status.body).includes(key), 'not in /status');
    assert.ok(!gw.stdout().includes(key) && !gw.stderr().includes(key), 'not in the output');

    // A proof captured from the real gateway (for the squatter's replay).
    const captured = await fetch(`${admin}/`, { headers: { [SHELL_CHALLENGE_HEADER]: 'A'.repeat(32) } });
    await captured.arrayBuffer();
    const capturedProof = captured.headers.get(SHELL_PROOF_HEADER);
    assert.ok(capturedProof);

    // The squatter: the same port on another spelling of loopback. The shell's admin origin is that
    // spelling (as when the gateway listens on a wildcard and the window opens 127.0.0.1 while
    // another process holds that exact address).
    const squatOrigin = `http://127.0.0.2:${port}`;
    // The same shell (the key the real gateway holds): the squatter must not be able to use the real gateway.
    const shell = proof;
    shell.setAdminOrigin(squatOrigin);
    assert.equal(shell.proven, false, 'a new admin origin must prove itself');

    // 1. Its own answers: no proof.
    let mode: 'own' | 'replay' | 'relay' = 'own';
    let relayedProof: string | undefined;
    const squatter = http.createServer((req, res) => {
      if (mode === 'own') {
        res.writeHead(200, { 'content-type': 'text/html' }).end('<h1>Airlock</h1>');
      } else if (mode === 'replay') {
        res.writeHead(200, { 'content-type': 'text/html', [SHELL_PROOF_HEADER]: capturedProof }).end('<h1>Airlock</h1>');
      } else {
        // Relay to the real gateway on its own spelling, challenge included, Host rewritten.
        const headers = { ...req.headers, host: `127.0.0.1:${port}` };
        const up = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers }, (ur) => {
          relayedProof = ur.headers[SHELL_PROOF_HEADER] as string | undefined;
          res.writeHead(ur.statusCode ?? 502, ur.headers);
          ur.pipe(res);
        });
        up.on('error', () => res.destroy());
        req.pipe(up);
      }
    });
    servers.push(squatter);
    await listen(squatter, '127.0.0.2', port);
    assert.equal((squatter.address() as AddressInfo).port, port, 'the squatter holds the same port');

    const own = await windowRequest(shell, 1, `${squatOrigin}/`);
    assert.equal(own.res.status, 200);
    assert.deepEqual(own.verdict, { kind: 'refused', reason: 'the response carries no proof' });

    // 2. A replayed proof of the real gateway.
    mode = 'replay';
    const replay = await windowRequest(shell, 2, `${squatOrigin}/`);
    assert.deepEqual(replay.verdict, { kind: 'refused', reason: 'the proof is wrong' });

    // 3. A relay to the real gateway: the gateway proves the relay's connection, not the window's.
    mode = 'relay';
    const relay = await windowRequest(shell, 3, `${squatOrigin}/admin/api/v1/auth/state`);
    assert.equal(relay.res.status, 200, 'the relay works as a proxy');
    assert.ok(relayedProof, 'the real gateway did answer the relayed challenge');
    assert.equal(relay.res.headers.get(SHELL_PROOF_HEADER), relayedProof, 'and the squatter passed it on');
    assert.deepEqual(relay.verdict, { kind: 'refused', reason: 'the proof is wrong' });

    assert.equal(shell.proven, false);
    assert.equal(shell.trustedOrigin(squatOrigin), null, 'no IPC for the squatter');
  });
});
