// POST /admin/api/v1/keys/:name/rotate (admin): a new secret for a key, shown once in the answer;
// the old secret stays valid for grace_seconds (default 0: it stops at once). The key keeps its
// name, team, budgets and usage. See store/key-rotation.ts.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MAX_GRACE_SECONDS, NoSuchKeyError, rotateKey } from '../store/key-rotation.js';
import type { RotatedKeyView } from '../wire.js';
import type { Gateway } from './gateway.js';

export const rotateRequestSchema = z.strictObject({
  grace_seconds: z
    .int('must be a whole number of seconds')
    .min(0, 'must be 0 or more')
    .max(MAX_GRACE_SECONDS, `must be at most ${MAX_GRACE_SECONDS} (30 days)`)
    .optional()
    .describe('How long the old secret keeps working (seconds; default 0: it stops at once)'),
});

export function registerKeyRoutes(
  app: FastifyInstance,
  gw: Gateway,
  api: string,
  parseBody: <T>(schema: z.ZodType<T>, body: unknown) => T,
  fail: (status: number, code: string, message: string) => Error,
): void {
  app.post<{ Params: { name: string } }>(`${api}/keys/:name/rotate`, { config: { access: 'admin', audit: 'rotate app key' } }, async (req): Promise<RotatedKeyView> => {
    const { grace_seconds = 0 } = parseBody(rotateRequestSchema, req.body ?? {});
    let r;
    try {
      r = rotateKey(gw.db, gw.secrets, req.params.name, grace_seconds);
    } catch (e) {
      if (e instanceof NoSuchKeyError) throw fail(404, 'not_found', `No key named "${req.params.name}".`);
      throw e;
    }
    gw.reload();
    return { name: r.name, key: r.key, prefix: r.prefix, previous_valid_until: r.previous_valid_until === null ? null : new Date(r.previous_valid_until).toISOString() };
  });
}
