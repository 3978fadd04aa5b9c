// Endpoints: the model servers Airlock sends requests to. Add, test, edit, remove, discover.
import { useMemo, useRef, useState, type FormEvent } from 'react';
import { endpointSchema } from '../../../gateway/config/schema';
import { api, apiFieldErrors, enc, get, validate, type EndpointView, type FieldErrors, type HealthBody, type ModelView, type ProbeResult } from '../api';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { EditRemoveButtons, nameTaken, saveResource } from '../components/resource';
import { AliasForm } from './alias-from-model';
import { useAuth } from '../auth';
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
  SelectField,
  TextAreaField,
  TextField,
  fmtInt,
  fmtTime,
  useFocusFirstError,
} from '../components/ui';
import { breakerBadge, healthBadge, POLL_MS } from './Overview';

const describe = (k: keyof typeof endpointSchema.shape): string | undefined => endpointSchema.shape[k].description;

interface Draft {
  name: string;
  type: 'openai' | 'ollama' | 'anthropic';
  base_url: string;
  api_key: string;
  clear_key: boolean;
  keep_key: boolean;
  max_concurrency: string;
  timeout_ms: string;
  first_byte_timeout_ms: string;
  hc_enabled: boolean;
  hc_interval_ms: string;
  expose_models: boolean;
}

const str = (n: number | undefined) => (n === undefined ? '' : String(n));
const num = (s: string) => (s.trim() === '' ? undefined : Number(s));

function draftOf(e?: Partial<EndpointView>): Draft {
  return {
    name: e?.name ?? '',
    type: e?.type ?? 'openai',
    base_url: e?.base_url ?? '',
    api_key: e?.api_key ?? '', // only an ${env:NAME} reference is ever sent to the browser
    clear_key: false,
    keep_key: false,
    max_concurrency: str(e?.max_concurrency),
    timeout_ms: str(e?.timeout_ms),
    first_byte_timeout_ms: str(e?.first_byte_timeout_ms),
    hc_enabled: e?.health_check?.enabled ?? true,
    hc_interval_ms: str(e?.health_check?.interval_ms),
    expose_models: e?.expose_models ?? false,
  };
}

/** Does the new base URL point at another server (scheme, host or port) than the saved one? */
function movesHost(from: string, to: string): boolean {
  try {
    return new URL(from).origin !== new URL(to.trim()).origin;
  } catch {
    return false;
  }
}

function specOf(d: Draft, orig?: EndpointView): Record<string, unknown> {
  const spec: Record<string, unknown> = { name: d.name.trim(), type: d.type, base_url: d.base_url.trim() };
  if (d.api_key) spec.api_key = d.api_key;
  else if (d.clear_key) spec.api_key = null;
  else if (d.keep_key && orig?.api_key_set && movesHost(orig.base_url, d.base_url)) spec.keep_api_key = true;
  for (const k of ['max_concurrency', 'timeout_ms', 'first_byte_timeout_ms'] as const) {
    const v = num(d[k]);
    if (v !== undefined) spec[k] = v;
  }
  const interval = num(d.hc_interval_ms);
  if (orig?.health_check || !d.hc_enabled || interval !== undefined) {
    const hc: Record<string, unknown> = { ...(orig?.health_check ?? {}), enabled: d.hc_enabled };
    if (interval !== undefined) hc.interval_ms = interval;
    else delete hc.interval_ms;
    spec.health_check = hc;
  }
  // sent when on, or when it was stored (so turning it off is saved as false)
  if (d.expose_models || orig?.expose_models !== undefined) spec.expose_models = d.expose_models;
  return spec;
}

