/**
 * End-to-end: a board file in JupyterLab's own editor through the `board:`
 * drive (open from the Files tree, tab `demo-board:path`, save back, the
 * "changed on disk" dialog when the board changed it meanwhile), "Run file on
 * device" with its output in a board console and Stop, and a notebook stored
 * on the board opened with the remote-device kernel.
 */
import { expect, galata, test as base } from '@jupyterlab/galata';
import { APIRequestContext } from '@playwright/test';
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
test.use({ autoGoto: true });

const SIDEBAR = '#jp-remote-device-sidebar';
const FILES = '#jp-remote-device-files';
const fileRow = (p: string) => `${FILES} .jp-RemoteDevice-fileRow[data-path="${p}"]`;
/** The tab of a board document by its full title "board:path" (boardfiles.ts). */
const tab = (label: string) => `.lm-DockPanel-tabBar .lm-TabBar-tab[data-jrd-path="${label}"]`;
const labelTab = (label: string) =>
  `.lm-DockPanel-tabBar .lm-TabBar-tab:has(.lm-TabBar-tabLabel:text-is("${label}"))`;

async function demoBoard(request: APIRequestContext, baseURL: string): Promise<string> {
  const res = await request.get(`${baseURL}/jupyter-remote-device/devices`);
  const d = (await res.json()).devices.find((x: any) => x.name === 'demo-board');
  if (d.status !== 'connected') {
    expect((await request.post(`${baseURL}/jupyter-remote-device/devices/${d.id}/session`, { data: {} })).ok()).toBeTruthy();
  }
  // kernels find its token in this server's saved boards file (its own Jupyter data folder,
  // playwright.config.js), written when the server started
  return d.id;
}

const content = (baseURL: string, id: string, p: string) =>
  `${baseURL}/jupyter-remote-device/devices/${id}/files/content?path=${encodeURIComponent(p)}`;

async function putOnBoard(request: APIRequestContext, baseURL: string, id: string, p: string, text: string) {
  const res = await request.put(content(baseURL, id, p), { data: Buffer.from(text) });
  expect(res.ok(), `PUT ${p}`).toBeTruthy();
}

async function readBoard(request: APIRequestContext, baseURL: string, id: string, p: string): Promise<string> {
  for (let attempt = 0; ; attempt++) {
    try {
      const res = await request.get(content(baseURL, id, p), { timeout: 10000 });
      expect(res.ok(), `GET ${p}`).toBeTruthy();
      return (await res.body()).toString('utf-8');
    } catch (error) {
      if (attempt >= 3) {
        throw error;
      }
    }
  }
}

async function openFilesRow(page: any, p: string) {
  const panel = page.locator(SIDEBAR);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  }
  await page.locator(`${FILES} .jp-RemoteDevice-files-refresh`).click();
  const parts = p.split('/');
  for (let i = 1; i < parts.length; i++) {
    const dir = parts.slice(0, i).join('/');
    const r = page.locator(fileRow(dir));
    if ((await r.getAttribute('aria-expanded')) !== 'true') {
      await r.locator('> .jp-RemoteDevice-fileItem').click();
    }
  }
  await page.locator(`${fileRow(p)} > .jp-RemoteDevice-fileItem`).dblclick();
}

async function setEditorText(page: any, text: string) {
  await page.evaluate((t: string) => {
    const w = (window as any).jupyterapp.shell.currentWidget;
    w.context.model.sharedModel.setSource(t);
  }, text);
}

test.describe('Board files in the editor', () => {
  test('open from the Files tree, edit, save; a change on the board raises "changed"', async ({ page, baseURL }) => {
    const id = await demoBoard(page.request, baseURL!);
    const dir = `edit-${Date.now()}`;
    await putOnBoard(page.request, baseURL!, id, `${dir}/main.py`, 'print("first")\n');
    await openFilesRow(page, `${dir}/main.py`);
    const editorTab = page.locator(tab(`demo-board:${dir}/main.py`));
    await expect(editorTab).toBeVisible();
    // the label stays the file name; the board and folder go in front of it (CSS)
    await expect(editorTab).toHaveAttribute('data-jrd-board', `demo-board:${dir}/`);
    await expect(editorTab.locator('.lm-TabBar-tabLabel')).toHaveText('main.py');
    const label = editorTab.locator('.lm-TabBar-tabLabel');
    expect(await label.evaluate(el => getComputedStyle(el, '::before').content)).toBe(`"demo-board:${dir}/"`);
    await expect(page.locator('.jp-FileEditor .cm-content')).toContainText('print("first")');

    await setEditorText(page, 'print("edited in JupyterLab")\n');
    await page.locator('.jp-FileEditor .cm-content').click();
    await page.keyboard.press('Control+s');
    await expect.poll(() => readBoard(page.request, baseURL!, id, `${dir}/main.py`)).toBe(
      'print("edited in JupyterLab")\n'
    );
    await expect(page.locator(`${tab(`demo-board:${dir}/main.py`)}.jp-mod-dirty`)).toHaveCount(0);

    // Someone changes it on the board; saving here asks first.
    await page.waitForTimeout(1500);
    await putOnBoard(page.request, baseURL!, id, `${dir}/main.py`, 'print("changed on the board")\n');
    await setEditorText(page, 'print("second edit")\n');
    await page.locator('.jp-FileEditor .cm-content').click();
    await page.keyboard.press('Control+s');
    const dialog = page.locator('.jp-Dialog');
    await expect(dialog).toContainText('has changed on disk');
    await dialog.locator('.jp-Dialog-button', { hasText: 'Overwrite' }).click();
    await expect.poll(() => readBoard(page.request, baseURL!, id, `${dir}/main.py`)).toBe('print("second edit")\n');
  });

});

