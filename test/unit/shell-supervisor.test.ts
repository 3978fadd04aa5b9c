// The desktop shell's gateway supervisor: a fake child (an EventEmitter) and a fake clock drive
// every transition; no real time passes and nothing is timed.
import { EventEmitter } from 'node:events';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connectableUrl, GatewaySupervisor, parseGatewayLine, STOP_MESSAGE, type Clock, type GatewayChild, type GatewayStatus } from '../../main/lib/supervisor.js';
import { statusPage } from '../../main/lib/pages.js';

/**
 * A child as Electron's UtilityProcess behaves: postMessage() reaches the gateway (which drains
 * and exits 0 when the test says so); kill() is not graceful (SIGTERM then SIGKILL ~2 s later on
 * Linux/macOS, TerminateProcess on Windows), so the tests count it as a failure to stop cleanly.
 */
class FakeChild extends EventEmitter implements GatewayChild {
  killed = 0;
  messages: unknown[] = [];
  postMessage(message: unknown): void {
    this.messages.push(message);
  }
  kill(): boolean {
    this.killed++;
    return true;
  }
  ready(extra: Record<string, unknown> = {}): void {
    this.emit('message', { type: 'ready', data: 'http://127.0.0.1:4000', admin: 'http://127.0.0.1:4001', version: '0.1.0', ...extra });
  }
  exit(code: number): void {
    this.emit('exit', code);
  }
}

