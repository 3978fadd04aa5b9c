// Overview: traffic, errors, tokens and latency over time, and the health of every endpoint.
// Refreshes every few seconds.
import { useMemo, useState } from 'react';
import { Area, AreaChart, Bar, BarChart, CartesianGrid, Legend, Line, LineChart, Tooltip, XAxis, YAxis } from 'recharts';
import { ChartCard, type DataColumn } from '../components/chart';
import { get, type BudgetsBody, type HealthBody, type RequestRow, type StatusBody, type Timeseries, type UsageBody } from '../api';
import { useResource } from '../hooks';
import { Badge, EmptyState, LoadError, Loading, PageHeader, Section, SelectField, fmtCost, fmtInt, fmtMs, TableWrap, fmtTime } from '../components/ui';
import { Link } from '../router';
import { WINDOWS, monthStart, summarize, toBuckets, windowQuery, type WindowId } from '../metrics';
import { useAuth } from '../auth';

export const POLL_MS = 5000;

/** the "Show data" tables: one row per interval */
const TIME_COLUMN: DataColumn<{ label: string }> = { label: 'Interval starting', value: (b) => b.label };

export function healthBadge(e: { healthy?: boolean; last_check_at?: string | null; last_check_error?: string | null } | undefined) {
  if (!e || e.healthy === undefined) return <Badge tone="muted">unknown</Badge>;
  if (!e.healthy) return <Badge tone="bad" title={e.last_check_error ?? undefined}>down</Badge>;
  if (!e.last_check_at) return <Badge tone="info" title="No health check has run yet">not checked</Badge>;
  return <Badge tone="ok">healthy</Badge>;
}

export function breakerBadge(state: string) {
  const tone = state === 'closed' ? 'ok' : state === 'open' ? 'bad' : 'warn';
  return <Badge tone={tone}>{state}</Badge>;
}

export function dataUrlOf(s: StatusBody | undefined): string | undefined {
  return s?.listen?.data;
}

function timeLabel(t: number, step: number): string {
  const d = new Date(t);
  return step >= 60 * 60_000 ? d.toLocaleString([], { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' }) : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', ...(step < 60_000 ? { second: '2-digit' } : {}) });
}

