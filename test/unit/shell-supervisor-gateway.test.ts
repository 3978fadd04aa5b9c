// The supervisor against the real gateway (bin/airlock.js serve), forked with Node's
// child_process.fork the way Electron's utilityProcess.fork runs it in the shell: the ready
// message and the printed lines must be what the supervisor understands; a killed gateway is
// restarted; stop() stops it for good, gracefully: over the IPC channel (Electron: the parent
// port) with the stop message, an in-flight stream finishing and its ledger row written. Real processes, real ports (port 0), real clock; waits are
// event-driven, with generous limits only so that a hang fails instead of blocking.
import { fork, type ChildProcess } from 'node:child_process';
import { EventEmitter } from 'node:events';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { GatewaySupervisor, type GatewayChild, type GatewayStatus, type GatewayState } from '../../main/lib/supervisor.js';
import { lineSplitter } from '../../main/lib/logs.js';
import { basicConfig, startGateway, TEST_KEY, writeConfig, tmpDir } from '../helpers/gateway.js';
import { startUpstream } from '../helpers/upstream.js';

const BIN = fileURLToPath(new URL('../../../bin/airlock.js', import.meta.url));
const dataDir = tmpDir('airlock-shell-gw-');
const children: ChildProcess[] = [];
let supervisor: GatewaySupervisor | null = null;
let closed = false;
// Whatever happened in the test: no restart after this point, and no gateway left behind.
after(async () => {
  closed = true;
  await supervisor?.stop();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  fs.rmSync(dataDir, { recursive: true, force: true });
});

/**
 * Node's ChildProcess as the supervisor's GatewayChild (exit code 128+n for a signal, like a
 * shell). postMessage is the IPC channel, as Electron's parent port. kill() is SIGKILL: Electron's
 * UtilityProcess.kill() is no graceful stop (SIGKILL ~2 s after SIGTERM on Linux/macOS,
 * TerminateProcess on Windows), so a test passing through kill() could not see a drain.
 */
function adapt(cp: ChildProcess, onLine: (l: string) => void, kills: { count: number } = { count: 0 }): GatewayChild {
  const ee = new EventEmitter();
  const out = lineSplitter(onLine);
  cp.stdout?.on('data', (c: Buffer) => out.push(c));
  cp.stderr?.on('data', () => {});
  cp.on('message', (m) => ee.emit('message', m));
  cp.on('exit', (code, signal) => {
    out.flush();
    ee.emit('exit', code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
  });
  return {
    on: (event: string, l: (...a: unknown[]) => void) => ee.on(event, l),
    postMessage: (m: unknown) => {
      if (!cp.connected) throw new Error('the IPC channel is closed');
      cp.send(m as object);
    },
    kill: () => {
      kills.count++;
      return cp.kill('SIGKILL');
    },
  } as GatewayChild;
}

function waitForState(sup: GatewaySupervisor, state: GatewayState, limitMs = 60_000): Promise<GatewayStatus> {
  if (sup.status.state === state) return Promise.resolve(sup.status);
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`no "${state}" within ${limitMs} ms; status ${JSON.stringify(sup.status)}`)), limitMs);
    const on = (s: GatewayStatus) => {
      if (s.state !== state) return;
      clearTimeout(t);
      sup.off('status', on);
      resolve(s);
    };
    sup.on('status', on);
  });
}

/** The version comes only with the ready message, which may arrive just after the printed "ready". */
async function waitForVersion(sup: GatewaySupervisor): Promise<void> {
  if (sup.status.version) return;
  await new Promise<void>((resolve) => {
    const on = (s: GatewayStatus) => {
      if (!s.version) return;
      sup.off('status', on);
      resolve();
    };
    sup.on('status', on);
  });
}

