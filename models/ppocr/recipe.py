#!/usr/bin/env python3
"""Builds the `pp-ocrv4` OCR bundle from the pinned PyPI package rapidocr-onnxruntime.

The package ships PaddleOCR's PP-OCRv4 text detector (DB) and text recognizer (SVTR-LCNet, CTC)
as ONNX graphs, plus config.yaml with their pre/post-processing settings. This recipe copies the
two graphs unchanged (parts `detector`, `recognizer`), writes the recognizer's character list
(ONNX metadata key `character`) to `characters.txt` the way rapidocr builds it (CTC blank at
index 0, the 6,623 characters, then " "), and checks the whole pipeline -- a numpy copy of what
inference/src/kinds/ocr.rs does -- on the rendered samples in models/ppocr/samples/.
The angle classifier (ch_ppocr_mobile_v2.0_cls) is not used: see MODEL_CARD.md.

Usage (from the repo root): .deps/bundles-venv/bin/python models/ppocr/recipe.py --out DIR
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import bundlelib  # noqa: E402
from bundlelib import log  # noqa: E402

PACKAGE = "rapidocr-onnxruntime"
VERSION = "1.4.4"
WHEEL_SHA256 = "971d7d5f223a7a808662229df1ef69893809d8457d834e6373d3854bc1782cbf"
PREFIX = "rapidocr_onnxruntime/models/"
DET_FILE = "ch_PP-OCRv4_det_infer.onnx"
REC_FILE = "ch_PP-OCRv4_rec_infer.onnx"
HERE = Path(__file__).resolve().parent

# Hand-written decimals (bundlelib.write_bundle: never computed floats). Values from the
# package's config.yaml unless said otherwise; MODEL_CARD.md explains each.
PARAMS = {
    "channel_order": "bgr",  # PaddleOCR models are trained on OpenCV (BGR) images
    "det_limit_side_len": 960,  # longer side limit (PaddleOCR's limit_type "max" default)
    "det_thresh": 0.3,
    "det_box_thresh": 0.5,
    "det_unclip_ratio": 2.5,  # config.yaml: 1.6, for rotated boxes; axis-aligned crops read better wider
    "det_min_size": 3,
    "det_max_candidates": 1000,  # boxes kept (scan order) before sorting, bounds the sort
    "det_mean": [0.5, 0.5, 0.5],
    "det_std": [0.5, 0.5, 0.5],
    "rec_height": 48,
    "rec_min_width": 320,
    "rec_max_width": 2048,
    "rec_mean": 0.5,
    "rec_std": 0.5,
    "text_score": 0.5,
    "line_tolerance": 10,
    "max_pixels": 16777216,  # 4096 x 4096
    "max_lines": 100,
}
VERIFY = {"rule": "edit-distance", "max_ratio": 0.02}


# ---------------------------------------------------------------------------------------------
# The pipeline (the same steps, in the same order, as inference/src/kinds/ocr.rs)


def resize_bilinear(img: np.ndarray, out_w: int, out_h: int) -> np.ndarray:
    """OpenCV INTER_LINEAR geometry (half-pixel centres, edge clamp) on an [H, W, C] array; f32 out."""
    h, w = img.shape[:2]

    def axis(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scale = n_in / n_out
        f = (np.arange(n_out, dtype=np.float64) + 0.5) * scale - 0.5
        i0 = np.floor(f).astype(np.int64)
        a = (f - i0).astype(np.float32)
        a[i0 < 0] = 0.0
        i0 = np.clip(i0, 0, n_in - 1)
        a[i0 >= n_in - 1] = 0.0
        i1 = np.minimum(i0 + 1, n_in - 1)
        return i0, i1, a

    x0, x1, ax = axis(out_w, w)
    y0, y1, ay = axis(out_h, h)
    src = img.astype(np.float32)
    top = src[y0][:, x0] * (1 - ax)[None, :, None] + src[y0][:, x1] * ax[None, :, None]
    bot = src[y1][:, x0] * (1 - ax)[None, :, None] + src[y1][:, x1] * ax[None, :, None]
    return top * (1 - ay)[:, None, None] + bot * ay[:, None, None]


def round_half_up(v: float) -> int:
    return int(math.floor(v + 0.5))


def det_size(h: int, w: int, limit: int) -> tuple[int, int]:
    ratio = limit / max(h, w) if max(h, w) > limit else 1.0
    rh, rw = int(h * ratio), int(w * ratio)
    return max(32, (rh + 16) // 32 * 32), max(32, (rw + 16) // 32 * 32)


def components(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Bounding boxes (x0, y0, x1, y1, inclusive) of the 8-connected components of `mask`, in
    row-major order of each component's first pixel."""
    h, w = mask.shape
    seen = np.zeros_like(mask, dtype=bool)
    boxes = []
    ys, xs = np.nonzero(mask)
    for sy, sx in zip(ys.tolist(), xs.tolist()):
        if seen[sy, sx]:
            continue
        seen[sy, sx] = True
        stack = [(sy, sx)]
        x0 = x1 = sx
        y0 = y1 = sy
        while stack:
            y, x = stack.pop()
            x0, x1, y0, y1 = min(x0, x), max(x1, x), min(y0, y), max(y1, y)
            for ny in (y - 1, y, y + 1):
                if ny < 0 or ny >= h:
                    continue
                for nx in (x - 1, x, x + 1):
                    if 0 <= nx < w and mask[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        stack.append((ny, nx))
        boxes.append((x0, y0, x1, y1))
    return boxes


def detect(det, rgb: np.ndarray, p: dict) -> list[tuple[int, int, int, int]]:
    """Text boxes [x0, y0, x1, y1) in image pixels, in reading order."""
    h, w = rgb.shape[:2]
    img = rgb[:, :, ::-1] if p["channel_order"] == "bgr" else rgb
    dh, dw = det_size(h, w, p["det_limit_side_len"])
    x = resize_bilinear(img, dw, dh)
    mean = np.array(p["det_mean"], np.float32)
    std = np.array(p["det_std"], np.float32)
    x = (x / np.float32(255.0) - mean) / std
    x = np.ascontiguousarray(x.transpose(2, 0, 1)[None], dtype=np.float32)
    prob = det.run(None, {det.get_inputs()[0].name: x})[0][0, 0]
    b = prob > p["det_thresh"]
    m = b.copy()  # 2x2 dilation (OpenCV anchor): a pixel is on if it or its up/left neighbours are
    m[1:, :] |= b[:-1, :]
    m[:, 1:] |= b[:, :-1]
    m[1:, 1:] |= b[:-1, :-1]
    # Summed-area table: sums down the columns, then along the rows (as ocr.rs, in f64).
    integral = np.zeros((dh + 1, dw + 1), np.float64)
    integral[1:, 1:] = prob.astype(np.float64).cumsum(axis=0).cumsum(axis=1)
    boxes = []
    for x0, y0, x1, y1 in components(m):
        bw, bh = x1 - x0, y1 - y0
        if min(bw, bh) < p["det_min_size"]:
            continue
        s = integral[y1 + 1, x1 + 1] - integral[y1 + 1, x0] - integral[y0, x1 + 1] + integral[y0, x0]
        if s / ((bw + 1) * (bh + 1)) < p["det_box_thresh"]:
            continue
        d = bw * bh * p["det_unclip_ratio"] / (2 * (bw + bh))
        if min(bw, bh) + 2 * d < p["det_min_size"] + 2:
            continue
        sx, sy = w / dw, h / dh
        bx0 = min(max(round_half_up((x0 - d) * sx), 0), w - 1)
        by0 = min(max(round_half_up((y0 - d) * sy), 0), h - 1)
        bx1 = min(max(round_half_up((x1 + d) * sx), 0), w - 1)
        by1 = min(max(round_half_up((y1 + d) * sy), 0), h - 1)
        if bx1 - bx0 <= 3 or by1 - by0 <= 3:
            continue
        boxes.append((bx0, by0, bx1, by1))
        if len(boxes) == p["det_max_candidates"]:
            break
    boxes.sort(key=lambda b: (b[1], b[0]))
    tol = p["line_tolerance"]
    for i in range(len(boxes) - 1):  # rapidocr's pass: same line (|dy| < tol) -> left to right
        for j in range(i, -1, -1):
            if abs(boxes[j + 1][1] - boxes[j][1]) < tol and boxes[j + 1][0] < boxes[j][0]:
                boxes[j], boxes[j + 1] = boxes[j + 1], boxes[j]
            else:
                break
    return boxes[: p["max_lines"]]


def recognize(rec, chars: list[str], rgb: np.ndarray, box, p: dict) -> tuple[str, float]:
    x0, y0, x1, y1 = box
    img = rgb[:, :, ::-1] if p["channel_order"] == "bgr" else rgb
    crop = img[y0:y1, x0:x1]
    ch, cw = crop.shape[:2]
    hh = p["rec_height"]
    rw = max(1, min(math.ceil(hh * cw / ch), p["rec_max_width"]))
    x = resize_bilinear(crop, rw, hh)
    x = (x / np.float32(255.0) - np.float32(p["rec_mean"])) / np.float32(p["rec_std"])
    width = max(rw, p["rec_min_width"])
    batch = np.zeros((1, 3, hh, width), np.float32)
    batch[0, :, :, :rw] = x.transpose(2, 0, 1)
    probs = rec.run(None, {rec.get_inputs()[0].name: batch})[0][0]
    idx = probs.argmax(axis=1)
    best = probs.max(axis=1)
    text, confs, prev = [], [], -1
    for t, k in enumerate(idx.tolist()):
        if k != prev and k != 0:
            text.append(chars[k])
            confs.append(float(best[t]))
        prev = k
    return "".join(text), (sum(confs) / len(confs) if confs else 0.0)


def ocr(det, rec, chars: list[str], rgb: np.ndarray, p: dict = PARAMS) -> dict:
    lines = []
    for box in detect(det, rgb, p):
        text, conf = recognize(rec, chars, rgb, box, p)
        text = text.strip(" ")
        if text and conf >= p["text_score"]:
            lines.append({"text": text, "box": list(box), "confidence": round(conf, 4)})
    return {"lines": lines, "text": "\n".join(l["text"] for l in lines)}


def edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1]
        for j, cb in enumerate(b):
            cur.append(min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1))
        prev = cur
    return prev[-1]


