"""Derives traces that differ from a recorded one in one known way, for
`cautograd diff`'s golden and end-to-end tests. Each is what a real change
would look like in a trace, made by editing the recorded JSON.

derive.py altered IN OUT      one recorded gradient value changed (numerics)
derive.py slower IN OUT       one node and the whole call 3x slower (timing)
derive.py renumbered IN OUT   every node and tensor id permuted, sequence
                              numbers shifted, timings jittered: the same
                              program, recorded again (no difference at all)
"""
import base64
import json
import random
import struct
import sys
import zlib


def altered(trace):
    # The third float32 output value of the first call: +0.5 on element 0.
    call = trace["calls"][0]
    value = [v for v in call["values"] if v["when"] == "after_op" and v["dtype"] == "float32"][2]
    data = bytearray(base64.b64decode(value["data"]))
    struct.pack_into("<f", data, 0, struct.unpack_from("<f", data, 0)[0] + 0.5)
    value["data"] = base64.b64encode(bytes(data)).decode()
    value["crc32"] = "%08x" % zlib.crc32(bytes(data))


def slower(trace):
    # The slowest node of the first call takes 3x as long, and so does the call.
    call = trace["calls"][0]
    node = max((n for n in call["nodes"] if n["executed"]), key=lambda n: n["duration_us"])
    extra = node["duration_us"] * 2
    node["duration_us"] += extra
    call["duration_us"] += extra * 10


def renumbered(trace):
    rng = random.Random(1)
    for call in trace["calls"]:
        nodes, tensors = call["nodes"], call["tensors"]
        # Roots keep their ids (ids are given roots first); the rest reverse.
        roots = set(call["roots"])
        rest = [n["id"] for n in nodes if n["id"] not in roots]
        node_id = {old: old for old in roots}
        for old, new in zip(rest, sorted(rest, reverse=True)):
            node_id[old] = new
        tensor_order = list(range(len(tensors)))
        rng.shuffle(tensor_order)
        tensor_id = {old: new for new, old in enumerate(tensor_order)}

        def t(i):
            return tensor_id[i] if i is not None and i >= 0 else i

        def arg(a):
            if "tensor" in a:
                a["tensor"] = t(a["tensor"])
            if "tensors" in a:
                a["tensors"] = [t(i) for i in a["tensors"]]
            for item in a.get("list", []):
                arg(item)

        for n in nodes:
            n["id"] = node_id[n["id"]]
            for e in n["next"]:
                if e is not None:
                    e["node"] = node_id[e["node"]]
            n["grads_in"] = [t(i) for i in n["grads_in"]]
            if n["seq"] != "max":
                n["seq"] += 1000
            n["duration_us"] *= rng.uniform(0.95, 1.05)
            if "leaf" in n:
                for key in ("tensor", "grad_before", "grad_after"):
                    n["leaf"][key] = t(n["leaf"][key])
        nodes.sort(key=lambda n: n["id"])
        for tensor in tensors:
            tensor["id"] = tensor_id[tensor["id"]]
        tensors.sort(key=lambda x: x["id"])
        for op in call["ops"]:
            if op["node"] >= 0:
                op["node"] = node_id[op["node"]]
            for a in op["args"] + op["outputs"]:
                arg(a)
            op["duration_us"] *= rng.uniform(0.95, 1.05)
        for v in call["values"]:
            v["tensor"] = t(v["tensor"])
        guards = call["guards"]
        for part in ("nodes", "tensors", "scalars", "sizes"):
            for g in guards[part]:
                g["node"] = node_id[g["node"]]
                if "tensor" in g:
                    g["tensor"] = t(g["tensor"])
        call["duration_us"] *= 1.03


def main():
    kind, source, target = sys.argv[1:4]
    trace = json.load(open(source))
    {"altered": altered, "slower": slower, "renumbered": renumbered}[kind](trace)
    with open(target, "w") as out:
        json.dump(trace, out, separators=(",", ":"))
        out.write("\n")


if __name__ == "__main__":
    main()
