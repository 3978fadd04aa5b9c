// CircuitBreaker with an injected clock: no sleeping, every transition observed exactly.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CircuitBreaker } from '../../gateway/engine/breaker.js';

function make(failureThreshold = 3, cooldownMs = 1000) {
  const clock = { t: 10_000 };
  const b = new CircuitBreaker({ failureThreshold, cooldownMs }, () => clock.t);
  return { b, clock };
}

/** Drive a breaker open with `n` failures. */
function fail(b: CircuitBreaker, n: number, why = 'boom'): void {
  for (let i = 0; i < n; i++) {
    b.onAttempt();
    b.onFailure(why);
  }
}

describe('CircuitBreaker', () => {
  test('starts closed and lets requests pass', () => {
    const { b } = make();
    assert.equal(b.state, 'closed');
    assert.equal(b.canPass(), true);
    assert.equal(b.consecutiveFailures, 0);
    assert.equal(b.retryAt, undefined);
    assert.equal(b.lastError, undefined);
  });

  test('opens after N consecutive failures, not before', () => {
    const { b, clock } = make(3, 1000);
    fail(b, 2);
    assert.equal(b.state, 'closed');
    assert.equal(b.canPass(), true);
    assert.equal(b.consecutiveFailures, 2);
    b.onAttempt();
    b.onFailure('connection refused');
    assert.equal(b.state, 'open');
    assert.equal(b.canPass(), false);
    assert.equal(b.consecutiveFailures, 3);
    assert.equal(b.lastError, 'connection refused');
    assert.equal(b.retryAt, clock.t + 1000);
  });

  test('a threshold of 1 opens on the first failure', () => {
    const { b } = make(1);
    fail(b, 1);
    assert.equal(b.state, 'open');
  });

  test('a success resets the consecutive count', () => {
    const { b } = make(3);
    fail(b, 2);
    b.onAttempt();
    b.onSuccess();
    assert.equal(b.consecutiveFailures, 0);
    assert.equal(b.lastError, undefined);
    fail(b, 2);
    assert.equal(b.state, 'closed', 'two failures after a success do not reach a threshold of three');
    fail(b, 1);
    assert.equal(b.state, 'open');
  });

  test('neutral outcomes neither count as failures nor reset the count', () => {
    const { b } = make(3);
    fail(b, 2);
    b.onAttempt();
    b.onNeutral();
    assert.equal(b.consecutiveFailures, 2);
    assert.equal(b.state, 'closed');
    fail(b, 1);
    assert.equal(b.state, 'open');
  });

  test('stays open for the whole cooldown, then turns half-open', () => {
    const { b, clock } = make(2, 5000);
    fail(b, 2);
    const openedAt = clock.t;
    clock.t = openedAt + 4999;
    assert.equal(b.state, 'open');
    assert.equal(b.canPass(), false);
    clock.t = openedAt + 5000;
    assert.equal(b.state, 'half-open');
    assert.equal(b.canPass(), true);
    clock.t = openedAt + 50_000;
    assert.equal(b.state, 'half-open');
  });

  test('half-open admits exactly one probe at a time', () => {
    const { b, clock } = make(2, 1000);
    fail(b, 2);
    clock.t += 1000;
    assert.equal(b.canPass(), true);
    b.onAttempt();
    assert.equal(b.canPass(), false, 'a second request must not probe while the first is out');
    assert.equal(b.canPass(), false);
    assert.equal(b.state, 'half-open');
    clock.t += 60_000;
    assert.equal(b.canPass(), false, 'time alone does not free the probe slot');
  });

  test('probe success closes the breaker', () => {
    const { b, clock } = make(2, 1000);
    fail(b, 2);
    clock.t += 1000;
    b.onAttempt();
    b.onSuccess();
    assert.equal(b.state, 'closed');
    assert.equal(b.canPass(), true);
    assert.equal(b.consecutiveFailures, 0);
    assert.equal(b.retryAt, undefined);
    // closed again means concurrent requests pass
    b.onAttempt();
    assert.equal(b.canPass(), true);
    // and a fresh run of failures is needed to open it again
    fail(b, 1);
    assert.equal(b.state, 'closed');
  });

  test('probe failure re-opens with a new cooldown from the time of the failure', () => {
    const { b, clock } = make(5, 1000);
    fail(b, 5);
    clock.t += 1500;
    assert.equal(b.state, 'half-open');
    b.onAttempt();
    clock.t += 200; // the probe takes a while to fail
    const failedAt = clock.t;
    b.onFailure('probe timed out');
    assert.equal(b.state, 'open', 'one failed probe re-opens, whatever the threshold');
    assert.equal(b.canPass(), false);
    assert.equal(b.lastError, 'probe timed out');
    assert.equal(b.retryAt, failedAt + 1000);
    clock.t = failedAt + 999;
    assert.equal(b.state, 'open');
    clock.t = failedAt + 1000;
    assert.equal(b.state, 'half-open');
    assert.equal(b.canPass(), true, 'the next probe is admitted after the new cooldown');
  });

  test('a failed probe re-opens even when the threshold was raised while open', () => {
    const { b, clock } = make(2, 1000);
    fail(b, 2);
    b.configure({ failureThreshold: 10, cooldownMs: 1000 });
    clock.t += 1000;
    b.onAttempt();
    b.onFailure('still down');
    assert.equal(b.state, 'open');
    assert.equal(b.canPass(), false);
  });

  test('onNeutral frees the probe slot without closing or re-opening', () => {
    const { b, clock } = make(2, 1000);
    fail(b, 2);
    clock.t += 1000;
    b.onAttempt();
    assert.equal(b.canPass(), false);
    b.onNeutral(); // e.g. the client went away mid-probe
    assert.equal(b.state, 'half-open');
    assert.equal(b.canPass(), true);
    b.onAttempt();
    assert.equal(b.canPass(), false);
    b.onSuccess();
    assert.equal(b.state, 'closed');
  });

  test('configure applies a new threshold and cooldown', () => {
    const { b, clock } = make(5, 1000);
    b.configure({ failureThreshold: 2, cooldownMs: 3000 });
    fail(b, 2);
    assert.equal(b.state, 'open');
    assert.equal(b.retryAt, clock.t + 3000);
    clock.t += 1000;
    assert.equal(b.state, 'open');
    clock.t += 2000;
    assert.equal(b.state, 'half-open');
  });

  test('defaults to the real clock', () => {
    const b = new CircuitBreaker({ failureThreshold: 1, cooldownMs: 3_600_000 });
    const before = Date.now();
    b.onFailure('x');
    assert.equal(b.state, 'open');
    assert.ok(b.retryAt! >= before + 3_600_000);
  });
});
