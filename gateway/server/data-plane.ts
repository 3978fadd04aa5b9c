// The data plane: the OpenAI-compatible API for apps, health and metrics.
import Fastify, { type FastifyError, type FastifyInstance, type FastifyReply, type FastifyRequest, type HookHandlerDoneFunction } from 'fastify';
import { GatewayError, gatewayError } from '../engine/errors.js';
import { newRequestId } from '../engine/request-id.js';
import { nestedDeeperThan } from '../engine/json-depth.js';
import { authenticate } from '../engine/stages.js';
import { clientRequestId } from '../engine/pipeline.js';
import { countTokens } from '../engine/anthropic/messages.js';
import { inputItemsOf, pageOf, type InputItemsQuery } from '../engine/responses/input-items.js';
import type { Kind } from '../engine/stages.js';
import type { KeyRecord } from '../engine/snapshot.js';
import type { Gateway } from './gateway.js';
import { ROUTER_OPTIONS, canonicalUrl, unroutableTarget } from './url.js';
import { repeatedHost } from './admin-plane.js';
import { planeServer } from './http-server.js';

const ROUTES: [string, Kind][] = [
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
  ['/v1/messages', 'messages'],
  ['/v1/responses', 'responses'],
];

declare module 'fastify' {
  interface FastifyContextConfig {
    /** the pipeline this data-plane route feeds; its key is checked before the body is read */
    kind?: Kind;
    /** the protocol whose error shape a route answers in (default: its kind's, else OpenAI's) */
    protocol?: Kind;
    /** an MCP route (/mcp): what is refused before its handler is a JSON-RPC error */
    mcp?: boolean;
  }
}

type RequestWithId = { airlockId?: string; airlockKey?: KeyRecord };


/** The request announces a body (that will not be read when it is refused first). */
function hasBody(req: FastifyRequest): boolean {
  const len = req.headers['content-length'];
  return len !== '0' && (len !== undefined || req.headers['transfer-encoding'] !== undefined);
}

/** Most of a body refused from the headers that is read and dropped (see refuse). */
const LINGER_BYTES = 1024 * 1024;

/**
 * Answers a request refused from its headers (no valid key, the ledger or the audit log
 * unwritable) whose body was not read. Up to LINGER_BYTES of the body are read and dropped, never
 * kept, and the refusal is sent once the body has ended: a server that answers and closes while
 * the client is still sending (Node closes after the answer when the client asked for
 * `Connection: close`) resets the connection under the rest of the body, and the client sees a
 * broken pipe instead of the answer. Answered after the body, the client reads its refusal and its
 * connection serves the next request. A body announced larger than that is not worth reading: it
 * is answered at once with `Connection: close` (and the client may then see the reset); a chunked
 * one found larger as it arrives is answered then, with the same header.
 */
function refuse(req: FastifyRequest, reply: FastifyReply, answer: () => void, linger = LINGER_BYTES): void {
  if (!hasBody(req)) return answer();
  if (Number(req.headers['content-length']) > linger) {
    reply.header('connection', 'close');
    return answer();
  }
  const raw = req.raw;
  let n = 0;
  let answered = false;
  const once = () => {
    if (answered) return;
    answered = true;
    raw.off('data', count);
    answer();
  };
  const count = (c: Buffer) => {
    if ((n += c.length) <= linger) return;
    reply.header('connection', 'close');
    once();
  };
  raw.on('data', count);
  raw.once('end', once);
  raw.once('close', once); // the client went away (or the request timed out) before the end
}

/** A body refused by the JSON parser that is valid JSON: it has a key the parser refuses
 * ("__proto__", or "constructor" with "prototype"), which deserves its own message. */
function prototypeKeyError(body: string): GatewayError | undefined {
  if (!/"(?:__proto__|constructor)"/.test(body)) return undefined;
  try {
    JSON.parse(body);
  } catch {
    return undefined;
  }
  return gatewayError('invalid_json', 'The request body has a "__proto__" or "constructor.prototype" key, which is refused (it could alter the objects that read the body).');
}

/** An error answered before /mcp's handler (a body too large, not JSON, nested too deep; a second
 * Host header) as a JSON-RPC error, as the MCP SDK's transport answers its own: the same HTTP
 * status, -32700 for a body that cannot be parsed (or is nested past the limit), else -32000. */
export function jsonRpcErrorBody(g: GatewayError): { jsonrpc: '2.0'; id: null; error: { code: number; message: string } } {
  const parse = g.code === 'invalid_json' || g.code === 'too_deeply_nested' || g.code === 'empty_body';
  return { jsonrpc: '2.0', id: null, error: { code: parse ? -32700 : g.status >= 500 ? -32603 : -32000, message: g.message } };
}

