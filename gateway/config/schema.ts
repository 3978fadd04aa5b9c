// The single source of truth for Airlock's configuration: the config file, the admin API
// and the admin app's forms all validate with these schemas.
import { z } from 'zod';
import { keyGovernance, modelGovernance, settingsGovernance, teamGovernance } from './governance-schema.js';

export { BUDGET_PERIODS, PRIORITIES, budgetSchema, rateLimitsSchema, downgradeSchema } from './governance-schema.js';
import { guardrailSchema, type GuardrailSpec } from './guardrails-schema.js';

export * from './guardrails-schema.js';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
export const name = z
  .string()
  .regex(NAME_RE, 'must be 1-64 characters: letters, digits, ".", "_", ":" or "-", starting with a letter or digit');

/** A secret value: a literal, or a reference `${env:NAME}` resolved when the config is applied. */
export const ENV_REF_RE = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;
export const secret = z
  .string()
  .min(1, 'must not be empty')
  .max(4096)
  // a reference with a typo must not be stored, and sent upstream, as the literal secret
  .refine((v) => !v.includes('${env:') || ENV_REF_RE.test(v), {
    message: 'looks like a reference ${env:NAME} but is not one: the whole value must be ${env:NAME}, NAME of letters, digits and "_" (not starting with a digit)',
  });

export const KEY_RE = /^sk-airlock-[A-Za-z0-9_-]{22,200}$/;

export const healthCheckSchema = z.strictObject({
  enabled: z.boolean().default(true).describe('Probe the endpoint periodically'),
  interval_ms: z.int().min(100).max(3_600_000).default(10_000).describe('Time between probes'),
  timeout_ms: z.int().min(50).max(600_000).default(5_000).describe('A probe slower than this fails'),
  unhealthy_after: z.int().min(1).max(100).default(2).describe('Consecutive failed probes before the endpoint is marked down'),
});
export type HealthCheck = z.infer<typeof healthCheckSchema>;

export const endpointSchema = z.strictObject({
  name: name.describe('How models refer to this server'),
  type: z
    .enum(['openai', 'ollama', 'anthropic'])
    .default('openai')
    .describe('openai: any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, TGI, LocalAI, Ollama /v1); ollama: Ollama native discovery; anthropic: a server that speaks the Anthropic Messages API (serves /v1/messages requests only, untranslated)'),
  base_url: z
    .url({ protocol: /^https?$/, error: (iss) => (iss.input === undefined ? 'is required' : 'must be an http:// or https:// URL') })
    .describe('Base URL of the OpenAI-compatible API, usually ending in /v1'),
  api_key: secret.nullable().optional().describe('Bearer token the server expects; stored encrypted, never shown again'),
  keep_api_key: z.boolean().optional().describe('When base_url moves to another host and api_key is not given again: true sends the stored key to the new host (otherwise the change is refused)'),
  max_concurrency: z.int().min(1).max(100_000).optional().describe('Most requests in flight at once to this server'),
  timeout_ms: z.int().min(100).max(3_600_000).optional().describe('Longest a whole request may take, streams included (default 600000: long generations on slow GPUs take minutes)'),
  first_byte_timeout_ms: z.int().min(50).max(3_600_000).optional().describe('Longest to wait for the first byte (and, in a stream, for the next chunk) before failing over. Default: 30000 for streamed requests; non-streamed requests, whose first byte is the finished answer, default to timeout_ms'),
  health_check: healthCheckSchema.optional(),
  expose_models: z
    .boolean()
    .optional()
    .describe('Apps may call every model this server lists (found by its health check) by its upstream name, without an alias; a configured model of the same name wins'),
});
export type EndpointSpec = z.infer<typeof endpointSchema>;

export const targetSchema = z.strictObject({
  endpoint: name.describe('Endpoint name'),
  model: z.string().min(1, 'must not be empty').max(512).describe('The model name the upstream server knows'),
  weight: z.number().positive().max(1_000_000).optional().describe('Share of traffic for the weighted strategy (default 1)'),
});
export type TargetSpec = z.infer<typeof targetSchema>;

export const STRATEGIES = ['fallback', 'weighted', 'least-busy', 'least-latency'] as const;
export type Strategy = (typeof STRATEGIES)[number];

export const priceSchema = z.strictObject({
  input_per_million: z.number().min(0).max(1e9),
  output_per_million: z.number().min(0).max(1e9),
  per_request: z.number().min(0).max(1e9).optional().describe('A fixed price per request, added to the token price'),
});

export const modelSchema = z.strictObject({
  name: name.describe('The name apps send as "model"'),
  strategy: z.enum(STRATEGIES).default('fallback').describe('How a target is picked'),
  targets: z.array(targetSchema).min(1, 'needs at least one target').max(64),
  price: priceSchema.optional().describe('Internal chargeback per million tokens'),
  max_attempts: z.int().min(1).max(20).optional().describe('Most upstream attempts per request (default: number of targets + 1)'),
  ...modelGovernance,
});
export type ModelSpec = z.infer<typeof modelSchema>;

