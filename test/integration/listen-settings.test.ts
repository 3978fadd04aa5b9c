// Stored listen settings (settings.listen): validated by the settings schema, applied when the
// gateway starts without flags, overridden by flags and environment variables (flag > env >
// stored > default), and reported on /status with where each value came from.
//
// Every gateway here listens on loopback (127.0.0.x) and port 0 or a port found free just before:
// nothing is ever exposed to the network.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { TEST_KEY, basicConfig, runCli, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** No listen variables from the environment the tests run in. */
const NO_LISTEN_ENV = { AIRLOCK_HOST: '', AIRLOCK_PORT: '', AIRLOCK_ADMIN_HOST: '', AIRLOCK_ADMIN_PORT: '' };

function canBind(host: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(0, host, () => s.close(() => resolve(true)));
  });
}
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

interface Status {
  listen: { data: string; admin: string };
  listen_config: { data_host: string; data_port: number; admin_host: string; admin_port: number };
  listen_source: Record<'data_host' | 'data_port' | 'admin_host' | 'admin_port', 'flag' | 'env' | 'settings' | 'default'>;
}

describe('listen settings', () => {
  let up: TestUpstream | undefined;
  const running: RunningGateway[] = [];
  const start = async (opts: Parameters<typeof startGateway>[0]) => {
    const gw = await startGateway({ ...opts, env: { ...NO_LISTEN_ENV, ...opts?.env } });
    running.push(gw);
    return gw;
  };
  const status = async (gw: RunningGateway) => {
    const r = await gw.admin<Status>('GET', '/status');
    assert.equal(r.status, 200);
    return r.body;
  };

  after(async () => {
    await Promise.all(running.map((g) => g.stop()));
    await up?.close();
  });

  test('stored on PUT /settings, used on the next start without flags, overridden by flags and environment', async () => {
    up = await startUpstream();
    // Linux answers on all of 127.0.0.0/8: a second loopback address tells "stored" from "default".
    const altHost = (await canBind('127.0.0.2')) ? '127.0.0.2' : '127.0.0.1';
    const dataDir = tmpDir();

    // 1. Started with the test flags (--port 0 --admin-port 0): hosts are the defaults.
    const gw1 = await start({ dataDir, config: basicConfig(up.url) });
    let st = await status(gw1);
    assert.deepEqual(st.listen_source, { data_host: 'default', data_port: 'flag', admin_host: 'default', admin_port: 'flag' });
    assert.deepEqual(st.listen_config, { data_host: '127.0.0.1', data_port: 0, admin_host: '127.0.0.1', admin_port: 0 });
    assert.equal(st.listen.data, gw1.dataUrl);
    assert.equal(st.listen.admin, gw1.adminUrl);
    const settings = (await gw1.admin('GET', '/settings')).body;
    assert.deepEqual(settings.listen, { data_host: '127.0.0.1', data_port: 4000, admin_host: '127.0.0.1', admin_port: 4001 }, 'defaults');

    // Validation, with the field named.
    for (const [listen, param] of [
      [{ data_host: 'gateway.example.org' }, 'listen.data_host'],
      [{ data_host: '300.1.1.1' }, 'listen.data_host'],
      [{ admin_host: '' }, 'listen.admin_host'],
      [{ data_port: 65536 }, 'listen.data_port'],
      [{ admin_port: -1 }, 'listen.admin_port'],
      [{ admin_port: 80.5 }, 'listen.admin_port'],
      [{ data_host: '0.0.0.0', bind_all: true }, 'listen'],
    ] as const) {
      const r = await gw1.admin('PUT', '/settings', { ...settings, listen: { ...settings.listen, ...listen } });
      assert.equal(r.status, 400, JSON.stringify(listen));
      assert.equal(r.body.error.param, param, JSON.stringify(r.body));
    }
    // Wildcards, IPv6 literals and "localhost" are valid values (only stored here; this test never binds them).
    for (const host of ['0.0.0.0', '::', '::1', 'localhost', '10.1.2.3']) {
      const r = await gw1.admin('PUT', '/settings', { ...settings, listen: { ...settings.listen, data_host: host, admin_host: host } });
      assert.equal(r.status, 200, `${host}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body.listen.data_host, host);
    }
    // What is stored does not change where the running gateway listens (that needs a restart).
    assert.deepEqual((await status(gw1)).listen, st.listen);

    const stored = { data_host: altHost, data_port: 0, admin_host: '127.0.0.1', admin_port: 0 };
    const put = await gw1.admin('PUT', '/settings', { ...settings, listen: stored });
    assert.equal(put.status, 200);
    assert.deepEqual(put.body.listen, stored);
    assert.deepEqual((await gw1.admin('GET', '/settings')).body.listen, stored);
    assert.equal((await gw1.stop()).code, 0);

    // 2. Restarted on the same data dir without flags: the stored settings decide.
    const gw2 = await start({ dataDir, listenFlags: false });
    st = await status(gw2);
    assert.deepEqual(st.listen_source, { data_host: 'settings', data_port: 'settings', admin_host: 'settings', admin_port: 'settings' });
    assert.deepEqual(st.listen_config, stored);
    const dataUrl = new URL(gw2.dataUrl);
    assert.equal(dataUrl.hostname, altHost, 'the data plane listens on the stored address');
    assert.notEqual(dataUrl.port, '4000', 'port 0 (any free port), not the default');
    assert.notEqual(new URL(gw2.adminUrl).port, '4001');
    assert.equal(st.listen.data, gw2.dataUrl);
    const models = await fetch(`${gw2.dataUrl}/v1/models`, { headers: { authorization: `Bearer ${TEST_KEY}` } });
    assert.equal(models.status, 200, 'the data plane answers on the stored address');
    assert.equal((await gw2.stop()).code, 0);

    // 3. A flag beats the environment, which beats the stored value.
    const adminPort = await freePort();
    const gw3 = await start({
      dataDir,
      listenFlags: false,
      args: ['--host', '127.0.0.1', '--port', '0'],
      env: { AIRLOCK_HOST: altHost === '127.0.0.1' ? 'localhost' : altHost, AIRLOCK_ADMIN_PORT: String(adminPort) },
    });
    st = await status(gw3);
    assert.deepEqual(st.listen_source, { data_host: 'flag', data_port: 'flag', admin_host: 'settings', admin_port: 'env' });
    assert.deepEqual(st.listen_config, { data_host: '127.0.0.1', data_port: 0, admin_host: '127.0.0.1', admin_port: adminPort });
    assert.equal(new URL(gw3.dataUrl).hostname, '127.0.0.1', '--host wins over AIRLOCK_HOST and the stored value');
    assert.equal(new URL(gw3.adminUrl).port, String(adminPort), 'AIRLOCK_ADMIN_PORT wins over the stored port');
    // The stored settings are untouched by flags.
    assert.deepEqual((await gw3.admin('GET', '/settings')).body.listen, stored);
    assert.equal((await gw3.stop()).code, 0);
  });

  test('settings.listen in a --config file applies on that same start', async () => {
    const dataDir = tmpDir();
    const gw = await start({ dataDir, listenFlags: false, config: { settings: { listen: { data_port: 0, admin_port: 0 } } } });
    const st = await status(gw);
    assert.deepEqual(st.listen_source, { data_host: 'settings', data_port: 'settings', admin_host: 'settings', admin_port: 'settings' });
    assert.deepEqual(st.listen_config, { data_host: '127.0.0.1', data_port: 0, admin_host: '127.0.0.1', admin_port: 0 });
    assert.equal(new URL(gw.dataUrl).hostname, '127.0.0.1');
    assert.notEqual(new URL(gw.dataUrl).port, '4000');
    assert.deepEqual((await gw.admin('GET', '/settings')).body.listen, { data_host: '127.0.0.1', data_port: 0, admin_host: '127.0.0.1', admin_port: 0 });
  });

  test('only an owner may change the listen addresses; an admin may change ports and other settings', async () => {
    const gw = await start({ dataDir: tmpDir() });
    const tok = await gw.admin('POST', '/tokens', { name: 'ops', role: 'admin' });
    assert.equal(tok.status, 201);
    const asAdmin = { authorization: `Bearer ${tok.body.token}` };
    const settings = (await gw.admin('GET', '/settings')).body;

    const expose = await gw.admin('PUT', '/settings', { ...settings, listen: { ...settings.listen, data_host: '0.0.0.0' } }, asAdmin);
    assert.equal(expose.status, 403);
    assert.match(expose.body.error.message, /owner/);
    const viaApply = await gw.admin('POST', '/config/apply', { settings: { ...settings, listen: { ...settings.listen, admin_host: '0.0.0.0' } } }, asAdmin);
    assert.equal(viaApply.status, 403);
    assert.deepEqual((await gw.admin('GET', '/settings')).body.listen, settings.listen, 'nothing stored');

    const ports = await gw.admin('PUT', '/settings', { ...settings, listen: { ...settings.listen, data_port: 4100 } }, asAdmin);
    assert.equal(ports.status, 200, 'ports are not a matter of exposure');
    const owner = await gw.admin('PUT', '/settings', { ...settings, listen: { ...settings.listen, data_host: '0.0.0.0' } });
    assert.equal(owner.status, 200, 'AIRLOCK_ADMIN_TOKEN is owner-level');
    assert.equal(owner.body.listen.data_host, '0.0.0.0');
  });

  test('a bad port in the environment is a usage error naming the variable', async () => {
    const r = await runCli(['serve', '--data-dir', tmpDir()], { env: { ...NO_LISTEN_ENV, AIRLOCK_PORT: 'eighty' } });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /AIRLOCK_PORT must be a port number from 0 to 65535, not "eighty"/);
    const f = await runCli(['serve', '--data-dir', tmpDir(), '--admin-port', '70000'], { env: NO_LISTEN_ENV });
    assert.equal(f.code, 2);
    assert.match(f.stderr, /--admin-port must be a port number/);
    // other spellings of a number are not port numbers: hex, exponent, fraction, sign
    for (const v of ['0x10', '1e3', '1.5', '+80', ' 80x']) {
      const x = await runCli(['serve', '--data-dir', tmpDir(), '--port', v], { env: NO_LISTEN_ENV });
      assert.equal(x.code, 2, v);
      assert.match(x.stderr, new RegExp(`--port must be a port number from 0 to 65535, not "${v.replace(/[.+]/g, '\\$&')}"`), v);
    }
  });
});
