// The Node servers behind both planes, built here rather than by Fastify so that every limit on
// what a client may hold comes from settings.http:
//
// - headersTimeout / requestTimeout: time to RECEIVE the request (headers; headers and body).
//   Node stops timing a request once it has been received, so a long streamed answer is not
//   limited. A client that is too slow gets a 408 and its connection is closed.
// - connectionsCheckingInterval: how often Node looks for requests past those timeouts. Its
//   default (30 s) would let a 1 s timeout fire up to 30 s late, so it follows the timeouts.
// - keepAliveTimeout, maxRequestsPerSocket: idle and reuse limits of keep-alive connections.
// - maxConnections: connections beyond it are closed as soon as they are accepted.
import http from 'node:http';
import type { FastifyServerFactory } from 'fastify';
import type { HttpSettings } from '../config/schema.js';
import type { Gateway } from './gateway.js';

export type Plane = 'data' | 'admin';

/**
 * How often Node checks for requests past headersTimeout/requestTimeout: a quarter of the
 * shorter one, between 50 ms and 1 s, so a timeout fires at most that late.
 */
export function checkingInterval(headersTimeoutMs: number, requestTimeoutMs: number): number {
  return Math.max(50, Math.min(1000, Math.floor(Math.min(headersTimeoutMs, requestTimeoutMs) / 4)));
}

export interface PlaneServerOptions {
  http: HttpSettings;
  plane: Plane;
}

/** The Node server of one plane, with the limits of settings.http. */
export function createPlaneServer(handler: http.RequestListener, o: PlaneServerOptions): http.Server {
  const h = o.http;
  const requestTimeout = h.request_timeout_ms;
  // Node refuses a headers timeout longer than the request timeout; the headers are part of the request.
  const headersTimeout = Math.min(h.headers_timeout_ms, requestTimeout);
  const options: http.ServerOptions = {
    headersTimeout,
    requestTimeout,
    connectionsCheckingInterval: checkingInterval(headersTimeout, requestTimeout),
    keepAliveTimeout: h.keep_alive_timeout_ms,
  };
  const server = http.createServer(options, handler);
  server.keepAliveTimeout = h.keep_alive_timeout_ms;
  if (h.max_requests_per_socket > 0) server.maxRequestsPerSocket = h.max_requests_per_socket;
  server.maxConnections = o.plane === 'data' ? h.max_connections : h.admin_max_connections;
  // A timeout on the socket itself would cut long streams: only the request timeouts above apply.
  server.timeout = 0;
  return server;
}

/** Fastify's serverFactory for a plane of this gateway (settings as of the start). */
export function planeServer(gw: Gateway, plane: Plane): FastifyServerFactory {
  return (handler) => createPlaneServer(handler as http.RequestListener, { http: gw.snapshot.settings.http, plane });
}
