// Prompt and response logging against the real gateway process: off by default; per team
// metadata, redacted (the guardrail detectors' placeholders) or full, text sealed at rest; each
// logged request's audit summary carries the row's hash (so the signed export vouches for it);
// reading a row's text is an audit record; expired rows are deleted by the retention sweep and
// the deletion is recorded.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import path from 'node:path';
import Database from 'better-sqlite3';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, runCli, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

/** Run node with args (the bundle's own verify.mjs). */
function runNode(args: string[]): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    p.on('close', (code) => resolve({ code, out }));
  });
}
const show = (r: { status: number; body: unknown }) => `${r.status} ${JSON.stringify(r.body)?.slice(0, 800)}`;
const OPS_KEY = 'sk-airlock-ops-team-key-0000000000000001';
const META_KEY = 'sk-airlock-meta-team-key-000000000000001';
const EMAIL = 'jane.doe@example.com';
const CARD = '4111 1111 1111 1111';

describe('prompt and response logging', () => {
  let gw: RunningGateway;
  let up: TestUpstream;
  let auditor: string;
  let dataDir: string;
  const ask = (key: string, content: string, stream = false) => {
    const ai = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0, timeout: 30_000 });
    return stream
      ? (async () => {
          const { data: s, response } = await ai.chat.completions.create({ model: 'chat', stream: true, messages: [{ role: 'user', content }] }).withResponse();
          let text = '';
          for await (const c of s) text += c.choices[0]?.delta?.content ?? '';
          return { id: response.headers.get('x-airlock-request-id')!, text };
        })()
      : (async () => {
          const { data, response } = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content }] }).withResponse();
          return { id: response.headers.get('x-airlock-request-id')!, text: data.choices[0]!.message.content ?? '' };
        })();
  };
  const setLogging = async (team: string, prompt_logging: unknown) => {
    const t = (await gw.admin('GET', `/teams/${team}`)).body;
    const r = await gw.admin('PUT', `/teams/${team}`, { ...t, prompt_logging });
    assert.equal(r.status, 200, show(r));
  };
  const summaryOf = (id: string) => eventually(async () => ((await gw.admin('GET', '/audit/events?kind=request&limit=1000')).body.data as any[]).find((x) => x.data.request_id === id), `the audit summary of ${id}`);
  const rowOf = (id: string) => eventually(async () => ((await gw.admin('GET', `/prompt-log?request_id=${id}`)).body.data as any[])[0], `the prompt log row of ${id}`);

  before(async () => {
    up = await startUpstream();
    gw = await startGateway({
      config: basicConfig(up.url, {
        teams: [{ name: 'research' }, { name: 'ops' }, { name: 'meta' }],
        keys: [
          { name: 'notebook-app', key: TEST_KEY, team: 'research' },
          { name: 'ops-app', key: OPS_KEY, team: 'ops' },
          { name: 'meta-app', key: META_KEY, team: 'meta' },
        ],
      }),
    });
    dataDir = gw.dataDir;
    const r = await gw.admin('POST', '/tokens', { name: 't-auditor', role: 'auditor' });
    assert.equal(r.status, 201, show(r));
    auditor = r.body.token;
  });
  after(async () => {
    await gw?.stop();
    await up?.close();
  });

  test('off by default: nothing is kept, the summary names no prompt log, the data-flow page says so', async () => {
    const a = await ask(TEST_KEY, `default-off ${EMAIL}`);
    assert.equal(a.text, `echo: default-off ${EMAIL}`);
    const s = await summaryOf(a.id);
    assert.equal(s.data.prompt_log, undefined);
    const list = await gw.admin('GET', '/prompt-log', undefined, { authorization: `Bearer ${auditor}` });
    assert.equal(list.status, 200, show(list));
    assert.deepEqual(list.body.data, []);
    const one = await gw.admin('GET', `/prompt-log/${a.id}`);
    assert.equal(one.status, 404, show(one));
    const flow = await gw.admin('GET', '/data-flow');
    assert.match(flow.body.stored.find((x: any) => /^Prompts and responses/.test(x.what)).where, /not stored/);
  });

  test('a bad setting is refused with the field named', async () => {
    const t = (await gw.admin('GET', '/teams/research')).body;
    for (const [pl, param] of [
      [{ mode: 'everything' }, 'prompt_logging.mode'],
      [{ mode: 'full', retention_days: 0 }, 'prompt_logging.retention_days'],
      [{ mode: 'full', keep: true }, 'prompt_logging'],
    ] as const) {
      const r = await gw.admin('PUT', '/teams/research', { ...t, prompt_logging: pl });
      assert.equal(r.status, 400, show(r));
      assert.equal(r.body.error.param, param, show(r));
    }
  });

  test('full: the prompt as sent and the answer as delivered (whole and streamed), sealed at rest, hashed into the audit summary', async () => {
    await setLogging('research', { mode: 'full', retention_days: 7 });
    const change = ((await gw.admin('GET', '/audit/events?kind=admin.change&limit=5')).body.data as any[]).find((x) => x.data.action === 'update team');
    assert.deepEqual(change.data.changes['teams/research'].after.prompt_logging, { mode: 'full', retention_days: 7 }, 'switching it on is an admin change');

    const whole = await ask(TEST_KEY, `whole answer marker-7c1 ${EMAIL}`);
    const streamed = await ask(TEST_KEY, 'streamed answer marker-9d2 in several words', true);
    assert.equal(streamed.text, 'echo: streamed answer marker-9d2 in several words');

    const listed = await rowOf(whole.id);
    assert.equal(listed.mode, 'full');
    assert.equal(listed.team, 'research');
    assert.equal(listed.key, 'notebook-app');
    assert.equal(listed.model, 'chat');
    assert.equal(listed.status, 200);
    assert.equal(listed.prompt, undefined, 'the list carries no text');
    assert.ok(Date.parse(listed.expires_at) - Date.parse(listed.ts) === 7 * 86_400_000);

    const as = { authorization: `Bearer ${auditor}` };
    const w = await gw.admin('GET', `/prompt-log/${whole.id}`, undefined, as);
    assert.equal(w.status, 200, show(w));
    assert.deepEqual(w.body.prompt.messages, [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: `whole answer marker-7c1 ${EMAIL}` },
    ]);
    assert.equal(w.body.response.choices[0].message.content, `echo: whole answer marker-7c1 ${EMAIL}`);
    assert.equal(w.body.intact, true);
    await rowOf(streamed.id);
    const s = await gw.admin('GET', `/prompt-log/${streamed.id}`, undefined, as);
    assert.equal(s.status, 200, show(s));
    assert.equal(s.body.response.choices[0].message.content, streamed.text, 'the streamed answer, joined');
    assert.equal(s.body.meta.stream, true);

    // the audit summary of each request carries the row's hash; the read is recorded
    assert.deepEqual((await summaryOf(whole.id)).data.prompt_log, { mode: 'full', sha256: w.body.sha256 });
    assert.deepEqual((await summaryOf(streamed.id)).data.prompt_log, { mode: 'full', sha256: s.body.sha256 });
    const reads = (await gw.admin('GET', '/audit/events?kind=prompt_log.read')).body.data as any[];
    assert.deepEqual(reads.map((r) => [r.actor, r.data.request_id]), [
      ['token:t-auditor', streamed.id],
      ['token:t-auditor', whole.id],
    ]);
    assert.ok(!JSON.stringify(reads).includes('marker-7c1'), 'the audit record of a read holds no text');

    // sealed at rest: the text is nowhere in the database files
    const db = new Database(path.join(dataDir, 'airlock.db'), { readonly: true });
    try {
      const raw = db.prepare(`SELECT prompt, response FROM prompt_log WHERE request_id = ?`).get(whole.id) as { prompt: string; response: string };
      assert.match(raw.prompt, /^v1:/);
      assert.match(raw.response, /^v1:/);
    } finally {
      db.close();
    }
    for (const f of fs.readdirSync(dataDir).filter((n) => n.startsWith('airlock.db'))) {
      const bytes = fs.readFileSync(path.join(dataDir, f));
      assert.equal(bytes.indexOf('marker-7c1'), -1, `${f} holds no prompt text`);
      assert.equal(bytes.indexOf('marker-9d2'), -1, `${f} holds no streamed text`);
    }

    // a changed row no longer matches the hash its audit summary recorded
    const rw = new Database(path.join(dataDir, 'airlock.db'));
    try {
      rw.pragma('busy_timeout = 5000');
      rw.prepare(`UPDATE prompt_log SET meta = json_set(meta, '$.prompt_chars', 1) WHERE request_id = ?`).run(whole.id);
    } finally {
      rw.close();
    }
    const changed = await gw.admin('GET', `/prompt-log/${whole.id}`, undefined, as);
    assert.equal(changed.body.intact, false);
  });

  test('redacted: personal data and secrets replaced by the guardrail detectors, in the prompt and the answer', async () => {
    await setLogging('ops', { mode: 'redacted' });
    const a = await ask(OPS_KEY, `mail ${EMAIL} card ${CARD} and again ${EMAIL}`);
    assert.equal(a.text, `echo: mail ${EMAIL} card ${CARD} and again ${EMAIL}`, 'the client gets the answer unchanged');
    await rowOf(a.id);
    const r = await gw.admin('GET', `/prompt-log/${a.id}`);
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.mode, 'redacted');
    assert.equal(r.body.prompt.messages[1].content, 'mail [EMAIL_1] card [CARD_1] and again [EMAIL_1]');
    assert.equal(r.body.response.choices[0].message.content, 'echo: mail [EMAIL_1] card [CARD_1] and again [EMAIL_1]');
    assert.deepEqual(r.body.meta.redacted, { EMAIL: 4, CARD: 2 });
    assert.ok(!JSON.stringify(r.body).includes(EMAIL) && !JSON.stringify(r.body).includes(CARD));
    assert.equal(r.body.intact, true);
    assert.equal((await summaryOf(a.id)).data.prompt_log.mode, 'redacted');
  });

  test('metadata: sizes, model and outcome, no text', async () => {
    await setLogging('meta', { mode: 'metadata', retention_days: 1 });
    const a = await ask(META_KEY, 'metadata only please');
    await rowOf(a.id);
    const r = await gw.admin('GET', `/prompt-log/${a.id}`);
    assert.equal(r.status, 200, show(r));
    assert.equal(r.body.prompt, null);
    assert.equal(r.body.response, null);
    assert.equal(r.body.meta.messages, 2);
    assert.ok(r.body.meta.prompt_chars > 0 && r.body.meta.response_chars > 0);
    assert.ok(r.body.meta.prompt_tokens > 0);
    assert.ok(!JSON.stringify(r.body).includes('metadata only please'));
    const flow = await gw.admin('GET', '/data-flow');
    const stored = flow.body.stored.find((x: any) => /^Prompts and responses/.test(x.what));
    assert.match(stored.what, /research \(full text, encrypted\).*ops \(.*redacted.*\).*meta \(metadata only/);
    assert.match(stored.retention, /research: 7 days, ops: 30 days, meta: 1 days/);
    assert.match(stored.where, /prompt_log/);
  });

  test('switched off again: new requests are not logged, the logged ones stay until they expire', async () => {
    await setLogging('ops', { mode: 'off' });
    const before = ((await gw.admin('GET', '/prompt-log?team=ops')).body.data as any[]).length;
    const a = await ask(OPS_KEY, 'not logged any more');
    assert.equal((await summaryOf(a.id)).data.prompt_log, undefined);
    assert.equal(((await gw.admin('GET', '/prompt-log?team=ops')).body.data as any[]).length, before);
    assert.ok(before >= 1);
  });

  test('a prompt log that cannot be written: by default served and kept until it can be; under fail_closed admin_and_data the logged team is refused (503), other teams are served', async () => {
    const db = new Database(path.join(dataDir, 'airlock.db'));
    const setFailClosed = async (mode: string) => {
      const s = (await gw.admin('GET', '/settings')).body;
      const r = await gw.admin('PUT', '/settings', { ...s, audit: { ...s.audit, fail_closed: mode } });
      assert.equal(r.status, 200, show(r));
    };
    const refused = async (key: string) => {
      try {
        await ask(key, 'may I?');
        return false;
      } catch (e) {
        return (e as { status?: number }).status === 503 && (e as { code?: string }).code === 'audit_unavailable';
      }
    };
    db.exec(`CREATE TRIGGER test_prompt_log_broken BEFORE INSERT ON prompt_log BEGIN SELECT RAISE(ABORT, 'simulated: disk full'); END;`);
    let waiting: { id: string; text: string };
    try {
      // fail_closed off (the default): served, the row waits in the writer
      waiting = await ask(TEST_KEY, 'kept until it can be written');
      assert.equal(waiting.text, 'echo: kept until it can be written');
      await setFailClosed('admin_and_data');
      // the failed write turns refusal on for the team whose requests are logged ...
      await eventually(() => refused(TEST_KEY), 'the logged team refused', 30_000);
      // ... and only for it: a team without prompt logging is still served and audited
      const other = await ask(OPS_KEY, 'not logged, still served');
      assert.equal(other.text, 'echo: not logged, still served');
      await summaryOf(other.id);
    } finally {
      db.exec(`DROP TRIGGER test_prompt_log_broken`);
      db.close();
    }
    await eventually(async () => !(await refused(TEST_KEY)), 'served again once the prompt log can be written', 30_000);
    // nothing was lost: the row that waited is written, and its hash is the one its summary named
    const row = await rowOf(waiting.id);
    assert.equal(row.sha256, (await summaryOf(waiting.id)).data.prompt_log.sha256);
    await setFailClosed('off');
  });

  test('an export with prompts: prompts.jsonl holds the logged rows, both verifiers check each against its request record; a row changed in the database is refused', async () => {
    // (the period starts after the row an earlier test changed on purpose)
    const from = new Date(Date.now() - 1).toISOString();
    const a = await ask(TEST_KEY, 'exported with its prompt');
    const s = await summaryOf(a.id);
    await rowOf(a.id);
    const r = await gw.admin('POST', '/audit/export', { to: tmpDir('airlock-usb-'), from, prompts: true });
    assert.equal(r.status, 200, show(r));
    const file = path.join(r.body.dir, 'prompts.jsonl');
    const rows = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    const mine = rows.find((x) => x.request_id === a.id);
    assert.ok(mine, 'the logged request is in prompts.jsonl');
    assert.equal(mine.sha256, s.data.prompt_log.sha256);
    assert.match(JSON.stringify(mine.prompt), /exported with its prompt/);
    assert.ok(r.body.files.some((f: { name: string }) => f.name === 'prompts.jsonl'), 'hashed in the signed manifest');
    const cli = await runCli(['audit', 'verify', r.body.dir]);
    assert.equal(cli.code, 0, cli.stdout + cli.stderr);
    const mjs = await runNode([path.join(r.body.dir, 'verify.mjs')]);
    assert.equal(mjs.code, 0, mjs.out);
    // without the option, no text leaves
    const plain = await gw.admin('POST', '/audit/export', { to: tmpDir('airlock-usb-') });
    assert.ok(!fs.existsSync(path.join(plain.body.dir, 'prompts.jsonl')));
    assert.ok(!fs.readFileSync(path.join(plain.body.dir, 'events.jsonl'), 'utf8').includes('exported with its prompt'));
    // a row edited in the database no longer matches the hash its request record carries
    const db = new Database(path.join(dataDir, 'airlock.db'));
    try {
      db.prepare(`UPDATE prompt_log SET meta = json_set(meta, '$.prompt_chars', 1) WHERE request_id = ?`).run(a.id);
    } finally {
      db.close();
    }
    const usb = tmpDir('airlock-usb-');
    const bad = await gw.admin('POST', '/audit/export', { to: usb, from, prompts: true });
    assert.equal(bad.status, 409, show(bad));
    assert.match(bad.body.error.message, new RegExp(`prompts\\.jsonl line \\d+ \\(request ${a.id}\\): it does not match the hash its request record names`));
    assert.deepEqual(fs.readdirSync(usb), [], 'nothing left on the drive');
    const one = await gw.admin('GET', `/prompt-log/${a.id}`);
    assert.equal(one.body.intact, false, 'the row itself says so too');
  });

  test('bad list queries name the field', async () => {
    for (const [q, param] of [
      ['limit=0', 'limit'],
      ['limit=x', 'limit'],
      ['from=someday', 'from'],
      ['from=2026-02-01T00:00:00Z&until=2026-01-01T00:00:00Z', 'until'],
      [`team=${'x'.repeat(201)}`, 'team'],
    ]) {
      const r = await gw.admin('GET', `/prompt-log?${q}`);
      assert.equal(r.status, 400, `${q}: ${show(r)}`);
      assert.equal(r.body.error.param, param, `${q}: ${show(r)}`);
    }
  });

  test('retention: expired rows are deleted at the next sweep (here: the next start), and the deletion is recorded', async () => {
    const ids = ((await gw.admin('GET', '/prompt-log?team=meta')).body.data as any[]).map((x) => x.request_id);
    assert.ok(ids.length >= 1);
    const kept = ((await gw.admin('GET', '/prompt-log?team=research')).body.data as any[]).length;
    await gw.stop();
    const db = new Database(path.join(dataDir, 'airlock.db'));
    try {
      db.prepare(`UPDATE prompt_log SET expires_at = ? WHERE team = 'meta'`).run(Date.now() - 1000);
    } finally {
      db.close();
    }
    gw = await startGateway({ dataDir });
    const purge = await eventually(async () => ((await gw.admin('GET', '/audit/events?kind=prompt_log.purge')).body.data as any[])[0], 'the purge record');
    assert.equal(purge.data.count, ids.length);
    assert.deepEqual((await gw.admin('GET', '/prompt-log?team=meta')).body.data, []);
    assert.equal(((await gw.admin('GET', '/prompt-log?team=research')).body.data as any[]).length, kept, 'rows not yet expired stay');
    const v = await gw.admin('GET', '/audit/verify');
    assert.equal(v.body.ok, true, show(v));
  });
});
