#!/usr/bin/env bash
# End-to-end tests: the real cautograd binary on real files.
# Usage: run.sh CAUTOGRAD SOURCE_DIR [TRAIN_CPP]
# Environment: CAUTOGRAD_TORCH, the backend every command uses (ctest sets
# it: the same tests run once per backend); CAUTOGRAD_TEST_PYTHON, a Python
# whose torch is that backend's (default /usr/bin/python3).
set -uo pipefail
bin=$1
src=$2
train_cpp=${3:-}
source "$(dirname "$0")/lib.sh"

# --- the CLI itself -----------------------------------------------------------
expect 0 version -- "$bin" --version
contains "$tmp/out" "cautograd 0.1.0 (trace format v2)" version
expect 0 help -- "$bin" --help
contains "$tmp/out" "record" help
contains "$tmp/out" "show, summary" help
expect 2 no_command -- "$bin"
expect 2 unknown_command -- "$bin" frobnicate
one_line "$tmp/err" unknown_command
expect 0 record_help -- "$bin" record --help
contains "$tmp/out" "--values" record_help

# --- record ---------------------------------------------------------------------
expect 0 list -- "$bin" record --list
for m in mlp cnn lstm transformer embedding custom hooks dynamic doublegrad; do
  contains "$tmp/out" "$m" "list $m"
done
for m in mlp cnn lstm transformer embedding custom hooks dynamic doublegrad; do
  expect 0 "record $m" -- "$bin" record --model "$m" --values all -o "$tmp/$m.json"
  expect 0 "show $m" -- "$bin" show "$tmp/$m.json"
  contains "$tmp/out" "call 0:" "show $m"
  expect 0 "show --json $m" -- "$bin" summary --json "$tmp/$m.json"
  if /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["calls"][0]["nodes"] > 0' "$tmp/out"; then ok; else bad "show --json $m: not a JSON summary"; fi
done
expect 0 dynamic_steps -- "$bin" show --json "$tmp/dynamic.json"
if /usr/bin/python3 -c 'import json,sys; assert len(json.load(open(sys.argv[1]))["calls"]) == 3' "$tmp/out"; then ok; else bad "dynamic: expected 3 calls"; fi
expect 0 calls_selection -- "$bin" record --model mlp --steps 5 --calls 1,3 -o "$tmp/sel.json"
contains "$tmp/err" "recorded 2 backward calls" calls_selection

expect 2 no_model -- "$bin" record -o "$tmp/x.json"
contains "$tmp/err" "cautograd record: nothing to record. Use --model NAME" no_model
one_line "$tmp/err" no_model
expect 2 unknown_model -- "$bin" record --model resnet -o "$tmp/x.json"
contains "$tmp/err" "cautograd record: unknown model 'resnet'" unknown_model
expect 2 bad_values -- "$bin" record --model mlp --values some -o "$tmp/x.json"
expect 2 bad_calls -- "$bin" record --model mlp --calls 5-2 -o "$tmp/x.json"
contains "$tmp/err" "bad call selection '5-2'" bad_calls
expect 2 bad_batch -- "$bin" record --model mlp --batch 0 -o "$tmp/x.json"
expect 2 no_output -- "$bin" record --model mlp
contains "$tmp/err" "no output file" no_output

# A failed write keeps nothing half-written and leaves no temporary behind.
expect 3 unwritable -- "$bin" record --model mlp -o "$tmp/missing-dir/t.json"
contains "$tmp/err" "cautograd record: $tmp/missing-dir/t.json: cannot write" unwritable
one_line "$tmp/err" unwritable
echo "precious" >"$tmp/keep.json"
expect 2 bad_input_keeps_file -- "$bin" record --model resnet -o "$tmp/keep.json"
if [ "$(cat "$tmp/keep.json")" = "precious" ]; then ok; else bad "a failed record changed the output file"; fi
if ls "$tmp" | grep -q '\.tmp\.'; then bad "temporary files left in $tmp"; else ok; fi

