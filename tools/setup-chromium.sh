#!/usr/bin/env bash
# Installs Debian's chromium for the headless browser test of the staking web app (web/test/).
# Idempotent: does nothing when the browser is already there. `npx playwright install` cannot be
# used here (it downloads its own browser build); playwright-core drives this system chromium.
#
# The test launches it with (see web/test/staking.e2e.mjs):
#   --headless --no-sandbox --disable-gpu --disable-background-networking
#   --disable-component-update --disable-sync --no-first-run --disable-quic
#   and a fresh --user-data-dir per run.
set -euo pipefail

CHROMIUM=${CHROMIUM_PATH:-/usr/bin/chromium}

if [[ -x $CHROMIUM ]]; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-chromium: $CHROMIUM is missing and installing it needs root: run 'apt-get install -y chromium' as root" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-chromium: $CHROMIUM is missing and apt-get is not available; install chromium and set CHROMIUM_PATH" >&2
  exit 1
fi

echo "==> apt-get install chromium (headless browser for the web app test)"
export DEBIAN_FRONTEND=noninteractive
# A bare machine may have no package lists yet; refresh them when the package is unknown.
if ! apt-cache show chromium >/dev/null 2>&1; then
  echo "==> apt-get update"
  apt-get update -q
fi
if ! apt-get install -y -q --no-install-recommends chromium; then
  echo "==> retrying after apt-get update"
  apt-get update -q
  apt-get install -y -q --no-install-recommends chromium
fi

if [[ ! -x $CHROMIUM ]]; then
  echo "setup-chromium: apt-get finished but $CHROMIUM is still missing" >&2
  exit 1
fi
"$CHROMIUM" --version || true
