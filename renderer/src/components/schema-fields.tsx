// Form fields driven by the zod schemas (the single source of truth for forms): a field's hint is
// the schema's description, a select's options are the schema's enum values, and the budget and
// rate-limit groups map their fields to and from the spec the schema checks. Field errors come
// keyed by the schema's paths ("budget.amount"), so each lands on its field.
import type { ReactNode } from 'react';
import type { z } from 'zod';
import { budgetSchema, rateLimitsSchema } from '../../../gateway/config/schema';
import type { FieldErrors } from '../api';
import { NumberField, SelectField } from './ui';

type AnySchema = z.ZodType;
type BudgetSpec = z.infer<typeof budgetSchema>;
type RateLimits = z.infer<typeof rateLimitsSchema>;
const inner = (s: AnySchema): AnySchema | undefined => (s as unknown as { _zod: { def: { innerType?: AnySchema } } })._zod.def.innerType;

/** The schema's description, looked up through optional/default wrappers. */
export function describeOf(s: AnySchema): string | undefined {
  for (let x: AnySchema | undefined = s; x; x = inner(x)) if (x.description) return x.description;
  return undefined;
}

/** The values of an enum schema (through optional/default wrappers). */
export function enumOptions(s: AnySchema): string[] {
  let x: AnySchema = s;
  for (let i = inner(x); i; i = inner(x)) x = i;
  const opts = (x as unknown as { options?: unknown[] }).options;
  if (!Array.isArray(opts)) throw new Error('enumOptions: not an enum schema');
  return opts.map(String);
}

/** The default value of a schema with .default() (through optional wrappers), if any. */
export function defaultOf(s: AnySchema): unknown {
  for (let x: AnySchema | undefined = s; x; x = inner(x)) {
    const d = (x as unknown as { _zod: { def: { defaultValue?: unknown } } })._zod.def.defaultValue;
    if (d !== undefined) return typeof d === 'function' ? (d as () => unknown)() : d;
  }
  return undefined;
}

/** A select over an enum schema's values; the hint is the schema's description unless given. */
export function EnumField({
  id,
  label,
  schema,
  value,
  onChange,
  error,
  hint,
  emptyLabel,
}: {
  id: string;
  label: ReactNode;
  schema: AnySchema;
  value: string;
  onChange: (v: string) => void;
  error?: string;
  hint?: ReactNode;
  /** offer "" (unset) with this label first */
  emptyLabel?: string;
}) {
  const options = [...(emptyLabel !== undefined ? [{ value: '', label: emptyLabel }] : []), ...enumOptions(schema).map((o) => ({ value: o, label: o }))];
  return <SelectField id={id} label={label} value={value} onChange={onChange} options={options} error={error} hint={hint ?? describeOf(schema)} />;
}

const str = (n: number | undefined) => (n === undefined ? '' : String(n));
/** "" → undefined; anything else → a number (NaN stays, for the schema to name it) */
export const numOrUndefined = (s: string) => (s.trim() === '' ? undefined : Number(s));

// ---- budgets ----

export interface BudgetDraft {
  amount: string;
  period: string;
  warn: string;
}
export function budgetDraft(b: BudgetSpec | undefined, period?: string): BudgetDraft {
  return { amount: str(b?.amount), period: b?.period ?? period ?? String(defaultOf(budgetSchema.shape.period)), warn: str(b?.warn_at_percent) };
}
/** The spec for the schema (undefined: no budget, the amount is empty). */
export function budgetFromDraft(d: BudgetDraft): Record<string, unknown> | undefined {
  const amount = numOrUndefined(d.amount);
  if (amount === undefined) return undefined;
  const warn = numOrUndefined(d.warn);
  return { amount, period: d.period, ...(warn !== undefined ? { warn_at_percent: warn } : {}) };
}

export function BudgetFields({
  idPrefix,
  path,
  value,
  onChange,
  errors,
  unit,
  legend,
  amountLabel,
  periodLabel,
  warn = true,
}: {
  idPrefix: string;
  /** the spec's field ("budget", "user_budget"): where its errors are keyed */
  path: string;
  value: BudgetDraft;
  onChange: (d: BudgetDraft) => void;
  errors: FieldErrors;
  unit: string;
  legend: string;
  amountLabel?: string;
  periodLabel?: string;
  warn?: boolean;
}) {
  const shape = budgetSchema.shape;
  return (
    <fieldset>
      <legend>{legend}</legend>
      <div className="grid-3">
        <NumberField
          id={`${idPrefix}-amount`}
          label={amountLabel ?? `Amount (${unit})`}
          value={value.amount}
          onChange={(amount) => onChange({ ...value, amount })}
          error={errors[`${path}.amount`] ?? errors[path]}
          hint="Empty: no budget."
          min={0}
          step="any"
        />
        <EnumField id={`${idPrefix}-period`} label={periodLabel ?? 'Period'} schema={shape.period} value={value.period} onChange={(period) => onChange({ ...value, period })} error={errors[`${path}.period`]} />
        {warn ? (
          <NumberField
            id={`${idPrefix}-warn`}
            label="Warn at (%)"
            value={value.warn}
            onChange={(w) => onChange({ ...value, warn: w })}
            error={errors[`${path}.warn_at_percent`]}
            hint={`Default ${String(defaultOf(shape.warn_at_percent))}.`}
            min={1}
            max={100}
          />
        ) : null}
      </div>
    </fieldset>
  );
}

// ---- rate limits ----

export interface LimitsDraft {
  rpm: string;
  tpm: string;
}
export const limitsDraft = (l: RateLimits | undefined): LimitsDraft => ({ rpm: str(l?.rpm), tpm: str(l?.tpm) });
export function limitsFromDraft(d: LimitsDraft): Record<string, unknown> | undefined {
  const rpm = numOrUndefined(d.rpm);
  const tpm = numOrUndefined(d.tpm);
  if (rpm === undefined && tpm === undefined) return undefined;
  return { ...(rpm !== undefined ? { rpm } : {}), ...(tpm !== undefined ? { tpm } : {}) };
}

export function LimitsFields({
  idPrefix,
  path,
  value,
  onChange,
  errors,
  legend,
  children,
  per,
}: {
  idPrefix: string;
  path: string;
  value: LimitsDraft;
  onChange: (d: LimitsDraft) => void;
  errors: FieldErrors;
  legend: string;
  /** a further field in the same row (a weight, a priority) */
  children?: ReactNode;
  /** the labels' ending, e.g. " per user" ("Requests/min per user") */
  per?: string;
}) {
  const shape = rateLimitsSchema.shape;
  return (
    <fieldset>
      <legend>{legend}</legend>
      <div className="grid-3">
        <NumberField id={`${idPrefix}-rpm`} label={per ? `Requests/min${per}` : 'Requests per minute'} value={value.rpm} onChange={(rpm) => onChange({ ...value, rpm })} error={errors[`${path}.rpm`] ?? errors[path]} hint="Empty: no limit." min={1} />
        <NumberField id={`${idPrefix}-tpm`} label={per ? `Tokens/min${per}` : 'Tokens per minute'} value={value.tpm} onChange={(tpm) => onChange({ ...value, tpm })} error={errors[`${path}.tpm`]} hint={`${describeOf(shape.tpm) ?? ''}; empty: no limit.`} min={1} />
        {children}
      </div>
    </fieldset>
  );
}

/** Put a field into a spec, or take it out when undefined. */
export function setField(spec: Record<string, unknown>, field: string, v: unknown): void {
  if (v === undefined) delete spec[field];
  else spec[field] = v;
}
