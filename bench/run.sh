#!/usr/bin/env bash
# make bench: every performance figure as one line, `bench: <name> <value> <unit> (target <op> <target>)`,
# each ratio measured against its baseline in the same run (these machines are noisy: never a
# pass/fail on absolute times). Not part of make test. Needs the catalogue (make models) for the
# language model lines. BENCH_SKIP_LLM=1 skips them, BENCH_SKIP_POSTGRES=1 the indexer on
# PostgreSQL.
#
# BENCH_DEVICE=cuda (on a machine with an NVIDIA GPU, CUDA 13's driver and the package registry
# reachable) runs the inference lines on the GPU: the executor's benches load their models with
# the CUDA provider (`BENCH_DEVICE`, inference/benches/common), the ONNX Runtime baselines run
# with CUDAExecutionProvider, both from the onnxruntime-gpu wheel (bench/requirements-gpu.txt,
# .deps/bench-gpu-venv: its libonnxruntime.so and the NVIDIA runtime wheels it pulls), and each
# kind's sample answers from the GPU are judged by a CPU validator
# (`cross-device-false-positives-<model>`, teacher-forced-false-positives). The gas and indexer
# lines do not depend on the device and are skipped there.
set -euo pipefail
cd "$(dirname "$0")/.."
device=${BENCH_DEVICE:-cpu}
case $device in
  cpu | cuda) ;;
  *)
    echo "error: BENCH_DEVICE=$device: expected cpu or cuda" >&2
    exit 2
    ;;
esac
export BENCH_DEVICE=$device
tools/setup-npm.sh
export PATH="$PWD/tools/bin:$PWD/node_modules/.bin:$PATH"
if [[ $device == cuda ]]; then
  venv=.deps/bench-gpu-venv
  tools/setup-venv.sh $venv bench/requirements-gpu.txt python onnxruntime-gpu
  capi=$(echo $venv/lib/python3*/site-packages/onnxruntime/capi)
  export ORT_DYLIB_PATH="$PWD/$capi/libonnxruntime.so.1.31.1"
  # the CUDA provider library finds cudart, cuBLAS, cuDNN... from the nvidia-* wheels
  nvlibs=$(find "$PWD/$venv" -path '*/site-packages/nvidia/*' -type d -name lib | paste -sd:)
  export LD_LIBRARY_PATH="$PWD/$capi:$nvlibs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >&2; then
    echo "error: BENCH_DEVICE=cuda but no NVIDIA GPU is visible (nvidia-smi -L)" >&2
    exit 1
  fi
else
  venv=.deps/bench-venv
  tools/setup-ort.sh
  export ORT_DYLIB_PATH="$PWD/.deps/onnxruntime/libonnxruntime.so.1.31.1"
  tools/setup-venv.sh $venv bench/requirements.txt python onnxruntime
fi
py=$PWD/$venv/bin/python
echo "==> device: $device (ONNX Runtime: $ORT_DYLIB_PATH)" >&2

if [[ $device == cpu ]]; then
  echo "==> gas per task end to end (test/Gas.t.sol, isolated transactions)" >&2
  gas=$(forge test --match-test 'test_Gas_Batch(32_WithinDesignTarget|256)' -vv)
  for n in 32 256; do
    v=$(grep -E "batch$n end-to-end per task with tx cost:" <<<"$gas" | grep -oE '[0-9]+$')
    echo "bench: gas-per-task-$n $v gas (target <= 30000)"
  done
fi

echo "==> the executor's inference path vs ONNX Runtime called directly (digits, 1 thread)" >&2
raw=$(cargo bench -q -p inference --bench batch 2>/dev/null)
ours=$(grep -E '^bench-raw: digits-single ' <<<"$raw" | awk '{print $3}')
base=$("$py" bench/ort_baseline.py models/digits/digits.onnx \
  models/digits/heldout.json --threads 1 --seconds 2 --device "$device" | "$py" -c \
  'import json,sys; print(json.load(sys.stdin)["tasks_per_s"])')
