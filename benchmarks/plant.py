"""Plants a problem in a version 1 trace, for benchmarks/reduce_scale.sh and
tests/e2e/reduce.sh: what `cautograd reduce` must then find.

  plant.py IN.json OUT.json diverge [OP]   adds 1000 to the first element of a
      float32 output the trace recorded after op OP (default: the middle op
      that has one), so that `replay --check` diverges there
  plant.py IN.json OUT.json crash          sets the indices that
      max_pool2d_with_indices_backward reads far out of range, so that the
      kernel writes out of bounds (a crash, or an error libtorch raises)

Prints the op index it changed."""
import base64
import json
import struct
import sys
import zlib


def store(value, raw):
    value["data"] = base64.b64encode(bytes(raw)).decode()
    value["crc32"] = "%08x" % zlib.crc32(bytes(raw))


def main():
    src, dst, what = sys.argv[1:4]
    trace = json.load(open(src))
    call = trace["calls"][0]
    if what == "diverge":
        candidates = [v for v in call["values"] if v["when"] == "after_op" and v["dtype"] == "float32" and v["numel"] > 0]
        if not candidates:
            sys.exit("no float32 output value recorded: record with --values all")
        if len(sys.argv) > 4:
            wanted = int(sys.argv[4])
            candidates = [v for v in candidates if v["op"] == wanted] or sys.exit(f"op {wanted} has no float32 output value")
            value = candidates[0]
        else:
            value = candidates[len(candidates) // 2]
        raw = bytearray(base64.b64decode(value["data"]))
        raw[0:4] = struct.pack("<f", struct.unpack("<f", raw[0:4])[0] + 1000.0)
        store(value, raw)
        print(value["op"])
    elif what == "crash":
        for op in call["ops"]:
            if op["op"] == "aten::max_pool2d_with_indices_backward":
                indices = op["args"][-1]["tensor"]
                break
        else:
            sys.exit("no max_pool2d_with_indices_backward op to plant a crash in")
        for value in call["values"]:
            if value["tensor"] == indices and value["when"] == "first_use":
                raw = bytearray(base64.b64decode(value["data"]))
                raw[:] = struct.pack("<q", 1 << 40) * (len(raw) // 8)
                store(value, raw)
                print(call["ops"].index(op))
                break
        else:
            sys.exit("the trace holds no value for the indices: record with --values all")
    else:
        sys.exit(f"unknown problem {what!r}: diverge or crash")
    json.dump(trace, open(dst, "w"))


main()
