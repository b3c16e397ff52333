#!/usr/bin/env bash
# What recording costs a Python training step, measured, not guessed.
# Runs tests/programs/train.py (an MLP with a custom Function and hooks)
# plain, under `cautograd record` with the shim loaded but recording no call
# (idle), and recording every call with each --values setting. Each mode runs
# REPEAT times; the median step time is reported, with its ratio to plain.
#
# Usage: benchmarks/record_overhead.sh [path/to/cautograd] [STEPS] [BATCH] [REPEAT]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/cautograd}
steps=${2:-200}
batch=${3:-64}
repeat=${4:-5}
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

run() {  # run MODE: prints the step time in ms of one run
  local mode=$1 args=(tests/programs/train.py --time --steps "$steps" --batch "$batch")
  case $mode in
    plain) "$py" "${args[@]}" ;;
    idle) "$bin" record --calls 999999999 -o "$tmp/t.json" -- "$py" "${args[@]}" 2>/dev/null ;;
    *) "$bin" record --values "$mode" -o "$tmp/t.json" -- "$py" "${args[@]}" 2>/dev/null ;;
  esac | awk '/^step_ms/ {print $2}'
}

echo "train.py, $steps steps of batch $batch, median of $repeat runs, on $(nproc) cores:"
printf '%-8s %10s %8s\n' mode step_ms ratio
base=""
for mode in plain idle none ints inputs all; do
  times=()
  for ((i = 0; i < repeat; i++)); do times+=("$(run "$mode")"); done
  median=$(printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  [ -n "$base" ] || base=$median
  printf '%-8s %10.3f %8.2f\n' "$mode" "$median" "$(awk -v a="$median" -v b="$base" 'BEGIN {print a / b}')"
done
