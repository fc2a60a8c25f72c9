/**
 * A MaixPy3 board exactly as it ships (Python 3.8 with rpyc 5.3.1 serving a stock
 * ThreadedServer(SlaveService), see jupyter_server_test_config.py) connects from the sidebar,
 * which shows its Python and rpyc versions. Skipped where scripts/test.sh could not make that
 * board stack (no Python 3.8 on the machine).
 */
import { expect, test } from '@jupyterlab/galata';

const SIDEBAR = '#jp-remote-device-sidebar';
const ROW = `${SIDEBAR} .jp-RemoteDevice-row[data-device-name="maixpy3-board"]`;

test('a MaixPy3 board as it ships connects from the sidebar and shows its Python and rpyc', async ({
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
