// Shared building blocks: labelled fields with hints and errors, dialogs, empty states.
import {
  useEffect,
  useId,
  useLayoutEffect,
  useRef,
  useState,
  type InputHTMLAttributes,
  type ReactNode,
  type SelectHTMLAttributes,
  type TextareaHTMLAttributes,
} from 'react';
import { errorMessage } from '../api';
import { hasUnsavedChanges } from '../unsaved';

function describedBy(id: string, hint?: ReactNode, error?: string): string | undefined {
  const ids = [hint ? `${id}-hint` : '', error ? `${id}-error` : ''].filter(Boolean);
  return ids.length ? ids.join(' ') : undefined;
}

function FieldFooter({ id, hint, error }: { id: string; hint?: ReactNode; error?: string }) {
  return (
    <>
      {hint ? (
        <p id={`${id}-hint`} className="hint">
          {hint}
        </p>
      ) : null}
      {error ? (
        <p id={`${id}-error`} className="field-error">
          {error}
        </p>
      ) : null}
    </>
  );
}

type InputBase = Omit<InputHTMLAttributes<HTMLInputElement>, 'onChange' | 'value' | 'id'>;

export function TextField({
  id,
  label,
  value,
  onChange,
  error,
  hint,
  className,
  ...rest
}: InputBase & { id: string; label: ReactNode; value: string; onChange: (v: string) => void; error?: string; hint?: ReactNode }) {
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        {...rest}
      />
      <FieldFooter id={id} hint={hint} error={error} />
    </div>
  );
}

export function NumberField(props: InputBase & { id: string; label: ReactNode; value: string; onChange: (v: string) => void; error?: string; hint?: ReactNode }) {
  return <TextField type="number" inputMode="decimal" {...props} />;
}

export function TextAreaField({
  id,
  label,
  value,
  onChange,
  error,
  hint,
  ...rest
}: Omit<TextareaHTMLAttributes<HTMLTextAreaElement>, 'onChange' | 'value' | 'id'> & {
  id: string;
  label: ReactNode;
  value: string;
  onChange: (v: string) => void;
  error?: string;
  hint?: ReactNode;
}) {
  return (
    <div className="field">
      <label htmlFor={id}>{label}</label>
      <textarea
        id={id}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        {...rest}
      />
      <FieldFooter id={id} hint={hint} error={error} />
    </div>
  );
}

export function SelectField({
  id,
  label,
  value,
  onChange,
  options,
  error,
  hint,
  className,
  ...rest
}: Omit<SelectHTMLAttributes<HTMLSelectElement>, 'onChange' | 'value' | 'id'> & {
  id: string;
  label: ReactNode;
  value: string;
  onChange: (v: string) => void;
  options: (string | { value: string; label: string })[];
  error?: string;
  hint?: ReactNode;
}) {
  return (
    <div className={`field ${className ?? ''}`}>
      <label htmlFor={id}>{label}</label>
      <select
        id={id}
        value={value}
        onChange={(e) => onChange(e.target.value)}
        aria-invalid={error ? true : undefined}
        aria-describedby={describedBy(id, hint, error)}
        {...rest}
      >
        {options.map((o) => {
          const v = typeof o === 'string' ? o : o.value;
          return (
            <option key={v} value={v}>
              {typeof o === 'string' ? o : o.label}
            </option>
          );
        })}
      </select>
      <FieldFooter id={id} hint={hint} error={error} />
    </div>
  );
}

export function CheckboxField({
  id,
  label,
  checked,
  onChange,
  hint,
  error,
  disabled,
}: {
  id: string;
  label: ReactNode;
  checked: boolean;
  onChange: (v: boolean) => void;
  hint?: ReactNode;
  error?: string;
  disabled?: boolean;
}) {
  return (
    <div className="field checkbox">
      <input
        type="checkbox"
        id={id}
        checked={checked}
        disabled={disabled}
        onChange={(e) => onChange(e.target.checked)}
        aria-describedby={describedBy(id, hint, error)}
      />
      <label htmlFor={id}>{label}</label>
      <FieldFooter id={id} hint={hint} error={error} />
    </div>
  );
}

/** A form-level error, announced by screen readers when it appears. */
export function FormError({ error }: { error: unknown }) {
  const msg = error === undefined || error === null || error === '' ? '' : typeof error === 'string' ? error : errorMessage(error);
  return (
    <div className="form-error" role="alert" aria-live="assertive">
      {msg}
    </div>
  );
}

