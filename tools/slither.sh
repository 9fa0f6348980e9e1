#!/usr/bin/env bash
# Static analysis of contracts/ with slither (installed by tools/setup-slither.sh). `make slither`.
#
# 1. Build: `forge build contracts --build-info --force` into .deps/slither-build/{out,cache}, i.e.
#    the project's forge profile (foundry.toml: solcjs behind tools/solc-wrapper.js, remappings,
#    optimizer) over contracts/ and what they import, with forge's full build-info (sources, ASTs).
#    Skipped while a stamp (forge config + contracts/ + package-lock.json + the solc wrapper) is
#    unchanged. Its own out/ and cache/ leave make's out/ alone, and a forced build in an empty
#    folder leaves exactly one build-info (crytic-compile loads every file in build-info/ as a
#    compilation unit, so stale ones from incremental builds must not be there).
#    crytic-compile's own foundry step is not used: it runs `forge clean` and then rebuilds out/
#    with --build-info on every run (default `--skip ./test/** ./script/** --force`, or with tests
#    under --foundry-compile-all): a full solcjs recompile each time (`slither . --foundry-compile-all`
#    took 5.5 min here, analysing the tests too) that also replaces the artifacts forge test and
#    cargo use. It does work with the solcjs wrapper; it is only slow and intrusive.
# 2. Analyse: slither's foundry platform with --ignore-compile on that build. Nothing here runs
#    solc (the ASTs come from the build-info), so slither never tries to download a compiler.
#    slither.config.json (found at the root) holds the paths filter, severity cut and triage.
# 3. Summary: exit status non-zero when any High or Medium finding is left (i.e. not triaged in
#    slither.config.json + slither.triage.md) or when slither itself failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
export PATH="$root/tools/bin:$root/node_modules/.bin:$PATH"
venv=.deps/slither-venv
# solc-select (imported by slither and crytic-compile) creates its .solc-select/ folder under
# $VIRTUAL_ENV, else under $HOME: keep it in the venv. It stays empty (nothing is downloaded).
export VIRTUAL_ENV="$root/$venv"
build=.deps/slither-build
config=slither.config.json
report=$build/slither.json
[[ -x $venv/bin/slither ]] || { echo "slither: $venv missing; run tools/setup-slither.sh" >&2; exit 1; }
start=$SECONDS

# ---- 1. forge build of contracts/ with build-info
stamp=$build/.deepnode-inputs.sha256
want=$(
  {
    forge config --json
    find contracts -type f -name '*.sol' -print0 | sort -z | xargs -0 sha256sum
    sha256sum package-lock.json tools/solc-wrapper.js
  } | sha256sum | cut -d' ' -f1
)
shopt -s nullglob
infos=("$build"/out/build-info/*.json)
if [[ -f $stamp && "$(cat "$stamp")" == "$want" && ${#infos[@]} -eq 1 ]]; then
  echo "==> slither: contracts/ unchanged since the last build ($build), not rebuilt"
else
  echo "==> slither: forge build contracts --build-info (into $build)"
  rm -rf "$build"
  forge build contracts --build-info --force --out "$build/out" --cache-path "$build/cache"
  infos=("$build"/out/build-info/*.json)
  if [[ ${#infos[@]} -ne 1 ]]; then
    echo "slither: expected one build-info in $build/out/build-info, found ${#infos[@]}" >&2
    exit 1
  fi
  echo "$want" > "$stamp"
fi

# ---- 2. slither
echo "==> slither $($venv/bin/slither --version) on contracts/ (config $config, triage slither.triage.md)"
rm -f "$report"
set +e
"$venv/bin/slither" . \
  --ignore-compile --foundry-out-directory "$build/out" \
  --config-file "$config" --json "$report" 2>&1 | tee "$build/slither.log"
rc=${PIPESTATUS[0]}
set -e

# ---- 3. summary
"$venv/bin/python" - "$root" "$config" "$report" "$build/slither.log" "$rc" "$((SECONDS - start))" <<'EOF'
import json, os, re, sys
root, config_file, report, log, rc, secs = sys.argv[1:]
config = json.load(open(config_file))
# slither matches filter_paths against absolute paths (after its own strip of ".", "/" and ".."):
# a pattern that also matches contracts/ would hide every finding, so refuse to pass then.
pattern = config.get("filter_paths", "")
pattern = pattern.split("..")[-1].strip(".").strip("/")
for probe in ("contracts/TaskManager.sol", "contracts/libraries/MerkleBatch.sol"):
    if pattern and re.search(pattern, os.path.join(root, probe)):
        sys.exit(f"slither: filter_paths {config['filter_paths']!r} matches {root}/{probe}: it would hide contracts/")
try:
    out = json.load(open(report))
except (OSError, ValueError):
    out = {"success": False, "error": f"no JSON report (slither exit status {rc})"}
if not out.get("success"):
    sys.exit(f"slither: FAILED: {out.get('error')} (see the output above)")
log_text = open(log).read()
analysed = re.findall(r"analyzed \((\d+) contracts", log_text)
if not analysed or int(analysed[-1]) == 0:
    sys.exit("slither: FAILED: no contract analysed")
if "Impossible to generate IR for" in log_text and "ReentrancyGuardTransient" in log_text:
    print("note: the 'Impossible to generate IR' lines are OpenZeppelin's ReentrancyGuardTransient internals")
    print("      (TransientSlot calls on user-defined value types), which slither 0.11.6 fails to convert to")
    print("      its IR; its reentrancy detectors recognise the nonReentrant modifier by name, unaffected.")
findings = [r for r in out.get("results", {}).get("detectors", []) if r["impact"] in ("High", "Medium")]
excluded = [d for d in config.get("detectors_to_exclude", "").split(",") if d]
print(f"==> slither summary: {analysed[-1]} contracts analysed ({secs}s with the build); "
      f"{len(excluded)} detectors excluded as triaged (slither.triage.md): {', '.join(excluded) or 'none'}")
if not findings and rc != "0":
    sys.exit(f"slither: FAILED: exit status {rc} without a High or Medium finding (see the output above)")
if not findings:
    print("==> slither: OK, no untriaged High or Medium finding")
    sys.exit(0)
print(f"==> slither: {len(findings)} untriaged High/Medium finding(s):")
for r in sorted(findings, key=lambda r: (r["impact"] != "High", r["check"])):
    first = r["description"].strip().splitlines()[0]
    print(f"    [{r['impact']}] {r['check']}: {first}")
print("    Fix each one, or triage it: a line in slither.triage.md and, if it is a false positive of the")
print("    detector as a whole, the detector in detectors_to_exclude of slither.config.json.")
sys.exit(1)
EOF
