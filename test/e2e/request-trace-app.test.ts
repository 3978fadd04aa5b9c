// From a request on the Usage page to its trace, in Chromium against the real gateway: each row
// of "Latest requests" links to the Traces page's single-trace view (/traces?request=ID), which
// shows the request's waterfall (its model span with its attempts: one for a plain request, the
// failed one and the one that answered for a fallback); a request whose trace is not stored shows
// the API's reason.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { TEST_KEY } from '../helpers/gateway.js';
import { type FallbackGateway, startFallbackGateway } from '../helpers/fallback.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn, watchedPage } from '../helpers/browser.js';

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

async function chat(content: string): Promise<string> {
  const res = await fetch(`${f!.gw.baseURL}/chat/completions`, {
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

test("a request's trace link on the Usage page opens its waterfall; a trace not stored says why", { skip: SKIP_BROWSER }, async () => {
  const { gw, primary } = f!;
  const plain = await chat('plain');
  primary.queue({ kind: 'status', status: 503, body: '{"error":{"message":"gpu-1 overloaded"}}' });
  const fell = await chat('falls back');
  const cur = (await gw.admin('GET', '/settings')).body;
  assert.equal((await gw.admin('PUT', '/settings', { ...cur, telemetry: { ...cur.telemetry, traces: false } })).status, 200);
  const untraced = await chat('not traced');
  assert.equal((await gw.admin('PUT', '/settings', cur)).status, 200);

  // the not-stored trace is a 404 the page shows; Chromium logs the failed fetch itself
  const { ctx, page, problems } = await watchedPage(browser!, { ignore: /status of 404/ });
  await signIn(page, gw.adminUrl);

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
  await page.goto(`${gw.adminUrl}/traces?trace=${traceId}`);
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
