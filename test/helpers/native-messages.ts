// Shared setup of the tests that talk to a `type: anthropic` endpoint beside a Chat Completions
// one (messages-native.test.ts, reasoning.test.ts): both endpoints on one simulated upstream, the
// models each test file names, the ledger row of a request, the upstream's last request.
import assert from 'node:assert/strict';
import Anthropic from '@anthropic-ai/sdk';
import OpenAI from 'openai';
import { TEST_KEY, eventually, startGateway, type RunningGateway } from './gateway.js';
import { startUpstream, type RecordedRequest, type TestUpstream } from './upstream.js';

export const PRICE = { input_per_million: 1000, output_per_million: 3000 };

/** claude-box (speaks Messages natively; `apiKey`: the key it wants) and gpu-1 (Chat Completions), on one upstream. */
export function nativeEndpoints(url: string, apiKey?: string) {
  return [
    { name: 'claude-box', type: 'anthropic', base_url: url, ...(apiKey ? { api_key: apiKey } : {}), health_check: { enabled: true, interval_ms: 60_000 } },
    { name: 'gpu-1', base_url: url, health_check: { enabled: true, interval_ms: 60_000 } },
  ];
}

export type LedgerRow = Record<string, any>;

/** The ledger row of a request, once it is written. */
export async function ledgerRow(gw: RunningGateway, requestId: string): Promise<LedgerRow> {
  return eventually(async () => {
    const r = await gw.admin<{ data: LedgerRow[] }>('GET', `/usage/requests?request_id=${requestId}`);
    assert.equal(r.status, 200);
    return r.body.data[0];
  }, `ledger row of ${requestId}`);
}

/** The last model request the upstream received. */
export function lastPost(up: TestUpstream): RecordedRequest {
  const r = up.completions().at(-1);
  assert.ok(r, 'the upstream received a request');
  return r;
}

export const costOf = (prompt: number, completion: number) => (prompt * PRICE.input_per_million + completion * PRICE.output_per_million) / 1e6;

export interface NativeSetup {
  up: TestUpstream;
  gw: RunningGateway;
  /** the official Anthropic client on the gateway */
  claude: Anthropic;
  /** the official OpenAI client on the gateway */
  openai: OpenAI;
  close(): Promise<void>;
}

/** A simulated upstream serving `models`, a gateway with `config(upstream url)`, and both official clients. */
export async function startNative(models: string[], config: (url: string) => Record<string, unknown>): Promise<NativeSetup> {
  const up = await startUpstream({ models });
  const gw = await startGateway({ config: config(up.url) }).catch(async (e: unknown) => {
    await up.close();
    throw e;
  });
  return {
    up,
    gw,
    claude: new Anthropic({ apiKey: TEST_KEY, baseURL: gw.dataUrl, maxRetries: 0, timeout: 20_000 }),
    openai: new OpenAI({ apiKey: TEST_KEY, baseURL: `${gw.dataUrl}/v1`, maxRetries: 0, timeout: 20_000 }),
    async close() {
      await gw.stop();
      await up.close();
    },
  };
}
