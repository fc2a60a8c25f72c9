/**
 * Board operations end to end (real JupyterLab, server extension, loopback agents of
 * jupyter_server_test_config.py): a terminal tab on the board (a command, then a page
 * reload that reattaches the same shell), the board log, pip as a job with its log,
 * and "Why?" showing the connection doctor's steps for a board with a wrong token.
 */
import { expect, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import { APIRequestContext, Page } from '@playwright/test';
import * as path from 'path';

/** galata's tmpPath at the full base URL (also under base_url=/jrd/), as remote-device.spec.ts does. */
const test = base.extend({
  tmpPath: async ({ request, baseURL }, use, testInfo) => {
    const folder = path.basename(testInfo.outputDir).replace(/-retry\d+$/i, '');
    const url = `${baseURL}/api/contents/${folder}`;
    if ((await request.get(url)).ok()) {
      await request.delete(url);
    }
    const res = await request.put(url, { data: { type: 'directory' } });
    expect(res.ok(), `create ${url}`).toBeTruthy();
    await use(folder);
    await request.delete(url).catch(() => undefined);
  }
});

test.describe.configure({ mode: 'serial' });

const SIDEBAR = '#jp-remote-device-sidebar';
const row = (name: string) => `${SIDEBAR} .jp-RemoteDevice-row[data-device-name="${name}"]`;
const API = 'jupyter-remote-device';

async function deviceByName(request: APIRequestContext, baseURL: string, name: string): Promise<any> {
  const res = await request.get(`${baseURL}/${API}/devices`);
  expect(res.ok()).toBeTruthy();
  const d = (await res.json()).devices.find((x: any) => x.name === name);
  expect(d, `device ${name}`).toBeTruthy();
  return d;
}

async function openSidebar(page: IJupyterLabPageFixture) {
  const panel = page.locator(SIDEBAR);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  }
  await expect(panel).toBeVisible();
}

async function ensureConnected(page: IJupyterLabPageFixture, baseURL: string, name: string) {
  const device = await deviceByName(page.request, baseURL, name);
  if (device.status !== 'connected') {
    const res = await page.request.post(`${baseURL}/${API}/devices/${device.id}/session`, { data: {} });
    expect(res.ok(), `connect ${name}`).toBeTruthy();
  }
  await openSidebar(page);
  await expect(page.locator(row(name))).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
  return device;
}

async function screenshot(page: Page, name: string, project: string, locator?: string) {
  const file = path.join(__dirname, '..', 'test-results', 'screenshots', `${project}-${name}.png`);
  if (locator) {
    await page.locator(locator).first().screenshot({ path: file });
  } else {
    await page.screenshot({ path: file });
  }
}

const TERMINAL = '.jp-RemoteDevice-terminalPanel:visible';

/** What the current terminal tab's xterm shows (its buffer: xterm draws on a canvas). */
async function terminalText(page: Page): Promise<string> {
  return page.evaluate(() => {
    const w = (window as any).jupyterapp.shell.currentWidget;
    const term = w?.content?._term;
    if (!term) {
      return '';
    }
    const buf = term.buffer.active;
    const out: string[] = [];
    for (let i = 0; i < buf.length; i++) {
      out.push(buf.getLine(i)?.translateToString(true) ?? '');
    }
    return out.join('\n');
  });
}

async function expectInTerminal(page: Page, text: RegExp) {
  await expect.poll(() => terminalText(page), { timeout: 20000 }).toMatch(text);
}

async function typeInTerminal(page: Page, text: string) {
  await page.locator(`${TERMINAL} .xterm`).first().click();
  await page.keyboard.type(text);
  await page.keyboard.press('Enter');
}

