"""ONNX Runtime called directly on a bundle's graph: tasks/s of one prepared task run again and
again, with the same threads as the executor's bench, for `make bench`'s executor-vs-ort ratios
of the kinds (minilm, efficientnet-lite0). Only the graph runs here (no tokenizing, no image
decoding): the input tensors are the ones `cargo bench -p inference --bench kinds` prepared and
wrote with BENCH_KINDS_DUMP=DIR.

usage: ort_kinds_baseline.py BUNDLE_DIR INPUTS.json [--threads N] [--seconds S] [--device cpu|cuda]
BUNDLE_DIR holds manifest.json; its part "model" is the graph. INPUTS.json is
{"name": {"dtype": "int64"|"float32", "shape": [...], "data": [...]}, ...}.
Prints one JSON object: {"tasks_per_s": ..., "runs": ..., "threads": ...}.
"""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort

# The same providers as the executor: CUDA fails rather than falling back silently.
PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("bundle")
    ap.add_argument("inputs")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: ONNX Runtime's CUDA provider (the onnxruntime-gpu wheel)")
    ap.add_argument("--seconds", type=float, default=2.0)
    a = ap.parse_args()
    with open(os.path.join(a.bundle, "manifest.json")) as f:
        manifest = json.load(f)
    graph = os.path.join(a.bundle, manifest["parts"]["model"]["path"])
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(graph, opts, providers=PROVIDERS[a.device])
    with open(a.inputs) as f:
        spec = json.load(f)
    feed = {
        name: np.asarray(t["data"], dtype=t["dtype"]).reshape(t["shape"])
        for name, t in spec.items()
    }
    for _ in range(20):  # warm-up
        sess.run(None, feed)
    runs = 0
    started = time.perf_counter()
    while time.perf_counter() - started < a.seconds:
        sess.run(None, feed)
        runs += 1
    elapsed = time.perf_counter() - started
    print(json.dumps({"tasks_per_s": runs / elapsed, "runs": runs, "threads": a.threads}))


if __name__ == "__main__":
    main()
