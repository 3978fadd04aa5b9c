// Models: the names apps send as "model", their targets and strategy, price; routing rules.
import { useEffect, useRef, useState } from 'react';
import { z } from 'zod';
import { STRATEGIES, modelSchema, ruleSchema } from '../../../gateway/config/schema';
import { api, enc, get, type EndpointView, type ModelView, type TeamView } from '../api';
import { DataTable } from '../components/data-table';
import { FormDialog, SchemaForm } from '../components/form-dialog';
import { EditRemoveButtons, nameTaken, saveResource } from '../components/resource';
import { useAuth } from '../auth';
import { useResource } from '../hooks';
import {
  ConfirmDialog,
  EmptyState,
  LoadError,
  Loading,
  NumberField,
  PageHeader,
  Section,
  SelectField,
  TextAreaField,
  TextField,
  focusAfterRender,
} from '../components/ui';
import { Link } from '../router';
import { breakerBadge } from './Overview';

const STRATEGY_HELP: Record<string, string> = {
  fallback: 'Always the first healthy target; the next one only when it fails or is down.',
  weighted: 'Spread requests over the targets in proportion to their weights.',
  'least-busy': 'The target with the fewest requests in flight.',
  'least-latency': 'The target with the fastest recent first byte.',
};

interface TargetDraft {
  key: number;
  endpoint: string;
  model: string;
  weight: string;
}
interface ModelDraft {
  name: string;
  strategy: string;
  targets: TargetDraft[];
  price_in: string;
  price_out: string;
  max_attempts: string;
}

let nextKey = 1;
const num = (s: string) => (s.trim() === '' ? undefined : Number(s));

function draftOf(m?: ModelView, firstEndpoint?: string): ModelDraft {
  return {
    name: m?.name ?? '',
    strategy: m?.strategy ?? 'fallback',
    targets: m?.targets.map((t) => ({ key: nextKey++, endpoint: t.endpoint, model: t.model, weight: t.weight === undefined ? '' : String(t.weight) })) ?? [
      { key: nextKey++, endpoint: firstEndpoint ?? '', model: '', weight: '' },
    ],
    price_in: m?.price ? String(m.price.input_per_million) : '',
    price_out: m?.price ? String(m.price.output_per_million) : '',
    max_attempts: m?.max_attempts === undefined ? '' : String(m.max_attempts),
  };
}

function specOf(d: ModelDraft): Record<string, unknown> {
  const spec: Record<string, unknown> = {
    name: d.name.trim(),
    strategy: d.strategy,
    targets: d.targets.map((t) => {
      const o: Record<string, unknown> = { endpoint: t.endpoint, model: t.model.trim() };
      const w = num(t.weight);
      if (w !== undefined) o.weight = w;
      return o;
    }),
  };
  if (d.price_in.trim() !== '' || d.price_out.trim() !== '') spec.price = { input_per_million: num(d.price_in), output_per_million: num(d.price_out) };
  const ma = num(d.max_attempts);
  if (ma !== undefined) spec.max_attempts = ma;
  return spec;
}

