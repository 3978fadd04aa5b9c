// The single source of truth for Airlock's configuration: the config file, the admin API
// and the admin app's forms all validate with these schemas.
import { z } from 'zod';

export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$/;
export const name = z
  .string()
  .regex(NAME_RE, 'must be 1-64 characters: letters, digits, ".", "_", ":" or "-", starting with a letter or digit');

/** A secret value: a literal, or a reference `${env:NAME}` resolved when the config is applied. */
export const ENV_REF_RE = /^\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}$/;
export const secret = z.string().min(1, 'must not be empty').max(4096);

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
  type: z.enum(['openai', 'ollama']).default('openai').describe('openai: any OpenAI-compatible server (vLLM, llama.cpp, LM Studio, TGI, LocalAI, Ollama /v1); ollama: Ollama native discovery'),
  base_url: z
    .url({ protocol: /^https?$/, error: (iss) => (iss.input === undefined ? 'is required' : 'must be an http:// or https:// URL') })
    .describe('Base URL of the OpenAI-compatible API, usually ending in /v1'),
  api_key: secret.nullable().optional().describe('Bearer token the server expects; stored encrypted, never shown again'),
  keep_api_key: z.boolean().optional().describe('When base_url moves to another host and api_key is not given again: true sends the stored key to the new host (otherwise the change is refused)'),
  max_concurrency: z.int().min(1).max(100_000).optional().describe('Most requests in flight at once to this server'),
  timeout_ms: z.int().min(100).max(3_600_000).optional().describe('Longest a whole request may take, streams included (default 600000: long generations on slow GPUs take minutes)'),
  first_byte_timeout_ms: z.int().min(50).max(3_600_000).optional().describe('Longest to wait for the first byte (and, in a stream, for the next chunk) before failing over. Default: 30000 for streamed requests; non-streamed requests, whose first byte is the finished answer, default to timeout_ms'),
  health_check: healthCheckSchema.optional(),
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
});

export const modelSchema = z.strictObject({
  name: name.describe('The name apps send as "model"'),
  strategy: z.enum(STRATEGIES).default('fallback').describe('How a target is picked'),
  targets: z.array(targetSchema).min(1, 'needs at least one target').max(64),
  price: priceSchema.optional().describe('Internal chargeback per million tokens'),
  max_attempts: z.int().min(1).max(20).optional().describe('Most upstream attempts per request (default: number of targets + 1)'),
});
export type ModelSpec = z.infer<typeof modelSchema>;

export const teamSchema = z.strictObject({
  name,
  description: z.string().max(500).optional(),
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
  http: httpSchema.default(() => httpSchema.parse({})).describe('Client connection limits and timeouts'),
  limits: limitsSchema.default(() => limitsSchema.parse({})).describe('Size limits on request bodies and upstream answers'),
  telemetry: telemetrySchema.default(() => telemetrySchema.parse({})).describe('Workflow traces: local span store and OTLP export'),
  metrics_public: z.boolean().default(false).describe('Serve /metrics on the data plane without a token (it shows per-team usage); otherwise it needs an admin API token as bearer'),
  listen: listenSchema.default({ ...DEFAULT_LISTEN }).describe('Where the gateway listens (takes effect on restart; command-line flags and environment variables take precedence)'),
  tls: tlsSchema.optional().describe('HTTPS on the data and admin planes with a certificate and key from files; omitted: plain HTTP (takes effect on restart)'),
});
export type Settings = z.infer<typeof settingsSchema>;
export const DEFAULT_SETTINGS: Settings = settingsSchema.parse({});

export const configSchema = z.strictObject({
  endpoints: z.array(endpointSchema).optional(),
  models: z.array(modelSchema).optional(),
  teams: z.array(teamSchema).optional(),
  keys: z.array(keySchema).optional(),
  routing_rules: z.array(ruleSchema).optional(),
  settings: settingsSchema.optional(),
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
  settings: Settings;
}
export const SECTIONS = ['endpoints', 'models', 'teams', 'keys', 'routing_rules', 'settings'] as const;
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
export function fromZod(err: z.ZodError): ConfigIssue[] {
  return err.issues.map((i) => {
    const path = i.path.filter((p): p is string | number => typeof p !== 'symbol');
    let message = i.message;
    if (i.code === 'unrecognized_keys') {
      message = `unknown key${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => `"${k}"`).join(', ')}`;
    } else if (i.code === 'invalid_key' && i.issues[0]) {
      message = i.issues[0].message;
    } else if (i.code === 'invalid_type' && /received undefined/.test(i.message)) {
      message = 'is required';
    }
    return { path, message };
  });
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
  c.routing_rules.forEach((r, i) => {
    if (!models.has(r.route_to)) issues.push({ path: ['routing_rules', i, 'route_to'], message: `unknown model "${r.route_to}"` });
    r.when.teams?.forEach((t, j) => {
      if (!teams.has(t)) issues.push({ path: ['routing_rules', i, 'when', 'teams', j], message: `unknown team "${t}"` });
    });
    const { min_prompt_tokens: lo, max_prompt_tokens: hi } = r.when;
    if (lo !== undefined && hi !== undefined && lo > hi)
      issues.push({ path: ['routing_rules', i, 'when', 'max_prompt_tokens'], message: 'must not be less than min_prompt_tokens' });
  });
  return issues;
}
