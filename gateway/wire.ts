// The wire types of the admin API (/admin/api/v1): the JSON bodies the gateway answers with and
// the admin app (renderer/src/api.ts) reads. One definition for both sides: the gateway's
// producers are typed with these (gateway/server/admin-plane.ts and the engine modules it
// calls), and the admin app imports them, so a change on one side breaks the build of the other.
//
// Types only: no runtime code here, and no imports but types from the shared schemas
// (gateway/config/), which import nothing from Node. eslint.config.js enforces both.
// Values are as JSON carries them: times are ISO 8601 strings unless named `ts`/`t`/`from`/`to`
// (milliseconds since the epoch); a field the gateway leaves undefined is absent (optional here).
import type { Role } from './config/admin-schema.js';
import type { AgentSpec, EndpointSpec, KeySpec, McpServerSpec, ModelSpec, TeamSpec } from './config/schema.js';

export type { Role };

/** Who may call an admin route: anyone ('public'), or the least role. */
export type Access = 'public' | Role;

/** `{ data: [...] }`: how the API answers with a list. */
export interface ListBody<T> {
  data: T[];
}

// ---- accounts ----

export interface SessionUser {
  name: string;
  role: Role;
  /** signed in with a one-time password (airlock admin reset-password): nothing else is allowed
   * until a new one is chosen (POST /auth/password) */
  must_change_password?: boolean;
}

/** GET /auth/state */
export interface AuthState {
  setup_required: boolean;
  user: SessionUser | null;
  csrf_token: string | null;
}

/** POST /auth/setup, POST /auth/login */
export interface SessionBody {
  user: SessionUser;
  csrf_token: string;
}

/** GET /users (ListBody), POST /users, PUT /users/:name */
export interface AdminUser {
  name: string;
  role: Role;
  disabled: boolean;
  created_at: string;
  /** set while the account is locked after failed logins */
  locked_until: string | null;
}

/** GET /tokens (ListBody) */
export interface ApiToken {
  name: string;
  /** the first characters of the token, to recognise it */
  prefix: string;
  role: Role;
  created_by: string;
  created_at: string;
  last_used_at: string | null;
}

/** POST /tokens: the token itself is shown this once. */
export interface CreatedApiToken extends ApiToken {
  token: string;
}

// ---- endpoints, models, keys, health ----

export type BreakerState = 'closed' | 'open' | 'half-open';

export interface EndpointStatus {
  healthy: boolean;
  inflight: number;
  last_check_at: string | null;
  last_check_error: string | null;
  /** the model list of the last successful health check */
  discovered_models: string[] | null;
  /** expose_models: the listed models apps call by these names now (a configured model's name is not among them) */
  exposed_models: string[];
}

/** GET /endpoints (ListBody), /endpoints/:name; POST and PUT answer the same. The stored API key
 * is never shown: `api_key_set` says there is one, `api_key` is its ${env:...} reference if it is one. */
export interface EndpointView extends Omit<EndpointSpec, 'api_key'> {
  api_key?: string;
  api_key_set: boolean;
  /** null: not running (e.g. just saved, before the reload) */
  status: EndpointStatus | null;
}

export interface TargetStatus {
  /** `endpoint/model` */
  id: string;
  endpoint: string;
  model: string;
  breaker: BreakerState;
  consecutive_failures: number;
  /** when an open breaker lets a trial request through */
  retry_at: string | null;
  last_error: string | null;
  ttfb_ewma_ms: number | null;
  inflight: number;
}

/** GET /models (ListBody), /models/:name */
export interface ModelView extends ModelSpec {
  targets_status: TargetStatus[];
}

export type TeamView = TeamSpec;

/** GET /keys (ListBody), /keys/:name. The key is stored only as a hash. */
export interface KeyView extends Omit<KeySpec, 'key'> {
  prefix: string;
  created_at: string;
  /** the latest request made with the key (from the usage ledger), null: never */
  last_used_at?: string | null;
  /** a rotated key's old secret works until then (null: it does not) */
  previous_valid_until?: string | null;
  /** the config file field that sets the key's secret (e.g. "keys[0].key in /etc/airlock/airlock.yaml"):
   * rotated there, not here (POST /keys/:name/rotate answers 409). null: the admin app, API and CLI own it */
  secret_from_file?: string | null;
}

/** POST /keys/:name/rotate: the new secret, shown this once. */
export interface RotatedKeyView {
  name: string;
  key: string;
  prefix: string;
  previous_valid_until: string | null;
}

/** POST /keys: the generated (or given) key is shown this once. */
export interface CreatedKeyView extends KeyView {
  key?: string;
}

