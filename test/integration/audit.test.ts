// The audit trail against the real gateway process: what admin actions, logins and data-plane
// requests record (secrets redacted); the signed export into a folder standing in for a USB
// stick, checked by both verifiers (`airlock audit verify` and the bundle's own verify.mjs, run
// with plain Node), then tampered with in every way; the database's append-only triggers; and
// fail-closed mode.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { ADMIN_TOKEN, TEST_KEY, basicConfig, eventually, runCli, startGateway, tmpDir, writeConfig, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { agentClient, startHttpUpstream, type HttpUpstream } from '../helpers/mcp.js';

const show = (r: { status: number; body: unknown }) => `${r.status} ${JSON.stringify(r.body)?.slice(0, 600)}`;
const UPSTREAM_SECRET = 'sk-upstream-very-secret-4242';
const PASSWORD = 'correct horse battery staple';

/** Both verifiers on one bundle: exit code and output of each. */
async function verifyBoth(dir: string, key?: string): Promise<{ cli: { code: number | null; out: string }; mjs: { code: number | null; out: string } }> {
  const k = key ? ['--key', key] : [];
  const c = await runCli(['audit', 'verify', dir, ...k]);
  // the auditor's machine: plain node, run from another working directory, no packages
  const m = spawnSync(process.execPath, [path.join(dir, 'verify.mjs'), dir, ...k], { cwd: tmpDir('airlock-auditor-'), encoding: 'utf8', env: { PATH: process.env.PATH ?? '' } });
  return { cli: { code: c.code, out: c.stdout + c.stderr }, mjs: { code: m.status, out: m.stdout + m.stderr } };
}

function copyBundle(src: string): string {
  const dst = tmpDir('airlock-tampered-');
  for (const f of fs.readdirSync(src)) fs.copyFileSync(path.join(src, f), path.join(dst, f));
  return dst;
}

const eventLines = (dir: string) => fs.readFileSync(path.join(dir, 'events.jsonl'), 'utf8').split('\n').filter(Boolean);
const writeLines = (dir: string, lines: string[]) => fs.writeFileSync(path.join(dir, 'events.jsonl'), lines.map((l) => l + '\n').join(''));

/** What a forger would do: change the records, then rewrite the manifest to match and sign it
 * with a key of their own (replacing public-key.pem and the fingerprint the manifest names). */
function resign(dir: string, lines: string[]): void {
  writeLines(dir, lines);
  const { publicKey, privateKey } = crypto.generateKeyPairSync('ed25519');
  const pem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  fs.writeFileSync(path.join(dir, 'public-key.pem'), pem);
  const der = publicKey.export({ type: 'spki', format: 'der' });
  const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
  const last = JSON.parse(lines[lines.length - 1]!);
  m.count = lines.length;
  m.last_seq = last.seq;
  m.last_hash = last.hash;
  m.key_fingerprint = 'SHA256:' + crypto.createHash('sha256').update(der).digest('hex').match(/.{4}/g)!.join(':');
  for (const f of m.files) {
    const b = fs.readFileSync(path.join(dir, f.name));
    f.sha256 = crypto.createHash('sha256').update(b).digest('hex');
    f.bytes = b.length;
  }
  const text = JSON.stringify(m, null, 2) + '\n';
  fs.writeFileSync(path.join(dir, 'manifest.json'), text);
  fs.writeFileSync(path.join(dir, 'manifest.sig'), crypto.sign(null, Buffer.from(text), privateKey).toString('base64') + '\n');
}

