// One registered MCP server, as the gateway's client of it (the SDK's Client). A stdio server is
// a supervised child process: started at boot (or on first use), pinged, restarted with
// exponential backoff after it exits or stops answering, its stderr kept in a ring buffer, and
// stopped on shutdown (stdin closed, then SIGTERM, then SIGKILL — the SDK transport's close).
// It gets only the environment we give it (PATH, HOME and the like, plus its configured env).
// An HTTP (Streamable HTTP) or legacy SSE server gets one shared connection for its catalog and
// one upstream session per agent session (Upstream.connect), as does a stdio server marked
// `stateful` (one process per agent session).
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport, SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  LoggingMessageNotificationSchema,
  PromptListChangedNotificationSchema,
  ResourceUpdatedNotificationSchema,
  ResourceListChangedNotificationSchema,
  ToolListChangedNotificationSchema,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type ClientCapabilities,
  type CreateMessageRequest,
  type CreateMessageResult,
  type ElicitRequest,
  type ElicitResult,
  type LoggingMessageNotification,
  type ResourceUpdatedNotification,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { VERSION } from '../../version.js';
import type { McpServerConfig } from './config.js';
import { boundedFetch, meterStdout, ResponseTooLarge } from './bounded.js';
import { newDispatcher, UpstreamSessionLost, type DirectSession } from './http-call.js';

export type UpstreamState = 'stopped' | 'starting' | 'ready' | 'backoff' | 'disabled';

export interface Catalog {
  readonly tools: readonly Tool[];
  readonly resources: readonly Resource[];
  readonly resourceTemplates: readonly ResourceTemplate[];
  readonly prompts: readonly Prompt[];
  /** ms since the epoch of the last refresh (0: never) */
  readonly at: number;
}
export const EMPTY_CATALOG: Catalog = Object.freeze({ tools: [], resources: [], resourceTemplates: [], prompts: [], at: 0 });

export const CONNECT_TIMEOUT_MS = 30_000;
export const PING_INTERVAL_MS = 15_000;
const PING_TIMEOUT_MS = 10_000;
const BACKOFF_FIRST_MS = 250;
const BACKOFF_MAX_MS = 30_000;
/** a connection that stayed up this long resets the backoff */
const STABLE_MS = 30_000;
const LIST_CHANGED_DEBOUNCE_MS = 100;
/** what a direct tools/call (http-call.ts) sets itself: a configured header of one of these names is not sent */
const DIRECT_OWN_HEADERS = new Set(['content-type', 'accept', 'content-length', 'transfer-encoding', 'connection', 'host', 'mcp-session-id', 'mcp-protocol-version', 'last-event-id']);

/** The last lines a server wrote to stderr (or about its process), for the admin app. */
export class LineLog {
  private lines: string[] = [];
  private partial = '';
  constructor(private readonly max = 500) {}
  write(chunk: string): void {
    const parts = (this.partial + chunk).split(/\r?\n/);
    this.partial = parts.pop() ?? '';
    if (this.partial.length > 4096) {
      parts.push(this.partial);
      this.partial = '';
    }
    for (const p of parts) this.push(p);
  }
  push(line: string): void {
    this.lines.push(line.length > 4096 ? line.slice(0, 4096) + '…' : line);
    if (this.lines.length > this.max) this.lines.splice(0, this.lines.length - this.max);
  }
  tail(n = this.max): string[] {
    return this.lines.slice(-n).concat(this.partial ? [this.partial] : []);
  }
}

/** Where an upstream's requests to its client (sampling, elicitation) and its log messages go:
 * to the agent session the connection serves (hub.ts). */
export interface Relay {
  createMessage(params: CreateMessageRequest['params'], signal: AbortSignal): Promise<CreateMessageResult>;
  elicit(params: ElicitRequest['params'], signal: AbortSignal): Promise<ElicitResult>;
  log(params: LoggingMessageNotification['params']): void;
  /** notifications/resources/updated for a resource subscribed to over this connection */
  resourceUpdated(params: ResourceUpdatedNotification['params']): void;
}