export function EndpointsPage() {
  const { canWrite } = useAuth();
  const list = useResource((s) => get<{ data: EndpointView[] }>('/endpoints', s), [], POLL_MS);
  const health = useResource((s) => get<HealthBody>('/health', s), [], POLL_MS);
  const [editing, setEditing] = useState<{ orig?: EndpointView; initial?: Partial<EndpointView>; probe?: ProbeResult } | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [discovering, setDiscovering] = useState(false);
  const models = useResource((s) => get<{ data: ModelView[] }>('/models', s), []);
  const [aliasFor, setAliasFor] = useState<{ endpoint: string; model: string } | null>(null);
  const [aliasDone, setAliasDone] = useState('');
  const aliasNames = new Set((models.data?.data ?? []).map((m) => m.name));
  const served = (endpoint: string, model: string) => (models.data?.data ?? []).filter((m) => m.targets.some((t) => t.endpoint === endpoint && t.model === model)).map((m) => m.name);
  const eps = list.data?.data ?? [];

  return (
    <>
      <PageHeader
        title="Endpoints"
        intro="The model servers of your network. Airlock checks their health, spreads requests over them and stops sending to a failing one (circuit breaker)."
        actions={
          canWrite ? (
            <>
              <button type="button" onClick={() => setDiscovering(true)}>
                Discover…
              </button>
              <button type="button" className="primary" onClick={() => setEditing({})}>
                Add endpoint
              </button>
            </>
          ) : null
        }
      />
      <LoadError error={list.error} retry={list.reload} />
      {list.loading ? <Loading what="endpoints" /> : null}
      <DataTable
        label="Endpoints"
        card
        rows={list.data ? eps : undefined}
        rowKey={(e) => e.name}
        empty={
          <EmptyState
            title="No model servers yet"
            action={
              canWrite ? (
                <>
                  <button type="button" className="primary" onClick={() => setEditing({})}>
                    Add endpoint
                  </button>
                  <button type="button" onClick={() => setDiscovering(true)}>
                    Discover servers
                  </button>
                </>
              ) : undefined
            }
          >
            <p>
              Add the address of a server that speaks the OpenAI API (vLLM, llama.cpp server, Ollama, LM Studio, TGI, LocalAI) — usually something like{' '}
              <code>http://10.0.0.5:8000/v1</code>. “Test connection” shows which models it serves. Not sure where they run? “Discover” probes this machine
              and the hosts you list on the usual ports.
            </p>
          </EmptyState>
        }
        columns={[
          { header: 'Name', cell: (e) => e.name },
          {
            header: 'Address',
            cell: (e) => (
              <>
                <span className="mono">{e.base_url}</span>
                <div className="cell-note">
                  {e.type}
                  {e.api_key_set ? ' · API key set' : ''}
                  {e.max_concurrency ? ` · max ${e.max_concurrency} in flight` : ''}
                  {e.expose_models ? ' · models callable by their own names' : ''}
                </div>
              </>
            ),
          },
          {
            header: 'Health',
            cell: (e) => (
              <>
                {healthBadge(e.status ?? undefined)}
                {e.status?.last_check_error ? <div className="cell-note">{e.status.last_check_error}</div> : null}
                {e.status?.last_check_at ? <div className="cell-note">checked {fmtTime(e.status.last_check_at)}</div> : null}
              </>
            ),
          },
          {
            header: 'Breakers',
            cell: (e) => {
              const ts = (health.data?.targets ?? []).filter((t) => t.endpoint === e.name);
              const states = new Map<string, number>();
              for (const t of ts) states.set(t.breaker, (states.get(t.breaker) ?? 0) + 1);
              return (
                <>
                  {ts.length === 0 ? <span className="muted">—</span> : null}
                  {[...states].map(([st, n]) => (
                    <span key={st} className="badge-row">
                      {breakerBadge(st)} {ts.length > 1 ? `×${n}` : ''}
                    </span>
                  ))}
                </>
              );
            },
          },
          { header: 'In flight', cell: (e) => fmtInt(e.status?.inflight) },
          {
            header: 'Serves',
            cell: (e) =>
              e.status?.discovered_models?.length ? (
                // a disclosure, not a hover tooltip: the names are reachable by keyboard and screen reader
                <details className="served-models">
                  <summary>
                    {e.status.discovered_models.length} model{e.status.discovered_models.length === 1 ? '' : 's'}
                  </summary>
                  <ul aria-label={`Models served by ${e.name}`}>
                    {e.status.discovered_models.map((m) => {
                      const aliases = served(e.name, m);
                      return (
                        <li key={m}>
                          <span className="mono">{m}</span>
                          {aliases.length ? (
                            <span className="cell-note"> as {aliases.join(', ')}</span>
                          ) : e.status?.exposed_models.includes(m) ? (
                            <span className="cell-note"> callable by this name</span>
                          ) : canWrite ? (
                            <>
                              {' '}
                              <button type="button" className="link-button" onClick={() => setAliasFor({ endpoint: e.name, model: m })} aria-label={`Create a model alias for ${m} on ${e.name}`}>
                                Create alias
                              </button>
                            </>
                          ) : null}
                        </li>
                      );
                    })}
                  </ul>
                </details>
              ) : (
                <span className="muted">—</span>
              ),
          },
        ]}
        actions={
          canWrite
            ? (e) => <EditRemoveButtons what="endpoint" name={e.name} onEdit={() => setEditing({ orig: e })} onRemove={() => setRemoving(e.name)} />
            : undefined
        }
      />

      <p className="ok-text" role="status" aria-live="polite">
        {aliasDone}
      </p>
      <FormDialog open={aliasFor !== null} onClose={() => setAliasFor(null)} title="Create model alias">
        {() => (
          <AliasForm
            endpoint={aliasFor!.endpoint}
            model={aliasFor!.model}
            taken={aliasNames}
            onCancel={() => setAliasFor(null)}
            onCreated={(n) => {
              setAliasFor(null);
              setAliasDone(`Model alias ${n} created: apps can use it now.`);
              models.reload();
            }}
          />
        )}
      </FormDialog>
      <FormDialog open={editing !== null} onClose={() => setEditing(null)} title={editing?.orig ? `Edit endpoint ${editing.orig.name}` : 'Add endpoint'} wide>
        {() => (
          <EndpointForm
            orig={editing!.orig}
            initial={editing!.initial}
            initialProbe={editing!.probe}
            existing={eps.map((e) => e.name)}
            onCancel={() => setEditing(null)}
            onSaved={() => {
              setEditing(null);
              list.reload();
              health.reload();
            }}
          />
        )}
      </FormDialog>

      <FormDialog
        open={discovering}
        onClose={() => setDiscovering(false)}
        title="Discover model servers"
        wide
        description="Airlock asks each address for its model list. The probes run on the gateway server, so “localhost” means the machine Airlock runs on."
      >
        {() => (
          <Discover
            existing={eps}
            onAdd={(initial, probe) => {
              setDiscovering(false);
              setEditing({ initial, probe });
            }}
          />
        )}
      </FormDialog>

      <ConfirmDialog
        open={removing !== null}
        title={`Remove endpoint ${removing ?? ''}?`}
        body={<p>Requests will no longer go to this server. A model alias that still uses it must be changed first; Airlock will tell you which.</p>}
        confirmLabel="Remove endpoint"
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          await api('DELETE', `/endpoints/${enc(removing!)}`);
          list.reload();
          health.reload();
        }}
      />
    </>
  );
}

