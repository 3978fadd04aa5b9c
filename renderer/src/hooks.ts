import { useCallback, useEffect, useRef, useState } from 'react';

export interface Resource<T> {
  data: T | undefined;
  error: unknown;
  loading: boolean;
  reload: () => void;
}

/**
 * Load data, and reload it every `intervalMs` (live pages) while the tab is visible. A reload
 * never overlaps the previous one; the last good data stays on screen when a reload fails.
 */
export function useResource<T>(load: (signal: AbortSignal) => Promise<T>, deps: unknown[], intervalMs?: number): Resource<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<unknown>();
  const [loading, setLoading] = useState(true);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;

  useEffect(() => {
    const ac = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    let stopped = false;
    const run = async () => {
      if (stopped) return;
      if (document.visibilityState === 'hidden' && intervalMs) {
        timer = setTimeout(run, intervalMs);
        return;
      }
      setLoading(true);
      try {
        const d = await loadRef.current(ac.signal);
        if (stopped) return;
        setData(d);
        setError(undefined);
      } catch (e) {
        if (stopped || (e as Error).name === 'AbortError') return;
        setError(e);
      } finally {
        if (!stopped) setLoading(false);
      }
      if (intervalMs && !stopped) timer = setTimeout(run, intervalMs);
    };
    void run();
    return () => {
      stopped = true;
      ac.abort();
      if (timer) clearTimeout(timer);
    };
    // `load` is read through a ref: the caller's deps decide when to reload
    // eslint-disable-next-line react-hooks/exhaustive-deps -- a generic hook: its caller's deps are spread in, which the rule cannot see through
  }, [...deps, tick, intervalMs]);

  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { data, error, loading: loading && data === undefined, reload };
}
