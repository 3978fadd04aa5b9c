// The declarative config through the real `airlock` CLI: validation errors that name the field,
// nothing half-applied, dry runs and diffs, export/apply round trips, secrets, keys created on
// the command line, and changes picked up by a running gateway without a restart.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import YAML from 'yaml';
import Database from 'better-sqlite3';
import { TEST_KEY, basicConfig, eventually, runCli, startGateway, tmpDir, writeConfig, type CliResult } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const out = (r: CliResult) => `exit ${r.code}\nstdout:\n${r.stdout}\nstderr:\n${r.stderr}`;
const lines = (r: CliResult) => (r.stdout + '\n' + r.stderr).split('\n').map((l) => l.trim());

/** sha256 of the database file (the CLI checkpoints and removes the WAL when it closes). */
function dbHash(dataDir: string): string {
  assert.ok(!fs.existsSync(path.join(dataDir, 'airlock.db-wal')) || fs.statSync(path.join(dataDir, 'airlock.db-wal')).size === 0);
  return createHash('sha256').update(fs.readFileSync(path.join(dataDir, 'airlock.db'))).digest('hex');
}

async function exportDoc(dataDir: string, format: 'yaml' | 'json' = 'yaml'): Promise<string> {
  const r = await runCli(['config', 'export', '--data-dir', dataDir, '--format', format]);
  assert.equal(r.code, 0, out(r));
  return r.stdout;
}

