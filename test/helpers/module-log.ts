// Preloaded into a gateway under test (`node --import dist/test/helpers/module-log.js`, through
// NODE_OPTIONS): appends the URL of every module the process loads to $AIRLOCK_TEST_MODULE_LOG,
// so a test can tell which packages a running gateway has loaded (e.g. the MCP SDK only when MCP
// is used). ES modules: loader hooks, run in Node's loader thread (module-log-hooks.ts).
// CommonJS modules (what a package requires, or the gateway through createRequire): each file the
// CommonJS loader loads the first time, seen from Module._load in the main thread.
import fs from 'node:fs';
import Module, { register } from 'node:module';
import { pathToFileURL } from 'node:url';
import { isMainThread } from 'node:worker_threads';

const file = process.env.AIRLOCK_TEST_MODULE_LOG;
// the gateway's own worker threads load modules through the same hooks; register them once
if (file && isMainThread) {
  register(new URL('./module-log-hooks.js', import.meta.url).href, { data: { file } });
  const loader = Module as unknown as {
    _load(request: string, parent: unknown, isMain: boolean): unknown;
    _resolveFilename(request: string, parent: unknown, isMain: boolean): string;
    _cache: Record<string, unknown>;
  };
  const load = loader._load.bind(loader);
  loader._load = (request: string, parent: unknown, isMain: boolean): unknown => {
    let fresh: string | undefined;
    try {
      const f = loader._resolveFilename(request, parent, isMain);
      if (f.startsWith('/') && !loader._cache[f]) fresh = f;
    } catch {
      // not resolvable: the real _load throws the error the caller expects
    }
    const out = load(request, parent, isMain);
    if (fresh) fs.appendFileSync(file, `${pathToFileURL(fresh).href}\n`);
    return out;
  };
}
