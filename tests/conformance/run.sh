#!/usr/bin/env bash
# The conformance suite: every scenario of scenarios.py under real compiled
# autograd and recorded by cautograd in eager mode, compared call by call
# (compare.py); and the real run once more under `cautograd record`, whose
# trace of the calls compiled autograd ran must say the same. Prints each
# difference and the agreement; fails if any call differs.
# Usage: run.sh CAUTOGRAD PYTHON TORCH_VERSION [SCENARIO...]
# PYTHON's torch must be the backend TORCH_VERSION's (2.4 or newer).
set -uo pipefail
bin=$1
py=$2
torch=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export CAUTOGRAD_TORCH=$torch
# The inductor scenario compiles C++: keep its cache out of the user's home.
export TORCHINDUCTOR_CACHE_DIR=$tmp/inductor

# NAME MODE per line, for every scenario (one torch import, not one per scenario).
mapfile -t table < <(cd "$here" && "$py" -c 'import scenarios
for n, f in scenarios.SCENARIOS.items(): print(n, f.mode)' 2>/dev/null)
declare -A modes
for line in "${table[@]}"; do modes[${line% *}]=${line#* }; done
if [ $# -eq 0 ]; then
  mapfile -t names < <(printf '%s\n' "${table[@]}" | cut -d' ' -f1)
else
  names=("$@")
fi

identical=0
total=0
identical_ca=0
total_ca=0
failed=0
for name in "${names[@]}"; do
  mode=${modes[$name]:-}
  if [ -z "$mode" ]; then echo "$name: no such scenario in scenarios.py"; failed=1; continue; fi
  dynamic=auto
  [ "$mode" = dynamic ] && dynamic=all
  if ! (cd "$here" && "$py" run.py real "$name" "$tmp/$name.real.json") >"$tmp/$name.real.log" 2>&1; then
    echo "$name: the real run failed:"; tail -5 "$tmp/$name.real.log"; failed=1; continue
  fi
  if ! "$bin" record -o "$tmp/$name.trace.json" -- "$py" "$here/run.py" eager "$name" >"$tmp/$name.rec.log" 2>&1; then
    echo "$name: recording failed:"; tail -5 "$tmp/$name.rec.log"; failed=1; continue
  fi
  if ! "$bin" recompile --json --dynamic "$dynamic" "$tmp/$name.trace.json" >"$tmp/$name.ours.json" 2>"$tmp/$name.err"; then
    echo "$name: recompile failed:"; cat "$tmp/$name.err"; failed=1; continue
  fi
  out=$("$py" "$here/compare.py" "$tmp/$name.real.json" "$tmp/$name.ours.json") || failed=1
  echo "eager recording: $out"
  last=$(echo "$out" | tail -1)
  identical=$((identical + $(echo "$last" | sed -E 's/.*: ([0-9]+) of ([0-9]+) calls identical/\1/')))
  total=$((total + $(echo "$last" | sed -E 's/.*: ([0-9]+) of ([0-9]+) calls identical/\2/')))

  # The same real run recorded: compiled autograd must behave as it did
  # unrecorded, and recompile on the calls it ran must say what it logged.
  if ! "$bin" record -o "$tmp/$name.ca.json" -- "$py" "$here/run.py" real "$name" "$tmp/$name.real2.json" \
      >"$tmp/$name.rec2.log" 2>&1; then
    echo "$name: recording under compiled autograd failed:"; tail -5 "$tmp/$name.rec2.log"; failed=1; continue
  fi
  if ! "$py" -c 'import json, sys
a, b = (json.load(open(p))["calls"] for p in sys.argv[1:])
sys.exit(a != b)' "$tmp/$name.real.json" "$tmp/$name.real2.json"; then
    echo "$name: compiled autograd behaved differently while recorded"; failed=1
  fi
  "$bin" recompile --json --dynamic "$dynamic" "$tmp/$name.ca.json" >"$tmp/$name.ours2.json" 2>"$tmp/$name.err2"
  out=$("$py" "$here/compare.py" "$tmp/$name.real.json" "$tmp/$name.ours2.json") || failed=1
  echo "recorded under compiled autograd: $out"
  last=$(echo "$out" | tail -1)
  identical_ca=$((identical_ca + $(echo "$last" | sed -E 's/.*: ([0-9]+) of ([0-9]+) calls identical/\1/')))
  total_ca=$((total_ca + $(echo "$last" | sed -E 's/.*: ([0-9]+) of ([0-9]+) calls identical/\2/')))
done
echo "conformance (torch $torch), eager recordings: $identical of $total calls identical over ${#names[@]} scenarios"
echo "conformance (torch $torch), recorded under compiled autograd: $identical_ca of $total_ca calls identical"
exit $failed
