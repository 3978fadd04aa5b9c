// A small history-API router: the admin plane answers every non-API path with index.html.
import { hasUnsavedChanges, LEAVE_QUESTION } from './unsaved';
import { useSyncExternalStore, type AnchorHTMLAttributes, type MouseEvent } from 'react';

const listeners = new Set<() => void>();
function emit(): void {
  for (const l of listeners) l();
}

// Each history entry the app makes carries its position (state.idx), so a Back/Forward that
// leaves a form with unsaved changes can be undone: the browser has already moved (popstate comes
// after), so "stay" goes the same number of entries the other way and swallows that popstate.
type Entry = { idx: number };
const idxOf = (state: unknown): number | undefined => (state && typeof state === 'object' && typeof (state as Partial<Entry>).idx === 'number' ? (state as Entry).idx : undefined);
let current = idxOf(history.state) ?? 0;
let shownUrl = location.pathname + location.search;
if (idxOf(history.state) === undefined) history.replaceState({ ...(history.state as object | null), idx: current }, '');
let undoing = false;

window.addEventListener('popstate', (e) => {
  const to = idxOf(e.state);
  if (undoing) {
    undoing = false;
    return;
  }
  if (hasUnsavedChanges(document) && !window.confirm(LEAVE_QUESTION)) {
    // stay: put the address bar (and the history position) back where the page is
    if (to !== undefined && to !== current) {
      undoing = true;
      history.go(current - to);
    } else history.pushState({ idx: ++current }, '', shownUrl);
    return;
  }
  current = to ?? current;
  shownUrl = location.pathname + location.search;
  emit();
});

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

export function navigate(to: string, opts: { replace?: boolean; force?: boolean } = {}): void {
  // a form with unsaved changes on this page: ask before leaving it (unsaved.ts)
  if (!opts.force && to !== location.pathname + location.search && hasUnsavedChanges(document) && !window.confirm(LEAVE_QUESTION)) return;
  if (opts.replace) history.replaceState({ idx: current }, '', to);
  else history.pushState({ idx: ++current }, '', to);
  shownUrl = location.pathname + location.search;
  emit();
}

/** The current path (without the query string). */
export function usePath(): string {
  return useSyncExternalStore(subscribe, () => location.pathname);
}

/** The current query string ("?session=a", or ""): a page whose view the address picks. */
export function useSearch(): string {
  return useSyncExternalStore(subscribe, () => location.search);
}

export function Link({ to, onClick, ...rest }: { to: string } & AnchorHTMLAttributes<HTMLAnchorElement>) {
  const click = (e: MouseEvent<HTMLAnchorElement>) => {
    onClick?.(e);
    if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(to);
  };
  return <a href={to} onClick={click} {...rest} />;
}
