// The Traces page in Chromium against the real gateway: an agent's workflow (the official openai
// client, one x-airlock-session, one call that falls back after a 503, one call that fails) is
// listed, filtered, and opened as a waterfall showing every step with its attempts, the
// failover reason and the errors. Screenshot: docs/screenshots/traces-waterfall.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { chromium, type Browser } from 'playwright-core';
import OpenAI from 'openai';
import { ROOT, TEST_KEY, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const SKIP = !HAVE_CHROMIUM && process.env.CI !== 'true' ? `Chromium not found at ${CHROMIUM}` : false;
const OWNER = { name: 'owner', password: 'correct horse battery staple' };
const STEPS = 12;

let browser: Browser | undefined;
let gw: RunningGateway | undefined;
let primary: TestUpstream | undefined;
let backup: TestUpstream | undefined;

before(async () => {
  if (SKIP) return;
  primary = await startUpstream();
  backup = await startUpstream();
  gw = await startGateway({
    config: {
      endpoints: [
        { name: 'gpu-1', base_url: primary.url, health_check: { enabled: false } },
        { name: 'gpu-2', base_url: backup.url, health_check: { enabled: false } },
      ],
      models: [{ name: 'chat', strategy: 'fallback', max_attempts: 2, targets: [{ endpoint: 'gpu-1', model: 'llama' }, { endpoint: 'gpu-2', model: 'llama' }] }],
      teams: [{ name: 'research' }],
      keys: [{ name: 'research-agent', key: TEST_KEY, team: 'research' }],
    },
  });
  assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run'] });
});

after(async () => {
  await browser?.close();
  await gw?.stop();
  await primary?.close();
  await backup?.close();
});

test('a workflow opens as a waterfall with its fallback and its failure', { skip: SKIP }, async () => {
  const session = `agent-run-${randomUUID().slice(0, 8)}`;
  const other = `other-run-${randomUUID().slice(0, 8)}`;
  const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw!.baseURL, maxRetries: 0, timeout: 15_000, defaultHeaders: { 'x-airlock-session': session } });
  for (let i = 0; i < STEPS; i++) {
    if (i === 4) primary!.queue({ kind: 'status', status: 503, body: '{"error":{"message":"gpu-1 overloaded"}}' });
    if (i === 8) {
      await assert.rejects(ai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
      continue;
    }
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `step ${i}` }] });
  }
  await new OpenAI({ apiKey: TEST_KEY, baseURL: gw!.baseURL, maxRetries: 0, defaultHeaders: { 'x-airlock-session': other } }).chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content: 'other' }],
  });

  const ctx = await browser!.newContext({ viewport: { width: 1360, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
  ctx.setDefaultTimeout(20_000);
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(gw!.adminUrl + '/');
  await page.getByLabel('User name').fill(OWNER.name);
  await page.getByLabel('Password', { exact: true }).fill(OWNER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Traces', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Traces' }).waitFor();
  const table = page.getByTestId('sessions-table');
  const row = table.getByRole('row').filter({ has: page.getByRole('button', { name: `Open workflow ${session}` }) });
  await row.waitFor();
  // steps, model calls, tool calls, errors
  const cells = await row.getByRole('cell').allTextContents();
  assert.equal(cells[1], String(STEPS));
  assert.equal(cells[2], String(STEPS));
  assert.equal(cells[3], '0');
  assert.equal(cells[4], '1');

  // the status filter keeps only workflows with errors
  await page.getByLabel('Status').selectOption('error');
  await table.getByRole('button', { name: `Open workflow ${other}` }).waitFor({ state: 'detached' });
  await row.waitFor();

  await row.getByRole('button', { name: `Open workflow ${session}` }).click();
  const heading = page.getByRole('heading', { level: 2, name: `Workflow ${session}` });
  await heading.waitFor();
  const wf = page.getByTestId('waterfall');
  await wf.locator('tr[data-kind="model"]').first().waitFor();
  assert.equal(await page.evaluate<string | null>('document.activeElement?.id ?? null'), 'workflow-title', 'the opened workflow takes the focus');
  assert.equal(await wf.locator('tr[data-kind="model"]').count(), STEPS, 'every step is shown');
  // steps are numbered in order
  const numbers = await wf.locator('tr[data-kind="model"] td:first-child').allTextContents();
  assert.deepEqual(numbers, Array.from({ length: STEPS }, (_, i) => String(i + 1)));
  // the fallback: a failed attempt with its reason, then the attempt that answered
  const failedAttempt = wf.locator('tr[data-kind="attempt"].wf-failed');
  assert.equal(await failedAttempt.count(), 1);
  assert.match((await failedAttempt.textContent()) ?? '', /gpu-1.*failed: upstream returned 503 \(gpu-1 overloaded\)/);
  const fellBack = wf.locator('tr[data-kind="model"]').filter({ hasText: '2 attempts' });
  assert.equal(await fellBack.count(), 1);
  assert.match((await fellBack.textContent()) ?? '', /served by gpu-2/);
  // the failed step is marked where it surfaced
  const failedStep = wf.locator('tr[data-kind="model"].wf-failed');
  assert.equal(await failedStep.count(), 1);
  assert.match((await failedStep.textContent()) ?? '', /chat no-such-model.*error.*404.*model_not_found/);
  assert.match((await wf.locator('tr[data-kind="model"]').first().textContent()) ?? '', /first token/);

  fs.mkdirSync(path.join(ROOT, 'docs', 'screenshots'), { recursive: true });
  await heading.scrollIntoViewIfNeeded();
  await page.screenshot({ path: path.join(ROOT, 'docs', 'screenshots', 'traces-waterfall.png'), fullPage: true });

  // the link to the open workflow survives a reload
  await page.reload();
  await page.getByRole('heading', { level: 2, name: `Workflow ${session}` }).waitFor();
  await page.getByTestId('waterfall').locator('tr[data-kind="model"]').first().waitFor();
  assert.deepEqual(problems, []);
  await ctx.close();
});
