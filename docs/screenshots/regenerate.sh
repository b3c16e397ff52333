#!/usr/bin/env bash
# Regenerates docs/screenshots/<model>.png: the report of each golden trace
# (traces/<model>.cag), opened in headless Chromium at 1280x800, as a person
# first sees it. Run after a change to the report's page or to the goldens.
# Usage: docs/screenshots/regenerate.sh [path/to/cautograd] [CHROMIUM]
set -euo pipefail
cd "$(dirname "$0")/../.."
bin=${1:-build/cautograd}
chromium=${2:-/usr/bin/chromium}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for t in traces/*.cag; do
  m=$(basename "$t" .cag)
  # The name the page shows is the one given here: keep it short.
  (cd traces && "../$bin" report "$m.cag" -o "$tmp/$m.html" >/dev/null)
done
/usr/bin/python3 - "$tmp" "$chromium" docs/screenshots <<'PY'
import os, sys
sys.path.insert(0, "tests/browser")
import cdp
src, chromium, out = sys.argv[1:]
with cdp.Browser(chromium, width=1280, height=800) as b:
    for name in sorted(os.listdir(src)):
        b.open(os.path.join(src, name))
        # A node with hooks if there is one, else the slowest: its details show.
        key = b.eval("""(() => { const c = window.cautogradReport.data.traces[0].calls[0];
            const n = c.nodes.find(n => n.hooks) || [...c.nodes].sort((a, b) => b.dur - a.dur)[0];
            return 'n' + n.id; })()""")
        b.eval(f"window.cautogradReport.revealNode({int(key[1:])})")
        b.click("#fit")
        b.screenshot(os.path.join(out, name.replace(".html", ".png")))
        print("wrote", os.path.join(out, name.replace(".html", ".png")))
PY
