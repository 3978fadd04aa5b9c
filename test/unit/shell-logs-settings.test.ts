// The shell's log file (rotation by size), its settings file (zod-validated JSON), the CSP, the
// status pages and the tray icon — the small pure parts of main/lib.
import fs from 'node:fs';
import path from 'node:path';
import zlib from 'node:zlib';
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { lineSplitter, RotatingLog } from '../../main/lib/logs.js';
import { DEFAULT_SETTINGS, loadSettings, saveSettings, settingsPath } from '../../main/lib/settings.js';
import { ADMIN_CSP, SHELL_PAGE_CSP, withCsp } from '../../main/lib/csp.js';
import { escapeHtml, shellPage, statusLine, statusPage } from '../../main/lib/pages.js';
import { crc32, trayIconPng } from '../../main/lib/icon.js';
import type { GatewayStatus } from '../../main/lib/supervisor.js';
import { tmpDir } from '../helpers/gateway.js';

const tmp = tmpDir('airlock-shell-');
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const freshDir = () => fs.mkdtempSync(path.join(tmp, `d${n++}-`));

describe('shell log file', () => {
  test('lines go to logs/airlock.log with time and source', () => {
    const dir = path.join(freshDir(), 'logs');
    const log = new RotatingLog({ dir, now: () => new Date('2025-01-02T03:04:05.000Z') });
    log.write('shell', 'starting');
    log.write('gateway', 'airlock: ready\n');
    log.close();
    assert.equal(log.path, path.join(dir, 'airlock.log'));
    assert.equal(fs.readFileSync(log.path, 'utf8'), '2025-01-02T03:04:05.000Z [shell] starting\n2025-01-02T03:04:05.000Z [gateway] airlock: ready\n');
    if (process.platform !== 'win32') assert.equal(fs.statSync(log.path).mode & 0o777, 0o600);
  });

  test('rotates by size and keeps the configured number of old files', () => {
    const dir = freshDir();
    const log = new RotatingLog({ dir, maxBytes: 100, keep: 2 });
    const line = (i: number) => `${String(i).padStart(2, '0')} ${'x'.repeat(36)}\n`; // 40 bytes
    for (let i = 0; i < 10; i++) log.writeRaw(line(i));
    log.close();
    // 2 lines (80 bytes) per file: current has 8,9; .1 has 6,7; .2 has 4,5; older ones are gone.
    assert.equal(fs.readFileSync(log.path, 'utf8'), line(8) + line(9));
    assert.equal(fs.readFileSync(`${log.path}.1`, 'utf8'), line(6) + line(7));
    assert.equal(fs.readFileSync(`${log.path}.2`, 'utf8'), line(4) + line(5));
    assert.equal(fs.existsSync(`${log.path}.3`), false);
    assert.deepEqual(log.rotatedFiles(), [`${log.path}.1`, `${log.path}.2`]);
  });

  test('appends to an existing file and counts its size', () => {
    const dir = freshDir();
    fs.writeFileSync(path.join(dir, 'airlock.log'), 'y'.repeat(90));
    const log = new RotatingLog({ dir, maxBytes: 100, keep: 1 });
    log.writeRaw('z'.repeat(20));
    log.close();
    assert.equal(fs.readFileSync(`${log.path}.1`, 'utf8'), 'y'.repeat(90));
    assert.equal(fs.readFileSync(log.path, 'utf8'), 'z'.repeat(20));
  });

  test('a single line larger than maxBytes is still written', () => {
    const dir = freshDir();
    const log = new RotatingLog({ dir, maxBytes: 10, keep: 1 });
    log.writeRaw('a'.repeat(50));
    log.close();
    assert.equal(fs.readFileSync(log.path, 'utf8'), 'a'.repeat(50));
  });

  test('lineSplitter joins chunks into lines', () => {
    const lines: string[] = [];
    const s = lineSplitter((l) => lines.push(l));
    s.push('airlock: da');
    s.push(Buffer.from('ta plane\r\nairlock: re'));
    s.push('ady\npartial');
    assert.deepEqual(lines, ['airlock: data plane', 'airlock: ready']);
    s.flush();
    assert.deepEqual(lines, ['airlock: data plane', 'airlock: ready', 'partial']);
  });
});

