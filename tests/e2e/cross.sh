#!/usr/bin/env bash
# End-to-end tests across two backends: the same model recorded under two
# libtorches and diffed ("did upgrading PyTorch change my gradients?"), a
# trace replayed by the other backend, a program tree whose processes use
# different torches, and a program whose torch no backend has.
# Usage: cross.sh CAUTOGRAD SOURCE_DIR OLD_VERSION NEW_VERSION OLD_PYTHON NEW_PYTHON
set -uo pipefail
bin=$1 src=$2 old=$3 new=$4 old_py=$5 new_py=$6
source "$(dirname "$0")/lib.sh"

# The same model, seed and batch under both torches.
for v in "$old" "$new"; do
  expect 0 "record_$v" -- "$bin" record --torch "$v" --model mlp --values all -o "$tmp/mlp-$v.json"
  expect 0 "replay_$v" -- "$bin" replay --check "$tmp/mlp-$v.json"
  contains "$tmp/out" "MATCH: " "replay_$v"
done
# Each trace names its libtorch, and replay picks the backend that recorded it.
contains "$tmp/mlp-$new.json" "\"libtorch_version\":\"$new\"" trace_names_libtorch
# The upgrade, diffed: same graph and ops; gradients within tolerance.
expect 0 diff_versions -- "$bin" diff "$tmp/mlp-$old.json" "$tmp/mlp-$new.json" --fail-on graph,numerics
expect 0 diff_versions_md -- "$bin" diff "$tmp/mlp-$old.json" "$tmp/mlp-$new.json" --format markdown
contains "$tmp/out" "$old" diff_versions_md
contains "$tmp/out" "$new" diff_versions_md

# A trace replayed by the other backend: what both schemas agree on replays.
expect 0 replay_across -- "$bin" replay --torch "$new" --check "$tmp/mlp-$old.json"
contains "$tmp/out" "MATCH: " replay_across
# An op whose recorded arguments are not the replaying torch's is refused
# before anything runs, naming both versions.
# (edited as version 1 text, whose values are inside the JSON)
"$bin" convert --to 1 "$tmp/mlp-$old.json" -o "$tmp/mlp-$old-v1.json" >/dev/null
/usr/bin/python3 - "$tmp/mlp-$old-v1.json" "$tmp/renamed.json" <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
op = next(o for o in t["calls"][0]["ops"] if o["op"] == "aten::mm")
op["args"][1]["name"] = "other_renamed"
json.dump(t, open(sys.argv[2], "w"))
PY
expect 2 replay_schema_differs -- "$bin" replay --torch "$new" --check "$tmp/renamed.json"
contains "$tmp/err" "its schema differs between torch $old" replay_schema_differs
contains "$tmp/err" "and torch $new" replay_schema_differs
one_line "$tmp/err" replay_schema_differs

# A parent on one torch starting a child on the other: the child runs
# untouched and says it is not recorded; the parent's calls are.
cat >"$tmp/parent.py" <<PY
import subprocess, sys, torch
x = torch.ones(3, requires_grad=True)
(x * 2).sum().backward()
r = subprocess.run(["$old_py", "-c", "import torch; x = torch.ones(2, requires_grad=True); (x * 3).sum().backward(); print('child', x.grad.tolist())"])
sys.exit(r.returncode)
PY
expect 0 record_mixed_tree -- "$bin" record -o "$tmp/mixed.json" -- "$new_py" "$tmp/parent.py"
contains "$tmp/out" "child [3.0, 3.0]" record_mixed_tree
contains "$tmp/err" "not the one this recording is for" record_mixed_tree
contains "$tmp/err" "1 backward call of '$new_py'" record_mixed_tree

# A Python whose torch no backend has is refused before it runs.
mkdir -p "$tmp/faketorch/lib" "$tmp/fakepy"
: >"$tmp/faketorch/lib/libc10.so"
printf '#!/bin/sh\nprintf "9.9.9\\n%s\\n" "%s"\n' '%s' "$tmp/faketorch" >"$tmp/fakepy/python3"
chmod +x "$tmp/fakepy/python3"
expect 2 record_unknown_torch -- "$bin" record -o "$tmp/x.json" -- "$tmp/fakepy/python3" train.py
contains "$tmp/err" "imports torch 9.9.9" record_unknown_torch
contains "$tmp/err" "scripts/setup.sh --torch-python $tmp/fakepy/python3" record_unknown_torch
one_line "$tmp/err" record_unknown_torch
expect 2 record_unknown_backend -- "$bin" record --torch 0.0.1 --model mlp -o "$tmp/x.json"
contains "$tmp/err" "no backend for torch '0.0.1'" record_unknown_backend

finish
