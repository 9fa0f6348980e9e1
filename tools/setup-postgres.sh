#!/usr/bin/env bash
# Installs Debian's PostgreSQL server for the indexer's PostgreSQL test pass (tools/pg.sh starts a
# throwaway server from it). Idempotent: does nothing when a server binary is already there.
set -euo pipefail

if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 && command -v psql >/dev/null; then
  exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
  echo "setup-postgres: PostgreSQL is missing and installing it needs root: run 'apt-get install -y postgresql' as root" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  echo "setup-postgres: PostgreSQL is missing and apt-get is not available; install PostgreSQL (server and psql)" >&2
  exit 1
fi
echo "==> apt-get install postgresql (the indexer's PostgreSQL test pass)"
export DEBIAN_FRONTEND=noninteractive
if ! apt-cache show postgresql >/dev/null 2>&1; then
  apt-get update -q
fi
if ! apt-get install -y -q --no-install-recommends postgresql postgresql-client; then
  apt-get update -q
  apt-get install -y -q --no-install-recommends postgresql postgresql-client
fi
# Debian's package starts a cluster of its own on port 5432; the tests use their own (tools/pg.sh).
ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null