async function apply(dataDir: string, file: string, opts: { dryRun?: boolean; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return runCli(['config', 'apply', file, '--data-dir', dataDir, ...(opts.dryRun ? ['--dry-run'] : [])], { env: opts.env });
}

/** Two endpoints, two models, a team and a key: a realistic starting point. */
function startingConfig() {
  return {
    endpoints: [
      { name: 'gpu-1', base_url: 'http://10.0.0.5:8000/v1' },
      { name: 'gpu-2', base_url: 'http://10.0.0.6:11434/v1', max_concurrency: 8 },
    ],
    models: [
      { name: 'chat', strategy: 'fallback', targets: [{ endpoint: 'gpu-1', model: 'llama-8b' }, { endpoint: 'gpu-2', model: 'llama3.1:8b' }] },
      { name: 'embed', targets: [{ endpoint: 'gpu-2', model: 'nomic-embed' }] },
    ],
    teams: [{ name: 'research' }],
    keys: [{ name: 'notebook-app', key: TEST_KEY, team: 'research' }],
  };
}

describe('config apply: errors name the field, and nothing is applied', () => {
  let dataDir: string;
  let cfgDir: string;
  let baseline: string;
  let baselineDb: string;

  before(async () => {
    dataDir = tmpDir();
    cfgDir = tmpDir('airlock-cfg-');
    const r = await apply(dataDir, writeConfig(cfgDir, startingConfig(), 'start.yaml'));
    assert.equal(r.code, 0, out(r));
    baseline = await exportDoc(dataDir);
    assert.match(baseline, /gpu-2/);
    baselineDb = dbHash(dataDir);
  });
  after(() => {
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(cfgDir, { recursive: true, force: true });
  });

  test('an unknown endpoint in a model target is named by its path, exactly', async () => {
    const doc = startingConfig();
    doc.endpoints.push({ name: 'gpu-9', base_url: 'http://10.0.0.9:8000/v1' }); // a valid change in the same file
    doc.models[0]!.strategy = 'weighted';
    doc.models[1]!.targets[0]!.endpoint = 'gpu-3';
    const file = writeConfig(cfgDir, doc, 'unknown-endpoint.yaml');
    const r = await apply(dataDir, file);
    assert.equal(r.code, 2, out(r));
    assert.ok(lines(r).includes('models[1].targets[0].endpoint: unknown endpoint "gpu-3"'), out(r));
    assert.equal(dbHash(dataDir), baselineDb, 'a refused file changes nothing, not even its valid parts');
  });

  test('unknown keys are refused with their path', async () => {
    const doc: any = startingConfig();
    doc.endpoints[1].colour = 'red';
    doc.models[0].targets[0].wieght = 2;
    doc.guardrailz = [];
    const r = await apply(dataDir, writeConfig(cfgDir, doc, 'unknown-keys.yaml'));
    assert.equal(r.code, 2, out(r));
    const l = lines(r);
    assert.ok(l.some((x) => x.startsWith('endpoints[1]: ') && x.includes('"colour"')), out(r));
    assert.ok(l.some((x) => x.startsWith('models[0].targets[0]: ') && x.includes('"wieght"')), out(r));
    assert.ok(l.some((x) => x.includes('"guardrailz"')), out(r));
    assert.equal(dbHash(dataDir), baselineDb);
  });

  test('bad values are refused: base_url not a URL, negative weight, strategy typo', async () => {
    const doc: any = startingConfig();
    doc.teams.push({ name: 'ops' }); // valid, must not be applied either
    doc.endpoints[0].base_url = 'gpu-1.local:8000';
    doc.models[0].targets[1].weight = -1;
    doc.models[1].strategy = 'least_busy';
    const r = await apply(dataDir, writeConfig(cfgDir, doc, 'bad-values.yaml'));
    assert.equal(r.code, 2, out(r));
    const l = lines(r);
    const line = (p: string) => l.find((x) => x.startsWith(p + ': '));
    assert.match(line('endpoints[0].base_url') ?? '', /URL/, out(r));
    assert.ok(line('models[0].targets[1].weight'), out(r));
    assert.match(line('models[1].strategy') ?? '', /least-busy/, 'the message lists the valid strategies');
    assert.equal(dbHash(dataDir), baselineDb);
  });

  test('a YAML syntax error names file:line:col', async () => {
    const head = ['endpoints:', '  - name: gpu-1', '    base_url: http://10.0.0.5:8000/v1'];
    // line 4, column 5: the same key twice in one mapping
    const dupKey = path.join(cfgDir, 'dup-key.yaml');
    fs.writeFileSync(dupKey, [...head, '    name: gpu-2', ''].join('\n'));
    // line 4, column 1: indented less than its mapping
    const badIndent = path.join(cfgDir, 'bad-indent.yaml');
    fs.writeFileSync(badIndent, [...head, '   max_concurrency: 4', ''].join('\n'));
    for (const [file, where] of [[dupKey, '4:5'], [badIndent, '4:1']] as const) {
      const r = await apply(dataDir, file);
      assert.equal(r.code, 2, out(r));
      assert.ok(r.stderr.includes(`${file}:${where}: `), `expected ${file}:${where}\n${out(r)}`);
      assert.equal(dbHash(dataDir), baselineDb);
    }
  });

  test('an alias bomb and a file of several YAML documents: exit 2 naming the file and the problem, in its own words (apply and serve --config)', async () => {
    // "billion laughs": nine aliases of nine of the last level, nine levels deep
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) {
      const p = String.fromCharCode(96 + i);
      levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill('*' + p).join(',')}]`);
    }
    const bomb = path.join(cfgDir, 'bomb.yaml');
    fs.writeFileSync(bomb, levels.join('\n') + '\n');
    const twoDocs = path.join(cfgDir, 'two-docs.yaml');
    const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    fs.writeFileSync(twoDocs, 'teams:\n  - name: research\n---\nteams:\n  - name: ops\n');
    for (const [file, msg] of [
      [bomb, new RegExp(`^airlock: config file ${esc(bomb)}: its YAML aliases \\(\\*name\\) expand too far .*alias bomb`)],
      [twoDocs, new RegExp(`^airlock: config file ${esc(twoDocs)}:3:1: a second YAML document begins here \\("---"\\): a config file holds one document`)],
    ] as const) {
      for (const args of [['config', 'apply', file, '--data-dir', dataDir], ['config', 'apply', file, '--dry-run', '--data-dir', dataDir], ['serve', '--config', file, '--data-dir', dataDir, '--port', '0', '--admin-port', '0']]) {
        const r = await runCli(args);
        assert.equal(r.code, 2, out(r));
        assert.match(r.stderr, msg, out(r));
        assert.doesNotMatch(r.stderr, /parseAllDocuments|resource exhaustion/, 'no advice meant for programmers');
        assert.equal(dbHash(dataDir), baselineDb);
      }
    }
  });

  test('a secret reference to an unset variable names the field and the variable', async () => {
    const doc: any = startingConfig();
    doc.endpoints[0].api_key = '${env:AIRLOCK_TEST_UNSET_VAR}';
    const r = await apply(dataDir, writeConfig(cfgDir, doc, 'missing-env.yaml'), { env: { AIRLOCK_TEST_UNSET_VAR: '' } });
    assert.equal(r.code, 2, out(r));
    assert.ok(lines(r).some((x) => x.startsWith('endpoints[0].api_key: ') && x.includes('AIRLOCK_TEST_UNSET_VAR')), out(r));
    assert.equal(dbHash(dataDir), baselineDb);
  });

  test('a malformed reference is refused naming the field, never stored as the literal secret', async () => {
    for (const v of ['${env:GPU1-KEY}', '${env:}', '${env: X}', 'Bearer ${env:X}', '${env:X}x', '${env:1X}']) {
      const doc: any = startingConfig();
      doc.endpoints[0].api_key = v;
      const r = await apply(dataDir, writeConfig(cfgDir, doc, 'malformed-env.yaml'), { env: { X: 'secret' } });
      assert.equal(r.code, 2, `${v}: ${out(r)}`);
      assert.ok(lines(r).some((x) => x.startsWith('endpoints[0].api_key: ') && x.includes('looks like a reference ${env:NAME} but is not one')), `${v}: ${out(r)}`);
      assert.equal(dbHash(dataDir), baselineDb);
    }
  });

  test('after all refused files, the exported config is what it was', async () => {
    assert.equal(await exportDoc(dataDir), baseline);
  });
});

describe('config apply: dry run, idempotency and diffs', () => {
  test('dry run plans, apply applies once, changes and removals are shown, absent sections are kept', async () => {
    const dataDir = tmpDir();
    const cfgDir = tmpDir('airlock-cfg-');
    try {
      // `config export` never creates an install (ops.test.ts): an empty file makes one
      assert.equal((await apply(dataDir, writeConfig(cfgDir, {}, 'empty.yaml'))).code, 0);
      const empty = await exportDoc(dataDir);
      const emptyDb = dbHash(dataDir);
      const file = writeConfig(cfgDir, startingConfig(), 'a.yaml');

      const dry = await apply(dataDir, file, { dryRun: true });
      assert.equal(dry.code, 0, out(dry));
      for (const c of ['+ endpoints/gpu-1', '+ endpoints/gpu-2', '+ models/chat', '+ models/embed', '+ teams/research', '+ keys/notebook-app'])
        assert.ok(lines(dry).includes(c), `dry run lists "${c}"\n${out(dry)}`);
      assert.equal(dbHash(dataDir), emptyDb, 'a dry run changes nothing');

      const first = await apply(dataDir, file);
      assert.equal(first.code, 0, out(first));
      assert.ok(lines(first).includes('+ endpoints/gpu-1'), out(first));
      const applied = await exportDoc(dataDir);
      assert.notEqual(applied, empty);
      const appliedDb = dbHash(dataDir);

      const second = await apply(dataDir, file);
      assert.equal(second.code, 0, out(second));
      assert.match(second.stdout, /no changes/);
      assert.ok(!lines(second).some((l) => /^[+~-] /.test(l)), out(second));
      assert.equal(dbHash(dataDir), appliedDb, 'applying the same file twice is idempotent');
      // a field written at its default is no change either
      const defaults: any = startingConfig();
      defaults.keys[0].disabled = false;
      const third = await apply(dataDir, writeConfig(cfgDir, defaults, 'defaults.yaml'));
      assert.equal(third.code, 0, out(third));
      assert.match(third.stdout, /no changes/, out(third));
      assert.equal(await exportDoc(dataDir), applied, 'disabled: false written out changes nothing');

      // one field of one model
      const changed = startingConfig();
      changed.models[0]!.strategy = 'least-latency';
      const r3 = await apply(dataDir, writeConfig(cfgDir, changed, 'b.yaml'));
      assert.equal(r3.code, 0, out(r3));
      assert.deepEqual(lines(r3).filter((l) => /^[+~-] /.test(l)), ['~ models/chat (strategy)']);

      // remove one item of a section the file has; gpu-2 is still used, so drop its users too
      const removed = startingConfig();
      removed.endpoints = removed.endpoints.filter((e) => e.name !== 'gpu-2');
      removed.models = [{ name: 'chat', strategy: 'least-latency', targets: [{ endpoint: 'gpu-1', model: 'llama-8b' }] }];
      const r4 = await apply(dataDir, writeConfig(cfgDir, removed, 'c.yaml'));
      assert.equal(r4.code, 0, out(r4));
      const l4 = lines(r4);
      assert.ok(l4.includes('- endpoints/gpu-2'), out(r4));
      assert.ok(l4.includes('- models/embed'), out(r4));
      assert.ok(l4.includes('~ models/chat (targets)'), out(r4));
      const afterRemoval = YAML.parse(await exportDoc(dataDir));
      assert.deepEqual(afterRemoval.endpoints.map((e: { name: string }) => e.name), ['gpu-1']);

      // a file with only `teams`: endpoints, models and keys stay as they are
      const r5 = await apply(dataDir, writeConfig(cfgDir, { teams: [{ name: 'research' }, { name: 'ops', description: 'operations' }] }, 'd.yaml'));
      assert.equal(r5.code, 0, out(r5));
      assert.deepEqual(lines(r5).filter((l) => /^[+~-] /.test(l)), ['+ teams/ops']);
      const final = YAML.parse(await exportDoc(dataDir));
      assert.deepEqual(final.endpoints, afterRemoval.endpoints);
      assert.deepEqual(final.models, afterRemoval.models);
      assert.deepEqual(final.keys, afterRemoval.keys);
      assert.deepEqual(final.teams.map((t: { name: string }) => t.name), ['research', 'ops']);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
      fs.rmSync(cfgDir, { recursive: true, force: true });
    }
  });
});

describe('config export → apply on a fresh data dir → export', () => {
  const rich = {
    endpoints: [
      {
        name: 'gpu-1',
        type: 'openai',
        base_url: 'http://10.0.0.5:8000/v1',
        api_key: '${env:GPU1_KEY}',
        max_concurrency: 32,
        timeout_ms: 120000,
        first_byte_timeout_ms: 5000,
        health_check: { enabled: true, interval_ms: 5000, timeout_ms: 1000, unhealthy_after: 3 },
      },
      { name: 'ollama-box', type: 'ollama', base_url: 'http://10.0.0.7:11434/v1' },
    ],
    models: [
      {
        name: 'chat',
        strategy: 'weighted',
        targets: [
          { endpoint: 'gpu-1', model: 'meta-llama/Llama-3.1-8B-Instruct', weight: 3 },
          { endpoint: 'ollama-box', model: 'llama3.1:8b', weight: 1 },
        ],
        price: { input_per_million: 0.2, output_per_million: 0.6 },
        max_attempts: 3,
      },
      { name: 'cheap', strategy: 'least-busy', targets: [{ endpoint: 'ollama-box', model: 'qwen2.5:1.5b' }] },
    ],
    teams: [{ name: 'research', description: 'the lab' }, { name: 'ops' }],
    keys: [
      { name: 'notebook-app', key: TEST_KEY, team: 'research', models: ['chat'], app: 'notebooks' },
      { name: 'cron', team: 'ops', disabled: true, expires_at: '2031-01-31T00:00:00Z' },
    ],
    routing_rules: [{ name: 'ops-cheap', when: { model: 'auto', teams: ['ops'] }, route_to: 'cheap' }],
    settings: { queue_timeout_ms: 1000, shutdown_grace_ms: 5000, breaker: { failure_threshold: 3, cooldown_ms: 1000 } },
  };
  const env = { GPU1_KEY: 'round-trip-secret-' + randomBytes(8).toString('hex') };

  for (const format of ['yaml', 'json'] as const) {
    test(`gives the identical document (${format})`, async () => {
      const dirs = [tmpDir(), tmpDir(), tmpDir('airlock-cfg-')] as const;
      try {
        const [a, b, cfg] = dirs;
        const r1 = await apply(a, writeConfig(cfg, rich, 'rich.yaml'), { env });
        assert.equal(r1.code, 0, out(r1));
        const exported = await exportDoc(a, format);
        const parsed = format === 'json' ? JSON.parse(exported) : YAML.parse(exported);
        // the export holds what was applied (defaults filled in), not a trivial document
        assert.equal(parsed.endpoints.length, 2);
        assert.equal(parsed.endpoints[0].api_key, '${env:GPU1_KEY}');
        assert.deepEqual(parsed.models[0].targets, rich.models[0]!.targets);
        assert.equal(parsed.keys.find((k: { name: string }) => k.name === 'cron').disabled, true);
        assert.equal(parsed.routing_rules[0].route_to, 'cheap');
        assert.equal(parsed.settings.breaker.failure_threshold, 3);

        const file = path.join(cfg, `exported.${format}`);
        fs.writeFileSync(file, exported);
        const r2 = await apply(b, file, { env });
        assert.equal(r2.code, 0, out(r2));
        assert.equal(await exportDoc(b, format), exported);
      } finally {
        for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
      }
    });
  }
});

describe('secrets', () => {
  let up: TestUpstream;
  before(async () => {
    up = await startUpstream();
  });
  after(async () => {
    await up.close();
  });

  test("an MCP server's literal header and env values: exported as null and named under \"Not exported\", like an endpoint's literal api_key; the export re-applies here, and elsewhere once written back", async () => {
    const dir = tmpDir('airlock-mcp-export-');
    const here = path.join(dir, 'here');
    const there = path.join(dir, 'there');
    try {
      const file = writeConfig(dir, {
        endpoints: [{ name: 'gpu-1', base_url: 'http://10.0.0.5:8000/v1', api_key: 'sk-upstream-literal-1' }],
        mcp_servers: [
          { name: 'tickets', transport: 'http', url: 'http://10.0.0.9:3000/mcp', headers: { Authorization: 'Bearer literal-mcp-secret-1', 'X-Team': '${env:TICKETS_TEAM}' } },
          { name: 'files', transport: 'stdio', command: '/usr/bin/true', env: { FILES_TOKEN: 'literal-mcp-secret-2' } },
        ],
      });
      const r = await runCli(['config', 'apply', file, '--data-dir', here], { env: { TICKETS_TEAM: 'support' } });
      assert.equal(r.code, 0, out(r));
      const yaml = await exportDoc(here);
      assert.ok(!yaml.includes('literal-mcp-secret'), 'no secret in the export');
      const note = yaml.split('\n').filter((l) => l.startsWith('#   '));
      assert.ok(note.some((l) => /^# {3}endpoints\/gpu-1: api_key \(a literal secret/.test(l)), yaml);
      assert.ok(note.some((l) => /^# {3}mcp_servers\/tickets: headers Authorization \(literal secret, stored encrypted; null here keeps the stored value on this install\): write it back, e\.g\. as \$\{env:NAME\}/.test(l)), yaml);
      assert.ok(note.some((l) => /^# {3}mcp_servers\/files: env FILES_TOKEN \(literal secret/.test(l)), yaml);
      assert.ok(!note.some((l) => l.includes('X-Team')), 'a reference is exported as itself');
      const json = await runCli(['config', 'export', '--data-dir', here, '--format', 'json']);
      assert.match(json.stderr, /airlock: not exported: mcp_servers\/tickets: headers Authorization/);
      const doc = YAML.parse(yaml);
      assert.deepEqual(doc.mcp_servers[0].headers, { Authorization: null, 'X-Team': '${env:TICKETS_TEAM}' });

      const exported = path.join(dir, 'exported.yaml');
      fs.writeFileSync(exported, yaml);
      const again = await runCli(['config', 'apply', exported, '--data-dir', here]);
      assert.equal(again.code, 0, out(again));
      assert.match(again.stdout, /no changes/, 'the export re-applies on its install: null keeps the stored values');

      const elsewhere = await runCli(['config', 'apply', exported, '--data-dir', there], { env: { TICKETS_TEAM: 'support' } });
      assert.equal(elsewhere.code, 2, out(elsewhere));
      assert.match(elsewhere.stderr, /mcp_servers\[0\]\.headers\.Authorization: null keeps the stored value, but none is stored: give the value \(config export writes a literal secret as null: write it back/);
      doc.mcp_servers[0].headers.Authorization = '${env:TICKETS_AUTH}';
      doc.mcp_servers[1].env.FILES_TOKEN = '${env:FILES_TOKEN}';
      const written = writeConfig(dir, doc, 'written-back.yaml');
      const applied = await runCli(['config', 'apply', written, '--data-dir', there], { env: { TICKETS_TEAM: 'support', TICKETS_AUTH: 'Bearer x', FILES_TOKEN: 'y' } });
      assert.equal(applied.code, 0, out(applied));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test('an ${env:...} api_key is stored encrypted, exported as the reference, and sent upstream', async () => {
    const dataDir = tmpDir();
    const cfgDir = tmpDir('airlock-cfg-');
    const envSecret = 'gpu1-secret-' + randomBytes(12).toString('hex');
    const literalSecret = 'literal-secret-' + randomBytes(12).toString('hex');
    const doc = {
      endpoints: [
        { name: 'gpu-1', base_url: up.url, api_key: '${env:GPU1_KEY}', health_check: { enabled: false } },
        { name: 'gpu-2', base_url: up.url, api_key: literalSecret, health_check: { enabled: false } },
      ],
      models: [
        { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
        { name: 'chat-2', targets: [{ endpoint: 'gpu-2', model: 'test-model' }] },
      ],
      keys: [{ name: 'app', key: TEST_KEY }],
    };
    const r = await apply(dataDir, writeConfig(cfgDir, doc), { env: { GPU1_KEY: envSecret } });
    assert.equal(r.code, 0, out(r));
    assert.ok(!r.stdout.includes(envSecret) && !r.stderr.includes(envSecret) && !r.stdout.includes(literalSecret));

    const exported = await exportDoc(dataDir);
    const parsed = YAML.parse(exported);
    assert.equal(parsed.endpoints[0].api_key, '${env:GPU1_KEY}');
    assert.equal(parsed.endpoints[1].api_key, undefined, 'a literal secret is not exported');
    assert.ok(!exported.includes(envSecret) && !exported.includes(literalSecret));
    const exportedJson = await exportDoc(dataDir, 'json');
    assert.ok(!exportedJson.includes(envSecret) && !exportedJson.includes(literalSecret));

    // The gateway runs without GPU1_KEY in its environment: the value comes from the store.
    const gw = await startGateway({ dataDir, env: { GPU1_KEY: '' } });
    try {
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
      up.reset();
      await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] });
      await client.chat.completions.create({ model: 'chat-2', messages: [{ role: 'user', content: 'hi' }] });
      const seen = up.completions().map((q) => q.headers.authorization);
      assert.deepEqual(seen, [`Bearer ${envSecret}`, `Bearer ${literalSecret}`]);

      const list = await gw.admin('GET', '/endpoints');
      assert.equal(list.status, 200);
      const text = JSON.stringify(list.body);
      assert.ok(!text.includes(envSecret) && !text.includes(literalSecret), text);
      const gpu2 = await gw.admin('GET', '/endpoints/gpu-2');
      assert.equal(gpu2.body.api_key_set, true);
      assert.equal(gpu2.body.api_key, undefined);
      const cfg = await gw.admin('GET', '/config?format=yaml');
      assert.ok(typeof cfg.body === 'string' && cfg.body.includes('${env:GPU1_KEY}') && !cfg.body.includes(envSecret) && !cfg.body.includes(literalSecret));

      // on disk, while running (WAL not yet checkpointed) ...
      assertNotOnDisk(dataDir, [envSecret, literalSecret]);
    } finally {
      assert.equal((await gw.stop()).code, 0);
    }
    // ... and after a clean stop
    assertNotOnDisk(dataDir, [envSecret, literalSecret]);
    fs.rmSync(dataDir, { recursive: true, force: true });
    fs.rmSync(cfgDir, { recursive: true, force: true });
  });
});

function assertNotOnDisk(dataDir: string, secrets: string[]): void {
  const files = fs.readdirSync(dataDir).filter((f) => f.startsWith('airlock.db'));
  assert.ok(files.includes('airlock.db'));
  for (const f of files) {
    const bytes = fs.readFileSync(path.join(dataDir, f));
    for (const s of secrets) {
      assert.equal(bytes.indexOf(Buffer.from(s, 'utf8')), -1, `${f} holds a secret in plain text`);
      assert.equal(bytes.indexOf(Buffer.from(s, 'utf16le')), -1, `${f} holds a secret in plain text (UTF-16)`);
    }
  }
}

describe('where no install exists yet', () => {
  test('a dry run, a refused file and a file that does not parse create nothing; a good file creates the install', async () => {
    const parent = tmpDir();
    const dir = path.join(parent, 'new-install');
    const cfg = tmpDir('airlock-cfg-');
    const dry = await runCli(['config', 'apply', writeConfig(cfg, { teams: [{ name: 'a' }] }, 'ok.yaml'), '--dry-run', '--data-dir', dir]);
    assert.equal(dry.code, 0, out(dry));
    assert.match(dry.stdout, /no install at .* yet; applying would create it with:/);
    assert.match(dry.stdout, /\+ teams\/a/);
    assert.equal(fs.existsSync(dir), false, `dry run: ${fs.existsSync(dir) ? fs.readdirSync(dir).join(', ') : ''}`);
    const refused = await runCli(['config', 'apply', writeConfig(cfg, { keys: [{ name: 'k', team: 'no-such-team' }] }, 'bad.yaml'), '--data-dir', dir]);
    assert.equal(refused.code, 2, out(refused));
    assert.match(refused.stderr, /refused .*nothing was applied/);
    assert.equal(fs.existsSync(dir), false, 'refused: nothing created');
    const broken = path.join(cfg, 'broken.yaml');
    fs.writeFileSync(broken, 'teams: [\n');
    const syntax = await runCli(['config', 'apply', broken, '--data-dir', dir]);
    assert.equal(syntax.code, 2, out(syntax));
    assert.equal(fs.existsSync(dir), false, 'unparsable: nothing created');
    const real = await runCli(['config', 'apply', path.join(cfg, 'ok.yaml'), '--data-dir', dir]);
    assert.equal(real.code, 0, out(real));
    assert.ok(fs.existsSync(path.join(dir, 'airlock.db')));
    assert.match((await runCli(['config', 'export', '--data-dir', dir])).stdout, /name: a/);
  });
});

describe('concurrent applies', () => {
  test('three config apply runs at once leave exactly one file\'s teams, never a mix of two', async () => {
    const dir = tmpDir();
    const cfg = tmpDir('airlock-cfg-');
    const files = ['a', 'b', 'c'].map((tag) => writeConfig(cfg, { teams: Array.from({ length: 300 }, (_, i) => ({ name: `${tag}-team-${i}` })) }, `${tag}.yaml`));
    // the data dir exists first (so the runs race on applying, not on creating it)
    const first = await runCli(['config', 'apply', writeConfig(cfg, { teams: [{ name: 'seed' }] }, 'seed.yaml'), '--data-dir', dir]);
    assert.equal(first.code, 0, out(first));
    for (let round = 0; round < 3; round++) {
      const runs = await Promise.all(files.map((f) => runCli(['config', 'apply', f, '--data-dir', dir])));
      for (const r of runs) assert.equal(r.code, 0, out(r));
      const exported = await runCli(['config', 'export', '--format', 'json', '--data-dir', dir]);
      const teams = (JSON.parse(exported.stdout) as { teams: { name: string }[] }).teams.map((t) => t.name);
      const tags = new Set(teams.map((n) => n.split('-')[0]));
      assert.equal(teams.length, 300, `round ${round}: ${teams.length} teams from ${[...tags].join(', ')}`);
      assert.equal(tags.size, 1, `round ${round}: teams of one file only, got ${[...tags].join(', ')}`);
    }
  });
});

describe('keys create', () => {
  test('--models with no model names (an empty $MODELS) or a name twice is a usage error, never a key for every model', async () => {
    const dir = tmpDir();
    const apply = await runCli(['config', 'apply', writeConfig(tmpDir('airlock-cfg-'), { teams: [{ name: 'research' }] }), '--data-dir', dir]);
    assert.equal(apply.code, 0, out(apply));
    for (const [models, why] of [['', /--models needs at least one model name/], [' , ', /--models needs at least one model name/], ['m1,,m1', /--models names "m1" twice/]] as const) {
      const r = await runCli(['keys', 'create', '--name', 'scripted', '--team', 'research', '--models', models, '--data-dir', dir]);
      assert.equal(r.code, 2, `${JSON.stringify(models)}: ${out(r)}`);
      assert.match(r.stderr, why);
      assert.equal(r.stdout, '', 'no key printed');
    }
    const list = await runCli(['keys', 'list', '--data-dir', dir]);
    assert.doesNotMatch(list.stdout, /scripted/, 'no key created');
  });

  let up: TestUpstream;
  let cfgDir: string;
  before(async () => {
    up = await startUpstream();
    cfgDir = tmpDir('airlock-cfg-');
  });
  after(async () => {
    await up.close();
    fs.rmSync(cfgDir, { recursive: true, force: true });
  });

  test('prints the key once; a running gateway on the same data dir accepts it; list never shows it', async () => {
    const config = basicConfig(up.url, {
      models: [
        { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
        { name: 'other', targets: [{ endpoint: 'gpu-1', model: 'other-model' }] },
      ],
    });
    const gw = await startGateway({ config });
    try {
      const r = await runCli(['keys', 'create', '--name', 'cli-app', '--team', 'research', '--models', 'chat', '--data-dir', gw.dataDir]);
      assert.equal(r.code, 0, out(r));
      const key = r.stdout.trim();
      assert.match(key, /^sk-airlock-[A-Za-z0-9_-]{22,}$/, 'stdout is the key and nothing else');
      assert.equal(r.stdout, key + '\n');

      const client = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
      const res = await eventually(
        () => client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'from the cli key' }] }),
        'the running gateway to accept the key created by the CLI',
        10_000,
        100,
      );
      assert.equal(res.choices[0]?.message.content, 'echo: from the cli key');
      const models = await client.models.list();
      assert.deepEqual(models.data.map((m) => m.id), ['chat'], '--models limits the key');
      await assert.rejects(
        client.chat.completions.create({ model: 'other', messages: [{ role: 'user', content: 'x' }] }),
        (e: unknown) => e instanceof OpenAI.PermissionDeniedError,
      );

      const list = await runCli(['keys', 'list', '--data-dir', gw.dataDir]);
      assert.equal(list.code, 0, out(list));
      const row = list.stdout.split('\n').find((l) => l.startsWith('cli-app'));
      assert.ok(row, out(list));
      assert.match(row, /research/);
      assert.ok(!list.stdout.includes(key), 'keys list never shows a full key');
      assert.ok(!list.stdout.includes(TEST_KEY), 'nor a literal key from the config');
      const keysApi = await gw.admin('GET', '/keys');
      assert.ok(!JSON.stringify(keysApi.body).includes(key));

      const dup = await runCli(['keys', 'create', '--name', 'cli-app', '--data-dir', gw.dataDir]);
      assert.equal(dup.code, 2, out(dup));
      assert.match(dup.stderr, /cli-app/);
      assert.match(dup.stderr, /exists/);
      assert.equal(dup.stdout, '', 'no key is printed when none was created');

      const noTeam = await runCli(['keys', 'create', '--name', 'orphan', '--team', 'nope', '--data-dir', gw.dataDir]);
      assert.equal(noTeam.code, 2, out(noTeam));
      assert.match(noTeam.stderr, /team/);
      assert.match(noTeam.stderr, /"nope"/);
      assert.equal(noTeam.stdout, '');
      const after = await runCli(['keys', 'list', '--data-dir', gw.dataDir]);
      assert.ok(!after.stdout.includes('orphan'), 'a refused key is not created');
    } finally {
      await gw.stop();
    }
  });

  test('config apply while the gateway runs: the new config is served without a restart', async () => {
    const gw = await startGateway({ config: basicConfig(up.url) });
    try {
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
      await assert.rejects(
        client.chat.completions.create({ model: 'chat-big', messages: [{ role: 'user', content: 'x' }] }),
        (e: unknown) => e instanceof OpenAI.NotFoundError,
      );
      const file = writeConfig(cfgDir, {
        models: [
          { name: 'chat', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] },
          { name: 'chat-big', targets: [{ endpoint: 'gpu-1', model: 'big-model' }] },
        ],
      }, 'live.yaml');
      const r = await apply(gw.dataDir, file);
      assert.equal(r.code, 0, out(r));
      assert.ok(lines(r).includes('+ models/chat-big'), out(r));
      up.reset();
      const res = await eventually(
        () => client.chat.completions.create({ model: 'chat-big', messages: [{ role: 'user', content: 'new alias' }] }),
        'the running gateway to serve the new alias',
        10_000,
        100,
      );
      assert.equal(res.choices[0]?.message.content, 'echo: new alias');
      assert.equal(up.completions().at(-1)?.body.model, 'big-model', 'the alias maps to its upstream model');
      assert.equal(gw.proc.exitCode, null, 'the same process, not restarted');
    } finally {
      await gw.stop();
    }
  });
});

describe('command line', () => {
  test('--help, an unknown command, a bad --port', async () => {
    const help = await runCli(['--help']);
    assert.equal(help.code, 0, out(help));
    assert.match(help.stdout, /airlock serve/);
    assert.match(help.stdout, /config apply FILE/);

    const unknown = await runCli(['frobnicate']);
    assert.equal(unknown.code, 2, out(unknown));
    assert.match(unknown.stderr, /unknown command "frobnicate"/);

    const dataDir = tmpDir();
    try {
      const bad = await runCli(['serve', '--data-dir', dataDir, '--port', 'abc']);
      assert.equal(bad.code, 2, out(bad));
      assert.match(bad.stderr, /--port/);
      assert.match(bad.stderr, /"abc"/);
    } finally {
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  });

  test('one port for the data plane and the admin plane: exit 2 naming both settings and the port; nothing is created', async () => {
    const dir = tmpDir();
    const dataDir = path.join(dir, 'data');
    try {
      // (a port number only: the refusal comes before anything listens)
      const n = String(40_000 + (process.pid % 20_000));
      for (const [args, env, msg] of [
        [['--port', n, '--admin-port', n], {}, `--port and --admin-port are both ${n} (on 127.0.0.1)`],
        [['--admin-port', n], { AIRLOCK_PORT: n }, `AIRLOCK_PORT and --admin-port are both ${n} (on 127.0.0.1)`],
        [['--port', '4001'], {}, '--port and the default admin port are both 4001 (on 127.0.0.1)'],
      ] as const) {
        const r = await runCli(['serve', '--data-dir', dataDir, ...args], { env });
        assert.equal(r.code, 2, out(r));
        assert.ok(r.stderr.startsWith(`airlock: ${msg}: the data plane and the admin plane need a port each`), out(r));
        assert.equal(fs.existsSync(dataDir), false, 'no data dir is left behind');
      }
      // the stored settings.listen is named as such
      const file = writeConfig(dir, { settings: { listen: { admin_port: Number(n) } } });
      const applied = await apply(dataDir, file);
      assert.equal(applied.code, 0, out(applied));
      const r = await runCli(['serve', '--data-dir', dataDir, '--port', n]);
      assert.equal(r.code, 2, out(r));
      assert.match(r.stderr, new RegExp(`^airlock: --port and settings\\.listen\\.admin_port are both ${n} \\(on 127\\.0\\.0\\.1\\)`), out(r));
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

// A secret that changes owner without changing (a file now writes the secret a key already has,
// or a file entry without "key:" hands it over) changes what may rotate it: the plan lists it and
// the audit record names the key and the file field, never the secret.
describe('config apply: a key secret changing owner', () => {
  test('the plan (dry run and apply) lists it; the audit record names the key and the field, not the secret', async () => {
    const dir = tmpDir('airlock-owner-');
    const dataDir = path.join(dir, 'data');
    try {
      const cfg = startingConfig();
      const generated = writeConfig(dir, { ...cfg, keys: [{ name: 'notebook-app', team: 'research' }] }, 'generated.yaml');
      const first = await apply(dataDir, generated);
      assert.equal(first.code, 0, out(first));
      const secret = /new key for key "notebook-app" \(shown once\): (\S+)/.exec(first.stdout)?.[1];
      assert.ok(secret, out(first));

      const written = writeConfig(dir, { ...cfg, keys: [{ name: 'notebook-app', key: secret, team: 'research' }] }, 'written.yaml');
      const field = `keys[0].key in ${written}`;
      const before = dbHash(dataDir);
      const plan = await apply(dataDir, written, { dryRun: true });
      assert.equal(plan.code, 0, out(plan));
      assert.deepEqual(lines(plan).filter((l) => /^[+~-] /.test(l)), [`~ keys/notebook-app (secret: now written by ${field})`], out(plan));
      assert.match(plan.stdout, /would apply 1 change:/);
      assert.equal(dbHash(dataDir), before, 'a dry run changes nothing');

      const applied = await apply(dataDir, written);
      assert.equal(applied.code, 0, out(applied));
      assert.deepEqual(lines(applied).filter((l) => /^[+~-] /.test(l)), [`~ keys/notebook-app (secret: now written by ${field})`], out(applied));
      const rotate = await runCli(['keys', 'rotate', 'notebook-app', '--data-dir', dataDir]);
      assert.equal(rotate.code, 2, 'the file owns the secret now: ' + out(rotate));
      const again = await apply(dataDir, written);
      assert.match(again.stdout, /no changes/, out(again));

      const handBack = await apply(dataDir, generated);
      assert.equal(handBack.code, 0, out(handBack));
      assert.deepEqual(lines(handBack).filter((l) => /^[+~-] /.test(l)), ['~ keys/notebook-app (secret: handed over to the admin app, API and CLI)'], out(handBack));

      const db = new Database(path.join(dataDir, 'airlock.db'), { readonly: true });
      try {
        const records = (db.prepare(`SELECT data FROM audit_log WHERE kind = 'config.apply' ORDER BY seq`).pluck().all() as string[]).map((d) => JSON.parse(d));
        assert.equal(records.length, 3, 'the first apply, the takeover and the handover (not the dry run, not the apply without changes)');
        assert.deepEqual(records[1].secret_owners, [{ key: 'notebook-app', written_by: field }]);
        assert.deepEqual(records[1].changes, [`~ keys/notebook-app (secret: now written by ${field})`]);
        assert.deepEqual(records[2].secret_owners, [{ key: 'notebook-app', written_by: null }]);
        for (const r of records) assert.equal(JSON.stringify(r).includes(secret), false, 'the audit record never holds the secret');
      } finally {
        db.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
