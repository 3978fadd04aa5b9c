// The server bundle, built once per test run and shared by the test files that need it: a cache
// under the temp dir keyed by a hash of everything that goes into it (compiled gateway, admin
// app, lock file, launcher sources). Signed with a release key made for the tests; a second key
// stands for "somebody else's key".
import { createHash, generateKeyPairSync } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ROOT } from './gateway.js';
import { buildServerBundle, type BuildResult } from '../../gateway/ops/package-server.js';

export interface TestBundles {
  dir: string;
  /** the bundle of this build, signed with `key` */
  main: BuildResult;
  /** PEM files: the release key pair the tests trust, and another pair */
  key: { priv: string; pub: string };
  other: { priv: string; pub: string };
}

function hashInputs(): string {
  const h = createHash('sha256');
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (!p.endsWith('.map')) h.update(path.relative(ROOT, p)).update('\0').update(fs.readFileSync(p));
    }
  };
  walk(path.join(ROOT, 'dist', 'gateway'));
  walk(path.join(ROOT, 'renderer', 'dist'));
  for (const f of ['package.json', 'package-lock.json', 'bin/airlock.js', 'installers/airlock.service', 'installers/README.md', 'installers/runtimes.json', 'README.md']) h.update(f).update(fs.readFileSync(path.join(ROOT, f)));
  return h.digest('hex').slice(0, 16);
}

function keyPair(dir: string, name: string): { priv: string; pub: string } {
  const priv = path.join(dir, `${name}.pem`);
  const pub = path.join(dir, `${name}.pub.pem`);
  if (!fs.existsSync(pub)) {
    const k = generateKeyPairSync('ed25519');
    fs.writeFileSync(priv, k.privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    fs.writeFileSync(pub, k.publicKey.export({ type: 'spki', format: 'pem' }));
  }
  return { priv, pub };
}

// one cache per checkout (other checkouts' test runs keep theirs)
const CACHE = path.join(os.tmpdir(), 'airlock-bundle-cache', createHash('sha256').update(ROOT).digest('hex').slice(0, 12));
const built = new Map<string, Promise<BuildResult>>();

// the inputs' hash, taken once per test process: a build of dist/ while a test runs must not move
// the cache (and delete the one in use) under it
let inputsKey: string | undefined;

/** The cache dir of this build (older builds' dirs are removed). */
function cacheDir(): string {
  const key = (inputsKey ??= hashInputs());
  const dir = path.join(CACHE, key);
  fs.mkdirSync(dir, { recursive: true });
  for (const old of fs.readdirSync(CACHE)) if (old !== key) fs.rmSync(path.join(CACHE, old), { recursive: true, force: true });
  return dir;
}

/** A bundle built from this checkout under `name` (built once per inputs; `patch` changes the staged bundle). */
export async function testBundle(name: string, opts: { version?: string; patch?: (bundleDir: string) => void; signWith?: 'key' | 'other' } = {}): Promise<BuildResult & { key: { priv: string; pub: string } }> {
  const dir = cacheDir();
  const key = keyPair(dir, opts.signWith ?? 'key');
  const out = path.join(dir, name);
  const done = path.join(out, 'result.json');
  if (!built.has(out)) {
    built.set(
      out,
      (async () => {
        if (fs.existsSync(done)) return JSON.parse(fs.readFileSync(done, 'utf8')) as BuildResult;
        fs.rmSync(out, { recursive: true, force: true });
        const r = await buildServerBundle({ root: ROOT, outDir: out, keyFile: key.priv, version: opts.version, patch: opts.patch, log: () => undefined, gzipLevel: name === 'main' ? undefined : 1 });
        fs.writeFileSync(done, JSON.stringify(r));
        return r;
      })(),
    );
  }
  return { ...(await built.get(out)!), key };
}

export function keys(): { key: { priv: string; pub: string }; other: { priv: string; pub: string } } {
  const dir = cacheDir();
  return { key: keyPair(dir, 'key'), other: keyPair(dir, 'other') };
}

/** A copy of `file` (in `dir`, same name) with one byte flipped in its middle. */
export function flippedCopy(file: string, dir: string): string {
  const to = path.join(dir, path.basename(file));
  const b = fs.readFileSync(file);
  const i = b.length >> 1;
  b.writeUInt8(b.readUInt8(i) ^ 0x01, i);
  fs.writeFileSync(to, b);
  fs.copyFileSync(`${file}.sig`, `${to}.sig`);
  return to;
}
