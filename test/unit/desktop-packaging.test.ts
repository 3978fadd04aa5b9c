// The desktop packaging, checked without building it (CI has no Electron binary): the
// electron-builder targets, the files a worker thread loads kept outside app.asar, the macOS
// entitlements file, and `npm run package:desktop --check` naming what is missing.
import { builtinModules } from 'node:module';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
const config = YAML.parse(fs.readFileSync(path.join(ROOT, 'installers', 'electron-builder.yml'), 'utf8')) as {
  files: string[];
  asarUnpack: string[];
  extraMetadata: { main: string };
  linux: { target: string[] };
  win: { target: { target: string; arch: string[] }[] };
  mac: { target: { target: string; arch: string[] }[]; entitlements: string; entitlementsInherit: string; notarize: boolean };
};

/** electron-builder's globs as used here: "dir/**", "dir/**\/*.ext", or a file path. */
function covered(rel: string): boolean {
  return config.asarUnpack.some((g) => {
    if (g.endsWith('/**')) return rel.startsWith(g.slice(0, -2));
    const m = /^(.*)\/\*\*\/\*(\.\w+)$/.exec(g);
    if (m) return rel.startsWith(m[1]! + '/') && rel.endsWith(m[2]!);
    return rel === g;
  });
}

const builtins = new Set(builtinModules);
const isBuiltin = (s: string) => s.startsWith('node:') || builtins.has(s);

describe('desktop packaging (electron-builder configuration)', () => {
  test('targets: deb and AppImage (Linux), NSIS x64 (Windows), dmg x64 + arm64 (macOS), notarized', () => {
    assert.deepEqual(config.linux.target, ['deb', 'AppImage']);
    assert.deepEqual(config.win.target, [{ target: 'nsis', arch: ['x64'] }]);
    assert.deepEqual(config.mac.target, [{ target: 'dmg', arch: ['x64', 'arm64'] }]);
    assert.equal(config.mac.notarize, true);
    for (const f of [config.mac.entitlements, config.mac.entitlementsInherit]) assert.ok(fs.existsSync(path.join(ROOT, f)), `${f} exists`);
  });

  test('the app holds the compiled gateway, shell and admin app, and its main file is built', () => {
    for (const f of ['dist/**', 'renderer/dist/**', 'bin/**', 'node_modules/**', '!dist/test/**']) assert.ok(config.files.includes(f), f);
    assert.equal(config.extraMetadata.main, 'dist/main/main.js');
    assert.ok(fs.existsSync(path.join(ROOT, config.extraMetadata.main)), 'npm run build compiles the shell');
  });

  test('every file a worker thread loads (and the native module with what it requires) is unpacked from app.asar', () => {
    const seen = new Set<string>();
    const packages = new Set<string>();
    const walk = (file: string) => {
      if (seen.has(file)) return;
      seen.add(file);
      const js = fs.readFileSync(file, 'utf8');
      for (const m of js.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|^\s*import\s+['"]([^'"]+)['"]/gm)) {
        const spec = (m[1] ?? m[2])!;
        if (spec.startsWith('.')) walk(path.resolve(path.dirname(file), spec));
        else if (!isBuiltin(spec)) packages.add(spec);
      }
    };
    // every worker thread the gateway starts: `new Worker(new URL('./file.js' | import.meta.url, ...))`
    const workers: string[] = [];
    const scan = (dir: string) => {
      for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
        const f = path.join(dir, e.name);
        if (e.isDirectory()) scan(f);
        else if (e.name.endsWith('.js'))
          for (const m of fs.readFileSync(f, 'utf8').matchAll(/new Worker\(new URL\((?:'([^']+)', )?import\.meta\.url\)/g)) workers.push(m[1] ? path.resolve(dir, m[1]) : f);
      }
    };
    scan(path.join(ROOT, 'dist', 'gateway'));
    assert.ok(workers.some((w) => w.endsWith(path.join('store', 'recorder-worker.js'))), 'the recorders\' writer thread is found');
    for (const w of workers) walk(w);
    for (const f of seen) {
      const rel = path.relative(ROOT, f).split(path.sep).join('/');
      assert.ok(covered(rel), `${rel} (loaded by a worker thread) is in asarUnpack`);
    }
    // packages: the ones imported, and what their runtime code requires
    const todo = [...packages];
    while (todo.length) {
      const pkg = todo.pop()!;
      assert.ok(covered(`node_modules/${pkg}/package.json`), `node_modules/${pkg}/** is in asarUnpack`);
      const dir = path.join(ROOT, 'node_modules', pkg);
      const scan = (d: string) => {
        for (const e of fs.readdirSync(d, { withFileTypes: true })) {
          if (e.isDirectory() && !['node_modules', 'deps', 'src', 'build', 'test'].includes(e.name)) scan(path.join(d, e.name));
          else if (e.name.endsWith('.js'))
            for (const m of fs.readFileSync(path.join(d, e.name), 'utf8').matchAll(/require\(['"]([^'"./][^'"]*)['"]\)/g))
              if (!isBuiltin(m[1]!) && !packages.has(m[1]!)) {
                packages.add(m[1]!);
                todo.push(m[1]!);
              }
        }
      };
      scan(dir);
    }
    assert.ok(packages.has('better-sqlite3') && packages.has('bindings'), [...packages].join(', '));
  });

  test('npm run package:desktop --check names what the build needs (here: Electron\'s binary, fetched on the builder)', () => {
    const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
    assert.equal(pkg.scripts['package:desktop'], 'node installers/package-desktop.mjs');
    const r = spawnSync(process.execPath, [path.join(ROOT, 'installers', 'package-desktop.mjs'), '--check', '--linux'], { encoding: 'utf8' });
    const hasElectron = fs.existsSync(path.join(ROOT, 'node_modules', 'electron', 'path.txt'));
    if (hasElectron) assert.doesNotMatch(r.stderr, /Electron's binary/);
    else {
      assert.equal(r.status, 1, r.stdout + r.stderr);
      assert.match(r.stderr, /Electron's binary is not installed .*node node_modules\/electron\/install\.js/);
    }
  });
});
