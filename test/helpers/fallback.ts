// The gateway most trace tests run against: two endpoints (gpu-1 and gpu-2, each a test upstream)
// and one model, `chat`, that falls back from gpu-1 to gpu-2 (max_attempts 2), with a team and a
// key (TEST_KEY) in it. A test makes gpu-1 fail with `primary.queue(...)`.
import { TEST_KEY, startGateway, type RunningGateway } from './gateway.js';
import { startUpstream, type TestUpstream } from './upstream.js';

export interface FallbackGateway {
  gw: RunningGateway;
  primary: TestUpstream;
  backup: TestUpstream;
  /** stops the gateway and both upstreams */
  close(): Promise<void>;
}

export interface FallbackOptions {
  team: string;
  /** the name of TEST_KEY's key */
  keyName: string;
  /** the model name both targets ask their upstream for (default llama) */
  upstreamModel?: string;
  /** more of the model's fields (e.g. its price) */
  model?: Record<string, unknown>;
  /** more config (MCP servers, agents, ...) */
  extra?: Record<string, unknown>;
  /** an admin account to create (the admin app's tests sign in with it) */
  user?: { name: string; password: string; role?: string };
}

export async function startFallbackGateway(o: FallbackOptions): Promise<FallbackGateway> {
  const primary = await startUpstream();
  const backup = await startUpstream();
  const model = o.upstreamModel ?? 'llama';
  let gw: RunningGateway | undefined;
  try {
    gw = await startGateway({
      config: {
        endpoints: [
          { name: 'gpu-1', base_url: primary.url, health_check: { enabled: false } },
          { name: 'gpu-2', base_url: backup.url, health_check: { enabled: false } },
        ],
        models: [
          {
            name: 'chat',
            strategy: 'fallback',
            max_attempts: 2,
            targets: [
              { endpoint: 'gpu-1', model },
              { endpoint: 'gpu-2', model },
            ],
            ...o.model,
          },
        ],
        teams: [{ name: o.team }],
        keys: [{ name: o.keyName, key: TEST_KEY, team: o.team }],
        ...o.extra,
      },
    });
    if (o.user) {
      const r = await gw.admin('POST', '/users', { name: o.user.name, password: o.user.password, role: o.user.role ?? 'owner' });
      if (r.status !== 201) throw new Error(`creating the user ${o.user.name} answered ${r.status}: ${JSON.stringify(r.body)}`);
    }
  } catch (e) {
    await gw?.stop();
    await primary.close();
    await backup.close();
    throw e;
  }
  const started = gw;
  return {
    gw: started,
    primary,
    backup,
    close: async () => {
      await started.stop();
      await primary.close();
      await backup.close();
    },
  };
}
