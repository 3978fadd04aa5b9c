// Guardrails: the policies (what is checked, where, and what happens), a "try it" panel, hits
// per policy over time (shadow and enforced), and the most recent decisions. Never the matched
// text: the gateway records kinds and counts only.
import { useMemo, useState, type FormEvent } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Tooltip, XAxis, YAxis } from 'recharts';
import { BUILTIN_NAMES, GUARD_ACTIONS, GUARD_DIRECTIONS, GUARD_MODES, guardrailSchema, type GuardrailSpec } from '../../../gateway/config/schema';
import { api, enc, get, type FieldErrors, type GuardrailEventRow, type GuardrailHitSeries, type GuardrailTestResult, type ModelView, type TeamView } from '../api';
import { useAuth } from '../auth';
import { ChartCard } from '../components/chart';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { EditRemoveButtons, nameTaken, saveResource } from '../components/resource';
import { useResource } from '../hooks';
import {
  Badge,
  CheckboxField,
  ConfirmDialog,
  EmptyState,
  FormError,
  LoadError,
  Loading,
  NumberField,
  PageHeader,
  Section,
  SelectField,
  TextAreaField,
  TextField,
  fmtInt,
  fmtTime,
} from '../components/ui';

type Detector = GuardrailSpec['detectors'][number];

const BUILTIN_HINTS: Record<string, string> = {
  pii: 'all personal data below',
  email: 'e-mail addresses',
  phone: 'E.164 and national formats',
  card: 'payment cards (Luhn check)',
  iban: 'IBANs (mod-97 check)',
  ssn: 'US social security numbers',
  ip: 'IPv4 and IPv6 addresses',
  secrets: 'all secrets below',
  cloud_keys: 'AWS, Google, Azure keys',
  private_keys: 'PEM private keys',
  platform_tokens: 'GitHub, Slack, Stripe tokens',
  jwt: 'JSON Web Tokens',
  sk_keys: 'sk- API keys (Airlock’s too)',
  keylike_entropy: 'random values after api_key=, password: …',
  injection: 'prompt injection (score ≥ 0.5)',
};

function describeDetector(d: Detector): string {
  if (typeof d === 'string') return d;
  if (d.type === 'regex') return `regex ${d.label ?? 'CUSTOM'}`;
  if (d.type === 'keywords') return `keywords (${d.words.length})`;
  if (d.type === 'max_size') return `max ${fmtInt(d.chars)} chars`;
  if (d.type === 'response_schema') return 'response schema';
  if (d.type === 'guard_model') return `guard model ${d.model} (fails ${d.on_failure})`;
  return `injection ≥ ${d.threshold ?? 0.5}`;
}

/** "3 of 120 requests (2.5 %)", or the hit count where no request count applies (tool-only policies). */
function hitRate(p: GuardrailHitSeries['policies'][number]): string {
  if (p.requests === null) return `${fmtInt(p.total)} hit${p.total === 1 ? '' : 's'}`;
  const pct = p.requests ? ` (${((p.hit_requests / p.requests) * 100).toFixed(1)} %)` : '';
  return `${fmtInt(p.hit_requests)} of ${fmtInt(p.requests)} requests${pct}`;
}

/** decisions per page of "Recent decisions" */
const EVENTS_PAGE = 50;

function outcomeBadge(o: string) {
  const tone = o === 'blocked' ? 'bad' : o === 'redacted' ? 'warn' : o === 'shadow' ? 'muted' : 'info';
  return <Badge tone={tone}>{o}</Badge>;
}