export function ModelsPage() {
  const { canWrite } = useAuth();
  const models = useResource((s) => get<{ data: ModelView[] }>('/models', s), [], 5000);
  const endpoints = useResource((s) => get<{ data: EndpointView[] }>('/endpoints', s), []);
  const [editing, setEditing] = useState<{ orig?: ModelView } | null>(null);
  const [removing, setRemoving] = useState<string | null>(null);
  const list = models.data?.data ?? [];
  const eps = endpoints.data?.data ?? [];

  return (
    <>
      <PageHeader
        title="Models"
        intro="A model is the name apps send as “model”. It points at one or more endpoints (targets) and a strategy decides which target serves each request."
        actions={
          canWrite && eps.length ? (
            <button type="button" className="primary" onClick={() => setEditing({})}>
              Create model
            </button>
          ) : null
        }
      />
      <LoadError error={models.error ?? endpoints.error} retry={models.reload} />
      {models.loading ? <Loading what="models" /> : null}
      {endpoints.data && eps.length === 0 ? (
        <EmptyState
          title="Add an endpoint first"
          action={
            canWrite ? (
              <Link className="button primary" to="/endpoints">
                Go to Endpoints
              </Link>
            ) : undefined
          }
        >
          <p>A model alias sends requests to model servers. Register at least one server on the Endpoints page, then come back here.</p>
        </EmptyState>
      ) : null}
      <DataTable
        label="Models"
        card
        rows={models.data ? list : undefined}
        rowKey={(m) => m.name}
        empty={
          eps.length > 0 ? (
            <EmptyState
              title="No models yet"
              action={
                canWrite ? (
                  <button type="button" className="primary" onClick={() => setEditing({})}>
                    Create model
                  </button>
                ) : undefined
              }
            >
              <p>
                Create an alias such as <code>chat</code> that apps will use. Give it one target per server that can serve it (for example{' '}
                <code>gpu-1 → meta-llama/Llama-3.1-8B-Instruct</code>); with the “fallback” strategy the second target takes over when the first fails.
              </p>
            </EmptyState>
          ) : null
        }
        columns={[
          { header: 'Name', cell: (m) => m.name, className: 'mono' },
          { header: 'Strategy', cell: (m) => m.strategy },
          {
            header: 'Targets',
            cell: (m) => (
              <ol className="targets">
                {m.targets.map((t, i) => {
                  const st = m.targets_status[i];
                  return (
                    <li key={i}>
                      {t.endpoint} → <span className="mono">{t.model}</span>
                      {t.weight !== undefined ? <span className="cell-note"> weight {t.weight}</span> : null} {st ? breakerBadge(st.breaker) : null}
                    </li>
                  );
                })}
              </ol>
            ),
          },
          { header: 'Price per 1M tokens (in / out)', cell: (m) => (m.price ? `${m.price.input_per_million} / ${m.price.output_per_million}` : <span className="muted">—</span>) },
        ]}
        actions={
          canWrite
            ? (m) => <EditRemoveButtons what="model" name={m.name} onEdit={() => setEditing({ orig: m })} onRemove={() => setRemoving(m.name)} />
            : undefined
        }
      />

      <RoutingRules models={list.map((m) => m.name)} />

      <FormDialog open={editing !== null} onClose={() => setEditing(null)} title={editing?.orig ? `Edit model ${editing.orig.name}` : 'Create model'} wide>
        {() => (
          <ModelForm
            orig={editing!.orig}
            endpoints={eps}
            existing={list.map((m) => m.name)}
            onCancel={() => setEditing(null)}
            onSaved={() => {
              setEditing(null);
              models.reload();
            }}
          />
        )}
      </FormDialog>
      <ConfirmDialog
        open={removing !== null}
        title={`Remove model ${removing ?? ''}?`}
        body={<p>Apps that ask for this model will get “model not found”. Keys and routing rules that name it must be changed first.</p>}
        confirmLabel="Remove model"
        onClose={() => setRemoving(null)}
        onConfirm={async () => {
          await api('DELETE', `/models/${enc(removing!)}`);
          models.reload();
        }}
      />
    </>
  );
}

