// "airlock restore" replaces the database file; the other commands (keys, config, backup, ...)
// open it. Neither may start while the other runs, whichever comes first: a restore under a
// command that has the database open would pull it from under that command (its writes lost, or a
// backup of half an install), and a command during a restore would read or write the install being
// replaced. Real processes; each command is held mid-run deterministically by reading its
// passphrase from a FIFO that the test writes only when it is done probing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { BIN, ADMIN_TOKEN, eventually, runCli, startGateway, tmpDir, type CliResult } from '../helpers/gateway.js';

const PASS = 'correct horse battery staple 42';
const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

/** `airlock ARGS` started, not awaited: its output so far and its end. */
function startCli(args: string[]): { stop: () => void; out: () => string; done: Promise<CliResult> } {
  const p = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, AIRLOCK_ADMIN_TOKEN: ADMIN_TOKEN }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<CliResult>((resolve) => p.on('close', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { stop: () => p.kill('SIGTERM'), out: () => stdout + stderr, done };
}

/** A FIFO the held command reads its passphrase from. opened(): the command has opened it (so it
 * is past the point where it took its lock); release(): write the passphrase, the command goes on. */
function fifo(dir: string): { file: string; opened: (running: Promise<CliResult>) => Promise<void>; release: () => Promise<void> } {
  const file = path.join(dir, `pass-${Math.random().toString(36).slice(2)}.fifo`);
  const r = spawnSync('mkfifo', ['-m', '600', file]);
  assert.equal(r.status, 0, `mkfifo: ${r.stderr.toString()}`);
  let handle: fs.promises.FileHandle | undefined;
  return {
    file,
    // opening for writing returns once the reader (the command) has opened the FIFO
    opened: async (running) => {
      const open = fs.promises.open(file, 'w').then((h) => (handle = h));
      const ended = running.then((res) => {
        throw new Error(`the command ended before reading its passphrase: ${JSON.stringify(res)}`);
      });
      try {
        await Promise.race([open, ended]);
      } catch (e) {
        // unblock the pending open (a reader that goes away at once), then report
        fs.closeSync(fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NONBLOCK));
        throw e;
      }
    },
    release: async () => {
      await handle!.write(PASS + '\n');
      await handle!.close();
    },
  };
}

