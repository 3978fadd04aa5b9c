// The Traces page in Chromium against the real gateway: an agent's workflow (the official openai
// client, one x-airlock-session, one call that falls back after a 503, one call that fails) is
// listed, filtered, and opened as a waterfall showing every step with its attempts, the
// failover reason and the errors. Screenshot: docs/screenshots/traces-waterfall.png.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import type { Browser } from 'playwright-core';
import OpenAI from 'openai';
import { ROOT, TEST_KEY } from '../helpers/gateway.js';
import { type FallbackGateway, startFallbackGateway } from '../helpers/fallback.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn, watchedPage } from '../helpers/browser.js';

const STEPS = 12;

let browser: Browser | undefined;
let f: FallbackGateway | undefined;

before(async () => {
  if (SKIP_BROWSER) return;
  f = await startFallbackGateway({ team: 'research', keyName: 'research-agent', user: OWNER });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await f?.close();
});

test('a workflow opens as a waterfall with its fallback and its failure', { skip: SKIP_BROWSER }, async () => {
  const session = `agent-run-${randomUUID().slice(0, 8)}`;
  const other = `other-run-${randomUUID().slice(0, 8)}`;
  const { gw, primary } = f!;
  const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, timeout: 15_000, defaultHeaders: { 'x-airlock-session': session } });
  for (let i = 0; i < STEPS; i++) {
    if (i === 4) primary.queue({ kind: 'status', status: 503, body: '{"error":{"message":"gpu-1 overloaded"}}' });
    if (i === 8) {
      await assert.rejects(ai.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }));
      continue;
    }
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `step ${i}` }] });
  }
  await new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0, defaultHeaders: { 'x-airlock-session': other } }).chat.completions.create({
    model: 'chat',
    messages: [{ role: 'user', content: 'other' }],
  });

  const { ctx, page, problems } = await watchedPage(browser!);
  await signIn(page, gw.adminUrl);

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
