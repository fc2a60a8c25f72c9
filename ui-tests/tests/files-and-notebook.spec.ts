/**
 * End-to-end: the board's files in the Devices sidebar (push from the file
 * browser, pull back, delete, drag-and-drop), the "SSH" tab of Add device…,
 * and a notebook whose code runs on the demo board. Same servers and
 * projects as remote-device.spec.ts (root URL and base_url=/jrd/).
 */
import { expect, galata, IJupyterLabPageFixture, test as base } from '@jupyterlab/galata';
import { APIRequestContext, Page } from '@playwright/test';
import * as path from 'path';

/** tmpPath under the project's base URL (see remote-device.spec.ts). */
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
const FILES = '#jp-remote-device-files';
const row = (name: string) => `${SIDEBAR} .jp-RemoteDevice-row[data-device-name="${name}"]`;
const fileRow = (p: string) => `${FILES} .jp-RemoteDevice-fileRow[data-path="${p}"]`;

interface IDevice {
  id: string;
  name: string;
  status: string;
  source: string;
  host: string;
  port: number;
  error: string | null;
}

async function deviceByName(request: APIRequestContext, baseURL: string, name: string): Promise<IDevice> {
  const res = await request.get(`${baseURL}/jupyter-remote-device/devices`);
  expect(res.ok()).toBeTruthy();
  const d = ((await res.json()).devices as IDevice[]).find(x => x.name === name);
  expect(d, `device ${name} is listed by the server`).toBeTruthy();
  return d!;
}

async function deviceFiles(request: APIRequestContext, baseURL: string, id: string, p = ''): Promise<string[]> {
  const res = await request.get(`${baseURL}/jupyter-remote-device/devices/${id}/files?path=${encodeURIComponent(p)}`);
  expect(res.ok()).toBeTruthy();
  return (await res.json()).entries.map((e: any) => e.name);
}

