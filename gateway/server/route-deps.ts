// What an admin route module needs from the admin plane (gateway/server/admin-plane.ts builds
// it once): the API prefix, the body parser that turns zod issues into field errors, the error
// constructor, who is calling (principal and the audit actor name). Every register*Routes
// function takes (app, gw, deps: RouteDeps).
import type { FastifyRequest } from 'fastify';
import type { z } from 'zod';
import type { ConfigIssue } from '../config/schema.js';
import type { Principal } from './admin-auth.js';

export interface RouteDeps {
  /** '/admin/api/v1' */
  API: string;
  /** Parse a JSON object body with a zod schema; a bad body is a 400 naming each field. */
  parseBody: <T>(schema: z.ZodType<T>, body: unknown) => T;
  /** The admin plane's error (status, code, message, the fields at fault). */
  error: (status: number, code: string, message: string, issues?: ConfigIssue[]) => Error;
  /** The signed-in admin or token of a request (set by the access hook). */
  principalOf: (req: FastifyRequest) => Principal | undefined;
  /** The request's actor as the audit log names it (e.g. user:alice). */
  actorOf: (req: FastifyRequest) => string;
}
