// End to end: editing through the shared form dialogs (SchemaForm in FormDialog) on the Endpoints,
// Models and Guardrails pages, and the routing-rules editor as a guarded form, in Debian's Chromium
// against the real gateway process. Each edit first meets the shared zod schema's error on its
// field (nothing is sent), then is saved and read back through the admin API. The routing-rules
// editor asks before the page is left with unsaved changes, whether they were typed or made with
// its buttons (a rule removed), and not after a save or "Discard changes". Older guardrail
// decisions page in under the first 50 ("Load older decisions").
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import OpenAI from 'openai';
import { TEST_KEY, basicConfig, eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn, watchedPage } from '../helpers/browser.js';


let browser: Browser | undefined;
let upstream: TestUpstream | undefined;
let gw: RunningGateway | undefined;
let ctx: BrowserContext | undefined;
let page: Page;
let problems: string[] = [];

before(async () => {
  if (SKIP_BROWSER) return;
  upstream = await startUpstream({ models: ['test-model', 'test-model-large'] });
  gw = await startGateway({
    config: basicConfig(upstream.url, { guardrails: [{ name: 'no-pii', direction: ['input'], detectors: ['pii'], action: 'redact' }] }),
  });
  assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
  browser = await launchChromium();
  ({ ctx, page, problems } = await watchedPage(browser));
  await signIn(page, gw.adminUrl);
});

after(async () => {
  await ctx?.close();
  await browser?.close();
  await gw?.stop();
  await upstream?.close();
});

async function nav(label: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: label, exact: true }).waitFor();
  await page.getByRole('status').filter({ hasText: /^Loading/ }).first().waitFor({ state: 'detached' });
}

const focusedId = () => page.evaluate<string | null>('document.activeElement?.id ?? null');

test('Endpoints: an edit with a value the schema refuses is named on its field and not sent; the corrected edit is saved', { skip: SKIP_BROWSER }, async () => {
  await nav('Endpoints');
  const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'gpu-1' }) });
  await row.getByText(upstream!.url).waitFor();
  await page.getByRole('button', { name: 'Edit endpoint gpu-1' }).click();
  const d = page.getByRole('dialog', { name: 'Edit endpoint gpu-1' });
  await d.getByRole('form', { name: 'Edit endpoint gpu-1' }).waitFor();
  // "Test connection" checks the fields with the same schema before it probes
  await d.getByLabel('Base URL').fill('not a url');
  await d.getByRole('button', { name: 'Test connection' }).click();
  assert.equal(await d.getByLabel('Base URL').getAttribute('aria-invalid'), 'true');
  assert.ok(((await d.locator('#ep-base-url-error').textContent()) ?? '').length > 0, 'the base URL error is shown on its field');
  assert.equal(await focusedId(), 'ep-base-url', 'the field in error takes the focus');
  await d.getByLabel('Base URL').fill(upstream!.url);
  // a timeout under the schema's minimum: the advanced section opens on the error
  await d.getByText('Limits, timeouts and health checks').click();
  await d.getByLabel('Timeout (ms)', { exact: true }).fill('50');
  await d.getByRole('button', { name: 'Save changes' }).click();
  await d.locator('#ep-timeout-error').getByText('must be 100 or more').waitFor();
  assert.equal(await d.getByLabel('Timeout (ms)', { exact: true }).getAttribute('aria-invalid'), 'true');
  assert.equal(await d.locator('#ep-base-url-error').count(), 0, 'the earlier test error is gone after the save attempt');
  assert.equal(await focusedId(), 'ep-timeout');
  assert.equal((await gw!.admin('GET', '/endpoints/gpu-1')).body.timeout_ms, undefined, 'nothing was sent');
  await d.getByLabel('Timeout (ms)', { exact: true }).fill('4321');
  await d.getByLabel('Max concurrency').fill('7');
  await d.getByRole('button', { name: 'Save changes' }).click();
  await d.waitFor({ state: 'hidden' });
  const ep = (await gw!.admin('GET', '/endpoints/gpu-1')).body;
  assert.equal(ep.timeout_ms, 4321);
  assert.equal(ep.max_concurrency, 7);
  assert.equal(ep.base_url, upstream!.url);
  await row.getByText('max 7 in flight').waitFor();
  assert.deepEqual(problems, []);
});