/** An MCP server's live state (null fields: not running). */
export interface McpServerStatus {
  /** stopped, starting, ready, backoff (waiting to restart after a crash), disabled */
  state: 'stopped' | 'starting' | 'ready' | 'backoff' | 'disabled';
  pid: number | null;
  restarts: number;
  last_error: string | null;
  ready_at: string | null;
  /** tools in its catalog */
  tools: number;
  resources: number;
  prompts: number;
  /** when its catalog was last read */
  catalog_at: string | null;
}

/** GET /mcp-servers: env/headers values are `${env:…}` references or null (a stored literal). */
export interface McpServerView extends McpServerSpec {
  status: McpServerStatus | null;
}

export interface McpCatalogTool {
  /** as agents see it: server__tool */
  name: string;
  /** as the server names it */
  upstream_name: string;
  title?: string;
  description?: string;
  annotations?: Record<string, unknown>;
  input_schema?: Record<string, unknown>;
}

/** GET /mcp-servers/:name/status: the state, its catalog and the last lines of its stderr. */
export interface McpServerDetail extends McpServerStatus {
  name: string;
  catalog: {
    tools: McpCatalogTool[];
    resources: { uri: string; name: string; description?: string }[];
    resource_templates: { uri_template: string; name: string }[];
    prompts: { name: string; upstream_name: string; description?: string }[];
  };
  stderr: string[];
}

/** POST /mcp-servers/test: initialize and list tools, without saving. */
export interface McpTestResult {
  ok: boolean;
  error?: string;
  server?: { name: string; version: string };
  protocol_version?: string;
  tools: { name: string; description?: string }[];
  /** the last lines it wrote to stderr (stdio) */
  stderr: string[];
}

export interface AgentView extends Omit<AgentSpec, 'key'> {
  prefix: string;
  created_at: string;
  /** the tools it may call now, patterns expanded over the current catalogs */
  allowed_tools: string[];
}

/** POST /agents: the generated (or given) key is shown this once. */
export interface CreatedAgentView extends AgentView {
  key?: string;
}

/** GET /health */
export interface HealthBody {
  /** an endpoint that is configured but not running has only its name */
  endpoints: ({ name: string } & Partial<EndpointStatus>)[];
  targets: (TargetStatus & { alias: string })[];
}

/** POST /endpoints/test, /endpoints/:name/test: one GET of the server's model list. */
export interface ProbeResult {
  ok: boolean;
  latency_ms: number;
  models: string[];
  error?: string | undefined;
  /** the HTTP status, when the server answered */
  status?: number | undefined;
}

// ---- usage (the ledger) ----

/** GET /usage/requests (ListBody): one ledger row. */
export interface RequestRow {
  /** the gateway's own id (UUIDv7), unique */
  request_id: string;
  /** the client's x-request-id, when it sent a well-formed one (not unique) */
  client_request_id: string | null;
  /** ms since the epoch */
  ts: number;
  /** `ts` as ISO 8601 */
  time: string;
  kind: string;
  key_name: string | null;
  team: string | null;
  app: string | null;
  user: string | null;
  session: string | null;
  requested_model: string | null;
  alias: string | null;
  endpoint: string | null;
  upstream_model: string | null;
  stream: boolean;
  prompt_tokens: number;
  completion_tokens: number;
  /** token counts estimated by the gateway (the upstream reported none) */
  estimated: boolean;
  cost: number;
  ttfb_ms: number | null;
  latency_ms: number;
  status: number;
  attempts: number;
  error_class: string | null;
  /** the caller's x-airlock-tags */
  tags: Record<string, string> | null;
  /** the alias the client asked for, when cost-aware routing served `alias` instead */
  downgraded_from: string | null;
  /** MCP tool calls (kind "mcp_tool"): bytes of the arguments and of the result (null otherwise) */
  args_bytes: number | null;
  result_bytes: number | null;
}

/** GET /usage/requests: a page of the latest requests (newest first). */
export interface RequestsPage extends ListBody<RequestRow> {
  /** pass as ?cursor= for the next (older) page; null: this is the last page */
  next_cursor: string | null;
  /** settings.cost_unit: the unit of `cost` */
  cost_unit: string;
}

export type UsageGroupBy = 'team' | 'key' | 'model' | 'user' | 'app' | 'endpoint' | 'session' | 'tag';

/** One group of GET /usage. */
export interface UsageRow {
  /** the team, key, model alias, … (null: requests without one) */
  group: string | null;
  requests: number;
  /** requests answered with status >= 400 */
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  estimated_requests: number;
  cost: number;
  avg_latency_ms: number;
}

