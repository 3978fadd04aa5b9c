// Tool names the agent sees, and the permission patterns that decide which it sees.
// Every upstream tool is exposed as `server__tool` (always prefixed: adding a server never renames
// another's tools), within ^[A-Za-z0-9_-]{1,64}$ as model APIs require: a tool name with other
// characters, or too long, is shortened deterministically (its allowed characters, then "_" and 8
// hex digits of the original name's SHA-256), so the same upstream tool always gets the same name.
import { createHash } from 'node:crypto';

export const SEPARATOR = '__';
export const EXPOSED_NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;

export function exposedName(server: string, tool: string): string {
  const plain = `${server}${SEPARATOR}${tool}`;
  if (EXPOSED_NAME_RE.test(plain)) return plain;
  const hash = createHash('sha256').update(tool).digest('hex').slice(0, 8);
  const room = 64 - server.length - SEPARATOR.length - 9;
  const safe = tool.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, Math.max(0, room));
  return `${server}${SEPARATOR}${safe}_${hash}`;
}

export { compilePattern } from '../../config/schema.js';

export interface Permissions {
  readonly allow: readonly RegExp[];
  readonly deny: readonly RegExp[];
  /** a virtual server (/mcp/v/NAME) the agent is connected through: it must allow the tool too */
  readonly within?: Permissions;
}

/** Default deny; a matching deny pattern wins over any allow; within a virtual server, both decide. */
export function permitted(p: Permissions, exposed: string): boolean {
  for (const d of p.deny) if (d.test(exposed)) return false;
  if (p.within && !permitted(p.within, exposed)) return false;
  for (const a of p.allow) if (a.test(exposed)) return true;
  return false;
}

/** What an agent may do with resources: patterns matched against a server's name (all of its
 * resources) or against `server__uri`. */
export interface ResourcePermissions {
  readonly resources: readonly RegExp[];
  readonly resourcesDeny?: readonly RegExp[];
  /** connected through a virtual server: the resources it offers */
  readonly withinResources?: readonly RegExp[];
}

/** Default deny; a deny pattern wins; within a virtual server, both decide. A resource template
 * is checked the same way by its URI template (listing); reading checks the actual URI. */
export function resourcePermitted(p: ResourcePermissions, server: string, uri: string): boolean {
  const name = `${server}${SEPARATOR}${uri}`;
  const matches = (r: RegExp) => r.test(server) || r.test(name);
  if (p.resourcesDeny?.some(matches)) return false;
  if (p.withinResources && !p.withinResources.some(matches)) return false;
  return p.resources.some(matches);
}
