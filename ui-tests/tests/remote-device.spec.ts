/**
 * End-to-end: the real JupyterLab + server extension + loopback agents with
 * the synthetic camera (see jupyter_server_test_config.py). Runs once at the
 * root URL and once under base_url=/jrd/ (playwright projects).
 */
import { expect, galata, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import { APIRequestContext, Page } from '@playwright/test';
import * as path from 'path';

/**
 * galata's tmpPath fixture talks to `/api/contents` at the host root, which
 * misses a server under a base_url (/jrd/): make the test folder with the
 * full base URL instead.
 */
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

interface IDevice {
  id: string;
  name: string;
  status: string;
  error: string | null;
}

async function listDevices(request: APIRequestContext, baseURL: string): Promise<IDevice[]> {
  const res = await request.get(`${baseURL}/jupyter-remote-device/devices`);
  expect(res.ok()).toBeTruthy();
  return (await res.json()).devices;
}

async function deviceByName(request: APIRequestContext, baseURL: string, name: string): Promise<IDevice> {
  const devices = await listDevices(request, baseURL);
  const d = devices.find(x => x.name === name);
  expect(d, `device ${name} is listed by the server`).toBeTruthy();
  return d!;
}

async function screenshot(page: Page, name: string, project: string, locator?: string) {
  const file = path.join(__dirname, '..', 'test-results', 'screenshots', `${project}-${name}.png`);
  if (locator) {
    await page.locator(locator).first().screenshot({ path: file });
  } else {
    await page.screenshot({ path: file });
  }
}

async function openSidebar(page: IJupyterLabPageFixture) {
  const panel = page.locator(SIDEBAR);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  }
  await expect(panel).toBeVisible();
}

