// Virtual MCP servers (mcp_virtual_servers): named bundles of tools at /mcp/v/NAME. An agent
// connected there sees what both it and the bundle allow. Listed with the tools each bundle
// offers now (its patterns expanded over the servers' catalogs), created, edited (with a live
// preview of what the patterns match) and deleted through /admin/api/v1/mcp-virtual-servers.
import { useState } from 'react';
import { expandPatterns, mcpVirtualServerSchema, type McpVirtualServerSpec } from '../../../gateway/config/schema';
import { api, enc, get, type FieldErrors } from '../api';
import { useResource } from '../hooks';
import { ConfirmDialog, LoadError, Loading, Section, TextAreaField, TextField } from '../components/ui';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';

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
      <DataTable
        label="Virtual servers"
        rows={list.data ? items : undefined}
        rowKey={(v) => v.name}
        empty={<p className="muted">No virtual servers. Agents use /mcp, which offers every tool they may use.</p>}
        columns={[
          {
            header: 'Virtual server',
            cell: (v) => (
              <>
                {v.name}
                {v.description ? <div className="cell-note">{v.description}</div> : null}
              </>
            ),
          },
          { header: 'Address', className: 'mono', cell: (v) => `/mcp/v/${v.name}` },
          { header: 'Patterns', className: 'mono', cell: (v) => v.tools.join(', ') || <span className="muted">none</span> },
          { header: 'Offers now', cell: (v) => <ToolList names={expandPatterns(v.tools, tools)} empty="no tool (now)" /> },
          { header: 'Resources of', className: 'mono', cell: (v) => v.resources?.join(', ') || <span className="muted">none</span> },
        ]}
        actions={
          canWrite
            ? (v) => (
                <>
                  <button type="button" onClick={() => setEdit(v)} aria-label={`Edit virtual server ${v.name}`}>
                    Edit
                  </button>
                  <button type="button" className="danger-quiet" onClick={() => setRemove(v.name)} aria-label={`Delete virtual server ${v.name}`}>
                    Delete
                  </button>
                </>
              )
            : undefined
        }
      />
      <FormDialog open={edit !== null} onClose={() => setEdit(null)} title={edit === 'new' ? 'Add virtual server' : `Edit virtual server ${edit?.name ?? ''}`} wide>
        {() => (
          <VirtualServerForm
            existing={edit === 'new' || edit === null ? undefined : edit}
            names={items.map((v) => v.name)}
            tools={tools}
            onCancel={() => setEdit(null)}
            onSaved={() => {
              setEdit(null);
              list.reload();
            }}
          />
        )}
      </FormDialog>
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

/** An error of one line of a list field (tools[2]) is shown on that field, naming the line. */
function onListFields(errs: FieldErrors): FieldErrors {
  const out = { ...errs };
  for (const f of ['tools', 'resources']) {
    const m = Object.entries(out).find(([k]) => k.startsWith(f + '['));
    if (m && !out[f]) out[f] = `line ${Number(/\[(\d+)\]/.exec(m[0])?.[1] ?? 0) + 1}: ${m[1]}`;
  }
  return out;
}

function VirtualServerForm({ existing, names, tools, onCancel, onSaved }: { existing?: McpVirtualServerSpec; names: string[]; tools: string[]; onCancel: () => void; onSaved: () => void }) {
  const [name, setName] = useState(existing?.name ?? '');
  const [description, setDescription] = useState(existing?.description ?? '');
  const [patterns, setPatterns] = useState((existing?.tools ?? []).join('\n'));
  const [resources, setResources] = useState((existing?.resources ?? []).join('\n'));
  const matched = expandPatterns(lines(patterns), tools);
  const build = () => {
    const s: Record<string, unknown> = { name: name.trim(), tools: lines(patterns) };
    if (description.trim()) s.description = description.trim();
    if (lines(resources).length) s.resources = lines(resources);
    return s;
  };
  const shape = mcpVirtualServerSchema.shape;
  return (
    <SchemaForm
      schema={mcpVirtualServerSchema}
      build={build}
      check={(): FieldErrors => (!existing && names.includes(name.trim()) ? { name: `a virtual server named "${name.trim()}" exists already` } : {})}
      mapErrors={onListFields}
      send={async (s) => {
        if (existing) await api('PUT', `/mcp-virtual-servers/${enc(existing.name)}`, s);
        else await api('POST', '/mcp-virtual-servers', s);
        onSaved();
      }}
      label="Virtual server"
      submitLabel={existing ? 'Save virtual server' : 'Add virtual server'}
      onCancel={onCancel}
    >
      {(errors) => (
        <>
          <div className="grid-2">
            <TextField id="vs-name" label="Name" value={name} onChange={setName} error={errors.name} hint={shape.name.description} readOnly={!!existing} autoFocus={!existing} placeholder="readonly" />
            <TextField id="vs-description" label="Description (optional)" value={description} onChange={setDescription} error={errors.description} />
          </div>
          <TextAreaField id="vs-tools" label="Tools (one pattern per line)" value={patterns} onChange={setPatterns} error={errors.tools} hint={`${shape.tools.description ?? ''}, e.g. files__read_* or *__search`} rows={4} spellCheck={false} />
          <div className="field" aria-live="polite" data-testid="vs-preview">
            <strong>Offers now: {matched.length === 1 ? '1 tool' : `${matched.length} tools`}</strong> <ToolList names={matched} empty="" />
          </div>
          <TextAreaField id="vs-resources" label="Resources (one pattern per line)" value={resources} onChange={setResources} error={errors.resources} hint={shape.resources.description} rows={2} spellCheck={false} />
        </>
      )}
    </SchemaForm>
  );
}
