// Content-Security-Policy of the admin window. The shell adds it to every response the window
// loads, on top of the one the admin plane sends (gateway/server/static.ts); the browser
// enforces both, so this one must not be stricter where the app needs something (inline style
// attributes, which charts use) and is stricter everywhere else: scripts, fonts, workers and API
// calls from the admin origin only, no inline or eval'd script, no frames, no plugins.

export const ADMIN_CSP_DIRECTIVES: ReadonlyArray<readonly [string, ...string[]]> = [
  ['default-src', "'none'"],
  ['script-src', "'self'"],
  ['style-src', "'self'", "'unsafe-inline'"],
  ['img-src', "'self'", 'data:', 'blob:'],
  ['font-src', "'self'"],
  ['connect-src', "'self'"],
  ['manifest-src', "'self'"],
  ['worker-src', "'self'"],
  ['form-action', "'self'"],
  ['base-uri', "'none'"],
  ['frame-src', "'none'"],
  ['frame-ancestors', "'none'"],
  ['object-src', "'none'"],
];

export function buildCsp(directives: ReadonlyArray<readonly [string, ...string[]]> = ADMIN_CSP_DIRECTIVES): string {
  return directives.map((d) => d.join(' ')).join('; ');
}

export const ADMIN_CSP = buildCsp();

/** For the shell's own pages (starting / error): no script at all, inline styles only. */
export const SHELL_PAGE_CSP = buildCsp([
  ['default-src', "'none'"],
  ['style-src', "'unsafe-inline'"],
  ['img-src', 'data:'],
  ['base-uri', "'none'"],
  ['form-action', "'none'"],
]);

/** Add the CSP to a response's headers (the shape of Electron's onHeadersReceived details). */
export function withCsp(headers: Record<string, string[] | string> | undefined, csp: string = ADMIN_CSP): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [k, v] of Object.entries(headers ?? {})) out[k] = Array.isArray(v) ? v : [v];
  // Keep the server's own policy (both are enforced) and add ours under a distinct key casing.
  const existing = Object.keys(out).find((k) => k.toLowerCase() === 'content-security-policy');
  if (existing) out[existing] = [...out[existing]!, csp];
  else out['Content-Security-Policy'] = [csp];
  return out;
}