test('Models: a negative price is named on its field and not sent; the corrected edit is saved; a target added with a button counts as an unsaved change', { skip: SKIP_BROWSER }, async () => {
  await nav('Models');
  await page.getByRole('button', { name: 'Edit model chat' }).click();
  const d = page.getByRole('dialog', { name: 'Edit model chat' });
  await d.getByLabel('Input, per million tokens').fill('-1');
  await d.getByRole('button', { name: 'Save changes' }).click();
  await d.locator('#model-price-in-error').getByText('must be 0 or more').waitFor();
  assert.equal(await d.getByLabel('Input, per million tokens').getAttribute('aria-invalid'), 'true');
  assert.equal(await focusedId(), 'model-price-in');
  assert.equal((await gw!.admin('GET', '/models/chat')).body.price.input_per_million, 1, 'nothing was sent');
  await d.getByLabel('Input, per million tokens').fill('0.5');
  await d.getByLabel('Strategy').selectOption('weighted');
  await d.getByLabel('Weight').fill('3');
  await d.getByRole('button', { name: 'Save changes' }).click();
  await d.waitFor({ state: 'hidden' });
  const m = (await gw!.admin('GET', '/models/chat')).body;
  assert.equal(m.price.input_per_million, 0.5);
  assert.equal(m.strategy, 'weighted');
  assert.equal(m.targets[0].weight, 3);
  const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'chat' }) });
  await row.getByText('0.5 / 2').waitFor();

  // only a button pressed (no field typed in): closing still asks, and discarding saves nothing
  await page.getByRole('button', { name: 'Edit model chat' }).click();
  await d.getByRole('button', { name: 'Add target' }).click();
  await d.getByLabel('Target 2 endpoint').waitFor();
  await d.getByRole('button', { name: 'Cancel' }).click();
  const question = page.getByRole('dialog', { name: 'Discard your changes?' });
  await question.getByRole('button', { name: 'Discard changes' }).click();
  await d.waitFor({ state: 'hidden' });
  assert.equal((await gw!.admin('GET', '/models/chat')).body.targets.length, 1);
  assert.deepEqual(problems, []);
});

test('Guardrails: a detector value the schema refuses is named on the field that made it; the corrected policy is saved; older decisions page in', { skip: SKIP_BROWSER }, async () => {
  // more decisions than one page (50) holds: requests the policy redacts
  const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw!.baseURL, maxRetries: 0 });
  for (let i = 0; i < 53; i += 10)
    await Promise.all(Array.from({ length: Math.min(10, 53 - i) }, (_, j) => ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `mail person${i + j}@example.com` }] })));
  await nav('Guardrails');
  const decisions = page.getByTestId('guardrail-events').locator('tbody tr');
  await page.getByTestId('guardrail-events').waitFor();
  assert.equal(await decisions.count(), 50, 'the first page');
  await page.getByRole('button', { name: 'Load older decisions' }).click();
  await eventually(async () => (await decisions.count()) === 53, 'the older decisions are added below');
  assert.equal(await page.getByRole('button', { name: 'Load older decisions' }).count(), 0, 'nothing more to load');
  const ids = await page.getByTestId('guardrail-events').locator('tbody tr td.mono').allTextContents();
  assert.equal(new Set(ids).size, 53, 'each decision once');
  // the list holds still while paged; a new decision shows only after "Back to the newest"
  await page.getByText('53 decisions shown (paused: newer decisions are not added).').waitFor();
  const newest = (await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'mail newest@example.com' }] }).withResponse()).response.headers.get('x-airlock-request-id');
  assert.ok(newest);
  assert.notEqual(await decisions.first().locator('td.mono').textContent(), newest, 'not added while paused');
  // the decision is written in the recorders' next batch: stored before the list is asked again
  // (the page's own refresh comes every 30 s)
  await eventually(async () => (await gw!.admin<{ data: { request_id: string | null }[] }>('GET', '/guardrail-events?limit=1')).body.data[0]?.request_id === newest, 'the newest decision stored');
  await page.getByRole('button', { name: 'Back to the newest' }).click();
  await eventually(async () => (await decisions.count()) === 50 && (await decisions.first().locator('td.mono').textContent()) === newest, 'the first page again, the newest decision on top');
  assert.equal(await page.getByText(/decisions shown \(paused/).count(), 0, 'no longer paused');
  await page.getByRole('button', { name: 'Load older decisions' }).waitFor();
  await page.getByRole('button', { name: 'Back to the newest' }).waitFor({ state: 'detached' });
  await page.getByRole('button', { name: 'Edit policy no-pii' }).click();
  const d = page.getByRole('dialog', { name: 'Edit policy no-pii' });
  assert.equal(await d.getByLabel(/^pii \(/).isChecked(), true, 'the form shows the stored policy');
  await d.getByLabel('Maximum size in characters (optional)').fill('0');
  await d.getByRole('button', { name: 'Save policy' }).click();
  await d.locator('#gr-max-size-error').getByText('must be 1 or more').waitFor();
  assert.equal(await focusedId(), 'gr-max-size');
  assert.deepEqual((await gw!.admin('GET', '/guardrails/no-pii')).body.detectors, ['pii'], 'nothing was sent');
  await d.getByLabel('Maximum size in characters (optional)').fill('5000');
  await d.getByLabel('Mode').selectOption('shadow');
  await d.getByRole('button', { name: 'Save policy' }).click();
  await d.waitFor({ state: 'hidden' });
  const p = (await gw!.admin('GET', '/guardrails/no-pii')).body;
  assert.deepEqual(p.detectors, ['pii', { type: 'max_size', chars: 5000 }]);
  assert.equal(p.mode, 'shadow');
  const row = page.getByTestId('guardrail-policies').getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'no-pii' }) });
  await row.getByText('max 5,000 chars').waitFor();
  await row.getByText('shadow', { exact: true }).waitFor();
  assert.deepEqual(problems, []);
});