describe('shell supervisor with the real gateway', () => {
  test('ready → running; killed → restarted; stop() → stopped for good', { timeout: 120_000 }, async () => {
    const lines: string[] = [];
    let current: ChildProcess | null = null;
    const sup = new GatewaySupervisor({
      logPath: path.join(dataDir, 'logs', 'airlock.log'),
      readyTimeoutMs: 60_000,
      initialBackoffMs: 10,
      fork: () => {
        if (closed) throw new Error('the test is over');
        const cp = fork(BIN, ['serve', '--data-dir', dataDir, '--port', '0', '--admin-port', '0'], {
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          env: { ...process.env, AIRLOCK_DATA_DIR: dataDir },
        });
        children.push(cp);
        current = cp;
        return adapt(cp, (l) => {
          lines.push(l);
          sup.handleOutputLine(l);
        });
      },
    });
    supervisor = sup;
    const states: GatewayState[] = [];
    sup.on('status', (s: GatewayStatus) => states.push(s.state));

    sup.start();
    const running = await waitForState(sup, 'running');
    await waitForVersion(sup);
    assert.match(running.data ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.match(running.admin ?? '', /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.equal(sup.status.version, JSON.parse(fs.readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).version);
    assert.equal(sup.adminOrigin, new URL(running.admin!).origin);
    // The printed lines name the same URLs (the fallback path agrees with the message).
    assert.ok(lines.some((l) => l.startsWith(`airlock: data plane listening on ${running.data}`)), lines.join('\n'));
    assert.ok(lines.includes(`airlock: admin plane listening on ${running.admin}`), lines.join('\n'));
    assert.ok(lines.includes('airlock: ready'));
    // A fresh data dir has no owner: the gateway hands out a setup token, the one it printed.
    const token = sup.getSetupToken();
    assert.ok(token, 'a setup token on first run');
    assert.ok(lines.some((l) => l.startsWith('airlock: first-run setup: open ') && l.endsWith(`?token=${token}`)), lines.join('\n'));
    const health = await fetch(`${running.data}/healthz`);
    assert.equal(health.status, 200);
    await health.body?.cancel();

    // A crash (SIGKILL: no chance to clean up) → restarting → running again on new ports.
    const first = current!;
    first.kill('SIGKILL');
    const restarting = await waitForState(sup, 'restarting');
    assert.equal(restarting.lastExitCode, 128 + os.constants.signals.SIGKILL);
    const again = await waitForState(sup, 'running');
    await waitForVersion(sup);
    const token2 = sup.getSetupToken();
    assert.ok(token2 && token2 !== token, 'the restarted gateway has its own setup token');
    assert.notEqual(current, first);
    assert.equal(again.restarts, 1);
    const health2 = await fetch(`${again.data}/healthz`);
    assert.equal(health2.status, 200);
    await health2.body?.cancel();

    // stop(): the stop message, graceful exit, no restart.
    const second = current!;
    await sup.stop();
    assert.equal(sup.status.state, 'stopped');
    assert.equal(second.exitCode, 0, 'the gateway exits cleanly on the stop message');
    assert.equal(second.signalCode, null, 'it exited by itself, it was not killed');
    assert.ok(lines.includes('airlock: stopped'), lines.join('\n'));
    // (A status event may repeat a state: the version arriving after the printed "ready".)
    const transitions = states.filter((s, i) => s !== states[i - 1]);
    assert.deepEqual(transitions, ['starting', 'running', 'restarting', 'starting', 'running', 'stopping', 'stopped']);
    assert.equal(children.length, 2);
  });
});

describe('graceful stop over the IPC channel with the real gateway', () => {
  test('stop message mid-stream: the stream completes, exit 0 without a kill, the ledger has the row after a restart', { timeout: 120_000 }, async () => {
    const up = await startUpstream();
    const dir = tmpDir('airlock-shell-stop-');
    let restarted: Awaited<ReturnType<typeof startGateway>> | undefined;
    let cp: ChildProcess | null = null;
    const kills = { count: 0 };
    const lines: string[] = [];
    try {
      const words = Array.from({ length: 30 }, (_, i) => `word${i}`).join(' ');
      up.setBehavior({ kind: 'ok', content: words, chunkDelayMs: 50 });
      const config = writeConfig(dir, { ...basicConfig(up.url), settings: { shutdown_grace_ms: 20_000 } });
      const dataDir = path.join(dir, 'data');
      const sup = new GatewaySupervisor({
        logPath: path.join(dataDir, 'logs', 'airlock.log'),
        readyTimeoutMs: 60_000,
        stopMarginMs: 5_000,
        fork: () => {
          if (closed) throw new Error('the test is over');
          cp = fork(BIN, ['serve', '--data-dir', dataDir, '--port', '0', '--admin-port', '0', '--config', config], {
            stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
            env: { ...process.env, AIRLOCK_DATA_DIR: dataDir },
          });
          children.push(cp);
          return adapt(cp, (l) => {
            lines.push(l);
            sup.handleOutputLine(l);
          }, kills);
        },
      });
      sup.start();
      const running = await waitForState(sup, 'running');
      await waitForVersion(sup);
      assert.equal(sup.stopWaitMs, 25_000, 'the grace comes from the ready message (20 s) plus the margin');

      const res = await fetch(`${running.data}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'chat', stream: true, messages: [{ role: 'user', content: 'tell me a long story' }] }),
      });
      assert.equal(res.status, 200);
      const requestId = res.headers.get('x-airlock-request-id');
      assert.ok(requestId);
      const reader = res.body!.getReader();
      const dec = new TextDecoder();
      let text = '';
      while (!text.includes('"content":"word0')) {
        const { value, done } = await reader.read();
        assert.ok(!done, `the stream ended before its first word: ${text}`);
        text += dec.decode(value, { stream: true });
      }

      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        cp!.once('exit', (code, signal) => resolve({ code, signal })),
      );
      const stopped = sup.stop();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += dec.decode(value, { stream: true });
      }
      await stopped;
      assert.equal(sup.status.state, 'stopped');
      const content = text
        .split('\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => (JSON.parse(l.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content ?? '')
        .join('');
      assert.equal(content, words, 'the client got all of the content');
      assert.ok(text.includes('data: [DONE]'), 'and the final [DONE]');
      assert.deepEqual(await exited, { code: 0, signal: null }, 'the gateway exited by itself, with 0');
      assert.equal(kills.count, 0, 'kill() was never needed');
      assert.ok(lines.some((l) => l.startsWith('airlock: stop message: stopping')), lines.join('\n'));
      assert.ok(lines.includes('airlock: stopped'), lines.join('\n'));

      up.setBehavior({ kind: 'ok' });
      restarted = await startGateway({ dataDir });
      const rows = await restarted.admin('GET', '/usage/requests?limit=100');
      assert.equal(rows.status, 200);
      const row = (rows.body as { data: { request_id: string; status: number; stream: boolean; completion_tokens: number }[] }).data.find(
        (r) => r.request_id === requestId,
      );
      assert.ok(row, `request ${requestId} is in the ledger after the restart`);
      assert.equal(row.status, 200);
      assert.equal(row.stream, true);
      assert.equal(row.completion_tokens, 30);
    } finally {
      const c = cp as ChildProcess | null;
      if (c && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      await restarted?.stop();
      await up.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a stop message during start-up: the gateway never announces ready and exits 0', { timeout: 60_000 }, async () => {
    const dir = tmpDir('airlock-shell-stop-early-');
    try {
      const cp = fork(BIN, ['serve', '--data-dir', dir, '--port', '0', '--admin-port', '0'], {
        stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
        env: { ...process.env, AIRLOCK_DATA_DIR: dir },
      });
      children.push(cp);
      let out = '';
      cp.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      const messages: unknown[] = [];
      cp.on('message', (m) => messages.push(m));
      cp.send({ type: 'stop' }); // at once: long before the planes listen
      const [code, signal] = await new Promise<[number | null, string | null]>((resolve) => cp.once('exit', (c, s) => resolve([c, s])));
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, out);
      assert.ok(!messages.some((m) => (m as { type?: string }).type === 'ready'), 'no ready message');
      assert.doesNotMatch(out, /airlock: ready/);
      assert.match(out, /stop message: stopping/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('"Restart now" under the shell supervisor with the real gateway', () => {
  test('POST /restart (owner): the gateway answers, exits 75, and the supervisor starts it again at once; no crash counted, the data kept', { timeout: 120_000 }, async () => {
    const dir = tmpDir('airlock-shell-restart-');
    const token = 'shell-restart-owner-token-0123456789';
    const forked: ChildProcess[] = [];
    const sup = new GatewaySupervisor({
      logPath: path.join(dir, 'logs', 'airlock.log'),
      readyTimeoutMs: 60_000,
      // a crash would wait this long: the restart must not
      initialBackoffMs: 600_000,
      fork: () => {
        if (closed) throw new Error('the test is over');
        const cp = fork(BIN, ['serve', '--data-dir', dir, '--port', '0', '--admin-port', '0'], {
          stdio: ['ignore', 'pipe', 'pipe', 'ipc'],
          env: { ...process.env, AIRLOCK_ADMIN_TOKEN: token, AIRLOCK_SUPERVISOR: '' },
        });
        children.push(cp);
        forked.push(cp);
        return adapt(cp, (l) => sup.handleOutputLine(l));
      },
    });
    const states: GatewayState[] = [];
    sup.on('status', (s: GatewayStatus) => states.push(s.state));
    try {
      sup.start();
      const first = await waitForState(sup, 'running');
      const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
      const team = await fetch(`${first.admin}/admin/api/v1/teams`, { method: 'POST', headers: auth, body: JSON.stringify({ name: 'survives-the-restart' }) });
      assert.equal(team.status, 201, await team.text());
      const info = await fetch(`${first.admin}/admin/api/v1/restart`, { headers: auth });
      assert.deepEqual(await info.json(), { supported: true, supervisor: 'desktop', message: null });

      const res = await fetch(`${first.admin}/admin/api/v1/restart`, { method: 'POST', headers: auth, body: '{}' });
      assert.equal(res.status, 202);
      assert.equal(((await res.json()) as { exit_code: number }).exit_code, 75);
      await waitForState(sup, 'restarting');
      const second = await waitForState(sup, 'running');
      assert.equal(forked.length, 2);
      assert.equal(forked[0]!.exitCode, 75, 'the first gateway exited by itself with the restart code');
      assert.equal(forked[0]!.signalCode, null);
      assert.equal(sup.status.restarts, 0, 'not counted as a crash');
      assert.equal(sup.status.error, null);
      const teams = await fetch(`${second.admin}/admin/api/v1/teams`, { headers: auth });
      assert.match(await teams.text(), /survives-the-restart/);
      const transitions = states.filter((s, i) => s !== states[i - 1]);
      assert.deepEqual(transitions, ['starting', 'running', 'restarting', 'starting', 'running']);
    } finally {
      await sup.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