function ModelForm({ orig, endpoints, existing, onCancel, onSaved }: { orig?: ModelView; endpoints: EndpointView[]; existing: string[]; onCancel: () => void; onSaved: () => void }) {
  const [d, setD] = useState<ModelDraft>(() => draftOf(orig, endpoints[0]?.name));
  // targets added, moved or removed by buttons are changes too (unsaved.ts counts typed ones only)
  const [initialSpec] = useState(() => JSON.stringify(specOf(d)));
  const [moved, setMoved] = useState('');
  const editor = useRef<HTMLFieldSetElement>(null);
  const set = <K extends keyof ModelDraft>(k: K) => (v: ModelDraft[K]) => setD((p) => ({ ...p, [k]: v }));
  const setTarget = (i: number, patch: Partial<TargetDraft>) => setD((p) => ({ ...p, targets: p.targets.map((t, j) => (j === i ? { ...t, ...patch } : t)) }));
  const move = (i: number, by: -1 | 1) => {
    setD((p) => {
      const ts = [...p.targets];
      const j = i + by;
      if (j < 0 || j >= ts.length) return p;
      [ts[i], ts[j]] = [ts[j]!, ts[i]!];
      return { ...p, targets: ts };
    });
    setMoved(`Target ${i + 1} moved to position ${i + by + 1}.`);
    // keep keyboard focus on the moved row: the same button, or the other one at the top or bottom
    const j = i + by;
    focusAfterRender(editor.current, `[data-move="${j}-${by < 0 ? 'up' : 'down'}"]`, `[data-move="${j}-${by < 0 ? 'down' : 'up'}"]`, `[data-move="${j}-remove"]`);
  };
  const removeTarget = (i: number) => {
    setD((p) => ({ ...p, targets: p.targets.filter((_, j) => j !== i) }));
    setMoved(`Target ${i + 1} removed.`);
    // focus the next target's remove button, else the previous one's, else "Add target"
    focusAfterRender(editor.current, `[data-move="${i}-remove"]`, `[data-move="${i - 1}-remove"]`, '[data-move="add-target"]');
  };

  const epOptions = [{ value: '', label: 'Choose an endpoint…' }, ...endpoints.map((e) => ({ value: e.name, label: e.name }))];
  return (
    <SchemaForm
      schema={modelSchema}
      build={() => specOf(d)}
      check={nameTaken(existing, 'model', !orig)}
      send={async (spec) => {
        await saveResource('/models', orig?.name, spec);
        onSaved();
      }}
      label={orig ? `Edit model ${orig.name}` : 'New model'}
      submitLabel={orig ? 'Save changes' : 'Create model'}
      onCancel={onCancel}
      dirty={JSON.stringify(specOf(d)) !== initialSpec}
    >
      {(errors) => (
        <>
          <div className="grid-2">
            <TextField id="model-name" label="Name" value={d.name} onChange={set('name')} error={errors.name} hint={`${modelSchema.shape.name.description}, e.g. chat.`} disabled={!!orig} autoFocus={!orig} />
            <SelectField id="model-strategy" label="Strategy" value={d.strategy} onChange={set('strategy')} options={[...STRATEGIES]} error={errors.strategy} hint={STRATEGY_HELP[d.strategy]} />
          </div>
          <fieldset className="targets-editor" ref={editor}>
            <legend>Targets {d.strategy === 'fallback' ? '(tried in this order)' : ''}</legend>
            {errors.targets ? <p className="field-error">{errors.targets}</p> : null}
            <ol>
              {d.targets.map((t, i) => {
                const ep = endpoints.find((e) => e.name === t.endpoint);
                const served = ep?.status?.discovered_models ?? [];
                const listId = `served-${t.key}`;
                return (
                  <li key={t.key} className="target-row">
                    <span className="target-pos" aria-hidden="true">
                      {i + 1}
                    </span>
                    <SelectField id={`target-${i}-endpoint`} label={`Target ${i + 1} endpoint`} value={t.endpoint} onChange={(v) => setTarget(i, { endpoint: v })} options={epOptions} error={errors[`targets[${i}].endpoint`]} />
                    <TextField
                      id={`target-${i}-model`}
                      label={`Target ${i + 1} upstream model`}
                      value={t.model}
                      onChange={(v) => setTarget(i, { model: v })}
                      error={errors[`targets[${i}].model`]}
                      list={listId}
                      hint={served.length ? `${served.length} served: ${served.slice(0, 3).join(', ')}${served.length > 3 ? ', …' : ''}` : 'The name the server knows'}
                      spellCheck={false}
                    />
                    <datalist id={listId}>
                      {served.map((m) => (
                        <option key={m} value={m} />
                      ))}
                    </datalist>
                    <NumberField id={`target-${i}-weight`} label="Weight" value={t.weight} onChange={(v) => setTarget(i, { weight: v })} error={errors[`targets[${i}].weight`]} min={0} step="any" className="narrow" hint={d.strategy === 'weighted' ? 'default 1' : 'weighted only'} />
                    <div className="row-buttons" role="group" aria-label={`Target ${i + 1} order`}>
                      <button type="button" className="icon-button" data-move={`${i}-up`} aria-label={`Move target ${i + 1} up`} disabled={i === 0} onClick={() => move(i, -1)}>
                        ↑
                      </button>
                      <button type="button" className="icon-button" data-move={`${i}-down`} aria-label={`Move target ${i + 1} down`} disabled={i === d.targets.length - 1} onClick={() => move(i, 1)}>
                        ↓
                      </button>
                      <button type="button" className="icon-button danger-quiet" data-move={`${i}-remove`} aria-label={`Remove target ${i + 1}`} disabled={d.targets.length === 1} onClick={() => removeTarget(i)}>
                        ×
                      </button>
                    </div>
                  </li>
                );
              })}
            </ol>
            <p className="sr-only" aria-live="polite">
              {moved}
            </p>
            <button type="button" data-move="add-target" onClick={() => setD((p) => ({ ...p, targets: [...p.targets, { key: nextKey++, endpoint: endpoints[0]?.name ?? '', model: '', weight: '' }] }))}>
              Add target
            </button>
          </fieldset>
          <fieldset>
            <legend>Internal price (chargeback, optional)</legend>
            <div className="grid-3">
              <NumberField id="model-price-in" label="Input, per million tokens" value={d.price_in} onChange={set('price_in')} error={errors['price.input_per_million'] ?? errors.price} min={0} step="any" />
              <NumberField id="model-price-out" label="Output, per million tokens" value={d.price_out} onChange={set('price_out')} error={errors['price.output_per_million']} min={0} step="any" />
              <NumberField id="model-max-attempts" label="Max attempts" value={d.max_attempts} onChange={set('max_attempts')} error={errors.max_attempts} hint={modelSchema.shape.max_attempts.description} min={1} />
            </div>
          </fieldset>
        </>
      )}
    </SchemaForm>
  );
}

