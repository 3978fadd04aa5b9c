// Validation messages people can act on (gateway/config/schema.ts fromZod): plain words instead
// of zod's defaults, and "did you mean" for an unknown key at any depth.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { configSchema, formatIssue, fromZod, nearest, teamSchema } from '../../gateway/config/schema.js';

const problems = (doc: unknown, schema = configSchema) => {
  const r = schema.safeParse(doc);
  return r.success ? [] : fromZod(r.error, schema).map(formatIssue);
};
const ep = { name: 'gpu-1', base_url: 'http://10.0.0.5:8000/v1' };

describe('validation messages', () => {
  test('numbers, strings and lists out of range say the limit in words', () => {
    assert.deepEqual(problems({ endpoints: [{ ...ep, max_concurrency: -1 }] }), ['endpoints[0].max_concurrency: must be 1 or more']);
    assert.deepEqual(problems({ models: [{ name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'm', weight: 0 }] }] }), ['models[0].targets[0].weight: must be more than 0']);
    assert.deepEqual(problems({ models: [{ name: 'chat', targets: [] }] }), ['models[0].targets: needs at least one target'], 'a message the schema spells out is kept');
    assert.deepEqual(problems({ endpoints: [{ ...ep, timeout_ms: 'slow' }] }), ['endpoints[0].timeout_ms: must be a number, not a string']);
    for (const p of problems({ endpoints: [{ ...ep, max_concurrency: -1 }], models: [{ name: 'chat', strategy: 'random', targets: [{ endpoint: 'gpu-1', model: 'm' }] }] }))
      assert.doesNotMatch(p, /Too small|Too big|Invalid input|Invalid option|expected/);
  });

  test('an unknown key gets the nearest known one, at the top level and deeper', () => {
    assert.deepEqual(problems({ endpoint: [ep] }), ['(root): unknown key "endpoint"; did you mean "endpoints"?']);
    assert.deepEqual(problems({ Endpoints: [ep] }), ['(root): unknown key "Endpoints"; did you mean "endpoints"?']);
    assert.deepEqual(problems({ endpoints: [{ ...ep, timeout: 5 }] }), ['endpoints[0]: unknown key "timeout"; did you mean "timeout_ms"?']);
    assert.deepEqual(problems({ endpoints: [{ ...ep, 'max-concurrency': 5 }] }), ['endpoints[0]: unknown key "max-concurrency"; did you mean "max_concurrency"?']);
    assert.deepEqual(problems({ zebra: 1 }), ['(root): unknown key "zebra"'], 'no guess when nothing is near');
    assert.match(problems({ name: 'research', budgit: 3 }, teamSchema as never).join(), /unknown key "budgit"/);
  });

  test('a bad field inside an object detector is named by its full path, not only detectors[N]', () => {
    const g = (d: unknown) => ({ guardrails: [{ name: 'p', direction: ['input'], action: 'block', detectors: ['pii', d] }] });
    assert.deepEqual(problems(g({ type: 'regex', pattern: 5 })), ['guardrails[0].detectors[1].pattern: must be a string, not a number']);
    assert.deepEqual(problems(g({ type: 'regex' })), ['guardrails[0].detectors[1].pattern: is required']);
    assert.deepEqual(problems(g({ type: 'regex', pattern: 'a', label: 'lower' })), ['guardrails[0].detectors[1].label: must be upper case letters, digits and _ (e.g. PROJECT_CODE), at most 32 characters']);
    assert.deepEqual(problems(g({ type: 'keywords', words: ['Falcon', ''] })), ['guardrails[0].detectors[1].words[1]: must not be empty']);
    assert.deepEqual(problems(g({ type: 'max_size', chars: 'x' })), ['guardrails[0].detectors[1].chars: must be a number, not a string']);
    assert.deepEqual(problems(g({ type: 'guard_model', model: 'guard' })), ['guardrails[0].detectors[1].on_failure: must be one of "open", "closed"']);
    assert.deepEqual(problems(g({ type: 'Regex', pattern: 'a' })), ['guardrails[0].detectors[1].type: must be regex, keywords, max_size, injection, response_schema or guard_model']);
    assert.deepEqual(problems(g({ type: 'regex', pattern: 'a', bogus: 1 })), ['guardrails[0].detectors[1]: unknown key "bogus"']);
    // not an object: what is accepted, at the detector's place
    for (const d of ['pi', 5, null]) {
      const p = problems(g(d));
      assert.equal(p.length, 1);
      assert.match(p[0]!, /^guardrails\[0\]\.detectors\[1\]: must be one of pii, secrets, .* or an object with type regex/);
    }
  });

  test('nearest', () => {
    assert.equal(nearest('modles', ['endpoints', 'models', 'teams']), 'models');
    assert.equal(nearest('xyz', ['endpoints', 'models']), undefined);
  });
});
