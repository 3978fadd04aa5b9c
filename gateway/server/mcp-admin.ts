// The admin API's view of the MCP gateway: live status and catalogs of registered MCP servers,
// the Test button (initialize + list tools without saving), agents with their patterns expanded.
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { z } from 'zod';
import { agentSchema, mcpServerSchema, mcpVirtualServerSchema, type McpServerSpec } from '../config/schema.js';
import { AuthError } from './admin-auth.js';
import type { StoredState } from '../store/config-store.js';
// type-only: upstream.ts imports the MCP SDK, loaded when a server is tested (testMcpServer) or the hub loads
import type { Upstream } from '../engine/mcp/upstream.js';
import { buildMcpConfig } from '../engine/mcp/config.js';
import { exposedName } from '../engine/mcp/names.js';
import type { AgentView, McpServerDetail, McpServerStatus, McpServerView, McpTestResult } from '../wire.js';
import type { Gateway } from './gateway.js';

const iso = (t: number | undefined) => (t ? new Date(t).toISOString() : null);

export function mcpServerStatus(up: Upstream | undefined): McpServerStatus | null {
  if (!up) return null;
  return {
    state: up.state,
    pid: up.pid ?? null,
    restarts: up.restarts,
    last_error: up.lastError ?? null,
    ready_at: up.state === 'ready' ? iso(up.readyAt) : null,
    tools: up.catalog.tools.length,
    resources: up.catalog.resources.length,
    prompts: up.catalog.prompts.length,
    catalog_at: iso(up.catalog.at),
  };
}

export function mcpServerView(gw: Gateway, s: StoredState, name: string): McpServerView {
  const { secrets_enc: _s, ...spec } = s.mcp_servers.find((m) => m.name === name)!;
  return { ...spec, status: mcpServerStatus(gw.mcpLoaded?.upstreams.get(name)) };
}

export function mcpServerDetail(up: Upstream): McpServerDetail {
  const c = up.catalog;
  return {
    name: up.name,
    ...mcpServerStatus(up)!,
    catalog: {
      tools: c.tools.map((t) => ({
        name: exposedName(up.name, t.name),
        upstream_name: t.name,
        ...(t.title ? { title: t.title } : {}),
        ...(t.description ? { description: t.description } : {}),
        ...(t.annotations ? { annotations: t.annotations } : {}),
        input_schema: t.inputSchema,
      })),
      resources: c.resources.map((r) => ({ uri: r.uri, name: r.name, ...(r.description ? { description: r.description } : {}) })),
      resource_templates: c.resourceTemplates.map((r) => ({ uri_template: r.uriTemplate, name: r.name })),
      prompts: c.prompts.map((p) => ({ name: exposedName(up.name, p.name), upstream_name: p.name, ...(p.description ? { description: p.description } : {}) })),
    },
    stderr: up.stderr.tail(200),
  };
}

export function agentView(gw: Gateway, s: StoredState, name: string): AgentView {
  const a = s.agents.find((x) => x.name === name)!;
  const { hash, created_at, ...rest } = a;
  const rec = buildMcpConfig({ mcp_servers: [], agents: [a] }, () => ({ env: {}, headers: {} })).agentsByHash.get(hash)!;
  return { ...rest, created_at: new Date(created_at).toISOString(), allowed_tools: (gw.mcpLoaded?.visibleTools(rec) ?? []).map((t) => t.name) };
}

/** Connect to an (unsaved) MCP server, list its tools and disconnect. Literal secrets only:
 * a null (stored) value is taken from the saved server of the same name. */
