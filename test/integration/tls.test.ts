// TLS on the planes (settings.tls) against the real gateway process: a self-signed certificate
// made with the openssl CLI, the data plane called over HTTPS by a client that trusts exactly
// that certificate (and refused by one that does not), the fingerprint and expiry on the startup
// lines and GET /status equal to what openssl reports, the session cookie marked Secure on the
// HTTPS admin plane (and not on a plain one), and bad certificate/key files refused at start
// with one line naming the file.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, fetch as undiciFetch } from 'undici';
import { TEST_KEY, basicConfig, runCli, startGateway, tmpDir, writeConfig, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const PASSWORD = 'correct horse battery staple';

function openssl(args: string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A self-signed certificate for 127.0.0.1 / localhost and its key; a second, unrelated key. */
function makeCert(dir: string) {
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  const otherKey = path.join(dir, 'other-key.pem');
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-days', '30', '-subj', '/CN=airlock-test', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost']);
  openssl(['genpkey', '-algorithm', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-out', otherKey]);
  // "sha256 Fingerprint=AB:CD:…" / "SHA256 Fingerprint=…" depending on the openssl version
  const fingerprint = openssl(['x509', '-in', cert, '-noout', '-fingerprint', '-sha256']).trim().replace(/^.*Fingerprint=/i, '');
  const notAfter = openssl(['x509', '-in', cert, '-noout', '-enddate']).trim().replace(/^notAfter=/, '');
  return { cert, key, otherKey, fingerprint, notAfter: new Date(notAfter).toISOString(), pem: fs.readFileSync(cert, 'utf8') };
}

interface TlsStatus {
  listen: { data: string; admin: string };
  tls: {
    cert_file: string;
    key_file: string;
    data_plane: boolean;
    admin_plane: boolean;
    fingerprint_sha256: string;
    subject: string;
    valid_to: string;
    expired: boolean;
  } | null;
}

describe('TLS on both planes (settings.tls)', () => {
  const dir = tmpDir('airlock-tls-');
  const c = makeCert(dir);
  const trusting = new Agent({ connect: { ca: c.pem } });
  let up: TestUpstream;
  let gw: RunningGateway;

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url, { settings: { tls: { cert_file: c.cert, key_file: c.key } } }), ca: c.pem });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
    await trusting.close();
  });

  test('both planes listen on https, and the startup lines name the certificate, its fingerprint and expiry', () => {
    assert.match(gw.dataUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.match(gw.adminUrl, /^https:\/\/127\.0\.0\.1:\d+$/);
    const out = gw.stdout();
    assert.match(out, new RegExp(`^airlock: data plane listening on ${gw.dataUrl} \\(OpenAI-compatible API at ${gw.dataUrl}/v1\\)$`, 'm'));
    const line = out.split('\n').find((l) => l.startsWith('airlock: TLS on the data plane and admin plane:'));
    assert.ok(line, `no TLS line in:\n${out}`);
    assert.ok(line.includes(c.cert), line);
    assert.ok(line.includes(`SHA-256 fingerprint ${c.fingerprint}`), line);
    assert.ok(line.includes(`expires ${c.notAfter}`), line);
    assert.match(out, new RegExp(`^airlock: first-run setup: open ${gw.adminUrl}/setup\\?token=`, 'm'));
  });

  test('the data plane answers over HTTPS a client that trusts the certificate; one that does not is refused', async () => {
    const models = await undiciFetch(`${gw.baseURL}/models`, { headers: { authorization: `Bearer ${TEST_KEY}` }, dispatcher: trusting });
    assert.equal(models.status, 200);
    assert.deepEqual(((await models.json()) as { data: { id: string }[] }).data.map((m) => m.id), ['chat']);

    const chat = await undiciFetch(`${gw.baseURL}/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'hi' }] }),
      dispatcher: trusting,
    });
    assert.equal(chat.status, 200);
    assert.match(await chat.text(), /data: \[DONE\]/);

    // The platform's default trust store does not know a self-signed certificate.
    await assert.rejects(fetch(`${gw.dataUrl}/healthz`), (e: Error & { cause?: { code?: string } }) => {
      assert.match(String(e.cause?.code), /SELF_SIGNED|UNABLE_TO_VERIFY|CERT/, String(e.cause?.code));
      return true;
    });
    // Plain HTTP to the HTTPS port gets no HTTP answer.
    await assert.rejects(fetch(gw.dataUrl.replace('https:', 'http:') + '/healthz'));
  });

  test('GET /status reports the https addresses, the fingerprint (equal to openssl\'s) and the expiry', async () => {
    const r = await gw.admin<TlsStatus>('GET', '/status');
    assert.equal(r.status, 200);
    assert.equal(r.body.listen.data, gw.dataUrl);
    assert.equal(r.body.listen.admin, gw.adminUrl);
    assert.ok(r.body.tls);
    assert.equal(r.body.tls.fingerprint_sha256, c.fingerprint);
    assert.equal(r.body.tls.valid_to, c.notAfter);
    assert.equal(r.body.tls.expired, false);
    assert.equal(r.body.tls.cert_file, c.cert);
    assert.equal(r.body.tls.key_file, c.key);
    assert.equal(r.body.tls.subject, 'CN=airlock-test');
    assert.deepEqual([r.body.tls.data_plane, r.body.tls.admin_plane], [true, true]);
    // And the stored settings hold what was configured (defaults filled in).
    const s = await gw.admin('GET', '/settings');
    assert.deepEqual(s.body.tls, { cert_file: c.cert, key_file: c.key, data_plane: true, admin_plane: true });
  });

  test('first-run setup and login over HTTPS set a Secure session cookie', async () => {
    const token = /first-run setup: open \S+\/setup\?token=(\S+)/.exec(gw.stdout())?.[1];
    assert.ok(token, 'setup token printed');
    const call = (p: string, body: unknown) =>
      undiciFetch(`${gw.adminUrl}/admin/api/v1${p}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), dispatcher: trusting });
    const cookieAttrs = (h: { getSetCookie(): string[] }) => {
      const cookie = h.getSetCookie().find((s) => s.startsWith('airlock_session='));
      assert.ok(cookie, 'a session cookie is set');
      return cookie.split(';').slice(1).map((a) => a.trim().toLowerCase());
    };
    const setup = await call('/auth/setup', { setup_token: token, username: 'owner', password: PASSWORD });
    assert.equal(setup.status, 201, await setup.clone().text());
    const a1 = cookieAttrs(setup.headers);
    assert.ok(a1.includes('secure'), `Secure on https: ${a1.join('; ')}`);
    assert.ok(a1.includes('httponly'), a1.join('; '));
    const login = await call('/auth/login', { username: 'owner', password: PASSWORD });
    assert.equal(login.status, 200);
    assert.ok(cookieAttrs(login.headers).includes('secure'));
  });
});

