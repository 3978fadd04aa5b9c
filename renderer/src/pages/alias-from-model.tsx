// Discover → alias (issue 15): a model a server lists becomes a model alias in one step (the
// dialog proposes a valid, unused name; the alias routes to that endpoint and model).
import { useState } from 'react';
import { modelSchema, NAME_RE } from '../../../gateway/config/schema';
import { api, type FieldErrors } from '../api';
import { SchemaForm } from '../components/form-dialog';
import { TextField } from '../components/ui';

/** A valid alias name for an upstream model id ("meta-llama/Llama-3.1-8B" → "Llama-3.1-8B"), unused. */
export function aliasNameFor(model: string, taken: ReadonlySet<string>): string {
  const last = model.split('/').filter(Boolean).pop() ?? model;
  let base = last.replace(/[^A-Za-z0-9._:-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 60) || 'model';
  if (!NAME_RE.test(base)) base = 'model';
  if (!taken.has(base)) return base;
  for (let i = 2; ; i++) if (!taken.has(`${base}-${i}`)) return `${base}-${i}`;
}

export function AliasForm({ endpoint, model, taken, onCancel, onCreated }: { endpoint: string; model: string; taken: ReadonlySet<string>; onCancel: () => void; onCreated: (name: string) => void }) {
  const [name, setName] = useState(() => aliasNameFor(model, taken));
  return (
    <SchemaForm
      schema={modelSchema}
      label={`Create a model alias for ${model}`}
      submitLabel="Create alias"
      busyLabel="Creating…"
      onCancel={onCancel}
      build={() => ({ name: name.trim(), targets: [{ endpoint, model }] })}
      check={(): FieldErrors => (taken.has(name.trim()) ? { name: `a model named "${name.trim()}" exists already` } : {})}
      send={async (spec) => {
        await api('POST', '/models', spec);
        onCreated(spec.name as string);
      }}
    >
      {(errors) => (
        <>
          <p>
            Apps will send <code>model: &quot;{name.trim() || '…'}&quot;</code>; Airlock sends it to <strong>{endpoint}</strong> as <code>{model}</code>. Add fallback targets,
            a price or limits on the Models page.
          </p>
          <TextField id="alias-name" label="Alias name" value={name} onChange={setName} error={errors.name ?? errors['targets[0].model'] ?? errors.targets} hint={modelSchema.shape.name.description} />
        </>
      )}
    </SchemaForm>
  );
}
