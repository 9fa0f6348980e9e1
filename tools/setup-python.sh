#!/usr/bin/env bash
# Creates .deps/pyvenv with the pinned packages of models/requirements.txt (scikit-learn, skl2onnx,
# onnx, onnxruntime, numpy). Only needed to re-train the bundled models; skips when up to date.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.deps/pyvenv
stamp=$venv/.deepnode-requirements.sha256
want=$(sha256sum models/requirements.txt | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/python ]]; then
  exit 0
fi
python=${PYTHON:-python3}
if ! command -v "$python" >/dev/null; then
  echo "error: $python not found; install Python 3.11 (or set PYTHON=/path/to/python3)" >&2
  exit 1
fi
echo "==> creating $venv with models/requirements.txt"
"$python" -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check -r models/requirements.txt
echo "$want" > "$stamp"
echo "==> $venv ready ($("$venv/bin/python" --version))"
