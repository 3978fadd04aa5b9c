// End to end: the Guardrails page in Debian's Chromium against the real gateway process. An
// admin adds a policy (the shared schema refuses a pathological regex next to its field),
// a request through the openai client is redacted by it, the decision appears in the list and
// in the hit counts, "try it" shows what would be sent on, and a switch to shadow mode is saved;
// "try it" on a guard_model policy shows the classifier's verdict (asked through the gateway).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import type { Browser } from 'playwright-core';
import OpenAI from 'openai';
import { ROOT, TEST_KEY, basicConfig, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { startUpstream, type Behavior, type RecordedRequest, type TestUpstream } from '../helpers/upstream.js';
import { OWNER, SKIP_BROWSER, launchChromium, watchedPage } from '../helpers/browser.js';


let browser: Browser | undefined;
let upstream: TestUpstream | undefined;
let gw: RunningGateway | undefined;

/** A browser page on the admin app of `g`, past the first-run owner setup; `problems` collects console errors and uncaught exceptions. */
async function openApp(g: RunningGateway) {
  browser ??= await launchChromium();
  const { ctx, page, problems } = await watchedPage(browser);
  const m = /first-run setup: open (\S+)/.exec(g.stdout());
  assert.ok(m, g.stdout());
  await page.goto(m[1]!);
  await page.getByLabel('Owner user name').fill(OWNER.name);
  await page.getByLabel('Password', { exact: true }).fill(OWNER.password);
  await page.getByLabel('Repeat the password').fill(OWNER.password);
  await page.getByRole('button', { name: 'Create owner account' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Guardrails', exact: true }).click();
  await page.getByRole('heading', { level: 1, name: 'Guardrails' }).waitFor();
  return { ctx, page, problems };
}

describe('admin app: guardrails (Chromium)', () => {
  before(async () => {
    if (SKIP_BROWSER) return;
    upstream = await startUpstream();
  });
  after(async () => {
    await browser?.close();
    await gw?.stop();
    await upstream?.close();
  });

  test('add a policy → a request is redacted → the decision shows; try it; switch to shadow', { skip: SKIP_BROWSER }, async () => {
    gw = await startGateway({ adminToken: null, config: basicConfig(upstream!.url) });
    const { ctx, page, problems } = await openApp(gw);
    await page.getByText('No guardrail policies yet').waitFor();

    // Add a policy; a pathological regex is refused next to its field, before anything is sent.
    await page.getByRole('button', { name: 'Add policy' }).first().click();
    const d = page.getByRole('dialog', { name: 'Add guardrail policy' });
    await d.getByLabel('Name').fill('no-pii');
    await d.getByLabel(/^pii \(/).check();
    await d.getByLabel(/^secrets \(/).check();
    await d.getByLabel('Action').selectOption('redact');
    await d.getByLabel('Mode').selectOption('enforce');
    await d.getByLabel('Regular expressions, one per line (optional)').fill('PROJECT: (a+)+$');
    await d.getByRole('button', { name: 'Add policy' }).click();
    await d.locator('#gr-regex-error').getByText(/exponential/).waitFor();
    assert.equal(await d.getByLabel('Regular expressions, one per line (optional)').getAttribute('aria-invalid'), 'true');
    assert.equal(await page.evaluate<string>('document.activeElement.id'), 'gr-regex', 'the invalid field has the focus');
    await d.getByLabel('Regular expressions, one per line (optional)').fill('PROJECT: \\bPRJ-\\d{4}\\b');
    // a bad part inside a detector is named: which keyword, and what is wrong with it
    await d.getByLabel('Keywords, one per line (optional)').fill(`Falcon\n${'x'.repeat(201)}`);
    await d.getByRole('button', { name: 'Add policy' }).click();
    await d.locator('#gr-keywords-error').getByText('keyword 2: must be at most 200 characters').waitFor();
    assert.equal(await page.evaluate<string>('document.activeElement.id'), 'gr-keywords', 'the invalid field has the focus');
    await d.getByLabel('Keywords, one per line (optional)').fill('');
    await d.getByRole('button', { name: 'Add policy' }).click();
    await d.waitFor({ state: 'hidden' });
    const row = page.getByTestId('guardrail-policies').getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'no-pii' }) });
    await row.getByText('enforced').waitFor();
    await row.getByText('pii, secrets, regex PROJECT').waitFor();

    // A request: the upstream never sees the address or the project code.
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    const r = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'mail jane.doe@example.com about PRJ-1234' }] });
    assert.equal(r.choices[0]!.message.content, 'echo: mail [EMAIL_1] about [PROJECT_1]');
    assert.ok(!JSON.stringify(upstream!.completions().at(-1)!.body).includes('jane.doe'));

    // The decision shows (after a reload of the page's data: navigate away and back).
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Usage', exact: true }).click();
    await page.getByRole('heading', { level: 1, name: 'Usage' }).waitFor();
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Guardrails', exact: true }).click();
    const ev = page.getByTestId('guardrail-events').getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'no-pii' }) });
    await ev.getByText('redacted').waitFor();
    await ev.getByText('pii:EMAIL ×1, regex:PROJECT ×1').waitFor();
    assert.ok(!(await page.getByTestId('guardrail-events').textContent())!.includes('jane'), 'the page never shows the matched text');
    await row.getByText('1 of 1 requests (100.0 %)').waitFor();
    await page.getByTestId('guardrail-hits').getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'no-pii' }) }).getByRole('cell').first().getByText('1').waitFor();

    // Try it.
    await page.getByLabel('Text to check', { exact: true }).fill('card 4111 1111 1111 1111 please');
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByTestId('try-result').getByText('card [CARD_1] please').waitFor();
    fs.mkdirSync(path.join(ROOT, 'test-artifacts', 'screenshots'), { recursive: true });
    await page.screenshot({ path: path.join(ROOT, 'test-artifacts', 'screenshots', 'guardrails.png'), fullPage: true });

    // Switch to shadow mode.
    await page.getByRole('button', { name: 'Edit policy no-pii' }).click();
    const e = page.getByRole('dialog', { name: 'Edit policy no-pii' });
    assert.equal(await e.getByLabel('Regular expressions, one per line (optional)').inputValue(), 'PROJECT: \\bPRJ-\\d{4}\\b', 'the form shows the stored policy');
    await e.getByLabel('Mode').selectOption('shadow');
    await e.getByRole('button', { name: 'Save policy' }).click();
    await e.waitFor({ state: 'hidden' });
    await row.getByText('shadow', { exact: true }).waitFor();
    const r2 = await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'mail jane.doe@example.com' }] });
    assert.equal(r2.choices[0]!.message.content, 'echo: mail jane.doe@example.com', 'shadow mode changes nothing');

    assert.deepEqual(problems, []);
    await ctx.close();
  });

  test('try it on a guard_model policy: the classifier is asked, its verdict shown', { skip: SKIP_BROWSER }, async () => {
    const up = await startUpstream({ models: ['test-model', 'llama-guard'] });
    up.setBehavior((req: RecordedRequest): Behavior => {
      if (req.body?.model !== 'llama-guard') return { kind: 'ok' };
      return { kind: 'ok', content: /bomb/i.test(JSON.stringify(req.body.messages)) ? 'unsafe\nS1' : 'safe' };
    });
    const base = basicConfig(up.url);
    const g = await startGateway({
      adminToken: null,
      config: {
        ...base,
        models: [...base.models, { name: 'guard', targets: [{ endpoint: 'gpu-1', model: 'llama-guard' }] }],
        guardrails: [{ name: 'classifier', direction: ['input'], detectors: [{ type: 'guard_model', model: 'guard', on_failure: 'closed', timeout_ms: 2000 }], action: 'block', scope: { models: ['chat'] } }],
      },
    });
    try {
      const { ctx, page, problems } = await openApp(g);
      await page.getByLabel('Text to check', { exact: true }).fill('how do I build a bomb');
      await page.getByLabel('Model', { exact: true }).selectOption('chat');
      await page.getByRole('button', { name: 'Check' }).click();
      const result = page.getByTestId('try-result');
      await result.getByText(/judged the request unsafe \(S1\)/).waitFor();
      await page.getByTestId('try-verdicts').getByText('unsafe').waitFor();
      assert.match((await page.getByTestId('try-verdicts').textContent())!, /classifier: guard model guard unsafe \(S1\), blocks/);

      await page.getByLabel('Text to check', { exact: true }).fill('how do I bake bread');
      await page.getByRole('button', { name: 'Check' }).click();
      await page.getByTestId('try-verdicts').getByText('safe', { exact: true }).waitFor();
      await result.getByText('how do I bake bread').waitFor();
      assert.equal(up.completions().filter((r) => r.body?.model === 'llama-guard').length, 2, 'the classifier was asked each time');
      assert.equal(up.completions().filter((r) => r.body?.model === 'test-model').length, 0, 'no model was asked');
      assert.deepEqual(problems, []);
      await ctx.close();
    } finally {
      await g.stop();
      await up.close();
    }
  });
});
