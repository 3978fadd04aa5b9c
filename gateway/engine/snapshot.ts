// The immutable in-memory view of the configuration the request path reads. Rebuilt whole
// after every change and swapped in one assignment, so a request never sees half a change.
import type { TemporaryKeys } from './temporary-keys.js';
import type { StoredState } from '../store/config-store.js';
import type { Secrets } from '../store/secrets.js';
import { StartupError } from '../store/db.js';
import type { HealthCheck, ModelSpec, RuleSpec, Settings, Strategy, TeamSpec } from '../config/schema.js';
import type { BudgetSpec, DowngradeSpec, Priority, RateLimits } from '../config/governance-schema.js';
import type { GuardrailSpec } from '../config/guardrails-schema.js';

export const DEFAULT_TIMEOUT_MS = 600_000;
export const DEFAULT_FIRST_BYTE_TIMEOUT_MS = 30_000;

export interface EndpointConfig {
  readonly name: string;
  readonly type: 'openai' | 'ollama' | 'anthropic';
  readonly baseUrl: string;
  /** origin (scheme://host:port) for the connection pool */
  readonly origin: string;
  /** path prefix, e.g. "/v1", without trailing slash */
  readonly basePath: string;
  readonly apiKey: string | undefined;
  readonly maxConcurrency: number;
  readonly timeoutMs: number;
  /** streamed requests: no byte (or no next chunk) by then = fail over */
  readonly firstByteTimeoutMs: number;
  /** non-streamed requests, whose first byte is the finished answer: first_byte_timeout_ms if set, else timeout_ms */
  readonly firstByteTimeoutNonStreamMs: number;
  readonly health: HealthCheck;
  /** the server reads a chat body's top_k (vLLM, llama.cpp, LocalAI do; Ollama's OpenAI API has
   * none): Anthropic Messages' top_k is forwarded only to such a server */
  readonly acceptsTopK: boolean;
  /** identity of the connection settings; a change recreates the pool */
  readonly poolKey: string;
  /** expose_models: the models the server lists are callable by their own names */
  readonly exposeModels: boolean;
}

export interface TargetConfig {
  /** "endpoint/model", the breaker and latency key */
  readonly id: string;
  readonly endpoint: string;
  readonly upstreamModel: string;
  readonly weight: number;
}

export interface ModelConfig {
  readonly name: string;
  readonly strategy: Strategy;
  readonly targets: readonly TargetConfig[];
  readonly price: ModelSpec['price'];
  readonly maxAttempts: number;
  readonly limits?: RateLimits | undefined;
  readonly downgrade?: DowngradeSpec | undefined;
}

/** A team's governance: budgets, limits and its share of capacity. */
export type TeamConfig = Readonly<Pick<TeamSpec, 'name' | 'budget' | 'limits' | 'user_budget' | 'user_limits' | 'prompt_logging'>> & { readonly weight: number };

export interface KeyRecord {
  readonly name: string;
  readonly team: string | undefined;
  readonly app: string;
  readonly models: ReadonlySet<string> | undefined;
  readonly disabled: boolean;
  readonly expiresAt: number | undefined;
  readonly budget: BudgetSpec | undefined;
  readonly limits: RateLimits | undefined;
  readonly priority: Priority;
}

export interface Snapshot {
  readonly version: number;
  readonly endpoints: ReadonlyMap<string, EndpointConfig>;
  readonly models: ReadonlyMap<string, ModelConfig>;
  readonly keysByHash: ReadonlyMap<string, KeyRecord>;
  /** the old secrets of rotated keys (by hash): valid for the key until `until` (ms) */
  readonly previousKeys: ReadonlyMap<string, { readonly key: KeyRecord; readonly until: number }>;
  readonly teams: ReadonlyMap<string, TeamConfig>;
  readonly rules: readonly RuleSpec[];
  /** models callable by an endpoint's upstream names (expose_models), not configured ones */
  readonly exposedModels: ReadonlySet<string>;
  /** names clients may send that only rules resolve (e.g. "auto") */
  readonly virtualModels: ReadonlySet<string>;
  readonly settings: Settings;
  /** guardrail policies, in order (compiled lazily by gateway/guardrails/engine.ts) */
  readonly guardrails: readonly GuardrailSpec[];
  /** the playground's in-memory temporary keys (the same registry in every snapshot of a gateway) */
  readonly temporaryKeys?: TemporaryKeys;
}

const DEFAULT_HEALTH: HealthCheck = { enabled: true, interval_ms: 10_000, timeout_ms: 5_000, unhealthy_after: 2 };

/** The longest upstream model name exposed as it is (longer ones need an alias). */
const MAX_EXPOSED_NAME = 256;

/**
 * `discovered(endpoint)`: the models an endpoint's last successful health check listed (for
 * endpoints with expose_models). Each such name that no configured model has becomes a model of
 * its own, with a target on every exposing endpoint that lists it (fallback, in endpoint order).
 */
