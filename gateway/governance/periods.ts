// Budget periods: where the current day, week (from Monday), month or "total" starts and ends,
// in an IANA time zone (settings.budget_timezone), across DST changes and month ends.
import type { BudgetPeriod } from '../config/governance-schema.js';

export interface PeriodBounds {
  /** ms since the epoch, inclusive */
  start: number;
  /** ms since the epoch, exclusive; null: never (period "total") */
  end: number | null;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(tz: string): Intl.DateTimeFormat {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: tz, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric', weekday: 'short' });
    formatters.set(tz, f);
  }
  return f;
}

interface Wall {
  y: number;
  m: number;
  d: number;
  h: number;
  mi: number;
  s: number;
  /** Monday = 0 … Sunday = 6 */
  dow: number;
}
const DOW: Record<string, number> = { Mon: 0, Tue: 1, Wed: 2, Thu: 3, Fri: 4, Sat: 5, Sun: 6 };

function wall(t: number, tz: string): Wall {
  // UTC, the default, needs no zone data (loading it costs several MB of memory)
  if (tz === 'UTC') {
    const u = new Date(t);
    return { y: u.getUTCFullYear(), m: u.getUTCMonth() + 1, d: u.getUTCDate(), h: u.getUTCHours(), mi: u.getUTCMinutes(), s: u.getUTCSeconds(), dow: (u.getUTCDay() + 6) % 7 };
  }
  const p: Record<string, string> = {};
  for (const x of formatter(tz).formatToParts(t)) p[x.type] = x.value;
  return { y: Number(p.year), m: Number(p.month), d: Number(p.day), h: Number(p.hour) % 24, mi: Number(p.minute), s: Number(p.second), dow: DOW[p.weekday!] ?? 0 };
}

/** How far the zone's wall clock is ahead of UTC at instant t, ms. */
export function zoneOffsetMs(t: number, tz: string): number {
  const w = wall(t, tz);
  return Date.UTC(w.y, w.m - 1, w.d, w.h, w.mi, w.s) - Math.floor(t / 1000) * 1000;
}

/** The instant of local midnight starting day y-m-d (m 1-based; out-of-range days and months roll over). */
export function zonedMidnight(y: number, m: number, d: number, tz: string): number {
  const guess = Date.UTC(y, m - 1, d);
  const first = guess - zoneOffsetMs(guess, tz);
  // the offset at the guess may differ from the offset at the answer (a DST change that day)
  const second = guess - zoneOffsetMs(first, tz);
  return second;
}

export function periodBounds(period: BudgetPeriod, now: number, tz: string): PeriodBounds {
  if (period === 'total') return { start: 0, end: null };
  const w = wall(now, tz);
  if (period === 'day') return { start: zonedMidnight(w.y, w.m, w.d, tz), end: zonedMidnight(w.y, w.m, w.d + 1, tz) };
  if (period === 'week') return { start: zonedMidnight(w.y, w.m, w.d - w.dow, tz), end: zonedMidnight(w.y, w.m, w.d - w.dow + 7, tz) };
  return { start: zonedMidnight(w.y, w.m, 1, tz), end: zonedMidnight(w.y, w.m + 1, 1, tz) };
}
