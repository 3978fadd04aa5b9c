// The audit log over a real SQLite file: the chain across processes' connections, signed
// checkpoints, the live verifier finding a record edited behind the triggers' back, retention
// into archive segments that keep the chain verifiable, and the signing key at rest.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { openDatabase } from '../../gateway/store/db.js';
import { Secrets } from '../../gateway/store/secrets.js';
import { openAudit, redact } from '../../gateway/audit/index.js';
import { core, checkpointPayload } from '../../gateway/audit/log.js';
import { archiveOld } from '../../gateway/audit/retention.js';
import { AuditKey } from '../../gateway/audit/key.js';
import { csvCell, cefLine } from '../../gateway/audit/export.js';
import { tmpDir } from '../helpers/gateway.js';
import { Rng } from '../helpers/random.js';

function open(dir = tmpDir('airlock-audit-unit-'), every = 5) {
  const db = openDatabase(dir);
  const secrets = Secrets.load(dir);
  return { dir, db, log: openAudit(db, dir, secrets, { checkpointEvery: () => every }) };
}
const entry = (i: number) => ({ kind: 'admin.change', actor: `user:u${i}`, source: '127.0.0.1', data: { i, note: 'ünïcode ✓', nested: { b: 2, a: [1, null, 'x'] } } });

test('two connections append to one chain; checkpoints are signed every N records', () => {
  const a = open();
  const b = openAudit(openDatabase(a.dir), a.dir, Secrets.load(a.dir), { checkpointEvery: () => 5 });
  try {
    for (let i = 0; i < 12; i++) (i % 2 ? a.log : b).append(entry(i));
    const v = a.log.verifyLive();
    assert.equal(v.ok, true, v.problems.join('; '));
    assert.equal(v.records, 12);
    assert.equal(b.key.fingerprint, a.log.key.fingerprint, 'one key per data dir');
    const cps = a.db.prepare(`SELECT * FROM audit_checkpoints ORDER BY seq`).all() as { seq: number; hash: string; ts: string; key_fingerprint: string; signature: string }[];
    assert.deepEqual(cps.map((c) => c.seq), [5, 10]);
    for (const c of cps) assert.ok(core.sameFingerprint(c.key_fingerprint, a.log.key.fingerprint) && a.log.key.verify(checkpointPayload(c), c.signature));
    // queued records keep their order with immediate ones
    a.log.enqueue(entry(100));
    a.log.append(entry(101));
    const [last, before] = a.log.list({ limit: 2 });
    assert.deepEqual([before!.data.i, last!.data.i], [100, 101]);
  } finally {
    b.db.close();
    a.db.close();
  }
});

test('the live verifier names a record edited or removed behind the triggers’ back', () => {
  const { db, log } = open();
  try {
    for (let i = 0; i < 7; i++) log.append(entry(i));
    // someone with a shell drops the trigger and edits a record
    db.exec(`DROP TRIGGER audit_log_no_update`);
    db.prepare(`UPDATE audit_log SET actor = 'user:nobody' WHERE seq = 4`).run();
    let v = log.verifyLive();
    assert.equal(v.ok, false);
    assert.match(v.problems[0]!, /^seq 4: its hash does not match its contents/);
    // ... and recomputes its hash: the next record no longer links, and the checkpoint at 5 still holds
    const r = log.list({ limit: 100 }).find((x) => x.seq === 4)!;
    db.prepare(`UPDATE audit_log SET hash = ? WHERE seq = 4`).run(core.recordHash({ ...r, actor: 'user:nobody' }));
    v = log.verifyLive();
    assert.match(v.problems[0]!, /^seq 5: it does not link to the record before it/);
    db.exec(`DROP TRIGGER audit_log_no_delete`);
    db.prepare(`DELETE FROM audit_log WHERE seq = 6`).run();
    assert.ok(log.verifyLive().problems.some((p) => /seq 6: missing|expected seq 6/.test(p) || /does not link/.test(p)));
  } finally {
    db.close();
  }
});

