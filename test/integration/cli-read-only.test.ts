// A data dir this user may read but not write (an operator looking at the service's install, a
// read-only mount): the commands that only read (config export, keys/teams/endpoints/models
// list, admin list, audit key) work and leave it as it was; the ones that change the install
// say the data dir is not writable, exit 2 — never that the database "cannot be read".
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, basicConfig, runCli, tmpDir, writeConfig, type CliResult } from '../helpers/gateway.js';

const out = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const root = process.getuid?.() === 0;
// as root (who may write anywhere) the commands run as "nobody", the data dir theirs and read-only
const NOBODY = 65534;

/**
 * As root, the checkout itself must be reachable by "nobody" to run its CLI: a checkout under a
 * directory only root may enter (a clone in `mktemp -d`, mode 0700) is made enterable (o+x, no
 * listing) for the test's duration, and put back as it was after.
 */
function letNobodyReachCheckout(): () => void {
  const changed: [string, number][] = [];
  if (root) {
    for (let d = path.dirname(path.dirname(BIN)); ; d = path.dirname(d)) {
      const mode = fs.statSync(d).mode & 0o7777;
      if (!(mode & 0o001)) {
        fs.chmodSync(d, mode | 0o001);
        changed.push([d, mode]);
      }
      if (path.dirname(d) === d) break;
    }
  }
  return () => {
    for (const [d, mode] of changed.reverse()) fs.chmodSync(d, mode);
  };
}

/** `airlock ARGS` as the user who owns the read-only data dir (not root). */
function runAsOwner(args: string[]): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], ...(root ? { uid: NOBODY, gid: NOBODY } : {}) });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    p.on('error', reject);
    p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** Every file of the data dir with its bytes: what a read must leave as it was. */
function snapshot(dir: string): Record<string, string> {
  return Object.fromEntries(
    fs
      .readdirSync(dir)
      .sort()
      .map((f) => [f, fs.readFileSync(path.join(dir, f)).toString('base64')]),
  );
}

describe('a data dir this user cannot write', () => {
  let dir: string;
  let dataDir: string;
  let before_: Record<string, string>;
  let putBack = () => {};
  before(async () => {
    putBack = letNobodyReachCheckout();
    dir = tmpDir('airlock-readonly-');
    fs.chmodSync(dir, 0o755);
    dataDir = path.join(dir, 'data');
    const r = await runCli(['config', 'apply', writeConfig(dir, basicConfig('http://127.0.0.1:9/v1')), '--data-dir', dataDir]);
    assert.equal(r.code, 0, out(r));
    if (root) for (const f of ['', ...fs.readdirSync(dataDir)]) fs.chownSync(path.join(dataDir, f), NOBODY, NOBODY);
    fs.chmodSync(dataDir, 0o555);
    before_ = snapshot(dataDir);
  });
  after(() => {
    putBack();
    fs.chmodSync(dataDir, 0o700);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  test('the commands that only read work, and leave every file as it was', async () => {
    const exp = await runAsOwner(['config', 'export', '--data-dir', dataDir]);
    assert.equal(exp.code, 0, out(exp));
    assert.match(exp.stdout, /name: notebook-app/);
    assert.match(exp.stdout, /base_url: http:\/\/127\.0\.0\.1:9\/v1/);
    const keys = await runAsOwner(['keys', 'list', '--data-dir', dataDir]);
    assert.equal(keys.code, 0, out(keys));
    assert.match(keys.stdout, /^notebook-app\tsk-airlock-test…\tteam=research/);
    const teams = await runAsOwner(['teams', 'list', '--data-dir', dataDir]);
    assert.equal(teams.code, 0, out(teams));
    assert.equal(teams.stdout, 'research\tkeys=1\n');
    const admins = await runAsOwner(['admin', 'list', '--data-dir', dataDir]);
    assert.equal(admins.code, 0, out(admins));
    const key = await runAsOwner(['audit', 'key', '--data-dir', dataDir]);
    assert.equal(key.code, 0, out(key));
    assert.match(key.stdout, /^SHA256:/);
    assert.deepEqual(snapshot(dataDir), before_, 'nothing was created or changed');
  });

  test('a command that changes the install says the data dir is not writable (exit 2)', async () => {
    const r = await runAsOwner(['keys', 'rotate', 'notebook-app', '--data-dir', dataDir]);
    assert.equal(r.code, 2, out(r));
    assert.match(r.stderr, new RegExp(`^airlock: data dir ${dataDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} is not writable by this user \\(uid \\d+\\), and this command changes the install`), out(r));
    assert.doesNotMatch(r.stderr, /cannot be read/);
    assert.deepEqual(snapshot(dataDir), before_);
  });
});
