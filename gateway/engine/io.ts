// I/O helpers: reading a short upstream body as text, and waiting for a slow client. (The
// attempt's own upstream bodies are read through upstream-call.ts.)
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

export async function readText(body: Dispatcher.ResponseData['body'], limit: number): Promise<string> {
  let s = '';
  for await (const chunk of body as AsyncIterable<Buffer>) {
    s += chunk.toString('utf8');
    if (s.length >= limit) break; // the rest is not read: leaving the loop destroys the body (the connection is cut)
  }
  return s.slice(0, limit);
}

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
