// The environment the desktop shell starts the gateway with (main/lib/gateway-env.ts): the shell's
// own, the data dir and the proof key, and one malloc arena (MALLOC_ARENA_MAX=1) unless the
// environment already says otherwise.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gatewayEnv } from '../../main/lib/gateway-env.js';

test('the gateway gets MALLOC_ARENA_MAX=1, the data dir and the extra variables, over the shell environment', () => {
  const env = gatewayEnv({ PATH: '/usr/bin', AIRLOCK_DATA_DIR: '/elsewhere', HOME: '/home/a' }, '/data', { AIRLOCK_SHELL_PROOF_KEY: 'k' });
  assert.deepEqual(env, { PATH: '/usr/bin', HOME: '/home/a', MALLOC_ARENA_MAX: '1', AIRLOCK_DATA_DIR: '/data', AIRLOCK_SHELL_PROOF_KEY: 'k' });
});

test('an arena count the environment sets is kept', () => {
  assert.equal(gatewayEnv({ MALLOC_ARENA_MAX: '4' }, '/data', {}).MALLOC_ARENA_MAX, '4');
});
