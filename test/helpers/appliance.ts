// What the appliance tests (install, upgrade, lock, root install) share: scratch folders removed
// after the file's tests, gateways of installs killed if a test left them running, running an
// `airlock`/`install.sh` command with a plain environment, and the delivery folder as an operator
// has it on the server (bundle + signature, unpacked next to them).
import { after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './gateway.js';
import type { BuildResult } from '../../gateway/ops/package-server.js';

export interface Run {
  code: number | null;
  out: string;
}

/** Scratch folders and install pid files of this test file, cleaned up after its tests. */
export function scratch(defaultPrefix: string): { dir: (prefix?: string) => string; killAtEnd: (pidFile: string) => void } {
  const cleanup: string[] = [];
  const pidFiles: string[] = [];
  after(() => {
    for (const f of pidFiles) {
      try {
        process.kill(Number(fs.readFileSync(f, 'utf8')), 'SIGKILL');
      } catch {
        /* not running */
      }
    }
    for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
  });
  return {
    dir: (prefix = defaultPrefix) => {
      const d = tmpDir(prefix);
      cleanup.push(d);
      return d;
    },
    killAtEnd: (pidFile) => pidFiles.push(pidFile),
  };
}

/** PATH and HOME only, like an operator's sudo. */
export const PLAIN_ENV = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: process.env.HOME ?? '/root' };

export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = PLAIN_ENV): Run {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: 180_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

/** The bundle and its signature copied into `dir` and unpacked there; returns the unpacked install.sh. */
export function unpackDelivery(b: BuildResult, dir: string): string {
  for (const f of [b.bundle, b.sig]) fs.copyFileSync(f, path.join(dir, path.basename(f)));
  assert.equal(spawnSync('tar', ['-xzf', b.bundle, '-C', dir]).status, 0);
  return path.join(dir, `airlock-${b.version}`, 'install.sh');
}
