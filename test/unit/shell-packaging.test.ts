// The desktop app's packaging settings that are security decisions: the Electron fuses flipped by
// electron-builder (installers/electron-builder.yml), read as the builder reads them.
import fs from 'node:fs';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';

const CONFIG = new URL('../../../installers/electron-builder.yml', import.meta.url);

describe('electron-builder configuration', () => {
  const config = YAML.parse(fs.readFileSync(CONFIG, 'utf8')) as { electronFuses?: Record<string, unknown>; asar?: unknown };

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
});
