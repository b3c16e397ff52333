#!/usr/bin/env bash
# Format version 2 against version 1 on a large trace, measured in one run:
# benchmarks/trace_scale.cc writes one call holding about 1 GiB of values
# (version 2, version 2 with --compress, version 1) and prints sizes and how
# each kind of tensor compresses; then the real `cautograd` is timed on the
# files: `show` (which reads no value), `show --verify` (reads and checks
# every value), and `show` on a small golden trace. Wall times are medians;
# memory is the peak resident set of the process (GNU time's %M).
#
# Usage: benchmarks/trace_format.sh [BUILD_DIR] [MIB] [REPEAT]   (default: build 1024 5)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
mib=${2:-1024}
repeat=${3:-5}
bin=$build/cautograd
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$build/trace_scale" "$tmp" --mib "$mib"

measure() {  # measure LABEL CMD...: median wall seconds and the largest peak RSS of REPEAT runs
  local label=$1 times=() peak=0
  shift
  for ((i = 0; i < repeat; i++)); do
    # Wall time from bash's microsecond clock (GNU time's is in 10 ms steps).
    local t0=$EPOCHREALTIME
    /usr/bin/time -q -f "%M" -o "$tmp/time" "$@" >/dev/null
    local t1=$EPOCHREALTIME
    times+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {print b - a}')")
    read -r kib <"$tmp/time"
    ((kib > peak)) && peak=$kib
  done
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  printf '  %-44s %8.4f s  %8.1f MiB peak\n' "$label" "$median" "$(awk -v k="$peak" 'BEGIN {print k / 1024}')"
  echo "$median" >"$tmp/median"
}

echo "cautograd on them (page cache warm after the first run; median of $repeat; $(nproc) cores):"
cat "$tmp/big.cag" "$tmp/big-zstd.cag" >/dev/null
measure "show big.cag (targets: < 0.5 s, < 100 MiB)" "$bin" show "$tmp/big.cag"
measure "show big.json (version 1)" "$bin" show "$tmp/big.json"
measure "show --verify big.cag" "$bin" show --verify "$tmp/big.cag"
bytes=$(stat -c %s "$tmp/big.cag")
printf '  %-44s %7.2f GB/s (target >= 1)\n' "  read and verify every value" \
  "$(awk -v b="$bytes" -v s="$(cat "$tmp/median")" 'BEGIN {print b / s / 1e9}')"
measure "show --verify big-zstd.cag" "$bin" show --verify "$tmp/big-zstd.cag"
measure "show --verify big.json (version 1)" "$bin" show --verify "$tmp/big.json"
measure "show traces/mlp.cag (target: < 50 ms)" "$bin" show traces/mlp.cag
measure "convert big.json -> version 2" "$bin" convert "$tmp/big.json" -o "$tmp/again.cag"
