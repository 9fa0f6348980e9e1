#!/usr/bin/env bash
# make test's cargo pass: every test binary `cargo test --workspace` builds, several at a time.
#
# Run one after another (cargo test's way), the suites took about 30 minutes on the 2-core CI
# machine, 25 of them in devnet/tests' end-to-end binaries, which spend most of their time waiting
# on the devnet's clock (blocks, response and challenge windows, epochs) with the CPU about 90%
# idle. Here up to DN_TEST_JOBS binaries (default 3) run side by side, the longest first; the
# tests inside one binary still take turns where they share a devnet's budget (common::SERIAL).
# Devnets are built for it: each takes free ports, its own work folder, and deploys under a file
# lock (devnet/src/lib.rs).
#
# Each binary runs from its package's folder, as under cargo test; its output is printed whole when
# it ends, under a "==> package/name" line with its time. Every binary runs even after one fails;
# the exit status is 1 if any failed, and the failed ones are named last.
#
#   tools/test-cargo.sh                 every test binary of the workspace
#   tools/test-cargo.sh ARGS...         ARGS passed to every binary (a name filter, --nocapture)
#   DN_TEST_JOBS=1 tools/test-cargo.sh  one at a time
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${DN_TEST_JOBS:-3}
if ! [[ $jobs =~ ^[1-9][0-9]*$ ]]; then
  echo "error: DN_TEST_JOBS must be a whole number of at least 1, not '$jobs'" >&2
  exit 2
fi

# "<package dir> <kind> <name> <executable>" for each test binary, in cargo's order
list=$(cargo test --workspace --no-run --message-format=json | jq -r '
  select(.reason == "compiler-artifact" and .executable != null and .profile.test)
  | "\(.manifest_path | rtrimstr("/Cargo.toml")) \(.target.kind[0]) \(.target.name) \(.executable)"')
if [[ -z $list ]]; then
  echo "error: cargo test --workspace --no-run listed no test binary" >&2
  exit 1
fi

# Longest first (seconds each took alone on the CI machine, 2026-12-03), so that the last to start
# are short: chaos 502, audits_e2e 299, demo_e2e 229, gateway_e2e 219, catalogue_e2e 178, the
# executor's e2e 65, dn_e2e 43; every other binary under 40.
first=(chaos audits_e2e demo_e2e gateway_e2e catalogue_e2e e2e dn_e2e)
ordered=$(
  for n in "${first[@]}"; do awk -v n="$n" '$3 == n' <<<"$list"; done
  awk -v names=" ${first[*]} " 'index(names, " " $3 " ") == 0' <<<"$list"
)

logs=$(mktemp -d "${TMPDIR:-/tmp}/deepnode-tests.XXXXXX")
declare -A label=() started=() logfile=()
failed=()
ran=0
t0=$(date +%s)

# waits for one running binary and prints its output
reap() {
  local pid status=0
  wait -n -p pid "${!label[@]}" || status=$?
  local took=$(($(date +%s) - started[$pid]))
  if ((status == 0)); then
    echo "==> ${label[$pid]}: ok in ${took} s"
  else
    echo "==> ${label[$pid]}: FAILED (exit $status) in ${took} s"
    failed+=("${label[$pid]}")
  fi
  cat "${logfile[$pid]}"
  unset "label[$pid]" "started[$pid]" "logfile[$pid]"
}

while read -r dir kind name exe; do
  while ((${#label[@]} >= jobs)); do reap; done
  pkg=$(basename "$dir")
  ran=$((ran + 1))
  (cd "$dir" && exec "$exe" "$@") >"$logs/$ran.log" 2>&1 &
  pid=$!
  logfile[$pid]=$logs/$ran.log
  label[$pid]="$pkg/$name ($kind)"
  started[$pid]=$(date +%s)
done <<<"$ordered"
while ((${#label[@]} > 0)); do reap; done

echo "==> doc tests"
cargo test --workspace --doc -q || failed+=("doc tests")

rm -rf "$logs"
echo "==> $ran test binaries ($jobs at a time) in $(($(date +%s) - t0)) s, ${#failed[@]} failed${failed:+: ${failed[*]}}"
((${#failed[@]} == 0))
