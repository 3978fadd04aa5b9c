// Virtual MCP servers in the admin app (Chromium, the real gateway, server-everything as a stdio
// upstream): an admin adds a bundle of tools with a live preview of what its patterns match, the
// schema's errors shown on the field; an agent's SDK client on /mcp/v/NAME then sees exactly the
// tools both the bundle and the agent allow; an edit changes that for the open session
// (list_changed); a delete ends the address.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Browser } from 'playwright-core';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import { eventually, startGateway, type RunningGateway } from '../helpers/gateway.js';
import { EVERYTHING, agentClient } from '../helpers/mcp.js';
import { OWNER, SKIP_BROWSER, launchChromium, signIn, watchedPage } from '../helpers/browser.js';

const KEY = 'sk-airlock-agent-virtual-0000000000000031';

let browser: Browser | undefined;
let gw: RunningGateway | undefined;

before(async () => {
  if (SKIP_BROWSER) return;
  gw = await startGateway({
    config: {
      mcp_servers: [{ name: 'every', transport: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] }],
      agents: [{ name: 'bot', key: KEY, tools: ['every__*'], deny: ['every__get-env'] }],
    },
  });
  assert.equal((await gw.admin('POST', '/users', { name: OWNER.name, password: OWNER.password, role: 'owner' })).status, 201);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

test('an admin bundles tools as a virtual server; an agent there sees what both allow; edits reach its open session; a delete ends the address', { skip: SKIP_BROWSER }, async () => {
  const { ctx, page, problems } = await watchedPage(browser!);
  await signIn(page, gw!.adminUrl);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'MCP & agents' }).click();
  await page.getByRole('heading', { level: 2, name: 'Virtual servers' }).waitFor();
  await page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: 'every' }) }).getByText('ready').waitFor();
  await page.getByText('No virtual servers.').waitFor();

  await page.getByRole('button', { name: 'Add virtual server' }).click();
  const d = page.getByRole('dialog', { name: 'Add virtual server' });
  await d.waitFor();
  // a name the schema refuses, and a pattern with a space: each error on its field
  await d.getByLabel('Name').fill('read only');
  await d.getByLabel('Tools (one pattern per line)').fill('every__echo\nevery__get sum');
  await d.getByRole('button', { name: 'Add virtual server' }).click();
  assert.equal(await d.getByLabel('Name').getAttribute('aria-invalid'), 'true');
  await d.locator('#vs-tools-error').getByText(/line 2: must be a tool name/).waitFor();
  assert.equal(await page.evaluate<string | null>('document.activeElement?.id ?? null'), 'vs-name', 'the first field in error takes the focus');
  // the preview follows the patterns over the catalog
  await d.getByLabel('Name').fill('readonly');
  await d.getByLabel('Tools (one pattern per line)').fill('every__echo\nevery__get-*');
  await d.getByTestId('vs-preview').getByText(/every__echo, every__get-/).waitFor();
  const preview = (await d.getByTestId('vs-preview').textContent()) ?? '';
  assert.match(preview, /every__get-env/, 'the bundle matches get-env (the agent is denied it: it will not see it)');
  await d.getByLabel('Description (optional)').fill('Read-only tools for the support bot');
  await d.getByRole('button', { name: 'Add virtual server' }).click();
  await d.waitFor({ state: 'hidden' });
  const row = page.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /readonly/ }) });
  await row.getByText('/mcp/v/readonly').waitFor();

  // the agent on /mcp/v/readonly: the bundle's tools it may use, without the one it is denied
  let changed = 0;
  const { client } = await agentClient(gw!.dataUrl, KEY, {}, {}, (c) => c.setNotificationHandler(ToolListChangedNotificationSchema, () => void changed++), '/mcp/v/readonly');
  try {
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('every__echo'));
    assert.ok(names.some((n) => n.startsWith('every__get-')));
    assert.ok(!names.includes('every__get-env'), 'denied to the agent');
    assert.ok(names.every((n) => n === 'every__echo' || n.startsWith('every__get-')), names.join(','));

    // edit: only echo; the open session is told and sees just that
    await row.getByRole('button', { name: 'Edit virtual server readonly' }).click();
    const e = page.getByRole('dialog', { name: 'Edit virtual server readonly' });
    assert.equal(await e.getByLabel('Name').getAttribute('readonly'), '');
    await e.getByLabel('Tools (one pattern per line)').fill('every__echo');
    await e.getByTestId('vs-preview').getByText('Offers now: 1 tool').waitFor();
    await e.getByRole('button', { name: 'Save virtual server' }).click();
    await e.waitFor({ state: 'hidden' });
    await eventually(() => changed > 0, 'tools/list_changed on the virtual server session');
    assert.deepEqual((await client.listTools()).tools.map((t) => t.name), ['every__echo']);
    assert.deepEqual((await gw!.admin('GET', '/mcp-virtual-servers/readonly')).body, { name: 'readonly', description: 'Read-only tools for the support bot', tools: ['every__echo'] });

    // delete: the address no longer answers
    await row.getByRole('button', { name: 'Delete virtual server readonly' }).click();
    await page.getByRole('dialog', { name: 'Delete virtual server readonly?' }).getByRole('button', { name: 'Delete virtual server' }).click();
    await page.getByText('No virtual servers.').waitFor();
    await assert.rejects(agentClient(gw!.dataUrl, KEY, {}, {}, undefined, '/mcp/v/readonly'));
  } finally {
    await client.close().catch(() => undefined);
  }
  assert.deepEqual(problems, []);
  await ctx.close();
});
