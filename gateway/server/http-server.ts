// The Node servers behind both planes, built here rather than by Fastify so that every limit on
// what a client may hold comes from settings.http, and so that a plane can serve HTTPS with the
// certificate from settings.tls:
//
// - headersTimeout / requestTimeout: time to RECEIVE the request (headers; headers and body).
//   Node stops timing a request once it has been received, so a long streamed answer is not
//   limited. A client that is too slow gets a 408 and its connection is closed.
// - connectionsCheckingInterval: how often Node looks for requests past those timeouts. Its
//   default (30 s) would let a 1 s timeout fire up to 30 s late, so it follows the timeouts.
// - keepAliveTimeout, maxRequestsPerSocket: idle and reuse limits of keep-alive connections.
// - maxConnections: connections beyond it are closed as soon as they are accepted.
// - TLS: the handshake must finish within the headers timeout (Node's default is 120 s).
import fs from 'node:fs';
import http from 'node:http';
import type net from 'node:net';
import https from 'node:https';
import tls from 'node:tls';
import { X509Certificate, createPrivateKey, type KeyObject } from 'node:crypto';
import type { FastifyServerFactory } from 'fastify';
import type { HttpSettings, TlsSettings } from '../config/schema.js';
import { StartupError } from '../store/db.js';
import type { Gateway } from './gateway.js';
import type { TlsInfo } from '../wire.js';

export type { TlsInfo };

export type Plane = 'data' | 'admin';

export interface LoadedTls {
  cert: Buffer;
  key: Buffer;
  info: TlsInfo;
}

function describeReadError(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied (it must be readable by the user Airlock runs as)';
  if (code === 'EISDIR') return 'it is a directory';
  return (e as Error).message;
}

function readPem(what: 'cert_file' | 'key_file', file: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw new StartupError(`settings.tls.${what} ${file} cannot be read: ${describeReadError(e)}`);
  }
}

/** One line for a distinguished name ("CN=a\nO=b" → "CN=a, O=b"). */
const oneLine = (dn: string) => dn.split('\n').filter(Boolean).join(', ');

/**
 * Read and check the certificate and key named in settings.tls. Every problem is a StartupError
 * naming the file: missing or unreadable, not PEM, an encrypted key, a key that does not belong
 * to the certificate, or a pair OpenSSL refuses.
 */
export function loadTls(s: TlsSettings, now = Date.now()): LoadedTls {
  const cert = readPem('cert_file', s.cert_file);
  const key = readPem('key_file', s.key_file);
  if (!/-----BEGIN CERTIFICATE-----/.test(cert.toString('latin1')))
    throw new StartupError(`settings.tls.cert_file ${s.cert_file} is not a PEM certificate (no "-----BEGIN CERTIFICATE-----" block)`);
  let x509: X509Certificate;
  try {
    x509 = new X509Certificate(cert);
  } catch (e) {
    throw new StartupError(`settings.tls.cert_file ${s.cert_file} is not a valid PEM certificate: ${(e as Error).message}`);
  }
  let keyObject: KeyObject;
  try {
    keyObject = createPrivateKey(key);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // OpenSSL 3 reports a key it could not decrypt without a passphrase as "interrupted or cancelled"
    const encrypted = code === 'ERR_MISSING_PASSPHRASE' || /-----BEGIN (ENCRYPTED PRIVATE KEY|[A-Z ]*PRIVATE KEY-----[\s\S]*Proc-Type: 4,ENCRYPTED)/.test(key.toString('latin1'));
    throw new StartupError(
      encrypted
        ? `settings.tls.key_file ${s.key_file} is encrypted; Airlock needs an unencrypted key (e.g. openssl pkey -in KEY -out ${s.key_file}) readable by its user only`
        : `settings.tls.key_file ${s.key_file} is not a PEM private key`,
    );
  }
  if (!x509.checkPrivateKey(keyObject))
    throw new StartupError(`settings.tls.key_file ${s.key_file} is not the key of the certificate in ${s.cert_file} (they do not match)`);
  try {
    tls.createSecureContext({ cert, key });
  } catch (e) {
    throw new StartupError(`settings.tls.cert_file ${s.cert_file} with key_file ${s.key_file} cannot be used: ${(e as Error).message}`);
  }
  const validTo = new Date(x509.validTo);
  return {
    cert,
    key,
    info: {
      cert_file: s.cert_file,
      key_file: s.key_file,
      data_plane: s.data_plane,
      admin_plane: s.admin_plane,
      fingerprint_sha256: x509.fingerprint256,
      subject: oneLine(x509.subject),
      issuer: oneLine(x509.issuer),
      subject_alt_names: x509.subjectAltName ?? null,
      valid_from: new Date(x509.validFrom).toISOString(),
      valid_to: validTo.toISOString(),
      expired: validTo.getTime() < now,
    },
  };
}

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
  /** serve HTTPS with this certificate */
  tls?: LoadedTls;
}

/** The Node server of one plane, with the limits of settings.http (and TLS when given). */
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
  const server: http.Server = o.tls
    ? https.createServer({ ...options, cert: o.tls.cert, key: o.tls.key, handshakeTimeout: headersTimeout }, handler)
    : http.createServer(options, handler);
  server.keepAliveTimeout = h.keep_alive_timeout_ms;
  if (h.max_requests_per_socket > 0) server.maxRequestsPerSocket = h.max_requests_per_socket;
  server.maxConnections = o.plane === 'data' ? h.max_connections : h.admin_max_connections;
  // A timeout on the socket itself would cut long streams: only the request timeouts above apply.
  server.timeout = 0;
  // Connections that have not sent a whole request yet: closeIdleConnections() leaves them alone, so a
  // shutdown would wait for them until the grace deadline (closeUnusedConnections closes them).
  const unused = new Set<net.Socket>();
  server.on(o.tls ? 'secureConnection' : 'connection', (s: net.Socket) => {
    unused.add(s);
    s.once('close', () => unused.delete(s));
  });
  // (not the socket's 'data' events: Node's parser reads the socket directly, and they never fire)
  server.on('request', (req: http.IncomingMessage) => unused.delete(req.socket));
  UNUSED.set(server, unused);
  return server;
}

const UNUSED = new WeakMap<http.Server, Set<net.Socket>>();

/** Close the connections that never sent anything (on shutdown, with closeIdleConnections). */
export function closeUnusedConnections(server: http.Server): void {
  for (const s of UNUSED.get(server) ?? []) s.destroy();
}

/** Fastify's serverFactory for a plane of this gateway (settings as of the start; TLS as loaded by start()). */
export function planeServer(gw: Gateway, plane: Plane): FastifyServerFactory {
  return (handler) => {
    const t = gw.tls;
    const useTls = t && (plane === 'data' ? t.info.data_plane : t.info.admin_plane);
    return createPlaneServer(handler, { http: gw.snapshot.settings.http, plane, tls: useTls ? t : undefined });
  };
}
