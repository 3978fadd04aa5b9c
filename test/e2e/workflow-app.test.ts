// Issue 11's acceptance test, whole: a 40-step agent workflow — model calls through the official
// openai client and tool calls through the MCP SDK's client on /mcp (server-everything behind the
// gateway), one x-airlock-session, one upstream failure that falls back to the second endpoint and
// one call that fails — is one session whose 40 steps, in order, with their attempts under them,
// the fallback and the failure, are in the admin API and in the admin app's waterfall (Chromium).
// Screenshot: docs/screenshots/workflow-40-steps.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import OpenAI from 'openai';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ROOT, TEST_KEY, eventually } from '../helpers/gateway.js';
import { type FallbackGateway, startFallbackGateway } from '../helpers/fallback.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn, watchedPage } from '../helpers/browser.js';
import { EVERYTHING, agentClient } from '../helpers/mcp.js';
import type { SessionsBody, TraceSpan, TracesBody } from '../../gateway/wire.js';

const AGENT_KEY = 'sk-airlock-agent-forty-steps-000000000000001';
const STEPS = 40;
/** which steps are tool calls (the others model calls): every third, from the second */
const isTool = (i: number) => i % 3 === 1;
const FALLS_BACK = 9; // a model call whose first endpoint answers 503
const FAILS = 20; // a model call that fails (an unknown model)

let browser: Browser | undefined;
let f: FallbackGateway | undefined;
let mcp: Client | undefined;

