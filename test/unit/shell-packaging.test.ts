// The desktop app's packaging settings that are security decisions: the Electron fuses flipped by
// electron-builder (installers/electron-builder.yml), read as the builder reads them.
import fs from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';

const CONFIG = new URL('../../../installers/electron-builder.yml', import.meta.url);
const ROOT = new URL('../../../', import.meta.url);

describe('electron-builder configuration', () => {
  const config = YAML.parse(fs.readFileSync(CONFIG, 'utf8')) as {
    electronFuses?: Record<string, unknown>;
    asar?: unknown;
    linux?: { target?: unknown };
    mac?: { hardenedRuntime?: unknown; entitlements?: string; entitlementsInherit?: string };
    dmg?: { sign?: unknown };
  };

  test('fuses: no Node mode or debugging, asar only and integrity-checked, encrypted cookies, no file:// privileges', () => {
    assert.deepEqual(config.electronFuses, {
      runAsNode: false,
      enableCookieEncryption: true,
      enableNodeOptionsEnvironmentVariable: false,
      enableNodeCliInspectArguments: false,
      enableEmbeddedAsarIntegrityValidation: true,
      onlyLoadAppFromAsar: true,
      grantFileProtocolExtraPrivileges: false,
    });
    // The asar fuses mean something only when there is an asar.
    assert.equal(config.asar, true);
  });

  test('Linux: the deb (supported, installs its own AppArmor profile) and an AppImage whose profile ships separately (installers/apparmor)', () => {
    assert.deepEqual(config.linux?.target, ['deb', 'AppImage']);
  });

  test('macOS: hardened runtime with JIT as the only entitlement, for the app and its helpers', () => {
    assert.equal(config.mac?.hardenedRuntime, true);
    assert.equal(config.mac?.entitlements, 'installers/entitlements.mac.plist');
    assert.equal(config.mac?.entitlementsInherit, 'installers/entitlements.mac.plist');
    const plist = fs.readFileSync(new URL(config.mac.entitlements, ROOT), 'utf8');
    const keys = [...plist.matchAll(/<key>([^<]+)<\/key>/g)].map((m) => m[1]);
    assert.deepEqual(keys, ['com.apple.security.cs.allow-jit']);
  });

  test('the dmg is unsigned, so the documented checks verify the app inside it, not the dmg', () => {
    assert.equal(config.dmg?.sign, false);
    const readme = fs.readFileSync(new URL('installers/README.md', ROOT), 'utf8');
    assert.match(readme, /spctl -a -vv -t exec \/Volumes\/Airlock\/Airlock\.app/);
    assert.doesNotMatch(readme, /spctl [^`]*\.dmg/);
    assert.ok(fs.existsSync(new URL('installers/smoke-test.mjs', ROOT)), 'the packaged smoke test is there');
  });
});
