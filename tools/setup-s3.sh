#!/usr/bin/env bash
# Creates .deps/s3-venv with moto[server] (a local S3-compatible server) pinned, with all its
# dependencies, by blobstore/requirements-s3.txt. blobstore/tests/s3.rs starts moto_server from it.
# Quick no-op when the venv already matches the requirements.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=.deps/s3-venv
req=blobstore/requirements-s3.txt
stamp=$venv/.deepnode-requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && -x $venv/bin/moto_server ]]; then
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
echo "==> $venv ready ($("$venv/bin/pip" show moto | grep ^Version))"
