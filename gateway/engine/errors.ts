// Errors in OpenAI's shape: {"error":{"message","type","code","param"}} with honest statuses.
// One catalogue of every error code the data plane answers with: its status and type live here,
// not as literals spread over files; README's error list follows it.
export type ErrorType =
  | 'invalid_request_error'
  | 'authentication_error'
  | 'permission_error'
  | 'not_found_error'
  | 'rate_limit_error'
  | 'upstream_error'
  | 'timeout_error'
  | 'server_error';

export const ERRORS = {
  // the request itself
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  empty_body: { status: 400, type: 'invalid_request_error' },
  invalid_body: { status: 400, type: 'invalid_request_error' },
  invalid_content_length: { status: 400, type: 'invalid_request_error' },
  invalid_host: { status: 400, type: 'invalid_request_error' },
  too_deeply_nested: { status: 400, type: 'invalid_request_error' },
  body_too_large: { status: 413, type: 'invalid_request_error' },
  unsupported_media_type: { status: 415, type: 'invalid_request_error' },
  unknown_route: { status: 404, type: 'not_found_error' },
  invalid_path: { status: 400, type: 'invalid_request_error' },
  path_too_long: { status: 414, type: 'invalid_request_error' },
  // who is asking
  missing_api_key: { status: 401, type: 'authentication_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  key_disabled: { status: 401, type: 'authentication_error' },
  key_expired: { status: 401, type: 'authentication_error' },
  metrics_token_required: { status: 401, type: 'authentication_error' },
  too_many_attempts: { status: 429, type: 'rate_limit_error' },
  model_not_allowed: { status: 403, type: 'permission_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  response_not_found: { status: 404, type: 'not_found_error' },
  // policy (guardrails, governance)
  guardrail_blocked: { status: 400, type: 'invalid_request_error' },
  guard_failed: { status: 500, type: 'server_error' },
  budget_exceeded: { status: 429, type: 'rate_limit_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  capacity_timeout: { status: 503, type: 'server_error' },
  // upstreams
  upstream_rejected: { status: 400, type: 'invalid_request_error' },
  upstream_failed: { status: 502, type: 'upstream_error' },
  upstream_rate_limited: { status: 429, type: 'rate_limit_error' },
  upstream_timeout: { status: 504, type: 'timeout_error' },
  stream_interrupted: { status: 502, type: 'upstream_error' },
  no_available_target: { status: 503, type: 'server_error' },
  // the gateway
  ledger_unavailable: { status: 503, type: 'server_error' },
  audit_unavailable: { status: 503, type: 'server_error' },
  client_closed: { status: 499, type: 'invalid_request_error' },
  internal_error: { status: 500, type: 'server_error' },
} as const satisfies Record<string, { status: number; type: ErrorType }>;

export type ErrorCode = keyof typeof ERRORS;

export class GatewayError extends Error {
  constructor(
    readonly status: number,
    readonly type: ErrorType,
    readonly code: string,
    message: string,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; code: string; param: string | null } } {
    return { error: { message: this.message, type: this.type, code: this.code, param: this.param } };
  }
}

/** An error from the catalogue; `status`/`type` override it where the code's meaning allows
 * several (an upstream's own 4xx passed through as upstream_rejected keeps its status). */
export function gatewayError(
  code: ErrorCode,
  message: string,
  o: { param?: string | null; headers?: Record<string, string>; status?: number; type?: ErrorType } = {},
): GatewayError {
  const e = ERRORS[code];
  return new GatewayError(o.status ?? e.status, o.type ?? e.type, code, message, o.param ?? null, o.headers ?? {});
}

export const badRequest = (message: string, param: string | null = null, code: ErrorCode = 'invalid_request') => gatewayError(code, message, { param });

export const clientClosed = () => gatewayError('client_closed', 'client closed the request');
