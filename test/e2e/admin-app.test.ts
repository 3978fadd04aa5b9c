// End to end: the admin app in Debian's Chromium (driven by playwright-core) against the real
// gateway process and a test upstream. First-run setup → login → endpoint (discovery, test
// connection) → model → team and key → a data-plane call with the official openai client → the
// usage page and the overview chart show it. An auditor cannot change anything. Wrong passwords
// lock an account.
//
// Needs `npm run build:renderer` (the app the gateway serves) and Chromium at /usr/bin/chromium
// (or AIRLOCK_CHROMIUM). Without Chromium the tests are skipped, except in CI (CI=true), where
// they fail. Screenshots go to test-artifacts/screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import OpenAI from 'openai';
import Database from 'better-sqlite3';
import { ADMIN_TOKEN, ROOT, TEST_KEY, basicConfig, eventually, runCli, startGateway, type RunningGateway, tmpDir } from '../helpers/gateway.js';
import { startUpstream, type TestUpstream } from '../helpers/upstream.js';
import { ADMIN_APP_CSP } from '../../gateway/server/static.js';
import { EVERYTHING, agentClient } from '../helpers/mcp.js';
import { OWNER, SKIP_BROWSER, UI_WAIT, launchChromium, watchedPage } from '../helpers/browser.js';

const SHOTS = path.join(ROOT, 'test-artifacts', 'screenshots');

let browser: Browser | undefined;
let upstream: TestUpstream | undefined;
const gateways: RunningGateway[] = [];
const contexts: BrowserContext[] = [];

async function launch(): Promise<Browser> {
  browser ??= await launchChromium();
  return browser;
}

interface Watched {
  page: Page;
  /** console errors and uncaught exceptions, e.g. CSP violations */
  problems: string[];
}

async function newPage(): Promise<Watched> {
  const { ctx, page, problems } = await watchedPage(await launch(), { acceptDownloads: true });
  contexts.push(ctx);
  return { page, problems };
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.evaluate('window.scrollTo(0, 0)');
  await page.screenshot({ path: path.join(SHOTS, `${name}.png`), fullPage: true });
}

/** A port nothing listens on now (the OS's choice for port 0, released at once). */
async function freePort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function gateway(opts: Parameters<typeof startGateway>[0]): Promise<RunningGateway> {
  const gw = await startGateway(opts);
  gateways.push(gw);
  return gw;
}

/** No console errors (CSP violations, React warnings, failed loads) except the expected ones. */
function assertNoProblems(problems: string[], allow: RegExp[] = []): void {
  const real = problems.filter((p) => !allow.some((a) => a.test(p)));
  assert.deepEqual(real, [], `the page logged errors:\n${real.join('\n')}`);
}

/** Open the app; a clear failure when the admin plane does not serve it. */
async function open(page: Page, url: string) {
  const res = await page.goto(url);
  if (res?.status() === 404 && /unknown_route/.test(await res.text()))
    assert.fail('The admin plane does not serve the admin app: call registerAdminApp(app) (gateway/server/static.ts) in buildAdminPlane.');
  assert.equal(res?.status(), 200, `GET ${url}`);
  assert.equal(res.headers()['content-security-policy'], ADMIN_APP_CSP);
  return res;
}

async function nav(page: Page, label: string, heading = label): Promise<void> {
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: label, exact: true }).click();
  await page.getByRole('heading', { level: 1, name: heading, exact: true }).waitFor();
  await page.getByRole('status').filter({ hasText: /^Loading/ }).first().waitFor({ state: 'detached' });
  await assertLabelled(page);
}

/** Every form control on the page has a label (or an accessible name). */
async function assertLabelled(page: Page): Promise<void> {
  // (a string: the root tsconfig has no DOM types)
  const unlabelled = await page.evaluate<string[]>(`[...document.querySelectorAll('input, select, textarea')]
    .filter((el) => el.type !== 'hidden' && !el.labels?.length && !el.getAttribute('aria-label') && !el.getAttribute('aria-labelledby'))
    .map((el) => el.id || el.outerHTML.slice(0, 100))`);
  assert.deepEqual(unlabelled, [], `controls without a label on ${page.url()}`);
}

async function login(page: Page, user: string, password: string): Promise<number> {
  await page.getByLabel('User name').fill(user);
  await page.getByLabel('Password', { exact: true }).fill(password);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith('/admin/api/v1/auth/login') && r.request().method() === 'POST'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
  return res.status();
}