export function openAIError(err: FastifyError | Error, bodyLimit?: number): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = err as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return gatewayError('body_too_large', `The request body is larger than the limit of ${bodyLimit ?? e.message.match(/\d+/)?.[0] ?? 'the configured'} bytes.`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return gatewayError('empty_body', 'The request body is empty; send a JSON object.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return gatewayError('unsupported_media_type', `Unsupported content-type; send "application/json".`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return gatewayError('invalid_content_length', 'The content-length header does not match the body.');
  }
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/.test(e.message) && e.statusCode === 400)
    return gatewayError('invalid_json', `The request body is not valid JSON: ${e.message}`);
  const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  return new GatewayError(status, status < 500 ? 'invalid_request_error' : 'server_error', e.code ?? 'error', e.message);
}

export function buildDataPlane(gw: Gateway): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: gw.snapshot.settings.max_body_bytes,
    return503OnClosing: true,
    serverFactory: planeServer(gw, 'data'),
    routerOptions: ROUTER_OPTIONS,
    rewriteUrl: (req) => canonicalUrl(req.url ?? '/'),
    // a target the router cannot read (`/v1/%ZZ`) is answered before any hook runs: in the
    // OpenAI error shape, with a request id like every other answer
    frameworkErrors: (err, req, reply) => {
      const t = unroutableTarget(err, req.raw.url ?? '');
      void (reply as FastifyReply).code(t.status).header('x-airlock-request-id', newRequestId()).send(gatewayError(t.code, t.message).body());
    },
  });

  // Every response carries a request id; the pipeline routes set it on the raw response themselves.
  // The key is checked here, from the headers, before any of the body is read: a request without a
  // valid key costs no body buffering or parsing.
  app.addHook('onRequest', (req, reply, done) => {
    gw.requestsStarted++;
    // the gateway's own id (the ledger's key); a client's x-request-id never becomes it: it is
    // kept beside it (client_request_id) and echoed as x-request-id
    const id = newRequestId();
    const r = req as RequestWithId;
    r.airlockId = id;
    reply.header('x-airlock-request-id', id);
    const clientId = clientRequestId(req.headers);
    if (clientId) reply.header('x-request-id', clientId);
    if (repeatedHost(req.raw.rawHeaders)) {
      const g = gatewayError('invalid_host', 'The request has more than one Host header.');
      const c = req.routeOptions.config; // (only on this rare path: routeOptions builds an object per access)
      const protocol = c?.protocol ?? c?.kind;
      reply.header('connection', 'close').code(400).send(c?.mcp ? jsonRpcErrorBody(g) : protocol ? gw.pipeline.errorBody(protocol, g) : g.body());
      return;
    }
    done();
  });
  // The pipeline routes' own onRequest hook (after the one above): the key, from the headers. A
  // route-level hook knows its kind without asking for req.routeOptions, which builds a new
  // object on every access.
  const authenticateFirst = (kind: Kind) => (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    const r = req as RequestWithId;
    const id = r.airlockId ?? newRequestId();
    if (gw.ledger.refusing) {
      // settings.ledger_when_unwritable: refuse — no request is served that cannot be recorded
      const g = gatewayError('ledger_unavailable', 'The usage ledger cannot be written right now, and this gateway is set to refuse requests it cannot record; try again shortly.', { headers: { 'retry-after': '5' } });
      refuse(req, reply, () => { reply.code(503).headers(g.headers).send(g.body()); });
      return;
    }
    if (gw.auditRefusing) {
      // settings.audit.fail_closed: admin_and_data — no request is served that cannot be audited
      const g = gatewayError('audit_unavailable', 'The audit log cannot be written right now, and this gateway is set to refuse requests it cannot audit; try again shortly.', { headers: { 'retry-after': '5' } });
      refuse(req, reply, () => { reply.code(503).headers(g.headers).send(g.body()); });
      return;
    }
    try {
      r.airlockKey = authenticate(gw.snapshot, gw.secrets, req.headers);
    } catch (e) {
      const g = e instanceof GatewayError ? e : openAIError(e as Error);
      gw.pipeline.recordRejected(kind, id, req.headers, g);
      refuse(req, reply, () => { reply.code(g.status).headers(g.headers).send(gw.pipeline.errorBody(kind, g)); });
      return;
    }
    done();
  };
  // The routes outside the pipeline (count_tokens, stored responses) check the key from the
  // headers too, before any body is read; no ledger row (nothing is routed).
  const keyFirst = (protocol: Kind) => (req: FastifyRequest, reply: FastifyReply, done: HookHandlerDoneFunction) => {
    try {
      (req as RequestWithId).airlockKey = authenticate(gw.snapshot, gw.secrets, req.headers);
    } catch (e) {
      const g = e instanceof GatewayError ? e : openAIError(e as Error);
      refuse(req, reply, () => { reply.code(g.status).headers(g.headers).send(gw.pipeline.errorBody(protocol, g)); });
      return;
    }
    done();
  };
  // Nesting deeper than settings.limits.max_json_depth is the client's mistake (400), refused
  // before anything walks the body recursively. Checked as part of parsing (Fastify's own JSON
  // parser, then the depth walk) rather than in a preValidation hook: the same answer, without a
  // hook stage on every request.
  app.removeContentTypeParser('text/plain'); // JSON only: text/plain is a 415, not a string body
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (req, body, done) => {
    void parseJson(req, body as string, (err, value) => {
      if (err) return done(prototypeKeyError(body as string) ?? err, undefined);
      const max = gw.snapshot.settings.limits.max_json_depth;
      if (nestedDeeperThan(value, max)) return done(gatewayError('too_deeply_nested', `The request body nests arrays and objects more than ${max} levels deep.`), undefined);
      done(null, value);
    });
  });
  app.setErrorHandler((err, req, reply) => {
    const g = openAIError(err as Error, app.initialConfig.bodyLimit);
    // A request refused before the pipeline (bad JSON, too large) still gets its ledger row.
    const config = req.routeOptions.config;
    const kind = config?.kind;
    const r = req as RequestWithId;
    if (kind) gw.pipeline.recordRejected(kind, r.airlockId ?? newRequestId(), req.headers, g, r.airlockKey);
    const protocol = config?.protocol ?? kind;
    const answer = () => void reply.code(g.status).headers(g.headers).send(config?.mcp ? jsonRpcErrorBody(g) : protocol ? gw.pipeline.errorBody(protocol, g) : g.body());
    if ((err as FastifyError).code === 'FST_ERR_CTP_BODY_TOO_LARGE' && !req.raw.complete) {
      // Fastify answers a body over the limit at once with Connection: close, while the client is
      // still sending it: the close resets the connection under the rest of the body and the
      // client sees a broken pipe (the openai client: a connection error, retried) instead of
      // its 413. The rest is read and dropped first, up to four times the limit (beyond that the
      // answer goes at once, with the close).
      // (Node writes no header and still closes once Fastify's is removed: the client's own wish
      // is put back instead)
      const conn = String(req.headers.connection ?? '').toLowerCase();
      const closes = conn.includes('close') || (req.raw.httpVersion === '1.0' && !conn.includes('keep-alive'));
      reply.header('connection', closes ? 'close' : 'keep-alive');
      refuse(req, reply, answer, Math.max(LINGER_BYTES, 4 * (app.initialConfig.bodyLimit ?? 0)));
      return;
    }
    answer();
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(gatewayError('unknown_route', `No route ${req.method} ${req.url.split('?')[0]} on the data plane.`).body());
  });

  for (const [path, kind] of ROUTES) {
    app.post(path, { config: { kind }, onRequest: authenticateFirst(kind) }, (req, reply) => {
      reply.hijack();
      const r = req as RequestWithId;
      return gw.pipeline.handle(kind, r.airlockId ?? newRequestId(), req.body, req.headers, reply.raw, r.airlockKey);
    });
  }

  // Anthropic's token counting: our estimate (no upstream is asked), marked as one.
  app.post('/v1/messages/count_tokens', { config: { protocol: 'messages' }, onRequest: keyFirst('messages') }, (req, reply) => {
    reply.header('x-airlock-estimated', 'true');
    return countTokens(gw.snapshot, (req as RequestWithId).airlockKey!, req.body);
  });
  // Stored responses (POST /v1/responses with store): only the key that made one sees it.
  const storedResponse = (req: FastifyRequest) => {
    const id = (req.params as { id: string }).id;
    return { key: (req as RequestWithId).airlockKey!, id, notFound: () => gatewayError('response_not_found', `No stored response "${id}" for this API key.`, { param: 'response_id' }) };
  };
  app.get('/v1/responses/:id', { onRequest: keyFirst('responses') }, (req) => {
    const { key, id, notFound } = storedResponse(req);
    const r = gw.responses.get(id, key.name);
    if (!r) throw notFound();
    return r.response;
  });
  app.get('/v1/responses/:id/input_items', { onRequest: keyFirst('responses') }, (req) => {
    const { key, id, notFound } = storedResponse(req);
    const r = gw.responses.get(id, key.name);
    if (!r) throw notFound();
    return pageOf(inputItemsOf(id, r.conversation), req.query as InputItemsQuery);
  });
  app.delete('/v1/responses/:id', { onRequest: keyFirst('responses') }, (req) => {
    const { key, id, notFound } = storedResponse(req);
    if (!gw.responses.delete(id, key.name)) throw notFound();
    return { id, object: 'response', deleted: true };
  });

  // The models a key may call (GET /v1/models), or one of them (GET /v1/models/{id}: the openai
  // client's models.retrieve; an id with a slash may come encoded or not). A model the key may
  // not call is not found, as the list does not show it.
  const modelsOf = (req: FastifyRequest, reply: FastifyReply): string[] | undefined => {
    const s = gw.snapshot;
    let key;
    try {
      key = authenticate(s, gw.secrets, req.headers);
    } catch (e) {
      const g = e as GatewayError;
      void reply.code(g.status).send(g.body());
      return undefined;
    }
    return [...s.models.keys(), ...s.virtualModels].filter((n) => !key.models || key.models.has(n));
  };
  const modelObject = (id: string) => ({ id, object: 'model', created: Math.floor(gw.startedAt / 1000), owned_by: 'airlock' });
  app.get('/v1/models', (req, reply) => {
    const names = modelsOf(req, reply);
    if (names) return { object: 'list', data: names.map(modelObject) };
    return reply;
  });
  app.get('/v1/models/*', (req, reply) => {
    const names = modelsOf(req, reply);
    if (!names) return reply;
    const id = (req.params as { '*': string })['*'];
    if (!names.includes(id)) {
      const g = gatewayError('model_not_found', `The model "${id.slice(0, 200)}" does not exist on this gateway.`, { param: 'model' });
      return reply.code(g.status).send(g.body());
    }
    return modelObject(id);
  });

  // /mcp: everything the agent may use; /mcp/v/NAME: within a virtual server's bundle. The handler
  // (mcp-endpoint.ts) and the hub load the MCP SDK on the first call, not at start-up.
  let mcp: Promise<(req: FastifyRequest, reply: FastifyReply) => Promise<void>> | undefined;
  const mcpHandle = async (req: FastifyRequest, reply: FastifyReply) => {
    mcp ??= Promise.all([gw.mcpHub(), import('./mcp-endpoint.js')]).then(([, m]) => m.mcpHandler(gw));
    mcp.catch(() => (mcp = undefined)); // a failed load is tried again by the next call
    const handle = await mcp;
    return handle(req, reply);
  };
  // What is refused before the handler (the body: too large, not JSON, nested too deep) is a
  // JSON-RPC error there too (config.mcp: the error handler's shape).
  for (const path of ['/mcp', '/mcp/v/:name']) {
    app.post(path, { config: { mcp: true } }, mcpHandle);
    app.get(path, { config: { mcp: true } }, mcpHandle);
    app.delete(path, { config: { mcp: true } }, mcpHandle);
  }

  app.get('/healthz', () => ({ status: 'ok' }));
  // Ready: not draining and the ledger can be written. An unwritable ledger is 503 when the
  // gateway refuses requests then (ledger_when_unwritable: refuse), else 200 "degraded".
  app.get('/readyz', (_req, reply) => {
    if (gw.draining) return reply.code(503).send({ status: 'draining' });
    const eps = [...gw.runtime.endpoints.values()];
    const ledger = gw.ledger.state();
    const body = {
      status: ledger.writable ? 'ready' : ledger.mode === 'refuse' ? 'ledger_unwritable' : 'degraded',
      config_version: gw.snapshot.version,
      endpoints: { total: eps.length, up: eps.filter((e) => e.healthy).length },
      ledger: { writable: ledger.writable, pending: ledger.pending, dropped: ledger.dropped, last_error: ledger.last_error },
    };
    return reply.code(gw.ledger.refusing ? 503 : 200).send(body);
  });
  // Metrics show usage per team and model: unless settings.metrics_public, a scraper sends an
  // admin API token (any role; an auditor token is enough) or AIRLOCK_ADMIN_TOKEN as a bearer token.
  app.get('/metrics', async (req, reply) => {
    if (!gw.snapshot.settings.metrics_public) {
      let who;
      try {
        // wrong tokens count against the address, as on the admin plane (a guess here is one there)
        who = gw.auth.bearer(req.headers.authorization, req.socket.remoteAddress);
      } catch (e) {
        const a = e as { message: string; headers: Record<string, string> };
        const g = gatewayError('too_many_attempts', a.message, { headers: a.headers });
        return reply.code(g.status).headers(g.headers).send(g.body());
      }
      if (!who) {
        const g = gatewayError('metrics_token_required', 'GET /metrics needs "Authorization: Bearer <admin API token>" (any role), unless settings.metrics_public is true.', { headers: { 'www-authenticate': 'Bearer' } });
        return reply.code(401).headers(g.headers).send(g.body());
      }
    }
    reply.header('content-type', gw.metrics.registry.contentType);
    return gw.metrics.registry.metrics();
  });
  return app;
}
