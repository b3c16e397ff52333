#!/usr/bin/env bash
# Regenerates the golden traces in this folder from the built-in models.
# Usage: traces/regenerate.sh [path/to/cautograd]   (default: build/cautograd)
# Each trace is small on purpose: a batch of 2 and the fewest steps that show
# what the model is there to show. See traces/README.md.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/cautograd}
record() {  # record NAME VALUES [FLAGS...]
  local name=$1 values=$2
  shift 2
  "$bin" record --model "$name" --seed 1 --batch 2 --values "$values" "$@" -o "traces/$name.cag"
}
record mlp all --steps 2
record cnn all
record lstm ints
record transformer ints
record embedding all
record custom all
record hooks all
record dynamic ints --steps 3
record doublegrad all
