#!/usr/bin/env bash
# Gas per task end to end (single and batches of 32), settlement and rating figures, plus forge's
# gas report for every contract function. Deterministic (gas, not time). Figures go in the README.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-npm.sh
export PATH="$PWD/node_modules/.bin:$PATH"
echo "==> per-task and per-call gas (test/Gas.t.sol, isolated transactions)"
forge test --match-contract 'Gas' -vv | grep -vE "^(Compiling|No files|Solc|Compiler|Suite result|$)"
echo "==> forge gas report (every external function of the contracts, over the whole test suite)"
forge test --gas-report | grep -E "^[|╭╰]|Contract|Function" || true
