// From a request on the Usage page to its trace, in Chromium against the real gateway: each row
// of "Latest requests" links to the Traces page's single-trace view (/traces?request=ID), which
// shows the request's waterfall (its model span with its attempts: one for a plain request, the
// failed one and the one that answered for a fallback); a request whose trace is not stored shows
// the API's reason.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';
import { TEST_KEY, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';

const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';
const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
const SKIP = !HAVE_CHROMIUM && process.env.CI !== 'true' ? `Chromium not found at ${CHROMIUM}` : false;
const OWNER = { name: 'owner', password: 'correct horse battery staple' };

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

async function chat(content: string): Promise<string> {
  const res = await fetch(`${gw!.baseURL}/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TEST_KEY}`, 'content-type': 'application/json', 'x-airlock-session': 'audit-run' },
    body: JSON.stringify({ model: 'chat', messages: [{ role: 'user', content }] }),
  });
  assert.equal(res.status, 200, await res.text());
  return res.headers.get('x-airlock-request-id')!;
}

/** The Usage page, then the trace link of one request: the single-trace view opens. */
async function openTraceFromUsage(page: Page, id: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Usage' }).waitFor();
  await page.getByTestId('latest-requests').getByRole('link', { name: `Trace of request ${id}` }).click();
  await page.getByRole('heading', { level: 2, name: `Trace of request ${id}` }).waitFor();
  assert.equal(new URL(page.url()).pathname + new URL(page.url()).search, `/traces?request=${id}`);
}

test("a request's trace link on the Usage page opens its waterfall; a trace not stored says why", { skip: SKIP }, async () => {
  const plain = await chat('plain');
  primary!.queue({ kind: 'status', status: 503, body: '{"error":{"message":"gpu-1 overloaded"}}' });
  const fell = await chat('falls back');
  const cur = (await gw!.admin('GET', '/settings')).body;
  assert.equal((await gw!.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, traces: false } })).status, 200);
  const untraced = await chat('not traced');
  assert.equal((await gw!.admin('PUT', '/settings', cur)).status, 200);

  const ctx = await browser!.newContext({ viewport: { width: 1360, height: 900 }, locale: 'en-US', timezoneId: 'UTC' });
  ctx.setDefaultTimeout(20_000);
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    // the not-stored trace is a 404 the page shows; Chromium logs the failed fetch itself
    if (m.type() === 'error' && !/status of 404/.test(m.text())) problems.push(m.text());
  });
  page.on('pageerror', (e) => problems.push(e.message));
  await page.goto(gw!.adminUrl + '/');
  await page.getByLabel('User name').fill(OWNER.name);
  await page.getByLabel('Password', { exact: true }).fill(OWNER.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

  // the plain request: its model span and its one attempt, the request's span marked
  await openTraceFromUsage(page, plain);
  const wf = page.getByTestId('waterfall');
  await wf.locator('tr[data-kind="model"]').first().waitFor();
  assert.equal(await wf.locator('tr[data-kind="model"]').count(), 1);
  const model = wf.locator('tr[data-kind="model"]');
  assert.match((await model.textContent()) ?? '', /chat chat.*this request.*served by gpu-1 \(llama\)/);
  assert.equal(await model.getAttribute('aria-current'), 'true');
  const attempts = wf.locator('tr[data-kind="attempt"]');
  assert.equal(await attempts.count(), 1);
  assert.match((await attempts.textContent()) ?? '', /gpu-1 · llama/);
  assert.match((await page.getByTestId('trace-about').textContent()) ?? '', new RegExp(`Trace id ${plain.replaceAll('-', '')}.*workflow audit-run`));

  // the fallback: the failed attempt with its reason, then the one that answered
  await openTraceFromUsage(page, fell);
  await wf.locator('tr[data-kind="attempt"]').nth(1).waitFor();
  assert.match((await wf.locator('tr[data-kind="model"]').textContent()) ?? '', /served by gpu-2 \(llama\) · 2 attempts/);
  const tried = await wf.locator('tr[data-kind="attempt"]').allTextContents();
  assert.equal(tried.length, 2);
  assert.match(tried[0]!, /failed.*gpu-1 · llama.*failed: upstream returned 503 \(gpu-1 overloaded\)/);
  assert.match(tried[1]!, /gpu-2 · llama/);
  assert.equal(await wf.locator('tr[data-kind="attempt"].wf-failed').count(), 1);

  // the address opens it again after a reload
  await page.reload();
  await page.getByRole('heading', { level: 2, name: `Trace of request ${fell}` }).waitFor();
  await page.getByTestId('waterfall').locator('tr[data-kind="attempt"]').nth(1).waitFor();

  // a trace by its trace id opens the same way (/traces?trace=ID)
  const traceId = plain.replaceAll('-', '');
  await page.goto(`${gw!.adminUrl}/traces?trace=${traceId}`);
  await page.getByRole('heading', { level: 2, name: `Trace ${traceId}` }).waitFor();
  await page.getByTestId('waterfall').locator('tr[data-kind="attempt"]').waitFor();
  assert.equal(await page.getByTestId('waterfall').locator('tr[data-kind="model"]').count(), 1);

  // traced while traces were off: the API's reason, no waterfall
  await openTraceFromUsage(page, untraced);
  const empty = page.getByTestId('waterfall-empty');
  await empty.waitFor();
  assert.match((await empty.textContent()) ?? '', new RegExp(`The trace of request ${untraced} is not stored: .*traces were off`));
  assert.equal(await page.getByTestId('waterfall').count(), 0);

  // back to the workflows
  await page.getByRole('link', { name: 'All workflows' }).click();
  await page.getByTestId('sessions-table').getByRole('button', { name: 'Open workflow audit-run' }).waitFor();
  assert.deepEqual(problems, []);
  await ctx.close();
});
