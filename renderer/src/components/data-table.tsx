// The shared data table: a <table> (with an optional caption for screen readers) in its scroll box,
// one row header column, an optional actions column (labelled for screen readers), an empty state,
// and "load more" paging.
import type { ReactNode } from 'react';
import { TableWrap } from './ui';

export interface Column<T> {
  /** the column's header text (also the accessible name of its cells' column) */
  header: ReactNode;
  cell: (row: T) => ReactNode;
  /** the cell names the row (a <th scope="row">); the first column by default */
  rowHeader?: boolean;
  className?: string;
}

export function DataTable<T>({
  label,
  rows,
  rowKey,
  columns,
  actions,
  empty,
  testId,
  card,
  more,
  caption,
}: {
  /** what the table lists ("Keys"): the name of its scroll region */
  label: string;
  rows: readonly T[] | undefined;
  rowKey: (row: T) => string;
  columns: Column<T>[];
  /** the row's buttons (omit for read-only viewers: the column then goes away) */
  actions?: (row: T) => ReactNode;
  /** shown instead of the table when rows is an empty list (not while loading) */
  empty?: ReactNode;
  testId?: string;
  card?: boolean;
  /** paging: a "load more" button under the table while there is more; `onNewest` (given while a
   * live list is held still after loading more) adds "Back to the newest", which lets it go live again */
  more?: { hasMore: boolean; busy: boolean; onMore: () => void; label?: string; onNewest?: () => void };
  /** what the table shows, for screen readers (a caption the eye gets from the heading above) */
  caption?: string;
}) {
  if (!rows) return null;
  if (rows.length === 0) return <>{empty ?? null}</>;
  const headerIndex = Math.max(0, columns.findIndex((c) => c.rowHeader));
  return (
    <>
      <TableWrap label={label} card={card}>
        <table data-testid={testId}>
          {caption ? <caption className="sr-only">{caption}</caption> : null}
          <thead>
            <tr>
              {columns.map((c, i) => (
                <th scope="col" key={i} className={c.className}>
                  {c.header}
                </th>
              ))}
              {actions ? (
                <th scope="col">
                  <span className="sr-only">Actions</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={rowKey(r)}>
                {columns.map((c, i) =>
                  i === headerIndex ? (
                    <th scope="row" key={i} className={c.className}>
                      {c.cell(r)}
                    </th>
                  ) : (
                    <td key={i} className={c.className}>
                      {c.cell(r)}
                    </td>
                  ),
                )}
                {actions ? <td className="row-actions">{actions(r)}</td> : null}
              </tr>
            ))}
          </tbody>
        </table>
      </TableWrap>
      {more?.hasMore || more?.onNewest ? (
        <div className="table-more">
          {more.hasMore ? (
            <button type="button" onClick={more.onMore} disabled={more.busy}>
              {more.busy ? 'Loading…' : (more.label ?? 'Load more')}
            </button>
          ) : null}
          {more.onNewest ? (
            <button type="button" onClick={more.onNewest}>
              Back to the newest
            </button>
          ) : null}
        </div>
      ) : null}
    </>
  );
}
