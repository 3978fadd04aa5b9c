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

let unauthorizedHandler: (() => void) | undefined;
/** Called when an API call answers 401 (the session expired or was revoked). */
export function onUnauthorized(fn: (() => void) | undefined): void {
  unauthorizedHandler = fn;
}

export async function api<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && method !== 'HEAD' && csrfToken) headers['x-csrf-token'] = csrfToken;
  let res: Response;
  try {
    res = await fetch(API + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
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
  for (const i of fromZod(r.error)) {
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

// ---- API shapes ----

export type Role = 'owner' | 'admin' | 'auditor';
export interface User {
  name: string;
  role: Role;
}
export interface AuthState {
  setup_required: boolean;
  user: User | null;
  csrf_token: string | null;
}

export interface EndpointStatus {
  healthy: boolean;
  inflight: number;
  last_check_at: string | null;
  last_check_error: string | null;
  discovered_models: string[] | null;
}
export interface EndpointView {
  name: string;
  type: 'openai' | 'ollama';
  base_url: string;
  api_key?: string;
  api_key_set: boolean;
  max_concurrency?: number;
  timeout_ms?: number;
  first_byte_timeout_ms?: number;
  health_check?: { enabled?: boolean; interval_ms?: number; timeout_ms?: number; unhealthy_after?: number };
  status: EndpointStatus | null;
}
export interface TargetStatus {
  id: string;
  endpoint: string;
  model: string;
  breaker: 'closed' | 'open' | 'half-open' | string;
  consecutive_failures: number;
  retry_at: string | null;
  last_error: string | null;
  ttfb_ewma_ms: number | null;
  inflight: number;
}
export interface ModelView {
  name: string;
  strategy: string;
  targets: { endpoint: string; model: string; weight?: number }[];
  price?: { input_per_million: number; output_per_million: number };
  max_attempts?: number;
  targets_status: TargetStatus[];
}
export interface TeamView {
  name: string;
  description?: string;
}
export interface KeyView {
  name: string;
  prefix?: string;
  team?: string;
  app?: string;
  models?: string[];
  disabled?: boolean;
  expires_at?: string;
  created_at?: string;
}
export interface Health {
  endpoints: ({ name: string } & Partial<EndpointStatus>)[];
  targets: (TargetStatus & { alias: string })[];
}
export interface ProbeResult {
  ok: boolean;
  latency_ms: number;
  models: string[];
  error?: string;
  status?: number;
}
export interface RequestRow {
  request_id: string;
  ts: number;
  time: string;
  kind: string;
  key_name: string | null;
  team: string | null;
  app: string | null;
  user: string | null;
  session: string | null;
  requested_model: string | null;
  alias: string | null;
  endpoint: string | null;
  upstream_model: string | null;
  stream: boolean;
  prompt_tokens: number;
  completion_tokens: number;
  estimated: boolean;
  cost: number;
  ttfb_ms: number | null;
  latency_ms: number;
  status: number;
  attempts: number;
  error_class: string | null;
}
export interface UsageRow {
  group: string | null;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  estimated_requests: number;
  cost: number;
  avg_latency_ms: number;
}
export interface TimeseriesPoint {
  /** bucket start, ms */
  t: number;
  requests: number;
  errors: number;
  prompt_tokens: number;
  completion_tokens: number;
  cost: number;
  p50_ms: number | null;
  p99_ms: number | null;
}
export interface Timeseries {
  from: number;
  to: number;
  bucket_ms: number;
  data: TimeseriesPoint[];
  totals?: Omit<TimeseriesPoint, 't'>;
}
export type ListenOrigin = 'flag' | 'env' | 'settings' | 'default';
export interface ListenSettings {
  data_host: string;
  data_port: number;
  admin_host: string;
  admin_port: number;
}
export interface Status {
  version: string;
  started_at: string;
  config_version: number;
  data_dir: string;
  ledger?: { written: number; pending: number };
  // listen addresses: not every gateway version reports them
  listen?: { data?: string; admin?: string; host?: string; admin_host?: string };
  /** what the planes were asked to listen on at start */
  listen_config?: ListenSettings;
  /** where each of those values came from */
  listen_source?: Record<keyof ListenSettings, ListenOrigin> | null;
  /** AIRLOCK_ADMIN_HOSTNAMES */
  admin_hostnames?: string[];
  /** settings.tls as loaded at start; null: plain HTTP on both planes (absent: a gateway version without TLS) */
  tls?: TlsStatus | null;
  data_url?: string;
  admin_url?: string;
}
export interface TlsStatus {
  cert_file: string;
  key_file: string;
  data_plane: boolean;
  admin_plane: boolean;
  /** AB:CD:… as `openssl x509 -fingerprint -sha256` prints it */
  fingerprint_sha256: string;
  subject: string;
  issuer: string;
  subject_alt_names: string | null;
  valid_from: string;
  valid_to: string;
  expired: boolean;
}
export interface AdminUser {
  name: string;
  role: Role;
  created_at: string;
  disabled: boolean;
  locked_until: string | null;
}
export interface ApiToken {
  name: string;
  role: Role;
  prefix: string;
  created_at: string;
  last_used_at: string | null;
  created_by: string;
}
