// POST /audit/verify-upload: an exported bundle uploaded from the browser (the auditor's USB stick
// is in the auditor's machine, not the gateway's), streamed into a private temporary folder under
// the data dir, checked by the same worker as POST /audit/verify-bundle, and removed again.
//
// The body (content type application/x-airlock-bundle) is the bundle's files one after the other,
// each preceded by one header line: {"name":"events.jsonl","size":1234}\n then exactly `size`
// bytes. A bundle is flat (manifest.json, events.jsonl, ..., verify.mjs), so a name is one plain
// file name. The whole upload is capped (AIRLOCK_MAX_BUNDLE_UPLOAD_BYTES, default 2 GiB): past
// it, or on a malformed header, the upload stops with a 4xx naming the problem and the folder is
// removed. `?key=FINGERPRINT` pins the expected signing key (default: this gateway's). Auth runs before any byte of the body is read (onRequest hooks).
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { verifyBundleInWorker } from '../audit/verify-worker.js';
import { auditKeyFingerprintSchema } from '../config/admin-schema.js';
import type { AuditBundleVerdict } from '../wire.js';
import type { RouteDeps } from './route-deps.js';
import type { Gateway } from './gateway.js';

export const BUNDLE_CONTENT_TYPE = 'application/x-airlock-bundle';
const MAX_FILES = 64;
const MAX_HEADER_BYTES = 1024;
const NAME_RE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$/;

export function maxUploadBytes(): number {
  const v = Number(process.env.AIRLOCK_MAX_BUNDLE_UPLOAD_BYTES);
  return Number.isSafeInteger(v) && v > 0 ? v : 2 * 1024 ** 3;
}

export class UploadError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Write the framed files of `body` into `dir` (which exists and is empty); returns their names. */
export async function receiveBundle(body: AsyncIterable<Buffer>, dir: string, max: number): Promise<string[]> {
  const names: string[] = [];
  let total = 0;
  let declared = 0;
  let buf: Buffer = Buffer.alloc(0);
  let cur: { fh: fs.promises.FileHandle; name: string; left: number } | undefined;
  try {
    for await (const chunk of body) {
      total += chunk.length;
      if (total > max) throw new UploadError(413, `The upload is larger than the limit of ${max} bytes (AIRLOCK_MAX_BUNDLE_UPLOAD_BYTES).`);
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      while (buf.length) {
        if (cur) {
          const n = Math.min(cur.left, buf.length);
          await cur.fh.write(buf.subarray(0, n));
          cur.left -= n;
          buf = buf.subarray(n);
          if (cur.left === 0) {
            await cur.fh.close();
            cur = undefined;
          }
          continue;
        }
        const nl = buf.indexOf(10);
        if (nl < 0) {
          if (buf.length > MAX_HEADER_BYTES) throw new UploadError(400, `File ${names.length + 1}: its header line is longer than ${MAX_HEADER_BYTES} bytes.`);
          break;
        }
        const h = parseHeader(buf.subarray(0, nl).toString('utf8'), names);
        buf = buf.subarray(nl + 1);
        declared += h.size;
        if (declared > max) throw new UploadError(413, `The bundle's files add up to more than the limit of ${max} bytes (AIRLOCK_MAX_BUNDLE_UPLOAD_BYTES).`);
        names.push(h.name);
        const fh = await fs.promises.open(path.join(dir, h.name), 'wx', 0o600);
        if (h.size === 0) await fh.close();
        else cur = { fh, name: h.name, left: h.size };
      }
    }
    if (cur) throw new UploadError(400, `The upload ended inside ${cur.name} (${cur.left} bytes missing).`);
    if (buf.length) throw new UploadError(400, 'The upload ends with an incomplete header line.');
    if (!names.length) throw new UploadError(400, 'The upload holds no files: choose the bundle folder (manifest.json, events.jsonl, ...).');
    return names;
  } finally {
    await cur?.fh.close().catch(() => undefined);
  }
}

