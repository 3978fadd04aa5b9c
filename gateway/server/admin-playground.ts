// POST /admin/api/v1/playground/chat (admin): the admin app's playground sends a chat request
// through this gateway's own data plane, as an app would, and streams the answer back. The key is
// one the admin pastes (the app keeps it in memory only; it is never stored or audited), or, when
// none is given, a temporary key minted for this one request (engine/temporary-keys.ts: in memory,
// scoped to the chosen model, named "playground:ADMIN", revoked as soon as the data plane has
// answered or failed, and never sent to the browser); the
// request runs the whole pipeline (auth, budgets, limits, guardrails, routing, fallback) and lands
// in the usage ledger tagged source=playground, where the app reads its attempts, endpoint,
// tokens, cost and latency by the id in x-airlock-request-id. The browser cannot call the data
// plane itself: the admin app's CSP allows connections to its own origin only.
import type { FastifyInstance } from 'fastify';
import { Agent, request } from '../engine/undici.js';
import { z } from 'zod';
import { KEY_RE } from '../config/schema.js';
import type { Gateway } from './gateway.js';
import type { RouteDeps } from './route-deps.js';

/** A temporary key lives until the data plane has answered (or at most this long). */
const TEMPORARY_KEY_TTL_MS = 60_000;

export const playgroundRequestSchema = z.strictObject({
  key: z.string().regex(KEY_RE, 'must be a key of this gateway (sk-airlock-…)').optional().describe('The key the request is made with (omitted: a temporary key in the admin\'s name)'),
  model: z.string().min(1, 'choose a model').max(128),
  messages: z
    .array(z.strictObject({ role: z.enum(['system', 'user', 'assistant']), content: z.string().max(100_000) }))
    .min(1, 'needs at least one message')
    .max(100),
  max_tokens: z.int().min(1).max(100_000).optional(),
});

/** The data plane's address as seen from this machine (a wildcard bind is reached on loopback). */
function loopbackOf(listening: string): string {
  const u = new URL(listening);
  if (u.hostname === '0.0.0.0') u.hostname = '127.0.0.1';
  if (u.hostname === '[::]') u.hostname = '[::1]';
  return u.origin;
}

// The data plane may serve HTTPS with a certificate for its public name: the playground connects
// to this same process over loopback, so the name is not checked (there is no third party between).
let loopbackTls: Agent | undefined;

export function registerPlaygroundRoutes(app: FastifyInstance, gw: Gateway, { API: api, parseBody, error: fail, principalOf }: RouteDeps): void {
  app.post(`${api}/playground/chat`, { config: { access: 'admin', audit: 'playground chat request' } }, async (req, reply) => {
    const body = parseBody(playgroundRequestSchema, req.body);
    const listening = gw.listening?.data;
    if (!listening) throw fail(503, 'not_ready', 'The data plane is not listening yet.');
    const base = loopbackOf(listening);
    const ac = new AbortController();
    // the admin closed the page or pressed Stop: the request upstream stops too
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    const temporary = body.key ? undefined : gw.temporaryKeys.mint(gw.secrets, principalOf(req)?.name ?? 'admin', [body.model], TEMPORARY_KEY_TTL_MS);
    let res;
    try {
      res = await request(`${base}/v1/chat/completions`, {
        method: 'POST',
        signal: ac.signal,
        dispatcher: base.startsWith('https:') ? (loopbackTls ??= new Agent({ connect: { rejectUnauthorized: false } })) : undefined,
        headers: { authorization: `Bearer ${body.key ?? temporary!.secret}`, 'content-type': 'application/json', 'x-airlock-tags': 'source=playground' },
        body: JSON.stringify({ model: body.model, messages: body.messages, stream: true, stream_options: { include_usage: true }, ...(body.max_tokens ? { max_tokens: body.max_tokens } : {}) }),
      });
    } catch (e) {
      temporary?.revoke();
      throw fail(502, 'playground_failed', `The playground could not reach this gateway's data plane at ${base}: ${(e as Error).message}`);
    }
    // the data plane authenticated the request before it answered: the temporary key is done
    temporary?.revoke();
    if (res.statusCode >= 400) {
      // the data plane's refusal, in the admin plane's error shape; a refused key is a 400 here
      // (a 401 or 403 of the admin plane means the admin's own session or role)
      const text = await res.body.text().catch(() => '');
      let e: { code?: string; message?: string } | undefined;
      try {
        e = (JSON.parse(text) as { error?: { code?: string; message?: string } }).error;
      } catch {
        e = undefined;
      }
      const status = res.statusCode === 401 || res.statusCode === 403 ? 400 : res.statusCode;
      if (typeof res.headers['retry-after'] === 'string') reply.header('retry-after', res.headers['retry-after']);
      throw fail(status, e?.code ?? `upstream_${res.statusCode}`, e?.message ?? `The data plane answered ${res.statusCode}.`);
    }
    const id = res.headers['x-airlock-request-id'];
    reply.code(res.statusCode);
    reply.header('content-type', String(res.headers['content-type'] ?? 'application/octet-stream'));
    reply.header('cache-control', 'no-store');
    if (typeof id === 'string') reply.header('x-airlock-request-id', id);
    for (const h of ['retry-after', 'x-airlock-downgraded-from']) if (typeof res.headers[h] === 'string') reply.header(h, res.headers[h]);
    return reply.send(res.body);
  });
}
