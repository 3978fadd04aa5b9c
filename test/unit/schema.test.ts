// The config schema: what it accepts, and that what it refuses is named by path and problem.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import YAML from 'yaml';
import {
  DEFAULT_SETTINGS,
  checkReferences,
  configSchema,
  formatIssue,
  formatPath,
  fromZod,
  type ConfigDoc,
  type FullConfig,
} from '../../gateway/config/schema.js';

// The example from DESIGN.md, with the placeholder key written out as a real one would be.
const DESIGN_EXAMPLE = `
endpoints:                      # upstream model servers
  - name: gpu-1
    type: openai                # any OpenAI-compatible server; also: ollama
    base_url: http://10.0.0.5:8000/v1
    api_key: \${env:GPU1_KEY}    # optional
    max_concurrency: 32         # optional
    timeout_ms: 120000          # optional
models:                         # the names apps send as "model"
  - name: chat
    strategy: fallback          # fallback | weighted | least-busy | least-latency
    targets:
      - { endpoint: gpu-1, model: meta-llama/Llama-3.1-8B-Instruct }
      - { endpoint: gpu-2, model: "llama3.1:8b", weight: 1 }
    price: { input_per_million: 0.2, output_per_million: 0.6 }   # internal chargeback
teams:
  - name: research
keys:
  - name: notebook-app
    key: sk-airlock-0123456789abcdefghijKLMNOP_-xyz
    team: research
    models: [chat]              # omitted: every model
`;

/** Validate a document; return the formatted issues (empty when valid). */
function issues(doc: unknown): string[] {
  const r = configSchema.safeParse(doc);
  return r.success ? [] : fromZod(r.error).map(formatIssue);
}

function parse(doc: unknown): ConfigDoc {
  const r = configSchema.safeParse(doc);
  if (!r.success) assert.fail(fromZod(r.error).map(formatIssue).join('\n'));
  return r.data;
}

/** A complete configuration from a (valid) document, missing sections empty. */
function full(doc: unknown): FullConfig {
  const d = parse(doc);
  return {
    endpoints: d.endpoints ?? [],
    models: d.models ?? [],
    teams: d.teams ?? [],
    keys: d.keys ?? [],
    routing_rules: d.routing_rules ?? [],
    guardrails: d.guardrails ?? [],
    settings: d.settings ?? DEFAULT_SETTINGS,
    mcp_servers: d.mcp_servers ?? [],
    agents: d.agents ?? [],
    mcp_virtual_servers: d.mcp_virtual_servers ?? [],
  };
}

const refs = (doc: unknown) => checkReferences(full(doc)).map(formatIssue);

const ep = (name: string) => ({ name, base_url: `http://${name}.lan:8000/v1` });
const mdl = (name: string, ...endpoints: string[]) => ({ name, targets: endpoints.map((e) => ({ endpoint: e, model: 'm' })) });

describe('configSchema accepts', () => {
  test('the DESIGN.md example, with defaults filled in', () => {
    const d = parse(YAML.parse(DESIGN_EXAMPLE));
    assert.equal(d.endpoints![0]!.api_key, '${env:GPU1_KEY}');
    assert.equal(d.endpoints![0]!.type, 'openai');
    assert.equal(d.models![0]!.strategy, 'fallback');
    assert.equal(d.models![0]!.targets[1]!.model, 'llama3.1:8b');
    assert.deepEqual(d.models![0]!.price, { input_per_million: 0.2, output_per_million: 0.6 });
    assert.deepEqual(d.keys![0]!.models, ['chat']);
  });

  test('the DESIGN.md example references an endpoint it does not define (gpu-2); adding it makes it whole', () => {
    const raw = YAML.parse(DESIGN_EXAMPLE);
    assert.deepEqual(refs(raw), ['models[0].targets[1].endpoint: unknown endpoint "gpu-2"']);
    raw.endpoints.push({ name: 'gpu-2', type: 'ollama', base_url: 'http://10.0.0.6:11434' });
    assert.deepEqual(refs(raw), []);
  });

  test('an empty document, and every section empty', () => {
    assert.deepEqual(issues({}), []);
    assert.deepEqual(issues({ endpoints: [], models: [], teams: [], keys: [], routing_rules: [], settings: {} }), []);
  });

  test('settings defaults', () => {
    const d = parse({ settings: {} });
    assert.deepEqual(d.settings, DEFAULT_SETTINGS);
    assert.deepEqual(DEFAULT_SETTINGS.breaker, { failure_threshold: 5, cooldown_ms: 30_000 });
  });

  test('routing rules with every condition', () => {
    const d = parse({
      routing_rules: [
        {
          name: 'big-prompts',
          when: { model: 'auto', teams: ['research'], apps: ['nb'], header: { 'x-tier': 'gold' }, has_tools: true, min_prompt_tokens: 10, max_prompt_tokens: 20 },
          route_to: 'big',
        },
        { name: 'default', route_to: 'chat' },
      ],
    });
    assert.deepEqual(d.routing_rules![1]!.when, {});
  });
});