async function screenshot(page: Page, name: string, project: string, locator?: string) {
  const file = path.join(__dirname, '..', 'test-results', 'screenshots', `${project}-${name}.png`);
  if (locator) {
    await page.locator(locator).first().screenshot({ path: file });
  } else {
    await page.screenshot({ path: file });
  }
  return file;
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
    const res = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/session`, { data: {} });
    expect(res.ok(), `connect ${name}`).toBeTruthy();
  }
  await openSidebar(page);
  await expect(page.locator(row(name))).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
  return device;
}

/** Hover a tree row (its actions show on hover) and press one of them. */
async function fileAction(page: Page, p: string, action: string) {
  const item = page.locator(`${fileRow(p)} > .jp-RemoteDevice-fileItem`);
  await item.hover();
  await item.locator(`.jp-RemoteDevice-fileAction-${action}`).click();
}

test.describe('Device files', () => {
  test('push from the file browser, see it in the tree, pull it back, delete it', async ({
    page,
    baseURL,
    tmpPath
  }, testInfo) => {
    const device = await ensureConnected(page, baseURL!, 'demo-board');
    const name = `tree-${testInfo.project.name}-${Date.now()}.txt`;
    const text = 'line from the workspace\n'.repeat(2000);
    await page.contents.uploadContent(text, 'text', `${tmpPath}/${name}`);

    // Push through the file browser's context menu (helper-1's command).
    await page.sidebar.openTab('filebrowser');
    await page.filebrowser.refresh();
    await page.locator('.jp-DirListing-itemName', { hasText: name }).click({ button: 'right' });
    await page.locator('.lm-Menu-item', { hasText: 'Push to Device…' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Push to demo-board');
    await expect(dialog.locator('input')).toHaveValue(name);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator('.Toastify__toast', { hasText: `Pushed ${name}` })).toBeVisible({ timeout: 30000 });

    // The Files section of the Devices sidebar lists it (reloaded when the job ended).
    await openSidebar(page);
    await expect(page.locator(FILES)).toBeVisible();
    await expect(page.locator(`${FILES} .jp-RemoteDevice-filesDeviceName`)).toHaveText('demo-board');
    await expect(page.locator(fileRow(name))).toBeVisible({ timeout: 15000 });
    await expect(page.locator(`${fileRow(name)} .jp-RemoteDevice-fileSize`)).toHaveText('47 kB');
    await expect(page.locator(`${fileRow(name)} .jp-RemoteDevice-fileMtime`)).not.toBeEmpty();

    // A folder made from the tree, expanded lazily.
    const folder = `dir-${testInfo.project.name}-${Date.now()}`;
    await page.locator(`${FILES} .jp-RemoteDevice-files-mkdir`).click();
    await page.locator('.jp-Dialog input').fill(folder);
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(fileRow(folder))).toBeVisible();
    await page.locator(`${fileRow(folder)} > .jp-RemoteDevice-fileItem`).click();
    await expect(page.locator(fileRow(folder))).toHaveAttribute('aria-expanded', 'true');
    await expect(page.locator(`${fileRow(folder)} .jp-RemoteDevice-filesEmpty`)).toHaveText('(empty folder)');
    await screenshot(page, 'device-files', testInfo.project.name, SIDEBAR);
    await testInfo.attach('device-files', {
      body: await page.locator(SIDEBAR).screenshot(),
      contentType: 'image/png'
    });

    // Pull it back into the workspace under another name.
    const pulled = `${tmpPath}/pulled-${name}`;
    await fileAction(page, name, 'pull');
    await expect(page.locator('.jp-Dialog')).toContainText(`Pull ${name} to the workspace`);
    await page.locator('.jp-Dialog input').fill(pulled);
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(`${FILES} .jp-RemoteDevice-transfer[data-kind="pull"]`).first()).toBeVisible();
    await expect(page.locator('.Toastify__toast', { hasText: `Pulled ${name}` })).toBeVisible({ timeout: 30000 });
    const res = await page.request.get(`${baseURL}/api/contents/${pulled}?content=1&format=text&type=file`);
    expect(res.ok(), `GET ${pulled}`).toBeTruthy();
    expect((await res.json()).content).toBe(text);

    // Rename on the board.
    const renamed = `renamed-${name}`;
    await fileAction(page, name, 'rename');
    await page.locator('.jp-Dialog input').fill(renamed);
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(fileRow(renamed))).toBeVisible();
    await expect(page.locator(fileRow(name))).toHaveCount(0);

    // Delete asks first; Cancel keeps the file.
    await fileAction(page, renamed, 'delete');
    await expect(page.locator('.jp-Dialog')).toContainText(`Delete "${renamed}" from demo-board`);
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-reject').click();
    await expect(page.locator(fileRow(renamed))).toBeVisible();
    await fileAction(page, renamed, 'delete');
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(fileRow(renamed))).toHaveCount(0);
    expect(await deviceFiles(page.request, baseURL!, device.id)).not.toContain(renamed);

    // A folder goes recursively after confirming.
    await page.request.put(
      `${baseURL}/jupyter-remote-device/devices/${device.id}/files/content?path=${encodeURIComponent(`${folder}/inner.txt`)}`,
      { data: Buffer.from('x') }
    );
    await page.locator(`${FILES} .jp-RemoteDevice-files-refresh`).click();
    await expect(page.locator(fileRow(`${folder}/inner.txt`))).toBeVisible();
    // Pull the whole folder into the workspace.
    await fileAction(page, folder, 'pull');
    await expect(page.locator('.jp-Dialog')).toContainText(`Pull ${folder} (folder) to the workspace`);
    await page.locator('.jp-Dialog input').fill(`${tmpPath}/${folder}-copy`);
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator('.Toastify__toast', { hasText: `Pulled ${folder}` })).toBeVisible({ timeout: 30000 });
    const inner = await page.request.get(`${baseURL}/api/contents/${tmpPath}/${folder}-copy/inner.txt?content=1&format=text&type=file`);
    expect(inner.ok()).toBeTruthy();
    expect((await inner.json()).content).toBe('x');
    await fileAction(page, folder, 'delete');
    await expect(page.locator('.jp-Dialog')).toContainText('and everything in it');
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(fileRow(folder))).toHaveCount(0);
    expect(await deviceFiles(page.request, baseURL!, device.id)).not.toContain(folder);
  });

  test('"Push File…" picks files in the file dialog; the tree rows\' context menu pulls and deletes', async ({
    page,
    baseURL,
    tmpPath
  }, testInfo) => {
    const device = await ensureConnected(page, baseURL!, 'demo-board');
    const name = `dialog-${testInfo.project.name}-${Date.now()}.txt`;
    const text = 'picked in the file dialog\n'.repeat(100);
    await page.contents.uploadContent(text, 'text', `${tmpPath}/${name}`);

    // From the palette's command: JupyterLab's file dialog, not a typed path.
    await page.evaluate(() => {
      void (window as any).jupyterapp.commands.execute('remote-device:push-file');
    });
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog.locator('.jp-Dialog-header')).toContainText('Push to device');
    // it opens in the file browser's folder (the test's own); else go there
    await expect(dialog.locator('.jp-DirListing-item').first()).toBeVisible();
    if ((await dialog.locator('.jp-DirListing-item', { hasText: name }).count()) === 0) {
      await dialog.locator('.jp-DirListing-item', { hasText: tmpPath }).dblclick();
    }
    await dialog.locator('.jp-DirListing-item', { hasText: name }).click();
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    // which board, then where on it
    await expect(dialog.locator('.jp-Dialog-header')).toContainText(`Push ${name} to device`);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(dialog.locator('.jp-Dialog-header')).toContainText('Push to demo-board');
    await expect(dialog.locator('input')).toHaveValue(name);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator('.Toastify__toast', { hasText: `Pushed ${name}` })).toBeVisible({ timeout: 30000 });
    expect(await deviceFiles(page.request, baseURL!, device.id)).toContain(name);

    // Right-click a row of the board's files: Pull to Workspace… (a server job).
    await openSidebar(page);
    await expect(page.locator(fileRow(name))).toBeVisible({ timeout: 15000 });
    await page.locator(`${fileRow(name)} .jp-RemoteDevice-fileName`).click({ button: 'right' });
    await page.locator('.lm-Menu-item', { hasText: 'Pull to Workspace…' }).click();
    await expect(dialog).toContainText(`Pull ${name} to the workspace`);
    const pulled = `${tmpPath}/back-${name}`;
    await dialog.locator('input').fill(pulled);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator('.Toastify__toast', { hasText: `Pulled ${name}` })).toBeVisible({ timeout: 30000 });
    const res = await page.request.get(`${baseURL}/api/contents/${pulled}?content=1&format=text&type=file`);
    expect(res.ok(), `GET ${pulled}`).toBeTruthy();
    expect((await res.json()).content).toBe(text);

    // ... and Delete from Board…
    await page.locator(`${fileRow(name)} .jp-RemoteDevice-fileName`).click({ button: 'right' });
    await page.locator('.lm-Menu-item', { hasText: 'Delete from Board…' }).click();
    await expect(dialog).toContainText(`Delete "${name}" from demo-board`);
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(fileRow(name))).toHaveCount(0);
    expect(await deviceFiles(page.request, baseURL!, device.id)).not.toContain(name);
  });

  test('drag a file from the file browser onto a board folder pushes it there', async ({
    page,
    baseURL,
    tmpPath
  }, testInfo) => {
    const device = await ensureConnected(page, baseURL!, 'demo-board');
    const folder = `drop-${testInfo.project.name}-${Date.now()}`;
    const mk = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/files`, {
      data: { path: folder, type: 'directory' }
    });
    expect(mk.status()).toBe(201);
    const name = `dragged-${Date.now()}.py`;
    await page.contents.uploadContent('print("dropped")\n', 'text', `${tmpPath}/${name}`);
    // The Devices sidebar goes to the right so both panels show at once.
    await page.evaluate(() => {
      const app = (window as any).jupyterapp;
      const widget = Array.from(app.shell.widgets('left') as Iterable<any>).find(
        (w: any) => w.id === 'jp-remote-device-sidebar'
      );
      app.shell.move(widget, 'right');
      app.shell.activateById('jp-remote-device-sidebar');
    });
    try {
      await page.sidebar.openTab('filebrowser');
      await page.filebrowser.refresh();
      await expect(page.locator(SIDEBAR)).toBeVisible();
      // Made through REST: refresh the tree to see it.
      await page.locator(`${FILES} .jp-RemoteDevice-files-refresh`).click();
      const target = page.locator(`${fileRow(folder)} > .jp-RemoteDevice-fileItem`);
      await expect(target).toBeVisible({ timeout: 15000 });
      const source = page.locator('.jp-DirListing-item', { hasText: name });
      await expect(source).toBeVisible();
      const from = (await source.boundingBox())!;
      const to = (await target.boundingBox())!;
      await page.mouse.move(from.x + 20, from.y + from.height / 2);
      await page.mouse.down();
      // Past Lumino's drag threshold, then over the board folder.
      await page.mouse.move(from.x + 40, from.y + from.height / 2 + 10, { steps: 5 });
      await page.mouse.move(to.x + 30, to.y + to.height / 2, { steps: 10 });
      await expect(page.locator(fileRow(folder))).toHaveClass(/jp-mod-dropTarget/);
      await page.mouse.up();
      await expect(page.locator(`${FILES} .jp-RemoteDevice-transfer[data-kind="push"]`).first()).toBeVisible();
      await expect(page.locator('.Toastify__toast', { hasText: `Pushed ${name}` })).toBeVisible({ timeout: 30000 });
      await expect.poll(() => deviceFiles(page.request, baseURL!, device.id, folder), { timeout: 15000 }).toContain(name);
      // The tree shows it inside the (now expanded on refresh) folder.
      await target.click();
      await expect(page.locator(fileRow(`${folder}/${name}`))).toBeVisible();
      // Still in the workspace (a copy, not a move).
      expect((await page.request.get(`${baseURL}/api/contents/${tmpPath}/${name}`)).ok()).toBeTruthy();
    } finally {
      await page.evaluate(() => {
        const app = (window as any).jupyterapp;
        const widget = Array.from(app.shell.widgets('right') as Iterable<any>).find(
          (w: any) => w.id === 'jp-remote-device-sidebar'
        );
        if (widget) {
          app.shell.move(widget, 'left');
        }
      });
      await page.request.delete(
        `${baseURL}/jupyter-remote-device/devices/${device.id}/files?path=${encodeURIComponent(folder)}&recursive=true`
      );
    }
  });
});

