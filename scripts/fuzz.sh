#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang, AddressSanitizer and
# UndefinedBehaviorSanitizer, against Debian's libtorch, and runs each for
# SECONDS (default 60) from a corpus seeded with every trace the tests hold
# (tests/malformed, tests/replay_refused, traces, tests/data and the inputs
# fuzzing found before, tests/fuzz/regressions). Fails if any input crashes,
# hangs past 10 s or uses more than 2 GB; the input is left in
# $BUILD_DIR/crashes (add it to tests/fuzz/regressions once fixed).
#   scripts/fuzz.sh [SECONDS]      # CI: .ci/run runs it for 60 s per target
# BUILD_DIR (default build-fuzz). docs/fuzzing.md says more.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
build=${BUILD_DIR:-build-fuzz}
for p in clang-14 libclang-rt-14-dev; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    echo "fuzz: installing $p" >&2
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "$p" >/dev/null
  fi
done
CXX=clang++-14 cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAUTOGRAD_FUZZ=ON -DCAUTOGRAD_SANITIZE=ON \
  -DCAUTOGRAD_TESTS=OFF -DCAUTOGRAD_DEBIAN_TORCH=ON -DCAUTOGRAD_TORCH_PYTHONS= >/dev/null
cmake --build "$build" -j"$(nproc)" --target fuzz_trace_reader fuzz_replay_check >/dev/null

export ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
mkdir -p "$build/crashes"
status=0
for target in fuzz_trace_reader fuzz_replay_check; do
  corpus=$build/corpus/$target
  mkdir -p "$corpus"
  cp tests/malformed/*.json tests/malformed/*.cag tests/replay_refused/*.json traces/*.cag tests/data/*.json \
     tests/data/*.cag "$corpus"/
  find tests/fuzz/regressions -type f ! -name "*.md" -exec cp {} "$corpus"/ \;
  log=$build/$target.log
  # -rss_limit_mb: a trace must never make the reader or the checker use
  # more than that; -timeout: nor take longer than that on one input.
  if ! "$build/tests/fuzz/$target" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=262144 \
      -print_final_stats=1 -artifact_prefix="$build/crashes/$target-" "$corpus" >"$log" 2>&1; then
    status=1
    echo "fuzz: $target found an input that fails (in $build/crashes):" >&2
    grep -E "ERROR|SUMMARY|runtime error|Test unit written" "$log" | head -5 >&2
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  echo "fuzz: $target: ${runs:-?} inputs in ${seconds} s, corpus $(ls "$corpus" | wc -l) files"
done
exit $status