/** Focus the first invalid field after a failed submit. */
export function useFocusFirstError(errors: Record<string, string>, container: React.RefObject<HTMLElement | null>): void {
  useEffect(() => {
    if (!Object.keys(errors).length) return;
    const el = container.current?.querySelector<HTMLElement>('[aria-invalid="true"]');
    el?.focus();
  }, [errors, container]);
}

export function Dialog({
  open,
  onClose,
  title,
  children,
  wide,
  description,
  onEscape,
}: {
  open: boolean;
  onClose: () => void;
  title: ReactNode;
  children: ReactNode;
  wide?: boolean;
  description?: ReactNode;
  /** called instead of closing when the user presses Escape (or the browser asks to close) */
  onEscape?: () => void;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const descId = useId();
  // a form with unsaved changes inside (unsaved.ts): closing it asks first
  const [asking, setAsking] = useState(false);
  const dirty = () => !onEscape && hasUnsavedChanges(ref.current?.querySelector('.dialog-content'));
  const close = () => (dirty() ? setAsking(true) : onClose());
  // a layout effect: the native dialog opens and closes in the same frame as its content (else a
  // key pressed in between goes to an empty dialog that is still open)
  useLayoutEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) {
      d.showModal();
      // start on the first field (or the first action), not on the close button
      const first = d.querySelector<HTMLElement>(
        'input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), .dialog-body button, .actions button',
      );
      first?.focus();
    }
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog
      ref={ref}
      className={wide ? 'dialog wide' : 'dialog'}
      aria-labelledby={titleId}
      aria-describedby={description ? descId : undefined}
      onClose={(e) => {
        // (a nested dialog's close event reaches here through React's tree: not ours)
        if (e.target !== e.currentTarget || !open) return;
        if (dirty()) {
          // closed by the browser (Escape) with unsaved changes: show it again and ask
          ref.current?.showModal();
          setAsking(true);
          return;
        }
        if (onEscape) {
          // closed by the browser although the app did not ask (e.g. a repeated Escape, which
          // Chromium does not let the page cancel): show it again and ask instead
          ref.current?.showModal();
          onEscape();
          return;
        }
        onClose();
      }}
      onKeyDown={(e) => {
        // preventing the keydown keeps Chromium's close watcher from closing the dialog anyway
        // on a second Escape; a nested dialog's Escape is its own
        if (e.key !== 'Escape' || (e.target as Element).closest('dialog') !== ref.current) return;
        if (dirty()) {
          e.preventDefault();
          setAsking(true);
          return;
        }
        if (!onEscape) return;
        e.preventDefault();
        onEscape();
      }}
      onCancel={(e) => {
        if (e.target !== e.currentTarget) return;
        if (dirty()) {
          e.preventDefault();
          setAsking(true);
          return;
        }
        if (!onEscape) return;
        e.preventDefault();
        onEscape();
      }}
      onClickCapture={(e) => {
        // a form's Cancel button (data-dismiss) with unsaved changes: ask instead
        const t = e.target as Element;
        if (!t.closest?.('[data-dismiss]') || t.closest('dialog') !== ref.current || !dirty()) return;
        e.preventDefault();
        e.stopPropagation();
        setAsking(true);
      }}
    >
      {open ? (
        <>
          <div className="dialog-head">
            <h2 id={titleId}>{title}</h2>
            <button type="button" className="icon-button" aria-label="Close dialog" onClick={onEscape ?? close}>
              ×
            </button>
          </div>
          {description ? (
            <p id={descId} className="dialog-desc">
              {description}
            </p>
          ) : null}
          <div className="dialog-content">{children}</div>
          <ConfirmDialog
            open={asking}
            title="Discard your changes?"
            body="The changes in this form are not saved yet."
            confirmLabel="Discard changes"
            cancelLabel="Keep editing"
            onConfirm={async () => onClose()}
            onClose={() => setAsking(false)}
          />
        </>
      ) : null}
    </dialog>
  );
}

export function ConfirmDialog({
  open,
  title,
  body,
  confirmLabel,
  onConfirm,
  onClose,
  danger = true,
  cancelLabel = 'Cancel',
}: {
  open: boolean;
  title: string;
  body: ReactNode;
  confirmLabel: string;
  cancelLabel?: string;
  onConfirm: () => Promise<void>;
  onClose: () => void;
  danger?: boolean;
}) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  useEffect(() => {
    if (open) setError(undefined);
  }, [open]);
  return (
    <Dialog open={open} onClose={onClose} title={title}>
      <div className="dialog-body">{body}</div>
      <FormError error={error} />
      <div className="actions">
        <button type="button" onClick={onClose}>
          {cancelLabel}
        </button>
        <button
          type="button"
          className={danger ? 'danger' : 'primary'}
          disabled={busy}
          onClick={async () => {
            setBusy(true);
            setError(undefined);
            try {
              await onConfirm();
              onClose();
            } catch (e) {
              setError(e);
            } finally {
              setBusy(false);
            }
          }}
        >
          {busy ? 'Working…' : confirmLabel}
        </button>
      </div>
    </Dialog>
  );
}

