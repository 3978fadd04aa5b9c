// One gateway process: the store, the engine, and the two planes (data and admin).
import { guardModelClient } from '../guardrails/guard-model.js';
import type { FastifyInstance } from 'fastify';
import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import { ensureDataDir, openDatabase, configVersion, StartupError, type DB } from '../store/db.js';
import { ConfigStore } from '../store/config-store.js';
import type { Secrets } from '../store/secrets.js';
import { loadSecretsFor } from '../store/install.js';
import { buildSnapshot, type Snapshot } from '../engine/snapshot.js';
import { previousSecrets } from '../store/key-rotation.js';
import { Runtime } from '../engine/runtime.js';
import { HealthChecker } from '../engine/health.js';
import { TemporaryKeys } from '../engine/temporary-keys.js';
import { Ledger } from '../engine/ledger.js';
import { RecorderThread } from '../store/recorder.js';
import { AdminReader } from './admin-reader.js';
import { Metrics } from '../engine/metrics.js';
import { Pipeline } from '../engine/pipeline.js';
import { messagesAdapter } from '../engine/anthropic/messages.js';
import { responsesAdapter } from '../engine/responses/responses.js';
import { ResponseStore } from '../engine/responses/store.js';
import { channels, on, type AttemptEnd, type RequestEnd } from '../engine/events.js';
import { ledgerRowOf } from '../engine/ledger.js';
import { Governance, budgetThresholdChannel, type BudgetThreshold } from '../governance/governance.js';
import { MemoryCounters } from '../governance/counters.js';
import { ledgerSpend } from '../governance/spend.js';
import { registerGovernanceMetrics } from '../governance/metrics.js';
import { GuardrailEngine } from '../guardrails/engine.js';
import { GuardrailRecorder } from '../guardrails/events.js';
import { guardrailToolGuard } from '../guardrails/tool-guard.js';
import type { ListenOrigin, ListenSource } from '../wire.js';
import { buildDataPlane } from './data-plane.js';
import { buildAdminPlane } from './admin-plane.js';
import { AdminAuth } from './admin-auth.js';
import { closeUnusedConnections, loadTls, type LoadedTls } from './http-server.js';
import { IdleMemory } from './idle-memory.js';
// type-only: the hub and the MCP SDK behind it are loaded when MCP is first needed (mcpHub())
import type { McpHub } from '../engine/mcp/hub.js';
import { buildMcpConfig, type McpConfig } from '../engine/mcp/config.js';
import type { ToolEnd } from '../engine/events.js';
import { GuardOutcomes, openAudit, recordRequests, recordToolCalls } from '../audit/index.js';
import type { AuditLog } from '../audit/log.js';
import { PromptLog } from '../audit/prompt-log.js';
import { ModelToolCalls } from '../audit/model-tool-calls.js';
import { archiveOld } from '../audit/retention.js';
import { Telemetry } from '../telemetry/telemetry.js';
import { registerTelemetryMetrics } from '../telemetry/metrics.js';

export interface GatewayOptions {
  dataDir: string;
  host: string;
  port: number;
  adminHost: string;
  adminPort: number;
  adminToken: string | undefined;
  /** where each listen value came from (reported on /status so the admin app can say when a
   * flag or environment variable overrides the stored settings.listen) */
  listenSource?: ListenSource;
  /** how often another process's config change is looked for */
  pollMs?: number;
  log?: (line: string) => void;
}

export type { ListenOrigin, ListenSource };

import type { Supervisor } from './admin-restart.js';

