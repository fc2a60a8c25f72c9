/**
 * Through a real JupyterHub (hub_server.py): alice's server under /user/alice/, reached only
 * through configurable-http-proxy, with the boards configured once for every user
 * (desk-01..03 live, desk-04..11 offline). The Devices sidebar as a room (filter as you
 * type, the offline group folded, one line per board), the camera grid of several boards,
 * a board held by alice shown "in use" to bob with an explicit take-over, and "Forget
 * offline". XSRF checks stay on: requests from the page send the _xsrf cookie back.
 */
import { expect, test as base } from '@jupyterlab/galata';
import { Browser, Page } from '@playwright/test';
import * as path from 'path';

/**
 * Galata makes a temp folder per test with the contents API from node, which has no _xsrf
 * to send back (XSRF checks are on here): these tests make no files; hub_server.py made
 * the folder the file browser opens.
 */
const test = base.extend({
  // eslint-disable-next-line no-empty-pattern
  tmpPath: async ({}, use) => {
    await use('room-tests');
  },
  // JupyterLab behind the hub on a busy machine can take longer than Galata's fixed 15 s to
  // start: the tests open the page themselves (openLab) and wait as long as it takes.
  autoGoto: false
});

const HUB_URL = `http://127.0.0.1:${process.env.JRD_UI_HUB_PORT || '18890'}`;

async function openLab(page: Page) {
  const raw: Page = (page as any).page ?? page;
  await raw.goto(`${HUB_URL}/user/alice/lab/tree/room-tests?reset`, { waitUntil: 'domcontentloaded' });
  await raw.waitForFunction(() => typeof (window as any).jupyterapp === 'object', null, { timeout: 120000 });
  await raw.evaluate(() => (window as any).jupyterapp.started);
  await raw.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 120000 });
  await raw.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').waitFor({ timeout: 60000 });
  // Once the layout is restored, JupyterLab opens a Launcher in the empty main area and gives it
  // the focus: keys typed before that land in the launcher instead of the sidebar's filter.
  await raw.evaluate(() => (window as any).jupyterapp.restored);
  await raw.locator('.jp-Launcher').first().waitFor({ timeout: 60000 });
}

test.describe.configure({ mode: 'serial' });

test.beforeEach(async ({ page }) => {
  await openLab(page);
});

const SIDEBAR = '#jp-remote-device-sidebar';
const ROWS = `${SIDEBAR} .jp-RemoteDevice-row`;
const row = (name: string) => `${ROWS}[data-device-name="${name}"]`;

async function screenshot(page: Page, name: string, locator?: string) {
  const file = path.join(__dirname, '..', 'test-results-hub', 'screenshots', `hub-${name}.png`);
  await (locator ? page.locator(locator).first().screenshot({ path: file }) : page.screenshot({ path: file }));
}

async function openSidebar(page: Page) {
  const panel = page.locator(SIDEBAR);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  }
  await expect(panel).toBeVisible();
  await expect(page.locator(row('desk-01'))).toBeVisible();
}

/** The extension's REST API from inside the page, as JupyterLab calls it (cookie + X-XSRFToken). */
async function api(page: Page, user: string, method: string, route: string, body?: any) {
  return page.evaluate(
    async ({ user, method, route, body }) => {
      const xsrf = document.cookie.split('; ').find(c => c.startsWith('_xsrf='))?.slice(6) ?? '';
      const r = await fetch(`/user/${user}/jupyter-remote-device/${route}`, {
        method,
        headers: { 'X-XSRFToken': decodeURIComponent(xsrf), 'Content-Type': 'application/json' },
        body: body === undefined ? undefined : JSON.stringify(body)
      });
      const text = await r.text();
      return { status: r.status, data: text ? JSON.parse(text) : null };
    },
    { user, method, route, body }
  );
}

async function disconnectAll(page: Page, user: string) {
  const { data } = await api(page, user, 'GET', 'devices');
  for (const d of data.devices) {
    if (d.status === 'connected' || d.status === 'connecting') {
      await api(page, user, 'DELETE', `devices/${d.id}/session`);
    }
  }
}

async function connectInSidebar(page: Page, name: string) {
  const r = page.locator(row(name));
  await r.locator('.jp-RemoteDevice-action-connect').click();
  await expect(r).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
}

async function bobPage(browser: Browser): Promise<Page> {
  const context = await browser.newContext({ storageState: 'hub-tests/.auth/bob.json', baseURL: HUB_URL });
  const page = await context.newPage();
  await page.goto('/user/bob/lab');
  await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 90000 });
  return page;
}

