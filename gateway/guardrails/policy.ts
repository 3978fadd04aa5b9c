// The policy engine: compiled guardrail policies, which of them apply where, what they find in a
// text, and the protocol-neutral entry point evaluate(direction, text|json, scope) that the
// OpenAI guards (guards.ts) and the MCP gateway (tool_args / tool_result) call.
import type { GuardModelSpec } from './guard-model.js';
import { BUILTIN_DETECTORS, type BuiltinName, type GuardAction, type GuardDirection, type GuardMode, type GuardrailSpec } from '../config/guardrails-schema.js';
import { keywordDetector, maxSizeDetector, regexDetector } from './detectors/custom.js';
import { injection, injectionScore } from './detectors/injection.js';
import { PII } from './detectors/pii.js';
import { SECRETS } from './detectors/secrets.js';
import { holdsAny, type Detector, type Finding } from './detectors/types.js';

export type { Finding, GuardDirection };

/** Who and what a check is about; a policy's scope lists must each contain the fact. */
export interface GuardScopeFacts {
  /** model alias (and the name the client sent, when different) */
  model?: string;
  requestedModel?: string;
  team?: string;
  key?: string;
  agent?: string;
  mcp_server?: string;
  tool?: string;
}

export interface CompiledPolicy {
  readonly name: string;
  readonly spec: GuardrailSpec;
  readonly directions: ReadonlySet<GuardDirection>;
  readonly action: GuardAction;
  readonly mode: GuardMode;
  /** enforce mode and an action that changes what passes (block or redact) */
  readonly changes: boolean;
  /** checks non-streamed answers against the request's response_format JSON schema */
  readonly responseSchema: boolean;
  /** local classifier models asked about the whole input (guard-model.ts) */
  readonly guardModels: readonly GuardModelSpec[];
  /** has detectors that look at text (a policy with only response_schema has none) */
  readonly detectsText: boolean;
  readonly restore: boolean;
  /** what the policy's detectors find (injection findings only when their score reaches the threshold) */
  detect(text: string): Finding[];
  appliesTo(direction: GuardDirection, s: GuardScopeFacts): boolean;
}

const BUILTIN: Record<Exclude<BuiltinName, 'pii' | 'secrets' | 'injection'>, Detector> = { ...PII, ...SECRETS };

function builtin(name: BuiltinName): Detector[] {
  if (name === 'pii' || name === 'secrets') return BUILTIN_DETECTORS[name].map((n) => BUILTIN[n]);
  if (name === 'injection') return [];
  return [BUILTIN[name]];
}

export function compilePolicy(spec: GuardrailSpec): CompiledPolicy {
  const detectors: Detector[] = [];
  let injectionThreshold: number | undefined;
  let responseSchema = false;
  const guardModels: GuardModelSpec[] = [];
  for (const d of spec.detectors) {
    if (typeof d === 'string') {
      if (d === 'injection') injectionThreshold = Math.min(injectionThreshold ?? 1, 0.5);
      else detectors.push(...builtin(d));
    } else if (d.type === 'injection') injectionThreshold = Math.min(injectionThreshold ?? 1, d.threshold);
    else if (d.type === 'regex') detectors.push(regexDetector(d.pattern, d.flags, d.label));
    else if (d.type === 'keywords') detectors.push(keywordDetector(d.words));
    else if (d.type === 'response_schema') responseSchema = true;
    else if (d.type === 'guard_model') guardModels.push(d);
    else detectors.push(maxSizeDetector(d.chars));
  }
  const unique = [...new Set(detectors)];
  const run = prefiltered(unique);
  const scope = spec.scope;
  const directions = new Set(spec.direction);
  return {
    name: spec.name,
    spec,
    directions,
    action: spec.action,
    mode: spec.mode,
    changes: spec.mode === 'enforce' && spec.action !== 'flag',
    responseSchema,
    guardModels,
    detectsText: unique.length > 0 || injectionThreshold !== undefined,
    restore: !!spec.restore,
    detect(text) {
      if (!text) return [];
      const out = run(text);
      if (injectionThreshold !== undefined) {
        const inj = injection(text);
        if (inj.length && injectionScore(inj) >= injectionThreshold) out.push(...inj);
      }
      // one finding per stretch of text (an IBAN's digits are not also a phone number)
      return out.length > 1 ? [...out.filter((x) => x.end === x.start), ...resolveOverlaps(out)] : out;
    },
    appliesTo(direction, s) {
      if (spec.disabled || !directions.has(direction)) return false;
      if (!scope) return true;
      const inList = (list: string[] | undefined, ...v: (string | undefined)[]) => !list || v.some((x) => x !== undefined && list.includes(x));
      return (
        inList(scope.models, s.model, s.requestedModel) &&
        inList(scope.teams, s.team) &&
        inList(scope.keys, s.key) &&
        inList(scope.agents, s.agent) &&
        inList(scope.mcp_servers, s.mcp_server) &&
        inList(scope.tools, s.tool)
      );
    },
  };
}

