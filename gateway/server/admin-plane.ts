// The admin plane: the admin REST API (/admin/api/v1/...). Every write goes through the
// config store's apply(), validated by the same zod schemas as the config file.
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import YAML from 'yaml';
import {
  endpointSchema,
  fromZod,
  formatPath,
  keySchema,
  modelSchema,
  ruleSchema,
  settingsSchema,
  teamSchema,
  type ConfigIssue,
  type McpServerSpec,
  type Section,
} from '../config/schema.js';
import { guardrailSchema, guardrailTestSchema, type GuardrailSpec } from '../config/guardrails-schema.js';
import { compilePolicy, evaluateTexts, Placeholders } from '../guardrails/policy.js';
import { policiesOf } from '../guardrails/engine.js';
import { recentGuardrailEvents } from '../guardrails/events.js';
import { exportConfig, formatChange, type ApplyResult, type StoredState } from '../store/config-store.js';
import { USAGE_FILTERS, type UsageFilter, type UsageQuery } from '../engine/ledger.js';
import { budgetReport } from '../governance/reports.js';
import { probe } from '../engine/health.js';
import { traceById, traceOfRequest, type SessionQuery } from '../telemetry/span-store.js';
import { isOwnRequestId } from '../telemetry/span.js';
import { VERSION } from '../version.js';
import { registerAdminApp } from './static.js';
import {
  AuthError,
  roleRank,
  loginSchema,
  setupSchema,
  tokenCreateSchema,
  passwordChangeSchema,
  userCreateSchema,
  userUpdateSchema,
  userView,
  type Access,
  type Principal,
} from './admin-auth.js';
import type { Gateway } from './gateway.js';
import { ROUTER_OPTIONS, canonicalUrl, unroutableTarget } from './url.js';
import { nestedDeeperThan } from '../engine/json-depth.js';
import { planeServer } from './http-server.js';
import { addShellProof, takeShellProofKey } from './shell-proof.js';
import { registerMcpAdmin, stdioNeedsOwner } from './mcp-admin.js';
import { actorOf, auditAdminPlane } from './admin-audit.js';
import type { RouteDeps } from './route-deps.js';
import { registerRestartRoute } from './admin-restart.js';
import { registerDataFlow } from './data-flow.js';
import type {
  AdminUser,
  ApiToken,
  AuthState,
  BudgetsBody,
  CreatedApiToken,
  EndpointStatus,
  EndpointView,
  GuardrailEventRow,
  GuardrailHitSeries,
  GuardrailTestResult,
  HealthBody,
  KeyView,
  ListBody,
  ModelView,
  ProbeResult,
  RequestRow,
  RequestsPage,
  RouteInfo,
  SessionBody,
  SessionUser,
  SessionsBody,
  StatusBody,
  TeamView,
  Timeseries,
  Trace,
  TracesBody,
  UsageBody,
} from '../wire.js';

import { registerBackupRoutes } from './admin-backup.js';
import { registerBurndownRoute, registerKeyRoutes } from './admin-keys.js';
import { registerPlaygroundRoutes } from './admin-playground.js';
import { keyActivity, secretFromFile } from '../store/key-rotation.js';
import { requestPage } from '../engine/request-pages.js';
import { CursorError } from '../store/cursor.js';

export const API = '/admin/api/v1';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** who may call the route: 'public', or the least role. A route without one is refused. */
    access?: Access;
  }
}

export interface RouteAccess {
  method: string;
  url: string;
  access: Access | null;
}
/** a request body read as a stream by its route (an upload), not JSON */
const isUploadStream = (b: unknown): boolean => typeof b === 'object' && b !== null && typeof (b as Record<string, unknown>).pipe === 'function';
const principalOf = (req: FastifyRequest) => (req as FastifyRequest & { principal?: Principal }).principal;

interface ApiErrorBody {
  error: { message: string; type: string; code: string; param: string | null; issues?: { path: string; message: string }[] };
}

export class AdminError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: ConfigIssue[] = [],
  ) {
    super(message);
  }
  body(): ApiErrorBody {
    const type = this.status === 401 ? 'authentication_error' : this.status === 403 ? 'permission_error' : this.status === 404 ? 'not_found_error' : this.status === 409 ? 'conflict_error' : this.status < 500 ? 'invalid_request_error' : 'server_error';
    return {
      error: {
        message: this.message,
        type,
        code: this.code,
        param: this.issues[0] ? formatPath(this.issues[0].path) : null,
        ...(this.issues.length ? { issues: this.issues.map((i) => ({ path: formatPath(i.path), message: i.message })) } : {}),
      },
    };
  }
}

function validationError(issues: ConfigIssue[]): AdminError {
  return new AdminError(400, 'validation_failed', issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; '), issues);
}

/** A body that is not a JSON object is refused, never read as {} (a PUT of nothing would
 * otherwise reset an item, or every setting, to its defaults). */
function objectBody(body: unknown): Record<string, unknown> {
  if (body === null || typeof body !== 'object' || Array.isArray(body))
    throw new AdminError(400, 'invalid_body', body === undefined ? 'This request needs a JSON object as its body (content-type: application/json).' : 'The request body must be a JSON object.');
  return body as Record<string, unknown>;
}

function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(objectBody(body));
  if (!r.success) throw validationError(fromZod(r.error, schema));
  return r.data;
}

type SchemaDef = { type: string; innerType?: z.ZodType; shape?: Record<string, z.ZodType> };
const defOf = (s: z.ZodType) => (s as unknown as { def: SchemaDef }).def;

/** The settings a body leaves out that have a default (at any depth). PUT /settings replaces the
 * whole document: one left out would otherwise be reset to its default without a word. A setting
 * without a default (optional: tls, ledger_retention_days, …) may be left out: that unsets it. */