describe('audit trail: records, signed export, offline verification', () => {
  let gw: RunningGateway;
  let up: TestUpstream;
  let auditor: string;
  let admin: string;
  let usb: string;
  let bundle: string;
  let fingerprint: string;

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url) });
    for (const role of ['auditor', 'admin'] as const) {
      const r = await gw.admin('POST', '/tokens', { name: `t-${role}`, role });
      assert.equal(r.status, 201, show(r));
      if (role === 'auditor') auditor = r.body.token;
      else admin = r.body.token;
    }
    usb = tmpDir('airlock-usb-');
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('admin changes are recorded with who, from where, what, and before → after with secrets redacted', async () => {
    const as = { authorization: `Bearer ${admin}` };
    const ep = await gw.admin('POST', '/endpoints', { name: 'vendor', base_url: 'http://10.9.9.9:8000/v1', api_key: UPSTREAM_SECRET, health_check: { enabled: false } }, as);
    assert.equal(ep.status, 201, show(ep));
    const team = await gw.admin('PUT', '/teams/research', { description: 'Research group' }, as);
    assert.equal(team.status, 200, show(team));
    const refused = await gw.admin('POST', '/teams', { name: 'x', colour: 'red' }, as);
    assert.equal(refused.status, 400);

    const r = await gw.admin('GET', '/audit/events?kind=admin.change&limit=10', undefined, { authorization: `Bearer ${auditor}` });
    assert.equal(r.status, 200, show(r));
    const [bad, upd, created] = r.body.data as any[];
    assert.equal(created.actor, 'token:t-admin');
    assert.equal(created.source, '127.0.0.1');
    assert.equal(created.data.action, 'create endpoint');
    assert.equal(created.data.role, 'admin');
    assert.equal(created.data.status, 201);
    assert.equal(created.data.changes['endpoints/vendor'].before, null);
    assert.equal(created.data.changes['endpoints/vendor'].after.base_url, 'http://10.9.9.9:8000/v1');
    assert.equal(upd.data.action, 'update team');
    assert.deepEqual(upd.data.changes['teams/research'], { before: { name: 'research' }, after: { name: 'research', description: 'Research group' } });
    assert.equal(bad.data.outcome, 'failed');
    assert.equal(bad.data.error_code, 'validation_failed');
    assert.equal(bad.data.changes, undefined);
    // the upstream secret appears nowhere in the log, nor in an export
    const all = await gw.admin('GET', '/audit/events?limit=1000');
    assert.ok(!JSON.stringify(all.body).includes(UPSTREAM_SECRET), 'the upstream API key is redacted');
  });

  test('logins, their failures and lockouts, tokens and refusals are recorded; passwords never are', async () => {
    assert.equal((await gw.admin('POST', '/users', { name: 'alice', password: PASSWORD, role: 'auditor' })).status, 201);
    const bad = await gw.admin('POST', '/auth/login', { username: 'alice', password: 'wrong password 123' }, { authorization: '' });
    assert.equal(bad.status, 401, show(bad));
    const good = await gw.admin('POST', '/auth/login', { username: 'alice', password: PASSWORD }, { authorization: '' });
    assert.equal(good.status, 200, show(good));
    const denied = await gw.admin('PUT', '/settings', {}, { authorization: `Bearer ${auditor}` });
    assert.equal(denied.status, 403);

    const logins = (await gw.admin('GET', '/audit/events?kind=auth.login')).body.data as any[];
    assert.equal(logins.length, 2);
    assert.deepEqual(logins.map((l) => [l.actor, l.data.action, l.data.outcome]), [
      ['user:alice', 'log in', 'ok'],
      ['user:alice', 'log in', 'failed'],
    ]);
    assert.ok(logins[1].data.error_code, 'a failed login names why');
    const user = (await gw.admin('GET', '/audit/events?kind=admin.change&actor=env:AIRLOCK_ADMIN_TOKEN')).body.data as any[];
    const createdUser = user.find((u) => u.data.action === 'create admin user');
    assert.ok(createdUser, JSON.stringify(user));
    assert.equal(createdUser.data.changes['users/alice'].after.role, 'auditor');
    const tokens = user.filter((u) => u.data.action === 'create admin API token');
    assert.equal(tokens.length, 2);
    const deniedRec = (await gw.admin('GET', '/audit/events?kind=admin.denied')).body.data as any[];
    assert.equal(deniedRec[0].actor, 'token:t-auditor');
    assert.equal(deniedRec[0].data.status, 403);
    assert.equal(deniedRec[0].data.action, 'update settings');
    const everything = JSON.stringify((await gw.admin('GET', '/audit/events?limit=1000')).body);
    assert.ok(!everything.includes(PASSWORD) && !everything.includes('wrong password 123'), 'no password is recorded');
    assert.ok(!everything.includes(auditor) && !everything.includes(ADMIN_TOKEN), 'no token is recorded');
  });

  test('a lockout is an audit record of its own, naming the account, the count and until when', async () => {
    const s = (await gw.admin('GET', '/settings')).body;
    assert.equal((await gw.admin('PUT', '/settings', { ...s, admin_max_failed_logins: 2 })).status, 200);
    try {
      assert.equal((await gw.admin('POST', '/users', { name: 'bob', password: PASSWORD, role: 'admin' })).status, 201);
      const first = await gw.admin('POST', '/auth/login', { username: 'bob', password: 'guess number one' }, { authorization: '' });
      assert.equal(first.status, 401, show(first));
      assert.deepEqual((await gw.admin('GET', '/audit/events?kind=auth.lockout')).body.data, [], 'one failure is not a lockout');
      const second = await gw.admin('POST', '/auth/login', { username: 'bob', password: 'guess number two' }, { authorization: '' });
      assert.equal(second.status, 423, show(second));
      const right = await gw.admin('POST', '/auth/login', { username: 'bob', password: PASSWORD }, { authorization: '' });
      assert.equal(right.status, 423, 'locked even with the right password');
      const locks = (await gw.admin('GET', '/audit/events?kind=auth.lockout', undefined, { authorization: `Bearer ${auditor}` })).body.data as any[];
      assert.equal(locks.length, 1, JSON.stringify(locks));
      assert.equal(locks[0].actor, 'user:bob');
      assert.equal(locks[0].source, '127.0.0.1');
      assert.equal(locks[0].data.failed_logins, 2);
      assert.ok(Date.parse(locks[0].data.locked_until) > Date.now());
      const logins = (await gw.admin('GET', '/audit/events?kind=auth.login&actor=user:bob')).body.data as any[];
      assert.deepEqual(logins.map((l) => l.data.status), [423, 423, 401], 'each refused login is recorded too');
      assert.ok(!JSON.stringify(locks).includes('guess number'), 'no password is recorded');
    } finally {
      assert.equal((await gw.admin('PUT', '/settings', s)).status, 200);
    }
  });

  test('every data-plane request leaves a summary linked to its ledger row', async () => {
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000 });
    const { data, response } = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] }).withResponse();
    assert.ok(data.choices[0]);
    const id = response.headers.get('x-airlock-request-id')!;
    const badKey = new OpenAI({ apiKey: 'sk-airlock-nope', baseURL: gw.baseURL, maxRetries: 0 });
    await assert.rejects(badKey.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'x' }] }));
    const rec = await eventually(async () => ((await gw.admin('GET', '/audit/events?kind=request')).body.data as any[]).find((x) => x.data.request_id === id), 'the request summary');
    assert.equal(rec.actor, 'key:notebook-app');
    assert.equal(rec.source, 'data-plane');
    assert.equal(rec.data.team, 'research');
    assert.equal(rec.data.model, 'chat');
    assert.equal(rec.data.endpoint, 'gpu-1');
    assert.equal(rec.data.decision, 'served');
    assert.equal(rec.data.status, 200);
    assert.ok(rec.data.prompt_tokens > 0);
    assert.ok(!JSON.stringify(rec).includes('hello'), 'the prompt is not recorded');
    const ledger = await gw.admin('GET', `/usage/requests?request_id=${id}`);
    assert.equal(ledger.body.data.length, 1, 'the summary names its ledger row');
    const refusedRec = await eventually(async () => ((await gw.admin('GET', '/audit/events?kind=request')).body.data as any[]).find((x) => x.data.error_class === 'invalid_api_key'), 'the refused request');
    assert.equal(refusedRec.actor, 'anonymous');
    assert.equal(refusedRec.data.decision, 'refused');
  });

  test('an auditor exports a signed bundle to the drive; both verifiers accept it; the export is recorded', async () => {
    const key = await gw.admin('GET', '/audit/key', undefined, { authorization: `Bearer ${auditor}` });
    assert.equal(key.status, 200, show(key));
    fingerprint = key.body.fingerprint;
    assert.match(fingerprint, /^SHA256:([0-9a-f]{4}:){15}[0-9a-f]{4}$/);
    const cliKey = await runCli(['audit', 'key', '--data-dir', gw.dataDir]);
    assert.equal(cliKey.code, 0, cliKey.stderr);
    assert.equal(cliKey.stdout.split('\n')[0], fingerprint, '`airlock audit key` shows the same fingerprint');
    // the private key is encrypted at rest, mode 0600
    const keyFile = path.join(gw.dataDir, 'audit-signing.key');
    assert.equal(fs.statSync(keyFile).mode & 0o777, 0o600);
    assert.ok(!fs.readFileSync(keyFile, 'utf8').includes('PRIVATE KEY'), 'the private key is not stored in the clear');

    const r = await gw.admin('POST', '/audit/export', { to: usb, formats: ['csv', 'cef'] }, { authorization: `Bearer ${auditor}` });
    assert.equal(r.status, 200, show(r));
    bundle = r.body.dir;
    assert.equal(path.dirname(bundle), usb);
    assert.deepEqual(fs.readdirSync(bundle).sort(), ['README.txt', 'events.cef', 'events.csv', 'events.jsonl', 'manifest.json', 'manifest.sig', 'public-key.pem', 'verify.mjs']);
    assert.equal(eventLines(bundle).length, r.body.count);
    assert.ok(r.body.count >= 8, `${r.body.count} records`);
    assert.equal(fs.readFileSync(path.join(bundle, 'events.csv'), 'utf8').split('\r\n').filter(Boolean).length, r.body.count + 1);
    assert.equal(fs.readFileSync(path.join(bundle, 'events.cef'), 'utf8').split('\n').filter((l) => l.startsWith('CEF:0|Airlock|')).length, r.body.count);
    assert.ok(!fs.readFileSync(path.join(bundle, 'events.jsonl'), 'utf8').includes(UPSTREAM_SECRET));
    assert.match(fs.readFileSync(path.join(bundle, 'README.txt'), 'utf8'), new RegExp(`node verify.mjs --key ${fingerprint}`));

    const v = await verifyBoth(bundle, fingerprint);
    assert.equal(v.cli.code, 0, v.cli.out);
    assert.equal(v.mjs.code, 0, v.mjs.out);
    assert.match(v.mjs.out, new RegExp(`OK: ${r.body.count} records`));

    const exp = (await gw.admin('GET', '/audit/events?kind=audit.export')).body.data as any[];
    assert.equal(exp[0].actor, 'token:t-auditor');
    assert.equal(exp[0].data.dir, bundle);
    assert.equal(exp[0].data.count, r.body.count);
    const live = await gw.admin('GET', '/audit/verify', undefined, { authorization: `Bearer ${auditor}` });
    assert.equal(live.status, 200);
    assert.equal(live.body.ok, true, show(live));
    assert.ok(live.body.checkpoints >= 1, 'the export signed a checkpoint');
  });

  test('--key that is no fingerprint is a usage error of both verifiers (exit 2, saying what --key takes); a well-formed other fingerprint is another key (exit 1)', async () => {
    for (const garbage of ['garbage', 'SHA256:abcd', fingerprint + ':00', 'public-key.pem']) {
      const v = await verifyBoth(bundle, garbage);
      for (const [who, r] of [['airlock audit verify', v.cli], ['node verify.mjs', v.mjs]] as const) {
        assert.equal(r.code, 2, `${who} --key ${garbage}: ${r.out}`);
        assert.match(r.out, /--key must be the fingerprint of the audit signing key, SHA256: and 64 hex digits as "airlock audit key" .*shows it, not "/, `${who}: ${r.out}`);
        assert.doesNotMatch(r.out, /signed with another key/, who);
      }
    }
    // the same key written without the prefix and colons, or in capitals, is the same key
    const bare = fingerprint.replace(/^SHA256:/, '').replace(/:/g, '');
    for (const same of [bare, fingerprint.toUpperCase()]) {
      const v = await verifyBoth(bundle, same);
      assert.equal(v.cli.code, 0, v.cli.out);
      assert.equal(v.mjs.code, 0, v.mjs.out);
    }
    const other = 'SHA256:' + '0123:'.repeat(15) + '4567';
    const v = await verifyBoth(bundle, other);
    for (const r of [v.cli, v.mjs]) {
      assert.equal(r.code, 1, r.out);
      assert.match(r.out, /the bundle was signed with another key/);
    }
  });

  test('tampering is detected in every form, by both verifiers, naming the problem', async () => {
    const lines = eventLines(bundle);
    const other = await gw.admin('POST', '/audit/export', { to: usb });
    assert.equal(other.status, 200, show(other));
    const cases: { what: string; tamper: (dir: string) => void; expect: RegExp; key?: string }[] = [
      {
        what: 'a changed byte in a record',
        tamper: (d) => writeLines(d, lines.map((l, i) => (i === 3 ? l.replace(/"status":(\d)/, (_m, c: string) => `"status":${c === '2' ? '3' : '2'}`) : l))),
        expect: /events\.jsonl line 4 \(seq \d+\): its hash does not match its contents/,
      },
      { what: 'a deleted record', tamper: (d) => writeLines(d, lines.filter((_l, i) => i !== 2)), expect: /events\.jsonl line 3 \(seq 4\): expected seq 3: record 3 is missing/ },
      { what: 'reordered records', tamper: (d) => writeLines(d, [lines[0]!, lines[2]!, lines[1]!, ...lines.slice(3)]), expect: /line 2 \(seq 3\): expected seq 2/ },
      {
        what: 'a truncated file',
        tamper: (d) => {
          const f = path.join(d, 'events.jsonl');
          fs.truncateSync(f, Math.floor(fs.statSync(f).size / 2));
        },
        expect: /events\.jsonl: \d+ bytes, the manifest says \d+/,
      },
      { what: 'the last records cut off at a line boundary', tamper: (d) => writeLines(d, lines.slice(0, -2)), expect: /holds \d+ records, the manifest says \d+/ },
      { what: 'a deleted file', tamper: (d) => fs.rmSync(path.join(d, 'events.jsonl')), expect: /events\.jsonl: missing from the bundle/ },
      { what: 'a deleted CSV', tamper: (d) => fs.rmSync(path.join(d, 'events.csv')), expect: /events\.csv: missing from the bundle/ },
      {
        what: 'a replaced public key',
        tamper: (d) => fs.writeFileSync(path.join(d, 'public-key.pem'), crypto.generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' })),
        expect: /manifest\.sig: the signature does not match/,
      },
      { what: 'a swapped signature', tamper: (d) => fs.copyFileSync(path.join(other.body.dir, 'manifest.sig'), path.join(d, 'manifest.sig')), expect: /manifest\.sig: the signature does not match/ },
      {
        what: 'an edited manifest',
        tamper: (d) => {
          const f = path.join(d, 'manifest.json');
          fs.writeFileSync(f, fs.readFileSync(f, 'utf8').replace(/"count": (\d+)/, (_m, n: string) => `"count": ${Number(n) - 1}`));
        },
        expect: /manifest\.sig: the signature does not match/,
      },
      {
        what: 'a record removed and the manifest re-signed with another key (pinned fingerprint)',
        key: fingerprint,
        tamper: (d) => resign(d, lines.slice(0, -1)),
        expect: /its fingerprint SHA256:[0-9a-f:]+ is not the expected SHA256:[0-9a-f:]+: the bundle was signed with another key/,
      },
    ];
    for (const c of cases) {
      const d = copyBundle(bundle);
      c.tamper(d);
      const v = await verifyBoth(d, c.key);
      for (const [who, r] of [['airlock audit verify', v.cli], ['node verify.mjs', v.mjs]] as const) {
        assert.equal(r.code, 1, `${c.what}: ${who} must fail\n${r.out}`);
        assert.match(r.out, c.expect, `${c.what}: ${who}\n${r.out}`);
        assert.match(r.out, /FAILED/);
      }
    }
    // Re-signed with another key and no pin: the verifier can only report the key it saw, and it
    // is not the gateway's.
    const d = copyBundle(bundle);
    resign(d, lines.slice(0, -1));
    const v = await verifyBoth(d);
    assert.equal(v.mjs.code, 0, v.mjs.out);
    assert.ok(!v.mjs.out.includes(fingerprint), 'the fingerprint it shows is not the gateway’s');
    assert.match(v.mjs.out, /Compare that fingerprint/);
  });

  test('the admin app verifies a bundle on the gateway’s machine: pinned to this gateway’s key unless told otherwise; the check is recorded', async () => {
    const as = { authorization: `Bearer ${auditor}` };
    const good = await gw.admin('POST', '/audit/verify-bundle', { dir: bundle }, as);
    assert.equal(good.status, 200, show(good));
    assert.equal(good.body.ok, true, show(good));
    assert.equal(good.body.key_fingerprint, fingerprint);
    assert.equal(good.body.expected_key, fingerprint);
    assert.equal(good.body.count, eventLines(bundle).length);
    const lines = eventLines(bundle);
    const cut = copyBundle(bundle);
    writeLines(cut, lines.filter((_l, i) => i !== 2));
    const bad = await gw.admin('POST', '/audit/verify-bundle', { dir: cut }, as);
    assert.equal(bad.status, 200, show(bad));
    assert.equal(bad.body.ok, false);
    assert.match(bad.body.problems.join('\n'), /events\.jsonl line 3 \(seq 4\): expected seq 3: record 3 is missing/);
    // re-signed with another key: refused by default (not this gateway's key); accepted only when pinned to that key
    const forged = copyBundle(bundle);
    resign(forged, lines.slice(0, -1));
    const f = await gw.admin('POST', '/audit/verify-bundle', { dir: forged }, as);
    assert.equal(f.body.ok, false, show(f));
    assert.match(f.body.problems.join('\n'), /signed with another key/);
    const forgedKey = f.body.key_fingerprint as string;
    const pinned = await gw.admin('POST', '/audit/verify-bundle', { dir: forged, key: forgedKey.toUpperCase().replace('SHA256:', '') }, as);
    assert.equal(pinned.body.ok, true, show(pinned));
    for (const [body, param] of [
      [{ dir: 'relative/bundle' }, 'dir'],
      [{ dir: path.join(usb, 'no-such-bundle') }, 'dir'],
      [{ dir: path.join(usb, 'README.txt') }, 'dir'],
      [{ dir: bundle, key: 'not-a-fingerprint' }, 'key'],
      [{ dir: bundle, extra: 1 }, '(root)'],
      [{}, 'dir'],
    ] as const) {
      const r = await gw.admin('POST', '/audit/verify-bundle', body, as);
      assert.equal(r.status, 400, `${JSON.stringify(body)}: ${show(r)}`);
      assert.equal(r.body.error.param, param, `${JSON.stringify(body)}: ${show(r)}`);
    }
    const recs = (await gw.admin('GET', '/audit/events?kind=audit.verify', undefined, as)).body.data as any[];
    assert.deepEqual(recs.slice(0, 4).map((r) => [r.actor, r.data.dir, r.data.ok]), [
      ['token:t-auditor', forged, true],
      ['token:t-auditor', forged, false],
      ['token:t-auditor', cut, false],
      ['token:t-auditor', bundle, true],
    ]);
  });

  test('an export of a time range verifies on its own (it links to the record before it)', async () => {
    const all = ((await gw.admin('GET', '/audit/events?limit=1000')).body.data as any[]).reverse();
    const from = all[3].ts;
    const until = all[6].ts;
    const r = await runCli(['audit', 'export', '--to', usb, '--from', from, '--until', until, '--data-dir', gw.dataDir, '--format', 'CSV, jsonl']);
    assert.equal(r.code, 0, r.stderr);
    const dir = r.stdout.trim();
    const m = JSON.parse(fs.readFileSync(path.join(dir, 'manifest.json'), 'utf8'));
    assert.ok(m.first_seq <= all[3].seq && m.last_seq >= all[6].seq, JSON.stringify(m));
    assert.equal(m.prev_hash, all.find((x) => x.seq === m.first_seq - 1).hash);
    assert.ok(fs.existsSync(path.join(dir, 'events.csv')));
    const v = await verifyBoth(dir, fingerprint);
    assert.equal(v.cli.code, 0, v.cli.out);
    assert.equal(v.mjs.code, 0, v.mjs.out);
    const cliExport = (await gw.admin('GET', '/audit/events?kind=audit.export')).body.data as any[];
    assert.match(cliExport[0].actor, /^cli/);
    assert.equal(cliExport[0].source, 'cli');
  });

  test('bad export requests are refused with the field named, and nothing is written', async () => {
    const as = { authorization: `Bearer ${auditor}` };
    const before = fs.readdirSync(usb).length;
    const cases: [unknown, string, number][] = [
      [{ to: 'relative/dir' }, 'to', 400],
      [{ to: path.join(usb, 'no-such-drive') }, 'to', 400],
      [{ to: path.join(usb, 'README.txt') }, 'to', 400],
      [{ to: usb, formats: ['xml'] }, 'formats[0]', 400],
      [{ to: usb, from: 'yesterday' }, 'from', 400],
      [{ to: usb, from: '2026-02-01', until: '2026-01-01' }, 'until', 400],
      [{ to: usb, destination: usb }, '(root)', 400],
      [{}, 'to', 400],
    ];
    fs.writeFileSync(path.join(usb, 'README.txt'), 'not a directory');
    for (const [body, param, status] of cases) {
      const r = await gw.admin('POST', '/audit/export', body, as);
      assert.equal(r.status, status, `${JSON.stringify(body)}: ${show(r)}`);
      assert.equal(r.body.error.param, param, `${JSON.stringify(body)}: ${show(r)}`);
    }
    const arr = await gw.admin('POST', '/audit/export', [usb], as);
    assert.equal(arr.status, 400);
    assert.equal(fs.readdirSync(usb).length, before + 1, 'only the file this test put there');
    for (const q of ['limit=0', 'limit=abc', 'from=someday', 'before_seq=-1']) {
      const r = await gw.admin('GET', `/audit/events?${q}`, undefined, as);
      assert.equal(r.status, 400, `${q}: ${show(r)}`);
    }
    for (const args of [['--to', usb, '--format', 'xml'], ['--to', usb, '--from', 'yesterday'], ['--format', 'csv'], ['--to', path.join(usb, 'missing')]]) {
      const r = await runCli(['audit', 'export', ...args, '--data-dir', gw.dataDir]);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /--format|--from|--to|does not exist/);
    }
    const none = await runCli(['audit', 'verify', path.join(usb, 'no-bundle-here')]);
    assert.equal(none.code, 1);
    assert.match(none.stdout, /manifest\.json: missing from the bundle/);
  });

  test('data flow: what is stored and every destination, from the live configuration', async () => {
    const r = await gw.admin('GET', '/data-flow', undefined, { authorization: `Bearer ${auditor}` });
    assert.equal(r.status, 200, show(r));
    const byName = Object.fromEntries((r.body.destinations as any[]).map((d) => [d.name, d]));
    assert.equal(byName['gpu-1'].kind, 'endpoints');
    assert.equal(byName['gpu-1'].leaves_machine, false, 'the test upstream is on 127.0.0.1');
    assert.equal(byName.vendor.leaves_machine, true);
    assert.equal(byName.vendor.host, '10.9.9.9:8000');
    assert.match(byName.vendor.sends, /prompts and responses/);
    assert.ok(!JSON.stringify(r.body).includes(UPSTREAM_SECRET));
    const stored = r.body.stored as { what: string; where: string; retention: string }[];
    assert.match(stored.find((x) => /^Prompts and responses/.test(x.what))!.where, /not stored/);
    assert.match(stored.find((x) => /^Usage ledger/.test(x.what))!.where, new RegExp(`${gw.dataDir.replace(/[/\\^$.*+?()[\]{}|-]/g, '\\$&')}.*airlock\\.db`));
    assert.match(stored.find((x) => /^Audit trail/.test(x.what))!.retention, /kept in the database/);
    assert.deepEqual((r.body.listening as { reachable_from: string }[]).map((l) => l.reachable_from), ['this machine only', 'this machine only']);
  });

  test('the database refuses to change or delete audit records (append-only triggers)', () => {
    const db = new Database(path.join(gw.dataDir, 'airlock.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const n = db.prepare(`SELECT COUNT(*) FROM audit_log`).pluck().get() as number;
      assert.throws(() => db.prepare(`UPDATE audit_log SET actor = 'someone-else' WHERE seq = 2`).run(), /append-only: records cannot be changed/);
      assert.throws(() => db.prepare(`DELETE FROM audit_log WHERE seq = 2`).run(), /append-only: records cannot be deleted/);
      assert.throws(() => db.prepare(`DELETE FROM audit_log`).run(), /append-only/);
      const last = db.prepare(`SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1`).get() as { seq: number; hash: string };
      // a forged record must follow the last one; one that skips ahead or links elsewhere is refused
      assert.throws(() => db.prepare(`INSERT INTO audit_log VALUES (?, 'x', 'admin.change', 'x', 'x', '{}', ?, 'x')`).run(last.seq + 2, last.hash), /append-only/);
      assert.throws(() => db.prepare(`INSERT INTO audit_log VALUES (?, 'x', 'admin.change', 'x', 'x', '{}', ?, 'x')`).run(last.seq + 1, '0'.repeat(64)), /append-only/);
      assert.throws(() => db.prepare(`UPDATE audit_checkpoints SET hash = 'x'`).run(), /cannot be changed/);
      assert.throws(() => db.prepare(`DELETE FROM audit_checkpoints`).run(), /cannot be deleted/);
      assert.throws(() => db.prepare(`INSERT INTO audit_archives VALUES (1, 1, 'x', '/tmp', 'now')`).run(), /must end at an existing record/);
      assert.equal(db.prepare(`SELECT COUNT(*) FROM audit_log`).pluck().get(), n);
    } finally {
      db.close();
    }
  });

  test('a long export reports its progress while it runs, and nothing once done', async () => {
    // 60 000 more records, appended to the live chain by another process as the CLI would
    const { AuditLog } = await import('../../gateway/audit/log.js');
    const { AuditKey } = await import('../../gateway/audit/key.js');
    const { Secrets } = await import('../../gateway/store/secrets.js');
    const db = new Database(path.join(gw.dataDir, 'airlock.db'));
    try {
      db.pragma('busy_timeout = 5000');
      const log = new AuditLog(db, AuditKey.load(gw.dataDir, Secrets.load(gw.dataDir)));
      for (let i = 0; i < 6; i++) log.writeNow(Array.from({ length: 10_000 }, (_x, j) => ({ kind: 'test.filler', actor: 'test', source: 'test', data: { n: i * 10_000 + j } })));
    } finally {
      db.close();
    }
    const as = { authorization: `Bearer ${auditor}` };
    const seen: any[] = [];
    let finished = false;
    const exp = gw.admin('POST', '/audit/export', { to: usb }, as).finally(() => (finished = true));
    while (!finished) {
      const p = await gw.admin('GET', '/audit/export/progress', undefined, as);
      assert.equal(p.status, 200, show(p));
      seen.push(...p.body.data);
    }
    const r = await exp;
    assert.equal(r.status, 200, show(r));
    const during = seen.filter((x) => x.done > 0);
    assert.ok(during.length > 0, `progress was seen while ${r.body.count} records were exported`);
    for (const x of during) {
      assert.equal(x.actor, 'token:t-auditor');
      assert.equal(x.to, usb);
      assert.ok(x.done <= x.total && x.total >= 60_000, JSON.stringify(x));
    }
    assert.deepEqual((await gw.admin('GET', '/audit/export/progress', undefined, as)).body.data, []);
    assert.ok(r.body.count > 60_000);
  });
});

