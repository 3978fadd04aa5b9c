// trace_sessions (migration 26): one row per workflow (x-airlock-session), kept by triggers on the
// inserts of the span store and the ledger, read by GET /sessions (telemetry/span-store.ts
// listSessions). A prune of either store calls refreshSessions inside its transaction: the
// sessions that may have lost a step get their earliest start again, and those left without any
// step are deleted, so the list's walk does not step over the emptied ones for ever.
import type { Statement } from 'better-sqlite3';
import type { DB } from './db.js';

const refreshes = new WeakMap<DB, { refresh: Statement<[number]>; drop: Statement<[]> }>();

/** Every session with a step that started at or before `upTo` (the newest start or time the prune
 * deleted): `first` recomputed from the steps left; a session without one is deleted. */
export function refreshSessions(db: DB, upTo: number): void {
  let s = refreshes.get(db);
  if (!s) {
    s = {
      refresh: db.prepare(
        `UPDATE trace_sessions SET first = (
           SELECT MIN(x) FROM (
             SELECT MIN(start) AS x FROM trace_spans WHERE session = trace_sessions.session AND kind IN ('model', 'tool')
             UNION ALL
             SELECT MIN(ts) FROM ledger WHERE session = trace_sessions.session AND trace IS NOT NULL))
         WHERE first <= ?`,
      ),
      drop: db.prepare(`DELETE FROM trace_sessions WHERE first IS NULL`),
    };
    refreshes.set(db, s);
  }
  s.refresh.run(upTo);
  s.drop.run();
}
