// Settings: the gateway-wide settings (generated from the shared settings schema, so a new
// setting appears here without UI work), plus where the gateway listens and what exposing it means.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import type { z } from 'zod';
import { settingsSchema } from '../../../gateway/config/schema';
import { api, apiFieldErrors, get, validate, type FieldErrors, type Status } from '../api';
import { useAuth } from '../auth';
import { useResource } from '../hooks';
import { CheckboxField, FormError, LoadError, Loading, NumberField, PageHeader, Section, SelectField, TextField, fmtTime } from '../components/ui';

interface Def {
  type: string;
  innerType?: z.ZodType;
  entries?: Record<string, string>;
  shape?: Record<string, z.ZodType>;
}
const defOf = (s: z.ZodType) => (s as unknown as { def: Def }).def;

interface FieldInfo {
  path: string[];
  kind: 'number' | 'boolean' | 'string' | 'enum';
  optional: boolean;
  description?: string;
  options?: string[];
}

/** Flatten a strict object schema into its leaf fields. */
function fieldsOf(shape: Record<string, z.ZodType>, prefix: string[] = []): { groups: Map<string, FieldInfo[]> } {
  const groups = new Map<string, FieldInfo[]>();
  const add = (g: string, f: FieldInfo) => groups.set(g, [...(groups.get(g) ?? []), f]);
  for (const [k, s0] of Object.entries(shape)) {
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
      const kind = d.type === 'number' ? 'number' : d.type === 'boolean' ? 'boolean' : d.type === 'enum' ? 'enum' : 'string';
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
};
const LABELS: Record<string, string> = {
  max_body_bytes: 'Largest request body (bytes)',
  queue_timeout_ms: 'Queue timeout (ms)',
  retry_after_cap_ms: 'Longest upstream retry-after to wait out (ms)',
  shutdown_grace_ms: 'Shutdown grace period (ms)',
  'breaker.failure_threshold': 'Failures before the breaker opens',
  'breaker.cooldown_ms': 'Cool-down before a retry (ms)',
  ledger_retention_days: 'Keep usage records for (days)',
  admin_max_failed_logins: 'Failed logins before an account is locked',
  admin_lockout_minutes: 'Lockout duration (minutes)',
  admin_session_hours: 'Admin session length (hours)',
};
const HINTS: Record<string, string> = {
  'breaker.failure_threshold': 'Consecutive failures of a target before Airlock stops sending to it for the cool-down.',
  'breaker.cooldown_ms': 'How long an open breaker waits before letting one trial request through.',
};
const humanize = (k: string) => k.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());

function getPath(o: unknown, path: string[]): unknown {
  return path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);
}
function setPath(o: Record<string, unknown>, path: string[], v: unknown): void {
  let cur = o;
  for (const k of path.slice(0, -1)) cur = (cur[k] ??= {}) as Record<string, unknown>;
  cur[path[path.length - 1]!] = v;
}

const { groups: GROUPS } = fieldsOf(settingsSchema.shape as unknown as Record<string, z.ZodType>);
const ALL_FIELDS = [...GROUPS.values()].flat();