// ---- routing rules ----

interface RuleDraft {
  key: number;
  name: string;
  model: string;
  teams: string;
  apps: string;
  has_tools: '' | 'yes' | 'no';
  min_prompt_tokens: string;
  max_prompt_tokens: string;
  header: string;
  route_to: string;
}
type Rule = z.infer<typeof ruleSchema>;
const rulesSchema = z.array(ruleSchema);
const splitList = (s: string) => s.split(/[\s,]+/).filter(Boolean);

function ruleDraft(r?: Rule): RuleDraft {
  return {
    key: nextKey++,
    name: r?.name ?? '',
    model: r?.when.model ?? '',
    teams: r?.when.teams?.join(', ') ?? '',
    apps: r?.when.apps?.join(', ') ?? '',
    has_tools: r?.when.has_tools === undefined ? '' : r.when.has_tools ? 'yes' : 'no',
    min_prompt_tokens: r?.when.min_prompt_tokens === undefined ? '' : String(r.when.min_prompt_tokens),
    max_prompt_tokens: r?.when.max_prompt_tokens === undefined ? '' : String(r.when.max_prompt_tokens),
    header: r?.when.header ? Object.entries(r.when.header).map(([k, v]) => `${k}: ${v}`).join('\n') : '',
    route_to: r?.route_to ?? '',
  };
}

function ruleSpec(d: RuleDraft): Record<string, unknown> {
  const when: Record<string, unknown> = {};
  if (d.model.trim()) when.model = d.model.trim();
  if (splitList(d.teams).length) when.teams = splitList(d.teams);
  if (splitList(d.apps).length) when.apps = splitList(d.apps);
  if (d.has_tools) when.has_tools = d.has_tools === 'yes';
  const lo = num(d.min_prompt_tokens);
  const hi = num(d.max_prompt_tokens);
  if (lo !== undefined) when.min_prompt_tokens = lo;
  if (hi !== undefined) when.max_prompt_tokens = hi;
  const lines = d.header.split('\n').map((l) => l.trim()).filter(Boolean);
  if (lines.length) {
    const h: Record<string, string> = {};
    for (const l of lines) {
      const i = l.indexOf(':');
      h[(i < 0 ? l : l.slice(0, i)).trim()] = i < 0 ? '' : l.slice(i + 1).trim();
    }
    when.header = h;
  }
  return { name: d.name.trim(), when, route_to: d.route_to };
}