test.describe('Device files (dark theme)', () => {
  test.use({
    mockSettings: {
      ...galata.DEFAULT_SETTINGS,
      '@jupyterlab/apputils-extension:themes': { theme: 'JupyterLab Dark' }
    }
  });

  test('the Files section follows the dark theme', async ({ page, baseURL }, testInfo) => {
    const device = await ensureConnected(page, baseURL!, 'demo-board');
    const folder = `dark-${testInfo.project.name}-${Date.now()}`;
    const api = `${baseURL}/jupyter-remote-device/devices/${device.id}/files`;
    await page.request.post(api, { data: { path: folder, type: 'directory' } });
    await page.request.put(`${api}/content?path=${encodeURIComponent(`${folder}/main.py`)}`, {
      data: Buffer.from('print("hi")\n')
    });
    try {
      await page.locator(`${FILES} .jp-RemoteDevice-files-refresh`).click();
      await page.locator(`${fileRow(folder)} > .jp-RemoteDevice-fileItem`).click();
      await expect(page.locator(fileRow(`${folder}/main.py`))).toBeVisible();
      await page.locator(`${fileRow(`${folder}/main.py`)} > .jp-RemoteDevice-fileItem`).hover();
      const luminance = await page.locator(FILES).evaluate(el => {
        const m = getComputedStyle(el).backgroundColor.match(/\d+(\.\d+)?/g)!.map(Number);
        return (0.2126 * m[0] + 0.7152 * m[1] + 0.0722 * m[2]) / 255;
      });
      expect(luminance).toBeLessThan(0.3);
      await screenshot(page, 'device-files-dark', testInfo.project.name, SIDEBAR);
    } finally {
      await page.request.delete(`${api}?path=${encodeURIComponent(folder)}&recursive=true`);
    }
  });
});

