// Settings: the gateway-wide settings (generated from the shared settings schema, so a new
// setting appears here without UI work), plus where the gateway listens: the stored
// settings.listen, edited with two LAN-exposure switches and port fields (not the generic form),
// applied on restart, and overridden by flags/environment variables (the page says when).
// TLS (settings.tls) is shown read-only: what the running gateway serves, and a stored change
// waiting for a restart; admins set it in the config file or through the settings API.
// Traces and telemetry (settings.telemetry) are in the generated form too; the collector's
// headers (a map) are edited as lines "Name: ${env:AIRLOCK_SECRET_NAME}".

import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { z } from 'zod';
import { DEFAULT_LISTEN, listenSchema, settingsSchema } from '../../../gateway/config/schema';
import { api, apiFieldErrors, get, validate, type FieldErrors, type ListenOrigin, type ListenConfig, type StatusBody, type TlsInfo } from '../api';
import { useAuth } from '../auth';
import { BackupSection } from './Backup';
import { RestoreSection } from './Restore';
import { RestartSection, adminAfterRestart, isLoopback } from './restart';
import { markSaved } from '../unsaved';
import { useResource } from '../hooks';
import { CheckboxField, ConfirmDialog, FormError, LoadError, Loading, NumberField, PageHeader, Section, SelectField, TextAreaField, TextField, fmtTime } from '../components/ui';

interface Def {
  type: string;
  innerType?: z.ZodType;
  entries?: Record<string, string>;
  shape?: Record<string, z.ZodType>;
}
const defOf = (s: z.ZodType) => (s as unknown as { def: Def }).def;

/** settings with dedicated controls (or a read-only display) on this page, left out of the generated form and saved as stored */
const OWN_CONTROLS = new Set(['listen', 'tls']);

interface FieldInfo {
  path: string[];
  /** record: a map of strings (header name → value), edited as "Name: value" lines */
  kind: 'number' | 'boolean' | 'string' | 'enum' | 'record';
  optional: boolean;
  description?: string;
  options?: string[];
}

/** Flatten a strict object schema into its leaf fields. */
function fieldsOf(shape: Record<string, z.ZodType>, prefix: string[] = []): { groups: Map<string, FieldInfo[]> } {
  const groups = new Map<string, FieldInfo[]>();
  const add = (g: string, f: FieldInfo) => groups.set(g, [...(groups.get(g) ?? []), f]);
  for (const [k, s0] of Object.entries(shape)) {
    // where the gateway listens has its own controls (the LAN-exposure switches)
    if (!prefix.length && OWN_CONTROLS.has(k)) continue;
    let s = s0;
    let optional = false;
    const description = s.description;
    for (let d = defOf(s); (d.type === 'default' || d.type === 'optional' || d.type === 'nullable') && d.innerType; d = defOf(s)) {
      if (d.type === 'optional') optional = true;
      s = d.innerType;
    }
    const d = defOf(s);
    const path = [...prefix, k];
    if (d.type === 'object') {
      const inner = (s as unknown as { shape: Record<string, z.ZodType> }).shape;
      for (const [, fs] of fieldsOf(inner, path).groups) for (const f of fs) add(k, f);
    } else {
      const kind = d.type === 'number' ? 'number' : d.type === 'boolean' ? 'boolean' : d.type === 'enum' ? 'enum' : d.type === 'record' ? 'record' : 'string';
      const g = prefix.length ? prefix[0]! : k.startsWith('admin_') ? 'admin' : /retention|ledger/.test(k) ? 'retention' : 'general';
      add(g, { path, kind, optional, description: description ?? (s.description || undefined), options: d.entries ? Object.values(d.entries) : undefined });
    }
  }
  return { groups };
}