/** Prompt and response logging for a team's requests (gateway/audit/prompt-log.ts); off unless set. */
export const PROMPT_LOG_MODES = ['off', 'metadata', 'redacted', 'full'] as const;
export const promptLoggingSchema = z.strictObject({
  mode: z
    .enum(PROMPT_LOG_MODES)
    .default('off')
    .describe('off (nothing kept), metadata (sizes, model, status; no text), redacted (text with personal data and secrets replaced by the guardrail detectors, encrypted at rest), full (text as sent and answered, encrypted at rest)'),
  retention_days: z.int().min(1).max(3650).default(30).describe('Delete logged prompts and responses older than this many days'),
});
export type PromptLoggingSpec = z.infer<typeof promptLoggingSchema>;

export const teamSchema = z.strictObject({
  name,
  description: z.string().max(500).optional(),
  ...teamGovernance,
  prompt_logging: promptLoggingSchema.optional().describe("Keep the prompts and responses of the team's requests (default: off)"),
});
export type TeamSpec = z.infer<typeof teamSchema>;

export const keySchema = z.strictObject({
  name: name.describe('Usually the application that uses the key'),
  key: z
    .string()
    .regex(KEY_RE, 'must look like sk-airlock- followed by at least 22 letters, digits, "_" or "-"')
    .optional()
    .describe('Literal key for automation; stored only as a hash'),
  team: name.optional(),
  app: z.string().min(1).max(128).optional().describe('Application for attribution (default: the key name)'),
  models: z.array(name).max(1000).optional().describe('Models this key may use; omitted: every model'),
  disabled: z.boolean().optional(),
  expires_at: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z' }).optional(),
  ...keyGovernance,
});
export type KeySpec = z.infer<typeof keySchema>;

export const ruleSchema = z.strictObject({
  name,
  when: z
    .strictObject({
      model: z.string().min(1).max(128).optional().describe('The name the client asked for (an alias or a virtual name such as "auto")'),
      teams: z.array(name).min(1).optional(),
      apps: z.array(z.string().min(1).max(128)).min(1).optional(),
      header: z.record(z.string().regex(/^[a-z0-9-]+$/, 'header names must be lower-case'), z.string()).optional(),
      has_tools: z.boolean().optional(),
      min_prompt_tokens: z.int().min(0).optional(),
      max_prompt_tokens: z.int().min(0).optional(),
    })
    .default({}),
  route_to: name.describe('The model alias that serves matching requests'),
});
export type RuleSpec = z.infer<typeof ruleSchema>;

export const breakerSchema = z.strictObject({
  failure_threshold: z.int().min(1).max(1000).default(5),
  cooldown_ms: z.int().min(100).max(3_600_000).default(30_000),
});

/** A bind address: an IPv4 or IPv6 literal (0.0.0.0 and :: mean every interface) or "localhost". */
const HOST_MESSAGE = 'must be an IP address (e.g. 127.0.0.1, 0.0.0.0, ::1, ::) or "localhost"';
export const listenHost = z
  .string()
  .refine((v) => v === 'localhost' || z.ipv4().safeParse(v).success || z.ipv6().safeParse(v).success, HOST_MESSAGE);
const listenPort = z.int().min(0, 'must be a port number from 0 to 65535').max(65535, 'must be a port number from 0 to 65535');

export const DEFAULT_LISTEN = { data_host: '127.0.0.1', data_port: 4000, admin_host: '127.0.0.1', admin_port: 4001 } as const;
export const listenSchema = z.strictObject({
  data_host: listenHost
    .default(DEFAULT_LISTEN.data_host)
    .describe('Address the data plane (apps) listens on: 127.0.0.1 = this machine only, 0.0.0.0 = every network interface (takes effect on restart; --host / AIRLOCK_HOST override it)'),
  data_port: listenPort.default(DEFAULT_LISTEN.data_port).describe('Port of the data plane; 0 = any free port (takes effect on restart; --port / AIRLOCK_PORT override it)'),
  admin_host: listenHost
    .default(DEFAULT_LISTEN.admin_host)
    .describe('Address the admin plane (this admin app and API) listens on; keep 127.0.0.1 unless admins must reach it from other machines (takes effect on restart; --admin-host / AIRLOCK_ADMIN_HOST override it)'),
  admin_port: listenPort.default(DEFAULT_LISTEN.admin_port).describe('Port of the admin plane; 0 = any free port (takes effect on restart; --admin-port / AIRLOCK_ADMIN_PORT override it)'),
});
export type ListenSettings = z.infer<typeof listenSchema>;

