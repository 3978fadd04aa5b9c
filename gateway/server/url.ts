// One spelling per path, before routing: both planes route (and so authorise) the canonical
// form of a request target, whatever spelling the client used. Percent-encoded characters are
// decoded by the router itself; here dot segments (also when encoded as %2e), repeated slashes,
// backslashes and encoded slashes (no name may contain a slash) are resolved. Case and a trailing slash are handled by the router options
// (ROUTER_OPTIONS). Authorisation never looks at the URL string: it reads the role declared on
// the route the router matched.

/** find-my-way options shared by both planes. */
export const ROUTER_OPTIONS = {
  caseSensitive: false,
  ignoreTrailingSlash: true,
  ignoreDuplicateSlashes: true,
} as const;

const DOT_SEGMENT = /(?:^|\/)\.{1,2}(?:\/|$)/;

/** The canonical form of a request target (path and query). An absolute-form target
 * (http://host/path, meant for proxies) routes as its path — the admin plane refuses it before
 * routing; asterisk-form and anything else unparseable is returned unchanged and matches no route. */
export function canonicalUrl(raw: string): string {
  if (raw.charCodeAt(0) !== 47 /* / */) {
    if (!/^https?:\/\//i.test(raw)) return raw;
    try {
      const u = new URL(raw);
      return canonicalUrl(u.pathname + u.search);
    } catch {
      return raw;
    }
  }
  const q = raw.indexOf('?');
  const path = q < 0 ? raw : raw.slice(0, q);
  // the common case costs one scan
  if (!/%2e|\\|\/\/|\/\.|%5c|%2f/i.test(path)) return raw;
  let p = path.replace(/%2e/gi, '.').replace(/\\|%5c|%2f/gi, '/');
  p = p.replace(/\/{2,}/g, '/');
  if (DOT_SEGMENT.test(p)) {
    const out: string[] = [];
    for (const seg of p.split('/').slice(1)) {
      if (seg === '.') continue;
      if (seg === '..') out.pop();
      else out.push(seg);
    }
    // "/a/b/.." is "/a/" (RFC 3986 5.2.4); the router ignores the trailing slash
    const last = p.split('/').pop();
    p = '/' + out.join('/') + (last === '.' || last === '..' ? '/' : '');
    p = p.replace(/\/{2,}/g, '/');
  }
  return q < 0 ? p : p + raw.slice(q);
}

/** What the router could not read in a request target (Fastify's frameworkErrors): a malformed
 * percent-encoding (`/v1/%ZZ`), or a path parameter longer than the router takes. Each plane
 * answers it in its own error shape; the path is quoted (shortened) so the client sees which. */
export function unroutableTarget(err: { code?: string }, url: string): { status: 400 | 414; code: 'invalid_path' | 'path_too_long'; message: string } {
  const path = url.split('?')[0] ?? '';
  const shown = JSON.stringify(path.length > 200 ? path.slice(0, 200) + '…' : path);
  if (err.code === 'FST_ERR_MAX_PARAM_LENGTH') return { status: 414, code: 'path_too_long', message: `A part of the path ${shown} is longer than the router accepts.` };
  return {
    status: 400,
    code: 'invalid_path',
    message: `The path ${shown} has a malformed percent-encoding: every "%" must be followed by two hexadecimal digits that encode UTF-8 (a literal "%" is "%25").`,
  };
}