const GROUP_TITLES: Record<string, string> = {
  general: 'Requests and shutdown',
  breaker: 'Circuit breaker',
  retention: 'Usage records',
  admin: 'Admin sign-in',
  http: 'Client connections (take effect on restart)',
  limits: 'Size limits',
  audit: 'Audit trail',
  telemetry: 'Traces and telemetry',
};
const LABELS: Record<string, string> = {
  max_body_bytes: 'Largest request body (bytes)',
  queue_timeout_ms: 'Queue timeout (ms)',
  retry_after_cap_ms: 'Longest upstream retry-after to wait out (ms)',
  shutdown_grace_ms: 'Shutdown grace period (ms)',
  'breaker.failure_threshold': 'Failures before the breaker opens',
  'breaker.cooldown_ms': 'Cool-down before a retry (ms)',
  ledger_retention_days: 'Keep usage records for (days)',
  responses_retention_days: 'Keep stored Responses API answers for (days)',
  admin_max_failed_logins: 'Failed logins before an account is locked',
  admin_lockout_minutes: 'Lockout duration (minutes)',
  admin_session_hours: 'Admin session length (hours)',
  metrics_public: '/metrics without a token',
  ledger_max_pending_rows: 'Records kept in memory while unwritable',
  ledger_when_unwritable: 'When records cannot be written',
  'http.headers_timeout_ms': 'Request headers timeout (ms)',
  'http.request_timeout_ms': 'Whole request timeout (ms)',
  'http.keep_alive_timeout_ms': 'Idle keep-alive timeout (ms)',
  'http.max_connections': 'Most data-plane connections',
  'http.admin_max_connections': 'Most admin-plane connections',
  'http.max_requests_per_socket': 'Requests per connection (0: no limit)',
  'limits.max_json_depth': 'Deepest JSON nesting in a request',
  'limits.max_event_bytes': 'Largest streamed upstream event (bytes)',
  'limits.max_response_bytes': 'Largest upstream answer (bytes)',
  'limits.max_probe_bytes': 'Largest model list from a health check (bytes)',
  'audit.fail_closed': 'When an audit record cannot be written',
  'audit.data_plane': 'Record every data-plane request',
  'audit.checkpoint_every': 'Signed checkpoint every (records)',
  'audit.retention_days': 'Keep audit records in the database for (days)',
  'telemetry.traces': 'Record traces in the local span store',
  'telemetry.sample_ratio': 'Share of successful requests traced (0 to 1)',
  'telemetry.retention_hours': 'Keep traces for (hours)',
  'telemetry.max_spans': 'Most spans kept',
  'telemetry.otlp_endpoint': 'OTLP collector URL',
  'telemetry.otlp_headers': 'Collector headers',
  'telemetry.otlp_timeout_ms': 'Export timeout (ms)',
  'telemetry.otlp_max_queue': 'Most spans waiting for the collector',
};
const HINTS: Record<string, string> = {
  'telemetry.otlp_headers':
    'One header a line, "Name: ${env:AIRLOCK_SECRET_NAME}": the value names an environment variable of the gateway (AIRLOCK_SECRET_*), read when spans are sent; the secret itself is never stored.',
  'breaker.failure_threshold': 'Consecutive failures of a target before Airlock stops sending to it for the cool-down.',
  'breaker.cooldown_ms': 'How long an open breaker waits before letting one trial request through.',
};
const humanize = (k: string) => k.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

