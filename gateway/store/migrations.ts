// Versioned schema migrations. An applied migration is never edited: its checksum is
// recorded, and a database whose recorded checksum differs is refused.
export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    name: 'core',
    sql: `
CREATE TABLE endpoints (
  name TEXT PRIMARY KEY,
  type TEXT NOT NULL,
  base_url TEXT NOT NULL,
  api_key_enc TEXT,
  api_key_ref TEXT,
  max_concurrency INTEGER,
  timeout_ms INTEGER,
  first_byte_timeout_ms INTEGER,
  health_check TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE models (
  name TEXT PRIMARY KEY,
  strategy TEXT NOT NULL,
  price TEXT,
  max_attempts INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE model_targets (
  model TEXT NOT NULL REFERENCES models(name) ON DELETE CASCADE,
  position INTEGER NOT NULL,
  endpoint TEXT NOT NULL REFERENCES endpoints(name) ON DELETE RESTRICT,
  upstream_model TEXT NOT NULL,
  weight REAL,
  PRIMARY KEY (model, position)
) STRICT;

CREATE TABLE teams (
  name TEXT PRIMARY KEY,
  description TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE keys (
  name TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  from_config INTEGER NOT NULL DEFAULT 0,
  team TEXT REFERENCES teams(name) ON DELETE RESTRICT,
  app TEXT,
  models TEXT,
  disabled INTEGER NOT NULL DEFAULT 0,
  expires_at TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE routing_rules (
  position INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL
) STRICT;

CREATE TABLE settings (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  spec TEXT NOT NULL
) STRICT;

CREATE TABLE ledger (
  request_id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  kind TEXT NOT NULL,
  key_name TEXT,
  team TEXT,
  app TEXT,
  user TEXT,
  session TEXT,
  requested_model TEXT,
  alias TEXT,
  endpoint TEXT,
  upstream_model TEXT,
  stream INTEGER NOT NULL DEFAULT 0,
  prompt_tokens INTEGER NOT NULL DEFAULT 0,
  completion_tokens INTEGER NOT NULL DEFAULT 0,
  estimated INTEGER NOT NULL DEFAULT 0,
  cost REAL NOT NULL DEFAULT 0,
  ttfb_ms REAL,
  latency_ms REAL NOT NULL,
  status INTEGER NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  error_class TEXT
) STRICT;
CREATE INDEX ledger_ts ON ledger(ts);
CREATE INDEX ledger_team_ts ON ledger(team, ts);
`,
  },
  {
    version: 2,
    name: 'admin-accounts',
    sql: `
CREATE TABLE admin_users (
  name TEXT PRIMARY KEY,
  password_hash TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'auditor')),
  disabled INTEGER NOT NULL DEFAULT 0,
  failed_logins INTEGER NOT NULL DEFAULT 0,
  locked_until INTEGER,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE admin_sessions (
  id_hash TEXT PRIMARY KEY,
  user TEXT NOT NULL REFERENCES admin_users(name) ON DELETE CASCADE,
  csrf TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  last_seen_at INTEGER NOT NULL
) STRICT;

CREATE TABLE admin_tokens (
  name TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  role TEXT NOT NULL CHECK (role IN ('owner', 'admin', 'auditor')),
  created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  last_used_at INTEGER
) STRICT;
`,
  },
  {
    version: 3,
    name: 'ledger-client-request-id',
    // The ledger's key is the gateway's own request id; the client's x-request-id is kept beside
    // it (before, a client id became the key and a repeated one replaced earlier rows).
    sql: `
ALTER TABLE ledger ADD COLUMN client_request_id TEXT;
CREATE INDEX ledger_client_request_id ON ledger(client_request_id) WHERE client_request_id IS NOT NULL;
`,
  },
  {
    version: 4,
    name: 'governance',
    // Budgets, limits, weights and priorities of teams, keys and models (one JSON column each:
    // the zod schemas validate them); the ledger's tags (JSON object) and downgrade attribution.
    sql: `
ALTER TABLE teams ADD COLUMN governance TEXT;
ALTER TABLE keys ADD COLUMN governance TEXT;
ALTER TABLE models ADD COLUMN governance TEXT;
ALTER TABLE ledger ADD COLUMN tags TEXT;
ALTER TABLE ledger ADD COLUMN downgraded_from TEXT;
CREATE INDEX ledger_key_ts ON ledger(key_name, ts);
`,
  },
  {
    version: 5,
    name: 'guardrails',
    // Guardrail policies (an ordered list, like routing rules) and their decisions: one row per
    // policy that found something in one direction of one request or tool call, with the kinds
    // and counts found, never the matched text.
    sql: `
CREATE TABLE guardrails (
  position INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  spec TEXT NOT NULL
) STRICT;

CREATE TABLE guardrail_events (
  id INTEGER PRIMARY KEY,
  ts INTEGER NOT NULL,
  request_id TEXT,
  tool_call_id TEXT,
  policy TEXT NOT NULL,
  direction TEXT NOT NULL,
  action TEXT NOT NULL,
  mode TEXT NOT NULL,
  blocked INTEGER NOT NULL,
  complete INTEGER NOT NULL,
  count INTEGER NOT NULL,
  detectors TEXT NOT NULL,
  key_name TEXT,
  team TEXT,
  model TEXT
) STRICT;
CREATE INDEX guardrail_events_ts ON guardrail_events(ts);
CREATE INDEX guardrail_events_policy_ts ON guardrail_events(policy, ts);
CREATE INDEX guardrail_events_request ON guardrail_events(request_id) WHERE request_id IS NOT NULL;
`,
  },
  {
    version: 7,
    name: 'audit-trail',
    // The audit trail (gateway/audit/): a hash chain the database itself keeps append-only. A
    // record must carry the next sequence number and the previous record's hash; no record or
    // checkpoint can be changed; only records already moved into a signed archive segment
    // (audit_archives) can be deleted, and archives are never removed.
    sql: `
CREATE TABLE audit_archives (
  through_seq INTEGER PRIMARY KEY,
  first_seq INTEGER NOT NULL,
  last_hash TEXT NOT NULL,
  dir TEXT NOT NULL,
  created_at TEXT NOT NULL
) STRICT;
CREATE TABLE audit_log (
  seq INTEGER PRIMARY KEY,
  ts TEXT NOT NULL,
  kind TEXT NOT NULL,
  actor TEXT NOT NULL,
  source TEXT NOT NULL,
  data TEXT NOT NULL,
  prev_hash TEXT NOT NULL,
  hash TEXT NOT NULL
) STRICT;
CREATE INDEX audit_log_ts ON audit_log(ts);
CREATE INDEX audit_log_kind ON audit_log(kind, seq);
CREATE TABLE audit_checkpoints (
  seq INTEGER PRIMARY KEY,
  hash TEXT NOT NULL,
  ts TEXT NOT NULL,
  key_fingerprint TEXT NOT NULL,
  signature TEXT NOT NULL
) STRICT;
CREATE TRIGGER audit_log_append_only_insert BEFORE INSERT ON audit_log
WHEN NEW.seq IS NOT COALESCE((SELECT MAX(seq) FROM audit_log), (SELECT MAX(through_seq) FROM audit_archives), 0) + 1
  OR NEW.prev_hash IS NOT COALESCE((SELECT hash FROM audit_log ORDER BY seq DESC LIMIT 1), (SELECT last_hash FROM audit_archives ORDER BY through_seq DESC LIMIT 1), '0000000000000000000000000000000000000000000000000000000000000000')
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: a record must follow the last one (next seq, previous hash)'); END;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be changed'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
WHEN OLD.seq > COALESCE((SELECT MAX(through_seq) FROM audit_archives), 0)
BEGIN SELECT RAISE(ABORT, 'audit log is append-only: records cannot be deleted (only those moved into an archive segment)'); END;
CREATE TRIGGER audit_checkpoints_no_update BEFORE UPDATE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints cannot be changed'); END;
CREATE TRIGGER audit_checkpoints_no_delete BEFORE DELETE ON audit_checkpoints
BEGIN SELECT RAISE(ABORT, 'audit checkpoints cannot be deleted'); END;
CREATE TRIGGER audit_archives_no_update BEFORE UPDATE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit archive segments cannot be changed'); END;
CREATE TRIGGER audit_archives_no_delete BEFORE DELETE ON audit_archives
BEGIN SELECT RAISE(ABORT, 'audit archive segments cannot be deleted'); END;
CREATE TRIGGER audit_archives_in_order BEFORE INSERT ON audit_archives
WHEN NEW.through_seq <= COALESCE((SELECT MAX(through_seq) FROM audit_archives), 0)
  OR NEW.last_hash IS NOT (SELECT hash FROM audit_log WHERE seq = NEW.through_seq)
BEGIN SELECT RAISE(ABORT, 'an audit archive segment must end at an existing record after the last segment'); END;
`,
  },
  {
    version: 8,
    name: 'mcp-gateway',
    // MCP servers (env/headers values encrypted in secrets_enc), agents (keys stored as hashes),
    // virtual MCP servers (/mcp/v/NAME), and the sizes of a tool call's arguments and result on its ledger row.
    sql: `
CREATE TABLE mcp_servers (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  secrets_enc TEXT,
  position INTEGER NOT NULL DEFAULT 0,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE agents (
  name TEXT PRIMARY KEY,
  hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  spec TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) STRICT;

CREATE TABLE mcp_virtual_servers (
  name TEXT PRIMARY KEY,
  spec TEXT NOT NULL,
  position INTEGER NOT NULL DEFAULT 0
) STRICT;

ALTER TABLE ledger ADD COLUMN args_bytes INTEGER;
ALTER TABLE ledger ADD COLUMN result_bytes INTEGER;
`,
  },
  {
    version: 9,
    name: 'stored-responses',
    // POST /v1/responses with store (OpenAI's default): the Response object and the conversation
    // it continues, for GET/DELETE /v1/responses/{id} and previous_response_id; owned by the key
    // that made it, deleted after settings.responses_retention_days.
    sql: `
CREATE TABLE stored_responses (
  id TEXT PRIMARY KEY,
  key_name TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  response TEXT NOT NULL,
  conversation TEXT NOT NULL
) STRICT;
CREATE INDEX stored_responses_expires ON stored_responses(expires_at);
`,
  },
  {
    version: 10,
    name: 'trace-spans',
    // The local span store (gateway/telemetry/): one row per span, written in batches by a worker
    // thread, pruned by settings.telemetry.retention_hours and max_spans (oldest rowid first).
    // kind: model (a data-plane request), attempt, queue, guardrail, tool. The root rows of a
    // request or tool call carry who/what (team, key, model, status) so sessions can be listed.
    sql: `
CREATE TABLE trace_spans (
  trace_id TEXT NOT NULL,
  span_id TEXT NOT NULL,
  parent_span_id TEXT,
  session TEXT,
  kind TEXT NOT NULL,
  name TEXT NOT NULL,
  start REAL NOT NULL,
  end REAL NOT NULL,
  status TEXT NOT NULL,
  status_message TEXT,
  team TEXT,
  key_name TEXT,
  model TEXT,
  http_status INTEGER,
  attributes TEXT NOT NULL
) STRICT;
CREATE INDEX trace_spans_trace ON trace_spans(trace_id);
CREATE INDEX trace_spans_session ON trace_spans(session, start) WHERE session IS NOT NULL;
CREATE INDEX trace_spans_start ON trace_spans(start);
`,
  },
  {
    version: 12,
    name: 'prompt-log',
    // Prompt and response logging (gateway/audit/prompt-log.ts), per team (teams[].prompt_logging):
    // one row per logged request, keyed by the request id (the ledger's and the audit summary's).
    // prompt/response: NULL in metadata mode, else the text sealed with the install secret
    // (AES-256-GCM). sha256: over the canonical JSON of what was logged, before sealing (the
    // audit summary of the request records it, so a changed row is detectable). Rows expire at
    // expires_at (the team's retention_days) and are deleted by the retention sweep.
    sql: `
CREATE TABLE prompt_log (
  request_id TEXT PRIMARY KEY,
  ts INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  mode TEXT NOT NULL,
  team TEXT,
  key_name TEXT,
  user TEXT,
  model TEXT,
  endpoint TEXT,
  status INTEGER NOT NULL,
  meta TEXT NOT NULL,
  prompt TEXT,
  response TEXT,
  sha256 TEXT NOT NULL
) STRICT;
CREATE INDEX prompt_log_ts ON prompt_log(ts);
CREATE INDEX prompt_log_expires ON prompt_log(expires_at);
CREATE INDEX prompt_log_team ON prompt_log(team, ts);
`,
  },
  {
    version: 13,
    name: 'key-rotation',
    // A rotated key's old secret (its hash) and until when it still works (store/key-rotation.ts).
    sql: `
ALTER TABLE keys ADD COLUMN previous_hash TEXT;
ALTER TABLE keys ADD COLUMN previous_valid_until INTEGER;
CREATE UNIQUE INDEX keys_previous_hash ON keys(previous_hash) WHERE previous_hash IS NOT NULL;
`,
  },
  {
    version: 15,
    name: 'trace-span-groups',
    // A request's spans in one row: the root span's row carries its children (attempts, queue
    // waits, guardrail decisions) as a JSON array, and n counts the spans in the row (max_spans
    // counts spans, not rows). One insert per request instead of one per span.
    sql: `
ALTER TABLE trace_spans ADD COLUMN children TEXT;
ALTER TABLE trace_spans ADD COLUMN n INTEGER NOT NULL DEFAULT 1;
`,
  },
  {
    version: 17,
    name: 'endpoint-expose-models',
    // endpoints[].expose_models: 1 (true), 0 (false) or NULL (not set) — the models the server
    // lists are callable by their upstream names (engine/snapshot.ts).
    sql: `
ALTER TABLE endpoints ADD COLUMN expose_models INTEGER;
`,
  },
  {
    version: 22,
    name: 'key-secret-owner',
    // keys.secret_from_file (and agents'): the config file field that sets the key's secret (e.g.
    // "keys[0].key in /etc/airlock/airlock.yaml"), NULL when no file sets it: such a key is not
    // rotated by the API/CLI (the file would put its literal back). key_retired_secrets: the
    // hashes a rotation (or a secret set through the API/CLI) replaced, which no apply may give
    // the key back (store/key-rotation.ts, store/config-store.ts).
    sql: `
ALTER TABLE keys ADD COLUMN secret_from_file TEXT;
ALTER TABLE agents ADD COLUMN secret_from_file TEXT;
CREATE TABLE key_retired_secrets (
  key_name TEXT NOT NULL REFERENCES keys(name) ON DELETE CASCADE,
  hash TEXT NOT NULL,
  retired_at INTEGER NOT NULL,
  PRIMARY KEY (key_name, hash)
) STRICT;
INSERT INTO key_retired_secrets (key_name, hash, retired_at) SELECT name, previous_hash, updated_at FROM keys WHERE previous_hash IS NOT NULL;
`,
  },
  {
    version: 23,
    name: 'trace-spans-no-start-index',
    // The span store prunes by age in write order (rowid), oldest first (telemetry/span-writer.ts),
    // and no read looks spans up by start alone: the index on start only cost each stored request
    // about a microsecond of the writer's CPU and its bytes on disk.
    sql: `
DROP INDEX IF EXISTS trace_spans_start;
`,
  },
  {
    version: 24,
    name: 'ledger-traces',
    // The trace of a plain request (successful, one upstream attempt, no queue wait, guardrail
    // decision or client traceparent: most of them) is carried by its ledger row instead of a
    // trace_spans row: `trace` holds what the ledger's other columns do not (telemetry/
    // ledger-trace.ts), NULL when the request was not traced or its trace was pruned. One insert
    // per request instead of two. ledger_traced orders those rows for the span store's retention
    // and size cap (only traced rows are in it); ledger_session finds a workflow's requests.
    sql: `
ALTER TABLE ledger ADD COLUMN trace TEXT;
CREATE INDEX ledger_traced ON ledger(ts) WHERE trace IS NOT NULL;
CREATE INDEX ledger_session ON ledger(session, ts) WHERE session IS NOT NULL;
`,
  },
  {
    version: 25,
    name: 'trace-spans-span-index',
    // A request's trace by its request id (GET /usage/requests/{request_id}/trace): a request
    // whose trace is not carried by its ledger row has a trace_spans row whose span_id is derived
    // from its request id (telemetry/span.ts requestSpanId), while its trace id may be a client's
    // (traceparent). Only those requests (failed, retried, queued, guarded, with a traceparent)
    // and tool calls have span rows, so the index costs little of the writer's time.
    sql: `
CREATE INDEX trace_spans_span ON trace_spans(span_id);
`,
  },
  {
    version: 26,
    name: 'trace-sessions',
    // GET /sessions (the Traces page's workflows) aggregated every step of every session in both
    // stores on each read: ~3.5 s at the span store's default cap of 1,000,000 spans, on the thread
    // that serves requests (bench/trace-reads.ts). trace_sessions holds one row per workflow, kept by
    // triggers on the two stores' inserts: its latest end (the list's order), its earliest start,
    // and what narrows a filtered list: the steps' distinct teams, keys and models (each set a text
    // that starts and ends with char(31) between its names, NULL once longer than 1 kB: then not
    // used to narrow) and how many steps failed or not. A read walks it newest first and aggregates
    // only the sessions it shows, from the stores (span-store.ts listSessions). A prune of the
    // stores refreshes \`first\` of the sessions it may have touched and deletes those left without a
    // step (store/trace-sessions.ts); a read skips a session whose steps are gone in between.
    sql: `
CREATE TABLE trace_sessions (
  session TEXT PRIMARY KEY,
  first REAL,
  last REAL NOT NULL,
  teams TEXT,
  keys TEXT,
  models TEXT,
  errors INTEGER NOT NULL,
  oks INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE TRIGGER trace_spans_session_step AFTER INSERT ON trace_spans
WHEN NEW.session IS NOT NULL AND NEW.kind IN ('model', 'tool')
BEGIN
  INSERT INTO trace_sessions (session, first, last, teams, keys, models, errors, oks)
  VALUES (NEW.session, NEW.start, NEW.end, CASE WHEN NEW.team IS NULL THEN char(31) ELSE char(31) || NEW.team || char(31) END, CASE WHEN NEW.key_name IS NULL THEN char(31) ELSE char(31) || NEW.key_name || char(31) END, CASE WHEN NEW.model IS NULL THEN char(31) ELSE char(31) || NEW.model || char(31) END, NEW.status = 'error', NEW.status <> 'error')
  ON CONFLICT (session) DO UPDATE SET
    first = min(COALESCE(first, excluded.first), excluded.first),
    last = max(last, excluded.last),
    teams = CASE WHEN NEW.team IS NULL OR teams IS NULL OR instr(teams, char(31) || NEW.team || char(31)) > 0 THEN teams WHEN length(teams) > 1024 THEN NULL ELSE teams || NEW.team || char(31) END,
    keys = CASE WHEN NEW.key_name IS NULL OR keys IS NULL OR instr(keys, char(31) || NEW.key_name || char(31)) > 0 THEN keys WHEN length(keys) > 1024 THEN NULL ELSE keys || NEW.key_name || char(31) END,
    models = CASE WHEN NEW.model IS NULL OR models IS NULL OR instr(models, char(31) || NEW.model || char(31)) > 0 THEN models WHEN length(models) > 1024 THEN NULL ELSE models || NEW.model || char(31) END,
    errors = errors + excluded.errors,
    oks = oks + excluded.oks;
END;
CREATE TRIGGER ledger_session_step AFTER INSERT ON ledger
WHEN NEW.session IS NOT NULL AND NEW.trace IS NOT NULL
BEGIN
  INSERT INTO trace_sessions (session, first, last, teams, keys, models, errors, oks)
  VALUES (NEW.session, NEW.ts, NEW.ts + NEW.latency_ms, CASE WHEN NEW.team IS NULL THEN char(31) ELSE char(31) || NEW.team || char(31) END, CASE WHEN NEW.key_name IS NULL THEN char(31) ELSE char(31) || NEW.key_name || char(31) END, CASE WHEN COALESCE(NEW.alias, NEW.requested_model) IS NULL THEN char(31) ELSE char(31) || COALESCE(NEW.alias, NEW.requested_model) || char(31) END, 0, 1)
  ON CONFLICT (session) DO UPDATE SET
    first = min(COALESCE(first, excluded.first), excluded.first),
    last = max(last, excluded.last),
    teams = CASE WHEN NEW.team IS NULL OR teams IS NULL OR instr(teams, char(31) || NEW.team || char(31)) > 0 THEN teams WHEN length(teams) > 1024 THEN NULL ELSE teams || NEW.team || char(31) END,
    keys = CASE WHEN NEW.key_name IS NULL OR keys IS NULL OR instr(keys, char(31) || NEW.key_name || char(31)) > 0 THEN keys WHEN length(keys) > 1024 THEN NULL ELSE keys || NEW.key_name || char(31) END,
    models = CASE WHEN COALESCE(NEW.alias, NEW.requested_model) IS NULL OR models IS NULL OR instr(models, char(31) || COALESCE(NEW.alias, NEW.requested_model) || char(31)) > 0 THEN models WHEN length(models) > 1024 THEN NULL ELSE models || COALESCE(NEW.alias, NEW.requested_model) || char(31) END,
    errors = errors + excluded.errors,
    oks = oks + excluded.oks;
END;
WITH steps AS (
  SELECT session, start, end, status, team, key_name, model FROM trace_spans WHERE session IS NOT NULL AND kind IN ('model', 'tool')
  UNION ALL
  SELECT session, ts, ts + latency_ms, 'ok', team, key_name, COALESCE(alias, requested_model) FROM ledger WHERE session IS NOT NULL AND trace IS NOT NULL
),
  base AS (SELECT session, MIN(start) AS first, MAX(end) AS last, SUM(status = 'error') AS errors, SUM(status <> 'error') AS oks FROM steps GROUP BY session),
  t AS (SELECT session, char(31) || group_concat(v, char(31)) || char(31) AS v FROM (SELECT DISTINCT session, team AS v FROM steps WHERE team IS NOT NULL) GROUP BY session),
  k AS (SELECT session, char(31) || group_concat(v, char(31)) || char(31) AS v FROM (SELECT DISTINCT session, key_name AS v FROM steps WHERE key_name IS NOT NULL) GROUP BY session),
  m AS (SELECT session, char(31) || group_concat(v, char(31)) || char(31) AS v FROM (SELECT DISTINCT session, model AS v FROM steps WHERE model IS NOT NULL) GROUP BY session)
INSERT INTO trace_sessions (session, first, last, teams, keys, models, errors, oks)
SELECT base.session, first, last, CASE WHEN length(t.v) > 1024 THEN NULL ELSE COALESCE(t.v, char(31)) END, CASE WHEN length(k.v) > 1024 THEN NULL ELSE COALESCE(k.v, char(31)) END, CASE WHEN length(m.v) > 1024 THEN NULL ELSE COALESCE(m.v, char(31)) END, errors, oks
FROM base LEFT JOIN t ON t.session = base.session LEFT JOIN k ON k.session = base.session LEFT JOIN m ON m.session = base.session;
`,
  },
  {
    version: 27,
    name: 'admin-must-change-password',
    // A password set by `airlock admin reset-password` is for one sign-in: until its user chooses
    // a new one (POST /auth/password), a session may do nothing else.
    sql: `
ALTER TABLE admin_users ADD COLUMN must_change_password INTEGER NOT NULL DEFAULT 0;
`,
  },
  {
    version: 28,
    name: 'key-retired-secret-grace',
    // Each secret a rotation replaced keeps its own grace period: key_retired_secrets.valid_until
    // (ms; NULL for a secret replaced through the API/CLI, which never had one). Before, the key
    // held one old secret (keys.previous_hash): a second rotation ended the first one's grace at
    // once, and of two rotations at the same moment one handed out a secret that never worked.
    sql: `
ALTER TABLE key_retired_secrets ADD COLUMN valid_until INTEGER;
UPDATE key_retired_secrets SET valid_until = (SELECT previous_valid_until FROM keys WHERE keys.name = key_retired_secrets.key_name AND keys.previous_hash = key_retired_secrets.hash);
`,
  },
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
