// `airlock doctor` finds each problem it claims to find, names the fix, and exits non-zero;
// a healthy data dir passes. Real data dirs made by the real CLI, real sockets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import Database from 'better-sqlite3';
import { basicConfig, runCli, startGateway, tmpDir, writeConfig } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

interface Finding {
  check: string;
  ok: boolean;
  message: string;
  fix?: string;
}

/** A port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}

describe('airlock doctor', () => {
  let up: TestUpstream;
  let deadPort: number;
  before(async () => {
    up = await startUpstream();
    deadPort = await closedPort();
  });
  after(async () => {
    await up?.close();
  });

  /** A fresh install in a data dir (made by `airlock config apply`), with `extra` config. */
  async function install(extra: Record<string, unknown> = {}): Promise<string> {
    const d = tmpDir('airlock-doctor-');
    cleanup.push(d);
    const dataDir = path.join(d, 'data');
    const cfg = writeConfig(d, { ...basicConfig(up.url), ...extra });
    const r = await runCli(['config', 'apply', cfg, '--data-dir', dataDir]);
    assert.equal(r.code, 0, r.stderr);
    return dataDir;
  }

  async function doctor(dataDir: string, env: Record<string, string> = {}, args: string[] = []) {
    const r = await runCli(['doctor', '--data-dir', dataDir, '--json', '--min-free-mb', '0', ...args], { env: { AIRLOCK_PORT: '0', AIRLOCK_ADMIN_PORT: '0', ...env } });
    const body = JSON.parse(r.stdout) as { ok: boolean; findings: Finding[] };
    return { code: r.code, ...body, failed: body.findings.filter((f) => !f.ok) };
  }

  test('a healthy install: every check ok, exit 0; the text output says so', async () => {
    const dataDir = await install();
    const r = await doctor(dataDir);
    assert.deepEqual(r.failed, []);
    assert.equal(r.code, 0);
    for (const c of ['data-dir', 'install-key', 'database', 'ports', 'endpoints', 'disk', 'clock']) assert.ok(r.findings.some((f) => f.check === c && f.ok), c);
    const text = await runCli(['doctor', '--data-dir', dataDir, '--min-free-mb', '0'], { env: { AIRLOCK_PORT: '0', AIRLOCK_ADMIN_PORT: '0' } });
    assert.equal(text.code, 0);
    assert.match(text.stdout, /^ok {3}database: .*integrity_check ok$/m);
    assert.match(text.stdout, /no problems found/);
  });

  test('ports: one taken by another program is a problem; the ones our running gateway holds are not', async () => {
    const dataDir = await install();
    const other = net.createServer();
    await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    try {
      const port = (other.address() as net.AddressInfo).port;
      const r = await doctor(dataDir, { AIRLOCK_PORT: String(port) });
      assert.equal(r.code, 1);
      const f = r.failed.find((x) => x.check === 'ports')!;
      assert.match(f.message, new RegExp(`data plane: 127\\.0\\.0\\.1:${port} cannot be used \\(in use by another program\\)`));
      assert.match(f.fix!, /AIRLOCK_PORT=N/);
    } finally {
      await new Promise((r) => other.close(r));
    }
    const gw = await startGateway({ dataDir });
    try {
      const r = await doctor(dataDir, { AIRLOCK_PORT: new URL(gw.dataUrl).port, AIRLOCK_ADMIN_PORT: new URL(gw.adminUrl).port });
      assert.deepEqual(r.failed, []);
      assert.ok(r.findings.some((f) => f.check === 'ports' && /served by this Airlock \(PID \d+\)/.test(f.message)));
    } finally {
      await gw.stop();
    }
  });

  test('data dir: open to other users, or owned by another user', async () => {
    const dataDir = await install();
    fs.chmodSync(dataDir, 0o755);
    let r = await doctor(dataDir);
    assert.equal(r.code, 1);
    assert.match(r.failed[0]!.message, /mode 755 lets other users in/);
    assert.match(r.failed[0]!.fix!, /chmod 700/);
    fs.chmodSync(dataDir, 0o700);
    if (process.getuid?.() === 0) {
      fs.chownSync(dataDir, 54321, 54321);
      r = await doctor(dataDir);
      assert.equal(r.code, 1);
      assert.match(r.failed.find((f) => f.check === 'data-dir')!.message, /owned by uid 54321, not by the service's uid 0/);
    }
  });

  test('data dir: a path that is a file, or under a file, is said to be one (no chmod advice, no checks of its inside)', async () => {
    const d = tmpDir('airlock-doctor-file-');
    cleanup.push(d);
    const file = path.join(d, 'not-a-dir');
    fs.writeFileSync(file, 'x', { mode: 0o644 });
    let r = await doctor(file);
    assert.equal(r.code, 1);
    assert.deepEqual(r.failed.map((f) => f.check), ['data-dir']);
    assert.equal(r.failed[0]!.message, `data dir ${file} is a file, not a directory`);
    assert.match(r.failed[0]!.fix!, /point --data-dir \(or AIRLOCK_DATA_DIR\) at a directory/);
    assert.doesNotMatch(r.failed[0]!.fix!, /chmod|chown/);
    r = await doctor(path.join(file, 'data'));
    assert.equal(r.code, 1);
    assert.deepEqual(r.failed.map((f) => f.check), ['data-dir']);
    assert.match(r.failed[0]!.message, /cannot be a directory: a part of that path is a file/);
  });

  test('install.key: readable by others, or missing', async () => {
    const dataDir = await install();
    const key = path.join(dataDir, 'install.key');
    fs.chmodSync(key, 0o644);
    let r = await doctor(dataDir);
    assert.equal(r.code, 1);
    assert.deepEqual(r.failed.map((f) => f.check), ['install-key']);
    assert.match(r.failed[0]!.message, /readable by others \(mode 644/);
    assert.match(r.failed[0]!.fix!, /chmod 600/);
    fs.rmSync(key);
    r = await doctor(dataDir);
    assert.equal(r.code, 1);
    assert.match(r.failed[0]!.message, /install\.key is missing/);
  });

  test('database: a damaged page fails PRAGMA integrity_check', async () => {
    const dataDir = await install();
    const file = path.join(dataDir, 'airlock.db');
    let root: number;
    let pageSize: number;
    {
      const db = new Database(file);
      db.pragma('wal_checkpoint(TRUNCATE)');
      root = db.prepare(`SELECT rootpage FROM sqlite_master WHERE name = 'endpoints'`).pluck().get() as number;
      pageSize = db.pragma('page_size', { simple: true }) as number;
      db.close();
    }
    const fd = fs.openSync(file, 'r+');
    fs.writeSync(fd, Buffer.alloc(64, 0xa5), 0, 64, (root - 1) * pageSize + 100 * Number(root === 1));
    fs.closeSync(fd);
    const r = await doctor(dataDir);
    assert.equal(r.code, 1);
    const f = r.failed.find((x) => x.check === 'database')!;
    assert.match(f.message, /is damaged|cannot be read/);
    assert.match(f.fix!, /restore the latest backup/);
  });

  test('endpoints and MCP servers that do not answer', async () => {
    const dataDir = await install({
      endpoints: [
        { name: 'gpu-1', base_url: up.url, health_check: { enabled: false } },
        { name: 'gpu-down', base_url: `http://127.0.0.1:${deadPort}/v1`, health_check: { enabled: false } },
      ],
      mcp_servers: [
        { name: 'tickets', transport: 'http', url: `http://127.0.0.1:${deadPort}/mcp` },
        { name: 'local', transport: 'stdio', command: '/nonexistent/mcp-server' },
      ],
    });
    const r = await doctor(dataDir);
    assert.equal(r.code, 1);
    assert.deepEqual(r.failed.map((f) => f.check).sort(), ['endpoints', 'mcp-servers', 'mcp-servers']);
    assert.match(r.failed.find((f) => f.check === 'endpoints')!.message, /endpoint "gpu-down" .* is unreachable: ECONNREFUSED/);
    assert.ok(r.findings.some((f) => f.check === 'endpoints' && f.ok && /"gpu-1"/.test(f.message)));
    assert.ok(r.failed.some((f) => /MCP server "tickets" .* is unreachable/.test(f.message)));
    assert.ok(r.failed.some((f) => /MCP server "local": its program \/nonexistent\/mcp-server is not found/.test(f.message)));
  });

  test('disk space below the minimum', async () => {
    const dataDir = await install();
    const r = await doctor(dataDir, {}, ['--min-free-mb', String(Number.MAX_SAFE_INTEGER)]);
    assert.equal(r.code, 1);
    assert.deepEqual(r.failed.map((f) => f.check), ['disk']);
    assert.match(r.failed[0]!.message, /only \d+ MiB free where the data dir is/);
  });

  test('clock: behind what the database recorded', async () => {
    const dataDir = await install();
    const db = new Database(path.join(dataDir, 'airlock.db'));
    db.prepare('UPDATE schema_migrations SET applied_at = ? WHERE version = (SELECT max(version) FROM schema_migrations)').run(Date.now() + 86_400_000);
    db.close();
    const r = await doctor(dataDir);
    assert.equal(r.code, 1);
    assert.deepEqual(r.failed.map((f) => f.check), ['clock']);
    assert.match(r.failed[0]!.message, /is behind what the database recorded/);
    assert.match(r.failed[0]!.fix!, /NTP/);
  });

  test('a data dir that does not exist', async () => {
    const d = tmpDir('airlock-doctor-none-');
    cleanup.push(d);
    const r = await doctor(path.join(d, 'nope'));
    assert.equal(r.code, 1);
    assert.match(r.failed[0]!.message, /does not exist/);
  });
});
