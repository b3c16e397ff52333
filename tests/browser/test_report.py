"""The HTML report in a real browser: Debian's chromium, headless, driven
over the DevTools protocol (cdp.py). Each report is written by the real
binary from the golden traces; what the page shows is checked against the
trace itself, read here with the standard library (tests/trace_json.py).

Usage: test_report.py CAUTOGRAD SOURCE_DIR [CHROMIUM]"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
import cdp  # noqa: E402
import trace_json  # noqa: E402

binary, source = sys.argv[1], sys.argv[2]
chromium = sys.argv[3] if len(sys.argv) > 3 else "/usr/bin/chromium"
tmp = tempfile.mkdtemp(prefix="cautograd-browser-")
passed = failed = 0


def check(ok, what):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what, file=sys.stderr)


def report(out, *args):
    path = os.path.join(tmp, out)
    r = subprocess.run([binary, "report", *args, "-o", path], capture_output=True, text=True)
    check(r.returncode == 0, f"report {args}: exit {r.returncode}: {r.stderr.strip()}")
    return path


def count(b, selector):
    return b.eval(f"document.querySelectorAll({json.dumps(selector)}).length")


def op_label(op):
    return op["op"] + ("." + op["overload"] if op.get("overload") else "")


def click_node(b, key):
    """Pans the graph to the box, as a search would, then clicks it with the mouse."""
    b.eval(f"window.cautogradReport.centerOn({json.dumps(key)})")
    b.click(f'#graph-svg g.node[data-key="{key}"]')


def details_text(b):
    return b.eval("document.getElementById('details').textContent")


with cdp.Browser(chromium) as b:
    # Every golden trace: the graph has one box per node, a click on the node
    # with the most ops lists them all, and nothing reaches the console.
    for name in sorted(os.listdir(os.path.join(source, "traces"))):
        if not name.endswith(".cag"):
            continue
        trace_path = os.path.join(source, "traces", name)
        call = trace_json.load(trace_path)["calls"][0]
        page = report(name + ".html", trace_path, "--collapse-above", "100000")
        b.open(page)
        check(count(b, "#graph-svg g.node") == len(call["nodes"]),
              f"{name}: {count(b, '#graph-svg g.node')} boxes drawn, the call has {len(call['nodes'])} nodes")
        check(count(b, "#graph-svg path.edge") > 0, f"{name}: no edges drawn")
        ops_of = {}
        for op in call["ops"]:
            ops_of.setdefault(op.get("node", -1), []).append(op_label(op))
        busiest = max((n for n in call["nodes"]), key=lambda n: len(ops_of.get(n["id"], [])))
        click_node(b, f"n{busiest['id']}")
        text = details_text(b)
        check(all(label in text for label in ops_of.get(busiest["id"], [])),
              f"{name}: clicking node {busiest['id']} does not list its ops {ops_of.get(busiest['id'])}")
        check(count(b, "#graph-svg g.node.selected") == 1, f"{name}: the clicked node is not marked selected")
        check(b.errors() == [], f"{name}: console errors {b.errors()}")

    # Collapsed structure: the LSTM's time steps open as one box that expands.
    lstm = trace_json.load(os.path.join(source, "traces", "lstm.cag"))["calls"][0]
    b.open(report("lstm-collapsed.html", os.path.join(source, "traces", "lstm.cag"), "--collapse-above", "0"))
    data_call = b.eval("window.cautogradReport.data.traces[0].calls[0]")
    groups = data_call["groups"]
    check(len(groups) >= 1, "lstm: no repeated structure found")
    hidden = sum(len(inst) for g in groups for inst in g["instances"])
    collapsed = count(b, "#graph-svg g.node")
    check(collapsed == len(lstm["nodes"]) - hidden + len(groups),
          f"lstm collapsed: {collapsed} boxes, expected {len(lstm['nodes'])} nodes - {hidden} hidden + {len(groups)} groups")
    check(count(b, "#graph-svg g.node.group") == len(groups), "lstm collapsed: group boxes")
    b.click("#graph-svg g.node.group")
    expanded = count(b, "#graph-svg g.node")
    g0 = groups[0]
    # The box clicked is the first group's (boxes are drawn in node order and
    # group 0 is the largest run, first in execution order here).
    want_expanded = collapsed - 1 + sum(len(inst) for inst in g0["instances"])
    check(expanded == want_expanded, f"lstm: expanding gives {expanded} boxes, expected {want_expanded}")
    check(all(count(b, f'#graph-svg g.node[data-key="n{i}"]') == 1 for inst in g0["instances"] for i in inst),
          "lstm: after expanding, a node of the run is not drawn")
    b.click("#collapse-all")
    check(count(b, "#graph-svg g.node") == collapsed, "lstm: collapsing again")
    # Search: the nodes whose type or ops name "sigmoid", found through the collapsed box.
    b.click("#expand-all")
    b.eval("(() => { const s = document.getElementById('search'); s.value = 'sigmoid';"
           " s.dispatchEvent(new Event('input')); })()")
    ops_by_node = {}
    for op in lstm["ops"]:
        ops_by_node.setdefault(op.get("node", -1), []).append(op_label(op).lower())
    want = {n["id"] for n in lstm["nodes"]
            if "sigmoid" in n["type"].lower() or any("sigmoid" in o for o in ops_by_node.get(n["id"], []))}
    check(count(b, "#graph-svg g.node.match") == len(want) and len(want) > 0,
          f"lstm search: {count(b, '#graph-svg g.node.match')} marked, {len(want)} match")
    check(b.errors() == [], f"lstm: console errors {b.errors()}")

    # Two traces: the diff section lists what `cautograd diff` finds.
    mlp, hooks = (os.path.join(source, "traces", n) for n in ("mlp.cag", "hooks.cag"))
    b.open(report("diff.html", mlp, hooks))
    d = subprocess.run([binary, "diff", mlp, hooks, "--format", "json"], capture_output=True, text=True)
    differences = json.loads(d.stdout)["differences"]
    rows = count(b, "#diff table tr.clickable")
    check(rows == min(500, len(differences)) and rows > 0, f"diff: {rows} rows, cautograd diff found {len(differences)}")
    b.eval("(() => { const s = document.getElementById('trace-select'); s.value = '1';"
           " s.dispatchEvent(new Event('change')); })()")
    changed_b = {x["node_b"]["id"] for x in differences if x.get("call_b") == 0 and x.get("node_b", {}).get("id", -1) >= 0}
    check(count(b, "#graph-svg g.node.changed") == len(changed_b),
          f"diff: {count(b, '#graph-svg g.node.changed')} nodes marked changed in B, diff names {len(changed_b)}")
    check(b.errors() == [], f"diff: console errors {b.errors()}")

    # A hostile trace cannot run script: names that close the script element
    # or an attribute show as text.
    evil = '</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=2">\'"'
    v1 = os.path.join(tmp, "hooks-v1.json")
    subprocess.run([binary, "convert", "--to", "1", os.path.join(source, "traces", "hooks.cag"), "-o", v1], check=True,
                   capture_output=True)
    t = json.load(open(v1))
    c0 = t["calls"][0]
    hooked = next(n for n in c0["nodes"] if n.get("hooks"))
    hooked["type"] = "Evil" + evil
    hooked["hooks"][0]["type"] = "Hook" + evil
    leaf = next(n for n in c0["nodes"] if n.get("leaf"))
    leaf["leaf"]["name"] = "w" + evil
    t["meta"]["host"] = evil
    hostile = os.path.join(tmp, 'evil"name<b>.json')
    json.dump(t, open(hostile, "w"))
    page = report("evil.html", hostile)
    html = open(page, encoding="utf-8").read()
    check("<script>window.__pwned" not in html and "<img" not in html, "evil: the raw markup reached the HTML")
    check(html.count("<script") == 2, f"evil: {html.count('<script')} script tags in the page, expected 2")
    b.open(page)
    check(b.eval("window.__pwned === undefined"), "evil: injected script ran")
    click_node(b, f"n{hooked['id']}")
    text = details_text(b)
    check(("Evil" + evil) in text and ("Hook" + evil) in text, "evil: the node's type and hook are not shown as text")
    check(b.eval("window.__pwned === undefined") and count(b, "img") == 0, "evil: markup from the trace was parsed")
    check(b.errors() == [], f"evil: console errors {b.errors()}")

print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
