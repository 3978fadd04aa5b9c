// Nesting depth of a parsed JSON value, checked without recursion (a deeply nested body must be
// refused as the client's mistake, not overflow a recursive walk or JSON.stringify later).

/** True when `v` nests arrays/objects deeper than `max` levels (the top-level object is level 1). */
export function nestedDeeperThan(v: unknown, max: number): boolean {
  if (v === null || typeof v !== 'object') return false;
  const values: unknown[] = [v];
  const depths: number[] = [1];
  while (values.length) {
    const x = values.pop() as object;
    const d = depths.pop()!;
    if (d > max) return true;
    if (Array.isArray(x)) {
      for (let i = 0; i < x.length; i++) {
        const c: unknown = x[i];
        if (c !== null && typeof c === 'object') {
          values.push(c);
          depths.push(d + 1);
        }
      }
    } else {
      for (const k in x) {
        const c: unknown = (x as Record<string, unknown>)[k];
        if (c !== null && typeof c === 'object') {
          values.push(c);
          depths.push(d + 1);
        }
      }
    }
  }
  return false;
}
