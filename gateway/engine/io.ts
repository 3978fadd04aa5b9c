// I/O helpers: waiting for a slow client, and a sleep that ends with its signal. (Upstream
// bodies are read through upstream-call.ts.)
import type { ServerResponse } from 'node:http';

export function drain(res: ServerResponse, signal: AbortSignal): Promise<void> {
  // A client already gone fires neither 'drain' nor 'close' again: waiting would hold the slot forever.
  if (res.destroyed || res.writableEnded || signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      res.off('drain', done);
      res.off('close', done);
      signal.removeEventListener('abort', done);
      resolve();
    };
    res.once('drain', done);
    res.once('close', done);
    signal.addEventListener('abort', done, { once: true });
  });
}

export function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      resolve();
    };
    signal.addEventListener('abort', onAbort, { once: true });
  });
}