function parseHeader(line: string, seen: string[]): { name: string; size: number } {
  const at = `File ${seen.length + 1}`;
  let h: { name?: unknown; size?: unknown };
  try {
    h = JSON.parse(line) as typeof h;
  } catch {
    throw new UploadError(400, `${at}: the header line is not JSON ({"name":"…","size":N}).`);
  }
  if (!h || typeof h !== 'object') throw new UploadError(400, `${at}: the header line must be an object ({"name":"…","size":N}).`);
  if (typeof h.name !== 'string' || !NAME_RE.test(h.name)) throw new UploadError(400, `${at}: "name" must be a plain file name (letters, digits, ".", "_", "-"; no folders).`);
  if (typeof h.size !== 'number' || !Number.isSafeInteger(h.size) || h.size < 0) throw new UploadError(400, `${at} (${h.name}): "size" must be a whole number of bytes.`);
  if (seen.includes(h.name)) throw new UploadError(400, `${at}: ${h.name} is in the upload twice.`);
  if (seen.length >= MAX_FILES) throw new UploadError(400, `The upload holds more than ${MAX_FILES} files; a bundle has fewer.`);
  return { name: h.name, size: h.size };
}

export function registerBundleUploadRoute(app: FastifyInstance, gw: Gateway, { API, error, actorOf }: RouteDeps): void {
  // the body stays a stream: it is written to disk as it arrives, never held whole (handed over
  // inside a function, which the admin plane's JSON checks do not walk)
  app.addContentTypeParser(BUNDLE_CONTENT_TYPE, (_req, payload, done) => done(null, () => payload));

  app.post<{ Querystring: { key?: string } }>(`${API}/audit/verify-upload`, { config: { access: 'auditor' } }, async (req, reply): Promise<AuditBundleVerdict> => {
    const stream = req.body;
    if (typeof stream !== 'function')
      throw error(415, 'unsupported_media_type', `Send the bundle's files as ${BUNDLE_CONTENT_TYPE} (each file: a header line {"name":"…","size":N} and its bytes).`);
    const key = typeof req.query.key === 'string' ? req.query.key.trim() : '';
    const body = (stream as () => Readable)();
    // the same rule as verify-bundle's key: a value that is no fingerprint is refused before the
    // body is read, not answered "signed with another key"
    const k = key ? auditKeyFingerprintSchema.safeParse(key) : undefined;
    if (k && !k.success) {
      // (the body is not read: the connection is not reused)
      reply.header('connection', 'close');
      body.resume();
      const message = key.length > 200 ? 'is too long' : (k.error.issues[0]?.message ?? 'must be a key fingerprint');
      throw error(400, 'validation_failed', `key: ${message}`, [{ path: ['key'], message }]);
    }
    const expected = key || gw.audit.key.fingerprint;
    const root = path.join(gw.opts.dataDir, 'tmp');
    fs.mkdirSync(root, { recursive: true, mode: 0o700 });
    const dir = path.join(root, `verify-${randomUUID()}`);
    fs.mkdirSync(dir, { mode: 0o700 });
    let names: string[];
    try {
      try {
        names = await receiveBundle(body, dir, maxUploadBytes());
      } catch (e) {
        // the rest of the body is not read: the connection is not reused
        reply.header('connection', 'close');
        body.resume();
        if (e instanceof UploadError) throw error(e.status, e.status === 413 ? 'payload_too_large' : 'validation_failed', e.message);
        throw e;
      }
      const v = await verifyBundleInWorker(dir, expected);
      try {
        gw.audit.append({
          kind: 'audit.verify',
          actor: actorOf(req),
          source: req.socket.remoteAddress ?? 'unknown',
          data: { action: 'verify uploaded audit bundle', files: names, ok: v.ok, count: v.count, first_seq: v.first_seq, last_seq: v.last_seq, key_fingerprint: v.key_fingerprint, expected_key: expected, problems: v.problems.slice(0, 5) },
        });
      } catch (e) {
        gw.log(`audit: could not record the verification of an uploaded bundle: ${(e as Error).message}`);
      }
      return { dir: '(uploaded)', ...v, expected_key: expected };
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
}
