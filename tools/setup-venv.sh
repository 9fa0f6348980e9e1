#!/usr/bin/env bash
# Creates (or leaves as is, when it already matches) a Python virtual environment with the pinned
# packages of a requirements file. The other setup scripts call it:
#   tools/setup-venv.sh VENV REQUIREMENTS PROGRAM PACKAGE
# VENV (.deps/...) is rebuilt when REQUIREMENTS' sha256 changed or VENV/bin/PROGRAM is missing;
# PACKAGE is the package whose version the last line reports.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$1 req=$2 program=$3 package=$4
stamp=$venv/.deepnode-requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/$program ]]; then
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
echo "==> $venv ready ($("$venv/bin/pip" show "$package" | grep ^Version))"
