// MCP servers and agents: register the network's MCP servers (a local command or a URL), test
// them, watch their state, restarts, stderr and catalog; give agents keys and tool permissions
// (a matrix of agents × tools, the patterns shown expanded, each cell a toggle); virtual servers
// (McpVirtual.tsx): named bundles of tools at /mcp/v/NAME.
import { useState } from 'react';
import { agentSchema, mcpServerSchema, mcpTransportIssues, type McpServerSpec } from '../../../gateway/config/schema';
import {
  api,
  enc,
  get,
  type AgentView,
  type CreatedAgentView,
  type FieldErrors,
  type McpServerDetail,
  type McpServerView,
  type McpTestResult,
  type StatusBody,
  type TeamView,
} from '../api';
import { useAuth } from '../auth';
import { useResource } from '../hooks';
import {
  Badge,
  ConfirmDialog,
  Dialog,
  EmptyState,
  FormError,
  LoadError,
  Loading,
  NumberField,
  PageHeader,
  SecretDialog,
  Section,
  SelectField,
  TableWrap,
  TextAreaField,
  TextField,
  fmtTime,
} from '../components/ui';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { dataUrlOf } from './Overview';
import { VirtualServersSection } from './McpVirtual';

const lines = (s: string) => s.split('\n').map((l) => l.trim()).filter(Boolean);

/** "NAME=value" lines → a record; a line "NAME" alone keeps the stored value (null). */
function pairs(s: string): Record<string, string | null> | undefined {
  const out: Record<string, string | null> = {};
  for (const l of lines(s)) {
    const i = l.indexOf('=');
    if (i < 0) out[l] = null;
    else out[l.slice(0, i).trim()] = l.slice(i + 1).trim();
  }
  return Object.keys(out).length ? out : undefined;
}
const unpairs = (r: Record<string, string | null> | undefined) => Object.entries(r ?? {}).map(([k, v]) => (v === null ? k : `${k}=${v}`)).join('\n');

function stateBadge(v: McpServerView) {
  const s = v.status?.state ?? (v.disabled ? 'disabled' : 'stopped');
  const tone = s === 'ready' ? 'ok' : s === 'backoff' ? 'bad' : s === 'starting' ? 'info' : 'muted';
  return <Badge tone={tone}>{s === 'backoff' ? 'restarting' : s}</Badge>;
}