/** Make sure a board has a session (tests can run alone with -g). */
async function ensureConnected(page: IJupyterLabPageFixture, baseURL: string, name: string) {
  const device = await deviceByName(page.request, baseURL, name);
  if (device.status !== 'connected') {
    const res = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/session`, { data: {} });
    expect(res.ok(), `connect ${name}`).toBeTruthy();
  }
  await openSidebar(page);
  await expect(page.locator(row(name))).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
}

async function runFromPalette(page: Page, label: string) {
  await page.keyboard.press('Control+Shift+C');
  const input = page.locator('#modal-command-palette .lm-CommandPalette-input');
  await expect(input).toBeVisible();
  await input.fill(label);
  const item = page
    .locator('#modal-command-palette .lm-CommandPalette-item')
    .filter({ has: page.locator('.lm-CommandPalette-itemLabel', { hasText: new RegExp(`^${label}$`) }) });
  await expect(item.first()).toBeVisible();
  await item.first().click();
}

async function pickInDialog(page: Page, startsWith: string) {
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toBeVisible();
  const select = dialog.locator('select');
  const labels = await select.locator('option').allTextContents();
  const label = labels.find(l => l.startsWith(startsWith));
  expect(label, `option for ${startsWith} in ${JSON.stringify(labels)}`).toBeTruthy();
  await select.selectOption({ label: label! });
  await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
}

/** A cheap hash of the camera canvas pixels. */
async function canvasHash(page: Page, selector = '.jp-RemoteDevice-canvas'): Promise<string> {
  return page.evaluate(sel => {
    const nodes = Array.from(document.querySelectorAll(sel)) as HTMLCanvasElement[];
    const canvas = nodes.find(n => n.offsetParent !== null) ?? nodes[0];
    const ctx = canvas.getContext('2d')!;
    const data = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
    let h = 2166136261;
    for (let i = 0; i < data.length; i += 7) {
      h = Math.imul(h ^ data[i], 16777619);
    }
    return `${canvas.width}x${canvas.height}:${h >>> 0}`;
  }, selector);
}

async function framesDrawn(page: Page): Promise<number> {
  const v = await page.locator('.jp-RemoteDevice-camera:visible').first().getAttribute('data-frames');
  return parseInt(v ?? '0', 10);
}

test.describe('Remote device', () => {
  test('the Devices sidebar lists the boards', async ({ page }, testInfo) => {
    await openSidebar(page);
    await expect(page.locator(`${SIDEBAR} .jp-RemoteDevice-title`)).toHaveText('Devices');
    await expect(page.locator(row('demo-board'))).toBeVisible();
    await expect(page.locator(row('locked-board'))).toBeVisible();
    await expect(page.locator(`${row('demo-board')} .jp-RemoteDevice-hostport`)).toContainText('127.0.0.1:');
    await expect(page.locator(`${row('demo-board')} .jp-RemoteDevice-source`)).toContainText('configured');
    // The server version handshake passed: no warning banner.
    await expect(page.locator(`${SIDEBAR} [data-server]`)).toHaveCount(0);
    await screenshot(page, 'sidebar-offline', testInfo.project.name);
  });

  test('"Connect device" from the palette shows the board info', async ({ page, baseURL }, testInfo) => {
    // Start from a disconnected board (a reused server may have a session).
    const before = await deviceByName(page.request, baseURL!, 'demo-board');
    await page.request.delete(`${baseURL}/jupyter-remote-device/devices/${before.id}/session`);
    await openSidebar(page);
    await expect(page.locator(row('demo-board'))).not.toHaveAttribute('data-status', 'connected');
    await expect(page.locator(row('demo-board'))).toBeVisible();
    await runFromPalette(page, 'Connect Device');
    await pickInDialog(page, 'demo-board');
    await expect(page.locator(row('demo-board'))).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
    const info = page.locator(`${row('demo-board')} .jp-RemoteDevice-info`);
    await expect(info.locator('dd[data-info="python"]')).toContainText(/\d+\.\d+/);
    await expect(info.locator('dd[data-info="memory"]')).toBeVisible();
    // The status bar names the connected board.
    await expect(page.locator('.jp-RemoteDevice-statusItem')).toContainText('demo-board');
    const device = await deviceByName(page.request, baseURL!, 'demo-board');
    expect(device.status).toBe('connected');
    await screenshot(page, 'sidebar-connected', testInfo.project.name);
  });

  test('the camera tab streams, snapshots and pauses', async ({ page, baseURL }, testInfo) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-camera`).click();
    const tab = page.locator('.lm-TabBar-tab', { hasText: 'Camera: demo-board' });
    await expect(tab).toBeVisible();
    const viewer = page.locator('.jp-RemoteDevice-camera:visible');
    await expect(viewer).toHaveAttribute('data-state', 'streaming', { timeout: 30000 });
    await expect.poll(() => framesDrawn(page), { timeout: 30000 }).toBeGreaterThan(2);

    // Pixels change over time.
    const first = await canvasHash(page);
    await expect.poll(() => canvasHash(page), { timeout: 15000, intervals: [300] }).not.toBe(first);
    // The overlay shows fps / latency / kB/s.
    await expect(page.locator('.jp-RemoteDevice-overlay:visible [data-stat="fps"]')).toContainText('fps', { timeout: 10000 });
    await expect(page.locator('.jp-RemoteDevice-overlay:visible [data-stat="latency"]')).toContainText('latency');
    // ... and what the server reports of the stream: the quality in use (adaptive: "auto").
    await expect(page.locator('.jp-RemoteDevice-overlay:visible [data-stat="quality"]')).toContainText(/Q\d+ auto/, { timeout: 10000 });
    await screenshot(page, 'camera-tab', testInfo.project.name);

    // Snapshot: a JPEG lands in the file browser's folder.
    await page.locator('.jp-RemoteDevice-snapshot').first().click();
    await expect(page.locator('.Toastify__toast', { hasText: 'Saved snapshot' })).toBeVisible();
    const toastText = await page.locator('.Toastify__toast', { hasText: 'Saved snapshot' }).first().innerText();
    const match = /Saved snapshot (\S+\.jpg)/.exec(toastText);
    expect(match).toBeTruthy();
    const snapPath = match![1];
    expect(path.basename(snapPath)).toMatch(/^demo-board-\d{8}-\d{6}\.jpg$/);
    expect(await page.contents.fileExists(snapPath)).toBeTruthy();
    const model = await page.evaluate(async p => {
      const m = await (window as any).jupyterapp.serviceManager.contents.get(p, { content: true, format: 'base64' });
      return { type: m.type, size: m.size, head: atob(m.content.slice(0, 8)).slice(0, 2) };
    }, snapPath);
    expect(model.type).toBe('file');
    expect(model.head.charCodeAt(0)).toBe(0xff);
    expect(model.head.charCodeAt(1)).toBe(0xd8);

    // Pause: the picture stops changing.
    await page.locator('.jp-RemoteDevice-pause').first().click();
    await expect(viewer).toHaveAttribute('data-state', 'paused');
    await page.waitForTimeout(500);
    const paused = await canvasHash(page);
    const pausedFrames = await framesDrawn(page);
    await page.waitForTimeout(2000);
    expect(await canvasHash(page)).toBe(paused);
    expect(await framesDrawn(page)).toBe(pausedFrames);

    // Resume: it changes again.
    await page.locator('.jp-RemoteDevice-pause').first().click();
    await expect(viewer).toHaveAttribute('data-state', 'streaming', { timeout: 30000 });
    await expect.poll(() => canvasHash(page), { timeout: 15000, intervals: [300] }).not.toBe(paused);

    // Settings change live (no reconnect): ask for 320x240.
    await page.locator('select.jp-RemoteDevice-resolution').first().selectOption('320x240');
    await expect
      .poll(() => page.evaluate(() => {
        const c = Array.from(document.querySelectorAll('.jp-RemoteDevice-canvas')).find(
          n => (n as HTMLElement).offsetParent !== null
        ) as HTMLCanvasElement;
        return `${c.width}x${c.height}`;
      }), { timeout: 20000 })
      .toBe('320x240');

    // A second view of the same board, side by side: both stream.
    await page.locator('.jp-RemoteDevice-newView').first().click();
    await expect(page.locator('.jp-RemoteDevice-camera[data-state="streaming"]')).toHaveCount(2, { timeout: 30000 });
    const counts = async () =>
      page.$$eval('.jp-RemoteDevice-camera', nodes => nodes.map(n => parseInt((n as HTMLElement).dataset.frames ?? '0', 10)));
    const c0 = await counts();
    await expect.poll(async () => (await counts()).every((v, i) => v > (c0[i] ?? 0)), { timeout: 20000 }).toBe(true);
    await page.locator('.lm-TabBar-tab', { hasText: 'Camera: demo-board' }).last().locator('.lm-TabBar-tabCloseIcon').click();
    await expect(page.locator('.jp-RemoteDevice-camera')).toHaveCount(1);

    // A hidden tab stops streaming; showing it again resumes.
    const cameraNode = page.locator('.jp-RemoteDevice-camera[data-state]').first();
    await page.locator('.lm-TabBar-tab', { hasText: 'Launcher' }).first().click();
    await expect(cameraNode).toHaveAttribute('data-state', 'hidden');
    await page.locator('.lm-TabBar-tab', { hasText: 'Camera: demo-board' }).first().click();
    await expect(cameraNode).toHaveAttribute('data-state', 'streaming', { timeout: 30000 });
  });

  test('the camera tab is restored after a reload', async ({ page, baseURL }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    // The layout restorer saves the workspace (debounced) with the camera tab in it.
    const saved = page.waitForRequest(
      r =>
        r.method() === 'PUT' &&
        /\/api\/workspaces/.test(r.url()) &&
        (r.postData() ?? '').includes('remote-device-camera:'),
      { timeout: 30000 }
    );
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-camera`).click();
    await expect(page.locator('.lm-TabBar-tab', { hasText: 'Camera: demo-board' })).toBeVisible();
    await saved;
    // A plain browser reload (galata's page.reload() waits for a Launcher tab).
    await Promise.all([page.waitForEvent('load'), page.evaluate(() => window.location.reload())]);
    await page.waitForSelector('#jupyterlab-splash', { state: 'detached' });
    const tab = page.locator('.lm-TabBar-tab', { hasText: 'Camera: demo-board' });
    await expect(tab.first()).toBeVisible({ timeout: 30000 });
    await tab.first().click();
    await expect.poll(() => framesDrawn(page), { timeout: 30000 }).toBeGreaterThan(0);
  });

  test('push a file from the file browser context menu', async ({ page, baseURL, tmpPath }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    const name = `hello-${Date.now()}.txt`;
    await page.contents.uploadContent('hello from jupyter\n'.repeat(1000), 'text', `${tmpPath}/${name}`);
    await page.sidebar.openTab('filebrowser');
    await page.filebrowser.refresh();
    await page.locator('.jp-DirListing-itemName', { hasText: name }).click({ button: 'right' });
    await page.locator('.lm-Menu-item', { hasText: 'Push to Device…' }).click();
    // One connected board: no picker, straight to the destination path.
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Push to demo-board');
    await expect(dialog.locator('input')).toHaveValue(name);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator('.Toastify__toast', { hasText: `Pushed ${name}` })).toBeVisible({ timeout: 30000 });
    const device = await deviceByName(page.request, baseURL!, 'demo-board');
    const res = await page.request.get(`${baseURL}/jupyter-remote-device/devices/${device.id}/files?path=`);
    expect(res.ok()).toBeTruthy();
    const entries = (await res.json()).entries.map((e: any) => e.name);
    expect(entries).toContain(name);
  });

  test('"Open notebook on device" creates a remote-device notebook', async ({ page, baseURL }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-notebook`).click();
    const panel = page.locator('.jp-NotebookPanel:visible');
    await expect(panel).toBeVisible({ timeout: 30000 });
    await expect(page.locator('.jp-NotebookPanel:visible .jp-KernelName')).toContainText('remote device', { timeout: 30000 });
    await expect
      .poll(
        () => page.evaluate(() => (window as any).jupyterapp.shell.currentWidget?.sessionContext?.session?.kernel?.name),
        { timeout: 30000 }
      )
      .toBe('remote-device');
    const nb = await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const widget = app.shell.currentWidget;
      const p = widget.context.path;
      const m = await app.serviceManager.contents.get(p, { content: true });
      return { path: p, metadata: m.content.metadata, kernel: widget.sessionContext.session?.kernel?.name };
    });
    expect(nb.metadata.kernelspec.name).toBe('remote-device');
    expect(nb.metadata.remote_device.name).toBe('demo-board');
    expect(nb.metadata.remote_device.host).toBe('127.0.0.1');
    expect(typeof nb.metadata.remote_device.port).toBe('number');
    expect(nb.kernel).toBe('remote-device');
    // Close it and shut its kernel down.
    await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const widget = app.shell.currentWidget;
      await widget.sessionContext.shutdown();
      widget.dispose();
    });
  });

  test('a camera output in a notebook cell plays live', async ({ page, baseURL }, testInfo) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    const device = await deviceByName(page.request, baseURL!, 'demo-board');
    await page.notebook.createNew('camera-cell.ipynb', { kernel: 'python3' });
    const code =
      'from IPython.display import display\n' +
      `display({"application/vnd.jupyter.remote-device.camera+json": {"device": "demo-board", "device_id": "${device.id}", "width": 320, "height": 240}, "text/plain": "<live camera>"}, raw=True)`;
    await page.notebook.setCell(0, 'code', code);
    await page.notebook.runCell(0);
    const output = page.locator('.jp-RemoteDevice-cellCamera[data-live="true"]');
    await expect(output).toBeVisible({ timeout: 30000 });
    await expect
      .poll(async () => parseInt((await output.locator('.jp-RemoteDevice-camera').getAttribute('data-frames')) ?? '0', 10), {
        timeout: 30000
      })
      .toBeGreaterThan(2);
    await expect(output).toContainText('Live camera of demo-board');
    await expect(output.locator('canvas')).toBeVisible();
    const box = await output.locator('canvas').boundingBox();
    expect(box!.height).toBeGreaterThan(100);
    await screenshot(page, 'cell-camera', testInfo.project.name);
    await page.notebook.close(true);
  });

  test('disconnect', async ({ page, baseURL }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-disconnect`).click();
    await expect(page.locator(row('demo-board'))).toHaveAttribute('data-status', /online|offline/, { timeout: 30000 });
    await expect(page.locator(`${row('demo-board')} .jp-RemoteDevice-info`)).toHaveCount(0);
    const device = await deviceByName(page.request, baseURL!, 'demo-board');
    expect(device.status).not.toBe('connected');
  });

  test('a wrong token shows the server message', async ({ page, baseURL }, testInfo) => {
    await openSidebar(page);
    await expect(page.locator(row('locked-board'))).toBeVisible();
    // What the server says, straight from the REST API.
    const device = await deviceByName(page.request, baseURL!, 'locked-board');
    const res = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/session`, { data: {} });
    expect(res.status()).toBe(502);
    const body = await res.json();
    expect(body.reason).toBe('auth-failed');
    expect(body.message).toBeTruthy();

    await runFromPalette(page, 'Connect Device');
    await pickInDialog(page, 'locked-board');
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Could not connect to locked-board');
    await expect(dialog).toContainText(body.message);
    await screenshot(page, 'wrong-token', testInfo.project.name);
    await dialog.locator('.jp-Dialog-button').last().click();
    await expect(dialog).toHaveCount(0);
    await expect(page.locator(row('locked-board'))).toHaveAttribute('data-status', 'error');
    await expect(page.locator(`${row('locked-board')} .jp-RemoteDevice-error`)).toBeVisible();
    // "Token…" offers to fix it: the add dialog, prefilled with the address.
    await page.locator(`${row('locked-board')} .jp-RemoteDevice-action-token`).click();
    const tokenDialog = page.locator('.jp-Dialog');
    await expect(tokenDialog).toContainText('Token for locked-board');
    await expect(tokenDialog.locator('input[name="host"]')).toHaveValue('127.0.0.1');
    await tokenDialog.locator('.jp-Dialog-button.jp-mod-reject').click();
    await expect(tokenDialog).toHaveCount(0);
  });

  test('"Add device" validates inline and adds a manual board', async ({ page }) => {
    await openSidebar(page);
    await page.locator(`${SIDEBAR} .jp-Toolbar-item`, { hasText: 'Add device' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Add device');
    const host = dialog.locator('input[name="host"]');
    const port = dialog.locator('input[name="port"]');
    await expect(port).toHaveValue('18861');
    await host.fill('not a host');
    await expect(dialog.locator('.jp-RemoteDevice-fieldError[data-field="host"]')).not.toBeEmpty();
    await expect(dialog.locator('.jp-Dialog-button.jp-mod-accept')).toBeDisabled();
    await host.fill('127.0.0.1');
    await port.fill('99999');
    await expect(dialog.locator('.jp-RemoteDevice-fieldError[data-field="port"]')).toContainText('65535');
    await port.fill('9');
    await dialog.locator('input[name="name"]').fill('ui-test-manual');
    await dialog.locator('input[name="connect"]').uncheck();
    await expect(dialog.locator('.jp-Dialog-button.jp-mod-accept')).toBeEnabled();
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(row('ui-test-manual'))).toBeVisible();
    await expect(page.locator(`${row('ui-test-manual')} .jp-RemoteDevice-source`)).toContainText('added by hand');
    // Remove it again.
    await page.locator(`${row('ui-test-manual')} .jp-RemoteDevice-action-remove`).click();
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-warn').click();
    await expect(page.locator(row('ui-test-manual'))).toHaveCount(0);
  });
});

