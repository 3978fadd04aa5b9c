// Where the admin window may go. Navigation and new windows stay on the admin origin; a link
// elsewhere opens in the system browser only when it is http(s) to a host on the allowlist.
// Everything else (javascript:, file:, data:, custom schemes, credentials in the URL) is refused.

function parse(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}

/** True when `url` is on exactly the admin origin (scheme, host and port). */
export function isAdminOrigin(url: string, adminOrigin: string | null): boolean {
  if (!adminOrigin) return false;
  const u = parse(url);
  if (!u || (u.protocol !== 'http:' && u.protocol !== 'https:')) return false;
  return u.origin === adminOrigin;
}

interface HostPattern {
  hostname: string; // lower case; for a wildcard, the parent domain
  port: string | null; // null: any port
  wildcard: boolean; // "*.example.org": any subdomain of example.org, not example.org itself
}

/**
 * Parse an allowlist entry: a host name ("docs.example.org"), a host with a port
 * ("10.0.0.5:8000", "[::1]:8080"), or a wildcard for subdomains ("*.example.org").
 * Returns null when the entry is not one of these (schemes, paths and user info are refused).
 */
export function parseHostPattern(entry: string): HostPattern | null {
  const e = entry.trim().toLowerCase();
  if (!e || e.length > 260 || /[/?#@\\\s]/.test(e)) return null;
  const wildcard = e.startsWith('*.');
  const rest = wildcard ? e.slice(2) : e;
  if (rest.includes('*')) return null;
  const u = parse(`http://${rest}/`);
  if (!u || !u.hostname) return null;
  const explicitPort = /:(\d{1,5})$/.exec(rest)?.[1] ?? null;
  if (wildcard && explicitPort) return null;
  return { hostname: u.hostname, port: explicitPort === null ? null : String(Number(explicitPort)), wildcard };
}

/**
 * True when `url` may be opened in the system browser: http or https, no user info, and the host
 * (with its port, when the entry names one) matches an allowlist entry.
 */
export function isAllowedExternal(url: string, allowedHosts: readonly string[]): boolean {
  const u = parse(url);
  if (!u) return false;
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return false;
  if (u.username || u.password) return false;
  const host = u.hostname.toLowerCase();
  const port = u.port || (u.protocol === 'https:' ? '443' : '80');
  for (const raw of allowedHosts) {
    const p = parseHostPattern(raw);
    if (!p) continue;
    if (p.wildcard) {
      if (host.endsWith(`.${p.hostname}`)) return true;
    } else if (host === p.hostname && (p.port === null || p.port === port)) {
      return true;
    }
  }
  return false;
}

export type NavigationDecision = 'allow' | 'open-external' | 'deny';

/** What to do when the window tries to navigate (will-navigate) or open a window (setWindowOpenHandler). */
export function decideNavigation(url: string, adminOrigin: string | null, allowedHosts: readonly string[]): NavigationDecision {
  if (isAdminOrigin(url, adminOrigin)) return 'allow';
  if (isAllowedExternal(url, allowedHosts)) return 'open-external';
  return 'deny';
}

/**
 * Session permission policy of the admin window: everything is refused (camera, microphone,
 * notifications, geolocation, clipboard reading, devices, ...) except writing to the clipboard
 * from the admin origin, which the "copy" buttons (a new key is shown once) need.
 */
export function isPermissionAllowed(permission: string, requestingUrl: string, adminOrigin: string | null): boolean {
  return permission === 'clipboard-sanitized-write' && isAdminOrigin(requestingUrl, adminOrigin);
}
