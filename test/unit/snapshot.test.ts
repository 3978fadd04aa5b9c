// Timeouts the engine derives from an endpoint's configuration.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { buildSnapshot, DEFAULT_FIRST_BYTE_TIMEOUT_MS, DEFAULT_TIMEOUT_MS } from '../../gateway/engine/snapshot.js';
import { Secrets } from '../../gateway/store/secrets.js';
import { DEFAULT_SETTINGS } from '../../gateway/config/schema.js';
import type { StoredState } from '../../gateway/store/config-store.js';

const secrets = new Secrets(randomBytes(32));
const state = (endpoints: StoredState['endpoints']): StoredState => ({ endpoints, models: [], teams: [], keys: [], routing_rules: [], guardrails: [], settings: DEFAULT_SETTINGS, mcp_servers: [], agents: [], mcp_virtual_servers: [] });

describe('endpoint timeouts in the snapshot', () => {
  test('unset: streams fail over after 30 s without a byte; non-streamed answers (which arrive whole) get the whole-request timeout', () => {
    const e = buildSnapshot(state([{ name: 'a', type: 'openai', base_url: 'http://127.0.0.1:1/v1' }]), secrets, 1).endpoints.get('a')!;
    assert.equal(e.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS);
    assert.equal(e.timeoutMs, DEFAULT_TIMEOUT_MS);
    assert.equal(e.firstByteTimeoutNonStreamMs, DEFAULT_TIMEOUT_MS);
  });

  test('timeout_ms alone bounds a non-streamed request’s wait for its answer', () => {
    const e = buildSnapshot(state([{ name: 'a', type: 'openai', base_url: 'http://127.0.0.1:1/v1', timeout_ms: 90_000 }]), secrets, 1).endpoints.get('a')!;
    assert.equal(e.firstByteTimeoutNonStreamMs, 90_000);
    assert.equal(e.firstByteTimeoutMs, DEFAULT_FIRST_BYTE_TIMEOUT_MS);
  });

  test('an explicit first_byte_timeout_ms applies to streamed and non-streamed requests alike', () => {
    const e = buildSnapshot(state([{ name: 'a', type: 'openai', base_url: 'http://127.0.0.1:1/v1', timeout_ms: 90_000, first_byte_timeout_ms: 500 }]), secrets, 1).endpoints.get('a')!;
    assert.equal(e.firstByteTimeoutMs, 500);
    assert.equal(e.firstByteTimeoutNonStreamMs, 500);
  });
});