describe('audit trail: fail-closed mode', () => {
  let gw: RunningGateway;
  let up: TestUpstream;
  let db: Database.Database;
  const breakAudit = () => db.exec(`CREATE TRIGGER test_audit_broken BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'simulated: disk full'); END;`);
  const repairAudit = () => db.exec(`DROP TRIGGER test_audit_broken`);
  const setFailClosed = async (mode: string) => {
    const s = (await gw.admin('GET', '/settings')).body;
    const r = await gw.admin('PUT', '/settings', { ...s, audit: { ...s.audit, fail_closed: mode } });
    assert.equal(r.status, 200, show(r));
  };
  const teams = async () => ((await gw.admin('GET', '/teams')).body.data as { name: string }[]).map((t) => t.name);

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({ config: basicConfig(up.url) });
    db = new Database(path.join(gw.dataDir, 'airlock.db'));
    db.pragma('busy_timeout = 5000');
  });
  after(async () => {
    db?.close();
    await gw?.stop();
    await up?.close();
  });

  test('off (the default): a change goes through when the audit log cannot be written, and the gateway says so', async () => {
    breakAudit();
    try {
      const r = await gw.admin('POST', '/teams', { name: 'unrecorded' });
      assert.equal(r.status, 201, show(r));
      assert.ok((await teams()).includes('unrecorded'));
      await eventually(() => /audit: could not record admin\.change POST \/teams/.test(gw.stderr()), 'the log line');
    } finally {
      repairAudit();
    }
  });

  test('admin: a change is refused (503, nothing changed) while the audit log cannot be written; reads still work', async () => {
    await setFailClosed('admin');
    breakAudit();
    try {
      const r = await gw.admin('POST', '/teams', { name: 'ops' });
      assert.equal(r.status, 503, show(r));
      assert.equal(r.body.error.code, 'audit_unavailable');
      assert.match(r.body.error.message, /nothing was changed/);
      assert.ok(!(await teams()).includes('ops'), 'the change was not made');
      const del = await gw.admin('DELETE', '/teams/unrecorded');
      assert.equal(del.status, 503);
      assert.ok((await teams()).includes('unrecorded'));
      const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
      const c = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      assert.ok(c.choices[0], 'the data plane still serves in "admin" mode');
    } finally {
      repairAudit();
    }
    const r = await gw.admin('POST', '/teams', { name: 'ops' });
    assert.equal(r.status, 201, show(r));
  });

  test('admin_and_data: data-plane requests are refused too until the log can be written; the chain stays whole', async () => {
    await setFailClosed('admin_and_data');
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const ask = () => ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
    breakAudit();
    try {
      // the first summary that cannot be written turns refusal on
      await eventually(async () => {
        try {
          await ask();
          return false;
        } catch (e) {
          return (e as { status?: number; code?: string }).status === 503 && (e as { code?: string }).code === 'audit_unavailable';
        }
      }, 'data-plane refusal', 30_000);
    } finally {
      repairAudit();
    }
    await eventually(async () => {
      try {
        return !!(await ask()).choices[0];
      } catch {
        return false;
      }
    }, 'serving again once the log can be written', 30_000);
    const v = await gw.admin('GET', '/audit/verify');
    assert.equal(v.body.ok, true, show(v));
  });
});

