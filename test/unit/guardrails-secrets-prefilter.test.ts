// The secrets detectors look for the literal text every match of their expressions holds from its
// rarest character (secrets.ts): their findings must be those of the detectors as they were, which
// looked for it with indexOf of the whole literal. The old detectors are kept here as the
// reference, run over generated texts with real tokens, their prefixes and pieces of them.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SECRETS, looksRandom } from '../../gateway/guardrails/detectors/secrets.js';
import { matchAll, type Finding } from '../../gateway/guardrails/detectors/types.js';
import { Rng } from '../helpers/random.js';

const AWS_KEY_ID = /(?<![A-Za-z0-9])(?:AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16}(?![A-Za-z0-9])/g;
const GCP_KEY = /(?<![\w-])AIza[0-9A-Za-z_-]{35}(?![\w-])/g;
const AZURE_KEY = /AccountKey=[A-Za-z0-9+/]{86}==/g;
const PEM = /-----BEGIN (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----(?:[\s\S]*?-----END (?:[A-Z0-9]+ ){0,3}PRIVATE KEY(?: BLOCK)?-----|[A-Za-z0-9+/=\s:,-]*$)/g;
const GITHUB = /(?<![A-Za-z0-9_])(?:(?:ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9_]{82})(?![A-Za-z0-9_])/g;
const SLACK = /(?<![A-Za-z0-9-])xox[abposr]-(?:\d+-)+[A-Za-z0-9]{10,48}(?![A-Za-z0-9-])|https:\/\/hooks\.slack\.com\/services\/T[A-Z0-9]{6,12}\/B[A-Z0-9]{6,12}\/[A-Za-z0-9]{20,32}/g;
const STRIPE = /(?<![A-Za-z0-9_])(?:sk|rk)_live_[A-Za-z0-9]{20,99}(?![A-Za-z0-9_])/g;
const JWT = /(?<![\w-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}(?![\w-])/g;
const SK = /(?<![\w-])sk-(?:airlock-|proj-|ant-(?:api\d\d-)?|svcacct-)?[A-Za-z0-9_-]{20,200}(?![\w-])/g;

function jwtValid(m: RegExpExecArray): boolean {
  try {
    const header = JSON.parse(Buffer.from(m[0].slice(0, m[0].indexOf('.')), 'base64url').toString('utf8')) as unknown;
    return !!header && typeof header === 'object' && 'alg' in header;
  } catch {
    return false;
  }
}

// the detectors as they were
const reference: Record<string, (t: string) => Finding[]> = {
  cloud_keys: (t) => [
    ...matchAll(AWS_KEY_ID, t, 'secrets', 'AWS_KEY'),
    ...(t.indexOf('AIza') === -1 ? [] : matchAll(GCP_KEY, t, 'secrets', 'GCP_KEY')),
    ...(t.indexOf('AccountKey=') === -1 ? [] : matchAll(AZURE_KEY, t, 'secrets', 'AZURE_KEY')),
  ],
  private_keys: (t) => (t.indexOf('-----BEGIN') === -1 ? [] : matchAll(PEM, t, 'secrets', 'PRIVATE_KEY')),
  platform_tokens: (t) => [
    ...(t.indexOf('_') === -1 ? [] : matchAll(GITHUB, t, 'secrets', 'GITHUB_TOKEN')),
    ...(t.indexOf('xox') === -1 && t.indexOf('hooks.slack.com') === -1 ? [] : matchAll(SLACK, t, 'secrets', 'SLACK_TOKEN')),
    ...(t.indexOf('_live_') === -1 ? [] : matchAll(STRIPE, t, 'secrets', 'STRIPE_KEY')),
  ],
  jwt: (t) => (t.indexOf('eyJ') === -1 ? [] : matchAll(JWT, t, 'secrets', 'JWT', jwtValid)),
  sk_keys: (t) => (t.indexOf('sk-') === -1 ? [] : matchAll(SK, t, 'secrets', 'API_KEY', (m) => m[0].startsWith('sk-airlock-') || looksRandom(m[0].slice(3), 3.2))),
};

const b64 = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');
const TOKENS = [
  'AKIAIOSFODNN7EXAMPLE',
  'ASIAY34FZKBOKMUTVV7A',
  'ABIA2345672345672345',
  'ACCAQWERTYUIOPASDFGH',
  `AIza${'SyA1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q'}`,
  `AccountKey=${'aB3dE5gH7jK9mN1pQ3sT5vW7yZ9bC1eF3hJ5kL7nP9rS1uV3xY5zA7cD9fG1iK3lM5oQ7rT9uW1xZ3aB5dE7gH9j'.slice(0, 86)}==`,
  '-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7\n-----END RSA PRIVATE KEY-----',
  '-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC',
  `ghp_${'a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8'}`,
  `gho_${'Z9y8X7w6V5u4T3s2R1q0P9o8N7m6L5k4J3i2'}`,
  ...['ghu_', 'ghs_', 'ghr_'].map((p) => `${p}${'Q1w2E3r4T5y6U7i8O9p0A1s2D3f4G5h6J7k8'}`),
  `github_pat_${'11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789ab'.slice(0, 82)}`,
  'xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx',
  'https://hooks.slack.com/services/T0123ABCD/B0456EFGH/aBcDeFgHiJkLmNoPqRsTuVwX',
  `sk_live_${'4eC39HqLyjWDarjtT1zdp7dc'}`,
  `rk_live_${'51H8abcDEFghiJKLmnoPQR'}`,
  `eyJ${b64({ alg: 'HS256', typ: 'JWT' }).slice(3)}.${b64({ sub: '1234567890', name: 'Jane' })}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`,
  `eyJ${b64({ typ: 'JWT' }).slice(3)}.${b64({ sub: '1' })}.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c`,
  'sk-airlock-bench-key-000000000000000000000001',
  'sk-proj-Ab3De5Gh7Jk9Mn1Pq3St5Vw7Yz9Bc1Ef3',
  'sk-ant-api03-Zx9Wv7Ut5Sr3Qp1On9Ml7Kj5Ih3Gf1Ed',
  'sk-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa',
];
const PIECES = [
  'AKIA', 'ASIA', 'ABIA', 'ACCA', 'AIza', 'Account', 'AccountKey=', 'Key=', 'A', 'AK', 'AC', 'BEGIN', '-----', '-----BEGIN ', 'PRIVATE KEY', 'END',
  'gh', 'ghp', 'p_', '_', 'github', 'github_', '_pat_', 'xo', 'xox', 'xoxb-', 'https://', '://', 'hooks.slack.com', 'ey', 'J', 'eyJ', 'sk', 'sk-', 'k-', 'rk', '_live_', 'live',
];
const FILL = [' ', '-', '.', '/', ':', '=', '\n', 'x', 'é', 'abcdefghij', 'ABCDEFGHIJ', '0123456789', 'The quarterly report', 'Ask @ops-oncall'];

function text(rng: Rng): string {
  let s = '';
  const n = rng.range(1, 10);
  for (let j = 0; j < n; j++) {
    const r = rng.float();
    s += r < 0.25 ? rng.pick(TOKENS) : r < 0.65 ? rng.pick(PIECES) : rng.pick(FILL);
  }
  return s;
}

test('secrets: the same findings as the detectors that looked for whole literals with indexOf, on 60,000 generated texts', () => {
  const rng = new Rng(1011);
  const counts: Record<string, number> = {};
  for (let i = 0; i < 60000; i++) {
    const t = text(rng);
    for (const [name, ref] of Object.entries(reference)) {
      const want = ref(t);
      assert.deepEqual(SECRETS[name as keyof typeof SECRETS](t), want, `${name} in ${JSON.stringify(t)}`);
      counts[name] = (counts[name] ?? 0) + want.length;
    }
  }
  for (const [name, n] of Object.entries(counts)) assert.ok(n > 1000, `${name}: ${n} findings`);
});