test.describe('Add device over SSH', () => {
  test('the SSH tab validates inline and adds an SSH board', async ({ page, baseURL }, testInfo) => {
    await openSidebar(page);
    await page.locator(`${SIDEBAR} .jp-Toolbar-item`, { hasText: 'Add device' }).click();
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('Add device');
    await dialog.locator('.jp-RemoteDevice-tab-ssh').click();
    const target = dialog.locator('input[name="ssh-ssh"]');
    await expect(target).toBeVisible();
    await expect(dialog.locator('input[name="host"]')).toBeHidden();
    await target.fill('pi@127.0.0.1:99999');
    await expect(dialog.locator('.jp-RemoteDevice-fieldError[data-field="ssh-ssh"]')).toContainText('65535');
    await expect(dialog.locator('.jp-Dialog-button.jp-mod-accept')).toBeDisabled();
    await dialog.locator('input[name="ssh-key"]').fill('id_rsa');
    await expect(dialog.locator('.jp-RemoteDevice-fieldError[data-field="ssh-key"]')).toContainText('file path');
    await dialog.locator('input[name="ssh-key"]').fill('');
    // Port 1 on loopback: nothing listens, so no login is attempted by adding.
    const name = `ssh-ui-${Date.now()}`;
    await target.fill('pi@127.0.0.1:1');
    await dialog.locator('input[name="ssh-name"]').fill(name);
    await dialog.locator('input[name="ssh-connect"]').uncheck();
    await expect(dialog.locator('.jp-Dialog-button.jp-mod-accept')).toBeEnabled();
    await screenshot(page, 'add-device-ssh', testInfo.project.name, '.jp-Dialog-content');
    await dialog.locator('.jp-Dialog-button.jp-mod-accept').click();
    await expect(page.locator(row(name))).toBeVisible();
    await expect(page.locator(`${row(name)} .jp-RemoteDevice-source`)).toContainText('SSH');
    const device = await deviceByName(page.request, baseURL!, name);
    expect(device.source).toBe('ssh');
    expect((device as any).ssh).toMatchObject({ user: 'pi', host: '127.0.0.1', port: 1 });
    // Boards added over SSH can be removed like the ones added by hand.
    await page.locator(`${row(name)} .jp-RemoteDevice-action-remove`).click();
    await page.locator('.jp-Dialog .jp-Dialog-button.jp-mod-warn').click();
    await expect(page.locator(row(name))).toHaveCount(0);
    const res = await page.request.get(`${baseURL}/jupyter-remote-device/devices/${device.id}`);
    expect(res.status()).toBe(404);
  });
});

