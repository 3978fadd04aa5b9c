// The shared form wiring: validate with the zod schema the API uses (the single source of truth),
// show each problem on its field (the client's and the API's alike), focus the first field in
// error, announce a form-level error, and keep the submit button busy while sending. FormDialog
// is a dialog whose content is mounted only while it is open, so a form starts fresh each time.
import { useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { z } from 'zod';
import { apiFieldErrors, validate, type FieldErrors } from '../api';
import { DIRTY_ATTR, GUARD_ATTR } from '../unsaved';
import { Dialog, FormError, useFocusFirstError } from './ui';

export interface SchemaFormProps<T> {
  /** the schema the API checks the body with */
  schema: z.ZodType<T>;
  /** the body from the fields' current values */
  build: () => unknown;
  /** checks only the app can make (a name that exists already), keyed like the schema's paths */
  check?: (spec: unknown) => FieldErrors;
  /** sends the body (the schema-checked spec as built: defaults stay for the API to fill in) */
  send: (spec: Record<string, unknown>) => Promise<void>;
  /** the fields, given the current field errors (keys like "budget.amount") */
  children: (errors: FieldErrors) => ReactNode;
  /** the form's accessible name */
  label: string;
  submitLabel: string;
  busyLabel?: string;
  onCancel?: () => void;
  className?: string;
  /** shown after the actions (a "saved" status line) */
  footer?: ReactNode;
  /** rewrites the field errors (the client's and the API's) before they are shown: keys the page's
   * fields use where they differ from the schema's paths (a list field made of several entries, an
   * API path with a prefix) */
  mapErrors?: (errors: FieldErrors, spec: Record<string, unknown>) => FieldErrors;
  /** further buttons in the actions row: a node goes before Cancel and the submit button (an inline
   * editor's "Add rule", "Discard changes"); a function's buttons go between Cancel and submit, and
   * `checked(fn)` checks the form as a submit does, then runs `fn` with the spec instead of `send`
   * (the MCP server form's "Test") */
  extraActions?: ReactNode | ((checked: (fn: (spec: Record<string, unknown>) => Promise<void>) => void, busy: boolean) => ReactNode);
  /** ask before a dirty form is left (unsaved.ts); false for sign-in and setup forms. Default true */
  guard?: boolean;
  /** the submit button's class. Default "primary" */
  submitClassName?: string;
  /** the class of the actions row (default "actions"); with it the row is drawn without onCancel too */
  actionsClassName?: string;
  /** nothing to save (an inline editor without changes): submitting does nothing, the button says so
   * with aria-disabled (it keeps the keyboard focus, as it does while busy, see keepFocus) */
  nothingToSave?: boolean;
  /** the submit button is aria-disabled rather than disabled while sending, so it keeps the focus
   * (an inline form that stays on the page after a save) */
  keepFocus?: boolean;
  /** no actions at all (a read-only viewer of an inline form) */
  readOnly?: boolean;
  /** what the page knows about unsaved changes (an inline list editor whose rows are added, moved and
   * removed by buttons): set, it decides for unsaved.ts instead of the edited fields */
  dirty?: boolean;
}

export function SchemaForm<T>({
  schema,
  build,
  check,
  send,
  children,
  label,
  submitLabel,
  busyLabel,
  onCancel,
  className,
  footer,
  mapErrors,
  extraActions,
  actionsClassName,
  nothingToSave,
  keepFocus,
  readOnly,
  dirty,
  guard = true,
  submitClassName = 'primary',
}: SchemaFormProps<T>) {
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);
  /** check the form as a submit does, then run `fn` (send, or an extra action's) with the spec */
  const run = async (fn: (spec: Record<string, unknown>) => Promise<void>) => {
    if (busy || readOnly) return;
    setError(undefined);
    const spec = build() as Record<string, unknown>;
    const v = validate(schema, spec);
    const shown = (errs: FieldErrors) => (mapErrors ? mapErrors(errs, spec) : errs);
    const errs = { ...shown(v.ok ? {} : v.errors), ...(check?.(spec) ?? {}) };
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      await fn(spec);
    } catch (err) {
      const fe = shown(apiFieldErrors(err));
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (nothingToSave) return;
    void run(send);
  };
  const before = typeof extraActions === 'function' ? null : extraActions;
  const between = typeof extraActions === 'function' ? extraActions((fn) => void run(fn), busy) : null;
  const actions = (
    <>
      {onCancel ? (
        <button type="button" onClick={onCancel} data-dismiss="">
          Cancel
        </button>
      ) : null}
      {between}
      <button type="submit" className={submitClassName} disabled={busy && !keepFocus} aria-disabled={(busy && keepFocus) || nothingToSave || undefined}>
        {busy ? (busyLabel ?? 'Saving…') : submitLabel}
      </button>
    </>
  );
  return (
    <form
      ref={form}
      onSubmit={submit}
      noValidate
      aria-label={label}
      className={className}
      {...(guard ? { [GUARD_ATTR]: '' } : {})}
      {...(dirty !== undefined ? { [DIRTY_ATTR]: String(dirty) } : {})}
    >
      {children(errors)}
      {readOnly ? (
        <FormError error={error} />
      ) : onCancel || actionsClassName ? (
        <>
          <FormError error={error} />
          <div className={actionsClassName ?? 'actions'}>
            {before}
            {actions}
          </div>
        </>
      ) : (
        <>
          {before}
          {actions}
          <FormError error={error} />
        </>
      )}
      {footer}
    </form>
  );
}

/** A dialog around a form; `children` is mounted only while open (fresh state every time). */
export function FormDialog({ open, onClose, title, wide, description, children }: { open: boolean; onClose: () => void; title: string; wide?: boolean; description?: ReactNode; children: () => ReactNode }) {
  return (
    <Dialog open={open} onClose={onClose} title={title} wide={wide} description={description}>
      {open ? children() : null}
    </Dialog>
  );
}
