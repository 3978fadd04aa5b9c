// The pieces every page that lists and edits a named resource (endpoints, models, guardrail
// policies) shares: the row's Edit and Remove buttons (named for screen readers with the
// resource), the "name taken" check of a create form, and the save (PUT the named resource, or POST
// a new one to its collection).
import { api, enc, type FieldErrors } from '../api';

/** Edit and Remove (or Delete) buttons for a row: "Edit model chat", "Remove model chat". */
export function EditRemoveButtons({ what, name, onEdit, onRemove, removeVerb = 'Remove' }: { what: string; name: string; onEdit: () => void; onRemove: () => void; removeVerb?: 'Remove' | 'Delete' }) {
  return (
    <>
      <button type="button" onClick={onEdit} aria-label={`Edit ${what} ${name}`}>
        Edit
      </button>
      <button type="button" className="danger-quiet" onClick={onRemove} aria-label={`${removeVerb} ${what} ${name}`}>
        {removeVerb}
      </button>
    </>
  );
}

/** A SchemaForm `check`: a new resource may not take a name one has already ("a model named …"). */
export function nameTaken(existing: readonly string[], what: string, creating: boolean): (spec: unknown) => FieldErrors {
  return (spec): FieldErrors => {
    const name = (spec as { name?: unknown }).name;
    return creating && typeof name === 'string' && existing.includes(name) ? { name: `${/^[aeiou]/i.test(what) ? 'an' : 'a'} ${what} named "${name}" exists already` } : {};
  };
}

/** Save a resource of a collection ("/models"): PUT over the stored one, or POST a new one. */
export async function saveResource(collection: string, storedName: string | undefined, spec: Record<string, unknown>): Promise<void> {
  if (storedName !== undefined) await api('PUT', `${collection}/${enc(storedName)}`, spec);
  else await api('POST', collection, spec);
}