export class Gateway {
  readonly db: DB;
  readonly secrets: Secrets;
  readonly store: ConfigStore;
  readonly runtime = new Runtime();
  /** the playground's temporary keys (in memory only) */
  readonly temporaryKeys = new TemporaryKeys();
  readonly health: HealthChecker;
  readonly ledger: Ledger;
  /** the writer thread the data plane's recorders share (ledger, audit summaries, trace spans) */
  readonly recorder: RecorderThread;
  readonly adminReader: AdminReader;
  readonly metrics: Metrics;
  readonly pipeline: Pipeline;
  /** budgets, rate limits and fair shares: the pipeline's admission */
  readonly governance: Governance;
  /** responses kept by POST /v1/responses (store), for GET/DELETE and previous_response_id */
  readonly responses: ResponseStore;
  /** the MCP gateway (registered MCP servers, agents' sessions on /mcp): loaded with the MCP SDK
   * only when the configuration has MCP servers or agents, or /mcp is first called (mcpHub()) */
  private hub: McpHub | undefined;
  private hubLoading: Promise<McpHub> | undefined;
  /** the MCP part of the configuration, kept whether or not the hub is loaded */
  private mcpConfig: McpConfig;
  /** start() has run: a hub loaded from now on starts its servers at once */
  private planesStarted = false;
  private mcpSweepTimer: NodeJS.Timeout | undefined;
  /** guardrail policies: the pipeline's guards, and evaluate() for other callers (MCP) */
  readonly guardrails: GuardrailEngine;
  readonly guardrailEvents: GuardrailRecorder;
  /** the audit trail (gateway/audit/) */
  readonly audit: AuditLog;
  /** prompt and response logging, per team (gateway/audit/prompt-log.ts) */
  readonly promptLog: PromptLog;
  readonly telemetry: Telemetry;
  private unsubscribe: (() => void)[] = [];
  readonly auth: AdminAuth;
  private snap: Snapshot;
  private dataApp: FastifyInstance | undefined;
  private adminApp: FastifyInstance | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private lastDataVersion = -1;
  draining = false;
  /** data-plane requests received so far (the data plane counts them; idle-memory.ts watches) */
  requestsStarted = 0;
  private readonly idleMemory = new IdleMemory({
    started: () => this.requestsStarted,
    inflight: () => {
      let n = 0;
      for (const ep of this.runtime.endpoints.values()) n += ep.inflight;
      return n;
    },
  });
  /** where the planes listen, once started */
  listening: { data: string; admin: string } | undefined;
  /** the certificate and key of settings.tls, read by start() (undefined: plain HTTP on both planes) */
  tls: LoadedTls | undefined;
  readonly startedAt = Date.now();
  /** Who starts this process again when it exits with RESTART_EXIT_CODE (server/admin-restart.ts);
   * null: nobody (a plain `airlock serve`). Set by the CLI before it announces ready. */
  supervisor: Supervisor | null = null;
  /** Stops the gateway gracefully and exits with RESTART_EXIT_CODE (the CLI's stop path). */
  requestRestart: ((why: string) => void) | null = null;
  readonly log: (line: string) => void;

