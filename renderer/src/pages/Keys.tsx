// Teams and keys: who calls the gateway. A key is shown once when it is created.
import { useRef, useState, type FormEvent } from 'react';
import { keySchema, teamSchema } from '../../../gateway/config/schema';
import { api, apiFieldErrors, enc, get, validate, type CreatedKeyView, type FieldErrors, type KeyView, type ModelView, type StatusBody, type TeamView } from '../api';
import { useAuth } from '../auth';
import { useResource } from '../hooks';
import {
  Badge,
  CheckboxField,
  ConfirmDialog,
  Dialog,
  EmptyState,
  FormError,
  LoadError,
  Loading,
  PageHeader,
  SecretDialog,
  Section,
  SelectField,
  TextField,
  fmtTime,
  TableWrap,
  useFocusFirstError,
} from '../components/ui';
import { dataUrlOf } from './Overview';

/** The stored key as a spec the API accepts back (no hash, prefix or dates). */
export function keySpec(k: KeyView): Record<string, unknown> {
  const allowed = Object.keys(keySchema.shape);
  return Object.fromEntries(Object.entries(k).filter(([f, v]) => allowed.includes(f) && f !== 'key' && v !== undefined && v !== null));
}

function keyState(k: KeyView) {
  if (k.disabled) return <Badge tone="warn">disabled</Badge>;
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return <Badge tone="bad">expired</Badge>;
  return <Badge tone="ok">active</Badge>;
}