export interface UpstreamEvents {
  /** the catalog changed (a refresh after start or a list_changed notification) */
  catalogChanged(server: string): void;
  log(line: string): void;
  /** the relay of the shared connection (it serves several sessions) */
  sharedRelay(server: string): Relay;
  /** the shared connection opened (the first time, or again after it closed) */
  connected?(server: string, client: Client): void;
}

/** The client capabilities the gateway declares to an upstream: sampling and elicitation when the
 * agent side can answer them (relayed), so tools that need them are offered. */
const RELAYED: ClientCapabilities = { sampling: {}, elicitation: {} };

/** The transport to a server; with `bound`, its HTTP responses are metered (bounded.ts: stdio lines are
 * metered by meter() once the process runs). */
export function transportFor(c: Pick<McpServerConfig, 'transport' | 'command' | 'args' | 'cwd' | 'env' | 'url' | 'headers'>, stderr?: LineLog, bound?: { limit: number; onOver: () => ResponseTooLarge }): Transport {
  const f = bound ? boundedFetch(bound.limit, bound.onOver) : undefined;
  if (c.transport === 'stdio') {
    const t = new StdioClientTransport({ command: c.command!, args: [...c.args], env: { ...c.env }, stderr: 'pipe', ...(c.cwd ? { cwd: c.cwd } : {}) });
    t.stderr?.on('data', (b: Buffer) => stderr?.write(b.toString('utf8')));
    return t;
  }
  const headers = { ...c.headers };
  if (c.transport === 'http') return new StreamableHTTPClientTransport(new URL(c.url!), { requestInit: { headers }, ...(f ? { fetch: f } : {}) });
  return new SSEClientTransport(new URL(c.url!), {
    requestInit: { headers },
    ...(f ? { fetch: f } : {}),
    eventSourceInit: { fetch: (url, init) => (f ?? fetch)(url, { ...init, headers: { ...(init?.headers as Record<string, string> | undefined), ...headers } }) },
  });
}

/** The server no longer knows our session: a Streamable HTTP server answered 404 for our session
 * id, or a legacy SSE server 404 for the endpoint of our stream's session. */
export function sessionLost(e: unknown): boolean {
  return e instanceof UpstreamSessionLost || (e instanceof StreamableHTTPError && e.code === 404) || (e instanceof Error && /^Error POSTing to endpoint \(HTTP 404\)/.test(e.message));
}

/** The connection no longer hears the server's notifications: a Streamable HTTP transport gave
 * up on the standalone stream (the session is gone, or the stream cannot be opened again), or a
 * legacy SSE stream dropped (its session lived and died with that stream; the EventSource's own
 * reconnection would land on a new, uninitialised server session). */
function streamLost(e: Error): boolean {
  return sessionLost(e) || e instanceof SseError || /^Maximum reconnection attempts/.test(e.message);
}

const oversized = new WeakMap<Client, ResponseTooLarge>();
/** The message that made this connection close, when it was too large. */
export function tooLarge(client: Client | undefined): ResponseTooLarge | undefined {
  return client && oversized.get(client);
}

const dropped = new WeakSet<Client>();
/** Was this agent session's connection closed because the server had lost its session? (A request
 * cut short by that close never ran there: it may be sent again on a new connection.) */
export function droppedForLostSession(client: Client | undefined): boolean {
  return client !== undefined && dropped.has(client);
}

/** End an upstream session: a Streamable HTTP server is told (DELETE), then the connection closes. */
export async function endSession(client: Client): Promise<void> {
  const t = client.transport;
  if (t instanceof StreamableHTTPClientTransport && t.sessionId) await t.terminateSession().catch(() => undefined);
  await client.close().catch(() => undefined);
}

export function newClient(capabilities: ClientCapabilities = {}, relay?: Relay): Client {
  const c = new Client({ name: 'airlock', version: VERSION }, { capabilities });
  if (relay) {
    if (capabilities.sampling) c.setRequestHandler(CreateMessageRequestSchema, (req, extra) => relay.createMessage(req.params, extra.signal));
    if (capabilities.elicitation) c.setRequestHandler(ElicitRequestSchema, (req, extra) => relay.elicit(req.params, extra.signal));
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => relay.log(n.params));
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => relay.resourceUpdated(n.params));
  }
  return c;
}