test('Routing rules: a field error from the schema, then leaving the page with unsaved rules asks first; after saving, or discarding, it does not', { skip: SKIP_BROWSER }, async () => {
  const asked: string[] = [];
  const answer = (accept: boolean) =>
    page.once('dialog', (q) => {
      asked.push(q.message());
      void (accept ? q.accept() : q.dismiss());
    });
  await nav('Models');
  const rules = page.getByRole('form', { name: 'Routing rules' });
  await page.getByRole('button', { name: 'Add rule' }).click();
  await rules.getByLabel('Name').fill('long-prompts');
  await rules.getByLabel('When the model asked for is').fill('auto');
  await rules.getByLabel('Route to model').selectOption('chat');
  await rules.getByLabel('and prompt tokens ≥').fill('-5');
  await page.getByRole('button', { name: 'Save rules' }).click();
  await rules.locator('#rule-0-min-error').getByText('must be 0 or more').waitFor();
  assert.equal(await focusedId(), 'rule-0-min');
  assert.deepEqual((await gw!.admin('GET', '/routing-rules')).body.data, [], 'nothing was sent');

  // leaving with the unsaved rule asks; staying keeps what was typed
  answer(false);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview', exact: true }).click();
  await eventually(() => asked.length === 1, 'the question was asked');
  assert.match(asked[0]!, /unsaved changes/);
  await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
  assert.equal(await rules.getByLabel('Name').inputValue(), 'long-prompts');

  // saved: leaving asks nothing
  await rules.getByLabel('and prompt tokens ≥').fill('1000');
  await page.getByRole('button', { name: 'Save rules' }).click();
  await page.getByText('Routing rules saved.').waitFor();
  const stored = (await gw!.admin('GET', '/routing-rules')).body.data;
  assert.equal(stored.length, 1);
  assert.equal(stored[0].name, 'long-prompts');
  assert.equal(stored[0].when.model, 'auto');
  assert.equal(stored[0].when.min_prompt_tokens, 1000);
  assert.equal(stored[0].route_to, 'chat');
  await nav('Overview');
  assert.equal(asked.length, 1, 'no question after saving');

  // a rule removed with its button (nothing typed) is an unsaved change too
  await nav('Models');
  await page.getByRole('button', { name: 'Remove rule 1' }).click();
  answer(false);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview', exact: true }).click();
  await eventually(() => asked.length === 2, 'removing a rule is a change the page asks about');
  await page.getByRole('heading', { level: 1, name: 'Models' }).waitFor();
  // "Discard changes" brings the stored rule back: leaving asks nothing
  await page.getByRole('button', { name: 'Discard changes' }).click();
  assert.equal(await rules.getByLabel('Name').inputValue(), 'long-prompts');
  await nav('Overview');
  assert.equal(asked.length, 2, 'no question after discarding');
  assert.deepEqual((await gw!.admin('GET', '/routing-rules')).body.data, stored, 'the stored rules are unchanged');
  assert.deepEqual(problems, []);
});
