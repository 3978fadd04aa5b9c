// The signed export bundle (e.g. onto a USB stick): events.jsonl (+ events.csv, events.cef on
// request), manifest.json (range, counts, first and last hash, SHA-256 of every file),
// manifest.sig (Ed25519 over manifest.json's bytes), public-key.pem, README.txt and verify.mjs.
// Records are read and written a chunk at a time (bounded memory); every file is synced; the
// bundle is read back and verified before success is reported; the export is itself recorded.
import fs from 'node:fs';
import path from 'node:path';
import { verifierSource, type AuditRecord, type BundleManifest, type BundleVerdict } from './core.js';
import { core, type AuditLog } from './log.js';
import { fsyncFile, syncDir, writeSynced } from '../store/durable.js';
import { VERSION } from '../version.js';
import type { AuditExportResult } from '../wire.js';

export const EXPORT_FORMATS = ['jsonl', 'csv', 'cef'] as const;
export type ExportFormat = (typeof EXPORT_FORMATS)[number];

export interface ExportOptions {
  /** the directory the bundle's own folder is created in (a USB stick's mount point) */
  to: string;
  from?: number;
  until?: number;
  formats?: ExportFormat[];
  /** who asked (recorded in the manifest and the audit record) */
  actor: string;
  source: string;
  /** the bundle folder's name; default airlock-audit-<time> */
  name?: string;
  /** true: the folder is `to` itself (it must be empty or not exist); archives use this */
  exact?: boolean;
  /** do not record the export (archive segments record themselves) */
  unrecorded?: boolean;
  /** limit to these sequence numbers (archive segments) */
  seq?: { first: number; last: number };
  /** include the logged prompts and responses the exported request summaries name (prompts.jsonl):
   * given request ids, their rows with the text unsealed (rows that expired are simply absent) */
  prompts?: (requestIds: string[]) => Iterable<Record<string, unknown>>;
  progress?: (done: number, total: number) => void;
}

export type ExportResult = AuditExportResult;

/** The written bundle does not verify (e.g. a logged prompt row was changed in the database after
 * its request record hashed it): nothing is reported as exported. */
export class ExportIntegrityError extends Error {}

export class ExportError extends Error {}

/** A sink that hashes what it writes and writes 256 KiB at a time. */
class Sink {
  private readonly fd: number;
  private buf: string[] = [];
  private size = 0;
  constructor(readonly file: string) {
    this.fd = fs.openSync(file, 'wx', 0o644);
  }
  write(s: string): void {
    this.buf.push(s);
    this.size += s.length;
    if (this.size >= 262_144) this.drain();
  }
  private drain(): void {
    if (!this.buf.length) return;
    const b = Buffer.from(this.buf.join(''), 'utf8');
    let off = 0;
    while (off < b.length) off += fs.writeSync(this.fd, b, off);
    this.buf = [];
    this.size = 0;
  }
  close(): void {
    this.drain();
    fs.fsyncSync(this.fd);
    fs.closeSync(this.fd);
  }
}

const CSV_COLUMNS = ['seq', 'time', 'kind', 'actor', 'source', 'data', 'prev_hash', 'hash'] as const;
/** RFC 4180 quoting; a cell a spreadsheet would run as a formula gets a leading apostrophe. */
export function csvCell(v: string): string {
  const s = /^[=+\-@\t\r]/.test(v) ? `'${v}` : v;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}
function csvLine(r: AuditRecord): string {
  return [String(r.seq), r.ts, r.kind, r.actor, r.source, core.canonical(r.data), r.prev_hash, r.hash].map(csvCell).join(',') + '\r\n';
}

