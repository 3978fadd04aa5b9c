// The admin plane's reads that scan (usage over the whole ledger, usage and guardrail time series,
// the workflows list, recent traces, a team's users in a budget period), run in a worker thread on a connection of its own
// (admin-reader.ts): an admin opening the Usage page over a year of ledger rows must not hold up
// the event loop that serves the data plane. The connection is query-only; in WAL mode it reads
// what was committed when each read began, beside the writers.
import Database from 'better-sqlite3';
import { parentPort, workerData } from 'node:worker_threads';
import { usageAggregates, usageTimeseries } from '../engine/ledger.js';
import { teamUsers } from '../governance/reports.js';
import { guardrailHitSeries } from '../guardrails/hit-series.js';
import { CursorError } from '../store/cursor.js';
import type { DB } from '../store/db.js';
import { listSessions, recentTraces, tracesOfSessionRead } from '../telemetry/span-store.js';

/** The reads a worker serves, by name: each takes the worker's connection first. */
export const READS = {
  usageAggregates,
  usageTimeseries,
  guardrailHitSeries,
  listSessions,
  recentTraces,
  tracesOfSessionRead,
  teamUsers,
} satisfies Record<string, (db: DB, ...args: never[]) => unknown>;

export type ReadName = keyof typeof READS;
export interface ReadRequest {
  id: number;
  name: ReadName;
  args: unknown[];
}
export type ReadReply = { id: number; value: unknown } | { id: number; error: { message: string; cursor: boolean } };

const port = parentPort;
const init = workerData as { adminReads?: { file: string; busyTimeoutMs: number } } | null;
if (port && init?.adminReads) {
  const db = new Database(init.adminReads.file, { fileMustExist: true });
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(init.adminReads.busyTimeoutMs))}`);
  db.pragma('query_only = ON');
  port.on('message', (m: ReadRequest) => {
    let reply: ReadReply;
    try {
      const read = READS[m.name] as (db: DB, ...args: unknown[]) => unknown;
      reply = { id: m.id, value: read(db, ...m.args) };
    } catch (e) {
      reply = { id: m.id, error: { message: (e as Error)?.message ?? String(e), cursor: e instanceof CursorError } };
    }
    port.postMessage(reply);
  });
  port.on('close', () => db.close());
}