/** Initialize and list everything: the admin app's Test button, and each catalog refresh. */
export async function readCatalog(client: Client): Promise<Catalog> {
  const caps = client.getServerCapabilities() ?? {};
  const all = async <T>(fetchPage: (cursor: string | undefined) => Promise<{ items: T[]; next: string | undefined }>): Promise<T[]> => {
    const out: T[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 100; i++) {
      const page = await fetchPage(cursor);
      out.push(...page.items);
      cursor = page.next;
      if (!cursor) break;
    }
    return out;
  };
  const opts = { timeout: CONNECT_TIMEOUT_MS };
  const [tools, resources, resourceTemplates, prompts] = await Promise.all([
    caps.tools ? all(async (cursor) => { const r = await client.listTools(cursor ? { cursor } : {}, opts); return { items: r.tools, next: r.nextCursor }; }) : [],
    caps.resources ? all(async (cursor) => { const r = await client.listResources(cursor ? { cursor } : {}, opts); return { items: r.resources, next: r.nextCursor }; }) : [],
    caps.resources ? all(async (cursor) => { const r = await client.listResourceTemplates(cursor ? { cursor } : {}, opts); return { items: r.resourceTemplates, next: r.nextCursor }; }) : [],
    caps.prompts ? all(async (cursor) => { const r = await client.listPrompts(cursor ? { cursor } : {}, opts); return { items: r.prompts, next: r.nextCursor }; }) : [],
  ]);
  return Object.freeze({ tools, resources, resourceTemplates, prompts, at: Date.now() });
}

export class Upstream {
  state: UpstreamState = 'stopped';
  /** restarts after a crash or a failed ping (not counting the first start) */
  restarts = 0;
  lastError: string | undefined;
  pid: number | undefined;
  readyAt: number | undefined;
  readonly stderr = new LineLog();
  catalog: Catalog = EMPTY_CATALOG;
  private client: Client | undefined;
  private starting: Promise<Client> | undefined;
  private waiters: { resolve: (c: Client) => void; reject: (e: Error) => void }[] = [];
  private failuresInRow = 0;
  private backoffTimer: NodeJS.Timeout | undefined;
  private pingTimer: NodeJS.Timeout | undefined;
  private refreshTimer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** connections made for agent sessions (closed with the upstream) */
  private readonly sessionClients = new Set<Client>();

  constructor(
    /** replaced in place when only call settings change (timeouts, limits) */
    public config: McpServerConfig,
    private readonly events: UpstreamEvents,
  ) {
    if (config.disabled) this.state = 'disabled';
  }

  get name(): string {
    return this.config.name;
  }

  /** the shared connection, started (or waited for) if need be */
  ensure(): Promise<Client> {
    if (this.stopped || this.config.disabled) return Promise.reject(new Error(`MCP server "${this.name}" is ${this.config.disabled ? 'disabled' : 'stopped'}`));
    if (this.client && this.state === 'ready') return Promise.resolve(this.client);
    if (this.state === 'backoff') return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
    return this.start();
  }

  start(): Promise<Client> {
    if (this.stopped || this.config.disabled) return Promise.reject(new Error(`MCP server "${this.name}" is not running`));
    if (this.starting) return this.starting;
    if (this.client && this.state === 'ready') return Promise.resolve(this.client);
    this.state = 'starting';
    const p = this.open().then(
      (c) => {
        this.starting = undefined;
        for (const w of this.waiters.splice(0)) w.resolve(c);
        return c;
      },
      (e: Error) => {
        this.starting = undefined;
        this.lastError = e.message;
        // calls waiting for this start fail now, not at their timeout
        for (const w of this.waiters.splice(0)) w.reject(e);
        this.stderr.push(`[airlock] start failed: ${e.message}`);
        if (!this.stopped) this.scheduleRestart();
        throw e;
      },
    );
    this.starting = p;
    p.catch(() => undefined);
    return p;
  }