export function OverviewPage() {
  const [win, setWin] = useState<WindowId>('1h');
  const { canWrite } = useAuth();
  const w = WINDOWS.find((x) => x.id === win)!;
  // The gateway buckets the whole ledger for the period (recomputed from "now" on every refresh).
  const series = useResource(
    (s) => {
      const q = windowQuery(w, Date.now());
      return get<Timeseries>(`/usage/timeseries?from=${q.from}&to=${q.to}&buckets=${q.buckets}`, s);
    },
    [win],
    POLL_MS,
  );
  // Has the gateway ever served a request? (decides the "No requests yet" guide)
  const latest = useResource((s) => get<{ data: RequestRow[] }>('/usage/requests?limit=1', s), [], POLL_MS);
  const health = useResource((s) => get<HealthBody>('/health', s), [], POLL_MS);
  const status = useResource((s) => get<StatusBody>('/status', s), []);

  const ts = series.data;
  const view = useMemo(() => {
    if (!ts) return undefined;
    const step = ts.bucket_ms;
    return { buckets: toBuckets(ts).map((b) => ({ ...b, label: timeLabel(b.t, step) })), summary: summarize(ts) };
  }, [ts]);

  const endpoints = health.data?.endpoints ?? [];
  const aliases = new Set((health.data?.targets ?? []).map((t) => t.alias));
  const rows = latest.data?.data;
  const everRequested = (rows?.length ?? 0) > 0 || (view?.summary.requests ?? 0) > 0;

  let next: React.ReactNode = null;
  if (health.data && endpoints.length === 0)
    next = (
      <EmptyState
        title="Start here: add a model server"
        action={
          canWrite ? (
            <Link className="button primary" to="/endpoints">
              Add an endpoint
            </Link>
          ) : undefined
        }
      >
        <p>
          Airlock sends requests to the model servers of your network (vLLM, llama.cpp, Ollama, LM Studio, TGI, LocalAI). Register one on the
          Endpoints page — “Discover” finds servers running on the usual ports.
        </p>
      </EmptyState>
    );
  else if (health.data && aliases.size === 0)
    next = (
      <EmptyState
        title="Next: create a model alias"
        action={
          canWrite ? (
            <Link className="button primary" to="/models">
              Create a model
            </Link>
          ) : undefined
        }
      >
        <p>A model alias is the name apps send as “model”, e.g. “chat”. It points at one or more endpoints and decides how to fall back between them.</p>
      </EmptyState>
    );
  else if (rows && !everRequested)
    next = (
      <EmptyState
        title="No requests yet"
        action={
          canWrite ? (
            <Link className="button primary" to="/keys">
              Create a key
            </Link>
          ) : undefined
        }
      >
        <p>Create a key for an app on “Teams &amp; keys”, then point the app at the gateway’s OpenAI-compatible API:</p>
        <pre className="snippet">
          {`curl ${dataUrlOf(status.data) ?? 'http://GATEWAY:4000'}/v1/chat/completions \\
  -H "Authorization: Bearer sk-airlock-…" -H "content-type: application/json" \\
  -d '{"model":"${[...aliases][0] ?? 'chat'}","messages":[{"role":"user","content":"Hello"}]}'`}
        </pre>
      </EmptyState>
    );

  const s = view?.summary;
  return (
    <>
      <PageHeader
        title="Overview"
        intro="Traffic through the gateway and the health of every model server. Updates every few seconds."
        actions={
          <SelectField id="overview-window" label="Period" value={win} onChange={(v) => setWin(v as WindowId)} options={WINDOWS.map((x) => ({ value: x.id, label: x.label }))} className="inline" />
        }
      />
      <LoadError error={series.error ?? health.error} />
      {next}
      {series.loading ? <Loading what="traffic" /> : null}
      {s && everRequested ? (
        <div className="stats" aria-label={`Totals, ${w.label.toLowerCase()}`} role="group">
          <Stat label="Requests" value={fmtInt(s.requests)} id="requests" />
          <Stat label="Errors" value={fmtInt(s.errors)} id="errors" sub={s.requests ? `${((s.errors / s.requests) * 100).toFixed(1)} %` : undefined} tone={s.errors ? 'bad' : undefined} />
          <Stat label="Tokens" value={fmtInt(s.tokens)} id="tokens" />
          <Stat label="Latency p50" value={fmtMs(s.p50)} id="p50" />
          <Stat label="Latency p99" value={fmtMs(s.p99)} id="p99" />
        </div>
      ) : null}
      {view && everRequested ? (
        <div className="chart-grid">
          <ChartCard
            title="Requests and errors"
            id="chart-requests"
            rows={view.buckets}
            rowHeader={TIME_COLUMN}
            columns={[
              { label: 'Requests', value: (b) => fmtInt(b.requests), num: true },
              { label: 'Errors', value: (b) => fmtInt(b.errors), num: true },
            ]}
            caption={`${fmtInt(s?.requests)} request${s?.requests === 1 ? '' : 's'}, ${fmtInt(s?.errors)} error${s?.errors === 1 ? '' : 's'}, ${w.label.toLowerCase()}.`}>
            <AreaChart data={view.buckets} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
              <CartesianGrid stroke="#e5e8ee" vertical={false} />
              <XAxis dataKey="label" tick={{ fontSize: 11 }} minTickGap={24} />
              <YAxis allowDecimals={false} width={40} tick={{ fontSize: 11 }} />
              <Tooltip />
              <Legend />
              <Area type="monotone" dataKey="requests" name="Requests" stroke="#2358d4" fill="#2358d4" fillOpacity={0.15} isAnimationActive={false} />
              <Area type="monotone" dataKey="errors" name="Errors" stroke="#c8322b" fill="#c8322b" fillOpacity={0.2} isAnimationActive={false} />
            </AreaChart>
          </ChartCard>
          <ChartCard
            title="Tokens"
            id="chart-tokens"
            rows={view.buckets}
            rowHeader={TIME_COLUMN}
            columns={[{ label: 'Tokens', value: (b) => fmtInt(b.tokens), num: true }]}
            caption={`${fmtInt(s?.tokens)} tokens (prompt + completion), ${w.label.toLowerCase()}.`}>
            <BarChart data={view.buckets} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
              <CartesianGrid stroke="#e5e8ee" vertical={false} />
              <XAxis dataKey="label" tick={{ fontSize: 11 }} minTickGap={24} />
              <YAxis allowDecimals={false} width={48} tick={{ fontSize: 11 }} />
              <Tooltip />
              <Legend />
              <Bar dataKey="tokens" name="Tokens" fill="#0b7d60" isAnimationActive={false} />
            </BarChart>
          </ChartCard>
          <ChartCard
            title="Latency"
            id="chart-latency"
            rows={view.buckets}
            rowHeader={TIME_COLUMN}
            columns={[
              { label: 'p50', value: (b) => fmtMs(b.p50), num: true },
              { label: 'p99', value: (b) => fmtMs(b.p99), num: true },
            ]}
            caption={`p50 ${fmtMs(s?.p50)}, p99 ${fmtMs(s?.p99)}, whole request, ${w.label.toLowerCase()}.`}>
            <LineChart data={view.buckets} margin={{ top: 8, right: 12, bottom: 0, left: 0 }}>
              <CartesianGrid stroke="#e5e8ee" vertical={false} />
              <XAxis dataKey="label" tick={{ fontSize: 11 }} minTickGap={24} />
              <YAxis width={48} tick={{ fontSize: 11 }} unit=" ms" />
              <Tooltip />
              <Legend />
              <Line type="monotone" dataKey="p50" name="p50" stroke="#2358d4" dot={{ r: 2 }} connectNulls isAnimationActive={false} />
              <Line type="monotone" dataKey="p99" name="p99" stroke="#b45f06" dot={{ r: 2 }} connectNulls isAnimationActive={false} />
            </LineChart>
          </ChartCard>
        </div>
      ) : null}
      <Section title="Endpoint health">
        {health.loading ? <Loading what="health" /> : null}
        {health.data && endpoints.length === 0 ? <p className="muted">No endpoints yet.</p> : null}
        {endpoints.length ? (
          <TableWrap label="Endpoint health">
            <table>
              <thead>
                <tr>
                  <th scope="col">Endpoint</th>
                  <th scope="col">Health</th>
                  <th scope="col">In flight</th>
                  <th scope="col">Last check</th>
                  <th scope="col">Breakers (model → target)</th>
                </tr>
              </thead>
              <tbody>
                {endpoints.map((e) => {
                  const ts = (health.data?.targets ?? []).filter((t) => t.endpoint === e.name);
                  return (
                    <tr key={e.name}>
                      <th scope="row">{e.name}</th>
                      <td>
                        {healthBadge(e)}
                        {e.last_check_error ? <div className="cell-note">{e.last_check_error}</div> : null}
                      </td>
                      <td>{fmtInt(e.inflight)}</td>
                      <td>{fmtTime(e.last_check_at)}</td>
                      <td>
                        {ts.length === 0 ? <span className="muted">not used by any model</span> : null}
                        <ul className="plain">
                          {ts.map((t) => (
                            <li key={t.alias + t.id}>
                              {t.alias} → {t.model} {breakerBadge(t.breaker)}
                              {t.consecutive_failures ? <span className="cell-note"> {t.consecutive_failures} failures in a row</span> : null}
                            </li>
                          ))}
                        </ul>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
      </Section>
      <TopSpenders />
    </>
  );
}

/** The teams that spent most this month, with the state of their budget. */
function TopSpenders() {
  const from = monthStart();
  const usage = useResource((s) => get<UsageBody>(`/usage/summary?group_by=team&from=${from}`, s), [from], POLL_MS * 3);
  const budgets = useResource((s) => get<BudgetsBody>('/budgets', s), [], POLL_MS * 3);
  const top = [...(usage.data?.data ?? [])].filter((r) => r.cost > 0).sort((a, b) => b.cost - a.cost).slice(0, 5);
  const unit = usage.data?.cost_unit ?? 'USD';
  return (
    <Section title="Top spenders this month" actions={<Link to="/budgets">All budgets</Link>}>
      <LoadError error={usage.error} retry={usage.reload} />
      {usage.data && top.length === 0 ? <p className="muted">Nothing spent this month yet (models without a price cost nothing).</p> : null}
      {top.length ? (
        <TableWrap label="Top spenders this month">
          <table>
            <thead>
              <tr>
                <th scope="col">Team</th>
                <th scope="col">Cost ({unit})</th>
                <th scope="col">Requests</th>
                <th scope="col">Team budget</th>
              </tr>
            </thead>
            <tbody>
              {top.map((r) => {
                const b = budgets.data?.data.find((x) => x.scope === 'team' && x.name === r.group);
                return (
                  <tr key={r.group ?? '(none)'}>
                    <th scope="row">{r.group ?? <span className="muted">(no team)</span>}</th>
                    <td>{fmtCost(r.cost)}</td>
                    <td>{fmtInt(r.requests)}</td>
                    <td>{b ? <Badge tone={b.status === 'exceeded' ? 'bad' : b.status === 'warning' ? 'warn' : 'ok'}>{`${b.status}, ${b.used_percent}% used`}</Badge> : <span className="muted">none</span>}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </Section>
  );
}

function Stat({ label, value, id, sub, tone }: { label: string; value: string; id: string; sub?: string; tone?: 'bad' }) {
  return (
    <div className={`stat ${tone ?? ''}`} role="group" aria-labelledby={`stat-${id}-label`}>
      <span className="stat-label" id={`stat-${id}-label`}>
        {label}
      </span>
      <span className="stat-value" data-testid={`stat-${id}`}>
        {value}
      </span>
      {sub ? <span className="stat-sub">{sub}</span> : null}
    </div>
  );
}
