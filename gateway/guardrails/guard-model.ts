// The model-based check (detector `guard_model`): a local classifier model registered in Airlock
// (e.g. Llama Guard on one of the endpoints) is asked whether an input is safe, through Airlock's
// own routing (the alias's targets in the routing order, healthy endpoints first), with the
// policy's timeout and its explicit fail-open or fail-closed choice. The guard's calls are the
// gateway's own: they never count against the upstream's circuit breaker, take no concurrency
// slot from the clients and leave no ledger row; the decision is a guardrail event as any other.
import type { Runtime } from '../engine/runtime.js';
import { orderTargets } from '../engine/router.js';
import type { Snapshot } from '../engine/snapshot.js';
import { dispatchCall } from '../engine/upstream-call.js';

export interface GuardModelSpec {
  model: string;
  timeout_ms: number;
  on_failure: 'open' | 'closed';
  unsafe_when: string;
  instructions?: string;
}

export type GuardModelVerdict = { verdict: 'safe' | 'unsafe'; category?: string } | { verdict: 'failed'; reason: string };

/** The classifier's answer: its first word against `unsafe_when` (case-insensitive); Llama Guard's
 * "unsafe\nS1" gives the category too. */
export function readVerdict(answer: string, unsafeWhen: string): { verdict: 'safe' | 'unsafe'; category?: string } {
  const words = answer.trim().split(/\s+/);
  const first = (words[0] ?? '').replace(/[.,:;!]+$/, '').toLowerCase();
  if (first !== unsafeWhen.toLowerCase()) return { verdict: 'safe' };
  const category = words[1]?.match(/^[A-Za-z0-9_-]{1,32}$/)?.[0];
  return category ? { verdict: 'unsafe', category: category.toUpperCase() } : { verdict: 'unsafe' };
}

export type GuardModelClient = (snapshot: Snapshot, spec: GuardModelSpec, text: string) => Promise<GuardModelVerdict>;

/** The client the gateway gives the guardrail engine. */
export function guardModelClient(runtime: Runtime): GuardModelClient {
  return async (snapshot, spec, text) => {
    const model = snapshot.models.get(spec.model);
    if (!model) return { verdict: 'failed', reason: `the guard model "${spec.model}" is not a model of this gateway` };
    const signal = AbortSignal.timeout(spec.timeout_ms);
    const failures: string[] = [];
    // healthy endpoints in the routing order; one try each, all within the one timeout
    for (const t of orderTargets(model, runtime)) {
      const ep = runtime.endpoint(t.endpoint);
      if (!ep || ep.config.type === 'anthropic') continue;
      const messages = spec.instructions ? [{ role: 'system', content: spec.instructions }, { role: 'user', content: text }] : [{ role: 'user', content: text }];
      const headers: Record<string, string> = { 'content-type': 'application/json', 'accept-encoding': 'identity' };
      if (ep.config.apiKey) headers.authorization = `Bearer ${ep.config.apiKey}`;
      const base = ep.config.type === 'ollama' && !/\/v1$/.test(ep.config.basePath) ? `${ep.config.basePath}/v1` : ep.config.basePath;
      if (signal.aborted) break; // the one timeout is spent
      const c = dispatchCall(ep.pool, {
        method: 'POST',
        path: `${base}/chat/completions`,
        headers,
        body: JSON.stringify({ model: t.upstreamModel, messages, max_tokens: 16, temperature: 0 }),
        // the policy's timeout is the signal's: undici's own timers only back it up (set equal,
        // they raced it, and a hung classifier was reported as "could not be asked")
        headersTimeout: spec.timeout_ms + 1000,
        bodyTimeout: spec.timeout_ms + 1000,
      });
      const stop = () => c.abort(signal.reason as Error);
      signal.addEventListener('abort', stop, { once: true });
      try {
        const up = await c.answer;
        // a classifier's answer is a few words: 64 kB is plenty, more is cut
        const body = await up.body.text(64 * 1024);
        if (up.statusCode !== 200) {
          failures.push(`${t.id}: status ${up.statusCode}`);
          continue;
        }
        const j = JSON.parse(body) as { choices?: { message?: { content?: unknown } }[] };
        const content = j.choices?.[0]?.message?.content;
        if (typeof content !== 'string') {
          failures.push(`${t.id}: no answer text`);
          continue;
        }
        return readVerdict(content, spec.unsafe_when);
      } catch (e) {
        if (signal.aborted) return { verdict: 'failed', reason: `the guard model "${spec.model}" did not answer within ${spec.timeout_ms} ms` };
        failures.push(`${t.id}: ${(e as Error).message}`);
      } finally {
        signal.removeEventListener('abort', stop);
      }
    }
    if (signal.aborted) return { verdict: 'failed', reason: `the guard model "${spec.model}" did not answer within ${spec.timeout_ms} ms` };
    return { verdict: 'failed', reason: `the guard model "${spec.model}" could not be asked (${failures.join('; ') || 'no available target'})` };
  };
}