  constructor(readonly opts: GatewayOptions) {
    this.log = opts.log ?? ((l) => process.stderr.write(`airlock: ${l}\n`));
    ensureDataDir(opts.dataDir);
    this.db = openDatabase(opts.dataDir);
    this.secrets = loadSecretsFor(this.db, opts.dataDir);
    this.store = new ConfigStore(this.db, this.secrets);
    this.audit = openAudit(this.db, opts.dataDir, this.secrets, { checkpointEvery: () => this.snap.settings.audit.checkpoint_every, log: this.log });
    this.snap = this.build();
    this.runtime.update(this.snap);
    this.mcpConfig = this.buildMcp();
    // an endpoint with expose_models listing other models: its names are the snapshot's models
    this.health = new HealthChecker(this.runtime, (name) => {
      try {
        this.reload();
        this.log(`models exposed by endpoint "${name}" changed`);
      } catch (e) {
        this.log(`models exposed by endpoint "${name}" changed, but the configuration could not be rebuilt: ${(e as Error).message}`);
      }
    });
    // one writer thread for what the data plane records: ledger rows, audit summaries, trace spans
    this.recorder = new RecorderThread(this.db.name, { dataDir: opts.dataDir, log: this.log });
    // the admin plane's reads that scan, on a thread of their own (started at the first one)
    this.adminReader = new AdminReader(this.db.name);
    this.ledger = Ledger.forDatabase(
      this.db,
      () => ({ maxPendingRows: this.snap.settings.ledger_max_pending_rows, whenUnwritable: this.snap.settings.ledger_when_unwritable }),
      { log: this.log, thread: this.recorder },
    );
    this.metrics = new Metrics(this.runtime, () => this.snap, () => this.ledger.state());
    this.governance = new Governance(new MemoryCounters(), ledgerSpend(this.db));
    this.governance.update(this.snap);
    registerGovernanceMetrics(this.metrics.registry, this.governance, this.runtime, () => this.snap);
    this.responses = new ResponseStore(this.db, () => this.snap.settings.responses_retention_days);
    this.guardrailEvents = new GuardrailRecorder(this.db.name, this.metrics.registry, this.log);
    // the audit summary of a request carries its guardrail outcomes (types and counts)
    const guardOutcomes = new GuardOutcomes();
    this.guardrails = new GuardrailEngine(guardOutcomes.wrap(this.guardrailEvents.record), guardModelClient(this.runtime));
    this.promptLog = new PromptLog(this.db, this.secrets, () => this.snap, { log: this.log });
    // the prompt log sees the prompt as sent (first input guard) and the answer as delivered (last output guard)
    const guards = this.guardrails.guards();
    // the tool calls a model asks for go into its request's audit summary
    const modelToolCalls = new ModelToolCalls(() => this.snap);
    this.pipeline = new Pipeline({
      snapshot: () => this.snap,
      runtime: this.runtime,
      hasher: this.secrets,
      admission: this.governance,
      guards: { input: [this.promptLog.inputGuard, ...guards.input], output: [...guards.output, modelToolCalls.outputGuard, this.promptLog.outputGuard] },
      adapters: { messages: messagesAdapter, responses: responsesAdapter(this.responses) },
    });
    // the recorders subscribe to the pipeline's lifecycle events
    this.unsubscribe.push(
      on<RequestEnd>(channels.requestEnd, this.pipeline, (m) => {
        // a plain request's trace goes into its ledger row (telemetry/ledger-trace.ts)
        this.ledger.record(ledgerRowOf(m.ctx, m.latencyMs, this.telemetry.tracer.settle(m.ctx, m.latencyMs)));
        this.guardrails.finish(m.ctx);
        this.metrics.observeRequest(m.ctx, m.latencyMs);
      }),
      on<AttemptEnd>(channels.attemptEnd, this.pipeline, (m) => this.metrics.attempts.inc({ endpoint: m.target.endpoint, outcome: m.outcome })),
      on<BudgetThreshold>(budgetThresholdChannel, this.governance, (m) =>
        this.log(`budget ${m.percent >= 100 ? 'exhausted' : 'warning'}: ${m.label} has spent ${Math.round(m.spent * 1e6) / 1e6} of ${m.amount} ${this.snap.settings.cost_unit} this ${m.period === 'total' ? 'budget' : m.period} (${m.percent} %)`),
      ),
      // before the audit recorder: the request's summary names its prompt log row
      this.promptLog.subscribe(this.pipeline),
      modelToolCalls.subscribe(this.pipeline),
      recordRequests(this.audit, this.pipeline, () => this.snap.settings.audit.data_plane, guardOutcomes),
    );
    this.audit.startWriter(opts.dataDir, this.recorder);
    this.promptLog.startWriter(this.recorder);
    // tracing subscribes to the same events (tool calls and guardrail decisions by channel name)
    // (tool calls: from the hub, once it is loaded; mcpHub() names it as their source)
    this.telemetry = new Telemetry(this.db, this.pipeline, this.snap.settings.telemetry, this.log, this.toolSource, this.recorder, this.ledger);
    this.unsubscribe.push(registerTelemetryMetrics(this.metrics.registry, this.pipeline, this.runtime, this.telemetry));
    this.auth = new AdminAuth(this);
  }

  get snapshot(): Snapshot {
    return this.snap;
  }

  /** settings.audit.fail_closed: admin_and_data, and the audit log cannot be written now */
  get auditRefusing(): boolean {
    return this.snap.settings.audit.fail_closed === 'admin_and_data' && !this.audit.canWrite();
  }

  private build(): Snapshot {
    const s = buildSnapshot(this.store.state(), this.secrets, configVersion(this.db), previousSecrets(this.db), (name) => this.runtime.endpoint(name)?.discoveredModels);
    return Object.freeze({ ...s, temporaryKeys: this.temporaryKeys });
  }

  private buildMcp(): McpConfig {
    return buildMcpConfig(this.store.state(), (m) => this.store.mcpSecrets(m));
  }

  /** The MCP hub. Only for code that runs once it is loaded (the /mcp endpoint's handler, which
   * awaits mcpHub() first); elsewhere use mcpLoaded or mcpHub(). */
  get mcp(): McpHub {
    if (!this.hub) throw new Error('the MCP hub is not loaded yet (await Gateway.mcpHub() first)');
    return this.hub;
  }

  /** The MCP hub if it is loaded: undefined means no MCP server or agent has been configured and
   * /mcp has not been called since start, so there are no servers and no sessions. */
  get mcpLoaded(): McpHub | undefined {
    return this.hub;
  }

  /** Tool-call events' source for the tracer, named before the hub exists (the hub is its own
   * source; see mcpHub()). */
  private readonly toolSource = {};

