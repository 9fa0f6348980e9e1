"""ONNX Runtime called directly on a model graph: tasks/s of single-input runs with the same
threads as the executor's bench, for `make bench`'s executor-vs-ort ratio.

usage: ort_baseline.py MODEL.onnx HELDOUT.json [--threads N] [--seconds S] [--device cpu|cuda]
Prints one JSON object: {"tasks_per_s": ..., "runs": ..., "threads": ...}.
"""
import argparse
import json
import time

import numpy as np
import onnxruntime as ort

# The same providers as the executor: CUDA fails rather than falling back silently.
PROVIDERS = {"cpu": ["CPUExecutionProvider"], "cuda": ["CUDAExecutionProvider"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("model")
    ap.add_argument("heldout", help="JSON list of {pixels: [...]} items (the digits held-out set)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                    help="cuda: ONNX Runtime's CUDA provider (the onnxruntime-gpu wheel)")
    ap.add_argument("--seconds", type=float, default=1.0)
    a = ap.parse_args()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    sess = ort.InferenceSession(a.model, opts, providers=PROVIDERS[a.device])
    name = sess.get_inputs()[0].name
    with open(a.heldout) as f:
        items = json.load(f)
    inputs = [np.asarray(i["pixels"], dtype=np.float32).reshape(1, -1) for i in items]
    for x in inputs:  # warm-up
        sess.run(None, {name: x})
    runs = 0
    started = time.perf_counter()
    while time.perf_counter() - started < a.seconds:
        for x in inputs:
            sess.run(None, {name: x})
        runs += len(inputs)
    elapsed = time.perf_counter() - started
    print(json.dumps({"tasks_per_s": runs / elapsed, "runs": runs, "threads": a.threads}))


if __name__ == "__main__":
    main()
