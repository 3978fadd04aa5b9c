// The Settings page's "Traces and telemetry" section in Chromium against the real gateway: the
// form is generated from the shared zod schema (settings.telemetry), so its errors are the
// schema's, shown next to the field that has them; the collector's headers are edited as
// "Name: ${env:AIRLOCK_SECRET_NAME}" lines; what is saved is what the settings API then returns,
// and the page shows it again after a reload.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser, Page } from 'playwright-core';
import { startGateway, type RunningGateway } from '../helpers/gateway.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn, watchedPage } from '../helpers/browser.js';


let browser: Browser | undefined;
let gw: RunningGateway | undefined;

before(async () => {
  if (SKIP_BROWSER) return;
  gw = await startGateway({ config: {} });
  assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

interface Telemetry {
  traces: boolean;
  sample_ratio: number;
  retention_hours: number;
  otlp_endpoint?: string;
  otlp_headers?: Record<string, string>;
}
const stored = async () => (await gw!.admin<{ telemetry: Telemetry; queue_timeout_ms: number }>('GET', '/settings')).body;
const save = (page: Page) => page.getByRole('button', { name: 'Save settings' }).click();
const focusedId = (page: Page) => page.evaluate<string | null>('document.activeElement?.id ?? null');

test('an owner edits traces and telemetry: schema errors next to the field, secrets only as references, saved and shown again', { skip: SKIP_BROWSER }, async () => {
  const before = await stored();
  assert.equal(before.telemetry.traces, true);
  assert.equal(before.telemetry.otlp_endpoint, undefined);

  const { ctx, page, problems } = await watchedPage(browser!, { viewport: { width: 1280, height: 900 } });
  await signIn(page, gw!.adminUrl);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Settings', exact: true }).click();
  await page.getByRole('heading', { level: 2, name: 'Traces and telemetry' }).waitFor();

  const url = page.getByLabel('OTLP collector URL');
  const headers = page.getByLabel('Collector headers');
  const ratio = page.getByLabel('Share of successful requests traced (0 to 1)');
  const keep = page.getByLabel('Keep traces for (hours)');
  assert.equal(await page.getByLabel('Record traces in the local span store').isChecked(), true);
  assert.equal(await keep.inputValue(), String(before.telemetry.retention_hours));

  // a collector URL of another scheme: the schema's message, on that field, which takes the focus
  await url.fill('ftp://10.0.0.9:4318/v1/traces');
  await save(page);
  await page.getByText('must be an http:// or https:// URL').waitFor();
  assert.equal(await url.getAttribute('aria-invalid'), 'true');
  assert.equal(await focusedId(page), await url.getAttribute('id'));

  // out of range: sample ratio 1.5
  await url.fill('http://127.0.0.1:4318/v1/traces');
  await ratio.fill('1.5');
  await save(page);
  await page.locator(`#${await ratio.getAttribute('id')}[aria-invalid="true"]`).waitFor();
  assert.equal(await url.getAttribute('aria-invalid'), null, 'the fixed field is no longer marked');

  // a header given as a literal secret is refused, naming the header; a line that is no header too
  await ratio.fill('0.25');
  await headers.fill('Authorization: Bearer s3cret-literal');
  await save(page);
  await page.getByText('"Authorization": must be a reference ${env:AIRLOCK_SECRET_NAME}').waitFor();
  assert.equal(await headers.getAttribute('aria-invalid'), 'true');
  await headers.fill('just-a-name');
  await save(page);
  await page.getByText('Line 1 ("just-a-name"): write it as Name: value.').waitFor();
  assert.equal((await stored()).telemetry.otlp_endpoint, undefined, 'nothing was saved while the form had errors');

  // valid: saved, and the API returns exactly that (the other settings kept)
  await headers.fill('Authorization: ${env:AIRLOCK_SECRET_OTLP}\nX-Scope-OrgID:${env:AIRLOCK_SECRET_TENANT}');
  await keep.fill('48');
  await page.getByLabel('Record traces in the local span store').uncheck();
  await save(page);
  await page.getByText('Settings saved.').waitFor();
  const after = await stored();
  assert.deepEqual(after.telemetry, {
    ...before.telemetry,
    traces: false,
    sample_ratio: 0.25,
    retention_hours: 48,
    otlp_endpoint: 'http://127.0.0.1:4318/v1/traces',
    otlp_headers: { Authorization: '${env:AIRLOCK_SECRET_OTLP}', 'X-Scope-OrgID': '${env:AIRLOCK_SECRET_TENANT}' },
  });
  assert.equal(after.queue_timeout_ms, before.queue_timeout_ms);
  assert.doesNotMatch(JSON.stringify(after), /s3cret-literal/);

  // shown again after a reload; emptying the URL and the headers turns export off
  await page.reload();
  await page.getByRole('heading', { level: 2, name: 'Traces and telemetry' }).waitFor();
  assert.equal(await page.getByLabel('OTLP collector URL').inputValue(), 'http://127.0.0.1:4318/v1/traces');
  assert.equal(await page.getByLabel('Collector headers').inputValue(), 'Authorization: ${env:AIRLOCK_SECRET_OTLP}\nX-Scope-OrgID: ${env:AIRLOCK_SECRET_TENANT}');
  assert.equal(await page.getByLabel('Record traces in the local span store').isChecked(), false);
  await page.getByLabel('OTLP collector URL').fill('');
  await page.getByLabel('Collector headers').fill('');
  await save(page);
  await page.getByText('Settings saved.').waitFor();
  const off = (await stored()).telemetry;
  assert.equal(off.otlp_endpoint, undefined);
  assert.equal(off.otlp_headers, undefined);
  assert.deepEqual(problems, []);
  await ctx.close();
});