  /** Load the MCP SDK and the hub (once) and wire it in: guards, ledger, audit, tracing, and — when
   * the planes are up — its servers and the idle-session sweep. Idle memory: the SDK (server,
   * client, transports, ajv, its zod schemas) costs several MB that a gateway without MCP never
   * needs (docs/ARCHITECTURE.md, Memory). */
  mcpHub(): Promise<McpHub> {
    this.hubLoading ??= (async () => {
      const [{ McpHub, toolLedgerRow }, { DEFAULT_MCP_SESSION_IDLE_MS }] = await Promise.all([import('../engine/mcp/hub.js'), import('./mcp-endpoint.js')]);
      const hub = new McpHub({ log: this.log });
      // tool_args / tool_result policies on every MCP tool call
      hub.guards = { guards: [guardrailToolGuard(this.guardrails, () => this.snap)] };
      hub.update(this.mcpConfig);
      this.unsubscribe.push(
        on<ToolEnd>(channels.toolEnd, hub, (m) => this.ledger.record(toolLedgerRow(m.call, m.latencyMs))),
        recordToolCalls(this.audit, hub, () => this.snap.settings.audit.data_plane),
      );
      this.telemetry.tracer.toolSource = hub;
      this.hub = hub;
      this.sweepIdleMs = DEFAULT_MCP_SESSION_IDLE_MS;
      this.startMcp();
      return hub;
    })().catch((e: unknown) => {
      this.hubLoading = undefined; // the next call tries again
      throw e;
    });
    return this.hubLoading;
  }

  private sweepIdleMs = 0;

  /** Once the planes are up and the hub is loaded (whichever comes last): start the hub's servers
   * and sweep idle sessions. */
  private startMcp(): void {
    const hub = this.hub;
    if (!hub || !this.planesStarted || this.draining || this.mcpSweepTimer) return;
    hub.start();
    this.mcpSweepTimer = setInterval(() => hub.sweep(this.snap.settings.mcp_session_idle_ms ?? this.sweepIdleMs), 1000);
    this.mcpSweepTimer.unref();
  }

  /** Stop: end the hub's sessions and servers (waiting for a hub still loading). */
  private async closeMcp(): Promise<void> {
    const hub = this.hubLoading ? await this.hubLoading.catch(() => undefined) : undefined;
    if (this.mcpSweepTimer) clearInterval(this.mcpSweepTimer);
    await hub?.close();
  }

  /** The configuration names MCP servers or agents: the hub is needed. */
  private static wantsMcp(c: McpConfig): boolean {
    return c.servers.size > 0 || c.agentsByHash.size > 0;
  }

  /** Load the hub in the background when the configuration now needs it (reload()). */
  private loadMcpIfWanted(): void {
    if (this.hubLoading || !Gateway.wantsMcp(this.mcpConfig)) return;
    this.mcpHub().catch((e: unknown) => this.log(`the MCP gateway could not be loaded: ${(e as Error).message}`));
  }

  /** Rebuild the snapshot from the store and swap it in. */
  reload(): void {
    const next = this.build();
    this.runtime.update(next);
    this.governance.update(next);
    this.snap = next;
    this.health?.update(next);
    this.mcpConfig = this.buildMcp();
    this.hub?.update(this.mcpConfig);
    this.loadMcpIfWanted();
    this.telemetry?.update(next.settings.telemetry);
  }

  async start(): Promise<{ data: string; admin: string }> {
    // Before the planes are built: their servers are created with it (a bad file is a StartupError).
    const t = this.snap.settings.tls;
    this.tls = t && (t.data_plane || t.admin_plane) ? loadTls(t) : undefined;
    this.dataApp = buildDataPlane(this);
    this.adminApp = buildAdminPlane(this);
    // The data plane's accept queue holds a burst of new connections up to max_connections (the
    // kernel caps it at net.core.somaxconn): with Node's default of 511, a thousand clients
    // connecting at once overflowed it, and the dropped ones waited 1-3 s for a SYN retry.
    const backlog = Math.max(511, this.snap.settings.http.max_connections);
    const data = await listen(this.dataApp, this.opts.host, this.opts.port, 'data plane', backlog);
    let admin: string;
    try {
      admin = await listen(this.adminApp, this.opts.adminHost, this.opts.adminPort, 'admin plane');
    } catch (e) {
      await this.dataApp.close();
      throw e;
    }
    this.listening = { data, admin };
    this.health.update(this.snap);
    this.lastDataVersion = this.dataVersion();
    this.pollTimer = setInterval(() => this.pollForChanges(), this.opts.pollMs ?? 1000);
    this.pollTimer.unref();
    const prune = () => {
      const days = this.snap.settings.audit.retention_days;
      if (days)
        archiveOld(this.audit, this.opts.dataDir, Date.now() - days * 86_400_000).then(
          (r) => {
            if (r) this.log(`audit retention: records ${r.first_seq}-${r.through_seq} moved into ${r.dir}`);
          },
          (e: Error) => this.log(`audit retention failed: ${e.message}`),
        );
      this.ledger.prune(this.snap.settings.ledger_retention_days).then(
        (n) => {
          if (n) this.log(`ledger retention: deleted ${n} rows`);
        },
        (e: Error) => this.log(`ledger retention failed: ${e.message}`),
      );
      try {
        const n = this.promptLog.purge();
        if (n) {
          this.log(`prompt log retention: deleted ${n} logged prompts`);
          this.audit.append({ kind: 'prompt_log.purge', actor: 'airlock', source: 'retention', data: { action: 'delete expired logged prompts', count: n } });
        }
      } catch (e) {
        this.log(`prompt log retention failed: ${(e as Error).message}`);
      }
      try {
        const n = this.responses.prune();
        if (n) this.log(`responses retention: deleted ${n} stored responses`);
      } catch (e) {
        this.log(`responses retention failed: ${(e as Error).message}`);
      }
    };
    prune();
    this.pruneTimer = setInterval(prune, 3_600_000);
    this.pruneTimer.unref();
    this.idleMemory.start();
    this.planesStarted = true;
    // MCP configured: load the hub now, and its servers start with the gateway
    if (Gateway.wantsMcp(this.mcpConfig)) await this.mcpHub();
    this.startMcp();
    return { data, admin };
  }

