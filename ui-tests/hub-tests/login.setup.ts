/**
 * Log alice and bob in through the hub's login form (DummyAuthenticator), follow the
 * OAuth round trip to their servers, and keep each browser state for the hub tests.
 */
import { expect, test as setup } from '@playwright/test';

const PASSWORD = 'classroom-password'; // tests/jrd_hub.py

for (const user of ['alice', 'bob']) {
  setup(`log ${user} in through the hub`, async ({ page }) => {
    await page.goto('/hub/login');
    await page.locator('input[name="username"]').fill(user);
    await page.locator('input[name="password"]').fill(PASSWORD);
    await page.locator('input[type="submit"], button[type="submit"]').first().click();
    await page.goto(`/user/${user}/lab`);
    await expect(page).toHaveURL(new RegExp(`/user/${user}/lab`));
    await page.locator('#jupyterlab-splash').waitFor({ state: 'detached', timeout: 90000 });
    await page.context().storageState({ path: `hub-tests/.auth/${user}.json` });
  });
}
