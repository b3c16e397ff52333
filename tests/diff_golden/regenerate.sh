#!/usr/bin/env bash
# Regenerates the inputs and the golden renderings of `cautograd diff` listed
# in `cases`. Run it after a change to the trace format, to what diff prints,
# or to variants.py / derive.py, and read `git diff tests/diff_golden/` before
# committing: a change you did not expect is a bug.
# Usage: tests/diff_golden/regenerate.sh [--inputs] [path/to/cautograd]   (default: build/cautograd)
# --inputs also records the inputs again (their timings change every time);
# without it only missing inputs are made.
set -euo pipefail
cd "$(dirname "$0")/../.."
inputs=0
if [ "${1:-}" = "--inputs" ]; then
  inputs=1
  shift
fi
bin=$(realpath "${1:-build/cautograd}")
dir=tests/diff_golden
py=/usr/bin/python3  # Debian's, with python3-torch

record() {  # record NAME [FLAGS...]: one variant of the step in variants.py
  local name=$1
  shift
  [ "$inputs" = 1 ] || [ ! -e "$dir/inputs/$name.json" ] || return 0
  # Kept as version 1 text: derive.py edits them, and they are the tests'
  # version 1 traces (a trace a user recorded before version 2).
  "$bin" record --values all -o "$dir/inputs/$name.cag" -- "$py" "$dir/variants.py" "$@" >/dev/null
  "$bin" convert --to 1 "$dir/inputs/$name.cag" -o "$dir/inputs/$name.json" >/dev/null
  rm "$dir/inputs/$name.cag"
}
record base
record batch4 --batch 4
record extra-layer --extra-layer
record hook --hook
record float64 --float64
for kind in altered slower renumbered; do
  [ "$inputs" = 1 ] || [ ! -e "$dir/inputs/$kind.json" ] || continue
  "$py" "$dir/derive.py" "$kind" "$dir/inputs/base.json" "$dir/inputs/$kind.json"
done

grep -v '^#' "$dir/cases" | while read -r expected status args; do
  [ -n "$expected" ] || continue
  got=0
  # shellcheck disable=SC2086  # the arguments are words on purpose
  "$bin" diff $args >"$dir/$expected" || got=$?
  if [ "$got" -ne "$status" ]; then
    echo "regenerate.sh: diff $args exited $got, cases says $status" >&2
    exit 1
  fi
done
