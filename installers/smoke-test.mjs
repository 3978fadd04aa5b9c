#!/usr/bin/env node
// Smoke test of a packaged desktop app, run on the builder machine (it needs Electron's binary,
// which the development machines do not have). It proves what only the packaged app can:
//   1. the app starts its gateway in Electron's utility process and the gateway becomes ready —
//      which means better-sqlite3's native module loaded under Electron's ABI (the gateway opens
//      its database before it listens) from outside app.asar;
//   2. both planes answer;
//   3. the window loads the admin app, after the admin origin proved it is this app's gateway;
//   4. quitting stops the gateway gracefully (the stop message; exit code 0; nothing killed).
//
// Usage (after electron-builder; Linux needs a display: run it under xvfb-run on a server):
//   node installers/smoke-test.mjs release/<version>/linux-unpacked/airlock-desktop
//   node installers/smoke-test.mjs release/<version>/mac-arm64/Airlock.app/Contents/MacOS/Airlock
//   node installers\smoke-test.mjs release\<version>\win-unpacked\Airlock.exe
// It uses a fresh temporary data dir (kept and printed on failure) and exits 0 on success.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const exe = process.argv[2];
if (!exe || !fs.existsSync(exe)) {
  process.stderr.write('usage: node installers/smoke-test.mjs <path to the packaged app executable>\n');
  process.exit(2);
}
if (process.platform === 'linux' && !process.env.DISPLAY && !process.env.WAYLAND_DISPLAY) {
  process.stderr.write('smoke test: no display; run it under xvfb-run (apt-get install xvfb)\n');
  process.exit(2);
}

const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'airlock-smoke-'));
// Closing the window quits the app (Windows is asked to close it; see quit() below).
fs.writeFileSync(path.join(dataDir, 'shell-settings.json'), JSON.stringify({ keepServingWhenWindowClosed: false }));
const logFile = path.join(dataDir, 'logs', 'airlock.log');
const readLog = () => {
  try {
    return fs.readFileSync(logFile, 'utf8');
  } catch {
    return '';
  }
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const step = (s) => process.stdout.write(`smoke test: ${s}\n`);

function fail(message) {
  process.stderr.write(`smoke test FAILED: ${message}\nthe data dir is kept: ${dataDir}\n--- log ---\n${readLog()}\n`);
  if (app.exitCode === null && app.signalCode === null) app.kill('SIGKILL');
  process.exit(1);
}

async function waitForLog(re, what, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const m = re.exec(readLog());
    if (m) return m;
    if (exited) fail(`the app exited (${exited}) before ${what}`);
    if (Date.now() > deadline) fail(`no ${what} within ${timeoutMs / 1000} s`);
    await sleep(250);
  }
}

async function get(url) {
  const res = await fetch(url);
  await res.arrayBuffer();
  return res.status;
}

step(`starting ${exe} with the data dir ${dataDir}`);
let exited = null;
const app = spawn(exe, [], { env: { ...process.env, AIRLOCK_DATA_DIR: dataDir }, stdio: 'ignore' });
const exit = new Promise((resolve) =>
  app.on('exit', (code, signal) => {
    exited = signal ? `signal ${signal}` : `code ${code}`;
    resolve({ code, signal });
  }),
);
app.on('error', (e) => fail(`could not start the app: ${e.message}`));

const ready = await waitForLog(/gateway ready: data plane (\S+), admin plane (\S+)/, 'ready gateway', 120_000);
const [, data, admin] = ready;
step(`gateway ready (better-sqlite3 loaded in the utility process): data ${data}, admin ${admin}`);
if ((await get(`${data}/healthz`)) !== 200) fail('the data plane /healthz is not 200');
if ((await get(`${admin}/admin/api/v1/auth/state`)) !== 200) fail('the admin plane auth/state is not 200');
step('both planes answer');
await waitForLog(/the admin origin proved it is the gateway this shell started/, 'proof from the admin origin', 60_000);
await waitForLog(/window: the admin app is loaded/, 'admin app in the window', 60_000);
if (/refused a response from the admin origin/.test(readLog())) fail('a response from the admin origin was refused');
step('the window shows the admin app (origin proven)');

// Quit as a user would: SIGTERM makes Electron quit normally on Linux/macOS; on Windows, taskkill
// without /F asks the window to close, and the app quits with it (setting above).
step('quitting');
if (process.platform === 'win32') execFile('taskkill', ['/PID', String(app.pid)], () => {});
else app.kill('SIGTERM');
const timer = setTimeout(() => fail('the app did not exit within 90 s of being asked to quit'), 90_000);
const result = await exit;
clearTimeout(timer);
const log = readLog();
if (!/the gateway stopped \(exit code 0\)/.test(log)) fail('the gateway did not stop with exit code 0');
if (/killing it/.test(log)) fail('the gateway had to be killed');
if (!/\[gateway\] airlock: stopped/.test(log)) fail('the gateway did not report "stopped"');
step(`the app exited (${result.signal ? `signal ${result.signal}` : `code ${result.code}`}); the gateway stopped gracefully`);
fs.rmSync(dataDir, { recursive: true, force: true });
step('PASS');
