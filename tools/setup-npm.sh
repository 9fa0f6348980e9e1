#!/usr/bin/env bash
# Installs the pinned npm toolchain (forge/anvil/cast, solcjs, OpenZeppelin, forge-std) with
# `npm ci`, skipping the work when node_modules already matches package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.deepnode-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [[ -f $stamp && "$(cat $stamp)" == "$want" && -x node_modules/.bin/forge ]]; then
  exit 0
fi
echo "==> npm ci (forge, anvil, cast, solc, OpenZeppelin, forge-std)"
npm ci --no-audit --no-fund --loglevel=error
node_modules/.bin/forge --version | head -1
echo "$want" > "$stamp"