describe('shell settings', () => {
  test('no file → defaults (keep serving on, no external hosts)', () => {
    const r = loadSettings(freshDir());
    assert.equal(r.problem, null);
    assert.deepEqual(r.settings, { keepServingWhenWindowClosed: true, externalLinkHosts: [] });
    assert.deepEqual(DEFAULT_SETTINGS, r.settings);
  });

  test('saved settings load back; the file is JSON in the data dir', () => {
    const dir = freshDir();
    saveSettings(dir, { keepServingWhenWindowClosed: false, externalLinkHosts: ['docs.example.org'] });
    assert.deepEqual(JSON.parse(fs.readFileSync(settingsPath(dir), 'utf8')), { keepServingWhenWindowClosed: false, externalLinkHosts: ['docs.example.org'] });
    assert.deepEqual(loadSettings(dir), { settings: { keepServingWhenWindowClosed: false, externalLinkHosts: ['docs.example.org'] }, problem: null });
    assert.deepEqual(
      fs.readdirSync(dir).filter((f) => f.endsWith('.tmp')),
      [],
    );
  });

  test('a partial file gets defaults for the rest', () => {
    const dir = freshDir();
    fs.writeFileSync(settingsPath(dir), '{"keepServingWhenWindowClosed": false}');
    assert.deepEqual(loadSettings(dir).settings, { keepServingWhenWindowClosed: false, externalLinkHosts: [] });
  });

  test('broken or invalid files are reported with the field named, and defaults used', () => {
    const dir = freshDir();
    fs.writeFileSync(settingsPath(dir), '{not json');
    let r = loadSettings(dir);
    assert.deepEqual(r.settings, DEFAULT_SETTINGS);
    assert.match(r.problem ?? '', /not valid JSON/);

    fs.writeFileSync(settingsPath(dir), '{"keepServingWhenWindowClosed": "yes"}');
    r = loadSettings(dir);
    assert.deepEqual(r.settings, DEFAULT_SETTINGS);
    assert.match(r.problem ?? '', /keepServingWhenWindowClosed/);

    fs.writeFileSync(settingsPath(dir), '{"externalLinkHosts": ["javascript:alert(1)"]}');
    assert.match(loadSettings(dir).problem ?? '', /externalLinkHosts\.0/);

    fs.writeFileSync(settingsPath(dir), '{"surprise": 1}');
    assert.match(loadSettings(dir).problem ?? '', /surprise/);
    // The broken file is left as it was.
    assert.equal(fs.readFileSync(settingsPath(dir), 'utf8'), '{"surprise": 1}');
  });

  test('saving invalid settings throws and writes nothing', () => {
    const dir = freshDir();
    assert.throws(
      () => saveSettings(dir, { keepServingWhenWindowClosed: true, externalLinkHosts: ['http://x/'] }),
      /externalLinkHosts\.0/,
    );
    assert.equal(fs.existsSync(settingsPath(dir)), false);
  });
});

