// The data plane: the OpenAI-compatible API for apps, health and metrics.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { GatewayError } from '../engine/errors.js';
import { newRequestId } from '../engine/request-id.js';
import { authenticate } from '../engine/stages.js';
import type { Kind } from '../engine/stages.js';
import type { Gateway } from './gateway.js';
import { planeServer } from './http-server.js';

const ROUTES: [string, Kind][] = [
  ['/v1/chat/completions', 'chat'],
  ['/v1/completions', 'completions'],
  ['/v1/embeddings', 'embeddings'],
];

const ROUTE_KIND = new Map(ROUTES);
type RequestWithId = { airlockId?: string };

/** A valid incoming x-request-id is reused; otherwise a new one. */
export function requestId(headers: Record<string, string | string[] | undefined>): string {
  const incoming = headers['x-request-id'];
  return typeof incoming === 'string' && /^[\w.:-]{1,128}$/.test(incoming) ? incoming : newRequestId();
}

export function openAIError(err: FastifyError | Error, bodyLimit?: number): GatewayError {
  if (err instanceof GatewayError) return err;
  const e = err as FastifyError;
  switch (e.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new GatewayError(413, 'invalid_request_error', 'body_too_large', `The request body is larger than the limit of ${bodyLimit ?? e.message.match(/\d+/)?.[0] ?? 'the configured'} bytes.`);
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new GatewayError(400, 'invalid_request_error', 'empty_body', 'The request body is empty; send a JSON object.');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new GatewayError(415, 'invalid_request_error', 'unsupported_media_type', `Unsupported content-type; send "application/json".`);
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new GatewayError(400, 'invalid_request_error', 'invalid_content_length', 'The content-length header does not match the body.');
  }
  if (e instanceof SyntaxError || e.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || /JSON/.test(e.message) && e.statusCode === 400)
    return new GatewayError(400, 'invalid_request_error', 'invalid_json', `The request body is not valid JSON: ${e.message}`);
  const status = e.statusCode && e.statusCode >= 400 && e.statusCode < 600 ? e.statusCode : 500;
  return new GatewayError(status, status < 500 ? 'invalid_request_error' : 'server_error', e.code ?? 'error', e.message);
}

export function buildDataPlane(gw: Gateway): FastifyInstance {
  const app = Fastify({
    logger: false,
    bodyLimit: gw.snapshot.settings.max_body_bytes,
    return503OnClosing: true,
    serverFactory: planeServer(gw, 'data'),
  });

  // Every response carries a request id; the proxy routes set their own (the ledger's) on the raw response.
  app.addHook('onRequest', (req, reply, done) => {
    const id = requestId(req.headers);
    (req as RequestWithId).airlockId = id;
    reply.header('x-airlock-request-id', id);
    done();
  });
  app.setErrorHandler((err, req, reply) => {
    const g = openAIError(err as Error, app.initialConfig.bodyLimit);
    // A request refused before the pipeline (bad JSON, too large) still gets its ledger row.
    const kind = ROUTE_KIND.get(req.routeOptions.url ?? '');
    if (kind) gw.proxy.recordRejected(kind, (req as RequestWithId).airlockId ?? requestId(req.headers), req.headers, g);
    reply.code(g.status).headers(g.headers).send(g.body());
  });
  app.setNotFoundHandler((req, reply) => {
    reply.code(404).send(new GatewayError(404, 'not_found_error', 'unknown_route', `No route ${req.method} ${req.url.split('?')[0]} on the data plane.`).body());
  });

  for (const [path, kind] of ROUTES) {
    app.post(path, (req, reply) => {
      reply.hijack();
      return gw.proxy.handle(kind, (req as RequestWithId).airlockId ?? requestId(req.headers), req.body, req.headers, reply.raw);
    });
  }

  app.get('/v1/models', (req, reply) => {
    const s = gw.snapshot;
    let key;
    try {
      key = authenticate(s, gw.secrets, req.headers);
    } catch (e) {
      const g = e as GatewayError;
      return reply.code(g.status).send(g.body());
    }
    const created = Math.floor(gw.startedAt / 1000);
    const names = [...s.models.keys(), ...s.virtualModels].filter((n) => !key.models || key.models.has(n));
    return { object: 'list', data: names.map((id) => ({ id, object: 'model', created, owned_by: 'airlock' })) };
  });

  app.get('/healthz', () => ({ status: 'ok' }));
  app.get('/readyz', (_req, reply) => {
    if (gw.draining) return reply.code(503).send({ status: 'draining' });
    const eps = [...gw.runtime.endpoints.values()];
    return {
      status: 'ready',
      config_version: gw.snapshot.version,
      endpoints: { total: eps.length, up: eps.filter((e) => e.healthy).length },
    };
  });
  app.get('/metrics', async (_req, reply) => {
    reply.header('content-type', gw.metrics.registry.contentType);
    return gw.metrics.registry.metrics();
  });
  return app;
}