export function McpPage() {
  const { canWrite, isOwner } = useAuth();
  const servers = useResource((s) => get<{ data: McpServerView[] }>('/mcp-servers', s), [], 5000);
  const agents = useResource((s) => get<{ data: AgentView[] }>('/agents', s), []);
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const status = useResource((s) => get<StatusBody>('/status', s), []);
  const serverList = servers.data?.data ?? [];
  const agentList = agents.data?.data ?? [];
  const catalogs = useResource(
    async (s) => Promise.all(serverList.map((m) => get<McpServerDetail>(`/mcp-servers/${enc(m.name)}/status`, s).catch(() => undefined))),
    [serverList.map((m) => `${m.name}:${m.status?.catalog_at ?? ''}`).join(',')],
  );
  const [editServer, setEditServer] = useState<McpServerView | 'new' | null>(null);
  const [details, setDetails] = useState<string | null>(null);
  const [removeServer, setRemoveServer] = useState<string | null>(null);
  const [editAgent, setEditAgent] = useState<AgentView | 'new' | null>(null);
  const [removeAgent, setRemoveAgent] = useState<string | null>(null);
  const [newKey, setNewKey] = useState<{ name: string; key: string } | null>(null);
  const [matrixError, setMatrixError] = useState<unknown>();
  const tools = (catalogs.data ?? []).flatMap((d) => d?.catalog.tools.map((t) => t.name) ?? []);

  const toggle = async (a: AgentView, tool: string, allowed: boolean) => {
    setMatrixError(undefined);
    const { prefix: _p, created_at: _c, allowed_tools: _t, ...spec } = a;
    let allow = (spec.tools ?? []).filter((t) => t !== tool);
    let deny = (spec.deny ?? []).filter((t) => t !== tool);
    if (allowed) deny = [...deny, tool];
    else allow = [...allow, tool];
    try {
      await api('PUT', `/agents/${enc(a.name)}`, { ...spec, tools: allow, deny });
      agents.reload();
    } catch (e) {
      setMatrixError(e);
    }
  };

  return (
    <>
      <PageHeader
        title="MCP servers & agents"
        intro="Register the MCP servers of your network once; every agent connects to the gateway's /mcp with its own key and sees only the tools it is allowed, named server__tool. Every tool call is authorized, rate limited and recorded."
        actions={
          canWrite ? (
            <button type="button" className="primary" onClick={() => setEditServer('new')}>
              Add MCP server
            </button>
          ) : null
        }
      />
      <Section title="MCP servers">
        <LoadError error={servers.error} retry={servers.reload} />
        {servers.loading && !servers.data ? <Loading what="MCP servers" /> : null}
        {servers.data && serverList.length === 0 ? (
          <EmptyState title="No MCP servers yet">
            <p>Add a server that runs on this machine (a command, e.g. an MCP file server) or one on the network (its Streamable HTTP URL).</p>
          </EmptyState>
        ) : null}
        <DataTable
          label="MCP servers"
          rows={serverList.length ? serverList : undefined}
          rowKey={(m) => m.name}
          columns={[
            { header: 'Server', cell: (m) => m.name },
            { header: 'Runs', className: 'mono', cell: (m) => (m.transport === 'stdio' ? [m.command, ...(m.args ?? [])].join(' ') : `${m.transport} ${m.url ?? ''}`) },
            {
              header: 'State',
              cell: (m) => (
                <>
                  {stateBadge(m)}
                  {m.status?.last_error ? <div className="cell-note">{m.status.last_error}</div> : null}
                </>
              ),
            },
            { header: 'Tools', cell: (m) => m.status?.tools ?? '—' },
            { header: 'Restarts', cell: (m) => m.status?.restarts ?? 0 },
          ]}
          actions={(m) => (
            <>
              <button type="button" onClick={() => setDetails(m.name)} aria-label={`Details of MCP server ${m.name}`}>
                Details
              </button>
              {canWrite && (isOwner || m.transport !== 'stdio') ? (
                <>
                  <button type="button" onClick={() => setEditServer(m)} aria-label={`Edit MCP server ${m.name}`}>
                    Edit
                  </button>
                  <button type="button" className="danger-quiet" onClick={() => setRemoveServer(m.name)} aria-label={`Delete MCP server ${m.name}`}>
                    Delete
                  </button>
                </>
              ) : null}
            </>
          )}
        />
      </Section>

      <Section
        title="Agents"
        actions={
          canWrite ? (
            <button type="button" onClick={() => setEditAgent('new')}>
              Create agent
            </button>
          ) : null
        }
      >
        <LoadError error={agents.error} retry={agents.reload} />
        {agents.loading && !agents.data ? <Loading what="agents" /> : null}
        <DataTable
          label="Agents"
          rows={agents.data ? agentList : undefined}
          rowKey={(a) => a.name}
          empty={<p className="muted">No agents yet. An agent gets a key and the tools it may call (none until you allow some).</p>}
          columns={[
            {
              header: 'Agent',
              cell: (a) => (
                <>
                  {a.name}
                  <div className="cell-note mono">{a.prefix.endsWith('…') ? a.prefix : `${a.prefix}…`}</div>
                  {a.disabled ? <Badge tone="warn">disabled</Badge> : null}
                </>
              ),
            },
            { header: 'Team', cell: (a) => a.team ?? <span className="muted">—</span> },
            { header: 'Allow', className: 'mono', cell: (a) => a.tools?.join(', ') || <span className="muted">nothing</span> },
            { header: 'Deny', className: 'mono', cell: (a) => a.deny?.join(', ') || <span className="muted">—</span> },
            { header: 'Created', cell: (a) => fmtTime(a.created_at) },
          ]}
          actions={
            canWrite
              ? (a) => (
                  <>
                    <button type="button" onClick={() => setEditAgent(a)} aria-label={`Edit agent ${a.name}`}>
                      Edit
                    </button>
                    <button type="button" className="danger-quiet" onClick={() => setRemoveAgent(a.name)} aria-label={`Delete agent ${a.name}`}>
                      Delete
                    </button>
                  </>
                )
              : undefined
          }
        />
      </Section>

      {agentList.length && tools.length ? (
        <Section title="Permissions">
          <p className="hint">Each agent's patterns expanded over the tools the servers offer now. {canWrite ? 'A cell toggles that one tool (an exact allow, or an exact deny, which wins over patterns).' : ''}</p>
          <FormError error={matrixError} />
          <TableWrap label="Permissions: tools × agents">
            <table>
              <thead>
                <tr>
                  <th scope="col">Tool</th>
                  {agentList.map((a) => (
                    <th scope="col" key={a.name}>
                      {a.name}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {tools.map((t) => (
                  <tr key={t}>
                    <th scope="row" className="mono">
                      {t}
                    </th>
                    {agentList.map((a) => {
                      const allowed = a.allowed_tools.includes(t);
                      return (
                        <td key={a.name}>
                          {canWrite ? (
                            <input type="checkbox" className="matrix-cell" checked={allowed} aria-label={`${a.name} may call ${t}`} onChange={() => void toggle(a, t, allowed)} />
                          ) : allowed ? (
                            'allowed'
                          ) : (
                            <span className="muted">—</span>
                          )}
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        </Section>
      ) : null}

      <VirtualServersSection tools={tools} dataUrl={dataUrlOf(status.data)} canWrite={canWrite} />

      <FormDialog open={editServer !== null} onClose={() => setEditServer(null)} title={editServer === 'new' ? 'Add MCP server' : `Edit MCP server ${editServer?.name ?? ''}`} wide>
        {() => (
          <ServerForm
            existing={editServer === 'new' || editServer === null ? undefined : editServer}
            names={serverList.map((m) => m.name)}
            stdioAllowed={isOwner}
            onCancel={() => setEditServer(null)}
            onSaved={() => {
              setEditServer(null);
              servers.reload();
            }}
          />
        )}
      </FormDialog>
      <Dialog open={details !== null} onClose={() => setDetails(null)} title={`MCP server ${details ?? ''}`} wide>
        {details !== null ? <ServerDetails name={details} /> : null}
      </Dialog>
      <FormDialog open={editAgent !== null} onClose={() => setEditAgent(null)} title={editAgent === 'new' ? 'Create agent' : `Edit agent ${editAgent?.name ?? ''}`} wide>
        {() => (
          <AgentForm
            existing={editAgent === 'new' || editAgent === null ? undefined : editAgent}
            names={agentList.map((a) => a.name)}
            teams={(teams.data?.data ?? []).map((t) => t.name)}
            onCancel={() => setEditAgent(null)}
            onSaved={(created) => {
              setEditAgent(null);
              if (created?.key) setNewKey({ name: created.name, key: created.key });
              agents.reload();
            }}
          />
        )}
      </FormDialog>
      <SecretDialog
        secret={newKey?.key ?? null}
        title={`Key for agent ${newKey?.name ?? ''}`}
        what="key"
        onClose={() => setNewKey(null)}
        usage={
          <p className="hint">
            The agent connects its MCP client to <code>{`${dataUrlOf(status.data) ?? 'http://GATEWAY:4000'}/mcp`}</code> with the header <code>Authorization: Bearer &lt;key&gt;</code>.
          </p>
        }
      />
      <ConfirmDialog
        open={removeServer !== null}
        title={`Delete MCP server ${removeServer ?? ''}?`}
        body={<p>Its tools disappear from every agent at once; a stdio server's process is stopped. Past calls stay in the ledger.</p>}
        confirmLabel="Delete server"
        onClose={() => setRemoveServer(null)}
        onConfirm={async () => {
          await api('DELETE', `/mcp-servers/${enc(removeServer!)}`);
          servers.reload();
          agents.reload();
        }}
      />
      <ConfirmDialog
        open={removeAgent !== null}
        title={`Delete agent ${removeAgent ?? ''}?`}
        body={<p>Its key stops working and its open sessions end. Past calls stay in the ledger.</p>}
        confirmLabel="Delete agent"
        onClose={() => setRemoveAgent(null)}
        onConfirm={async () => {
          await api('DELETE', `/agents/${enc(removeAgent!)}`);
          agents.reload();
        }}
      />
    </>
  );
}

function ServerDetails({ name }: { name: string }) {
  const d = useResource((s) => get<McpServerDetail>(`/mcp-servers/${enc(name)}/status`, s), [name], 3000);
  if (d.error) return <LoadError error={d.error} retry={d.reload} />;
  if (!d.data) return <Loading what="the server's state" />;
  const x = d.data;
  return (
    <div>
      <dl className="facts">
        <dt>State</dt>
        <dd>{x.state}</dd>
        <dt>Process</dt>
        <dd>{x.pid ?? '—'}</dd>
        <dt>Restarts</dt>
        <dd>{x.restarts}</dd>
        <dt>Last error</dt>
        <dd>{x.last_error ?? '—'}</dd>
        <dt>Catalog read</dt>
        <dd>{x.catalog_at ? fmtTime(x.catalog_at) : '—'}</dd>
      </dl>
      <h3>Tools ({x.catalog.tools.length})</h3>
      <ul className="plain-list">
        {x.catalog.tools.map((t) => (
          <li key={t.name}>
            <code>{t.name}</code> {t.annotations?.readOnlyHint === true ? <Badge tone="info">read-only</Badge> : null} {t.annotations?.destructiveHint === true ? <Badge tone="warn">destructive</Badge> : null}
            {t.description ? <div className="cell-note">{t.description}</div> : null}
          </li>
        ))}
      </ul>
      {x.catalog.prompts.length ? (
        <>
          <h3>Prompts ({x.catalog.prompts.length})</h3>
          <p className="mono">{x.catalog.prompts.map((p) => p.name).join(', ')}</p>
        </>
      ) : null}
      {x.catalog.resources.length ? (
        <>
          <h3>Resources ({x.catalog.resources.length})</h3>
          <p className="mono">{x.catalog.resources.slice(0, 20).map((r) => r.uri).join(', ')}</p>
        </>
      ) : null}
      <h3 id="stderr-title">Log (stderr)</h3>
      <pre className="log" tabIndex={0} role="region" aria-labelledby="stderr-title">
        {x.stderr.join('\n') || '(empty)'}
      </pre>
    </div>
  );
}

function ServerForm({ existing, names, stdioAllowed, onCancel, onSaved }: { existing?: McpServerView; names: string[]; stdioAllowed: boolean; onCancel: () => void; onSaved: () => void }) {
  const [name, setName] = useState(existing?.name ?? '');
  const [transport, setTransport] = useState<string>(existing?.transport ?? (stdioAllowed ? 'stdio' : 'http'));
  const [command, setCommand] = useState(existing?.command ?? '');
  const [args, setArgs] = useState((existing?.args ?? []).join('\n'));
  const [env, setEnv] = useState(unpairs(existing?.env));
  const [url, setUrl] = useState(existing?.url ?? '');
  const [headers, setHeaders] = useState(unpairs(existing?.headers));
  const [timeout, setTimeoutMs] = useState(existing?.call_timeout_ms ? String(existing.call_timeout_ms) : '');
  const [test, setTest] = useState<McpTestResult | null>(null);

  const spec = (): Record<string, unknown> => {
    const s: Record<string, unknown> = { name: name.trim(), transport };
    if (transport === 'stdio') {
      if (command.trim()) s.command = command.trim();
      if (lines(args).length) s.args = lines(args);
      const e = pairs(env);
      if (e) s.env = e;
    } else {
      if (url.trim()) s.url = url.trim();
      const h = pairs(headers);
      if (h) s.headers = h;
    }
    if (timeout.trim()) s.call_timeout_ms = Number(timeout);
    for (const k of ['stateful', 'start', 'tool_calls_per_minute', 'max_response_bytes', 'disabled'] as const) if (existing?.[k] !== undefined) s[k] = existing[k];
    return s;
  };
  // what only the whole configuration checks (a transport's required fields), and a taken name
  const check = (s: unknown): FieldErrors => {
    const errs: FieldErrors = Object.fromEntries(mcpTransportIssues(s as McpServerSpec).map((x) => [x.field, x.message]));
    if (!existing && names.includes(name.trim())) errs.name = `a server named "${name.trim()}" exists already`;
    return errs;
  };
  const transports = [
    ...(stdioAllowed || transport === 'stdio' ? [{ value: 'stdio', label: 'A command on this machine (stdio)' }] : []),
    { value: 'http', label: 'A URL (Streamable HTTP)' },
    { value: 'sse', label: 'A URL (legacy HTTP+SSE)' },
  ];
  // env.X / headers.X errors are shown on their text area
  const onMaps = (errs: FieldErrors): FieldErrors => {
    const out = { ...errs };
    for (const f of ['env', 'headers']) {
      const m = Object.entries(out).find(([k]) => k.startsWith(f));
      if (m && !out[f]) out[f] = m[1];
    }
    return out;
  };
  return (
    <SchemaForm
      schema={mcpServerSchema}
      build={spec}
      check={check}
      mapErrors={onMaps}
      send={async (s) => {
        if (existing) await api('PUT', `/mcp-servers/${enc(existing.name)}`, s);
        else await api('POST', '/mcp-servers', s);
        onSaved();
      }}
      label="MCP server"
      submitLabel="Save server"
      onCancel={onCancel}
      extraActions={(checked, busy) => (
        <button
          type="button"
          disabled={busy}
          onClick={() => {
            setTest(null);
            checked(async (s) => setTest(await api<McpTestResult>('POST', '/mcp-servers/test', s)));
          }}
        >
          Test
        </button>
      )}
    >
      {(errors) => (
        <>
          <div className="grid-2">
            <TextField id="mcp-name" label="Name" value={name} onChange={setName} error={errors.name} hint={mcpServerSchema.shape.name.description} readOnly={!!existing} autoFocus={!existing} placeholder="files" />
            <SelectField id="mcp-transport" label="Runs as" value={transport} onChange={setTransport} options={transports} error={errors.transport} hint={stdioAllowed ? undefined : 'Only an owner may add a command on this machine.'} />
          </div>
          {transport === 'stdio' ? (
            <>
              <TextField id="mcp-command" label="Command" value={command} onChange={setCommand} error={errors.command} hint={mcpServerSchema.shape.command.description} placeholder="/usr/bin/node" />
              <TextAreaField id="mcp-args" label="Arguments (one per line)" value={args} onChange={setArgs} error={errors.args} rows={3} />
              <TextAreaField id="mcp-env" label="Environment (NAME=value, one per line)" value={env} onChange={setEnv} error={errors.env} hint="Stored encrypted. A name alone keeps its stored value." rows={3} />
            </>
          ) : (
            <>
              <TextField id="mcp-url" label="URL" value={url} onChange={setUrl} error={errors.url} hint={mcpServerSchema.shape.url.description} placeholder="http://10.0.0.9:3000/mcp" />
              <TextAreaField id="mcp-headers" label="Headers (Name=value, one per line)" value={headers} onChange={setHeaders} error={errors.headers} hint="Stored encrypted, e.g. Authorization=Bearer …. A name alone keeps its stored value." rows={2} />
            </>
          )}
          <NumberField id="mcp-timeout" label="Call timeout (ms, optional)" value={timeout} onChange={setTimeoutMs} error={errors.call_timeout_ms} hint={mcpServerSchema.shape.call_timeout_ms.description} />
          {test ? (
            <div role="status" className={test.ok ? 'ok-text' : 'field-error'}>
              {test.ok ? `Connected${test.server ? ` to ${test.server.name} ${test.server.version}` : ''}: ${test.tools.length} tools (${test.tools.map((t) => t.name).join(', ')}).` : `Test failed: ${test.error ?? 'unknown error'}`}
            </div>
          ) : null}
        </>
      )}
    </SchemaForm>
  );
}

/** The first error of a list field's lines (tools[2]) is shown on the field. */
function onListFields(errs: FieldErrors): FieldErrors {
  const out = { ...errs };
  for (const f of ['tools', 'deny', 'resources', 'resources_deny']) {
    const m = Object.entries(out).find(([k]) => k.startsWith(f + '['));
    if (m && !out[f]) out[f] = m[1];
  }
  return out;
}

function AgentForm({ existing, names, teams, onCancel, onSaved }: { existing?: AgentView; names: string[]; teams: string[]; onCancel: () => void; onSaved: (created?: CreatedAgentView) => void }) {
  const [name, setName] = useState(existing?.name ?? '');
  const [team, setTeam] = useState(existing?.team ?? '');
  const [tools, setTools] = useState((existing?.tools ?? []).join('\n'));
  const [deny, setDeny] = useState((existing?.deny ?? []).join('\n'));
  const [resources, setResources] = useState((existing?.resources ?? []).join('\n'));
  const [resourcesDeny, setResourcesDeny] = useState((existing?.resources_deny ?? []).join('\n'));
  const [perMinute, setPerMinute] = useState(existing?.calls_per_minute ? String(existing.calls_per_minute) : '');
  const build = () => {
    const s: Record<string, unknown> = { name: name.trim(), tools: lines(tools), deny: lines(deny) };
    if (team) s.team = team;
    if (lines(resources).length) s.resources = lines(resources);
    if (lines(resourcesDeny).length) s.resources_deny = lines(resourcesDeny);
    if (perMinute.trim()) s.calls_per_minute = Number(perMinute);
    if (existing?.disabled !== undefined) s.disabled = existing.disabled;
    return s;
  };
  return (
    <SchemaForm
      schema={agentSchema}
      build={build}
      check={(): FieldErrors => (!existing && names.includes(name.trim()) ? { name: `an agent named "${name.trim()}" exists already` } : {})}
      mapErrors={onListFields}
      send={async (s) => {
        if (existing) {
          await api('PUT', `/agents/${enc(existing.name)}`, s);
          onSaved();
        } else onSaved(await api<CreatedAgentView>('POST', '/agents', s));
      }}
      label="Agent"
      submitLabel={existing ? 'Save agent' : 'Create agent'}
      onCancel={onCancel}
    >
      {(errors) => (
        <>
          <div className="grid-2">
            <TextField id="agent-name" label="Name" value={name} onChange={setName} error={errors.name} hint={agentSchema.shape.name.description} readOnly={!!existing} autoFocus={!existing} placeholder="support-bot" />
            <SelectField id="agent-team" label="Team" value={team} onChange={setTeam} options={[{ value: '', label: 'No team' }, ...teams.map((t) => ({ value: t, label: t }))]} error={errors.team} />
          </div>
          <TextAreaField id="agent-tools" label="Allowed tools (one pattern per line)" value={tools} onChange={setTools} error={errors.tools} hint={`${agentSchema.shape.tools.description ?? ''}, e.g. files__read_* or tickets__*`} rows={3} />
          <TextAreaField id="agent-deny" label="Denied tools (one pattern per line)" value={deny} onChange={setDeny} error={errors.deny} hint={agentSchema.shape.deny.description} rows={2} />
          <div className="grid-2">
            <TextAreaField id="agent-resources" label="Allowed resources (one pattern per line)" value={resources} onChange={setResources} error={errors.resources} hint={agentSchema.shape.resources.description} rows={2} spellCheck={false} />
            <TextAreaField id="agent-resources-deny" label="Denied resources (one pattern per line)" value={resourcesDeny} onChange={setResourcesDeny} error={errors.resources_deny} hint={agentSchema.shape.resources_deny.description} rows={2} spellCheck={false} />
          </div>
          <NumberField id="agent-rate" label="Tool calls per minute (optional)" value={perMinute} onChange={setPerMinute} error={errors.calls_per_minute} hint={agentSchema.shape.calls_per_minute.description} />
        </>
      )}
    </SchemaForm>
  );
}
