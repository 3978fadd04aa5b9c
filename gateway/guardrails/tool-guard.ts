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
  /** after the detectors, the guard_model policies over what would be sent on (asked only when one applies) */
  const judged = <V>(s: Snapshot, direction: 'tool_args' | 'tool_result', call: ToolCallContext, value: unknown, verdict: V): V | Promise<V | { action: 'block'; reason: string }> => {
    const j = engine.judgeValue(s, direction, value, scopeOf(call), ref(call));
    return j ? j.then((b) => (b ? { action: 'block' as const, reason: reason(b) } : verdict)) : verdict;
  };
  return {
    name: 'guardrails',
    checkArguments(call: ToolCallContext, args: Record<string, unknown>): ToolArgsVerdict | Promise<ToolArgsVerdict> {
      const s = snapshot();
      const r = engine.evaluate(s, 'tool_args', args, scopeOf(call), ref(call));
      if (r.action === 'block') return { action: 'block', reason: reason(r.blocked) };
      return judged<ToolArgsVerdict>(s, 'tool_args', call, r.value, r.action === 'redact' ? { action: 'replace', arguments: r.value } : { action: 'pass' });
    },
    checkResult(call: ToolCallContext, result: CallToolResult): ToolResultVerdict | Promise<ToolResultVerdict> {
      const s = snapshot();
      const r = engine.evaluate(s, 'tool_result', result, scopeOf(call), ref(call));
      if (r.action === 'block') return { action: 'block', reason: reason(r.blocked) };
      return judged<ToolResultVerdict>(s, 'tool_result', call, r.value, r.action === 'redact' ? { action: 'replace', result: r.value } : { action: 'pass' });
    },
  };
}
