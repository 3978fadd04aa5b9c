// The shell's IPC checks: only our window's main frame on the admin origin may call, only on
// allowlisted channels, only with arguments that pass the zod schemas.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CHANNELS, IpcRejected, IpcRouter, isAllowedChannel, senderProblem, type IpcHandlers, type IpcSenderEvent, type TrustContext } from '../../main/lib/ipc.js';
import type { GatewayStatus } from '../../main/lib/supervisor.js';

const ADMIN = 'http://127.0.0.1:4001';
const WINDOW_ID = 7;
const trust: TrustContext = { adminOrigin: ADMIN, windowWebContentsId: WINDOW_ID };

function ev(url: string, opts: { senderId?: number; subframe?: boolean; noFrame?: boolean } = {}): IpcSenderEvent {
  return {
    sender: { id: opts.senderId ?? WINDOW_ID },
    senderFrame: opts.noFrame ? null : { url, parent: opts.subframe ? { url: `${ADMIN}/` } : null },
  };
}

const STATUS: GatewayStatus = {
  state: 'running',
  data: 'http://127.0.0.1:4000',
  admin: ADMIN,
  version: '0.1.0',
  error: null,
  lastExitCode: null,
  lastErrorLine: null,
  restarts: 0,
  restartInMs: null,
  logPath: '/d/logs/airlock.log',
};

function router(ctx: TrustContext = trust) {
  const calls: Array<[string, unknown[]]> = [];
  const logs: string[] = [];
  const handlers: IpcHandlers = {
    pickExportFolder: (...a) => (calls.push(['pickExportFolder', a]), '/media/usb/export'),
    listRemovableDrives: () => (calls.push(['listRemovableDrives', []]), []),
    getSetupToken: () => (calls.push(['getSetupToken', []]), 'setup-token'),
    getAppVersion: () => (calls.push(['getAppVersion', []]), '0.1.0'),
    getGatewayStatus: () => (calls.push(['getGatewayStatus', []]), STATUS),
  };
  return { r: new IpcRouter(handlers, () => ctx, (l) => logs.push(l)), calls, logs };
}

describe('shell IPC sender validation', () => {
  test('the main frame of our window on the admin origin is trusted', () => {
    assert.equal(senderProblem(ev(`${ADMIN}/`), trust), null);
    assert.equal(senderProblem(ev(`${ADMIN}/setup?x=1#y`), trust), null);
  });

  test('another origin is refused: other port, other host, other scheme, look-alikes', () => {
    for (const url of [
      'http://127.0.0.1:4000/',
      'http://localhost:4001/',
      'https://127.0.0.1:4001/',
      'http://127.0.0.1:40011/',
      'http://127.0.0.1.evil.example:4001/',
      'http://evil.example/?http://127.0.0.1:4001',
      'data:text/html,<script>1</script>',
      'file:///etc/passwd',
      'about:blank',
      'devtools://devtools/bundled/inspector.html',
      'not a url',
    ]) {
      assert.ok(senderProblem(ev(url), trust), `refused: ${url}`);
    }
  });

  test('a subframe is refused even on the admin origin', () => {
    assert.match(senderProblem(ev(`${ADMIN}/`, { subframe: true }), trust) ?? '', /subframe/);
  });

  test('another webContents is refused even on the admin origin', () => {
    assert.match(senderProblem(ev(`${ADMIN}/`, { senderId: 8 }), trust) ?? '', /not the admin window/);
  });

  test('a vanished frame is refused', () => {
    assert.match(senderProblem(ev('', { noFrame: true }), trust) ?? '', /frame is gone/);
  });

  test('nothing is trusted without a window or while the gateway is not running', () => {
    assert.match(senderProblem(ev(`${ADMIN}/`), { adminOrigin: ADMIN, windowWebContentsId: null }) ?? '', /no admin window/);
    assert.match(senderProblem(ev(`${ADMIN}/`), { adminOrigin: null, windowWebContentsId: WINDOW_ID }) ?? '', /not running/);
  });
});

