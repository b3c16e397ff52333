"""Holds a scenario's real compiled-autograd run against cautograd's verdict.

  compare.py REAL.json RECOMPILE.json

REAL.json is what run.py wrote under real compiled autograd; RECOMPILE.json
is `cautograd recompile --json` on the eager recording of the same steps.
Call by call: hit or miss, and for a miss the line compiled autograd's log
printed. "previous key sizes=[...]" is compared as a set of numbers: the
real log lists them in the order of a C++ unordered_set.

Prints one line per difference and a last line
"SCENARIO: I of N calls identical"; exits 1 if any call differs.
"""
import json
import re
import sys

NODE_MISS = re.compile(r"Cache miss due to new autograd node: (.*) \(NodeCall (\d+)\) with key size (\d+), "
                       r"previous key sizes=\[(.*)\]$")


def canonical(line):
    m = NODE_MISS.match(line)
    if not m:
        return line
    previous = sorted(int(x) for x in m.group(4).split(",") if x.strip())
    return (m.group(1), int(m.group(2)), int(m.group(3)), previous)


def verdict_of_real(call):
    if "error" in call:
        return "unsupported"
    return "miss" if call["compiled"] else "hit"


def verdict_of_ours(call):
    if call["reasons"] and call["reasons"][0]["kind"] == "unsupported":
        return "unsupported"
    return call["result"]


def main():
    real = json.load(open(sys.argv[1]))
    ours = json.load(open(sys.argv[2]))
    name = real["scenario"]
    differences = []
    n = max(len(real["calls"]), len(ours["calls"]))
    if len(real["calls"]) != len(ours["calls"]):
        differences.append("%d backward calls under compiled autograd, %d recorded" %
                           (len(real["calls"]), len(ours["calls"])))
    identical = 0
    for i, (r, o) in enumerate(zip(real["calls"], ours["calls"])):
        rv, ov = verdict_of_real(r), verdict_of_ours(o)
        problems = []
        if rv != ov:
            problems.append("compiled autograd: %s, cautograd: %s" % (rv, ov))
        real_log = [canonical(line) for line in r["log"]]
        our_log = [canonical(line) for line in o["log"]]
        if rv == ov == "miss" and real_log != our_log:
            problems.append("compiled autograd logged %s, cautograd %s" % (r["log"], o["log"]))
        if rv == ov == "unsupported" and r["error"] not in o["reasons"][0].get("old", ""):
            problems.append("compiled autograd raised %r, cautograd says %r" % (r["error"], o["reasons"][0]["old"]))
        if problems:
            differences.append("call %d: %s" % (i, "; ".join(problems)))
        else:
            identical += 1
    for d in differences:
        print("%s: %s" % (name, d))
    print("%s: %d of %d calls identical" % (name, identical, n))
    return 0 if not differences else 1


if __name__ == "__main__":
    sys.exit(main())
