// Usage: requests, tokens and internal cost by team / user / app / model / key over a period.
import { useEffect, useMemo, useState } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Tooltip, XAxis, YAxis } from 'recharts';
import { ChartCard } from '../components/chart';
import { enc, get, type RequestRow, type RequestsPage, type UsageBody } from '../api';
import { DataTable } from '../components/data-table';
import { useResource } from '../hooks';
import { Link } from '../router';
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
  { value: 'tag', label: 'Tag (x-airlock-tags)' },
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
  const [tag, setTag] = useState('');
  const badTag = tag.trim() !== '' && tag.indexOf('=') <= 0;
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
      if (badRange || badTag) return Promise.resolve(undefined);
      const q = new URLSearchParams({ group_by: group });
      if (tag.trim()) q.set('tag', tag.trim());
      if (custom) {
        q.set('from', new Date(fromMs!).toISOString());
        q.set('to', new Date(toMs!).toISOString());
      } else if (p.ms) q.set('from', new Date(Date.now() - p.ms).toISOString());
      return get<UsageBody>(`/usage?${q}`, s);
    },
    [group, period, from, to, tag],
    custom ? undefined : 5000,
  );
  const unit = usage.data?.cost_unit ?? 'USD';
  const rows = useMemo(() => usage.data?.data ?? [], [usage.data]);
  const groupLabel = GROUPS.find((g) => g.value === group)!.label.replace(/ \(.*\)$/, '');
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
        <TextField id="usage-tag" label="Only tag (key=value)" value={tag} onChange={setTag} placeholder="project=alpha" error={badTag ? 'must be key=value, e.g. project=alpha' : undefined} />
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
                  <th scope="col" className="num">Cost ({unit})</th>
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
      <LatestRequests />
    </>
  );
}

const OUTCOMES = [
  { value: '', label: 'All' },
  { value: 'ok', label: 'Succeeded' },
  { value: 'error', label: 'Failed' },
];

/** The latest requests, filtered, newest first, with "load more" (cursor paging). */
function LatestRequests() {
  const [filters, setFilters] = useState({ team: '', key: '', model: '', user: '', outcome: '' });
  const query = useMemo(() => {
    const q = new URLSearchParams({ limit: '25' });
    for (const [k, v] of Object.entries(filters)) if (v.trim()) q.set(k, v.trim());
    return q.toString();
  }, [filters]);
  // the first page stays live until "load more": from then on the list holds still (no row moves
  // between pages while new requests arrive) until "Back to the newest" or a filter change
  const first = useResource((s) => get<RequestsPage>(`/usage/requests?${query}`, s), [query], 5000);
  const [older, setOlder] = useState<{ rows: RequestRow[]; cursor: string | null; busy: boolean; error?: unknown }>({ rows: [], cursor: null, busy: false });
  useEffect(() => setOlder({ rows: [], cursor: null, busy: false }), [query]);
  const frozen = older.rows.length > 0;
  const cursor = frozen ? older.cursor : (first.data?.next_cursor ?? null);
  const shown = frozen ? older.rows : first.data?.data;
  const unit = first.data?.cost_unit ?? 'USD';
  const more = async () => {
    if (!cursor || !shown) return;
    const base = shown;
    setOlder((o) => ({ ...o, busy: true, error: undefined }));
    try {
      const p = await get<RequestsPage>(`/usage/requests?${query}&cursor=${encodeURIComponent(cursor)}`);
      setOlder({ rows: [...base, ...p.data], cursor: p.next_cursor, busy: false });
    } catch (e) {
      setOlder((o) => ({ ...o, busy: false, error: e }));
    }
  };
  const set = (f: keyof typeof filters) => (v: string) => setFilters((p) => ({ ...p, [f]: v }));
  return (
    <Section title="Latest requests">
      <div className="filters" role="group" aria-label="Filter the latest requests">
        <TextField id="req-team" label="Team" value={filters.team} onChange={set('team')} />
        <TextField id="req-key" label="Key" value={filters.key} onChange={set('key')} />
        <TextField id="req-model" label="Model" value={filters.model} onChange={set('model')} />
        <TextField id="req-user" label="User" value={filters.user} onChange={set('user')} />
        <SelectField id="req-outcome" label="Outcome" value={filters.outcome} onChange={set('outcome')} options={OUTCOMES} />
      </div>
      <LoadError error={first.error ?? older.error} retry={first.reload} />
      <DataTable
        label="Latest requests"
        testId="latest-requests"
        rows={shown}
        rowKey={(r) => r.request_id}
        empty={<p className="muted">{query.includes('&') ? 'No requests match these filters.' : 'None yet.'}</p>}
        more={{ hasMore: !!cursor, busy: older.busy, onMore: () => void more(), label: 'Load more requests', onNewest: frozen ? () => (setOlder({ rows: [], cursor: null, busy: false }), first.reload()) : undefined }}
        columns={[
          { header: 'Time', cell: (r) => fmtTime(r.ts), rowHeader: true },
          { header: 'Key', cell: (r) => r.key_name ?? '—' },
          { header: 'Team', cell: (r) => r.team ?? '—' },
          { header: 'User', cell: (r) => r.user ?? '—' },
          { header: 'Model', cell: (r) => r.alias ?? r.requested_model ?? '—' },
          { header: 'Endpoint', cell: (r) => r.endpoint ?? '—' },
          {
            header: 'Status',
            cell: (r) => (
              <>
                <span className={r.status >= 400 ? 'bad-text' : ''}>{r.status}</span>
                {r.error_class ? <span className="cell-note"> {r.error_class}</span> : null}
              </>
            ),
          },
          { header: 'Tokens', cell: (r) => fmtInt(r.prompt_tokens + r.completion_tokens), className: 'num' },
          { header: `Cost (${unit})`, cell: (r) => fmtCost(r.cost), className: 'num' },
          { header: 'Latency', cell: (r) => fmtMs(r.latency_ms), className: 'num' },
          {
            header: 'Trace',
            // the Traces page finds it by the request id, in whichever store holds it, or says why it is not stored
            cell: (r) => (
              <Link to={`/traces?request=${enc(r.request_id)}`} aria-label={`Trace of request ${r.request_id}`} title={`Request ${r.request_id}`}>
                trace
              </Link>
            ),
          },
        ]}
      />
      <p className="hint" role="status" aria-live="polite">
        {shown ? `${shown.length} request${shown.length === 1 ? '' : 's'} shown${frozen ? ' (paused: newer requests are not added)' : ''}.` : ''}
      </p>
    </Section>
  );
}
