// The admin plane's audit: one set of hooks records every change, login, logout and refused
// request (who, from where, what, the outcome, and the state before → after with secrets
// redacted), so no handler records anything itself; and the /audit routes (records, key, live
// verification, export to a folder such as a USB stick).
import fs from 'node:fs';
import path from 'node:path';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { randomUUID } from 'node:crypto';
import { auditExportSchema, auditVerifyBundleSchema } from '../config/admin-schema.js';
import { formatPath, fromZod } from '../config/schema.js';
import { core } from '../audit/log.js';
import { redact } from '../audit/index.js';
import { ExportError, ExportIntegrityError, exportBundle } from '../audit/export.js';
import { verifyBundleInWorker } from '../audit/verify-worker.js';
import type { AuditBundleVerdict, AuditExportProgress, AuditExportResult, AuditKeyView, AuditRecordView, AuditVerifyBody, ListBody } from '../wire.js';
import { userView, type Principal } from './admin-auth.js';
import type { Gateway } from './gateway.js';
import type { RouteDeps } from './route-deps.js';
import { registerPromptLogRoutes } from './admin-prompt-log.js';
import { registerBundleUploadRoute } from './admin-audit-upload.js';
import { promptRowsFor } from '../audit/prompt-log.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** what the route does, for the audit record (default: from its method and path) */
    audit?: string;
  }
}

/** What each change route does, in words (a route not listed is described by method and path). */
const DESCRIPTIONS: Record<string, string> = {
  'POST /endpoints': 'create endpoint',
  'PUT /endpoints/:name': 'update endpoint',
  'DELETE /endpoints/:name': 'delete endpoint',
  'POST /endpoints/:name/test': 'test endpoint connection',
  'POST /endpoints/test': 'test unsaved endpoint connection',
  'POST /models': 'create model',
  'PUT /models/:name': 'update model',
  'DELETE /models/:name': 'delete model',
  'POST /teams': 'create team',
  'PUT /teams/:name': 'update team',
  'DELETE /teams/:name': 'delete team',
  'POST /keys': 'create app key',
  'PUT /keys/:name': 'update app key',
  'DELETE /keys/:name': 'delete app key',
  'PUT /routing-rules': 'replace routing rules',
  'PUT /settings': 'update settings',
  'POST /config/apply': 'apply configuration',
  'POST /auth/setup': 'first-run setup',
  'POST /auth/login': 'log in',
  'POST /auth/logout': 'log out',
  'POST /auth/password': 'change own password',
  'POST /users': 'create admin user',
  'PUT /users/:name': 'update admin user',
  'DELETE /users/:name': 'delete admin user',
  'POST /tokens': 'create admin API token',
  'DELETE /tokens/:name': 'revoke admin API token',
  'POST /audit/export': 'export audit log',
  'POST /audit/verify-bundle': 'verify audit bundle',
  'POST /audit/verify-upload': 'verify uploaded audit bundle',
};

const CHANGE = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);
/** Fields that change by themselves (use, not administration): left out of before → after. */
const VOLATILE = new Set(['last_used_at', 'last_seen_at', 'status', 'targets_status']);

type State = Record<string, unknown>;
interface Pending {
  before?: Map<string, string>;
  beforeValues?: Map<string, unknown>;
  errorCode?: string;
  errorMessage?: string;
}
const pendingOf = new WeakMap<FastifyRequest, Pending>();

export const actorOf = (p: Principal | undefined): string =>
  !p ? 'anonymous' : p.kind === 'session' ? `user:${p.name}` : p.kind === 'token' ? `token:${p.name}` : 'env:AIRLOCK_ADMIN_TOKEN';

/** The administered state, flattened to "section/name" (named items) and "section.field" (settings). */
function flatten(gw: Gateway): Map<string, unknown> {
  const state: State = { ...(redact(gw.store.export()) as State), users: gw.auth.users().map(userView), tokens: gw.auth.tokens() };
  const out = new Map<string, unknown>();
  const clean = (v: unknown): unknown => {
    if (!v || typeof v !== 'object' || Array.isArray(v)) return v;
    return Object.fromEntries(Object.entries(v as Record<string, unknown>).filter(([k]) => !VOLATILE.has(k)));
  };
  for (const [sec, v] of Object.entries(state)) {
    if (Array.isArray(v) && v.every((x) => x && typeof x === 'object' && typeof (x as { name?: unknown }).name === 'string'))
      v.forEach((x: { name: string }) => out.set(`${sec}/${x.name}`, clean(x)));
    else if (v && typeof v === 'object' && !Array.isArray(v)) for (const [k, x] of Object.entries(v as Record<string, unknown>)) out.set(`${sec}.${k}`, x);
    else out.set(sec, v);
  }
  return out;
}

const encodeAll = (m: Map<string, unknown>) => new Map([...m].map(([k, v]) => [k, core.canonical(v ?? null)]));