/** Shows a secret once (a new key or API token), with a copy button. */
export function SecretDialog({ secret, title, what, onClose, usage }: { secret: string | null; title: string; what: string; onClose: () => void; usage?: ReactNode }) {
  const [copied, setCopied] = useState('');
  const [confirmClose, setConfirmClose] = useState(false);
  const inputRef = useRef<HTMLInputElement>(null);
  const backRef = useRef<HTMLButtonElement>(null);
  const wasConfirming = useRef(false);
  useEffect(() => {
    // asking: focus the safe choice; back: focus the key again
    if (confirmClose) backRef.current?.focus();
    else if (wasConfirming.current) inputRef.current?.focus();
    wasConfirming.current = confirmClose;
  }, [confirmClose]);
  useEffect(() => {
    setCopied('');
    setConfirmClose(false);
  }, [secret]);
  const copy = async () => {
    if (!secret) return;
    try {
      await navigator.clipboard.writeText(secret);
      setCopied('Copied to the clipboard.');
    } catch {
      // no clipboard API (plain http on the LAN): select the text so Ctrl+C copies it
      inputRef.current?.select();
      const ok = document.execCommand?.('copy');
      setCopied(ok ? 'Copied to the clipboard.' : 'Selected: press Ctrl+C (or ⌘C) to copy.');
    }
  };
  return (
    // Escape or the × button ask first: the secret cannot be shown again
    <Dialog open={secret !== null} onClose={onClose} onEscape={() => setConfirmClose((c) => !c)} title={title}>
      <p className="notice warn">
        Copy this {what} now. It is shown <strong>only once</strong>: Airlock stores only a hash of it.
      </p>
      <div className="field">
        <label htmlFor="secret-value">{what[0]!.toUpperCase() + what.slice(1)}</label>
        <div className="copy-row">
          <input id="secret-value" ref={inputRef} className="mono" readOnly value={secret ?? ''} onFocus={(e) => e.currentTarget.select()} />
          <button type="button" className="primary" onClick={() => void copy()}>
            Copy
          </button>
        </div>
        <p className="hint" aria-live="polite">
          {copied}
        </p>
      </div>
      {usage}
      <div className="actions">
        <button type="button" onClick={onClose}>
          I have copied it
        </button>
      </div>
      {confirmClose ? (
        // asked inline, not in a second modal dialog: Chromium groups a dialog opened by a key press
        // with the one below it, and one Escape would then close both
        <div className="notice warn secret-confirm" role="group" aria-labelledby="secret-confirm-title">
          <p id="secret-confirm-title">
            <strong>Close without the {what}?</strong>
          </p>
          <p>The {what} is shown only once. If you have not copied it, go back and copy it: after closing, the only way to get a working {what} is to create a new one.</p>
          <div className="actions">
            <button type="button" ref={backRef} onClick={() => setConfirmClose(false)}>
              Back to the {what}
            </button>
            <button type="button" className="danger" onClick={onClose}>
              Close it
            </button>
          </div>
        </div>
      ) : null}
    </Dialog>
  );
}

export function EmptyState({ title, children, action }: { title: string; children: ReactNode; action?: ReactNode }) {
  return (
    <div className="empty">
      <h3>{title}</h3>
      <div className="empty-body">{children}</div>
      {action ? <div className="empty-action">{action}</div> : null}
    </div>
  );
}

/**
 * After the update that the current event causes has rendered, focus the first element (inside
 * root) that matches one of the selectors and is not disabled: for actions that move, remove or
 * disable the control that had the focus, so that focus never falls to <body>.
 */
export function focusAfterRender(root: HTMLElement | null | undefined, ...selectors: string[]): void {
  requestAnimationFrame(() => {
    for (const sel of selectors) {
      const el = root?.querySelector<HTMLElement>(sel);
      if (el && !el.matches(':disabled')) {
        el.focus();
        return;
      }
    }
  });
}

