// The Linux desktop packages under Ubuntu 24.04+'s AppArmor restriction of unprivileged user
// namespaces: the deb installs its own profile; the AppImage ships installers/apparmor/airlock-appimage,
// checked here with the real apparmor_parser (where it is installed), and `package:desktop --check`
// refuses a builder configuration that would ship an AppImage the profile does not cover.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, tmpDir } from '../helpers/gateway.js';

const PROFILE = path.join(ROOT, 'installers', 'apparmor', 'airlock-appimage');
const parser = ['/usr/sbin/apparmor_parser', '/sbin/apparmor_parser'].find((f) => fs.existsSync(f));
// AppArmor 4 (Ubuntu 24.04+, Debian 13) knows abi/4.0 and the userns rule; AppArmor 3 (Debian 12) knows neither
const hasAbi4 = fs.existsSync('/etc/apparmor.d/abi/4.0');

function parse(file: string): { status: number | null; out: string } {
  // -Q: parse and compile only, -K: no cache, nothing is loaded into the kernel
  const r = spawnSync(parser!, ['-Q', '-K', file], { encoding: 'utf8' });
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

describe('the AppImage AppArmor profile', () => {
  const text = fs.readFileSync(PROFILE, 'utf8');

  test('allows user namespaces to the AppImage in one root-owned folder only, unconfined otherwise (never --no-sandbox)', () => {
    const m = /^profile (\S+) (\S+) flags=\(unconfined\) \{$/m.exec(text);
    assert.ok(m, text);
    assert.equal(m[1], 'airlock-appimage');
    assert.equal(m[2], '/opt/airlock-desktop/Airlock-*.AppImage');
    assert.match(text, /^abi <abi\/4\.0>,$/m, 'userns needs the 4.0 ABI');
    assert.match(text, /^\s+userns,$/m);
    assert.match(text, /^\s+include if exists <local\/airlock-appimage>$/m);
    // the rules, without comments: userns and the local include, nothing else
    const body = text.slice(text.indexOf('{') + 1, text.lastIndexOf('}')).split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
    assert.deepEqual(body, ['userns,', 'include if exists <local/airlock-appimage>']);
    for (const dir of ['main', 'installers']) {
      for (const f of fs.readdirSync(path.join(ROOT, dir), { recursive: true, encoding: 'utf8' })) {
        if (!/\.(ts|cts|mjs|js|json|sh)$/.test(f)) continue;
        assert.doesNotMatch(fs.readFileSync(path.join(ROOT, dir, f), 'utf8'), /no-sandbox/, `${dir}/${f} must not turn Chromium's sandbox off`);
      }
    }
  });

  test('apparmor_parser accepts it (AppArmor 4: as shipped; AppArmor 3: all but the abi 4.0 line and the userns rule)', { skip: !parser && 'apparmor_parser is not installed (apt-get install apparmor)' }, (t) => {
    const d = tmpDir('airlock-apparmor-');
    try {
      let file = PROFILE;
      if (!hasAbi4) {
        t.diagnostic('AppArmor 3 here: checking the profile with abi 3.0 and without the userns rule (AppArmor 4 checks it whole)');
        file = path.join(d, 'airlock-appimage');
        fs.writeFileSync(file, text.replace('abi <abi/4.0>,', 'abi <abi/3.0>,').replace(/^\s+userns,$/m, ''));
      }
      const ok = parse(file);
      assert.equal(ok.status, 0, ok.out);
      // and the parser does reject a broken one: the check can fail
      const broken = path.join(d, 'broken');
      fs.writeFileSync(broken, fs.readFileSync(file, 'utf8').replace('flags=(unconfined)', 'flags=(unconfinde)'));
      const bad = parse(broken);
      assert.notEqual(bad.status, 0);
      assert.match(bad.out, /Invalid profile flag: unconfinde/);
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});

describe('package:desktop --check validates the builder configuration without building', () => {
  const check = (config?: string) =>
    spawnSync(process.execPath, [path.join(ROOT, 'installers', 'package-desktop.mjs'), '--check', '--linux', ...(config ? ['--config', config] : [])], { encoding: 'utf8', cwd: ROOT });
  const base = fs.readFileSync(path.join(ROOT, 'installers', 'electron-builder.yml'), 'utf8');

  test('the shipped configuration is valid', () => {
    const r = check();
    assert.match(r.stdout, /configuration installers\/electron-builder\.yml: ok/, r.stdout + r.stderr);
    assert.doesNotMatch(r.stderr, /electron-builder\.yml:/);
  });

  test('a target nobody documents, a Linux build without the deb, an AppImage name the profile does not match, a missing entitlements file: each refused by name', () => {
    const d = tmpDir('airlock-builder-config-');
    try {
      const cases: [string, string, RegExp][] = [
        ['snap', base.replace('    - AppImage\n', '    - AppImage\n    - snap\n'), /linux\.target "snap" is not one this release builds and documents \(deb, AppImage\)/],
        ['no-deb', base.replace(/target:\n {4}- deb\n {4}- AppImage\n/, 'target:\n    - AppImage\n'), /linux\.target must keep "deb", the supported Linux package/],
        ['renamed', base.replace("  artifactName: ${productName}-${version}-${arch}.${ext}\n\ndeb:", '  artifactName: airlock-desktop-${version}.${ext}\n\ndeb:'), /attaches to \/opt\/airlock-desktop\/Airlock-\*\.AppImage, which does not match the AppImage's name airlock-desktop-0\.0\.0\.AppImage/],
        ['entitlements', base.replace('entitlementsInherit: installers/entitlements.mac.plist', 'entitlementsInherit: installers/missing.plist'), /mac\.entitlementsInherit installers\/missing\.plist does not exist/],
        ['yaml', 'linux: [unclosed', /cannot be read/],
      ];
      for (const [name, yml, expect] of cases) {
        assert.notEqual(yml, base, `${name}: the case changes the configuration`);
        const f = path.join(d, `${name}.yml`);
        fs.writeFileSync(f, yml);
        const r = check(f);
        assert.equal(r.status, 1, `${name}: ${r.stdout}${r.stderr}`);
        assert.match(r.stderr, expect, name);
        assert.doesNotMatch(r.stdout, /configuration .*: ok/, name);
      }
    } finally {
      fs.rmSync(d, { recursive: true, force: true });
    }
  });
});