describe('shell IPC router', () => {
  test('each allowlisted channel reaches its handler', async () => {
    const { r, calls } = router();
    assert.equal(await r.invoke(CHANNELS.getAppVersion, ev(`${ADMIN}/`), []), '0.1.0');
    assert.equal(await r.invoke(CHANNELS.getSetupToken, ev(`${ADMIN}/`), []), 'setup-token');
    assert.deepEqual(await r.invoke(CHANNELS.listRemovableDrives, ev(`${ADMIN}/`), []), []);
    assert.deepEqual(await r.invoke(CHANNELS.getGatewayStatus, ev(`${ADMIN}/`), []), STATUS);
    assert.equal(await r.invoke(CHANNELS.pickExportFolder, ev(`${ADMIN}/`), []), '/media/usb/export');
    assert.equal(
      await r.invoke(CHANNELS.pickExportFolder, ev(`${ADMIN}/`), [{ defaultPath: '/media/usb', title: 'Export the audit bundle' }]),
      '/media/usb/export',
    );
    assert.deepEqual(
      calls.map((c) => c[0]),
      ['getAppVersion', 'getSetupToken', 'listRemovableDrives', 'getGatewayStatus', 'pickExportFolder', 'pickExportFolder'],
    );
    assert.deepEqual(calls[5]![1], [{ defaultPath: '/media/usb', title: 'Export the audit bundle' }]);
  });

  test('an unknown channel is refused before anything else', async () => {
    const { r, calls, logs } = router();
    for (const ch of ['airlock:exec', 'airlock:get-app-version ', 'AIRLOCK:GET-APP-VERSION', 'getAppVersion', '']) {
      await assert.rejects(r.invoke(ch, ev(`${ADMIN}/`), []), (e: Error) => e instanceof IpcRejected && /unknown channel/.test(e.message));
    }
    assert.equal(calls.length, 0);
    assert.equal(logs.length, 5);
    assert.equal(isAllowedChannel('airlock:get-app-version'), true);
    assert.equal(isAllowedChannel('airlock:exec'), false);
    assert.equal(isAllowedChannel(42), false);
  });

  test('a sender from another origin or frame is refused and the handler is not called', async () => {
    const { r, calls, logs } = router();
    await assert.rejects(r.invoke(CHANNELS.getSetupToken, ev('http://evil.example/'), []), /sender refused: frame origin http:\/\/evil\.example/);
    await assert.rejects(r.invoke(CHANNELS.getSetupToken, ev(`${ADMIN}/`, { subframe: true }), []), /sender refused: .*subframe/);
    await assert.rejects(r.invoke(CHANNELS.getSetupToken, ev(`${ADMIN}/`, { senderId: 99 }), []), /sender refused: webContents 99/);
    assert.equal(calls.length, 0);
    assert.equal(logs.length, 3);
  });

  test('bad arguments are refused with the problem named', async () => {
    const { r, calls } = router();
    const bad: Array<[string, unknown[], RegExp]> = [
      [CHANNELS.getAppVersion, ['extra'], /bad arguments/],
      [CHANNELS.listRemovableDrives, [{}], /bad arguments/],
      [CHANNELS.pickExportFolder, ['/media/usb'], /bad arguments/],
      [CHANNELS.pickExportFolder, [{ defaultPath: 'relative/path' }], /absolute path/],
      [CHANNELS.pickExportFolder, [{ defaultPath: '/media/usb\0/x' }], /NUL/],
      [CHANNELS.pickExportFolder, [{ defaultPath: '/' + 'a'.repeat(5000) }], /bad arguments/],
      [CHANNELS.pickExportFolder, [{ title: 42 }], /bad arguments/],
      [CHANNELS.pickExportFolder, [{ title: 'ok', unexpected: true }], /bad arguments/],
      [CHANNELS.pickExportFolder, [{}, {}], /bad arguments/],
      [CHANNELS.pickExportFolder, [null], /bad arguments/],
    ];
    for (const [ch, args, re] of bad) {
      await assert.rejects(r.invoke(ch, ev(`${ADMIN}/`), args), (e: Error) => e instanceof IpcRejected && re.test(e.message), `${ch} ${JSON.stringify(args)}`);
    }
    assert.equal(calls.length, 0);
  });

  test('Windows paths are accepted as absolute', async () => {
    const { r } = router();
    assert.equal(await r.invoke(CHANNELS.pickExportFolder, ev(`${ADMIN}/`), [{ defaultPath: 'E:\\' }]), '/media/usb/export');
  });

  test('the trust context is read at call time (window and origin may change)', async () => {
    const ctx: TrustContext = { adminOrigin: null, windowWebContentsId: WINDOW_ID };
    const { r } = router(ctx);
    await assert.rejects(r.invoke(CHANNELS.getAppVersion, ev(`${ADMIN}/`), []), /not running/);
    ctx.adminOrigin = ADMIN;
    assert.equal(await r.invoke(CHANNELS.getAppVersion, ev(`${ADMIN}/`), []), '0.1.0');
  });
});
