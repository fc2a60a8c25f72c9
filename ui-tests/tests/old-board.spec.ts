/**
 * A MaixPy3 board exactly as it ships (Python 3.8 with rpyc 5.3.1 serving a stock
 * ThreadedServer(SlaveService), see jupyter_server_test_config.py) connects from the sidebar,
 * which shows its Python and rpyc versions. Skipped where scripts/test.sh could not make that
 * board stack (no Python 3.8 on the machine).
 */
import { expect, test as base } from '@jupyterlab/galata';
import * as path from 'path';

/** The test folder made with the full base URL (as remote-device.spec.ts does). */
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

const SIDEBAR = '#jp-remote-device-sidebar';
const ROW = `${SIDEBAR} .jp-RemoteDevice-row[data-device-name="maixpy3-board"]`;

test('old MaixPy3 board: sidebar connect shows Python and rpyc', async ({
  page,
  baseURL
}) => {
  const res = await page.request.get(`${baseURL}/jupyter-remote-device/devices`);
  expect(res.ok()).toBeTruthy();
  const devices: { id: string; name: string }[] = (await res.json()).devices;
  const board = devices.find(d => d.name === 'maixpy3-board');
  test.skip(!board, 'no Python 3.8 + rpyc 5.3.1 board stack here (scripts/test.sh makes it)');
  const panel = page.locator(SIDEBAR);
  if (!(await panel.isVisible())) {
    await page.locator('.jp-SideBar [data-id="jp-remote-device-sidebar"]').click();
  }
  await expect(page.locator(ROW)).toBeVisible();
  await page.locator(`${ROW} .jp-RemoteDevice-action-connect`).click();
  await expect(page.locator(ROW)).toHaveAttribute('data-status', 'connected', { timeout: 30000 });
  await expect(page.locator(`${ROW} [data-info="rpyc"]`)).toHaveText('5.3.1');
  await expect(page.locator(`${ROW} [data-info="python"]`)).toContainText('3.8.');
  await expect(page.locator(ROW)).toContainText('rpyc classic');
  await page.request.delete(`${baseURL}/jupyter-remote-device/devices/${board!.id}/session`);
});