export function GuardrailsPage() {
  const { canWrite } = useAuth();
  const policies = useResource((s) => get<{ data: GuardrailSpec[] }>('/guardrails', s), []);
  const models = useResource((s) => get<{ data: ModelView[] }>('/models', s), []);
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const summary = useResource((s) => get<GuardrailHitSeries>('/guardrail-events/summary?buckets=24', s), [], 30_000);
  const events = useResource((s) => get<{ data: GuardrailEventRow[] }>(`/guardrail-events?limit=${EVENTS_PAGE}`, s), [], 30_000);
  // the first page stays live until "load older": from then on the list holds still (no row moves
  // between pages while new decisions arrive) until "Back to the newest"
  const [older, setOlder] = useState<{ rows: GuardrailEventRow[]; hasMore: boolean; busy: boolean; error?: unknown }>({ rows: [], hasMore: false, busy: false });
  const frozen = older.rows.length > 0;
  const shownEvents = frozen ? older.rows : events.data?.data;
  const moreEvents = frozen ? older.hasMore : events.data?.data.length === EVENTS_PAGE;
  const loadOlder = async () => {
    const base = shownEvents;
    const last = base?.at(-1);
    if (!base || !last) return;
    setOlder((o) => ({ ...o, busy: true, error: undefined }));
    try {
      const p = await get<{ data: GuardrailEventRow[] }>(`/guardrail-events?limit=${EVENTS_PAGE}&before=${last.id}`);
      setOlder({ rows: [...base, ...p.data], hasMore: p.data.length === EVENTS_PAGE, busy: false });
    } catch (e) {
      setOlder((o) => ({ ...o, busy: false, error: e }));
    }
  };
  const [editing, setEditing] = useState<GuardrailSpec | 'new' | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const list = policies.data?.data ?? [];
  const hitsOf = (name: string) => summary.data?.policies.find((p) => p.policy === name);
  const reloadAll = () => {
    policies.reload();
    summary.reload();
    events.reload();
  };

  return (
    <>
      <PageHeader
        title="Guardrails"
        intro="Policies check what goes into a model and what comes out (and, for agents, tool arguments and results) with detectors that run inside Airlock. Start a policy in shadow mode to see its hit rate before you enforce it."
        actions={
          canWrite ? (
            <button type="button" className="primary" onClick={() => setEditing('new')}>
              Add policy
            </button>
          ) : null
        }
      />
      <Section title="Policies">
        <LoadError error={policies.error} retry={policies.reload} />
        {policies.loading ? <Loading what="policies" /> : null}
        <DataTable
          label="Guardrail policies"
          testId="guardrail-policies"
          rows={policies.data ? list : undefined}
          rowKey={(p) => p.name}
          empty={
            <EmptyState
              title="No guardrail policies yet"
              action={
                canWrite ? (
                  <button type="button" className="primary" onClick={() => setEditing('new')}>
                    Add policy
                  </button>
                ) : undefined
              }
            >
              <p>For example: redact personal data and secrets in prompts and answers (detectors “pii” and “secrets”, action “redact”), in shadow mode first.</p>
            </EmptyState>
          }
          columns={[
            {
              header: 'Policy',
              cell: (p) => (
                <>
                  {p.name}
                  {p.description ? <div className="cell-note">{p.description}</div> : null}
                </>
              ),
            },
            { header: 'Checks', cell: (p) => p.direction.join(', ') },
            { header: 'Detectors', cell: (p) => p.detectors.map(describeDetector).join(', ') },
            {
              header: 'Action',
              cell: (p) => (
                <>
                  {p.action} {p.disabled ? <Badge tone="muted">disabled</Badge> : p.mode === 'shadow' ? <Badge tone="info">shadow</Badge> : <Badge tone="ok">enforced</Badge>}
                </>
              ),
            },
            {
              header: 'Scope',
              cell: (p) =>
                p.scope
                  ? Object.entries(p.scope)
                      .filter(([, v]) => v?.length)
                      .map(([k, v]) => `${k}: ${v.join(', ')}`)
                      .join('; ') || 'everything'
                  : 'everything',
            },
            {
              header: 'Hit rate (24 h)',
              cell: (p) => {
                const h = hitsOf(p.name);
                return h ? hitRate(h) : '—';
              },
            },
          ]}
          actions={
            canWrite
              ? (p) => <EditRemoveButtons what="policy" name={p.name} removeVerb="Delete" onEdit={() => setEditing(p)} onRemove={() => setRemoving(p.name)} />
              : undefined
          }
        />
      </Section>

      <TryIt models={(models.data?.data ?? []).map((m) => m.name)} />

      <Section title="Hits over time">
        <LoadError error={summary.error} retry={summary.reload} />
        {summary.data ? <HitsChart series={summary.data} /> : null}
      </Section>

      <Section title="Recent decisions">
        <LoadError error={events.error ?? older.error} retry={events.reload} />
        <DataTable
          label="Recent guardrail decisions"
          testId="guardrail-events"
          rows={shownEvents}
          rowKey={(e) => String(e.id)}
          empty={<p className="muted">No guardrail has found anything yet.</p>}
          more={{ hasMore: moreEvents, busy: older.busy, onMore: () => void loadOlder(), label: 'Load older decisions', onNewest: frozen ? () => (setOlder({ rows: [], hasMore: false, busy: false }), events.reload()) : undefined }}
          columns={[
            { header: 'Time', cell: (e) => fmtTime(e.ts) },
            { header: 'Policy', cell: (e) => e.policy, rowHeader: true },
            {
              header: 'Checked',
              cell: (e) => (
                <>
                  {e.direction}
                  {e.complete ? null : <div className="cell-note">answer ended before the end was scanned</div>}
                </>
              ),
            },
            { header: 'Outcome', cell: (e) => outcomeBadge(e.outcome) },
            {
              header: 'Found',
              cell: (e) =>
                Object.entries(e.detectors)
                  .map(([k, n]) => `${k} ×${n}`)
                  .join(', '),
            },
            { header: 'Who', cell: (e) => [e.key, e.team, e.model].filter(Boolean).join(' · ') || '—' },
            { header: 'Request', cell: (e) => e.request_id ?? e.tool_call_id ?? '—', className: 'mono' },
          ]}
        />
        {frozen ? (
          <p className="hint" role="status" aria-live="polite">
            {`${older.rows.length} decisions shown (paused: newer decisions are not added).`}
          </p>
        ) : null}
      </Section>

      <FormDialog open={editing !== null} onClose={() => setEditing(null)} title={editing === 'new' ? 'Add guardrail policy' : `Edit policy ${editing?.name ?? ''}`} wide>
        {() => (
          <PolicyForm
            initial={editing === 'new' || editing === null ? undefined : editing}
            existing={list.map((p) => p.name)}
            models={(models.data?.data ?? []).map((m) => m.name)}
            teams={(teams.data?.data ?? []).map((t) => t.name)}
            onCancel={() => setEditing(null)}
            onSaved={() => {
              setEditing(null);
              reloadAll();
            }}
          />
        )}
      </FormDialog>
      <ConfirmDialog
        open={removing !== null}
        title={`Delete policy ${removing ?? ''}?`}
        body={<p>Requests are no longer checked by this policy. Its past decisions stay in the list of decisions.</p>}
        confirmLabel="Delete policy"
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          await api('DELETE', `/guardrails/${enc(removing!)}`);
          reloadAll();
        }}
      />
    </>
  );
}

