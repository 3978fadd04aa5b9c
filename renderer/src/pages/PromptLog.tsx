// Prompt log (issue 12, section 5): switch prompt and response logging per team (off, metadata,
// redacted, full; with a retention period), driven by the same zod schema as the API, and read
// what was logged. Listing shows no text; opening one request's prompt and response is itself an
// audit record (the API writes it), and the page says so before it is opened.
import { useState } from 'react';
import { promptLoggingSchema, teamSchema } from '../../../gateway/config/schema';
import { enc, get, api, type PromptLogEntryView, type TeamView } from '../api';
import { useAuth } from '../auth';
import { useResource } from '../hooks';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { EnumField, defaultOf, describeOf, numOrUndefined, setField } from '../components/schema-fields';
import { Badge, Dialog, LoadError, Loading, NumberField, PageHeader, Section, SelectField, fmtTime } from '../components/ui';
import { teamSpec } from './Keys';

const modeShape = promptLoggingSchema.shape;

function modeBadge(mode: string | undefined) {
  const m = mode ?? 'off';
  return <Badge tone={m === 'off' ? 'muted' : m === 'full' ? 'warn' : 'info'}>{m}</Badge>;
}

export function PromptLogPage() {
  const { canWrite } = useAuth();
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const [team, setTeam] = useState('');
  const rows = useResource((s) => get<{ data: PromptLogEntryView[] }>(`/prompt-log?limit=100${team ? `&team=${enc(team)}` : ''}`, s), [team]);
  const [editing, setEditing] = useState<TeamView | null>(null);
  const [open, setOpen] = useState<string | null>(null);
  const teamList = teams.data?.data ?? [];

  return (
    <>
      <PageHeader
        title="Prompt log"
        intro="Whether the prompts and responses of a team's requests are kept, and what was kept. Off by default; redacted and full text is encrypted at rest and deleted after the team's retention period. Every logged request's audit summary carries the hash of its row, so the signed audit export vouches for it."
      />
      <Section title="Logging per team">
        <LoadError error={teams.error} retry={teams.reload} />
        {teams.loading && !teams.data ? <Loading what="teams" /> : null}
        <DataTable
          label="Prompt logging per team"
          testId="prompt-log-teams"
          rows={teams.data?.data}
          rowKey={(t) => t.name}
          empty={<p className="muted">No teams yet: create them on the Teams &amp; keys page. A key without a team is never logged.</p>}
          columns={[
            { header: 'Team', cell: (t) => t.name },
            { header: 'Logging', cell: (t) => modeBadge(t.prompt_logging?.mode) },
            { header: 'Kept for', cell: (t) => (t.prompt_logging && t.prompt_logging.mode !== 'off' ? `${t.prompt_logging.retention_days} days` : <span className="muted">—</span>) },
          ]}
          actions={
            canWrite
              ? (t) => (
                  <button type="button" onClick={() => setEditing(t)} aria-label={`Change prompt logging of team ${t.name}`}>
                    Change
                  </button>
                )
              : undefined
          }
        />
      </Section>
      <Section title="Logged requests">
        <div className="grid-3">
          <SelectField id="prompt-log-team" label="Team" value={team} onChange={setTeam} options={[{ value: '', label: 'All teams' }, ...teamList.map((t) => t.name)]} hint="The newest 100 logged requests." />
        </div>
        <LoadError error={rows.error} retry={rows.reload} />
        {rows.loading && !rows.data ? <Loading what="logged requests" /> : null}
        <DataTable
          label="Logged requests"
          testId="prompt-log-rows"
          rows={rows.data?.data}
          rowKey={(r) => r.request_id}
          empty={<p className="muted">Nothing logged{team ? ` for team ${team}` : ''}. Switch logging on for a team above; its next requests appear here.</p>}
          columns={[
            { header: 'Time', cell: (r) => fmtTime(r.ts) },
            { header: 'Request', cell: (r) => <span className="mono">{r.request_id}</span>, rowHeader: true },
            { header: 'Team', cell: (r) => r.team ?? '—' },
            { header: 'Key', cell: (r) => r.key ?? '—' },
            { header: 'Model', cell: (r) => r.model ?? '—' },
            { header: 'Status', cell: (r) => r.status },
            { header: 'Logged', cell: (r) => modeBadge(r.mode) },
          ]}
          actions={(r) => (
            <button type="button" onClick={() => setOpen(r.request_id)} aria-label={`Open the logged prompt of request ${r.request_id}`}>
              Open
            </button>
          )}
        />
      </Section>
      <FormDialog open={editing !== null} onClose={() => setEditing(null)} title={`Prompt logging of team ${editing?.name ?? ''}`}>
        {() => (
          <PromptLoggingForm
            item={editing!}
            onCancel={() => setEditing(null)}
            onSaved={() => {
              setEditing(null);
              teams.reload();
            }}
          />
        )}
      </FormDialog>
      <Dialog open={open !== null} onClose={() => setOpen(null)} title={`Logged request ${open ?? ''}`} wide>
        {open !== null ? <Entry id={open} /> : null}
      </Dialog>
    </>
  );
}

