#!/usr/bin/env bash
# Creates .deps/openai-venv with the official OpenAI Python client pinned, with all its
# dependencies, by gateway/requirements-openai.txt. devnet/tests/gateway_e2e.rs runs gateway/tests/openai_client.py with it.
# Quick no-op when the venv already matches the requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.deps/openai-venv
req=gateway/requirements-openai.txt
stamp=$venv/.deepnode-requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/python ]]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "error: $python not found; install Python 3 (or set PYTHON=/path/to/python3)" >&2
  exit 1
fi
echo "==> creating $venv with $req"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
echo "$want" > "$stamp"
echo "==> $venv ready ($("$venv/bin/pip" show openai | grep ^Version))"
