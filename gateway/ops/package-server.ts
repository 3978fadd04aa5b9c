// `npm run package:server`: the offline server bundle. Writes, under dist-packages/,
//   airlock-VERSION-linux-x64.tar.gz      the bundle (one folder, airlock-VERSION/)
//   airlock-VERSION-linux-x64.tar.gz.sig  its detached Ed25519 signature (raw, 64 bytes)
//   airlock-release.pub.pem               the public half of the key that signed it
//   SHA256SUMS                            sha256sum lines of the bundle and its signature
// The bundle carries the Node runtime pinned as "node20" in installers/runtimes.json (fetched with
// npm pack and checked against the pinned integrity: ops/runtime-fetch.ts; it must be the very Node
// the builder runs, so better-sqlite3's native module, built by `npm ci`, matches its ABI), the
// compiled gateway and admin app, and the production dependencies listed in package-lock.json.
// Signing key: the PEM file named by AIRLOCK_RELEASE_KEY; without one a throwaway key is made
// (and the build says so loudly): such a bundle is for testing only.
import crypto from 'node:crypto';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { StartupError } from '../store/db.js';
import { fingerprint, publicPem, readPrivateKey, signFile } from './release-key.js';
import { fetchRuntime, pinnedRuntimes } from './runtime-fetch.js';

/** The entry of installers/runtimes.json the bundle carries. */
export const BUNDLE_RUNTIME = 'node20';

export interface BuildOptions {
  /** the repository root (package.json, package-lock.json, dist/, renderer/dist/, node_modules/) */
  root: string;
  outDir: string;
  /** a PEM Ed25519 private key; absent: a throwaway key */
  keyFile?: string | undefined;
  /** the version written into the bundle (default: package.json's) */
  version?: string | undefined;
  /** change the staged bundle (its folder) before it is packed: tests use it to build deliberately broken bundles */
  patch?: ((bundleDir: string) => void) | undefined;
  log?: (line: string) => void;
  /** gzip level (default 6); tests use 1 for their throwaway variants */
  gzipLevel?: number | undefined;
  /** where fetched runtimes are cached (default: runtimeCacheDir()) */
  runtimeCache?: string | undefined;
}

export interface BuildResult {
  version: string;
  bundle: string;
  sig: string;
  publicKey: string;
  sums: string;
  bytes: number;
  ms: number;
  throwaway: boolean;
  fingerprint: string;
}

interface LockEntry {
  version?: string;
  dev?: boolean;
  devOptional?: boolean;
  optional?: boolean;
  link?: boolean;
}

/** node_modules paths of the production dependencies, from the lock file (what `npm ci --omit=dev` installs). */
export function productionPackages(root: string): { path: string; version: string }[] {
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> };
  const out: { path: string; version: string }[] = [];
  for (const [p, e] of Object.entries(lock.packages)) {
    if (!p.startsWith('node_modules/') || e.dev || e.devOptional || e.link) continue;
    const dir = path.join(root, p);
    if (!fs.existsSync(path.join(dir, 'package.json'))) {
      if (e.optional) continue; // an optional dependency for another platform
      throw new StartupError(`production dependency ${p} is in package-lock.json but not installed; run "npm ci"`);
    }
    const have = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version: string }).version;
    if (e.version && have !== e.version) throw new StartupError(`${p} is ${have} but package-lock.json wants ${e.version}; run "npm ci"`);
    out.push({ path: p, version: have });
  }
  return out;
}

// Files no running gateway reads: type declarations, source maps, better-sqlite3's C sources and
// build by-products (only build/Release/better_sqlite3.node is loaded).
const SKIP_FILE = /\.(d\.ts|d\.mts|d\.cts|map|md|markdown)$/i;
const SKIP_IN_SQLITE = new Set(['deps', 'src', 'binding.gyp', 'build/Release/obj', 'build/Release/obj.target', 'build/Release/.deps', 'build/Release/sqlite3.a', 'build/Release/test_extension.node', 'build/deps']);

function copyTree(from: string, to: string, keep: (rel: string, isDir: boolean) => boolean): void {
  fs.cpSync(from, to, {
    recursive: true,
    dereference: true,
    filter: (src) => {
      const rel = path.relative(from, src).split(path.sep).join('/');
      if (rel === '') return true;
      return keep(rel, fs.statSync(src).isDirectory());
    },
  });
}

function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

