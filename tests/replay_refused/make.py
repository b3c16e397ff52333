#!/usr/bin/python3
"""Writes the broken-for-replay traces in this folder, each beside the one
line `cautograd replay` must answer it with (NAME.expected).

Every trace here is valid for the reader: what is wrong is the program. The
base is a hand-written embedding backward: grad [4, 3] float32 and indices
[4] int64 in, a [10, 3] gradient table out. Run it after a trace format
change: /usr/bin/python3 tests/replay_refused/make.py (the big cases are made at test
time: make.py --big DIR)
"""
import base64
import copy
import json
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
# make.py --big DIR: write only the big cases, into DIR.
BIG = None
if len(sys.argv) == 3 and sys.argv[1] == "--big":
    BIG, HERE = sys.argv[2], None
    os.makedirs(BIG, exist_ok=True)


def value(tensor, dtype, fmt, items):
    data = struct.pack("<%d%s" % (len(items), fmt), *items)
    return {"tensor": tensor, "when": "first_use", "dtype": dtype, "numel": len(items),
            "encoding": "base64", "crc32": "%08x" % zlib.crc32(data),
            "data": base64.b64encode(data).decode()}


def tensor(i, shape, dtype, storage, roles):
    strides, s = [], 1
    for d in reversed(shape):
        strides.insert(0, s)
        s *= d
    return {"id": i, "shape": shape, "strides": strides, "offset": 0, "dtype": dtype,
            "device": "cpu", "requires_grad": False, "storage": storage, "roles": roles}


def arg(name, **kw):
    kw["name"] = name
    return kw


BASE = {
    "format": "cautograd-trace", "version": 1,
    "meta": {"tool_version": "0.1.0", "libtorch_version": "1.13.0", "command": ["make.py"],
             "time": "2026-01-01T00:00:00Z", "host": "test", "seed": None, "values": "all"},
    "calls": [{
        "index": 0, "api": "backward", "create_graph": False, "keep_graph": False,
        "duration_us": 1, "start_unix_s": 0, "roots": [0],
        "storages": [{"id": 0, "nbytes": 48, "device": "cpu"}, {"id": 1, "nbytes": 32, "device": "cpu"},
                     {"id": 2, "nbytes": 120, "device": "cpu"}],
        "tensors": [tensor(0, [4, 3], "float32", 0, ["node_input"]),
                    tensor(1, [4], "int64", 1, ["saved"]),
                    tensor(2, [10, 3], "float32", 2, ["op_output"])],
        "nodes": [{"id": 0, "type": "EmbeddingBackward0", "seq": 1, "topo": 1,
                   "inputs": [{"shape": [4, 3], "dtype": "float32", "device": "cpu"}],
                   "next": [None], "hooks": [], "executed": True, "exec_order": 0,
                   "grads_in": [0], "start_us": 0, "duration_us": 1}],
        "ops": [{"op": "aten::embedding_backward", "overload": "", "node": 0, "phase": "node",
                 "thread": 0, "start_us": 0, "duration_us": 1,
                 "args": [arg("grad", tensor=0), arg("indices", tensor=1),
                          arg("num_weights", int=10, size=True), arg("padding_idx", int=-1, size=True),
                          arg("scale_grad_by_freq", bool=False), arg("sparse", bool=False)],
                 "outputs": [{"tensor": 2}]}],
        "values": [value(0, "float32", "f", [0.5] * 12), value(1, "int64", "q", [1, 4, 4, 7])],
        "guards": {"nodes": [], "tensors": [], "scalars": [], "sizes": []},
    }],
}


def case(name, expected, mutate, big=False):
    """Writes NAME.json and NAME.expected here; a big one (megabytes) only
    where --big DIR says, which the end-to-end suite gives at test time."""
    out = BIG if big else HERE
    if out is None:
        return
    trace = copy.deepcopy(BASE)
    mutate(trace["calls"][0])
    with open(os.path.join(out, name + ".json"), "w") as f:
        json.dump(trace, f, indent=None if big else 1)
    with open(os.path.join(out, name + ".expected"), "w") as f:
        f.write(expected + "\n")


def set_op(call, **kw):
    call["ops"][0].update(kw)


case("unknown_operator", "call 0, op 0 (aten::frobnicate): no such operator in torch",
     lambda c: set_op(c, op="aten::frobnicate"))
case("foreign_namespace", "call 0, op 0 (evil::embedding_backward): operators in namespace 'evil' are "
     "not replayed; pass --allow-namespace evil if you trust this trace",
     lambda c: set_op(c, op="evil::embedding_backward"))
case("side_effects", "call 0, op 0 (aten::from_file): refused: the operator has effects outside memory",
     lambda c: set_op(c, op="aten::from_file"))
case("wrong_argument_type", "call 0, op 0 (aten::embedding_backward): argument 0 'grad': recorded 3 where "
     "the schema wants a Tensor",
     lambda c: c["ops"][0]["args"].__setitem__(0, arg("grad", int=3)))
case("too_many_arguments", "call 0, op 0 (aten::embedding_backward): 7 arguments, the schema has 6",
     lambda c: c["ops"][0]["args"].append(arg("extra", int=1)))
case("missing_argument", "call 0, op 0 (aten::embedding_backward): argument 5 'sparse' is missing and has "
     "no default",
     lambda c: c["ops"][0]["args"].pop())


