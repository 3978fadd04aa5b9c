// Audit: the tamper-evident record of who changed what and who used which model, the signing
// key's fingerprint (what an auditor pins), a check of the live hash chain, and "Export to USB":
// a signed bundle written to a folder on the gateway's machine (the desktop app lists removable
// drives), verifiable offline with the bundle's own verify.mjs.
import { useEffect, useRef, useState, type FormEvent } from 'react';
import { auditExportSchema, auditVerifyBundleSchema, type AuditExportFormat } from '../../../gateway/config/admin-schema';
import { api, apiFieldErrors, get, validate, type FieldErrors } from '../api';
import type { AuditBundleVerdict, AuditExportProgress, AuditExportResult, AuditKeyView, AuditRecordView, AuditVerifyBody, ListBody } from '../../../gateway/wire';
import { useResource } from '../hooks';
import { BundleVerdictView, UploadBundleForm } from './audit-upload';
import { Badge, CheckboxField, EmptyState, FormError, LoadError, Loading, PageHeader, Section, SelectField, TableWrap, TextField, fmtTime, useFocusFirstError } from '../components/ui';

const KINDS = [
  { value: '', label: 'Everything' },
  { value: 'admin.', label: 'Admin changes and refusals' },
  { value: 'admin.change', label: 'Admin changes' },
  { value: 'admin.denied', label: 'Refused admin requests' },
  { value: 'auth.', label: 'Sign-ins and sign-outs' },
  { value: 'config.', label: 'Configuration applied from the command line' },
  { value: 'request', label: 'Data-plane requests' },
  { value: 'audit.', label: 'Exports, checks and archives' },
  { value: 'prompt_log.', label: 'Logged prompts read or deleted' },
];
const PAGE = 50;

interface RemovableDrive {
  mountpoint: string;
  label: string | null;
  size: string | null;
}
/** The desktop shell's bridge (main/preload.cts), when the app runs in it. */
interface ShellBridge {
  listRemovableDrives?: () => Promise<RemovableDrive[]>;
  pickExportFolder?: (o?: { defaultPath?: string; title?: string; purpose?: 'export' | 'read' }) => Promise<string | null>;
}
const shell = (): ShellBridge | undefined => (window as unknown as { airlock?: ShellBridge }).airlock;

