// Verify a bundle uploaded from this computer (POST /audit/verify-upload): the auditor picks the
// bundle folder (e.g. on a USB stick in the browser's machine); its files are sent one after the
// other, each after a header line {"name","size"}, as one streamed body — the browser reads them
// from disk as they are sent, never whole in memory. The gateway checks them with the same
// verifier as a folder on its own machine and deletes its copy.
import { useState, type FormEvent } from 'react';
import { api, enc } from '../api';
import type { AuditBundleVerdict } from '../../../gateway/wire';
import { Badge, FormError } from '../components/ui';

const CONTENT_TYPE = 'application/x-airlock-bundle';

/** The upload body: each file's header line, then the file (a Blob of Files stays on disk). */
export function bundleBody(files: readonly File[]): Blob {
  const parts: BlobPart[] = [];
  for (const f of files) parts.push(JSON.stringify({ name: f.name, size: f.size }) + '\n', f);
  return new Blob(parts, { type: CONTENT_TYPE });
}

/** What a bundle check found (either way), for a live status region. */
export function BundleVerdictView({ result, what }: { result: AuditBundleVerdict | undefined; what: string }) {
  if (!result) return null;
  if (result.ok)
    return (
      <p>
        <Badge tone="ok">Verified</Badge> {result.count} record{result.count === 1 ? '' : 's'}
        {result.first_seq !== null ? ` (seq ${result.first_seq} to ${result.last_seq})` : ''}, signed by <code className="break-anywhere">{result.key_fingerprint}</code>.
      </p>
    );
  return (
    <div>
      <p>
        <Badge tone="bad">Failed</Badge> <code className="break-anywhere">{what}</code> does not verify:
      </p>
      <ul>
        {result.problems.map((p) => (
          <li key={p}>{p}</li>
        ))}
      </ul>
    </div>
  );
}

export function UploadBundleForm({ expectedKey }: { expectedKey: string }) {
  const [files, setFiles] = useState<File[]>([]);
  const [folder, setFolder] = useState('');
  const [error, setError] = useState<unknown>();
  const [fieldError, setFieldError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<AuditBundleVerdict>();

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setResult(undefined);
    setError(undefined);
    if (!files.length) {
      setFieldError('Choose the bundle folder first (it holds manifest.json).');
      document.getElementById('audit-upload-files')?.focus();
      return;
    }
    setFieldError(undefined);
    setBusy(true);
    try {
      const key = expectedKey.trim();
      setResult(await api<AuditBundleVerdict>('POST', `/audit/verify-upload${key ? `?key=${enc(key)}` : ''}`, bundleBody(files)));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={(ev) => void submit(ev)} noValidate aria-label="Upload a bundle to verify">
      <div className="field">
        <label htmlFor="audit-upload-files">Bundle folder on this computer</label>
        <input
          id="audit-upload-files"
          type="file"
          multiple
          {...{ webkitdirectory: '' }}
          aria-invalid={fieldError ? true : undefined}
          aria-describedby={fieldError ? 'audit-upload-files-error' : 'audit-upload-files-hint'}
          onChange={(ev) => {
            const list = Array.from(ev.target.files ?? []);
            // a bundle is flat: only the chosen folder's own files
            const own = list.filter((f) => (f.webkitRelativePath.match(/\//g) ?? []).length <= 1);
            setFiles(own);
            setFolder(own[0]?.webkitRelativePath.split('/')[0] ?? '');
            setResult(undefined);
            setFieldError(undefined);
          }}
        />
        {fieldError ? (
          <p className="field-error" id="audit-upload-files-error">
            {fieldError}
          </p>
        ) : (
          <p className="hint" id="audit-upload-files-hint">
            {files.length ? `${files.length} file(s) from ${folder || 'the folder'}.` : 'E.g. the airlock-audit-… folder on a USB stick in this computer. The gateway verifies a copy and deletes it.'}
          </p>
        )}
      </div>
      <FormError error={error} />
      <button type="submit" aria-disabled={busy || undefined}>
        {busy ? 'Uploading and verifying…' : 'Upload and verify'}
      </button>
      <div role="status" aria-live="polite" data-testid="audit-upload-status">
        <BundleVerdictView result={result} what={folder || 'the uploaded bundle'} />
      </div>
    </form>
  );
}
