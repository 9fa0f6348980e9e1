"""Renders the OCR sample images in models/ppocr/samples/ (committed) and samples.json.

Run from the repo root: .deps/bundles-venv/bin/python models/ppocr/make_samples.py
Black text on white, drawn with Pillow's built-in scalable font (ImageFont.load_default(size=...),
Aileron Regular, shipped inside Pillow itself), so the images depend only on the pinned Pillow
(pillow==13.0.0 in models/requirements-bundles.txt), not on system fonts. PNGs are written
without metadata, so re-running gives the same bytes.
"""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent / "samples"

# file, size (w, h), font size, lines
SAMPLES = [
    ("invoice.png", (600, 200), 34, ["Invoice 2024: total $1,234.56"]),
    ("deepnode.png", (600, 200), 36, ["DeepNode verifies every answer"]),
    ("address.png", (600, 200), 34, ["221B Baker Street", "London NW1 6XE"]),
    ("receipt.png", (600, 220), 30, ["Order #4471 shipped", "3 x Coffee beans 19.99 EUR", "Thank you for your visit!"]),
]


def render(size: tuple[int, int], font_size: int, lines: list[str]) -> Image.Image:
    font = ImageFont.load_default(size=font_size)
    img = Image.new("RGB", size, (255, 255, 255))
    draw = ImageDraw.Draw(img)
    line_h = int(font_size * 1.6)
    top = (size[1] - line_h * len(lines)) // 2 + (line_h - font_size) // 2
    for i, line in enumerate(lines):
        draw.text((30, top + i * line_h), line, fill=(0, 0, 0), font=font)
    return img


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    index = []
    for name, size, font_size, lines in SAMPLES:
        render(size, font_size, lines).save(OUT / name, format="PNG", optimize=True)
        index.append({"file": name, "text": "\n".join(lines)})
    (OUT / "samples.json").write_text(json.dumps(index, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {len(index)} samples to {OUT}")


if __name__ == "__main__":
    main()