describe('shell CSP and pages', () => {
  test('the admin CSP is strict: self only, no inline or eval script, no frames or plugins', () => {
    const d = new Map(ADMIN_CSP.split('; ').map((x) => [x.split(' ')[0]!, x.split(' ').slice(1)]));
    assert.deepEqual(d.get('default-src'), ["'none'"]);
    assert.deepEqual(d.get('script-src'), ["'self'"]);
    assert.deepEqual(d.get('connect-src'), ["'self'"]);
    assert.deepEqual(d.get('object-src'), ["'none'"]);
    assert.deepEqual(d.get('frame-ancestors'), ["'none'"]);
    assert.deepEqual(d.get('base-uri'), ["'none'"]);
    assert.ok(!ADMIN_CSP.includes('unsafe-eval'));
    // Inline style attributes (charts) are allowed, as the admin plane's own CSP allows them.
    assert.deepEqual(d.get('style-src'), ["'self'", "'unsafe-inline'"]);
    assert.ok(!SHELL_PAGE_CSP.includes('script-src'));
    assert.match(SHELL_PAGE_CSP, /default-src 'none'/);
  });

  test('withCsp adds the policy and keeps the server’s own', () => {
    assert.deepEqual(withCsp({ 'Content-Type': ['text/html'] }), { 'Content-Type': ['text/html'], 'Content-Security-Policy': [ADMIN_CSP] });
    assert.deepEqual(withCsp({ 'content-security-policy': ["default-src 'self'"] }), { 'content-security-policy': ["default-src 'self'", ADMIN_CSP] });
    assert.deepEqual(withCsp(undefined), { 'Content-Security-Policy': [ADMIN_CSP] });
  });

  const status = (over: Partial<GatewayStatus>): GatewayStatus => ({
    state: 'starting',
    data: null,
    admin: null,
    version: null,
    error: null,
    lastExitCode: null,
    lastErrorLine: null,
    restarts: 0,
    restartInMs: null,
    logPath: '/home/a/.config/airlock/logs/airlock.log',
    ...over,
  });

  test('the error page names the log path and escapes everything', () => {
    const html = statusPage(status({ state: 'failed', error: 'did not become ready <script>alert(1)</script>', logPath: '/tmp/a&b/airlock.log' }));
    assert.ok(html.includes('/tmp/a&amp;b/airlock.log'));
    assert.ok(html.includes('&lt;script&gt;alert(1)&lt;/script&gt;'));
    assert.ok(!/<script/i.test(html));
    assert.ok(html.includes('role="alert"'));
    assert.ok(html.includes(escapeHtml(SHELL_PAGE_CSP)));
    assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
    assert.ok(!shellPage({ title: 't', message: 'm', tone: 'info' }).includes('Log file'));
  });

  test('status lines for the tray', () => {
    assert.equal(statusLine(status({ state: 'running', data: 'http://127.0.0.1:4000' })), 'Airlock: serving on http://127.0.0.1:4000');
    assert.equal(statusLine(status({ state: 'restarting', restartInMs: 4000, lastExitCode: 1 })), 'Airlock: restarting in 4 s (exit code 1)');
    assert.match(statusLine(status({ state: 'failed' })), /failed/);
  });
});

describe('shell tray icon', () => {
  test('a valid RGBA PNG whose colour follows the state', () => {
    const png = trayIconPng('running', 16);
    assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    // Walk the chunks and check every CRC.
    let off = 8;
    const chunks: Array<{ type: string; data: Buffer }> = [];
    while (off < png.length) {
      const len = png.readUInt32BE(off);
      const type = png.subarray(off + 4, off + 8).toString('ascii');
      const data = png.subarray(off + 8, off + 8 + len);
      assert.equal(png.readUInt32BE(off + 8 + len), crc32(png.subarray(off + 4, off + 8 + len)), `CRC of ${type}`);
      chunks.push({ type, data });
      off += 12 + len;
    }
    assert.deepEqual(chunks.map((c) => c.type), ['IHDR', 'IDAT', 'IEND']);
    const ihdr = chunks[0]!.data;
    assert.equal(ihdr.readUInt32BE(0), 16);
    assert.equal(ihdr.readUInt32BE(4), 16);
    assert.equal(ihdr[9], 6);
    const raw = zlib.inflateSync(chunks[1]!.data);
    assert.equal(raw.length, 16 * (1 + 16 * 4));
    const centre = 8 * (1 + 64) + 1 + 8 * 4;
    assert.deepEqual([...raw.subarray(centre, centre + 4)], [22, 163, 74, 255]);
    assert.equal(raw[1 + 3], 0, 'the corner is transparent');
    assert.notDeepEqual(trayIconPng('failed', 16), png);
    assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  });
});