describe('admin app (Chromium)', () => {
  before(async () => {
    if (SKIP_BROWSER) return;
    upstream = await startUpstream({ models: ['test-model', 'test-model-large'] });
  });

  after(async () => {
    for (const c of contexts) await c.close().catch(() => undefined);
    await browser?.close();
    await Promise.all(gateways.map((g) => g.stop()));
    await upstream?.close();
  });

  test('first-run setup → login → endpoint → model → key → a request shows in usage and on the overview', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ adminToken: null });
    const { page, problems } = await newPage();

    // The setup URL with its one-time token, as `airlock serve` prints it.
    const m = /first-run setup: open (\S+)/.exec(gw.stdout());
    assert.ok(m, `the gateway printed no first-run setup line:\n${gw.stdout()}`);
    const setupUrl = new URL(m[1]!);
    const token = setupUrl.searchParams.get('token');
    assert.ok(token);

    await open(page, setupUrl.href);
    await page.getByRole('heading', { name: 'Set up Airlock' }).waitFor();
    assert.equal(await page.getByLabel('Setup token').inputValue(), token, 'the token is pre-filled from ?token=');

    // The shared schema's rule shows next to the field before anything is sent.
    await page.getByLabel('Owner user name').fill(OWNER.name);
    await page.getByLabel('Password', { exact: true }).fill('too short');
    await page.getByLabel('Repeat the password').fill('too short');
    await page.getByRole('button', { name: 'Create owner account' }).click();
    await page.locator('#setup-password-error').getByText('at least 12 characters').waitFor();
    assert.equal(await page.getByLabel('Password', { exact: true }).getAttribute('aria-invalid'), 'true');
    await shot(page, '01-setup-validation');

    await page.getByLabel('Password', { exact: true }).fill(OWNER.password);
    await page.getByLabel('Repeat the password').fill(OWNER.password);
    await page.getByRole('button', { name: 'Create owner account' }).click();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.getByText('Start here: add a model server').waitFor();
    assert.equal(new URL(page.url()).pathname, '/', 'the setup token leaves the address bar');
    await shot(page, '02-overview-empty');

    // Sign out, then in again.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await login(page, OWNER.name, OWNER.password), 200);
    await page.getByText('Signed in as').waitFor();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();

    // Endpoints: discovery finds the test upstream at the host:port we type.
    await nav(page, 'Endpoints');
    await page.getByText('No model servers yet').waitFor();
    await page.getByRole('button', { name: 'Discover…' }).click();
    const disc = page.getByRole('dialog', { name: 'Discover model servers' });
    await disc.getByLabel('Probe this machine (localhost)').uncheck();
    await disc.getByLabel('Other hosts to probe').fill(`127.0.0.1:${upstream!.port}`);
    await disc.getByRole('button', { name: 'Probe' }).click();
    const found = disc.getByRole('list', { name: 'Servers that answered' });
    await found.getByText(`http://127.0.0.1:${upstream!.port}/v1`).waitFor();
    await found.getByText('test-model, test-model-large').waitFor();
    await shot(page, '03-discover');
    await found.getByRole('button', { name: `Add http://127.0.0.1:${upstream!.port}/v1` }).click();

    // The add form comes pre-filled; the admin names it and tests the connection again.
    const form = page.getByRole('dialog', { name: 'Add endpoint' });
    await form.waitFor();
    await assertLabelled(page);
    assert.equal(await form.getByLabel('Base URL').inputValue(), upstream!.url);
    await form.getByLabel('Name').fill('gpu-1');
    await form.getByRole('button', { name: 'Test connection' }).click();
    const served = form.getByRole('list', { name: 'Models served' });
    await served.getByText('test-model', { exact: true }).waitFor();
    await served.getByText('test-model-large', { exact: true }).waitFor();
    await form.getByText('Connected').waitFor();
    await shot(page, '04-endpoint-test-connection');
    await form.getByRole('button', { name: 'Add endpoint' }).click();
    await form.waitFor({ state: 'hidden' });
    const epRow = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'gpu-1' }) });
    await epRow.getByText(upstream!.url).waitFor();

    // Models: an alias with the endpoint as its target.
    await nav(page, 'Models');
    await page.getByText('No models yet').waitFor();
    await page.getByRole('button', { name: 'Create model' }).first().click();
    const mform = page.getByRole('dialog', { name: 'Create model' });
    await mform.waitFor();
    await assertLabelled(page);
    await mform.getByLabel('Name', { exact: true }).fill('chat');
    assert.equal(await mform.getByLabel('Target 1 endpoint').inputValue(), 'gpu-1');
    await mform.getByLabel('Target 1 upstream model').fill('test-model');
    await mform.getByLabel('Input, per million tokens').fill('1');
    await mform.getByLabel('Output, per million tokens').fill('2');
    await shot(page, '05-model-form');
    await mform.getByRole('button', { name: 'Create model' }).click();
    await mform.waitFor({ state: 'hidden' });
    await page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'chat' }) }).getByText('test-model').waitFor();

    // Routing rules: a virtual model name "auto" routed to the alias.
    await page.getByRole('button', { name: 'Add rule' }).click();
    await page.getByLabel('Name', { exact: true }).fill('auto-to-chat');
    await page.getByLabel('When the model asked for is').fill('auto');
    await page.getByLabel('Route to model').selectOption('chat');
    await page.getByRole('button', { name: 'Save rules' }).click();
    await page.getByText('Routing rules saved.').waitFor();
    await shot(page, '05b-models-and-rules');

    // Teams & keys: a team, then a key scoped to the model, shown once.
    await nav(page, 'Teams & keys');
    await page.getByLabel('New team name').fill('research');
    await page.getByRole('button', { name: 'Create team' }).click();
    await page.getByRole('rowheader', { name: 'research' }).waitFor();
    await page.getByRole('button', { name: 'Create key' }).first().click();
    const kform = page.getByRole('dialog', { name: 'Create key' });
    await kform.waitFor();
    await assertLabelled(page);
    await kform.getByLabel('Name', { exact: true }).fill('notebook-app');
    await kform.getByLabel('Team').selectOption('research');
    await kform.getByLabel('chat', { exact: true }).check();
    await kform.getByRole('button', { name: 'Create key' }).click();
    const secret = page.getByRole('dialog', { name: 'Key for notebook-app' });
    await secret.waitFor();
    const key = await secret.getByLabel('Key', { exact: true }).inputValue();
    assert.match(key, /^sk-airlock-[A-Za-z0-9_-]{22,}$/);
    await secret.getByRole('button', { name: 'Copy' }).click();
    await secret.getByText(/Copied|Selected/).waitFor();
    await shot(page, '06-key-shown-once');
    await secret.getByRole('button', { name: 'I have copied it' }).click();
    await secret.waitFor({ state: 'hidden' });
    const keyRow = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /notebook-app/ }) });
    await keyRow.getByText('active').waitFor();
    assert.equal(await page.getByText(key).count(), 0, 'the key is not shown again');

    // An app calls the data plane with that key through the official client.
    const client = new OpenAI({ apiKey: key, baseURL: gw.baseURL, maxRetries: 0 });
    const completion = await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'Hello from the admin app e2e test' }] });
    assert.match(completion.choices[0]?.message.content ?? '', /Hello from the admin app e2e test/);
    const usage = completion.usage!;
    assert.ok(usage.total_tokens > 0);

    // Usage: the team row counts the request and its tokens.
    await nav(page, 'Usage');
    const table = page.getByTestId('usage-table');
    const teamRow = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'research', exact: true }) });
    await teamRow.waitFor();
    const cells = await teamRow.getByRole('cell').allTextContents();
    // Requests, Errors, Prompt, Completion, Total, Cost, Avg latency
    assert.deepEqual(cells.slice(0, 5).map((c) => c.replace(/[^\d]/g, '')), ['1', '0', String(usage.prompt_tokens), String(usage.completion_tokens), String(usage.total_tokens)]);
    await page.getByTestId('usage-chart').locator('svg .recharts-bar-rectangle path').first().waitFor();
    await page.getByLabel('Group by').selectOption('model');
    const modelRow = table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'chat', exact: true }) });
    await modelRow.waitFor();
    assert.equal((await modelRow.getByRole('cell').first().textContent())?.trim(), '1');
    await shot(page, '07-usage');
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^model,requests,errors,prompt_tokens,completion_tokens,total_tokens/);
    assert.match(csv, new RegExp(`\\r\\nchat,1,0,${usage.prompt_tokens},${usage.completion_tokens},${usage.total_tokens},`));

    // Overview: the totals count the request, the charts draw it, the endpoint is listed.
    await nav(page, 'Overview');
    await page.getByTestId('stat-requests').getByText('1', { exact: true }).waitFor();
    await page.getByTestId('stat-tokens').getByText(String(usage.total_tokens), { exact: true }).waitFor();
    await page.getByTestId('chart-requests').locator('svg path.recharts-area-curve').first().waitFor();
    await page.getByTestId('chart-latency').locator('svg .recharts-line-dots circle').first().waitFor();
    await page.getByRole('rowheader', { name: 'gpu-1' }).waitFor();
    await shot(page, '08-overview');

    // More traffic, some of it failing upstream: the overview counts every request and error.
    upstream!.setBehavior(() => ({ kind: 'ok', chunkDelayMs: Math.floor(Math.random() * 8) }));
    let sent = 1;
    let failed = 0;
    for (let i = 0; i < 24; i++) {
      if (i % 8 === 7) upstream!.queue({ kind: 'status', status: 500 }, { kind: 'status', status: 500 }, { kind: 'status', status: 500 });
      try {
        await client.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `request ${i} ${'x'.repeat(i * 7)}` }], user: `user-${i % 3}` });
      } catch {
        failed++;
      }
      sent++;
    }
    upstream!.setBehavior({ kind: 'ok' });
    assert.ok(failed > 0, 'some requests failed upstream');
    await page.getByTestId('stat-requests').getByText(String(sent), { exact: true }).waitFor();
    await page.getByTestId('stat-errors').getByText(String(failed), { exact: true }).waitFor();
    await shot(page, '08b-overview-traffic');

    // Settings: the shared schema's error shows next to the field; a valid value is saved.
    await nav(page, 'Settings');
    const queue = page.getByLabel('Queue timeout (ms)');
    await queue.fill('-5');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.locator('#setting-queue_timeout_ms-error').getByText('must be 0 or more').waitFor();
    assert.equal(await queue.getAttribute('aria-invalid'), 'true');
    await queue.fill('20000');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    const storedSettings = () =>
      page.evaluate(async () => (await (await fetch('/admin/api/v1/settings')).json()) as { queue_timeout_ms: number; listen: { data_host: string; admin_host: string } });
    assert.equal((await storedSettings()).queue_timeout_ms, 20000);
    await shot(page, '11-settings');

    // Listen settings: the data-plane switch stores 0.0.0.0 for the next start and says a restart
    // is needed; the gateway keeps listening where it started (this test never restarts it).
    const lan = page.getByRole('switch', { name: 'Expose the data plane to the LAN' });
    assert.equal(await lan.isChecked(), false);
    await page.getByTestId('listen-now-data').getByText(gw.dataUrl, { exact: true }).waitFor();
    await page.getByTestId('listen-now-admin').getByText(gw.adminUrl, { exact: true }).waitFor();
    assert.equal(await page.getByTestId('listen-restart-data').count(), 0, 'nothing to restart for yet');
    // the test gateway gets its ports from flags (--port 0): the page says they win over the stored ports
    await page.getByTestId('listen-override-data_port').getByText('the --port flag').waitFor();
    await lan.check();
    const restart = page.getByTestId('listen-restart-data');
    await restart.getByText('Restart Airlock to apply.').waitFor();
    await restart.getByText(gw.dataUrl, { exact: true }).waitFor();
    let stored = await storedSettings();
    assert.equal(stored.listen.data_host, '0.0.0.0');
    assert.equal(stored.listen.admin_host, '127.0.0.1');
    assert.equal(stored.queue_timeout_ms, 20000, 'the switch keeps the other settings');
    const running = await page.evaluate(async () => ((await (await fetch('/admin/api/v1/status')).json()) as { listen: { data: string } }).listen.data);
    assert.equal(running, gw.dataUrl, 'still listening where it started');
    // Saving the other settings keeps the stored listen settings.
    await queue.fill('25000');
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    stored = await storedSettings();
    assert.deepEqual([stored.queue_timeout_ms, stored.listen.data_host], [25000, '0.0.0.0']);
    await shot(page, '11b-settings-lan');
    // The admin-plane switch asks first; cancelling changes nothing.
    const adminLan = page.getByRole('switch', { name: 'Expose the admin plane to the LAN' });
    await adminLan.click();
    const confirmExpose = page.getByRole('dialog', { name: 'Expose the admin plane to the LAN?' });
    await confirmExpose.getByText('AIRLOCK_ADMIN_HOSTNAMES').waitFor();
    await confirmExpose.getByRole('button', { name: 'Cancel' }).click();
    await confirmExpose.waitFor({ state: 'hidden' });
    assert.equal(await adminLan.isChecked(), false);
    assert.equal((await storedSettings()).listen.admin_host, '127.0.0.1');
    // Off again: back to loopback, and the notice goes.
    await lan.uncheck();
    await restart.waitFor({ state: 'detached' });
    assert.equal((await storedSettings()).listen.data_host, '127.0.0.1');

    // Admins: the owner is listed; an API token is shown once, works with its role, and is revoked.
    await nav(page, 'Admins');
    await page.getByRole('rowheader', { name: /owner/ }).getByText('(you)').waitFor();
    await page.getByRole('button', { name: 'Create token' }).click();
    const tform = page.getByRole('dialog', { name: 'Create API token' });
    await tform.getByLabel('Name', { exact: true }).fill('backup-script');
    await tform.getByLabel('Role').selectOption('auditor');
    await tform.getByRole('button', { name: 'Create token' }).click();
    const tdialog = page.getByRole('dialog', { name: 'API token backup-script' });
    const apiToken = await tdialog.getByLabel('API token', { exact: true }).inputValue();
    assert.ok(apiToken.length > 20);
    await tdialog.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('rowheader', { name: /backup-script/ }).waitFor();
    await shot(page, '12-admins');
    const bearer = (method: string, p: string, body?: unknown) =>
      fetch(`${gw.adminUrl}/admin/api/v1${p}`, {
        method,
        headers: { authorization: `Bearer ${apiToken}`, ...(body ? { 'content-type': 'application/json' } : {}) },
        body: body ? JSON.stringify(body) : undefined,
      });
    assert.equal((await bearer('GET', '/status')).status, 200);
    assert.equal((await bearer('POST', '/teams', { name: 'from-token' })).status, 403, 'an auditor token cannot write');
    await page.getByRole('button', { name: 'Revoke token backup-script' }).click();
    await page.getByRole('dialog', { name: 'Revoke token backup-script?' }).getByRole('button', { name: 'Revoke token' }).click();
    await page.getByRole('rowheader', { name: /backup-script/ }).waitFor({ state: 'detached' });
    assert.equal((await bearer('GET', '/status')).status, 401);

    assertNoProblems(problems);
  });

  test('MCP: an owner adds a stdio server (Test lists its tools), creates an agent (key shown once), and toggles a tool in the permission matrix; the agent sees exactly that', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({});
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await nav(page, 'MCP & agents', 'MCP servers & agents');
    await page.getByRole('button', { name: 'Add MCP server' }).click();
    const form = page.getByRole('dialog', { name: 'Add MCP server' });
    await form.waitFor();
    // the schema's errors on their fields, before anything is sent: a bad name, a stdio server without its command
    await form.getByLabel('Name', { exact: true }).fill('bad name!');
    await form.getByRole('button', { name: 'Save server' }).click();
    await form.locator('#mcp-name-error').waitFor();
    assert.equal(await form.getByLabel('Name', { exact: true }).getAttribute('aria-invalid'), 'true');
    await form.locator('#mcp-command-error').getByText('is required for transport "stdio"').waitFor();
    // Test checks the same before it connects
    await form.getByLabel('Name', { exact: true }).fill('every');
    await form.getByRole('button', { name: 'Test' }).click();
    await form.locator('#mcp-command-error').getByText('is required for transport "stdio"').waitFor();
    await form.getByLabel('Command', { exact: true }).fill(process.execPath);
    await form.getByLabel('Arguments (one per line)').fill(`${EVERYTHING}\nstdio`);
    await assertLabelled(page);
    await form.getByRole('button', { name: 'Test' }).click();
    await form.getByRole('status').filter({ hasText: /Connected to .*: \d+ tools \(.*echo/ }).waitFor();
    await form.getByRole('button', { name: 'Save server' }).click();
    await form.waitFor({ state: 'hidden' });
    const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'every' }) });
    await row.getByText('ready').waitFor();
    // the details: its catalog and its own stderr
    await page.getByRole('button', { name: 'Details of MCP server every' }).click();
    const details = page.getByRole('dialog', { name: 'MCP server every' });
    await details.getByText('every__echo', { exact: true }).waitFor();
    await details.getByText(/Starting default \(STDIO\) server/).waitFor();
    await details.getByRole('button', { name: /Close/ }).first().click();
    await details.waitFor({ state: 'hidden' });

    await page.getByRole('button', { name: 'Create agent' }).first().click();
    const af = page.getByRole('dialog', { name: 'Create agent' });
    await af.getByLabel('Name', { exact: true }).fill('bot');
    await af.getByLabel('Allowed tools (one pattern per line)').fill('every__echo\nbad pattern!');
    await af.getByLabel('Allowed resources (one pattern per line)').fill('every');
    await af.getByLabel('Denied resources (one pattern per line)').fill('every__demo://resource/static/document/architecture.md x');
    await af.getByRole('button', { name: 'Create agent' }).click();
    await af.locator('#agent-tools-error').getByText(/must be a tool name/).waitFor();
    await af.locator('#agent-resources-deny-error').getByText(/must be a server name pattern .* or "server__uri"/).waitFor();
    await af.getByLabel('Allowed tools (one pattern per line)').fill('every__echo');
    await af.getByLabel('Denied resources (one pattern per line)').fill('every__demo://resource/static/document/architecture.md');
    await af.getByRole('button', { name: 'Create agent' }).click();
    const secret = page.getByRole('dialog', { name: 'Key for agent bot' });
    await secret.waitFor();
    const key = await secret.getByLabel('Key', { exact: true }).inputValue();
    assert.match(key, /^sk-airlock-/);
    await secret.getByRole('button', { name: 'I have copied it' }).click();
    await secret.waitFor({ state: 'hidden' });

    const { client } = await agentClient(gw.dataUrl, key);
    try {
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['every__echo']);
      // resources: all of every's but the denied ones
      const listed = (await client.listResources()).resources.map((r) => r.uri);
      assert.ok(listed.includes('demo://resource/static/document/features.md') && !listed.includes('demo://resource/static/document/architecture.md'), JSON.stringify(listed));
      assert.deepEqual((await gw.admin('GET', '/agents/bot')).body.resources_deny, ['every__demo://resource/static/document/architecture.md']);
      // the matrix: allow get-sum for bot with one click
      const cell = page.getByRole('checkbox', { name: 'bot may call every__get-sum' });
      assert.equal(await cell.isChecked(), false);
      assert.equal(await page.getByRole('checkbox', { name: 'bot may call every__echo' }).isChecked(), true);
      await cell.click();
      await page.getByRole('checkbox', { name: 'bot may call every__get-sum', checked: true }).waitFor();
      await assertLabelled(page);
      assert.deepEqual((await client.listTools()).tools.map((t) => t.name).sort(), ['every__echo', 'every__get-sum']);
      assert.deepEqual((await gw.admin('GET', '/agents/bot')).body.tools, ['every__echo', 'every__get-sum']);
      await shot(page, 'mcp');
    } finally {
      await client.close();
    }
    assertNoProblems(problems, [/status of 400/]); // the refused pattern
  });

  test('moving an endpoint with a stored key to another server asks for the key, or an explicit "send it there too"', { skip: SKIP_BROWSER }, async () => {
    const other = await startUpstream();
    try {
      const cfg = basicConfig(upstream!.url);
      (cfg.endpoints as Record<string, unknown>[])[0]!.api_key = 'sk-stored-upstream-key';
      const gw = await gateway({ config: cfg });
      assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
      const { page, problems } = await newPage();
      await open(page, gw.adminUrl + '/');
      assert.equal(await login(page, 'root', OWNER.password), 200);
      await nav(page, 'Endpoints');
      await page.getByRole('button', { name: 'Edit endpoint gpu-1' }).click();
      const form = page.getByRole('dialog', { name: 'Edit endpoint gpu-1' });
      await form.waitFor();
      assert.equal(await form.getByLabel('Send the stored API key to the new server too').count(), 0, 'no choice while the server stays the same');
      await form.getByLabel('Base URL').fill(other.url);
      const keep = form.getByLabel('Send the stored API key to the new server too');
      await keep.waitFor();
      await assertLabelled(page);
      // saved without a choice: the API refuses, and says so next to the key field
      await form.getByRole('button', { name: 'Save changes' }).click();
      await form.locator('#ep-api-key-error').getByText(/give api_key again/).waitFor();
      assert.equal((await gw.admin('GET', '/endpoints/gpu-1')).body.base_url, upstream!.url, 'not moved');
      await keep.check();
      await form.getByRole('button', { name: 'Save changes' }).click();
      await form.waitFor({ state: 'hidden' });
      assert.equal((await gw.admin('GET', '/endpoints/gpu-1')).body.base_url, other.url, 'moved on purpose');
      assertNoProblems(problems, [/status of 400/]); // the refused save
    } finally {
      await other.close();
    }
  });

  test('an endpoint set to expose its models: apps call them by their upstream names, and the Endpoints page says which are callable so', { skip: SKIP_BROWSER }, async () => {
    const up = await startUpstream({ models: ['test-model', 'extra-model'] });
    try {
      const gw = await gateway({ config: basicConfig(up.url) });
      assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
      const { page, problems } = await newPage();
      await open(page, gw.adminUrl + '/');
      assert.equal(await login(page, 'root', OWNER.password), 200);
      await nav(page, 'Endpoints');
      await page.getByRole('button', { name: 'Edit endpoint gpu-1' }).click();
      const form = page.getByRole('dialog', { name: 'Edit endpoint gpu-1' });
      const expose = form.getByLabel('Apps may call the models this server lists directly, without an alias');
      assert.equal(await expose.isChecked(), false);
      await expose.check();
      await assertLabelled(page);
      await form.getByRole('button', { name: 'Save changes' }).click();
      await form.waitFor({ state: 'hidden' });
      assert.equal((await gw.admin('GET', '/endpoints/gpu-1')).body.expose_models, true);
      const client = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
      await eventually(async () => (await client.models.list()).data.some((m) => m.id === 'extra-model') || undefined, 'extra-model is listed');
      const r = await client.chat.completions.create({ model: 'extra-model', messages: [{ role: 'user', content: 'by name' }] });
      assert.equal(r.choices[0]?.message.content, 'echo: by name');
      await page.getByText('models callable by their own names').waitFor();
      await page.locator('details.served-models summary').first().click();
      const served = page.getByRole('list', { name: 'Models served by gpu-1' });
      await served.getByRole('listitem').filter({ hasText: 'extra-model' }).getByText('callable by this name').waitFor();
      await served.getByRole('listitem').filter({ hasText: 'test-model' }).getByText('as chat').waitFor();
      assertNoProblems(problems);
    } finally {
      await up.close();
    }
  });

  test('unsaved changes: closing an edit dialog (Cancel, ×, Escape) or leaving the Settings page with edits asks first; without edits, or after saving, it does not', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    const asked: string[] = [];
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await nav(page, 'Endpoints');
    const before = JSON.stringify((await gw.admin('GET', '/endpoints/gpu-1')).body.timeout_ms ?? null);
    // no edits: Cancel closes at once
    await page.getByRole('button', { name: 'Edit endpoint gpu-1' }).click();
    const form = page.getByRole('dialog', { name: 'Edit endpoint gpu-1' });
    await form.getByRole('button', { name: 'Cancel' }).click();
    await form.waitFor({ state: 'hidden' });
    // an edit: Cancel asks; "Keep editing" keeps the dialog and the typed value
    await page.getByRole('button', { name: 'Edit endpoint gpu-1' }).click();
    await form.getByText('Limits, timeouts and health checks').click();
    await form.getByLabel('Timeout (ms)', { exact: true }).fill('4321');
    await form.getByRole('button', { name: 'Cancel' }).click();
    const question = page.getByRole('dialog', { name: 'Discard your changes?' });
    await question.getByRole('button', { name: 'Keep editing' }).click();
    await question.waitFor({ state: 'hidden' });
    assert.equal(await form.getByLabel('Timeout (ms)', { exact: true }).inputValue(), '4321');
    // × asks too; Escape asks too; "Discard changes" closes and nothing is saved
    await form.getByRole('button', { name: 'Close dialog' }).click();
    await question.getByRole('button', { name: 'Keep editing' }).click();
    await form.getByLabel('Timeout (ms)', { exact: true }).focus();
    await page.keyboard.press('Escape');
    await question.waitFor();
    await question.getByRole('button', { name: 'Discard changes' }).click();
    await form.waitFor({ state: 'hidden' });
    assert.equal(JSON.stringify((await gw.admin('GET', '/endpoints/gpu-1')).body.timeout_ms ?? null), before, 'nothing was saved');

    // the Settings page: leaving with an edit asks (the browser's own question); staying keeps it
    await nav(page, 'Settings');
    const field = page.getByLabel('Request headers timeout (ms)');
    const original = await field.inputValue();
    await field.fill('31000');
    page.once('dialog', (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Overview', exact: true }).click();
    await eventually(() => asked.length === 1, 'the question was asked');
    assert.match(asked[0]!, /unsaved changes/);
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    assert.equal(await field.inputValue(), '31000');
    // saved: leaving asks nothing
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByText('Settings saved.').waitFor();
    page.on('dialog', (d) => {
      asked.push(d.message());
      void d.dismiss();
    });
    await nav(page, 'Overview');
    assert.equal(asked.length, 1, 'no question after saving');
    assert.notEqual(original, '31000');
    // an edit, then "leave anyway"
    await nav(page, 'Settings');
    await page.getByLabel('Request headers timeout (ms)').fill('32000');
    page.removeAllListeners('dialog');
    page.once('dialog', (d) => void d.accept());
    await nav(page, 'Overview');
    assert.equal((await gw.admin('GET', '/settings')).body.http.headers_timeout_ms, 31000, 'the unsaved edit was not saved');
    assertNoProblems(problems);
  });

  test("unsaved changes: the browser's Back and Forward ask too; staying keeps the page, the edit and the address; leaving goes where Back points", { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    const asked: string[] = [];
    const answer = (accept: boolean) =>
      page.once('dialog', (d) => {
        asked.push(d.message());
        void (accept ? d.accept() : d.dismiss());
      });
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await nav(page, 'Endpoints');
    await nav(page, 'Settings');
    const field = page.getByLabel('Request headers timeout (ms)');
    await field.fill('33000');
    // Back with an edit: asked; "stay" keeps the page, the typed value and the address
    answer(false);
    await page.goBack();
    await eventually(() => asked.length === 1 || undefined, 'Back asked');
    assert.match(asked[0]!, /unsaved changes/);
    await eventually(() => new URL(page.url()).pathname === '/settings' || undefined, 'the address is /settings again');
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    assert.equal(await field.inputValue(), '33000');
    // Back again, "leave": the page Back points to (Endpoints, not one entry too far), nothing saved
    answer(true);
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: 'Endpoints', exact: true }).waitFor();
    assert.equal(asked.length, 2);
    assert.equal(new URL(page.url()).pathname, '/endpoints');
    assert.notEqual((await gw.admin('GET', '/settings')).body.http.headers_timeout_ms, 33000, 'the unsaved edit was not saved');
    // Forward to a clean Settings page asks nothing; Forward from an edit on Endpoints asks too
    await page.goForward();
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    assert.equal(asked.length, 2, 'no question without an edit');
    await page.goBack();
    await page.getByRole('heading', { level: 1, name: 'Endpoints', exact: true }).waitFor();
    await page.getByRole('button', { name: 'Edit endpoint gpu-1' }).click();
    const form = page.getByRole('dialog', { name: 'Edit endpoint gpu-1' });
    await form.getByText('Limits, timeouts and health checks').click();
    await form.getByLabel('Timeout (ms)', { exact: true }).fill('4321');
    answer(false);
    await page.goForward();
    await eventually(() => asked.length === 3 || undefined, 'Forward asked');
    await eventually(() => new URL(page.url()).pathname === '/endpoints' || undefined, 'the address is /endpoints again');
    assert.equal(await form.getByLabel('Timeout (ms)', { exact: true }).inputValue(), '4321', 'the dialog and its edit stay');
    assertNoProblems(problems);
  });

  test('Restart now (owner, Settings): asks first, the gateway exits for its supervisor, the page waits for the new process and reloads; without a supervisor it says to restart by hand', { skip: SKIP_BROWSER }, async () => {
    // this test plays the supervisor: when the gateway exits with 75 it starts it again on the same admin port
    const gw = await gateway({ config: basicConfig(upstream!.url), env: { AIRLOCK_SUPERVISOR: 'e2e-supervisor' } });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await nav(page, 'Settings');
    const section = page.locator('section').filter({ has: page.getByRole('heading', { name: 'Restart Airlock' }) });
    await page.evaluate('window.__beforeRestart = true');
    // asked first; Cancel restarts nothing
    await section.getByRole('button', { name: 'Restart now' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restart Airlock?' });
    await dialog.getByText('e2e-supervisor').waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    assert.equal((await fetch(`${gw.dataUrl}/healthz`)).status, 200);
    await section.getByRole('button', { name: 'Restart now' }).click();
    await dialog.getByRole('button', { name: 'Restart now' }).click();
    await section.getByRole('status').getByText('Restarting… waiting for Airlock to come back').waitFor();
    assert.deepEqual(await gw.exited, { code: 75, signal: null });
    const port = new URL(gw.adminUrl).port;
    const again = await gateway({ dataDir: gw.dataDir, listenFlags: false, env: { AIRLOCK_SUPERVISOR: 'e2e-supervisor', AIRLOCK_PORT: '0', AIRLOCK_ADMIN_PORT: port, AIRLOCK_HOST: '127.0.0.1', AIRLOCK_ADMIN_HOST: '127.0.0.1' } });
    assert.equal(again.adminUrl, gw.adminUrl);
    await eventually(async () => (await page.evaluate('window.__beforeRestart')) === undefined || undefined, 'the page reloaded', UI_WAIT);
    await page.getByRole('heading', { level: 1, name: 'Settings' }).waitFor();
    await page.getByRole('heading', { name: 'Restart Airlock' }).waitFor();
    assert.ok(/restart asked for by user:root/.test(gw.stdout()), gw.stdout());

    // no supervisor: no button, the way to do it by hand
    const plain = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await plain.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    await open(page, plain.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await nav(page, 'Settings');
    await page.getByTestId('restart-by-hand').getByText(/restart it by hand/).waitFor();
    assert.equal(await page.getByRole('button', { name: 'Restart now' }).count(), 0);
    assertNoProblems(problems, [/Failed to load resource|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|503/]);
  });

  test('Restart now that moves the admin app to another port: the dialog and the page say where it will be, and link there instead of waiting at the old address', { skip: SKIP_BROWSER }, async () => {
    const [p1, p2] = [await freePort(), await freePort()];
    const listen = { data_host: '127.0.0.1', data_port: 0, admin_host: '127.0.0.1', admin_port: p1 };
    const gw = await gateway({ config: { ...basicConfig(upstream!.url), settings: { listen } }, listenFlags: false, env: { AIRLOCK_SUPERVISOR: 'e2e-supervisor' } });
    assert.equal(new URL(gw.adminUrl).port, String(p1));
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const stored = (await gw.admin('GET', '/settings')).body as Record<string, unknown>;
    assert.equal((await gw.admin('PUT', '/settings', { ...stored, listen: { ...listen, admin_port: p2 } })).status, 200);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await nav(page, 'Settings');
    const target = `http://127.0.0.1:${p2}/`;
    const section = page.locator('section').filter({ has: page.getByRole('heading', { name: 'Restart Airlock' }) });
    await section.getByRole('button', { name: 'Restart now' }).click();
    const dialog = page.getByRole('dialog', { name: 'Restart Airlock?' });
    await dialog.getByText(`The admin app moves to ${target}`).waitFor();
    await dialog.getByRole('button', { name: 'Restart now' }).click();
    const moved = page.getByTestId('restart-moved');
    await moved.waitFor();
    assert.equal(await moved.getByRole('link', { name: 'open it there' }).getAttribute('href'), target);
    assert.deepEqual(await gw.exited, { code: 75, signal: null });
    // the supervisor starts it again: it listens where the settings say
    const again = await gateway({ dataDir: gw.dataDir, listenFlags: false, env: { AIRLOCK_SUPERVISOR: 'e2e-supervisor' } });
    assert.equal(again.adminUrl, `http://127.0.0.1:${p2}`);
    await moved.getByRole('link', { name: 'open it there' }).click();
    await eventually(() => new URL(page.url()).port === String(p2) || undefined, 'the link opened the new address');
    await page.getByRole('button', { name: /sign in/i }).or(page.getByRole('heading', { level: 1 })).first().waitFor();
    assertNoProblems(problems, [/Failed to load resource|ERR_CONNECTION_REFUSED|ERR_EMPTY_RESPONSE|503/]);
  });

  test('while the usage ledger cannot be written, every page says so; the warning goes when it can again', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    const banner = page.getByRole('alert').filter({ hasText: 'Usage records cannot be written' });
    assert.equal(await banner.count(), 0);
    // another process holds the database's write lock (as a long backup or a stuck tool would)
    const db = new Database(path.join(gw.dataDir, 'airlock.db'));
    db.exec('BEGIN EXCLUSIVE');
    try {
      const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
      await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'recorded later' }] });
      await banner.waitFor();
      await banner.getByText(/Requests are still served; \d+ record\(s\) wait in memory/).waitFor();
      await shot(page, '11-ledger-unwritable');
    } finally {
      db.exec('ROLLBACK');
      db.close();
    }
    await banner.waitFor({ state: 'detached' });
    assertNoProblems(problems);
  });

  test('an auditor sees everything and can change nothing', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    // Accounts made with AIRLOCK_ADMIN_TOKEN (owner level, for automation).
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    assert.equal((await gw.admin('POST', '/users', { name: 'audrey', password: 'auditor password 1', role: 'auditor' })).status, 201);

    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await login(page, 'audrey', 'auditor password 1'), 200);
    await page.getByText('Read-only access').waitFor();

    // Signing in leaves the focus on the new page's heading (not on <body>).
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    assert.equal(await page.evaluate('document.activeElement?.tagName + " " + document.activeElement?.textContent'), 'H1 Overview');
    // Keyboard: on a fresh load the first Tab reaches "Skip to content", which moves focus to the page.
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate('document.activeElement?.textContent'), 'Skip to content');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate('document.activeElement?.id'), 'main');
    await page.getByText('auditor', { exact: true }).first().waitFor();

    await nav(page, 'Endpoints');
    await page.getByRole('rowheader', { name: 'gpu-1' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Add endpoint|Discover|Edit|Remove/ }).count(), 0, 'no endpoint write controls');
    await shot(page, '09-auditor-endpoints');

    await nav(page, 'Models');
    await page.getByRole('rowheader', { name: 'chat' }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Create model|Edit|Remove|Add rule|Save rules/ }).count(), 0, 'no model write controls');

    await nav(page, 'Teams & keys');
    await page.getByRole('rowheader', { name: /notebook-app/ }).waitFor();
    assert.equal(await page.getByRole('button', { name: /Create|Disable|Enable|Revoke|Delete/ }).count(), 0, 'no key or team write controls');
    assert.equal(await page.getByLabel('New team name').count(), 0);

    await nav(page, 'Settings');
    const field = page.getByLabel('Queue timeout (ms)');
    await field.waitFor();
    assert.equal(await field.isDisabled(), true, 'settings fields are read-only');
    assert.equal(await page.getByRole('switch', { name: 'Expose the data plane to the LAN' }).isDisabled(), true, 'the LAN switches are read-only');
    assert.equal(await page.getByRole('switch', { name: 'Expose the admin plane to the LAN' }).isDisabled(), true);
    assert.equal(await page.getByRole('button', { name: 'Save ports' }).count(), 0);
    assert.equal(await page.getByRole('button', { name: 'Save settings' }).count(), 0);

    await nav(page, 'Admins');
    // the accounts, read-only (no API tokens: those are for admins)
    await page.getByRole('rowheader', { name: /audrey/ }).waitFor();
    await page.getByRole('rowheader', { name: /root/ }).waitFor();
    await page.getByText('Only owners can add, change or delete admin accounts.').waitFor();
    await page.getByText('Only owners and admins can see API tokens.').waitFor();
    assert.equal(await page.getByRole('button', { name: /Add admin|Create token|Edit|Delete|Unlock/ }).count(), 0);

    // Forcing it: a write with the session cookie and a valid CSRF token is refused by the API.
    const forced = await page.evaluate(async () => {
      const state = (await (await fetch('/admin/api/v1/auth/state')).json()) as { csrf_token: string; user: { role: string } | null };
      const r = await fetch('/admin/api/v1/teams', {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-csrf-token': state.csrf_token },
        body: JSON.stringify({ name: 'sneaky' }),
      });
      return { status: r.status, body: (await r.json()) as { error: { code: string } }, role: state.user?.role };
    });
    assert.equal(forced.role, 'auditor');
    assert.equal(forced.status, 403);
    assert.equal(forced.body.error.code, 'forbidden');
    const teams = await gw.admin<{ data: { name: string }[] }>('GET', '/teams');
    assert.deepEqual(teams.body.data.map((t) => t.name), ['research'], 'nothing was created');

    // the refused fetch logs a 403 in the console; nothing else may
    assertNoProblems(problems, [/status of 403/]);
  });

  test('an auditor reads and filters the audit log, checks it, and exports it to a USB folder that verifies offline', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    assert.equal((await gw.admin('POST', '/users', { name: 'audrey', password: 'auditor password 1', role: 'auditor' })).status, 201);
    assert.equal((await gw.admin('POST', '/teams', { name: 'ops', description: 'Operations' })).status, 201);
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hello' }] });
    const fingerprint = (await gw.admin('GET', '/audit/key')).body.fingerprint as string;
    const usb = tmpDir('airlock-e2e-usb-');

    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await login(page, 'audrey', 'auditor password 1'), 200);
    await nav(page, 'Audit');
    assert.equal(await page.getByTestId('audit-fingerprint').textContent(), fingerprint, 'the key fingerprint is the one the API and `airlock audit key` give');
    const table = page.getByTestId('audit-table');
    await table.getByRole('cell', { name: 'create team (teams/ops)' }).waitFor();
    await table.getByRole('cell', { name: 'user:audrey' }).first().waitFor();
    // a data-plane request shows (its summary is written within a moment: reload until it does)
    await eventually(async () => {
      await page.getByLabel('Show').selectOption('request');
      const n = await table.getByRole('cell', { name: 'key:notebook-app' }).count();
      if (!n) await page.getByLabel('Show').selectOption('');
      return n > 0;
    }, 'the request summary on the page');
    await page.getByLabel('Show').selectOption('auth.');
    // the list before the filter also shows 'log in' records: wait for the filtered one itself
    await eventually(async () => (await table.getByRole('cell', { name: /create team/ }).count()) === 0 || undefined, 'the filter hides other kinds');
    await table.getByRole('cell', { name: 'log in' }).first().waitFor();
    await page.getByLabel('Who (exact)').fill('nobody-at-all');
    await page.getByText('No records match').waitFor();
    await page.getByLabel('Who (exact)').fill('');
    await page.getByLabel('Show').selectOption('');

    await page.getByRole('button', { name: 'Verify the log now' }).click();
    await page.getByRole('status').filter({ hasText: 'Intact' }).waitFor();

    // Export: a relative path is refused before anything is sent; a real folder gets a bundle.
    await page.getByLabel('Folder on the gateway’s machine').fill('usb');
    await page.getByRole('button', { name: 'Export to USB' }).click();
    await page.locator('#audit-to-error').getByText('must be the absolute path').waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'audit-to', 'the focus goes to the field at fault');
    await page.getByLabel('Folder on the gateway’s machine').fill(usb);
    await page.getByLabel('CSV (spreadsheets)').check();
    await page.getByRole('button', { name: 'Export to USB' }).click();
    const status = page.getByTestId('audit-export-status');
    await status.getByText(/Exported and verified \d+ records to/).waitFor();
    await shot(page, '12-audit-export');
    const [bundle] = fs.readdirSync(usb);
    assert.ok(bundle, 'a bundle folder was written');
    assert.ok(fs.existsSync(path.join(usb, bundle, 'events.csv')));
    assert.match((await status.textContent()) ?? '', new RegExp(`node verify\\.mjs --key ${fingerprint}`));
    const v = spawnSync(process.execPath, [path.join(usb, bundle, 'verify.mjs'), '--key', fingerprint], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout + v.stderr);
    // the export is itself a record, by the auditor
    const exp = (await gw.admin('GET', '/audit/events?kind=audit.export')).body.data as { actor: string }[];
    assert.equal(exp[0]?.actor, 'user:audrey');

    // Verify a bundle from the app: the one just written verifies; a record cut out fails, named
    await page.getByLabel('Path of the bundle to verify').fill(path.join(usb, bundle));
    await page.getByRole('button', { name: 'Verify bundle' }).click();
    const vstatus = page.getByTestId('audit-verify-status');
    await vstatus.getByText(/Verified \d+ records/).waitFor();
    assert.match((await vstatus.textContent()) ?? '', new RegExp(fingerprint));
    const events = path.join(usb, bundle, 'events.jsonl');
    fs.writeFileSync(events, fs.readFileSync(events, 'utf8').split('\n').filter((_l, i) => i !== 1).join('\n'));
    await page.getByRole('button', { name: 'Verify bundle' }).click();
    await vstatus.getByText('Failed').waitFor();
    await vstatus.getByText(/events\.jsonl/).first().waitFor();
    await page.getByLabel('Expected key fingerprint').fill('not a key');
    await page.getByRole('button', { name: 'Verify bundle' }).click();
    await page.locator('#audit-verify-key-error').getByText('must be a key fingerprint').waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'audit-verify-key', 'the focus goes to the field at fault');

    // "Where does our data go?": the upstream is listed as a destination on this machine
    await nav(page, 'Data flow');
    const dest = page.getByTestId('data-flow-destinations').getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'gpu-1' }) });
    await dest.getByText('no (this machine)').waitFor();
    await page.getByTestId('data-flow-stored').getByRole('rowheader', { name: 'Prompts and responses' }).waitFor();
    await shot(page, '13-data-flow');
    assertNoProblems(problems);
  });

  test('wrong passwords lock the account after the configured number of tries', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: { settings: { admin_max_failed_logins: 3, admin_lockout_minutes: 15 } } });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    assert.equal((await gw.admin('POST', '/users', { name: 'mallory', password: 'the right password', role: 'admin' })).status, 201);
    const settings = await gw.admin<{ admin_max_failed_logins: number }>('GET', '/settings');
    const tries = settings.body.admin_max_failed_logins;
    assert.equal(tries, 3);

    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    for (let i = 1; i < tries; i++) {
      assert.equal(await login(page, 'mallory', `wrong password ${i}`), 401);
      await page.getByRole('alert').getByText('Wrong user name or password.').waitFor();
      // focus does not fall to <body> (the Sign in button was disabled while it ran): the cleared password field has it
      await eventually(async () => (await page.evaluate('document.activeElement?.id')) === 'login-password', 'focus on the password field after a failed sign-in', 3000);
      assert.equal(await page.getByTestId('account-locked').count(), 0);
    }
    assert.equal(await login(page, 'mallory', `wrong password ${tries}`), 423);
    const locked = page.getByTestId('account-locked');
    await locked.getByText('Account locked.').waitFor();
    await locked.getByText(/15 minute/).waitFor();
    await shot(page, '10-login-locked');

    // Even the right password is refused while the lock lasts.
    assert.equal(await login(page, 'mallory', 'the right password'), 423);
    await locked.getByText(/after 3 failed logins/).waitFor();
    assert.equal(await page.getByText('Signed in as').count(), 0);
    const users = await gw.admin<{ data: { name: string; locked_until: string | null }[] }>('GET', '/users');
    assert.ok(users.body.data.find((u) => u.name === 'mallory')?.locked_until, 'the API reports the lock');

    assertNoProblems(problems, [/status of 40[13]/, /status of 423/]);
  });
  test('a one-time password from airlock admin reset-password: the app asks for a new password before anything else', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    assert.equal((await gw.admin('POST', '/users', { name: 'forgetful', password: 'a password long forgotten', role: 'admin' })).status, 201);
    const reset = await runCli(['admin', 'reset-password', 'forgetful', '--data-dir', gw.dataDir]);
    assert.equal(reset.code, 0, reset.stderr);
    const temporary = reset.stdout.trim();
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'forgetful', temporary), 200);
    await page.getByRole('heading', { name: 'Choose a new password' }).waitFor();
    assert.equal(await page.getByText('Signed in as').count(), 0, 'no page of the app before a new password');
    // too short: the field says so, from the shared schema, before anything is sent
    await page.getByLabel('One-time password').fill(temporary);
    await page.getByLabel('New password', { exact: true }).fill('short');
    await page.getByRole('button', { name: 'Save the new password' }).click();
    await page.locator('#new-password-error').getByText(/at least 12 characters/).waitFor();
    // a wrong one-time password: the API's answer on its field
    await page.getByLabel('One-time password').fill('not the one at all');
    await page.getByLabel('New password', { exact: true }).fill('my own new passphrase');
    await page.getByRole('button', { name: 'Save the new password' }).click();
    await page.locator('#current-password-error').getByText('is not the current password').waitFor();
    await page.getByLabel('One-time password').fill(temporary);
    await page.getByLabel('New password', { exact: true }).fill('my own new passphrase');
    await page.getByRole('button', { name: 'Save the new password' }).click();
    await page.getByText('Signed in as').waitFor();
    await page.getByRole('heading', { level: 1 }).first().waitFor();
    // the new password is the one that works from now on
    const login2 = await fetch(`${gw.adminUrl}/admin/api/v1/auth/login`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'forgetful', password: 'my own new passphrase' }) });
    assert.equal(login2.status, 200);
    assertNoProblems(problems, [/status of 40[03]/]);
  });
  test('the owner downloads an encrypted backup from Settings; it restores with the CLI; an admin does not see it', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    assert.equal((await gw.admin('POST', '/users', { name: 'adam', password: 'admin password 12', role: 'admin' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, 'root', OWNER.password), 200);
    await nav(page, 'Settings');
    const form = page.getByRole('form', { name: 'Download a backup' });
    // a short passphrase and a mismatch are caught by the form, focus on the field
    await form.getByLabel('Backup passphrase').fill('short');
    await form.getByRole('button', { name: 'Download backup' }).click();
    await form.getByText('must be at least 10 characters').waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'backup-passphrase');
    const pass = 'a passphrase for the backup';
    await form.getByLabel('Backup passphrase').fill(pass);
    await form.getByLabel('Repeat the passphrase').fill(pass + 'x');
    await form.getByRole('button', { name: 'Download backup' }).click();
    await form.getByText('does not match the passphrase').waitFor();
    await form.getByLabel('Repeat the passphrase').fill(pass);
    const [download] = await Promise.all([page.waitForEvent('download'), form.getByRole('button', { name: 'Download backup' }).click()]);
    assert.match(download.suggestedFilename(), /^airlock-[\d-]+\.backup$/);
    await page.getByText(/^Backup saved as airlock-[\d-]+\.backup \(\d+ KB\)\.$/).waitFor();
    await shot(page, '20-settings-backup');
    const work = tmpDir('airlock-e2e-backup-');
    try {
      const file = path.join(work, download.suggestedFilename());
      await download.saveAs(file);
      const target = path.join(work, 'restored');
      const r = await runCli(['restore', file, '--data-dir', target], { env: { AIRLOCK_BACKUP_PASSPHRASE: pass } });
      assert.equal(r.code, 0, r.stderr);
      assert.match((await runCli(['keys', 'list', '--data-dir', target])).stdout, /notebook-app/);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
    // an admin (not owner) has no backup section
    await page.getByRole('button', { name: /sign out/i }).click();
    await page.getByRole('heading', { name: 'Sign in' }).waitFor();
    assert.equal(await login(page, 'adam', 'admin password 12'), 200);
    await nav(page, 'Settings');
    assert.equal(await page.getByRole('form', { name: 'Download a backup' }).count(), 0);
    assertNoProblems(problems);
  });

  test('the owner restores a backup from Settings: uploaded with progress, checked (a wrong passphrase is named on its field), staged, and applied by a restart', { skip: SKIP_BROWSER }, async () => {
    const gw0 = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw0.admin('POST', '/users', { name: 'root', password: OWNER.password, role: 'owner' })).status, 201);
    const pass = 'a passphrase for the restore';
    const res = await fetch(`${gw0.adminUrl}/admin/api/v1/backup`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'application/json' }, body: JSON.stringify({ passphrase: pass }) });
    assert.equal(res.status, 200);
    const work = tmpDir('airlock-e2e-restore-');
    const file = path.join(work, 'airlock.backup');
    fs.writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const junk = path.join(work, 'junk.backup');
    fs.writeFileSync(junk, 'not a backup');
    const later = await gw0.admin('POST', '/keys', { name: 'made-after-the-backup' });
    assert.equal(later.status, 201);
    try {
      const { page, problems } = await newPage();
      await open(page, gw0.adminUrl + '/');
      assert.equal(await login(page, 'root', OWNER.password), 200);
      await nav(page, 'Settings');
      const form = page.getByRole('form', { name: 'Restore a backup' });
      // nothing chosen: the file field says so and has focus
      await form.getByRole('button', { name: 'Upload and stage restore' }).click();
      await form.getByText('choose the backup file to restore').waitFor();
      assert.equal(await page.evaluate('document.activeElement?.id'), 'restore-file');
      await form.getByLabel('Backup file').setInputFiles(junk);
      await form.getByLabel('Passphrase of the backup').fill(pass);
      await form.getByRole('button', { name: 'Upload and stage restore' }).click();
      await form.getByText(/not an Airlock backup/).waitFor();
      await form.getByLabel('Backup file').setInputFiles(file);
      await form.getByLabel('Passphrase of the backup').fill('the wrong passphrase');
      await form.getByRole('button', { name: 'Upload and stage restore' }).click();
      await form.getByText(/wrong passphrase/).waitFor();
      assert.equal(await page.evaluate('document.activeElement?.id'), 'restore-passphrase');
      assert.equal(await page.getByTestId('restore-staged').count(), 0);
      await form.getByLabel('Passphrase of the backup').fill(pass);
      await form.getByRole('button', { name: 'Upload and stage restore' }).click();
      const notice = page.getByTestId('restore-staged');
      await notice.getByText(/will be applied when Airlock restarts/).waitFor();
      await notice.getByText(/uploaded by root/).waitFor();
      await shot(page, '21-settings-restore-staged');
      // still serving its own data until the restart
      assert.equal((await gw0.admin('GET', '/keys/made-after-the-backup')).status, 200);
      assertNoProblems(problems, [/status of 400/, /status of 422/]);
      await page.close();

      await gw0.stop();
      const gw1 = await gateway({ dataDir: gw0.dataDir });
      assert.match(gw1.stdout(), /applied the restore staged by root/);
      assert.equal((await gw1.admin('GET', '/keys/made-after-the-backup')).status, 404, 'the restart applied the backup');
      const again = await newPage();
      await open(again.page, gw1.adminUrl + '/');
      assert.equal(await login(again.page, 'root', OWNER.password), 200);
      await nav(again.page, 'Settings');
      await again.page.getByTestId('restore-last').getByText(/Last restore applied .* \(uploaded by root\)\. The data it replaced is kept in/).waitFor();
      assert.equal(await again.page.getByTestId('restore-staged').count(), 0);
      assertNoProblems(again.problems);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  });

  test('Budgets: a team budget set in the form is enforced; the exceeded budget is visible at a glance, spend by team and model, CSV export', { skip: SKIP_BROWSER }, async () => {
    const cfg = basicConfig(upstream!.url);
    const gw = await gateway({ config: { ...cfg, models: [{ ...cfg.models[0]!, price: { input_per_million: 0, output_per_million: 0, per_request: 1 } }] } });
    assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, OWNER.name, OWNER.password), 200);
    await nav(page, 'Budgets');
    await page.getByText('No budgets yet').waitFor();

    // the form validates with the shared schema: a negative amount is named on its field
    await page.getByRole('button', { name: 'Edit budget and limits of team research' }).click();
    const dialog = page.getByRole('dialog', { name: 'Budget and limits of team research' });
    await dialog.getByLabel('Amount (USD)').fill('-1');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.getByText('must be 0 or more').waitFor();
    assert.equal(await page.evaluate('document.activeElement?.id'), 'gov-budget-amount', 'focus on the field in error');
    await dialog.getByLabel('Amount (USD)').fill('2');
    await dialog.getByLabel('Period', { exact: true }).selectOption('day');
    await dialog.getByLabel('Requests per minute').fill('100');
    await dialog.getByLabel('Weight').fill('3');
    await dialog.getByRole('button', { name: 'Save' }).click();
    await dialog.waitFor({ state: 'hidden' });
    const team = (await gw.admin('GET', '/teams/research')).body;
    assert.deepEqual(team.budget, { amount: 2, period: 'day', warn_at_percent: 80 });
    assert.deepEqual(team.limits, { rpm: 100 });
    assert.equal(team.weight, 3);
    await page.getByRole('row', { name: /research/ }).getByText('2 USD / day').waitFor();
    // a key: budget, tokens per minute and batch priority (the key keeps its team and models)
    await page.getByRole('button', { name: 'Edit budget and limits of key notebook-app' }).click();
    const kd = page.getByRole('dialog', { name: 'Budget and limits of key notebook-app' });
    await kd.getByLabel('Amount (USD)').fill('50');
    await kd.getByLabel('Tokens per minute').fill('0');
    await kd.getByRole('button', { name: 'Save' }).click();
    await kd.getByText('must be at least 1').waitFor();
    await kd.getByLabel('Tokens per minute').fill('100000');
    await kd.getByLabel('Priority').selectOption('batch');
    await kd.getByRole('button', { name: 'Save' }).click();
    await kd.waitFor({ state: 'hidden' });
    const key = (await gw.admin('GET', '/keys/notebook-app')).body;
    assert.deepEqual([key.team, key.budget, key.limits, key.priority], ['research', { amount: 50, period: 'month', warn_at_percent: 80 }, { tpm: 100000 }, 'batch']);
    await page.getByRole('row', { name: /notebook-app/ }).getByText('batch').waitFor();

    // spend it: the third request is refused, and the page says who is over budget
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 2; i++) await ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: `spend ${i}` }] });
    await assert.rejects(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'over' }] }), /budget/i);
    await page.reload();
    await page.getByRole('heading', { level: 1, name: 'Budgets' }).waitFor();
    await page.getByTestId('over-budget').getByText('team research').waitFor();
    const row = page.getByRole('row', { name: /team research/ });
    await row.getByText('exceeded').waitFor();
    await row.getByRole('meter', { name: /team research: 100% used/ }).waitFor();
    const byModel = page.getByRole('region', { name: 'Spend this month by model' });
    await byModel.getByRole('row', { name: /chat/ }).getByRole('cell', { name: '2.00' }).waitFor();
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV of spend this month by team' }).click()]);
    const csv = fs.readFileSync(await download.path(), 'utf8');
    assert.match(csv, /^team,requests,errors,prompt_tokens,completion_tokens,cost_USD\r\nresearch,3,1,/);
    // the burn-down of the chosen budget: spend over the day against the budget
    const burn = page.getByTestId('burndown-chart');
    await burn.locator('figcaption').getByText(/^team research: 2\.00 of 2\.00 USD spent this day; at this pace .*; the budget is used up\.$/).waitFor();
    await burn.getByText('Show data').click();
    await burn.getByRole('columnheader', { name: 'Spent (USD)' }).waitFor();
    await page.getByLabel('Budget', { exact: true }).selectOption('key:notebook-app');
    await burn.locator('figcaption').getByText(/^key notebook-app: 2\.00 of 50\.00 USD spent this month/).waitFor();
    await shot(page, '11-budgets');
    // the overview's top spenders say it too
    await nav(page, 'Overview');
    const top = page.getByRole('region', { name: 'Top spenders this month' });
    await top.getByRole('row', { name: /research/ }).getByText('exceeded, 100% used').waitFor();
    assertNoProblems(problems);
  });

  test('Teams & keys: every team and key field is editable (team, models, app, expiry, disabled, budget, limits, priority); a key is rotated with a grace period and both secrets work; a key whose secret the config file writes is not rotated here, saying why', { skip: SKIP_BROWSER }, async () => {
    const cfg = basicConfig(upstream!.url);
    const gw = await gateway({ config: { ...cfg, teams: [{ name: 'research' }, { name: 'ops' }], models: [...cfg.models, { name: 'small', targets: [{ endpoint: 'gpu-1', model: 'test-model' }] }] } });
    assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, OWNER.name, OWNER.password), 200);
    await nav(page, 'Teams & keys');

    // a team: description, budget, limits, weight and per-user budget and limits
    await page.getByRole('button', { name: 'Edit team ops' }).click();
    const td = page.getByRole('dialog', { name: 'Edit team ops' });
    await td.getByLabel('Description (optional)').fill('Operations');
    await td.getByLabel('Amount (USD)').fill('25');
    await td.getByLabel('Period', { exact: true }).selectOption('week');
    await td.getByLabel('Weight').fill('0');
    await td.getByRole('button', { name: 'Save' }).click();
    await td.getByText('must be more than 0').waitFor();
    await td.getByLabel('Weight').fill('2');
    await td.getByLabel('Amount per user (USD)').fill('1');
    await td.getByLabel('Requests/min per user').fill('10');
    await td.getByRole('button', { name: 'Save' }).click();
    await td.waitFor({ state: 'hidden' });
    const ops = (await gw.admin('GET', '/teams/ops')).body;
    assert.deepEqual(ops, { name: 'ops', description: 'Operations', budget: { amount: 25, period: 'week', warn_at_percent: 80 }, weight: 2, user_budget: { amount: 1, period: 'day', warn_at_percent: 80 }, user_limits: { rpm: 10 } });
    await page.getByRole('row', { name: /ops/ }).getByText('25 USD / week').waitFor();

    // a key: moved to another team, one model, an app name, an expiry, a budget, limits, batch, disabled
    await page.getByRole('button', { name: 'Edit key notebook-app' }).click();
    const kd = page.getByRole('dialog', { name: 'Edit key notebook-app' });
    assert.equal(await kd.getByLabel('Name', { exact: true }).inputValue(), 'notebook-app');
    await kd.getByLabel('Team').selectOption('ops');
    await kd.getByLabel('small').check();
    await kd.getByLabel('App (optional)').fill('notebooks');
    await kd.getByLabel('Expires (optional)').fill('2031-01-31T12:00');
    await kd.getByLabel('Amount (USD)').fill('5');
    await kd.getByLabel('Requests per minute').fill('60');
    await kd.getByLabel('Priority').selectOption('batch');
    await kd.getByRole('button', { name: 'Save' }).click();
    await kd.waitFor({ state: 'hidden' });
    const key = (await gw.admin('GET', '/keys/notebook-app')).body;
    assert.deepEqual(
      [key.team, key.models, key.app, key.expires_at, key.budget, key.limits, key.priority, key.disabled],
      ['ops', ['small'], 'notebooks', '2031-01-31T12:00:00.000Z', { amount: 5, period: 'month', warn_at_percent: 80 }, { rpm: 60 }, 'batch', undefined],
    );
    const row = page.getByRole('row', { name: /notebook-app/ });
    await row.getByRole('cell', { name: 'small', exact: true }).waitFor();
    // the edit keeps the secret: the app still gets through (with the model it may now use)
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    await ai.chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'hi' }] });
    await assert.rejects(ai.chat.completions.create({ model: 'chat', messages: [{ role: 'user', content: 'hi' }] }), /may not use model "chat"/);
    // its last use shows (the ledger row is written by a worker thread: the page reloads until it does)
    await eventually(async () => {
      await page.reload();
      const r = page.getByRole('row', { name: /notebook-app/ });
      await r.getByText('notebooks').waitFor();
      return (await r.getByText('never').count()) === 0;
    }, 'the key shows when it was last used');

    // disabled in the dialog: refused; enabled again from the row
    await page.getByRole('button', { name: 'Edit key notebook-app' }).click();
    await kd.getByLabel(/^Disabled/).check();
    await kd.getByRole('button', { name: 'Save' }).click();
    await kd.waitFor({ state: 'hidden' });
    await page.getByRole('row', { name: /notebook-app/ }).getByText('disabled').waitFor();
    await assert.rejects(ai.chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'hi' }] }), /disabled/);
    await page.getByRole('button', { name: 'Enable key notebook-app' }).click();
    await page.getByRole('row', { name: /notebook-app/ }).getByText('active').waitFor();

    // notebook-app's secret is the config file's literal: rotated in the file, not here (the next
    // apply would undo it); the button says why and opens nothing
    const fileKey = page.getByRole('button', { name: 'Rotate key notebook-app' });
    assert.equal(await fileKey.getAttribute('aria-disabled'), 'true');
    assert.match((await fileKey.getAttribute('title')) ?? '', /set in the config file \(keys\[0\]\.key in .*\.yaml\)/);
    assert.match(await page.locator(`#${await fileKey.getAttribute('aria-describedby')}`).innerText(), /secret set in the config file \(keys\[0\]\.key in .*\): rotate it there/);
    // (Playwright will not click an aria-disabled button: it stays focusable, and Enter opens nothing)
    await fileKey.focus();
    await page.keyboard.press('Enter');
    assert.equal(await page.getByRole('dialog', { name: 'Rotate key notebook-app' }).count(), 0);

    // rotation with a grace period (a key the admin app owns): the new secret is shown once; old and new both work
    const made = await gw.admin('POST', '/keys', { name: 'app-owned', team: 'research', models: ['small'] });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const old = new OpenAI({ apiKey: made.body.key, baseURL: gw.baseURL, maxRetries: 0 });
    await page.reload();
    await page.getByRole('button', { name: 'Rotate key app-owned' }).click();
    const rd = page.getByRole('dialog', { name: 'Rotate key app-owned' });
    await rd.getByLabel('The old secret keeps working for').selectOption('86400');
    await rd.getByRole('button', { name: 'Rotate key' }).click();
    const secret = page.getByRole('dialog', { name: 'New key for app-owned' });
    const fresh = await secret.getByLabel('Key', { exact: true }).inputValue();
    assert.match(fresh, /^sk-airlock-/);
    assert.notEqual(fresh, made.body.key);
    await secret.getByRole('button', { name: 'I have copied it' }).click();
    await secret.waitFor({ state: 'hidden' });
    await page.getByRole('row', { name: /app-owned/ }).getByText(/old secret valid until/).waitFor();
    await new OpenAI({ apiKey: fresh, baseURL: gw.baseURL, maxRetries: 0 }).chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'new' }] });
    await old.chat.completions.create({ model: 'small', messages: [{ role: 'user', content: 'old, in its grace period' }] });
    assertNoProblems(problems);
  });

  test('Usage: tag group-by and filter, the latest requests with a user column, filters, and "load more" paging', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    for (let i = 0; i < 30; i++)
      await ai.chat.completions.create(
        { model: 'chat', messages: [{ role: 'user', content: `q${i}` }], user: i < 4 ? 'alice' : 'bob' },
        { headers: { 'x-airlock-tags': i % 3 === 0 ? 'project=alpha,env=prod' : 'project=beta' } },
      );
    await eventually(async () => (await gw.admin('GET', '/usage/requests?limit=100')).body.data.length === 30, 'the ledger rows');
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, OWNER.name, OWNER.password), 200);
    await nav(page, 'Usage');

    // grouped by tag: a request counts in the group of each of its tags; filtered to one tag
    await page.getByLabel('Group by').selectOption('tag');
    const table = page.getByTestId('usage-table');
    const requestsOf = async (group: string) => (await table.getByRole('row').filter({ has: page.getByRole('rowheader', { name: group, exact: true }) }).getByRole('cell').first().textContent())?.trim();
    await table.getByRole('rowheader', { name: 'project=alpha', exact: true }).waitFor();
    assert.deepEqual([await requestsOf('project=alpha'), await requestsOf('project=beta'), await requestsOf('env=prod')], ['10', '20', '10']);
    await page.getByLabel('Only tag (key=value)').fill('project');
    await page.getByText('must be key=value, e.g. project=alpha').waitFor();
    await page.getByLabel('Only tag (key=value)').fill('project=alpha');
    await eventually(async () => (await table.getByRole('rowheader', { name: 'project=beta', exact: true }).count()) === 0, 'the tag filter hides other requests');
    assert.equal(await requestsOf('env=prod'), '10');
    await table.getByRole('columnheader', { name: 'Cost (USD)' }).waitFor();

    // the latest requests: 25, then "load more" shows the last 5, and the button goes
    const latest = page.getByTestId('latest-requests');
    await latest.getByRole('columnheader', { name: 'User' }).waitFor();
    await eventually(async () => (await latest.locator('tbody tr').count()) === 25, 'the first page of 25');
    await page.getByRole('button', { name: 'Load more requests' }).click();
    await eventually(async () => (await latest.locator('tbody tr').count()) === 30, 'the second page is added');
    assert.equal(await page.getByRole('button', { name: 'Load more requests' }).count(), 0, 'no more pages');
    await page.getByText('30 requests shown (paused: newer requests are not added).').waitFor();
    await page.getByRole('button', { name: 'Back to the newest' }).click();
    await eventually(async () => (await latest.locator('tbody tr').count()) === 25, 'back to the live first page');
    await page.getByText('25 requests shown.').waitFor();
    await page.getByRole('button', { name: 'Back to the newest' }).waitFor({ state: 'detached' });
    // filtered by user
    await page.getByRole('group', { name: 'Filter the latest requests' }).getByLabel('User').fill('alice');
    await eventually(async () => (await latest.locator('tbody tr').count()) === 4, 'only alice’s requests');
    assert.deepEqual([...new Set(await latest.locator('tbody tr td:nth-child(4)').allTextContents())], ['alice']);
    await page.getByRole('group', { name: 'Filter the latest requests' }).getByLabel('Outcome').selectOption('error');
    await page.getByText('No requests match these filters.').waitFor();
    assertNoProblems(problems);
  });

  test('Playground: a streamed answer with a pasted key or a temporary key in the admin\'s name, what the gateway did (endpoint, attempts, tokens, cost, latency), a refused key named, Stop ends the upstream request; auditors cannot send', { skip: SKIP_BROWSER }, async () => {
    const gw = await gateway({ config: basicConfig(upstream!.url) });
    assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
    assert.equal((await gw.admin('POST', '/users', { name: 'audrey', password: 'auditor password 1', role: 'auditor' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, OWNER.name, OWNER.password), 200);
    await nav(page, 'Playground');
    const convo = page.getByTestId('playground-conversation');

    // a streamed answer in pieces, and its facts from the usage ledger
    upstream!.queue({ kind: 'ok', pieces: ['Hel', 'lo from ', 'the model'] });
    await page.getByLabel('Key (optional)', { exact: true }).fill(TEST_KEY);
    await page.getByLabel('Model', { exact: true }).selectOption('chat');
    await page.getByLabel('System prompt (optional)').fill('Be brief.');
    await page.getByLabel('Message', { exact: true }).fill('hello?');
    await page.getByRole('button', { name: 'Send' }).click();
    const answer = convo.locator('li.assistant').first();
    await answer.locator('.chat-text').getByText('Hello from the model', { exact: true }).waitFor();
    const facts = answer.getByRole('definition');
    await answer.getByText('gpu-1 (test-model)').waitFor();
    const text = (await facts.allTextContents()).join(' | ');
    assert.match(text, /^gpu-1 \(test-model\) \| 1 \| \d+ in, \d+ out \| [\d.]+ USD \| [\d,.]+ m?s/, text);
    const sent = upstream!.completions().at(-1)!.body as { messages: { role: string; content: string }[]; stream: boolean };
    assert.equal(sent.stream, true);
    assert.deepEqual(sent.messages.map((m) => m.role), ['system', 'user']);
    const tags = (await gw.admin('GET', '/usage/summary?group_by=tag')).body.data.map((r: { group: string }) => r.group);
    assert.ok(tags.includes('source=playground'), JSON.stringify(tags));

    // a key the gateway does not know: the gateway's own message
    await page.getByLabel('Key (optional)', { exact: true }).fill('sk-airlock-not-a-real-key-000000000000000');
    await page.getByLabel('Message', { exact: true }).fill('again');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('alert').getByText(/Invalid API key/).waitFor();
    problems.splice(0, problems.length, ...problems.filter((p) => !/status of 400/.test(p))); // the refusal (400) is logged by the browser

    // Stop: the answer that never ends is cut, and so is the request upstream
    const abortedBefore = upstream!.aborted;
    upstream!.queue({ kind: 'endless-stream', chunkDelayMs: 20 });
    await page.getByLabel('Key (optional)', { exact: true }).fill(TEST_KEY);
    await page.getByLabel('Message', { exact: true }).fill('go on forever');
    await page.getByRole('button', { name: 'Send' }).click();
    await page.getByRole('button', { name: 'Stop' }).click();
    await convo.getByText('Stopped.').waitFor();
    await eventually(() => upstream!.aborted > abortedBefore, 'the upstream request is aborted');

    // no key: a temporary key in the admin's name, for this request only; the facts still show
    await page.getByLabel('Key (optional)', { exact: true }).fill('');
    await page.getByLabel('Message', { exact: true }).fill('with a temporary key');
    await page.getByRole('button', { name: 'Send' }).click();
    const last = convo.locator('li.assistant').last();
    await last.locator('.chat-text').getByText('echo: with a temporary key').waitFor();
    await last.getByText('gpu-1 (test-model)').waitFor();
    const rows = (await gw.admin('GET', '/usage/requests?limit=5')).body.data as { key_name: string | null; app: string | null }[];
    assert.equal(rows[0]?.key_name, `playground:${OWNER.name}`);
    assert.ok(!JSON.stringify((await gw.admin('GET', '/keys')).body).includes('playground:'), 'no key stored or listed');
    assertNoProblems(problems);

    // an auditor sees the page but cannot send
    const second = await newPage();
    await open(second.page, gw.adminUrl + '/');
    assert.equal(await login(second.page, 'audrey', 'auditor password 1'), 200);
    await nav(second.page, 'Playground');
    await second.page.getByText('Only admins and owners can send requests from the playground.').waitFor();
    assert.equal(await second.page.getByRole('button', { name: 'Send' }).count(), 0);
  });

  test('Endpoints: a model the server lists becomes a model alias in one step, and apps can use it at once', { skip: SKIP_BROWSER }, async () => {
    const up = await startUpstream({ models: ['test-model', 'meta-llama/Llama-3.1-8B'] });
    after(() => up.close());
    const gw = await gateway({ config: basicConfig(up.url) });
    assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
    const { page, problems } = await newPage();
    await open(page, gw.adminUrl + '/');
    assert.equal(await login(page, OWNER.name, OWNER.password), 200);
    await nav(page, 'Endpoints');
    // the health check lists the server's models; test-model is served as "chat" already
    await page.getByText(/^\d+ models?$/).first().click();
    const served = page.getByRole('list', { name: 'Models served by gpu-1' });
    await served.getByText('as chat').waitFor();
    const m = 'meta-llama/Llama-3.1-8B';
    await page.getByRole('button', { name: `Create a model alias for ${m} on gpu-1` }).click();
    const d = page.getByRole('dialog', { name: 'Create model alias' });
    assert.equal(await d.getByLabel('Alias name').inputValue(), 'Llama-3.1-8B', 'a valid name is proposed');
    // the proposed name is valid; a name in use is refused on the field
    await d.getByLabel('Alias name').fill('chat');
    await d.getByRole('button', { name: 'Create alias' }).click();
    await d.getByText('a model named "chat" exists already').waitFor();
    await d.getByLabel('Alias name').fill('discovered');
    await d.getByRole('button', { name: 'Create alias' }).click();
    await d.waitFor({ state: 'hidden' });
    await page.getByText('Model alias discovered created: apps can use it now.').waitFor();
    await served.getByText('as discovered').waitFor();
    const model = (await gw.admin('GET', '/models/discovered')).body;
    assert.deepEqual(model.targets.map((t: { endpoint: string; model: string }) => [t.endpoint, t.model]), [['gpu-1', m]]);
    const ai = new OpenAI({ apiKey: TEST_KEY, baseURL: gw.baseURL, maxRetries: 0 });
    await ai.chat.completions.create({ model: 'discovered', messages: [{ role: 'user', content: 'hi' }] });
    assert.equal((up.completions().at(-1)!.body as { model: string }).model, m);
    assertNoProblems(problems);
  });
});
