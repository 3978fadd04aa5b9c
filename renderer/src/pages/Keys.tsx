// Teams and keys: who calls the gateway. Everything the configuration file can set on a team or a
// key is editable here; a key is shown once when it is created or rotated.
import { useState } from 'react';
import { keySchema, teamSchema } from '../../../gateway/config/schema';
import { api, enc, get, type CreatedKeyView, type FieldErrors, type KeyView, type ModelView, type StatusBody, type TeamView } from '../api';
import { useAuth } from '../auth';
import { useResource } from '../hooks';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { setField } from '../components/schema-fields';
import { Badge, CheckboxField, ConfirmDialog, EmptyState, FormError, LoadError, Loading, PageHeader, SecretDialog, Section, SelectField, TextField, fmtTime } from '../components/ui';
import { GovernanceFields, applyGov, useGovDraft } from './governance-fields';
import { dataUrlOf } from './Overview';

/** The stored key as a spec the API accepts back (no hash, prefix or dates). */
export function keySpec(k: KeyView): Record<string, unknown> {
  const allowed = Object.keys(keySchema.shape);
  return Object.fromEntries(Object.entries(k).filter(([f, v]) => allowed.includes(f) && f !== 'key' && v !== undefined && v !== null));
}

/** The stored team as a spec the API accepts back. */
export function teamSpec(t: TeamView): Record<string, unknown> {
  const allowed = Object.keys(teamSchema.shape);
  return Object.fromEntries(Object.entries(t).filter(([f, v]) => allowed.includes(f) && v !== undefined && v !== null));
}

function keyState(k: KeyView) {
  if (k.disabled) return <Badge tone="warn">disabled</Badge>;
  if (k.expires_at && Date.parse(k.expires_at) <= Date.now()) return <Badge tone="bad">expired</Badge>;
  return <Badge tone="ok">active</Badge>;
}

function budgetText(b: TeamView['budget'], unit: string) {
  return b ? `${b.amount} ${unit} / ${b.period}` : <span className="muted">none</span>;
}