function RoutingRules({ models }: { models: string[] }) {
  const { canWrite } = useAuth();
  const rules = useResource((s) => get<{ data: Rule[] }>('/routing-rules', s), []);
  const teams = useResource((s) => get<{ data: TeamView[] }>('/teams', s), []);
  const [drafts, setDrafts] = useState<RuleDraft[] | null>(null);
  const [saved, setSaved] = useState('');
  // a new form (no field errors, nothing edited) after "Discard changes"
  const [generation, setGeneration] = useState(0);
  const box = useRef<HTMLDivElement>(null);

  useEffect(() => {
    if (rules.data && drafts === null) setDrafts(rules.data.data.map(ruleDraft));
  }, [rules.data, drafts]);

  // What the server holds: its answer to our last save until the reload that follows it lands (so
  // "Save rules" is unavailable at once after a save, not only once the reload is back).
  const [savedRules, setSavedRules] = useState<Rule[] | undefined>();
  useEffect(() => setSavedRules(undefined), [rules.data]);
  const stored = savedRules ?? rules.data?.data;
  const list = drafts ?? [];
  const dirty = stored ? JSON.stringify(list.map(ruleSpec)) !== JSON.stringify(stored.map((r) => ruleSpec(ruleDraft(r)))) : false;
  const setRule = (i: number, patch: Partial<RuleDraft>) => {
    setSaved('');
    setDrafts((p) => (p ?? []).map((r, j) => (j === i ? { ...r, ...patch } : r)));
  };
  const [ruleMoved, setRuleMoved] = useState('');
  const move = (i: number, by: -1 | 1) => {
    const j = i + by;
    if (j < 0 || j >= list.length) return;
    setDrafts((p) => {
      const ts = [...(p ?? [])];
      [ts[i], ts[j]] = [ts[j]!, ts[i]!];
      return ts;
    });
    setRuleMoved(`Rule ${i + 1} moved to position ${j + 1}.`);
    // keep keyboard focus on the moved rule: the same button, or the other one at the top or bottom
    focusAfterRender(box.current, `[data-rule="${j}-${by < 0 ? 'up' : 'down'}"]`, `[data-rule="${j}-${by < 0 ? 'down' : 'up'}"]`, `[data-rule="${j}-remove"]`);
  };
  const removeRule = (i: number) => {
    setDrafts((p) => (p ?? []).filter((_, j) => j !== i));
    setRuleMoved(`Rule ${i + 1} removed.`);
    // focus the next rule's remove button, else the previous one's, else "Add rule"
    focusAfterRender(box.current, `[data-rule="${i}-remove"]`, `[data-rule="${i - 1}-remove"]`, '[data-rule="add"]');
  };
  const discard = () => {
    if (!rules.data) return;
    setDrafts(rules.data.data.map(ruleDraft));
    setSaved('');
    setGeneration((g) => g + 1);
  };

  const ro = !canWrite;
  const routeOptions = [{ value: '', label: 'Choose a model…' }, ...models.map((m) => ({ value: m, label: m }))];
  return (
    <Section title="Routing rules">
      <p className="intro">
        Rules are checked from top to bottom before a request is routed; the first rule that matches sends it to its model. A rule’s “model” may be
        a name no alias has (for example <code>auto</code>): apps can then ask for it and the rules decide. Empty conditions match everything.
      </p>
      <LoadError error={rules.error} retry={rules.reload} />
      {drafts && list.length === 0 ? <p className="muted">No routing rules: every request goes to the model it names.</p> : null}
      <div ref={box}>
        <SchemaForm
          key={generation}
          schema={rulesSchema}
          build={() => {
            setSaved('');
            return list.map(ruleSpec);
          }}
          send={async (spec) => {
            const r = await api<{ data: Rule[] }>('PUT', '/routing-rules', { data: spec });
            setDrafts(r.data.map(ruleDraft));
            setSavedRules(r.data);
            rules.reload();
            setSaved('Routing rules saved.');
          }}
          // the API names the rules by their place in the configuration ("routing_rules[0].name")
          mapErrors={(errs) => Object.fromEntries(Object.entries(errs).map(([k, v]) => [k.replace(/^routing_rules/, ''), v]))}
          label="Routing rules"
          submitLabel="Save rules"
          keepFocus
          nothingToSave={!dirty}
          dirty={canWrite && dirty}
          readOnly={ro}
          actionsClassName="actions left"
          extraActions={
            <>
              <button type="button" data-rule="add" onClick={() => setDrafts((p) => [...(p ?? []), ruleDraft()])} disabled={models.length === 0} title={models.length ? undefined : 'Create a model first'}>
                Add rule
              </button>
              <button type="button" onClick={discard} disabled={!dirty}>
                Discard changes
              </button>
            </>
          }
          footer={
            <p className="ok-text" role="status" aria-live="polite">
              {saved}
            </p>
          }
        >
          {(errors) => (
            <>
              <ol className="rules">
                {list.map((r, i) => (
                  <li key={r.key} className="rule card inset">
                    <fieldset disabled={ro}>
                      <legend>
                        Rule {i + 1}
                        {r.name ? `: ${r.name}` : ''}
                      </legend>
                      <div className="grid-3">
                        <TextField id={`rule-${i}-name`} label="Name" value={r.name} onChange={(v) => setRule(i, { name: v })} error={errors[`[${i}].name`]} />
                        <TextField id={`rule-${i}-model`} label="When the model asked for is" value={r.model} onChange={(v) => setRule(i, { model: v })} error={errors[`[${i}].when.model`]} hint="Any model when empty" />
                        <SelectField id={`rule-${i}-route-to`} label="Route to model" value={r.route_to} onChange={(v) => setRule(i, { route_to: v })} options={routeOptions} error={errors[`[${i}].route_to`]} />
                        <TextField
                          id={`rule-${i}-teams`}
                          label="and the team is one of"
                          value={r.teams}
                          onChange={(v) => setRule(i, { teams: v })}
                          error={errors[`[${i}].when.teams`] ?? Object.entries(errors).find(([k]) => k.startsWith(`[${i}].when.teams[`))?.[1]}
                          hint={teams.data?.data.length ? `Comma-separated: ${teams.data.data.map((t) => t.name).join(', ')}` : 'Comma-separated team names'}
                        />
                        <TextField id={`rule-${i}-apps`} label="and the app is one of" value={r.apps} onChange={(v) => setRule(i, { apps: v })} error={errors[`[${i}].when.apps`]} hint="Comma-separated" />
                        <SelectField
                          id={`rule-${i}-tools`}
                          label="and the request uses tools"
                          value={r.has_tools}
                          onChange={(v) => setRule(i, { has_tools: v as RuleDraft['has_tools'] })}
                          options={[
                            { value: '', label: 'either way' },
                            { value: 'yes', label: 'yes' },
                            { value: 'no', label: 'no' },
                          ]}
                        />
                        <NumberField id={`rule-${i}-min`} label="and prompt tokens ≥" value={r.min_prompt_tokens} onChange={(v) => setRule(i, { min_prompt_tokens: v })} error={errors[`[${i}].when.min_prompt_tokens`]} min={0} />
                        <NumberField id={`rule-${i}-max`} label="and prompt tokens ≤" value={r.max_prompt_tokens} onChange={(v) => setRule(i, { max_prompt_tokens: v })} error={errors[`[${i}].when.max_prompt_tokens`]} min={0} />
                        <TextAreaField
                          id={`rule-${i}-header`}
                          label="and headers match"
                          value={r.header}
                          onChange={(v) => setRule(i, { header: v })}
                          error={errors[`[${i}].when.header`] ?? Object.entries(errors).find(([k]) => k.startsWith(`[${i}].when.header`))?.[1]}
                          rows={2}
                          placeholder="x-priority: high"
                          hint="One “name: value” per line; lower-case names"
                        />
                      </div>
                      {!ro ? (
                        <div className="row-buttons" role="group" aria-label={`Rule ${i + 1} order`}>
                          <button type="button" data-rule={`${i}-up`} onClick={() => move(i, -1)} disabled={i === 0} aria-label={`Move rule ${i + 1} up`}>
                            ↑ Up
                          </button>
                          <button type="button" data-rule={`${i}-down`} onClick={() => move(i, 1)} disabled={i === list.length - 1} aria-label={`Move rule ${i + 1} down`}>
                            ↓ Down
                          </button>
                          <button type="button" className="danger-quiet" data-rule={`${i}-remove`} onClick={() => removeRule(i)} aria-label={`Remove rule ${i + 1}`}>
                            Remove
                          </button>
                        </div>
                      ) : null}
                    </fieldset>
                  </li>
                ))}
              </ol>
              <p className="sr-only" aria-live="polite">
                {ruleMoved}
              </p>
            </>
          )}
        </SchemaForm>
      </div>
    </Section>
  );
}
