// The admin API client: same-origin fetch with the session cookie, the CSRF header on every
// change, and errors in the API's shape turned into ApiError (with per-field issues).
import type { z } from 'zod';
import { fromZod, formatPath } from '../../gateway/config/schema';

export const API = '/admin/api/v1';

export interface ApiIssue {
  /** a formatted path, e.g. "base_url" or "targets[0].endpoint" */
  path: string;
  message: string;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: ApiIssue[] = [],
    readonly retryAfterSeconds?: number,
  ) {
    super(message);
  }
}

let csrfToken: string | null = null;
export function setCsrfToken(t: string | null): void {
  csrfToken = t;
}

/** The headers a state-changing request the app makes itself (not through api()) needs. */
export function csrfHeaders(): Record<string, string> {
  return csrfToken ? { 'x-csrf-token': csrfToken } : {};
}

let unauthorizedHandler: (() => void) | undefined;
/** Called when an API call answers 401 (the session expired or was revoked). */
export function onUnauthorized(fn: (() => void) | undefined): void {
  unauthorizedHandler = fn;
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  // a Blob (an upload) is sent as it is, with its own type; anything else as JSON
  const blob = body instanceof Blob ? body : undefined;
  if (body !== undefined) headers['content-type'] = blob ? blob.type : 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: blob ?? (body === undefined ? undefined : JSON.stringify(body)),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, 'network_error', 'The gateway did not answer. Check that it is running, then try again.');
  }
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  if (!res.ok) {
    const e = (json as { error?: { message?: string; code?: string; issues?: ApiIssue[] } } | undefined)?.error;
    const ra = Number(res.headers.get('retry-after'));
    const err = new ApiError(
      res.status,
      e?.code ?? `http_${res.status}`,
      e?.message ?? `The gateway answered ${res.status} ${res.statusText}.`,
      Array.isArray(e?.issues) ? e.issues : [],
      Number.isFinite(ra) && ra > 0 ? ra : undefined,
    );
    if (res.status === 401 && !path.startsWith('/auth/')) unauthorizedHandler?.();
    throw err;
  }
  return json as T;
}

export const get = <T>(path: string, signal?: AbortSignal) => api<T>('GET', path, undefined, signal);

export const enc = encodeURIComponent;

// ---- validation with the shared schemas ----

/** Field errors keyed by formatted path ("base_url", "targets[0].model", "(root)"). */
export type FieldErrors = Record<string, string>;

export function validate<T>(schema: z.ZodType<T>, value: unknown): { ok: true; data: T } | { ok: false; errors: FieldErrors } {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, data: r.data };
  const errors: FieldErrors = {};
  for (const i of fromZod(r.error, schema)) {
    const k = formatPath(i.path);
    errors[k] ??= i.message;
  }
  return { ok: false, errors };
}

/** Field errors from an API error (400 validation_failed carries issues with paths). */
export function apiFieldErrors(e: unknown, stripPrefix?: RegExp): FieldErrors {
  const out: FieldErrors = {};
  if (e instanceof ApiError) {
    for (const i of e.issues) {
      const k = stripPrefix ? i.path.replace(stripPrefix, '') : i.path;
      out[k] ??= i.message;
    }
  }
  return out;
}

export function errorMessage(e: unknown): string {
  if (e instanceof ApiError) {
    if (e.status === 403 && e.code === 'forbidden') return `Not allowed: ${e.message}`;
    return e.message;
  }
  return e instanceof Error ? e.message : String(e);
}

// ---- API shapes: the gateway's own wire types (type-only: nothing of the gateway is bundled) ----

export type {
  AdminUser,
  AgentView,
  ApiToken,
  CreatedAgentView,
  McpServerDetail,
  McpServerView,
  McpTestResult,
  AuthState,
  BudgetStatus,
  BudgetsBody,
  BudgetBurndown,
  CreatedApiToken,
  CreatedKeyView,
  EndpointStatus,
  EndpointView,
  GuardrailEventRow,
  GuardrailHitSeries,
  GuardrailTestResult,
  HealthBody,
  KeyView,
  LedgerState,
  ListBody,
  ListenConfig,
  ListenOrigin,
  ModelView,
  ProbeResult,
  PromptLogEntryView,
  RequestRow,
  RequestsPage,
  Role,
  SessionBody,
  SessionSummary,
  SessionsBody,
  SessionUser,
  StatusBody,
  TargetStatus,
  TeamView,
  Timeseries,
  TimeseriesPoint,
  TlsInfo,
  Trace,
  TraceSpan,
  TracesBody,
  UsageBody,
  UsageRow,
  RestartInfo,
} from '../../gateway/wire';
