#!/usr/bin/env bash
# End-to-end tests of `cautograd repro --emit python`: the programs it
# writes run with the backend's own Python and torch alone, pass on the
# traces they came from and fail, naming the op, where a recorded output
# was changed. Run once per backend that has a Python.
# Usage: repro.sh CAUTOGRAD SOURCE_DIR PYTHON   (CAUTOGRAD_TORCH: the backend)
set -uo pipefail
bin=$1
src=$2
py=$3
source "$(dirname "$0")/lib.sh"
runpy() { "$py" -W ignore "$@"; }

expect 0 record_all -- "$bin" record --model mlp --values all -o "$tmp/mlp.cag"
# record says what tensor data the file holds, so nobody posts it by accident.
contains "$tmp/err" "values: all, " record_says_what_it_holds
contains "$tmp/err" "the model's weights" record_says_what_it_holds
expect 0 record_program_none -- "$bin" record --values none -o "$tmp/none.cag" -- "$py" "$src/tests/programs/train.py" --steps 1
contains "$tmp/err" "values: none, no tensor data" record_program_none
expect 0 repro_all -- "$bin" repro "$tmp/mlp.cag" --emit python -o "$tmp/r.py"
contains "$tmp/out" "recorded outputs to check" repro_all
contains "$tmp/out" "it holds recorded values" repro_all
expect 0 repro_runs -- runpy "$tmp/r.py"
contains "$tmp/out" "recorded outputs match" repro_runs
if grep -q " do not" "$tmp/out"; then bad "repro_runs: a mismatch on its own trace: $(cat "$tmp/out")"; else ok; fi

# A range, and inputs in a side file beside the program.
expect 0 repro_range -- "$bin" repro "$tmp/mlp.cag" --ops 10-12 --emit python -o "$tmp/range.py"
contains "$tmp/out" "3 ops" repro_range
expect 0 repro_range_runs -- runpy "$tmp/range.py"
expect 0 record_inputs -- "$bin" record --model cnn --values inputs -o "$tmp/cnn.cag"
expect 0 repro_side_file -- "$bin" repro "$tmp/cnn.cag" --emit python --inline-limit 64 -o "$tmp/side.py"
if [ -s "$tmp/side.bin" ]; then ok; else bad "repro_side_file: no side.bin beside side.py"; fi
contains "$tmp/out" "in $tmp/side.bin" repro_side_file
mkdir -p "$tmp/moved" && cp "$tmp/side.py" "$tmp/side.bin" "$tmp/moved/"
expect 0 repro_side_file_runs -- runpy "$tmp/moved/side.py"

# A planted divergence: one recorded output changed; the program names the op.
expect 0 to_v1 -- "$bin" convert --to 1 "$tmp/mlp.cag" -o "$tmp/mlp.json"
planted=$(python3 - "$tmp/mlp.json" "$tmp/planted.json" <<'PY'
import base64, json, struct, sys
t = json.load(open(sys.argv[1]))
c = t["calls"][0]
ops = {o["index"] if "index" in o else i: o for i, o in enumerate(c["ops"])}
for v in c["values"]:
    if v["when"] == "after_op" and v["dtype"] == "float32" and v["numel"] > 0:
        raw = bytearray(base64.b64decode(v["data"]))
        raw[0:4] = struct.pack("<f", struct.unpack("<f", raw[0:4])[0] + 1000.0)
        v["data"] = base64.b64encode(bytes(raw)).decode()
        import zlib
        v["crc32"] = "%08x" % zlib.crc32(bytes(raw))
        print(v["op"])
        break
json.dump(t, open(sys.argv[2], "w"))
PY
)
expect 0 repro_planted -- "$bin" repro "$tmp/planted.json" --emit python -o "$tmp/planted.py"
expect 1 repro_planted_fails -- runpy "$tmp/planted.py"
contains "$tmp/out" "MISMATCH op $planted " repro_planted_fails
contains "$tmp/out" "1 do not" repro_planted_fails

# Refusals: one line, nothing written.
expect 0 record_ints -- "$bin" record --model mlp -o "$tmp/ints.cag"
expect 2 repro_no_values -- "$bin" repro "$tmp/ints.cag" --emit python -o "$tmp/none.py"
one_line "$tmp/err" repro_no_values
contains "$tmp/err" "--values inputs" repro_no_values
if [ -e "$tmp/none.py" ]; then bad "repro_no_values: wrote a program"; else ok; fi
expect 2 repro_bad_emit -- "$bin" repro "$tmp/mlp.cag" --emit rust -o "$tmp/x.py"
expect 2 repro_bad_range -- "$bin" repro "$tmp/mlp.cag" --ops 9-3 --emit python -o "$tmp/x.py"
expect 2 repro_empty_range -- "$bin" repro "$tmp/mlp.cag" --ops 5000 --emit python -o "$tmp/x.py"
one_line "$tmp/err" repro_empty_range
expect 2 repro_no_call -- "$bin" repro "$tmp/mlp.cag" --call 9 --emit python -o "$tmp/x.py"

# A hostile trace cannot put code in the program: names are data, operator
# names that are not identifiers are refused.
python3 - "$tmp/mlp.json" "$tmp/evil.json" "$tmp/evil-op.json" "$tmp/pwned" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
evil = "x'); open(" + repr(sys.argv[4]) + ", 'w'); ('\n\\"
for tensor in t["calls"][0]["tensors"]:
    tensor["name"] = evil
json.dump(t, open(sys.argv[2], "w"))
t["calls"][0]["ops"][0]["op"] = "aten::mm; open(" + repr(sys.argv[4]) + ", 'w')"
json.dump(t, open(sys.argv[3], "w"))
PY
expect 0 repro_evil_names -- "$bin" repro "$tmp/evil.json" --emit python -o "$tmp/evil.py"
expect 0 repro_evil_runs -- runpy "$tmp/evil.py"
if [ -e "$tmp/pwned" ]; then bad "repro_evil_runs: the trace's names ran as code"; else ok; fi
expect 2 repro_evil_op -- "$bin" repro "$tmp/evil-op.json" --emit python -o "$tmp/evil-op.py"
one_line "$tmp/err" repro_evil_op
contains "$tmp/err" "not an operator name" repro_evil_op

finish