let focusNextPageHeading = false;
/**
 * The next page that renders its header takes the keyboard focus on its heading: after signing in or
 * finishing setup (the form that had the focus goes away).
 */
export function focusNextPage(): void {
  focusNextPageHeading = true;
}

/** The browser tab's title (and what a screen reader reads first on a new page): "<title> · Airlock admin". */
export function usePageTitle(title: string): void {
  useEffect(() => {
    document.title = `${title} · Airlock admin`;
  }, [title]);
}

export function PageHeader({ title, intro, actions }: { title: string; intro?: ReactNode; actions?: ReactNode }) {
  const ref = useRef<HTMLHeadingElement>(null);
  usePageTitle(title);
  useEffect(() => {
    // move focus to the new page's heading so screen reader and keyboard users start there
    if (focusNextPageHeading || document.activeElement?.closest('nav')) ref.current?.focus();
    focusNextPageHeading = false;
  }, [title]);
  return (
    <div className="page-header">
      <div>
        <h1 ref={ref} tabIndex={-1}>
          {title}
        </h1>
        {intro ? <p className="intro">{intro}</p> : null}
      </div>
      {actions ? <div className="page-actions">{actions}</div> : null}
    </div>
  );
}

export function Badge({ tone, children, title }: { tone: 'ok' | 'bad' | 'warn' | 'muted' | 'info'; children: ReactNode; title?: string }) {
  return (
    <span className={`badge ${tone}`} title={title}>
      {children}
    </span>
  );
}

export function LoadError({ error, retry }: { error: unknown; retry?: () => void }) {
  if (!error) return null;
  return (
    <div className="notice error" role="alert">
      {errorMessage(error)}{' '}
      {retry ? (
        <button type="button" className="link-button" onClick={retry}>
          Try again
        </button>
      ) : null}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      Loading {what}…
    </p>
  );
}

/**
 * The scroll box around a table. While the table is larger than the box (narrow screens, zoom) the
 * box is a named, focusable region, so keyboard users can scroll it with the arrow keys, and it
 * shows a shadow at the edge that has more columns.
 */
export function TableWrap({ label, card, children }: { label: string; card?: boolean; children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  const [overflow, setOverflow] = useState({ scrolls: false, left: false, right: false });
  useEffect(() => {
    const el = ref.current;
    if (!el) return;
    const check = () => {
      const scrolls = el.scrollWidth > el.clientWidth + 1 || el.scrollHeight > el.clientHeight + 1;
      const left = scrolls && el.scrollLeft > 1;
      const right = scrolls && el.scrollLeft + el.clientWidth < el.scrollWidth - 1;
      setOverflow((p) => (p.scrolls === scrolls && p.left === left && p.right === right ? p : { scrolls, left, right }));
    };
    check();
    const ro = new ResizeObserver(check);
    ro.observe(el);
    for (const child of Array.from(el.children)) ro.observe(child);
    el.addEventListener('scroll', check, { passive: true });
    return () => {
      ro.disconnect();
      el.removeEventListener('scroll', check);
    };
  }, []);
  const cls = ['table-wrap', card ? 'card' : '', overflow.left ? 'more-left' : '', overflow.right ? 'more-right' : ''].filter(Boolean).join(' ');
  return (
    <div
      ref={ref}
      className={cls}
      role={overflow.scrolls ? 'region' : undefined}
      aria-label={overflow.scrolls ? `${label} (scrollable)` : undefined}
      tabIndex={overflow.scrolls ? 0 : undefined}
    >
      {children}
    </div>
  );
}

export function Section({ title, children, actions, id }: { title: string; children: ReactNode; actions?: ReactNode; id?: string }) {
  const hid = useId();
  return (
    <section className="card" aria-labelledby={hid} id={id}>
      <div className="card-head">
        <h2 id={hid}>{title}</h2>
        {actions ? <div className="card-actions">{actions}</div> : null}
      </div>
      {children}
    </section>
  );
}

// ---- formatting ----

const nf = new Intl.NumberFormat();
export const fmtInt = (n: number | null | undefined) => (n === null || n === undefined ? '—' : nf.format(Math.round(n)));
export const fmtMs = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n >= 10_000 ? `${(n / 1000).toFixed(1)} s` : `${nf.format(Math.round(n))} ms`);
export const fmtCost = (n: number | null | undefined) => (n === null || n === undefined ? '—' : n === 0 ? '0' : n < 0.01 ? n.toFixed(6) : n.toFixed(2));
export function fmtTime(iso: string | number | null | undefined): string {
  if (iso === null || iso === undefined) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}
