#!/usr/bin/env bash
# A throwaway PostgreSQL server for the test suites and benchmarks (Debian's postgresql package,
# installed by `make setup`): `tools/pg.sh start` starts it once (later calls find it running)
# and prints its URL; `tools/pg.sh stop` stops it and deletes its data (the tests' databases and
# the benchmark's 600 MB one would otherwise pile up run after run). Data in $DN_PG_DIR (default
# /tmp/deepnode-pg), port $DN_PG_PORT (default 55432), loopback only, trust authentication,
# fsync off: for tests, never for a network's data.
set -euo pipefail
dir=${DN_PG_DIR:-/tmp/deepnode-pg}
port=${DN_PG_PORT:-55432}
url="postgres://postgres@127.0.0.1:$port/postgres"
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1 || true)
if [ -z "$bin" ] || [ ! -x "$bin/pg_ctl" ]; then
  echo "tools/pg.sh: PostgreSQL is not installed (run make setup, or apt-get install postgresql)" >&2
  exit 1
fi
# The server refuses to run as root: as root it runs as Debian's postgres user.
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case "${1:-start}" in
  start)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    if as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1; then
      echo "$url"
      exit 0
    fi
    if [ ! -f "$dir/PG_VERSION" ]; then
      as_pg "$bin/initdb" -D "$dir" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir.initdb.log" 2>&1 ||
        { cat "$dir.initdb.log" >&2; exit 1; }
    fi
    # A start that loses a race with another one finds that one's server running.
    as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 start \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" >/dev/null ||
      as_pg "$bin/pg_ctl" -D "$dir" status >/dev/null 2>&1 ||
      { tail -20 "$dir/server.log" >&2; exit 1; }
    echo "$url"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir" -m fast stop >/dev/null 2>&1 || true
    # only a folder that is a PostgreSQL data directory (a mistyped DN_PG_DIR stays)
    if [ -f "$dir/PG_VERSION" ]; then
      rm -rf "$dir" "$dir.initdb.log"
    fi
    ;;
  url)
    echo "$url"
    ;;
  *)
    echo "usage: tools/pg.sh start|stop|url" >&2
    exit 2
    ;;
esac
