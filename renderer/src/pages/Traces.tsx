// Traces: the workflows (x-airlock-session) with their steps, and one workflow as a waterfall —
// every model call and tool call in order with its attempts (which target, why it fell back),
// waits for a slot, guardrail decisions, time to first token, tokens and cost, and errors marked
// where they started (an attempt, a guardrail) and where they surfaced (the step's answer).
// One trace on its own, by the address: /traces?request=ID (the Usage page's "trace" link: the
// trace of that request, whatever store holds it) or /traces?trace=ID, in the same waterfall.
import { useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import { ApiError, enc, get, type SessionSummary, type SessionsBody, type Trace, type TraceSpan, type TracesBody } from '../api';
import { useResource } from '../hooks';
import { Link, useSearch } from '../router';
import { Badge, EmptyState, LoadError, Loading, PageHeader, SelectField, TableWrap, TextField, fmtCost, fmtInt, fmtMs, fmtTime } from '../components/ui';

const PERIODS = [
  { value: '1h', label: 'Last hour', ms: 3_600_000 },
  { value: '24h', label: 'Last 24 hours', ms: 86_400_000 },
  { value: '7d', label: 'Last 7 days', ms: 7 * 86_400_000 },
  { value: 'all', label: 'All stored', ms: 0 },
];
const STATUSES = [
  { value: '', label: 'Any' },
  { value: 'error', label: 'With errors' },
  { value: 'ok', label: 'Without errors' },
];

export function TracesPage() {
  const q = new URLSearchParams(useSearch());
  const request = q.get('request');
  const trace = q.get('trace');
  if (request) return <SingleTrace key={`r-${request}`} requestId={request} />;
  if (trace) return <SingleTrace key={`t-${trace}`} traceId={trace} />;
  return <Workflows />;
}

function Workflows() {
  const [team, setTeam] = useState('');
  const [key, setKey] = useState('');
  const [model, setModel] = useState('');
  const [status, setStatus] = useState('');
  const [period, setPeriod] = useState('24h');
  const [open, setOpen] = useState<string | null>(() => new URLSearchParams(location.search).get('session'));
  /** opened by the user (not by the address): the workflow then takes the keyboard focus */
  const [picked, setPicked] = useState(false);

  const sessions = useResource(
    (s) => {
      const q = new URLSearchParams({ limit: '100' });
      if (team.trim()) q.set('team', team.trim());
      if (key.trim()) q.set('key', key.trim());
      if (model.trim()) q.set('model', model.trim());
      if (status) q.set('status', status);
      const p = PERIODS.find((x) => x.value === period)!;
      if (p.ms) q.set('from', new Date(Date.now() - p.ms).toISOString());
      return get<SessionsBody>(`/sessions?${q}`, s);
    },
    [team, key, model, status, period],
    10_000,
  );

  const show = (id: string) => {
    setOpen(id);
    setPicked(true);
    history.replaceState(history.state, '', `/traces?session=${enc(id)}`); // keeps the entry's index (router.tsx)
  };

  return (
    <>
      <PageHeader
        title="Traces"
        intro={
          <>
            Each workflow is the requests and tool calls an agent sent with the same <code>x-airlock-session</code> header. Open one to see every step in
            order: which target answered, what failed and why it fell back, waits, time to first token, tokens and cost.
          </>
        }
      />
      <div className="card filters" role="group" aria-label="Workflow filters">
        <TextField id="traces-team" label="Team" value={team} onChange={setTeam} />
        <TextField id="traces-key" label="Key or agent" value={key} onChange={setKey} />
        <TextField id="traces-model" label="Model" value={model} onChange={setModel} />
        <SelectField id="traces-status" label="Status" value={status} onChange={setStatus} options={STATUSES} />
        <SelectField id="traces-period" label="Period" value={period} onChange={setPeriod} options={PERIODS.map(({ value, label }) => ({ value, label }))} />
      </div>
      <LoadError error={sessions.error} retry={sessions.reload} />
      {sessions.loading ? <Loading what="workflows" /> : null}
      {sessions.data && sessions.data.data.length === 0 ? (
        <EmptyState title="No workflows here">
          <p>
            Send <code>x-airlock-session: SOME-ID</code> with every model call (and MCP tool call) of one agent run; the run then shows up here as one workflow.
            Traces are kept for <code>settings.telemetry.retention_hours</code>.
          </p>
        </EmptyState>
      ) : null}
      {sessions.data?.data.length ? <SessionTable rows={sessions.data.data} open={open} onOpen={show} /> : null}
      {open ? <SessionWaterfall session={open} focus={picked} /> : null}
    </>
  );
}

function SessionTable({ rows, open, onOpen }: { rows: SessionSummary[]; open: string | null; onOpen: (s: string) => void }) {
  return (
    <TableWrap label="Workflows" card>
      <table className="compact" data-testid="sessions-table">
        <caption className="sr-only">Workflows, latest activity first</caption>
        <thead>
          <tr>
            <th scope="col">Session</th>
            <th scope="col">Last activity</th>
            <th scope="col" className="num">Steps</th>
            <th scope="col" className="num">Model calls</th>
            <th scope="col" className="num">Tool calls</th>
            <th scope="col" className="num">Errors</th>
            <th scope="col" className="num">Tokens</th>
            <th scope="col" className="num">Cost</th>
            <th scope="col">Team</th>
            <th scope="col">Keys / agents</th>
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={r.session} aria-current={open === r.session ? 'true' : undefined}>
              <th scope="row">
                <button type="button" className="link-button mono" onClick={() => onOpen(r.session)} aria-label={`Open workflow ${r.session}`}>
                  {r.session}
                </button>
              </th>
              <td>{fmtTime(r.end)}</td>
              <td className="num">{fmtInt(r.steps)}</td>
              <td className="num">{fmtInt(r.model_calls)}</td>
              <td className="num">{fmtInt(r.tool_calls)}</td>
              <td className="num">{r.errors ? <span className="bad-text">{fmtInt(r.errors)}</span> : '0'}</td>
              <td className="num">{fmtInt(r.input_tokens + r.output_tokens)}</td>
              <td className="num">{fmtCost(r.cost)}</td>
              <td>{r.teams.join(', ') || '—'}</td>
              <td>{r.keys.join(', ') || '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </TableWrap>
  );
}

interface Row {
  span: TraceSpan;
  depth: number;
  step: number | undefined;
}

/** Steps (the spans with no parent in their trace, in time order) with their descendants beneath. */
export function waterfallRows(traces: Trace[]): Row[] {
  const rows: Row[] = [];
  const tops: { span: TraceSpan; trace: Trace }[] = [];
  for (const t of traces) {
    const ids = new Set(t.spans.map((s) => s.span_id));
    for (const s of t.spans) if (!s.parent_span_id || !ids.has(s.parent_span_id)) tops.push({ span: s, trace: t });
  }
  tops.sort((a, b) => a.span.start_ms - b.span.start_ms);
  let step = 0;
  const walk = (t: Trace, s: TraceSpan, depth: number) => {
    rows.push({ span: s, depth, step: depth === 0 ? ++step : undefined });
    const kids = t.spans.filter((c) => c.parent_span_id === s.span_id).sort((a, b) => a.start_ms - b.start_ms);
    for (const k of kids) walk(t, k, depth + 1);
  };
  for (const { span, trace } of tops) walk(trace, span, 0);
  return rows;
}

const KIND_LABEL: Record<TraceSpan['kind'], string> = { model: 'Model call', tool: 'Tool call', attempt: 'Attempt', queue: 'Queue wait', guardrail: 'Guardrail' };

function num(a: TraceSpan['attributes'], k: string): number | undefined {
  const v = a[k];
  return typeof v === 'number' ? v : undefined;
}

/** What a span says in words: routing, latency breakdown, tokens, why it failed. */
function details(s: TraceSpan): string[] {
  const a = s.attributes;
  const out: string[] = [];
  if (s.kind === 'model') {
    if (a['airlock.endpoint']) out.push(`served by ${String(a['airlock.endpoint'])} (${String(a['gen_ai.response.model'] ?? '?')})`);
    const attempts = num(a, 'airlock.attempts');
    if (attempts && attempts > 1) out.push(`${attempts} attempts`);
    if (a['airlock.routing_rule']) out.push(`rule ${String(a['airlock.routing_rule'])}`);
    const ttft = num(a, 'airlock.time_to_first_token_ms');
    if (ttft !== undefined) out.push(`first token ${fmtMs(ttft)}, generation ${fmtMs(Math.max(0, s.duration_ms - ttft))}`);
    const tin = num(a, 'gen_ai.usage.input_tokens');
    const tout = num(a, 'gen_ai.usage.output_tokens');
    if (tin !== undefined || tout !== undefined) out.push(`${fmtInt(tin ?? 0)} in / ${fmtInt(tout ?? 0)} out tokens${a['airlock.usage.estimated'] ? ' (estimated)' : ''}`);
    const cost = num(a, 'airlock.cost');
    if (cost) out.push(`cost ${fmtCost(cost)}`);
    const fin = a['gen_ai.response.finish_reasons'];
    if (Array.isArray(fin) && fin.length) out.push(`finished: ${fin.join(', ')}`);
  } else if (s.kind === 'attempt') {
    out.push(`${String(a['airlock.endpoint'])} · ${String(a['gen_ai.request.model'])}`);
    const q = num(a, 'airlock.queue_ms');
    if (q && q >= 1) out.push(`waited ${fmtMs(q)} for a slot`);
    const tfc = num(a, 'airlock.time_to_first_chunk_ms');
    if (tfc !== undefined) out.push(`first chunk ${fmtMs(tfc)}`);
    if (a['airlock.failover_reason']) out.push(`failed: ${String(a['airlock.failover_reason'])}`);
  } else if (s.kind === 'tool') {
    if (a['airlock.mcp.server']) out.push(`server ${String(a['airlock.mcp.server'])}`);
    if (a['gen_ai.agent.name']) out.push(`agent ${String(a['gen_ai.agent.name'])}`);
    if (a['airlock.tool.is_error']) out.push('the tool answered with an error');
  } else if (s.kind === 'guardrail') {
    out.push(`${String(a['airlock.guardrail.direction'] ?? '')} ${String(a['airlock.guardrail.action'] ?? '')} (${String(a['airlock.guardrail.mode'] ?? '')})`.trim());
    if (a['airlock.guardrail.count'] !== undefined) out.push(`${String(a['airlock.guardrail.count'])} found`);
    if (a['airlock.guardrail.blocked']) out.push('blocked');
  }
  if (s.status.code === 'error' && s.kind !== 'attempt') {
    const status = a['http.response.status_code'];
    out.push(`error${status ? ` ${String(status)}` : ''}: ${s.status.message ?? String(a['error.type'] ?? '')}`);
  }
  return out;
}

function SessionWaterfall({ session, focus }: { session: string; focus: boolean }) {
  const traces = useResource((s) => get<TracesBody>(`/traces?session=${enc(session)}`, s), [session]);
  return (
    <Waterfall
      title={`Workflow ${session}`}
      what="workflow"
      caption={`Every step of workflow ${session} in order, with its attempts, waits and guardrail decisions beneath it`}
      focus={focus}
      traces={traces.data?.data}
      error={traces.error}
      loading={traces.loading}
      reload={traces.reload}
      empty="No spans are stored for this session (they may be older than the retention period)."
      about={
        traces.data?.truncated ? (
          <p className="hint" data-testid="workflow-truncated">
            This workflow is longer than one view holds: its first steps are shown, up to the same time in every store.
          </p>
        ) : null
      }
    />
  );
}

/** One trace on its own: a request's (by its request id) or one by its trace id. A trace that is
 * not stored shows why, as the API says it. */
function SingleTrace({ requestId, traceId }: { requestId?: string; traceId?: string }) {
  const path = requestId !== undefined ? `/usage/requests/${enc(requestId)}/trace` : `/traces/${enc(traceId ?? '')}`;
  const trace = useResource((s) => get<Trace>(path, s), [path]);
  const missing = trace.error instanceof ApiError && (trace.error.status === 404 || trace.error.status === 400) ? trace.error.message : undefined;
  const t = trace.data;
  const shown = useMemo(() => (missing !== undefined ? [] : t ? [t] : undefined), [missing, t]);
  // the request's own span, marked in the waterfall (a client's traceparent may have joined others to its trace)
  const own = requestId !== undefined ? t?.spans.find((s) => s.attributes['airlock.request_id'] === requestId.toLowerCase())?.span_id : undefined;
  const session = t?.spans.find((s) => s.session)?.session;
  const title = requestId !== undefined ? `Trace of request ${requestId}` : `Trace ${traceId ?? ''}`;
  return (
    <>
      <PageHeader
        title="Traces"
        intro={
          requestId !== undefined
            ? 'The trace of one request: its model call, every upstream attempt, waits and guardrail decisions, and any other request that joined the same trace.'
            : 'One trace: its steps with their attempts, waits and guardrail decisions.'
        }
        actions={<Link to="/traces">All workflows</Link>}
      />
      <Waterfall
        title={title}
        what="trace"
        caption={`${title}: every step in order, with its attempts, waits and guardrail decisions beneath it`}
        focus={false}
        traces={shown}
        error={missing !== undefined ? undefined : trace.error}
        loading={trace.loading}
        reload={trace.reload}
        empty={missing ?? 'This trace has no spans.'}
        current={own}
        about={
          t ? (
            <p className="hint" data-testid="trace-about">
              Trace id <span className="mono">{t.trace_id}</span>
              {session ? (
                <>
                  {' '}
                  · workflow <Link to={`/traces?session=${enc(session)}`}>{session}</Link>
                </>
              ) : null}
            </p>
          ) : null
        }
      />
    </>
  );
}

function Waterfall({
  title,
  what,
  caption,
  focus,
  traces,
  error,
  loading,
  reload,
  empty,
  current,
  about,
}: {
  title: string;
  /** what the bars are within: "workflow" or "trace" */
  what: string;
  caption: string;
  focus: boolean;
  traces: Trace[] | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
  /** said when there are no spans */
  empty: string;
  /** a span to mark (a request's own, in its trace) */
  current?: string;
  about?: ReactNode;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => {
    if (focus) heading.current?.focus();
  }, [title, focus]);
  const rows = useMemo(() => waterfallRows(traces ?? []), [traces]);
  const t0 = rows.length ? Math.min(...rows.map((r) => r.span.start_ms)) : 0;
  const t1 = rows.length ? Math.max(...rows.map((r) => r.span.end_ms)) : 1;
  const total = Math.max(1, t1 - t0);
  const steps = rows.filter((r) => r.depth === 0).length;
  return (
    <section className="card" aria-labelledby="workflow-title" id="workflow">
      <div className="card-head">
        <h2 id="workflow-title" tabIndex={-1} ref={heading}>
          {title}
        </h2>
      </div>
      {about}
      <LoadError error={error} retry={reload} />
      {loading ? <Loading what={`the ${what}`} /> : null}
      {traces && rows.length === 0 ? (
        <p className="muted" role="status" data-testid="waterfall-empty">
          {empty}
        </p>
      ) : null}
      {rows.length ? (
        <>
          <p className="hint">
            {steps} step{steps === 1 ? '' : 's'} over {fmtMs(total)}, from {fmtTime(t0)}. Bars show when each span ran within the {what}.
          </p>
          <TableWrap label="Workflow waterfall">
            <table className="compact waterfall" data-testid="waterfall">
              <caption className="sr-only">{caption}</caption>
              <thead>
                <tr>
                  <th scope="col" className="num">Step</th>
                  <th scope="col">Span</th>
                  <th scope="col" className="num">Starts at</th>
                  <th scope="col" className="num">Duration</th>
                  <th scope="col" className="wf-bar-col">
                    Timeline
                  </th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {rows.map(({ span: s, depth, step }) => {
                  const failed = s.status.code === 'error';
                  const left = ((s.start_ms - t0) / total) * 100;
                  const width = Math.max(0.4, (s.duration_ms / total) * 100);
                  return (
                    <tr
                      key={`${s.trace_id}-${s.span_id}`}
                      className={`wf-${s.kind}${failed ? ' wf-failed' : ''}`}
                      data-kind={s.kind}
                      data-span-id={s.span_id}
                      aria-current={current === s.span_id ? 'true' : undefined}
                    >
                      <td className="num">{step ?? ''}</td>
                      <th scope="row" style={{ paddingLeft: `${0.6 + depth * 1.4}rem` }}>
                        <span className="sr-only">{depth ? `${KIND_LABEL[s.kind]} of step: ` : `${KIND_LABEL[s.kind]}: `}</span>
                        <span className={depth ? 'wf-child' : 'wf-step'}>{s.name}</span>{' '}
                        {failed ? <Badge tone="bad">{depth ? 'failed' : 'error'}</Badge> : null}
                        {current === s.span_id ? <Badge tone="info">this request</Badge> : null}
                      </th>
                      <td className="num">+{fmtMs(s.start_ms - t0)}</td>
                      <td className="num">{fmtMs(s.duration_ms)}</td>
                      <td className="wf-bar-col" aria-hidden="true">
                        <div className="wf-track">
                          <div className="wf-bar" style={{ left: `${Math.min(left, 99.6)}%`, width: `${Math.min(width, 100 - Math.min(left, 99.6))}%` }} />
                        </div>
                      </td>
                      <td className={failed ? 'bad-text' : undefined}>{details(s).join(' · ')}</td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </TableWrap>
        </>
      ) : null}
    </section>
  );
}