/** before → after of every item that changed. */
function changes(beforeEnc: Map<string, string>, beforeVal: Map<string, unknown>, after: Map<string, unknown>): Record<string, { before: unknown; after: unknown }> {
  const out: Record<string, { before: unknown; after: unknown }> = {};
  const afterEnc = encodeAll(after);
  for (const k of new Set([...beforeEnc.keys(), ...afterEnc.keys()])) {
    if (beforeEnc.get(k) !== afterEnc.get(k)) out[k] = { before: beforeVal.get(k) ?? null, after: after.get(k) ?? null };
  }
  return out;
}

export function auditAdminPlane(app: FastifyInstance, gw: Gateway, deps: RouteDeps): void {
  const { API, principalOf, error } = deps;
  const routeKey = (req: FastifyRequest) => `${req.method} ${(req.routeOptions.url ?? '').slice(API.length)}`;
  const recorded = (req: FastifyRequest) => !req.is404 && (req.routeOptions.url ?? '').startsWith(API) && CHANGE.has(req.method);

  // Before the handler: refuse a change the audit log cannot record (fail-closed), and keep the state before it.
  app.addHook('preHandler', async (req) => {
    if (!recorded(req)) return;
    const access = req.routeOptions.config?.access;
    if (access !== 'public' && gw.snapshot.settings.audit.fail_closed !== 'off') {
      try {
        gw.audit.probe();
      } catch (e) {
        throw error(503, 'audit_unavailable', `The audit log cannot be written (${(e as Error).message}), and this gateway is set to refuse changes it cannot record (settings.audit.fail_closed); nothing was changed.`);
      }
    }
    if (access === 'public') return;
    const before = flatten(gw);
    pendingOf.set(req, { before: encodeAll(before), beforeValues: before });
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (reply.statusCode >= 400 && (recorded(req) || reply.statusCode === 401 || reply.statusCode === 403) && typeof payload === 'string') {
      try {
        const e = (JSON.parse(payload) as { error?: { code?: string; message?: string } }).error;
        const p = pendingOf.get(req) ?? {};
        p.errorCode = e?.code;
        p.errorMessage = e?.message?.slice(0, 500);
        pendingOf.set(req, p);
      } catch {
        /* not JSON */
      }
    }
    return payload;
  });

  app.addHook('onResponse', async (req, reply) => {
    const status = reply.statusCode;
    const denied = (status === 401 || status === 403) && !req.is404 && (req.routeOptions.url ?? '').startsWith(API);
    if (!recorded(req) && !denied) return;
    const p = pendingOf.get(req) ?? {};
    const key = routeKey(req);
    const principal = principalOf(req);
    const body = req.body as Record<string, unknown> | undefined;
    const loginName = typeof body?.username === 'string' ? body.username.slice(0, 64) : undefined;
    const isAuth = key.startsWith('POST /auth/');
    const data: Record<string, unknown> = {
      action: req.routeOptions.config?.audit ?? DESCRIPTIONS[key] ?? key,
      method: req.method,
      route: req.routeOptions.url,
      params: Object.keys((req.params as object) ?? {}).length ? req.params : undefined,
      role: principal?.role,
      status,
      outcome: status < 400 ? 'ok' : 'failed',
      error_code: p.errorCode,
      error: p.errorMessage,
    };
    if (p.before && p.beforeValues && status < 400) {
      const c = changes(p.before, p.beforeValues, flatten(gw));
      if (Object.keys(c).length) data.changes = c;
    }
    const kind = isAuth ? `auth.${key.slice('POST /auth/'.length)}` : status === 401 || status === 403 ? 'admin.denied' : 'admin.change';
    const actor = principal ? actorOf(principal) : loginName !== undefined ? `user:${loginName}` : 'anonymous';
    try {
      gw.audit.append({ kind, actor, source: req.socket.remoteAddress ?? 'unknown', data });
    } catch (e) {
      gw.log(`audit: could not record ${kind} ${key} by ${actor}: ${(e as Error).message}`);
    }
  });

  registerPromptLogRoutes(app, gw, deps);
  registerBundleUploadRoute(app, gw, deps);

  // ---- the audit API ----
  const bad = (path: string, message: string) => error(400, 'validation_failed', `${path}: ${message}`, [{ path: [path], message }]);
  const time = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined || v === '') return undefined;
    const n = /^\d+$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(n)) throw bad(name, 'must be an ISO 8601 date-time or milliseconds since the epoch');
    return n;
  };

  app.get<{ Querystring: { kind?: string; actor?: string; from?: string; until?: string; before_seq?: string; limit?: string } }>(
    `${API}/audit/events`,
    { config: { access: 'auditor' } },
    async (req): Promise<ListBody<AuditRecordView>> => {
      gw.audit.flush();
      const q = req.query;
      const limit = q.limit === undefined || q.limit === '' ? 100 : /^\d+$/.test(q.limit) ? Number(q.limit) : NaN;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) throw bad('limit', 'must be an integer from 1 to 1000');
      const before = q.before_seq === undefined || q.before_seq === '' ? undefined : /^\d+$/.test(q.before_seq) ? Number(q.before_seq) : NaN;
      if (before !== undefined && !Number.isSafeInteger(before)) throw bad('before_seq', 'must be a sequence number');
      if (q.kind !== undefined && q.kind.length > 100) throw bad('kind', 'is too long');
      if (q.actor !== undefined && q.actor.length > 200) throw bad('actor', 'is too long');
      const from = time(q.from, 'from');
      const until = time(q.until, 'until');
      return { data: gw.audit.list({ kind: q.kind?.trim() || undefined, actor: q.actor?.trim() || undefined, from, until, before_seq: before, limit }) };
    },
  );

  app.get(`${API}/audit/key`, { config: { access: 'auditor' } }, async (): Promise<AuditKeyView> => {
    const c = gw.audit.lastCheckpoint();
    return { algorithm: 'Ed25519', fingerprint: gw.audit.key.fingerprint, public_key_pem: gw.audit.key.publicKeyPem, last_checkpoint: c ? { seq: c.seq, hash: c.hash, ts: c.ts } : null };
  });

  app.get(`${API}/audit/verify`, { config: { access: 'auditor' } }, async (): Promise<AuditVerifyBody> => ({ ...gw.audit.verifyLive(), key_fingerprint: gw.audit.key.fingerprint }));

  const parse = <T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false; error: import('zod').ZodError } }, body: unknown): T => {
    if (body === null || typeof body !== 'object' || Array.isArray(body)) throw error(400, 'invalid_body', 'This request needs a JSON object as its body (content-type: application/json).');
    const r = schema.safeParse(body);
    if (!r.success) {
      const issues = fromZod(r.error);
      throw error(400, 'validation_failed', issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; '), issues);
    }
    return r.data;
  };

  /** exports running now (GET /audit/export/progress) */
  const running = new Map<string, AuditExportProgress>();
  app.get(`${API}/audit/export/progress`, { config: { access: 'auditor' } }, async (): Promise<ListBody<AuditExportProgress>> => ({ data: [...running.values()] }));

  app.post(`${API}/audit/export`, { config: { access: 'auditor' } }, async (req): Promise<AuditExportResult> => {
    const b = parse(auditExportSchema, req.body);
    const id = randomUUID();
    const job: AuditExportProgress = { id, actor: actorOf(principalOf(req)), to: b.to, started_at: new Date().toISOString(), done: 0, total: 0 };
    running.set(id, job);
    try {
      return await exportBundle(gw.audit, {
        to: b.to,
        from: b.from === undefined ? undefined : Date.parse(b.from),
        until: b.until === undefined ? undefined : Date.parse(b.until),
        formats: b.formats,
        ...(b.prompts ? { prompts: promptRowsFor(gw.db, gw.secrets) } : {}),
        actor: job.actor,
        source: req.socket.remoteAddress ?? 'unknown',
        progress: (done, total) => {
          job.done = done;
          job.total = total;
        },
      });
    } catch (e) {
      if (e instanceof ExportError) throw error(400, 'export_failed', `to: ${e.message}`, [{ path: ['to'], message: e.message }]);
      if (e instanceof ExportIntegrityError) throw error(409, 'export_integrity', e.message);
      throw e;
    } finally {
      running.delete(id);
    }
  });

  // An exported bundle checked here (e.g. one brought back on a USB stick), pinned to the given
  // fingerprint or else this gateway's: the same checks as `airlock audit verify` and verify.mjs.
  app.post(`${API}/audit/verify-bundle`, { config: { access: 'auditor' } }, async (req): Promise<AuditBundleVerdict> => {
    const b = parse(auditVerifyBundleSchema, req.body);
    const dir = path.resolve(b.dir);
    let st: fs.Stats;
    try {
      st = fs.statSync(dir);
    } catch {
      throw error(400, 'validation_failed', `dir: ${dir} does not exist (plug in the drive, or check the path)`, [{ path: ['dir'], message: `${dir} does not exist` }]);
    }
    if (!st.isDirectory()) throw error(400, 'validation_failed', `dir: ${dir} is not a folder`, [{ path: ['dir'], message: `${dir} is not a folder` }]);
    const expected = b.key?.trim() || gw.audit.key.fingerprint;
    const v = await verifyBundleInWorker(dir, expected);
    try {
      gw.audit.append({
        kind: 'audit.verify',
        actor: actorOf(principalOf(req)),
        source: req.socket.remoteAddress ?? 'unknown',
        data: { action: 'verify audit bundle', dir, ok: v.ok, count: v.count, first_seq: v.first_seq, last_seq: v.last_seq, key_fingerprint: v.key_fingerprint, expected_key: expected, problems: v.problems.slice(0, 5) },
      });
    } catch (e) {
      gw.log(`audit: could not record the verification of ${dir}: ${(e as Error).message}`);
    }
    return { dir, ...v, expected_key: expected };
  });
}
