// The MCP part of the configuration, as the hub reads it: servers with their secrets decrypted,
// agents by key hash with their patterns compiled. Built whole on every configuration change.
import type { StoredState, McpSecrets, StoredMcpServer } from '../../store/config-store.js';
import { compilePattern, type Permissions, type ResourcePermissions } from './names.js';
import { DEFAULT_MAX_RESPONSE_BYTES } from './bounded.js';

export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

export interface McpServerConfig {
  readonly name: string;
  readonly transport: 'stdio' | 'http' | 'sse';
  readonly command: string | undefined;
  readonly args: readonly string[];
  readonly cwd: string | undefined;
  readonly env: Readonly<Record<string, string>>;
  readonly url: string | undefined;
  readonly headers: Readonly<Record<string, string>>;
  readonly stateful: boolean;
  readonly startAtBoot: boolean;
  readonly callTimeoutMs: number;
  readonly toolCallsPerMinute: number | undefined;
  /** the most one message from the server may hold (bounded.ts) */
  readonly maxResponseBytes: number;
  readonly disabled: boolean;
  /** identity of what the connection depends on: a change restarts the server */
  readonly identity: string;
}

export interface AgentRecord extends Permissions, ResourcePermissions {
  readonly name: string;
  readonly team: string | undefined;
  readonly callsPerMinute: number | undefined;
  readonly disabled: boolean;
}

/** A virtual server (/mcp/v/NAME): the tools and resources it offers. */
export interface VirtualServerRecord extends Permissions {
  readonly name: string;
  readonly resources: readonly RegExp[];
}

export interface McpConfig {
  readonly servers: ReadonlyMap<string, McpServerConfig>;
  readonly agentsByHash: ReadonlyMap<string, AgentRecord>;
  readonly virtualServers: ReadonlyMap<string, VirtualServerRecord>;
}

export function buildMcpConfig(state: Pick<StoredState, 'mcp_servers' | 'agents'> & Partial<Pick<StoredState, 'mcp_virtual_servers'>>, secretsOf: (m: StoredMcpServer) => McpSecrets): McpConfig {
  const servers = new Map<string, McpServerConfig>();
  for (const m of state.mcp_servers) {
    const sec = secretsOf(m);
    const base = {
      name: m.name,
      transport: m.transport,
      command: m.command,
      args: Object.freeze([...(m.args ?? [])]),
      cwd: m.cwd,
      env: Object.freeze({ ...sec.env }),
      url: m.url,
      headers: Object.freeze({ ...sec.headers }),
      stateful: !!m.stateful,
      startAtBoot: m.start !== 'first_use',
      maxResponseBytes: m.max_response_bytes ?? DEFAULT_MAX_RESPONSE_BYTES,
    };
    servers.set(
      m.name,
      Object.freeze({
        ...base,
        callTimeoutMs: m.call_timeout_ms ?? DEFAULT_CALL_TIMEOUT_MS,
        toolCallsPerMinute: m.tool_calls_per_minute,
        disabled: !!m.disabled,
        identity: JSON.stringify(base),
      }),
    );
  }
  const agentsByHash = new Map<string, AgentRecord>();
  for (const a of state.agents) {
    agentsByHash.set(
      a.hash,
      Object.freeze({
        name: a.name,
        team: a.team,
        allow: Object.freeze((a.tools ?? []).map(compilePattern)),
        deny: Object.freeze((a.deny ?? []).map(compilePattern)),
        resources: Object.freeze((a.resources ?? []).map(compilePattern)),
        resourcesDeny: Object.freeze((a.resources_deny ?? []).map(compilePattern)),
        callsPerMinute: a.calls_per_minute,
        disabled: !!a.disabled,
      }),
    );
  }
  const virtualServers = new Map<string, VirtualServerRecord>();
  for (const v of state.mcp_virtual_servers ?? [])
    virtualServers.set(v.name, Object.freeze({ name: v.name, allow: Object.freeze(v.tools.map(compilePattern)), deny: Object.freeze([]), resources: Object.freeze((v.resources ?? []).map(compilePattern)) }));
  return Object.freeze({ servers, agentsByHash, virtualServers });
}