// Shell built-ins only (the PATH may hold nothing at all). The bundle's folder may be reached
// through a symlinked folder (/opt/airlock/current); link the command itself with a wrapper
// script, not a symlink to this file.
const LAUNCHER = (version: string) => `#!/bin/sh
# Airlock ${version}: runs with the Node runtime shipped in this bundle, never the host's node.
case "$0" in */*) here=\${0%/*} ;; *) here=. ;; esac
root=$(cd -P -- "$here/.." && pwd -P) || exit 2
# one malloc arena for all threads (glibc): ~10 MB less resident memory, same throughput
: "\${MALLOC_ARENA_MAX:=1}"
export MALLOC_ARENA_MAX
exec "$root/runtime/bin/node" "$root/app/bin/airlock.js" "$@"
`;

const INSTALL_SH = (version: string) => `#!/bin/sh
# Installs Airlock ${version} from the signed bundle this folder was unpacked from (it must lie
# next to this folder, with its .sig). Run as root for a systemd install; see
# "airlock install --help" and installers/README.md in this folder.
#   sudo ./install.sh --trust /path/to/airlock-release.pub.pem
#   ./install.sh --trust KEY --prefix DIR --no-systemd
case "$0" in */*) here=\${0%/*} ;; *) here=. ;; esac
exec "$here/bin/airlock" install "$@"
`;

