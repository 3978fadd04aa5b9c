// The shared form wiring: validate with the zod schema the API uses (the single source of truth),
// show each problem on its field (the client's and the API's alike), focus the first field in
// error, announce a form-level error, and keep the submit button busy while sending. FormDialog
// is a dialog whose content is mounted only while it is open, so a form starts fresh each time.
import { useRef, useState, type FormEvent, type ReactNode } from 'react';
import type { z } from 'zod';
import { apiFieldErrors, validate, type FieldErrors } from '../api';
import { Dialog, FormError, useFocusFirstError } from './ui';
import { GUARD_ATTR } from '../unsaved';

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
  /** ask before a dirty form is left (unsaved.ts); false for sign-in and setup forms. Default true */
  guard?: boolean;
  /** the submit button's class. Default "primary" */
  submitClassName?: string;
  /** how field errors are shown (client's and API's alike), e.g. "tools[2]" on the "tools" field */
  mapErrors?: (errors: FieldErrors) => FieldErrors;
  /** more buttons between Cancel and submit; `checked(fn)` checks the form as a submit does, then
   * runs `fn` with the spec instead of `send` (a "Test" button) */
  extraActions?: (checked: (fn: (spec: Record<string, unknown>) => Promise<void>) => void, busy: boolean) => ReactNode;
}

export function SchemaForm<T>({ schema, build, check, send, children, label, submitLabel, busyLabel, onCancel, className, footer, guard = true, submitClassName = 'primary', mapErrors = (e) => e, extraActions }: SchemaFormProps<T>) {
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);
  const run = async (fn: (spec: Record<string, unknown>) => Promise<void>) => {
    setError(undefined);
    const spec = build() as Record<string, unknown>;
    const v = validate(schema, spec);
    const errs = mapErrors({ ...(v.ok ? {} : v.errors), ...(check?.(spec) ?? {}) });
    setErrors(errs);
    if (Object.keys(errs).length) return;
    setBusy(true);
    try {
      await fn(spec);
    } catch (err) {
      const fe = mapErrors(apiFieldErrors(err));
      setErrors(fe);
      if (!Object.keys(fe).length) setError(err);
    } finally {
      setBusy(false);
    }
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    void run(send);
  };
  const actions = (
    <>
      {onCancel ? (
        <button type="button" onClick={onCancel} data-dismiss="">
          Cancel
        </button>
      ) : null}
      {extraActions?.((fn) => void run(fn), busy)}
      <button type="submit" className={submitClassName} disabled={busy}>
        {busy ? (busyLabel ?? 'Saving…') : submitLabel}
      </button>
    </>
  );
  return (
    <form ref={form} onSubmit={submit} noValidate aria-label={label} className={className} {...(guard ? { [GUARD_ATTR]: '' } : {})}>
      {children(errors)}
      {onCancel ? (
        <>
          <FormError error={error} />
          <div className="actions">{actions}</div>
        </>
      ) : (
        <>
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
