// Virtual MCP servers (mcp_virtual_servers): named bundles of tools at /mcp/v/NAME. An agent
// connected there sees what both it and the bundle allow. Listed with the tools each bundle
// offers now (its patterns expanded over the servers' catalogs), created, edited (with a live
// preview of what the patterns match) and deleted through /admin/api/v1/mcp-virtual-servers.
import { useRef, useState, type FormEvent } from 'react';
import { expandPatterns, mcpVirtualServerSchema, type McpVirtualServerSpec } from '../../../gateway/config/schema';
import { api, apiFieldErrors, enc, get, validate, type FieldErrors } from '../api';
import { useResource } from '../hooks';
import { ConfirmDialog, Dialog, FormError, LoadError, Loading, Section, TableWrap, TextAreaField, TextField, useFocusFirstError } from '../components/ui';

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);
const PREVIEW_MAX = 12;

function ToolList({ names, empty }: { names: string[]; empty: string }) {
  if (!names.length) return <span className="muted">{empty}</span>;
  const shown = names.slice(0, PREVIEW_MAX);
  return (
    <span className="mono">
      {shown.join(', ')}
      {names.length > shown.length ? <span className="muted"> and {names.length - shown.length} more</span> : null}
    </span>
  );
}

/** The "Virtual servers" section of the MCP page: `tools` are the tools the servers offer now. */
export function VirtualServersSection({ tools, dataUrl, canWrite }: { tools: string[]; dataUrl: string | undefined; canWrite: boolean }) {
  const list = useResource((s) => get<{ data: McpVirtualServerSpec[] }>('/mcp-virtual-servers', s), []);
  const [edit, setEdit] = useState<McpVirtualServerSpec | 'new' | null>(null);
  const [remove, setRemove] = useState<string | null>(null);
  const items = list.data?.data ?? [];
  return (
    <Section
      title="Virtual servers"
      actions={
        canWrite ? (
          <button type="button" onClick={() => setEdit('new')}>
            Add virtual server
          </button>
        ) : null
      }
    >
      <p className="hint">
        A virtual server bundles a chosen set of tools at its own address, <code>{`${dataUrl ?? 'http://GATEWAY:4000'}/mcp/v/NAME`}</code>: an agent connected there sees only the tools
        both the bundle and its own permissions allow.
      </p>
      <LoadError error={list.error} retry={list.reload} />
      {list.loading && !list.data ? <Loading what="virtual servers" /> : null}
      {list.data && !items.length ? <p className="muted">No virtual servers. Agents use /mcp, which offers every tool they may use.</p> : null}
      {items.length ? (
        <TableWrap label="Virtual servers">
          <table>
            <thead>
              <tr>
                <th scope="col">Virtual server</th>
                <th scope="col">Address</th>
                <th scope="col">Patterns</th>
                <th scope="col">Offers now</th>
                <th scope="col">Resources of</th>
                {canWrite ? (
                  <th scope="col">
                    <span className="sr-only">Actions</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {items.map((v) => (
                <tr key={v.name}>
                  <th scope="row">
                    {v.name}
                    {v.description ? <div className="cell-note">{v.description}</div> : null}
                  </th>
                  <td className="mono">/mcp/v/{v.name}</td>
                  <td className="mono">{v.tools.join(', ') || <span className="muted">none</span>}</td>
                  <td>
                    <ToolList names={expandPatterns(v.tools, tools)} empty="no tool (now)" />
                  </td>
                  <td className="mono">{v.resources?.join(', ') || <span className="muted">none</span>}</td>
                  {canWrite ? (
                    <td className="row-actions">
                      <button type="button" onClick={() => setEdit(v)} aria-label={`Edit virtual server ${v.name}`}>
                        Edit
                      </button>
                      <button type="button" className="danger-quiet" onClick={() => setRemove(v.name)} aria-label={`Delete virtual server ${v.name}`}>
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
      <Dialog open={edit !== null} onClose={() => setEdit(null)} title={edit === 'new' ? 'Add virtual server' : `Edit virtual server ${edit?.name ?? ''}`} wide>
        {edit !== null ? (
          <VirtualServerForm
            existing={edit === 'new' ? undefined : edit}
            names={items.map((v) => v.name)}
            tools={tools}
            onCancel={() => setEdit(null)}
            onSaved={() => {
              setEdit(null);
              list.reload();
            }}
          />
        ) : null}
      </Dialog>
      <ConfirmDialog
        open={remove !== null}
        title={`Delete virtual server ${remove ?? ''}?`}
        body={<p>Its address stops answering and the sessions open on it end. The agents and their permissions stay.</p>}
        confirmLabel="Delete virtual server"
        onClose={() => setRemove(null)}
        onConfirm={async () => {
          await api('DELETE', `/mcp-virtual-servers/${enc(remove!)}`);
          list.reload();
        }}
      />
    </Section>
  );
}

function VirtualServerForm({ existing, names, tools, onCancel, onSaved }: { existing?: McpVirtualServerSpec; names: string[]; tools: string[]; onCancel: () => void; onSaved: () => void }) {
  const [name, setName] = useState(existing?.name ?? '');
  const [description, setDescription] = useState(existing?.description ?? '');
  const [patterns, setPatterns] = useState((existing?.tools ?? []).join('\n'));
  const [resources, setResources] = useState((existing?.resources ?? []).join('\n'));
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);
  const matched = expandPatterns(lines(patterns), tools);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(undefined);
    const s: Record<string, unknown> = { name: name.trim(), tools: lines(patterns) };
    if (description.trim()) s.description = description.trim();
    if (lines(resources).length) s.resources = lines(resources);
    const v = validate(mcpVirtualServerSchema, s);
    const errs: FieldErrors = v.ok ? {} : { ...v.errors };
    if (!existing && names.includes(name.trim())) errs.name = `a virtual server named "${name.trim()}" exists already`;
    // an error of one pattern (tools[2]) is shown on its field
    for (const f of ['tools', 'resources']) {
      const m = Object.entries(errs).find(([k]) => k.startsWith(f + '['));
      if (m) errs[f] = `line ${Number(/\[(\d+)\]/.exec(m[0])?.[1] ?? 0) + 1}: ${m[1]}`;
    }
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      if (existing) await api('PUT', `/mcp-virtual-servers/${enc(existing.name)}`, s);
      else await api('POST', '/mcp-virtual-servers', s);
      onSaved();
    } catch (err) {
      const fe = apiFieldErrors(err);
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };
  const shape = mcpVirtualServerSchema.shape;
  return (
    <form ref={form} onSubmit={submit} noValidate aria-label="Virtual server" data-guard-unsaved="">
      <div className="grid-2">
        <TextField id="vs-name" label="Name" value={name} onChange={setName} error={errors.name} hint={shape.name.description} readOnly={!!existing} autoFocus={!existing} placeholder="readonly" />
        <TextField id="vs-description" label="Description (optional)" value={description} onChange={setDescription} error={errors.description} />
      </div>
      <TextAreaField id="vs-tools" label="Tools (one pattern per line)" value={patterns} onChange={setPatterns} error={errors.tools} hint={`${shape.tools.description ?? ''}, e.g. files__read_* or *__search`} rows={4} spellCheck={false} />
      <div className="field" aria-live="polite" data-testid="vs-preview">
        <strong>Offers now: {matched.length === 1 ? '1 tool' : `${matched.length} tools`}</strong> <ToolList names={matched} empty="" />
      </div>
      <TextAreaField id="vs-resources" label="Resources (one pattern per line)" value={resources} onChange={setResources} error={errors.resources} hint={shape.resources.description} rows={2} spellCheck={false} />
      <FormError error={error} />
      <div className="actions">
        <button type="button" onClick={onCancel} data-dismiss="">
          Cancel
        </button>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Saving…' : existing ? 'Save virtual server' : 'Add virtual server'}
        </button>
      </div>
    </form>
  );
}
