// POST /admin/api/v1/backup (owner): the encrypted backup bundle `airlock backup` writes, as a
// download. It is written to a scratch file in the data dir first (scrypt and SQLite's online
// backup run before the first byte), so the response has a Content-Length the app shows
// progress against; the scratch file goes as soon as the download ends or is abandoned.
import type { FastifyInstance } from 'fastify';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { backupRequestSchema } from '../config/admin-schema.js';
import { writeBackup } from '../store/backup.js';
import { StartupError } from '../store/db.js';
import type { Gateway } from './gateway.js';

export function registerBackupRoutes(
  app: FastifyInstance,
  gw: Gateway,
  api: string,
  parseBody: <T>(schema: z.ZodType<T>, body: unknown) => T,
  fail: (status: number, code: string, message: string) => Error,
): void {
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
}
