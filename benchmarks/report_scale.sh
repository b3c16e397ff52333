#!/usr/bin/env bash
# How `cautograd report` scales, measured: records a 24-layer transformer
# (~1,350 nodes), densenet121 (797 nodes, 1,331 edges; needs torchvision in
# the venv, skipped without) and a 90-layer transformer (~5,000 nodes) with
# benchmarks/report_models.py, then for each: the time and peak memory to
# write the report, its size, and in headless Chromium (tests/browser/cdp.py)
# the time from navigation to drawn, and to expand every collapsed box.
#
# Usage: benchmarks/report_scale.sh [path/to/cautograd] [VENV_PYTHON] [CHROMIUM]
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/cautograd}
py=${2:-.venvs/torch-2.13.0/bin/python}
chromium=${3:-/usr/bin/chromium}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

models=("tf24 transformer 24" "densenet121 densenet121" "tf90 transformer 90")
printf '%-12s %6s %6s %9s %8s %9s %9s %10s\n' model nodes edges write_s rss_mb html_mb open_ms expand_ms
for m in "${models[@]}"; do
  read -r name args <<<"$m"
  if [ "$name" = densenet121 ] && ! "$py" -c 'import torchvision' 2>/dev/null; then
    echo "densenet121: skipped ($py has no torchvision)"
    continue
  fi
  # shellcheck disable=SC2086
  "$bin" record --values none -o "$tmp/$name.cag" -- "$py" benchmarks/report_models.py $args 2>/dev/null
  read -r nodes edges < <("$bin" show "$tmp/$name.cag" | awk '/^  nodes/ {print $2, $5; exit}')
  /usr/bin/time -f '%e %M' -o "$tmp/time" "$bin" report "$tmp/$name.cag" -o "$tmp/$name.html" >/dev/null
  read -r secs kb <"$tmp/time"
  size=$(stat -c %s "$tmp/$name.html")
  read -r open_ms expand_ms < <(/usr/bin/python3 - "$tmp/$name.html" "$chromium" <<'PY'
import sys, time
sys.path.insert(0, "tests/browser")
import cdp
with cdp.Browser(sys.argv[2]) as b:
    b.open(sys.argv[1])  # warm: the first page a fresh browser opens pays its start-up
    ready = b.open(sys.argv[1])
    t = time.monotonic()
    b.eval("document.getElementById('expand-all').click()")
    b.eval("new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
    print(f"{ready:.0f} {(time.monotonic() - t) * 1000:.0f}")
PY
)
  printf '%-12s %6s %6s %9s %8d %9.1f %9s %10s\n' "$name" "$nodes" "$edges" "$secs" $((kb / 1024)) \
    "$(awk -v s="$size" 'BEGIN {print s / 1048576}')" "$open_ms" "$expand_ms"
done
echo "(write_s: cautograd report, dot included, on $(nproc) cores; open_ms: navigation to drawn; expand_ms: Expand all to painted)"