test.describe('Board operations', () => {
  test('the terminal tab runs a command on the board and survives a reload', async ({ page, baseURL }, testInfo) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-terminal`).click();
    const tab = page.locator('.lm-TabBar-tab', { hasText: 'demo-board: terminal' });
    await expect(tab).toBeVisible();
    await expect(tab).not.toContainText('connecting');
    await typeInTerminal(page, 'export JRD_MARK=kept; echo jrd-$((6*7))');
    await expectInTerminal(page, /^jrd-42$/m);
    // the board's shell sees the tab's size (resize reaches the pty)
    await typeInTerminal(page, 'stty size');
    await expectInTerminal(page, /^\d+ \d+$/m);
    await screenshot(page, 'board-terminal', testInfo.project.name, TERMINAL);
    // a page reload: the tab comes back attached to the same shell
    await page.reload({ waitForIsReady: false } as any);
    await expect(page.locator('.lm-TabBar-tab', { hasText: 'demo-board: terminal' })).toBeVisible({ timeout: 30000 });
    await page.locator('.lm-TabBar-tab', { hasText: 'demo-board: terminal' }).click();
    await typeInTerminal(page, 'echo "again-$JRD_MARK"');
    await expectInTerminal(page, /^again-kept$/m);
    // Ctrl-C stops the program in the foreground
    await typeInTerminal(page, 'sleep 60');
    await page.keyboard.press('Control+c');
    await typeInTerminal(page, 'echo after-$((2+3))');
    await expectInTerminal(page, /^after-5$/m);
    // closing the tab ends the shell on the board
    const device = await deviceByName(page.request, baseURL!, 'demo-board');
    await page.locator('.lm-TabBar-tab', { hasText: 'demo-board: terminal' }).locator('.lm-TabBar-tabCloseIcon').click();
    await expect
      .poll(async () => (await (await page.request.get(`${baseURL}/${API}/devices/${device.id}/terminals`)).json()).terminals.length)
      .toBe(0);
  });

  test('"Open Terminal on Device" from the palette', async ({ page, baseURL }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.keyboard.press('Control+Shift+C');
    const input = page.locator('#modal-command-palette .lm-CommandPalette-input');
    await input.fill('Open Terminal on Device');
    await page.locator('#modal-command-palette .lm-CommandPalette-item', { hasText: 'Open Terminal on Device' }).first().click();
    // the board picker opens a moment after the palette closes (when the command does not know
    // the board): wait for it or for the terminal, not just look once
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog.or(page.locator(`${TERMINAL} .xterm`)).first()).toBeVisible();
    if (await dialog.isVisible()) {
      await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    }
    await typeInTerminal(page, 'echo palette-$((5*5))');
    await expectInTerminal(page, /^palette-25$/m);
    await page.locator('.lm-TabBar-tab', { hasText: 'demo-board: terminal' }).locator('.lm-TabBar-tabCloseIcon').click();
  });

  test('the board log shows what a background thread printed', async ({ page, baseURL }, testInfo) => {
    const device = await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-boardlog`).click();
    const log = page.locator('.jp-RemoteDevice-boardLog:visible');
    await expect(log).toContainText('listening on');
    const res = await page.request.post(`${baseURL}/${API}/devices/${device.id}/exec`, {
      data: { code: "import threading, time\nthreading.Thread(target=lambda: (time.sleep(0.5), print('from-a-thread-77'))).start()\n" }
    });
    expect(res.ok()).toBeTruthy();
    await expect(log.locator('.jp-RemoteDevice-boardLog-line.jp-mod-stdout')).toContainText(['from-a-thread-77']);
    await screenshot(page, 'board-log', testInfo.project.name, '.jp-RemoteDevice-boardLog:visible');
  });

  test('installing a package runs pip as a job with its log', async ({ page, baseURL }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-install`).click();
    const dialog = page.locator('.jp-Dialog');
    await dialog.locator('textarea').fill('jrd-not-on-any-index');
    await dialog.locator('input[type=checkbox]').nth(1).check(); // no index: this test never reaches PyPI
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    const state = page.locator('.jp-RemoteDevice-pipLog-state:visible');
    await expect(state).toHaveAttribute('data-state', 'failed', { timeout: 60000 });
    await expect(state).toContainText('pip failed');
    await expect(page.locator('.jp-RemoteDevice-pipLog-text:visible')).toContainText('jrd-not-on-any-index');
  });

  test('"Why?" shows the doctor\'s steps for a board that refuses its token', async ({ page, baseURL }, testInfo) => {
    const device = await deviceByName(page.request, baseURL!, 'locked-board');
    const res = await page.request.post(`${baseURL}/${API}/devices/${device.id}/session`, { data: {} });
    expect(res.status()).toBe(502);
    await openSidebar(page);
    await expect(page.locator(row('locked-board'))).toHaveAttribute('data-status', 'error');
    await page.locator(`${row('locked-board')} .jp-RemoteDevice-action-why`).click();
    const dialog = page.locator('.jp-Dialog');
    const steps = dialog.locator('.jp-RemoteDevice-diagnosis-step');
    await expect(steps).toHaveCount(7);
    for (const s of ['resolve', 'route', 'tcp', 'protocol']) {
      await expect(dialog.locator(`.jp-RemoteDevice-diagnosis-step[data-step="${s}"]`)).toHaveClass(/jp-mod-ok/);
    }
    const auth = dialog.locator('.jp-RemoteDevice-diagnosis-step[data-step="auth"]');
    await expect(auth).toHaveClass(/jp-mod-failed/);
    await expect(auth).toContainText('refused the token');
    await expect(auth.locator('.jp-RemoteDevice-diagnosis-hint')).toContainText('token');
    await screenshot(page, 'why-steps', testInfo.project.name, '.jp-Dialog-content');
    await dialog.locator('.jp-Dialog-button').last().click();
    // and beside the failed connect's message
    await page.locator(`${row('locked-board')} .jp-RemoteDevice-action-connect`).click();
    await expect(dialog).toContainText('Could not connect to locked-board');
    await dialog.locator('.jp-Dialog-button', { hasText: 'Why?' }).click();
    await expect(page.locator('.jp-Dialog .jp-RemoteDevice-diagnosis-step')).toHaveCount(7);
    await page.locator('.jp-Dialog .jp-Dialog-button').last().click();
  });

  test('"Add device…" with a port where nothing listens offers "Why?"', async ({ page, baseURL }) => {
    await openSidebar(page);
    await page.locator(`${SIDEBAR} .jp-Toolbar-item`, { hasText: 'Add device' }).click();
    const dialog = page.locator('.jp-Dialog');
    await dialog.locator('input[name="host"]').fill('127.0.0.1');
    await dialog.locator('input[name="port"]').fill('1');
    await dialog.locator('input[name="name"]').fill('ui-test-nothing-here');
    await dialog.locator('input[name="connect"]').check();
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(dialog).toContainText('Could not connect to ui-test-nothing-here');
    await dialog.locator('.jp-Dialog-button', { hasText: 'Why?' }).click();
    const tcp = page.locator('.jp-Dialog .jp-RemoteDevice-diagnosis-step[data-step="tcp"]');
    await expect(tcp).toHaveClass(/jp-mod-failed/);
    await expect(tcp).toContainText('Nothing listens on 127.0.0.1:1');
    await expect(tcp.locator('.jp-RemoteDevice-diagnosis-hint')).toContainText('agent');
    await page.locator('.jp-Dialog .jp-Dialog-button').last().click();
    const d = await deviceByName(page.request, baseURL!, 'ui-test-nothing-here');
    await page.request.delete(`${baseURL}/${API}/devices/${d.id}`);
  });
});
