// Settings → Backup (owner only): download the encrypted backup bundle `airlock backup` writes
// (database + install.key under a passphrase), with progress. Restoring replaces the database
// under a stopped gateway: the Restore section (Restore.tsx) stages it for the next start.
import { useId, useState, type FormEvent } from 'react';
import { backupRequestSchema } from '../../../gateway/config/admin-schema';
import { API, ApiError, csrfHeaders, validate, type FieldErrors } from '../api';
import { FormError, Section, TextField } from '../components/ui';
import { saveBlob } from '../download';

type Phase = { kind: 'idle' } | { kind: 'preparing' } | { kind: 'downloading'; done: number; total: number } | { kind: 'done'; name: string; bytes: number };

const fmtBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);

export function BackupSection() {
  const [pass, setPass] = useState('');
  const [repeat, setRepeat] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const progressLabel = useId();
  const busy = phase.kind === 'preparing' || phase.kind === 'downloading';

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setError(null);
    const v = validate(backupRequestSchema, { passphrase: pass });
    const errs: FieldErrors = v.ok ? {} : { ...v.errors };
    if (!errs.passphrase && repeat !== pass) errs.repeat = 'does not match the passphrase';
    setErrors(errs);
    if (Object.keys(errs).length) {
      document.getElementById(errs.passphrase ? 'backup-passphrase' : 'backup-repeat')?.focus();
      return;
    }
    setPhase({ kind: 'preparing' });
    try {
      const res = await fetch(`${API}/backup`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/octet-stream', ...csrfHeaders() },
        body: JSON.stringify({ passphrase: pass }),
        credentials: 'same-origin',
        cache: 'no-store',
      });
      if (!res.ok) {
        const body = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
        throw new ApiError(res.status, body?.error?.code ?? `http_${res.status}`, body?.error?.message ?? `The gateway answered ${res.status}.`);
      }
      const total = Number(res.headers.get('content-length')) || 0;
      const name = /filename="([^"]+)"/.exec(res.headers.get('content-disposition') ?? '')?.[1] ?? 'airlock.backup';
      const reader = res.body!.getReader();
      const parts: Uint8Array[] = [];
      let done = 0;
      setPhase({ kind: 'downloading', done, total });
      for (;;) {
        const r = await reader.read();
        if (r.done) break;
        parts.push(r.value);
        done += r.value.length;
        setPhase({ kind: 'downloading', done, total });
      }
      saveBlob(name, new Blob(parts as BlobPart[], { type: 'application/octet-stream' }));
      setPass('');
      setRepeat('');
      setPhase({ kind: 'done', name, bytes: done });
    } catch (err) {
      setPhase({ kind: 'idle' });
      setError(err instanceof ApiError ? err : new ApiError(0, 'network_error', 'The download did not finish. Check that the gateway is running, then try again.'));
    }
  };

  return (
    <Section title="Backup">
      <p>
        Downloads an encrypted backup of the database <em>and</em> its install key, so it restores onto a new server with every key and stored secret working.
        Choose a passphrase and keep it apart from the file: without it the backup cannot be opened.
      </p>
      <form onSubmit={submit} noValidate aria-label="Download a backup">
        <div className="grid-2">
          <TextField id="backup-passphrase" label="Backup passphrase" type="password" autoComplete="new-password" value={pass} onChange={setPass} error={errors.passphrase} hint="At least 10 characters." />
          <TextField id="backup-repeat" label="Repeat the passphrase" type="password" autoComplete="new-password" value={repeat} onChange={setRepeat} error={errors.repeat} />
        </div>
        <FormError error={error} />
        <div className="actions left">
          <button type="submit" className="primary" aria-disabled={busy || undefined} onClick={(e) => busy && e.preventDefault()}>
            Download backup
          </button>
        </div>
      </form>
      <div role="status" aria-live="polite">
        {phase.kind === 'preparing' ? <p>Preparing the backup (encrypting a consistent copy)…</p> : null}
        {phase.kind === 'downloading' ? (
          <p>
            <span id={progressLabel}>Downloading the backup</span>{' '}
            <progress aria-labelledby={progressLabel} value={phase.total ? phase.done : undefined} max={phase.total || undefined} /> {fmtBytes(phase.done)}
            {phase.total ? ` of ${fmtBytes(phase.total)}` : ''}
          </p>
        ) : null}
        {phase.kind === 'done' ? (
          <p className="ok-text">
            Backup saved as {phase.name} ({fmtBytes(phase.bytes)}).
          </p>
        ) : null}
      </div>
      <p className="hint">
        To restore it, use <strong>Restore</strong> below (applied at the next start), or stop the gateway and run <code>airlock restore FILE</code> on the server; both keep the data they replace.
      </p>
    </Section>
  );
}
