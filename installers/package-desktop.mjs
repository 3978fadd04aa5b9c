#!/usr/bin/env node
// npm run package:desktop [-- --linux|--win|--mac] [-- --check]
// Checks what building the desktop installers needs, says what is missing and how to get it, and
// then runs electron-builder with installers/electron-builder.yml. With --check it only checks
// (exit 1 when something is missing). Electron's binary cannot be downloaded on the air-gapped
// development network: the builder machine (internet access) fetches it; see installers/README.md.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ELECTRON_BUILDER = 'electron-builder@26.17.0';
const args = process.argv.slice(2);
const checkOnly = args.includes('--check');
const platform = args.find((a) => ['--linux', '--win', '--mac'].includes(a)) ?? { linux: '--linux', win32: '--win', darwin: '--mac' }[process.platform];

const missing = [];
const [major, minor] = process.versions.node.split('.').map(Number);
if (major !== 20 || minor < 18) missing.push(`Node 20 (>= 20.18.1) runs this build, not ${process.version}`);
for (const [file, fix] of [
  ['dist/gateway/cli.js', 'npm run build'],
  ['dist/main/main.js', 'npm run build (compiles the Electron shell)'],
  ['renderer/dist/index.html', 'npm run build (builds the admin app)'],
  ['installers/electron-builder.yml', 'a checkout of the repository'],
]) if (!fs.existsSync(path.join(ROOT, file))) missing.push(`${file} is missing: ${fix}`);
// Electron's binary: node_modules/electron/path.txt names it once node_modules/electron/install.js ran
const electronDir = path.join(ROOT, 'node_modules', 'electron');
let electronBin;
try {
  electronBin = path.join(electronDir, 'dist', fs.readFileSync(path.join(electronDir, 'path.txt'), 'utf8').trim());
} catch {
  /* not fetched */
}
if (!electronBin || !fs.existsSync(electronBin))
  missing.push("Electron's binary is not installed (npm ci skips it here: allowScripts.electron is false): on the builder, run `node node_modules/electron/install.js` (needs internet)");
if (platform === '--linux')
  for (const tool of ['fakeroot', 'dpkg'])
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) missing.push(`${tool} is not installed (the deb needs it): apt install ${tool}`);
if (!platform) missing.push(`no desktop target for ${process.platform}: pass --linux, --win or --mac on the matching OS`);

if (missing.length) {
  process.stderr.write(`package:desktop: cannot build the desktop installers yet:\n${missing.map((m) => `  - ${m}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`package:desktop: ready (Electron at ${electronBin}; target ${platform})\n`);
if (checkOnly) process.exit(0);
const r = spawnSync('npx', ['--yes', ELECTRON_BUILDER, '--config', 'installers/electron-builder.yml', platform], { cwd: ROOT, stdio: 'inherit' });
process.exit(r.status ?? 1);