/** An ISO time as the value of a datetime-local input (local time, minutes). */
function toLocalInput(iso: string | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

const GRACE_CHOICES = [
  { value: '0', label: 'None: the old key stops at once' },
  { value: '3600', label: '1 hour' },
  { value: '86400', label: '24 hours' },
  { value: '604800', label: '7 days' },
];

export function KeysPage() {
  const { canWrite } = useAuth();
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const keys = useResource((s) => get<{ data: KeyView[] }>('/keys', s), []);
  const models = useResource((s) => get<{ data: ModelView[] }>('/models', s), []);
  const status = useResource((s) => get<StatusBody>('/status', s), []);
  const settings = useResource((s) => get<{ cost_unit?: string }>('/settings', s), []);
  const unit = settings.data?.cost_unit ?? 'USD';
  const [creatingKey, setCreatingKey] = useState(false);
  const [editKey, setEditKey] = useState<KeyView | null>(null);
  const [editTeam, setEditTeam] = useState<TeamView | null>(null);
  const [rotate, setRotate] = useState<KeyView | null>(null);
  const [newKey, setNewKey] = useState<{ name: string; key: string; rotated?: boolean } | null>(null);
  const [removeTeam, setRemoveTeam] = useState<string | null>(null);
  const [revoke, setRevoke] = useState<string | null>(null);
  const [rowError, setRowError] = useState<unknown>();
  const teamList = teams.data?.data ?? [];
  const keyList = keys.data?.data ?? [];
  const modelNames = (models.data?.data ?? []).map((m) => m.name);

  const toggle = async (k: KeyView) => {
    setRowError(undefined);
    try {
      await api('PUT', `/keys/${enc(k.name)}`, { ...keySpec(k), disabled: !k.disabled });
      keys.reload();
    } catch (e) {
      setRowError(e);
    }
  };
  const createButton = (primary: boolean) =>
    canWrite ? (
      <button type="button" className={primary ? 'primary' : undefined} onClick={() => setCreatingKey(true)}>
        Create key
      </button>
    ) : null;

  return (
    <>
      <PageHeader
        title="Teams & keys"
        intro="Every app calls the gateway with a key. A key belongs to a team (for attribution, chargeback and budgets) and may be limited to some models."
        actions={createButton(true)}
      />
      <Section title="Teams">
        <LoadError error={teams.error} retry={teams.reload} />
        {teams.loading ? <Loading what="teams" /> : null}
        <DataTable
          label="Teams"
          rows={teams.data?.data}
          rowKey={(t) => t.name}
          empty={<p className="muted">No teams yet. Teams group keys so usage can be charged back; create one per department or project (optional).</p>}
          columns={[
            { header: 'Team', cell: (t) => t.name },
            { header: 'Description', cell: (t) => t.description ?? <span className="muted">—</span> },
            { header: `Budget`, cell: (t) => budgetText(t.budget, unit) },
            { header: 'Keys', cell: (t) => keyList.filter((k) => k.team === t.name).length },
          ]}
          actions={
            canWrite
              ? (t) => (
                  <>
                    <button type="button" onClick={() => setEditTeam(t)} aria-label={`Edit team ${t.name}`}>
                      Edit
                    </button>
                    <button type="button" className="danger-quiet" onClick={() => setRemoveTeam(t.name)} aria-label={`Delete team ${t.name}`}>
                      Delete
                    </button>
                  </>
                )
              : undefined
          }
        />
        {canWrite ? <NewTeamForm existing={teamList.map((t) => t.name)} onSaved={teams.reload} /> : null}
      </Section>

      <Section title="Keys" actions={createButton(false)}>
        <LoadError error={keys.error} retry={keys.reload} />
        <FormError error={rowError} />
        {keys.loading ? <Loading what="keys" /> : null}
        <DataTable
          label="Keys"
          rows={keys.data?.data}
          rowKey={(k) => k.name}
          empty={
            <EmptyState title="No keys yet" action={createButton(true) ?? undefined}>
              <p>Create one key per app (for example “notebook-app”). The key is shown once; the app sends it as “Authorization: Bearer sk-airlock-…”.</p>
            </EmptyState>
          }
          columns={[
            {
              header: 'Key',
              cell: (k) => (
                <>
                  {k.name}
                  {k.prefix ? <div className="cell-note mono">{k.prefix.endsWith('…') ? k.prefix : `${k.prefix}…`}</div> : null}
                  {k.app && k.app !== k.name ? <div className="cell-note">app {k.app}</div> : null}
                </>
              ),
            },
            { header: 'Team', cell: (k) => k.team ?? <span className="muted">—</span> },
            { header: 'Models', cell: (k) => (k.models?.length ? k.models.join(', ') : <span className="muted">all models</span>) },
            { header: 'Budget', cell: (k) => budgetText(k.budget, unit) },
            {
              header: 'State',
              cell: (k) => (
                <>
                  {keyState(k)}
                  {k.expires_at ? <div className="cell-note">expires {fmtTime(k.expires_at)}</div> : null}
                  {k.previous_valid_until ? <div className="cell-note">old secret valid until {fmtTime(k.previous_valid_until)}</div> : null}
                  {k.secret_from_file ? (
                    <div className="cell-note" id={`key-secret-file-${k.name}`}>
                      secret set in the config file ({k.secret_from_file}): rotate it there
                    </div>
                  ) : null}
                </>
              ),
            },
            { header: 'Last used', cell: (k) => (k.last_used_at ? fmtTime(k.last_used_at) : <span className="muted">never</span>) },
            { header: 'Created', cell: (k) => fmtTime(k.created_at) },
          ]}
          actions={
            canWrite
              ? (k) => (
                  <>
                    <button type="button" onClick={() => setEditKey(k)} aria-label={`Edit key ${k.name}`}>
                      Edit
                    </button>
                    {/* a secret the config file sets is rotated in the file: the next apply would undo a rotation here
                        (aria-disabled, not disabled: it stays focusable, so its reason can be read) */}
                    <button
                      type="button"
                      onClick={() => (k.secret_from_file ? undefined : setRotate(k))}
                      aria-label={`Rotate key ${k.name}`}
                      aria-disabled={k.secret_from_file ? true : undefined}
                      aria-describedby={k.secret_from_file ? `key-secret-file-${k.name}` : undefined}
                      title={k.secret_from_file ? `Its secret is set in the config file (${k.secret_from_file}): write a new one there and apply the file, or remove "key:" there to rotate it here` : undefined}
                    >
                      Rotate
                    </button>
                    <button type="button" onClick={() => void toggle(k)} aria-label={`${k.disabled ? 'Enable' : 'Disable'} key ${k.name}`}>
                      {k.disabled ? 'Enable' : 'Disable'}
                    </button>
                    <button type="button" className="danger-quiet" onClick={() => setRevoke(k.name)} aria-label={`Revoke key ${k.name}`}>
                      Revoke
                    </button>
                  </>
                )
              : undefined
          }
        />
      </Section>

      <FormDialog open={creatingKey} onClose={() => setCreatingKey(false)} title="Create key" wide>
        {() => (
          <KeyForm
            teams={teamList.map((t) => t.name)}
            models={modelNames}
            existing={keyList.map((k) => k.name)}
            unit={unit}
            onCancel={() => setCreatingKey(false)}
            onSaved={(name, key) => {
              setCreatingKey(false);
              if (key) setNewKey({ name, key });
              keys.reload();
            }}
          />
        )}
      </FormDialog>
      <FormDialog open={editKey !== null} onClose={() => setEditKey(null)} title={`Edit key ${editKey?.name ?? ''}`} wide>
        {() => (
          <KeyForm
            item={editKey!}
            teams={teamList.map((t) => t.name)}
            models={modelNames}
            existing={[]}
            unit={unit}
            onCancel={() => setEditKey(null)}
            onSaved={() => {
              setEditKey(null);
              keys.reload();
            }}
          />
        )}
      </FormDialog>
      <FormDialog open={editTeam !== null} onClose={() => setEditTeam(null)} title={`Edit team ${editTeam?.name ?? ''}`} wide>
        {() => (
          <TeamForm
            item={editTeam!}
            unit={unit}
            onCancel={() => setEditTeam(null)}
            onSaved={() => {
              setEditTeam(null);
              teams.reload();
            }}
          />
        )}
      </FormDialog>
      <FormDialog
        open={rotate !== null}
        onClose={() => setRotate(null)}
        title={`Rotate key ${rotate?.name ?? ''}`}
        description="A new secret replaces the key's secret; its name, team, budgets and usage stay. The new secret is shown once."
      >
        {() => (
          <RotateForm
            item={rotate!}
            onCancel={() => setRotate(null)}
            onRotated={(key) => {
              const name = rotate!.name;
              setRotate(null);
              setNewKey({ name, key, rotated: true });
              keys.reload();
            }}
          />
        )}
      </FormDialog>
      <SecretDialog
        secret={newKey?.key ?? null}
        title={`${newKey?.rotated ? 'New key' : 'Key'} for ${newKey?.name ?? ''}`}
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
        body={<p>Keys that belong to this team must be moved to another team (Edit) or revoked first. Past usage stays in the ledger.</p>}
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

function NewTeamForm({ existing, onSaved }: { existing: string[]; onSaved: () => void }) {
  const [name, setName] = useState('');
  const [description, setDescription] = useState('');
  const [done, setDone] = useState('');
  const build = () => ({ name: name.trim(), ...(description.trim() ? { description: description.trim() } : {}) });
  return (
    <SchemaForm
      schema={teamSchema}
      label="Create team"
      className="inline-form"
      submitLabel="Create team"
      busyLabel="Creating…"
      build={() => {
        setDone('');
        return build();
      }}
      check={(): FieldErrors => (existing.includes(name.trim()) ? { name: `a team named "${name.trim()}" exists already` } : {})}
      send={async (spec) => {
        await api('POST', '/teams', spec);
        setName('');
        setDescription('');
        setDone(`Team ${spec.name as string} created.`);
        onSaved();
      }}
      footer={
        <p className="ok-text" role="status" aria-live="polite">
          {done}
        </p>
      }
    >
      {(errors) => (
        <>
          <TextField id="team-name" label="New team name" value={name} onChange={setName} error={errors.name} placeholder="research" />
          <TextField id="team-description" label="Description (optional)" value={description} onChange={setDescription} error={errors.description} />
        </>
      )}
    </SchemaForm>
  );
}

function TeamForm({ item, unit, onCancel, onSaved }: { item: TeamView; unit: string; onCancel: () => void; onSaved: () => void }) {
  const [description, setDescription] = useState(item.description ?? '');
  const [gov, setGov] = useGovDraft('team', item);
  return (
    <SchemaForm
      schema={teamSchema}
      label={`Edit team ${item.name}`}
      submitLabel="Save"
      onCancel={onCancel}
      build={() => {
        const spec = teamSpec(item);
        setField(spec, 'description', description.trim() || undefined);
        return applyGov(spec, 'team', gov);
      }}
      send={async (spec) => {
        await api('PUT', `/teams/${enc(item.name)}`, spec);
        onSaved();
      }}
    >
      {(errors) => (
        <>
          <TextField id="team-edit-description" label="Description (optional)" value={description} onChange={setDescription} error={errors.description} />
          <GovernanceFields kind="team" draft={gov} onChange={setGov} errors={errors} unit={unit} idPrefix="team-edit" />
        </>
      )}
    </SchemaForm>
  );
}

function KeyForm({
  item,
  teams,
  models,
  existing,
  unit,
  onCancel,
  onSaved,
}: {
  /** the key to edit (absent: create one) */
  item?: KeyView;
  teams: string[];
  models: string[];
  existing: string[];
  unit: string;
  onCancel: () => void;
  onSaved: (name: string, key?: string) => void;
}) {
  const [name, setName] = useState(item?.name ?? '');
  const [team, setTeam] = useState(item ? (item.team ?? '') : teams.length === 1 ? teams[0]! : '');
  const [app, setApp] = useState(item?.app ?? '');
  const [chosen, setChosen] = useState<string[]>(item?.models ?? []);
  const [expires, setExpires] = useState(toLocalInput(item?.expires_at));
  const [disabled, setDisabled] = useState(!!item?.disabled);
  const [gov, setGov] = useGovDraft('key', item);
  // models the key names that no longer exist stay ticked (and listed) until unticked
  const modelChoices = [...models, ...chosen.filter((m) => !models.includes(m))];

  return (
    <SchemaForm
      schema={keySchema}
      label={item ? `Edit key ${item.name}` : 'New key'}
      submitLabel={item ? 'Save' : 'Create key'}
      busyLabel={item ? 'Saving…' : 'Creating…'}
      onCancel={onCancel}
      build={() => {
        const spec: Record<string, unknown> = item ? keySpec(item) : { name: name.trim() };
        setField(spec, 'team', team || undefined);
        setField(spec, 'app', app.trim() || undefined);
        setField(spec, 'models', chosen.length ? chosen : undefined);
        const d = new Date(expires);
        setField(spec, 'expires_at', expires ? (Number.isNaN(d.getTime()) ? expires : d.toISOString()) : undefined);
        if (item) setField(spec, 'disabled', disabled || undefined);
        return applyGov(spec, 'key', gov);
      }}
      check={(): FieldErrors => (!item && existing.includes(name.trim()) ? { name: `a key named "${name.trim()}" exists already` } : {})}
      send={async (spec) => {
        if (item) {
          await api('PUT', `/keys/${enc(item.name)}`, spec);
          onSaved(item.name);
          return;
        }
        const r = await api<CreatedKeyView>('POST', '/keys', spec);
        if (!r.key) throw new Error('The gateway created the key but did not return it; revoke it and try again.');
        onSaved(r.name, r.key);
      }}
    >
      {(errors) => (
        <>
          <div className="grid-2">
            {item ? (
              <TextField id="key-name" label="Name" value={name} onChange={setName} readOnly hint="A key keeps its name: usage and audit records refer to it." />
            ) : (
              <TextField id="key-name" label="Name" value={name} onChange={setName} error={errors.name} hint={keySchema.shape.name.description} autoFocus placeholder="notebook-app" />
            )}
            <SelectField
              id="key-team"
              label="Team"
              value={team}
              onChange={setTeam}
              options={[{ value: '', label: 'No team' }, ...teams.map((t) => ({ value: t, label: t }))]}
              error={errors.team}
              hint={teams.length ? 'Usage is attributed to this team.' : 'No teams yet: create one on this page to attribute usage.'}
            />
            <TextField id="key-app" label="App (optional)" value={app} onChange={setApp} error={errors.app} hint={keySchema.shape.app.description} />
            <TextField id="key-expires" type="datetime-local" label="Expires (optional)" value={expires} onChange={setExpires} error={errors.expires_at} hint="Local time. Empty: never." />
          </div>
          {item ? <CheckboxField id="key-disabled" label="Disabled (apps using it are refused until enabled again)" checked={disabled} onChange={setDisabled} /> : null}
          <fieldset>
            <legend>Models this key may use</legend>
            {modelChoices.length === 0 ? <p className="muted">No models yet: the key may use every model you create later.</p> : null}
            <p className="hint">None ticked: every model, including ones created later.</p>
            <div className="checks">
              {modelChoices.map((m) => (
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
          <GovernanceFields kind="key" draft={gov} onChange={setGov} errors={errors} unit={unit} idPrefix="key" />
        </>
      )}
    </SchemaForm>
  );
}

function RotateForm({ item, onCancel, onRotated }: { item: KeyView; onCancel: () => void; onRotated: (key: string) => void }) {
  const [grace, setGrace] = useState('0');
  return (
    <SchemaForm
      schema={keySchema.pick({ name: true })}
      label={`Rotate key ${item.name}`}
      submitLabel="Rotate key"
      busyLabel="Rotating…"
      onCancel={onCancel}
      build={() => ({ name: item.name })}
      send={async () => {
        const r = await api<CreatedKeyView>('POST', `/keys/${enc(item.name)}/rotate`, { grace_seconds: Number(grace) });
        if (!r.key) throw new Error('The gateway rotated the key but did not return the new secret.');
        onRotated(r.key);
      }}
    >
      {(errors) => (
        <SelectField
          id="rotate-grace"
          label="The old secret keeps working for"
          value={grace}
          onChange={setGrace}
          options={GRACE_CHOICES}
          error={errors.grace_seconds}
          hint="A grace period lets apps switch to the new secret without an outage."
        />
      )}
    </SchemaForm>
  );
}