export function SettingsPage() {
  const { canWrite } = useAuth();
  const settings = useResource((s) => get<Record<string, unknown>>('/settings', s), []);
  const status = useResource((s) => get<Status>('/status', s), []);
  const [values, setValues] = useState<Record<string, string | boolean> | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [saved, setSaved] = useState('');
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);

  const load = (s: Record<string, unknown>) => {
    const v: Record<string, string | boolean> = {};
    for (const f of ALL_FIELDS) {
      const x = getPath(s, f.path);
      v[f.path.join('.')] = f.kind === 'boolean' ? x === true : x === undefined || x === null ? '' : String(x);
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
    for (const f of ALL_FIELDS) {
      const raw = values[f.path.join('.')];
      if (f.kind === 'boolean') setPath(body, f.path, raw === true);
      else if (raw === '' || raw === undefined) continue;
      else setPath(body, f.path, f.kind === 'number' ? Number(raw) : raw);
    }
    const v = validate(settingsSchema, body);
    setErrors(v.ok ? {} : v.errors);
    if (!v.ok) {
      requestAnimationFrame(() => form.current?.querySelector<HTMLElement>('[aria-invalid="true"]')?.focus());
      return;
    }
    setBusy(true);
    try {
      const r = await api<Record<string, unknown>>('PUT', '/settings', body);
      load(r);
      settings.reload();
      setSaved('Settings saved.');
    } catch (err) {
      const fe = apiFieldErrors(err, /^settings\./);
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };

  const st = status.data;
  const dataUrl = st?.listen?.data ?? st?.data_url;
  const adminUrl = st?.listen?.admin ?? st?.admin_url ?? location.origin;
  const exposed = (u: string | undefined) => (u ? !/\/\/(127\.\d+\.\d+\.\d+|localhost|\[::1\])(:|\/|$)/.test(u) : undefined);

  return (
    <>
      <PageHeader title="Settings" intro="Gateway-wide behaviour. Changes apply at once unless a setting says otherwise." />
      <Section title="Where Airlock listens">
        <LoadError error={status.error} />
        <dl className="facts">
          <dt>Data plane (apps)</dt>
          <dd>
            {dataUrl ? <span className="mono">{dataUrl}</span> : <span className="muted">not reported by this gateway version (see its startup log)</span>}{' '}
            {exposed(dataUrl) === true ? <span className="badge warn">reachable from the network</span> : exposed(dataUrl) === false ? <span className="badge ok">this machine only</span> : null}
          </dd>
          <dt>Admin plane (this app)</dt>
          <dd>
            <span className="mono">{adminUrl}</span>{' '}
            {exposed(adminUrl) === true ? <span className="badge warn">reachable from the network</span> : exposed(adminUrl) === false ? <span className="badge ok">this machine only</span> : null}
          </dd>
          <dt>Data directory</dt>
          <dd className="mono">{st?.data_dir ?? '—'}</dd>
          <dt>Version</dt>
          <dd>
            {st?.version ?? '—'} {st ? <span className="cell-note">running since {fmtTime(st.started_at)}, configuration version {st.config_version}</span> : null}
          </dd>
        </dl>
        <details className="explain" open>
          <summary>Exposing Airlock to the LAN</summary>
          <p>
            Out of the box both planes listen on <code>127.0.0.1</code>: only programs on this machine can reach them. Exposing them is a deliberate
            choice made where the gateway is started (it cannot be switched from a browser, so a stolen admin session cannot open the gateway to the
            network):
          </p>
          <ul>
            <li>
              <strong>Let apps on the LAN call models:</strong> start with <code>airlock serve --host 0.0.0.0</code> (or a specific address of this
              server), or set <code>AIRLOCK_HOST</code>. The port is <code>--port</code> / <code>AIRLOCK_PORT</code> (default 4000).
            </li>
            <li>
              <strong>Reach this admin app from other machines:</strong> <code>--admin-host</code> / <code>AIRLOCK_ADMIN_HOST</code>, and list the
              names it is reached by in <code>AIRLOCK_ADMIN_HOSTNAMES</code> (for example <code>airlock.corp.local</code>). Prefer keeping it on
              loopback and using an SSH tunnel.
            </li>
          </ul>
          <p>What it implies:</p>
          <ul>
            <li>Anyone who can reach the port can try keys or passwords. Every data-plane call still needs a key; admin logins lock after repeated failures.</li>
            <li>
              Airlock speaks plain HTTP: prompts, answers, keys and admin sessions cross the network readable unless a TLS-terminating proxy sits in
              front. Put one in front, or restrict the port to trusted hosts with the firewall.
            </li>
            <li>Host and Origin checks stay on when exposed: requests that name an unknown host are refused (protection against DNS rebinding).</li>
            <li>Nothing is sent out of the machine by Airlock itself beyond the model servers you register.</li>
          </ul>
        </details>
      </Section>

      <LoadError error={settings.error} retry={settings.reload} />
      {settings.loading ? <Loading what="settings" /> : null}
      {values ? (
        <form ref={form} onSubmit={submit} noValidate aria-label="Gateway settings">
          {[...GROUPS].map(([g, fs]) => (
            <Section key={g} title={GROUP_TITLES[g] ?? humanize(g)}>
              <fieldset disabled={!canWrite} className="bare">
                <legend className="sr-only">{GROUP_TITLES[g] ?? humanize(g)}</legend>
                <div className="grid-2">
                  {fs.map((f) => {
                    const key = f.path.join('.');
                    const id = `setting-${key.replace(/\./g, '-')}`;
                    const label = LABELS[key] ?? humanize(f.path[f.path.length - 1]!);
                    const desc = f.description ?? HINTS[key];
                    const hint = [desc && !/[.!?)]$/.test(desc) ? `${desc}.` : desc, f.optional ? 'Optional: empty means the default.' : ''].filter(Boolean).join(' ');
                    const v = values[key];
                    const set = (nv: string | boolean) => {
                      setSaved('');
                      setValues((p) => ({ ...(p ?? {}), [key]: nv }));
                    };
                    if (f.kind === 'boolean') return <CheckboxField key={key} id={id} label={label} checked={v === true} onChange={set} hint={hint} error={errors[key]} />;
                    if (f.kind === 'enum') return <SelectField key={key} id={id} label={label} value={String(v ?? '')} onChange={set} options={f.options ?? []} hint={hint} error={errors[key]} />;
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
              <button type="button" onClick={() => settings.data && (load(settings.data), setErrors({}))}>
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
