#!/usr/bin/env bash
# How `cautograd diff` scales: two traces of about 100,000 ops each (a deep
# MLP's backward, built by benchmarks/diff_scale.cc) that differ in one
# inserted layer and one changed gradient. Prints the file sizes, the time to
# load both, diff and render, the peak memory of that process, and the wall
# time and peak memory of the real `cautograd diff` on the same files.
#
# Usage: benchmarks/diff_scale.sh [BUILD_DIR] [OPS] [VALUES]   (default: build 100000 all)
#   VALUES: all (every op output's values, as --values all) or none
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
ops=${2:-100000}
values=${3:-all}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$build/diff_scale" write "$tmp" --ops "$ops" --values "$values"
echo "files: $(du -m "$tmp/a.cag" | cut -f1) MB and $(du -m "$tmp/b.cag" | cut -f1) MB; on $(nproc) cores"
"$build/diff_scale" measure "$tmp"
# diff exits 1: the traces differ, as they should.
/usr/bin/time -q -f "cautograd diff, end to end: %e s wall, %M KiB peak RSS" \
  "$build/cautograd" diff "$tmp/a.cag" "$tmp/b.cag" >/dev/null || [ $? -eq 1 ]