describe('configSchema refuses, naming path and problem', () => {
  test('unknown keys at every level', () => {
    assert.deepEqual(issues({ endpoint: [] }), ['(root): unknown key "endpoint"']);
    assert.deepEqual(issues({ endpoints: [{ ...ep('a'), url: 'x', extra: 1 }] }), ['endpoints[0]: unknown keys "url", "extra"']);
    assert.deepEqual(issues({ models: [{ ...mdl('m', 'a'), targets: [{ endpoint: 'a', model: 'x', wieght: 2 }] }] }), [
      'models[0].targets[0]: unknown key "wieght"',
    ]);
    assert.deepEqual(issues({ settings: { breaker: { threshold: 3 } } }), ['settings.breaker: unknown key "threshold"']);
    assert.deepEqual(issues({ routing_rules: [{ name: 'r', when: { team: 'x' }, route_to: 'm' }] }), ['routing_rules[0].when: unknown key "team"']);
  });

  test('a bad base_url', () => {
    for (const url of ['ftp://10.0.0.5/v1', 'not a url', '10.0.0.5:8000']) {
      assert.deepEqual(issues({ endpoints: [{ name: 'gpu-1', base_url: url }] }), ['endpoints[0].base_url: must be an http:// or https:// URL'], url);
    }
  });

  test(
    'a missing base_url is reported as missing',
    () => {
      assert.deepEqual(issues({ endpoints: [{ name: 'gpu-1' }] }), ['endpoints[0].base_url: is required']);
    },
  );

  test('missing required fields say "is required"', () => {
    assert.deepEqual(issues({ models: [{ name: 'a' }] }), ['models[0].targets: is required']);
    assert.deepEqual(issues({ teams: [{}] }), ['teams[0].name: is required']);
    assert.deepEqual(issues({ routing_rules: [{ name: 'r' }] }), ['routing_rules[0].route_to: is required']);
  });

  test('a bad weight in the second model', () => {
    for (const weight of [0, -1]) {
      const out = issues({ models: [mdl('a', 'e'), { name: 'b', targets: [{ endpoint: 'e', model: 'm', weight }] }] });
      assert.equal(out.length, 1);
      assert.match(out[0]!, /^models\[1\]\.targets\[0\]\.weight: must be more than 0$/);
    }
    const s = issues({ models: [mdl('a', 'e'), { name: 'b', targets: [{ endpoint: 'e', model: 'm', weight: '2' }] }] });
    assert.equal(s.length, 1);
    assert.match(s[0]!, /^models\[1\]\.targets\[0\]\.weight: must be a number, not a string$/);
  });

  test('bad enum values list the allowed ones', () => {
    const [s] = issues({ models: [{ ...mdl('a', 'e'), strategy: 'random' }] });
    assert.match(s!, /^models\[0\]\.strategy: /);
    for (const v of ['fallback', 'weighted', 'least-busy', 'least-latency']) assert.ok(s!.includes(v), v);
    const [t] = issues({ endpoints: [{ ...ep('a'), type: 'tgi' }] });
    assert.match(t!, /^endpoints\[0\]\.type: .*openai.*ollama/);
  });

  test('bad names', () => {
    for (const name of ['', 'has space', '-leading-dash', 'x'.repeat(65), 'ümlaut']) {
      const out = issues({ teams: [{ name }] });
      assert.equal(out.length, 1, name);
      assert.match(out[0]!, /^teams\[0\]\.name: must be 1-64 characters/, name);
    }
    assert.deepEqual(issues({ teams: [{ name: 'a'.repeat(64) }, { name: 'rd.team_1:x-y' }] }), []);
  });

  test('numbers out of range', () => {
    assert.deepEqual(issues({ endpoints: [{ ...ep('a'), max_concurrency: 0 }] }).length, 1);
    assert.match(issues({ endpoints: [{ ...ep('a'), max_concurrency: 0 }] })[0]!, /^endpoints\[0\]\.max_concurrency: /);
    assert.match(issues({ endpoints: [{ ...ep('a'), timeout_ms: 1.5 }] })[0]!, /^endpoints\[0\]\.timeout_ms: /);
    assert.match(issues({ endpoints: [{ ...ep('a'), health_check: { interval_ms: 1 } }] })[0]!, /^endpoints\[0\]\.health_check\.interval_ms: /);
    assert.match(issues({ settings: { breaker: { failure_threshold: 0 } } })[0]!, /^settings\.breaker\.failure_threshold: /);
    assert.match(issues({ models: [{ ...mdl('a', 'e'), max_attempts: 21 }] })[0]!, /^models\[0\]\.max_attempts: /);
    assert.match(issues({ routing_rules: [{ name: 'r', when: { min_prompt_tokens: -1 }, route_to: 'm' }] })[0]!, /^routing_rules\[0\]\.when\.min_prompt_tokens: /);
  });

  test('a model needs at least one target', () => {
    assert.deepEqual(issues({ models: [{ name: 'a', targets: [] }] }), ['models[0].targets: needs at least one target']);
  });

  test('key literal and expiry formats', () => {
    assert.deepEqual(issues({ keys: [{ name: 'k', key: 'sk-airlock-short' }] }), [
      'keys[0].key: must look like sk-airlock- followed by at least 22 letters, digits, "_" or "-"',
    ]);
    assert.deepEqual(issues({ keys: [{ name: 'k', key: 'sk-other-0123456789abcdefghijklmnop' }] }).length, 1);
    assert.deepEqual(issues({ keys: [{ name: 'k', expires_at: 'tomorrow' }] }), [
      'keys[0].expires_at: must be an ISO 8601 date-time, e.g. 2027-01-31T00:00:00Z',
    ]);
    assert.deepEqual(issues({ keys: [{ name: 'k', expires_at: '2027-01-31T00:00:00Z' }, { name: 'l', expires_at: '2027-01-31T00:00:00+02:00' }] }), []);
  });

  test('header names in rules must be lower-case, at the header\'s path', () => {
    const out = issues({ routing_rules: [{ name: 'r', when: { header: { 'X-Team': 'a' } }, route_to: 'm' }] });
    assert.equal(out.length, 1);
    assert.match(out[0]!, /^routing_rules\[0\]\.when\.header\.X-Team: /);
  });

  test(
    'the header-name message says what is wrong',
    () => {
      assert.deepEqual(issues({ routing_rules: [{ name: 'r', when: { header: { 'X-Team': 'a' } }, route_to: 'm' }] }), [
        'routing_rules[0].when.header.X-Team: header names must be lower-case',
      ]);
    },
  );

  test('a document that is not an object', () => {
    assert.deepEqual(issues('hello').length, 1);
    assert.match(issues('hello')[0]!, /^\(root\): /);
    assert.match(issues({ endpoints: {} })[0]!, /^endpoints: /);
  });

  test('every problem is reported, not just the first', () => {
    const out = issues({ endpoints: [{ name: 'bad name', base_url: 'ftp://x' }], teams: [{ name: 'ok', colour: 'red' }] });
    assert.equal(out.length, 3, out.join('\n'));
  });
});