def load_rgb(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if "A" in im.getbands() or "transparency" in im.info:  # as ocr.rs: alpha over white paper
            a = np.asarray(im.convert("RGBA")).astype(np.uint32)
            rgb = (a[:, :, :3] * a[:, :, 3:] + 255 * (255 - a[:, :, 3:]) + 127) // 255
            return rgb.astype(np.uint8)
        return np.asarray(im.convert("RGB"))


# ---------------------------------------------------------------------------------------------
# The bundle


def character_list(rec_path: Path) -> list[str]:
    """rapidocr's list: metadata `character` split with str.splitlines, " " appended, then the
    CTC blank inserted at index 0 (written as the word `blank`; index 0 is never printed)."""
    import onnx

    model = onnx.load(str(rec_path), load_external_data=False)
    meta = {m.key: m.value for m in model.metadata_props}
    if "character" not in meta:
        raise SystemExit(f"error: {rec_path.name} has no `character` metadata")
    chars = meta["character"].splitlines()
    if any(len(c) != 1 or c in "\n\r" for c in chars) or len(set(chars)) != len(chars):
        raise SystemExit("error: the character list has entries that are not single, unique characters")
    return ["blank", *chars, " "]


def self_check(out: Path, chars: list[str]) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.inter_op_num_threads = 1
    opts.intra_op_num_threads = 1
    det = ort.InferenceSession(str(out / "detector.onnx"), opts, providers=["CPUExecutionProvider"])
    rec = ort.InferenceSession(str(out / "recognizer.onnx"), opts, providers=["CPUExecutionProvider"])
    if rec.get_outputs()[0].shape[-1] != len(chars):
        raise SystemExit(f"error: recognizer has {rec.get_outputs()[0].shape[-1]} classes, list has {len(chars)}")
    samples = json.loads((HERE / "samples" / "samples.json").read_text(encoding="utf-8"))
    errors = total = 0
    for s in samples:
        t0 = time.perf_counter()
        got = ocr(det, rec, chars, load_rgb(HERE / "samples" / s["file"]))
        ms = (time.perf_counter() - t0) * 1000
        dist = edit_distance(got["text"], s["text"])
        errors += dist
        total += len(s["text"])
        log(f"self-check {s['file']}: {got['text']!r} (edit distance {dist}, {ms:.0f} ms)")
        if s["file"] == "invoice.png" and got["text"] != "Invoice 2024: total $1,234.56":
            raise SystemExit(f"error: self-check failed: invoice.png read as {got['text']!r}")
    log(f"self-check: character error rate {errors}/{total}")
    if errors > 0.02 * total:
        raise SystemExit("error: self-check failed: character error rate above 2%")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, type=Path)
    args = ap.parse_args()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)

    wheel = bundlelib.fetch_wheel(PACKAGE, VERSION, WHEEL_SHA256)
    log(f"extracting the PP-OCRv4 graphs from {wheel.name}")
    bundlelib.extract(wheel, PREFIX + DET_FILE, out / "detector.onnx")
    bundlelib.extract(wheel, PREFIX + REC_FILE, out / "recognizer.onnx")
    with tempfile.TemporaryDirectory() as tmp:
        cfg = bundlelib.extract(wheel, "rapidocr_onnxruntime/config.yaml", Path(tmp) / "config.yaml")
        check_config(cfg.read_text(encoding="utf-8"))

    chars = character_list(out / "recognizer.onnx")
    (out / "characters.txt").write_bytes(("\n".join(chars) + "\n").encode("utf-8"))
    log(f"characters.txt: {len(chars)} entries (blank + {len(chars) - 2} + space)")

    self_check(out, chars)

    bundlelib.write_bundle(
        out,
        name="pp-ocrv4",
        kind="ocr",
        parts={
            "detector": out / "detector.onnx",
            "recognizer": out / "recognizer.onnx",
            "characters": out / "characters.txt",
        },
        params=PARAMS,
        verify=VERIFY,
        compute_units=4,
        io={
            "input": "a PNG or JPEG image (at most max_pixels pixels)",
            "output": 'canonical JSON {"lines":[{"box":[x0,y0,x1,y1],"confidence":c,"text":t}],"text":lines joined by "\\n"}',
        },
        source={
            "package": f"{PACKAGE}=={VERSION}",
            "sha256": WHEEL_SHA256,
            "files": [PREFIX + DET_FILE, PREFIX + REC_FILE],
            "licence": "Apache-2.0",
            "model": "PaddleOCR PP-OCRv4 (ch) text detection + recognition",
        },
    )


def check_config(text: str) -> None:
    """Fails when the package's config.yaml no longer says what PARAMS were copied from."""
    import yaml

    cfg = yaml.safe_load(text)
    det, rec = cfg["Det"], cfg["Rec"]
    want = {
        "thresh": PARAMS["det_thresh"],
        "box_thresh": PARAMS["det_box_thresh"],
        "unclip_ratio": 1.6,
        "mean": PARAMS["det_mean"],
        "std": PARAMS["det_std"],
        "use_dilation": True,
        "score_mode": "fast",
        "max_candidates": PARAMS["det_max_candidates"],
    }
    for k, v in want.items():
        if det.get(k) != v:
            raise SystemExit(f"error: config.yaml Det.{k} is {det.get(k)!r}, the recipe assumes {v!r}")
    if rec.get("rec_img_shape") != [3, PARAMS["rec_height"], PARAMS["rec_min_width"]]:
        raise SystemExit(f"error: config.yaml Rec.rec_img_shape is {rec.get('rec_img_shape')!r}")
    if cfg["Global"].get("text_score") != PARAMS["text_score"]:
        raise SystemExit("error: config.yaml Global.text_score changed")


if __name__ == "__main__":
    main()