export function buildSnapshot(
  state: StoredState,
  secrets: Secrets,
  version: number,
  previous: readonly { name: string; hash: string; until: number }[] = [],
  discovered: (endpoint: string) => readonly string[] | undefined = () => undefined,
): Snapshot {
  const endpoints = new Map<string, EndpointConfig>();
  for (const e of state.endpoints) {
    const url = new URL(e.base_url);
    let apiKey: string | undefined;
    try {
      apiKey = e.api_key_enc ? secrets.decrypt(e.api_key_enc) : undefined;
    } catch {
      // e.g. a database restored without the install.key it was written with
      throw new StartupError(
        `the api_key of endpoint "${e.name}" cannot be decrypted with this data dir's install.key; if the database was restored from a backup, copy the install.key of the data dir it came from`,
      );
    }
    const maxConcurrency = e.max_concurrency ?? 0;
    endpoints.set(
      e.name,
      Object.freeze({
        name: e.name,
        type: e.type,
        baseUrl: e.base_url,
        origin: url.origin,
        basePath: url.pathname.replace(/\/+$/, ''),
        apiKey,
        maxConcurrency,
        timeoutMs: e.timeout_ms ?? DEFAULT_TIMEOUT_MS,
        firstByteTimeoutMs: e.first_byte_timeout_ms ?? DEFAULT_FIRST_BYTE_TIMEOUT_MS,
        firstByteTimeoutNonStreamMs: e.first_byte_timeout_ms ?? e.timeout_ms ?? DEFAULT_TIMEOUT_MS,
        acceptsTopK: e.type !== 'ollama',
        health: e.health_check ?? DEFAULT_HEALTH,
        poolKey: `${url.origin}|${maxConcurrency}`,
        exposeModels: e.expose_models === true,
      }),
    );
  }
  const models = new Map<string, ModelConfig>();
  for (const m of state.models) {
    const targets = m.targets.map((t) =>
      Object.freeze({ id: `${t.endpoint}/${t.model}`, endpoint: t.endpoint, upstreamModel: t.model, weight: t.weight ?? 1 }),
    );
    models.set(
      m.name,
      Object.freeze({
        name: m.name,
        strategy: m.strategy,
        targets: Object.freeze(targets),
        price: m.price,
        maxAttempts: m.max_attempts ?? Math.min(targets.length + 1, 20),
        limits: m.limits,
        downgrade: m.downgrade,
      }),
    );
  }
  const exposedModels = new Set<string>();
  const exposedTargets = new Map<string, TargetConfig[]>();
  for (const e of endpoints.values()) {
    if (!e.exposeModels) continue;
    for (const upstreamModel of new Set(discovered(e.name) ?? [])) {
      if (!upstreamModel || upstreamModel.length > MAX_EXPOSED_NAME || models.has(upstreamModel)) continue;
      const list = exposedTargets.get(upstreamModel) ?? [];
      list.push(Object.freeze({ id: `${e.name}/${upstreamModel}`, endpoint: e.name, upstreamModel, weight: 1 }));
      exposedTargets.set(upstreamModel, list);
    }
  }
  for (const [name, targets] of exposedTargets) {
    exposedModels.add(name);
    models.set(name, Object.freeze({ name, strategy: 'fallback' as const, targets: Object.freeze(targets), price: undefined, maxAttempts: Math.min(targets.length + 1, 20) }));
  }
  const keysByHash = new Map<string, KeyRecord>();
  for (const k of state.keys) {
    keysByHash.set(
      k.hash,
      Object.freeze({
        name: k.name,
        team: k.team,
        app: k.app ?? k.name,
        models: k.models ? new Set(k.models) : undefined,
        disabled: !!k.disabled,
        expiresAt: k.expires_at ? Date.parse(k.expires_at) : undefined,
        budget: k.budget,
        limits: k.limits,
        priority: k.priority ?? 'interactive',
      }),
    );
  }
  const previousKeys = new Map<string, { key: KeyRecord; until: number }>();
  const hashByName = new Map(state.keys.map((k) => [k.name, k.hash]));
  for (const p of previous) {
    const hash = hashByName.get(p.name);
    const key = hash === undefined ? undefined : keysByHash.get(hash);
    if (key && !keysByHash.has(p.hash)) previousKeys.set(p.hash, Object.freeze({ key, until: p.until }));
  }
  const teams = new Map<string, TeamConfig>();
  for (const t of state.teams)
    teams.set(t.name, Object.freeze({ name: t.name, budget: t.budget, limits: t.limits, user_budget: t.user_budget, user_limits: t.user_limits, prompt_logging: t.prompt_logging, weight: t.weight ?? 1 }));
  return Object.freeze({
    version,
    endpoints,
    models,
    keysByHash,
    previousKeys,
    teams,
    exposedModels,
    rules: Object.freeze([...state.routing_rules]),
    virtualModels: new Set(state.routing_rules.map((r) => r.when.model).filter((m): m is string => !!m && !models.has(m))),
    settings: state.settings,
    guardrails: Object.freeze([...(state.guardrails ?? [])]),
  });
}