function ProbeView({ r }: { r: ProbeResult }) {
  if (!r.ok)
    return (
      <div className="notice error">
        <strong>Connection failed.</strong> {r.error ?? 'No answer.'}
      </div>
    );
  return (
    <div className="notice ok">
      <strong>Connected</strong> in {Math.round(r.latency_ms)} ms.{' '}
      {r.models.length ? (
        <>
          It serves {r.models.length} model{r.models.length === 1 ? '' : 's'}:
          <ul className="chips" aria-label="Models served">
            {r.models.map((m) => (
              <li key={m} className="chip mono">
                {m}
              </li>
            ))}
          </ul>
        </>
      ) : (
        'It answered, but lists no models.'
      )}
    </div>
  );
}

function EndpointForm({
  orig,
  initial,
  initialProbe,
  existing,
  onCancel,
  onSaved,
}: {
  orig?: EndpointView;
  initial?: Partial<EndpointView>;
  initialProbe?: ProbeResult;
  existing: string[];
  onCancel: () => void;
  onSaved: () => void;
}) {
  const [d, setD] = useState<Draft>(() => draftOf(orig ?? initial));
  // the field errors "Test connection" found (a save shows its own: SchemaForm)
  const [testErrors, setTestErrors] = useState<FieldErrors>({});
  const [testing, setTesting] = useState(false);
  const [probe, setProbe] = useState<ProbeResult | undefined>(initialProbe);
  const [testNote, setTestNote] = useState('');
  const testRow = useRef<HTMLDivElement>(null);
  const form = useMemo(() => ({ get current() { return testRow.current?.closest('form') ?? null; } }), []);
  useFocusFirstError(testErrors, form);
  const set = <K extends keyof Draft>(k: K) => (v: Draft[K]) => setD((p) => ({ ...p, [k]: v }));

  const test = async () => {
    if (testing) return;
    setTestNote('');
    setProbe(undefined);
    const spec = specOf(d, orig);
    const v = validate(endpointSchema, spec);
    // the name does not matter for a probe
    const relevant: FieldErrors = {};
    if (!v.ok) for (const k of Object.keys(v.errors)) if (k !== 'name') relevant[k] = v.errors[k]!;
    setTestErrors(relevant);
    if (Object.keys(relevant).length) return;
    setTesting(true);
    try {
      const keepsSavedKey = !!orig?.api_key_set && !d.api_key && !d.clear_key;
      const unchanged = orig && orig.base_url === spec.base_url && orig.type === spec.type;
      let r: ProbeResult;
      if (keepsSavedKey && unchanged) {
        r = await api<ProbeResult>('POST', `/endpoints/${enc(orig.name)}/test`);
        setTestNote('Tested with the saved settings and API key.');
      } else {
        r = await api<ProbeResult>('POST', '/endpoints/test', { ...spec, name: spec.name || 'unsaved' });
        if (keepsSavedKey) setTestNote('Tested without the stored API key: enter the key to test the new address with it.');
      }
      setProbe(r);
    } catch (e) {
      setTestErrors(apiFieldErrors(e));
      setProbe({ ok: false, latency_ms: 0, models: [], error: (e as Error).message });
    } finally {
      setTesting(false);
    }
  };

  return (
    <SchemaForm
      schema={endpointSchema}
      build={() => {
        setTestErrors({});
        return specOf(d, orig);
      }}
      check={nameTaken(existing, 'endpoint', !orig)}
      send={async (spec) => {
        await saveResource('/endpoints', orig?.name, spec);
        onSaved();
      }}
      label={orig ? `Edit endpoint ${orig.name}` : 'New endpoint'}
      submitLabel={orig ? 'Save changes' : 'Add endpoint'}
      onCancel={onCancel}
    >
      {(saveErrors) => {
        const errors = { ...testErrors, ...saveErrors };
        return (
          <>
            <div className="grid-2">
              <TextField id="ep-name" label="Name" value={d.name} onChange={set('name')} error={errors.name} hint={`${describe('name')}. Letters, digits, ".", "_", ":" or "-".`} disabled={!!orig} autoFocus={!orig} />
              <SelectField
                id="ep-type"
                label="Type"
                value={d.type}
                onChange={(v) => set('type')(v as Draft['type'])}
                options={[
                  { value: 'openai', label: 'OpenAI-compatible' },
                  { value: 'ollama', label: 'Ollama (native model list)' },
                  { value: 'anthropic', label: 'Anthropic Messages API' },
                ]}
                error={errors.type}
                hint={
                  d.type === 'openai' ? 'vLLM, llama.cpp server, LM Studio, TGI, LocalAI, and Ollama at /v1.'
                  : d.type === 'ollama' ? 'Lists models with Ollama’s own /api/tags.'
                  : 'A server that speaks /v1/messages: it serves Anthropic Messages requests only, passed through untranslated.'
                }
              />
            </div>
            <TextField id="ep-base-url" label="Base URL" value={d.base_url} onChange={set('base_url')} error={errors.base_url} hint={`${describe('base_url')}, e.g. http://10.0.0.5:8000/v1`} placeholder="http://host:8000/v1" spellCheck={false} inputMode="url" className="mono-input" />
            <TextField
              id="ep-api-key"
              type="password"
              label="API key (optional)"
              value={d.api_key}
              onChange={set('api_key')}
              error={errors.api_key}
              autoComplete="new-password"
              placeholder={orig?.api_key_set ? 'set — leave empty to keep it' : ''}
              hint={
                orig?.api_key_set ? (
                  <>
                    <Badge tone="info">set</Badge> A key is stored (encrypted). Type a new one to replace it. You may also write <code>{'${env:AIRLOCK_SECRET_NAME}'}</code>.
                  </>
                ) : (
                  <>
                    {describe('api_key')}. You may also write <code>{'${env:AIRLOCK_SECRET_NAME}'}</code> to read it from the gateway’s environment (only variables named AIRLOCK_SECRET_…).
                  </>
                )
              }
            />
            {orig?.api_key_set ? <CheckboxField id="ep-clear-key" label="Remove the stored API key" checked={d.clear_key} onChange={set('clear_key')} disabled={!!d.api_key} /> : null}
            {orig?.api_key_set && !d.api_key && !d.clear_key && movesHost(orig.base_url, d.base_url) ? (
              <CheckboxField
                id="ep-keep-key"
                label={`Send the stored API key to the new server too`}
                checked={d.keep_key}
                onChange={set('keep_key')}
                hint="The base URL now points at another server. The stored key goes there only if you say so; otherwise enter its key above."
              />
            ) : null}
            <CheckboxField
              id="ep-expose-models"
              label="Apps may call the models this server lists directly, without an alias"
              checked={d.expose_models}
              onChange={set('expose_models')}
              error={errors.expose_models}
              hint="Every model the server lists (found by its health check) becomes callable under its upstream name, without creating an alias for each; a model alias of the same name wins. No price is set for them: create an alias to charge one."
            />
            <details className="advanced" open={!!(errors.max_concurrency || errors.timeout_ms || errors.first_byte_timeout_ms || errors['health_check.interval_ms'])}>
              <summary>Limits, timeouts and health checks</summary>
              <div className="grid-3">
                <NumberField id="ep-max-concurrency" label="Max concurrency" value={d.max_concurrency} onChange={set('max_concurrency')} error={errors.max_concurrency} hint={describe('max_concurrency')} min={1} />
                <NumberField id="ep-timeout" label="Timeout (ms)" value={d.timeout_ms} onChange={set('timeout_ms')} error={errors.timeout_ms} hint={describe('timeout_ms')} min={100} />
                <NumberField id="ep-first-byte-timeout" label="First-byte timeout (ms)" value={d.first_byte_timeout_ms} onChange={set('first_byte_timeout_ms')} error={errors.first_byte_timeout_ms} hint={describe('first_byte_timeout_ms')} min={50} />
              </div>
              <div className="grid-2">
                <CheckboxField id="ep-hc-enabled" label="Check health periodically" checked={d.hc_enabled} onChange={set('hc_enabled')} hint="Asks for the model list; a server that fails twice in a row is marked down." />
                <NumberField id="ep-hc-interval" label="Health check interval (ms)" value={d.hc_interval_ms} onChange={set('hc_interval_ms')} error={errors['health_check.interval_ms']} hint="Default 10000." min={100} disabled={!d.hc_enabled} />
              </div>
            </details>

            <div className="test-row" ref={testRow}>
              {/* aria-disabled, not disabled, while testing: a disabled button would drop the keyboard focus */}
              <button type="button" onClick={() => void test()} aria-disabled={testing || undefined}>
                {testing ? 'Testing…' : 'Test connection'}
              </button>
              <span className="hint">Asks the server for its model list, without saving.</span>
            </div>
            <div className="test-result" aria-live="polite" data-testid="test-result">
              {testNote ? <p className="hint">{testNote}</p> : null}
              {probe ? <ProbeView r={probe} /> : null}
            </div>
          </>
        );
      }}
    </SchemaForm>
  );
}

