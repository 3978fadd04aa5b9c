// undici, the parts the gateway uses (Pool, Agent, request, errors), loaded without the package's
// index. The index loads every part of undici (fetch, WebSocket, EventSource, the mocks, the cache
// stores, the proxy agents, ...): ~3 MB more heap in an idle gateway that uses none of them, and
// issue 7's idle target is 100 MB. What this file does for its parts is what the index does
// (undici/index.js: `Object.assign(Dispatcher.prototype, api)` gives every dispatcher its
// request()). The version is pinned in package-lock.json; every use goes through the tests.
import { createRequire } from 'node:module';
import type * as Undici from 'undici';

export type { Dispatcher } from 'undici';

const load = createRequire(import.meta.url);
const DispatcherBase = load('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
Object.assign(DispatcherBase.prototype, load('undici/lib/api/index.js'));

export const Pool = load('undici/lib/dispatcher/pool.js') as typeof Undici.Pool;
export const Agent = load('undici/lib/dispatcher/agent.js') as typeof Undici.Agent;
export const errors = load('undici/lib/core/errors.js') as typeof Undici.errors;
export type Agent = Undici.Agent;
export type Pool = Undici.Pool;

let shared: Undici.Agent | undefined;

/** undici's request(url, options): through `options.dispatcher`, or one Agent shared by the callers
 * that give none (undici's own global dispatcher is an Agent too). */
export function request(url: string, options: Omit<Undici.Dispatcher.RequestOptions, 'origin' | 'path'> & { dispatcher?: Undici.Dispatcher }): Promise<Undici.Dispatcher.ResponseData> {
  const u = new URL(url);
  const { dispatcher, ...rest } = options;
  return (dispatcher ?? (shared ??= new Agent())).request({ ...rest, origin: u.origin, path: u.pathname + u.search });
}