describe('a restore and the other commands exclude each other', () => {
  let dataDir: string;
  let work: string;
  let backupFile: string;
  let passFile: string;

  before(async () => {
    // an install with a team, and a backup of it made while a second team did not exist yet
    const gw = await startGateway({ config: { teams: [{ name: 'in-the-backup' }] } });
    dataDir = gw.dataDir;
    await gw.stop();
    work = tmpDir('airlock-restore-lock-');
    cleanup.push(dataDir, work);
    passFile = path.join(work, 'pass');
    fs.writeFileSync(passFile, PASS + '\n');
    backupFile = path.join(work, 'install.backup');
    const b = await runCli(['backup', '--to', backupFile, '--passphrase-file', passFile, '--data-dir', dataDir]);
    assert.equal(b.code, 0, b.stderr);
    const t = await runCli(['config', 'apply', writeTeams(['in-the-backup', 'after-the-backup']), '--data-dir', dataDir]);
    assert.equal(t.code, 0, t.stderr);
  });

  const writeTeams = (names: string[]) => {
    const f = path.join(work, `teams-${names.length}.yaml`);
    fs.writeFileSync(f, `teams:\n${names.map((n) => `  - name: ${n}\n`).join('')}`);
    return f;
  };
  const teams = async () => {
    const r = await runCli(['teams', 'list', '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    return r.stdout;
  };

  test('a restore while a command has the database open is refused and restores nothing; once the command ends, it runs', async () => {
    const hold = fifo(work);
    const backup = startCli(['backup', '--to', path.join(work, 'during.backup'), '--passphrase-file', hold.file, '--data-dir', dataDir]);
    await hold.opened(backup.done);
    const refused = await runCli(['restore', backupFile, '--passphrase-file', passFile, '--data-dir', dataDir]);
    assert.notEqual(refused.code, 0, refused.stdout);
    assert.match(refused.stderr, /in use: another airlock command .* is using it; run the restore again when it has finished; nothing was restored/);
    assert.match(await teams(), /after-the-backup/, 'nothing was restored');
    await hold.release();
    const b = await backup.done;
    assert.equal(b.code, 0, b.stderr);
    assert.ok(fs.statSync(path.join(work, 'during.backup')).size > 0, 'the held command completed its work');

    const restored = await runCli(['restore', backupFile, '--passphrase-file', passFile, '--data-dir', dataDir]);
    assert.equal(restored.code, 0, restored.stderr);
    assert.doesNotMatch(await teams(), /after-the-backup/, 'the restore ran once the command had ended');
  });

  test('a command while a restore runs is refused, naming the restore; after it, the command works on the restored install', async () => {
    assert.equal((await runCli(['config', 'apply', writeTeams(['in-the-backup', 'after-the-backup']), '--data-dir', dataDir])).code, 0);
    const hold = fifo(work);
    const restore = startCli(['restore', backupFile, '--passphrase-file', hold.file, '--data-dir', dataDir]);
    await hold.opened(restore.done);
    for (const args of [
      ['teams', 'list'],
      ['keys', 'create', '--name', 'during-restore'],
      ['backup', '--to', path.join(work, 'mid.backup'), '--passphrase-file', passFile],
    ]) {
      const r = await runCli([...args, '--data-dir', dataDir]);
      assert.notEqual(r.code, 0, `${args.join(' ')}: ${r.stdout}`);
      assert.match(r.stderr, /a restore into .* is running \(an Airlock restore \(PID \d+\)\); wait for it to finish, then run this command again/, args.join(' '));
    }
    await hold.release();
    const done = await restore.done;
    assert.equal(done.code, 0, done.stderr);
    assert.doesNotMatch(await teams(), /after-the-backup/);
    const keys = await runCli(['keys', 'list', '--data-dir', dataDir]);
    assert.equal(keys.code, 0, keys.stderr);
    assert.doesNotMatch(keys.stdout, /during-restore/, 'the refused command changed nothing');
  });

  test('a start with a staged restore waits for a running command before applying it', async () => {
    // stage a restore through the admin API of a running gateway, then stop it
    const gw = await startGateway({ dataDir });
    const staged = await fetch(`${gw.adminUrl}/admin/api/v1/restore`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/octet-stream', 'x-airlock-backup-passphrase': Buffer.from(PASS).toString('base64') },
      body: fs.readFileSync(backupFile),
    });
    assert.equal(staged.status, 200, await staged.text());
    await gw.stop();
    assert.equal((await runCli(['config', 'apply', writeTeams(['in-the-backup', 'after-the-backup']), '--data-dir', dataDir])).code, 0);

    const hold = fifo(work);
    const backup = startCli(['backup', '--to', path.join(work, 'before-start.backup'), '--passphrase-file', hold.file, '--data-dir', dataDir]);
    await hold.opened(backup.done);
    const serve = startCli(['serve', '--data-dir', dataDir, '--port', '0', '--admin-port', '0', '--host', '127.0.0.1', '--admin-host', '127.0.0.1']);
    await eventually(() => /waiting for another airlock command to finish before applying the restore/.test(serve.out()) || undefined, 'the start waits');
    assert.doesNotMatch(serve.out(), /applied the restore/);
    await hold.release();
    assert.equal((await backup.done).code, 0);
    await eventually(() => (/applied the restore staged by/.test(serve.out()) && /airlock: ready/.test(serve.out())) || undefined, 'the start applied it', 20_000);
    const admin = /admin plane listening on (\S+)/.exec(serve.out())![1]!;
    const cfg = await (await fetch(`${admin}/admin/api/v1/config`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).text();
    assert.doesNotMatch(cfg, /after-the-backup/, 'the staged backup was applied');
    serve.stop();
    assert.equal((await serve.done).code, 0);
  });
});
