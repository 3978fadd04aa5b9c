// McpHub waits for servers whose catalog was never read before it answers an agent's list, so a
// first list is complete — but a server that hangs (or keeps failing to start) must not cost every
// later list of every agent that wait again. Timers are mocked: no test waits in real time.
import { test, mock } from 'node:test';
import assert from 'node:assert/strict';
import { McpHub } from '../../gateway/engine/mcp/hub.js';

interface FakeUpstream {
  name: string;
  config: { disabled: boolean };
  catalog: { at: number };
  ensure(): Promise<void>;
  ensured: number;
}

function fake(name: string, answer: 'never' | 'now'): FakeUpstream {
  const u: FakeUpstream = {
    name,
    config: { disabled: false },
    catalog: { at: 0 },
    ensured: 0,
    ensure() {
      u.ensured++;
      if (answer === 'now') {
        u.catalog = { at: 1 };
        return Promise.resolve();
      }
      return new Promise<void>(() => undefined); // initialize is never answered
    },
  };
  return u;
}

/** Whether the promise settled once pending callbacks ran (no timer advanced). */
async function settled(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  void p.then(() => (done = true));
  for (let i = 0; i < 10; i++) await Promise.resolve();
  return done;
}

test('a server that was waited for in vain once is not waited for again until it is read', async () => {
  mock.timers.enable({ apis: ['setTimeout'] });
  try {
    const hub = new McpHub({ log: () => undefined });
    const hung = fake('hung', 'never');
    const fine = fake('fine', 'now');
    hub.upstreams.set('hung', hung as never);
    hub.upstreams.set('fine', fine as never);
    const read = () => (hub as unknown as { catalogsRead(): Promise<void> }).catalogsRead();

    // the first list waits for the hung server, up to the limit
    const first = read();
    assert.equal(await settled(first), false, 'the first list waits for the unread server');
    mock.timers.tick(9_999);
    assert.equal(await settled(first), false);
    mock.timers.tick(1);
    assert.equal(await settled(first), true, 'and gives up at the limit');
    assert.equal(fine.catalog.at, 1, 'the other server was read meanwhile');

    // later lists do not wait for it again
    const second = read();
    assert.equal(await settled(second), true, 'the second list does not wait');
    assert.equal(hung.ensured, 1);

    // once it is read, and a new unread server appears, that one is waited for
    hung.catalog = { at: 2 };
    const late = fake('late', 'never');
    hub.upstreams.set('late', late as never);
    const third = read();
    assert.equal(await settled(third), false, 'a newly added unread server is waited for');
    mock.timers.tick(10_000);
    assert.equal(await settled(third), true);
  } finally {
    mock.timers.reset();
  }
});
