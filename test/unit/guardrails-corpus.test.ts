// False positives on ordinary business text: a corpus of a few hundred sentences we wrote
// (test/fixtures/benign-corpus.txt; dates, prices, versions, order and tracking numbers, times,
// and sentences that mention passwords, keys, cards, rules and instructions without containing
// any). Every built-in detector and the injection score at the default threshold are run over
// it; the rates are reported in docs/GUARDRAILS.md.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ROOT } from '../helpers/gateway.js';
import { PII } from '../../gateway/guardrails/detectors/pii.js';
import { SECRETS } from '../../gateway/guardrails/detectors/secrets.js';
import { injection, injectionScore } from '../../gateway/guardrails/detectors/injection.js';

const lines = fs
  .readFileSync(path.join(ROOT, 'test', 'fixtures', 'benign-corpus.txt'), 'utf8')
  .split('\n')
  .filter((l) => l.trim());

test('the benign corpus has a few hundred sentences', () => {
  assert.ok(lines.length >= 250, `${lines.length} sentences`);
});

test('no built-in detector fires on ordinary business sentences', () => {
  const hits: string[] = [];
  for (const [name, d] of Object.entries({ ...PII, ...SECRETS }))
    for (const l of lines) {
      const f = d(l);
      if (f.length) hits.push(`${name}: ${JSON.stringify(l)} → ${f.map((x) => JSON.stringify(l.slice(x.start, x.end))).join(', ')}`);
    }
  assert.deepEqual(hits, [], `false positives (${hits.length} of ${lines.length} sentences):\n${hits.join('\n')}`);
});

test('the prompt-injection score stays below the default threshold (0.5) on every sentence', () => {
  const high = lines.map((l) => ({ l, s: injectionScore(injection(l)) })).filter((x) => x.s >= 0.5);
  assert.deepEqual(high, []);
});