describe('formatPath', () => {
  test('indices in brackets, keys with dots, root named', () => {
    assert.equal(formatPath(['models', 1, 'targets', 0, 'weight']), 'models[1].targets[0].weight');
    assert.equal(formatPath([]), '(root)');
    assert.equal(formatPath(['settings', 'breaker']), 'settings.breaker');
    assert.equal(formatIssue({ path: ['keys', 2], message: 'x' }), 'keys[2]: x');
  });
});

describe('checkReferences', () => {
  const base = {
    endpoints: [ep('gpu-1'), ep('gpu-2')],
    models: [mdl('chat', 'gpu-1'), mdl('big', 'gpu-2', 'gpu-1')],
    teams: [{ name: 'research' }, { name: 'ops' }],
    keys: [{ name: 'nb', team: 'research', models: ['chat'] }],
    routing_rules: [{ name: 'r', when: { model: 'auto', teams: ['ops'] }, route_to: 'big' }],
  };
  const variant = (patch: Partial<typeof base> | Record<string, unknown>) => ({ ...base, ...patch });

  test('a consistent configuration has no issues', () => {
    assert.deepEqual(refs(base), []);
  });

  test('unknown endpoint in a target, exactly', () => {
    const out = refs(variant({ models: [mdl('chat', 'gpu-1'), mdl('big', 'gpu-3', 'gpu-1')] }));
    assert.deepEqual(out, ['models[1].targets[0].endpoint: unknown endpoint "gpu-3"']);
  });

  test('unknown team in a key and in a rule', () => {
    assert.deepEqual(refs(variant({ keys: [{ name: 'nb', team: 'sales' }] })), ['keys[0].team: unknown team "sales"']);
    assert.deepEqual(refs(variant({ routing_rules: [{ name: 'r', when: { teams: ['ops', 'sales'] }, route_to: 'big' }] })), [
      'routing_rules[0].when.teams[1]: unknown team "sales"',
    ]);
  });

  test('unknown model in a key and in a rule', () => {
    assert.deepEqual(refs(variant({ keys: [{ name: 'nb', models: ['chat', 'gpt-4'] }] })), ['keys[0].models[1]: unknown model "gpt-4"']);
    assert.deepEqual(refs(variant({ routing_rules: [{ name: 'r', when: {}, route_to: 'huge' }] })), ['routing_rules[0].route_to: unknown model "huge"']);
  });

  test('a key may list a virtual model that only rules resolve', () => {
    assert.deepEqual(refs(variant({ keys: [{ name: 'nb', models: ['auto'] }] })), []);
    assert.deepEqual(refs(variant({ keys: [{ name: 'nb', models: ['auto'] }], routing_rules: [] })), ['keys[0].models[0]: unknown model "auto"']);
  });

  test('duplicate names in every section', () => {
    assert.deepEqual(refs(variant({ endpoints: [ep('gpu-1'), ep('gpu-2'), ep('gpu-1')] })), ['endpoints[2].name: duplicate name "gpu-1"']);
    assert.deepEqual(refs(variant({ models: [mdl('chat', 'gpu-1'), mdl('big', 'gpu-2'), mdl('chat', 'gpu-2')] })), ['models[2].name: duplicate name "chat"']);
    assert.deepEqual(refs(variant({ teams: [{ name: 'research' }, { name: 'ops' }, { name: 'ops' }] })), ['teams[2].name: duplicate name "ops"']);
    assert.deepEqual(refs(variant({ keys: [{ name: 'nb' }, { name: 'nb' }] })), ['keys[1].name: duplicate name "nb"']);
    assert.deepEqual(
      refs(
        variant({
          routing_rules: [
            { name: 'r', route_to: 'big' },
            { name: 'r', route_to: 'chat' },
          ],
        }),
      ),
      ['routing_rules[1].name: duplicate name "r"'],
    );
  });

  test('the same literal key twice', () => {
    const key = 'sk-airlock-0123456789abcdefghijklmnop';
    assert.deepEqual(
      refs(
        variant({
          keys: [
            { name: 'a', key },
            { name: 'b', key },
          ],
        }),
      ),
      ['keys[1].key: the same key is given twice'],
    );
  });

  test('min_prompt_tokens greater than max_prompt_tokens', () => {
    assert.deepEqual(refs(variant({ routing_rules: [{ name: 'r', when: { min_prompt_tokens: 100, max_prompt_tokens: 10 }, route_to: 'big' }] })), [
      'routing_rules[0].when.max_prompt_tokens: must not be less than min_prompt_tokens',
    ]);
    assert.deepEqual(refs(variant({ routing_rules: [{ name: 'r', when: { min_prompt_tokens: 10, max_prompt_tokens: 10 }, route_to: 'big' }] })), []);
  });

  test('all problems at once, each with its own path', () => {
    const out = refs({
      endpoints: [ep('a'), ep('a')],
      models: [mdl('m', 'a', 'zz')],
      teams: [],
      keys: [{ name: 'k', team: 't', models: ['nope'] }],
      routing_rules: [{ name: 'r', when: { teams: ['t'], min_prompt_tokens: 5, max_prompt_tokens: 1 }, route_to: 'x' }],
    });
    assert.deepEqual(out.sort(), [
      'endpoints[1].name: duplicate name "a"',
      'keys[0].models[0]: unknown model "nope"',
      'keys[0].team: unknown team "t"',
      'models[0].targets[1].endpoint: unknown endpoint "zz"',
      'routing_rules[0].route_to: unknown model "x"',
      'routing_rules[0].when.max_prompt_tokens: must not be less than min_prompt_tokens',
      'routing_rules[0].when.teams[0]: unknown team "t"',
    ]);
  });
});