export function missingDefaults(schema: z.ZodType, value: unknown, path: (string | number)[] = []): ConfigIssue[] {
  const shape = defOf(schema).shape;
  if (!shape || !value || typeof value !== 'object' || Array.isArray(value)) return [];
  const out: ConfigIssue[] = [];
  for (const [k, s0] of Object.entries(shape)) {
    let s = s0;
    let dflt = false;
    let optional = false;
    for (let d = defOf(s); (d.type === 'default' || d.type === 'optional') && d.innerType; d = defOf(s)) {
      if (d.type === 'default') dflt = true;
      else optional = true;
      s = d.innerType;
    }
    const v = (value as Record<string, unknown>)[k];
    if (v === undefined) {
      if (dflt && !optional)
        out.push({ path: [...path, k], message: 'is missing (PUT /settings replaces every setting)' });
    } else out.push(...missingDefaults(s, v, [...path, k]));
  }
  return out;
}

/** RFC 7396 JSON merge patch: objects merge key by key, null removes a key (a setting goes back
 * to its default, an optional one is unset), anything else replaces. */
export function mergePatch(target: unknown, patch: unknown): unknown {
  if (patch === null || typeof patch !== 'object' || Array.isArray(patch)) return patch;
  const out: Record<string, unknown> = target && typeof target === 'object' && !Array.isArray(target) ? { ...(target as Record<string, unknown>) } : {};
  for (const [k, v] of Object.entries(patch as Record<string, unknown>)) {
    if (k === '__proto__') continue; // (never an own key of a parsed body: Fastify refuses it)
    if (v === null) delete out[k];
    else out[k] = mergePatch(out[k], v);
  }
  return out;
}

/** More than one Host header (HTTP/1.1 says 400; Node keeps the first, checks might read another). */
export function repeatedHost(raw: string[]): boolean {
  let n = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const h = raw[i]!;
    if (h.length === 4 && h.toLowerCase() === 'host' && ++n > 1) return true;
  }
  return false;
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);
/** "localhost", "127.0.0.1:4001", "[::1]:4001", ... (lower-case Host header) */
export function isLoopbackName(host: string): boolean {
  const h = host.startsWith('[') ? host.slice(0, host.indexOf(']') + 1) : host.replace(/:\d*$/, '');
  return LOOPBACK_NAMES.has(h) || h.endsWith('.localhost') || /^127\.\d+\.\d+\.\d+$/.test(h);
}
export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  return addr === '::1' || addr.startsWith('127.') || addr.startsWith('::ffff:127.');
}

/** Which local hosts may address the admin plane (DNS-rebinding defence). */
export function allowedHosts(bindHost: string, port: number, extra: string[] = []): Set<string> {
  const names = new Set(['localhost', '127.0.0.1', '[::1]', ...extra]);
  if (bindHost !== '0.0.0.0' && bindHost !== '::') names.add(bindHost.includes(':') ? `[${bindHost}]` : bindHost);
  const out = new Set<string>();
  for (const n of names) {
    out.add(n.toLowerCase());
    out.add(`${n.toLowerCase()}:${port}`);
  }
  return out;
}