test('retention moves old records into a signed archive segment; the chain continues and verifies', async () => {
  const { dir, db, log } = open();
  try {
    for (let i = 0; i < 9; i++) log.append(entry(i));
    const seg = await archiveOld(log, dir, Date.now() + 1000);
    assert.ok(seg);
    assert.deepEqual([seg.first_seq, seg.through_seq], [1, 9]);
    assert.equal(path.dirname(seg.dir), path.join(dir, 'audit-archive'));
    const v = core.verifyBundle(seg.dir, { key: log.key.fingerprint });
    assert.equal(v.ok, true, v.problems.join('; '));
    assert.equal(v.count, 9);
    // the segment's record of itself follows it, linked to its last hash
    const [rec] = log.list({ limit: 1 });
    assert.equal(rec!.kind, 'audit.archive');
    assert.equal(rec!.seq, 10);
    assert.equal(rec!.prev_hash, JSON.parse(fs.readFileSync(path.join(seg.dir, 'manifest.json'), 'utf8')).last_hash);
    log.append(entry(99));
    const live = log.verifyLive();
    assert.equal(live.ok, true, live.problems.join('; '));
    assert.equal(live.archived_through, 9);
    assert.equal(live.first_seq, 10);
    // nothing to archive now; and what is left cannot be deleted
    assert.equal(await archiveOld(log, dir, Date.now() - 86_400_000), undefined);
    assert.throws(() => db.prepare(`DELETE FROM audit_log WHERE seq = 10`).run(), /append-only/);
    // the archive row is itself append-only
    assert.throws(() => db.prepare(`DELETE FROM audit_archives`).run(), /cannot be deleted/);
  } finally {
    db.close();
  }
});

