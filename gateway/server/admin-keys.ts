// Admin routes of issues 8 and 15 that are not plain config CRUD. POST /admin/api/v1/keys/:name/rotate (admin): a new secret for a key, shown once in the answer;
// the old secret stays valid for grace_seconds (default 0: it stops at once). The key keeps its
// name, team, budgets and usage. See store/key-rotation.ts.
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { MAX_GRACE_SECONDS, NoSuchKeyError, SecretFromFileError, rotateKey } from '../store/key-rotation.js';
import type { BudgetBurndown, RotatedKeyView } from '../wire.js';
import { NoBudgetError, burndown } from '../governance/burndown.js';
import type { Gateway } from './gateway.js';
import type { RouteDeps } from './route-deps.js';

export const rotateRequestSchema = z.strictObject({
  grace_seconds: z
    .int('must be a whole number of seconds')
    .min(0, 'must be 0 or more')
    .max(MAX_GRACE_SECONDS, `must be at most ${MAX_GRACE_SECONDS} (30 days)`)
    .optional()
    .describe('How long the old secret keeps working (seconds; default 0: it stops at once)'),
});

export function registerKeyRoutes(app: FastifyInstance, gw: Gateway, { API: api, parseBody, error: fail }: RouteDeps): void {
  app.post<{ Params: { name: string } }>(`${api}/keys/:name/rotate`, { config: { access: 'admin', audit: 'rotate app key' } }, async (req): Promise<RotatedKeyView> => {
    const { grace_seconds = 0 } = parseBody(rotateRequestSchema, req.body ?? {});
    let r;
    try {
      r = rotateKey(gw.db, gw.secrets, req.params.name, grace_seconds);
    } catch (e) {
      if (e instanceof NoSuchKeyError) throw fail(404, 'not_found', `No key named "${req.params.name}".`);
      if (e instanceof SecretFromFileError) throw fail(409, 'secret_from_file', `Not rotated: ${e.message}.`);
      throw e;
    }
    gw.reload();
    return { name: r.name, key: r.key, prefix: r.prefix, previous_valid_until: r.previous_valid_until === null ? null : new Date(r.previous_valid_until).toISOString() };
  });
}

/** GET /admin/api/v1/budgets/burndown?scope=team|key&name=X[&buckets=N] (auditor). */
export function registerBurndownRoute(app: FastifyInstance, gw: Gateway, { API: api, error: fail }: RouteDeps): void {
  const invalid = (field: string, message: string) => fail(400, 'validation_failed', `${field}: ${message}`, [{ path: [field], message }]);
  app.get<{ Querystring: { scope?: string; name?: string; buckets?: string } }>(`${api}/budgets/burndown`, { config: { access: 'auditor' } }, async (req): Promise<BudgetBurndown> => {
    const { scope, name, buckets = '30' } = req.query;
    if (scope !== 'team' && scope !== 'key') throw invalid('scope', 'must be team or key');
    if (!name) throw invalid('name', `the ${scope}'s name is required`);
    if (!/^\d+$/.test(buckets) || Number(buckets) < 2 || Number(buckets) > 200) throw invalid('buckets', 'must be an integer from 2 to 200');
    await gw.ledger.flushed();
    try {
      return burndown(gw.db, gw.snapshot, scope, name, Number(buckets));
    } catch (e) {
      if (e instanceof NoBudgetError) throw fail(404, 'not_found', `The ${scope} "${name}" has no budget${scope === 'team' ? (gw.snapshot.teams.has(name) ? '' : ' (there is no such team)') : ''}.`);
      throw e;
    }
  });
}