describe('audit trail: backups carry the signing key', () => {
  test('a restored install keeps signing with the same key: its log verifies live and in an export pinned to the old fingerprint; the replaced key is kept', async () => {
    const up = await startUpstream();
    const gw = await startGateway({ config: basicConfig(up.url) });
    let restored: RunningGateway | undefined;
    try {
      assert.equal((await gw.admin('POST', '/teams', { name: 'before-backup' })).status, 201);
      const fingerprint = (await gw.admin('GET', '/audit/key')).body.fingerprint as string;
      const usb = tmpDir('airlock-usb-');
      const first = await gw.admin('POST', '/audit/export', { to: usb });
      assert.equal(first.status, 200, show(first));
      const file = path.join(tmpDir('airlock-bk-'), 'airlock.backup');
      const env = { AIRLOCK_BACKUP_PASSPHRASE: PASSWORD };
      const b = await runCli(['backup', '--to', file, '--data-dir', gw.dataDir], { env });
      assert.equal(b.code, 0, b.stderr);
      assert.ok(!fs.readFileSync(file).includes('private_key_enc'), 'the key file is inside the encrypted part');
      await gw.stop();

      // a new server with its own install and its own audit signing key
      const target = tmpDir('airlock-target-');
      const init = await runCli(['config', 'apply', writeConfig(tmpDir('airlock-cfg-'), { teams: [{ name: 'only-on-the-new-server' }] }), '--data-dir', target]);
      assert.equal(init.code, 0, init.stderr);
      const targetKey = fs.readFileSync(path.join(target, 'audit-signing.key'), 'utf8');
      const targetFp = (await runCli(['audit', 'key', '--data-dir', target])).stdout.split('\n')[0];
      assert.notEqual(targetFp, fingerprint);

      const r = await runCli(['restore', file, '--data-dir', target], { env });
      assert.equal(r.code, 0, r.stderr);
      const previous = /kept in (\S+?) \(a complete data dir\)/.exec(r.stdout)?.[1];
      assert.ok(previous, r.stdout);
      assert.equal(fs.readFileSync(path.join(previous, 'audit-signing.key'), 'utf8'), targetKey, 'the replaced install’s key is kept with its install.key');
      assert.equal(fs.statSync(path.join(target, 'audit-signing.key')).mode & 0o777, 0o600);
      assert.equal((await runCli(['audit', 'key', '--data-dir', target])).stdout.split('\n')[0], fingerprint);

      restored = await startGateway({ dataDir: target });
      assert.equal((await restored.admin('GET', '/audit/key')).body.fingerprint, fingerprint);
      assert.equal((await restored.admin('POST', '/teams', { name: 'after-restore' })).status, 201);
      const live = await restored.admin('GET', '/audit/verify');
      assert.equal(live.body.ok, true, show(live));
      const second = await restored.admin('POST', '/audit/export', { to: usb });
      assert.equal(second.status, 200, show(second));
      for (const dir of [first.body.dir, second.body.dir]) {
        const v = await verifyBoth(dir, fingerprint);
        assert.equal(v.cli.code, 0, v.cli.out);
        assert.equal(v.mjs.code, 0, v.mjs.out);
      }
      assert.ok(second.body.count > first.body.count, 'the restored log goes on from the backed-up one');
    } finally {
      await restored?.stop();
      await gw.stop();
      await up.close();
    }
  });
});

