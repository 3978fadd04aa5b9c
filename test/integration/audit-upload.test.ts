// POST /audit/verify-upload against the real gateway process: a bundle exported into a folder
// standing in for the auditor's USB stick is uploaded over HTTP (the framing the admin app sends),
// verified by the same worker as verify-bundle, and the temporary copy is removed — whether the
// bundle is intact, tampered, incomplete, re-keyed, malformed, too large or abandoned mid-upload.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { ADMIN_TOKEN, eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';

const CT = 'application/x-airlock-bundle';
const show = (r: { status: number; body: unknown }) => `${r.status} ${JSON.stringify(r.body)?.slice(0, 600)}`;

/** The upload body: each file as a header line and its bytes (what the admin app sends). */
function frame(files: { name: string; data: Buffer; size?: number }[]): Buffer {
  return Buffer.concat(files.flatMap((f) => [Buffer.from(JSON.stringify({ name: f.name, size: f.size ?? f.data.length }) + '\n'), f.data]));
}
const filesOf = (dir: string) => fs.readdirSync(dir).map((name) => ({ name, data: fs.readFileSync(path.join(dir, name)) }));

async function upload(gw: RunningGateway, body: Buffer | string, opts: { query?: string; contentType?: string; token?: string } = {}): Promise<{ status: number; body: any }> {
  const res = await fetch(`${gw.adminUrl}/admin/api/v1/audit/verify-upload${opts.query ?? ''}`, {
    method: 'POST',
    headers: { authorization: `Bearer ${opts.token ?? ADMIN_TOKEN}`, 'content-type': opts.contentType ?? CT },
    body,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    /* not JSON */
  }
  return { status: res.status, body: parsed };
}

describe('verifying an uploaded bundle', () => {
  let gw: RunningGateway;
  let small: RunningGateway;
  let bundle: string;
  let auditor: string;
  const tmpLeft = (g: RunningGateway) => {
    const d = path.join(g.dataDir, 'tmp');
    return fs.existsSync(d) ? fs.readdirSync(d) : [];
  };

  before(async () => {
    gw = await startGateway({ config: { teams: [{ name: 'research' }] } });
    small = await startGateway({ config: {}, env: { AIRLOCK_MAX_BUNDLE_UPLOAD_BYTES: '4096' } });
    for (let i = 0; i < 5; i++) assert.equal((await gw.admin('POST', '/teams', { name: `t${i}` })).status, 201);
    const usb = tmpDir('airlock-usb-');
    const r = await gw.admin('POST', '/audit/export', { to: usb });
    assert.equal(r.status, 200, show(r));
    bundle = r.body.dir;
    const t = await gw.admin('POST', '/tokens', { name: 'auditor', role: 'auditor' });
    assert.equal(t.status, 201, show(t));
    auditor = t.body.token;
  });
  after(async () => {
    await gw?.stop();
    await small?.stop();
  });

  test('an intact bundle passes (as an auditor); the check is an audit record; nothing stays on the gateway', async () => {
    const r = await upload(gw, frame(filesOf(bundle)), { token: auditor });
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.ok, true, show(r));
    assert.ok(r.body.count >= 6, show(r));
    assert.equal(r.body.key_fingerprint, (await gw.admin('GET', '/audit/key')).body.fingerprint);
    assert.deepEqual(tmpLeft(gw), []);
    const rec = await eventually(
      async () => ((await gw.admin('GET', '/audit/events?kind=audit.verify')).body.data as any[]).find((e) => e.data.action === 'verify uploaded audit bundle'),
      'the verification record',
    );
    assert.equal(rec.data.ok, true);
    assert.match(rec.actor, /auditor/);
  });

  test('tampering is found: a changed byte, a missing file, another key pinned', async () => {
    const files = filesOf(bundle);
    const changed = files.map((f) => (f.name === 'events.jsonl' ? { ...f, data: Buffer.from(f.data.toString().replace('"t3"', '"t9"')) } : f));
    const a = await upload(gw, frame(changed));
    assert.equal(a.status, 200, show(a));
    assert.equal(a.body.ok, false);
    assert.match(a.body.problems.join('\n'), /events\.jsonl/);
    const b = await upload(gw, frame(files.filter((f) => f.name !== 'manifest.json')));
    assert.equal(b.body.ok, false, show(b));
    assert.match(b.body.problems.join('\n'), /manifest/);
    const c = await upload(gw, frame(files), { query: `?key=${encodeURIComponent('SHA256:' + 'ab'.repeat(32))}` });
    assert.equal(c.body.ok, false, show(c));
    assert.match(c.body.problems.join('\n'), /key|fingerprint/i);
    assert.deepEqual(tmpLeft(gw), []);
  });

  test('malformed uploads are refused with the problem named, and nothing is left behind', async () => {
    const files = filesOf(bundle);
    const cases: [Buffer | string, RegExp, number][] = [
      [frame([{ name: '../evil.txt', data: Buffer.from('x') }]), /"name" must be a plain file name/, 400],
      [frame([{ name: 'sub/evil.txt', data: Buffer.from('x') }]), /"name"/, 400],
      [frame([{ name: '.hidden', data: Buffer.from('x') }]), /"name"/, 400],
      [Buffer.concat([Buffer.from('{"name":"a.txt","size":-1}\n')]), /"size" must be a whole number/, 400],
      [Buffer.from('not json\n'), /not JSON/, 400],
      [frame([{ name: 'a.txt', data: Buffer.from('abc'), size: 10 }]), /ended inside a\.txt \(7 bytes missing\)/, 400],
      [frame([files[0]!, files[0]!]), /twice/, 400],
      [Buffer.from('x'.repeat(2000)), /header line is longer/, 400],
      ['', /no files/, 400],
    ];
    for (const [body, want, status] of cases) {
      const r = await upload(gw, body);
      assert.equal(r.status, status, show(r));
      assert.match(r.body.error.message, want, show(r));
    }
    // a key that is no fingerprint: named, refused before the bundle is read (not "another key")
    for (const key of ['garbage', 'SHA256:' + 'ab'.repeat(31), 'x'.repeat(300)]) {
      const r = await upload(gw, frame(files), { query: `?key=${encodeURIComponent(key)}` });
      assert.equal(r.status, 400, show(r));
      assert.match(r.body.error.message, key.length > 200 ? /^key: is too long/ : /^key: must be a key fingerprint/, show(r));
    }
    const json = await upload(gw, JSON.stringify({ dir: bundle }), { contentType: 'application/json' });
    assert.equal(json.status, 415, show(json));
    assert.match(json.body.error.message, /application\/x-airlock-bundle/);
    assert.ok(!fs.existsSync(path.join(gw.dataDir, 'evil.txt')) && !fs.existsSync(path.join(gw.dataDir, 'tmp', 'evil.txt')));
    assert.deepEqual(tmpLeft(gw), []);
  });

  test('past the size cap: 413 naming the limit, for one file or for files that add up past it', async () => {
    const declared = await upload(small, frame([{ name: 'events.jsonl', data: Buffer.from('x'), size: 10_000 }]));
    assert.equal(declared.status, 413, show(declared));
    assert.match(declared.body.error.message, /4096 bytes/);
    const big = await upload(small, frame([{ name: 'a.txt', data: Buffer.alloc(3000, 97) }, { name: 'b.txt', data: Buffer.alloc(3000, 97) }]));
    assert.equal(big.status, 413, show(big));
    assert.deepEqual(tmpLeft(small), []);
  });

  test('an upload abandoned half-way leaves no temporary files', async () => {
    const u = new URL(`${gw.adminUrl}/admin/api/v1/audit/verify-upload`);
    const req = http.request({ host: u.hostname, port: u.port, path: u.pathname, method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': CT, 'content-length': '100000' } });
    req.on('error', () => undefined);
    req.write(frame([{ name: 'events.jsonl', data: Buffer.alloc(1000, 97), size: 90_000 }]));
    await eventually(() => tmpLeft(gw).length === 1, 'the upload started');
    req.destroy();
    await eventually(() => tmpLeft(gw).length === 0, 'the temporary folder removed');
  });

  test('without a role, nothing is read: 401 before the body', async () => {
    const r = await fetch(`${gw.adminUrl}/admin/api/v1/audit/verify-upload`, { method: 'POST', headers: { 'content-type': CT }, body: frame(filesOf(bundle)) });
    assert.equal(r.status, 401);
    assert.deepEqual(tmpLeft(gw), []);
  });
});
