// Day-two operations through the real `airlock` process: one gateway per data dir (a lock that a
// SIGKILL does not leave behind), read-only commands that never create an install, encrypted
// backups that carry their install.key, and restores that refuse rather than lose data.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { ADMIN_TOKEN, BIN, TEST_KEY, basicConfig, eventually, runCli, startGateway, tmpDir, writeConfig, type CliResult } from '../helpers/gateway.js';
import { hashTree } from '../helpers/files.js';
import { startUpstream } from '../helpers/upstream.js';

const PASS = 'correct horse battery staple';
const withPass = { env: { AIRLOCK_BACKUP_PASSPHRASE: PASS } };
const out = (r: CliResult) => `exit ${r.code} ${r.signal ?? ''}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});
function dir(prefix?: string): string {
  const d = tmpDir(prefix);
  cleanup.push(d);
  return d;
}

/** Refused: exit 2 and exactly one line on stderr, no stack trace, no temporary path. */
function refusal(r: CliResult): string {
  assert.equal(r.code, 2, out(r));
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  assert.equal(lines.length, 1, `one line on stderr\n${out(r)}`);
  assert.doesNotMatch(r.stderr, /\n\s+at |\.restore-|\.backup-|\.partial-/, `no stack trace or temporary path\n${out(r)}`);
  return lines[0]!;
}

async function install(config: unknown = basicConfig('http://127.0.0.1:9/v1')): Promise<string> {
  const d = dir();
  const r = await runCli(['config', 'apply', writeConfig(dir('airlock-cfg-'), config), '--data-dir', d]);
  assert.equal(r.code, 0, out(r));
  return d;
}

async function backupOf(dataDir: string, extra: string[] = []): Promise<string> {
  const file = path.join(dir('airlock-bk-'), 'airlock.backup');
  const r = await runCli(['backup', '--to', file, '--data-dir', dataDir, ...extra], withPass);
  assert.equal(r.code, 0, out(r));
  return file;
}

describe('one gateway per data dir', () => {
  test('a second serve on the same data dir is refused in one line naming the PID and ports; the first keeps serving', async () => {
    const gw = await startGateway();
    cleanup.push(gw.dataDir);
    try {
      const r = await runCli(['serve', '--data-dir', gw.dataDir, '--port', '0', '--admin-port', '0'], { timeoutMs: 20_000 });
      const line = refusal(r);
      assert.ok(line.includes(`PID ${gw.proc.pid}`), line);
      assert.ok(line.includes(gw.dataUrl) && line.includes(gw.adminUrl), line);
      assert.ok(line.includes(gw.dataDir), line);
      assert.doesNotMatch(r.stdout, /listening|ready/);
      assert.equal((await fetch(gw.dataUrl + '/healthz')).status, 200, 'the first gateway still serves');
      // the same data dir spelled differently is the same data dir
      const odd = gw.dataDir + path.sep + '.' + path.sep;
      const r2 = await runCli(['serve', '--data-dir', odd, '--port', '0', '--admin-port', '0'], { timeoutMs: 20_000 });
      assert.ok(refusal(r2).includes(`PID ${gw.proc.pid}`));
    } finally {
      await gw.stop();
    }
  });

  test('a gateway killed with SIGKILL does not block the next start, nor a restore', async () => {
    const gw = await startGateway();
    cleanup.push(gw.dataDir);
    const killed = await gw.stop('SIGKILL');
    assert.equal(killed.signal, 'SIGKILL');
    assert.ok(fs.existsSync(path.join(gw.dataDir, 'airlock.pid')), 'the killed gateway left its holder file behind');
    const next = await startGateway({ dataDir: gw.dataDir });
    try {
      const r = await runCli(['serve', '--data-dir', gw.dataDir, '--port', '0', '--admin-port', '0'], { timeoutMs: 20_000 });
      assert.ok(refusal(r).includes(`PID ${next.proc.pid}`), 'the refusal names the live gateway, not the killed one');
    } finally {
      assert.equal((await next.stop('SIGKILL')).signal, 'SIGKILL');
    }
    const file = await backupOf(gw.dataDir);
    const r = await runCli(['restore', file, '--data-dir', gw.dataDir], withPass);
    assert.equal(r.code, 0, out(r));
  });

  test('a clean stop removes the holder file; the lock file stays (0600, empty)', async () => {
    const gw = await startGateway();
    cleanup.push(gw.dataDir);
    const holder = JSON.parse(fs.readFileSync(path.join(gw.dataDir, 'airlock.pid'), 'utf8'));
    assert.equal(holder.pid, gw.proc.pid);
    assert.equal(holder.data, gw.dataUrl);
    assert.equal((await gw.stop()).code, 0);
    assert.ok(!fs.existsSync(path.join(gw.dataDir, 'airlock.pid')));
    const st = fs.statSync(path.join(gw.dataDir, 'airlock.lock'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal(st.size, 0);
  });

  test('a port clash or a refused --config leaves no new data dir behind', async () => {
    const blocker = net.createServer();
    await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const parent = dir();
    try {
      const fresh = path.join(parent, 'new-install');
      const r = await runCli(['serve', '--data-dir', fresh, '--port', String(port), '--admin-port', '0'], { timeoutMs: 20_000 });
      assert.match(refusal(r), new RegExp(`${port}.*in use`));
      assert.ok(!fs.existsSync(fresh), 'no data dir was left behind');
    } finally {
      await new Promise((r) => blocker.close(r));
    }
    const fresh = path.join(parent, 'other-install');
    const bad = writeConfig(dir('airlock-cfg-'), { endpoints: [{ name: 'x', base_url: 'not a url' }] });
    const r = await runCli(['serve', '--data-dir', fresh, '--port', '0', '--admin-port', '0', '--config', bad], { timeoutMs: 20_000 });
    assert.notEqual(r.code, 0, out(r));
    assert.ok(!fs.existsSync(fresh), 'no data dir was left behind');
    assert.deepEqual(fs.readdirSync(parent), []);
  });
});

describe('read-only commands never create an install', () => {
  for (const args of [['keys', 'list'], ['config', 'export'], ['backup', '--to', path.join(os.tmpdir(), 'airlock-never-written.backup')]]) {
    test(`${args.slice(0, 2).join(' ')}: a missing or empty data dir is refused naming the path and --data-dir`, async () => {
      const home = dir('airlock-home-');
      // without --data-dir: the default location is named and not created
      const r = await runCli(args, { env: { HOME: home, XDG_DATA_HOME: undefined, AIRLOCK_DATA_DIR: undefined, ...withPass.env } });
      const line = refusal(r);
      const def = path.join(home, '.local', 'share', 'airlock');
      assert.ok(line.includes(def), line);
      assert.match(line, /--data-dir/);
      assert.deepEqual(fs.readdirSync(home), [], 'nothing was created');
      // an empty directory stays empty
      const empty = dir();
      const r2 = await runCli([...args, '--data-dir', empty], withPass);
      assert.ok(refusal(r2).includes(empty));
      assert.deepEqual(fs.readdirSync(empty), []);
      assert.ok(!fs.existsSync(path.join(os.tmpdir(), 'airlock-never-written.backup')));
    });
  }

  test('an install whose install.key is missing or belongs to another install is refused with the fix, and nothing is created', async () => {
    const a = await install();
    const b = await install();
    const keyA = fs.readFileSync(path.join(a, 'install.key'));
    fs.copyFileSync(path.join(b, 'install.key'), path.join(a, 'install.key'));
    for (const args of [['keys', 'list'], ['serve', '--port', '0', '--admin-port', '0']]) {
      const r = await runCli([...args, '--data-dir', a], { timeoutMs: 20_000 });
      const line = refusal(r);
      assert.match(line, /install\.key/);
      assert.match(line, /does not belong/);
      assert.match(line, /encrypted backup/);
    }
    fs.rmSync(path.join(a, 'install.key'));
    for (const args of [['keys', 'list'], ['keys', 'create', '--name', 'x'], ['serve', '--port', '0', '--admin-port', '0']]) {
      const r = await runCli([...args, '--data-dir', a], { timeoutMs: 20_000 });
      assert.match(refusal(r), /install\.key is missing/);
      assert.ok(!fs.existsSync(path.join(a, 'install.key')), `${args[0]} did not make up a new install.key`);
    }
    fs.writeFileSync(path.join(a, 'install.key'), keyA, { mode: 0o600 });
    const ok = await runCli(['keys', 'list', '--data-dir', a]);
    assert.equal(ok.code, 0, out(ok));
    assert.match(ok.stdout, /notebook-app/);
  });
});

describe('backup', () => {
  test('an encrypted bundle, mode 0600, that holds neither the key nor the config in the clear', async () => {
    const d = await install();
    const file = await backupOf(d);
    assert.equal(fs.statSync(file).mode & 0o777, 0o600);
    const bytes = fs.readFileSync(file);
    assert.ok(bytes.subarray(0, 18).toString() === 'airlock-backup v1\n');
    const key = fs.readFileSync(path.join(d, 'install.key'), 'utf8').trim();
    assert.ok(!bytes.includes(Buffer.from(key, 'hex')) && !bytes.includes(key), 'the install secret is not in the clear');
    assert.ok(!bytes.includes('notebook-app') && !bytes.includes('SQLite format 3'), 'the database is not in the clear');
    // --plain: the database alone, 0600 too
    const plain = await backupOf(d, ['--plain']);
    assert.equal(fs.statSync(plain).mode & 0o777, 0o600);
    assert.equal(fs.readFileSync(plain).subarray(0, 15).toString(), 'SQLite format 3');
    assert.deepEqual(
      fs.readdirSync(d).filter((f) => f.startsWith('.')),
      [],
      'no temporary file left in the data dir',
    );
  });

  test('bad destinations and passphrases: one line, exit 2, nothing written', async () => {
    const d = await install();
    const work = dir('airlock-bk-');
    const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
      [['--to', '/nonexistent-airlock-dir/x.backup'], withPass.env, /\/nonexistent-airlock-dir.*no such file/],
      [['--to', path.join(d, 'install.key', 'x')], withPass.env, /not a folder|a file, not a directory/],
      [['--to', path.join(d, 'airlock.db')], withPass.env, /already exists/],
      [['--to', path.join(work, 'short.backup')], { AIRLOCK_BACKUP_PASSPHRASE: 'short' }, /at least 10 characters/],
      [['--to', path.join(work, 'x.backup'), '--passphrase-file', path.join(work, 'nope')], {}, /passphrase file .*nope.*no such file/],
    ];
    const before = hashTree(d);
    for (const [args, env, re] of cases) {
      const r = await runCli(['backup', ...args, '--data-dir', d], { env });
      assert.match(refusal(r), re);
    }
    assert.deepEqual(fs.readdirSync(work), []);
    assert.deepEqual(hashTree(d), before);
    const noPass = await runCli(['backup', '--to', path.join(work, 'x.backup'), '--data-dir', d], { env: { AIRLOCK_BACKUP_PASSPHRASE: undefined } });
    assert.equal(noPass.code, 2, out(noPass));
    assert.match(noPass.stderr, /passphrase-file.*AIRLOCK_BACKUP_PASSPHRASE/);
    // a passphrase file: its first line
    const pf = path.join(work, 'pass.txt');
    fs.writeFileSync(pf, PASS + '\n');
    const r = await runCli(['backup', '--to', path.join(work, 'ok.backup'), '--passphrase-file', pf, '--data-dir', d], { env: { AIRLOCK_BACKUP_PASSPHRASE: undefined } });
    assert.equal(r.code, 0, out(r));
    const back = await runCli(['restore', path.join(work, 'ok.backup'), '--data-dir', dir()], withPass);
    assert.equal(back.code, 0, out(back));
  });
});

describe('restore', () => {
  test('onto a new server with its own install.key: the bundle brings its key; keys and upstream secrets work; the replaced install is kept', async () => {
    const up = await startUpstream();
    const secret = 'upstream-secret-' + Date.now();
    const gw = await startGateway({ config: basicConfig(up.url, { endpoints: [{ name: 'gpu-1', base_url: up.url, api_key: secret, health_check: { enabled: false } }] }) });
    cleanup.push(gw.dataDir);
    let restored: Awaited<ReturnType<typeof startGateway>> | undefined;
    try {
      const file = await backupOf(gw.dataDir); // online, while serving
      await gw.stop();
      const target = await install({ teams: [{ name: 'only-on-the-new-server' }] });
      const targetKey = fs.readFileSync(path.join(target, 'install.key'), 'utf8');
      const r = await runCli(['restore', file, '--data-dir', target], withPass);
      assert.equal(r.code, 0, out(r));
      const previous = /kept in (\S+?) \(a complete data dir\)/.exec(r.stdout)?.[1];
      assert.ok(previous && fs.existsSync(path.join(previous, 'airlock.db')), out(r));
      assert.equal(fs.readFileSync(path.join(previous, 'install.key'), 'utf8'), targetKey, 'the replaced install.key is kept');
      assert.equal(fs.readFileSync(path.join(target, 'install.key'), 'utf8'), fs.readFileSync(path.join(gw.dataDir, 'install.key'), 'utf8'));
      for (const f of ['airlock.db', 'install.key']) assert.equal(fs.statSync(path.join(target, f)).mode & 0o777, 0o600, f);
      restored = await startGateway({ dataDir: target });
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: restored.baseURL, maxRetries: 0 });
      const res = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'restored' }] });
      assert.equal(res.choices[0]?.message.content, 'echo: restored');
      assert.equal(up.completions().at(-1)?.headers.authorization, `Bearer ${secret}`);
      // the kept install is itself a data dir
      const old = await runCli(['config', 'export', '--data-dir', previous]);
      assert.match(old.stdout, /only-on-the-new-server/);
    } finally {
      await restored?.stop();
      await up.close();
    }
  });

  test('a plain database onto another install.key is refused with the fix; onto its own key it is restored', async () => {
    const source = await install();
    const plain = await backupOf(source, ['--plain']);
    const other = await install();
    const before = hashTree(other);
    const r = await runCli(['restore', plain, '--data-dir', other]);
    const line = refusal(r);
    assert.match(line, /another install\.key/);
    assert.match(line, /copy the install\.key/);
    assert.deepEqual(hashTree(other), before, 'the data dir is untouched');
    const empty = path.join(dir(), 'fresh');
    assert.match(refusal(await runCli(['restore', plain, '--data-dir', empty])), /no install\.key/);
    assert.ok(!fs.existsSync(empty), 'no data dir left behind');
    fs.copyFileSync(path.join(source, 'install.key'), path.join(other, 'install.key'));
    // a data dir whose key now matches the backup but not its own database: the restore fixes that
    const ok = await runCli(['restore', plain, '--data-dir', other]);
    assert.equal(ok.code, 0, out(ok));
    assert.match((await runCli(['keys', 'list', '--data-dir', other])).stdout, /notebook-app/);
  });

  test('refused while a gateway serves the data dir (naming its PID); nothing changes and later changes survive a restart', async () => {
    const d = await install();
    const file = await backupOf(d);
    const gw = await startGateway({ dataDir: d });
    try {
      const r = await runCli(['restore', file, '--data-dir', d], withPass);
      const line = refusal(r);
      assert.ok(line.includes(`PID ${gw.proc.pid}`), line);
      assert.match(line, /stop it before restoring/);
      assert.deepEqual(
        fs.readdirSync(d).filter((f) => /restore/.test(f)),
        [],
      );
      assert.equal((await gw.admin('POST', '/teams', { name: 'made-after-the-refused-restore' })).status, 201);
    } finally {
      await gw.stop();
    }
    const again = await startGateway({ dataDir: d });
    try {
      assert.ok((await again.admin('GET', '/teams')).body.data.some((t: { name: string }) => t.name === 'made-after-the-refused-restore'));
    } finally {
      await again.stop();
    }
  });

  test('concurrent restores: the second is refused naming the first; a gateway cannot start mid-restore', async () => {
    const d = await install();
    const file = await backupOf(d);
    const fifo = path.join(dir(), 'passphrase.fifo');
    execFileSync('mkfifo', [fifo]);
    // The first restore takes the lock, then blocks reading its passphrase from the FIFO.
    const first = spawn(process.execPath, [BIN, 'restore', file, '--data-dir', d, '--passphrase-file', fifo], { stdio: ['ignore', 'pipe', 'pipe'] });
    let firstOut = '';
    first.stdout.on('data', (b: Buffer) => (firstOut += b.toString()));
    first.stderr.on('data', (b: Buffer) => (firstOut += b.toString()));
    const firstDone = new Promise<number | null>((resolve) => first.on('exit', (c) => resolve(c)));
    try {
      await eventually(() => {
        try {
          return JSON.parse(fs.readFileSync(path.join(d, 'airlock.pid'), 'utf8')).pid === first.pid;
        } catch {
          return false;
        }
      }, 'the first restore to hold the lock');
      const second = await runCli(['restore', file, '--data-dir', d], withPass);
      assert.ok(refusal(second).includes(`an Airlock restore (PID ${first.pid})`), out(second));
      const serve = await runCli(['serve', '--data-dir', d, '--port', '0', '--admin-port', '0'], { timeoutMs: 20_000 });
      assert.ok(refusal(serve).includes(`restore (PID ${first.pid})`), out(serve));
    } finally {
      fs.writeFileSync(fifo, PASS + '\n');
    }
    assert.equal(await firstDone, 0, firstOut);
    assert.match(firstOut, /restored/);
  });

  test('a stranger’s files: missing, junk, empty, truncated, tampered, wrong passphrase — one line each, the data dir untouched', async () => {
    const d = await install();
    const file = await backupOf(d);
    const work = dir('airlock-bk-');
    const bytes = fs.readFileSync(file);
    const put = (name: string, data: Buffer | string) => {
      const p = path.join(work, name);
      fs.writeFileSync(p, data);
      return p;
    };
    const tampered = Buffer.from(bytes);
    tampered[tampered.length - 200]! ^= 1;
    // the same length, another creation date: only the authentication of the header can tell
    const tamperedHeader = Buffer.from(bytes.toString('latin1').replace('"created_at":"2', '"created_at":"1'), 'latin1');
    assert.equal(tamperedHeader.length, bytes.length);
    assert.notDeepEqual(tamperedHeader, bytes);
    const cases: [string, NodeJS.ProcessEnv, RegExp][] = [
      [path.join(work, 'nope.backup'), withPass.env, /cannot be read: no such file/],
      [work, withPass.env, /not a regular file/],
      [put('junk.db', Buffer.from('this is not a backup at all\n'.repeat(100))), withPass.env, /not an Airlock backup/],
      [put('empty.backup', ''), withPass.env, /is empty/],
      [put('half.backup', bytes.subarray(0, Math.floor(bytes.length / 2))), withPass.env, /truncated/],
      [put('head.backup', bytes.subarray(0, 30)), withPass.env, /truncated/],
      [put('magic.backup', bytes.subarray(0, 10)), withPass.env, /truncated/],
      [put('tail.backup', Buffer.concat([bytes, Buffer.from('x')])), withPass.env, /1 bytes more/],
      [put('tampered.backup', tampered), withPass.env, /damaged or was changed/],
      [put('tampered-header.backup', tamperedHeader), withPass.env, /damaged or was changed/],
      [file, { AIRLOCK_BACKUP_PASSPHRASE: 'not the passphrase' }, /wrong passphrase/],
    ];
    const before = hashTree(d);
    for (const [f, env, re] of cases) {
      const r = await runCli(['restore', f, '--data-dir', d], { env });
      assert.match(refusal(r), re, f);
      assert.deepEqual(hashTree(d), before, `${f}: the data dir is untouched`);
    }
    // a SQLite file that is not ours
    const foreign = path.join(work, 'foreign.db');
    const fdb = new Database(foreign);
    fdb.exec('CREATE TABLE invoices (id INTEGER)');
    fdb.close();
    const r = await runCli(['restore', foreign, '--data-dir', d]);
    assert.match(refusal(r), /not an Airlock database.*invoices/);
    assert.deepEqual(hashTree(d), before);
    // and a missing data dir stays missing after a refusal
    const missing = path.join(work, 'no-such-install');
    assert.match(refusal(await runCli(['restore', path.join(work, 'junk.db'), '--data-dir', missing])), /not an Airlock backup/);
    assert.ok(!fs.existsSync(missing));
  });
});

describe('backup from the admin API (owner)', () => {
  test('POST /backup answers the encrypted bundle as a download; it restores with the CLI; no scratch file is left', async () => {
    const gw = await startGateway({ config: basicConfig('http://127.0.0.1:9/v1') });
    cleanup.push(gw.dataDir);
    try {
      const short = await gw.admin('POST', '/backup', { passphrase: 'short' });
      assert.equal(short.status, 400);
      assert.equal(short.body.error.param, 'passphrase');
      assert.match(short.body.error.message, /at least 10 characters/);
      const res = await fetch(`${gw.adminUrl}/admin/api/v1/backup`, {
        method: 'POST',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ passphrase: PASS }),
      });
      assert.equal(res.status, 200);
      assert.match(res.headers.get('content-disposition') ?? '', /^attachment; filename="airlock-[\d-]+\.backup"$/);
      const bytes = Buffer.from(await res.arrayBuffer());
      assert.equal(Number(res.headers.get('content-length')), bytes.length);
      assert.equal(bytes.subarray(0, 18).toString(), 'airlock-backup v1\n');
      await eventually(() => fs.readdirSync(gw.dataDir).every((f) => !f.startsWith('.download-')), 'the scratch file to go');
      const file = path.join(dir('airlock-bk-'), 'from-the-api.backup');
      fs.writeFileSync(file, bytes);
      const target = path.join(dir(), 'restored');
      const r = await runCli(['restore', file, '--data-dir', target], withPass);
      assert.equal(r.code, 0, out(r));
      assert.match((await runCli(['keys', 'list', '--data-dir', target])).stdout, /notebook-app/);
    } finally {
      await gw.stop();
    }
  });
});
