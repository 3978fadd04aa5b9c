// The governance part of the team and key forms (issue 8): budget, rate limits, weight or priority,
// and a team's per-user budget and limits. Used by the Teams & keys forms and the Budgets page.
import { useState } from 'react';
import { keySchema, teamSchema } from '../../../gateway/config/schema';
import type { FieldErrors, KeyView, TeamView } from '../api';
import { BudgetFields, EnumField, LimitsFields, budgetDraft, budgetFromDraft, limitsDraft, limitsFromDraft, numOrUndefined, setField, type BudgetDraft, type LimitsDraft } from '../components/schema-fields';
import { NumberField } from '../components/ui';

export interface GovDraft {
  budget: BudgetDraft;
  limits: LimitsDraft;
  weight: string;
  priority: string;
  userBudget: BudgetDraft;
  userLimits: LimitsDraft;
}

type Kind = 'team' | 'key';

type Governed = Partial<Pick<TeamView, 'budget' | 'limits' | 'weight' | 'user_budget' | 'user_limits'>> & Partial<Pick<KeyView, 'priority'>>;

export function useGovDraft(kind: Kind, item: Governed | undefined) {
  const t: Governed | undefined = kind === 'team' ? item : undefined;
  const k: Governed | undefined = kind === 'key' ? item : undefined;
  return useState<GovDraft>(() => ({
    budget: budgetDraft(item?.budget),
    limits: limitsDraft(item?.limits),
    weight: t?.weight === undefined ? '' : String(t.weight),
    priority: k?.priority ?? 'interactive',
    userBudget: budgetDraft(t?.user_budget, 'day'),
    userLimits: limitsDraft(t?.user_limits),
  }));
}

/** Write the draft's fields into a team or key spec (fields left empty are taken out). */
export function applyGov(spec: Record<string, unknown>, kind: Kind, d: GovDraft): Record<string, unknown> {
  setField(spec, 'budget', budgetFromDraft(d.budget));
  setField(spec, 'limits', limitsFromDraft(d.limits));
  if (kind === 'team') {
    setField(spec, 'weight', numOrUndefined(d.weight));
    setField(spec, 'user_budget', budgetFromDraft(d.userBudget));
    setField(spec, 'user_limits', limitsFromDraft(d.userLimits));
  } else {
    setField(spec, 'priority', d.priority === 'interactive' ? undefined : d.priority);
  }
  return spec;
}

export function GovernanceFields({ kind, draft, onChange, errors, unit, idPrefix = 'gov' }: { kind: Kind; draft: GovDraft; onChange: (d: GovDraft) => void; errors: FieldErrors; unit: string; idPrefix?: string }) {
  const isTeam = kind === 'team';
  const set = <F extends keyof GovDraft>(f: F) => (v: GovDraft[F]) => onChange({ ...draft, [f]: v });
  return (
    <>
      <BudgetFields idPrefix={`${idPrefix}-budget`} path="budget" legend={isTeam ? 'Team budget' : 'Key budget'} value={draft.budget} onChange={set('budget')} errors={errors} unit={unit} />
      <LimitsFields idPrefix={idPrefix} path="limits" legend={isTeam ? 'Rate limits of the whole team' : 'Rate limits of the key'} value={draft.limits} onChange={set('limits')} errors={errors}>
        {isTeam ? (
          <NumberField id={`${idPrefix}-weight`} label="Weight" value={draft.weight} onChange={set('weight')} error={errors.weight} hint={teamSchema.shape.weight.description} min={0} step="any" />
        ) : (
          <EnumField id={`${idPrefix}-priority`} label="Priority" schema={keySchema.shape.priority} value={draft.priority} onChange={set('priority')} error={errors.priority} />
        )}
      </LimitsFields>
      {isTeam ? (
        <>
          <BudgetFields
            idPrefix={`${idPrefix}-user`}
            path="user_budget"
            legend="Budget of each end user"
            value={draft.userBudget}
            onChange={set('userBudget')}
            errors={errors}
            unit={unit}
            amountLabel={`Amount per user (${unit})`}
            periodLabel="Period per user"
            warn={false}
          />
          <LimitsFields idPrefix={`${idPrefix}-user`} path="user_limits" legend="Rate limits of each end user" value={draft.userLimits} onChange={set('userLimits')} errors={errors} per=" per user" />
        </>
      ) : null}
    </>
  );
}