export function buildAdminPlane(gw: Gateway): FastifyInstance {
  const shellProofKey = takeShellProofKey(); // set only by the desktop shell (shell-proof.ts)
  const app = Fastify({
    logger: false,
    bodyLimit: 8 * 1024 * 1024,
    serverFactory: planeServer(gw, 'admin'),
    routerOptions: ROUTER_OPTIONS,
    rewriteUrl: (req) => canonicalUrl(req.url ?? '/'),
    // a target the router cannot read (`/admin/api/v1/%ZZ`) is answered before any hook runs:
    // in this API's error shape, not Fastify's, with the headers every answer here carries
    frameworkErrors: (err, req, reply) => {
      addShellProof(shellProofKey, req, reply);
      const t = unroutableTarget(err, req.raw.url ?? '');
      void (reply as FastifyReply).code(t.status).header('x-content-type-options', 'nosniff').header('cache-control', 'no-store').send(new AdminError(t.status, t.code, t.message).body());
    },
  });
  let hosts: Set<string> | undefined;
  // Every route and the access it declares (GET /routes shows it; a route without one is refused).
  const routes: RouteAccess[] = [];
  app.addHook('onRoute', (r) => {
    const methods = Array.isArray(r.method) ? r.method : [r.method];
    const access = r.config?.access ?? null;
    for (const m of methods) routes.push({ method: m, url: r.url, access });
  });

  app.addHook('onRequest', async (req, reply) => {
    addShellProof(shellProofKey, req, reply); // first: refusals below are proven too
    reply.header('x-content-type-options', 'nosniff');
    reply.header('cache-control', 'no-store');
    // Host check: refuse names we do not answer to (DNS rebinding).
    if (!hosts) {
      const addr = app.server.address();
      const port = addr && typeof addr === 'object' ? addr.port : gw.opts.adminPort;
      hosts = allowedHosts(gw.opts.adminHost, port, (process.env.AIRLOCK_ADMIN_HOSTNAMES ?? '').split(',').map((s) => s.trim()).filter(Boolean));
    }
    if (repeatedHost(req.raw.rawHeaders)) throw new AdminError(400, 'invalid_host', 'The request has more than one Host header.');
    // absolute-form targets (http://host/path) are for proxies; a browser never sends one here
    if (!req.originalUrl.startsWith('/')) throw new AdminError(400, 'invalid_request_target', 'The request target must be a path (origin-form), e.g. /admin/api/v1/status.');
    const host = (req.headers.host ?? '').toLowerCase();
    if (!hosts.has(host)) throw new AdminError(421, 'host_not_allowed', `Host "${host}" is not one this admin plane answers to; add it to AIRLOCK_ADMIN_HOSTNAMES if it is yours.`);
    // A loopback name is only honest from this machine: a LAN client saying "localhost" is not local.
    if (isLoopbackName(host) && !isLoopbackAddress(req.socket.remoteAddress))
      throw new AdminError(421, 'host_not_allowed', `Host "${host}" names this machine's loopback, but the request came from ${req.socket.remoteAddress ?? 'another machine'}; use this server's address or a name in AIRLOCK_ADMIN_HOSTNAMES.`);
    const origin = req.headers.origin;
    if (origin && req.method !== 'GET' && req.method !== 'HEAD') {
      let ok = false;
      try {
        ok = hosts.has(new URL(origin).host.toLowerCase());
      } catch {
        ok = false;
      }
      if (!ok) throw new AdminError(403, 'origin_not_allowed', `Origin "${origin}" may not change this gateway.`);
    }
    // Authorise on the route the router matched, never on the URL string (it has many spellings).
    if (req.is404) return; // answered by the not-found handler, which reveals nothing
    const access = req.routeOptions.config?.access;
    if (access === undefined) throw new AdminError(403, 'route_without_access', `The route ${req.method} ${req.routeOptions.url ?? ''} declares no access rule, so it is refused.`);
    if (access === 'public' && !req.routeOptions.url?.startsWith(API)) return; // the admin app's files
    const principal = gw.auth.identify(req);
    (req as FastifyRequest & { principal?: Principal }).principal = principal;
    if (access === 'public') return;
    gw.auth.authorize(req, principal, access);
  });

  // JSON only: a text/plain body is not read as a string the routes would then mistake for {}
  app.removeContentTypeParser('text/plain');

  app.addHook('preValidation', (req, _reply, done) => {
    const max = gw.snapshot.settings.limits.max_json_depth;
    // (a stream is an upload read by its route, e.g. POST /restore: not JSON)
    if (req.body !== undefined && !isUploadStream(req.body) && nestedDeeperThan(req.body, max))
      return done(new AdminError(400, 'too_deeply_nested', `The request body nests arrays and objects more than ${max} levels deep.`));
    done();
  });

  app.setErrorHandler((err, _req, reply) => {
    if (err instanceof AdminError) return reply.code(err.status).send(err.body());
    if (err instanceof AuthError) return reply.code(err.status).headers(err.headers).send(new AdminError(err.status, err.code, err.message, err.issues).body());
    const e = err as { code?: string; statusCode?: number; message: string };
    if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(413).send(new AdminError(413, 'body_too_large', 'The request body is too large.').body());
    if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return reply.code(415).send(new AdminError(415, 'unsupported_media_type', 'Send "application/json".').body());
    if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || e.code === 'FST_ERR_CTP_EMPTY_JSON_BODY')
      return reply.code(400).send(new AdminError(400, 'invalid_json', `The request body is not valid JSON: ${e.message}`).body());
    const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 500 ? e.statusCode : 500;
    if (status === 500) gw.log(`admin API error: ${e.message}`);
    return reply.code(status).send(new AdminError(status, e.code ?? 'error', e.message).body());
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new AdminError(404, 'unknown_route', `No route ${req.method} ${req.url.split('?')[0]} on the admin plane.`).body());
  });

  /** Apply a change to the stored configuration; map validation problems to 400/409. */
  /** item.index undefined: the request body is the whole section (e.g. routing rules). */
  const change = (doc: Record<string, unknown>, item?: { section: Section; index?: number }): ApplyResult => {
    const r = gw.store.apply(doc, { source: 'admin' });
    if (!r.ok) {
      const own = item ? r.issues.filter((i) => i.path[0] === item.section && (item.index === undefined || i.path[1] === item.index)) : [];
      if (own.length) throw validationError(own.map((i) => ({ path: i.path.slice(item!.index === undefined ? 1 : 2), message: i.message })));
      throw new AdminError(409, 'conflict', r.issues.map((i) => `${formatPath(i.path)}: ${i.message}`).join('; '), r.issues);
    }
    if (r.changes.length) gw.reload();
    return r;
  };

  // ---- generic CRUD over a config section ----
  type Item = { name: string };
  const crud = <T extends Item, V extends object>(
    section: Exclude<Section, 'settings' | 'routing_rules'>,
    path: string,
    schema: z.ZodType<T>,
    view: (s: StoredState, name: string) => V,
    what: string,
    /** a further check of a change (before: the stored item; after: the new one, absent on delete) */
    guard?: (req: FastifyRequest, before: T | undefined, after: T | undefined) => void,
  ) => {
    const items = () => gw.store.export()[section] as unknown as Item[];
    const find = (name: string) => {
      const list = items();
      const index = list.findIndex((i) => i.name === name);
      if (index < 0) throw new AdminError(404, 'not_found', `No ${what} named "${name}".`);
      return { list, index };
    };
    // One read of the stored state for the whole list, not one per item.
    app.get(`${API}/${path}`, { config: { access: 'auditor' } }, async (): Promise<ListBody<V>> => {
      const s = gw.store.state();
      return { data: (exportConfig(s)[section] as unknown as Item[]).map((i) => view(s, i.name)) };
    });
    app.get<{ Params: { name: string } }>(`${API}/${path}/:name`, { config: { access: 'auditor' } }, async (req): Promise<V> => {
      find(req.params.name);
      return view(gw.store.state(), req.params.name);
    });
    app.post(`${API}/${path}`, { config: { access: 'admin' } }, async (req, reply): Promise<V & { key?: string }> => {
      const body = parseBody(schema, req.body);
      const list = items();
      if (list.some((i) => i.name === body.name)) throw new AdminError(409, 'already_exists', `A ${what} named "${body.name}" already exists.`);
      guard?.(req, undefined, body);
      const r = change({ [section]: [...list, body] }, { section, index: list.length });
      reply.code(201);
      const created = r.createdKeys.find((k) => k.name === body.name);
      return { ...view(gw.store.state(), body.name), ...(created ? { key: created.key } : {}) };
    });
    app.put<{ Params: { name: string } }>(`${API}/${path}/:name`, { config: { access: 'admin' } }, async (req): Promise<V> => {
      const raw = objectBody(req.body);
      const body = parseBody(schema, { ...raw, name: raw.name ?? req.params.name });
      if (body.name !== req.params.name) throw validationError([{ path: ['name'], message: `does not match the URL ("${req.params.name}"); renaming is not supported` }]);
      const { list, index } = find(req.params.name);
      guard?.(req, list[index] as T, body);
      list[index] = body;
      change({ [section]: list }, { section, index });
      return view(gw.store.state(), body.name);
    });
    app.delete<{ Params: { name: string } }>(`${API}/${path}/:name`, { config: { access: 'admin' } }, async (req, reply) => {
      const { list, index } = find(req.params.name);
      guard?.(req, list[index] as T, undefined);
      list.splice(index, 1);
      try {
        change({ [section]: list });
      } catch (e) {
        // Name what still refers to it, e.g. `models/chat (models[0].targets[0].endpoint)`.
        if (!(e instanceof AdminError) || e.status !== 409) throw e;
        const current = gw.store.export() as unknown as Record<string, { name?: string }[] | undefined>;
        const users = e.issues.map((i) => {
          const sec = String(i.path[0]);
          const n = typeof i.path[1] === 'number' ? current[sec]?.[i.path[1]]?.name : undefined;
          return `${n !== undefined ? `${sec}/${n}` : sec} (${formatPath(i.path)})`;
        });
        throw new AdminError(409, 'in_use', `The ${what} "${req.params.name}" is still used by ${users.join(', ')}; change or delete those first.`, e.issues);
      }
      return reply.code(204).send();
    });
  };

  const endpointView = (s: StoredState, name: string): EndpointView => {
    const st = s.endpoints.find((e) => e.name === name)!;
    const { api_key_enc, api_key_ref, ...rest } = st;
    return { ...rest, api_key_set: !!api_key_enc, ...(api_key_ref ? { api_key: api_key_ref } : {}), status: endpointStatus(name) };
  };
  const endpointStatus = (name: string): EndpointStatus | null => {
    const rt = gw.runtime.endpoint(name);
    if (!rt) return null;
    return {
      healthy: rt.healthy,
      inflight: rt.inflight,
      last_check_at: rt.lastCheckAt ? new Date(rt.lastCheckAt).toISOString() : null,
      last_check_error: rt.lastCheckError ?? null,
      discovered_models: rt.discoveredModels ?? null,
      exposed_models: [...gw.snapshot.exposedModels].filter((m) => gw.snapshot.models.get(m)?.targets.some((t) => t.endpoint === name)),
    };
  };
  const modelView = (s: StoredState, name: string): ModelView => {
    const spec = s.models.find((m) => m.name === name)!;
    const m = gw.snapshot.models.get(name);
    return { ...spec, targets_status: m ? m.targets.map((t) => gw.runtime.targetStatus(t)) : [] };
  };
  const keyView = (s: StoredState, name: string): KeyView => {
    const k = s.keys.find((x) => x.name === name)!;
    const { hash: _h, created_at, ...rest } = k;
    return { ...rest, created_at: new Date(created_at).toISOString(), ...keyActivity(gw.db, [name]).get(name), secret_from_file: secretFromFile(gw.db, name) ?? null };
  };
  const teamView = (s: StoredState, name: string): TeamView => s.teams.find((t) => t.name === name)!;

  crud('endpoints', 'endpoints', endpointSchema, endpointView, 'endpoint');
  crud('models', 'models', modelSchema, modelView, 'model');
  crud('teams', 'teams', teamSchema, teamView, 'team');
  crud('keys', 'keys', keySchema, keyView, 'key');
  registerMcpAdmin(app, gw, { api: API, crud, roleOf: (req) => principalOf(req)?.role, parse: parseBody });
  crud('guardrails', 'guardrails', guardrailSchema, (st, name): GuardrailSpec => st.guardrails.find((g) => g.name === name)!, 'guardrail policy');

  // Try policies on a text: what each one finds and what would be sent on (nothing is recorded).
  app.post(`${API}/guardrails/test`, { config: { access: 'auditor' } }, async (req): Promise<GuardrailTestResult> => {
    const body = parseBody(guardrailTestSchema, req.body);
    const sc = body.scope ?? {};
    const scope = { model: sc.model, team: sc.team, key: sc.key, agent: sc.agent, mcp_server: sc.mcp_server, tool: sc.tool };
    const policies = body.policy ? [compilePolicy(body.policy)] : policiesOf(gw.snapshot);
    const applying = policies.filter((p) => p.appliesTo(body.direction, scope));
    const r = evaluateTexts(applying, body.direction, [body.text], new Placeholders(), new Map());
    // the classifier models last, on what the model would read (after any redaction), as a request's
    // guards ask them: through the routing, with each detector's timeout and on_failure
    // A classifier call spends the GPUs' time (and reads the text): an auditor's try runs the
    // local detectors only, and says which classifiers it did not ask.
    const role = principalOf(req)?.role;
    const skip = role && roleRank(role) >= roleRank('admin') ? undefined : 'not asked: an auditor\'s try runs the local detectors only (an admin\'s asks the classifier)';
    const gm = r.blocked ? undefined : await gw.guardrails.tryGuardModels(gw.snapshot, applying, body.direction, r.texts[0]!, skip);
    const blocked = r.blocked ?? gm?.blocked;
    return {
      output: blocked ? null : r.texts[0]!,
      blocked: blocked ?? null,
      policies: policies.map((p) => {
        const verdicts = gm?.verdicts.filter((v) => v.policy === p.name) ?? [];
        const findings = [...(r.findings.find((f) => f.policy === p.name)?.findings ?? []), ...verdicts.flatMap((v) => (v.finding ? [v.finding] : []))];
        return {
          policy: p.name,
          mode: p.mode,
          action: p.action,
          applies: applying.includes(p),
          findings: findings.map((f) => ({ detector: f.detector, type: f.type, start: f.start, end: f.end })),
          guard_model: verdicts.map((v) => ({
            model: v.model,
            verdict: v.verdict,
            ...(v.category ? { category: v.category } : {}),
            ...(v.reason ? (v.verdict === 'skipped' ? { reason: v.reason } : { reason: v.reason, on_failure: v.on_failure }) : {}),
            blocks: v.blocks,
          })),
        };
      }),
    };
  });

  // Test a connection: a saved endpoint, or an unsaved one from a form.
  app.post<{ Params: { name: string } }>(`${API}/endpoints/:name/test`, { config: { access: 'admin' } }, async (req): Promise<ProbeResult> => {
    const rt = gw.runtime.endpoint(req.params.name);
    if (!rt) throw new AdminError(404, 'not_found', `No endpoint named "${req.params.name}".`);
    const r = await gw.health.check(req.params.name);
    return r ?? (await probe(rt.config, rt.config.health.timeout_ms, gw.snapshot.settings.limits.max_probe_bytes));
  });
  app.post(`${API}/endpoints/test`, { config: { access: 'admin' } }, async (req): Promise<ProbeResult> => {
    const body = parseBody(endpointSchema, req.body);
    const url = new URL(body.base_url);
    return probe({ type: body.type, origin: url.origin, basePath: url.pathname.replace(/\/+$/, ''), apiKey: body.api_key ?? undefined }, body.health_check?.timeout_ms ?? 5000, gw.snapshot.settings.limits.max_probe_bytes);
  });

  // Routing rules: an ordered list, replaced whole.
  app.get(`${API}/routing-rules`, { config: { access: 'auditor' } }, async () => ({ data: gw.store.export().routing_rules }));
  app.put(`${API}/routing-rules`, { config: { access: 'admin' } }, async (req) => {
    const raw = req.body as { data?: unknown } | unknown[] | undefined;
    const list = Array.isArray(raw) ? raw : (raw as { data?: unknown })?.data;
    if (!Array.isArray(list)) throw new AdminError(400, 'invalid_body', 'Send the routing rules as a JSON array, or as {"data": [...]}.');
    const parsed = z.array(ruleSchema).safeParse(list);
    if (!parsed.success) throw validationError(fromZod(parsed.error));
    const rules = parsed.data;
    change({ routing_rules: rules }, { section: 'routing_rules' });
    return { data: gw.store.export().routing_rules };
  });

  /** Which addresses the planes listen on, and whether they use TLS, decide who can reach them
   * and how: only owners change those. */
  const guardListen = (req: FastifyRequest, next: { listen?: { data_host: string; admin_host: string }; tls?: unknown } | undefined) => {
    if (!next) return;
    const cur = gw.store.export().settings;
    const what: string[] = [];
    if (next.listen && (next.listen.data_host !== cur.listen.data_host || next.listen.admin_host !== cur.listen.admin_host)) what.push('settings.listen.*_host');
    if (JSON.stringify(next.tls ?? null) !== JSON.stringify(cur.tls ?? null)) what.push('settings.tls');
    const p = principalOf(req);
    if (what.length && p?.role !== 'owner')
      throw new AuthError(403, 'forbidden', `Only an owner may change how Airlock can be reached (${what.join(', ')}); the ${p?.role ?? 'anonymous'} role may not.`);
  };

  /** A whole configuration applied by a non-owner may not add, change or remove a stdio MCP
   * server (it runs a program on this machine): the same rule as /mcp-servers, which the file
   * would otherwise get around. What would change is the store's own plan (a dry run). */
  const guardStdioApply = (req: FastifyRequest) => {
    const role = principalOf(req)?.role;
    const doc = req.body as { mcp_servers?: unknown } | undefined;
    if (role === 'owner' || !doc || typeof doc !== 'object' || doc.mcp_servers === undefined) return;
    const plan = gw.store.apply(req.body, { dryRun: true, source: 'admin' });
    if (!plan.ok) return; // refused anyway, with its issues
    const current = gw.store.state().mcp_servers;
    const next = Array.isArray(doc.mcp_servers) ? (doc.mcp_servers as { name?: unknown; transport?: unknown }[]) : [];
    for (const c of plan.changes) {
      if (c.section !== 'mcp_servers') continue;
      const before = current.find((m) => m.name === c.name);
      const after = next.find((m) => m && typeof m === 'object' && m.name === c.name);
      const why = stdioNeedsOwner('POST /config/apply', role, before, after?.transport === 'stdio' ? (after as McpServerSpec) : undefined);
      if (why) throw new AuthError(403, 'forbidden', `${why} (mcp_servers/${c.name})`);
    }
  };

  app.get(`${API}/settings`, { config: { access: 'auditor' } }, async () => gw.store.export().settings);
  // PUT: the whole document (what GET answers, changed); PATCH: only the settings it names
  const putSettings = (req: FastifyRequest, doc: Record<string, unknown>, missing: ConfigIssue[] = []) => {
    const r = settingsSchema.safeParse(doc);
    const wrong = r.success ? [] : fromZod(r.error, settingsSchema);
    if (missing.length) {
      const what = `PUT /settings replaces every setting, and this body leaves out ${missing.map((i) => formatPath(i.path)).join(', ')}: send the whole document GET /settings answers, or PATCH /settings with only the settings to change`;
      throw new AdminError(400, 'validation_failed', [what, ...wrong.map((i) => `${formatPath(i.path)}: ${i.message}`)].join('; '), [...missing, ...wrong]);
    }
    if (!r.success) throw validationError(wrong);
    guardListen(req, r.data);
    change({ settings: r.data });
    return gw.store.export().settings;
  };
  app.put(`${API}/settings`, { config: { access: 'admin' } }, async (req) => {
    const doc = objectBody(req.body);
    return putSettings(req, doc, missingDefaults(settingsSchema, doc));
  });
  app.patch(`${API}/settings`, { config: { access: 'admin' } }, async (req) => {
    const patch = objectBody(req.body);
    return putSettings(req, mergePatch(gw.store.export().settings, patch) as Record<string, unknown>);
  });

  // The whole declarative configuration.
  app.get<{ Querystring: { format?: string } }>(`${API}/config`, { config: { access: 'auditor' } }, async (req, reply) => {
    const doc = gw.store.export();
    if (req.query.format === 'yaml') return reply.type('application/yaml').send(YAML.stringify(doc));
    return doc;
  });
  app.post<{ Querystring: { dry_run?: string } }>(`${API}/config/apply`, { config: { access: 'admin' } }, async (req) => {
    const dryRun = req.query.dry_run === 'true' || req.query.dry_run === '1';
    const parsed = settingsSchema.safeParse((req.body as { settings?: unknown } | undefined)?.settings);
    if (parsed.success) guardListen(req, parsed.data);
    guardStdioApply(req);
    const r = gw.store.apply(req.body, { dryRun, source: 'admin' });
    if (!r.ok) throw validationError(r.issues);
    if (!dryRun && r.changes.length) gw.reload();
    return { dry_run: dryRun, changes: r.changes.map(formatChange), created_keys: r.createdKeys };
  });

  // Health of endpoints and breaker state of every target.
  app.get(`${API}/health`, { config: { access: 'auditor' } }, async (): Promise<HealthBody> => ({
    endpoints: [...gw.snapshot.endpoints.keys()].map((name) => ({ name, ...endpointStatus(name) })),
    targets: [...gw.snapshot.models.values()].flatMap((m) => m.targets.map((t) => ({ ...gw.runtime.targetStatus(t), alias: m.name }))),
  }));

  // Usage.
  const time = (v: string | undefined, name: string): number | undefined => {
    if (v === undefined || v === '') return undefined;
    // milliseconds may have a fraction: GET /sessions' next_before is a step's end (µs precision)
    const n = /^\d+(\.\d+)?$/.test(v) ? Number(v) : Date.parse(v);
    if (!Number.isFinite(n)) throw validationError([{ path: [name], message: 'must be an ISO 8601 date-time or milliseconds since the epoch' }]);
    return n;
  };
  // The latest requests, page by page (next_cursor), filtered by team, key, model, user or outcome.
  type RequestsQuery = { limit?: string; before?: string; cursor?: string; request_id?: string; client_request_id?: string; team?: string; key?: string; model?: string; user?: string; outcome?: string };
  app.get<{ Querystring: RequestsQuery }>(`${API}/usage/requests`, { config: { access: 'auditor' } }, async (req): Promise<RequestsPage> => {
    await gw.ledger.flushed();
    const q = req.query;
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw validationError([{ path: ['limit'], message: 'must be an integer from 1 to 10000' }]);
    if (q.outcome !== undefined && q.outcome !== '' && q.outcome !== 'ok' && q.outcome !== 'error') throw validationError([{ path: ['outcome'], message: 'must be ok or error' }]);
    const opt = (v: string | undefined) => (v === undefined || v === '' ? undefined : v);
    let page;
    try {
      page = requestPage(gw.db, {
        limit,
        cursor: opt(q.cursor),
        before: time(q.before, 'before'),
        request_id: opt(q.request_id),
        client_request_id: opt(q.client_request_id),
        team: opt(q.team),
        key: opt(q.key),
        model: opt(q.model),
        user: opt(q.user),
        outcome: opt(q.outcome) as 'ok' | 'error' | undefined,
      });
    } catch (e) {
      if (e instanceof CursorError) throw validationError([{ path: ['cursor'], message: e.message }]);
      throw e;
    }
    return {
      data: page.rows.map((r): RequestRow => ({ ...r, stream: !!r.stream, estimated: !!r.estimated, tags: r.tags ? (JSON.parse(r.tags) as Record<string, string>) : null, time: new Date(r.ts).toISOString() })),
      next_cursor: page.next_cursor,
      cost_unit: gw.snapshot.settings.cost_unit,
    };
  });
  // Usage per group (team, key, app, user, model, endpoint, session or tag), filtered by any of them.
  const groups = ['team', 'key', 'model', 'user', 'app', 'endpoint', 'session', 'tag'] as const;
  type UsageParams = { group_by?: string; from?: string; to?: string; tag?: string } & Partial<Record<UsageFilter, string>>;
  const usage = async (query: UsageParams): Promise<UsageBody> => {
    await gw.ledger.flushed();
    const g = query.group_by ?? 'team';
    if (!(groups as readonly string[]).includes(g)) throw validationError([{ path: ['group_by'], message: `must be one of ${groups.join(', ')}` }]);
    const where: Partial<Record<UsageFilter, string>> = {};
    for (const f of USAGE_FILTERS) if (typeof query[f] === 'string' && query[f] !== '') where[f] = query[f];
    let tag: UsageQuery['tag'];
    if (query.tag !== undefined && query.tag !== '') {
      const eq = query.tag.indexOf('=');
      if (eq <= 0) throw validationError([{ path: ['tag'], message: 'must be key=value, e.g. tag=project=alpha' }]);
      tag = { key: query.tag.slice(0, eq), value: query.tag.slice(eq + 1) };
    }
    const q: UsageQuery = { group_by: g as UsageQuery['group_by'], from: time(query.from, 'from'), to: time(query.to, 'to'), where, tag };
    return { group_by: q.group_by, from: q.from ?? null, to: q.to ?? null, cost_unit: gw.snapshot.settings.cost_unit, filters: { ...where, ...(query.tag ? { tag: query.tag } : {}) }, data: await gw.adminReader.read('usageAggregates', q) };
  };
  app.get<{ Querystring: UsageParams }>(`${API}/usage`, { config: { access: 'auditor' } }, async (req) => usage(req.query));
  app.get<{ Querystring: UsageParams }>(`${API}/usage/summary`, { config: { access: 'auditor' } }, async (req) => usage(req.query));
  // Every budget: spent, reserved, limit, period and status.
  app.get(`${API}/budgets`, { config: { access: 'auditor' } }, async (): Promise<BudgetsBody> => {
    await gw.ledger.flushed();
    // the spend is the counters'; a team's users (for its per-user budget) are read in the worker
    return budgetReport(gw.governance, gw.snapshot, (team, start) => gw.adminReader.read('teamUsers', team, start));
  });

  /** A time window in buckets from ?from&to&buckets (defaults: the last spanMs, in dfltBuckets). */
  const timeWindow = (q: { from?: string; to?: string; buckets?: string }, spanMs: number, dfltBuckets: number) => {
    const b = q.buckets;
    const buckets = b === undefined || b === '' ? dfltBuckets : /^\d+$/.test(b) ? Number(b) : NaN;
    if (!Number.isInteger(buckets) || buckets < 1 || buckets > 500) throw validationError([{ path: ['buckets'], message: 'must be an integer from 1 to 500' }]);
    const givenTo = time(q.to, 'to');
    const to = givenTo ?? Date.now();
    const from = time(q.from, 'from') ?? to - spanMs;
    if (to <= from)
      throw validationError(givenTo !== undefined ? [{ path: ['to'], message: 'must be later than from' }] : [{ path: ['from'], message: 'must be earlier than to (default: now)' }]);
    return { from, to, buckets };
  };

  // Requests, errors, tokens, cost and latency percentiles per time bucket (every bucket present).
  app.get<{ Querystring: { from?: string; to?: string; buckets?: string } }>(`${API}/usage/timeseries`, { config: { access: 'auditor' } }, async (req): Promise<Timeseries> => {
    await gw.ledger.flushed();
    return gw.adminReader.read('usageTimeseries', timeWindow(req.query, 3_600_000, 60));
  });

  // Guardrail decisions: the most recent, and hits per policy over time.
  app.get<{ Querystring: { limit?: string; before?: string; policy?: string; request_id?: string } }>(`${API}/guardrail-events`, { config: { access: 'auditor' } }, async (req): Promise<ListBody<GuardrailEventRow>> => {
    gw.guardrailEvents.flush();
    const limit = req.query.limit === undefined ? 100 : Number(req.query.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 10_000) throw validationError([{ path: ['limit'], message: 'must be an integer from 1 to 10000' }]);
    const before = req.query.before === undefined || req.query.before === '' ? undefined : Number(req.query.before);
    if (before !== undefined && !Number.isInteger(before)) throw validationError([{ path: ['before'], message: 'must be an event id (an integer)' }]);
    return { data: recentGuardrailEvents(gw.db, { limit, before, policy: req.query.policy || undefined, request_id: req.query.request_id || undefined }) };
  });
  app.get<{ Querystring: { from?: string; to?: string; buckets?: string } }>(`${API}/guardrail-events/summary`, { config: { access: 'auditor' } }, async (req): Promise<GuardrailHitSeries> => {
    gw.guardrailEvents.flush();
    await gw.ledger.flushed();
    const w = timeWindow(req.query, 86_400_000, 24);
    return gw.adminReader.read('guardrailHitSeries', w.from, w.to, w.buckets, gw.store.state().guardrails);
  });

  // Workflow traces (gateway/telemetry/): what is queued is written first, so a request that has
  // ended is in the answer.
  const text = (v: string | undefined, name: string): string | undefined => {
    if (v === undefined || v === '') return undefined;
    if (v.length > 256) throw validationError([{ path: [name], message: 'must be at most 256 characters' }]);
    return v;
  };
  const limitOf = (v: string | undefined, dflt: number, max: number): number => {
    const n = v === undefined || v === '' ? dflt : /^\d+$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > max) throw validationError([{ path: ['limit'], message: `must be an integer from 1 to ${max}` }]);
    return n;
  };
  app.get<{ Querystring: { session?: string; limit?: string } }>(`${API}/traces`, { config: { access: 'auditor' } }, async (req): Promise<TracesBody> => {
    await gw.telemetry.flush();
    const session = text(req.query.session, 'session');
    // a workflow's traces are listed whole: a limit there would be ignored, so it is refused
    if (session !== undefined && req.query.limit !== undefined) throw validationError([{ path: ['limit'], message: 'applies to the recent traces only (without session): a session\'s traces are listed whole' }]);
    if (session === undefined) return { data: await gw.adminReader.read('recentTraces', limitOf(req.query.limit, 50, 1000)) };
    const read = await gw.adminReader.read('tracesOfSessionRead', session);
    return read.truncated ? { data: read.traces, truncated: true } : { data: read.traces };
  });
  app.get<{ Params: { id: string } }>(`${API}/traces/:id`, { config: { access: 'auditor' } }, async (req): Promise<Trace> => {
    const id = req.params.id.toLowerCase();
    if (!/^[0-9a-f]{32}$/.test(id)) throw validationError([{ path: ['trace_id'], message: 'must be 32 hexadecimal digits (a W3C trace id)' }]);
    await gw.telemetry.flush();
    const t = traceById(gw.db, id);
    if (!t) throw new AdminError(404, 'not_found', `No trace ${id} is stored (it may be older than settings.telemetry.retention_hours).`);
    return t;
  });
  // One request's trace, by the request id the Usage page (and x-airlock-request-id) shows: a
  // sub-resource of the request rather than a filter of GET /traces, since it answers one trace
  // (as GET /traces/ID does) or a 404 saying why there is none, not a list.
  app.get<{ Params: { request_id: string } }>(`${API}/usage/requests/:request_id/trace`, { config: { access: 'auditor' } }, async (req): Promise<Trace> => {
    const id = req.params.request_id.toLowerCase();
    if (!isOwnRequestId(id)) throw validationError([{ path: ['request_id'], message: 'must be a request id of this gateway (the UUID version 7 of x-airlock-request-id and the Usage page)' }]);
    await gw.telemetry.flush();
    const found = traceOfRequest(gw.db, id);
    if (found.trace) return found.trace;
    throw new AdminError(
      404,
      'not_found',
      found.inLedger
        ? `The trace of request ${id} is not stored: it was pruned (settings.telemetry.retention_hours or max_spans), not sampled (settings.telemetry.sample_ratio; failed requests are always kept), or traces were off (settings.telemetry.traces) when it ran.`
        : `No request ${id} is in the ledger and no trace of it is stored: it may be older than settings.ledger_retention_days, or not a request of this gateway.`,
    );
  });
  app.get<{ Querystring: { team?: string; key?: string; model?: string; status?: string; from?: string; to?: string; before?: string; cursor?: string; limit?: string } }>(
    `${API}/sessions`,
    { config: { access: 'auditor' } },
    async (req): Promise<SessionsBody> => {
      const q = req.query;
      if (q.status !== undefined && q.status !== '' && q.status !== 'ok' && q.status !== 'error') throw validationError([{ path: ['status'], message: 'must be ok or error' }]);
      const query: SessionQuery = {
        team: text(q.team, 'team'),
        key: text(q.key, 'key'),
        model: text(q.model, 'model'),
        status: q.status === 'ok' || q.status === 'error' ? q.status : undefined,
        from: time(q.from, 'from'),
        to: time(q.to, 'to'),
        before: time(q.before, 'before'),
        cursor: q.cursor === undefined || q.cursor === '' ? undefined : q.cursor,
        limit: limitOf(q.limit, 50, 500),
      };
      await gw.telemetry.flush();
      try {
        return await gw.adminReader.read('listSessions', query);
      } catch (e) {
        if (e instanceof CursorError) throw validationError([{ path: ['cursor'], message: e.message }]);
        throw e;
      }
    },
  );

  // Every route of this plane and who may call it (the role matrix, from the routes themselves).
  app.get(`${API}/routes`, { config: { access: 'auditor' } }, async (): Promise<ListBody<RouteInfo>> => ({
    data: routes.filter((r) => r.method !== 'HEAD').map((r) => ({ method: r.method, path: r.url, access: r.access })),
  }));

  // The Prometheus metrics of the data plane, for auditors and admins without a scraper.
  app.get(`${API}/metrics`, { config: { access: 'auditor' } }, async (_req, reply) => {
    reply.header('content-type', gw.metrics.registry.contentType);
    return gw.metrics.registry.metrics();
  });

  app.get(`${API}/status`, { config: { access: 'auditor' } }, async (): Promise<StatusBody> => ({
    version: VERSION,
    started_at: new Date(gw.startedAt).toISOString(),
    config_version: gw.snapshot.version,
    data_dir: gw.opts.dataDir,
    listen: gw.listening ?? null,
    // what the planes were asked to listen on at start, and where each value came from: a flag
    // or environment variable overrides the stored settings.listen (which applies on restart)
    listen_config: { data_host: gw.opts.host, data_port: gw.opts.port, admin_host: gw.opts.adminHost, admin_port: gw.opts.adminPort },
    listen_source: gw.opts.listenSource ?? null,
    admin_hostnames: (process.env.AIRLOCK_ADMIN_HOSTNAMES ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    // settings.tls as loaded at start (null: plain HTTP): which planes serve HTTPS, the certificate's fingerprint and expiry
    tls: gw.tls?.info ?? null,
    ledger: gw.ledger.state(),
  }));

  // ---- accounts ----
  const sessionReply = (reply: FastifyReply, req: FastifyRequest, user: { name: string; role: SessionUser['role']; must_change_password?: number | boolean }, session: { cookie: string; csrf: string }): SessionBody => {
    reply.header('set-cookie', gw.auth.cookie(session.cookie, req.protocol === 'https', gw.snapshot.settings.admin_session_hours * 3600));
    return { user: { name: user.name, role: user.role, ...(user.must_change_password ? { must_change_password: true } : {}) }, csrf_token: session.csrf };
  };
  app.get(`${API}/auth/state`, { config: { access: 'public' } }, async (req): Promise<AuthState> => {
    const p = principalOf(req);
    return {
      setup_required: gw.auth.setupRequired(),
      user: p ? { name: p.name, role: p.role, ...(p.mustChangePassword ? { must_change_password: true } : {}) } : null,
      csrf_token: p?.csrf ?? null,
    };
  });
  app.post(`${API}/auth/setup`, { config: { access: 'public' } }, async (req, reply) => {
    const body = parseBody(setupSchema, req.body);
    const r = await gw.auth.setup(body);
    reply.code(201);
    return sessionReply(reply, req, r.user, r.session);
  });
  app.post(`${API}/auth/login`, { config: { access: 'public' } }, async (req, reply) => {
    const body = parseBody(loginSchema, req.body);
    const r = await gw.auth.login(body, req.socket.remoteAddress);
    return sessionReply(reply, req, r.user, r.session);
  });
  // A signed-in user's own password (any role; the only route a one-time password's session may use)
  app.post(`${API}/auth/password`, { config: { access: 'auditor', passwordChange: true } }, async (req, reply) => {
    await gw.auth.changeOwnPassword(principalOf(req), parseBody(passwordChangeSchema, req.body));
    return reply.code(204).send();
  });
  app.post(`${API}/auth/logout`, { config: { access: 'public' } }, async (req, reply) => {
    gw.auth.logout(principalOf(req));
    reply.header('set-cookie', gw.auth.cookie('', req.protocol === 'https', 0));
    return reply.code(204).send();
  });

  // Auditors read the accounts too (who may do what is part of what they check).
  app.get(`${API}/users`, { config: { access: 'auditor' } }, async (): Promise<ListBody<AdminUser>> => ({ data: gw.auth.users().map(userView) }));
  app.post(`${API}/users`, { config: { access: 'owner' } }, async (req, reply): Promise<AdminUser> => {
    const u = await gw.auth.createUser(parseBody(userCreateSchema, req.body));
    reply.code(201);
    return userView(u);
  });
  app.put<{ Params: { name: string } }>(`${API}/users/:name`, { config: { access: 'owner' } }, async (req): Promise<AdminUser> => userView(await gw.auth.updateUser(req.params.name, parseBody(userUpdateSchema, req.body))));
  app.delete<{ Params: { name: string } }>(`${API}/users/:name`, { config: { access: 'owner' } }, async (req, reply) => {
    gw.auth.deleteUser(req.params.name);
    return reply.code(204).send();
  });

  app.get(`${API}/tokens`, { config: { access: 'admin' } }, async (): Promise<ListBody<ApiToken>> => ({ data: gw.auth.tokens() }));
  app.post(`${API}/tokens`, { config: { access: 'admin' } }, async (req, reply): Promise<CreatedApiToken> => {
    const body = parseBody(tokenCreateSchema, req.body);
    const { token } = gw.auth.createToken(body, principalOf(req)!);
    reply.code(201);
    return { ...gw.auth.tokens().find((t) => t.name === body.name)!, token };
  });
  app.delete<{ Params: { name: string } }>(`${API}/tokens/:name`, { config: { access: 'admin' } }, async (req, reply) => {
    gw.auth.deleteToken(req.params.name, principalOf(req)!);
    return reply.code(204).send();
  });

  const deps: RouteDeps = {
    API,
    parseBody,
    error: (status, code, message, issues) => new AdminError(status, code, message, issues),
    principalOf,
    actorOf: (req) => actorOf(principalOf(req)),
  };
  registerBackupRoutes(app, gw, deps);
  registerKeyRoutes(app, gw, deps);
  registerPlaygroundRoutes(app, gw, deps);
  registerBurndownRoute(app, gw, deps);
  registerRestartRoute(app, gw, deps);
  // The audit trail: hooks that record every change, login and refusal; the /audit routes.
  auditAdminPlane(app, gw, deps);
  registerDataFlow(app, gw, API, isLoopbackName);

  // The admin app itself (renderer/dist), after every API route: unknown API paths stay JSON 404s.
  registerAdminApp(app);

  return app;
}

export type { FastifyRequest, FastifyReply };
