#!/usr/bin/env bash
# Installs the staking page's pinned npm packages (npm ci, skipped when web/package-lock.json is
# unchanged) and bundles web/src into web/dist with esbuild (ABIs come from forge's out/).
set -euo pipefail
cd "$(dirname "$0")/../web"
stamp=node_modules/.deepnode-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ ! -f $stamp || "$(cat $stamp)" != "$want" ]]; then
  echo "==> npm ci (web: viem, esbuild, playwright-core)"
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > "$stamp"
fi
echo "==> building the staking page (web/dist)"
npm run --silent build
