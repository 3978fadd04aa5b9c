// Budgets: who is over budget, spend by team and by model this month, and each team's budget,
// rate limits and share of capacity (edited with the shared zod schema, as the API checks it).
import { useState } from 'react';
import { keySchema, teamSchema } from '../../../gateway/config/schema';
import { api, enc, get, type BudgetStatus, type BudgetsBody, type KeyView, type TeamView, type UsageBody } from '../api';
import { useAuth } from '../auth';
import { SchemaForm } from '../components/form-dialog';
import { keySpec, teamSpec } from './Keys';
import { GovernanceFields, applyGov, useGovDraft } from './governance-fields';
import { BurndownSection } from './burndown';
import { monthStart } from '../metrics';
import { useResource } from '../hooks';
import { Badge, Dialog, LoadError, Loading, PageHeader, Section, TableWrap, fmtCost, fmtInt, fmtTime } from '../components/ui';

const STATUS_TONE = { ok: 'ok', warning: 'warn', exceeded: 'bad' } as const;

function budgetLabel(b: BudgetStatus): string {
  return b.scope === 'user' ? `user ${b.name} (team ${b.team ?? '—'})` : `${b.scope} ${b.name}`;
}

/** The rows as CSV (RFC 4180 quoting), offered as a download. */
function downloadCsv(file: string, header: string[], rows: (string | number | null)[][]): void {
  const q = (v: string | number | null) => (v === null ? '' : /[",\n]/.test(String(v)) ? `"${String(v).replace(/"/g, '""')}"` : String(v));
  const text = [header, ...rows].map((r) => r.map(q).join(',')).join('\r\n') + '\r\n';
  const url = URL.createObjectURL(new Blob([text], { type: 'text/csv' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = file;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

function SpendTable({ title, usage, unit }: { title: string; usage: UsageBody | undefined; unit: string }) {
  const rows = usage?.data ?? [];
  return (
    <Section
      title={title}
      actions={
        rows.length ? (
          <button
            type="button"
            onClick={() =>
              downloadCsv(
                `spend-by-${usage!.group_by}.csv`,
                [usage!.group_by, 'requests', 'errors', 'prompt_tokens', 'completion_tokens', `cost_${unit}`],
                rows.map((r) => [r.group, r.requests, r.errors, r.prompt_tokens, r.completion_tokens, r.cost]),
              )
            }
          >
            Export CSV<span className="sr-only"> of {title.toLowerCase()}</span>
          </button>
        ) : null
      }
    >
      {usage && rows.length === 0 ? <p className="muted">No requests this month yet.</p> : null}
      {rows.length ? (
        <TableWrap label={title}>
          <table>
            <thead>
              <tr>
                <th scope="col">{usage!.group_by === 'model' ? 'Model' : 'Team'}</th>
                <th scope="col">Requests</th>
                <th scope="col">Tokens</th>
                <th scope="col">Cost ({unit})</th>
              </tr>
            </thead>
            <tbody>
              {[...rows]
                .sort((a, b) => b.cost - a.cost)
                .map((r) => (
                  <tr key={r.group ?? '(none)'}>
                    <th scope="row">{r.group ?? <span className="muted">(none)</span>}</th>
                    <td>{fmtInt(r.requests)}</td>
                    <td>{fmtInt(r.total_tokens)}</td>
                    <td>{fmtCost(r.cost)}</td>
                  </tr>
                ))}
            </tbody>
          </table>
        </TableWrap>
      ) : null}
    </Section>
  );
}

export function BudgetsPage() {
  const { canWrite } = useAuth();
  const budgets = useResource((s) => get<BudgetsBody>('/budgets', s), [], 15_000);
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const from = monthStart();
  const byTeam = useResource((s) => get<UsageBody>(`/usage/summary?group_by=team&from=${from}`, s), [from], 15_000);
  const byModel = useResource((s) => get<UsageBody>(`/usage/summary?group_by=model&from=${from}`, s), [from], 15_000);
  const keys = useResource((s) => get<{ data: KeyView[] }>('/keys', s), []);
  const [editing, setEditing] = useState<Editing | null>(null);
  const list = budgets.data?.data ?? [];
  const unit = budgets.data?.cost_unit ?? 'USD';
  const over = list.filter((b) => b.status === 'exceeded');

  return (
    <>
      <PageHeader
        title="Budgets"
        intro="Who is over budget, where the spend goes, and each team's budget, rate limits and share of a busy model server. A request past a budget is refused (429 budget_exceeded) until the period resets."
      />
      {over.length ? (
        <p className="notice error" data-testid="over-budget">
          <strong>Over budget:</strong> {over.map(budgetLabel).join(', ')}.
        </p>
      ) : null}
      <Section title="Every budget">
        <LoadError error={budgets.error} retry={budgets.reload} />
        {budgets.loading ? <Loading what="budgets" /> : null}
        {budgets.data && list.length === 0 ? <p className="muted">No budgets yet. Give a team a budget below (or a key, in the configuration).</p> : null}
        {list.length ? (
          <TableWrap label="Budgets">
            <table>
              <thead>
                <tr>
                  <th scope="col">Budget</th>
                  <th scope="col">Period</th>
                  <th scope="col">Spent of budget ({unit})</th>
                  <th scope="col">Status</th>
                  <th scope="col">Resets</th>
                </tr>
              </thead>
              <tbody>
                {list.map((b) => (
                  <tr key={`${b.scope}/${b.team ?? ''}/${b.name}`}>
                    <th scope="row">{budgetLabel(b)}</th>
                    <td>{b.period}</td>
                    <td>
                      <div className="budget-cell">
                        <meter min={0} max={100} low={b.warn_at_percent} high={Math.min(99.9, b.warn_at_percent + 0.01)} optimum={0} value={Math.min(100, b.used_percent)} aria-label={`${budgetLabel(b)}: ${b.used_percent}% used`} />
                        <span>
                          {fmtCost(b.spent)} of {fmtCost(b.amount)}
                          {b.reserved ? <span className="cell-note"> +{fmtCost(b.reserved)} in flight</span> : null}
                        </span>
                      </div>
                    </td>
                    <td>
                      <Badge tone={STATUS_TONE[b.status]}>{b.status}</Badge>
                    </td>
                    <td>{b.period_end ? fmtTime(b.period_end) : <span className="muted">never</span>}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
      </Section>
      <BurndownSection budgets={list} />
      <SpendTable title="Spend this month by team" usage={byTeam.data} unit={unit} />
      <SpendTable title="Spend this month by model" usage={byModel.data} unit={unit} />
      <Section title="Teams: budgets and limits">
        <LoadError error={teams.error} retry={teams.reload} />
        {teams.data && !teams.data.data.length ? <p className="muted">No teams yet: create them on the Teams & keys page.</p> : null}
        {teams.data?.data.length ? (
          <TableWrap label="Team budgets and limits">
            <table>
              <thead>
                <tr>
                  <th scope="col">Team</th>
                  <th scope="col">Budget</th>
                  <th scope="col">Rate limits</th>
                  <th scope="col">Per end user</th>
                  <th scope="col">Weight</th>
                  {canWrite ? (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {teams.data.data.map((t) => (
                  <tr key={t.name}>
                    <th scope="row">{t.name}</th>
                    <td>{t.budget ? `${t.budget.amount} ${unit} / ${t.budget.period}` : <span className="muted">none</span>}</td>
                    <td>{limitsText(t.limits)}</td>
                    <td>
                      {t.user_budget ? `${t.user_budget.amount} ${unit} / ${t.user_budget.period}` : <span className="muted">no budget</span>}
                      {t.user_limits ? <div className="cell-note">{limitsText(t.user_limits)}</div> : null}
                    </td>
                    <td>{t.weight ?? 1}</td>
                    {canWrite ? (
                      <td className="row-actions">
                        <button type="button" onClick={() => setEditing({ kind: 'team', item: t })} aria-label={`Edit budget and limits of team ${t.name}`}>
                          Edit
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
      <Section title="Keys: budgets, limits and priority">
        <LoadError error={keys.error} retry={keys.reload} />
        {keys.data && !keys.data.data.length ? <p className="muted">No keys yet: create them on the Teams & keys page.</p> : null}
        {keys.data?.data.length ? (
          <TableWrap label="Key budgets and limits">
            <table>
              <thead>
                <tr>
                  <th scope="col">Key</th>
                  <th scope="col">Team</th>
                  <th scope="col">Budget</th>
                  <th scope="col">Rate limits</th>
                  <th scope="col">Priority</th>
                  {canWrite ? (
                    <th scope="col">
                      <span className="sr-only">Actions</span>
                    </th>
                  ) : null}
                </tr>
              </thead>
              <tbody>
                {keys.data.data.map((k) => (
                  <tr key={k.name}>
                    <th scope="row">{k.name}</th>
                    <td>{k.team ?? <span className="muted">—</span>}</td>
                    <td>{k.budget ? `${k.budget.amount} ${unit} / ${k.budget.period}` : <span className="muted">none</span>}</td>
                    <td>{limitsText(k.limits)}</td>
                    <td>{k.priority ?? 'interactive'}</td>
                    {canWrite ? (
                      <td className="row-actions">
                        <button type="button" onClick={() => setEditing({ kind: 'key', item: k })} aria-label={`Edit budget and limits of key ${k.name}`}>
                          Edit
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
      <Dialog open={editing !== null} onClose={() => setEditing(null)} title={`Budget and limits of ${editing?.kind ?? ''} ${editing?.item.name ?? ''}`} wide>
        {editing ? (
          <GovernanceForm
            editing={editing}
            unit={unit}
            onCancel={() => setEditing(null)}
            onSaved={() => {
              setEditing(null);
              teams.reload();
              keys.reload();
              budgets.reload();
            }}
          />
        ) : null}
      </Dialog>
    </>
  );
}

function limitsText(l: TeamView['limits']): string {
  if (!l || (!l.rpm && !l.tpm)) return 'none';
  return [l.rpm ? `${fmtInt(l.rpm)} requests/min` : '', l.tpm ? `${fmtInt(l.tpm)} tokens/min` : ''].filter(Boolean).join(', ');
}

type Editing = { kind: 'team'; item: TeamView } | { kind: 'key'; item: KeyView };

function GovernanceForm({ editing, unit, onCancel, onSaved }: { editing: Editing; unit: string; onCancel: () => void; onSaved: () => void }) {
  const [gov, setGov] = useGovDraft(editing.kind, editing.item);
  const isTeam = editing.kind === 'team';
  return (
    <SchemaForm<unknown>
      schema={isTeam ? teamSchema : keySchema}
      label={`Budget and limits of ${editing.kind} ${editing.item.name}`}
      submitLabel="Save"
      onCancel={onCancel}
      build={() => applyGov(editing.kind === 'key' ? keySpec(editing.item) : teamSpec(editing.item), editing.kind, gov)}
      send={async (spec) => {
        await api('PUT', `/${isTeam ? 'teams' : 'keys'}/${enc(editing.item.name)}`, spec);
        onSaved();
      }}
    >
      {(errors) => <GovernanceFields kind={editing.kind} draft={gov} onChange={setGov} errors={errors} unit={unit} />}
    </SchemaForm>
  );
}
