#!/usr/bin/env bash
# Shapes of backward graph that ordinary training code builds (one program
# each in this folder; its first docstring says which). Each must record
# whole under `cautograd record --values all -- PYTHON PROGRAM`: exit 0,
# every backward call it makes in the trace (the count is on the program's
# "# calls: N" line), none skipped; and `replay --check` must reproduce
# every recorded value exactly (worst abs error 0). mixed.py is the one
# program with a call the recorder cannot record: it checks that the calls
# around it are kept, that the trace names it, and record's exit status.
# Usage: run.sh CAUTOGRAD PYTHON [PROGRAM...]  (ctest: shapes-torch-VERSION)
set -uo pipefail
bin=$1
py=$2
shift 2
here=$(cd "$(dirname "$0")" && pwd)
source "$here/../../e2e/lib.sh"

[ $# -eq 0 ] && set -- $(cd "$here" && ls ./*.py | sed 's|^\./||; s|\.py$||')
shapes=()
run_mixed=0
for name in "$@"; do
  if [ "$name" = mixed ]; then run_mixed=1; else shapes+=("$name"); fi
done
for name in "${shapes[@]}"; do
  prog=$here/$name.py
  want=$(sed -n 's/^# calls: \([0-9]*\)$/\1/p' "$prog")
  t=$tmp/$name.json
  expect 0 "$name: record" -- "$bin" record --values all -o "$t" -- "$py" "$prog"
  if grep -q "not recorded" "$tmp/err"; then bad "$name: a call was skipped: $(grep 'not recorded' "$tmp/err" | head -c 600)"; else ok; fi
  got=$(PYTHONPATH=$here/../.. /usr/bin/python3 -c 'import sys; from trace_json import load; t=load(sys.argv[1]); print(len(t["calls"]), len(t.get("skipped", [])))' "$t" 2>/dev/null)
  if [ "$got" = "$want 0" ]; then ok; else bad "$name: recorded calls, skipped: '$got'; the program makes $want"; fi
  expect 0 "$name: replay --check" -- "$bin" replay --check "$t"
  contains "$tmp/out" "worst abs error 0," "$name: replay --check"
done

# One call the recorder cannot represent, between two it can.
if [ "$run_mixed" = 1 ]; then
  t=$tmp/mixed.json
  expect 4 "mixed: record" -- "$bin" record --values all -o "$t" -- "$py" "$here/mixed.py"
  contains "$tmp/err" "1 chosen backward call was not recorded" "mixed: record's last line"
  contains "$tmp/err" "exit status 4 (--allow-skipped accepts a partial trace)" "mixed: record's last line"
  if PYTHONPATH=$here/../.. /usr/bin/python3 - "$t" <<'PY'
import sys
from trace_json import load
t = load(sys.argv[1])
assert len(t["calls"]) == 2, len(t["calls"])
assert len(t["skipped"]) == 1, t["skipped"]
s = t["skipped"][0]
assert s["program_call"] == 1 and s["process"] > 0, s
assert "\n" not in s["reason"] and "Exception raised from" not in s["reason"], s["reason"]
PY
  then ok; else bad "mixed: the trace does not hold the two good calls and name the skipped one"; fi
  expect 0 "mixed: show" -- "$bin" show "$t"
  contains "$tmp/out" "skipped  1 chosen call could not be recorded" "mixed: show"
  expect 0 "mixed: replay --check" -- "$bin" replay --check "$t"
  expect 0 "mixed: --allow-skipped" -- "$bin" record --allow-skipped -o "$t" -- "$py" "$here/mixed.py"
fi
finish
