// The guard seam of tool calls: the guardrails (gateway/guardrails/) plug in here. A guard sees
// the arguments before a call is forwarded and the result before it is relayed; it may pass,
// replace (arguments or result) or block. A block becomes an error result for the agent (and a
// ledger row with error_class guardrail_blocked); the upstream is never called for blocked
// arguments. A guard that throws fails the call closed (guard_failed), never the upstream.
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import type { ToolCallContext } from './hub.js';

export type ToolArgsVerdict =
  | { action: 'pass' }
  | { action: 'replace'; arguments: Record<string, unknown> }
  | { action: 'block'; reason: string };
export type ToolResultVerdict =
  | { action: 'pass' }
  | { action: 'replace'; result: CallToolResult }
  | { action: 'block'; reason: string };

export interface ToolGuard {
  readonly name: string;
  checkArguments?(call: ToolCallContext, args: Record<string, unknown>): ToolArgsVerdict | Promise<ToolArgsVerdict>;
  checkResult?(call: ToolCallContext, result: CallToolResult): ToolResultVerdict | Promise<ToolResultVerdict>;
}

export interface ToolGuards {
  /** in order; each sees what the one before let through */
  readonly guards: readonly ToolGuard[];
}

export const noToolGuards: ToolGuards = Object.freeze({ guards: [] });