/** GET /usage, GET /usage/summary */
export interface UsageBody {
  group_by: UsageGroupBy;
  from: number | null;
  to: number | null;
  /** settings.cost_unit: the unit of `cost` */
  cost_unit: string;
  /** the filters applied (team, key, model, user, app, endpoint, session, tag) */
  filters: Record<string, string>;
  data: UsageRow[];
}

export type BudgetStatusName = 'ok' | 'warning' | 'exceeded';

/** One budget of GET /budgets. */
export interface BudgetStatus {
  scope: 'team' | 'key' | 'user';
  /** the team, key or end user */
  name: string;
  /** the team of a user budget (and of a key, when it has one) */
  team: string | null;
  period: 'day' | 'week' | 'month' | 'total';
  amount: number;
  /** settled cost in the current period */
  spent: number;
  /** estimated cost of requests in flight */
  reserved: number;
  /** (spent + reserved) / amount, in percent */
  used_percent: number;
  warn_at_percent: number;
  status: BudgetStatusName;
  period_start: string;
  /** null: the period "total" never ends */
  period_end: string | null;
}

/** GET /budgets/burndown?scope=team|key&name=: spend over the current budget period. */
export interface BudgetBurndown {
  scope: 'team' | 'key';
  name: string;
  period: 'day' | 'week' | 'month' | 'total';
  amount: number;
  cost_unit: string;
  /** the chart's span: the period (a "total" budget: from the first request to now) */
  from: string;
  to: string;
  /** spent so far in the period (settled requests) */
  spent: number;
  /** at the pace so far, the spend at the period's end (null: "total") */
  projected: number | null;
  /** at the pace so far, when the budget is used up (now if it is; null: not in this period) */
  runs_out_at: string | null;
  /** per bucket, at its end: the cumulative spend (null: the bucket is in the future) and the even pace */
  points: { time: string; spent: number | null; pace: number }[];
}

/** GET /budgets */
export interface BudgetsBody {
  cost_unit: string;
  timezone: string;
  data: BudgetStatus[];
}

export interface TimeseriesPoint {
  /** bucket start, ms since the epoch */
  t: number;
  requests: number;
  /** requests answered with status >= 400 */
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
  /** nearest-rank percentiles of latency_ms; null for an empty bucket */
  p50_ms: number | null;
  p99_ms: number | null;
}

/** GET /usage/timeseries: every bucket of the range, empty ones included. */
export interface Timeseries {
  from: number;
  to: number;
  bucket_ms: number;
  data: TimeseriesPoint[];
  /** the whole range: sums, and percentiles over every request in it */
  totals: Omit<TimeseriesPoint, 't'>;
}

// ---- the gateway ----

/** The ledger's writer (GET /status `ledger`; GET /readyz fails while it is not writable). */
export interface LedgerState {
  writable: boolean;
  /** settings.ledger_when_unwritable */
  mode: 'serve' | 'refuse';
  /** rows recorded but not yet committed */
  pending: number;
  written: number;
  /** rows that were not kept because max_pending_rows were already waiting */
  dropped: number;
  failed_writes: number;
  last_error: string | null;
  last_error_at: string | null;
}

/** What the running gateway reports about its certificate. */
export interface TlsInfo {
  cert_file: string;
  key_file: string;
  /** which planes serve HTTPS */
  data_plane: boolean;
  admin_plane: boolean;
  /** SHA-256 of the DER certificate, as `openssl x509 -fingerprint -sha256` prints it (AB:CD:…) */
  fingerprint_sha256: string;
  subject: string;
  issuer: string;
  /** e.g. "DNS:airlock.corp.local, IP Address:10.0.0.5"; null when the certificate has none */
  subject_alt_names: string | null;
  valid_from: string;
  /** expiry, ISO 8601 */
  valid_to: string;
  expired: boolean;
}

/** Where a listen value came from: a command-line flag or environment variable overrides the
 * stored settings.listen (which applies on restart). */
export type ListenOrigin = 'flag' | 'env' | 'settings' | 'default';

export interface ListenConfig {
  data_host: string;
  data_port: number;
  admin_host: string;
  admin_port: number;
}

export type ListenSource = Record<keyof ListenConfig, ListenOrigin>;

/** GET /status */
export interface StatusBody {
  version: string;
  started_at: string;
  config_version: number;
  data_dir: string;
  /** the URLs the planes listen on (null before both listen) */
  listen: { data: string; admin: string } | null;
  /** what the planes were asked to listen on at start */
  listen_config: ListenConfig;
  /** where each of those values came from (null: not known, e.g. a gateway started from code) */
  listen_source: ListenSource | null;
  /** AIRLOCK_ADMIN_HOSTNAMES */
  admin_hostnames: string[];
  /** settings.tls as loaded at start; null: plain HTTP on both planes */
  tls: TlsInfo | null;
  ledger: LedgerState;
}

