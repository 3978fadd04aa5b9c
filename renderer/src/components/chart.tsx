// A chart in a card: one named tab stop (recharts' keyboard layer: arrow keys move through the
// points), a text alternative (the caption, also the chart's description), and its numbers as a
// table behind "Show data".
import { cloneElement, useEffect, useRef, type ReactElement, type ReactNode } from 'react';
import { ResponsiveContainer } from 'recharts';
import { TableWrap } from './ui';

export interface DataColumn<Row> {
  label: string;
  value: (r: Row) => ReactNode;
  num?: boolean;
}

export function ChartCard<Row>({
  title,
  caption,
  id,
  height = 220,
  children,
  rows,
  rowHeader,
  columns,
}: {
  title: string;
  caption: string;
  /** data-testid, and the base of the element ids */
  id: string;
  height?: number;
  children: ReactElement<{ title?: string; desc?: string }>;
  rows: Row[];
  /** the first column: what each row is (a time, a team …) */
  rowHeader: DataColumn<Row>;
  columns: DataColumn<Row>[];
}) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    // only the chart's root is a tab stop: nothing inside it may take the focus by Tab (Chromium
    // makes recharts' z-index layer groups, direct children of the svg, tab stops of their own)
    const fix = () => {
      for (const f of el.querySelectorAll<HTMLElement | SVGElement>('svg.recharts-surface > g, svg.recharts-surface [tabindex]'))
        if (f.getAttribute('tabindex') !== '-1') f.setAttribute('tabindex', '-1');
    };
    fix();
    const mo = new MutationObserver(fix);
    mo.observe(el, { subtree: true, childList: true, attributes: true, attributeFilter: ['tabindex'] });
    return () => mo.disconnect();
  }, []);
  return (
    <figure className="card chart" data-testid={id} aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>{title}</h2>
      <div className="chart-box" ref={box}>
        <ResponsiveContainer width="100%" height={height}>
          {/* the svg's <title> and <desc>: its name and its text alternative */}
          {cloneElement(children, { title: `${title} chart`, desc: caption })}
        </ResponsiveContainer>
      </div>
      <figcaption className="hint">{caption}</figcaption>
      <details className="chart-data">
        <summary>
          Show data<span className="sr-only">: {title}</span>
        </summary>
        <TableWrap label={`${title} data`}>
          <table className="compact" data-testid={`${id}-table`}>
            <caption className="sr-only">{title}</caption>
            <thead>
              <tr>
                <th scope="col">{rowHeader.label}</th>
                {columns.map((c) => (
                  <th key={c.label} scope="col" className={c.num ? 'num' : undefined}>
                    {c.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={i}>
                  <th scope="row">{rowHeader.value(r)}</th>
                  {columns.map((c) => (
                    <td key={c.label} className={c.num ? 'num' : undefined}>
                      {c.value(r)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </TableWrap>
      </details>
    </figure>
  );
}
