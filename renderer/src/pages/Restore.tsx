// Settings → Restore (owner only). The running gateway holds its data dir and cannot replace its
// own database in place, so a restore from the app is staged: the backup is uploaded (with
// progress), checked in full by the gateway (passphrase, integrity, the database opened as a start
// would), and applied when Airlock next starts. The page says so, shows what is staged, and lets
// the owner cancel it.
import { useId, useRef, useState, type FormEvent } from 'react';
import type { RestoreStatus } from '../../../gateway/wire';
import { API, ApiError, api, csrfHeaders, get, type FieldErrors } from '../api';
import { useResource } from '../hooks';
import { ConfirmDialog, FormError, LoadError, Section, TextField, fmtTime } from '../components/ui';

type Phase = { kind: 'idle' } | { kind: 'uploading'; done: number; total: number } | { kind: 'checking' };

const fmtBytes = (n: number) => (n >= 1 << 20 ? `${(n / (1 << 20)).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1024))} KB`);

/** base64 of the passphrase's UTF-8 bytes (a header carries ASCII only) */
function b64(s: string): string {
  let bin = '';
  for (const b of new TextEncoder().encode(s)) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** POST the file with upload progress (fetch reports none). */
function upload(file: File, passphrase: string, onProgress: (done: number, total: number) => void, onSent: () => void): Promise<RestoreStatus> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `${API}/restore`);
    xhr.setRequestHeader('content-type', 'application/octet-stream');
    xhr.setRequestHeader('accept', 'application/json');
    if (passphrase) xhr.setRequestHeader('x-airlock-backup-passphrase', b64(passphrase));
    for (const [k, v] of Object.entries(csrfHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.upload.onload = onSent;
    xhr.onerror = () => reject(new ApiError(0, 'network_error', 'The upload did not finish. Check that the gateway is running, then try again.'));
    xhr.onload = () => {
      let body: unknown;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        body = undefined;
      }
      if (xhr.status === 200) return resolve(body as RestoreStatus);
      const err = (body as { error?: { code?: string; message?: string } } | undefined)?.error;
      reject(new ApiError(xhr.status, err?.code ?? `http_${xhr.status}`, err?.message ?? `The gateway answered ${xhr.status}.`));
    };
    xhr.send(file);
  });
}

export function RestoreSection() {
  const status = useResource((signal) => get<RestoreStatus>('/restore', signal), []);
  const [file, setFile] = useState<File | null>(null);
  const [pass, setPass] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>(null);
  const [phase, setPhase] = useState<Phase>({ kind: 'idle' });
  const [cancelOpen, setCancelOpen] = useState(false);
  const fileInput = useRef<HTMLInputElement>(null);
  const progressLabel = useId();
  const busy = phase.kind !== 'idle';
  const staged = status.data?.staged;
  const last = status.data?.last_applied;

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setError(null);
    const errs: FieldErrors = {};
    if (!file) errs.file = 'choose the backup file to restore';
    setErrors(errs);
    if (!file) {
      fileInput.current?.focus();
      return;
    }
    setPhase({ kind: 'uploading', done: 0, total: file.size });
    try {
      await upload(
        file,
        pass,
        (done, total) => setPhase({ kind: 'uploading', done, total }),
        () => setPhase({ kind: 'checking' }),
      );
      setPass('');
      setFile(null);
      if (fileInput.current) fileInput.current.value = '';
      status.reload();
    } catch (err) {
      const ae = err instanceof ApiError ? err : new ApiError(0, 'network_error', String(err));
      if (ae.code === 'wrong_passphrase') {
        setErrors({ passphrase: ae.message });
        document.getElementById('restore-passphrase')?.focus();
      } else if (ae.code === 'invalid_backup' || ae.code === 'empty_backup') {
        setErrors({ file: ae.message });
        fileInput.current?.focus();
      } else setError(ae);
    } finally {
      setPhase({ kind: 'idle' });
    }
  };

  return (
    <Section title="Restore">
      <p>
        Restores a backup made with <strong>Download backup</strong> (or <code>airlock backup</code>). A running gateway cannot replace its own database, so the backup is uploaded and
        checked now, and <strong>applied the next time Airlock starts</strong>: restart it afterwards (<code>systemctl restart airlock</code> on a server, or quit and reopen the desktop
        app). Everything changed after the backup was made is replaced; the current data is kept in a <code>before-restore-…</code> folder in the data directory.
      </p>
      <LoadError error={status.error} retry={status.reload} />
      {staged ? (
        <div className="notice warn" role="status" data-testid="restore-staged">
          <p>
            <strong>A restore is staged and will be applied when Airlock restarts.</strong> {staged.kind === 'encrypted' ? 'Encrypted backup' : 'Plain database'}
            {staged.backup_created_at ? ` made ${fmtTime(staged.backup_created_at)}` : ''}, {fmtBytes(staged.bytes)}, uploaded by {staged.staged_by} {fmtTime(staged.staged_at)}.
          </p>
          <div className="actions left">
            <button type="button" onClick={() => setCancelOpen(true)}>
              Cancel the staged restore
            </button>
          </div>
        </div>
      ) : null}
      {last ? (
        <p className="hint" data-testid="restore-last">
          Last restore applied {fmtTime(last.applied_at)} (uploaded by {last.staged_by}).
          {last.previous ? (
            <>
              {' '}
              The data it replaced is kept in <code>{last.previous}</code>.
            </>
          ) : null}
        </p>
      ) : null}
      <form onSubmit={submit} noValidate aria-label="Restore a backup">
        <div className="grid-2">
          <div className="field">
            <label htmlFor="restore-file">Backup file</label>
            <input
              ref={fileInput}
              id="restore-file"
              type="file"
              accept=".backup,.db,application/octet-stream"
              onChange={(e) => setFile(e.target.files?.[0] ?? null)}
              aria-invalid={errors.file ? true : undefined}
              aria-describedby={errors.file ? 'restore-file-error' : undefined}
            />
            {errors.file ? (
              <p id="restore-file-error" className="field-error">
                {errors.file}
              </p>
            ) : null}
          </div>
          <TextField
            id="restore-passphrase"
            label="Passphrase of the backup"
            type="password"
            autoComplete="off"
            value={pass}
            onChange={setPass}
            error={errors.passphrase}
            hint="The passphrase chosen when the backup was made (not needed for a plain database)."
          />
        </div>
        <FormError error={error} />
        <div className="actions left">
          <button type="submit" className="primary" aria-disabled={busy || undefined}>
            {staged ? 'Upload and stage instead' : 'Upload and stage restore'}
          </button>
        </div>
      </form>
      <div role="status" aria-live="polite">
        {phase.kind === 'uploading' ? (
          <p>
            <span id={progressLabel}>Uploading the backup</span> <progress aria-labelledby={progressLabel} value={phase.done} max={phase.total || undefined} /> {fmtBytes(phase.done)} of{' '}
            {fmtBytes(phase.total)}
          </p>
        ) : null}
        {phase.kind === 'checking' ? <p>Checking the backup (decrypting it and opening its database)…</p> : null}
      </div>
      <ConfirmDialog
        open={cancelOpen}
        title="Cancel the staged restore?"
        body="The uploaded backup is dropped; Airlock keeps its current data when it restarts."
        confirmLabel="Cancel restore"
        cancelLabel="Keep it staged"
        onConfirm={async () => {
          await api('DELETE', '/restore');
          status.reload();
        }}
        onClose={() => setCancelOpen(false)}
      />
    </Section>
  );
}
