// I/O helpers of the hot path: reading upstream bodies without async iterators (a promise per
// chunk was a visible cost), with limits, and waiting for a slow client.
import type { ServerResponse } from 'node:http';
import type { Dispatcher } from 'undici';

/**
 * The chunks of a response body, one `next()` at a time, like its async iterator but about half
 * the cost per streamed request (the iterator was the largest single overhead of a short stream).
 * Buffers at most ~16 chunks before pausing the body, so a slow client still slows the upstream.
 */
export function chunkReader(body: Dispatcher.ResponseData['body']): { next(): Promise<IteratorResult<Buffer, undefined>> } {
  const queue: Buffer[] = [];
  let ended = false;
  let failure: Error | undefined;
  let waiter: { resolve: (r: IteratorResult<Buffer, undefined>) => void; reject: (e: unknown) => void } | undefined;
  const settle = () => {
    if (!waiter) return;
    const w = waiter;
    if (queue.length) {
      waiter = undefined;
      w.resolve({ value: queue.shift()!, done: false });
    } else if (failure !== undefined) {
      waiter = undefined;
      w.reject(failure);
    } else if (ended) {
      waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  };
  body.on('data', (c: Buffer) => {
    queue.push(c);
    if (queue.length >= 16) body.pause();
    settle();
  });
  body.once('end', () => {
    ended = true;
    settle();
  });
  body.once('error', (e: unknown) => {
    failure = e instanceof Error ? e : new Error(String(e));
    settle();
  });
  body.once('close', () => {
    if (ended || failure !== undefined) return;
    failure = Object.assign(new Error('Premature close'), { code: 'ERR_STREAM_PREMATURE_CLOSE' });
    settle();
  });
  return {
    next() {
      if (queue.length) {
        const value = queue.shift()!;
        if (queue.length < 4 && body.isPaused()) body.resume();
        return Promise.resolve({ value, done: false });
      }
      if (failure !== undefined) return Promise.reject(failure);
      if (ended) return Promise.resolve({ value: undefined, done: true });
      if (body.isPaused()) body.resume();
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
  };
}

// Events rather than `for await`: the async iterator costs a promise per chunk on the hot path.
// Past `limit` (settings.limits.max_response_bytes) the body is destroyed, which cuts the connection.
export function readBytes(body: Dispatcher.ResponseData['body'], limit: number, declared: number, overLimit: () => Error): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let n = 0;
    const tooLarge = () => {
      reject(overLimit());
      body.destroy();
    };
    body.on('data', (chunk: Buffer) => {
      n += chunk.length;
      if (n > limit) return tooLarge();
      parts.push(chunk);
    });
    let ended = false;
    body.once('end', () => {
      ended = true;
      resolve(parts.length === 1 ? parts[0]! : Buffer.concat(parts, n));
    });
    body.once('error', reject);
    body.once('close', () => {
      if (!ended) reject(new Error('upstream response closed before its end')); // (an Error per request is not free)
    });
    if (declared > limit) tooLarge(); // a content-length over the limit: nothing is read
  });
}

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