  private async open(): Promise<Client> {
    const client = newClient(RELAYED, this.events.sharedRelay(this.name));
    const transport = this.boundedTransport(client);
    let up = false;
    client.onclose = () => {
      if (!up) return;
      up = false;
      this.onClosed(client);
    };
    // The shared connection is how the gateway hears an upstream's list_changed: a Streamable HTTP
    // server's standalone GET stream. When the server lost our session (restarted: 404), or the
    // stream could not be opened again after it dropped, nothing would arrive any more until the
    // next ping: a new session is opened at once instead (the catalog is read again with it).
    client.onerror = (e: Error) => {
      if (up && this.client === client && streamLost(e)) this.reopen(client, `its notification stream was lost (${e.message})`);
    };
    await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
    this.meter(client, transport);
    if (this.stopped) {
      await client.close().catch(() => undefined);
      throw new Error(`MCP server "${this.name}" was stopped while starting`);
    }
    up = true;
    this.client = client;
    this.pid = transport instanceof StdioClientTransport ? (transport.pid ?? undefined) : undefined;
    this.readyAt = Date.now();
    this.lastError = undefined;
    if (this.pid !== undefined) this.stderr.push(`[airlock] started, pid ${this.pid}`);
    const refresh = () => this.scheduleRefresh();
    client.setNotificationHandler(ToolListChangedNotificationSchema, refresh);
    client.setNotificationHandler(ResourceListChangedNotificationSchema, refresh);
    client.setNotificationHandler(PromptListChangedNotificationSchema, refresh);
    try {
      this.catalog = await readCatalog(client);
    } catch (e) {
      this.lastError = `listing its tools failed: ${(e as Error).message}`;
    }
    this.state = 'ready';
    this.events.catalogChanged(this.name);
    this.events.connected?.(this.name, client);
    this.pingTimer = setInterval(() => {
      client.ping({ timeout: PING_TIMEOUT_MS }).catch((e: Error) => {
        if (this.client !== client) return;
        this.lastError = `ping failed: ${e.message}`;
        this.stderr.push(`[airlock] ping failed (${e.message}); restarting`);
        void client.close().catch(() => undefined);
      });
    }, PING_INTERVAL_MS);
    this.pingTimer.unref();
    return client;
  }

  private onClosed(client: Client): void {
    if (this.client !== client) return;
    this.client = undefined;
    this.pid = undefined;
    if (this.pingTimer) clearInterval(this.pingTimer);
    if (this.stopped) return;
    this.lastError ??= 'the connection closed';
    this.stderr.push(`[airlock] connection closed${this.config.transport === 'stdio' ? ' (the process exited)' : ''}`);
    if (this.readyAt !== undefined && Date.now() - this.readyAt > STABLE_MS) this.failuresInRow = 0;
    this.scheduleRestart();
  }