/** GET /admin/api/v1/restart: can "Restart now" be offered (server/admin-restart.ts)? */
export interface RestartInfo {
  /** true: POST /restart stops the gateway and its supervisor starts it again */
  supported: boolean;
  /** who restarts it: "systemd", "desktop", or the name in AIRLOCK_SUPERVISOR; null: nobody */
  supervisor: string | null;
  /** why it is not supported, in words for the admin (null when it is) */
  message: string | null;
}

/** One route of GET /routes (ListBody): the role matrix, from the routes themselves. */
export interface RouteInfo {
  method: string;
  path: string;
  /** null: the route declares none, so it is refused */
  access: Access | null;
}

// ---- guardrails ----

/** One recorded guardrail decision (GET /admin/api/v1/guardrail-events): kinds and counts, never the matched text. */
export interface GuardrailEventRow {
  id: number;
  ts: string;
  request_id: string | null;
  tool_call_id: string | null;
  policy: string;
  direction: string;
  action: string;
  mode: string;
  outcome: 'blocked' | 'redacted' | 'flagged' | 'shadow';
  blocked: boolean;
  /** output: false when the answer ended before all of it was scanned (nothing unscanned was sent) */
  complete: boolean;
  count: number;
  /** "detector:TYPE" → how many */
  detectors: Record<string, number>;
  key: string | null;
  team: string | null;
  model: string | null;
}

/** GET /admin/api/v1/guardrail-events/summary: hits per policy over time, shadow and enforced. */
export interface GuardrailHitSeries {
  from: string;
  to: string;
  bucket_ms: number;
  policies: {
    policy: string;
    total: number;
    shadow: number;
    enforced: number;
    /** input/output policies: requests in the policy's scope in the window (the ledger's); null for tool-only policies */
    requests: number | null;
    /** requests the policy found something in */
    hit_requests: number;
    points: { ts: string; shadow: number; enforced: number }[];
  }[];
}

/** POST /admin/api/v1/guardrails/test */
export interface GuardrailTestResult {
  /** what would be sent on (the text after enforcing redactions), or null when blocked */
  output: string | null;
  blocked: { policy: string; message: string } | null;
  policies: {
    policy: string;
    mode: string;
    action: string;
    applies: boolean;
    /** what the detectors found; a guard_model verdict that is not safe is one too (start = end = 0) */
    findings: { detector: string; type: string; start: number; end: number }[];
    /** the policy's guard_model detectors' verdicts (asked only when it applies and no other
     * detector blocked first): safe, unsafe (with the classifier's category), failed (why, and
     * what the detector does then), or skipped (not asked: the caller is an auditor, whose try
     * runs the local detectors only; reason says so); blocks: this verdict would refuse the text */
    guard_model: GuardModelVerdictView[];
  }[];
}

export interface GuardModelVerdictView {
  model: string;
  verdict: 'safe' | 'unsafe' | 'failed' | 'skipped';
  category?: string;
  reason?: string;
  on_failure?: 'open' | 'closed';
  blocks: boolean;
}

// ---- audit trail (gateway/audit/, /admin/api/v1/audit/*) ----

