#!/usr/bin/env bash
# End-to-end tests of the picture commands, which need no libtorch: report,
# export --chrome-trace and dot, on the golden traces and on bad input.
# (tests/browser/test_report.py opens the reports in Chromium.)
# Usage: report.sh CAUTOGRAD SOURCE_DIR
set -uo pipefail
bin=$1
src=$2
source "$(dirname "$0")/lib.sh"
traces=$src/traces

# --- report ---------------------------------------------------------------------
for t in "$traces"/*.cag; do
  m=$(basename "$t" .cag)
  expect 0 "report $m" -- "$bin" report "$t" -o "$tmp/$m.html"
  contains "$tmp/$m.html" '<script id="cautograd-data" type="application/json">' "report $m: data island"
  contains "$tmp/out" "wrote $tmp/$m.html" "report $m: says what it wrote"
  # Self-contained: nothing is fetched when it opens.
  if grep -qE '(src|href)="https?:' "$tmp/$m.html"; then bad "report $m: links a network resource"; else ok; fi
done
expect 0 report_diff -- "$bin" report "$traces/mlp.cag" "$traces/hooks.cag" -o "$tmp/diff.html"
contains "$tmp/out" "with the diff" report_diff
contains "$tmp/diff.html" '"diff":{' report_diff
expect 0 report_calls -- "$bin" report "$traces/dynamic.cag" --calls 1 -o "$tmp/one.html"
contains "$tmp/out" "1 call," report_calls
expect 2 report_no_call -- "$bin" report "$traces/mlp.cag" --calls 7 -o "$tmp/none.html"
one_line "$tmp/err" report_no_call
contains "$tmp/err" "no call of" report_no_call
expect 2 report_missing -- "$bin" report "$tmp/nope.cag" -o "$tmp/x.html"
one_line "$tmp/err" report_missing
expect 2 report_needs_output -- "$bin" report "$traces/mlp.cag"
# A trace that cannot be trusted is refused, and what the user had survives.
echo keep >"$tmp/keep.html"
for bad_trace in "$src"/tests/malformed/*.json; do
  expect 2 "report $(basename "$bad_trace")" -- "$bin" report "$bad_trace" -o "$tmp/keep.html"
  one_line "$tmp/err" "report $(basename "$bad_trace")"
done
if [ "$(cat "$tmp/keep.html")" = keep ]; then ok; else bad "report: a refused trace replaced the output file"; fi

# Without Graphviz: a clear line, and --no-graph draws everything else.
expect 2 report_no_dot -- env PATH=/nonexistent "$bin" report "$traces/mlp.cag" -o "$tmp/nodot.html"
one_line "$tmp/err" report_no_dot
contains "$tmp/err" "--no-graph" report_no_dot
expect 0 report_no_graph -- env PATH=/nonexistent "$bin" report "$traces/mlp.cag" --no-graph -o "$tmp/nodot.html"
contains "$tmp/nodot.html" "written with --no-graph" report_no_graph
expect 2 report_bad_dot -- "$bin" report "$traces/mlp.cag" --dot "$tmp/no/dot" -o "$tmp/x.html"
contains "$tmp/err" "cannot run" report_bad_dot
# A dot that crashes or hangs costs a message, not the report.
printf '#!/bin/sh\nkill -SEGV $$\n' >"$tmp/crashing-dot" && chmod +x "$tmp/crashing-dot"
expect 3 report_dot_crashes -- "$bin" report "$traces/mlp.cag" --dot "$tmp/crashing-dot" -o "$tmp/crash.html"
contains "$tmp/err" "dot crashed (signal 11)" report_dot_crashes
contains "$tmp/crash.html" "dot crashed" report_dot_crashes
printf '#!/bin/sh\nexec sleep 30\n' >"$tmp/hanging-dot" && chmod +x "$tmp/hanging-dot"
expect 3 report_dot_hangs -- "$bin" report "$traces/mlp.cag" --dot "$tmp/hanging-dot" --layout-timeout 1 -o "$tmp/hang.html"
contains "$tmp/err" "dot took more than 1 s" report_dot_hangs

# --- export --chrome-trace ------------------------------------------------------------
check_chrome() {  # check_chrome FILE NAME: valid, and every track's events nest
  if python3 - "$1" <<'PY'; then ok; else bad "$2: not a well-nested Chrome trace"; fi
import gzip, json, sys
path = sys.argv[1]
data = json.load(gzip.open(path) if path.endswith(".gz") else open(path))
events = [e for e in data["traceEvents"] if e["ph"] == "X"]
assert events and all(e["dur"] >= 0 for e in events)
tracks = {}
for e in events:
    tracks.setdefault((e["pid"], e["tid"]), []).append(e)
for evs in tracks.values():
    evs.sort(key=lambda e: (e["ts"], -e["dur"]))
    stack = []
    for e in evs:
        while stack and e["ts"] >= stack[-1] - 1e-6:
            stack.pop()
        assert not stack or e["ts"] + e["dur"] <= stack[-1] + 1e-6, e
        stack.append(e["ts"] + e["dur"])
nodes = sum(e["cat"] == "node" for e in events)
ops = sum(e["cat"] == "op" for e in events)
assert nodes > 0 and ops > 0
PY
}
expect 0 export_json -- "$bin" export "$traces/lstm.cag" --chrome-trace -o "$tmp/lstm.json"
check_chrome "$tmp/lstm.json" export_json
expect 0 export_gz -- "$bin" export "$traces/dynamic.cag" --chrome-trace -o "$tmp/dyn.json.gz"
check_chrome "$tmp/dyn.json.gz" export_gz
expect 2 export_format_required -- "$bin" export "$traces/lstm.cag" -o "$tmp/x.json"
expect 2 export_missing -- "$bin" export "$tmp/nope.cag" --chrome-trace -o "$tmp/x.json"
one_line "$tmp/err" export_missing

# --- dot -------------------------------------------------------------------------
expect 0 dot_mlp -- "$bin" dot "$traces/mlp.cag" --call 1
contains "$tmp/out" 'digraph "call 1"' dot_mlp
if dot -Tsvg "$tmp/out" >/dev/null 2>&1; then ok; else bad "dot_mlp: Graphviz cannot read it"; fi
expect 0 dot_all_calls -- "$bin" dot "$traces/dynamic.cag"
contains "$tmp/out" "cluster_call2" dot_all_calls
if dot -Tsvg "$tmp/out" >/dev/null 2>&1; then ok; else bad "dot_all_calls: Graphviz cannot read it"; fi
expect 0 dot_collapse -- "$bin" dot "$traces/lstm.cag" --collapse
contains "$tmp/out" "shape=box3d" dot_collapse
expect 2 dot_no_call -- "$bin" dot "$traces/mlp.cag" --call 5
one_line "$tmp/err" dot_no_call

finish