test('the signing key: 0600, the private key encrypted; a damaged or foreign key file is refused at start', () => {
  const dir = tmpDir('airlock-audit-key-');
  const secrets = Secrets.load(dir);
  const k = AuditKey.load(dir, secrets);
  const file = path.join(dir, 'audit-signing.key');
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  assert.ok(!fs.readFileSync(file, 'utf8').includes('PRIVATE KEY'));
  assert.equal(AuditKey.load(dir, secrets).fingerprint, k.fingerprint, 'loaded again, the same key');
  assert.equal(AuditKey.readPublic(dir)!.fingerprint, k.fingerprint);
  // another data dir's install secret cannot decrypt it
  const other = tmpDir('airlock-audit-key-');
  fs.copyFileSync(file, path.join(other, 'audit-signing.key'));
  assert.throws(() => AuditKey.load(other, Secrets.load(other)), /cannot be decrypted with this data dir's install\.key/);
  fs.writeFileSync(file, '{"algorithm":"Ed25519","public_key":"nope"}');
  assert.throws(() => AuditKey.load(dir, secrets), /damaged or unreadable/);
});

test('the canonical encoding is JSON with sorted keys and no whitespace, for every shape of data', () => {
  // the oracle: each object's members in key order (UTF-16 code units), JSON.stringify for the
  // rest (independent of core.canonical). Written out, not as a JSON.stringify replacer: an object
  // rebuilt with sorted keys would put integer-like keys ("2", "10") first, whatever their order
  const oracle = (v: unknown): string | undefined => {
    if (Array.isArray(v)) return `[${v.map((x) => oracle(x) ?? 'null').join(',')}]`;
    if (v && typeof v === 'object')
      return `{${Object.keys(v)
        .sort()
        .flatMap((k) => {
          const s = oracle((v as Record<string, unknown>)[k]);
          return s === undefined ? [] : [`${JSON.stringify(k)}:${s}`];
        })
        .join(',')}}`;
    return JSON.stringify(v);
  };
  const rng = new Rng(7);
  const rnd = (n: number) => rng.int(n);
  const KEYS = ['a', 'b', 'B', '_', 'é', 'zz', 'a.b', 'key "q"', '\u2028', '10', '2', ''];
  const value = (depth: number): unknown => {
    switch (rnd(depth > 2 ? 5 : 7)) {
      case 0: return rnd(2) === 0;
      case 1: return null;
      case 2: return [-0, 1e21, 0.1, -5, 2 ** 53][rnd(5)];
      case 3: return ['', 'x', 'é\u2028"\\', '\n\t', '𝄞'][rnd(5)];
      case 4: return undefined;
      case 5: return Array.from({ length: rnd(4) }, () => value(depth + 1));
      default: {
        const o: Record<string, unknown> = {};
        for (let i = rnd(6); i > 0; i--) o[KEYS[rnd(KEYS.length)]!] = value(depth + 1);
        return o;
      }
    }
  };
  for (let i = 0; i < 2000; i++) {
    const v = { root: value(0), [KEYS[rnd(KEYS.length)]!]: value(0) };
    assert.equal(core.canonical(v), oracle(v));
  }
  // objects whose keys come in order and out of order encode alike
  assert.equal(core.canonical({ a: 1, b: { c: 2, d: 3 } }), core.canonical({ b: { d: 3, c: 2 }, a: 1 }));
  // values in key order (the native shortcut's case) with what JSON.stringify would treat
  // differently: each still encodes as the general walk does
  assert.equal(core.canonical({ a: new Date(0), b: 1 }), '{"a":{},"b":1}', 'a Date has no members of its own');
  assert.throws(() => core.canonical({ a: { toJSON: () => 'x' } }), /cannot encode a function/, 'a toJSON member is not called');
  assert.throws(() => core.canonical({ a: [1, { b: NaN }] }), /finite/);
  assert.throws(() => core.canonical({ a: [() => 1] }), /cannot encode a function/);
  assert.throws(() => core.canonical({ a: 1n }), /cannot encode a bigint/);
  const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1, b: [2] });
  assert.equal(core.canonical({ x: bare }), '{"x":{"a":1,"b":[2]}}');
  assert.equal(core.canonical({ a: { d: 1, c: 2 }, b: [{ z: 1, y: 2 }] }), '{"a":{"c":2,"d":1},"b":[{"y":2,"z":1}]}', 'an unordered object deep inside is sorted');
  assert.equal(core.canonical({ 10: 'a', 9: 'b' }), '{"10":"a","9":"b"}', 'integer-like keys sorted as strings');
  assert.equal(core.canonical({ a: [undefined, -0], b: undefined, c: '\u2028' }), '{"a":[null,0],"c":"\u2028"}');
});

test('canonical encoding, redaction, CSV and CEF escaping', () => {
  assert.equal(core.canonical({ b: 1, a: [true, null, 'x', { d: undefined, c: -0 }], e: 'é' }), '{"a":[true,null,"x",{"c":0}],"b":1,"e":"é"}');
  assert.throws(() => core.canonical({ a: Infinity }), /finite/);
  // the writer's shortcut and the verifier's full encoding agree, also after a round trip through JSON
  for (const data of [{}, { z: -0, a: [undefined, 1e21, 'é\u2028"\\'], n: { y: null, x: false } }, { when: new Date(0), gone: undefined }]) {
    const r = { seq: 7, ts: '2026-01-01T00:00:00.000Z', kind: 'k"', actor: 'user:ü', source: '::1', prev_hash: '0'.repeat(64) };
    const enc = core.canonical(data);
    const h = core.recordHashOf(r, enc);
    assert.equal(h, core.recordHash({ ...r, data: JSON.parse(enc) as Record<string, unknown> }), enc);
  }
  assert.deepEqual(redact({ name: 'gpu', api_key: 'sk-123', password: 'p', key: 'sk-airlock-x', keys: [{ name: 'k', key: 'sk-y' }], env: { api_key: '${env:AIRLOCK_SECRET_X}' }, token: '' }), {
    name: 'gpu',
    api_key: '[redacted]',
    password: '[redacted]',
    key: '[redacted]',
    keys: [{ name: 'k', key: '[redacted]' }],
    env: { api_key: '${env:AIRLOCK_SECRET_X}' },
    token: '',
  });
  assert.equal(csvCell('=HYPERLINK("http://x")'), `"'=HYPERLINK(""http://x"")"`);
  assert.equal(csvCell('a,b'), '"a,b"');
  assert.equal(csvCell('plain'), 'plain');
  const line = cefLine({ seq: 1, ts: '2026-01-01T00:00:00.000Z', kind: 'admin|change', actor: 'user:a=b\\c', source: '::1', data: { action: 'x\ny' }, prev_hash: '0', hash: '1' });
  assert.match(line, /^CEF:0\|Airlock\|Airlock Gateway\|[^|]+\|admin\\\|change\|x y\|\d\|/);
  assert.match(line, /suser=user:a\\=b\\\\c /);
  assert.equal(line.split('\n').length, 2, 'one line per event');
});

