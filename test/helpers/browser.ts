// The admin app's end-to-end tests in Debian's Chromium (driven by playwright-core): where the
// browser is, when its tests are skipped, how it is started, a page that collects console errors
// and uncaught exceptions, and signing in. One place, so every e2e file skips, fails and signs in
// the same way.
//
// Without Chromium the tests are skipped, except in CI (CI=true), where launching fails with what
// to install. The admin app must be built (`npm run build:renderer`): the gateway serves it.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { ROOT } from './gateway.js';

export const CHROMIUM = process.env.AIRLOCK_CHROMIUM ?? '/usr/bin/chromium';
export const HAVE_CHROMIUM = fs.existsSync(CHROMIUM);
export const IN_CI = process.env.CI === 'true';
/** the `skip` option of a browser test: a reason when Chromium is missing outside CI */
export const SKIP_BROWSER: string | false =
  !HAVE_CHROMIUM && !IN_CI ? `Chromium not found at ${CHROMIUM}: install it (apt-get install chromium) or set AIRLOCK_CHROMIUM to run the admin app e2e tests` : false;
export const APP_INDEX = path.join(ROOT, 'renderer', 'dist', 'index.html');
/** the owner account the tests create and sign in as */
export const OWNER = { name: 'owner', password: 'correct horse battery staple' } as const;
/** how long one UI expectation may take to come true (polling, not a timing assertion) */
export const UI_WAIT = 20_000;
/** headless, no sandbox (containers), and nothing that would reach out to a network */
export const CHROMIUM_ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

/** Chromium, or a failure that says what is missing (the browser, or the built admin app). */
export async function launchChromium(): Promise<Browser> {
  if (!HAVE_CHROMIUM) assert.fail(`Chromium is required here (CI=true) but ${CHROMIUM} does not exist: install Debian's chromium package.`);
  if (!fs.existsSync(APP_INDEX)) assert.fail(`The admin app is not built (${APP_INDEX} is missing): run "npm run build:renderer" first.`);
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}

export interface WatchedPage {
  ctx: BrowserContext;
  page: Page;
  /** console errors and uncaught exceptions (e.g. CSP violations): a test expects none */
  problems: string[];
}

/** A new browser context (en-US, UTC, UI_WAIT) and a page whose console errors and uncaught
 * exceptions are collected. */
export async function watchedPage(
  browser: Browser,
  opts: { viewport?: { width: number; height: number }; acceptDownloads?: boolean; /** console errors a test expects (e.g. a 404 the page shows) */ ignore?: RegExp } = {},
): Promise<WatchedPage> {
  const ctx = await browser.newContext({ viewport: opts.viewport ?? { width: 1360, height: 900 }, acceptDownloads: opts.acceptDownloads ?? false, locale: 'en-US', timezoneId: 'UTC' });
  ctx.setDefaultTimeout(UI_WAIT);
  const page = await ctx.newPage();
  const problems: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !opts.ignore?.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  return { ctx, page, problems };
}

/** Opens the admin app and signs in; returns when the Overview page is shown. */
export async function signIn(page: Page, adminUrl: string, user: { name: string; password: string } = OWNER): Promise<void> {
  await page.goto(adminUrl + '/');
  await page.getByLabel('User name').fill(user.name);
  await page.getByLabel('Password', { exact: true }).fill(user.password);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByRole('heading', { level: 1, name: 'Overview' }).waitFor();
}