/** The detectors run over a text, in their order, each only when the text holds one of its anchors
 * (Detector.anchors): detectors that share anchors (the digit-based PII ones) ask once per text. A
 * stream is scanned as the hold-back window plus its context (stream.ts), so a match split across
 * chunks is prefiltered on the joined text, never on one chunk. */
export function prefiltered(detectors: readonly Detector[]): (text: string) => Finding[] {
  const groups: string[] = [];
  const group = detectors.map((d) => {
    if (d.anchors === undefined) return -1;
    let g = groups.indexOf(d.anchors);
    if (g === -1) g = groups.push(d.anchors) - 1;
    return g;
  });
  if (groups.length > 30) throw new Error('too many anchor sets'); // bits of one int
  return (text) => {
    const out: Finding[] = [];
    let asked = 0;
    let holds = 0;
    for (let i = 0; i < detectors.length; i++) {
      const g = group[i]!;
      if (g !== -1) {
        const bit = 1 << g;
        if (!(asked & bit)) {
          asked |= bit;
          if (holdsAny(text, groups[g]!)) holds |= bit;
        }
        if (!(holds & bit)) continue;
      }
      const f = detectors[i]!(text);
      for (let k = 0; k < f.length; k++) out.push(f[k]!);
    }
    return out;
  };
}

export function compilePolicies(specs: readonly GuardrailSpec[]): CompiledPolicy[] {
  return specs.filter((s) => !s.disabled).map(compilePolicy);
}

/** Overlapping findings: the earliest wins, the longer one on a tie. Sorted by start. */
export function resolveOverlaps(f: readonly Finding[]): Finding[] {
  const sorted = f.filter((x) => x.end > x.start).sort((a, b) => a.start - b.start || b.end - a.end);
  const out: Finding[] = [];
  let end = -1;
  for (const x of sorted) {
    if (x.start < end) continue;
    out.push(x);
    end = x.end;
  }
  return out;
}

/** Typed placeholders for one request: the same value gets the same placeholder, and the
 * originals can be put back into the answer (restore). */
export class Placeholders {
  // made at the first placeholder (most requests have none)
  private counters: Map<string, number> | undefined;
  private byValue: Map<string, string> | undefined;
  private originals: Map<string, string> | undefined;

  for(type: string, value: string): string {
    const k = `${type}\u0000${value}`;
    const byValue = (this.byValue ??= new Map<string, string>());
    let p = byValue.get(k);
    if (p === undefined) {
      const counters = (this.counters ??= new Map<string, number>());
      const n = (counters.get(type) ?? 0) + 1;
      counters.set(type, n);
      p = `[${type}_${n}]`;
      byValue.set(k, p);
      (this.originals ??= new Map<string, string>()).set(p, value);
    }
    return p;
  }

  /** The text with the placeholders this request made replaced by their originals. */
  restore(text: string): string {
    const originals = this.originals;
    if (!originals || text.indexOf('[') === -1) return text;
    return text.replace(/\[[A-Z][A-Z0-9_]*_\d+\]/g, (p) => originals.get(p) ?? p);
  }
}

/** Replace findings (within [0, limit)) by placeholders; findings are clipped to [0, limit). */
export function redact(text: string, findings: readonly Finding[], ph: Placeholders, limit = text.length): string {
  const fs = resolveOverlaps(findings.map((f) => ({ ...f, start: Math.max(0, f.start), end: Math.min(limit, f.end) })));
  if (!fs.length) return text.slice(0, limit);
  let out = '';
  let at = 0;
  for (const f of fs) {
    out += text.slice(at, f.start);
    out += f.replacement ?? ph.for(f.type, text.slice(f.start, f.end));
    at = f.end;
  }
  return out + text.slice(at, limit);
}

/** One policy's hits in one direction: types and how often (never the matched text). */
export interface Hit {
  policy: string;
  direction: GuardDirection;
  action: GuardAction;
  mode: GuardMode;
  detectors: Record<string, number>;
  count: number;
  /** the policy stopped the request or answer (enforce + block) */
  blocked: boolean;
}

export function addHit(hits: Map<string, Hit>, p: CompiledPolicy, direction: GuardDirection, findings: readonly Finding[], blocked = false): void {
  if (!findings.length && !blocked) return;
  const k = `${p.name}\u0000${direction}`;
  let h = hits.get(k);
  if (!h) hits.set(k, (h = { policy: p.name, direction, action: p.action, mode: p.mode, detectors: {}, count: 0, blocked: false }));
  for (const f of findings) {
    const t = `${f.detector}:${f.type}`;
    h.detectors[t] = (h.detectors[t] ?? 0) + 1;
    h.count++;
  }
  if (blocked) h.blocked = true;
}