test.describe('Board files: run and notebooks', () => {
  // Interrupting answers 204 without a body, which Galata's kernel tracking cannot parse:
  // these tests do not mock the kernels/sessions API and shut their kernels down themselves.
  test.use({ kernels: null, sessions: null });

  test('"Run file on device" shows the output in a board console and stops on interrupt', async ({ page, baseURL }) => {
    const id = await demoBoard(page.request, baseURL!);
    const dir = `run-${Date.now()}`;
    const script = [
      'import os, time',
      'print("running as", __name__, "in", os.path.basename(os.getcwd()))',
      'for i in range(600):',
      '    print("tick", i, flush=True)',
      '    time.sleep(0.1)',
      ''
    ].join('\n');
    await putOnBoard(page.request, baseURL!, id, `${dir}/main.py`, script);
    await openFilesRow(page, `${dir}/main.py`);
    await expect(page.locator(tab(`demo-board:${dir}/main.py`))).toBeVisible();
    await expect(page.locator('.jp-RemoteDevice-runFile').first()).toBeVisible();
    await page.locator('.jp-FileEditor .cm-content').click();
    await page.keyboard.press('F5');
    await expect(page.locator(labelTab('demo-board console'))).toBeVisible({ timeout: 30000 });
    const out = page.locator('.jp-CodeConsole .jp-OutputArea-output');
    await expect(out.filter({ hasText: `running as __main__ in ${dir}` })).toHaveCount(1, { timeout: 30000 });
    await expect(out.filter({ hasText: 'tick 3' })).toHaveCount(1, { timeout: 30000 });
    await page.evaluate(() => (window as any).jupyterapp.commands.execute('remote-device:stop-run'));
    await expect(page.locator('.jp-CodeConsole').getByText('KeyboardInterrupt').first()).toBeVisible({ timeout: 15000 });
    const text = await page.locator('.jp-CodeConsole').innerText();
    expect(text).not.toContain('tick 599');
    // the agent's cwd is back where it was (the script ran in its own folder)
    await page.evaluate(async () => {
      const app = (window as any).jupyterapp;
      const w = app.shell.currentWidget;
      await w.sessionContext.shutdown();
      w.dispose();
    });
  });

  test('a notebook stored on the board opens on its kernel', async ({ page, baseURL }) => {
    const id = await demoBoard(page.request, baseURL!);
    const name = `nb-${Date.now()}.ipynb`;
    const nb = {
      cells: [{ cell_type: 'code', metadata: {}, execution_count: null, outputs: [], source: 'from jupyter_remote_device.agent import files\nprint("root", files.ROOT)' }],
      metadata: {},
      nbformat: 4,
      nbformat_minor: 5
    };
    await putOnBoard(page.request, baseURL!, id, name, JSON.stringify(nb));
    await openFilesRow(page, name);
    await expect(page.locator(tab(`demo-board:${name}`))).toBeVisible();
    await expect(page.locator('.jp-NotebookPanel-toolbar .jp-KernelName')).toHaveText(/remote device/i, {
      timeout: 30000
    });
    // the silent %connect goes out once the kernel is idle: run until the board answers
    await expect
      .poll(
        async () => {
          await page.notebook.runCell(0);
          return ((await page.notebook.getCellTextOutput(0)) ?? []).join('');
        },
        { timeout: 60000, intervals: [2000] }
      )
      .toContain('root /');
    await page.notebook.save();
    await page.evaluate(async () => {
      const w = (window as any).jupyterapp.shell.currentWidget;
      await w.sessionContext.shutdown();
    });
    const saved = JSON.parse(await readBoard(page.request, baseURL!, id, name));
    expect(saved.metadata.kernelspec.name).toBe('remote-device');
    expect(saved.metadata.remote_device.name).toBe('demo-board');
  });
});
