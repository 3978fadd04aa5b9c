// Unsaved changes: a form that edits the configuration carries data-guard-unsaved. Such a form is
// "dirty" once a person has changed a field and its fields differ from what they were when they
// first touched it (or last submitted it), or it shows field errors after an edit or after a
// submitted edit (a save that was refused). Closing a dialog that holds a dirty form (×, Escape, Cancel) asks first
// (components/ui.tsx Dialog), and so does leaving the page: another page of the app or the
// browser's Back/Forward (router.tsx), or the browser tab (beforeunload). Search, probe, export and sign-in forms are not guarded.
export const GUARD_ATTR = 'data-guard-unsaved';
/** set by a form whose page knows whether it holds unsaved changes ("true"/"false"): an inline list
 * editor whose rows are added, moved and removed by buttons, not only typed into */
export const DIRTY_ATTR = 'data-unsaved';
const GUARD = `form[${GUARD_ATTR}]`;

const baseline = new WeakMap<HTMLFormElement, string>();
const edited = new WeakSet<HTMLFormElement>();
/** submitted with changes: dirty again if the form then shows field errors (a refused save) */
const submitted = new WeakSet<HTMLFormElement>();

function values(form: HTMLFormElement): string {
  const out: string[] = [];
  for (const el of Array.from(form.elements)) {
    if (el instanceof HTMLInputElement) {
      if (el.type === 'file' || el.type === 'submit' || el.type === 'button') continue;
      out.push(`${el.id}=${el.type === 'checkbox' || el.type === 'radio' ? String(el.checked) : el.value}`);
    } else if (el instanceof HTMLSelectElement || el instanceof HTMLTextAreaElement) out.push(`${el.id}=${el.value}`);
  }
  return out.join('\u0000');
}

function guarded(t: EventTarget | null): HTMLFormElement | null {
  return t instanceof Element ? t.closest<HTMLFormElement>(GUARD) : null;
}

if (typeof document !== 'undefined') {
  // the values before the first change: taken when a field is first focused (a click or a
  // keyboard focus comes before the change it makes)
  document.addEventListener(
    'focusin',
    (e) => {
      const f = guarded(e.target);
      if (f && !baseline.has(f)) baseline.set(f, values(f));
    },
    true,
  );
  const touched = (e: Event) => {
    const f = guarded(e.target);
    if (f) edited.add(f);
  };
  document.addEventListener('input', touched, true);
  document.addEventListener('change', touched, true);
  document.addEventListener(
    'submit',
    (e) => {
      const f = guarded(e.target);
      if (!f) return;
      // a form may clear itself after a save (an inline "new team" form): what it shows next is
      // clean until the next change
      if (edited.has(f)) submitted.add(f);
      edited.delete(f);
      baseline.set(f, values(f));
    },
    true,
  );
  window.addEventListener('beforeunload', (e) => {
    if (!hasUnsavedChanges(document)) return;
    e.preventDefault();
    e.returnValue = '';
  });
}

export function isDirty(form: HTMLFormElement): boolean {
  const known = form.getAttribute(DIRTY_ATTR);
  if (known !== null) return known === 'true';
  const errors = !!form.querySelector('[aria-invalid="true"]');
  if (!edited.has(form)) return errors && submitted.has(form);
  return errors || values(form) !== baseline.get(form);
}

/** Does `root` hold a guarded form with unsaved changes? */
export function hasUnsavedChanges(root: ParentNode | null | undefined): boolean {
  if (!root) return false;
  return Array.from(root.querySelectorAll<HTMLFormElement>(GUARD)).some(isDirty);
}

/** The form now shows what is stored (saved, or changes discarded): clean until the next change.
 * Taken after the re-render that shows the stored values. */
export function markSaved(form: HTMLFormElement | null): void {
  if (!form) return;
  requestAnimationFrame(() => {
    edited.delete(form);
    submitted.delete(form);
    baseline.set(form, values(form));
  });
}

export const LEAVE_QUESTION = 'You have unsaved changes on this page. Leave without saving them?';
