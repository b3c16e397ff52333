#!/usr/bin/env bash
# Builds cautograd with AddressSanitizer and UndefinedBehaviorSanitizer
# (g++, one backend: Debian's libtorch 1.13) in $BUILD_DIR (default
# build-asan) and runs the tests of that build under them: the unit tests,
# the libtorch tests, the end-to-end suite and the graph shapes
# (tests/programs/shapes). Run after scripts/setup.sh; .ci/run runs it.
#
# What it takes (docs/fuzzing.md): UBSan's vptr check needs typeinfo that
# Debian's libtorch does not export (-fno-sanitize=vptr); the recorder's
# shim, built with ASan, is preloaded into programs built without it (Debian's
# python3), so libasan is preloaded first and its link-order check is off;
# ASan's own SEGV handler would change how a crashing kernel in replay's
# child is reported (handle_segv=0); libtorch keeps memory until exit
# (detect_leaks=0).
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD_DIR:-build-asan}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DCAUTOGRAD_SANITIZE=ON -DCAUTOGRAD_DEBIAN_TORCH=ON \
  -DCAUTOGRAD_TORCH_PYTHONS= -DCAUTOGRAD_WERROR=OFF >/dev/null
cmake --build "$build" -j"$(nproc)"
libasan=$(g++ -print-file-name=libasan.so)
libasan=$(readlink -f "$libasan")
export ASAN_OPTIONS=detect_leaks=0:handle_segv=0:verify_asan_link_order=0:abort_on_error=0
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LD_PRELOAD=$libasan
cd "$build" && ctest --output-on-failure -j"$(nproc)"