const cefHeader = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/[\r\n]+/g, ' ');
const cefValue = (s: string) => s.replace(/\\/g, '\\\\').replace(/=/g, '\\=').replace(/\r?\n|\r/g, '\\n');
/** ArcSight Common Event Format, one event a line. */
export function cefLine(r: AuditRecord): string {
  const d = r.data;
  const failed = typeof d.status === 'number' && d.status >= 400;
  const severity = r.kind.startsWith('admin.') || r.kind.startsWith('auth.') ? (failed ? 7 : 5) : failed ? 4 : 2;
  const ext = [
    `rt=${Date.parse(r.ts)}`,
    `suser=${cefValue(r.actor)}`,
    `src=${cefValue(r.source)}`,
    `externalId=${r.seq}`,
    `cs1Label=hash`,
    `cs1=${r.hash}`,
    `cs2Label=prev_hash`,
    `cs2=${r.prev_hash}`,
    `msg=${cefValue(core.canonical(d))}`,
  ];
  return `CEF:0|Airlock|Airlock Gateway|${cefHeader(VERSION)}|${cefHeader(r.kind)}|${cefHeader(typeof d.action === 'string' ? d.action : r.kind)}|${severity}|${ext.join(' ')}\n`;
}

const README = (m: BundleManifest) => `Airlock audit export
====================

Records ${m.first_seq ?? '-'} to ${m.last_seq ?? '-'} (${m.count} records) of an Airlock audit log,
exported ${m.created_at} by ${m.exported_by}.
Signed with the Ed25519 key whose fingerprint is:

    ${m.key_fingerprint}

Compare it with the fingerprint Airlock shows (admin app: Audit; or "airlock audit key") before
trusting this bundle: anyone can sign a bundle with a key of their own.

Files
-----
events.jsonl     one record per line (canonical JSON: keys sorted, no spaces)
events.csv       the same records for spreadsheets (if exported)
events.cef       the same records in Common Event Format for a SIEM (if exported)
manifest.json    the range, the count, the first and last hash and the SHA-256 of every file
manifest.sig     the Ed25519 signature (base64) over manifest.json's exact bytes
public-key.pem   the public key that made the signature
verify.mjs       a verifier that needs only Node.js 18 or later and no packages

How to verify
-------------
With Node.js, in this folder:

    node verify.mjs --key ${m.key_fingerprint}

It checks the signature, every file's SHA-256 and size, and every record: its hash (SHA-256 of
the canonical JSON of seq, ts, kind, actor, source, data and prev_hash), that it links to the
record before it (prev_hash), that sequence numbers run without gaps from first_seq, and the
count. Exit code 0 means all of it holds; otherwise it names the first bad record.
With Airlock installed: airlock audit verify THIS_FOLDER --key ${m.key_fingerprint}

Without Node, with OpenSSL 3 and sha256sum:

    openssl pkeyutl -verify -pubin -inkey public-key.pem -rawin -in manifest.json \\
      -sigfile <(base64 -d manifest.sig)
    sha256sum events.jsonl      # compare with "files" in manifest.json

(the hash chain itself needs a script: verify.mjs is short and readable).
`;