function PromptLoggingForm({ item, onCancel, onSaved }: { item: TeamView; onCancel: () => void; onSaved: () => void }) {
  const [mode, setMode] = useState<string>(item.prompt_logging?.mode ?? String(defaultOf(modeShape.mode)));
  const [days, setDays] = useState(String(item.prompt_logging?.retention_days ?? defaultOf(modeShape.retention_days)));
  return (
    <SchemaForm
      schema={teamSchema}
      label={`Prompt logging of team ${item.name}`}
      submitLabel="Save"
      onCancel={onCancel}
      build={() => {
        const spec = teamSpec(item);
        setField(spec, 'prompt_logging', mode === 'off' ? undefined : { mode, retention_days: numOrUndefined(days) });
        return spec;
      }}
      send={async (spec) => {
        await api('PUT', `/teams/${enc(item.name)}`, spec);
        onSaved();
      }}
    >
      {(errors) => (
        <div className="grid-2">
          <EnumField id="prompt-logging-mode" label="Logging" schema={modeShape.mode} value={mode} onChange={setMode} error={errors['prompt_logging.mode'] ?? errors.prompt_logging} />
          <NumberField
            id="prompt-logging-days"
            label="Keep for (days)"
            value={days}
            onChange={setDays}
            error={errors['prompt_logging.retention_days']}
            hint={mode === 'off' ? 'Nothing is kept while logging is off.' : describeOf(modeShape.retention_days)}
            disabled={mode === 'off'}
            min={1}
            max={3650}
          />
        </div>
      )}
    </SchemaForm>
  );
}

/** One logged request, opened (the API records the read in the audit log). */
function Entry({ id }: { id: string }) {
  const row = useResource((s) => get<PromptLogEntryView>(`/prompt-log/${enc(id)}`, s), [id]);
  const r = row.data;
  return (
    <div>
      <p className="muted">Opening a logged request is recorded in the audit log (prompt_log.read, with your name).</p>
      <LoadError error={row.error} retry={row.reload} />
      {row.loading && !r ? <Loading what="the logged request" /> : null}
      {r ? (
        <>
          <p>
            {r.intact ? <Badge tone="ok">intact</Badge> : <Badge tone="bad">does not match its audit record</Badge>} {modeBadge(r.mode)} {fmtTime(r.ts)} · team {r.team ?? '—'} · key {r.key ?? '—'} · model {r.model ?? '—'} · status {r.status} · deleted after{' '}
            {fmtTime(r.expires_at)}
          </p>
          {r.mode === 'metadata' ? <p>Metadata only: no text was kept for this request.</p> : null}
          <h3>Prompt</h3>
          <pre className="mono" data-testid="prompt-log-prompt" role="region" tabIndex={0} aria-label="Prompt">
            {r.prompt === null || r.prompt === undefined ? '—' : JSON.stringify(r.prompt, null, 2)}
          </pre>
          <h3>Response</h3>
          <pre className="mono" data-testid="prompt-log-response" role="region" tabIndex={0} aria-label="Response">
            {r.response === null || r.response === undefined ? '—' : JSON.stringify(r.response, null, 2)}
          </pre>
          <h3>Metadata</h3>
          <pre className="mono" role="region" tabIndex={0} aria-label="Metadata">
            {JSON.stringify(r.meta, null, 2)}
          </pre>
        </>
      ) : null}
    </div>
  );
}