/** An error from the shell's IPC, without Electron's "Error invoking remote method …:" prefix. */
const shellError = (e: unknown): Error => new Error(String((e as Error)?.message ?? e).replace(/^Error invoking remote method '[^']*': (\w*Error: )?/, ''));

/** "2027-01-31T09:30" (a datetime-local input, local time) → ISO, or undefined when empty. */
const isoOf = (local: string): string | undefined => (local ? new Date(local).toISOString() : undefined);

/** What a record is about, in one line. */
function summary(r: AuditRecordView): string {
  const d = r.data;
  const s = (k: string) => (typeof d[k] === 'string' || typeof d[k] === 'number' ? String(d[k]) : undefined);
  if (r.kind === 'request') return [s('model') ?? '—', s('endpoint') ? `→ ${s('endpoint')}` : '', s('status'), s('error_class') ?? ''].filter(Boolean).join(' ');
  const changes = Array.isArray(d.changes) ? d.changes.map(String) : d.changes && typeof d.changes === 'object' ? Object.keys(d.changes) : [];
  return [s('action') ?? r.kind, changes.length ? `(${changes.join(', ')})` : '', s('status') && Number(s('status')) >= 400 ? `failed ${s('status')}${s('error_code') ? ` ${s('error_code')}` : ''}` : ''].filter(Boolean).join(' ');
}

export function AuditPage() {
  const [kind, setKind] = useState('');
  const [actor, setActor] = useState('');
  const [from, setFrom] = useState('');
  const [until, setUntil] = useState('');
  const [older, setOlder] = useState<AuditRecordView[]>([]);
  const [olderError, setOlderError] = useState<unknown>();
  const badRange = !!from && !!until && Date.parse(from) > Date.parse(until);

  const query = (before?: number) => {
    const q = new URLSearchParams({ limit: String(PAGE) });
    if (kind) q.set('kind', kind);
    if (actor.trim()) q.set('actor', actor.trim());
    if (from) q.set('from', isoOf(from)!);
    if (until) q.set('until', isoOf(until)!);
    if (before !== undefined) q.set('before_seq', String(before));
    return `/audit/events?${q}`;
  };
  const events = useResource(
    (s) => {
      setOlder([]);
      return badRange ? Promise.resolve(undefined) : get<ListBody<AuditRecordView>>(query(), s);
    },
    [kind, actor, from, until],
  );
  const key = useResource((s) => get<AuditKeyView>('/audit/key', s), []);
  const rows = [...(events.data?.data ?? []), ...older];
  const more = rows.length > 0 && rows.length % PAGE === 0;
  const loadOlder = async () => {
    try {
      setOlderError(undefined);
      const r = await get<ListBody<AuditRecordView>>(query(rows[rows.length - 1]!.seq));
      setOlder((o) => [...o, ...r.data]);
    } catch (e) {
      setOlderError(e);
    }
  };

  return (
    <>
      <PageHeader
        title="Audit"
        intro="Who changed what, who signed in, and every request to a model: a hash-chained, signed record that cannot be edited. Export it for your auditors; they check it on their own machine."
      />
      <KeyAndVerify keyView={key.data} keyError={key.error} />
      <ExportSection from={from} until={until} fingerprint={key.data?.fingerprint} />
      <VerifyBundleSection fingerprint={key.data?.fingerprint} />
      <Section title="Records">
        <div className="filters" role="group" aria-label="Audit filters">
          <SelectField id="audit-kind" label="Show" value={kind} onChange={setKind} options={KINDS} />
          <TextField id="audit-actor" label="Who (exact)" value={actor} onChange={setActor} placeholder="user:alice, token:ci, key:notebook-app" />
          <TextField id="audit-from" type="datetime-local" label="From" value={from} onChange={setFrom} error={badRange ? 'must not be after “Until”' : undefined} />
          <TextField id="audit-until" type="datetime-local" label="Until" value={until} onChange={setUntil} />
        </div>
        <LoadError error={events.error} retry={events.reload} />
        {events.loading ? <Loading what="audit records" /> : null}
        {events.data && rows.length === 0 ? (
          <EmptyState title="No records match">
            <p>Changes, sign-ins and requests appear here as they happen.</p>
          </EmptyState>
        ) : null}
        {rows.length ? (
          <TableWrap label="Audit records">
            <table className="compact" data-testid="audit-table">
              <caption className="sr-only">Audit records, newest first</caption>
              <thead>
                <tr>
                  <th scope="col" className="num">
                    Seq
                  </th>
                  <th scope="col">Time</th>
                  <th scope="col">Kind</th>
                  <th scope="col">Who</th>
                  <th scope="col">From</th>
                  <th scope="col">What</th>
                  <th scope="col">Details</th>
                </tr>
              </thead>
              <tbody>
                {rows.map((r) => (
                  <tr key={r.seq}>
                    <th scope="row" className="num">
                      {r.seq}
                    </th>
                    <td>{fmtTime(r.ts)}</td>
                    <td>{r.kind}</td>
                    <td>{r.actor}</td>
                    <td>{r.source}</td>
                    <td>{summary(r)}</td>
                    <td>
                      <details>
                        <summary>
                          Record <span className="sr-only">{r.seq}</span>
                        </summary>
                        <pre className="audit-detail">{JSON.stringify(r.data, null, 2)}</pre>
                        <p className="hint mono break-anywhere">hash {r.hash}</p>
                      </details>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </TableWrap>
        ) : null}
        <LoadError error={olderError} />
        {more ? (
          <button type="button" onClick={() => void loadOlder()}>
            Show older records
          </button>
        ) : null}
      </Section>
    </>
  );
}

function KeyAndVerify({ keyView, keyError }: { keyView: AuditKeyView | undefined; keyError: unknown }) {
  const [result, setResult] = useState<AuditVerifyBody>();
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const verify = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setResult(await get<AuditVerifyBody>('/audit/verify'));
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return (
    <Section
      title="Signing key and integrity"
      actions={
        <button type="button" onClick={() => void verify()} aria-disabled={busy || undefined}>
          {busy ? 'Checking…' : 'Verify the log now'}
        </button>
      }
    >
      <LoadError error={keyError} />
      {keyView ? (
        <dl className="facts">
          <dt>Key fingerprint (Ed25519)</dt>
          <dd className="mono break-anywhere" data-testid="audit-fingerprint">
            {keyView.fingerprint}
          </dd>
          <dt>Last signed checkpoint</dt>
          <dd>{keyView.last_checkpoint ? `record ${keyView.last_checkpoint.seq}, ${fmtTime(keyView.last_checkpoint.ts)}` : 'none yet'}</dd>
        </dl>
      ) : null}
      <p className="hint">
        Give your auditors this fingerprint through a channel of its own. They pass it to the verifier (<code>node verify.mjs --key FINGERPRINT</code>), so a bundle signed with any other key
        fails. The command line shows it too: <code>airlock audit key</code>.
      </p>
      <div role="status" aria-live="polite">
        {result ? (
          result.ok ? (
            <p>
              <Badge tone="ok">Intact</Badge> {result.records} record{result.records === 1 ? '' : 's'} checked
              {result.archived_through ? ` (records up to ${result.archived_through} are in archive segments)` : ''}, {result.checkpoints} signed checkpoint
              {result.checkpoints === 1 ? '' : 's'}.
            </p>
          ) : (
            <div>
              <p>
                <Badge tone="bad">Damaged</Badge> The log does not verify:
              </p>
              <ul>
                {result.problems.map((p) => (
                  <li key={p}>{p}</li>
                ))}
              </ul>
            </div>
          )
        ) : null}
      </div>
      <FormError error={error} />
    </Section>
  );
}

function ExportSection({ from, until, fingerprint }: { from: string; until: string; fingerprint: string | undefined }) {
  const bridge = shell();
  const [to, setTo] = useState('');
  const [csv, setCsv] = useState(false);
  const [cef, setCef] = useState(false);
  const [useRange, setUseRange] = useState(false);
  const [drives, setDrives] = useState<RemovableDrive[] | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [done, setDone] = useState<AuditExportResult>();
  const [progress, setProgress] = useState<AuditExportProgress>();
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);

  // While an export runs, ask the gateway how far it got (twice a second).
  useEffect(() => {
    if (!busy) {
      setProgress(undefined);
      return;
    }
    let stop = false;
    const target = to.trim();
    const poll = async () => {
      while (!stop) {
        try {
          const p = await get<ListBody<AuditExportProgress>>('/audit/export/progress');
          if (!stop) setProgress(p.data.find((x) => x.to === target));
        } catch {
          /* the export's own answer reports errors */
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    };
    void poll();
    return () => {
      stop = true;
    };
  }, [busy, to]);

  const findDrives = async () => {
    try {
      setDrives((await bridge?.listRemovableDrives?.()) ?? []);
    } catch (e) {
      setError(e);
    }
  };
  // The shell re-checks the chosen folder (links followed; still on the drive it was opened on)
  // and answers the resolved path, or refuses with the reason.
  const [prompts, setPrompts] = useState(false);
  const pick = async () => {
    setError(undefined);
    try {
      const p = await bridge?.pickExportFolder?.({ title: 'Export the audit log to…', ...(to ? { defaultPath: to } : {}) });
      if (p) setTo(p);
    } catch (e) {
      setError(shellError(e));
    }
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setDone(undefined);
    setError(undefined);
    const formats: AuditExportFormat[] = [...(csv ? (['csv'] as const) : []), ...(cef ? (['cef'] as const) : [])];
    const body = { to: to.trim(), formats, ...(prompts ? { prompts: true } : {}), ...(useRange && from ? { from: isoOf(from) } : {}), ...(useRange && until ? { until: isoOf(until) } : {}) };
    const v = validate(auditExportSchema, body);
    if (!v.ok) {
      setErrors(v.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      setDone(await api<AuditExportResult>('POST', '/audit/export', v.data));
    } catch (err) {
      const fe = apiFieldErrors(err);
      if (Object.keys(fe).length) setErrors(fe);
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Section title="Export to USB">
      <form ref={form} onSubmit={(e) => void submit(e)} noValidate aria-label="Export the audit log">
        <p className="hint">
          Writes a signed bundle into a new folder inside the one you choose: the records (JSON lines), a manifest with the SHA-256 of every file, its Ed25519 signature, the public key, a README
          and <code>verify.mjs</code>, which checks everything with Node alone. The bundle is read back and verified before it is reported done.
        </p>
        {bridge?.listRemovableDrives ? (
          <div className="row-buttons audit-drive-buttons">
            <button type="button" onClick={() => void findDrives()}>
              Find USB drives
            </button>
            {bridge.pickExportFolder ? (
              <button type="button" onClick={() => void pick()}>
                Choose folder…
              </button>
            ) : null}
          </div>
        ) : null}
        {drives ? (
          drives.length ? (
            <SelectField
              id="audit-drive"
              label="Removable drive"
              value={drives.some((d) => d.mountpoint === to) ? to : ''}
              onChange={setTo}
              options={[{ value: '', label: 'Choose a drive…' }, ...drives.map((d) => ({ value: d.mountpoint, label: `${d.label ?? d.mountpoint}${d.size ? ` (${d.size})` : ''} — ${d.mountpoint}` }))]}
            />
          ) : (
            <p className="muted">No removable drive found: plug one in and look again.</p>
          )
        ) : null}
        <TextField
          id="audit-to"
          label="Folder on the gateway’s machine"
          value={to}
          onChange={setTo}
          error={errors.to}
          hint="An absolute path, e.g. the USB stick’s mount point /media/usb. In a browser this is a folder on the server, not on your computer."
          placeholder="/media/usb"
        />
        <fieldset className="field">
          <legend>Also write</legend>
          <CheckboxField id="audit-csv" label="CSV (spreadsheets)" checked={csv} onChange={setCsv} />
          <CheckboxField id="audit-cef" label="CEF (SIEM)" checked={cef} onChange={setCef} error={errors.formats} />
          <CheckboxField
            id="audit-prompts"
            label="The logged prompts and responses (prompts.jsonl)"
            checked={prompts}
            onChange={setPrompts}
            error={errors.prompts}
            hint="Plain text on the drive: only where the teams' prompt logging kept text. The verifier checks each row against its request record."
          />
        </fieldset>
        <CheckboxField
          id="audit-range"
          label="Only the From/Until period of the filter below"
          checked={useRange}
          onChange={setUseRange}
          error={errors.from ?? errors.until}
          hint={useRange && !from && !until ? 'No period is set below: everything is exported.' : undefined}
        />
        <FormError error={error} />
        <button type="submit" className="primary" aria-disabled={busy || undefined}>
          {busy ? 'Exporting…' : 'Export to USB'}
        </button>
        <div role="status" aria-live="polite" data-testid="audit-export-status">
          {busy ? (
            progress && progress.total > 0 ? (
              <div>
                <label htmlFor="audit-export-progress">
                  Exported {progress.done.toLocaleString()} of {progress.total.toLocaleString()} records
                  {progress.done >= progress.total ? '; verifying the bundle…' : '…'}
                </label>
                <progress id="audit-export-progress" max={progress.total} value={progress.done} />
              </div>
            ) : (
              <p className="loading">Exporting and verifying… a long log takes a while.</p>
            )
          ) : null}
          {done ? (
            <div className="notice ok">
              <p>
                Exported and verified {done.count} record{done.count === 1 ? '' : 's'} to <code className="break-anywhere">{done.dir}</code>.
              </p>
              <p>
                On the auditor’s machine:{' '}
                <code className="break-anywhere">node verify.mjs --key {fingerprint ?? done.key_fingerprint}</code>{' '}
                in that folder.
              </p>
            </div>
          ) : null}
        </div>
      </form>
    </Section>
  );
}

/** Check an exported bundle (e.g. one brought back on a USB stick) with the same checks as verify.mjs. */
function VerifyBundleSection({ fingerprint }: { fingerprint: string | undefined }) {
  const bridge = shell();
  const [dir, setDir] = useState('');
  const [key, setKey] = useState('');
  const [errors, setErrors] = useState<FieldErrors>({});
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<AuditBundleVerdict>();
  const form = useRef<HTMLFormElement>(null);
  useFocusFirstError(errors, form);

  const pick = async () => {
    setError(undefined);
    try {
      const p = await bridge?.pickExportFolder?.({ title: 'The bundle folder to verify', purpose: 'read', ...(dir ? { defaultPath: dir } : {}) });
      if (p) setDir(p);
    } catch (e) {
      setError(shellError(e));
    }
  };
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setResult(undefined);
    setError(undefined);
    const v = validate(auditVerifyBundleSchema, { dir: dir.trim(), ...(key.trim() ? { key: key.trim() } : {}) });
    if (!v.ok) {
      setErrors(v.errors);
      return;
    }
    setErrors({});
    setBusy(true);
    try {
      setResult(await api<AuditBundleVerdict>('POST', '/audit/verify-bundle', v.data));
    } catch (err) {
      const fe = apiFieldErrors(err);
      if (Object.keys(fe).length) setErrors(fe);
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Section title="Verify a bundle">
      <form ref={form} onSubmit={(e) => void submit(e)} noValidate aria-label="Verify an exported bundle">
        <p className="hint">
          Checks an exported bundle on the gateway’s machine: its signature, every file’s SHA-256, every record’s hash and link, and the count — what <code>verify.mjs</code> does on the
          auditor’s machine.
        </p>
        {bridge?.pickExportFolder ? (
          <div className="row-buttons">
            <button type="button" onClick={() => void pick()}>
              Choose bundle folder…
            </button>
          </div>
        ) : null}
        <TextField
          id="audit-verify-dir"
          label="Path of the bundle to verify"
          value={dir}
          onChange={setDir}
          error={errors.dir}
          hint="The folder an export wrote (it holds manifest.json), e.g. /media/usb/airlock-audit-20270131T093000Z."
          placeholder="/media/usb/airlock-audit-…"
        />
        <TextField
          id="audit-verify-key"
          label="Expected key fingerprint"
          value={key}
          onChange={setKey}
          error={errors.key}
          hint={fingerprint ? 'Empty: this gateway’s key. A bundle signed with any other key fails.' : undefined}
          placeholder={fingerprint ?? 'SHA256:…'}
        />
        <FormError error={error} />
        <button type="submit" aria-disabled={busy || undefined}>
          {busy ? 'Verifying…' : 'Verify bundle'}
        </button>
        <div role="status" aria-live="polite" data-testid="audit-verify-status">
          <BundleVerdictView result={result} what={result?.dir ?? ''} />
        </div>
      </form>
      <h3>Or upload it from this computer</h3>
      <UploadBundleForm expectedKey={key} />
    </Section>
  );
}
