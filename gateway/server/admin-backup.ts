// POST /admin/api/v1/backup (owner): the encrypted backup bundle `airlock backup` writes, as a
// download. It is written to a scratch file in the data dir first (scrypt and SQLite's online
// backup run before the first byte), so the response has a Content-Length the app shows
// progress against; the scratch file goes as soon as the download ends or is abandoned.
//
// /admin/api/v1/restore (owner): this gateway holds its data dir and cannot replace its own
// database in place, so a restore from the app is staged: POST uploads the backup
// (application/octet-stream; an encrypted bundle's passphrase in the header
// x-airlock-backup-passphrase, base64 of its UTF-8), which is checked in full and staged in
// DATA_DIR/restore-staged/; the next start of the gateway applies it (store/backup.ts). GET says
// what is staged and what the last applied restore was; DELETE drops the staged one.
import { pipeline } from 'node:stream/promises';
import type { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { backupRequestSchema } from '../config/admin-schema.js';
import { cancelStagedRestore, lastRestore, stageRestore, stagedRestore, writeBackup } from '../store/backup.js';
import { StartupError } from '../store/db.js';
import type { Gateway } from './gateway.js';
import type { RouteDeps } from './route-deps.js';
import type { RestoreStatus } from '../wire.js';

export const PASSPHRASE_HEADER = 'x-airlock-backup-passphrase';

export function registerBackupRoutes(app: FastifyInstance, gw: Gateway, { API: api, parseBody, error: fail, principalOf }: RouteDeps): void {
  app.post(`${api}/backup`, { config: { access: 'owner' } }, async (req, reply) => {
    const { passphrase } = parseBody(backupRequestSchema, req.body);
    const file = path.join(gw.opts.dataDir, `.download-${randomBytes(6).toString('hex')}.backup`);
    try {
      await writeBackup({ db: gw.db, dataDir: gw.opts.dataDir, to: file, passphrase });
    } catch (e) {
      fs.rmSync(file, { force: true });
      if (e instanceof StartupError) throw fail(500, 'backup_failed', `The backup could not be written: ${e.message.split(file).join('the scratch file')}`);
      throw e;
    }
    const size = fs.statSync(file).size;
    const stream = fs.createReadStream(file);
    stream.on('close', () => fs.rmSync(file, { force: true }));
    const stamp = new Date().toISOString().slice(0, 19).replace(/[:T]/g, '-');
    gw.log(`backup downloaded (${size} bytes)`);
    return reply
      .header('content-type', 'application/octet-stream')
      .header('content-length', String(size))
      .header('content-disposition', `attachment; filename="airlock-${stamp}.backup"`)
      .header('cache-control', 'no-store')
      .send(stream);
  });

  const status = (): RestoreStatus => ({ staged: stagedRestore(gw.opts.dataDir) ?? null, last_applied: lastRestore(gw.opts.dataDir) ?? null });
  app.get(`${api}/restore`, { config: { access: 'owner' } }, async () => status());
  app.delete(`${api}/restore`, { config: { access: 'owner', audit: 'cancel staged restore' } }, async () => {
    if (staging) throw fail(409, 'restore_in_progress', 'A backup is being checked for a restore right now; try again when it is done.');
    if (!cancelStagedRestore(gw.opts.dataDir)) throw fail(404, 'no_staged_restore', 'No restore is staged.');
    gw.log('staged restore cancelled');
    return status();
  });

  let staging = false;
  // The upload is read as a stream only on this route (everywhere else the admin plane reads JSON).
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/octet-stream', (_req, payload, done) => done(null, payload));
    scope.post(`${api}/restore`, { config: { access: 'owner', audit: 'stage restore from backup' } }, async (req) => {
      const body = req.body as Readable | undefined;
      if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function')
        throw fail(415, 'unsupported_media_type', 'Send the backup file itself as the request body, with content-type: application/octet-stream.');
      const raw = req.headers[PASSPHRASE_HEADER];
      let passphrase: string | undefined;
      if (typeof raw === 'string' && raw !== '') {
        if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(raw)) throw fail(400, 'invalid_passphrase_header', `The ${PASSPHRASE_HEADER} header must be the passphrase's UTF-8 bytes in base64.`);
        passphrase = Buffer.from(raw, 'base64').toString('utf8');
      }
      if (staging) {
        body.resume();
        throw fail(409, 'restore_in_progress', 'Another backup is being checked for a restore right now; try again when it is done.');
      }
      staging = true;
      const file = path.join(gw.opts.dataDir, `.upload-${randomBytes(6).toString('hex')}.backup`);
      try {
        try {
          await pipeline(body, fs.createWriteStream(file, { flags: 'wx', mode: 0o600 }));
        } catch (e) {
          throw fail(400, 'upload_failed', `The backup did not arrive whole (${(e as Error).message}); nothing was restored.`);
        }
        if (fs.statSync(file).size === 0) throw fail(400, 'empty_backup', 'The request body is empty: send the backup file; nothing was restored.');
        const by = principalOf(req)?.name ?? 'unknown';
        try {
          const staged = await stageRestore({ file, label: 'the uploaded file', dataDir: gw.opts.dataDir, passphrase, by, warn: (line) => gw.log(line) });
          gw.log(`restore staged by ${by} (${staged.bytes} bytes); it is applied at the next start`);
          return status();
        } catch (e) {
          if (e instanceof StartupError) {
            const wrong = /wrong passphrase|passphrase is needed/.test(e.message);
            throw fail(wrong ? 422 : 400, wrong ? 'wrong_passphrase' : 'invalid_backup', e.message.replace(/^backup the uploaded file/, 'The uploaded file'));
          }
          throw e;
        }
      } finally {
        fs.rmSync(file, { force: true });
        staging = false;
      }
    });
  });
}
