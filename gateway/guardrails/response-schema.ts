// The response_schema detector: a non-streamed chat answer to a request that asked for
// `response_format: {type: "json_schema", json_schema: {schema}}` must be JSON satisfying that
// schema (zod's JSON Schema reader). What it says names the place and the rule, never a value.
import { z } from 'zod';

/** Why the answer does not satisfy the requested schema; undefined when it does, or when the
 * request asked for no schema, or the schema is one the reader does not support (not checked). */
export function responseSchemaProblem(request: Record<string, unknown>, answer: unknown): string | undefined {
  const rf = request.response_format as { type?: unknown; json_schema?: { schema?: unknown } } | undefined;
  const raw = rf?.type === 'json_schema' ? rf.json_schema?.schema : undefined;
  if (!raw || typeof raw !== 'object') return undefined;
  let schema: z.ZodType;
  try {
    schema = z.fromJSONSchema(raw as Parameters<typeof z.fromJSONSchema>[0]);
  } catch {
    return undefined;
  }
  const choices = (answer as { choices?: { message?: { content?: unknown } }[] })?.choices;
  if (!Array.isArray(choices)) return undefined;
  for (const [i, c] of choices.entries()) {
    const content = c?.message?.content;
    if (typeof content !== 'string') continue; // a tool call or a refusal: no content to check
    let v: unknown;
    try {
      v = JSON.parse(content);
    } catch {
      return `choice ${i}: the answer is not JSON, but the request asked for a JSON schema`;
    }
    const r = schema.safeParse(v);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      const where = issue.path.length ? issue.path.map(String).join('.') : '(root)';
      return `choice ${i}: the answer does not satisfy the requested JSON schema at ${where}: ${issue.code}`;
    }
  }
  return undefined;
}