/** Limits on what clients may send and how long they may take (both planes; take effect on restart). */
export const httpSchema = z.strictObject({
  headers_timeout_ms: z.int().min(100).max(600_000).default(30_000).describe('Longest a client may take to send the request headers; slower connections are closed (takes effect on restart)'),
  request_timeout_ms: z
    .int()
    .min(100)
    .max(3_600_000)
    .default(120_000)
    .describe('Longest a client may take to send the whole request, body included; the response (a long stream) is not limited by this (takes effect on restart)'),
  keep_alive_timeout_ms: z.int().min(100).max(600_000).default(72_000).describe('How long an idle keep-alive connection stays open (takes effect on restart)'),
  max_connections: z.int().min(1).max(1_000_000).default(1024).describe('Most client connections the data plane holds at once; more are refused (takes effect on restart)'),
  admin_max_connections: z.int().min(1).max(100_000).default(128).describe('Most client connections the admin plane holds at once (takes effect on restart)'),
  max_requests_per_socket: z.int().min(0).max(1_000_000_000).default(0).describe('Requests one keep-alive connection may carry before it is closed; 0 = no limit (takes effect on restart)'),
});
export type HttpSettings = z.infer<typeof httpSchema>;

/** Size limits on what is parsed: client bodies and every answer read from an upstream. */
export const limitsSchema = z.strictObject({
  max_json_depth: z.int().min(8).max(1000).default(64).describe('Deepest nesting of arrays and objects accepted in a request body'),
  max_event_bytes: z.int().min(1024).max(256 * 1024 * 1024).default(8 * 1024 * 1024).describe('Largest single streamed event accepted from an upstream; a larger one fails the attempt'),
  max_response_bytes: z.int().min(1024).max(1024 * 1024 * 1024).default(64 * 1024 * 1024).describe('Largest non-streamed answer accepted from an upstream; a larger one fails the attempt'),
  max_probe_bytes: z.int().min(1024).max(256 * 1024 * 1024).default(4 * 1024 * 1024).describe('Largest model list accepted from a health check or test connection'),
});
export type LimitsSettings = z.infer<typeof limitsSchema>;

/** The audit trail (gateway/audit/): what is recorded, and what happens when it cannot be. */
export const auditSettingsSchema = z.strictObject({
  fail_closed: z
    .enum(['off', 'admin', 'admin_and_data'])
    .default('off')
    .describe('When an audit record cannot be written: off (carry on, log it), admin (refuse admin changes with 503), admin_and_data (refuse data-plane requests too)'),
  data_plane: z.boolean().default(true).describe('Record a summary of every data-plane request (who, which model, the outcome, guardrails, tool calls)'),
  checkpoint_every: z.int().min(1).max(1_000_000).default(1000).describe('Sign a checkpoint of the hash chain every this many records (and at every export)'),
  retention_days: z
    .int()
    .min(1)
    .max(36_500)
    .optional()
    .describe('Move records older than this out of the database into signed archive segments (DATA_DIR/audit-archive), keeping the chain verifiable (default: keep them in the database)'),
});
export type AuditSettings = z.infer<typeof auditSettingsSchema>;

/** An absolute file path (POSIX "/…", Windows "C:\…" or "\\server\…"); checked without node:path (the admin app imports this file). */
const absoluteFile = z
  .string()
  .min(1, 'is required')
  .max(4096)
  .refine((v) => /^(\/|[A-Za-z]:[\\/]|\\\\)/.test(v), 'must be an absolute path, e.g. /etc/airlock/tls/cert.pem');

/** HTTPS on the planes: one certificate and key, read at start (takes effect on restart). */
export const tlsSchema = z.strictObject({
  cert_file: absoluteFile.describe('Absolute path of the PEM certificate the planes present (the server certificate first, then any intermediates); read at start (takes effect on restart)'),
  key_file: absoluteFile.describe('Absolute path of the unencrypted PEM private key of that certificate; keep it readable by the Airlock user only (takes effect on restart)'),
  data_plane: z.boolean().default(true).describe('Serve the data plane (apps) over HTTPS (takes effect on restart)'),
  admin_plane: z.boolean().default(true).describe('Serve the admin plane (admin app and API) over HTTPS; the session cookie is then marked Secure (takes effect on restart)'),
});
export type TlsSettings = z.infer<typeof tlsSchema>;

/** A header for the OTLP collector: its value is a reference to one of the gateway's environment
 * variables named AIRLOCK_SECRET_*, read when spans are sent (the secret never enters the database). */
const otlpHeaderValue = z
  .string()
  .regex(/^\$\{env:AIRLOCK_SECRET_[A-Za-z0-9_]+\}$/, 'must be a reference ${env:AIRLOCK_SECRET_NAME} to an environment variable of the gateway (header values are secrets and are not stored)');