/** One record of the audit log (GET /audit/events): the exported form. */
export interface AuditRecordView {
  seq: number;
  ts: string;
  kind: string;
  actor: string;
  source: string;
  data: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

/** GET /audit/key: the public half of the signing key (an auditor pins its fingerprint). */
export interface AuditKeyView {
  algorithm: 'Ed25519';
  fingerprint: string;
  public_key_pem: string;
  last_checkpoint: { seq: number; hash: string; ts: string } | null;
}

/** GET /audit/verify: the live log checked from the last archive segment to its head. */
export interface AuditVerifyBody {
  ok: boolean;
  problems: string[];
  records: number;
  first_seq: number | null;
  last_seq: number | null;
  checkpoints: number;
  archived_through: number;
  key_fingerprint: string;
}

/** POST /audit/export: the bundle written (and verified after writing). */
export interface AuditExportResult {
  dir: string;
  count: number;
  first_seq: number | null;
  last_seq: number | null;
  files: { name: string; sha256: string; bytes: number }[];
  key_fingerprint: string;
  manifest_sha256: string;
}

/** GET /prompt-log (without prompt and response) and GET /prompt-log/:id: one logged request (gateway/audit/prompt-log.ts). */
export interface PromptLogEntryView {
  request_id: string;
  ts: string;
  expires_at: string;
  /** metadata | redacted | full */
  mode: string;
  team: string | null;
  key: string | null;
  user: string | null;
  model: string | null;
  endpoint: string | null;
  status: number;
  meta: Record<string, unknown>;
  sha256: string;
  /** GET /prompt-log/:id only (null in metadata mode) */
  prompt?: unknown;
  response?: unknown;
  /** GET /prompt-log/:id only: the row still matches the sha256 its audit summary recorded */
  intact?: boolean;
}

/** POST /audit/verify-bundle: an exported bundle checked on the gateway's machine. */
export interface AuditBundleVerdict {
  dir: string;
  ok: boolean;
  /** every problem found, most important first; the first bad record is named precisely */
  problems: string[];
  /** the key that signed it */
  key_fingerprint: string | null;
  /** the fingerprint it was pinned to (the request's key, else this gateway's) */
  expected_key: string;
  count: number;
  first_seq: number | null;
  last_seq: number | null;
}

/** GET /audit/export/progress: the exports running now. */
export interface AuditExportProgress {
  id: string;
  actor: string;
  to: string;
  started_at: string;
  /** records written so far, of total */
  done: number;
  total: number;
}

/** GET /data-flow: where data goes, generated from the live configuration. */
export interface DataFlowBody {
  generated_at: string;
  data_dir: string;
  /** what is kept on this machine */
  stored: { what: string; where: string; retention: string; readable_by: string }[];
  /** every place requests or data are sent */
  destinations: { kind: string; name: string; url: string; host: string; leaves_machine: boolean; sends: string }[];
  /** who can reach the gateway */
  listening: { plane: string; address: string; reachable_from: string }[];
}

// ---- traces (gateway/telemetry/) ----

/** One span of GET /traces: times are ISO 8601 with milliseconds; `start_ms`/`end_ms` the same as epoch ms. */
export interface TraceSpan {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  /** model (a data-plane request), attempt (one upstream try), queue (a wait for a slot), guardrail, tool (an MCP tool call) */
  kind: 'model' | 'attempt' | 'queue' | 'guardrail' | 'tool';
  name: string;
  start: string;
  end: string;
  start_ms: number;
  end_ms: number;
  duration_ms: number;
  status: { code: 'ok' | 'error' | 'unset'; message: string | null };
  session: string | null;
  /** string arrays: the conventions' array attributes (gen_ai.response.finish_reasons) */
  attributes: Record<string, string | number | boolean | string[]>;
}

/** GET /traces/{trace_id}, and GET /usage/requests/{request_id}/trace (the trace one request
 * belongs to, whole: a client's traceparent may have joined it to other requests' spans) */
export interface Trace {
  trace_id: string;
  spans: TraceSpan[];
}

/** GET /traces?session=ID */
export interface TracesBody {
  data: Trace[];
  /** with `session`: the session is longer than one read holds, and these are its first steps */
  truncated?: boolean;
}

/** One workflow of GET /sessions */
export interface SessionSummary {
  session: string;
  start: string;
  end: string;
  /** model calls and tool calls */
  steps: number;
  model_calls: number;
  tool_calls: number;
  /** steps that failed */
  errors: number;
  traces: number;
  teams: string[];
  keys: string[];
  models: string[];
  input_tokens: number;
  output_tokens: number;
  cost: number;
}

/** GET /sessions: newest activity first; `next_cursor` pages on (pass it as `cursor`: sessions
 * that ended at the same time are neither lost nor repeated at a page's edge); `next_before`, the
 * last one's end, pages on by time (pass it as `before`) */
export interface SessionsBody {
  data: SessionSummary[];
  next_before: string | null;
  next_cursor: string | null;
}

/** A restore staged from the admin app, applied at the gateway's next start (GET /restore). */
export interface StagedRestore {
  /** encrypted: a bundle made by "airlock backup" (carries its install.key); plain: a bare database */
  kind: 'encrypted' | 'plain';
  staged_at: string;
  /** the admin account (or token) that staged it */
  staged_by: string;
  /** when the backup was made (encrypted bundles say; a plain database does not) */
  backup_created_at: string | null;
  backup_version: string | null;
  bytes: number;
  secret: boolean;
  audit_key: boolean;
}

export interface AppliedRestore extends StagedRestore {
  applied_at: string;
  /** the folder holding what the restore replaced (null: nothing was replaced) */
  previous: string | null;
}

export interface RestoreStatus {
  staged: StagedRestore | null;
  last_applied: AppliedRestore | null;
}
