// Active health checks: each endpoint's model list is fetched at its interval. Consecutive
// failures mark the endpoint down (the router then avoids it); one success marks it up.
import { performance } from 'node:perf_hooks';
import { request, type Dispatcher } from './undici.js';
import type { Runtime } from './runtime.js';
import { DEFAULT_SETTINGS } from '../config/schema.js';
import type { EndpointConfig, Snapshot } from './snapshot.js';
import type { ProbeResult } from '../wire.js';
import { ANTHROPIC_VERSION } from './anthropic/native.js';

export type { ProbeResult };

export function modelsUrl(c: Pick<EndpointConfig, 'type' | 'origin' | 'basePath'>): string {
  if (c.type === 'ollama') return `${c.origin}/api/tags`;
  return `${c.origin}${c.basePath}/models`;
}

/**
 * The body as text, or undefined when it is larger than maxBytes: then nothing more is read (the
 * body is destroyed, which cuts the connection) and what was read is let go.
 */
async function readCapped(body: Dispatcher.ResponseData['body'], maxBytes: number, declared: number): Promise<string | undefined> {
  if (declared > maxBytes) {
    body.on('error', () => {}).destroy();
    return undefined;
  }
  const parts: Buffer[] = [];
  let n = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    n += chunk.length;
    if (n > maxBytes) return undefined; // leaving the loop destroys the body
    parts.push(chunk);
  }
  return Buffer.concat(parts, n).toString('utf8');
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The model names in a models answer: OpenAI's {"data": [{"id"}]}, Ollama's {"models": [{"name"}]}
 * (older Ollama: "model"). Entries without a name are skipped; undefined when it is no such list. */
export function modelNames(type: EndpointConfig['type'], j: unknown): string[] | undefined {
  if (!isObject(j)) return undefined;
  const list = type === 'ollama' ? (j.models ?? []) : (j.data ?? []);
  if (!Array.isArray(list)) return undefined;
  const out: string[] = [];
  for (const m of list as unknown[]) {
    const n = !isObject(m) ? undefined : type === 'ollama' ? (m.name ?? m.model) : m.id;
    if (typeof n === 'string') out.push(n);
  }
  return out;
}

/**
 * Ask a server which models it serves. Never throws. The whole exchange, body included, must end
 * within timeoutMs, and an answer larger than maxBytes (settings.limits.max_probe_bytes) fails.
 */