# --- show on hand-written traces -----------------------------------------------
expect 0 minimal -- "$bin" show "$src/tests/data/minimal.json"
contains "$tmp/out" "SumBackward0 x1" minimal
expect 2 missing_file -- "$bin" show "$tmp/nope.json"
contains "$tmp/err" "cautograd show: $tmp/nope.json: cannot open" missing_file
for f in "$src"/tests/malformed/*.json "$src"/tests/malformed/*.cag; do
  name=$(basename "${f%.*}")
  expect 2 "malformed $name" -- "$bin" show --verify "$f"
  one_line "$tmp/err" "malformed $name"
  contains "$tmp/err" "cautograd show: $f: $(cat "$src/tests/malformed/$name.expected")" "malformed $name"
done
# Version 2, packed by tests/malformed/make_v2.py rather than by cautograd.
expect 0 minimal_v2 -- "$bin" show --verify "$src/tests/data/minimal_v2.cag"
contains "$tmp/out" "verified 1 value (4 B): every size and checksum matches" minimal_v2
# Without --verify a version 2 trace's values are never read: a corrupt value
# goes unnoticed by show, and replay (which reads them) refuses it.
expect 0 show_lazy -- "$bin" show "$src/tests/malformed/v2_bad_checksum.cag"
expect 2 replay_bad_value -- "$bin" replay "$src/tests/malformed/v2_bad_checksum.cag"
contains "$tmp/err" "entry 'values/0': CRC-32 does not match its data" replay_bad_value
# Stock tools read a version 2 trace: Python's zipfile checks every entry's
# CRC-32 and finds the JSON (what `unzip -p t.cag trace.json | jq` shows).
if /usr/bin/python3 - "$src/traces/mlp.cag" <<'PY'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
assert z.testzip() is None
assert all(i.compress_type == zipfile.ZIP_STORED for i in z.infolist())
t = json.loads(z.read("trace.json"))
assert t["version"] == 2 and t["calls"][0]["values"][0]["entry"] == "values/0", t["calls"][0]["values"][0]
PY
then ok; else bad "python's zipfile cannot read traces/mlp.cag"; fi
# convert: both ways, with and without compression, and back to the same trace.
expect 0 convert_to_1 -- "$bin" convert "$src/traces/mlp.cag" --to 1 -o "$tmp/emb1.json"
contains "$tmp/out" "(version 2, " convert_to_1
expect 0 convert_to_2z -- "$bin" convert "$tmp/emb1.json" --compress -o "$tmp/emb2z.cag"
expect 0 convert_back -- "$bin" convert "$tmp/emb2z.cag" --to 1 -o "$tmp/emb1b.json"
if cmp -s "$tmp/emb1.json" "$tmp/emb1b.json"; then ok; else bad "convert 2 -> 1 -> 2 (zstd) -> 1 changed the trace"; fi
expect 0 show_compressed -- "$bin" show --verify "$tmp/emb2z.cag"
contains "$tmp/out" "compressed with zstd" show_compressed
expect 2 convert_bad_flags -- "$bin" convert "$src/traces/mlp.cag" --to 1 --compress -o "$tmp/x.json"
one_line "$tmp/err" convert_bad_flags
expect 2 convert_malformed -- "$bin" convert "$src/tests/malformed/v2_zstd_expands.cag" -o "$tmp/x.cag"
if [ -e "$tmp/x.cag" ]; then bad "convert wrote a file from a trace it refused"; else ok; fi

# --- golden traces ------------------------------------------------------------------
for f in "$src"/traces/*.cag; do
  [ -e "$f" ] || continue
  g=$(basename "$f")
  expect 0 "golden $g" -- "$bin" show "$f"
  if grep -q '"values":"all"' "$f"; then
    expect 0 "replay --check $g" -- "$bin" replay --check "$f"
    contains "$tmp/out" "MATCH: " "replay --check $g"
  else
    expect 0 "replay $g" -- "$bin" replay "$f"
    contains "$tmp/out" "not checked" "replay $g"
    expect 2 "replay --check $g without values" -- "$bin" replay --check "$f"
    contains "$tmp/err" "record with --values all" "replay --check $g without values"
  fi
done

# Inputs the fuzzers found (tests/fuzz/regressions): refused in one line or
# read, never a crash, under every command that reads traces.
for f in "$src"/tests/fuzz/regressions/*; do
  case "$f" in *.md) continue ;; esac
  [ -e "$f" ] || continue
  name=$(basename "$f")
  "$bin" show "$f" >"$tmp/out" 2>"$tmp/err"
  got=$?
  if [ "$got" -eq 0 ] || { [ "$got" -eq 2 ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]; }; then ok; else bad "fuzz regression $name: show exit $got: $(head -c 300 "$tmp/err")"; fi
  "$bin" replay --max-memory 64 "$f" >"$tmp/out" 2>"$tmp/err"
  got=$?
  if [ "$got" -le 2 ]; then ok; else bad "fuzz regression $name: replay exit $got: $(head -c 300 "$tmp/err")"; fi
done

# Output that cannot be written is a failure, not a success.
if [ -w /dev/full ]; then
  for args in "show --json $src/traces/mlp.cag" "diff $src/traces/mlp.cag $src/traces/mlp.cag" \
              "recompile --emit json $src/traces/dynamic.cag" "replay --json $src/traces/mlp.cag"; do
    # shellcheck disable=SC2086  # the arguments are words on purpose
    "$bin" $args >/dev/full 2>"$tmp/err"
    got=$?
    if [ "$got" -eq 3 ] && grep -q "cannot write the output to stdout: No space left on device" "$tmp/err"; then ok; else
      bad "full_device: '$args' >/dev/full exited $got: $(head -c 300 "$tmp/err")"
    fi
  done
fi

# --- replay ---------------------------------------------------------------------------
# A cap too large to count in bytes is no cap (it used to overflow and refuse every op).
expect 0 max_memory_huge -- "$bin" replay --check --max-memory 99999999999999 "$src/traces/mlp.cag"
contains "$tmp/out" "MATCH: " max_memory_huge
# Round trip on freshly recorded models, including several calls.
for m in mlp lstm dynamic doublegrad; do
  expect 0 "record $m for replay" -- "$bin" record --model "$m" --steps 2 --values all -o "$tmp/r-$m.json"
  expect 0 "replay --check $m" -- "$bin" replay --check "$tmp/r-$m.json"
  contains "$tmp/out" "MATCH: " "replay --check $m"
done
expect 0 replay_json -- "$bin" replay --check --json "$src/traces/embedding.cag"
if /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"]=="match" and d["compared"]>0' "$tmp/out"; then ok; else bad "replay --json: not a matching JSON report"; fi
expect 2 replay_bad_call -- "$bin" replay --call 9 "$src/traces/embedding.cag"
contains "$tmp/err" "no call 9: the trace has 1" replay_bad_call

# A recorded gradient altered by hand: replay --check exits 1 and names the op.
# derive.py's `altered` adds 0.5 to the third recorded float32 op output.
"$bin" convert --to 1 "$src/traces/mlp.cag" -o "$tmp/mlp-v1.json" >/dev/null  # derive.py edits version 1 text
/usr/bin/python3 "$src/tests/diff_golden/derive.py" altered "$tmp/mlp-v1.json" "$tmp/altered.json"
read -r altered_op altered_name < <(/usr/bin/python3 -c 'import json,sys; t=json.load(open(sys.argv[1])); v=[v for v in t["calls"][0]["values"] if v["when"]=="after_op" and v["dtype"]=="float32"][2]; print(v["op"], t["calls"][0]["ops"][v["op"]]["op"])' "$tmp/altered.json")
expect 1 replay_altered -- "$bin" replay --check "$tmp/altered.json"
contains "$tmp/out" "DIVERGED at call 0, op $altered_op ($altered_name" replay_altered
contains "$tmp/out" "max abs error 0.5" replay_altered

# Programs replay must refuse, each with its one line. The fixtures were
# recorded under 1.13; for another backend they are relabelled as its own,
# so that what they test is the refusal, not the version (cross.sh does that).
mkdir -p "$tmp/refused"
# The big cases are made here (megabytes: not kept in the repository).
/usr/bin/python3 "$src/tests/replay_refused/make.py" --big "$tmp/refused-big"
for f in "$src"/tests/replay_refused/*.json "$tmp"/refused-big/*.json; do
  name=$(basename "$f" .json)
  expected_file=$(dirname "$f")/$name.expected
  if [ -n "${CAUTOGRAD_TORCH:-}" ]; then
    sed -E "s/\"libtorch_version\": ?\"[^\"]*\"/\"libtorch_version\": \"$CAUTOGRAD_TORCH\"/" "$f" >"$tmp/refused/$name.json"
    f=$tmp/refused/$name.json
  fi
  expect 2 "refused $name" -- "$bin" replay --max-memory 64 "$f"
  one_line "$tmp/err" "refused $name"
  contains "$tmp/err" "cautograd replay: $f: $(cat "$expected_file")" "refused $name"
done

# --- recompile --------------------------------------------------------------------
# Golden renderings, named after their input and flags (tests/recompile_golden/cases).
while read -r expected args; do
  case "$expected" in '' | '#'*) continue ;; esac
  # shellcheck disable=SC2086  # the arguments are words on purpose
  (cd "$src" && "$bin" recompile $args) >"$tmp/golden.out" 2>"$tmp/err"
  if diff -b "$src/tests/recompile_golden/$expected" "$tmp/golden.out" >"$tmp/golden.diff"; then ok; else
    bad "recompile golden $expected differs (tests/recompile_golden/regenerate.sh rewrites it): $(head -c 600 "$tmp/golden.diff")"
  fi
done <"$src/tests/recompile_golden/cases"

expect 0 recompile_dynamic -- "$bin" recompile "$src/traces/dynamic.cag"
contains "$tmp/out" "call 1: MISS, compile entry 1" recompile_dynamic
contains "$tmp/out" "(.grad before the call) was undefined, now defined" recompile_dynamic
contains "$tmp/out" "Cache miss due to new autograd node: torch::autograd::AccumulateGrad (NodeCall 3)" recompile_dynamic
contains "$tmp/out" "call 2: MISS, recompile entry 1" recompile_dynamic
contains "$tmp/out" ": 4 -> 2, now dynamic" recompile_dynamic
contains "$tmp/out" "Cache miss due to changed shapes: marking size idx 0 of NllLossBackward0 (NodeCall 0) as dynamic" recompile_dynamic
contains "$tmp/out" "summary: 3 calls, 3 compiles (2 recompiles), 0 hits" recompile_dynamic
expect 0 recompile_json -- "$bin" recompile --json "$src/traces/dynamic.cag"
if /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert d["summary"]["compiles"] == 3 and d["summary"]["hits"] == 0, d["summary"]
assert [c["result"] for c in d["calls"]] == ["miss"] * 3
assert d["calls"][1]["reasons"][0]["kind"] == "tensor" and d["calls"][1]["reasons"][0]["role"] == "old_grad"
assert all(r["kind"] == "size" and r["now_dynamic"] for r in d["calls"][2]["reasons"])
assert len(d["entries"][1]["dynamic_sizes"]) == len(d["calls"][2]["reasons"])
' "$tmp/out"; then ok; else bad "recompile --json: not the expected simulation"; fi
expect 0 recompile_emit_json -- "$bin" recompile --emit json "$src/traces/dynamic.cag"
if /usr/bin/python3 -c '
import json, sys
d = json.load(open(sys.argv[1]))
assert len(d) == 2 and all(p["ops"] for p in d)
assert any(isinstance(x, str) for i in d[1]["inputs"] for x in i["shape"]), "no size symbol in entry 1"
' "$tmp/out"; then ok; else bad "recompile --emit json: not the expected programs"; fi

# Several traces are one cache: the second copy of mlp.json hits both entries.
expect 0 recompile_two_files -- "$bin" recompile "$src/traces/mlp.cag" "$src/traces/mlp.cag"
contains "$tmp/out" "call 0 of $src/traces/mlp.cag: hit, entry 0" recompile_two_files
contains "$tmp/out" "2 hits: hit rate 50%" recompile_two_files

# A recorded run whose batch alternates: hits after the shape recompile, and
# every call's compiled program reproduces the recorded values.
expect 0 "record dynamic for recompile" -- "$bin" record --model dynamic --steps 5 --values all -o "$tmp/dyn5.json"
expect 0 recompile_dyn5 -- "$bin" recompile "$tmp/dyn5.json"
contains "$tmp/out" "call 3: hit, entry 1" recompile_dyn5
contains "$tmp/out" "call 4: hit, entry 1" recompile_dyn5
expect 0 recompile_dyn5_static -- "$bin" recompile --dynamic static "$tmp/dyn5.json"
contains "$tmp/out" "stays static" recompile_dyn5_static
contains "$tmp/out" "3 cache entries" recompile_dyn5_static
expect 0 "replay --compiled dyn5" -- "$bin" replay --compiled --check "$tmp/dyn5.json"
contains "$tmp/out" "as compiled autograd's programs" "replay --compiled dyn5"
contains "$tmp/out" "MATCH: " "replay --compiled dyn5"
# A divergence in a compiled program names the op by its recorded index.
expect 1 replay_compiled_altered -- "$bin" replay --compiled --check "$tmp/altered.json"
contains "$tmp/out" "DIVERGED at call 0, op $altered_op ($altered_name" replay_compiled_altered
for f in "$src"/traces/*.cag; do
  grep -q '"values":"all"' "$f" || continue
  expect 0 "replay --compiled --check $(basename "$f")" -- "$bin" replay --compiled --check "$f"
  contains "$tmp/out" "MATCH: " "replay --compiled --check $(basename "$f")"
done

expect 2 recompile_bad_dynamic -- "$bin" recompile --dynamic sometimes "$src/traces/mlp.cag"
one_line "$tmp/err" recompile_bad_dynamic
contains "$tmp/err" "cautograd recompile: unknown --dynamic mode 'sometimes'; use auto, static or all" recompile_bad_dynamic
expect 2 recompile_bad_emit -- "$bin" recompile --emit dot "$src/traces/mlp.cag"
contains "$tmp/err" "cautograd recompile: unknown --emit format 'dot'" recompile_bad_emit
expect 2 recompile_missing -- "$bin" recompile "$tmp/nope.json"
contains "$tmp/err" "cautograd recompile: $tmp/nope.json: cannot open" recompile_missing
expect 2 recompile_malformed -- "$bin" recompile "$src/tests/malformed/truncated.json"
one_line "$tmp/err" recompile_malformed

# --- record -- COMMAND ------------------------------------------------------------------
py=${CAUTOGRAD_TEST_PYTHON:-/usr/bin/python3}
expect 0 record_python -- "$bin" record --values all -o "$tmp/py.json" -- "$py" "$src/tests/programs/train.py"
contains "$tmp/out" "loss 0.99" record_python  # the program's stdout passes through
contains "$tmp/err" "6 backward calls of '$py' recorded to $tmp/py.json" record_python
expect 0 show_python -- "$bin" show "$tmp/py.json"
contains "$tmp/out" "ScaleBackward x1" show_python        # the Python custom Function, by name
contains "$tmp/out" "grad (create_graph)" show_python     # torch.autograd.grad with create_graph
expect 0 show_python_json -- "$bin" show --json "$tmp/py.json"
if PYTHONPATH=$src/tests /usr/bin/python3 - "$tmp/py.json" <<'PY'
import sys
from trace_json import load
t = load(sys.argv[1])
hooks = [h for c in t["calls"] for n in c["nodes"] for h in n["hooks"]]
assert any(h["kind"] == "tensor_pre_hook" and h["lang"] == "python"
           and h["type"] == "__main__.step.<locals>.<lambda>" for h in hooks), hooks
assert any(h["kind"] == "post_hook" and h["lang"] == "python" and h["type"] == "__main__.note_grads"
           for h in hooks), hooks
assert any(h["kind"] == "retain_grad" for h in hooks), hooks
leaf = [h for c in t["calls"] for n in c["nodes"] if n["type"] == "torch::autograd::AccumulateGrad" for h in n["hooks"]]
assert {"kind": "tensor_pre_hook", "lang": "python", "type": "__main__.leaf_hook"} in leaf, leaf
if t["meta"]["libtorch_version"].startswith("2."):
    assert {"kind": "post_accumulate_grad_hook", "lang": "python", "type": "__main__.after_accumulate"} in leaf, leaf
    assert any(h["kind"] == "pre_hook" and h["lang"] == "python" and h["type"] == "__main__.node_prehook"
               for h in hooks), hooks
PY
then ok; else bad "record python: hooks not recorded as the program registered them"; fi
expect 0 replay_python -- "$bin" replay --check "$tmp/py.json"
contains "$tmp/out" "MATCH: " replay_python

# Python custom Functions share one C++ node type (PyNode); each keeps its own name.
cat >"$tmp/two_functions.py" <<'PY'
import torch
class Double(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return x * 2
    @staticmethod
    def backward(ctx, g):
        return g * 2
class Negate(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return -x
    @staticmethod
    def backward(ctx, g):
        return -g
x = torch.randn(3, requires_grad=True)
for _ in range(2):
    Negate.apply(Double.apply(x)).sum().backward()
PY
expect 0 record_two_functions -- "$bin" record -o "$tmp/two.json" -- "$py" "$tmp/two_functions.py"
expect 0 show_two_functions -- "$bin" show "$tmp/two.json"
contains "$tmp/out" "DoubleBackward x1" show_two_functions
contains "$tmp/out" "NegateBackward x1" show_two_functions

expect 0 record_python_select -- "$bin" record --calls 1-5 --max-calls 2 -o "$tmp/py2.json" -- "$py" "$src/tests/programs/train.py"
contains "$tmp/err" "2 backward calls of" record_python_select

# Compiled autograd (2.x): each call it runs is recorded as its graph and
# compiled autograd's key, the eager calls around them whole, and the
# program's results are its own.
if "$py" -c 'import sys, torch; sys.exit(int(torch.__version__.split(".")[0]) < 2)' 2>/dev/null; then
  "$py" "$src/tests/programs/compiled.py" >"$tmp/ca_plain.out" 2>/dev/null
  expect 0 record_compiled_autograd -- "$bin" record --values all -o "$tmp/ca.json" -- "$py" "$src/tests/programs/compiled.py"
  if diff -q "$tmp/out" "$tmp/ca_plain.out" >/dev/null; then ok; else bad "compiled autograd: the program's output changed under the recorder"; fi
  contains "$tmp/err" "4 backward calls of '$py' recorded to" record_compiled_autograd
  if PYTHONPATH=$src/tests /usr/bin/python3 -c '
import sys
from trace_json import load
calls = load(sys.argv[1])["calls"]
ran = [c.get("compiled_autograd", {}).get("ran") for c in calls]
assert ran == ["eager", "compiled", "compiled", "compiled"], ran
assert all(not c["ops"] for c in calls[1:]) and calls[0]["ops"], "compiled calls have no ops, the eager one has"
assert calls[1]["compiled_autograd"]["nodes"][0]["type"] == "torch::autograd::GraphRoot"
' "$tmp/ca.json"; then ok; else bad "compiled autograd: calls 1-3 should be recorded as run by compiled autograd"; fi
  # recompile on that trace prints the lines compiled autograd logged in that very run.
  expect 0 ca_logged -- env TORCH_LOGS=compiled_autograd_verbose "$bin" record -o "$tmp/ca_logged.json" -- "$py" "$src/tests/programs/compiled.py"
  sed -n 's/.*\[__compiled_autograd_verbose\] \(Cache miss due to .*\)$/\1/p' "$tmp/err" >"$tmp/ca_real.log"
  expect 0 recompile_ca_logged -- "$bin" recompile --json --dynamic all "$tmp/ca_logged.json"
  /usr/bin/python3 -c 'import json,sys; [print(l) for c in json.load(open(sys.argv[1]))["calls"] for l in c["log"]]' "$tmp/out" >"$tmp/ca_ours.log"
  if [ "$(wc -l <"$tmp/ca_real.log")" -eq 2 ] && diff "$tmp/ca_real.log" "$tmp/ca_ours.log" >/dev/null; then ok; else bad "recompile should print the 2 lines compiled autograd logged: real: $(cat "$tmp/ca_real.log") ours: $(cat "$tmp/ca_ours.log")"; fi
  contains "$tmp/err" "3 of 4 calls ran under compiled autograd" recompile_ca_logged
  expect 0 replay_compiled_autograd -- "$bin" replay --check "$tmp/ca.json"
  contains "$tmp/out" "MATCH: " replay_compiled_autograd
  contains "$tmp/err" "3 of 4 calls ran under compiled autograd (graph and key only, no ops): not replayed" replay_compiled_autograd
  expect 2 replay_compiled_call -- "$bin" replay --call 1 "$tmp/ca.json"
  contains "$tmp/err" "call 1 ran under compiled autograd" replay_compiled_call
fi

if [ -n "$train_cpp" ]; then
  expect 0 record_cpp -- "$bin" record --values all -o "$tmp/cpp.json" -- "$train_cpp" 3
  contains "$tmp/out" "loss " record_cpp
  contains "$tmp/err" "3 backward calls of" record_cpp
  expect 0 replay_cpp -- "$bin" replay --check "$tmp/cpp.json"
  contains "$tmp/out" "MATCH: " replay_cpp
fi

# COMMAND's exit status passes through, and a crash keeps the calls made before it.
expect 7 record_exit_status -- "$bin" record -o "$tmp/exit.json" -- "$py" -c "import sys; sys.exit(7)"
contains "$tmp/err" "0 backward calls of '$py', which exited with status 7" record_exit_status
# --values inputs: what a replay starts from and the final gradients; replay
# --check still proves the result, from a smaller trace than --values all.
expect 0 record_inputs -- "$bin" record --model mlp --values inputs -o "$tmp/inputs.cag"
expect 0 record_inputs_all -- "$bin" record --model mlp --values all -o "$tmp/inputs-all.cag"
if [ "$(stat -c %s "$tmp/inputs.cag")" -lt "$(stat -c %s "$tmp/inputs-all.cag")" ]; then ok; else
  bad "--values inputs is not smaller than --values all"; fi
expect 0 replay_inputs -- "$bin" replay --check "$tmp/inputs.cag"
contains "$tmp/out" "MATCH: " replay_inputs
expect 0 diff_inputs -- "$bin" diff "$tmp/inputs.cag" "$tmp/inputs-all.cag"
contains "$tmp/out" "final gradients are compared, op outputs are not" diff_inputs

# os._exit skips atexit handlers: the calls the stream's thread had not yet
# written are waited for (libcautograd_preload.so wraps _exit).
printf 'import os, torch\nx = torch.randn(3, requires_grad=True)\nfor i in range(5):\n    (x * x).sum().backward()\nos._exit(3)\n' >"$tmp/osexit.py"
expect 3 record_os_exit -- "$bin" record --values all -o "$tmp/osexit.cag" -- "$py" "$tmp/osexit.py"
contains "$tmp/err" "5 backward calls of '$py', which exited with status 3" record_os_exit
expect 0 replay_os_exit -- "$bin" replay --check "$tmp/osexit.cag"
expect 139 record_crash -- "$bin" record -o "$tmp/crash.json" -- "$py" "$src/tests/programs/train.py" --steps 5 --crash-after 3
contains "$tmp/err" "3 backward calls of '$py', which was killed by Segmentation fault" record_crash
expect 0 replay_crash -- "$bin" show "$tmp/crash.json"
if ls "$tmp" | grep -q 'calls-'; then bad "record left its call folder behind"; else ok; fi

# Refused before anything runs.
expect 2 record_not_found -- "$bin" record -o "$tmp/x.json" -- no-such-program-here
contains "$tmp/err" "cautograd record: command not found 'no-such-program-here'" record_not_found
mkdir -p "$tmp/fakepy"
printf '#!/bin/sh\nexit 1\n' >"$tmp/fakepy/python3"
chmod +x "$tmp/fakepy/python3"
expect 2 record_python_without_torch -- "$bin" record -o "$tmp/x.json" -- "$tmp/fakepy/python3" train.py
contains "$tmp/err" "cannot import torch; record with a Python that has it" record_python_without_torch
expect 2 record_both -- "$bin" record --model mlp -o "$tmp/x.json" -- "$py" -c pass
contains "$tmp/err" "not both" record_both

# --- bench: structure only, never timings -------------------------------------
expect 0 bench_model -- "$bin" bench --model mlp --iters 3 --warmup 1 --json
if python3 - "$tmp/out" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert b["mode"] == "model" and b["model"] == "mlp" and b["iters"] == 3, b
assert b["check"]["passed"] is True and b["check"]["leaves"] == 6, b["check"]
for row in ("eager backward", "replay", "compiled", "kernels (floor)"):
    t = b["timings"][row]
    assert t["p10_us"] <= t["median_us"] <= t["p90_us"] and t["median_us"] > 0, (row, t)
    assert "ratio_to_eager" in t, row
assert b["timings"]["compiled"]["ops"] > 0
PY
then ok; else bad "bench --model mlp --json: fields missing or inconsistent"; fi
expect 0 bench_model_text -- "$bin" bench --model doublegrad --iters 2 --warmup 0
contains "$tmp/out" "checked: replay and compiled give eager's gradients" bench_model_text
contains "$tmp/out" "kernels (floor)" bench_model_text
expect 0 bench_record -- "$bin" record --model lstm --steps 2 --values all -o "$tmp/bench.json"
expect 0 bench_file -- "$bin" bench "$tmp/bench.json" --iters 2 --warmup 0 --json
if python3 - "$tmp/out" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert b["mode"] == "file" and b["calls"] == 2 and b["checked"] is True, b
assert b["load"]["bytes"] > 0 and b["load"]["mb_per_s"] > 0, b["load"]
assert set(b["timings"]) == {"replay", "replay kernels", "compiled", "compiled kernels"}, b["timings"]
assert b["top_ops"] and b["top_nodes"] and "interpreter_overhead_us_per_op" in b
PY
then ok; else bad "bench FILE --json: fields missing or inconsistent"; fi
expect 0 bench_file_text -- "$bin" bench "$tmp/bench.json" --iters 2 --warmup 0
contains "$tmp/out" "MB/s" bench_file_text
contains "$tmp/out" "most expensive ops:" bench_file_text
expect 0 bench_record_overhead -- "$bin" bench --record-overhead --model mlp --steps 3 --iters 1 --warmup 0 --json
if python3 - "$tmp/out" <<'PY'
import json, sys
b = json.load(open(sys.argv[1]))
assert set(b["timings"]) == {"off", "idle", "callbacks only", "values none", "values ints", "values all"}, b["timings"]
assert b["timings"]["off"]["ratio_to_off"] == 1
PY
then ok; else bad "bench --record-overhead --json: fields missing"; fi
expect 2 bench_neither -- "$bin" bench
one_line "$tmp/err" bench_neither
contains "$tmp/err" "cautograd bench: give a trace FILE or --model NAME" bench_neither
expect 2 bench_unknown_model -- "$bin" bench --model nosuch
one_line "$tmp/err" bench_unknown_model
contains "$tmp/err" "unknown model 'nosuch'" bench_unknown_model
expect 2 bench_overhead_needs_model -- "$bin" bench --record-overhead "$tmp/bench.json"
contains "$tmp/err" "--record-overhead needs --model NAME" bench_overhead_needs_model
expect 2 bench_missing_file -- "$bin" bench "$tmp/nope.json"
one_line "$tmp/err" bench_missing_file
expect 2 bench_bad_iters -- "$bin" bench --model mlp --iters 0
one_line "$tmp/err" bench_bad_iters

# --- diff -------------------------------------------------------------------------
# Golden renderings, named after their inputs and flags, with the exit status
# each must give (tests/diff_golden/cases).
while read -r expected status args; do
  case "$expected" in '' | '#'*) continue ;; esac
  # shellcheck disable=SC2086  # the arguments are words on purpose
  (cd "$src" && "$bin" diff $args) >"$tmp/golden.out" 2>"$tmp/err"
  got=$?
  if [ "$got" -eq "$status" ]; then ok; else bad "diff golden $expected: exit $got, expected $status"; fi
  if diff -b "$src/tests/diff_golden/$expected" "$tmp/golden.out" >"$tmp/golden.diff"; then ok; else
    bad "diff golden $expected differs (tests/diff_golden/regenerate.sh rewrites it): $(head -c 600 "$tmp/golden.diff")"
  fi
done <"$src/tests/diff_golden/cases"

# Recorded here and now: the same model twice is the same; a batch size is a
# recompile for every batch dimension, and not a change of the graph.
expect 0 "record mlp for diff" -- "$bin" record --model mlp --seed 3 --batch 2 --values all -o "$tmp/d2.json"
expect 0 "record mlp again for diff" -- "$bin" record --model mlp --seed 3 --batch 2 --values all -o "$tmp/d2b.json"
expect 0 "record mlp batch 4 for diff" -- "$bin" record --model mlp --seed 3 --batch 4 --values all -o "$tmp/d4.json"
expect 0 diff_same_model -- "$bin" diff "$tmp/d2.json" "$tmp/d2b.json"
contains "$tmp/out" "SAME: no differences in graph, numerics, guards, ops" diff_same_model
expect 1 diff_batch -- "$bin" diff "$tmp/d2.json" "$tmp/d4.json" --format json
if /usr/bin/python3 - "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["result"] == "fail" and "guards" in d["failing"] and d["counts"]["graph"] == 0, d["counts"]
sizes = [x for x in d["differences"] if x["group"] == "guards"]
assert sizes and all(x["kind"] == "size" and x["changes"][0]["old"] == "2" and x["changes"][0]["new"] == "4" for x in sizes)
PY
then ok; else bad "diff batch 2 vs 4 --format json: not a guards-size failure"; fi
expect 0 diff_batch_call -- "$bin" diff "$tmp/d2.json" "$tmp/d4.json" --call 0 --fail-on graph
contains "$tmp/out" "PASS: differences in" diff_batch_call
if grep -q $'\033' "$tmp/out"; then bad "diff wrote colour to a pipe"; else ok; fi
expect 0 diff_help -- "$bin" --help
contains "$tmp/out" "1 diff found differences" diff_help
contains "$tmp/out" "diff" diff_help

# Bad input: exit 2 and one line that says what and how to fix it.
expect 2 diff_bad_group -- "$bin" diff "$src/traces/mlp.cag" "$src/traces/mlp.cag" --fail-on graph,speed
one_line "$tmp/err" diff_bad_group
contains "$tmp/err" "cautograd diff: unknown group 'speed' in --fail-on; use graph, guards, ops, numerics, timing" diff_bad_group
expect 2 diff_bad_format -- "$bin" diff "$src/traces/mlp.cag" "$src/traces/mlp.cag" --format html
contains "$tmp/err" "cautograd diff: unknown --format 'html'; use text, json or markdown" diff_bad_format
expect 2 diff_bad_call -- "$bin" diff "$src/traces/mlp.cag" "$src/traces/embedding.cag" --call 1
one_line "$tmp/err" diff_bad_call
contains "$tmp/err" "cautograd diff: no call 1 in '$src/traces/embedding.cag': it has 1 (numbered from 0)" diff_bad_call
expect 2 diff_missing -- "$bin" diff "$src/traces/mlp.cag" "$tmp/nope.json"
contains "$tmp/err" "cautograd diff: $tmp/nope.json: cannot open" diff_missing
expect 2 diff_malformed -- "$bin" diff "$src/tests/malformed/truncated.json" "$src/traces/mlp.cag"
one_line "$tmp/err" diff_malformed
expect 2 diff_one_file -- "$bin" diff "$src/traces/mlp.cag"
one_line "$tmp/err" diff_one_file

finish
