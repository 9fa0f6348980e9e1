#!/usr/bin/env bash
# Installs Debian's wrk, the HTTP load generator that `make bench` (bench/run.sh) points at the
# indexer's REST API (64 connections, p99 latency from `wrk --latency`). Idempotent: does nothing
# when wrk is already on PATH (or at $WRK_PATH).
set -euo pipefail

WRK=${WRK_PATH:-$(command -v wrk || true)}

if [[ -n $WRK && -x $WRK ]]; then
  exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
  echo "setup-loadgen: wrk is missing and installing it needs root: run 'apt-get install -y wrk' as root" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-loadgen: wrk is missing and apt-get is not available; install wrk and set WRK_PATH" >&2
  exit 1
fi

echo "==> apt-get install wrk (HTTP load generator for the REST API bench)"
export DEBIAN_FRONTEND=noninteractive
# A bare machine may have no package lists yet; refresh them when the package is unknown.
if ! apt-cache show wrk >/dev/null 2>&1; then
  echo "==> apt-get update"
  apt-get update -q
fi
if ! apt-get install -y -q --no-install-recommends wrk; then
  echo "==> retrying after apt-get update"
  apt-get update -q
  apt-get install -y -q --no-install-recommends wrk
fi

if ! command -v wrk >/dev/null; then
  echo "setup-loadgen: apt-get finished but wrk is still not on PATH" >&2
  exit 1
fi
