// Serves the built admin app (renderer/dist) on the admin plane: files as they are, every other
// non-API GET answered with index.html (the app routes in the browser), a strict CSP on HTML.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fastifyStatic from '@fastify/static';

export const ADMIN_APP_CSP =
  "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const API_PREFIX = '/admin/api/';

/** renderer/dist of this checkout (from dist/gateway/server/ or gateway/server/). */
export function defaultAdminAppDir(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const candidates = [path.resolve(here, '../../../renderer/dist'), path.resolve(here, '../../renderer/dist')];
  return candidates.find((d) => fs.existsSync(path.join(d, 'index.html'))) ?? candidates[0]!;
}

const NOT_BUILT = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Airlock admin app not built</title>
<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:4rem auto;padding:0 1rem;line-height:1.5;color:#1b2330}code{background:#eef1f5;padding:.1em .35em;border-radius:4px}</style>
</head><body><h1>The admin app is not built</h1>
<p>This gateway is running and its admin API answers under <code>/admin/api/v1</code>, but the admin app's files were not found.</p>
<p>Build them from the repository root with <code>npm run build</code> (or <code>npm run build:renderer</code>), then reload this page.</p>
</body></html>
`;

function htmlHeaders(reply: FastifyReply): FastifyReply {
  return reply
    .header('content-security-policy', ADMIN_APP_CSP)
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cache-control', 'no-store');
}

function isFile(p: string): boolean {
  try {
    return fs.statSync(p).isFile();
  } catch {
    return false;
  }
}

/**
 * Register the admin app on the admin plane. Call after the API routes and the not-found
 * handler are set up: unknown /admin/api/ paths still go to that handler.
 */
export function registerAdminApp(app: FastifyInstance, distDir: string = defaultAdminAppDir()): void {
  const root = path.resolve(distDir);
  // Only the reply.sendFile decorator: routing stays ours (SPA fallback, API paths excluded).
  void app.register(fastifyStatic, { root, serve: false });

  const handler = async (req: FastifyRequest, reply: FastifyReply) => {
    let urlPath: string;
    try {
      urlPath = decodeURIComponent(req.url.split('?')[0]!);
    } catch {
      return reply.code(400).type('text/plain; charset=utf-8').send('Malformed URL.');
    }
    const lower = urlPath.toLowerCase(); // the router matches paths case-insensitively
    if (lower.startsWith(API_PREFIX) || lower === '/admin/api') return reply.callNotFound();
    if (!isFile(path.join(root, 'index.html'))) return htmlHeaders(reply).code(503).type('text/html; charset=utf-8').send(NOT_BUILT);

    const rel = path.posix.normalize(urlPath).replace(/^\/+/, '');
    if (rel && !rel.includes('\0') && !rel.split('/').some((s) => s.startsWith('.'))) {
      const abs = path.resolve(root, rel);
      if (abs.startsWith(root + path.sep) && isFile(abs)) {
        if (rel === 'index.html') return htmlHeaders(reply).sendFile('index.html', { cacheControl: false });
        // Vite names built assets by content hash: they never change.
        if (rel.startsWith('assets/')) reply.header('cache-control', 'public, max-age=31536000, immutable');
        return reply.sendFile(rel, { cacheControl: false });
      }
    }
    // A missing file (an extension or under assets/) is a 404, not the app.
    if (rel.startsWith('assets/') || /\.[A-Za-z0-9]{1,8}$/.test(rel)) return reply.callNotFound();
    return htmlHeaders(reply).sendFile('index.html', { cacheControl: false });
  };
  // The app's files are public (it shows a login screen); the API routes declare their own access.
  app.get('/', { config: { access: 'public' } }, handler);
  app.get('/*', { config: { access: 'public' } }, handler);
}