const HANDSHAKE_LIMIT = 600;

describe('TLS on the data plane only', () => {
  const dir = tmpDir('airlock-tls-');
  const c = makeCert(dir);
  let gw: RunningGateway;
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      config: basicConfig(up.url, { settings: { tls: { cert_file: c.cert, key_file: c.key, admin_plane: false }, http: { headers_timeout_ms: HANDSHAKE_LIMIT } } }),
      adminToken: null,
    });
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('admin_plane: false keeps the admin plane on plain HTTP (no Secure cookie); the data plane is HTTPS', async () => {
    assert.match(gw.dataUrl, /^https:/);
    assert.match(gw.adminUrl, /^http:/);
    assert.match(gw.stdout(), /^airlock: TLS on the data plane: certificate /m);
    const token = /first-run setup: open \S+\/setup\?token=(\S+)/.exec(gw.stdout())?.[1];
    const setup = await fetch(`${gw.adminUrl}/admin/api/v1/auth/setup`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ setup_token: token, username: 'owner', password: PASSWORD }),
    });
    assert.equal(setup.status, 201);
    const cookie = setup.headers.getSetCookie().find((s) => s.startsWith('airlock_session='));
    assert.ok(cookie && !/;\s*secure/i.test(cookie), `no Secure on plain http: ${cookie}`);
  });

  test('a client that connects to the HTTPS plane and never starts the handshake is disconnected (headers_timeout_ms)', async () => {
    const u = new URL(gw.dataUrl);
    const sock = net.connect({ host: u.hostname, port: Number(u.port) });
    sock.on('error', () => {});
    await new Promise((r) => sock.once('connect', r));
    const since = performance.now();
    // No timed assertion: only a deadline far beyond the setting (and far below Node's 120 s default) fails it.
    let timer: NodeJS.Timeout | undefined;
    const closedAt = await Promise.race([
      new Promise<number>((r) => sock.once('close', () => r(performance.now()))),
      new Promise<never>((_, rej) => (timer = setTimeout(() => rej(new Error('the silent TLS client was not disconnected')), 12_000))),
    ]).finally(() => clearTimeout(timer));
    assert.ok(closedAt - since >= HANDSHAKE_LIMIT * 0.9, `closed after ${closedAt - since} ms, before the limit`);
  });
});

describe('bad certificate or key files stop the start with one line naming the file', () => {
  const dir = tmpDir('airlock-tls-');
  const c = makeCert(dir);
  const missing = path.join(dir, 'no-such-key.pem');
  const cases: { what: string; tls: Record<string, unknown>; names: string; says: RegExp }[] = [
    { what: 'a key file that does not exist', tls: { cert_file: c.cert, key_file: missing }, names: missing, says: /cannot be read: no such file/ },
    { what: 'a certificate file that does not exist', tls: { cert_file: path.join(dir, 'nope.pem'), key_file: c.key }, names: path.join(dir, 'nope.pem'), says: /cannot be read/ },
    { what: 'a key that is not the certificate\'s', tls: { cert_file: c.cert, key_file: c.otherKey }, names: c.otherKey, says: /do not match/ },
    { what: 'a key file holding a certificate', tls: { cert_file: c.cert, key_file: c.cert }, names: c.cert, says: /not a PEM private key/ },
    { what: 'a certificate file holding a key', tls: { cert_file: c.key, key_file: c.key }, names: c.key, says: /not a PEM certificate/ },
  ];
  for (const k of cases) {
    test(k.what, async () => {
      const file = writeConfig(tmpDir('airlock-cfg-'), { settings: { tls: k.tls } });
      const r = await runCli(['serve', '--data-dir', tmpDir(), '--config', file, '--port', '0', '--admin-port', '0']);
      assert.notEqual(r.code, 0, 'the start fails');
      assert.equal(r.code, 2, 'a startup problem (exit 2)');
      assert.doesNotMatch(r.stdout, /ready|listening/, 'nothing was served');
      const lines = r.stderr.trim().split('\n').filter((l) => !/^airlock: (config | {2}~ )/.test(l));
      assert.equal(lines.length, 1, `one line:\n${r.stderr}`);
      assert.ok(lines[0]!.includes(k.names), `names ${k.names}: ${lines[0]}`);
      assert.match(lines[0]!, k.says);
      assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('a relative path is refused by the settings schema, naming the field', async () => {
    const file = writeConfig(tmpDir('airlock-cfg-'), { settings: { tls: { cert_file: 'cert.pem', key_file: c.key } } });
    const r = await runCli(['serve', '--data-dir', tmpDir(), '--config', file, '--port', '0', '--admin-port', '0']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /settings\.tls\.cert_file: must be an absolute path/);
  });
});