test('the page is alice\'s server behind the hub, with XSRF checks on', async ({ page }) => {
  expect(page.url()).toContain('/user/alice/lab');
  await openSidebar(page);
  const unsafe = await page.evaluate(async () => {
    const r = await fetch('/user/alice/jupyter-remote-device/devices', { method: 'POST', body: '{}' });
    return r.status;
  });
  expect(unsafe).toBe(403); // no X-XSRFToken: refused
  const { status, data } = await api(page, 'alice', 'GET', 'devices');
  expect(status).toBe(200);
  expect(data.devices.filter((d: any) => d.source === 'config')).toHaveLength(11);
  await disconnectAll(page, 'alice');
});

test('filter boards by name as you type', async ({ page }) => {
  await openSidebar(page);
  const list = page.locator(`${SIDEBAR} .jp-RemoteDevice-list`);
  await expect(list).toHaveClass(/jp-mod-compact/); // 11 boards: one line each
  const filter = page.locator(`${SIDEBAR} .jp-RemoteDevice-filter`);
  const count = page.locator(`${SIDEBAR} .jp-RemoteDevice-filterCount`);
  await expect(count).toHaveText('11');
  await filter.pressSequentially('desk-1', { delay: 30 });
  // desk-10 and desk-11 are offline: a filter that finds them opens their group
  await expect(page.locator(ROWS)).toHaveCount(2);
  await expect(page.locator(row('desk-10'))).toBeVisible();
  await expect(page.locator(row('desk-11'))).toBeVisible();
  await expect(count).toHaveText('2 of 11');
  await filter.fill('');
  await filter.pressSequentially('DESK-02', { delay: 30 });
  await expect(page.locator(ROWS)).toHaveCount(1);
  await expect(page.locator(row('desk-02'))).toBeVisible();
  await filter.fill('no-such-board');
  await expect(page.locator(ROWS)).toHaveCount(0);
  await expect(page.locator(`${SIDEBAR} .jp-RemoteDevice-noMatch`)).toContainText('no-such-board');
  await filter.press('Escape');
  await expect(filter).toHaveValue('');
  await expect(count).toHaveText('11');
});

test('offline boards fold away; the live ones come first, one line each', async ({ page }) => {
  await openSidebar(page);
  const toggle = page.locator(`${SIDEBAR} .jp-RemoteDevice-groupToggle`);
  // 8 offline boards: folded by default
  await expect(toggle).toHaveAttribute('aria-expanded', 'false');
  await expect(toggle).toContainText('Offline · 8');
  await expect(page.locator(`${ROWS}[data-status="offline"]`)).toHaveCount(0);
  const names = await page.locator(ROWS).evaluateAll(rows => rows.map(r => (r as HTMLElement).dataset.deviceName));
  expect(names).toEqual(['desk-01', 'desk-02', 'desk-03']);
  await toggle.click();
  await expect(toggle).toHaveAttribute('aria-expanded', 'true');
  await expect(page.locator(`${ROWS}[data-status="offline"]`)).toHaveCount(8);
  // one line per board: every row about as tall as the first
  const heights = await page.locator(ROWS).evaluateAll(rows => rows.map(r => r.getBoundingClientRect().height));
  expect(heights).toHaveLength(11);
  expect(Math.max(...heights)).toBeLessThan(40);
  await screenshot(page, 'room-sidebar', SIDEBAR);
  await toggle.click();
  await expect(page.locator(`${ROWS}[data-status="offline"]`)).toHaveCount(0);
});

