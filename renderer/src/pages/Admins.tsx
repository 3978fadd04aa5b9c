// Admins: admin accounts and roles (owners manage them), and API tokens for automation.
import { useState } from 'react';
import { api, ApiError, enc, get, type AdminUser, type ApiToken, type CreatedApiToken, type FieldErrors, type Role } from '../api';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { ROLE_RANK, useAuth } from '../auth';
import { useResource } from '../hooks';
import { Badge, CheckboxField, ConfirmDialog, FormError, LoadError, Loading, PageHeader, SecretDialog, Section, SelectField, TextField, fmtTime } from '../components/ui';
import { MIN_PASSWORD, ROLES, tokenCreateSchema, userCreateSchema, userUpdateSchema } from '../../../gateway/config/admin-schema';

const ROLE_HELP: Record<Role, string> = {
  owner: 'Everything, including admin accounts.',
  admin: 'Everything except admin accounts.',
  auditor: 'Reads everything and exports audit data; changes nothing.',
};
const roleOptions = (max: number) => ROLES.filter((r) => ROLE_RANK[r] <= max).map((r) => ({ value: r, label: `${r} — ${ROLE_HELP[r]}` }));

function forbidden(e: unknown): boolean {
  return e instanceof ApiError && e.status === 403;
}

export function AdminsPage() {
  const { user, isOwner, canWrite, rank } = useAuth();
  const users = useResource((s) => get<{ data: AdminUser[] }>('/users', s), []);
  const tokens = useResource((s) => get<{ data: ApiToken[] }>('/tokens', s), []);
  const [creating, setCreating] = useState(false);
  const [editing, setEditing] = useState<AdminUser | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const [creatingToken, setCreatingToken] = useState(false);
  const [newToken, setNewToken] = useState<{ name: string; token: string } | null>(null);
  const [revoking, setRevoking] = useState<string | null>(null);
  const [rowError, setRowError] = useState<unknown>();

  const unlock = async (u: AdminUser) => {
    setRowError(undefined);
    try {
      await api('PUT', `/users/${enc(u.name)}`, {});
      users.reload();
    } catch (e) {
      setRowError(e);
    }
  };

  return (
    <>
      <PageHeader title="Admins" intro="Who may use this admin app, with which role, and the API tokens scripts use instead of a password." />
      <Section
        title="Admin accounts"
        actions={
          isOwner ? (
            <button type="button" className="primary" onClick={() => setCreating(true)}>
              Add admin
            </button>
          ) : null
        }
      >
        <ul className="roles-legend">
          {ROLES.slice()
            .reverse()
            .map((r) => (
              <li key={r}>
                <span className={`role role-${r}`}>{r}</span> {ROLE_HELP[r]}
              </li>
            ))}
        </ul>
        {forbidden(users.error) ? (
          <p className="notice info">Only owners and admins can see the admin accounts.</p>
        ) : (
          <LoadError error={users.error} retry={users.reload} />
        )}
        <FormError error={rowError} />
        {users.loading ? <Loading what="admin accounts" /> : null}
        <DataTable
          label="Admin accounts"
          rows={users.data?.data}
          rowKey={(u) => u.name}
          columns={[
            {
              header: 'User',
              cell: (u) => (
                <>
                  {u.name} {u.name === user.name ? <span className="cell-note">(you)</span> : null}
                </>
              ),
            },
            { header: 'Role', cell: (u) => <span className={`role role-${u.role}`}>{u.role}</span> },
            {
              header: 'State',
              cell: (u) => (u.disabled ? <Badge tone="warn">disabled</Badge> : u.locked_until ? <Badge tone="bad">locked until {fmtTime(u.locked_until)}</Badge> : <Badge tone="ok">active</Badge>),
            },
            { header: 'Created', cell: (u) => fmtTime(u.created_at) },
          ]}
          actions={
            isOwner
              ? (u) => (
                  <>
                    {u.locked_until ? (
                      <button type="button" onClick={() => void unlock(u)} aria-label={`Unlock ${u.name}`}>
                        Unlock
                      </button>
                    ) : null}
                    <button type="button" onClick={() => setEditing(u)} aria-label={`Edit ${u.name}`}>
                      Edit
                    </button>
                    <button type="button" className="danger-quiet" onClick={() => setRemoving(u.name)} aria-label={`Delete ${u.name}`}>
                      Delete
                    </button>
                  </>
                )
              : undefined
          }
        />
        {users.data && !isOwner ? <p className="hint">Only owners can add, change or delete admin accounts.</p> : null}
      </Section>

      <Section
        title="API tokens"
        actions={
          canWrite ? (
            <button type="button" onClick={() => setCreatingToken(true)}>
              Create token
            </button>
          ) : null
        }
      >
        <p className="intro">
          For scripts and automation: send <code>Authorization: Bearer &lt;token&gt;</code> to the admin API. A token acts with its role; it is shown
          once and stored only as a hash.
        </p>
        {forbidden(tokens.error) ? <p className="notice info">Only owners and admins can see API tokens.</p> : <LoadError error={tokens.error} retry={tokens.reload} />}
        <DataTable
          label="API tokens"
          rows={tokens.data?.data}
          rowKey={(t) => t.name}
          empty={<p className="muted">No API tokens.</p>}
          columns={[
            {
              header: 'Token',
              cell: (t) => (
                <>
                  {t.name}
                  <div className="cell-note mono">{t.prefix}</div>
                </>
              ),
            },
            { header: 'Role', cell: (t) => <span className={`role role-${t.role}`}>{t.role}</span> },
            {
              header: 'Created',
              cell: (t) => (
                <>
                  {fmtTime(t.created_at)}
                  <div className="cell-note">by {t.created_by}</div>
                </>
              ),
            },
            { header: 'Last used', cell: (t) => (t.last_used_at ? fmtTime(t.last_used_at) : <span className="muted">never</span>) },
          ]}
          actions={
            canWrite
              ? (t) => (
                  <button type="button" className="danger-quiet" onClick={() => setRevoking(t.name)} aria-label={`Revoke token ${t.name}`}>
                    Revoke
                  </button>
                )
              : undefined
          }
        />
      </Section>

      <FormDialog open={creating} onClose={() => setCreating(false)} title="Add admin">
        {() => (
          <UserForm
            onCancel={() => setCreating(false)}
            onSaved={() => {
              setCreating(false);
              users.reload();
            }}
          />
        )}
      </FormDialog>
      <FormDialog open={editing !== null} onClose={() => setEditing(null)} title={`Edit ${editing?.name ?? ''}`}>
        {() => (
          <UserForm
            orig={editing!}
            onCancel={() => setEditing(null)}
            onSaved={() => {
              setEditing(null);
              users.reload();
            }}
          />
        )}
      </FormDialog>
      <FormDialog open={creatingToken} onClose={() => setCreatingToken(false)} title="Create API token">
        {() => (
          <TokenForm
            maxRank={rank}
            onCancel={() => setCreatingToken(false)}
            onCreated={(name, token) => {
              setCreatingToken(false);
              setNewToken({ name, token });
              tokens.reload();
            }}
          />
        )}
      </FormDialog>
      <SecretDialog secret={newToken?.token ?? null} title={`API token ${newToken?.name ?? ''}`} what="API token" onClose={() => setNewToken(null)} />
      <ConfirmDialog
        open={removing !== null}
        title={`Delete ${removing ?? ''}?`}
        body={<p>The account can no longer sign in and its sessions end. The last owner cannot be deleted.</p>}
        confirmLabel="Delete account"
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          await api('DELETE', `/users/${enc(removing!)}`);
          users.reload();
        }}
      />
      <ConfirmDialog
        open={revoking !== null}
        title={`Revoke token ${revoking ?? ''}?`}
        body={<p>Scripts using this token are refused from now on.</p>}
        confirmLabel="Revoke token"
        onClose={() => setRevoking(null)}
        onConfirm={async () => {
          await api('DELETE', `/tokens/${enc(revoking!)}`);
          tokens.reload();
        }}
      />
    </>
  );
}