test.describe('Remote device (dark theme)', () => {
  test.use({
    mockSettings: {
      ...galata.DEFAULT_SETTINGS,
      '@jupyterlab/apputils-extension:themes': { theme: 'JupyterLab Dark' }
    }
  });

  test('sidebar and camera in the dark theme', async ({ page, baseURL }, testInfo) => {
    const device = await deviceByName(page.request, baseURL!, 'demo-board');
    const res = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/session`, { data: {} });
    expect(res.ok()).toBeTruthy();
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-camera`).click();
    await expect.poll(() => framesDrawn(page), { timeout: 30000 }).toBeGreaterThan(2);
    await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'false');
    await screenshot(page, 'dark-theme', testInfo.project.name);
    await page.request.delete(`${baseURL}/jupyter-remote-device/devices/${device.id}/session`);
  });
});

test.describe('Remote device (settings)', () => {
  test.use({
    mockSettings: {
      ...galata.DEFAULT_SETTINGS,
      'jupyter-remote-device:plugin': { resolution: '320x240', quality: 50, fps: 5, showOverlay: false }
    }
  });

  test('camera defaults come from the settings and follow changes live', async ({ page, baseURL }) => {
    await ensureConnected(page, baseURL!, 'demo-board');
    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-camera`).click();
    await expect.poll(() => framesDrawn(page), { timeout: 30000 }).toBeGreaterThan(1);
    await expect(page.locator('select.jp-RemoteDevice-resolution:visible')).toHaveValue('320x240');
    await expect(page.locator('select.jp-RemoteDevice-quality:visible')).toHaveValue('50');
    await expect(page.locator('select.jp-RemoteDevice-fps:visible')).toHaveValue('5');
    await expect(page.locator('.jp-RemoteDevice-overlay:visible')).toHaveCount(0);
    // Live: turn the overlay on and change the resolution from the settings.
    await expect.poll(() => page.evaluate(() => !!(window as any).jupyterRemoteDevice?.settings)).toBe(true);
    await page.evaluate(async () => {
      const s = (window as any).jupyterRemoteDevice.settings;
      await s.set('showOverlay', true);
      await s.set('resolution', '640x480');
    });
    await expect(page.locator('.jp-RemoteDevice-overlay:visible [data-stat="fps"]')).toBeVisible({ timeout: 10000 });
    await expect(page.locator('select.jp-RemoteDevice-resolution:visible')).toHaveValue('640x480');
    await expect
      .poll(
        () =>
          page.evaluate(() => {
            const c = Array.from(document.querySelectorAll('.jp-RemoteDevice-canvas')).find(
              n => (n as HTMLElement).offsetParent !== null
            ) as HTMLCanvasElement;
            return `${c.width}x${c.height}`;
          }),
        { timeout: 20000 }
      )
      .toBe('640x480');
  });
});

