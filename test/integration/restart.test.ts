// "Restart now" (POST /admin/api/v1/restart): owner only; it answers, then the gateway stops
// gracefully and exits with code 75 for its supervisor to start it again. Without a supervisor
// it refuses and says to restart by hand. Real gateway processes; the restart under the desktop
// shell's supervisor is in test/unit/shell-supervisor-gateway.test.ts.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { ADMIN_TOKEN, startGateway } from '../helpers/gateway.js';

const cleanup: string[] = [];
after(() => {
  for (const d of cleanup) fs.rmSync(d, { recursive: true, force: true });
});

describe('restart now', () => {
  test('under a supervisor: only the owner may restart; the answer comes first, then a graceful exit with code 75; the next start has the same data', async () => {
    const gw = await startGateway({ env: { AIRLOCK_SUPERVISOR: 'test-supervisor' }, config: { teams: [{ name: 'kept' }] } });
    cleanup.push(gw.dataDir);
    const tokens: Record<string, string> = {};
    for (const role of ['admin', 'auditor'] as const) {
      const t = await gw.admin('POST', '/tokens', { name: `t-${role}`, role });
      assert.equal(t.status, 201);
      tokens[role] = t.body.token;
    }
    for (const role of ['admin', 'auditor']) {
      const h = { authorization: `Bearer ${tokens[role]}` };
      const info = await gw.admin('GET', '/restart', undefined, h);
      assert.equal(info.status, 200, role);
      assert.deepEqual(info.body, { supported: true, supervisor: 'test-supervisor', message: null });
      const r = await gw.admin('POST', '/restart', {}, h);
      assert.equal(r.status, 403, `${role} may not restart`);
    }
    const anon = await fetch(`${gw.adminUrl}/admin/api/v1/restart`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
    assert.equal(anon.status, 401);
    assert.equal((await fetch(`${gw.dataUrl}/healthz`)).status, 200, 'still serving after the refused ones');

    const r = await gw.admin('POST', '/restart', {});
    assert.equal(r.status, 202, JSON.stringify(r.body));
    assert.deepEqual(r.body, { restarting: true, supervisor: 'test-supervisor', exit_code: 75 });
    const exit = await gw.exited;
    assert.deepEqual(exit, { code: 75, signal: null });
    assert.match(gw.stdout(), /restart asked for by .*: stopping/);
    assert.match(gw.stdout(), /stopped; exiting with code 75 for test-supervisor to start it again/);

    // what the supervisor does: start it again on the same data dir (the lock was released)
    const again = await startGateway({ dataDir: gw.dataDir, env: { AIRLOCK_SUPERVISOR: 'test-supervisor' } });
    try {
      assert.match(JSON.stringify((await again.admin('GET', '/config')).body), /"kept"/);
      const events = await again.admin('GET', '/audit/events?limit=50');
      assert.ok(
        events.body.data.some((e: any) => e.data?.action === 'restart the gateway' && e.actor === 'env:AIRLOCK_ADMIN_TOKEN'),
        `the restart is in the audit log: ${JSON.stringify(events.body.data.map((e: any) => [e.kind, e.actor, e.data?.action]))}`,
      );
    } finally {
      await again.stop();
    }
  });

  test('without a supervisor (a plain "airlock serve"): refused with a message that says to restart by hand; the gateway keeps serving', async () => {
    const gw = await startGateway();
    cleanup.push(gw.dataDir);
    try {
      const info = await gw.admin('GET', '/restart');
      assert.equal(info.body.supported, false);
      assert.equal(info.body.supervisor, null);
      assert.match(info.body.message, /restart it by hand/);
      const r = await gw.admin('POST', '/restart', {}, { authorization: `Bearer ${ADMIN_TOKEN}` });
      assert.equal(r.status, 409);
      assert.equal(r.body.error.code, 'no_supervisor');
      assert.match(r.body.error.message, /without a supervisor .* restart it by hand/);
      assert.equal((await fetch(`${gw.dataUrl}/healthz`)).status, 200);
    } finally {
      const exit = await gw.stop();
      assert.equal(exit.code, 0);
    }
  });
});