/** Timers that fire only when the test advances the clock. */
class FakeClock implements Clock {
  t = 0;
  private next = 1;
  private timers = new Map<number, { at: number; fn: () => void; ms: number }>();
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.timers.set(id, { at: this.t + ms, fn, ms });
    return id;
  }
  clearTimeout(h: unknown): void {
    this.timers.delete(h as number);
  }
  /** Delays of the timers pending now, sorted. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.ms).sort((a, b) => a - b);
  }
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.at <= end).sort((a, b) => a[1].at - b[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.t = due[1].at;
      due[1].fn();
    }
    this.t = end;
  }
}

const LOG = '/data/airlock/logs/airlock.log';

function setup(opts: { readyTimeoutMs?: number; maxBackoffMs?: number; stableAfterMs?: number; maxFailedStarts?: number } = {}) {
  const clock = new FakeClock();
  const children: FakeChild[] = [];
  const states: string[] = [];
  const logs: string[] = [];
  const sup = new GatewaySupervisor({
    log: (l) => logs.push(l),
    fork: () => {
      const c = new FakeChild();
      children.push(c);
      return c;
    },
    clock,
    logPath: LOG,
    readyTimeoutMs: opts.readyTimeoutMs ?? 30_000,
    initialBackoffMs: 1_000,
    maxBackoffMs: opts.maxBackoffMs ?? 8_000,
    stableAfterMs: opts.stableAfterMs ?? 60_000,
    maxFailedStarts: opts.maxFailedStarts ?? 5,
    stopMarginMs: 10_000,
    killWaitMs: 5_000,
  });
  sup.on('status', (s: GatewayStatus) => states.push(s.state));
  const last = () => children[children.length - 1]!;
  return { sup, clock, children, states, last, logs };
}

describe('shell supervisor', () => {
  test('ready within the timeout → running, with the URLs, version and origin', () => {
    const { sup, clock, children, states, last } = setup();
    sup.start();
    assert.equal(sup.status.state, 'starting');
    assert.equal(children.length, 1);
    clock.advance(29_999);
    last().ready();
    assert.equal(sup.status.state, 'running');
    assert.equal(sup.status.data, 'http://127.0.0.1:4000');
    assert.equal(sup.status.admin, 'http://127.0.0.1:4001');
    assert.equal(sup.status.version, '0.1.0');
    assert.equal(sup.adminOrigin, 'http://127.0.0.1:4001');
    assert.deepEqual(states, ['starting', 'running']);
    // The ready timer is gone: much later it is still running.
    clock.advance(10 * 60_000);
    assert.equal(sup.status.state, 'running');
    assert.equal(children.length, 1);
    assert.equal(last().killed, 0);
  });

  test('no ready message in time → failed, the error names the log path, the child is killed and not restarted', () => {
    const { sup, clock, children, last } = setup({ readyTimeoutMs: 30_000 });
    sup.start();
    clock.advance(30_000);
    const s = sup.status;
    assert.equal(s.state, 'failed');
    assert.match(s.error ?? '', /did not become ready within 30 seconds/);
    assert.ok(s.error?.includes(LOG), `error names the log path: ${s.error}`);
    assert.equal(s.logPath, LOG);
    assert.equal(last().killed, 1);
    assert.equal(sup.adminOrigin, null);
    // The killed child's exit is expected: no restart follows.
    last().exit(143);
    clock.advance(10 * 60_000);
    assert.equal(sup.status.state, 'failed');
    assert.equal(children.length, 1);
    // A late ready message from the abandoned child changes nothing.
    children[0]!.ready();
    assert.equal(sup.status.state, 'failed');
    // start() tries again.
    sup.start();
    assert.equal(sup.status.state, 'starting');
    assert.equal(children.length, 2);
    last().ready();
    assert.equal(sup.status.state, 'running');
  });

  test('crash → restart after a backoff of 1 s, 2 s, 4 s, … capped', () => {
    const { sup, clock, children, last } = setup({ maxBackoffMs: 8_000 });
    sup.start();
    last().ready();
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      last().exit(1);
      const s = sup.status;
      assert.equal(s.state, 'restarting');
      assert.equal(s.lastExitCode, 1);
      assert.ok(s.error?.includes(LOG));
      assert.equal(sup.adminOrigin, null);
      delays.push(s.restartInMs!);
      const before = children.length;
      clock.advance(s.restartInMs! - 1);
      assert.equal(children.length, before, 'not restarted before the backoff is over');
      clock.advance(1);
      assert.equal(children.length, before + 1, 'restarted when the backoff is over');
      assert.equal(sup.status.state, 'starting');
      last().ready();
      assert.equal(sup.status.state, 'running');
    }
    assert.deepEqual(delays, [1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    assert.equal(sup.status.restarts, 6);
  });

  test('running stably for stableAfterMs resets the backoff', () => {
    const { sup, clock, last } = setup({ stableAfterMs: 60_000 });
    sup.start();
    last().ready();
    last().exit(1);
    clock.advance(1_000);
    last().ready();
    last().exit(1);
    assert.equal(sup.status.restartInMs, 2_000);
    clock.advance(2_000);
    last().ready();
    assert.equal(sup.nextBackoffMs, 4_000);
    // Not yet stable: a crash now would wait 4 s.
    clock.advance(59_999);
    assert.equal(sup.nextBackoffMs, 4_000);
    clock.advance(1);
    assert.equal(sup.nextBackoffMs, 1_000);
    last().exit(1);
    assert.equal(sup.status.restartInMs, 1_000);
  });

  test('a crash before the stable period does not reset the backoff', () => {
    const { sup, clock, last } = setup({ stableAfterMs: 60_000 });
    sup.start();
    last().ready();
    last().exit(1);
    clock.advance(1_000);
    last().ready();
    clock.advance(30_000);
    last().exit(1);
    assert.equal(sup.status.restartInMs, 2_000);
  });

  test('stop() asks the child with the stop message, waits its grace, does not kill or restart it', async () => {
    const { sup, clock, children, states, last } = setup();
    sup.start();
    last().ready({ shutdown_grace_ms: 30_000 });
    const stopped = sup.stop();
    assert.equal(sup.status.state, 'stopping');
    assert.deepEqual(last().messages, [STOP_MESSAGE]);
    assert.equal(last().killed, 0, 'kill() is not a graceful stop');
    // Streams may take the whole grace: no kill before grace + margin.
    clock.advance(39_999);
    assert.equal(last().killed, 0);
    assert.equal(sup.status.state, 'stopping');
    last().exit(0);
    await stopped;
    assert.equal(sup.status.state, 'stopped');
    clock.advance(10 * 60_000);
    assert.equal(children.length, 1);
    assert.equal(sup.status.state, 'stopped');
    assert.deepEqual(states, ['starting', 'running', 'stopping', 'stopped']);
  });

  test('stop() while waiting out a backoff cancels the restart', async () => {
    const { sup, clock, children, last } = setup();
    sup.start();
    last().ready();
    last().exit(1);
    assert.equal(sup.status.state, 'restarting');
    await sup.stop();
    assert.equal(sup.status.state, 'stopped');
    clock.advance(10 * 60_000);
    assert.equal(children.length, 1);
  });

  test('stop() kills only after the grace from the ready message plus the margin, then gives up waiting', async () => {
    const { sup, clock, last, logs } = setup();
    sup.start();
    last().ready({ shutdown_grace_ms: 120_000 });
    assert.equal(sup.stopWaitMs, 130_000);
    const stopped = sup.stop();
    assert.deepEqual(last().messages, [STOP_MESSAGE]);
    clock.advance(129_999);
    assert.equal(last().killed, 0, 'not killed within the grace + margin');
    clock.advance(1);
    assert.equal(last().killed, 1, 'killed once the grace + margin is over');
    assert.ok(logs.some((l) => /did not exit within 130 s of being asked to stop; killing it/.test(l)), logs.join('\n'));
    assert.equal(sup.status.state, 'stopping');
    clock.advance(5_000);
    await stopped;
    assert.equal(sup.status.state, 'stopped');
    // If it exits after all, nothing restarts.
    last().exit(0);
    assert.equal(sup.status.state, 'stopped');
  });

  test('exits before ready are retried with backoff, then given up with the log path named', () => {
    const { sup, clock, children, last } = setup({ maxFailedStarts: 3 });
    sup.start();
    last().exit(1);
    assert.equal(sup.status.state, 'restarting');
    clock.advance(1_000);
    last().exit(1);
    assert.equal(sup.status.state, 'restarting');
    clock.advance(2_000);
    last().exit(1);
    const s = sup.status;
    assert.equal(s.state, 'failed');
    assert.match(s.error ?? '', /exited with code 1 before it was ready, 3 times in a row/);
    assert.ok(s.error?.includes(LOG));
    clock.advance(10 * 60_000);
    assert.equal(children.length, 3);
  });

  test('a successful start clears the count of failed starts', () => {
    const { sup, clock, last } = setup({ maxFailedStarts: 2 });
    sup.start();
    last().exit(1);
    clock.advance(1_000);
    last().ready();
    last().exit(1); // a crash while running does not count as a failed start
    clock.advance(2_000);
    last().exit(1); // first failed start since the success
    assert.equal(sup.status.state, 'restarting');
  });

  test('a fork that throws → failed with the reason and the log path', () => {
    const sup = new GatewaySupervisor({
      fork: () => {
        throw new Error('ENOENT: bin/airlock.js');
      },
      clock: new FakeClock(),
      logPath: LOG,
    });
    sup.start();
    assert.equal(sup.status.state, 'failed');
    assert.match(sup.status.error ?? '', /ENOENT: bin\/airlock\.js/);
    assert.ok(sup.status.error?.includes(LOG));
  });

  test('malformed ready messages are ignored; the timeout still applies', () => {
    const { sup, clock, last, logs } = setup();
    sup.start();
    last().emit('message', { type: 'ready', data: 'not a url', admin: 'http://127.0.0.1:4001' });
    last().emit('message', { type: 'ready', data: 'http://127.0.0.1:4000', admin: 'javascript:alert(1)' });
    last().emit('message', 'ready');
    last().emit('message', null);
    assert.equal(sup.status.state, 'starting');
    clock.advance(30_000);
    assert.equal(sup.status.state, 'failed');
    const ignored = logs.filter((l) => l.startsWith('ignored a malformed ready message'));
    assert.equal(ignored.length, 2, logs.join('\n'));
    assert.match(ignored[0]!, /data/);
    assert.match(ignored[1]!, /admin/);
  });

  test('the setup token comes from the ready message, is per start, and is not part of the status', () => {
    const { sup, clock, last } = setup();
    sup.start();
    assert.equal(sup.getSetupToken(), null);
    last().ready({ setup_token: 'tok-1234567890' });
    assert.equal(sup.getSetupToken(), 'tok-1234567890');
    assert.ok(!JSON.stringify(sup.status).includes('tok-1234567890'));
    // After a crash the old token is gone; the new start brings its own, or null once an owner exists.
    last().exit(1);
    clock.advance(1_000);
    assert.equal(sup.getSetupToken(), null);
    last().ready({ setup_token: 'tok-second-start' });
    assert.equal(sup.getSetupToken(), 'tok-second-start');
    last().exit(1);
    clock.advance(2_000);
    last().ready({ setup_token: null });
    assert.equal(sup.getSetupToken(), null);
  });

  test('stdout lines are a fallback ready signal', () => {
    const { sup, last } = setup();
    sup.start();
    sup.handleOutputLine('airlock: version 0.1.0, data dir /x');
    sup.handleOutputLine('airlock: ready'); // before the URLs: not enough
    assert.equal(sup.status.state, 'starting');
    sup.handleOutputLine('airlock: data plane listening on http://127.0.0.1:4100 (OpenAI-compatible API at http://127.0.0.1:4100/v1)');
    sup.handleOutputLine('airlock: admin plane listening on http://127.0.0.1:4101');
    sup.handleOutputLine('airlock: first-run setup: open http://127.0.0.1:4101/setup?token=abcdEFGH1234');
    sup.handleOutputLine('airlock: ready');
    assert.equal(sup.status.state, 'running');
    assert.equal(sup.status.data, 'http://127.0.0.1:4100');
    assert.equal(sup.adminOrigin, 'http://127.0.0.1:4101');
    assert.equal(sup.getSetupToken(), 'abcdEFGH1234');
    assert.equal(sup.status.version, null);
    // The IPC ready message arriving afterwards only adds what the lines lack (the version).
    last().ready({ setup_token: 'from-the-message' });
    assert.equal(sup.status.state, 'running');
    assert.equal(sup.status.data, 'http://127.0.0.1:4100');
    assert.equal(sup.status.version, '0.1.0');
    assert.equal(sup.getSetupToken(), 'from-the-message');
  });

  test('stop() without the grace in the ready message waits the default grace + margin', async () => {
    const { sup, clock, last } = setup();
    sup.start();
    last().ready(); // an older gateway: no shutdown_grace_ms
    assert.equal(sup.stopWaitMs, 40_000);
    const stopped = sup.stop();
    clock.advance(39_999);
    assert.equal(last().killed, 0);
    last().exit(0);
    await stopped;
    assert.equal(sup.status.state, 'stopped');
  });

  test('stop() while starting sends the stop message too (the gateway keeps it until it can stop)', async () => {
    const { sup, last } = setup();
    sup.start();
    const stopped = sup.stop();
    assert.deepEqual(last().messages, [STOP_MESSAGE]);
    assert.equal(last().killed, 0);
    last().exit(0);
    await stopped;
    assert.equal(sup.status.state, 'stopped');
  });

  test('a child whose postMessage throws (channel gone) is killed at once', async () => {
    const { sup, clock, last } = setup();
    sup.start();
    last().ready();
    last().postMessage = () => {
      throw new Error('channel closed');
    };
    const stopped = sup.stop();
    assert.equal(last().killed, 1);
    last().exit(137);
    await stopped;
    clock.advance(60_000);
    assert.equal(sup.status.state, 'stopped');
  });

  test('a repeated stop() sends one stop message and resolves together', async () => {
    const { sup, last } = setup();
    sup.start();
    last().ready();
    const a = sup.stop();
    const b = sup.stop();
    assert.deepEqual(last().messages, [STOP_MESSAGE]);
    last().exit(0);
    await Promise.all([a, b]);
    assert.equal(sup.status.state, 'stopped');
  });

  test('exit code 2 before ready (start-up error) fails at once with the gateway\'s last error line; no retry', () => {
    const { sup, clock, children, last, states } = setup({ maxFailedStarts: 5 });
    sup.start();
    sup.handleErrorLine('airlock: ledger retention: deleted 3 rows');
    sup.handleErrorLine('not one of ours');
    sup.handleErrorLine('airlock: admin plane port 4001 on 127.0.0.1 is already in use; stop the other program or choose another port');
    sup.handleErrorLine('Run "airlock --help" for usage.');
    last().exit(2);
    const s = sup.status;
    assert.equal(s.state, 'failed');
    assert.equal(s.lastExitCode, 2);
    assert.equal(s.lastErrorLine, 'airlock: admin plane port 4001 on 127.0.0.1 is already in use; stop the other program or choose another port');
    assert.match(s.error ?? '', /could not start \(exit code 2\): admin plane port 4001 on 127\.0\.0\.1 is already in use/);
    assert.match(s.error ?? '', /Not retrying/);
    assert.ok(s.error?.includes(LOG));
    clock.advance(10 * 60_000);
    assert.equal(children.length, 1, 'never retried');
    assert.deepEqual(states.filter((x, i) => x !== states[i - 1]), ['starting', 'failed']);
    // The status page shows the line, escaped.
    const html = statusPage(s);
    assert.ok(html.includes('The gateway said:'), html);
    assert.ok(html.includes('admin plane port 4001 on 127.0.0.1 is already in use'), html);
    // start() tries again, with a clean slate.
    sup.start();
    assert.equal(sup.status.state, 'starting');
    assert.equal(sup.status.lastErrorLine, null);
    assert.equal(children.length, 2);
  });

  test('exit code 2 without an error line still fails at once; the page escapes what the gateway printed', () => {
    const { sup, last } = setup();
    sup.start();
    last().exit(2);
    assert.equal(sup.status.state, 'failed');
    assert.match(sup.status.error ?? '', /it printed no error message/);
    sup.start();
    sup.handleErrorLine('airlock: config file <script>alert(1)</script>.yaml: bad');
    last().exit(2);
    const html = statusPage(sup.status);
    assert.ok(!html.includes('<script>'), html);
    assert.ok(html.includes('&lt;script&gt;'), html);
  });

  test('exit code 2 after ready is a crash like any other (restarted)', () => {
    const { sup, last } = setup();
    sup.start();
    last().ready();
    last().exit(2);
    assert.equal(sup.status.state, 'restarting');
  });

  test('start() while starting or running does not fork again', () => {
    const { sup, children, last } = setup();
    sup.start();
    sup.start();
    assert.equal(children.length, 1);
    last().ready();
    sup.start();
    assert.equal(children.length, 1);
  });
});

describe('connectableUrl', () => {
  test('wildcard binds become loopback; everything else stays as reported', () => {
    assert.equal(connectableUrl('http://0.0.0.0:4001'), 'http://127.0.0.1:4001');
    assert.equal(connectableUrl('http://[::]:4001'), 'http://[::1]:4001');
    assert.equal(connectableUrl('http://127.0.0.1:4001'), 'http://127.0.0.1:4001');
    assert.equal(connectableUrl('http://10.1.2.3:4000/'), 'http://10.1.2.3:4000');
    assert.equal(connectableUrl('https://airlock.corp.example'), 'https://airlock.corp.example');
  });

  test('a gateway bound to 0.0.0.0 is opened on loopback, and that is the trusted origin', () => {
    const { sup, last } = setup();
    sup.start();
    last().ready({ data: 'http://0.0.0.0:4000', admin: 'http://0.0.0.0:4001' });
    assert.equal(sup.status.admin, 'http://127.0.0.1:4001');
    assert.equal(sup.adminOrigin, 'http://127.0.0.1:4001');
    assert.equal(sup.status.data, 'http://127.0.0.1:4000');
  });
});

describe('parseGatewayLine', () => {
  test('recognises the lines gateway/cli.ts prints', () => {
    assert.deepEqual(parseGatewayLine('airlock: data plane listening on http://127.0.0.1:4000 (OpenAI-compatible API at http://127.0.0.1:4000/v1)'), {
      kind: 'data',
      url: 'http://127.0.0.1:4000',
    });
    assert.deepEqual(parseGatewayLine('airlock: admin plane listening on http://[::1]:4001'), { kind: 'admin', url: 'http://[::1]:4001' });
    assert.deepEqual(parseGatewayLine('airlock: ready'), { kind: 'ready' });
    assert.deepEqual(parseGatewayLine('airlock: ready\r'), { kind: 'ready' });
    assert.equal(parseGatewayLine('airlock: not ready'), null);
    assert.equal(parseGatewayLine('something: data plane listening on http://x'), null);
    assert.deepEqual(parseGatewayLine('airlock: first-run setup: open http://127.0.0.1:4001/setup?token=Ab_c-D123'), { kind: 'setupToken', token: 'Ab_c-D123' });
    assert.equal(parseGatewayLine('airlock: first-run setup: open http://127.0.0.1:4001/setup'), null);
    assert.equal(parseGatewayLine('someone: first-run setup: open http://127.0.0.1:4001/setup?token=x'), null);
  });
});