  private scheduleRestart(): void {
    if (this.stopped || this.backoffTimer) return;
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** this.failuresInRow);
    this.failuresInRow++;
    this.state = 'backoff';
    this.backoffTimer = setTimeout(() => {
      this.backoffTimer = undefined;
      this.restarts++;
      this.state = 'stopped';
      this.start().catch(() => undefined);
    }, delay);
    this.backoffTimer.unref();
  }

  private scheduleRefresh(): void {
    if (this.refreshTimer) return;
    this.refreshTimer = setTimeout(() => {
      this.refreshTimer = undefined;
      const c = this.client;
      if (!c) return;
      readCatalog(c).then(
        (cat) => {
          this.catalog = cat;
          this.events.catalogChanged(this.name);
        },
        (e: Error) => {
          this.lastError = `refreshing its catalog failed: ${e.message}`;
          if (sessionLost(e)) this.reopen(c, 'it lost our session (404)');
        },
      );
    }, LIST_CHANGED_DEBOUNCE_MS);
    this.refreshTimer.unref();
  }

  /** Close the shared connection and open a new one (with the usual backoff). */
  private reopen(client: Client, why: string): void {
    if (this.client !== client || this.stopped) return;
    this.lastError = `reconnecting: ${why}`;
    this.stderr.push(`[airlock] ${why}; reconnecting`);
    void client.close().catch(() => undefined);
  }

  /** A connection of its own for one agent session (HTTP and SSE servers, stateful stdio ones). */
  async connect(onClose: () => void, relay: Relay, capabilities: ClientCapabilities): Promise<Client> {
    if (this.stopped || this.config.disabled) throw new Error(`MCP server "${this.name}" is not running`);
    const client = newClient(capabilities, relay);
    client.onclose = () => {
      this.sessionClients.delete(client);
      onClose();
    };
    // as for the shared connection: a connection whose stream was lost is closed (never left half
    // alive, e.g. a legacy SSE stream reconnected onto a new, uninitialised server session); the
    // session's next request opens a new one
    client.onerror = (e: Error) => {
      if (!this.sessionClients.has(client) || !streamLost(e)) return;
      dropped.add(client);
      void client.close().catch(() => undefined);
    };
    const transport = this.boundedTransport(client);
    await client.connect(transport, { timeout: CONNECT_TIMEOUT_MS });
    this.meter(client, transport);
    this.sessionClients.add(client);
    return client;
  }

  /** tools/call's direct path to an HTTP server (http-call.ts): its connections */
  private dispatcher: ReturnType<typeof newDispatcher> | undefined;
  private directUrl: [string, URL] | undefined;

  /** Where a tools/call over this agent session's connection may go directly (http-call.ts): a
   * Streamable HTTP server's session that is open; undefined: over the SDK Client. */
  direct(client: Client): DirectSession | undefined {
    const t = client.transport;
    if (this.stopped || this.config.transport !== 'http' || !(t instanceof StreamableHTTPClientTransport) || !this.sessionClients.has(client)) return undefined;
    // header names are case-insensitive: a configured one that the call sets itself (Content-Type,
    // Accept, Mcp-Session-Id, ... in any case) gives way to the call's, as the SDK's transport does
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(this.config.headers)) if (!DIRECT_OWN_HEADERS.has(k.toLowerCase())) headers[k.toLowerCase()] = v;
    if (t.sessionId) headers['mcp-session-id'] = t.sessionId;
    if (t.protocolVersion) headers['mcp-protocol-version'] = t.protocolVersion;
    if (this.directUrl?.[0] !== this.config.url) this.directUrl = [this.config.url!, new URL(this.config.url!)];
    const url = this.directUrl![1];
    return {
      url,
      headers,
      dispatcher: (this.dispatcher ??= newDispatcher()),
      deliver: (m) => client.transport?.onmessage?.(m),
      cancelled: (requestId, reason) => void client.notification({ method: 'notifications/cancelled', params: { requestId, reason } }).catch(() => undefined),
      onOver: () => this.oversize(client),
      maxMessageBytes: this.config.maxResponseBytes,
    };
  }

  /** A message over max_response_bytes closes the connection it came on (and says why). */
  oversize(client: Client): ResponseTooLarge {
    const e = new ResponseTooLarge(this.name, this.config.maxResponseBytes);
    if (!oversized.has(client)) {
      oversized.set(client, e);
      this.lastError = e.message;
      this.stderr.push(`[airlock] ${e.message}`);
      void client.close().catch(() => undefined);
    }
    return e;
  }
  private boundedTransport(client: Client): Transport {
    return transportFor(this.config, this.stderr, { limit: this.config.maxResponseBytes, onOver: () => this.oversize(client) });
  }
  private meter(client: Client, transport: Transport): void {
    if (transport instanceof StdioClientTransport) meterStdout(transport, this.config.maxResponseBytes, () => this.oversize(client));
  }

  /** does an agent session get its own upstream connection? */
  get perSession(): boolean {
    return this.config.transport !== 'stdio' || this.config.stateful;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.state = this.config.disabled ? 'disabled' : 'stopped';
    for (const t of [this.backoffTimer, this.refreshTimer]) if (t) clearTimeout(t);
    if (this.pingTimer) clearInterval(this.pingTimer);
    for (const w of this.waiters.splice(0)) w.reject(new Error(`MCP server "${this.name}" was stopped`));
    const starting = this.starting;
    if (starting) await starting.catch(() => undefined);
    const clients = [...this.sessionClients, ...(this.client ? [this.client] : [])];
    this.client = undefined;
    await Promise.all(clients.map((c) => endSession(c)));
    this.pid = undefined;
    const d = this.dispatcher;
    this.dispatcher = undefined;
    await d?.close().catch(() => undefined);
  }
}
