#!/usr/bin/env bash
# Creates .deps/slither-venv with slither-analyzer and crytic-compile pinned, with all their
# dependencies, by tools/requirements-slither.txt. tools/slither.sh runs slither from it.
# Quick no-op when the venv already matches the requirements.
# The venv's bin/ also holds a `solc` shim from solc-select (a crytic-compile dependency) that would
# download native solc: never put it on PATH. tools/slither.sh calls bin/slither by its path.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.deps/slither-venv
req=tools/requirements-slither.txt
stamp=$venv/.deepnode-requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/slither ]]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "error: $python not found; install Python 3.10+ (or set PYTHON=/path/to/python3)" >&2
  exit 1
fi
echo "==> creating $venv with $req"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "==> $venv ready (slither-analyzer $("$venv/bin/pip" show slither-analyzer | sed -n 's/^Version: //p')," \
  "crytic-compile $("$venv/bin/pip" show crytic-compile | sed -n 's/^Version: //p'))"