test('queued records are written by the writer thread into the same chain as immediate ones', async () => {
  const { dir, db, log } = open(tmpDir('airlock-audit-unit-'), 100);
  try {
    log.startWriter(dir);
    for (let i = 0; i < 1000; i++) {
      log.enqueue(entry(i));
      if (i % 250 === 0) log.append(entry(10_000 + i)); // the main thread's own records in between
      if (i % 100 === 0) log.flush();
    }
    await log.stopWriter();
    const v = log.verifyLive();
    assert.equal(v.ok, true, v.problems.join('; '));
    assert.equal(v.records, 1004);
    assert.equal(db.prepare(`SELECT COUNT(*) FROM audit_checkpoints`).pluck().get(), 10, 'a checkpoint every 100 records, whoever wrote them');
    const queued = (db.prepare(`SELECT data FROM audit_log ORDER BY seq`).pluck().all() as string[]).map((d) => (JSON.parse(d) as { i: number }).i).filter((i) => i < 10_000);
    assert.deepEqual(queued, [...Array(1000).keys()], 'queued records keep their order');
  } finally {
    db.close();
  }
});

test('a queued record whose data has no canonical encoding is refused when queued, named in the log, and costs its neighbours nothing', async () => {
  for (const withWriter of [false, true]) {
    const dir = tmpDir('airlock-audit-unit-');
    const db = openDatabase(dir);
    const lines: string[] = [];
    const log = openAudit(db, dir, Secrets.load(dir), { checkpointEvery: () => 100, log: (l) => lines.push(l) });
    try {
      if (withWriter) log.startWriter(dir);
      log.enqueue(entry(1));
      log.enqueue({ kind: 'request', actor: 'key:k', source: 'data-plane', data: { cost: NaN } });
      log.enqueue({ kind: 'request', actor: 'key:k', source: 'data-plane', data: { f: () => 1 } });
      log.enqueue(entry(2));
      assert.equal(lines.length, 2, `each refusal is logged when it is queued: ${lines.join(' | ')}`);
      assert.match(lines[0]!, /a request record cannot be encoded \(canonical encoding: numbers must be finite\); it is not written/);
      assert.match(lines[1]!, /cannot encode a function/);
      if (withWriter) await log.stopWriter();
      else assert.equal(log.flush(), true);
      const v = log.verifyLive();
      assert.equal(v.ok, true, v.problems.join('; '));
      assert.deepEqual(
        (db.prepare(`SELECT data FROM audit_log ORDER BY seq`).pluck().all() as string[]).map((d) => (JSON.parse(d) as { i: number }).i),
        [1, 2],
        `${withWriter ? 'writer thread' : 'main thread'}: both good records written, in order`,
      );
    } finally {
      db.close();
    }
  }
});