// ---- discovery ----

const KNOWN_PORTS = [
  { port: 11434, product: 'Ollama', slug: 'ollama' },
  { port: 1234, product: 'LM Studio', slug: 'lmstudio' },
  { port: 8000, product: 'vLLM', slug: 'vllm' },
  { port: 8080, product: 'llama.cpp or LocalAI', slug: 'llamacpp' },
  { port: 3000, product: 'TGI', slug: 'tgi' },
];

interface Candidate {
  base_url: string;
  host: string;
  product: string;
  slug: string;
}

/** Turn the admin's list into base URLs: "host" → every usual port; "host:port" or a URL → that one. */
export function candidates(hosts: string[]): { list: Candidate[]; bad: string[] } {
  const list: Candidate[] = [];
  const bad: string[] = [];
  const seen = new Set<string>();
  const add = (c: Candidate) => {
    if (seen.has(c.base_url)) return;
    seen.add(c.base_url);
    list.push(c);
  };
  for (const raw of hosts) {
    const h = raw.trim();
    if (!h) continue;
    let u: URL;
    try {
      u = new URL(/^https?:\/\//i.test(h) ? h : `http://${h}`);
    } catch {
      bad.push(h);
      continue;
    }
    if (!u.hostname) {
      bad.push(h);
      continue;
    }
    const path = u.pathname.replace(/\/+$/, '');
    const base = (port: number | string) => `${u.protocol}//${u.hostname}:${port}${path || '/v1'}`;
    if (u.port) {
      const k = KNOWN_PORTS.find((p) => String(p.port) === u.port);
      add({ base_url: base(u.port), host: u.hostname, product: k?.product ?? 'OpenAI-compatible server', slug: k?.slug ?? 'server' });
    } else if (/^https?:\/\//i.test(h) && path) {
      add({ base_url: `${u.protocol}//${u.host}${path}`, host: u.hostname, product: 'OpenAI-compatible server', slug: 'server' });
    } else {
      for (const p of KNOWN_PORTS) add({ base_url: base(p.port), host: u.hostname, product: p.product, slug: p.slug });
    }
  }
  return { list, bad };
}

function suggestName(c: Candidate, taken: Set<string>): string {
  const host = c.host.replace(/^\[|\]$/g, '').replace(/[^A-Za-z0-9._-]+/g, '-');
  const port = new URL(c.base_url).port;
  const base = `${c.slug}-${host === '127.0.0.1' || host === '::1' ? 'localhost' : host}`.slice(0, 56);
  let name = base;
  if (taken.has(name)) name = `${base}-${port}`;
  for (let i = 2; taken.has(name); i++) name = `${base}-${i}`;
  return name;
}

interface Found {
  c: Candidate;
  r: ProbeResult;
}

function Discover({ existing, onAdd }: { existing: EndpointView[]; onAdd: (initial: Partial<EndpointView>, probe: ProbeResult) => void }) {
  const [hosts, setHosts] = useState('');
  const [local, setLocal] = useState(true);
  const [running, setRunning] = useState(false);
  const [progress, setProgress] = useState('');
  const [found, setFound] = useState<Found[] | null>(null);
  const [silent, setSilent] = useState<Found[]>([]);
  const [error, setError] = useState<string>('');

  const run = async (e: FormEvent) => {
    e.preventDefault();
    const entries = hosts.split(/[\s,;]+/).filter(Boolean);
    const { list, bad } = candidates([...(local ? ['localhost'] : []), ...entries]);
    if (bad.length) {
      setError(`Not a host name or address: ${bad.join(', ')}`);
      return;
    }
    if (!list.length) {
      setError('Nothing to probe: tick “this machine” or list at least one host.');
      return;
    }
    setError('');
    setRunning(true);
    setFound(null);
    const ok: Found[] = [];
    const no: Found[] = [];
    let done = 0;
    setProgress(`Probing ${list.length} addresses…`);
    const queue = [...list];
    const worker = async () => {
      for (let c = queue.shift(); c; c = queue.shift()) {
        let r: ProbeResult;
        try {
          r = await api<ProbeResult>('POST', '/endpoints/test', { name: 'discovery', base_url: c.base_url, health_check: { timeout_ms: 2500 } });
        } catch (err) {
          r = { ok: false, latency_ms: 0, models: [], error: (err as Error).message };
        }
        (r.ok ? ok : no).push({ c, r });
        done++;
        setProgress(`Probed ${done} of ${list.length} addresses…`);
      }
    };
    await Promise.all(Array.from({ length: Math.min(6, list.length) }, worker));
    const order = (a: Found, b: Found) => list.indexOf(a.c) - list.indexOf(b.c);
    setFound(ok.sort(order));
    setSilent(no.sort(order));
    setProgress(`Done: ${ok.length} of ${list.length} addresses answered.`);
    setRunning(false);
  };

  const taken = new Set(existing.map((e) => e.name));
  const known = new Set(existing.map((e) => e.base_url.replace(/\/+$/, '')));

  return (
    <div>
      <form onSubmit={run} noValidate aria-label="Discover model servers">
        <CheckboxField id="disc-local" label="Probe this machine (localhost)" checked={local} onChange={setLocal} hint="Ports 11434 (Ollama), 1234 (LM Studio), 8000 (vLLM), 8080 (llama.cpp, LocalAI), 3000 (TGI)." />
        <TextAreaField
          id="disc-hosts"
          label="Other hosts to probe"
          value={hosts}
          onChange={setHosts}
          rows={3}
          spellCheck={false}
          placeholder={'gpu-box-1\n10.0.0.7\n10.0.0.8:9000'}
          hint="One per line (or separated by commas): a name or address probes the usual ports; name:port probes just that port."
        />
        <FormError error={error} />
        <div className="actions">
          <button type="submit" className="primary" disabled={running}>
            {running ? 'Probing…' : 'Probe'}
          </button>
        </div>
      </form>
      <p className="hint" role="status" aria-live="polite">
        {progress}
      </p>
      {found ? (
        found.length ? (
          <ul className="found-list" aria-label="Servers that answered">
            {found.map(({ c, r }) => {
              const already = known.has(c.base_url.replace(/\/+$/, ''));
              return (
                <li key={c.base_url} className="found">
                  <div>
                    <strong>{c.product}</strong> at <span className="mono">{c.base_url}</span>
                    <div className="cell-note">
                      {r.models.length} model{r.models.length === 1 ? '' : 's'}: {r.models.slice(0, 8).join(', ')}
                      {r.models.length > 8 ? ', …' : ''} · {Math.round(r.latency_ms)} ms
                    </div>
                  </div>
                  {already ? (
                    <Badge tone="muted">already added</Badge>
                  ) : (
                    <button type="button" className="primary" onClick={() => onAdd({ name: suggestName(c, taken), type: 'openai', base_url: c.base_url }, r)} aria-label={`Add ${c.base_url}`}>
                      Add…
                    </button>
                  )}
                </li>
              );
            })}
          </ul>
        ) : (
          <div className="notice info">No server answered. Check that the servers are running and that this machine may reach them (firewall), or enter their address yourself.</div>
        )
      ) : null}
      {found && silent.length ? (
        <details className="advanced">
          <summary>{silent.length} addresses did not answer</summary>
          <ul className="plain small">
            {silent.map(({ c, r }) => (
              <li key={c.base_url}>
                <span className="mono">{c.base_url}</span> — {r.error}
              </li>
            ))}
          </ul>
        </details>
      ) : null}
    </div>
  );
}
