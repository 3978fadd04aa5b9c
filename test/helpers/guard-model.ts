// Shared setup of the guard_model tests (guard-model.test.ts: inputs and the "try it" endpoint;
// guard-model-output.test.ts: answers and tool calls): one simulated upstream plays the model (it
// echoes) and the classifier (Llama Guard's "unsafe\nS1" for anything about a bomb, "safe"
// otherwise, or whatever trouble a test sets), a gateway with the four models both files use.
import assert from 'node:assert/strict';
import OpenAI from 'openai';
import { TEST_KEY, startGateway, type RunningGateway } from './gateway.js';
import { startUpstream, type Behavior, type RecordedRequest, type TestUpstream } from './upstream.js';

export const GUARD = 'llama-guard-3-1b';

/** a guard_model detector on the `guard` alias: fails closed after 1.5 s unless `over` says otherwise */
export const guard = (over: Record<string, unknown> = {}) => ({ type: 'guard_model', model: 'guard', timeout_ms: 1500, on_failure: 'closed', ...over });

/** The gateway's config: models chat, lenient, watched (the model) and guard (the classifier) on
 * one endpoint, a breaker that one charged failure opens, and `extra` (guardrails, agents, ...). */
export function guardModelConfig(url: string, extra: Record<string, unknown>) {
  return {
    endpoints: [{ name: 'gpu-1', base_url: url, health_check: { enabled: true, interval_ms: 60_000 } }],
    models: [
      { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      { name: 'lenient', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      { name: 'watched', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
      { name: 'guard', targets: [{ endpoint: 'gpu-1', model: GUARD }] },
    ],
    teams: [{ name: 'research' }],
    keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research' }],
    // one failure opens a breaker: a guard call that charged it would shut the guard model out
    settings: { breaker: { failure_threshold: 1, cooldown_ms: 600_000 }, retry_after_cap_ms: 0 },
    ...extra,
  };
}

export interface GuardModelSetup {
  up: TestUpstream;
  gw: RunningGateway;
  ai: OpenAI;
  /** what the classifier does instead of answering (undefined: it answers) */
  trouble: Behavior | undefined;
  /** what the model does (undefined: it echoes) */
  answer: Behavior | undefined;
  /** the requests the classifier received */
  guardCalls(): RecordedRequest[];
  /** the guardrail events of a request */
  events(requestId: string): Promise<any[]>;
  close(): Promise<void>;
}

export async function startGuardModel(extra: Record<string, unknown>): Promise<GuardModelSetup> {
  const up = await startUpstream({ models: ['test-model', GUARD] });
  const s = { trouble: undefined, answer: undefined } as GuardModelSetup;
  up.setBehavior((req: RecordedRequest): Behavior => {
    if (req.body?.model !== GUARD) return s.answer ?? { kind: 'ok' };
    if (s.trouble) return s.trouble;
    return { kind: 'ok', content: /bomb/i.test(JSON.stringify(req.body.messages)) ? 'unsafe\nS1' : 'safe' };
  });
  const gw = await startGateway({ config: guardModelConfig(up.url, extra) }).catch(async (e: unknown) => {
    await up.close();
    throw e;
  });
  return Object.assign(s, {
    up,
    gw,
    ai: new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 20_000 }),
    guardCalls: () => up.completions().filter((r) => r.body?.model === GUARD),
    events: async (id: string) => (await gw.admin<{ data: any[] }>('GET', `/guardrail-events?request_id=${id}`)).body.data,
    async close() {
      await gw.stop();
      await up.close();
    },
  });
}

/** The API error a request ends with (it must fail). */
export async function refused(p: PromiseLike<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  assert.fail('expected a refusal');
}