function UserForm({ orig, onCancel, onSaved }: { orig?: AdminUser; onCancel: () => void; onSaved: () => void }) {
  const [name, setName] = useState(orig?.name ?? '');
  const [role, setRole] = useState<Role>(orig?.role ?? 'admin');
  const [password, setPassword] = useState('');
  const [confirm, setConfirm] = useState('');
  const [disabled, setDisabled] = useState(orig?.disabled ?? false);
  const build = () => {
    if (!orig) return { name: name.trim(), password, role };
    const body: Record<string, unknown> = {};
    if (role !== orig.role) body.role = role;
    if (password) body.password = password;
    if (disabled !== orig.disabled) body.disabled = disabled;
    return body;
  };
  return (
    <SchemaForm<unknown>
      schema={orig ? userUpdateSchema : userCreateSchema}
      label={orig ? `Edit ${orig.name}` : 'New admin'}
      submitLabel={orig ? 'Save changes' : 'Add admin'}
      onCancel={onCancel}
      build={build}
      check={(): FieldErrors => (password && confirm !== password ? { confirm: 'does not match the password' } : {})}
      send={async (body) => {
        if (orig) await api('PUT', `/users/${enc(orig.name)}`, body);
        else await api('POST', '/users', body);
        onSaved();
      }}
    >
      {(errors) => (
        <>
          <TextField id="user-name" label="User name" value={name} onChange={setName} error={errors.name} disabled={!!orig} autoFocus={!orig} autoComplete="off" />
          <SelectField id="user-role" label="Role" value={role} onChange={(v) => setRole(v as Role)} options={roleOptions(2)} error={errors.role} />
          <TextField
            id="user-password"
            type="password"
            label={orig ? 'New password (optional)' : 'Password'}
            value={password}
            onChange={setPassword}
            error={errors.password}
            autoComplete="new-password"
            hint={`At least ${MIN_PASSWORD} characters.${orig ? ' Setting it signs the user out everywhere.' : ''}`}
          />
          <TextField id="user-confirm" type="password" label="Repeat the password" value={confirm} onChange={setConfirm} error={errors.confirm} autoComplete="new-password" />
          {orig ? <CheckboxField id="user-disabled" label="Disabled (cannot sign in)" checked={disabled} onChange={setDisabled} /> : null}
        </>
      )}
    </SchemaForm>
  );
}

function TokenForm({ maxRank, onCancel, onCreated }: { maxRank: number; onCancel: () => void; onCreated: (name: string, token: string) => void }) {
  const [name, setName] = useState('');
  const [role, setRole] = useState<Role>('auditor');
  return (
    <SchemaForm
      schema={tokenCreateSchema}
      label="New API token"
      submitLabel="Create token"
      busyLabel="Creating…"
      onCancel={onCancel}
      build={() => ({ name: name.trim(), role })}
      send={async (body) => {
        const r = await api<CreatedApiToken>('POST', '/tokens', body);
        onCreated(r.name, r.token);
      }}
    >
      {(errors) => (
        <>
          <TextField id="token-name" label="Name" value={name} onChange={setName} error={errors.name} hint="What uses it, e.g. backup-script." autoFocus />
          <SelectField id="token-role" label="Role" value={role} onChange={(v) => setRole(v as Role)} options={roleOptions(maxRank)} error={errors.role} hint="A token cannot have more rights than you." />
        </>
      )}
    </SchemaForm>
  );
}
