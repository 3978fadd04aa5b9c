// The ledger row and the messages between the ledger (main thread) and its writer thread.
export interface LedgerRow {
  /** the gateway's own id (UUIDv7), the primary key; never the client's */
  request_id: string;
  /** the client's x-request-id, when it sent a well-formed one */
  client_request_id: string | null;
  ts: number;
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
  stream: number;
  prompt_tokens: number;
  completion_tokens: number;
  estimated: number;
  cost: number;
  ttfb_ms: number | null;
  latency_ms: number;
  status: number;
  attempts: number;
  error_class: string | null;
}

export const LEDGER_COLUMNS = [
  'request_id', 'client_request_id', 'ts', 'kind', 'key_name', 'team', 'app', 'user', 'session', 'requested_model', 'alias',
  'endpoint', 'upstream_model', 'stream', 'prompt_tokens', 'completion_tokens', 'estimated', 'cost', 'ttfb_ms', 'latency_ms',
  'status', 'attempts', 'error_class',
] as const satisfies readonly (keyof LedgerRow)[];

export type ToWorker =
  | { type: 'rows'; rows: LedgerRow[] }
  | { type: 'prune'; before: number; id: number }
  | { type: 'close' };

export type FromWorker =
  | { type: 'written'; rows: number }
  | { type: 'failed'; error: string; pending: number }
  | { type: 'pruned'; rows: number; id: number; error?: string }
  | { type: 'closed'; unwritten: number };