function HitsChart({ series }: { series: GuardrailHitSeries }) {
  const rows = useMemo(() => {
    const n = series.policies[0]?.points.length ?? 0;
    return Array.from({ length: n }, (_, i) => {
      const ts = series.policies[0]!.points[i]!.ts;
      let shadow = 0;
      let enforced = 0;
      for (const p of series.policies) {
        shadow += p.points[i]!.shadow;
        enforced += p.points[i]!.enforced;
      }
      return { ts, label: new Date(ts).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }), shadow, enforced };
    });
  }, [series]);
  const total = series.policies.reduce((s, p) => s + p.total, 0);
  if (!total) return <p className="muted">No hits in the last 24 hours.</p>;
  return (
    <>
      <ChartCard
        title="Hits per hour, last 24 hours"
        id="guardrail-hits-chart"
        rows={rows}
        rowHeader={{ label: 'Hour', value: (r) => fmtTime(r.ts) }}
        columns={[
          { label: 'Enforced', value: (r) => fmtInt(r.enforced), num: true },
          { label: 'Shadow', value: (r) => fmtInt(r.shadow), num: true },
        ]}
        caption={`${fmtInt(total)} hit${total === 1 ? '' : 's'} by ${series.policies.filter((p) => p.total).length} polic${series.policies.filter((p) => p.total).length === 1 ? 'y' : 'ies'} in the last 24 hours.`}
      >
        <BarChart data={rows} margin={{ top: 8, right: 16, bottom: 0, left: 0 }}>
          <CartesianGrid stroke="#e5e8ee" vertical={false} />
          <XAxis dataKey="label" tick={{ fontSize: 11 }} />
          <YAxis allowDecimals={false} tick={{ fontSize: 11 }} width={40} />
          <Tooltip />
          <Legend />
          <Bar dataKey="enforced" name="Enforced" stackId="h" fill="#b42318" isAnimationActive={false} />
          <Bar dataKey="shadow" name="Shadow" stackId="h" fill="#6b7280" isAnimationActive={false} />
        </BarChart>
      </ChartCard>
      <DataTable
        label="Hits per policy"
        testId="guardrail-hits"
        caption="Hits per policy in the last 24 hours"
        rows={series.policies}
        rowKey={(p) => p.policy}
        columns={[
          { header: 'Policy', cell: (p) => p.policy },
          { header: 'Enforced', cell: (p) => fmtInt(p.enforced), className: 'num' },
          { header: 'Shadow', cell: (p) => fmtInt(p.shadow), className: 'num' },
          { header: 'Hit rate', cell: (p) => hitRate(p) },
        ]}
      />
    </>
  );
}

