#!/usr/bin/env bash
# End-to-end tests of `cautograd reduce`: a divergence and a kernel crash
# planted in a built-in model's trace reduce to the one op, the result
# replays on its own and its `repro --emit python` program shows the
# mismatch with torch alone; every kind of condition; redaction; refusals
# that write nothing. Run once per backend that has a Python.
# Usage: reduce.sh CAUTOGRAD SOURCE_DIR PYTHON   (CAUTOGRAD_TORCH: the backend)
set -uo pipefail
bin=$1
src=$2
py=$3
source "$(dirname "$0")/lib.sh"
runpy() { "$py" -W ignore "$@"; }
plant() { /usr/bin/python3 "$src/benchmarks/plant.py" "$@"; }

expect 0 record -- "$bin" record --model cnn --values all -o "$tmp/cnn.cag"
expect 0 to_v1 -- "$bin" convert --to 1 "$tmp/cnn.cag" -o "$tmp/cnn.json"

# A planted divergence: one recorded output changed.
op=$(plant "$tmp/cnn.json" "$tmp/div.json" diverge)
expect 0 reduce_diverges -- "$bin" reduce "$tmp/div.json" --until diverges -o "$tmp/div-small.cag"
contains "$tmp/err" "DIVERGED at call 0, op $op " reduce_diverges
contains "$tmp/out" "wrote $tmp/div-small.cag: 1 op of " reduce_diverges
contains "$tmp/out" ": op $op aten::" reduce_diverges
contains "$tmp/out" "it replays on its own: DIVERGED at call 0, op 0 " reduce_diverges
contains "$tmp/out" "values: all, " reduce_diverges
expect 1 reduced_replays -- "$bin" replay "$tmp/div-small.cag" --check
contains "$tmp/out" "DIVERGED at call 0, op 0 " reduced_replays
expect 0 repro_of_reduced -- "$bin" repro "$tmp/div-small.cag" --emit python -o "$tmp/r.py"
expect 1 repro_shows_it -- runpy "$tmp/r.py"
contains "$tmp/out" "MISMATCH op 0 " repro_shows_it

# The same, knowing nothing: the user's command decides (replay exits 1 on
# a divergence), and delta debugging finds the op.
expect 0 reduce_command -- "$bin" reduce "$tmp/div.json" --until "'$bin' replay {} --check; [ \$? -eq 1 ]" \
  -o "$tmp/cmd-small.cag"
contains "$tmp/out" "1 op of " reduce_command
contains "$tmp/out" ": op $op aten::" reduce_command
contains "$tmp/out" "it replays on its own: the command exits 0" reduce_command

# Numerics that differ from another recording of the same program.
expect 0 reduce_differs -- "$bin" reduce "$tmp/cnn.cag" --until differs-from "$tmp/div.json" -o "$tmp/df.cag"
contains "$tmp/out" ": op $op aten::" reduce_differs
contains "$tmp/out" "its recorded outputs are $tmp/div.json's" reduce_differs
expect 1 differs_replays -- "$bin" replay "$tmp/df.cag" --check

# A planted kernel crash: indices far out of range.
cop=$(plant "$tmp/cnn.json" "$tmp/crash.json" crash)
expect 0 reduce_crashes -- "$bin" reduce "$tmp/crash.json" --until crashes -o "$tmp/crash-small.cag"
contains "$tmp/out" "1 op of " reduce_crashes
contains "$tmp/out" ": op $cop aten::max_pool2d_with_indices_backward" reduce_crashes
expect 2 crash_replays -- "$bin" replay "$tmp/crash-small.cag"
contains "$tmp/err" "op 0 (aten::max_pool2d_with_indices_backward)" crash_replays

# Redaction: the crash needs the indices, not the floats.
expect 0 redact -- "$bin" reduce "$tmp/crash.json" --until crashes --redact --seed 4 -o "$tmp/red.cag"
contains "$tmp/out" "3 of 3 floating-point values replaced by random ones (--seed 4" redact
contains "$tmp/out" "1 integer and bool values kept as recorded" redact
expect 0 red_v1 -- "$bin" convert --to 1 "$tmp/red.cag" -o "$tmp/red.json"
expect 0 small_v1 -- "$bin" convert --to 1 "$tmp/crash-small.cag" -o "$tmp/crash-small.json"
if /usr/bin/python3 - "$tmp/crash-small.json" "$tmp/red.json" <<'PY'
import json, sys
a, b = (json.load(open(p))["calls"][0]["values"] for p in sys.argv[1:])
assert len(a) == len(b)
for x, y in zip(a, b):
    same = x["data"] == y["data"]
    assert same == (x["dtype"] == "int64"), (x["dtype"], same)  # floats replaced, indices kept
PY
then ok; else bad "redact: the values are not what the summary says"; fi
expect 2 redacted_still_crashes -- "$bin" replay "$tmp/red.cag"
contains "$tmp/err" "op 0 (aten::max_pool2d_with_indices_backward)" redacted_still_crashes
# A divergence depends on its op's inputs: redaction keeps them, and says so.
expect 0 redact_keeps -- "$bin" reduce "$tmp/div.json" --until diverges --redact -o "$tmp/div-red.cag"
contains "$tmp/out" "kept as recorded, the condition needs it: call 0, input t" redact_keeps

# Refusals: one line, before any work; nothing written, nothing lost.
echo "the user's own file" >"$tmp/kept.cag"
expect 2 not_diverging -- "$bin" reduce "$tmp/cnn.cag" --until diverges -o "$tmp/kept.cag"
one_line "$tmp/err" not_diverging
contains "$tmp/err" "does not hold on the trace itself" not_diverging
expect 2 not_crashing -- "$bin" reduce "$tmp/cnn.cag" --until crashes -o "$tmp/kept.cag"
one_line "$tmp/err" not_crashing
expect 2 command_fails_on_original -- "$bin" reduce "$tmp/cnn.cag" --until 'false {}' -o "$tmp/kept.cag"
contains "$tmp/err" "the command exits 1" command_fails_on_original
expect 2 unknown_condition -- "$bin" reduce "$tmp/cnn.cag" --until sometimes -o "$tmp/kept.cag"
one_line "$tmp/err" unknown_condition
expect 0 record_mlp -- "$bin" record --model mlp --values all -o "$tmp/mlp.cag"
expect 2 other_program -- "$bin" reduce "$tmp/cnn.cag" --until differs-from "$tmp/mlp.cag" -o "$tmp/kept.cag"
contains "$tmp/err" "same program" other_program
expect 2 untrusted -- "$bin" reduce "$src/tests/replay_refused/unknown_operator.json" --until diverges -o "$tmp/kept.cag"
one_line "$tmp/err" untrusted
contains "$tmp/err" "no such operator" untrusted
expect 2 malformed -- "$bin" reduce "$src/tests/malformed/cycle.json" --until crashes -o "$tmp/kept.cag"
one_line "$tmp/err" malformed
if [ "$(cat "$tmp/kept.cag")" = "the user's own file" ]; then ok; else bad "a refused reduce changed the output file"; fi

finish
