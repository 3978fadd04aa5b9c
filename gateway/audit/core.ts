// The audit trail's shared core: the canonical encoding, a record's hash, and the bundle
// verifier. auditCore() is self-contained on purpose (it uses only what it is given): the export
// writes its source into every bundle as verify.mjs, so the auditor's copy of the verifier is the
// very code `airlock audit verify` runs, and needs only Node.
import type * as Crypto from 'node:crypto';
import type * as Fs from 'node:fs';
import type * as Path from 'node:path';
import type { AuditRecordView } from '../wire.js';

export interface AuditCoreDeps {
  crypto: typeof Crypto;
  fs: typeof Fs;
  path: typeof Path;
}

/** One audit record as stored and exported (events.jsonl holds one canonical line of each):
 * seq, ts (ISO 8601, UTC, ms), kind, actor, source, data, prev_hash (64 zeros before the first)
 * and hash (SHA-256 hex of the canonical encoding of every other field). */
export type AuditRecord = AuditRecordView;

export interface BundleManifest {
  format: string;
  created_at: string;
  range: { from: string | null; until: string | null };
  first_seq: number | null;
  last_seq: number | null;
  count: number;
  /** the hash the first exported record must link to */
  prev_hash: string;
  first_hash: string | null;
  last_hash: string | null;
  files: { name: string; sha256: string; bytes: number }[];
  algorithm: string;
  key_fingerprint: string;
  exported_by: string;
  /** rows in prompts.jsonl (present only when the export included the logged prompts) */
  prompt_rows?: number;
}

export interface BundleVerdict {
  ok: boolean;
  /** every problem found, most important first; the first bad record is named precisely */
  problems: string[];
  key_fingerprint: string | null;
  count: number;
  first_seq: number | null;
  last_seq: number | null;
}