export function KeysPage() {
  const { canWrite } = useAuth();
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const keys = useResource((s) => get<{ data: KeyView[] }>('/keys', s), []);
  const models = useResource((s) => get<{ data: ModelView[] }>('/models', s), []);
  const status = useResource((s) => get<StatusBody>('/status', s), []);
  const [creatingKey, setCreatingKey] = useState(false);
  const [newKey, setNewKey] = useState<{ name: string; key: string } | null>(null);
  const [removeTeam, setRemoveTeam] = useState<string | null>(null);
  const [revoke, setRevoke] = useState<string | null>(null);
  const [rowError, setRowError] = useState<unknown>();
  const teamList = teams.data?.data ?? [];
  const keyList = keys.data?.data ?? [];

  const toggle = async (k: KeyView) => {
    setRowError(undefined);
    try {
      await api('PUT', `/keys/${enc(k.name)}`, { ...keySpec(k), disabled: !k.disabled });
      keys.reload();
    } catch (e) {
      setRowError(e);
    }
  };

  return (
    <>
      <PageHeader
        title="Teams & keys"
        intro="Every app calls the gateway with a key. A key belongs to a team (for attribution, chargeback and, later, budgets) and may be limited to some models."
        actions={
          canWrite ? (
            <button type="button" className="primary" onClick={() => setCreatingKey(true)}>
              Create key
            </button>
          ) : null
        }
      />
      <Section title="Teams">
        <LoadError error={teams.error} retry={teams.reload} />
        {teams.loading ? <Loading what="teams" /> : null}
        {teams.data && teamList.length === 0 ? (
          <p className="muted">No teams yet. Teams group keys so usage can be charged back; create one per department or project (optional).</p>
        ) : null}
        {teamList.length ? (
          <TableWrap label="Teams">
            <table>
              <thead>
                <tr>
                  <th scope="col">Team</th>
                  <th scope="col">Description</th>
                  <th scope="col">Keys</th>
                  {canWrite ? (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {teamList.map((t) => (
                  <tr key={t.name}>
                    <th scope="row">{t.name}</th>
                    <td>{t.description ?? <span className="muted">—</span>}</td>
                    <td>{keyList.filter((k) => k.team === t.name).length}</td>
                    {canWrite ? (
                      <td className="row-actions">
                        <button type="button" className="danger-quiet" onClick={() => setRemoveTeam(t.name)} aria-label={`Delete team ${t.name}`}>
                          Delete
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
        {canWrite ? <TeamForm existing={teamList.map((t) => t.name)} onSaved={teams.reload} /> : null}
      </Section>

      <Section
        title="Keys"
        actions={
          canWrite ? (
            <button type="button" onClick={() => setCreatingKey(true)}>
              Create key
            </button>
          ) : null
        }
      >
        <LoadError error={keys.error} retry={keys.reload} />
        <FormError error={rowError} />
        {keys.loading ? <Loading what="keys" /> : null}
        {keys.data && keyList.length === 0 ? (
          <EmptyState
            title="No keys yet"
            action={
              canWrite ? (
                <button type="button" className="primary" onClick={() => setCreatingKey(true)}>
                  Create key
                </button>
              ) : undefined
            }
          >
            <p>Create one key per app (for example “notebook-app”). The key is shown once; the app sends it as “Authorization: Bearer sk-airlock-…”.</p>
          </EmptyState>
        ) : null}
        {keyList.length ? (
          <TableWrap label="Keys">
            <table>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Team</th>
                  <th scope="col">Models</th>
                  <th scope="col">State</th>
                  <th scope="col">Created</th>
                  {canWrite ? (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {keyList.map((k) => (
                  <tr key={k.name}>
                    <th scope="row">
                      {k.name}
                      {k.prefix ? <div className="cell-note mono">{k.prefix.endsWith('…') ? k.prefix : `${k.prefix}…`}</div> : null}
                      {k.app && k.app !== k.name ? <div className="cell-note">app {k.app}</div> : null}
                    </th>
                    <td>{k.team ?? <span className="muted">—</span>}</td>
                    <td>{k.models?.length ? k.models.join(', ') : <span className="muted">all models</span>}</td>
                    <td>
                      {keyState(k)}
                      {k.expires_at ? <div className="cell-note">expires {fmtTime(k.expires_at)}</div> : null}
                    </td>
                    <td>{fmtTime(k.created_at)}</td>
                    {canWrite ? (
                      <td className="row-actions">
                        <button type="button" onClick={() => void toggle(k)} aria-label={`${k.disabled ? 'Enable' : 'Disable'} key ${k.name}`}>
                          {k.disabled ? 'Enable' : 'Disable'}
                        </button>
                        <button type="button" className="danger-quiet" onClick={() => setRevoke(k.name)} aria-label={`Revoke key ${k.name}`}>
                          Revoke
                        </button>
                      </td>
                    ) : null}
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
      </Section>

      <Dialog open={creatingKey} onClose={() => setCreatingKey(false)} title="Create key" wide>
        {creatingKey ? (
          <KeyForm
            teams={teamList.map((t) => t.name)}
            models={(models.data?.data ?? []).map((m) => m.name)}
            existing={keyList.map((k) => k.name)}
            onCancel={() => setCreatingKey(false)}
            onCreated={(name, key) => {
              setCreatingKey(false);
              setNewKey({ name, key });
              keys.reload();
            }}
          />
        ) : null}
      </Dialog>
      <SecretDialog
        secret={newKey?.key ?? null}
        title={`Key for ${newKey?.name ?? ''}`}
        what="key"
        onClose={() => setNewKey(null)}
        usage={
          <p className="hint">
            Apps use it as an OpenAI API key with the base URL <code>{`${dataUrlOf(status.data) ?? 'http://GATEWAY:4000'}/v1`}</code>.
          </p>
        }
      />
      <ConfirmDialog
        open={revoke !== null}
        title={`Revoke key ${revoke ?? ''}?`}
        body={<p>Apps using this key are refused from now on. This cannot be undone; to pause a key instead, disable it. Past usage stays in the ledger.</p>}
        confirmLabel="Revoke key"
        onClose={() => setRevoke(null)}
        onConfirm={async () => {
          await api('DELETE', `/keys/${enc(revoke!)}`);
          keys.reload();
        }}
      />
      <ConfirmDialog
        open={removeTeam !== null}
        title={`Delete team ${removeTeam ?? ''}?`}
        body={<p>Keys that belong to this team must be moved or revoked first. Past usage stays in the ledger.</p>}
        confirmLabel="Delete team"
        onClose={() => setRemoveTeam(null)}
        onConfirm={async () => {
          await api('DELETE', `/teams/${enc(removeTeam!)}`);
          teams.reload();
        }}
      />
    </>
  );
}

function TeamForm({ existing, onSaved }: { existing: string[]; onSaved: () => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState('');
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    setDone('');
    const spec: Record<string, unknown> = { name: name.trim() };
    if (description.trim()) spec.description = description.trim();
    const v = validate(teamSchema, spec);
    const errs = v.ok ? {} : { ...v.errors };
    if (existing.includes(name.trim())) errs.name = `a team named "${name.trim()}" exists already`;
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      await api('POST', '/teams', spec);
      setName('');
      setDescription('');
      setDone(`Team ${spec.name as string} created.`);
      onSaved();
    } catch (err) {
      const fe = apiFieldErrors(err);
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <form ref={form} onSubmit={submit} noValidate className="inline-form" aria-label="Create team">
      <TextField id="team-name" label="New team name" value={name} onChange={setName} error={errors.name} placeholder="research" />
      <TextField id="team-description" label="Description (optional)" value={description} onChange={setDescription} error={errors.description} />
      <button type="submit" className="primary" disabled={busy}>
        {busy ? 'Creating…' : 'Create team'}
      </button>
      <FormError error={error} />
      <p className="ok-text" role="status" aria-live="polite">
        {done}
      </p>
    </form>
  );
}

function KeyForm({
  teams,
  models,
  existing,
  onCancel,
  onCreated,
}: {
  teams: string[];
  models: string[];
  existing: string[];
  onCancel: () => void;
  onCreated: (name: string, key: string) => void;
}) {
  const [name, setName] = useState('');
  const [team, setTeam] = useState(teams.length === 1 ? teams[0]! : '');
  const [app, setApp] = useState('');
  const [chosen, setChosen] = useState<string[]>([]);
  const [expires, setExpires] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    const spec: Record<string, unknown> = { name: name.trim() };
    if (team) spec.team = team;
    if (app.trim()) spec.app = app.trim();
    if (chosen.length) spec.models = chosen;
    if (expires) {
      const d = new Date(expires);
      spec.expires_at = Number.isNaN(d.getTime()) ? expires : d.toISOString();
    }
    const v = validate(keySchema, spec);
    const errs = v.ok ? {} : { ...v.errors };
    if (existing.includes(name.trim())) errs.name = `a key named "${name.trim()}" exists already`;
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      const r = await api<CreatedKeyView>('POST', '/keys', spec);
      if (!r.key) throw new Error('The gateway created the key but did not return it; revoke it and try again.');
      onCreated(r.name, r.key);
    } catch (err) {
      const fe = apiFieldErrors(err);
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form ref={form} onSubmit={submit} noValidate aria-label="New key">
      <div className="grid-2">
        <TextField id="key-name" label="Name" value={name} onChange={setName} error={errors.name} hint={keySchema.shape.name.description} autoFocus placeholder="notebook-app" />
        <SelectField
          id="key-team"
          label="Team"
          value={team}
          onChange={setTeam}
          options={[{ value: '', label: 'No team' }, ...teams.map((t) => ({ value: t, label: t }))]}
          error={errors.team}
          hint={teams.length ? 'Usage is attributed to this team.' : 'No teams yet: create one above to attribute usage.'}
        />
        <TextField id="key-app" label="App (optional)" value={app} onChange={setApp} error={errors.app} hint={keySchema.shape.app.description} />
        <TextField id="key-expires" type="datetime-local" label="Expires (optional)" value={expires} onChange={setExpires} error={errors.expires_at} hint="Local time. Empty: never." />
      </div>
      <fieldset>
        <legend>Models this key may use</legend>
        {models.length === 0 ? <p className="muted">No models yet: the key may use every model you create later.</p> : null}
        <p className="hint">None ticked: every model, including ones created later.</p>
        <div className="checks">
          {models.map((m) => (
            <CheckboxField key={m} id={`key-model-${m}`} label={m} checked={chosen.includes(m)} onChange={(on) => setChosen((p) => (on ? [...p, m] : p.filter((x) => x !== m)))} />
          ))}
        </div>
        {Object.entries(errors)
          .filter(([k]) => k.startsWith('models'))
          .map(([k, msg]) => (
            <p key={k} className="field-error">
              {k}: {msg}
            </p>
          ))}
      </fieldset>
      <FormError error={error} />
      <div className="actions">
        <button type="button" onClick={onCancel}>
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Creating…' : 'Create key'}
        </button>
      </div>
    </form>
  );
}