/** Traces of data-plane requests and tool calls (gateway/telemetry/): a local span store, and OTLP export. */
export const telemetrySchema = z.strictObject({
  traces: z.boolean().default(true).describe('Record a trace of every data-plane request and tool call in the local span store (the Traces page)'),
  sample_ratio: z.number().min(0).max(1).default(1).describe('Share of successful requests whose trace is kept (0 to 1); the traces of failed requests are always kept'),
  retention_hours: z.int().min(1).max(8760).default(168).describe('Delete stored spans older than this'),
  max_spans: z.int().min(1000).max(100_000_000).default(1_000_000).describe('Most spans kept in the local store; the oldest go first'),
  otlp_endpoint: z
    .url({ protocol: /^https?$/, error: 'must be an http:// or https:// URL, e.g. http://10.0.0.9:4318/v1/traces' })
    .max(2048)
    .optional()
    .describe('OTLP/HTTP (protobuf) traces URL of a collector, e.g. http://10.0.0.9:4318/v1/traces; omitted: spans are not exported'),
  otlp_headers: z
    .record(z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a header name (letters, digits, "-")'), otlpHeaderValue)
    .optional()
    .describe('Headers sent to the collector, each value a reference ${env:AIRLOCK_SECRET_NAME}'),
  otlp_timeout_ms: z.int().min(100).max(60_000).default(5000).describe('Longest one export to the collector may take'),
  otlp_max_queue: z.int().min(100).max(1_000_000).default(20_000).describe('Most spans waiting for the collector; more are dropped (and counted)'),
});
export type TelemetrySettings = z.infer<typeof telemetrySchema>;

export const settingsSchema = z.strictObject({
  max_body_bytes: z.int().min(1024).max(1024 * 1024 * 1024).default(10 * 1024 * 1024).describe('Largest request body accepted (takes effect on restart)'),
  queue_timeout_ms: z.int().min(0).max(600_000).default(30_000).describe('Longest a request waits for a free slot when every target is at max_concurrency'),
  retry_after_cap_ms: z.int().min(0).max(600_000).default(5_000).describe('Longest retry-after from an upstream 429 that is honoured by waiting'),
  shutdown_grace_ms: z.int().min(0).max(600_000).default(30_000).describe('How long in-flight requests may finish on shutdown'),
  breaker: breakerSchema.default({ failure_threshold: 5, cooldown_ms: 30_000 }),
  admin_max_failed_logins: z.int().min(1).max(100).default(5).describe('Failed logins in a row before an admin account is locked'),
  admin_lockout_minutes: z.int().min(1).max(10_080).default(15).describe('How long a locked admin account stays locked'),
  admin_session_hours: z.int().min(1).max(720).default(12).describe('How long an admin login lasts'),
  ledger_max_pending_rows: z.int().min(100).max(10_000_000).default(100_000).describe('Most usage rows kept in memory while the database cannot be written; more are dropped (and counted)'),
  ledger_when_unwritable: z
    .enum(['serve', 'refuse'])
    .default('serve')
    .describe('When the database cannot be written: serve (keep rows in memory, up to ledger_max_pending_rows) or refuse new data-plane requests with 503 until it can'),
  ledger_retention_days: z.int().min(1).max(36_500).optional().describe('Delete ledger rows older than this (default: keep)'),
  responses_retention_days: z
    .int()
    .min(1)
    .max(3650)
    .optional()
    .describe('How long responses stored by POST /v1/responses (store, previous_response_id) are kept (default 30)'),
  http: httpSchema.default(() => httpSchema.parse({})).describe('Client connection limits and timeouts'),
  limits: limitsSchema.default(() => limitsSchema.parse({})).describe('Size limits on request bodies and upstream answers'),
  telemetry: telemetrySchema.default(() => telemetrySchema.parse({})).describe('Workflow traces: local span store and OTLP export'),
  metrics_public: z.boolean().default(false).describe('Serve /metrics on the data plane without a token (it shows per-team usage); otherwise it needs an admin API token as bearer'),
  listen: listenSchema.default({ ...DEFAULT_LISTEN }).describe('Where the gateway listens (takes effect on restart; command-line flags and environment variables take precedence)'),
  audit: auditSettingsSchema.default(() => auditSettingsSchema.parse({})).describe('Audit trail: fail-closed mode, data-plane summaries, checkpoints, retention'),
  tls: tlsSchema.optional().describe('HTTPS on the data and admin planes with a certificate and key from files; omitted: plain HTTP (takes effect on restart)'),
  ...settingsGovernance,
  mcp_session_idle_ms: z.int().min(1000).max(7 * 86_400_000).optional().describe('An agent\'s MCP session unused this long is ended and its upstream sessions closed (default 1800000: 30 minutes)'),
  mcp_resume_events: z.int().min(0).max(100_000).optional().describe('Most events (messages sent to the agent) an MCP session keeps so a dropped stream can be resumed with Last-Event-ID (default 1000; 0: no resumption)'),
  mcp_resume_bytes: z.int().min(0).max(256 * 1024 * 1024).optional().describe('Most bytes of events an MCP session keeps for resumption (default 4194304: 4 MiB); the oldest go first'),
});
export type Settings = z.infer<typeof settingsSchema>;
export const DEFAULT_SETTINGS: Settings = settingsSchema.parse({});

// ---- MCP servers and agents (the MCP gateway, gateway/mcp/) ----

/** An MCP server's name prefixes its tools (`server__tool`): within what model APIs accept for a
 * tool name, without "__" (the separator) and not ending in "_" (so the split is unambiguous). */
export const MCP_SERVER_NAME_RE = /^[A-Za-z0-9](?:[A-Za-z0-9-]|_(?!_)){0,31}$/;
export const mcpServerName = z
  .string()
  .regex(MCP_SERVER_NAME_RE, 'must be 1-32 letters, digits, "-" or "_", starting with a letter or digit, without "__" (it separates server and tool in tool names)')
  .refine((v) => !v.endsWith('_'), 'must not end with "_" (it would run into the "__" separator)');
/** A tool permission pattern: a tool's exposed name (`server__tool`) where "*" matches anything. */
export const toolPattern = z.string().regex(/^[A-Za-z0-9_*.-]{1,160}$/, 'must be a tool name such as "files__read_file", where "*" matches any characters (e.g. "files__read_*", "tickets__*")');
/** A tool permission pattern as an anchored regular expression; "*" matches anything (the
 * gateway's permission checks and the admin app's previews). */
export function compilePattern(p: string): RegExp {
  return new RegExp('^' + p.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\-]/g, '\\$&')).join('.*') + '$');
}
/** The names (server__tool) that any of the patterns match, in their order. */
export function expandPatterns(patterns: readonly string[], names: readonly string[]): string[] {
  const res = patterns.map(compilePattern);
  return names.filter((n) => res.some((r) => r.test(n)));
}
/** A resource permission pattern: a server name pattern (every resource of those servers, as
 * before per-resource patterns existed) or "server__uri", where "*" matches any characters. */
