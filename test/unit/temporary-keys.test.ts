// The playground's temporary keys, through the data plane's own authenticate(): valid only for
// the model they were minted for, attributed to the admin, gone when revoked or expired, and never
// in the stored keys.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { buildSnapshot } from '../../gateway/engine/snapshot.js';
import { authenticate, authorizeModel } from '../../gateway/engine/stages.js';
import { TemporaryKeys } from '../../gateway/engine/temporary-keys.js';
import { Secrets } from '../../gateway/store/secrets.js';
import { DEFAULT_SETTINGS } from '../../gateway/config/schema.js';
import type { StoredState } from '../../gateway/store/config-store.js';

const secrets = new Secrets(randomBytes(32));
const state: StoredState = { endpoints: [], models: [], teams: [], keys: [], routing_rules: [], guardrails: [], settings: DEFAULT_SETTINGS, mcp_servers: [], agents: [], mcp_virtual_servers: [] };
const bearer = (k: string) => ({ authorization: `Bearer ${k}` });
const code = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    return (e as { code?: string }).code;
  }
  return 'accepted';
};

describe('temporary keys', () => {
  const reg = new TemporaryKeys();
  const snap = { ...buildSnapshot(state, secrets, 1), temporaryKeys: reg };
  const t0 = 1_000_000;

  test('a minted key authenticates as "playground:ADMIN" (app playground), may use only its model, and no other admin shares it', () => {
    const a = reg.mint(secrets, 'root', ['chat'], 60_000, t0);
    const b = reg.mint(secrets, 'alice', ['chat'], 60_000, t0);
    assert.notEqual(a.secret, b.secret);
    assert.match(a.secret, /^sk-airlock-[A-Za-z0-9_-]{32}$/);
    const rec = authenticate(snap, secrets, bearer(a.secret), t0 + 1);
    assert.equal(rec.name, 'playground:root');
    assert.equal(rec.app, 'playground');
    assert.equal(rec.team, undefined);
    assert.equal(authenticate(snap, secrets, bearer(b.secret), t0 + 1).name, 'playground:alice');
    assert.doesNotThrow(() => authorizeModel(rec, 'chat', 'chat'));
    assert.equal(code(() => authorizeModel(rec, 'other', 'other')), 'model_not_allowed');
    assert.equal(snap.keysByHash.size, 0, 'never a stored key');
    a.revoke();
    b.revoke();
  });

  test('revoked: refused as an unknown key; expired: refused and dropped', () => {
    const a = reg.mint(secrets, 'root', ['chat'], 60_000, t0);
    a.revoke();
    assert.equal(code(() => authenticate(snap, secrets, bearer(a.secret), t0 + 1)), 'invalid_api_key');
    const b = reg.mint(secrets, 'root', ['chat'], 60_000, t0);
    assert.equal(code(() => authenticate(snap, secrets, bearer(b.secret), t0 + 59_999)), 'accepted');
    assert.equal(code(() => authenticate(snap, secrets, bearer(b.secret), t0 + 60_000)), 'invalid_api_key');
    assert.equal(reg.size, 0, 'the expired key is dropped');
    // a snapshot without the registry (e.g. a tool) knows no temporary keys
    const c = reg.mint(secrets, 'root', ['chat'], 60_000, t0);
    assert.equal(code(() => authenticate(buildSnapshot(state, secrets, 1), secrets, bearer(c.secret), t0 + 1)), 'invalid_api_key');
    c.revoke();
  });
});
