/**
 * Camera tools end to end: the vision panel on a known frame (replay-board plays a
 * gray 320x240 picture with a pure red 80x60 rectangle at (80, 60); see
 * jupyter_server_test_config.py), the record button and the dataset mode on
 * demo-board (synthetic camera).
 */
import { expect, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import { Page } from '@playwright/test';
import * as path from 'path';

/** galata's tmpPath misses a server under a base_url (/jrd/): make the folder with the full URL. */
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

// The other suites share this server and expect only their own boards connected: leave
// replay-board as the suite found it, whatever happened in between.
test.afterAll(async ({ playwright }, testInfo) => {
  const baseURL = testInfo.project.use.baseURL;
  const request = await playwright.request.newContext();
  try {
    const res = await request.get(`${baseURL}/jupyter-remote-device/devices`);
    const board = (await res.json()).devices.find((d: any) => d.name === 'replay-board');
    if (board && board.status === 'connected') {
      await request.delete(`${baseURL}/jupyter-remote-device/devices/${board.id}/session`);
    }
  } finally {
    await request.dispose();
  }
});

const SIDEBAR = '#jp-remote-device-sidebar';
const row = (name: string) => `${SIDEBAR} .jp-RemoteDevice-row[data-device-name="${name}"]`;

async function openCamera(page: IJupyterLabPageFixture, baseURL: string, name: string) {
  const res = await page.request.get(`${baseURL}/jupyter-remote-device/devices`);
  const device = (await res.json()).devices.find((d: any) => d.name === name);
  expect(device, `${name} is configured`).toBeTruthy();
  if (device.status !== 'connected') {
    const r = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/session`, { data: {} });
    expect(r.ok(), `connect ${name}`).toBeTruthy();
  }
  if (!(await page.locator(SIDEBAR).isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  }
  await expect(page.locator(row(name))).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
  await page.locator(`${row(name)} .jp-RemoteDevice-action-camera`).click();
  const viewer = page.locator('.jp-RemoteDevice-camera:visible');
  await expect(viewer).toHaveAttribute('data-state', 'streaming', { timeout: 30000 });
  await expect.poll(async () => parseInt((await viewer.getAttribute('data-frames')) ?? '0', 10), { timeout: 30000 }).toBeGreaterThan(1);
  // room for the camera tab's toolbar and the tools panel: fold the sidebar away
  await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  await expect(page.locator(SIDEBAR)).toBeHidden();
  return viewer;
}

/** Screen position of an image pixel of the visible camera canvas. */
async function atPixel(page: Page, x: number, y: number): Promise<{ x: number; y: number }> {
  const canvas = page.locator('.jp-RemoteDevice-canvas:visible').first();
  const box = (await canvas.boundingBox())!;
  const size = await canvas.evaluate((c: HTMLCanvasElement) => [c.width, c.height]);
  return { x: box.x + ((x + 0.5) * box.width) / size[0], y: box.y + ((y + 0.5) * box.height) / size[1] };
}

async function stat(page: Page, channel: string, name: string): Promise<number> {
  const text = await page.locator(`.jp-RemoteDevice-stats td[data-channel="${channel}"][data-stat="${name}"]`).first().textContent();
  return parseFloat(text ?? 'NaN');
}

test.describe('Camera tools', () => {
  test('vision tools: histogram of a known colour, threshold mask, find_blobs tuple, zoom, probe', async ({ page, baseURL, context }) => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write']);
    page.on('pageerror', e => console.log('PAGEERROR', e.message));
    await openCamera(page, baseURL!, 'replay-board');
    await expect
      .poll(() => page.locator('.jp-RemoteDevice-canvas:visible').first().evaluate((c: HTMLCanvasElement) => `${c.width}x${c.height}`))
      .toBe('320x240');
    await page.locator('.jp-RemoteDevice-toolsToggle:visible').click();
    const tools = page.locator('.jp-RemoteDevice-tools:visible');
    await expect(tools).toBeVisible();

    // A region inside the red rectangle: its RGB histogram is pure red.
    const a = await atPixel(page, 90, 70);
    const b = await atPixel(page, 149, 109);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move((a.x + b.x) / 2, (a.y + b.y) / 2, { steps: 4 });
    await page.mouse.move(b.x, b.y, { steps: 4 });
    await page.mouse.up();
    const region = await tools.locator('.jp-RemoteDevice-regionLabel').getAttribute('data-region');
    const [rx, ry, rw, rh] = region!.split(',').map(Number);
    expect(Math.abs(rx - 90)).toBeLessThanOrEqual(1);
    expect(Math.abs(ry - 70)).toBeLessThanOrEqual(1);
    expect(Math.abs(rw - 60)).toBeLessThanOrEqual(2);
    expect(Math.abs(rh - 40)).toBeLessThanOrEqual(2);
    await expect.poll(() => stat(page, 'r', 'mean')).toBeGreaterThanOrEqual(252);
    expect(await stat(page, 'r', 'min')).toBeGreaterThanOrEqual(250);
    expect(await stat(page, 'g', 'max')).toBeLessThanOrEqual(4);
    expect(await stat(page, 'b', 'median')).toBeLessThanOrEqual(3);
    expect(await stat(page, 'r', 'stdev')).toBeLessThan(2);
    // ... and in LAB it is (53, 80, 67), as find_blobs sees red
    await tools.locator('select.jp-RemoteDevice-histSpace').selectOption('lab');
    await expect.poll(() => stat(page, 'l', 'median')).toBeGreaterThan(0);
    expect(Math.abs((await stat(page, 'l', 'median')) - 53)).toBeLessThanOrEqual(1);
    expect(Math.abs((await stat(page, 'a', 'mode')) - 80)).toBeLessThanOrEqual(1);
    expect(Math.abs((await stat(page, 'bb', 'mean')) - 67)).toBeLessThanOrEqual(1.5);

    // Threshold from the region: the mask covers the red rectangle (80x60 = 4800 px), not the gray.
    await tools.locator('.jp-RemoteDevice-thresholdFromRegion').click();
    const info = tools.locator('.jp-RemoteDevice-maskInfo');
    // (until the new ranges are applied, the count is the old ranges': everything passes)
    const maskCount = async () => parseInt((await info.getAttribute('data-count')) ?? '0', 10);
    await expect.poll(async () => { const n = await maskCount(); return n > 4500 && n <= 4800 + 80; }).toBe(true);
    const tuple = (await tools.locator('.jp-RemoteDevice-thresholdTuple').textContent())!;
    const m = /^\[\((\d+), (\d+), (-?\d+), (-?\d+), (-?\d+), (-?\d+)\)\]$/.exec(tuple);
    expect(m, tuple).toBeTruthy();
    const [lmin, lmax, amin, amax, bmin, bmax] = m!.slice(1).map(Number);
    expect(lmin <= 53 && 53 <= lmax && amin <= 80 && 80 <= amax && bmin <= 67 && 67 <= bmax).toBe(true);
    // the mask overlay is drawn where the rectangle is, and nowhere else
    const maskAt = (x: number, y: number) =>
      page.locator('.jp-RemoteDevice-visionMask:visible').first().evaluate(
        (c: HTMLCanvasElement, p) => c.getContext('2d')!.getImageData(p[0], p[1], 1, 1).data[3],
        [x, y]
      );
    expect(await maskAt(120, 90)).toBeGreaterThan(0);
    expect(await maskAt(20, 20)).toBe(0);
    // editing a range narrows the mask live: L min above red's L
    // (a range given backwards is used swapped, as OpenMV does: set both ends)
    for (const [end, v] of [['Max', '100'], ['Min', '70']]) {
      const input = tools.locator(`input.jp-RemoteDevice-range${end}[data-channel="l"]`);
      await input.fill(v);
      await input.dispatchEvent('change');
    }
    await expect.poll(maskCount).toBe(0);
    await tools.locator('.jp-RemoteDevice-thresholdFromRegion').click();
    await expect.poll(maskCount).toBeGreaterThan(4500);

    // Copy: the find_blobs list goes to the clipboard.
    await tools.locator('.jp-RemoteDevice-thresholdCopy').click();
    await expect(tools).toHaveAttribute('data-copied', tuple);
    expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(tuple);

    // Focus score: a number, higher over the rectangle's edge than inside it.
    const inside = parseFloat((await tools.locator('.jp-RemoteDevice-focusScore').getAttribute('data-value'))!);
    expect(inside).toBeLessThan(5);

    // Probe: the pixel under the cursor in RGB / LAB / HSV.
    const p = await atPixel(page, 100, 80);
    await page.mouse.move(p.x, p.y);
    const probe = tools.locator('.jp-RemoteDevice-probe');
    await expect(probe).toHaveAttribute('data-active', 'true');
    await expect(probe).toHaveAttribute('data-x', '100');
    await expect(probe).toHaveAttribute('data-y', '80');
    const rgb = (await probe.getAttribute('data-rgb'))!.split(',').map(Number);
    expect(rgb[0]).toBeGreaterThanOrEqual(250);
    expect(rgb[1] + rgb[2]).toBeLessThanOrEqual(6);
    const hsv = (await probe.getAttribute('data-hsv'))!.split(',').map(Number);
    expect(hsv[0] <= 2 || hsv[0] >= 358).toBe(true);
    const gray = await atPixel(page, 20, 20);
    await page.mouse.move(gray.x, gray.y);
    await expect(probe).toHaveAttribute('data-lab', /^5[34],0,0$/);

    // Zoom: x16 shows pixels as blocks with the grid; Fit goes back.
    const stage = page.locator('.jp-RemoteDevice-stage.jp-mod-vision:visible');
    const fitWidth = (await page.locator('.jp-RemoteDevice-canvas:visible').first().boundingBox())!.width;
    for (let i = 0; i < 4; i++) {
      await tools.locator('.jp-RemoteDevice-zoomIn').click();
    }
    await expect(stage).toHaveAttribute('data-zoom', '16');
    await expect(page.locator('.jp-RemoteDevice-canvas:visible').first()).toHaveClass(/jp-mod-pixelated/);
    const zoomed = await page.locator('.jp-RemoteDevice-canvas:visible').first().evaluate((c: HTMLCanvasElement) => parseFloat(c.style.width));
    expect(Math.abs(zoomed - 16 * fitWidth)).toBeLessThan(2);
    const gridPixels = await page.locator('.jp-RemoteDevice-visionUi:visible').first().evaluate((c: HTMLCanvasElement) => {
      const d = c.getContext('2d')!.getImageData(0, 0, c.width, c.height).data;
      let n = 0;
      for (let i = 3; i < d.length; i += 4) {
        n += d[i] > 0 ? 1 : 0;
      }
      return n;
    });
    expect(gridPixels).toBeGreaterThan(1000);
    await tools.locator('.jp-RemoteDevice-zoomFit').click();
    await expect(stage).toHaveAttribute('data-zoom', '1');

    // Pause freezes the frame; the tools keep working on it.
    await page.locator('.jp-RemoteDevice-pause:visible').first().click();
    await expect(page.locator('.jp-RemoteDevice-camera:visible')).toHaveAttribute('data-state', 'paused');
    await tools.locator('.jp-RemoteDevice-regionClear').click();
    await expect(tools.locator('.jp-RemoteDevice-regionLabel')).toHaveAttribute('data-region', '');
    await expect.poll(() => stat(page, 'l', 'max')).toBeGreaterThanOrEqual(53);
    await expect.poll(() => stat(page, 'l', 'min')).toBeLessThanOrEqual(54);
    await page.locator('.jp-RemoteDevice-pause:visible').first().click();
    await page.locator('.jp-RemoteDevice-toolsToggle:visible').click();
    await expect(page.locator('.jp-RemoteDevice-tools')).toHaveCount(0);
  });

  test('the record button records and the file appears in the file browser', async ({ page, baseURL, tmpPath }) => {
    await page.filebrowser.openDirectory(tmpPath);
    await openCamera(page, baseURL!, 'demo-board');
    const rec = page.locator('.jp-RemoteDevice-record:visible');
    await expect(rec).toHaveAttribute('data-recording', 'false');
    await rec.click();
    await expect(rec).toHaveAttribute('data-recording', 'true', { timeout: 20000 });
    // elapsed time and size while it runs
    await expect.poll(async () => (await rec.textContent()) ?? '', { timeout: 20000 }).toMatch(/00:0[2-9] · [\d.]+ (kB|KB|MB|B|KiB|MiB)/);
    await rec.click();
    await expect(rec).toHaveAttribute('data-recording', 'false', { timeout: 30000 });
    const toast = page.locator('.Toastify__toast', { hasText: /Saved .*\.mp4/ });
    await expect(toast.first()).toBeVisible({ timeout: 20000 });
    const text = await toast.first().innerText();
    const match = /Saved (\S+\.mp4): (\d+) frames/.exec(text);
    expect(match, text).toBeTruthy();
    const file = match![1];
    expect(file.startsWith(`${tmpPath}/demo-board-`)).toBe(true);
    expect(parseInt(match![2], 10)).toBeGreaterThan(10);
    const name = file.split('/').pop()!;
    await page.sidebar.openTab('filebrowser');
    await expect(page.locator('.jp-DirListing-item', { hasText: name })).toBeVisible({ timeout: 20000 });
    const info = await page.evaluate(async p => {
      const m = await (window as any).jupyterapp.serviceManager.contents.get(p, { content: false });
      return { type: m.type, size: m.size };
    }, file);
    expect(info.type).toBe('file');
    expect(info.size).toBeGreaterThan(1000);
  });

  test('dataset mode saves labelled frames with a key each', async ({ page, baseURL, tmpPath }) => {
    await page.filebrowser.openDirectory(tmpPath);
    const viewer = await openCamera(page, baseURL!, 'demo-board');
    await page.locator('.jp-RemoteDevice-datasetToggle:visible').click();
    const bar = page.locator('.jp-RemoteDevice-datasetBar:visible');
    await expect(bar).toBeVisible();
    await bar.locator('.jp-RemoteDevice-datasetLabel').fill('cup');
    await bar.locator('.jp-RemoteDevice-datasetSave').click();
    await expect(bar.locator('.jp-RemoteDevice-datasetCount')).toHaveAttribute('data-count', '1');
    await viewer.locator('.jp-RemoteDevice-stage').click();
    await page.keyboard.press('Space');
    await expect(bar.locator('.jp-RemoteDevice-datasetCount')).toHaveAttribute('data-count', '2');
    await page.keyboard.press('s');
    await expect(bar.locator('.jp-RemoteDevice-datasetCount')).toHaveAttribute('data-count', '3');
    const files = await page.evaluate(async p => {
      const m = await (window as any).jupyterapp.serviceManager.contents.get(p);
      return m.content.map((c: any) => c.name);
    }, `${tmpPath}/dataset/cup`);
    expect(files.length).toBe(3);
    for (const f of files) {
      expect(f).toMatch(/^cup_\d{8}-\d{6}-\d{3}_\d{4}\.jpg$/);
    }
  });
});

test.describe('Camera tools and notebooks', () => {
  test('"Insert in cell" puts the find_blobs thresholds into the active cell', async ({ page, baseURL }) => {
    await page.notebook.createNew('thresholds.ipynb');
    const nbTab = page.locator('.lm-TabBar-tab', { hasText: 'thresholds.ipynb' });
    await expect(nbTab).toBeVisible();
    await openCamera(page, baseURL!, 'replay-board');
    await page.locator('.jp-RemoteDevice-toolsToggle:visible').click();
    const tools = page.locator('.jp-RemoteDevice-tools:visible');
    const a = await atPixel(page, 90, 70);
    const b = await atPixel(page, 149, 109);
    await page.mouse.move(a.x, a.y);
    await page.mouse.down();
    await page.mouse.move(b.x, b.y, { steps: 6 });
    await page.mouse.up();
    await tools.locator('.jp-RemoteDevice-thresholdFromRegion').click();
    const tuple = (await tools.locator('.jp-RemoteDevice-thresholdTuple').textContent())!;
    expect(tuple).toMatch(/^\[\(\d+, \d+, -?\d+, -?\d+, -?\d+, -?\d+\)\]$/);
    await tools.locator('.jp-RemoteDevice-thresholdInsert').click();
    await expect(page.locator('.Toastify__toast', { hasText: 'Inserted the thresholds' }).first()).toBeVisible();
    await nbTab.click();
    await expect(page.locator('.jp-NotebookPanel:visible .jp-Cell .cm-content').first()).toContainText(tuple);
  });
});

test.describe('Record Camera from the palette', () => {
  test('"Record Camera…" records a frames folder of the given length', async ({ page, baseURL, tmpPath }) => {
    await page.filebrowser.openDirectory(tmpPath);
    await openCamera(page, baseURL!, 'replay-board'); // connected, so the dialog lists it
    await page.keyboard.press('Control+Shift+C');
    const input = page.locator('#modal-command-palette .lm-CommandPalette-input');
    await input.fill('Record Camera');
    await page
      .locator('#modal-command-palette .lm-CommandPalette-item', { hasText: 'Record Camera…' })
      .first()
      .click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toBeVisible();
    await dialog.locator('select.jp-RemoteDevice-recordDevice').selectOption({ label: 'replay-board' });
    await dialog.locator('select.jp-RemoteDevice-recordFormat').selectOption('frames');
    await dialog.locator('input.jp-RemoteDevice-recordSeconds').fill('1.5');
    await dialog.locator('input.jp-RemoteDevice-recordPath').fill(`${tmpPath}/palette-take`);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    const toast = page.locator('.Toastify__toast', { hasText: /Saved \S+palette-take: \d+ frames/ });
    await expect(toast.first()).toBeVisible({ timeout: 30000 });
    const files = await page.evaluate(async p => {
      const m = await (window as any).jupyterapp.serviceManager.contents.get(p);
      return m.content.map((c: any) => c.name).sort();
    }, `${tmpPath}/palette-take`);
    expect(files).toContain('frames.csv');
    expect(files.filter((f: string) => f.endsWith('.jpg')).length).toBeGreaterThanOrEqual(10); // 10 fps x 1.5 s
  });
});