export const resourcePattern = z
  .string()
  .regex(/^[\x21-\x7e]{1,2048}$/, 'must be a server name pattern (e.g. "files" or "*": all of its resources) or "server__uri" (e.g. "files__file:///srv/share/public/*"), where "*" matches any characters; printable ASCII without spaces, at most 2048 characters');
const envVarName = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/, 'must be an environment variable name (letters, digits, "_")');
const headerName = z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}$/, 'must be an HTTP header name');
/** A secret in env/headers: a literal, `${env:NAME}`, or null = keep the value stored for it. */
const mapSecret = secret.nullable();

export const MCP_TRANSPORTS = ['stdio', 'http', 'sse'] as const;
export const mcpServerSchema = z.strictObject({
  name: mcpServerName.describe('Prefix of this server\'s tools: "NAME__tool"'),
  transport: z.enum(MCP_TRANSPORTS).describe('stdio: a local process Airlock starts and supervises; http: Streamable HTTP; sse: legacy HTTP+SSE'),
  command: z.string().min(1, 'must not be empty').max(4096).optional().describe('stdio: the program to run (an absolute path, or a name found on PATH)'),
  args: z.array(z.string().max(4096)).max(256).optional().describe('stdio: its arguments'),
  cwd: z.string().min(1).max(4096).optional().describe('stdio: working directory'),
  env: z.record(envVarName, mapSecret).optional().describe('stdio: the only environment variables the process gets besides PATH, HOME and the like; values are stored encrypted'),
  url: z
    .url({ protocol: /^https?$/, error: (iss) => (iss.input === undefined ? 'is required' : 'must be an http:// or https:// URL') })
    .optional()
    .describe('http / sse: the server\'s MCP endpoint URL'),
  headers: z.record(headerName, mapSecret).optional().describe('http / sse: headers sent with every request (e.g. Authorization); values are stored encrypted'),
  stateful: z.boolean().optional().describe('stdio: one process per agent session instead of one shared process'),
  start: z.enum(['boot', 'first_use']).optional().describe('stdio: start the process when the gateway starts (boot, default) or on first use'),
  call_timeout_ms: z.int().min(100).max(3_600_000).optional().describe('Longest one tool call may take (default 60000)'),
  tool_calls_per_minute: z.int().min(1).max(1_000_000).optional().describe('Most calls per minute to each tool of this server, all agents together'),
  max_response_bytes: z.int().min(1024).max(1024 * 1024 * 1024).optional().describe('Most bytes one message from this server may hold (default 16 MiB); a larger one is cut off, the call gets an error and the connection is reopened'),
  disabled: z.boolean().optional().describe('Keep the server registered but stopped; its tools are offered to nobody'),
});
export type McpServerSpec = z.infer<typeof mcpServerSchema>;

/** The fields a server's transport needs and the ones it cannot use (checked with the whole
 * configuration; the admin app's MCP server form checks the same). */
