// The slow-streams scenario: N streaming chat completions opened at once over N client
// connections (an undici Pool with N connections, so every stream has its own), each answered by
// the bench upstream slowly (one content chunk every 50-100 ms for a few seconds: see
// upstream-server.ts). Every stream is read to its end and checked (the whole content and
// `data: [DONE]`); the server's RSS is sampled all along.
import { Pool } from 'undici';
import { rssMB } from './proc.js';

export interface SlowSpec {
  /** origin of the server under test, e.g. http://127.0.0.1:PORT */
  url: string;
  headers: Record<string, string>;
  body: string;
  /** the content every stream must carry */
  content: string;
  streams: number;
  /** the server's pid, for RSS */
  pid: number;
  /** give up on the whole run after this long */
  timeoutMs: number;
}

export interface SlowResult {
  streams: number;
  /** streams read to their end with the whole content and [DONE] */
  completed: number;
  failed: number;
  /** the first few failures */
  errors: string[];
  /** most streams that had their response headers and had not ended, at one time */
  peakOpen: number;
  /** ms from start until every stream ended */
  wallMs: number;
  /** per-stream duration, ms */
  p50Ms: number;
  maxMs: number;
  /** time to the response headers, ms */
  ttfbP50Ms: number;
  ttfbMaxMs: number;
  /** the server's RSS: largest sample while the streams ran (every 100 ms) */
  peakRssMB: number;
}

function contentOf(sse: string): { text: string; done: boolean } {
  let text = '';
  let done = false;
  for (const line of sse.split('\n')) {
    if (!line.startsWith('data: ')) continue;
    if (line === 'data: [DONE]') {
      done = true;
      continue;
    }
    const c = (JSON.parse(line.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta?.content;
    if (typeof c === 'string') text += c;
  }
  return { text, done };
}

const pct = (sorted: number[], p: number) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]! : NaN);

export async function runSlowStreams(s: SlowSpec): Promise<SlowResult> {
  const pool = new Pool(s.url, { connections: s.streams, pipelining: 1, keepAliveTimeout: 60_000, headersTimeout: s.timeoutMs, bodyTimeout: s.timeoutMs, connectTimeout: 30_000 });
  let open = 0;
  let peakOpen = 0;
  let peakRss = rssMB(s.pid);
  const sampler = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, rssMB(s.pid));
    } catch {
      /* exited: reported by the caller */
    }
  }, 100);
  const durations: number[] = [];
  const ttfbs: number[] = [];
  const errors: string[] = [];
  const t0 = performance.now();
  const one = async (i: number): Promise<void> => {
    const start = performance.now();
    const r = await pool.request({ method: 'POST', path: '/v1/chat/completions', headers: s.headers, body: s.body });
    ttfbs.push(performance.now() - start);
    open++;
    peakOpen = Math.max(peakOpen, open);
    try {
      let sse = '';
      r.body.setEncoding('utf8');
      for await (const chunk of r.body as AsyncIterable<string>) sse += chunk;
      if (r.statusCode !== 200) throw new Error(`stream ${i}: status ${r.statusCode}: ${sse.slice(0, 200)}`);
      const { text, done } = contentOf(sse);
      if (text !== s.content || !done) throw new Error(`stream ${i}: incomplete (${text.length} of ${s.content.length} characters, [DONE] ${done ? 'seen' : 'missing'})`);
      durations.push(performance.now() - start);
    } finally {
      open--;
    }
  };
  const deadline = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), s.timeoutMs).unref());
  const all = Promise.all(
    Array.from({ length: s.streams }, (_, i) =>
      one(i).catch((e: Error) => {
        if (errors.length < 5) errors.push(e.message);
      }),
    ),
  );
  const outcome = await Promise.race([all, deadline]);
  const wallMs = performance.now() - t0;
  clearInterval(sampler);
  if (outcome === 'timeout') errors.unshift(`not finished within ${s.timeoutMs} ms (${durations.length} completed)`);
  await pool.destroy().catch(() => undefined); // the client side goes away: no idle connections are kept
  durations.sort((a, b) => a - b);
  ttfbs.sort((a, b) => a - b);
  return {
    streams: s.streams,
    completed: durations.length,
    failed: s.streams - durations.length,
    errors,
    peakOpen,
    wallMs,
    p50Ms: pct(durations, 50),
    maxMs: durations[durations.length - 1] ?? NaN,
    ttfbP50Ms: pct(ttfbs, 50),
    ttfbMaxMs: ttfbs[ttfbs.length - 1] ?? NaN,
    peakRssMB: peakRss,
  };
}
