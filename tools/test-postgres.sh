#!/usr/bin/env bash
# make test's PostgreSQL pass: the indexer's whole test suite and the verifier's own table's test
# with DN_TEST_DB=postgres (each test gets a fresh database on tools/pg.sh's throwaway server).
#
# It runs the test binaries that `cargo test --workspace` built, each from its package's folder as
# cargo does: `cargo test -p indexer` would resolve the crates' features apart from the workspace
# build and compile part of the graph again (about 6 minutes of make test on 2 cores).
set -euo pipefail
cd "$(dirname "$0")/.."
export DN_TEST_DB=postgres
# "<package dir> <kind> <name> <executable>" for each test binary of the indexer and the verifier
list=$(cargo test --workspace --no-run --message-format=json 2>/dev/null | jq -r '
  select(.reason == "compiler-artifact" and .executable != null and .profile.test)
  | select(.manifest_path | test("/(indexer|verifier)/Cargo.toml$"))
  | "\(.manifest_path | rtrimstr("/Cargo.toml")) \(.target.kind[0]) \(.target.name) \(.executable)"')
if [[ -z $list ]]; then
  echo "error: cargo test --workspace --no-run listed no test binary of the indexer or the verifier" >&2
  exit 1
fi
failed=()
ran=0
while read -r dir kind name exe; do
  pkg=$(basename "$dir")
  args=()
  case $pkg in
    indexer) ;;
    verifier)
      # the verifier's own table (its other tests use no database of the indexer's kind)
      [[ $kind == lib ]] || continue
      args=(store)
      ;;
  esac
  echo "==> $pkg $kind $name on PostgreSQL"
  if ! (cd "$dir" && "$exe" "${args[@]}"); then
    failed+=("$pkg/$name")
  fi
  ran=$((ran + 1))
done <<<"$list"
echo "==> PostgreSQL pass: $ran test binaries, ${#failed[@]} failed${failed:+: ${failed[*]}}"
((${#failed[@]} == 0))