  private dataVersion(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  /** Pick up changes another process (e.g. `airlock config apply`) committed. */
  pollForChanges(): void {
    try {
      const dv = this.dataVersion();
      if (dv === this.lastDataVersion) return;
      this.lastDataVersion = dv;
      if (configVersion(this.db) !== this.snap.version) {
        this.reload();
        this.log(`configuration reloaded (version ${this.snap.version})`);
      }
    } catch (e) {
      this.log(`configuration reload failed: ${(e as Error).message}`);
    }
  }

  /** Graceful stop: refuse new work, let in-flight requests finish until the deadline. */
  async stop(graceMs = this.snap.settings.shutdown_grace_ms): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    if (this.pollTimer) clearInterval(this.pollTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.mcpSweepTimer) clearInterval(this.mcpSweepTimer);
    this.idleMemory.stop();
    this.health.stop();
    const apps = [this.dataApp, this.adminApp].filter((a): a is FastifyInstance => !!a);
    const deadline = setTimeout(() => {
      this.log(`shutdown deadline (${graceMs} ms) reached; closing remaining connections`);
      for (const a of apps) a.server.closeAllConnections();
    }, graceMs);
    deadline.unref();
    // A keep-alive connection that goes idle once its last response is done would otherwise hold
    // the close until the deadline: close idle connections as they appear.
    const idle = setInterval(() => {
      for (const a of apps) {
        a.server.closeIdleConnections();
        closeUnusedConnections(a.server);
      }
    }, 100);
    idle.unref();
    // agents' sessions hold open streams (GET /mcp): end them with the planes, then the servers
    await Promise.all([...apps.map((a) => a.close()), this.closeMcp()]);
    clearInterval(idle);
    clearTimeout(deadline);
    await this.adminReader.close();
    await this.ledger.close();
    this.guardrailEvents.close();
    await this.telemetry.close();
    for (const u of this.unsubscribe.splice(0)) u();
    await this.promptLog.stopWriter();
    try {
      await this.audit.stopWriter();
      this.audit.checkpoint();
    } catch (e) {
      this.log(`audit: the last records could not be written or signed: ${(e as Error).message}`);
    }
    await this.runtime.close();
    this.db.close();
  }
}

async function listen(app: FastifyInstance, host: string, port: number, what: string, backlog?: number): Promise<string> {
  try {
    await app.listen(backlog === undefined ? { host, port } : { host, port, backlog });
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new StartupError(`${what} port ${port} on ${host} is already in use; stop the other program or choose another port`);
    if (code === 'EACCES') throw new StartupError(`${what} may not listen on ${host}:${port} (permission denied; ports below 1024 need privileges)`);
    if (code === 'EADDRNOTAVAIL') throw new StartupError(`${what} cannot listen on ${host}: no such address on this machine`);
    throw new StartupError(`${what} cannot listen on ${host}:${port}: ${(e as Error).message}`);
  }
  const a = app.server.address() as AddressInfo;
  const h = a.family === 'IPv6' ? `[${a.address}]` : a.address;
  return `${app.server instanceof tls.Server ? 'https' : 'http'}://${h}:${a.port}`;
}