python3 -c "o,b=$ours,$base; print(f'bench: executor-vs-ort-digits {o/b:.3f} ratio (target >= 0.97; executor {o:.0f} tasks/s, onnxruntime {b:.0f} tasks/s)')"
# the batching curve (batch 1/8/32/128: tasks/s and each task's p50/p99 latency with a backlog)
grep -E '^bench: ' <<<"$raw"

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
    base=$("$py" bench/ort_kinds_baseline.py ".deps/models/$m" \
      "$kinds_dir/$m.json" --threads 1 --seconds 2 --device "$device" | "$py" -c \
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
# each kind's batching curve, and on a GPU the CPU validator's verdicts on the GPU's answers
grep -E '^bench: ' <<<"$raw_kinds" || true

# The indexer (issue 15): backfill speed of 100,000 task lifecycles through the real ingestion
# code, then p99 latency of two REST routes under 64 connections from wrk (Debian's), and the
# peak RSS. indexer/benches/rest.rs serves until its stdin (a FIFO held open here) closes.
# The indexer on one backend ($1: sqlite, or postgres on tools/pg.sh's throwaway server; the
# PostgreSQL lines end in -postgres).
indexer_bench() {
  local backend=$1 sfx=""
  [[ $backend == postgres ]] && sfx=-postgres
  echo "==> the indexer on $backend: backfill of 100,000 tasks, REST p99 under 64 connections (wrk)" >&2
  rest_failed=()
  rest_raw=$kinds_dir/rest$sfx.out
  rest_fifo=$kinds_dir/rest$sfx.stdin
  wrk=${WRK_PATH:-wrk}
  rest_pid=""
  tools/setup-loadgen.sh >&2 || rest_failed+=(setup-loadgen)
  if ((${#rest_failed[@]} == 0)) &&
    cargo bench -q -p indexer --bench rest --no-run >&2 && mkfifo "$rest_fifo"; then
    DN_TEST_DB=$backend cargo bench -q -p indexer --bench rest -- --serve-secs 600 <"$rest_fifo" >"$rest_raw" &
    rest_pid=$!
    exec 3>"$rest_fifo"
    # the backfill takes a while on a busy machine: wait for the line, not a fixed time
    for _ in $(seq 1200); do
      if grep -q '^bench-raw: rest-listening ' "$rest_raw" 2>/dev/null || ! kill -0 "$rest_pid" 2>/dev/null; then
        break
      fi
      sleep 0.5
    done
  else
    rest_failed+=(cargo-bench-rest)
  fi
  backfill=$(grep -E '^bench-raw: indexer-backfill ' "$rest_raw" 2>/dev/null || true)
  if [[ -n $backfill ]]; then
    awk -v sfx="$sfx" '{print "bench: indexer-backfill" sfx " " $3 " events/s (target >= 20000)"}' <<<"$backfill"
    awk '{print "    (" $5 " events stored in " $7 " s)"}' <<<"$backfill" >&2
  else
    echo "error: indexer-backfill$sfx not measured" >&2
    rest_failed+=("indexer-backfill$sfx")
  fi
  listening=$(grep -E '^bench-raw: rest-listening ' "$rest_raw" 2>/dev/null || true)
  rest_url=$(awk '{print $3}' <<<"$listening")
  rest_node=$(awk '{print $4}' <<<"$listening")
  # wrk --latency: "99%  3.21ms" (us, ms or s) and "Requests/sec: 1234.56"; any socket error or
  # non-2xx answer leaves the figure unmeasured
  rest_wrk() {
    local out
    out=$("$wrk" -t2 -c64 -d10s --timeout 60s --latency "$1" 2>&1) || { echo "$out" >&2; return 1; }
    if grep -qE 'Non-2xx|Socket errors' <<<"$out"; then
      echo "$out" >&2
      return 1
    fi
    python3 -c '
import re, sys
out = sys.stdin.read()
if int(re.search(r"^\s*(\d+) requests in ", out, re.M).group(1)) == 0:
    sys.exit("wrk: no request answered within its run:\n" + out)
v, unit = re.search(r"^\s*99%\s+([0-9.]+)(us|ms|s|m)\s*$", out, re.M).groups()
rps = re.search(r"^Requests/sec:\s+([0-9.]+)", out, re.M).group(1)
print(float(v) * {"us": 1e-3, "ms": 1, "s": 1e3, "m": 6e4}[unit], float(rps))' <<<"$out"
  }
  for route in tasks node; do
    case $route in
      tasks) path="/tasks?limit=50" ;;
      node) path="/nodes/$rest_node" ;;
    esac
    r=""
    if [[ -n $rest_url && -n $rest_node ]]; then
      r=$(rest_wrk "$rest_url$path") || r=""
    fi
    if [[ -z $r ]]; then
      echo "error: rest-$route-p99$sfx not measured (GET $path at '${rest_url}')" >&2
      rest_failed+=("rest-$route-p99$sfx")
      continue
    fi
    read -r p99 rps <<<"$r"
    if python3 -c "import sys; sys.exit(0 if $p99 >= 2000 else 1)"; then
      echo "    (rest-$route-p99$sfx is a lower bound: wrk counts only the requests answered in its 10 s)" >&2
    fi
    python3 -c "print(f'bench: rest-$route-p99$sfx {$p99:.2f} ms (target < 10; {$rps:.0f} requests/s, 64 connections, 100000 tasks)')"
  done
  if [[ -n $rest_pid ]]; then
    exec 3>&- # EOF on the bench's stdin: it prints its peak RSS and exits
    wait "$rest_pid" || rest_failed+=(cargo-bench-rest)
  fi
  rss=$(grep -E '^bench-raw: indexer-rss ' "$rest_raw" 2>/dev/null | tail -1 | awk '{print $3}' || true)
  if [[ -n $rss ]]; then
    echo "bench: indexer-rss$sfx $rss MiB (target report; 100000 tasks indexed)"
  else
    echo "error: indexer-rss$sfx not measured" >&2
    rest_failed+=("indexer-rss$sfx")
  fi
  if ((${#rest_failed[@]})); then
    kinds_failed+=("${rest_failed[@]}")
  fi
}
if [[ $device == cpu ]]; then
  indexer_bench sqlite
fi
if [[ $device == cpu && "${BENCH_SKIP_POSTGRES:-0}" != 1 ]]; then
  if tools/setup-postgres.sh >&2 && tools/pg.sh start >/dev/null; then
    indexer_bench postgres
    tools/pg.sh stop
  else
    kinds_failed+=(postgres)
  fi
fi

if [[ "${BENCH_SKIP_LLM:-0}" != 1 ]]; then
  echo "==> the language model (SmolLM2): decode speed, the teacher-forced check vs generating" >&2
  tools/setup-models.sh >&2
  cargo bench -q -p inference --bench text_generation 2>/dev/null | grep -E '^bench: '

  # Generated tokens/s of the executor's text generation (the kind's Runner, greedy, 64 new
  # tokens, 1 thread) vs onnxruntime-genai's generator on the same graph, prompt ids and threads
  # (bench/genai_baseline.py writes its genai_config.json), their calls interleaved by the Rust
  # bench; the two must generate the same tokens.
  echo "==> the language model's generated tokens/s vs onnxruntime-genai (SmolLM2, 64 tokens, 1 thread)" >&2
  raw_llm=$(BENCH_LLM_DUMP="$kinds_dir/llm-task.json" \
    BENCH_LLM_BASELINE="$py $PWD/bench/genai_baseline.py $PWD/.deps/models/smollm2 --threads 1 --device $device" \
    cargo bench -q -p inference --bench llm_vs_genai) || kinds_failed+=(cargo-bench-llm_vs_genai)
  ours=$(grep -E '^bench-raw: llm-executor ' <<<"$raw_llm" || true)
  base=$(grep -E '^bench-raw: llm-baseline ' <<<"$raw_llm" || true)
  if [[ -z $ours || -z $base ]]; then
    echo "error: llm-vs-genai not measured (executor '${ours}', onnxruntime-genai '${base}')" >&2
    kinds_failed+=(llm-vs-genai)
  else
    python3 -c '
import sys
o, b = sys.argv[1].split(), sys.argv[2].split()
ours, n, o_first = float(o[2]), int(o[4]), float(o[6])
base, b_n, b_first, name, version, same = float(b[2]), int(b[4]), float(b[6]), b[8], b[9], b[10]
print(f"bench: llm-vs-genai {ours/base:.3f} ratio (target >= 0.95; executor {ours:.1f} tok/s, "
      f"{name} {version} {base:.1f} tok/s, {n} tokens, 1 thread)")
print(f"    (first token: executor {o_first*1e3:.0f} ms, {name} {b_first*1e3:.0f} ms)", file=sys.stderr)
if same != "same-tokens" or b_n != n:
    print(f"warning: llm-vs-genai: {name} generated {b_n} tokens, the executor {n}, not the same "
          "ones: the ratio compares different work", file=sys.stderr)
' "$ours" "$base"
  fi
fi

# Peak resident memory of one process holding the whole catalogue (every bundle under
# .deps/models loaded through kinds::load, one task run on each). With BENCH_SKIP_LLM=1 the
# catalogue is not built here: the line counts the bundles that are there.
echo "==> the executor's peak RSS with the whole catalogue loaded" >&2
if [[ "${BENCH_SKIP_LLM:-0}" != 1 ]]; then
  tools/setup-models.sh >&2 || kinds_failed+=(setup-models)
fi
raw_rss=$(cargo bench -q -p inference --bench catalogue_rss) || kinds_failed+=(cargo-bench-catalogue_rss)
rss=$(grep -E '^bench-raw: executor-rss ' <<<"$raw_rss" || true)
if [[ -n $rss ]]; then
  awk '{print "bench: executor-rss " $3 " MiB (target report; " $5 " bundles, " $7 " MiB of model files)"}' <<<"$rss"
else
  echo "error: executor-rss not measured" >&2
  kinds_failed+=(executor-rss)
fi

if ((${#kinds_failed[@]})); then
  echo "error: not measured: ${kinds_failed[*]}" >&2
  exit 1
fi
