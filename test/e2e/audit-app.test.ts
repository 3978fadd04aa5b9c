// The audit trail's pages in Chromium against the real gateway. Prompt log: an owner switches a
// team's prompt logging (the form is the shared zod schema's: a bad retention is named on its
// field), the next request is logged, opening it shows the prompt and response and is itself an
// audit record; an auditor reads but cannot change; switching off removes the setting. Audit: an
// auditor uploads a bundle folder from the browser's machine and the gateway verifies it (an
// intact one passes, a tampered copy fails naming the file).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import OpenAI from 'openai';
import type { Browser, Page } from 'playwright-core';
import { TEST_KEY, basicConfig, eventually, startGateway, tmpDir, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn as signInPage, watchedPage } from '../helpers/browser.js';

const AUDITOR = { name: 'carol', password: 'auditor long password' };

let browser: Browser | undefined;
let gw: RunningGateway | undefined;
let up: TestUpstream | undefined;

before(async () => {
  if (SKIP_BROWSER) return;
  up = await startUpstream();
  gw = await startGateway({ config: basicConfig(up.url) });
  for (const [u, role] of [
    [OWNER, 'owner'],
    [AUDITOR, 'auditor'],
  ] as const)
    assert.equal((await gw.admin('POST', '/users', { name: u.name, password: u.password, role })).status, 201);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
  await up?.close();
});

async function signIn(user: { name: string; password: string }, pageName = 'Prompt log'): Promise<{ page: Page; problems: string[]; close: () => Promise<void> }> {
  const { ctx, page, problems } = await watchedPage(browser!, { viewport: { width: 1280, height: 900 } });
  await signInPage(page, gw!.adminUrl, user);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: pageName, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: pageName }).waitFor();
  return { page, problems, close: () => ctx.close() };
}

const teamRow = (page: Page) => page.getByTestId('prompt-log-teams').getByRole('row', { name: /research/ });

test('an owner switches a team to full logging, reads a logged request (an audited read), and switches it off', { skip: SKIP_BROWSER }, async () => {
  const { page, problems, close } = await signIn(OWNER);
  await teamRow(page).getByText('off').waitFor();
  await page.getByText('Nothing logged').waitFor();

  // the schema's bounds, named on the field; nothing saved
  await page.getByRole('button', { name: 'Change prompt logging of team research' }).click();
  const d = page.getByRole('dialog', { name: 'Prompt logging of team research' });
  await d.getByLabel('Logging', { exact: true }).selectOption('full');
  await d.getByLabel('Keep for (days)').fill('0');
  await d.getByRole('button', { name: 'Save' }).click();
  const field = d.getByLabel('Keep for (days)');
  await eventually(async () => (await field.getAttribute('aria-invalid')) === 'true', 'the retention field marked invalid');
  assert.match((await page.locator('#prompt-logging-days-error').textContent()) ?? '', /1/);
  assert.equal((await gw!.admin('GET', '/teams/research')).body.prompt_logging, undefined, 'nothing saved');
  await field.fill('14');
  await d.getByRole('button', { name: 'Save' }).click();
  await d.waitFor({ state: 'hidden' });
  await teamRow(page).getByText('14 days').waitFor();
  assert.deepEqual((await gw!.admin('GET', '/teams/research')).body.prompt_logging, { mode: 'full', retention_days: 14 });

  // the next request is logged; the list shows it (no text), opening it shows the text
  const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw!.baseURL, maxRetries: 0 });
  const { response } = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello from the browser test' }] }).withResponse();
  const id = response.headers.get('x-airlock-request-id')!;
  await eventually(async () => ((await gw!.admin('GET', `/prompt-log?request_id=${id}`)).body.data as unknown[]).length === 1, 'the logged row');
  await page.getByLabel('Team', { exact: true }).selectOption('research');
  const rows = page.getByTestId('prompt-log-rows');
  await rows.getByRole('rowheader', { name: id }).waitFor();
  assert.ok(!((await rows.textContent()) ?? '').includes('hello from the browser test'), 'the list shows no text');
  await page.getByRole('button', { name: `Open the logged prompt of request ${id}` }).click();
  const entry = page.getByRole('dialog', { name: `Logged request ${id}` });
  await entry.getByText('intact').waitFor();
  assert.match((await entry.getByTestId('prompt-log-prompt').textContent()) ?? '', /hello from the browser test/);
  assert.match((await entry.getByTestId('prompt-log-response').textContent()) ?? '', /echo: hello from the browser test/);
  await entry.getByRole('button', { name: 'Close dialog' }).click();
  const reads = await eventually(
    async () => ((await gw!.admin('GET', '/audit/events?kind=prompt_log.read')).body.data as { actor: string; data: { request_id: string } }[]).filter((e) => e.data.request_id === id),
    'the read record',
  );
  assert.ok(reads.length >= 1 && reads.every((r) => r.actor.includes('owner')), JSON.stringify(reads));

  // off again: the setting is removed (the default), the logged row stays until it expires
  await page.getByRole('button', { name: 'Change prompt logging of team research' }).click();
  await d.getByLabel('Logging', { exact: true }).selectOption('off');
  assert.equal(await d.getByLabel('Keep for (days)').isDisabled(), true, 'no retention to set while off');
  await d.getByRole('button', { name: 'Save' }).click();
  await d.waitFor({ state: 'hidden' });
  await teamRow(page).getByText('off').waitFor();
  assert.equal((await gw!.admin('GET', '/teams/research')).body.prompt_logging, undefined);
  assert.deepEqual(problems, []);
  await close();
});