/** What a block says: the policy and the kinds found, never the text. */
export function blockMessage(direction: GuardDirection, findings: readonly Finding[]): string {
  const what = direction === 'input' ? 'the request' : direction === 'output' ? 'the answer' : direction === 'tool_args' ? 'the tool arguments' : 'the tool result';
  const types = [...new Set(findings.map((f) => (f.detector === f.type.toLowerCase() ? f.type : `${f.detector} (${f.type})`)))];
  const plural = direction === 'tool_args';
  if (types.some((t) => t.startsWith('max_size'))) return `${what} ${plural ? 'are' : 'is'} larger than the policy allows`;
  return `${what} ${plural ? 'contain' : 'contains'} ${types.slice(0, 5).join(', ')}${types.length > 5 ? ', …' : ''}`;
}

export interface TextsResult {
  /** the first enforcing block policy that found something */
  blocked: { policy: string; message: string } | undefined;
  /** the texts to send on (redacted by enforcing redact policies) */
  texts: string[];
  changed: boolean;
  /** what each policy found, per text (for a "try it" panel) */
  findings: { policy: string; mode: GuardMode; action: GuardAction; findings: Finding[] }[];
}

/** Run policies over several texts (the string fields of one message or body). */
export function evaluateTexts(policies: readonly CompiledPolicy[], direction: GuardDirection, texts: readonly string[], ph: Placeholders, hits: Map<string, Hit>): TextsResult {
  const redactions: Finding[][] = texts.map(() => []);
  const all: TextsResult['findings'] = [];
  let blocked: TextsResult['blocked'];
  for (const p of policies) {
    const found: Finding[] = [];
    texts.forEach((t, i) => {
      const f = p.detect(t);
      if (!f.length) return;
      found.push(...f);
      if (p.changes && p.action === 'redact') redactions[i]!.push(...f);
    });
    if (!found.length) continue;
    const blocks = p.changes && p.action === 'block';
    all.push({ policy: p.name, mode: p.mode, action: p.action, findings: found });
    addHit(hits, p, direction, found, blocks && !blocked);
    if (blocks && !blocked) blocked = { policy: p.name, message: blockMessage(direction, found) };
  }
  let changed = false;
  const out = texts.map((t, i) => {
    if (!redactions[i]!.length) return t;
    const r = redact(t, redactions[i]!, ph);
    if (r !== t) changed = true;
    return r;
  });
  return { blocked, texts: out, changed, findings: all };
}

/** The string leaves of a JSON value, and a function that rebuilds it with other strings. */
export function jsonStrings(v: unknown, keys = true): { texts: string[]; rebuild(texts: readonly string[]): unknown } {
  // every string: values, and object keys too (a free-form map's keys are text a tool reads:
  // {"ghp_…": "x"} carries its secret in the key); keys false: the values only (what a guard
  // model reads; rebuild() is then not for use)
  const texts: string[] = [];
  const walk = (x: unknown): void => {
    if (typeof x === 'string') texts.push(x);
    else if (Array.isArray(x)) x.forEach(walk);
    else if (x && typeof x === 'object')
      for (const k of Object.keys(x)) {
        if (keys) texts.push(k);
        walk((x as Record<string, unknown>)[k]);
      }
  };
  walk(v);
  return {
    texts,
    rebuild(next) {
      let i = 0;
      const build = (x: unknown): unknown => {
        if (typeof x === 'string') return next[i++];
        if (Array.isArray(x)) return x.map(build);
        if (x && typeof x === 'object') {
          const o: Record<string, unknown> = {};
          for (const k of Object.keys(x)) {
            const key = next[i++]!;
            // (defineProperty: a key redacted or not, "__proto__" stays an own key, never the prototype)
            Object.defineProperty(o, key, { value: build((x as Record<string, unknown>)[k]), enumerable: true, writable: true, configurable: true });
          }
          return o;
        }
        return x;
      };
      return build(v);
    },
  };
}

export interface EvaluateResult<T> {
  /** pass: nothing changes; redact: send `value` instead; block: refuse (guardrail_blocked) */
  action: 'pass' | 'redact' | 'block';
  value: T;
  blocked?: { policy: string; message: string };
  hits: Hit[];
}

/** The protocol-neutral check: a text or a JSON value (every string inside it is checked) in one
 * direction and scope, against compiled policies. Pure: recording is the caller's (see
 * GuardrailEngine.evaluate, which records). */
export function evaluatePolicies<T>(policies: readonly CompiledPolicy[], direction: GuardDirection, input: T, scope: GuardScopeFacts, ph = new Placeholders()): EvaluateResult<T> {
  const ps = policies.filter((p) => p.appliesTo(direction, scope));
  const hits = new Map<string, Hit>();
  if (!ps.length) return { action: 'pass', value: input, hits: [] };
  const j = typeof input === 'string' ? undefined : jsonStrings(input);
  const texts = j ? j.texts : [input as string];
  const r = evaluateTexts(ps, direction, texts, ph, hits);
  if (r.blocked) return { action: 'block', value: input, blocked: r.blocked, hits: [...hits.values()] };
  if (!r.changed) return { action: 'pass', value: input, hits: [...hits.values()] };
  return { action: 'redact', value: (j ? j.rebuild(r.texts) : r.texts[0]) as T, hits: [...hits.values()] };
}