before(async () => {
  if (SKIP_BROWSER) return;
  f = await startFallbackGateway({
    team: 'support',
    keyName: 'support-agent',
    user: OWNER,
    extra: {
      mcp_servers: [{ name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }],
      agents: [{ name: 'support-bot', team: 'support', key: AGENT_KEY, tools: ['every__echo', 'every__get-sum'] }],
    },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await mcp?.close().catch(() => undefined);
  await f?.close();
});

test('a 40-step workflow of model and tool calls, with a fallback and a failure, is one session in the API and in the waterfall', { skip: SKIP_BROWSER }, async () => {
  const session = `ticket-${randomUUID().slice(0, 8)}`;
  const { gw, primary } = f!;
  const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 15_000, defaultHeaders: { 'x-airlock-session': session } });
  mcp = (await agentClient(gw.dataUrl, AGENT_KEY, { 'x-airlock-session': session })).client;
  await eventually(async () => (await mcp!.listTools()).tools.some((t) => t.name === 'every__get-sum'), 'the upstream tools');

  const kinds: ('model' | 'tool')[] = [];
  for (let i = 0; i < STEPS; i++) {
    if (isTool(i)) {
      kinds.push('tool');
      const r = i % 2 ? await mcp.callTool({ name: 'every__echo', arguments: { message: `step ${i}` } }) : await mcp.callTool({ name: 'every__get-sum', arguments: { a: i, b: 1 } });
      assert.notEqual(r.isError, true, `tool step ${i}`);
      continue;
    }
    kinds.push('model');
    if (i === FAILS) {
      await assert.rejects(ai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: `step ${i}` }] }));
      continue;
    }
    if (i === FALLS_BACK) primary.queue({ kind: 'status', status: 503, body: '{"error":{"message":"gpu-1 overloaded"}}' });
    const r = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `step ${i}` }] });
    assert.ok(r.choices[0]?.message.content, `model step ${i}`);
  }
  const models = kinds.filter((k) => k === 'model').length;
  const tools = STEPS - models;

  // the API: one trace per step, in order, each model call's attempts beneath it
  const traces = (await gw.admin<TracesBody>('GET', `/traces?session=${encodeURIComponent(session)}`)).body.data;
  const roots = traces.map((t) => t.spans.find((s) => s.parent_span_id === null || !t.spans.some((p) => p.span_id === s.parent_span_id))!).sort((a, b) => a.start_ms - b.start_ms);
  assert.equal(roots.length, STEPS, 'one trace per step');
  assert.deepEqual(
    roots.map((s) => s.kind),
    kinds,
    'the steps in the order they were made',
  );
  const attemptsOf = (root: TraceSpan) => traces.find((t) => t.trace_id === root.trace_id)!.spans.filter((s) => s.kind === 'attempt' && s.parent_span_id === root.span_id);
  const fellBack = roots[FALLS_BACK]!;
  const tries = attemptsOf(fellBack).sort((a, b) => a.start_ms - b.start_ms);
  assert.deepEqual(
    tries.map((a) => [a.attributes['airlock.endpoint'], a.status.code]),
    [
      ['gpu-1', 'error'],
      ['gpu-2', 'ok'],
    ],
    'the fallback: gpu-1 failed, gpu-2 answered',
  );
  assert.match(String(tries[0]!.attributes['airlock.failover_reason']), /503/);
  assert.equal(roots[FAILS]!.status.code, 'error');
  assert.equal(roots[FAILS]!.attributes['error.type'], 'model_not_found');
  for (const [i, root] of roots.entries()) {
    if (kinds[i] === 'model' && i !== FAILS) assert.ok(attemptsOf(root).length >= 1, `step ${i + 1} has its attempt beneath it`);
    if (kinds[i] === 'tool') assert.match(root.name, /^tools\/call (echo|get-sum)$/);
  }
  const listed = (await gw.admin<SessionsBody>('GET', '/sessions?limit=50')).body.data.find((s) => s.session === session)!;
  assert.deepEqual([listed.steps, listed.model_calls, listed.tool_calls, listed.errors], [STEPS, models, tools, 1]);

  // the admin app
  const { ctx, page, problems } = await watchedPage(browser!);
  await signIn(page, gw.adminUrl);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Traces', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Traces' }).waitFor();
  const row = page.getByTestId('sessions-table').getByRole('row').filter({ has: page.getByRole('button', { name: `Open workflow ${session}` }) });
  await row.waitFor();
  // steps, model calls, tool calls, errors
  assert.deepEqual((await row.getByRole('cell').allTextContents()).slice(1, 5), [String(STEPS), String(models), String(tools), '1']);

  await row.getByRole('button', { name: `Open workflow ${session}` }).click();
  const heading = page.getByRole('heading', { level: 2, name: `Workflow ${session}` });
  await heading.waitFor();
  const wf = page.getByTestId('waterfall');
  const stepRows = wf.locator('tr[data-kind="model"], tr[data-kind="tool"]');
  await stepRows.first().waitFor();
  assert.equal(await stepRows.count(), STEPS, 'all 40 steps are shown');
  assert.deepEqual(await stepRows.locator('td:first-child').allTextContents(), Array.from({ length: STEPS }, (_, i) => String(i + 1)), 'numbered in order');
  assert.deepEqual(await stepRows.evaluateAll((rows) => rows.map((r) => r.getAttribute('data-kind'))), kinds, 'model and tool steps where they were made');
  // the fallback: gpu-1's failed attempt with its reason, then the step served by gpu-2
  const failedAttempt = wf.locator('tr[data-kind="attempt"].wf-failed');
  assert.equal(await failedAttempt.count(), 1);
  assert.match((await failedAttempt.textContent()) ?? '', /gpu-1.*failed: upstream returned 503 \(gpu-1 overloaded\)/);
  const fellBackRow = (await stepRows.nth(FALLS_BACK).textContent()) ?? '';
  assert.match(fellBackRow, /2 attempts/);
  assert.match(fellBackRow, /served by gpu-2/);
  // the failure, marked on its step
  const failedStep = wf.locator('tr[data-kind="model"].wf-failed');
  assert.equal(await failedStep.count(), 1);
  assert.equal(await failedStep.locator('td:first-child').textContent(), String(FAILS + 1));
  assert.match((await failedStep.textContent()) ?? '', /no-such-model.*404.*model_not_found/);
  assert.match((await stepRows.nth(1).textContent()) ?? '', /tools\/call (echo|get-sum)/);

  fs.mkdirSync(path.join(ROOT, 'docs', 'screenshots'), { recursive: true });
  await heading.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(ROOT, 'docs', 'screenshots', 'workflow-40-steps.png'), fullPage: true });
  assert.deepEqual(problems, []);
  await ctx.close();
});
