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
];

export const LATEST_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;
