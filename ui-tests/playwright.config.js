/**
 * Galata / Playwright configuration: Debian's Chromium (no browser
 * download), one Jupyter server at the root URL and one under
 * base_url=/jrd/, each with its own loopback agents.
 */
const fs = require('fs');
const os = require('os');
const path = require('path');
const baseConfig = require('@jupyterlab/galata/lib/playwright-config');

const ROOT_PORT = parseInt(process.env.JRD_UI_PORT || '18888', 10);
const BASE_PORT = parseInt(process.env.JRD_UI_BASE_PORT || '18889', 10);
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

const server = (port, extra) =>
  `jupyter lab --config jupyter_server_test_config.py --ServerApp.port=${port} ${extra}`.trim();

// Each server (and the kernels it starts) has its own Jupyter data and config folders: the saved
// boards file (devices.json, which kernels read for tokens) is one per server, and nothing leaks
// into, or comes from, the JupyterLab of whoever runs the tests.
const ownDirs = name => ({
  ...process.env,
  JUPYTER_DATA_DIR: fs.mkdtempSync(
    path.join(os.tmpdir(), `jrd-ui-${name}-data-`)
  ),
  JUPYTER_CONFIG_DIR: fs.mkdtempSync(
    path.join(os.tmpdir(), `jrd-ui-${name}-config-`)
  )
});

module.exports = {
  ...baseConfig,
  reporter: [['list'], ['html', { open: 'never' }]],
  timeout: 90000,
  expect: { timeout: 20000 },
  workers: 1,
  fullyParallel: false,
  retries: process.env.CI ? 1 : 0,
  outputDir: 'test-results',
  use: {
    ...baseConfig.use,
    launchOptions,
    video: 'off',
    trace: 'retain-on-failure',
    screenshot: 'only-on-failure'
  },
  projects: [
    {
      name: 'root',
      use: { baseURL: `http://127.0.0.1:${ROOT_PORT}` }
    },
    {
      name: 'base-url',
      use: { baseURL: `http://127.0.0.1:${BASE_PORT}/jrd` }
    }
  ],
  webServer: [
    {
      command: server(ROOT_PORT, ''),
      env: ownDirs('root'),
      url: `http://127.0.0.1:${ROOT_PORT}/lab`,
      timeout: 120 * 1000,
      reuseExistingServer: !process.env.CI,
      stdout: 'pipe',
      stderr: 'pipe'
    },
    {
      command: server(BASE_PORT, '--ServerApp.base_url=/jrd/'),
      env: ownDirs('base-url'),
      url: `http://127.0.0.1:${BASE_PORT}/jrd/lab`,
      timeout: 120 * 1000,
      reuseExistingServer: !process.env.CI,
      stdout: 'pipe',
      stderr: 'pipe'
    }
  ]
};
