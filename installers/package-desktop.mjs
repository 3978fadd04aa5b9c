#!/usr/bin/env node
// npm run package:desktop [-- --linux|--win|--mac] [-- --check] [-- --config FILE]
// Checks the builder configuration (targets, the AppImage's AppArmor profile, entitlements) and
// what building the desktop installers needs, says what is wrong or missing and how to fix it, and
// then runs electron-builder with installers/electron-builder.yml. With --check it only checks
// (exit 1 when something is wrong or missing; CI runs it). Electron's binary cannot be downloaded on the air-gapped
// development network: the builder machine (internet access) fetches it; see installers/README.md.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const ELECTRON_BUILDER = 'electron-builder@26.17.0';
const args = process.argv.slice(2);
const checkOnly = args.includes('--check');
const configArg = args.indexOf('--config');
const CONFIG = configArg >= 0 ? path.resolve(args[configArg + 1] ?? '') : path.join(ROOT, 'installers', 'electron-builder.yml');
const APPARMOR_PROFILE = path.join(ROOT, 'installers', 'apparmor', 'airlock-appimage');
const platform = args.find((a) => ['--linux', '--win', '--mac'].includes(a)) ?? { linux: '--linux', win32: '--win', darwin: '--mac' }[process.platform];

const missing = [];

/** What is wrong with the builder configuration, without building (electron-builder reads the same file). */
function configProblems() {
  const problems = [];
  const rel = path.relative(ROOT, CONFIG);
  let c;
  try {
    c = YAML.parse(fs.readFileSync(CONFIG, 'utf8'));
  } catch (e) {
    return [`${rel} cannot be read: ${e.message}`];
  }
  const targets = (list) => (Array.isArray(list) ? list.map((t) => (typeof t === 'string' ? t : t?.target)) : []);
  const known = { linux: ['deb', 'AppImage'], win: ['nsis'], mac: ['dmg'] };
  for (const [os, allowed] of Object.entries(known)) {
    const got = targets(c?.[os]?.target);
    if (!got.length) problems.push(`${rel}: ${os}.target lists no target (expected ${allowed.join(', ')})`);
    for (const t of got) if (!allowed.includes(t)) problems.push(`${rel}: ${os}.target "${t}" is not one this release builds and documents (${allowed.join(', ')})`);
  }
  const linux = targets(c?.linux?.target);
  if (linux.length && !linux.includes('deb')) problems.push(`${rel}: linux.target must keep "deb", the supported Linux package (it installs its AppArmor profile itself)`);
  if (linux.includes('AppImage')) {
    // the AppImage needs the AppArmor profile shipped next to it, attached to a root-owned folder and to this artifact's name
    let profile = '';
    try {
      profile = fs.readFileSync(APPARMOR_PROFILE, 'utf8');
    } catch {
      problems.push(`${path.relative(ROOT, APPARMOR_PROFILE)} is missing: the AppImage aborts under Ubuntu 24.04+ AppArmor without it`);
    }
    const m = /^profile\s+(\S+)\s+(\S+)\s+flags=\(unconfined\)\s*\{/m.exec(profile);
    if (profile && !m) problems.push(`${path.relative(ROOT, APPARMOR_PROFILE)}: no "profile NAME /path flags=(unconfined) {" line`);
    if (profile && !/^\s*userns,\s*$/m.test(profile)) problems.push(`${path.relative(ROOT, APPARMOR_PROFILE)}: no "userns," rule (Chromium's sandbox needs it)`);
    if (m) {
      const attach = m[2];
      if (!/^\/opt\/[^*?[\]]+\/[^/]+$/.test(attach)) problems.push(`${path.relative(ROOT, APPARMOR_PROFILE)}: attaches to ${attach}; it must name one root-owned folder under /opt (never a home folder, /tmp or a ** glob)`);
      const name = String(c?.appImage?.artifactName ?? c?.linux?.artifactName ?? '${productName}-${version}-${arch}.${ext}')
        .replaceAll('${productName}', String(c?.productName ?? ''))
        .replaceAll('${version}', '0.0.0')
        .replaceAll('${arch}', 'x86_64')
        .replaceAll('${ext}', 'AppImage');
      const glob = new RegExp(`^${path.posix.basename(attach).replace(/[.+^${}()|\\]/g, '\\$&').replaceAll('*', '[^/]*')}$`);
      if (!glob.test(name)) problems.push(`${path.relative(ROOT, APPARMOR_PROFILE)}: attaches to ${attach}, which does not match the AppImage's name ${name}`);
    }
  }
  for (const key of ['entitlements', 'entitlementsInherit']) {
    const f = c?.mac?.[key];
    if (f && !fs.existsSync(path.join(ROOT, f))) problems.push(`${rel}: mac.${key} ${f} does not exist`);
  }
  return problems;
}
const configIssues = configProblems();
missing.push(...configIssues);
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

if (!configIssues.length) process.stdout.write(`package:desktop: configuration ${path.relative(ROOT, CONFIG)}: ok\n`);
if (missing.length) {
  process.stderr.write(`package:desktop: cannot build the desktop installers yet:\n${missing.map((m) => `  - ${m}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write(`package:desktop: ready (Electron at ${electronBin}; target ${platform})\n`);
if (checkOnly) process.exit(0);
const r = spawnSync('npx', ['--yes', ELECTRON_BUILDER, '--config', path.relative(ROOT, CONFIG), platform], { cwd: ROOT, stdio: 'inherit' });
if (r.status === 0 && platform === '--linux') {
  // the AppImage's AppArmor profile travels with it (installers/README.md says how to install it)
  const version = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
  fs.copyFileSync(APPARMOR_PROFILE, path.join(ROOT, 'release', version, 'airlock-appimage.apparmor'));
}
process.exit(r.status ?? 1);
