/**
 * Galata / Playwright configuration for the JupyterHub run: one hub
 * (hub_server.py: configurable-http-proxy, users alice and bob, each with a
 * single-user server with this extension under /user/NAME/, XSRF checks on)
 * and the browser logged in through the hub's login form.
 *
 *   npx playwright test -c playwright.hub.config.js
 *
 * JRD_UI_HUB_PORT (default 18890) is the proxy's port; PORT+1 answers when
 * both single-user servers are up.
 */
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const HUB_PORT = parseInt(process.env.JRD_UI_HUB_PORT || '18890', 10);
const HUB = `http://127.0.0.1:${HUB_PORT}`;
const CHROMIUM = process.env.JRD_CHROMIUM || '/usr/bin/chromium';

const launchOptions = {
  executablePath: CHROMIUM,
  args: [
    '--no-sandbox',
    '--disable-gpu',
    '--disable-dev-shm-usage',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-default-apps',
    '--no-first-run'
  ]
};

module.exports = {
  ...baseConfig,
  testDir: 'hub-tests',
  reporter: [['list'], ['html', { open: 'never', outputFolder: 'playwright-report-hub' }]],
  timeout: 120000,
  expect: { timeout: 30000 },
  workers: 1,
  fullyParallel: false,
  retries: process.env.CI ? 1 : 0,
  outputDir: 'test-results-hub',
  use: {
    ...baseConfig.use,
    launchOptions,
    video: 'off',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure'
  },
  projects: [
    {
      name: 'hub-login',
      testMatch: /login\.setup\.ts/,
      use: { baseURL: HUB }
    },
    {
      name: 'hub',
      testMatch: /.*\.hub\.ts/,
      dependencies: ['hub-login'],
      use: {
        baseURL: `${HUB}/user/alice`,
        storageState: 'hub-tests/.auth/alice.json'
      }
    }
  ],
  webServer: [
    {
      command: `python3 hub_server.py --port ${HUB_PORT}`,
      url: `http://127.0.0.1:${HUB_PORT + 1}/`,
      timeout: 240 * 1000,
      reuseExistingServer: !process.env.CI,
      // SIGTERM lets hub_server.py stop the hub, which stops the proxy and the
      // single-user servers (they run in their own process groups).
      gracefulShutdown: { signal: 'SIGTERM', timeout: 60000 },
      stdout: 'pipe',
      stderr: 'pipe'
    }
  ]
};
