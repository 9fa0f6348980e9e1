#!/usr/bin/env python3
"""Measures the pp-ocrv4 bundle on a larger rendered set than the committed samples (figures in
MODEL_CARD.md): character error rate, lines read wrong, latency, and the verify rule's
false-positive rate between outputs made at 1 and 2 intra-op threads.

The set is rendered in memory: 20 single lines x 4 fonts (Pillow's built-in Aileron plus DejaVu
Sans, Serif and Sans Mono when /usr/share/fonts has them), and the same texts three lines per
image with tight line spacing (1.3x the font size). It uses recipe.py's numpy pipeline, which
gives the same bytes as inference/src/kinds/ocr.rs on the committed samples.

Usage (from the repo root, after the recipe):
  .deps/bundles-venv/bin/python models/ppocr/evaluate.py [--bundle DIR] [--set KEY=JSON ...] [-v]
`--set det_unclip_ratio=2.0` re-runs with a changed parameter (how the unclip ratio was chosen).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))
import recipe  # noqa: E402

TEXTS = [
    "The quick brown fox jumps over the lazy dog", "Payment due: 2025-03-31",
    "Call +1 (555) 010-4477 today", "Room 204, Building C", "Total: 42 items @ 3.50 each",
    "Meeting moved to Friday 10:30", "Password must be 12+ characters", "Order ID: A7X-99321",
    "Net weight 500 g", "Keep out of reach of children", "Version 2.4.1 released",
    "www.example.com/docs", "Temperature: -4 C at night", "Chapter 7: Results",
    "Invoice 2024: total $1,234.56", "DeepNode verifies every answer", "SALE 50% OFF",
    "Best before 12/08/2026", "Gate B12 boarding 14:05", "Hello, World!",
]
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def fonts() -> list[tuple[str, Path | None]]:
    found = [("aileron", None)]
    for name in ("DejaVuSans", "DejaVuSerif", "DejaVuSansMono"):
        if (DEJAVU / f"{name}.ttf").exists():
            found.append((name, DEJAVU / f"{name}.ttf"))
    return found


def font(path: Path | None, size: int):
    return ImageFont.load_default(size=size) if path is None else ImageFont.truetype(str(path), size)


def images():
    rnd = random.Random(7)
    for text in TEXTS:
        for fname, fpath in fonts():
            size = rnd.choice([20, 26, 32, 40])
            f = font(fpath, size)
            img = Image.new("RGB", (max(int(f.getlength(text)) + 60, 200), size * 3), "white")
            ImageDraw.Draw(img).text((30, size), text, fill="black", font=f)
            yield f"{fname}/{size}", text, np.asarray(img)
    for i in range(0, len(TEXTS), 3):
        lines = TEXTS[i : i + 3]
        for fname, fpath in fonts():
            size = rnd.choice([20, 26, 32])
            f = font(fpath, size)
            lh = int(size * 1.3)
            img = Image.new("RGB", (int(max(f.getlength(t) for t in lines)) + 60, lh * len(lines) + 2 * size), "white")
            draw = ImageDraw.Draw(img)
            for k, t in enumerate(lines):
                draw.text((30, size + k * lh), t, fill="black", font=f)
            yield f"3 lines {fname}/{size}", "\n".join(lines), np.asarray(img)


def sessions(bundle: Path, threads: int):
    import onnxruntime as ort

    o = ort.SessionOptions()
    o.intra_op_num_threads = threads
    o.inter_op_num_threads = 1
    make = lambda f: ort.InferenceSession(str(bundle / f), o, providers=["CPUExecutionProvider"])  # noqa: E731
    return make("detector.onnx"), make("recognizer.onnx")


def accepts(claimed: str, own: str, max_ratio: float) -> bool:
    longest = max(len(claimed), len(own))
    return longest == 0 or recipe.edit_distance(claimed, own) <= int(max_ratio * longest)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=recipe.bundlelib.ROOT / ".deps/models/ppocr")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=JSON")
    ap.add_argument("-v", action="store_true", help="print every wrong read")
    args = ap.parse_args()
    p = dict(recipe.PARAMS)
    for kv in args.set:
        k, v = kv.split("=", 1)
        p[k] = json.loads(v)
    chars = (args.bundle / "characters.txt").read_text(encoding="utf-8").split("\n")[:-1]
    one, two = sessions(args.bundle, 1), sessions(args.bundle, 2)
    max_ratio = recipe.VERIFY["max_ratio"]
    errors = total = wrong = n = differ = rejected = 0
    ms = []
    for name, text, rgb in images():
        t0 = time.perf_counter()
        a = recipe.ocr(*one, chars, rgb, p)
        ms.append((time.perf_counter() - t0) * 1000)
        b = recipe.ocr(*two, chars, rgb, p)
        d = recipe.edit_distance(a["text"], text)
        errors, total, wrong, n = errors + d, total + len(text), wrong + (d > 0), n + 1
        differ += a != b
        rejected += (not accepts(a["text"], b["text"], max_ratio)) + (not accepts(b["text"], a["text"], max_ratio))
        if d and args.v:
            print(f"  {name}: {a['text']!r} for {text!r} (distance {d})")
    lines = sum(t.count("\n") + 1 for _, t, _ in images())
    print(f"images {n}, lines {lines}, characters {total}")
    print(f"character error rate {errors}/{total} = {errors / total:.4f}; images read wrong {wrong}/{n}")
    print(f"outputs differing between 1 and 2 threads {differ}/{n}; honest outputs rejected {rejected}/{2 * n}")
    print(f"latency (numpy pipeline, 1 thread) median {sorted(ms)[len(ms) // 2]:.0f} ms, max {max(ms):.0f} ms")


if __name__ == "__main__":
    main()