export function mcpTransportIssues(m: Partial<McpServerSpec> & Pick<McpServerSpec, 'transport'>): { field: keyof McpServerSpec; message: string }[] {
  const out: { field: keyof McpServerSpec; message: string }[] = [];
  if (m.transport === 'stdio') {
    if (m.command === undefined) out.push({ field: 'command', message: 'is required for transport "stdio"' });
    for (const f of ['url', 'headers'] as const) if (m[f] !== undefined) out.push({ field: f, message: `is for transport "http" or "sse", not "stdio"` });
  } else {
    if (m.url === undefined) out.push({ field: 'url', message: `is required for transport "${m.transport}"` });
    for (const f of ['command', 'args', 'cwd', 'env', 'stateful', 'start'] as const) if (m[f] !== undefined) out.push({ field: f, message: `is for transport "stdio", not "${m.transport}"` });
  }
  return out;
}

export const agentSchema = z.strictObject({
  name: name.describe('The agent (an application that calls tools through /mcp)'),
  team: name.optional(),
  key: z
    .string()
    .regex(KEY_RE, 'must look like sk-airlock- followed by at least 22 letters, digits, "_" or "-"')
    .optional()
    .describe('Literal key for automation; stored only as a hash. Omitted: one is generated and shown once'),
  tools: z.array(toolPattern).max(1000).optional().describe('Tools (and prompts) the agent may use, as "server__tool" patterns; default: none'),
  deny: z.array(toolPattern).max(1000).optional().describe('Tools the agent may not use even when "tools" allows them (deny wins)'),
  resources: z
    .array(resourcePattern)
    .max(1000)
    .optional()
    .describe('Resources the agent may list, read and subscribe to: a server name pattern (all of its resources, e.g. "files" or "*") or "server__uri" (e.g. "files__file:///srv/share/public/*"); default: none'),
  resources_deny: z.array(resourcePattern).max(1000).optional().describe('Resources the agent may not use even when "resources" allows them (deny wins), in the same form'),
  calls_per_minute: z.int().min(1).max(1_000_000).optional().describe('Most tool calls per minute for this agent'),
  disabled: z.boolean().optional(),
});
export type AgentSpec = z.infer<typeof agentSchema>;

/** A named bundle of tools at /mcp/v/NAME: an agent there sees what both it and the bundle allow. */
export const mcpVirtualServerSchema = z.strictObject({
  name: name.describe('Agents connect to /mcp/v/NAME'),
  description: z.string().max(500).optional(),
  tools: z.array(toolPattern).max(1000).describe('The tools (and prompts) this virtual server offers, as "server__tool" patterns; an agent sees only those it may also use'),
  resources: z.array(resourcePattern).max(1000).optional().describe('Resources it offers: server name patterns (all of their resources) or "server__uri" patterns (default: none)'),
});
export type McpVirtualServerSpec = z.infer<typeof mcpVirtualServerSchema>;

export const configSchema = z.strictObject({
  endpoints: z.array(endpointSchema).optional(),
  models: z.array(modelSchema).optional(),
  teams: z.array(teamSchema).optional(),
  keys: z.array(keySchema).optional(),
  routing_rules: z.array(ruleSchema).optional(),
  guardrails: z.array(guardrailSchema).max(1000).optional(),
  settings: settingsSchema.optional(),
  mcp_servers: z.array(mcpServerSchema).optional(),
  agents: z.array(agentSchema).optional(),
  mcp_virtual_servers: z.array(mcpVirtualServerSchema).optional(),
});
export type ConfigDoc = z.infer<typeof configSchema>;
export type ConfigInput = z.input<typeof configSchema>;

/** A complete configuration: every section present. */
export interface FullConfig {
  endpoints: EndpointSpec[];
  models: ModelSpec[];
  teams: TeamSpec[];
  keys: KeySpec[];
  routing_rules: RuleSpec[];
  guardrails: GuardrailSpec[];
  settings: Settings;
  mcp_servers: McpServerSpec[];
  agents: AgentSpec[];
  mcp_virtual_servers: McpVirtualServerSpec[];
}
export const SECTIONS = ['endpoints', 'models', 'teams', 'keys', 'routing_rules', 'guardrails', 'settings', 'mcp_servers', 'agents', 'mcp_virtual_servers'] as const;
export type Section = (typeof SECTIONS)[number];

export type Path = ReadonlyArray<string | number>;
export interface ConfigIssue {
  path: Path;
  message: string;
}