export async function testMcpServer(gw: Gateway, spec: McpServerSpec): Promise<McpTestResult> {
  const stored = gw.store.state().mcp_servers.find((m) => m.name === spec.name);
  const kept = stored ? gw.store.mcpSecrets(stored) : { env: {}, headers: {} };
  const resolve = (r: Record<string, string | null> | undefined, from: Record<string, string>): { values: Record<string, string>; problem?: string } => {
    const values: Record<string, string> = {};
    for (const [k, v] of Object.entries(r ?? {})) {
      if (v === null) {
        if (from[k] === undefined) return { values, problem: `${k}: null keeps the stored value, but none is stored` };
        values[k] = from[k];
      } else if (/^\$\{env:/.test(v)) return { values, problem: `${k}: \${env:…} references are resolved when the server is saved; test with the value itself, or save first` };
      else values[k] = v;
    }
    return { values };
  };
  const env = resolve(spec.env, kept.env);
  const headers = resolve(spec.headers, stored?.url === spec.url ? kept.headers : {});
  const problem = env.problem ?? headers.problem;
  if (problem) return { ok: false, error: problem, tools: [], stderr: [] };
  if (spec.transport === 'stdio' ? !spec.command : !spec.url) return { ok: false, error: spec.transport === 'stdio' ? 'command is required for transport "stdio"' : `url is required for transport "${spec.transport}"`, tools: [], stderr: [] };
  const { newClient, readCatalog, transportFor, LineLog, CONNECT_TIMEOUT_MS } = await import('../engine/mcp/upstream.js');
  const log = new LineLog(100);
  const client = newClient();
  try {
    await client.connect(
      transportFor({ transport: spec.transport, command: spec.command, args: spec.args ?? [], cwd: spec.cwd, env: env.values, url: spec.url, headers: headers.values }, log),
      { timeout: Math.min(CONNECT_TIMEOUT_MS, 15_000) },
    );
    const cat = await readCatalog(client);
    const info = client.getServerVersion();
    return {
      ok: true,
      ...(info ? { server: { name: info.name, version: info.version } } : {}),
      tools: cat.tools.map((t) => ({ name: t.name, ...(t.description ? { description: t.description } : {}) })),
      stderr: log.tail(50),
    };
  } catch (e) {
    return { ok: false, error: (e as Error).message, tools: [], stderr: log.tail(50) };
  } finally {
    await client.close().catch(() => undefined);
  }
}

/** Registering a stdio server runs a program as the Airlock user, which can read the install key
 * and the gateway's environment: owner-only, like the other settings that change who holds what. */
export function stdioNeedsOwner(method: string, role: string | undefined, before: McpServerSpec | undefined, after: McpServerSpec | undefined): string | undefined {
  if (role === 'owner') return undefined;
  if (before?.transport === 'stdio' || after?.transport === 'stdio')
    return `Only an owner may register, change or remove a stdio MCP server (it runs a program on this machine as the Airlock user); the ${role ?? 'anonymous'} role may not. ${method} refused.`;
  return undefined;
}


type Crud = <T extends { name: string }, V extends object>(
  section: 'mcp_servers' | 'agents' | 'mcp_virtual_servers',
  path: string,
  schema: z.ZodType<T>,
  view: (s: StoredState, name: string) => V,
  what: string,
  guard?: (req: FastifyRequest, before: T | undefined, after: T | undefined) => void,
) => void;

/** /mcp-servers (+ /test, /:name/status, /:name/restart) and /agents on the admin plane. */
export function registerMcpAdmin(app: FastifyInstance, gw: Gateway, deps: { api: string; crud: Crud; roleOf: (req: FastifyRequest) => string | undefined; parse: <T>(schema: z.ZodType<T>, body: unknown) => T }): void {
  const { api, crud } = deps;
  const ownerForStdio = (req: FastifyRequest, before: McpServerSpec | undefined, after: McpServerSpec | undefined) => {
    const why = stdioNeedsOwner(req.method, deps.roleOf(req), before, after);
    if (why) throw new AuthError(403, 'forbidden', why);
  };
  crud('mcp_servers', 'mcp-servers', mcpServerSchema, (s, name) => mcpServerView(gw, s, name), 'MCP server', ownerForStdio);
  crud('agents', 'agents', agentSchema, (s, name) => agentView(gw, s, name), 'agent');
  crud('mcp_virtual_servers', 'mcp-virtual-servers', mcpVirtualServerSchema, (s, name) => s.mcp_virtual_servers.find((v) => v.name === name)!, 'virtual MCP server');

  app.post(`${api}/mcp-servers/test`, { config: { access: 'admin' } }, async (req): Promise<McpTestResult> => {
    const spec = deps.parse(mcpServerSchema, req.body);
    ownerForStdio(req, undefined, spec);
    return testMcpServer(gw, spec);
  });
  app.get<{ Params: { name: string } }>(`${api}/mcp-servers/:name/status`, { config: { access: 'auditor' } }, async (req): Promise<McpServerDetail> => {
    // a server just registered: its hub may still be loading
    const hub = gw.store.state().mcp_servers.some((m) => m.name === req.params.name) ? await gw.mcpHub() : gw.mcpLoaded;
    const up = hub?.upstreams.get(req.params.name);
    if (!up) throw new AuthError(404, 'not_found', `No MCP server named "${req.params.name}".`);
    return mcpServerDetail(up);
  });
}
