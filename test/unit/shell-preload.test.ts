// The preload runs sandboxed, where only require('electron') works. Transpile main/preload.cts
// as the build does (CommonJS), run it the way Electron runs sandboxed preloads (a function of
// require, process, Buffer, global, setImmediate, clearImmediate, exports, module) with a fake
// electron, and check what it exposes and which channels it calls.
import fs from 'node:fs';
import vm from 'node:vm';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import ts from 'typescript';
import { CHANNELS } from '../../main/lib/ipc.js';

const source = fs.readFileSync(new URL('../../../main/preload.cts', import.meta.url), 'utf8');

function loadPreload() {
  const js = ts.transpileModule(source, { compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022 } }).outputText;
  const required: string[] = [];
  const exposed = new Map<string, unknown>();
  const invoked: Array<[string, unknown[]]> = [];
  const electron = {
    contextBridge: { exposeInMainWorld: (key: string, api: unknown) => exposed.set(key, api) },
    ipcRenderer: {
      invoke: (channel: string, ...args: unknown[]) => {
        invoked.push([channel, args]);
        return Promise.resolve(`reply:${channel}`);
      },
    },
  };
  const sandboxRequire = (name: string): unknown => {
    required.push(name);
    if (name === 'electron') return electron;
    throw new Error(`a sandboxed preload cannot require ${name}`);
  };
  const fn = vm.runInNewContext(`(function (require, process, Buffer, global, setImmediate, clearImmediate, exports, module) {\n${js}\n})`, {}) as (
    ...a: unknown[]
  ) => void;
  const module = { exports: {} };
  fn(sandboxRequire, {}, undefined, {}, undefined, undefined, module.exports, module);
  return { required, exposed, invoked };
}

describe('shell preload', () => {
  test('requires only electron and exposes exactly one function per message on window.airlock', () => {
    const { required, exposed } = loadPreload();
    assert.deepEqual(required, ['electron']);
    assert.deepEqual([...exposed.keys()], ['airlock']);
    const api = exposed.get('airlock') as Record<string, unknown>;
    assert.deepEqual(Object.keys(api).sort(), Object.keys(CHANNELS).sort());
    for (const v of Object.values(api)) assert.equal(typeof v, 'function');
  });

  test('each function invokes its own channel, the same names main listens on', async () => {
    const { exposed, invoked } = loadPreload();
    const api = exposed.get('airlock') as Record<string, (...a: unknown[]) => Promise<unknown>>;
    for (const [method, channel] of Object.entries(CHANNELS)) {
      assert.equal(await api[method]!(), `reply:${channel}`);
    }
    assert.deepEqual(
      invoked.map(([c, a]) => [c, a.length]),
      Object.values(CHANNELS).map((c) => [c, 0]),
    );
    await api.pickExportFolder!({ defaultPath: '/media/usb' });
    assert.deepEqual(invoked.at(-1), [CHANNELS.pickExportFolder, [{ defaultPath: '/media/usb' }]]);
  });

  test('main/lib imports nothing from electron (it runs and is tested under plain Node)', () => {
    const dir = new URL('../../../main/lib/', import.meta.url);
    const files = fs.readdirSync(dir).filter((f) => f.endsWith('.ts'));
    assert.ok(files.length >= 8, files.join(', '));
    for (const f of files) {
      const text = fs.readFileSync(new URL(f, dir), 'utf8');
      assert.doesNotMatch(text, /(from|import|require)\s*\(?\s*['"]electron['"]/, f);
    }
  });
});
