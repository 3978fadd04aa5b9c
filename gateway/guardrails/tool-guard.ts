// Guardrails on MCP tool calls: the policies whose direction is tool_args check a call's arguments
// before it is forwarded, those with tool_result check what the server answered before the agent
// sees it. Scope: the agent, its team, the MCP server and the tool (policies scoped to models or
// keys do not apply to tool calls). Every string inside the arguments or the result is checked and
// the shape is kept; a redaction sends the redacted value on, a block never reaches the server
// (arguments) or the agent (result). Decisions are recorded like a request's (guardrail_events,
// with the tool call's id).
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { Snapshot } from '../engine/snapshot.js';
import type { ToolCallContext } from '../engine/mcp/hub.js';
import type { ToolArgsVerdict, ToolGuard, ToolResultVerdict } from '../engine/mcp/guards.js';
import type { GuardrailEngine } from './engine.js';
import type { GuardScopeFacts } from './policy.js';

function scopeOf(call: ToolCallContext): GuardScopeFacts {
  return { agent: call.agent.name, team: call.agent.team, mcp_server: call.server, tool: call.exposed };
}

/** policy "no-secrets": the tool arguments contain secrets (AWS_KEY) — the kinds found, never the text */
const reason = (b: { policy: string; message: string } | undefined) => (b ? `policy "${b.policy}": ${b.message}` : 'blocked');

export function guardrailToolGuard(engine: GuardrailEngine, snapshot: () => Snapshot): ToolGuard {
  const ref = (call: ToolCallContext) => ({ toolCallId: call.id, key: call.agent.name, team: call.agent.team });
  return {
    name: 'guardrails',
    checkArguments(call: ToolCallContext, args: Record<string, unknown>): ToolArgsVerdict {
      const r = engine.evaluate(snapshot(), 'tool_args', args, scopeOf(call), ref(call));
      if (r.action === 'block') return { action: 'block', reason: reason(r.blocked) };
      if (r.action === 'redact') return { action: 'replace', arguments: r.value };
      return { action: 'pass' };
    },
    checkResult(call: ToolCallContext, result: CallToolResult): ToolResultVerdict {
      const r = engine.evaluate(snapshot(), 'tool_result', result, scopeOf(call), ref(call));
      if (r.action === 'block') return { action: 'block', reason: reason(r.blocked) };
      if (r.action === 'redact') return { action: 'replace', result: r.value };
      return { action: 'pass' };
    },
  };
}