function TryIt({ models }: { models: string[] }) {
  const [text, setText] = useState('');
  const [direction, setDirection] = useState<string>('input');
  const [model, setModel] = useState('');
  const [result, setResult] = useState<GuardrailTestResult | null>(null);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setBusy(true);
    try {
      setResult(await api<GuardrailTestResult>('POST', '/guardrails/test', { text, direction, ...(model ? { scope: { model } } : {}) }));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const hits = result?.policies.filter((p) => p.findings.length) ?? [];
  const verdicts = result?.policies.flatMap((p) => p.guard_model.map((v) => ({ policy: p.policy, ...v }))) ?? [];
  return (
    <Section title="Try it">
      <form onSubmit={submit} noValidate aria-label="Try the policies on a text">
        <TextAreaField id="try-text" label="Text to check" value={text} onChange={setText} rows={4} hint="Checked by the saved policies; a guard_model detector asks its classifier model, as a request would. Nothing is recorded." />
        <div className="grid-2">
          <SelectField id="try-direction" label="As" value={direction} onChange={setDirection} options={GUARD_DIRECTIONS.map((d) => ({ value: d, label: d }))} />
          <SelectField id="try-model" label="Model" value={model} onChange={setModel} options={[{ value: '', label: 'Any model' }, ...models.map((m) => ({ value: m, label: m }))]} />
        </div>
        <FormError error={error} />
        <div className="actions">
          <button type="submit" className="primary" disabled={busy}>
            {busy ? 'Checking…' : 'Check'}
          </button>
        </div>
      </form>
      <div role="status" aria-live="polite" data-testid="try-result">
        {result ? (
          <>
            {result.blocked ? (
              <p>
                <Badge tone="bad">blocked</Badge> by <strong>{result.blocked.policy}</strong>: {result.blocked.message}
              </p>
            ) : (
              <>
                <p>{hits.length ? 'Would be sent on as:' : 'No policy finds anything; sent on unchanged:'}</p>
                <pre className="mono try-output">{result.output}</pre>
              </>
            )}
            {hits.length ? (
              <ul>
                {hits.map((p) => (
                  <li key={p.policy}>
                    <strong>{p.policy}</strong> ({p.mode === 'shadow' ? `shadow, would ${p.action}` : p.action}): {p.findings.map((f) => f.type).join(', ')}
                  </li>
                ))}
              </ul>
            ) : null}
            {verdicts.length ? (
              <>
                <p>Classifier verdicts:</p>
                <ul data-testid="try-verdicts">
                  {verdicts.map((v, i) => (
                    <li key={`${v.policy}-${v.model}-${i}`}>
                      <strong>{v.policy}</strong>: guard model <span className="mono">{v.model}</span>{' '}
                      {v.verdict === 'safe' ? (
                        <Badge tone="ok">safe</Badge>
                      ) : v.verdict === 'unsafe' ? (
                        <>
                          <Badge tone="bad">unsafe</Badge>
                          {v.category ? ` (${v.category})` : ''}
                        </>
                      ) : v.verdict === 'skipped' ? (
                        <>
                          <Badge tone="muted">not asked</Badge> {v.reason}
                        </>
                      ) : (
                        <>
                          <Badge tone="warn">no answer</Badge> {v.reason} (fails {v.on_failure})
                        </>
                      )}
                      {v.blocks ? ', blocks' : ''}
                    </li>
                  ))}
                </ul>
              </>
            ) : null}
          </>
        ) : null}
      </div>
    </Section>
  );
}

/** Regex lines: "LABEL: pattern" or just a pattern (label CUSTOM). */
function parseRegexLines(s: string): Detector[] {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
    .map((l) => {
      const m = /^([A-Z][A-Z0-9_]{0,31}):\s(.*)$/.exec(l);
      return m ? { type: 'regex' as const, label: m[1]!, pattern: m[2]! } : { type: 'regex' as const, pattern: l, label: 'CUSTOM' };
    });
}

/** A policy's detectors come from several fields: detectors[i].* errors (the schema's and the API's)
 * belong to the field that made detector i, with the line or keyword named. */
function detectorFieldErrors(errs: FieldErrors, spec: Record<string, unknown>): FieldErrors {
  const detectors = (spec.detectors ?? []) as Detector[];
  const regexStart = detectors.findIndex((d) => typeof d === 'object' && d.type === 'regex');
  const out: FieldErrors = {};
  for (const [k, v] of Object.entries(errs)) {
    const m = /^detectors(?:\[(\d+)\](.*))?/.exec(k);
    if (!m) out[k] = v;
    else {
      const i = m[1] === undefined ? -1 : Number(m[1]);
      // the part of the detector that is wrong: ".label", ".words[2]", "" (the detector itself)
      const rest = m[2] ?? '';
      const d = detectors[i];
      const f = i < 0 ? 'detectors' : typeof d === 'string' ? 'detectors' : d?.type === 'regex' ? 'regex' : d?.type === 'keywords' ? 'keywords' : d?.type === 'max_size' ? 'max_size' : d?.type === 'injection' ? 'injection' : 'detectors';
      const word = /^\.words\[(\d+)\]$/.exec(rest);
      if (f === 'regex') out[f] ??= `line ${i - regexStart + 1}${rest && rest !== '.pattern' ? ` (${rest.slice(1)})` : ''}: ${v}`;
      else if (f === 'keywords' && word) out[f] ??= `keyword ${Number(word[1]) + 1}: ${v}`;
      else out[f] ??= f === 'detectors' && rest ? `detectors[${i}]${rest}: ${v}` : v;
    }
  }
  return out;
}

function PolicyForm({
  initial,
  existing,
  models,
  teams,
  onCancel,
  onSaved,
}: {
  initial: GuardrailSpec | undefined;
  existing: string[];
  models: string[];
  teams: string[];
  onCancel: () => void;
  onSaved: () => void;
}) {
  const det = initial?.detectors ?? [];
  const [name, setName] = useState(initial?.name ?? '');
  const [description, setDescription] = useState(initial?.description ?? '');
  const [directions, setDirections] = useState<string[]>(initial?.direction ?? ['input', 'output']);
  const [builtins, setBuiltins] = useState<string[]>(det.filter((d): d is Extract<Detector, string> => typeof d === 'string'));
  const inj = det.find((d) => typeof d === 'object' && d.type === 'injection') as { threshold?: number } | undefined;
  const [injection, setInjection] = useState(inj ? String(inj.threshold ?? 0.5) : '');
  const [keywords, setKeywords] = useState(det.flatMap((d) => (typeof d === 'object' && d.type === 'keywords' ? d.words : [])).join('\n'));
  const [regexes, setRegexes] = useState(
    det
      .filter((d) => typeof d === 'object' && d.type === 'regex')
      .map((d) => {
        const r = d as { pattern: string; label?: string };
        return r.label && r.label !== 'CUSTOM' ? `${r.label}: ${r.pattern}` : r.pattern;
      })
      .join('\n'),
  );
  const ms = det.find((d) => typeof d === 'object' && d.type === 'max_size') as { chars: number } | undefined;
  const [maxSize, setMaxSize] = useState(ms ? String(ms.chars) : '');
  const [responseSchema, setResponseSchema] = useState(det.some((d) => typeof d === 'object' && d.type === 'response_schema'));
  const [action, setAction] = useState<string>(initial?.action ?? 'redact');
  const [mode, setMode] = useState<string>(initial?.mode ?? 'shadow');
  const [scopeModels, setScopeModels] = useState<string[]>(initial?.scope?.models ?? []);
  const [scopeTeams, setScopeTeams] = useState<string[]>(initial?.scope?.teams ?? []);
  const [restore, setRestore] = useState(!!initial?.restore);
  const [disabled, setDisabled] = useState(!!initial?.disabled);

  const toggle = (list: string[], set: (v: string[]) => void, v: string, on: boolean) => set(on ? [...list, v] : list.filter((x) => x !== v));

  const build = () => {
    const detectors: unknown[] = [...builtins];
    if (injection.trim()) detectors.push({ type: 'injection', threshold: Number(injection) });
    const words = keywords
      .split('\n')
      .map((w) => w.trim())
      .filter(Boolean);
    if (words.length) detectors.push({ type: 'keywords', words });
    detectors.push(...parseRegexLines(regexes));
    if (maxSize.trim()) detectors.push({ type: 'max_size', chars: Number(maxSize) });
    if (responseSchema) detectors.push({ type: 'response_schema' });
    // guard-model detectors (set in the config file or the API) are kept as they are
    for (const d of initial?.detectors ?? []) if (typeof d === 'object' && d.type === 'guard_model') detectors.push(d);
    const spec: Record<string, unknown> = { name: name.trim(), direction: directions, detectors, action, mode };
    if (description.trim()) spec.description = description.trim();
    const scope: Record<string, string[]> = {};
    if (scopeModels.length) scope.models = scopeModels;
    if (scopeTeams.length) scope.teams = scopeTeams;
    if (initial?.scope) for (const k of ['keys', 'agents', 'mcp_servers', 'tools'] as const) if (initial.scope[k]?.length) scope[k] = initial.scope[k];
    if (Object.keys(scope).length) spec.scope = scope;
    if (restore) spec.restore = true;
    if (disabled) spec.disabled = true;
    return spec;
  };

  return (
    <SchemaForm
      schema={guardrailSchema}
      build={build}
      check={nameTaken(existing, 'policy', !initial)}
      mapErrors={detectorFieldErrors}
      send={async (spec) => {
        await saveResource('/guardrails', initial?.name, spec);
        onSaved();
      }}
      label={initial ? `Edit policy ${initial.name}` : 'New guardrail policy'}
      submitLabel={initial ? 'Save policy' : 'Add policy'}
      onCancel={onCancel}
    >
      {(errors) => (
        <>
          <div className="grid-2">
            <TextField id="gr-name" label="Name" value={name} onChange={setName} error={errors.name} hint={guardrailSchema.shape.name.description} autoFocus={!initial} readOnly={!!initial} placeholder="no-pii" />
            <TextField id="gr-description" label="Description (optional)" value={description} onChange={setDescription} error={errors.description} />
            <SelectField id="gr-action" label="Action" value={action} onChange={setAction} options={[...GUARD_ACTIONS]} error={errors.action} hint={guardrailSchema.shape.action.description} />
            <SelectField id="gr-mode" label="Mode" value={mode} onChange={setMode} options={[...GUARD_MODES]} error={errors.mode} hint={guardrailSchema.shape.mode.description} />
          </div>
          <fieldset>
            <legend>Check</legend>
            <div className="checks">
              {GUARD_DIRECTIONS.map((d) => (
                <CheckboxField key={d} id={`gr-dir-${d}`} label={d} checked={directions.includes(d)} onChange={(on) => toggle(directions, setDirections, d, on)} />
              ))}
            </div>
            {errors.direction ? <p className="field-error">{errors.direction}</p> : null}
          </fieldset>
          <fieldset>
            <legend>Built-in detectors</legend>
            <div className="checks">
              {BUILTIN_NAMES.filter((n) => n !== 'injection').map((n) => (
                <CheckboxField key={n} id={`gr-det-${n}`} label={`${n} (${BUILTIN_HINTS[n] ?? ''})`} checked={builtins.includes(n)} onChange={(on) => toggle(builtins, setBuiltins, n, on)} />
              ))}
            </div>
            {errors.detectors ? (
              <p className="field-error" id="gr-detectors-error">
                {errors.detectors}
              </p>
            ) : null}
          </fieldset>
          <div className="grid-2">
            <NumberField id="gr-injection" label="Prompt-injection threshold (optional)" value={injection} onChange={setInjection} error={errors.injection} hint="0.05-1; empty: no injection check. 0.5 catches clear override phrasings." step="0.05" />
            <NumberField id="gr-max-size" label="Maximum size in characters (optional)" value={maxSize} onChange={setMaxSize} error={errors.max_size} />
          </div>
          <TextAreaField id="gr-keywords" label="Keywords, one per line (optional)" value={keywords} onChange={setKeywords} error={errors.keywords} rows={3} hint="Whole words, ignoring case and accents." />
          <TextAreaField
            id="gr-regex"
            label="Regular expressions, one per line (optional)"
            value={regexes}
            onChange={setRegexes}
            error={errors.regex}
            rows={3}
            hint="“LABEL: pattern” names the placeholder ([LABEL_1]). Patterns that could backtrack catastrophically, such as (a+)+, are refused."
          />
          <CheckboxField
            id="gr-response-schema"
            label="Answers must satisfy the JSON schema the request asks for (response_format)"
            checked={responseSchema}
            onChange={setResponseSchema}
            hint="Output, non-streamed: a mismatch is asked for once more, then refused."
          />
          <fieldset>
            <legend>Scope (none ticked: everything)</legend>
            {models.length ? <p className="hint">Models</p> : null}
            <div className="checks">
              {models.map((m) => (
                <CheckboxField key={m} id={`gr-model-${m}`} label={m} checked={scopeModels.includes(m)} onChange={(on) => toggle(scopeModels, setScopeModels, m, on)} />
              ))}
            </div>
            {teams.length ? <p className="hint">Teams</p> : null}
            <div className="checks">
              {teams.map((t) => (
                <CheckboxField key={t} id={`gr-team-${t}`} label={t} checked={scopeTeams.includes(t)} onChange={(on) => toggle(scopeTeams, setScopeTeams, t, on)} />
              ))}
            </div>
          </fieldset>
          <CheckboxField id="gr-restore" label="Restore redacted inputs in the answer" checked={restore} onChange={setRestore} hint={guardrailSchema.shape.restore.description} />
          <CheckboxField id="gr-disabled" label="Disabled" checked={disabled} onChange={setDisabled} />
        </>
      )}
    </SchemaForm>
  );
}