export function auditCore(deps: AuditCoreDeps) {
  const { crypto, fs, path } = deps;
  const BUNDLE_FORMAT = 'airlock-audit-bundle/1';
  const GENESIS = '0'.repeat(64);
  const MANIFEST = 'manifest.json';
  const SIGNATURE = 'manifest.sig';
  const PUBLIC_KEY = 'public-key.pem';
  const EVENTS = 'events.jsonl';
  const PROMPTS = 'prompts.jsonl';

  /** Whether JSON.stringify(v) already is v's canonical encoding: plain objects whose keys come
   * in sorted order, arrays, strings, booleans, null, finite numbers, nothing with a toJSON. */
  function alreadyCanonical(v: unknown): boolean {
    switch (typeof v) {
      case 'string':
      case 'boolean':
      case 'undefined':
        return true;
      case 'number':
        return Number.isFinite(v);
      case 'object': {
        if (v === null) return true;
        if (Array.isArray(v)) {
          for (let i = 0; i < v.length; i++) if (!alreadyCanonical(v[i])) return false;
          return true;
        }
        const proto: unknown = Object.getPrototypeOf(v);
        if (proto !== Object.prototype && proto !== null) return false;
        const o = v as Record<string, unknown>;
        if ('toJSON' in o) return false;
        let prev: string | undefined;
        for (const k in o) {
          if (prev !== undefined && prev > k) return false;
          prev = k;
          if (!alreadyCanonical(o[k])) return false;
        }
        return true;
      }
      default:
        return false;
    }
  }

  /** JSON with object keys sorted and no whitespace; undefined members are left out (in arrays:
   * null). It encodes every data-plane summary, on the main thread when the summary is queued
   * (log.ts): producers that build their objects in key order (the summary) get the native
   * JSON.stringify, which gives the same bytes for such values and costs a fraction of the
   * general walk below. */
  function canonical(v: unknown): string {
    if (typeof v === 'object' && v !== null && alreadyCanonical(v)) return JSON.stringify(v);
    return encode(v);
  }

  function encode(v: unknown): string {
    switch (typeof v) {
      case 'string':
        return JSON.stringify(v);
      case 'boolean':
        return v ? 'true' : 'false';
      case 'number':
        if (!Number.isFinite(v)) throw new Error('canonical encoding: numbers must be finite');
        return JSON.stringify(v);
      case 'object': {
        if (v === null) return 'null';
        if (Array.isArray(v)) {
          let out = '[';
          for (let i = 0; i < v.length; i++) {
            const x: unknown = v[i];
            out += (i ? ',' : '') + (x === undefined ? 'null' : encode(x));
          }
          return out + ']';
        }
        const o = v as Record<string, unknown>;
        const keys = Object.keys(o);
        // sorting costs more than the rest together; producers that build their objects in key
        // order (the data-plane summary) skip it
        for (let i = 1; i < keys.length; i++)
          if (keys[i - 1]! > keys[i]!) {
            keys.sort();
            break;
          }
        let out = '{';
        for (let i = 0; i < keys.length; i++) {
          const k = keys[i]!;
          const x = o[k];
          if (x === undefined) continue;
          out += (out.length > 1 ? ',' : '') + JSON.stringify(k) + ':' + encode(x);
        }
        return out + '}';
      }
      default:
        throw new Error(`canonical encoding: cannot encode a ${typeof v}`);
    }
  }

  // one-shot crypto.hash (Node 20.12 and later) where there is one: about half the cost of a Hash
  // object for a record's few hundred bytes; verify.mjs still runs on older Node
  const sha256: (data: string | Buffer) => string =
    typeof crypto.hash === 'function' ? (data) => crypto.hash('sha256', data, 'hex') : (data) => crypto.createHash('sha256').update(data).digest('hex');

  /** A record's hash: SHA-256 over the canonical encoding of every field but the hash. */
  function recordHash(r: Omit<AuditRecord, 'hash'> & { hash?: string }): string {
    return sha256(canonical({ seq: r.seq, ts: r.ts, kind: r.kind, actor: r.actor, source: r.source, data: r.data, prev_hash: r.prev_hash }));
  }

  /** The same hash when the data's canonical encoding is at hand (the writer: encoded once, for the hash and the row). */
  function recordHashOf(r: { seq: number; ts: string; kind: string; actor: string; source: string; prev_hash: string }, dataCanonical: string): string {
    const q = JSON.stringify;
    return sha256(`{"actor":${q(r.actor)},"data":${dataCanonical},"kind":${q(r.kind)},"prev_hash":${q(r.prev_hash)},"seq":${Number.isSafeInteger(r.seq) ? String(r.seq) : canonical(r.seq)},"source":${q(r.source)},"ts":${q(r.ts)}}`);
  }

  /** "SHA256:" and the hex SHA-256 of the public key's DER (SubjectPublicKeyInfo), in groups of four. */
  function fingerprint(publicKeyPem: string): string {
    const der = crypto.createPublicKey(publicKeyPem).export({ type: 'spki', format: 'der' });
    return 'SHA256:' + sha256(der).match(/.{4}/g)!.join(':');
  }

  /** Why `v` is no key fingerprint (SHA256: and 64 hex digits, colons allowed), undefined: it is one. */
  const fingerprintProblem = (v: string): string | undefined =>
    /^(sha256:)?([0-9a-f]{2}[:\s]?){31}[0-9a-f]{2}$/i.test(v.trim()) && v.trim().replace(/^sha256:/i, '').replace(/[:\s]/g, '').length === 64
      ? undefined
      : `--key must be the fingerprint of the audit signing key, SHA256: and 64 hex digits as "airlock audit key" (or the admin app's Audit page) shows it, not "${v.length > 80 ? v.slice(0, 80) + '…' : v}"`;
  const sameFingerprint = (a: string, b: string) => a.toLowerCase().replace(/^sha256:/, '').replace(/[^0-9a-f]/g, '') === b.toLowerCase().replace(/^sha256:/, '').replace(/[^0-9a-f]/g, '');

  /** Read a file line by line in bounded memory (64 KiB at a time). */
  function* lines(file: string): Generator<string> {
    const fd = fs.openSync(file, 'r');
    try {
      const buf = Buffer.alloc(65536);
      let rest = Buffer.alloc(0);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        let chunk = Buffer.concat([rest, buf.subarray(0, n)]);
        let nl: number;
        while ((nl = chunk.indexOf(10)) >= 0) {
          yield chunk.subarray(0, nl).toString('utf8');
          chunk = chunk.subarray(nl + 1);
        }
        rest = Buffer.from(chunk);
      }
      if (rest.length) yield rest.toString('utf8');
    } finally {
      fs.closeSync(fd);
    }
  }

  function fileSha256(file: string): { sha256: string; bytes: number } {
    const h = crypto.createHash('sha256');
    const fd = fs.openSync(file, 'r');
    let bytes = 0;
    try {
      const buf = Buffer.alloc(65536);
      for (;;) {
        const n = fs.readSync(fd, buf, 0, buf.length, null);
        if (n === 0) break;
        h.update(buf.subarray(0, n));
        bytes += n;
      }
    } finally {
      fs.closeSync(fd);
    }
    return { sha256: h.digest('hex'), bytes };
  }

  /**
   * Check a bundle: the manifest's signature with the bundle's public key (and that key against
   * an expected fingerprint when one is given), every listed file's SHA-256 and size, and every
   * record of events.jsonl (its hash, its link to the one before, consecutive sequence numbers,
   * the count, the first and last hash). Never throws for a damaged bundle: it reports.
   */
  /** The hash of the logged prompt a request summary names (undefined: none). */
  function promptLogHashOf(r: { kind?: unknown; data?: unknown }): string | undefined {
    const pl = r.kind === 'request' && r.data && typeof r.data === 'object' ? (r.data as { prompt_log?: { sha256?: unknown } }).prompt_log : undefined;
    return typeof pl?.sha256 === 'string' ? pl.sha256 : undefined;
  }

  /** A logged prompt row's hash, as its request summary records it (audit/prompt-log.ts). */
  function promptRowHash(v: { request_id?: unknown; mode?: unknown; meta?: unknown; prompt?: unknown; response?: unknown }): string {
    const enc = (x: unknown) => (x === null || x === undefined ? null : canonical(x));
    return sha256(canonical({ request_id: v.request_id, mode: v.mode, meta: v.meta, prompt: enc(v.prompt), response: enc(v.response) }));
  }

  function verifyBundle(dir: string, opts: { key?: string } = {}): BundleVerdict {
    const problems: string[] = [];
    const verdict = (fp: string | null, m?: BundleManifest): BundleVerdict => ({
      ok: problems.length === 0,
      problems,
      key_fingerprint: fp,
      count: m?.count ?? 0,
      first_seq: m?.first_seq ?? null,
      last_seq: m?.last_seq ?? null,
    });
    const read = (name: string): Buffer | undefined => {
      try {
        return fs.readFileSync(path.join(dir, name));
      } catch (e) {
        const code = (e as NodeJS.ErrnoException).code;
        problems.push(`${name}: ${code === 'ENOENT' ? 'missing from the bundle' : `cannot be read (${(e as Error).message})`}`);
        return undefined;
      }
    };
    const manifestBytes = read(MANIFEST);
    const sigText = read(SIGNATURE);
    const keyPem = read(PUBLIC_KEY);
    if (!manifestBytes || !sigText || !keyPem) return verdict(null);

    let fp: string | null = null;
    let key: Crypto.KeyObject | undefined;
    try {
      key = crypto.createPublicKey(keyPem);
      if (key.asymmetricKeyType !== 'ed25519') {
        problems.push(`${PUBLIC_KEY}: not an Ed25519 public key (${key.asymmetricKeyType ?? 'unknown'})`);
        key = undefined;
      } else fp = fingerprint(keyPem.toString('utf8'));
    } catch (e) {
      problems.push(`${PUBLIC_KEY}: not a readable public key (${(e as Error).message})`);
    }
    if (fp && opts.key && !sameFingerprint(fp, opts.key))
      problems.push(`${PUBLIC_KEY}: its fingerprint ${fp} is not the expected ${opts.key}: the bundle was signed with another key`);
    if (key) {
      let good = false;
      try {
        good = crypto.verify(null, manifestBytes, key, Buffer.from(sigText.toString('utf8').trim(), 'base64'));
      } catch {
        good = false;
      }
      if (!good) problems.push(`${SIGNATURE}: the signature does not match ${MANIFEST} with ${PUBLIC_KEY} (the manifest, the signature or the key was changed)`);
    }
    let m: BundleManifest;
    try {
      m = JSON.parse(manifestBytes.toString('utf8')) as BundleManifest;
    } catch (e) {
      problems.push(`${MANIFEST}: not valid JSON (${(e as Error).message})`);
      return verdict(fp);
    }
    if (m.format !== BUNDLE_FORMAT) problems.push(`${MANIFEST}: unknown format ${JSON.stringify(m.format)} (expected ${BUNDLE_FORMAT})`);
    if (fp && typeof m.key_fingerprint === 'string' && !sameFingerprint(fp, m.key_fingerprint))
      problems.push(`${PUBLIC_KEY}: its fingerprint ${fp} is not the one the manifest names (${m.key_fingerprint})`);
    const files = Array.isArray(m.files) ? m.files : [];
    if (!files.some((f) => f.name === EVENTS)) problems.push(`${MANIFEST}: lists no ${EVENTS}`);
    for (const f of files) {
      if (typeof f.name !== 'string' || f.name.includes('/') || f.name.includes('\\') || f.name.startsWith('.')) {
        problems.push(`${MANIFEST}: lists a file with a bad name ${JSON.stringify(f.name)}`);
        continue;
      }
      let got: { sha256: string; bytes: number };
      try {
        got = fileSha256(path.join(dir, f.name));
      } catch (e) {
        problems.push(`${f.name}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing from the bundle' : `cannot be read (${(e as Error).message})`}`);
        continue;
      }
      if (got.bytes !== f.bytes) problems.push(`${f.name}: ${got.bytes} bytes, the manifest says ${f.bytes} (the file was truncated, extended or edited)`);
      else if (got.sha256 !== f.sha256) problems.push(`${f.name}: its SHA-256 does not match the manifest (the file was edited)`);
    }

    // The records themselves: the first bad one is named precisely.
    const withPrompts = files.some((f) => f.name === PROMPTS);
    /** request id → the logged prompt's hash its summary names (only with prompts.jsonl) */
    const promptHashes = new Map<string, string>();
    let count = 0;
    let prev = m.prev_hash;
    let expectSeq = m.first_seq;
    let lastHash: string | null = null;
    let bad: string | undefined;
    let lineNo = 0;
    try {
      for (const line of lines(path.join(dir, EVENTS))) {
        lineNo++;
        if (bad) continue;
        if (line === '') {
          bad = `${EVENTS} line ${lineNo}: empty line`;
          continue;
        }
        let r: AuditRecord;
        try {
          r = JSON.parse(line) as AuditRecord;
        } catch {
          bad = `${EVENTS} line ${lineNo}: not valid JSON (the record was cut or edited)`;
          continue;
        }
        const at = `${EVENTS} line ${lineNo} (seq ${String(r.seq)})`;
        if (expectSeq !== null && r.seq !== expectSeq) {
          bad =
            typeof r.seq === 'number' && typeof expectSeq === 'number' && r.seq > expectSeq
              ? `${at}: expected seq ${expectSeq}: record${r.seq - 1 > expectSeq ? `s ${expectSeq}-${r.seq - 1} are` : ` ${expectSeq} is`} missing or out of order`
              : `${at}: expected seq ${String(expectSeq)}: the records are out of order or repeated`;
          continue;
        }
        let h: string;
        try {
          h = recordHash(r);
        } catch (e) {
          bad = `${at}: cannot be encoded (${(e as Error).message})`;
          continue;
        }
        if (h !== r.hash) {
          bad = `${at}: its hash does not match its contents (the record was edited)`;
          continue;
        }
        if (r.prev_hash !== prev) {
          bad = `${at}: it does not link to the record before it (prev_hash differs): a record before it was removed, replaced or reordered`;
          continue;
        }
        prev = r.hash;
        lastHash = r.hash;
        if (withPrompts) {
          const ph = promptLogHashOf(r);
          if (ph !== undefined) promptHashes.set(String(r.data.request_id), ph);
        }
        if (count === 0 && m.first_hash !== r.hash) bad = `${at}: the first record is not the one the manifest names`;
        count++;
        if (typeof expectSeq === 'number') expectSeq++;
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') problems.push(`${EVENTS}: cannot be read (${(e as Error).message})`);
      else if (!problems.some((p) => p.startsWith(EVENTS))) problems.push(`${EVENTS}: missing from the bundle`);
      return verdict(fp, m);
    }
    if (bad) problems.push(bad);
    else {
      if (count !== m.count) problems.push(`${EVENTS}: holds ${count} records, the manifest says ${m.count} (records were removed or the file was truncated)`);
      if (lastHash !== m.last_hash) problems.push(`${EVENTS}: the last record (hash ${String(lastHash)}) is not the one the manifest names (${String(m.last_hash)})`);
    }
    // The logged prompts (when exported): each row must be the one its request's summary hashed.
    if (withPrompts) {
      let n = 0;
      let badRow: string | undefined;
      try {
        for (const line of lines(path.join(dir, PROMPTS))) {
          n++;
          if (badRow) continue;
          let row: { request_id?: unknown; sha256?: unknown };
          try {
            row = JSON.parse(line) as typeof row;
          } catch {
            badRow = `${PROMPTS} line ${n}: not valid JSON (the row was cut or edited)`;
            continue;
          }
          const want = promptHashes.get(String(row.request_id));
          if (want === undefined) badRow = `${PROMPTS} line ${n} (request ${String(row.request_id)}): no request record in ${EVENTS} names this logged prompt`;
          else if (promptRowHash(row) !== want) badRow = `${PROMPTS} line ${n} (request ${String(row.request_id)}): it does not match the hash its request record names (the logged prompt or response was edited)`;
        }
      } catch (e) {
        problems.push(`${PROMPTS}: cannot be read (${(e as Error).message})`);
      }
      if (badRow) problems.push(badRow);
      else if (typeof m.prompt_rows === 'number' && n !== m.prompt_rows) problems.push(`${PROMPTS}: holds ${n} rows, the manifest says ${m.prompt_rows}`);
    }
    return verdict(fp, m);
  }

  return { BUNDLE_FORMAT, GENESIS, MANIFEST, SIGNATURE, PUBLIC_KEY, EVENTS, PROMPTS, promptLogHashOf, promptRowHash, canonical, sha256, recordHash, recordHashOf, fingerprint, fingerprintProblem, sameFingerprint, fileSha256, lines, verifyBundle };
}