export async function buildServerBundle(o: BuildOptions): Promise<BuildResult> {
  const t0 = Date.now();
  const log = o.log ?? ((l: string) => process.stderr.write(l + '\n'));
  const root = path.resolve(o.root);
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; version: string; description?: string; dependencies: Record<string, string> };
  const version = o.version ?? pkg.version;
  for (const need of ['dist/gateway/cli.js', 'renderer/dist/index.html', 'bin/airlock.js'])
    if (!fs.existsSync(path.join(root, need))) throw new StartupError(`${need} is missing: run "npm run build" first (npm run package:server does)`);
  if (process.platform !== 'linux' || process.arch !== 'x64') throw new StartupError(`the server bundle is for Linux x64 and is built on a Linux x64 builder, not ${process.platform}-${process.arch}`);
  const runtimeDir = fetchRuntime(root, BUNDLE_RUNTIME, { cacheDir: o.runtimeCache, log });
  const runtimeNode = path.join(runtimeDir, 'bin', 'node');
  // better-sqlite3 was built by npm ci for the Node that ran it: the bundled runtime must have its ABI.
  const abi = execFileSync(runtimeNode, ['-p', 'process.versions.modules + " " + process.version'], { encoding: 'utf8' }).trim().split(' ');
  if (abi[0] !== process.versions.modules)
    throw new StartupError(
      `the bundled runtime is Node ${abi[1]} (ABI ${abi[0]}) but this build runs on Node ${process.version} (ABI ${process.versions.modules}), for which better-sqlite3 was built: build with Node ${abi[1]}`,
    );

  let key: crypto.KeyObject;
  let throwaway = false;
  if (o.keyFile) key = readPrivateKey(o.keyFile);
  else {
    key = crypto.generateKeyPairSync('ed25519').privateKey;
    throwaway = true;
    const bar = '!'.repeat(78);
    log(`${bar}\n!! WARNING: AIRLOCK_RELEASE_KEY is not set: this bundle is signed with a THROWAWAY key\n!! (fingerprint ${fingerprint(key)}), thrown away after this build. Use it for tests only;\n!! a release is signed with AIRLOCK_RELEASE_KEY=/secure/airlock-release.pem.\n${bar}`);
  }

  const outDir = path.resolve(o.outDir);
  fs.mkdirSync(outDir, { recursive: true });
  const name = `airlock-${version}`;
  const stage = fs.mkdtempSync(path.join(outDir, '.stage-'));
  try {
    const dir = path.join(stage, name);
    const app = path.join(dir, 'app');
    // the runtime: the node binary and its licence
    fs.mkdirSync(path.join(dir, 'runtime', 'bin'), { recursive: true });
    fs.copyFileSync(runtimeNode, path.join(dir, 'runtime', 'bin', 'node'));
    fs.chmodSync(path.join(dir, 'runtime', 'bin', 'node'), 0o755);
    fs.copyFileSync(path.join(runtimeDir, 'LICENSE'), path.join(dir, 'runtime', 'LICENSE'));
    // the app: compiled gateway, CLI entry, admin app
    copyTree(path.join(root, 'dist', 'gateway'), path.join(app, 'dist', 'gateway'), (rel) => !rel.endsWith('.map') && !rel.startsWith('ops/package-server.') && !rel.startsWith('ops/runtime-fetch.'));
    copyTree(path.join(root, 'renderer', 'dist'), path.join(app, 'renderer', 'dist'), () => true);
    fs.mkdirSync(path.join(app, 'bin'));
    fs.copyFileSync(path.join(root, 'bin', 'airlock.js'), path.join(app, 'bin', 'airlock.js'));
    const appPkg = { name: pkg.name, version, private: true, description: pkg.description, type: 'module', dependencies: pkg.dependencies };
    fs.writeFileSync(path.join(app, 'package.json'), JSON.stringify(appPkg, null, 2) + '\n');
    // production dependencies, each package without its nested node_modules (those are entries of their own)
    const prod = productionPackages(root);
    for (const p of prod) {
      const sqlite = p.path === 'node_modules/better-sqlite3';
      copyTree(path.join(root, p.path), path.join(app, p.path), (rel, isDir) => {
        if (rel === 'node_modules' || rel.startsWith('node_modules/')) return false;
        if (sqlite && SKIP_IN_SQLITE.has(rel)) return false;
        return isDir || !SKIP_FILE.test(rel) || /^license/i.test(path.basename(rel));
      });
    }
    // launcher, installer, service unit, documentation, what is inside
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.writeFileSync(path.join(dir, 'bin', 'airlock'), LAUNCHER(version), { mode: 0o755 });
    fs.writeFileSync(path.join(dir, 'install.sh'), INSTALL_SH(version), { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'installers'));
    for (const f of ['airlock.service', 'README.md']) fs.copyFileSync(path.join(root, 'installers', f), path.join(dir, 'installers', f));
    fs.copyFileSync(path.join(root, 'README.md'), path.join(dir, 'README.md'));
    const manifest = {
      name: 'airlock',
      version,
      platform: 'linux-x64',
      node: abi[1],
      node_abi: abi[0],
      runtime: pinnedRuntimes(root)[BUNDLE_RUNTIME],
      built_at: new Date().toISOString(),
      dependencies: prod.map((p) => `${p.path.replace(/^(.*\/)?node_modules\//, '')}@${p.version}`),
    };
    fs.writeFileSync(path.join(dir, 'BUNDLE.json'), JSON.stringify(manifest, null, 2) + '\n');
    o.patch?.(dir);
    // smoke test of the staged bundle: the native module loads in the bundled runtime, with no PATH
    execFileSync(path.join(dir, 'runtime', 'bin', 'node'), ['-e', `new (require(${JSON.stringify(path.join(app, 'node_modules', 'better-sqlite3'))}))(':memory:').prepare('select 1').get()`], {
      env: { PATH: '' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });

    const bundle = path.join(outDir, `${name}-linux-x64.tar.gz`);
    const sig = `${bundle}.sig`;
    for (const f of [bundle, sig]) fs.rmSync(f, { force: true });
    // reproducible member order and ownership; every file root-owned once unpacked by root
    const tmp = `${bundle}.partial`;
    execFileSync('tar', ['--sort=name', '--owner=0', '--group=0', '--numeric-owner', `--use-compress-program=gzip -${o.gzipLevel ?? 6} -n`, '-C', stage, '-cf', tmp, name], { stdio: ['ignore', 'ignore', 'pipe'] });
    fs.renameSync(tmp, bundle);
    fs.writeFileSync(sig, signFile(bundle, key));
    const publicKey = path.join(outDir, 'airlock-release.pub.pem');
    fs.writeFileSync(publicKey, publicPem(key));
    const sums = path.join(outDir, 'SHA256SUMS');
    fs.writeFileSync(sums, [bundle, sig].map((f) => `${sha256(f)}  ${path.basename(f)}\n`).join(''));
    const bytes = fs.statSync(bundle).size;
    const ms = Date.now() - t0;
    log(`wrote ${bundle} (${(bytes / 1048576).toFixed(1)} MiB, ${prod.length} production packages, Node ${abi[1]}) in ${(ms / 1000).toFixed(1)} s`);
    log(`signature ${sig}; public key ${publicKey} (fingerprint ${fingerprint(key)})${throwaway ? ' — THROWAWAY KEY' : ''}; ${sums}`);
    return { version, bundle, sig, publicKey, sums, bytes, ms, throwaway, fingerprint: fingerprint(key) };
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

// node dist/gateway/ops/package-server.js [--out DIR]
if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
  const i = process.argv.indexOf('--out');
  const outDir = i > 0 ? process.argv[i + 1]! : path.join(root, 'dist-packages');
  buildServerBundle({ root, outDir, keyFile: process.env.AIRLOCK_RELEASE_KEY || undefined }).then(
    () => undefined,
    (e: Error) => {
      process.stderr.write(`package:server: ${e.message}\n`);
      process.exitCode = 1;
    },
  );
}
