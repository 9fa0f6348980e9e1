#!/usr/bin/env bash
# make bench: every performance figure as one line, `bench: <name> <value> <unit> (target <op> <target>)`,
# each ratio measured against its baseline in the same run (these machines are noisy: never a
# pass/fail on absolute times). Not part of make test. Needs the catalogue (make models) for the
# language model lines. BENCH_SKIP_LLM=1 skips them.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-npm.sh
tools/setup-ort.sh
export PATH="$PWD/tools/bin:$PWD/node_modules/.bin:$PATH"
export ORT_DYLIB_PATH="$PWD/.deps/onnxruntime/libonnxruntime.so.1.31.1"
tools/setup-venv.sh .deps/bench-venv bench/requirements.txt python onnxruntime

echo "==> gas per task end to end (test/Gas.t.sol, isolated transactions)" >&2
gas=$(forge test --match-test 'test_Gas_Batch(32_WithinDesignTarget|256)' -vv)
for n in 32 256; do
  v=$(grep -E "batch$n end-to-end per task with tx cost:" <<<"$gas" | grep -oE '[0-9]+$')
  echo "bench: gas-per-task-$n $v gas (target <= 30000)"
done

echo "==> the executor's inference path vs ONNX Runtime called directly (digits, 1 thread)" >&2
raw=$(cargo bench -q -p inference --bench batch 2>/dev/null)
ours=$(grep -E '^bench-raw: digits-single ' <<<"$raw" | awk '{print $3}')
base=$(.deps/bench-venv/bin/python bench/ort_baseline.py models/digits/digits.onnx \
  models/digits/heldout.json --threads 1 --seconds 2 | .deps/bench-venv/bin/python -c \
  'import json,sys; print(json.load(sys.stdin)["tasks_per_s"])')
python3 -c "o,b=$ours,$base; print(f'bench: executor-vs-ort-digits {o/b:.3f} ratio (target >= 0.97; executor {o:.0f} tasks/s, onnxruntime {b:.0f} tasks/s)')"
for b in 8 32 128; do
  r=$(grep -E "^bench-raw: digits-batch-$b " <<<"$raw" | awk '{print $3}')
  python3 -c "print(f'bench: digits-batch-$b {$r/$ours:.2f} ratio (target report; vs one task per call)')"
done

# The kinds (embeddings, image classification): the runner's whole task path (text or JPEG bytes
# in, canonical JSON out) vs ONNX Runtime running the bundle's graph on the same prepared tensors
# (which the Rust bench writes). A model that cannot be measured says so on stderr and fails the
# run at the end, without hiding the other lines.
echo "==> the kinds' task path vs ONNX Runtime called directly (minilm, efficientnet-lite0, 1 thread)" >&2
kinds_failed=()
kinds_dir=$(mktemp -d)
trap 'rm -rf "$kinds_dir"' EXIT
DN_MODELS="minilm efficientnet-lite0" tools/setup-models.sh >&2 || kinds_failed+=(setup-models)
raw_kinds=$(BENCH_KINDS_DUMP="$kinds_dir" cargo bench -q -p inference --bench kinds) ||
  kinds_failed+=(cargo-bench-kinds)
for m in minilm efficientnet-lite0; do
  ours=$(grep -E "^bench-raw: $m " <<<"$raw_kinds" | awk '{print $3}' || true)
  share=$(grep -E "^bench-raw: $m-preprocess-share " <<<"$raw_kinds" | awk '{print $3}' || true)
  base=""
  if [[ -n $ours && -f $kinds_dir/$m.json ]]; then
    base=$(.deps/bench-venv/bin/python bench/ort_kinds_baseline.py ".deps/models/$m" \
      "$kinds_dir/$m.json" --threads 1 --seconds 2 | .deps/bench-venv/bin/python -c \
      'import json,sys; print(json.load(sys.stdin)["tasks_per_s"])') || base=""
  fi
  if [[ -z $ours || -z $base ]]; then
    echo "error: executor-vs-ort-$m not measured (executor '${ours}', onnxruntime '${base}')" >&2
    kinds_failed+=("$m")
    continue
  fi
  python3 -c "o,b=$ours,$base; print(f'bench: executor-vs-ort-$m {o/b:.3f} ratio (target >= 0.97; executor {o:.0f} tasks/s, onnxruntime {b:.0f} tasks/s)')"
  echo "    ($m: pre-processing is ${share:-?} of a task through the executor)" >&2
done

if [[ "${BENCH_SKIP_LLM:-0}" != 1 ]]; then
  echo "==> the language model (SmolLM2): decode speed, the teacher-forced check vs generating" >&2
  tools/setup-models.sh >&2
  cargo bench -q -p inference --bench text_generation 2>/dev/null | grep -E '^bench: '
fi

if ((${#kinds_failed[@]})); then
  echo "error: not measured: ${kinds_failed[*]}" >&2
  exit 1
fi
