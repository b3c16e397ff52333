"""Writes the malformed version 2 traces in this folder (v2_*.cag), each
broken in one way, from tests/data/minimal.json. Each has a .expected file
with the one line `cautograd show --verify` must refuse it with (after
"cautograd show: FILE: "). The archives are packed here, in Python, from the
layout in docs/trace-format.md rather than by cautograd, so the reader is
tested against a second implementation of the format.

Also writes tests/data/minimal_v2.cag, the same trace unbroken.

Usage: python3 tests/malformed/make_v2.py   (then read `git diff tests/malformed tests/data`)
"""

import base64
import json
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
ALIGN = 64
PAD_ID = 0x4743


def pack(entries):
    """entries: [(name, bytes)] -> (archive bytes, [(header, data, size)], directory offset)."""
    out = bytearray()
    where = []
    for name, data in entries:
        header = len(out)
        raw_name = name.encode()
        fixed = 30 + len(raw_name) + 20 + 4
        pad = (-(header + fixed)) % ALIGN
        crc = zlib.crc32(data)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0x21, crc, 0xFFFFFFFF, 0xFFFFFFFF,
                           len(raw_name), 20 + 4 + pad)
        out += raw_name
        out += struct.pack("<HHQQ", 1, 16, len(data), len(data))
        out += struct.pack("<HH", PAD_ID, pad) + bytes(pad)
        where.append((header, len(out), len(data)))
        out += data
    dir_at = len(out)
    for (name, data), (header, _, size) in zip(entries, where):
        raw_name = name.encode()
        out += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0x21, zlib.crc32(data),
                           0xFFFFFFFF, 0xFFFFFFFF, len(raw_name), 28, 0, 0, 0, 0, 0xFFFFFFFF)
        out += raw_name
        out += struct.pack("<HHQQQ", 1, 24, size, size, header)
    end64 = len(out)
    out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(entries), len(entries),
                       end64 - dir_at, dir_at)
    out += struct.pack("<IIQI", 0x07064B50, 0, end64, 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    return bytes(out), where, dir_at


def directory_entry(archive, dir_at, index):
    """Offset of central directory entry `index` (names are 10 bytes or less here)."""
    p = dir_at
    for _ in range(index):
        name_len, extra_len = struct.unpack_from("<HH", archive, p + 28)
        p += 46 + name_len + extra_len
    return p


def zstd_rle(byte, count, declare=None):
    """One zstd frame of `count` copies of `byte`: a single RLE block
    (RFC 8878). `declare`: the content size the header states (None: none)."""
    if declare is None:
        head = struct.pack("<IBB", 0xFD2FB528, 0x00, 0x10)  # no content size; 4 KiB window
    else:
        head = struct.pack("<IBB", 0xFD2FB528, 0x20, declare)  # single segment, 1-byte size
    block = 1 | (1 << 1) | (count << 3)  # last block, RLE, size
    return head + struct.pack("<I", block)[:3] + bytes([byte])


def base():
    """minimal.json as version 2: its JSON (values naming entries) and its value bytes."""
    trace = json.load(open(os.path.join(HERE, "..", "data", "minimal.json")))
    trace["version"] = 2
    blobs = []
    for call in trace["calls"]:
        for v in call["values"]:
            data = base64.b64decode(v.pop("data"))
            v.pop("encoding")
            v["entry"] = "values/%d" % len(blobs)
            blobs.append(data)
    return trace, blobs


def archive_of(trace, blobs, extra=()):
    entries = [("values/%d" % i, b) for i, b in enumerate(blobs)] + list(extra)
    entries.append(("trace.json", json.dumps(trace).encode()))
    return pack(entries)


def cases():
    trace, blobs = base()
    good, where, dir_at = archive_of(trace, blobs)
    yield "v2_truncated", good[: len(good) // 2], \
        "truncated archive: it does not end with ZIP64 end records (a write that did not finish?)"

    bad = bytearray(good)
    bad[where[0][1]] ^= 0x01
    yield "v2_bad_checksum", bytes(bad), \
        "calls[0].values[0]: entry 'values/0': CRC-32 does not match its data; the file is corrupt"

    bad = bytearray(good)
    p = directory_entry(good, dir_at, 1)
    struct.pack_into("<Q", bad, p + 46 + len("trace.json") + 20, where[1][0] - 64)
    yield "v2_overlap", bytes(bad), "entry 'trace.json': starts at byte %d, expected %d " \
        "(it overlaps the entry before it)" % (where[1][0] - 64, where[0][1] + where[0][2])

    bad = bytearray(good)
    p = directory_entry(good, dir_at, 0)
    struct.pack_into("<QQ", bad, p + 46 + len("values/0") + 4, 1 << 62, 1 << 62)
    yield "v2_past_end", bytes(bad), \
        "entry 'values/0': %d bytes at 0 run past the central directory at %d" % (1 << 62, dir_at)

    # 64 bytes of something else between two entries, the offsets after them moved to match.
    start = where[1][0]
    bad = bytearray(good[:start] + b"#!/bin/sh\n" + bytes(54) + good[start:])
    p = directory_entry(good, dir_at, 1) + 64
    struct.pack_into("<Q", bad, p + 46 + len("trace.json") + 20, start + 64)
    end64 = len(bad) - 98
    struct.pack_into("<Q", bad, end64 + 48, dir_at + 64)
    struct.pack_into("<Q", bad, end64 + 56 + 8, end64)
    yield "v2_hole", bytes(bad), "entry 'trace.json': starts at byte %d, expected %d (a gap before it)" % (
        start + 64, start)

    yield "v2_hidden_entry", archive_of(trace, blobs, [("values/7", b"#!/bin/sh\necho hidden\n")])[0], \
        "entry 'values/7' is named by no value; a trace holds nothing else"

    yield "v2_foreign_entry", archive_of(trace, blobs, [("run.sh", b"#!/bin/sh\n")])[0], \
        "unexpected entry 'run.sh' (a trace holds values/N entries, then trace.json)"

    entries = [("trace.json", json.dumps(trace).encode()), ("values/0", blobs[0])]
    yield "v2_json_not_last", pack(entries)[0], \
        "the archive's last entry is not trace.json; not a cautograd trace"

    v1 = dict(trace, version=1)
    yield "v2_version1_inside", archive_of(v1, blobs)[0], \
        "version: version 1 JSON inside a version 2 archive; the file was not written by cautograd"

    twice = json.loads(json.dumps(trace))
    twice["calls"][0]["values"].append(dict(twice["calls"][0]["values"][0]))
    yield "v2_entry_named_twice", archive_of(twice, blobs)[0], \
        "calls[0].values[1].entry: entry 'values/0' is named by another value too"

    short = json.loads(json.dumps(trace))
    yield "v2_wrong_size", archive_of(short, [blobs[0] + b"\0\0\0\0"])[0], \
        "calls[0].values[0].entry: entry 'values/0' holds 8 bytes, expected 4 (1 x float32)"

    # A 1 TiB tensor whose value claims to be a 10-byte zstd frame.
    huge = json.loads(json.dumps(trace))
    call = huge["calls"][0]
    call["tensors"][0].update(shape=[1 << 40], strides=[1], offset=0)
    call["storages"][call["tensors"][0]["storage"]]["nbytes"] = 4 << 40
    call["values"][0].update(numel=1 << 40, compression="zstd")
    yield "v2_huge_declared", archive_of(huge, [zstd_rle(0, 64)])[0], \
        "calls[0].values[0].entry: entry 'values/0' declares %d bytes from 10 compressed, " \
        "more than zstd can expand" % (4 << 40)

    bomb = json.loads(json.dumps(trace))
    bomb["calls"][0]["values"][0]["compression"] = "zstd"
    yield "v2_zstd_expands", archive_of(bomb, [zstd_rle(0, 4096)])[0], \
        "calls[0].values[0]: entry 'values/0': zstd frame expands past its declared size of 4 bytes"
    yield "v2_zstd_size_lies", archive_of(bomb, [zstd_rle(0, 8, declare=8)])[0], \
        "calls[0].values[0]: entry 'values/0': zstd frame declares 8 bytes, the trace 4"

    bad = bytearray(good)
    struct.pack_into("<H", bad, directory_entry(good, dir_at, 0) + 10, 8)  # deflate
    yield "v2_deflated", bytes(bad), "central directory entry 0: not an entry cautograd writes " \
        "(only stored ZIP64 entries, no encryption, no comment)"

    bad = bytearray(good)
    struct.pack_into("<I", bad, where[1][0] + 14, 0)  # trace.json's CRC in its local header
    yield "v2_local_header", bytes(bad), \
        "entry 'trace.json': local header does not match the central directory"


def main():
    # The same trace, whole: what this packer writes, cautograd must read.
    trace, blobs = base()
    with open(os.path.join(HERE, "..", "data", "minimal_v2.cag"), "wb") as f:
        f.write(archive_of(trace, blobs)[0])
    for name, data, expected in cases():
        with open(os.path.join(HERE, name + ".cag"), "wb") as f:
            f.write(data)
        with open(os.path.join(HERE, name + ".expected"), "w") as f:
            f.write(expected + "\n")


if __name__ == "__main__":
    main()