test('an auditor reads the log but has no button to change it', { skip: SKIP_BROWSER }, async () => {
  const { page, problems, close } = await signIn(AUDITOR);
  await page.getByTestId('prompt-log-rows').waitFor();
  await teamRow(page).waitFor();
  assert.equal(await page.getByRole('button', { name: /^Change prompt logging/ }).count(), 0);
  const open = page.getByRole('button', { name: /^Open the logged prompt of request / }).first();
  await open.click();
  const entry = page.getByRole('dialog', { name: /^Logged request / });
  await entry.getByTestId('prompt-log-prompt').getByText(/hello from the browser test/).waitFor();
  await entry.getByRole('button', { name: 'Close dialog' }).click();
  await eventually(async () => ((await gw!.admin('GET', '/audit/events?kind=prompt_log.read')).body.data as { actor: string }[]).some((e) => e.actor.includes(AUDITOR.name)), 'the auditor’s read record');
  assert.deepEqual(problems, []);
  await close();
});

test('an auditor uploads a bundle folder from the browser: intact verifies, a tampered copy fails naming the file', { skip: SKIP_BROWSER }, async () => {
  const r = await gw!.admin('POST', '/audit/export', { to: tmpDir('airlock-usb-') });
  assert.equal(r.status, 200, JSON.stringify(r.body));
  const bundle: string = r.body.dir;
  const tampered = path.join(tmpDir('airlock-usb-'), path.basename(bundle));
  fs.cpSync(bundle, tampered, { recursive: true });
  const events = path.join(tampered, 'events.jsonl');
  fs.writeFileSync(events, fs.readFileSync(events, 'utf8').replace('"research"', '"researcH"'));

  const { page, problems, close } = await signIn(AUDITOR, 'Audit');
  const input = page.getByLabel('Bundle folder on this computer');
  const status = page.getByTestId('audit-upload-status');
  // nothing chosen: the field says so
  await page.getByRole('button', { name: 'Upload and verify' }).click();
  await page.locator('#audit-upload-files-error').waitFor();
  await input.setInputFiles(bundle);
  await page.getByText(/\d+ file\(s\) from airlock-audit-/).waitFor();
  await page.getByRole('button', { name: 'Upload and verify' }).click();
  await status.getByText('Verified').waitFor();
  assert.match((await status.textContent()) ?? '', new RegExp(`signed by ${(await gw!.admin('GET', '/audit/key')).body.fingerprint}`));
  await input.setInputFiles(tampered);
  await page.getByRole('button', { name: 'Upload and verify' }).click();
  await status.getByText('Failed').waitFor();
  assert.match((await status.textContent()) ?? '', /events\.jsonl/);
  assert.deepEqual(fs.existsSync(path.join(gw!.dataDir, 'tmp')) ? fs.readdirSync(path.join(gw!.dataDir, 'tmp')) : [], [], 'no copy left on the gateway');
  assert.deepEqual(problems, []);
  await close();
});