describe('audit trail: guardrail outcomes and MCP tool calls', () => {
  const AGENT_KEY = 'sk-airlock-audit-agent-0000000000000000001';
  let gw: RunningGateway;
  let up: TestUpstream;
  let httpUp: HttpUpstream;
  before(async () => {
    up = await startUpstream();
    httpUp = await startHttpUpstream();
    gw = await startGateway({
      config: basicConfig(up.url, {
        guardrails: [{ name: 'no-pii', direction: ['input'], detectors: ['pii'], action: 'redact' }],
        mcp_servers: [{ name: 'calc', transport: 'http', url: httpUp.url }],
        agents: [{ name: 'calc-bot', team: 'research', key: AGENT_KEY, tools: ['calc__add'] }],
      }),
    });
  });
  after(async () => {
    await gw?.stop();
    await httpUp?.close();
    await up?.close();
  });

  test('a request’s summary names the guardrail outcomes (types and counts, never the text)', async () => {
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const { response } = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'mail jane.doe@example.com please' }] }).withResponse();
    const id = response.headers.get('x-airlock-request-id')!;
    const plain = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'nothing personal' }] }).withResponse();
    const rec = await eventually(async () => ((await gw.admin('GET', '/audit/events?kind=request')).body.data as any[]).find((x) => x.data.request_id === id), 'the summary');
    assert.deepEqual(rec.data.guardrails, [{ policy: 'no-pii', direction: 'input', action: 'redact', mode: 'enforce', blocked: false, count: 1, detectors: { 'pii:EMAIL': 1 } }]);
    assert.ok(!JSON.stringify(rec).includes('jane.doe'), 'no matched text');
    const other = await eventually(
      async () => ((await gw.admin('GET', '/audit/events?kind=request')).body.data as any[]).find((x) => x.data.request_id === plain.response.headers.get('x-airlock-request-id')),
      'the other summary',
    );
    assert.equal(other.data.guardrails, undefined, 'a request without hits has none');
  });

  test('every MCP tool call is a record: the agent, the tool, the outcome (a refused one too)', async () => {
    const { client } = await agentClient(gw.dataUrl, AGENT_KEY, { 'x-airlock-session': 'wf-audit' });
    try {
      await client.callTool({ name: 'calc__add', arguments: { a: 1, b: 2 } });
      await client.callTool({ name: 'calc__not-allowed', arguments: {} }).catch(() => undefined);
    } finally {
      await client.close();
    }
    const recs = await eventually(async () => {
      const r = (await gw.admin('GET', '/audit/events?kind=tool')).body.data as any[];
      return r.length >= 2 ? r : undefined;
    }, 'two tool records');
    const ok = recs.find((r) => r.data.tool === 'calc__add');
    assert.equal(ok.actor, 'agent:calc-bot');
    assert.equal(ok.source, 'mcp');
    assert.equal(ok.data.team, 'research');
    assert.equal(ok.data.session, 'wf-audit');
    assert.equal(ok.data.server, 'calc');
    assert.equal(ok.data.status, 200);
    assert.equal(ok.data.decision, 'served');
    const denied = recs.find((r) => r.data.tool === 'calc__not-allowed');
    assert.equal(denied.data.decision, 'refused');
    assert.equal(denied.data.status, 403);
    const ledger = await gw.admin('GET', `/usage/requests?request_id=${ok.data.tool_call_id}`);
    assert.equal(ledger.body.data.length, 1, 'the record names the ledger row');
    const v = await gw.admin('GET', '/audit/verify');
    assert.equal(v.body.ok, true, show(v));
  });
});
