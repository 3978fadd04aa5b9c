// GET /admin/api/v1/usage/requests, page by page (issue 15): the latest ledger rows first,
// filtered by team, key, model, user or outcome, with an opaque cursor for the next page. The
// cursor names the last row shown (its time and row id), so rows written meanwhile never shift a
// page and no row is shown twice or skipped, even among rows with the same millisecond.
import type { DB } from '../store/db.js';
import type { LedgerRow } from './ledger.js';
import { decodeCursor, encodeCursor } from '../store/cursor.js';

export interface RequestPageQuery {
  limit: number;
  /** from a previous page's next_cursor */
  cursor?: string;
  /** only rows before this time (ms) */
  before?: number;
  team?: string;
  key?: string;
  /** the alias served or the name asked for */
  model?: string;
  user?: string;
  /** ok: status < 400; error: status >= 400 */
  outcome?: 'ok' | 'error';
  request_id?: string;
  client_request_id?: string;
}

export function requestPage(db: DB, q: RequestPageQuery): { rows: Omit<LedgerRow, 'trace'>[]; next_cursor: string | null } {
  const where: string[] = [];
  const args: (string | number)[] = [];
  if (q.cursor !== undefined) {
    const [ts, rowid] = decodeCursor(q.cursor, ['int', 'int']);
    where.push('(ts < ? OR (ts = ? AND rowid < ?))');
    args.push(ts, ts, rowid);
  }
  if (q.before !== undefined) {
    where.push('ts < ?');
    args.push(q.before);
  }
  for (const [f, col] of [
    ['team', 'team'],
    ['key', 'key_name'],
    ['user', 'user'],
    ['request_id', 'request_id'],
    ['client_request_id', 'client_request_id'],
  ] as const) {
    const v = q[f];
    if (v === undefined) continue;
    where.push(`${col} = ?`);
    args.push(v);
  }
  if (q.model !== undefined) {
    where.push('(alias = ? OR requested_model = ?)');
    args.push(q.model, q.model);
  }
  if (q.outcome) where.push(q.outcome === 'ok' ? 'status < 400' : 'status >= 400');
  const found = db
    .prepare(`SELECT rowid AS _rowid, * FROM ledger ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY ts DESC, rowid DESC LIMIT ?`)
    .all(...args, q.limit + 1) as (LedgerRow & { _rowid: number })[];
  const more = found.length > q.limit;
  const page = more ? found.slice(0, q.limit) : found;
  const last = page[page.length - 1];
  return { rows: page.map(({ _rowid, trace: _trace, ...r }) => r), next_cursor: more && last ? encodeCursor(last.ts, last._rowid) : null };
}
