// The ledger row and the messages between the ledger (main thread) and its writer thread.
import type { RequestRow } from '../wire.js';

/** A row as stored (and handed to the writer): the admin API's RequestRow (gateway/wire.ts)
 * without `time`, with SQLite's 0/1 for the booleans. A column is added there. */
export interface LedgerRow extends Omit<RequestRow, 'time' | 'stream' | 'estimated' | 'tags'> {
  stream: number;
  estimated: number;
  /** the tags as a JSON object, or null */
  tags: string | null;
  /** a plain request's trace (telemetry/ledger-trace.ts), or null: not traced, traced in
   * trace_spans, or pruned. Not part of the admin API's rows. */
  trace: string | null;
}

export const LEDGER_COLUMNS = [
  'request_id', 'client_request_id', 'ts', 'kind', 'key_name', 'team', 'app', 'user', 'session', 'requested_model', 'alias',
  'endpoint', 'upstream_model', 'stream', 'prompt_tokens', 'completion_tokens', 'estimated', 'cost', 'ttfb_ms', 'latency_ms',
  'status', 'attempts', 'error_class', 'tags', 'downgraded_from', 'args_bytes', 'result_bytes', 'trace',
] as const satisfies readonly (keyof LedgerRow)[];

// Every field of LedgerRow is a column the writer inserts: a field missing above fails here
// ("Type '"x"' does not satisfy the constraint 'never'" names it).
type NoneMissing<T extends never> = T;
type _EveryColumnListed = NoneMissing<Exclude<keyof LedgerRow, (typeof LEDGER_COLUMNS)[number]>>;

/** one column's value as handed to the writer */
export type LedgerValue = LedgerRow[keyof LedgerRow];

export type ToWorker =
  /** rows, flattened: LEDGER_COLUMNS.length values per row, in that order */
  | { type: 'rows'; values: LedgerValue[] }
  | { type: 'prune'; before: number; id: number }
  | { type: 'close' };

export type FromWorker =
  /** `traced`: how many of the rows carry a trace (LedgerRow.trace) */
  | { type: 'written'; rows: number; traced: number }
  | { type: 'failed'; error: string; pending: number }
  | { type: 'pruned'; rows: number; id: number; error?: string }
  | { type: 'closed'; unwritten: number };