/** The standalone verifier written into every bundle: this module's auditCore and a command line. */
export function verifierSource(): string {
  return `#!/usr/bin/env node
// Airlock audit bundle verifier. Needs only Node (18 or later) and no packages:
//   node verify.mjs [DIR] [--key SHA256:FINGERPRINT]
// Exit code 0 only when the signature, every file's SHA-256 and the whole hash chain hold.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

const auditCore = ${auditCore.toString()};

const args = process.argv.slice(2);
let dir = path.dirname(fileURLToPath(import.meta.url));
let key;
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--key') key = args[++i];
  else if (args[i].startsWith('--key=')) key = args[i].slice(6);
  else dir = args[i];
}
const core = auditCore({ crypto, fs, path });
const bad = key === undefined ? undefined : core.fingerprintProblem(key);
if (bad) {
  console.error(bad);
  process.exit(2);
}
const v = auditCore({ crypto, fs, path }).verifyBundle(dir, { key });
if (v.ok) {
  console.log(\`OK: \${v.count} records (seq \${v.first_seq ?? '-'} to \${v.last_seq ?? '-'}), signed by key \${v.key_fingerprint}\`);
  if (!key) console.log('Compare that fingerprint with the one Airlock shows (admin app: Audit; or "airlock audit key"), or run again with --key FINGERPRINT.');
  process.exit(0);
}
console.error(\`FAILED: \${v.problems.length} problem\${v.problems.length === 1 ? '' : 's'} in \${dir}\`);
for (const p of v.problems) console.error('  ' + p);
process.exit(1);
`;
}
