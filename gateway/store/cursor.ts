// Opaque page cursors for the admin API's paged lists (GET /usage/requests, GET /sessions): the
// values that name the last row of a page (its time, then its row id or session, so that rows
// written meanwhile or tied on time never shift a page), as base64url JSON. One format and one
// error for every list; a client passes next_cursor back as it is.
export class CursorError extends Error {}

const NOT_OURS = 'is not a cursor this gateway gave out (use next_cursor of the previous page as it is)';

/** what each value of a cursor is: a finite number, a non-negative safe integer (a row id, a time
 * in whole ms), or a string */
export type CursorKind = 'number' | 'int' | 'string';
type ValueOf<K extends CursorKind> = K extends 'string' ? string : number;

export function encodeCursor(...values: (number | string)[]): string {
  return Buffer.from(JSON.stringify(values)).toString('base64url');
}

/** The values of a cursor of the given kinds; CursorError when it is not one (any other shape,
 * or text that is not base64url JSON). */
export function decodeCursor<const K extends readonly CursorKind[]>(cursor: string, kinds: K): { [I in keyof K]: ValueOf<K[I]> } {
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    v = undefined;
  }
  if (!Array.isArray(v) || v.length !== kinds.length || !kinds.every((k, i) => fits(v[i], k))) throw new CursorError(NOT_OURS);
  return v as { [I in keyof K]: ValueOf<K[I]> };
}

function fits(x: unknown, kind: CursorKind): boolean {
  if (kind === 'string') return typeof x === 'string';
  if (typeof x !== 'number' || !Number.isFinite(x)) return false;
  return kind === 'number' || (Number.isSafeInteger(x) && x >= 0);
}