test.describe('Notebook on the board', () => {
  test('a cell of an "Open notebook on device" notebook runs on the board', async ({ page, baseURL }, testInfo) => {
    const device = await ensureConnected(page, baseURL!, 'demo-board');
    // The agent's process id, asked through the REST exec (same agent process).
    const ex = await page.request.post(`${baseURL}/jupyter-remote-device/devices/${device.id}/exec`, {
      data: { code: 'import os; print(os.getpid())' }
    });
    expect(ex.ok()).toBeTruthy();
    const agentPid = (await ex.json()).stdout.trim();
    expect(agentPid).toMatch(/^\d+$/);

    await page.locator(`${row('demo-board')} .jp-RemoteDevice-action-notebook`).click();
    await expect(page.locator('.jp-NotebookPanel:visible')).toBeVisible({ timeout: 30000 });
    await expect(page.locator('.jp-NotebookPanel:visible .jp-KernelName')).toContainText('remote device', { timeout: 30000 });
    await page.notebook.setCell(0, 'code', 'import os\nprint(6*7, os.getpid())');
    await page.notebook.runCell(0);
    await expect
      .poll(async () => ((await page.notebook.getCellTextOutput(0)) ?? []).join(''), { timeout: 60000 })
      .toContain('42');
    const output = ((await page.notebook.getCellTextOutput(0)) ?? []).join('').trim();
    // Printed by the board's agent process, not by a local kernel.
    expect(output).toBe(`42 ${agentPid}`);
    await screenshot(page, 'notebook-on-board', testInfo.project.name);
    await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const widget = app.shell.currentWidget;
      const p = widget.context.path;
      await widget.sessionContext.shutdown();
      widget.dispose();
      await app.serviceManager.contents.delete(p);
    });
  });
});
