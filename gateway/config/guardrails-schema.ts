// Guardrail policies: the `guardrails` section of the config file, the admin API's body and the
// admin app's form, one zod schema.
import { z } from 'zod';
import { unsafeRegexReason } from './regex-safety.js';

export const GUARD_DIRECTIONS = ['input', 'output', 'tool_args', 'tool_result'] as const;
export type GuardDirection = (typeof GUARD_DIRECTIONS)[number];
export const GUARD_ACTIONS = ['block', 'redact', 'flag'] as const;
export type GuardAction = (typeof GUARD_ACTIONS)[number];
export const GUARD_MODES = ['enforce', 'shadow'] as const;
export type GuardMode = (typeof GUARD_MODES)[number];

/** Built-in detectors by name: the groups (pii, secrets, injection) and their members. */
export const BUILTIN_DETECTORS = {
  pii: ['email', 'phone', 'card', 'iban', 'ssn', 'ip'],
  secrets: ['cloud_keys', 'private_keys', 'platform_tokens', 'jwt', 'sk_keys', 'keylike_entropy'],
  injection: [],
} as const;
export const BUILTIN_NAMES = [
  ...(Object.keys(BUILTIN_DETECTORS) as (keyof typeof BUILTIN_DETECTORS)[]),
  ...BUILTIN_DETECTORS.pii,
  ...BUILTIN_DETECTORS.secrets,
] as const;
export type BuiltinName = (typeof BUILTIN_NAMES)[number];

const label = z
  .string()
  .regex(/^[A-Z][A-Z0-9_]{0,31}$/, 'must be upper case letters, digits and _ (e.g. PROJECT_CODE), at most 32 characters')
  .describe('The placeholder name when redacting: [LABEL_1]');

export const regexDetectorSchema = z
  .strictObject({
    type: z.literal('regex'),
    pattern: z.string().min(1, 'must not be empty').max(1000).describe('A JavaScript regular expression; patterns that could backtrack catastrophically are refused'),
    flags: z.string().regex(/^[imsu]*$/, 'only the flags i, m, s and u are allowed').max(4).optional(),
    label: label.default('CUSTOM'),
  })
  .superRefine((d, ctx) => {
    const why = unsafeRegexReason(d.pattern, d.flags);
    if (why) ctx.addIssue({ code: 'custom', path: ['pattern'], message: why });
  });

export const keywordsDetectorSchema = z.strictObject({
  type: z.literal('keywords'),
  words: z.array(z.string().trim().min(1, 'must not be empty').max(200)).min(1, 'needs at least one word').max(10_000).describe('Matched as whole words, ignoring case and accents'),
});

export const maxSizeDetectorSchema = z.strictObject({
  type: z.literal('max_size'),
  chars: z.int().min(1).max(1_000_000_000).describe('Texts longer than this many characters are a finding'),
});

export const injectionDetectorSchema = z.strictObject({
  type: z.literal('injection'),
  threshold: z.number().min(0.05).max(1).default(0.5).describe('Score (0-1) at which prompt-injection signals count as a finding'),
});

export const responseSchemaDetectorSchema = z
  .strictObject({
    type: z.literal('response_schema'),
  })
  .describe('Output: a non-streamed answer to a request with response_format json_schema must satisfy that schema (else one retry, then guardrail_blocked)');

export const guardModelDetectorSchema = z
  .strictObject({
    type: z.literal('guard_model'),
    model: z.string().min(1).max(200).describe('The model alias of a local classifier (e.g. Llama Guard), asked through Airlock\'s own routing'),
    timeout_ms: z.int().min(50).max(60_000).default(2000).describe('Longest to wait for its verdict'),
    on_failure: z.enum(['open', 'closed']).describe('When it cannot answer in time: open lets the text through (recorded), closed refuses it'),
    unsafe_when: z.string().trim().min(1).max(64).default('unsafe').describe('The first word of an answer that means unsafe (case-insensitive); Llama Guard answers "unsafe" and a category'),
    instructions: z.string().max(20_000).optional().describe('A system prompt sent before the text (for classifiers that need one)'),
  })
  .describe('A local classifier model decides about the whole text: an input before routing, an answer before any of it is sent (a stream is held whole), tool arguments before the MCP server sees them, a tool result before the agent does');

export const detectorSchema = z.union([
  z.enum(BUILTIN_NAMES, { error: `must be one of ${BUILTIN_NAMES.join(', ')}, or an object with type regex, keywords, max_size, injection, response_schema or guard_model` }),
  z.discriminatedUnion('type', [regexDetectorSchema, keywordsDetectorSchema, maxSizeDetectorSchema, injectionDetectorSchema, responseSchemaDetectorSchema, guardModelDetectorSchema], {
    error: 'must be regex, keywords, max_size, injection, response_schema or guard_model',
  }),
]);
export type DetectorSpec = z.infer<typeof detectorSchema>;

const names = z.array(z.string().min(1).max(200)).max(1000);
export const guardScopeSchema = z.strictObject({
  models: names.optional().describe('Model aliases (omitted: every model)'),
  teams: names.optional().describe('Teams of the calling key'),
  keys: names.optional().describe('Key names'),
  agents: names.optional().describe('MCP agents'),
  mcp_servers: names.optional().describe('MCP servers'),
  tools: names.optional().describe('MCP tools'),
});
export type GuardScope = z.infer<typeof guardScopeSchema>;

export const guardrailSchema = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/, 'must be 1-64 characters: letters, digits, and . _ : - (not first)')
    .describe('Named in errors and events'),
  description: z.string().max(500).optional(),
  direction: z.array(z.enum(GUARD_DIRECTIONS)).min(1, 'needs at least one direction').max(4).describe('What is checked: input (prompts), output (answers), tool_args, tool_result'),
  detectors: z.array(detectorSchema).min(1, 'needs at least one detector').max(64),
  action: z.enum(GUARD_ACTIONS).describe('block: refuse with guardrail_blocked; redact: replace findings with [TYPE_n]; flag: record only'),
  mode: z.enum(GUARD_MODES).default('enforce').describe('shadow: decide and record, change nothing'),
  scope: guardScopeSchema.optional().describe('Where the policy applies (omitted: everywhere)'),
  restore: z.boolean().optional().describe('Input redaction: put the originals back into the answer, so the user sees their data while the model never did'),
  disabled: z.boolean().optional(),
}).superRefine((g, ctx) => {
  // a classifier's verdict is about the whole text: nothing to redact
  g.detectors.forEach((d, i) => {
    if (typeof d !== 'object' || d.type !== 'guard_model') return;
    if (g.action === 'redact') ctx.addIssue({ code: 'custom', path: ['detectors', i], message: 'a guard_model detector finds no span to redact: use action block or flag' });
  });
});
export type GuardrailSpec = z.infer<typeof guardrailSchema>;

/** POST /admin/api/v1/guardrails/test */
export const guardrailTestSchema = z.strictObject({
  text: z.string().max(1_000_000),
  direction: z.enum(GUARD_DIRECTIONS).default('input'),
  scope: z
    .strictObject({ model: z.string().max(200).optional(), team: z.string().max(200).optional(), key: z.string().max(200).optional(), agent: z.string().max(200).optional(), mcp_server: z.string().max(200).optional(), tool: z.string().max(200).optional() })
    .optional(),
  /** a policy not saved yet (the form being edited): tested alone */
  policy: guardrailSchema.optional(),
});
export type GuardrailTest = z.infer<typeof guardrailTestSchema>;
