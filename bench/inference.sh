#!/usr/bin/env bash
# ONNX Runtime throughput of the digits model, one task per call vs batched calls (release build,
# one intra-op thread); prints ratios against the single-task baseline measured in the same run.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup-ort.sh
export ORT_DYLIB_PATH="$PWD/.deps/onnxruntime/libonnxruntime.so.1.31.1"
cargo bench -p inference --bench batch
# The language model: prefill/decode tokens/s and the teacher-forced check's cost vs generating.
tools/setup-models.sh
cargo bench -p inference --bench text_generation