export async function probe(c: Pick<EndpointConfig, 'type' | 'origin' | 'basePath' | 'apiKey'>, timeoutMs: number, maxBytes: number): Promise<ProbeResult> {
  const t0 = performance.now();
  const url = modelsUrl(c);
  try {
    const res = await request(url, {
      method: 'GET',
      headers: {
        // read as it comes, never decompressed (as the data plane asks)
        'accept-encoding': 'identity',
        ...(c.apiKey ? { authorization: `Bearer ${c.apiKey}` } : {}),
        // an Anthropic-compatible server: its GET /v1/models reads these
        ...(c.type === 'anthropic' ? { 'anthropic-version': ANTHROPIC_VERSION, ...(c.apiKey ? { 'x-api-key': c.apiKey } : {}) } : {}),
      },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      // covers the body too: a body still arriving when it fires is destroyed
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (res.statusCode < 200 || res.statusCode >= 300) {
      await res.body.dump({ limit: 64 * 1024 }); // not read beyond that: destroyed
      const latency_ms = Math.round((performance.now() - t0) * 100) / 100;
      return { ok: false, latency_ms, models: [], error: `GET ${url} returned ${res.statusCode}`, status: res.statusCode };
    }
    const text = await readCapped(res.body, maxBytes, Number(res.headers['content-length']));
    const latency_ms = Math.round((performance.now() - t0) * 100) / 100;
    if (text === undefined)
      return { ok: false, latency_ms, models: [], error: `GET ${url}: the answer is larger than settings.limits.max_probe_bytes (${maxBytes} bytes)`, status: res.statusCode };
    let j: unknown;
    try {
      j = JSON.parse(text);
    } catch {
      return { ok: false, latency_ms, models: [], error: `GET ${url} did not return JSON`, status: res.statusCode };
    }
    const models = modelNames(c.type, j);
    if (!models) return { ok: false, latency_ms, models: [], error: `GET ${url} did not return a model list`, status: res.statusCode };
    return { ok: true, latency_ms, models, error: undefined, status: res.statusCode };
  } catch (e) {
    const err = e as { code?: string; cause?: { code?: string }; name?: string; message?: string };
    const code = err.code ?? err.cause?.code;
    const why =
      code === 'ECONNREFUSED' ? 'connection refused'
      : err.name === 'TimeoutError' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? `no complete answer within ${timeoutMs} ms`
      : code === 'ENOTFOUND' ? 'host not found'
      : (err.message ?? String(e));
    return { ok: false, latency_ms: Math.round((performance.now() - t0) * 100) / 100, models: [], error: `GET ${url}: ${why}`, status: undefined };
  }
}

function sameModels(a: readonly string[] | undefined, b: readonly string[]): boolean {
  if (!a || a.length !== b.length) return false;
  const set = new Set(a);
  return b.every((m) => set.has(m));
}

export class HealthChecker {
  private timers = new Map<string, { timer: NodeJS.Timeout; key: string }>();
  private stopped = false;
  private maxProbeBytes = DEFAULT_SETTINGS.limits.max_probe_bytes;

  /** onExposedChange(endpoint): an endpoint with expose_models now lists other models */
  constructor(
    private readonly runtime: Runtime,
    private readonly onExposedChange?: (endpoint: string) => void,
  ) {}

  /** (Re)schedule checks for the endpoints of a new snapshot. */
  update(s: Snapshot): void {
    if (this.stopped) return;
    this.maxProbeBytes = s.settings.limits.max_probe_bytes;
    for (const [name, cfg] of s.endpoints) {
      const key = `${cfg.baseUrl}|${cfg.apiKey ?? ''}|${JSON.stringify(cfg.health)}|${cfg.type}`;
      const cur = this.timers.get(name);
      if (cur?.key === key) continue;
      if (cur) clearInterval(cur.timer);
      if (!cfg.health.enabled) {
        this.timers.delete(name);
        const rt = this.runtime.endpoint(name);
        if (rt) rt.healthy = true;
        continue;
      }
      const timer = setInterval(() => void this.check(name), cfg.health.interval_ms);
      timer.unref();
      this.timers.set(name, { timer, key });
      void this.check(name);
    }
    for (const [name, t] of this.timers) {
      if (!s.endpoints.has(name)) {
        clearInterval(t.timer);
        this.timers.delete(name);
      }
    }
  }

  async check(name: string): Promise<ProbeResult | undefined> {
    const rt = this.runtime.endpoint(name);
    if (!rt) return undefined;
    const cfg = rt.config;
    const r = await probe(cfg, cfg.health.timeout_ms, this.maxProbeBytes);
    if (this.stopped || this.runtime.endpoint(name) !== rt) return r;
    rt.lastCheckAt = Date.now();
    if (r.ok) {
      rt.healthy = true;
      rt.healthFailures = 0;
      rt.lastCheckError = undefined;
      const before = rt.discoveredModels;
      rt.discoveredModels = r.models;
      if (cfg.exposeModels && !sameModels(before, r.models)) this.onExposedChange?.(name);
    } else {
      rt.healthFailures++;
      rt.lastCheckError = r.error;
      if (rt.healthFailures >= cfg.health.unhealthy_after) rt.healthy = false;
    }
    return r;
  }

  stop(): void {
    this.stopped = true;
    for (const t of this.timers.values()) clearInterval(t.timer);
    this.timers.clear();
  }
}
