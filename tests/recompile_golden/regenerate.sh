#!/usr/bin/env bash
# Regenerates the golden renderings of `cautograd recompile` listed in
# `cases`. Run it after traces/regenerate.sh, or after a change to what
# recompile prints, and read `git diff tests/recompile_golden/` before
# committing: a change you did not expect is a bug.
# Usage: tests/recompile_golden/regenerate.sh [path/to/cautograd]   (default: build/cautograd)
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=$(realpath "${1:-build/cautograd}")
grep -v '^#' tests/recompile_golden/cases | while read -r expected args; do
  [ -n "$expected" ] || continue
  # shellcheck disable=SC2086  # the arguments are words on purpose
  "$bin" recompile $args >"tests/recompile_golden/$expected"
done