/** Write a bundle. Throws ExportError for a problem the caller can fix (the target). */
export async function exportBundle(log: AuditLog, o: ExportOptions): Promise<ExportResult> {
  const formats = new Set<ExportFormat>(['jsonl', ...(o.formats ?? [])]);
  const target = path.resolve(o.to);
  let dir: string;
  if (o.exact) {
    dir = target;
    fs.mkdirSync(dir, { recursive: true });
    if (fs.readdirSync(dir).length) throw new ExportError(`${dir} is not empty`);
  } else {
    let st: fs.Stats;
    try {
      st = fs.statSync(target);
    } catch {
      throw new ExportError(`${target} does not exist (plug in the drive, or create the folder first)`);
    }
    if (!st.isDirectory()) throw new ExportError(`${target} is not a directory`);
    const stamp = new Date().toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z');
    const base = o.name ?? `airlock-audit-${stamp}`;
    dir = path.join(target, base);
    for (let i = 2; fs.existsSync(dir); i++) dir = path.join(target, `${base}-${i}`);
    try {
      fs.mkdirSync(dir);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new ExportError(`cannot create ${dir}: ${code === 'EACCES' || code === 'EPERM' ? 'permission denied' : code === 'EROFS' ? 'read-only file system' : (e as Error).message}`);
    }
  }
  try {
    log.checkpoint();
    const range = o.seq ?? log.seqRange(o.from, o.until);
    const files: BundleManifest['files'] = [];
    const sinks: { name: string; sink: Sink; line: (r: AuditRecord) => string }[] = [
      { name: core.EVENTS, sink: new Sink(path.join(dir, core.EVENTS)), line: (r) => core.canonical(r) + '\n' },
    ];
    if (formats.has('csv')) {
      const s = new Sink(path.join(dir, 'events.csv'));
      s.write(CSV_COLUMNS.join(',') + '\r\n');
      sinks.push({ name: 'events.csv', sink: s, line: csvLine });
    }
    if (formats.has('cef')) sinks.push({ name: 'events.cef', sink: new Sink(path.join(dir, 'events.cef')), line: cefLine });
    const prompts = o.prompts ? new Sink(path.join(dir, core.PROMPTS)) : undefined;
    let promptRows = 0;
    let count = 0;
    let firstHash: string | null = null;
    let lastHash: string | null = null;
    const total = range ? range.last - range.first + 1 : 0;
    if (range) {
      for (const chunk of log.range(range.first, range.last)) {
        const logged: string[] = [];
        for (const r of chunk) {
          firstHash ??= r.hash;
          lastHash = r.hash;
          for (const s of sinks) s.sink.write(s.line(r));
          count++;
          if (prompts && core.promptLogHashOf(r) !== undefined) logged.push(r.data.request_id as string);
        }
        if (prompts && logged.length)
          for (const row of o.prompts!(logged)) {
            prompts.write(core.canonical(row) + '\n');
            promptRows++;
          }
        o.progress?.(count, total);
        await new Promise((res) => setImmediate(res));
      }
    }
    for (const s of sinks) s.sink.close();
    prompts?.close();
    fs.writeFileSync(path.join(dir, core.PUBLIC_KEY), log.key.publicKeyPem, { mode: 0o644 });
    fs.writeFileSync(path.join(dir, 'verify.mjs'), verifierSource(), { mode: 0o755 });
    const manifest: BundleManifest = {
      format: core.BUNDLE_FORMAT,
      created_at: new Date().toISOString(),
      range: { from: o.from === undefined ? null : new Date(o.from).toISOString(), until: o.until === undefined ? null : new Date(o.until).toISOString() },
      first_seq: range ? range.first : null,
      last_seq: range ? range.last : null,
      count,
      prev_hash: range ? log.prevHashOf(range.first) : log.head().hash,
      first_hash: firstHash,
      last_hash: lastHash,
      files,
      algorithm: 'Ed25519',
      key_fingerprint: log.key.fingerprint,
      exported_by: o.actor,
      ...(prompts ? { prompt_rows: promptRows } : {}),
    };
    fs.writeFileSync(path.join(dir, 'README.txt'), README(manifest));
    for (const name of [...sinks.map((s) => s.name), ...(prompts ? [core.PROMPTS] : []), core.PUBLIC_KEY, 'verify.mjs', 'README.txt']) files.push({ name, ...core.fileSha256(path.join(dir, name)) });
    const manifestText = JSON.stringify(manifest, null, 2) + '\n';
    writeSynced(path.join(dir, core.MANIFEST), manifestText, { flag: 'wx', mode: 0o644 });
    writeSynced(path.join(dir, core.SIGNATURE), log.key.sign(manifestText) + '\n', { flag: 'wx', mode: 0o644 });
    for (const name of [core.PUBLIC_KEY, 'verify.mjs', 'README.txt']) fsyncFile(path.join(dir, name));
    syncDir(dir);
    syncDir(path.dirname(dir));
    // Read back from the target before reporting success.
    const check: BundleVerdict = core.verifyBundle(dir, { key: log.key.fingerprint });
    if (!check.ok || check.count !== count) throw new ExportIntegrityError(`the bundle written to ${dir} does not verify when read back (it was removed): ${check.problems.join('; ')}`);
    const result: ExportResult = {
      dir,
      count,
      first_seq: manifest.first_seq,
      last_seq: manifest.last_seq,
      files,
      key_fingerprint: log.key.fingerprint,
      manifest_sha256: core.sha256(manifestText),
    };
    if (!o.unrecorded)
      log.append({
        kind: 'audit.export',
        actor: o.actor,
        source: o.source,
        data: { action: 'audit export', dir, count, first_seq: result.first_seq, last_seq: result.last_seq, formats: [...formats], manifest_sha256: result.manifest_sha256, ...(prompts ? { prompt_rows: promptRows } : {}) },
      });
    return result;
  } catch (e) {
    if (!o.exact) fs.rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