function getPath(o: unknown, path: string[]): unknown {
  return path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
}
/** A stored value as a text field shows it ("" when unset). */
function fieldText(x: unknown): string {
  if (x === undefined || x === null) return '';
  if (typeof x === 'string') return x;
  if (typeof x === 'number' || typeof x === 'boolean') return String(x);
  return JSON.stringify(x);
}
/** A map as "Name: value" lines. */
function recordText(x: unknown): string {
  if (!x || typeof x !== 'object') return '';
  return Object.entries(x as Record<string, unknown>)
    .map(([k, v]) => `${k}: ${String(v)}`)
    .join('\n');
}
/** "Name: value" lines as a map; a line without a colon is an error naming it. */
function parseRecordLines(text: string): { ok: true; value: Record<string, string> | undefined } | { ok: false; error: string } {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line) continue;
    const at = line.indexOf(':');
    if (at <= 0) return { ok: false, error: `Line ${i + 1} ("${line.slice(0, 40)}"): write it as Name: value.` };
    const name = line.slice(0, at).trim();
    if (name in out) return { ok: false, error: `Line ${i + 1}: the header "${name}" is given twice.` };
    out[name] = line.slice(at + 1).trim();
  }
  return { ok: true, value: Object.keys(out).length ? out : undefined };
}
/** Errors inside a map field (telemetry.otlp_headers.X-Token) shown on the field, naming the entry. */
function foldRecordErrors(errors: FieldErrors): FieldErrors {
  const out: FieldErrors = { ...errors };
  for (const f of ALL_FIELDS) {
    if (f.kind !== 'record') continue;
    const key = f.path.join('.');
    for (const [k, m] of Object.entries(errors)) {
      if (!k.startsWith(`${key}.`)) continue;
      delete out[k];
      out[key] ??= `"${k.slice(key.length + 1)}": ${m}`;
    }
  }
  return out;
}
function setPath(o: Record<string, unknown>, path: string[], v: unknown): void {
  let cur = o;
  for (const k of path.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[path[path.length - 1]!] = v;
}

const { groups: GROUPS } = fieldsOf(settingsSchema.shape);
const ALL_FIELDS = [...GROUPS.values()].flat();

export function SettingsPage() {
  const { canWrite, isOwner } = useAuth();
  const settings = useResource((s) => get<Record<string, unknown>>('/settings', s), []);
  const status = useResource((s) => get<StatusBody>('/status', s), []);
  const [values, setValues] = useState<Record<string, string | boolean> | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState('');
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  // the settings as stored (last GET or PUT answer): the generic form and the listen controls
  // each change their part and send the rest as it is (PUT /settings replaces the whole document,
  // and refuses one that leaves a setting out)
  const [stored, setStored] = useState<Record<string, unknown>>();
  useEffect(() => {
    if (settings.data) setStored(settings.data);
  }, [settings.data]);

  const load = (s: Record<string, unknown>) => {
    const v: Record<string, string | boolean> = {};
    for (const f of ALL_FIELDS) {
      const x = getPath(s, f.path);
      v[f.path.join('.')] = f.kind === 'boolean' ? x === true : f.kind === 'record' ? recordText(x) : fieldText(x);
    }
    setValues(v);
  };
  useEffect(() => {
    if (settings.data && values === null) load(settings.data);
  }, [settings.data, values]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setSaved('');
    if (!values) return;
    const body: Record<string, unknown> = {};
    for (const k of OWN_CONTROLS) if (stored?.[k] !== undefined) body[k] = stored[k];
    const lineErrors: FieldErrors = {};
    for (const f of ALL_FIELDS) {
      const raw = values[f.path.join('.')];
      if (f.kind === 'boolean') setPath(body, f.path, raw === true);
      else if (raw === '' || raw === undefined) continue;
      else if (f.kind === 'record') {
        const r = parseRecordLines(String(raw));
        if (!r.ok) lineErrors[f.path.join('.')] = r.error;
        else if (r.value) setPath(body, f.path, r.value);
      } else setPath(body, f.path, f.kind === 'number' ? Number(raw) : raw);
    }
    const v = validate(settingsSchema, body);
    const found = { ...(v.ok ? {} : foldRecordErrors(v.errors)), ...lineErrors };
    setErrors(found);
    if (!v.ok || Object.keys(lineErrors).length) {
      requestAnimationFrame(() => form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
      return;
    }
    setBusy(true);
    try {
      // the whole document, a cleared field as its default (PUT refuses one left out)
      const r = await api<Record<string, unknown>>('PUT', '/settings', v.data);
      load(r);
      setStored(r);
      settings.reload();
      setSaved('Settings saved.');
      markSaved(form.current);
    } catch (err) {
      const fe = foldRecordErrors(apiFieldErrors(err, /^settings\./));
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };

  const st = status.data;

  return (
    <>
      <PageHeader title="Settings" intro="Gateway-wide behaviour. Changes apply at once unless a setting says otherwise." />
      <Section title="Where Airlock listens">
        <LoadError error={status.error} />
        <ListenControls status={st} stored={stored} canWrite={canWrite} onSaved={setStored} />
        <dl className="facts">
          <dt>Data directory</dt>
          <dd className="mono">{st?.data_dir ?? '—'}</dd>
          <dt>Version</dt>
          <dd>
            {st?.version ?? '—'} {st ? <span className="cell-note">running since {fmtTime(st.started_at)}, configuration version {st.config_version}</span> : null}
          </dd>
        </dl>
      </Section>

      <Section title="HTTPS (TLS)">
        <TlsFacts status={st} stored={stored} />
      </Section>

      {isOwner ? <RestartSection status={st} move={adminAfterRestart(st, stored, location)} /> : null}
      {isOwner ? <BackupSection /> : null}
      {isOwner ? <RestoreSection /> : null}

      <LoadError error={settings.error} retry={settings.reload} />
      {settings.loading ? <Loading what="settings" /> : null}
      {values ? (
        <form ref={form} onSubmit={submit} noValidate aria-label="Gateway settings" data-guard-unsaved="">
          {[...GROUPS].map(([g, fs]) => (
            <Section key={g} title={GROUP_TITLES[g] ?? humanize(g)}>
              <fieldset disabled={!canWrite} className="bare">
                <legend className="sr-only">{GROUP_TITLES[g] ?? humanize(g)}</legend>
                <div className="grid-2">
                  {fs.map((f) => {
                    const key = f.path.join('.');
                    const id = `setting-${key.replace(/\./g, '-')}`;
                    const label = LABELS[key] ?? humanize(f.path[f.path.length - 1]!);
                    const desc = HINTS[key] ?? f.description;
                    const hint = [desc && !/[.!?)]$/.test(desc) ? `${desc}.` : desc, f.optional ? 'Optional: empty means the default.' : ''].filter(Boolean).join(' ');
                    const v = values[key];
                    const set = (nv: string | boolean) => {
                      setSaved('');
                      setValues((p) => ({ ...(p ?? {}), [key]: nv }));
                    };
                    if (f.kind === 'boolean') return <CheckboxField key={key} id={id} label={label} checked={v === true} onChange={set} hint={hint} error={errors[key]} />;
                    if (f.kind === 'enum') return <SelectField key={key} id={id} label={label} value={String(v ?? '')} onChange={set} options={f.options ?? []} hint={hint} error={errors[key]} />;
                    if (f.kind === 'record') return <TextAreaField key={key} id={id} label={label} value={String(v ?? '')} onChange={set} hint={hint} error={errors[key]} rows={3} spellCheck={false} />;
                    if (f.kind === 'number') return <NumberField key={key} id={id} label={label} value={String(v ?? '')} onChange={set} hint={hint} error={errors[key]} />;
                    return <TextField key={key} id={id} label={label} value={String(v ?? '')} onChange={set} hint={hint} error={errors[key]} />;
                  })}
                </div>
              </fieldset>
            </Section>
          ))}
          <FormError error={error} />
          <p className="ok-text" role="status" aria-live="polite">
            {saved}
          </p>
          {canWrite ? (
            <div className="actions left">
              <button type="button" onClick={() => settings.data && (load(settings.data), setErrors({}), markSaved(form.current))}>
                Discard changes
              </button>
              <button type="submit" className="primary" disabled={busy}>
                {busy ? 'Saving…' : 'Save settings'}
              </button>
            </div>
          ) : null}
        </form>
      ) : null}
    </>
  );
}

// ---- where the gateway listens ----

type Plane = 'data' | 'admin';
const OVERRIDES: Record<keyof ListenConfig, { flag: string; env: string }> = {
  data_host: { flag: '--host', env: 'AIRLOCK_HOST' },
  data_port: { flag: '--port', env: 'AIRLOCK_PORT' },
  admin_host: { flag: '--admin-host', env: 'AIRLOCK_ADMIN_HOST' },
  admin_port: { flag: '--admin-port', env: 'AIRLOCK_ADMIN_PORT' },
};
const LAN_HOST = '0.0.0.0';
const LOOPBACK_HOST = '127.0.0.1';
const exposedUrl = (u: string | undefined) => (u ? !/\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:|\/|$)/.test(u) : undefined);
const overrideName = (k: keyof ListenConfig, src: ListenOrigin) => (src === 'flag' ? `the ${OVERRIDES[k].flag} flag` : `the ${OVERRIDES[k].env} environment variable`);

/** A checkbox that looks and announces itself as an on/off switch. */
function Switch({
  id,
  label,
  checked,
  onChange,
  disabled,
  busy,
  describedBy,
  danger,
}: {
  id: string;
  label: string;
  checked: boolean;
  onChange: (on: boolean) => void;
  disabled?: boolean;
  /** while a change is being saved: the switch keeps the focus (aria-disabled, not disabled) and ignores presses */
  busy?: boolean;
  describedBy?: string;
  danger?: boolean;
}) {
  return (
    <div className="switch-row">
      <input
        type="checkbox"
        role="switch"
        id={id}
        className={danger ? 'switch danger' : 'switch'}
        checked={checked}
        disabled={disabled}
        aria-disabled={busy || undefined}
        aria-busy={busy || undefined}
        onChange={(e) => {
          if (!busy) onChange(e.target.checked);
        }}
        aria-describedby={describedBy}
      />
      <label htmlFor={id}>{label}</label>
    </div>
  );
}

function ListenControls({ status, stored, canWrite, onSaved }: { status: StatusBody | undefined; stored: Record<string, unknown> | undefined; canWrite: boolean; onSaved: (s: Record<string, unknown>) => void }) {
  const listen: ListenConfig = { ...DEFAULT_LISTEN, ...(stored?.listen as Partial<ListenConfig> | undefined) };
  // the switch position while its change is being saved
  const [pending, setPending] = useState<Partial<Record<Plane, boolean>>>({});
  const [error, setError] = useState<unknown>();
  const [confirmAdmin, setConfirmAdmin] = useState(false);
  const [ports, setPorts] = useState<{ data_port: string; admin_port: string } | null>(null);
  const [portErrors, setPortErrors] = useState<FieldErrors>({});
  const [portsSaved, setPortsSaved] = useState('');
  useEffect(() => {
    if (stored && ports === null) setPorts({ data_port: String(listen.data_port), admin_port: String(listen.admin_port) });
  }, [stored, ports, listen.data_port, listen.admin_port]);

  const save = async (patch: Partial<ListenConfig>) => {
    if (!stored) return;
    const r = await api<Record<string, unknown>>('PUT', '/settings', { ...stored, listen: { ...listen, ...patch } });
    onSaved(r);
  };
  const setExposed = async (plane: Plane, on: boolean) => {
    setError(undefined);
    setPending((p) => ({ ...p, [plane]: on }));
    try {
      await save(plane === 'data' ? { data_host: on ? LAN_HOST : LOOPBACK_HOST } : { admin_host: on ? LAN_HOST : LOOPBACK_HOST });
    } catch (e) {
      setError(e);
    } finally {
      setPending((p) => ({ ...p, [plane]: undefined }));
    }
  };
  const savePorts = async (e: FormEvent) => {
    e.preventDefault();
    setPortsSaved('');
    if (!ports) return;
    const num = (v: string) => (v.trim() === '' ? undefined : Number(v));
    const next = { ...listen, data_port: num(ports.data_port), admin_port: num(ports.admin_port) };
    const v = validate(listenSchema, next);
    const errs: FieldErrors = v.ok ? {} : v.errors;
    if (next.data_port === undefined) errs.data_port = 'is required';
    if (next.admin_port === undefined) errs.admin_port = 'is required';
    setPortErrors(errs);
    if (Object.keys(errs).length) return;
    try {
      await save({ data_port: next.data_port, admin_port: next.admin_port });
      setPortsSaved('Ports saved. They take effect when Airlock restarts.');
    } catch (err) {
      const fe = apiFieldErrors(err, /^listen\./);
      setPortErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    }
  };

  const plane = (p: Plane) => {
    const hostKey = `${p}_host` as const;
    const portKey = `${p}_port` as const;
    const running = status?.listen?.[p] ?? (p === 'admin' ? location.origin : undefined);
    const started = status?.listen_config;
    const src = status?.listen_source;
    const keys = [hostKey, portKey] as const;
    const overridden = keys.filter((k) => src?.[k] === 'flag' || src?.[k] === 'env');
    // a stored value that differs from what this process was started with (and is not overridden)
    const waiting = started ? keys.filter((k) => !overridden.includes(k) && started[k] !== listen[k]) : [];
    const on = pending[p] ?? !isLoopback(listen[hostKey]);
    const exposedNow = exposedUrl(running);
    return { hostKey, portKey, running, started, src, overridden, waiting, on, exposedNow };
  };

  const notes = (p: Plane) => {
    const x = plane(p);
    return (
      <div aria-live="polite">
        {x.overridden.map((k) => (
          <p key={k} className="notice info" data-testid={`listen-override-${k}`}>
            {k.endsWith('_host') ? 'Address' : 'Port'} set at start by {overrideName(k, x.src![k])} (<span className="mono">{String(x.started?.[k])}</span>): it takes precedence over the stored value
            (<span className="mono">{String(listen[k])}</span>), which applies only when Airlock is started without it.
          </p>
        ))}
        {x.waiting.length ? (
          <p className="notice warn" data-testid={`listen-restart-${p}`}>
            <strong>Restart Airlock to apply.</strong> Stored:{' '}
            {x.waiting.map((k, i) => (
              <span key={k}>
                {i ? ' and ' : ''}
                {k.endsWith('_host') ? 'listen on ' : 'port '}
                <span className="mono">{k.endsWith('_host') ? listen[x.hostKey] : listen[x.portKey] === 0 ? '0 (any free port)' : listen[x.portKey]}</span>
              </span>
            ))}
            ; until the next start the {p} plane keeps listening on <span className="mono">{x.running ?? '—'}</span>.
          </p>
        ) : null}
      </div>
    );
  };

  const now = (p: Plane) => {
    const x = plane(p);
    return (
      <p className="listen-now" data-testid={`listen-now-${p}`}>
        Listening now on {x.running ? <span className="mono">{x.running}</span> : <span className="muted">(not reported by this gateway version; see its startup log)</span>}{' '}
        {x.exposedNow === true ? <span className="badge warn">reachable from the network</span> : x.exposedNow === false ? <span className="badge ok">this machine only</span> : null}
      </p>
    );
  };

  const d = plane('data');
  const a = plane('admin');
  const names = status?.admin_hostnames;
  return (
    <div className="listen">
      <p className="hint">
        Out of the box both planes listen on <code>127.0.0.1</code>: only programs on this machine can reach them. The switches below store where Airlock
        listens; <strong>a change takes effect when Airlock restarts</strong>. Command-line flags (<code>--host</code>, <code>--port</code>, <code>--admin-host</code>,{' '}
        <code>--admin-port</code>) and environment variables (<code>AIRLOCK_HOST</code>, …) take precedence over what is stored here.
      </p>
      <FormError error={error} />

      <div className="plane">
        <h3>Data plane (apps calling models)</h3>
        {now('data')}
        <Switch id="listen-data-lan" label="Expose the data plane to the LAN" checked={d.on} disabled={!canWrite || !stored} busy={pending.data !== undefined} onChange={(on) => void setExposed('data', on)} describedBy="listen-data-lan-hint" />
        <div id="listen-data-lan-hint" className="hint switch-hint">
          <p>
            On: Airlock listens on <code>0.0.0.0</code> (every network interface), so apps on other machines can call{' '}
            <code>http://THIS-SERVER:{listen.data_port || 'PORT'}/v1</code>. Off: <code>127.0.0.1</code>, this machine only.
          </p>
          <ul>
            <li>Anyone on the LAN can reach the port, but every call still needs an Airlock key, and a key only reaches the models it is scoped to.</li>
            {status?.tls?.data_plane ? (
              <li>The data plane is served over HTTPS (see HTTPS below): give apps the certificate, or the CA that issued it, to trust.</li>
            ) : (
              <li>The data plane speaks plain HTTP: prompts, answers and keys cross the network readable. Turn on HTTPS (settings.tls, below) or put a TLS-terminating proxy in front, and let the firewall admit only trusted hosts.</li>
            )}
            <li>Takes effect when Airlock restarts.</li>
          </ul>
        </div>
        {notes('data')}
      </div>

      <div className="plane">
        <h3>Admin plane (this admin app and the admin API)</h3>
        {now('admin')}
        <div id="listen-admin-lan-hint" className="notice warn switch-hint">
          <p>
            <strong>Think twice before exposing the admin plane.</strong> Anyone on the LAN could then reach this app's sign-in page and the admin API, which
            control every key, model server and setting. Prefer keeping it on loopback and using an SSH tunnel:{' '}
            <code>ssh -L {listen.admin_port || 4001}:127.0.0.1:{listen.admin_port || 4001} THIS-SERVER</code>.
          </p>
          <ul>
            <li>Admin logins and API tokens are still required; failed logins still lock accounts.</li>
            <li>
              Host and Origin checks stay on: Airlock answers only to the names it knows. List every name or IP address you will browse to (e.g.{' '}
              <code>airlock.corp.local</code>) in the <code>AIRLOCK_ADMIN_HOSTNAMES</code> environment variable, comma-separated — now{' '}
              {names?.length ? <span className="mono">{names.join(', ')}</span> : 'none set'}.
            </li>
            {status?.tls?.admin_plane ? (
              <li>The admin plane is served over HTTPS (see HTTPS below); session cookies are marked Secure.</li>
            ) : (
              <li>Plain HTTP: passwords and session cookies cross the network readable unless HTTPS is on (settings.tls, below) or a TLS-terminating proxy sits in front.</li>
            )}
            <li>Takes effect when Airlock restarts.</li>
          </ul>
        </div>
        <Switch
          id="listen-admin-lan"
          label="Expose the admin plane to the LAN"
          danger
          checked={a.on}
          disabled={!canWrite || !stored}
          busy={pending.admin !== undefined}
          onChange={(on) => (on ? setConfirmAdmin(true) : void setExposed('admin', false))}
          describedBy="listen-admin-lan-hint"
        />
        {notes('admin')}
      </div>

      {ports ? (
        <form className="plane" onSubmit={savePorts} noValidate aria-label="Ports">
          <h3>Ports</h3>
          <fieldset disabled={!canWrite} className="bare">
            <legend className="sr-only">Ports</legend>
            <div className="grid-2">
              <NumberField id="listen-data_port" label="Data plane port" value={ports.data_port} onChange={(v) => (setPortsSaved(''), setPorts({ ...ports, data_port: v }))} hint="Default 4000. Takes effect when Airlock restarts." error={portErrors.data_port} min={0} max={65535} />
              <NumberField id="listen-admin_port" label="Admin plane port" value={ports.admin_port} onChange={(v) => (setPortsSaved(''), setPorts({ ...ports, admin_port: v }))} hint="Default 4001. Takes effect when Airlock restarts." error={portErrors.admin_port} min={0} max={65535} />
            </div>
          </fieldset>
          <p className="ok-text" role="status" aria-live="polite">
            {portsSaved}
          </p>
          {canWrite ? (
            <div className="actions left">
              <button type="submit">Save ports</button>
            </div>
          ) : null}
        </form>
      ) : null}

      <ConfirmDialog
        open={confirmAdmin}
        title="Expose the admin plane to the LAN?"
        body={
          <>
            <p>
              After the next restart the admin app and API listen on <code>0.0.0.0</code>: every machine on the network can reach the sign-in page. Logins,
              lockout and the Host/Origin checks stay on; add the names you will browse to in <code>AIRLOCK_ADMIN_HOSTNAMES</code>.
            </p>
            <p>Keep it on this machine unless admins really need to work from elsewhere.</p>
          </>
        }
        confirmLabel="Expose the admin plane"
        onConfirm={async () => {
          setError(undefined);
          setPending((p) => ({ ...p, admin: true }));
          try {
            await save({ admin_host: LAN_HOST });
          } finally {
            setPending((p) => ({ ...p, admin: undefined }));
          }
        }}
        onClose={() => setConfirmAdmin(false)}
      />
    </div>
  );
}

// ---- HTTPS (read-only) ----

interface StoredTls {
  cert_file: string;
  key_file: string;
  data_plane?: boolean;
  admin_plane?: boolean;
}
const DAY_MS = 86_400_000;

function TlsFacts({ status, stored }: { status: StatusBody | undefined; stored: Record<string, unknown> | undefined }) {
  if (!status) return null;
  const running: TlsInfo | null = status.tls;
  const want = stored?.tls as StoredTls | undefined;
  // what the stored settings.tls would serve at the next start
  const next = want && (want.data_plane !== false || want.admin_plane !== false) ? { cert_file: want.cert_file, key_file: want.key_file, data_plane: want.data_plane !== false, admin_plane: want.admin_plane !== false } : null;
  const now = running ? { cert_file: running.cert_file, key_file: running.key_file, data_plane: running.data_plane, admin_plane: running.admin_plane } : null;
  const waiting = stored !== undefined && JSON.stringify(next) !== JSON.stringify(now);
  const planes = (t: { data_plane: boolean; admin_plane: boolean }) => [t.data_plane && 'data plane', t.admin_plane && 'admin plane'].filter(Boolean).join(' and ');
  const daysLeft = running ? Math.floor((new Date(running.valid_to).getTime() - Date.now()) / DAY_MS) : 0;
  return (
    <div data-testid="tls-facts">
      {running ? (
        <>
          <p>
            <span className="badge ok">HTTPS</span> on the {planes(running)}
            {!running.data_plane || !running.admin_plane ? <> (the {running.data_plane ? 'admin' : 'data'} plane speaks plain HTTP)</> : null}.
          </p>
          <dl className="facts">
            <dt>Certificate</dt>
            <dd>
              <span className="mono">{running.cert_file}</span> <span className="cell-note">{running.subject}</span>
            </dd>
            <dt>Key</dt>
            <dd className="mono">{running.key_file}</dd>
            <dt>SHA-256 fingerprint</dt>
            <dd className="mono" data-testid="tls-fingerprint" style={{ overflowWrap: 'anywhere' }}>
              {running.fingerprint_sha256}
            </dd>
            <dt>Names</dt>
            <dd className="mono">{running.subject_alt_names ?? '—'}</dd>
            <dt>Issuer</dt>
            <dd>{running.issuer === running.subject ? <>self-signed</> : running.issuer}</dd>
            <dt>Expires</dt>
            <dd>
              {fmtTime(running.valid_to)}{' '}
              {running.expired ? (
                <span className="badge bad">expired: clients refuse it</span>
              ) : daysLeft < 30 ? (
                <span className="badge warn">in {daysLeft} day{daysLeft === 1 ? '' : 's'}</span>
              ) : null}
            </dd>
          </dl>
          <p className="hint">Compare the fingerprint with the one your browser or client shows before trusting the certificate.</p>
        </>
      ) : (
        <p>
          <span className="badge muted">off</span> Both planes speak plain HTTP.
        </p>
      )}
      {waiting ? (
        <p className="notice warn" data-testid="tls-restart">
          <strong>Restart Airlock to apply.</strong>{' '}
          {next ? (
            <>
              Stored: HTTPS on the {planes(next)} with <span className="mono">{next.cert_file}</span> and <span className="mono">{next.key_file}</span>.
            </>
          ) : (
            <>Stored: no HTTPS.</>
          )}
        </p>
      ) : null}
      <p className="hint">
        Set <code>settings.tls</code> (<code>cert_file</code>, <code>key_file</code>: absolute paths of PEM files; <code>data_plane</code>, <code>admin_plane</code>) in the config file
        (<code>airlock config apply</code>) or through <code>PUT /admin/api/v1/settings</code>; it takes effect when Airlock restarts. A missing or mismatched file stops the start with a
        message naming it.
      </p>
    </div>
  );
}
