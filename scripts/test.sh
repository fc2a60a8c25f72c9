#!/usr/bin/env bash
# Install what the tests need, then run the lints (ruff, eslint, prettier --check) and every
# test: pytest, jest and Galata (Chromium).
# Usage: bash scripts/test.sh            (from anywhere; needs Python 3.9+, node 18+, npm)
set -euo pipefail
cd "$(dirname "$0")/.."

have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
  if have apt-get && [ "$(id -u)" = 0 ]; then
    [ -n "${JRD_APT_UPDATED:-}" ] || { apt-get update -qq; JRD_APT_UPDATED=1; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  else
    echo "missing $* and cannot apt-get install it here" >&2
  fi
}

# System packages: Debian's Chromium for Galata; openssl for the TLS test certificate.
[ -x /usr/bin/chromium ] || apt_install chromium
have openssl || apt_install openssl
have sshd || [ -x /usr/sbin/sshd ] || apt_install openssh-server
have ip || [ -x /usr/sbin/ip ] || [ -x /sbin/ip ] || apt_install iproute2  # mDNS tests run inside network namespaces

export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
export PIP_DISABLE_PIP_VERSION_CHECK=1

echo "== install (builds the labextension with npm) =="
python3 -m pip install -q ".[test]"

# Run every suite even when one fails; the exit code says whether all passed.
failed=()

echo "== configurable-http-proxy (npm; JupyterHub's proxy for tests/test_hub*.py and the hub Galata run) =="
# configurable-http-proxy 5 needs node >= 20; older nodes get the 4.x line.
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -ge 20 ]; then chp_version=5; else chp_version=4; fi
[ -x .hub-proxy/node_modules/.bin/configurable-http-proxy ] ||
  npm install --no-audit --no-fund --no-save --prefix .hub-proxy "configurable-http-proxy@$chp_version"
export PATH="$PWD/.hub-proxy/node_modules/.bin:$PATH"
configurable-http-proxy --version

echo "== board stacks (old Pythons with the rpyc of their day, for tests/test_old_rpyc.py and tests/test_board_matrix.py) =="
# Real board Pythons: pyenv's where present, else Debian's python3.X where the archive has it
# (Debian 12 has only 3.11); each stack is a venv in ~/.cache/jupyter-remote-device/board-venvs
# with rpyc from PyPI. A missing Python or a failed pip is not fatal: those tests skip, saying why.
for v in 3.6 3.7 3.8 3.9 3.10 3.11 3.12 3.13; do
  if ! python3 -c "import sys; sys.path.insert(0, 'tests'); import old_boards; sys.exit(old_boards.find_python('$v') is None)" 2>/dev/null; then
    if have apt-cache && apt-cache show "python$v" >/dev/null 2>&1; then apt_install "python$v" "python$v-venv"; fi
  fi
done
PYTHONPATH=$PWD python3 tests/old_boards.py --pillow 3.8:5.3.1 3.8:4.1.5 \
  3.6:3.4.4 3.7:5.3.1 3.8:6.0.2 3.9:4.1.5 3.9:5.3.1 3.9:6.0.2 3.10:4.1.5 3.10:5.3.1 3.10:6.0.2 3.11:4.1.5 3.11:5.3.1 \
  3.11:6.0.2 3.12:4.1.5 3.12:5.3.1 3.12:6.0.2 3.13:4.1.5 3.13:5.3.1 3.13:6.0.2 || true

echo "== lint (ruff, eslint, prettier --check) =="
# (re)install the npm packages when the lint tools are missing (an older node_modules)
[ -x node_modules/.bin/eslint ] && [ -x node_modules/.bin/prettier ] || npm ci --no-audit --no-fund
lint_failed=0
python3 -m ruff check . || lint_failed=1
npm run -s eslint:check || lint_failed=1    # eslint src (package.json eslintConfig), no warnings allowed
npm run -s prettier:check || lint_failed=1  # prettier --check src (.prettierrc)
[ "$lint_failed" = 0 ] || failed+=(lint)

echo "== jest =="
[ -d node_modules ] || npm ci --no-audit --no-fund
npm test -- --ci || failed+=(jest)

echo "== pytest =="
set +e
python3 -m pytest -p no:cacheprovider -W error::jupyter_server.utils.JupyterServerAuthWarning tests
rc=$?
set -e
if [ "$rc" = 5 ]; then echo "pytest: no tests collected"; rc=0; fi
[ "$rc" = 0 ] || failed+=(pytest)

echo "== galata =="
(cd ui-tests && npm ci --no-audit --no-fund && npx playwright test) || failed+=(galata)
echo "== galata through JupyterHub (configurable-http-proxy, users alice and bob) =="
(cd ui-tests && npx playwright test -c playwright.hub.config.js) || failed+=(galata-hub)

if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED suites: ${failed[*]}"
  exit 1
fi
echo "all suites passed"
