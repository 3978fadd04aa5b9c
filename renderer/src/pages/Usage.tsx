// Usage: requests, tokens and internal cost by team / user / app / model / key over a period.
import { useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Tooltip, XAxis, YAxis } from 'recharts';
import { ChartCard } from '../components/chart';
import { get, type RequestRow, type UsageBody } from '../api';
import { useResource } from '../hooks';
import { EmptyState, LoadError, Loading, PageHeader, Section, SelectField, TableWrap, TextField, fmtCost, fmtInt, fmtMs, fmtTime } from '../components/ui';
import { saveBlob } from '../download';

const GROUPS = [
  { value: 'team', label: 'Team' },
  { value: 'user', label: 'User' },
  { value: 'app', label: 'App' },
  { value: 'model', label: 'Model' },
  { value: 'key', label: 'Key' },
  { value: 'endpoint', label: 'Endpoint' },
  { value: 'session', label: 'Workflow session' },
];
const PERIODS = [
  { value: '1h', label: 'Last hour', ms: 3_600_000 },
  { value: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { value: '30d', label: 'Last 30 days', ms: 30 * 86_400_000 },
  { value: 'all', label: 'All time', ms: 0 },
  { value: 'custom', label: 'Custom…', ms: 0 },
];

/** "2027-01-31T09:30" for a datetime-local input, in local time. */
function localInput(t: number): string {
  const d = new Date(t - new Date(t).getTimezoneOffset() * 60_000);
  return d.toISOString().slice(0, 16);
}

export function csvOf(rows: (string | number | null)[][]): string {
  const cell = (v: string | number | null) => {
    if (v === null) return '';
    if (typeof v === 'number') return String(v);
    // a leading = + - @ would make a spreadsheet evaluate the cell: prefix it with '
    const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return rows.map((r) => r.map(cell).join(',')).join('\r\n') + '\r\n';
}

function download(name: string, text: string): void {
  saveBlob(name, new Blob([text], { type: 'text/csv;charset=utf-8' }));
}

export function UsagePage() {
  const [group, setGroup] = useState('team');
  const [period, setPeriod] = useState('24h');
  const [from, setFrom] = useState(() => localInput(Date.now() - 7 * 86_400_000));
  const [to, setTo] = useState(() => localInput(Date.now()));
  const p = PERIODS.find((x) => x.value === period)!;
  const custom = period === 'custom';
  const fromMs = custom ? Date.parse(from) : undefined;
  const toMs = custom ? Date.parse(to) : undefined;
  const badRange = custom && (!Number.isFinite(fromMs!) || !Number.isFinite(toMs!) || fromMs! >= toMs!);

  const usage = useResource(
    (s) => {
      if (badRange) return Promise.resolve(undefined);
      const q = new URLSearchParams({ group_by: group });
      if (custom) {
        q.set('from', new Date(fromMs!).toISOString());
        q.set('to', new Date(toMs!).toISOString());
      } else if (p.ms) q.set('from', new Date(Date.now() - p.ms).toISOString());
      return get<UsageBody>(`/usage?${q}`, s);
    },
    [group, period, from, to],
    custom ? undefined : 5000,
  );
  const recent = useResource((s) => get<{ data: RequestRow[] }>('/usage/requests?limit=25', s), [], 5000);
  const rows = useMemo(() => usage.data?.data ?? [], [usage.data]);
  const groupLabel = GROUPS.find((g) => g.value === group)!.label;
  const name = (g: string | null) => g ?? '(none)';

  const totals = useMemo(
    () =>
      rows.reduce(
        (t, r) => ({
          requests: t.requests + r.requests,
          errors: t.errors + r.errors,
          prompt: t.prompt + r.prompt_tokens,
          completion: t.completion + r.completion_tokens,
          total: t.total + r.total_tokens,
          cost: t.cost + r.cost,
        }),
        { requests: 0, errors: 0, prompt: 0, completion: 0, total: 0, cost: 0 },
      ),
    [rows],
  );

  const exportCsv = () => {
    const header = [groupLabel.toLowerCase(), 'requests', 'errors', 'prompt_tokens', 'completion_tokens', 'total_tokens', 'estimated_requests', 'cost', 'avg_latency_ms'];
    const body = rows.map((r) => [r.group, r.requests, r.errors, r.prompt_tokens, r.completion_tokens, r.total_tokens, r.estimated_requests, r.cost, r.avg_latency_ms]);
    const span = custom ? `${from}_${to}` : period;
    download(`airlock-usage-by-${group}-${span.replace(/[:]/g, '')}.csv`, csvOf([header, ...body]));
  };

  const chartData = rows.slice(0, 15).map((r) => ({ name: name(r.group), prompt: r.prompt_tokens ?? 0, completion: r.completion_tokens ?? 0 }));

  return (
    <>
      <PageHeader
        title="Usage"
        intro="Who used which model, how many tokens, at what internal cost. Prices come from each model’s settings; estimated counts are marked."
        actions={
          <button type="button" onClick={exportCsv} disabled={!rows.length}>
            Export CSV
          </button>
        }
      />
      <div className="card filters" role="group" aria-label="Usage filters">
        <SelectField id="usage-group" label="Group by" value={group} onChange={setGroup} options={GROUPS} />
        <SelectField id="usage-period" label="Period" value={period} onChange={setPeriod} options={PERIODS.map(({ value, label }) => ({ value, label }))} />
        {custom ? (
          <>
            <TextField id="usage-from" type="datetime-local" label="From" value={from} onChange={setFrom} error={badRange ? 'must be before “To”' : undefined} />
            <TextField id="usage-to" type="datetime-local" label="To" value={to} onChange={setTo} />
          </>
        ) : null}
      </div>
      <LoadError error={usage.error} retry={usage.reload} />
      {usage.loading ? <Loading what="usage" /> : null}
      {usage.data && rows.length === 0 ? (
        <EmptyState title="No requests in this period">
          <p>
            Once apps call the gateway with a key, their requests show up here by team, user, app and model. Attribute end users with the request’s{' '}
            <code>user</code> field or the <code>x-airlock-user</code> header.
          </p>
        </EmptyState>
      ) : null}
      {rows.length ? (
        <>
          <ChartCard
            title={`Tokens by ${groupLabel.toLowerCase()}`}
            id="usage-chart"
            height={Math.max(140, chartData.length * 40 + 70)}
            rows={chartData}
            rowHeader={{ label: groupLabel, value: (r) => r.name }}
            columns={[
              { label: 'Prompt tokens', value: (r) => fmtInt(r.prompt), num: true },
              { label: 'Completion tokens', value: (r) => fmtInt(r.completion), num: true },
            ]}
            caption={`${fmtInt(totals.total)} tokens in ${fmtInt(totals.requests)} request${totals.requests === 1 ? '' : 's'}${rows.length > 15 ? '; the 15 largest are shown' : ''}.`}
          >
            <BarChart data={chartData} layout="vertical" margin={{ top: 8, right: 16, bottom: 0, left: 8 }}>
              <CartesianGrid stroke="#e5e8ee" horizontal={false} />
              <XAxis type="number" allowDecimals={false} tick={{ fontSize: 11 }} />
              <YAxis type="category" dataKey="name" width={140} tick={{ fontSize: 12 }} />
              <Tooltip />
              <Legend />
              <Bar dataKey="prompt" name="Prompt tokens" stackId="t" fill="#2358d4" maxBarSize={28} isAnimationActive={false} />
              <Bar dataKey="completion" name="Completion tokens" stackId="t" fill="#0b7d60" maxBarSize={28} isAnimationActive={false} />
            </BarChart>
          </ChartCard>
          <TableWrap label="Usage table" card>
            <table data-testid="usage-table">
              <caption className="sr-only">Usage by {groupLabel.toLowerCase()}</caption>
              <thead>
                <tr>
                  <th scope="col">{groupLabel}</th>
                  <th scope="col" className="num">Requests</th>
                  <th scope="col" className="num">Errors</th>
                  <th scope="col" className="num">Prompt tokens</th>
                  <th scope="col" className="num">Completion tokens</th>
                  <th scope="col" className="num">Total tokens</th>
                  <th scope="col" className="num">Cost</th>
                  <th scope="col" className="num">Avg latency</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={String(r.group)}>
                    <th scope="row">{r.group ?? <span className="muted">(none)</span>}</th>
                    <td className="num">{fmtInt(r.requests)}</td>
                    <td className="num">{fmtInt(r.errors)}</td>
                    <td className="num">{fmtInt(r.prompt_tokens)}</td>
                    <td className="num">{fmtInt(r.completion_tokens)}</td>
                    <td className="num">
                      {fmtInt(r.total_tokens)}
                      {r.estimated_requests ? (
                        // explained in text below the table too: a hover tooltip alone is out of reach of keyboard and touch
                        <span className="cell-note" title="Some counts are estimated: the server did not report usage">
                          {' '}
                          <span aria-hidden="true">≈</span>
                          <span className="sr-only">(estimated)</span>
                        </span>
                      ) : null}
                    </td>
                    <td className="num">{fmtCost(r.cost)}</td>
                    <td className="num">{fmtMs(r.avg_latency_ms)}</td>
                  </tr>
                ))}
              </tbody>
              <tfoot>
                <tr>
                  <th scope="row">Total</th>
                  <td className="num">{fmtInt(totals.requests)}</td>
                  <td className="num">{fmtInt(totals.errors)}</td>
                  <td className="num">{fmtInt(totals.prompt)}</td>
                  <td className="num">{fmtInt(totals.completion)}</td>
                  <td className="num">{fmtInt(totals.total)}</td>
                  <td className="num">{fmtCost(totals.cost)}</td>
                  <td />
                </tr>
              </tfoot>
            </table>
          </TableWrap>
          {rows.some((r) => r.estimated_requests) ? (
            <p className="hint" data-testid="usage-estimated-note">
              <span aria-hidden="true">≈</span> marks rows with estimated counts: the model server did not report token usage for some of their requests.
            </p>
          ) : null}
        </>
      ) : null}
      <Section title="Latest requests">
        {recent.data && recent.data.data.length === 0 ? <p className="muted">None yet.</p> : null}
        {recent.data?.data.length ? (
          <TableWrap label="Latest requests">
            <table className="compact">
              <thead>
                <tr>
                  <th scope="col">Time</th>
                  <th scope="col">Key</th>
                  <th scope="col">Team</th>
                  <th scope="col">Model</th>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">Tokens</th>
                  <th scope="col" className="num">Latency</th>
                </tr>
              </thead>
              <tbody>
                {recent.data.data.map((r) => (
                  <tr key={r.request_id}>
                    <td>{fmtTime(r.ts)}</td>
                    <td>{r.key_name ?? '—'}</td>
                    <td>{r.team ?? '—'}</td>
                    <td>{r.alias ?? r.requested_model ?? '—'}</td>
                    <td>{r.endpoint ?? '—'}</td>
                    <td>
                      <span className={r.status >= 400 ? 'bad-text' : ''}>{r.status}</span>
                      {r.error_class ? <span className="cell-note"> {r.error_class}</span> : null}
                    </td>
                    <td className="num">{fmtInt(r.prompt_tokens + r.completion_tokens)}</td>
                    <td className="num">{fmtMs(r.latency_ms)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
      </Section>
    </>
  );
}