export function formatPath(path: Path): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${p}` : p;
  }
  return out || '(root)';
}

export function formatIssue(i: ConfigIssue): string {
  return `${formatPath(i.path)}: ${i.message}`;
}

/** zod issues → our issues, with messages that name the problem. */
/**
 * zod's issues as messages people can act on: "must be 0 or more" (not "Too small: expected
 * number to be >=0"), "must be a number, not a string", and for an unknown key the nearest known
 * one ("did you mean \"endpoints\"?") when `root` (the schema that was parsed) is given.
 * Messages a schema spells out itself are kept as they are.
 */
export function fromZod(err: z.ZodError, root?: z.ZodType): ConfigIssue[] {
  return unfoldUnions(err.issues).map((i) => {
    const path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
    return { path, message: humanIssue(i, root ? knownKeys(root, path) : []) };
  });
}

/**
 * A union that failed says only "Invalid input" at the value's path (`detectors[1]`). When one
 * alternative took the value's shape (its issues are inside the value: a bad `pattern` of a regex
 * detector, an unknown `type`), its issues are what went wrong, at their full paths
 * (`detectors[1].pattern`). When no alternative got that far, the first one's message names what
 * is accepted.
 */
function unfoldUnions(issues: readonly z.core.$ZodIssue[]): z.core.$ZodIssue[] {
  const out: z.core.$ZodIssue[] = [];
  for (const i of issues) {
    if (i.code !== 'invalid_union' || !i.errors.length) {
      out.push(i);
      continue;
    }
    const depth = (b: readonly z.core.$ZodIssue[]) => (b.length ? Math.min(...b.map((x) => x.path.length)) : 0);
    const inside = i.errors.filter((b) => depth(b) > 0);
    if (inside.length === 1) out.push(...unfoldUnions(inside[0]!.map((x) => ({ ...x, path: [...i.path, ...x.path] }))));
    else if (!inside.length && i.message === 'Invalid input' && i.errors[0]![0]) out.push({ ...i.errors[0]![0], path: i.path });
    else out.push(i);
  }
  return out;
}

const plural = (n: number | bigint, one: string) => `${n} ${one}${Number(n) === 1 ? '' : 's'}`;
const article = (t: string) => (/^[aeiou]/.test(t) ? `an ${t}` : `a ${t}`);

function humanIssue(i: z.core.$ZodIssue, known: string[]): string {
  const m = i.message;
  switch (i.code) {
    case 'unrecognized_keys': {
      const hint = i.keys.length === 1 ? nearest(i.keys[0]!, known) : undefined;
      return `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}${hint ? `; did you mean "${hint}"?` : ''}`;
    }
    case 'invalid_key':
      return i.issues[0]?.message ?? m;
    case 'invalid_type': {
      if (/received undefined/.test(m)) return 'is required';
      const t = /^Invalid input: expected (\w+), received (\w+)$/.exec(m);
      return t ? `must be ${article(t[1] === 'int' ? 'integer' : t[1]!)}, not ${article(t[2]!)}` : m;
    }
    case 'too_small':
      if (!/^Too small:/.test(m)) return m;
      if (i.origin === 'string') return Number(i.minimum) === 1 ? 'must not be empty' : `must be at least ${plural(i.minimum, 'character')}`;
      if (i.origin === 'array' || i.origin === 'set') return `must have at least ${plural(i.minimum, 'item')}`;
      return i.inclusive === false ? `must be more than ${i.minimum}` : `must be ${i.minimum} or more`;
    case 'too_big':
      if (!/^Too big:/.test(m)) return m;
      if (i.origin === 'string') return `must be at most ${plural(i.maximum, 'character')}`;
      if (i.origin === 'array' || i.origin === 'set') return `must have at most ${plural(i.maximum, 'item')}`;
      return i.inclusive === false ? `must be less than ${i.maximum}` : `must be ${i.maximum} or less`;
    case 'invalid_value':
      return /^Invalid (option|input)/.test(m) ? `must be ${i.values.length === 1 ? JSON.stringify(i.values[0]) : `one of ${i.values.map((v) => JSON.stringify(v)).join(', ')}`}` : m;
    default:
      return m;
  }
}

/** The keys the object schema at `path` under `root` knows (empty when it cannot tell). */
function knownKeys(root: z.ZodType, path: (string | number)[]): string[] {
  let s: z.ZodType | undefined = root;
  const unwrap = (x: z.ZodType | undefined): z.ZodType | undefined => {
    for (let n = 0; x && n < 8; n++) {
      if (x instanceof z.ZodOptional || x instanceof z.ZodNullable || x instanceof z.ZodDefault) x = x.unwrap() as z.ZodType;
      else return x;
    }
    return x;
  };
  for (const p of path) {
    s = unwrap(s);
    if (typeof p === 'number' && s instanceof z.ZodArray) s = s.element as z.ZodType;
    else if (typeof p === 'string' && s instanceof z.ZodObject) s = s.shape[p] as z.ZodType | undefined;
    else return [];
  }
  s = unwrap(s);
  return s instanceof z.ZodObject ? Object.keys(s.shape) : [];
}

/** The known word nearest to `word` (edit distance at most 2, or one a prefix of the other), if any. */
export function nearest(word: string, known: string[]): string | undefined {
  const dist = (a: string, b: string) => {
    const row = Array.from({ length: b.length + 1 }, (_, j) => j);
    for (let x = 1; x <= a.length; x++) {
      let prev = row[0]!;
      row[0] = x;
      for (let y = 1; y <= b.length; y++) {
        const cur = row[y]!;
        row[y] = Math.min(row[y]! + 1, row[y - 1]! + 1, prev + (a[x - 1] === b[y - 1] ? 0 : 1));
        prev = cur;
      }
    }
    return row[b.length]!;
  };
  const w = word.toLowerCase().replace(/-/g, '_');
  let best: { k: string; d: number } | undefined;
  for (const k of known) {
    const d = w.length >= 3 && (k.startsWith(w) || w.startsWith(k)) ? 1 : dist(w, k);
    if (d <= 2 && (!best || d < best.d)) best = { k, d };
  }
  return best?.k;
}

/** Cross-references and uniqueness over a complete configuration. */
export function checkReferences(c: FullConfig): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const unique = (section: Section, items: { name: string }[]) => {
    const seen = new Set<string>();
    items.forEach((it, i) => {
      if (seen.has(it.name)) issues.push({ path: [section, i, 'name'], message: `duplicate name "${it.name}"` });
      seen.add(it.name);
    });
  };
  unique('endpoints', c.endpoints);
  unique('models', c.models);
  unique('teams', c.teams);
  unique('keys', c.keys);
  unique('routing_rules', c.routing_rules);
  unique('guardrails', c.guardrails);
  const endpoints = new Set(c.endpoints.map((e) => e.name));
  const models = new Set(c.models.map((m) => m.name));
  const teams = new Set(c.teams.map((t) => t.name));
  const virtual = new Set(c.routing_rules.map((r) => r.when.model).filter((m): m is string => !!m));
  c.models.forEach((m, i) => {
    m.targets.forEach((t, j) => {
      if (!endpoints.has(t.endpoint))
        issues.push({ path: ['models', i, 'targets', j, 'endpoint'], message: `unknown endpoint "${t.endpoint}"` });
    });
  });
  const hashes = new Set<string>();
  c.keys.forEach((k, i) => {
    if (k.team !== undefined && !teams.has(k.team)) issues.push({ path: ['keys', i, 'team'], message: `unknown team "${k.team}"` });
    k.models?.forEach((m, j) => {
      if (!models.has(m) && !virtual.has(m)) issues.push({ path: ['keys', i, 'models', j], message: `unknown model "${m}"` });
    });
    if (k.key !== undefined) {
      if (hashes.has(k.key)) issues.push({ path: ['keys', i, 'key'], message: 'the same key is given twice' });
      hashes.add(k.key);
    }
  });
  c.models.forEach((m, i) => {
    const to = m.downgrade?.to;
    if (to === undefined) return;
    if (to === m.name) issues.push({ path: ['models', i, 'downgrade', 'to'], message: 'must name another model alias, not this one' });
    else if (!models.has(to)) issues.push({ path: ['models', i, 'downgrade', 'to'], message: `unknown model "${to}"` });
  });
  c.routing_rules.forEach((r, i) => {
    if (!models.has(r.route_to)) issues.push({ path: ['routing_rules', i, 'route_to'], message: `unknown model "${r.route_to}"` });
    r.when.teams?.forEach((t, j) => {
      if (!teams.has(t)) issues.push({ path: ['routing_rules', i, 'when', 'teams', j], message: `unknown team "${t}"` });
    });
    const { min_prompt_tokens: lo, max_prompt_tokens: hi } = r.when;
    if (lo !== undefined && hi !== undefined && lo > hi)
      issues.push({ path: ['routing_rules', i, 'when', 'max_prompt_tokens'], message: 'must not be less than min_prompt_tokens' });
  });
  issues.push(...checkMcpReferences(c, teams));
  return issues;
}

function checkMcpReferences(c: FullConfig, teams: ReadonlySet<string>): ConfigIssue[] {
  const issues: ConfigIssue[] = [];
  const seen = new Set<string>();
  c.mcp_servers.forEach((m, i) => {
    // names differing only in case would expose tools differing only in case: refused
    const lower = m.name.toLowerCase();
    if (seen.has(lower)) issues.push({ path: ['mcp_servers', i, 'name'], message: `duplicate name "${m.name}"` });
    seen.add(lower);
    for (const x of mcpTransportIssues(m)) issues.push({ path: ['mcp_servers', i, x.field], message: x.message });
  });
  const vnames = new Set<string>();
  c.mcp_virtual_servers.forEach((v, i) => {
    if (vnames.has(v.name)) issues.push({ path: ['mcp_virtual_servers', i, 'name'], message: `duplicate name "${v.name}"` });
    vnames.add(v.name);
  });
  const names = new Set<string>();
  const keys = new Set(c.keys.map((k) => k.key).filter((k): k is string => k !== undefined));
  c.agents.forEach((a, i) => {
    if (names.has(a.name)) issues.push({ path: ['agents', i, 'name'], message: `duplicate name "${a.name}"` });
    names.add(a.name);
    if (a.team !== undefined && !teams.has(a.team)) issues.push({ path: ['agents', i, 'team'], message: `unknown team "${a.team}"` });
    if (a.key !== undefined) {
      if (keys.has(a.key)) issues.push({ path: ['agents', i, 'key'], message: 'the same key is given twice (to an app key or another agent)' });
      keys.add(a.key);
    }
  });
  return issues;
}