def use_before_made(c):
    # The op reads tensor 2, which it is also the first to make.
    c["ops"][0]["args"][0] = arg("grad", tensor=2)
    c["ops"][0]["outputs"] = [{"tensor": 2}]
    op2 = copy.deepcopy(c["ops"][0])
    op2["args"][0] = arg("grad", tensor=0)
    c["ops"].append(op2)
    c["ops"][0]["outputs"] = [{"tensor": 0}]
    c["ops"][0]["args"][0] = arg("grad", tensor=2)
    c["ops"][1]["outputs"] = [{"tensor": 2}]


case("used_before_made", "call 0, op 0 (aten::embedding_backward): argument 0 uses tensor 2 before op 1 "
     "makes it", use_before_made)
case("indices_without_values", "call 0, op 0 (aten::embedding_backward): tensor 1 (int64 [4]) comes from "
     "outside the call and the trace holds no values for it; integer and bool tensors are never invented",
     lambda c: c["values"].pop())
case("too_much_memory", "call 0 needs about 1.0 GiB at its peak (from the recorded metadata), over "
     "--max-memory 64.0 MiB; raise --max-memory to replay it",
     lambda c: c["storages"][2].update(nbytes=1 << 30))
case("index_out_of_range", "call 0, op 0 (aten::embedding_backward): an index is outside [0, 10) (min 1, "
     "max 1099511627776); refused, the kernel would write out of bounds",
     lambda c: c["values"].__setitem__(1, value(1, "int64", "q", [1, 4, 1 << 40, 7])))


def max_pool_with_bad_indices(c):
    # max_pool2d backward given pooling indices far outside its input:
    # libtorch 1.13's CPU kernel does not check them and crashes.
    c["storages"] = [{"id": 0, "nbytes": 16, "device": "cpu"}, {"id": 1, "nbytes": 64, "device": "cpu"},
                     {"id": 2, "nbytes": 32, "device": "cpu"}, {"id": 3, "nbytes": 64, "device": "cpu"}]
    c["tensors"] = [tensor(0, [1, 1, 2, 2], "float32", 0, ["node_input"]),
                    tensor(1, [1, 1, 4, 4], "float32", 1, ["saved"]),
                    tensor(2, [1, 1, 2, 2], "int64", 2, ["saved"]),
                    tensor(3, [1, 1, 4, 4], "float32", 3, ["op_output"])]
    c["nodes"][0].update(type="MaxPool2DWithIndicesBackward0",
                         inputs=[{"shape": [1, 1, 2, 2], "dtype": "float32", "device": "cpu"}])
    c["ops"][0].update(op="aten::max_pool2d_with_indices_backward", args=[
        arg("grad_output", tensor=0), arg("self", tensor=1), arg("kernel_size", ints=[2, 2]),
        arg("stride", ints=[2, 2]), arg("padding", ints=[0, 0]), arg("dilation", ints=[1, 1]),
        arg("ceil_mode", bool=False), arg("indices", tensor=2)], outputs=[{"tensor": 3}])
    c["values"] = [value(0, "float32", "f", [1.0] * 4), value(1, "float32", "f", [0.0] * 16),
                   value(2, "int64", "q", [100000000] * 4)]


case("kernel_crash", "call 0, op 0 (aten::max_pool2d_with_indices_backward) crashed (Segmentation fault); "
     "its recorded arguments are invalid for the operator (a tampered or corrupt trace?)",
     max_pool_with_bad_indices)


def factory_without_size_flag(c):
    # aten::zeros of [64, 1024, 1024] (512 MiB as float64), its size list
    # not marked as a size: the memory cap must not depend on that mark.
    c["ops"][0].update(op="aten::zeros", overload="", args=[arg("size", ints=[64, 1024, 1024])],
                       outputs=[{"tensor": 2}])


case("factory_without_size_flag", "call 0, op 0 (aten::zeros): asks for a tensor of [64, 1024, 1024], "
     "over --max-memory 64.0 MiB", factory_without_size_flag)


def storages_that_sum_past_int64(c):
    # 8,193 storages of 2^50 bytes, all live at once: their sum passes 2^63,
    # which must not wrap into a small (or negative) peak.
    n = 8193
    c["storages"] = [{"id": i, "nbytes": 1 << 50, "device": "cpu"} for i in range(n)] + \
                    [{"id": n, "nbytes": 4 * n, "device": "cpu"}]
    c["tensors"] = [tensor(i, [1], "float32", i, ["saved"]) for i in range(n)] + \
                   [tensor(n, [n], "float32", n, ["op_output"])]
    c["nodes"][0]["inputs"] = [{"shape": [1], "dtype": "float32", "device": "cpu"}]
    c["nodes"][0]["grads_in"] = [0]
    c["ops"][0].update(op="aten::cat", overload="", args=[arg("tensors", tensors=list(range(n))),
                                                          arg("dim", int=0)],
                       outputs=[{"tensor": n}])
    c["values"] = []


case("storages_sum_past_int64", "call 0 needs about 8.0 EiB at its peak (from the recorded metadata), over "
     "--max-memory 64.0 MiB; raise --max-memory to replay it", storages_that_sum_past_int64, big=True)