test('camera grid of several boards; a tile opens the board\'s camera', async ({ page }) => {
  await openSidebar(page);
  for (const name of ['desk-01', 'desk-02', 'desk-03']) {
    await connectInSidebar(page, name);
  }
  await page.locator(`${SIDEBAR} .jp-RemoteDevice-action-grid`).click();
  const grid = page.locator('.jp-RemoteDevice-cameraGrid:visible');
  await expect(grid).toHaveAttribute('data-tiles', '3');
  await expect(page.locator('.lm-TabBar-tab', { hasText: 'Camera grid (3 boards)' })).toBeVisible();
  for (const name of ['desk-01', 'desk-02', 'desk-03']) {
    const tile = grid.locator(`.jp-RemoteDevice-gridTile[data-device-name="${name}"]`);
    await expect
      .poll(async () => Number(await tile.getAttribute('data-frames')), { timeout: 30000 })
      .toBeGreaterThan(3);
  }
  await screenshot(page, 'camera-grid', '.jp-RemoteDevice-cameraGridPanel:visible');
  await grid.locator('.jp-RemoteDevice-gridTile[data-device-name="desk-02"]').click();
  await expect(page.locator('.lm-TabBar-tab', { hasText: 'Camera: desk-02' })).toBeVisible();
  await expect(page.locator('.jp-RemoteDevice-camera[data-device-id]:visible')).toBeVisible();

  // selected boards only (click a row, Ctrl-click another), from the palette
  await page.locator(`${row('desk-01')} .jp-RemoteDevice-name`).click();
  await page.locator(`${row('desk-03')} .jp-RemoteDevice-name`).click({ modifiers: ['Control'] });
  await expect(page.locator(`${ROWS}[aria-selected="true"]`)).toHaveCount(2);
  await page.keyboard.press('Control+Shift+C');
  const input = page.locator('#modal-command-palette .lm-CommandPalette-input');
  await input.fill('Open Camera Grid');
  await page.locator('#modal-command-palette .lm-CommandPalette-item', { hasText: 'Open Camera Grid' }).first().click();
  const grid2 = page.locator('.jp-RemoteDevice-cameraGrid:visible');
  await expect(grid2).toHaveAttribute('data-tiles', '2');
  const shown = await grid2.locator('.jp-RemoteDevice-gridTile').evaluateAll(t => t.map(n => (n as HTMLElement).dataset.deviceName));
  expect(shown).toEqual(['desk-01', 'desk-03']);
});

test('a board alice holds is "in use by alice" for bob, who takes it over explicitly', async ({ page, browser }) => {
  await openSidebar(page);
  const { data } = await api(page, 'alice', 'GET', 'devices');
  const desk1 = data.devices.find((d: any) => d.name === 'desk-01');
  if (desk1.status !== 'connected') {
    await connectInSidebar(page, 'desk-01');
  }
  const bob = await bobPage(browser);
  try {
    await openSidebar(bob);
    await bob.locator(row('desk-01')).locator('.jp-RemoteDevice-action-connect').click();
    const dialog = bob.locator('.jp-Dialog');
    await expect(dialog).toContainText('desk-01 is in use');
    await expect(dialog).toContainText('in use by alice');
    await dialog.locator('.jp-Dialog-button', { hasText: 'Cancel' }).click();
    // bob's sidebar says who holds it, and offers the take-over
    const bobRow = bob.locator(row('desk-01'));
    await expect(bobRow.locator('.jp-RemoteDevice-statusText')).toHaveText('in use by alice');
    await screenshot(bob, 'in-use-by-alice', SIDEBAR); // (a row is redrawn on every heartbeat)
    await bobRow.locator('.jp-RemoteDevice-action-takeover').click();
    await expect(bobRow).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
    // alice learns it (heartbeat): in use by bob, her own take-over button
    const aliceRow = page.locator(row('desk-01'));
    await expect(aliceRow.locator('.jp-RemoteDevice-statusText')).toHaveText('in use by bob', { timeout: 30000 });
    await expect(aliceRow.locator('.jp-RemoteDevice-action-takeover')).toBeVisible();
    await disconnectAll(bob, 'bob');
  } finally {
    await bob.context().close();
  }
});

test('Forget offline removes the offline boards added by hand; configured ones stay', async ({ page }) => {
  await openSidebar(page);
  for (const port of [9, 13]) {
    const { status } = await api(page, 'alice', 'POST', 'devices', { host: '127.0.0.1', port, name: `gone-${port}` });
    expect(status).toBe(201);
  }
  const toggle = page.locator(`${SIDEBAR} .jp-RemoteDevice-groupToggle`);
  await expect(toggle).toContainText('Offline · 10', { timeout: 30000 });
  const forget = page.locator(`${SIDEBAR} .jp-RemoteDevice-action-forget`);
  await expect(forget).toHaveText('Forget (2)');
  await forget.click();
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toContainText('gone-9');
  await dialog.locator('.jp-Dialog-button', { hasText: 'Forget' }).click();
  await expect(toggle).toContainText('Offline · 8');
  await expect(forget).toBeHidden();
  const { data } = await api(page, 'alice', 'GET', 'devices');
  expect(data.devices.map((d: any) => d.name).filter((n: string) => n.startsWith('gone-'))).toEqual([]);
  expect(data.devices).toHaveLength(11);
  await disconnectAll(page, 'alice');
});
