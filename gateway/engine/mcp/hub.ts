// The MCP gateway's core: the registered servers (Upstream), the agents' sessions on /mcp, and
// one virtual MCP server per session that shows the agent exactly the tools, prompts and
// resources it may use. A tool call goes through the same stages as a model call: the agent is
// authenticated (by the endpoint, from its key), admitted (per-agent and per-tool rate limits),
// guarded (arguments, then result: guards.ts), forwarded with a per-call timeout, progress and
// cancellation, and recorded (airlock:tool:start / airlock:tool:end; the ledger subscribes).
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  CallToolRequestSchema,
  CallToolResultSchema,
  CompleteRequestSchema,
  ErrorCode,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListResourcesRequestSchema,
  ListToolsRequestSchema,
  McpError,
  ReadResourceRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type Prompt,
  type Resource,
  type ResourceTemplate,
  type ServerNotification,
  type ServerRequest,
  type Tool,
} from '@modelcontextprotocol/sdk/types.js';
import { VERSION } from '../../version.js';
import { channels } from '../events.js';
import { newRequestId } from '../request-id.js';
import { parseTraceparent } from '../../telemetry/span.js';
import type { LedgerRow } from '../ledger-protocol.js';
import type { AgentRecord, McpConfig } from './config.js';
import { noToolGuards, type ToolGuards } from './guards.js';
import { exposedName, permitted, resourcePermitted } from './names.js';
import { CallGate } from './call-gate.js';
import { callToolDirect } from './http-call.js';
import { Upstream, droppedForLostSession, endSession, sessionLost, tooLarge, type Relay } from './upstream.js';

type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;

/** One tool call, as the recorders (ledger, tracing, audit) see it. */
export interface ToolCallContext {
  /** the gateway's own id (UUIDv7): the ledger row's key */
  readonly id: string;
  /** wall clock at arrival */
  readonly ts: number;
  /** performance.now() at arrival */
  readonly t0: number;
  readonly agent: AgentRecord;
  /** the MCP session (Mcp-Session-Id) */
  readonly mcpSession: string;
  /** x-airlock-session: the workflow this call belongs to, shared with the agent's model calls */
  readonly session: string | undefined;
  readonly user: string | undefined;
  /** the name the agent called (server__tool) */
  readonly exposed: string;
  server: string | undefined;
  tool: string | undefined;
  argsBytes: number;
  resultBytes: number | null;
  /** 200 answered (also a tool's own error result), 403 not permitted, 429 rate limited, 400 blocked
   * by a guard, 499 cancelled by the agent, 502 upstream failed or closed, 504 timed out */
  status: number;
  errorClass: string | undefined;
  /** the answer carried isError */
  isError: boolean;
  /** the agent's W3C trace context: params._meta.traceparent (else the HTTP traceparent header),
   * when well-formed, and its tracestate */
  readonly traceparent: string | undefined;
  readonly tracestate: string | undefined;
  /** what goes upstream in params._meta.traceparent: the agent's, until tracing replaces it with
   * its own span's (an airlock:tool:start subscriber) */
  upstreamTraceparent: string | undefined;
}

export interface McpSession {
  readonly id: string;
  readonly agentName: string;
  readonly keyHash: string;
  /** the virtual server (/mcp/v/NAME) it was opened on; undefined: /mcp */
  readonly virtual: string | undefined;
  readonly server: Server;
  lastSeen: number;
  /** per-session upstream connections (HTTP, SSE, stateful stdio) */
  readonly clients: Map<string, Promise<Client>>;
  /** resources it subscribed to: "server\nuri" */
  readonly subscriptions: Set<string>;
  /** reconnections pending for servers it holds subscriptions on (their connection closed) */
  readonly reconnects: Map<string, { timer: NodeJS.Timeout | undefined; delay: number }>;
  /** what the agent was last shown, to send list_changed when it changes */
  shown: { tools: string; prompts: string; resources: string };
  closed: boolean;
  close(): Promise<void>;
}

export interface HubOptions {
  log: (line: string) => void;
  guards?: ToolGuards;
}

/** A token bucket per name: `perMinute` calls, refilled continuously. */
class RateLimiter {
  private buckets = new Map<string, { tokens: number; at: number }>();
  /** 0 when admitted, else ms until a call would be */
  take(key: string, perMinute: number, now = Date.now()): number {
    let b = this.buckets.get(key);
    if (!b) {
      b = { tokens: perMinute, at: now };
      this.buckets.set(key, b);
    }
    b.tokens = Math.min(perMinute, b.tokens + ((now - b.at) * perMinute) / 60_000);
    b.at = now;
    if (b.tokens >= 1) {
      b.tokens -= 1;
      return 0;
    }
    return Math.ceil(((1 - b.tokens) * 60_000) / perMinute);
  }
  /** forget buckets that are full again */
  sweep(now = Date.now()): void {
    if (this.buckets.size < 10_000) return;
    for (const [k, b] of this.buckets) if (now - b.at > 60_000) this.buckets.delete(k);
  }
}

