"""onnxruntime-genai's generator on a text-generation bundle's graph: generated tokens/s of one
greedy answer, with the same prompt ids, token budget and threads as the executor's bench, for
`make bench`'s llm-vs-genai ratio. The task is the one `cargo bench -p inference --bench
llm_vs_genai` wrote with BENCH_LLM_DUMP=FILE: {"prompt_ids": [...], "max_tokens": n,
"token_ids": [...]} (token_ids: what the executor generated, compared here).

usage: genai_baseline.py BUNDLE_DIR TASK.json [--threads N] [--runs R] [--serve]
BUNDLE_DIR holds manifest.json; its part "model" is the decoder graph (input_ids and past_*
tensors in, logits and present_* out) and its params describe the KV cache (num_layers,
num_kv_heads, head_dim), the vocabulary and the stop tokens. The genai_config.json that
onnxruntime-genai needs is written into a temporary folder next to a symlink of the graph.
One warm-up answer first, compared with the executor's tokens (a warning on stderr when they
differ). Then it prints one JSON object: {"tokens_per_s": ..., "first_token_s": ..., "tokens":
n, "same_tokens": true|false, "threads": N, "version": ...}, the medians of R timed answers (the
whole call, prompt and decode, as the executor's figure) and of R one-token answers.
With --serve (what the Rust bench uses, to interleave its runs with this baseline's on a noisy
machine) it prints that object without the figures, then answers each stdin line "answer" or
"first" with one timed call: {"secs": ...}.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import onnxruntime as ort
import onnxruntime_genai as og


def kv_names(names: set, prefix: str, kind: str, layers: int) -> str:
    """The genai name pattern (with %d) of the graph's per-layer KV tensors."""
    for pattern in (f"{prefix}_{kind}_%d", f"{prefix}_key_values.%d.{kind}", f"{prefix}.%d.{kind}"):
        if all(pattern % i in names for i in range(layers)):
            return pattern
    sys.exit(f"genai_baseline: the graph has no {prefix} {kind} tensors of {layers} layers: {sorted(names)[:6]}...")


def genai_config(manifest: dict, graph: str, threads: int, device: str = "cpu") -> dict:
    p = manifest["params"]
    layers = p["num_layers"]
    # Only the names: no optimization, so that opening the graph is quick.
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    sess = ort.InferenceSession(graph, opts, providers=["CPUExecutionProvider"])
    inputs = {i.name for i in sess.get_inputs()}
    outputs = {o.name for o in sess.get_outputs()}
    del sess
    if "input_ids" not in inputs or "logits" not in outputs:
        sys.exit(f"genai_baseline: the graph takes {sorted(inputs)[:4]}..., gives {sorted(outputs)[:4]}...")
    decoder_inputs = {
        "input_ids": "input_ids",
        "past_key_names": kv_names(inputs, "past", "key", layers),
        "past_value_names": kv_names(inputs, "past", "value", layers),
    }
    # The bundle's graph derives positions and the mask from the cache's length; a graph that
    # takes them gets them from genai.
    for name in ("attention_mask", "position_ids"):
        if name in inputs:
            decoder_inputs[name] = name
    stop = p["stop_token_ids"]
    return {
        "model": {
            "type": "llama",
            "context_length": p["context_length"],
            "vocab_size": p["vocab_size"],
            "eos_token_id": stop,
            "pad_token_id": stop[0],
            "decoder": {
                "filename": os.path.basename(graph),
                "session_options": {
                    "log_id": "onnxruntime-genai",
                    "intra_op_num_threads": threads,
                    "inter_op_num_threads": 1,
                    "provider_options": [{"cuda": {}}] if device == "cuda" else [],
                },
                # hidden_size and num_attention_heads only matter to graphs fed embeddings
                "head_size": p["head_dim"],
                "num_key_value_heads": p["num_kv_heads"],
                "num_hidden_layers": layers,
                "inputs": decoder_inputs,
                "outputs": {
                    "logits": "logits",
                    "present_key_names": kv_names(outputs, "present", "key", layers),
                    "present_value_names": kv_names(outputs, "present", "value", layers),
                },
            },
        },
        # Greedy; the graph concatenates past and new keys, so no shared fixed-size buffer.
        "search": {
            "do_sample": False,
            "num_beams": 1,
            "max_length": p["context_length"],
            "past_present_share_buffer": False,
        },
    }


def generate(model, prompt: list, max_tokens: int) -> tuple:
    """One greedy answer: its tokens (the stop token that ended it included) and its seconds."""
    params = og.GeneratorParams(model)
    params.set_search_options(max_length=len(prompt) + max_tokens, do_sample=False)
    started = time.perf_counter()
    gen = og.Generator(model, params)
    gen.append_tokens(prompt)
    out = []
    while not gen.is_done():
        gen.generate_next_token()
        out.append(int(gen.get_next_tokens()[0]))
    return out, time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bundle")
    ap.add_argument("task")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--serve", action="store_true")
    a = ap.parse_args()
    with open(os.path.join(a.bundle, "manifest.json")) as f:
        manifest = json.load(f)
    with open(a.task) as f:
        task = json.load(f)
    graph = os.path.abspath(os.path.join(a.bundle, manifest["parts"]["model"]["path"]))
    with tempfile.TemporaryDirectory() as tmp:
        os.symlink(graph, os.path.join(tmp, os.path.basename(graph)))
        if os.path.exists(graph + ".data"):  # external weights, when the graph has them
            os.symlink(graph + ".data", os.path.join(tmp, os.path.basename(graph) + ".data"))
        with open(os.path.join(tmp, "genai_config.json"), "w") as f:
            json.dump(genai_config(manifest, graph, a.threads, a.device), f, indent=1)
        model = og.Model(tmp)
    prompt, max_tokens = task["prompt_ids"], task["max_tokens"]
    tokens, _ = generate(model, prompt, max_tokens)  # warm-up
    same = tokens == task["token_ids"]
    if not same:
        n = next((i for i, (x, y) in enumerate(zip(tokens, task["token_ids"])) if x != y), None)
        print(
            f"warning: onnxruntime-genai generated {len(tokens)} tokens, the executor "
            f"{len(task['token_ids'])}; they first differ at token {n}",
            file=sys.stderr,
        )
    summary = {"tokens": len(tokens), "same_tokens": same, "threads": a.threads, "version": og.__version__}

    def timed(what: str) -> float:
        if what == "first":
            return generate(model, prompt, 1)[1]
        if what != "answer":
            sys.exit(f"genai_baseline: unknown command {what!r} (answer or first)")
        again, secs = generate(model, prompt, max_tokens)
        if again != tokens:
            sys.exit("genai_baseline: greedy decoding gave two different answers to one task")
        return secs

    if a.serve:
        print(json.dumps(summary), flush=True)
        for line in sys.stdin:
            print(json.dumps({"secs": timed(line.strip())}), flush=True)
        return
    rates, firsts = [], []
    for _ in range(a.runs):
        firsts.append(timed("first"))
        rates.append(len(tokens) / timed("answer"))
    summary.update(tokens_per_s=statistics.median(rates), first_token_s=statistics.median(firsts))
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