const CATALOG_WAIT_MS = 10_000;
/** a session's own connection that closed while it holds subscriptions is reopened after this, doubling up to the max */
const RESUBSCRIBE_FIRST_MS = 250;
const RESUBSCRIBE_MAX_MS = 30_000;
const textResult = (text: string): CallToolResult => ({ content: [{ type: 'text', text }], isError: true });
const firstHeader = (h: Record<string, string | string[] | undefined> | undefined, name: string): string | undefined => {
  const v = h?.[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s ? s.slice(0, 256) : undefined;
};

export class McpHub {
  private cfg: McpConfig = { servers: new Map(), agentsByHash: new Map(), virtualServers: new Map() };
  readonly upstreams = new Map<string, Upstream>();
  readonly sessions = new Map<string, McpSession>();
  private readonly limiter = new RateLimiter();
  private started = false;
  guards: ToolGuards;

  constructor(private readonly opts: HubOptions) {
    this.guards = opts.guards ?? noToolGuards;
  }

  get config(): McpConfig {
    return this.cfg;
  }

  agentByHash(hash: string): AgentRecord | undefined {
    return this.cfg.agentsByHash.get(hash);
  }

  /** Apply a new configuration: servers removed or changed are stopped (changed ones start again). */
  update(next: McpConfig): void {
    const prev = this.cfg;
    this.cfg = next;
    for (const [name, up] of this.upstreams) {
      const c = next.servers.get(name);
      if (!c || c.identity !== up.config.identity || c.disabled !== up.config.disabled) {
        this.upstreams.delete(name);
        for (const s of this.sessions.values()) {
          const cl = s.clients.get(name);
          s.clients.delete(name);
          cl?.then((x) => endSession(x)).catch(() => undefined);
        }
        void up.stop();
      }
    }
    for (const c of next.servers.values()) {
      let up = this.upstreams.get(c.name);
      if (!up) {
        up = new Upstream(c, {
          catalogChanged: () => this.notifyChanges(),
          log: this.opts.log,
          sharedRelay: (name) => this.sharedRelay(name),
          connected: (name, client) => this.resubscribeShared(name, client),
        });
        this.upstreams.set(c.name, up);
        if (this.started && c.startAtBoot && !c.disabled) up.start().catch(() => undefined);
      } else if (up.config !== c) {
        // same connection, other settings (timeouts, limits): swap them in
        up.config = c;
      }
    }
    // sessions of agents that are gone, disabled or got another key end, as do those of a
    // virtual server that is gone
    for (const s of [...this.sessions.values()]) {
      const a = next.agentsByHash.get(s.keyHash);
      if (!a || a.disabled || a.name !== s.agentName || (s.virtual !== undefined && !next.virtualServers.has(s.virtual))) void s.close();
    }
    if (prev !== next) this.notifyChanges();
  }

  /** Start the servers marked to start at boot. */
  start(): void {
    this.started = true;
    for (const up of this.upstreams.values()) if (up.config.startAtBoot && !up.config.disabled) up.start().catch(() => undefined);
  }

  async close(): Promise<void> {
    await Promise.all([...this.sessions.values()].map((s) => s.close()));
    await Promise.all([...this.upstreams.values()].map((u) => u.stop()));
  }

  /** Close sessions idle for longer than idleMs; returns how many. */
  sweep(idleMs: number, now = Date.now()): number {
    let n = 0;
    for (const s of [...this.sessions.values()]) {
      if (now - s.lastSeen > idleMs) {
        n++;
        void s.close();
      }
    }
    this.limiter.sweep(now);
    return n;
  }

  // ---- what an agent may see ----

  /** The session's agent as it may act there: its permissions, within the virtual server's. */
  private agentOf(s: McpSession): AgentRecord | undefined {
    const a = this.cfg.agentsByHash.get(s.keyHash);
    if (!a || a.disabled || a.name !== s.agentName) return undefined;
    return this.scoped(a, s.virtual);
  }

  /** An agent within a virtual server (undefined when the virtual server no longer exists). */
  scoped(a: AgentRecord, virtual: string | undefined): AgentRecord | undefined {
    if (virtual === undefined) return a;
    const v = this.cfg.virtualServers.get(virtual);
    if (!v) return undefined;
    return { ...a, within: v, withinResources: v.resources };
  }

  private liveUpstreams(): Upstream[] {
    return [...this.upstreams.values()].filter((u) => !u.config.disabled);
  }

  visibleTools(agent: AgentRecord): Tool[] {
    const out: Tool[] = [];
    for (const up of this.liveUpstreams())
      for (const t of up.catalog.tools) {
        const name = exposedName(up.name, t.name);
        if (permitted(agent, name)) out.push({ ...t, name });
      }
    return out;
  }

  visiblePrompts(agent: AgentRecord): Prompt[] {
    const out: Prompt[] = [];
    for (const up of this.liveUpstreams())
      for (const p of up.catalog.prompts) {
        const name = exposedName(up.name, p.name);
        if (permitted(agent, name)) out.push({ ...p, name });
      }
    return out;
  }

  /** The resources and templates the agent may see: each by its `server__uri` (a template by its
   * URI template), or all of a server's by its name (resourcePermitted). */
  visibleResources(agent: AgentRecord): { resources: Resource[]; templates: ResourceTemplate[] } {
    const resources: Resource[] = [];
    const templates: ResourceTemplate[] = [];
    for (const up of this.liveUpstreams()) {
      for (const r of up.catalog.resources) if (resourcePermitted(agent, up.name, r.uri)) resources.push(r);
      for (const t of up.catalog.resourceTemplates) if (resourcePermitted(agent, up.name, t.uriTemplate)) templates.push(t);
    }
    return { resources, templates };
  }

  /** The upstream tool behind an exposed name (undefined: no such tool). */
  resolveTool(exposed: string): { up: Upstream; tool: string } | undefined {
    const i = exposed.indexOf('__');
    if (i < 0) return undefined;
    const up = this.upstreams.get(exposed.slice(0, i));
    if (!up || up.config.disabled) return undefined;
    const t = up.catalog.tools.find((x) => exposedName(up.name, x.name) === exposed);
    return t ? { up, tool: t.name } : undefined;
  }

  private signature(agent: AgentRecord | undefined): McpSession['shown'] {
    if (!agent) return { tools: '', prompts: '', resources: '' };
    const r = this.visibleResources(agent);
    return {
      tools: JSON.stringify(this.visibleTools(agent)),
      prompts: JSON.stringify(this.visiblePrompts(agent)),
      resources: JSON.stringify([r.resources, r.templates]),
    };
  }

  /** Tell each session whose visible set changed (catalogs or permissions): list_changed. */
  private notifyChanges(): void {
    for (const s of this.sessions.values()) {
      const next = this.signature(this.agentOf(s));
      const prev = s.shown;
      s.shown = next;
      if (next.tools !== prev.tools) s.server.sendToolListChanged().catch(() => undefined);
      if (next.prompts !== prev.prompts) s.server.sendPromptListChanged().catch(() => undefined);
      if (next.resources !== prev.resources) s.server.sendResourceListChanged().catch(() => undefined);
    }
  }

  // ---- sessions ----

  /** A new virtual MCP server for one agent session (the endpoint connects its transport). */
  newSession(id: string, agent: AgentRecord, keyHash: string, onClose: () => void, virtual?: string): McpSession {
    const server = new Server(
      { name: 'airlock', version: VERSION },
      {
        capabilities: { tools: { listChanged: true }, prompts: { listChanged: true }, resources: { listChanged: true, subscribe: true }, logging: {}, completions: {} },
        instructions: 'Airlock MCP gateway: the tools, prompts and resources this agent may use, from every registered MCP server, named "server__name".',
      },
    );
    const session: McpSession = {
      id,
      agentName: agent.name,
      keyHash,
      virtual,
      server,
      lastSeen: Date.now(),
      clients: new Map(),
      subscriptions: new Set(),
      reconnects: new Map(),
      shown: this.signature(this.scoped(agent, virtual)),
      closed: false,
      close: async () => {
        if (session.closed) return;
        session.closed = true;
        this.sessions.delete(id);
        for (const r of session.reconnects.values()) clearTimeout(r.timer);
        session.reconnects.clear();
        for (const k of session.subscriptions) this.unsubscribeShared(session, k);
        const clients = [...session.clients.values()];
        session.clients.clear();
        await Promise.all(clients.map((c) => c.then((x) => endSession(x)).catch(() => undefined)));
        await server.close().catch(() => undefined);
        onClose();
      },
    };
    const need = (): AgentRecord => {
      session.lastSeen = Date.now();
      const a = this.agentOf(session);
      if (!a) throw new McpError(ErrorCode.InvalidRequest, 'This agent is no longer allowed to use this gateway.');
      return a;
    };
    server.setRequestHandler(ListToolsRequestSchema, async () => {
      const a = need();
      await this.catalogsRead();
      const tools = this.visibleTools(a);
      session.shown = { ...session.shown, tools: JSON.stringify(tools) };
      return { tools };
    });
    server.setRequestHandler(CallToolRequestSchema, (req, extra) => this.callTool(session, need(), req.params, extra));
    server.setRequestHandler(ListPromptsRequestSchema, async () => {
      const a = need();
      await this.catalogsRead();
      return { prompts: this.visiblePrompts(a) };
    });
    server.setRequestHandler(GetPromptRequestSchema, async (req, extra) => {
      const a = need();
      const name = req.params.name;
      const target = this.resolvePrompt(name);
      return this.traced(session, a, 'prompts/get', name, target?.up.name, req.params._meta, extra, async (meta) => {
        const { up, prompt } = this.permittedPrompt(a, name);
        return this.viaClient(session, up, (client) => client.getPrompt({ name: prompt, ...(req.params.arguments ? { arguments: req.params.arguments } : {}), ...meta }, { signal: extra.signal, timeout: up.config.callTimeoutMs }));
      });
    });
    server.setRequestHandler(ListResourcesRequestSchema, async () => {
      const a = need();
      await this.catalogsRead();
      return { resources: this.visibleResources(a).resources };
    });
    server.setRequestHandler(ListResourceTemplatesRequestSchema, () => ({ resourceTemplates: this.visibleResources(need()).templates }));
    server.setRequestHandler(ReadResourceRequestSchema, async (req, extra) => {
      const a = need();
      const uri = req.params.uri;
      await this.catalogsRead();
      const up = this.resourceServer(a, uri);
      return this.traced(session, a, 'resources/read', uri, up?.name, req.params._meta, extra, async (meta) => {
        if (!up) throw notAvailable(uri);
        return this.viaClient(session, up, (client) => client.readResource({ uri, ...meta }, { signal: extra.signal, timeout: up.config.callTimeoutMs }));
      });
    });
    // resources/subscribe: over the session's own connection, or once over a shared one for every
    // session subscribed (notifications/resources/updated then goes to each of them)
    server.setRequestHandler(SubscribeRequestSchema, async (req, extra) => {
      const uri = req.params.uri;
      const a = need();
      await this.catalogsRead();
      const up = this.resourceServer(a, uri);
      if (!up) throw notAvailable(uri);
      const key = `${up.name}\n${uri}`;
      if (session.subscriptions.has(key)) return {};
      const client = await this.clientFor(session, up);
      if (!client.getServerCapabilities()?.resources?.subscribe) throw new McpError(ErrorCode.MethodNotFound, `MCP server "${up.name}" does not offer resource subscriptions.`);
      const opts = { signal: extra.signal, timeout: up.config.callTimeoutMs };
      if (up.perSession) await client.subscribeResource({ uri }, opts);
      else {
        const subs = this.subscribers(up.name, uri);
        if (!subs.size) await client.subscribeResource({ uri }, opts);
        subs.add(session);
      }
      session.subscriptions.add(key);
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, async (req, extra) => {
      const uri = req.params.uri;
      need();
      // the subscription it holds, even if the agent may no longer use the resource
      const key = [...session.subscriptions].find((k) => k.slice(k.indexOf('\n') + 1) === uri);
      const up = key === undefined ? undefined : this.upstreams.get(key.slice(0, key.indexOf('\n')));
      if (!up || key === undefined) return {};
      session.subscriptions.delete(key);
      if (!up.perSession) this.unsubscribeShared(session, key);
      else await (await this.clientFor(session, up)).unsubscribeResource({ uri }, { signal: extra.signal, timeout: up.config.callTimeoutMs });
      return {};
    });
    // completion/complete: a prompt's arguments (by its exposed name) or a resource template's, asked
    // of the server that has it; a server without completions offers none
    server.setRequestHandler(CompleteRequestSchema, async (req, extra) => {
      const a = need();
      const ref = req.params.ref;
      let up: Upstream;
      let upstreamRef = ref;
      if (ref.type === 'ref/prompt') {
        const p = this.permittedPrompt(a, ref.name);
        up = p.up;
        upstreamRef = { ...ref, name: p.prompt };
      } else {
        const found = this.liveUpstreams().find((u) => u.catalog.resourceTemplates.some((t) => t.uriTemplate === ref.uri && resourcePermitted(a, u.name, t.uriTemplate))) ?? this.resourceServer(a, ref.uri);
        if (!found) throw notAvailable(ref.uri);
        up = found;
      }
      const client = await this.clientFor(session, up);
      if (!client.getServerCapabilities()?.completions) return { completion: { values: [] } };
      return client.complete({ ...req.params, ref: upstreamRef }, { signal: extra.signal, timeout: up.config.callTimeoutMs });
    });
    this.sessions.set(id, session);
    return session;
  }

  /** A request over the session's connection to up; an answer too large is an error that says so. */
  private async viaClient<T>(session: McpSession, up: Upstream, run: (c: Client) => Promise<T>): Promise<T> {
    const client = await this.clientFor(session, up);
    try {
      return await run(client);
    } catch (e) {
      const big = tooLarge(client);
      throw big ? new McpError(ErrorCode.InternalError, `${big.message}.`) : e;
    }
  }

  /** The upstream prompt behind an exposed name (undefined: no such prompt). */
  private resolvePrompt(exposed: string): { up: Upstream; prompt: string } | undefined {
    const i = exposed.indexOf('__');
    const up = i > 0 ? this.upstreams.get(exposed.slice(0, i)) : undefined;
    const p = up?.catalog.prompts.find((x) => exposedName(up.name, x.name) === exposed);
    return up && p && !up.config.disabled ? { up, prompt: p.name } : undefined;
  }

  /** The prompt, if the agent may use it; else the error it gets (the same whether denied or unknown). */
  private permittedPrompt(agent: AgentRecord, exposed: string): { up: Upstream; prompt: string } {
    const p = this.resolvePrompt(exposed);
    if (!p || !permitted(agent, exposed)) throw new McpError(ErrorCode.InvalidParams, `Prompt "${exposed}" is not available to this agent (not permitted, or no such prompt).`);
    return p;
  }

  /** The server a resource URI belongs to (its resources, then its templates), when the agent may
   * use that URI there (undefined: not permitted, or no such resource: the same answer). */
  private resourceServer(agent: AgentRecord, uri: string): Upstream | undefined {
    const servers = this.liveUpstreams().filter((u) => resourcePermitted(agent, u.name, uri));
    return servers.find((u) => u.catalog.resources.some((r) => r.uri === uri)) ?? servers.find((u) => u.catalog.resourceTemplates.some((t) => templateMatches(t.uriTemplate, uri)));
  }

  /** sessions subscribed to a resource over a shared connection, per server and URI */
  private readonly subs = new Map<string, Set<McpSession>>();
  private subscribers(server: string, uri: string): Set<McpSession> {
    const k = `${server}\n${uri}`;
    let s = this.subs.get(k);
    if (!s) this.subs.set(k, (s = new Set()));
    return s;
  }
  /** A session leaves a shared subscription; the last one out unsubscribes upstream. */
  private unsubscribeShared(session: McpSession, key: string): void {
    const s = this.subs.get(key);
    if (!s?.delete(session) || s.size) return;
    this.subs.delete(key);
    const [server, uri] = key.split('\n') as [string, string];
    const up = this.upstreams.get(server);
    if (up && !up.perSession) up.ensure().then((c) => c.unsubscribeResource({ uri }), () => undefined).catch(() => undefined);
  }

  /** Servers whose catalog was never read (starting at boot, or started on first use here): wait
   * for them, up to CATALOG_WAIT_MS, so an agent's first list is complete. A server that was
   * waited for that long once and is still unread (it hangs, or keeps failing to start) is not
   * waited for again: one stuck server must not add CATALOG_WAIT_MS to every list of every agent.
   * It is waited for again once it was read (a server re-registered is a new Upstream). */
  private readonly waitedOut = new WeakSet<Upstream>();

  private async catalogsRead(only?: Upstream): Promise<void> {
    const pending = (only ? [only] : this.liveUpstreams()).filter((u) => u.catalog.at === 0 && !this.waitedOut.has(u));
    if (!pending.length) return;
    let timer: NodeJS.Timeout | undefined;
    const all = Promise.allSettled(pending.map((u) => u.ensure()));
    const inTime = await Promise.race([
      all.then(() => true),
      new Promise<boolean>((r) => {
        timer = setTimeout(() => r(false), CATALOG_WAIT_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!inTime) for (const u of pending) if (u.catalog.at === 0) this.waitedOut.add(u);
  }

  /** Sampling and elicitation requests, and log messages, from an upstream to one agent session. */
  private relayTo(session: McpSession, server: string): Relay {
    const agentCan = (what: 'sampling' | 'elicitation') => {
      if (!session.server.getClientCapabilities()?.[what]) throw new McpError(ErrorCode.InvalidRequest, `The agent's client does not support ${what}.`);
    };
    return {
      createMessage: (params, signal) => {
        agentCan('sampling');
        return session.server.createMessage(params, { signal });
      },
      elicit: (params, signal) => {
        agentCan('elicitation');
        return session.server.elicitInput(params, { signal });
      },
      log: (params) => {
        // with the session id, the SDK applies the level the agent set (logging/setLevel)
        session.server.sendLoggingMessage({ ...params, logger: params.logger ? `${server}: ${params.logger}` : server }, session.id).catch(() => undefined);
      },
      resourceUpdated: (params) => {
        // only while the agent may still use the resource (permissions change under a live subscription)
        const a = this.agentOf(session);
        if (a && session.subscriptions.has(`${server}\n${params.uri}`) && resourcePermitted(a, server, params.uri)) session.server.sendResourceUpdated(params).catch(() => undefined);
      },
    };
  }

  /** A shared connection serves every session: a request from it goes to the session with a call in
   * flight on it. A call whose agent can answer such a request runs alone (CallGate), so with
   * several in flight none of them can, and the first one's refusal says so. */
  private sharedRelay(server: string): Relay {
    const only = (): McpSession => {
      const s = this.inflight.get(server);
      const first = s?.keys().next().value;
      if (!first) throw new McpError(ErrorCode.InvalidRequest, `Airlock has no agent call in flight on MCP server "${server}" to relay this request to.`);
      return first;
    };
    return {
      createMessage: (params, signal) => this.relayTo(only(), server).createMessage(params, signal),
      elicit: (params, signal) => this.relayTo(only(), server).elicit(params, signal),
      log: (params) => {
        for (const s of this.inflight.get(server)?.keys() ?? []) this.relayTo(s, server).log(params);
      },
      resourceUpdated: (params) => {
        for (const s of this.subs.get(`${server}\n${params.uri}`) ?? []) this.relayTo(s, server).resourceUpdated(params);
      },
    };
  }

  /** sessions with a call in flight on a shared connection, per server (with a count) */
  private readonly inflight = new Map<string, Map<McpSession, number>>();
  /** the turns of calls on a shared connection, per server */
  private readonly gates = new Map<string, CallGate>();
  private gate(server: string): CallGate {
    let g = this.gates.get(server);
    if (!g) this.gates.set(server, (g = new CallGate()));
    return g;
  }
  private track(server: string, session: McpSession, d: 1 | -1): void {
    let m = this.inflight.get(server);
    if (!m) this.inflight.set(server, (m = new Map<McpSession, number>()));
    const n = (m.get(session) ?? 0) + d;
    if (n > 0) m.set(session, n);
    else m.delete(session);
  }

  /** The connection a session's call goes over: the shared one, or the session's own. A new
   * connection of its own (the first, or one after the last closed) is subscribed again to the
   * session's live subscriptions on that server before it is used. */
  private clientFor(session: McpSession, up: Upstream): Promise<Client> {
    if (!up.perSession) return up.ensure();
    let c = session.clients.get(up.name);
    if (!c) {
      const agentCaps = session.server.getClientCapabilities() ?? {};
      const made: Promise<Client> = up
        .connect(
          () => {
            if (session.clients.get(up.name) === c) session.clients.delete(up.name);
            this.keepSubscribed(session, up);
          },
          this.relayTo(session, up.name),
          { ...(agentCaps.sampling ? { sampling: {} } : {}), ...(agentCaps.elicitation ? { elicitation: {} } : {}) },
        )
        .then(async (client) => {
          await Promise.all(this.urisOf(session.subscriptions, up.name).map((uri) => this.resubscribe(up, client, uri)));
          return client;
        });
      c = made;
      void made.then((x) => opened.set(made, x), () => undefined);
      session.clients.set(up.name, c);
      c.catch(() => {
        if (session.clients.get(up.name) === c) session.clients.delete(up.name);
      });
    }
    return c;
  }

  /** the URIs among "server\nuri" keys that belong to one server */
  private urisOf(keys: Iterable<string>, server: string): string[] {
    const prefix = `${server}\n`;
    return [...keys].filter((k) => k.startsWith(prefix)).map((k) => k.slice(prefix.length));
  }

  /** resources/subscribe sent again over a new connection (a failure is logged, not fatal: the
   * connection serves the session's calls all the same) */
  private async resubscribe(up: Upstream, client: Client, uri: string): Promise<void> {
    if (!client.getServerCapabilities()?.resources?.subscribe) return;
    await client.subscribeResource({ uri }, { timeout: up.config.callTimeoutMs }).catch((e: Error) => this.opts.log(`mcp: re-subscribing to ${uri} on MCP server "${up.name}" failed: ${e.message}`));
  }

  /** A session's own connection to a server closed while the session holds subscriptions there:
   * open a new one (backing off while the server is away), so resource updates keep coming
   * without waiting for the agent's next request. */
  private keepSubscribed(session: McpSession, up: Upstream): void {
    const live = () => !session.closed && this.upstreams.get(up.name) === up && !up.config.disabled && this.urisOf(session.subscriptions, up.name).length > 0;
    const pending = session.reconnects.get(up.name);
    if (!live() || pending?.timer) return;
    const delay = pending ? Math.min(RESUBSCRIBE_MAX_MS, pending.delay * 2) : RESUBSCRIBE_FIRST_MS;
    const timer = setTimeout(() => {
      if (!live() || session.clients.has(up.name)) {
        session.reconnects.delete(up.name);
        return;
      }
      session.reconnects.set(up.name, { timer: undefined, delay });
      this.clientFor(session, up).then(
        () => session.reconnects.delete(up.name),
        () => this.keepSubscribed(session, up),
      );
    }, delay);
    timer.unref();
    session.reconnects.set(up.name, { timer, delay });
  }

  /** The shared connection to a server (re)opened: subscribe it to what its sessions are subscribed to. */
  private resubscribeShared(server: string, client: Client): void {
    const up = this.upstreams.get(server);
    if (!up || up.perSession) return;
    for (const [key, subs] of this.subs) if (subs.size) for (const uri of this.urisOf([key], server)) void this.resubscribe(up, client, uri);
  }

  // ---- prompts/get and resources/read: traced like tool calls (their own channels: no ledger row) ----

  private async traced<T>(
    session: McpSession,
    agent: AgentRecord,
    method: 'prompts/get' | 'resources/read',
    target: string,
    server: string | undefined,
    meta: Record<string, unknown> | undefined,
    extra: Extra,
    run: (meta: { _meta?: Record<string, string> }) => Promise<T>,
  ): Promise<T> {
    const call = {
      ...callBasics(session, agent, meta, extra),
      method,
      target,
      server,
      status: 200,
      errorClass: undefined as string | undefined,
    };
    if (channels.mcpCallStart.hasSubscribers) channels.mcpCallStart.publish({ source: this, call });
    try {
      return await run(upstreamMeta(call));
    } catch (e) {
      const code = e instanceof McpError ? e.code : undefined;
      call.status = code === ErrorCode.InvalidParams ? 403 : code === ErrorCode.RequestTimeout ? 504 : 502;
      call.errorClass = code === ErrorCode.InvalidParams ? 'not_permitted' : code === ErrorCode.RequestTimeout ? 'timeout' : 'upstream_error';
      throw e;
    } finally {
      if (channels.mcpCallEnd.hasSubscribers) channels.mcpCallEnd.publish({ source: this, call, latencyMs: performance.now() - call.t0 });
    }
  }

  // ---- tool calls ----

  /** tools/call from the endpoint's fast path (server/mcp-relay.ts): the same checks and stages as
   * the SDK Server's handler. */
  relayToolCall(session: McpSession, params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }, extra: Pick<Extra, 'signal' | 'sessionId' | 'requestId' | 'requestInfo' | 'sendNotification'>): Promise<CallToolResult> {
    session.lastSeen = Date.now();
    const a = this.agentOf(session);
    if (!a) return Promise.reject(new McpError(ErrorCode.InvalidRequest, 'This agent is no longer allowed to use this gateway.'));
    return this.callTool(session, a, params, extra as Extra);
  }

  private async callTool(session: McpSession, agent: AgentRecord, params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }, extra: Extra): Promise<CallToolResult> {
    const call: ToolCallContext = {
      ...callBasics(session, agent, params._meta, extra),
      exposed: params.name,
      server: undefined,
      tool: undefined,
      argsBytes: Buffer.byteLength(JSON.stringify(params.arguments ?? {})),
      resultBytes: null,
      status: 200,
      errorClass: undefined,
      isError: false,
    };
    if (channels.toolStart.hasSubscribers) channels.toolStart.publish({ source: this, call });
    let result: CallToolResult | undefined;
    try {
      result = await this.runCall(session, agent, call, params, extra);
      return result;
    } finally {
      if (result) {
        call.isError = result.isError === true;
        call.resultBytes = Buffer.byteLength(JSON.stringify(result));
        if (call.isError && call.status === 200) call.errorClass = 'tool_error';
      }
      channels.toolEnd.publish({ source: this, call, latencyMs: performance.now() - call.t0 });
    }
  }

  private async runCall(session: McpSession, agent: AgentRecord, call: ToolCallContext, params: { name: string; arguments?: Record<string, unknown>; _meta?: Record<string, unknown> }, extra: Extra): Promise<CallToolResult> {
    const fail = (status: number, errorClass: string, text: string): CallToolResult => {
      call.status = status;
      call.errorClass = errorClass;
      return textResult(text);
    };
    // authorize: a denied tool and an unknown one get the same answer (no existence oracle)
    const prefix = params.name.indexOf('__') > 0 ? this.upstreams.get(params.name.slice(0, params.name.indexOf('__'))) : undefined;
    if (prefix && !prefix.config.disabled) await this.catalogsRead(prefix);
    const target = this.resolveTool(params.name);
    if (!target || !permitted(agent, params.name))
      return fail(403, 'tool_not_permitted', `Tool "${params.name}" is not permitted for agent "${agent.name}" (or there is no such tool).`);
    const { up, tool } = target;
    call.server = up.name;
    call.tool = tool;
    // admit: per-agent, then per-tool rate limits
    if (agent.callsPerMinute !== undefined) {
      const wait = this.limiter.take(`agent:${agent.name}`, agent.callsPerMinute);
      if (wait) return fail(429, 'rate_limit_exceeded', `Rate limit exceeded: agent "${agent.name}" may make ${agent.callsPerMinute} tool calls per minute; retry in ${Math.ceil(wait / 1000)} s.`);
    }
    if (up.config.toolCallsPerMinute !== undefined) {
      const wait = this.limiter.take(`tool:${params.name}`, up.config.toolCallsPerMinute);
      if (wait) return fail(429, 'rate_limit_exceeded', `Rate limit exceeded: tool "${params.name}" takes ${up.config.toolCallsPerMinute} calls per minute; retry in ${Math.ceil(wait / 1000)} s.`);
    }
    // guard the arguments
    let args = params.arguments ?? {};
    for (const g of this.guards.guards) {
      if (!g.checkArguments) continue;
      try {
        const v = await g.checkArguments(call, args);
        if (v.action === 'block') return fail(400, 'guardrail_blocked', `Blocked by guardrail "${g.name}": ${v.reason}`);
        if (v.action === 'replace') args = v.arguments;
      } catch (e) {
        return fail(500, 'guard_failed', `Guardrail "${g.name}" failed: ${(e as Error).message}`);
      }
    }
    // call, with the per-call timeout, the agent's cancellation and its progress token
    const progressToken = params._meta?.progressToken as string | number | undefined;
    const timeout = up.config.callTimeoutMs;
    let result: CallToolResult;
    // progress relayed in order, and all of it before the result (which ends the agent's stream)
    let relayed: Promise<unknown> = Promise.resolve();
    let used: Client | undefined;
    const once = async (): Promise<CallToolResult> => {
      const pending = this.clientFor(session, up);
      // a connection already open is used as it is (no timer, no listener)
      const client = (used = opened.get(pending) ?? (await withTimeout(pending, timeout, extra.signal)));
      // an HTTP server's session: straight to it (http-call.ts), unless the call wants progress
      // (the SDK Client's progress handlers relay it)
      const direct = progressToken === undefined ? up.direct(client) : undefined;
      if (direct) return callToolDirect(direct, { name: tool, arguments: args, ...upstreamMeta(call) }, extra.signal, timeout);
      // the SDK adds its own progressToken beside the trace context in _meta
      const r = await client.request({ method: 'tools/call', params: { name: tool, arguments: args, ...upstreamMeta(call) } }, CallToolResultSchema, {
        signal: extra.signal,
        timeout,
        ...(progressToken !== undefined
          ? {
              onprogress: (p) => {
                relayed = relayed.then(() => extra.sendNotification({ method: 'notifications/progress', params: { ...p, progressToken } })).catch(() => undefined);
              },
            }
          : {}),
      });
      await relayed;
      return r;
    };
    let release: (() => void) | undefined;
    try {
      if (!up.perSession) {
        const caps = session.server.getClientCapabilities();
        release = await this.gate(up.name).enter(!!(caps?.sampling || caps?.elicitation), extra.signal, timeout, up.name);
        this.track(up.name, session, 1);
      }
      try {
        result = await once();
      } catch (e) {
        // an HTTP or SSE upstream that lost our session (404, or the stream ended): one new session, transparently
        if (up.perSession && (sessionLost(e) || droppedForLostSession(used)) && !extra.signal.aborted) {
          const c = session.clients.get(up.name);
          session.clients.delete(up.name);
          await c?.then((x) => x.close()).catch(() => undefined);
          result = await once();
        } else throw e;
      }
    } catch (e) {
      const big = tooLarge(used);
      if (big) return fail(502, 'response_too_large', `${big.message}.`);
      if (extra.signal.aborted) {
        call.status = 499;
        call.errorClass = 'client_cancelled';
        throw e;
      }
      if (e instanceof McpError) {
        if (e.code === Number(ErrorCode.RequestTimeout)) return fail(504, 'timeout', `The tool call to MCP server "${up.name}" timed out after ${timeout} ms.`);
        if (e.code === Number(ErrorCode.ConnectionClosed)) return fail(502, 'upstream_closed', `MCP server "${up.name}" closed the connection during the call${up.config.transport === 'stdio' ? ' (its process exited; it is being restarted)' : ''}.`);
        // a protocol error of the upstream's (unknown arguments, ...): relayed as it is
        call.status = 502;
        call.errorClass = 'upstream_error';
        throw new McpError(e.code, e.message.replace(/^MCP error -?\d+: /, ''), e.data);
      }
      return fail(502, 'upstream_unavailable', `MCP server "${up.name}" could not be reached: ${(e as Error).message}`);
    } finally {
      if (release) {
        this.track(up.name, session, -1);
        release();
      }
    }
    // guard the result
    for (const g of this.guards.guards) {
      if (!g.checkResult) continue;
      try {
        const v = await g.checkResult(call, result);
        if (v.action === 'block') return fail(400, 'guardrail_blocked', `The result was blocked by guardrail "${g.name}": ${v.reason}`);
        if (v.action === 'replace') result = v.result;
      } catch (e) {
        return fail(500, 'guard_failed', `Guardrail "${g.name}" failed: ${(e as Error).message}`);
      }
    }
    return result;
  }
}

/** What every recorded call of an agent's starts with (tools/call, prompts/get, resources/read):
 * our id, the times, who and in which sessions (MCP, and the x-airlock-session workflow), and its
 * trace context (from params._meta, else the HTTP headers). */
function callBasics(session: McpSession, agent: AgentRecord, meta: Record<string, unknown> | undefined, extra: Extra) {
  const headers = extra.requestInfo?.headers;
  const trace = traceContext(meta, headers);
  return {
    id: newRequestId(),
    ts: Date.now(),
    t0: performance.now(),
    agent,
    mcpSession: session.id,
    session: firstHeader(headers, 'x-airlock-session'),
    user: firstHeader(headers, 'x-airlock-user'),
    traceparent: trace.traceparent,
    tracestate: trace.tracestate,
    upstreamTraceparent: trace.traceparent,
  };
}

/** The agent's W3C trace context for one request: params._meta (the MCP convention) first, then
 * the HTTP headers of the request that carried it. A malformed traceparent is dropped (and its
 * tracestate with it); a tracestate is kept within the W3C limit (512 characters). */
export function traceContext(meta: Record<string, unknown> | undefined, headers: Record<string, string | string[] | undefined> | undefined): { traceparent: string | undefined; tracestate: string | undefined } {
  const fromMeta = typeof meta?.traceparent === 'string' ? meta.traceparent : undefined;
  const traceparent = fromMeta ?? firstHeader(headers, 'traceparent');
  if (!traceparent || !parseTraceparent(traceparent)) return { traceparent: undefined, tracestate: undefined };
  const ts = fromMeta !== undefined ? meta?.tracestate : firstHeader(headers, 'tracestate');
  const tracestate = typeof ts === 'string' && ts.length <= 512 && /^[\x20-\x7e]+$/.test(ts) ? ts : undefined;
  return { traceparent: traceparent.trim(), tracestate };
}

/** What goes upstream in params._meta: the trace context (the agent's, or our span's); the
 * agent's other _meta is not relayed. */
function upstreamMeta(call: { upstreamTraceparent: string | undefined; tracestate: string | undefined }): { _meta?: Record<string, string> } {
  if (!call.upstreamTraceparent) return {};
  return { _meta: { traceparent: call.upstreamTraceparent, ...(call.tracestate ? { tracestate: call.tracestate } : {}) } };
}

const notAvailable = (uri: string) => new McpError(ErrorCode.InvalidParams, `Resource "${uri}" is not available to this agent (not permitted, or no such resource).`);

/** the connections that opened, by the promise clientFor gave out for them */
const opened = new WeakMap<Promise<Client>, Client>();

/** Wait for a connection no longer than the call may take. */
function withTimeout<T>(p: Promise<T>, ms: number, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const t = setTimeout(() => reject(new McpError(ErrorCode.RequestTimeout, 'timed out waiting for the MCP server to start')), ms);
    const abort = () => reject(new Error('cancelled'));
    signal.addEventListener('abort', abort, { once: true });
    p.then(resolve, reject).finally(() => {
      clearTimeout(t);
      signal.removeEventListener('abort', abort);
    });
  });
}

/** Does a URI match an RFC 6570 template's literal parts? (a {var} matches anything) */
export function templateMatches(template: string, uri: string): boolean {
  const re = '^' + template.split(/\{[^}]*\}/).map((s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.+') + '$';
  return new RegExp(re).test(uri);
}

/** The ledger row of a finished tool call. */
export function toolLedgerRow(call: ToolCallContext, latencyMs: number): LedgerRow {
  return {
    request_id: call.id,
    client_request_id: null,
    ts: call.ts,
    kind: 'mcp_tool',
    key_name: call.agent.name,
    team: call.agent.team ?? null,
    app: call.agent.name,
    user: call.user ?? null,
    session: call.session ?? null,
    requested_model: call.exposed,
    alias: null,
    endpoint: call.server ?? null,
    upstream_model: call.tool ?? null,
    stream: 0,
    prompt_tokens: 0,
    completion_tokens: 0,
    estimated: 0,
    cost: 0,
    ttfb_ms: null,
    latency_ms: Math.round(latencyMs * 1000) / 1000,
    status: call.status,
    attempts: call.server ? 1 : 0,
    error_class: call.errorClass ?? null,
    tags: null,
    downgraded_from: null,
    args_bytes: call.argsBytes,
    trace: null,
    result_bytes: call.resultBytes,
  };
}
