#!/usr/bin/env python3
"""Writes the seed corpus of the fuzzing harnesses into tools/fuzz/corpus/.

Small, valid files of each format and a few near misses (truncated, trailing
bytes, a wrong magic number, gzipped), so libFuzzer starts from the formats'
structure instead of discovering it. Run again to regenerate. Beside these:
regression-* are inputs that crashed a harness (fixed since), and the files
named by a SHA-1 are what the 10-minute runs found that adds coverage, merged
in with `fuzz_<harness> -merge=1 tools/fuzz/corpus/<harness> <their corpus>`."""
import gzip
import os
import struct
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))


def out(harness, name, data):
    d = os.path.join(HERE, "corpus", harness)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def gz(data):
    return gzip.compress(data, mtime=0)


# --- IDX ------------------------------------------------------------------------
def idx(dims, payload=None):
    n = 1
    for d in dims:
        n *= d
    head = bytes([0, 0, 8, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims)
    return head + (payload if payload is not None else bytes(i % 251 for i in range(n)))


out("idx", "labels-1d", idx([10], bytes(range(10))))
out("idx", "images-3d", idx([2, 4, 4]))
out("idx", "images-3d.gz", gz(idx([3, 5, 5])))
out("idx", "8d", idx([1, 2, 1, 2, 1, 2, 1, 2]))
out("idx", "truncated", idx([4, 4])[:-3])
out("idx", "trailing", idx([2, 2]) + b"xyz")
out("idx", "int-type", bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + b"\0" * 8)
out("idx", "zero-size", bytes([0, 0, 8, 2]) + struct.pack(">II", 0, 5))
out("idx", "truncated.gz", gz(idx([6, 6]))[:-6])
# the reader checks the header first, then reads what it promises
out("idx", "header-only", idx([3, 3], b""))
out("idx", "promises-4g.gz", gz(bytes([0, 0, 8, 2]) + struct.pack(">II", 65536, 65536) + b"abc"))
out("idx", "trailing.gz", gz(idx([2, 2]) + b"xyz"))

# --- CIFAR-10 ---------------------------------------------------------------------
REC = 1 + 3 * 32 * 32


def record(label, seed):
    return bytes([label]) + bytes((seed * 7 + i) % 256 for i in range(REC - 1))


out("cifar", "one-record", record(3, 1))
out("cifar", "two-records", record(0, 2) + record(9, 3))
out("cifar", "two-records.gz", gz(record(5, 4) + record(1, 5)))
out("cifar", "bad-label", record(10, 6))
out("cifar", "partial", record(2, 7)[:-100])
# labels are checked as the records arrive
out("cifar", "bad-label-third", record(1, 8) + record(2, 9) + record(11, 10))
out("cifar", "bad-label-third.gz", gz(record(1, 8) + record(2, 9) + record(11, 10)))

# --- checkpoints ------------------------------------------------------------------
MAGIC = b"\x89LUNET\r\n"


def ckpt(body, version=1):
    return MAGIC + struct.pack("<IIQ", version, zlib.crc32(body), len(body)) + body


def s(x):
    x = x.encode()
    return b"\x05" + struct.pack("<I", len(x)) + x


def i64(v):
    return b"\x03" + struct.pack("<q", v)


def num(v):
    return b"\x04" + struct.pack("<d", v)


def table(pairs):
    return b"\x06" + struct.pack("<I", len(pairs)) + b"".join(k + v for k, v in pairs)


def tensor(dtype, shape, elem):
    n = 1
    for d in shape:
        n *= d
    data = bytes((i * 13) % 256 for i in range(n * elem))
    return (b"\x07" + bytes([dtype, len(shape)]) + b"".join(struct.pack("<q", d) for d in shape)
            + struct.pack("<Q", len(data)) + data)


state = table([(s("1.weight"), tensor(0, [3, 2], 4)), (s("1.bias"), tensor(0, [3], 4)),
               (s("epoch"), i64(7)), (s("lr"), num(0.001)), (s("done"), b"\x02")])
out("checkpoint", "state-dict", ckpt(state))
out("checkpoint", "scalars", ckpt(table([(i64(1), b"\x01"), (i64(2), num(float("nan"))),
                                         (s(""), s("text"))])))
out("checkpoint", "dtypes", ckpt(table([(i64(1), tensor(1, [2, 2], 4)), (i64(2), tensor(2, [5], 1)),
                                        (i64(3), tensor(3, [2], 2)), (i64(4), tensor(4, [0, 3], 2)),
                                        (i64(5), tensor(0, [], 4))])))
nested = i64(0)
for depth in range(10):
    nested = table([(s("n"), nested)])
out("checkpoint", "nested", ckpt(nested))
out("checkpoint", "duplicate-key", ckpt(table([(s("a"), i64(1)), (s("a"), i64(2))])))
# fuzz_checkpoint re-signs every body, except where the CRC field is ffffffff
out("checkpoint", "bad-crc", ckpt(state)[:12] + b"\xff\xff\xff\xff" + ckpt(state)[16:])
out("checkpoint", "truncated", ckpt(state)[:-5])
out("checkpoint", "version-2-no-refs", ckpt(state, version=2))
out("checkpoint", "version-3", ckpt(state, version=3))


# version 2: a table met again is a reference (0x08, u32 number of a table
# complete before it; tables are numbered where they start, the root is 0)
def ref(n):
    return b"\x08" + struct.pack("<I", n)


leaf = table([(s("w"), tensor(0, [2], 4))])
out("checkpoint", "shared", ckpt(table([(s("a"), leaf), (s("b"), ref(1))]), version=2))
# a chain of {a = t, b = t}: the outermost table is 0, its a-child 1, ...,
# so the wrapper made at step `level` (counted from the inside) is table
# depth - 1 - level, and its child, complete when b comes, is depth - level
depth = 8
val = table([(s("x"), i64(1))])
for level in range(depth):
    val = table([(s("a"), val), (s("b"), ref(depth - level))])
out("checkpoint", "shared-chain", ckpt(val, version=2))
out("checkpoint", "ref-in-version-1", ckpt(table([(s("a"), leaf), (s("b"), ref(1))])))
out("checkpoint", "ref-to-ancestor", ckpt(table([(s("a"), table([(s("up"), ref(0))]))]), version=2))
out("checkpoint", "ref-forward", ckpt(table([(s("a"), ref(5)), (s("b"), leaf)]), version=2))
out("checkpoint", "ref-as-key", ckpt(table([(s("a"), leaf), (ref(1), i64(1))]), version=2))

# --- Lua tables (fuzz_tensor's own encoding: see fuzz_tensor.c) --------------------
# call, options, fill, then the value: 8..12 = table (count, entries..., extra),
# 0..3 = small integer, 5 = quarter, 4 = any double (8 bytes), 14/15 = special.
def tbl(*entries, extra=0):
    return bytes([8, len(entries)]) + b"".join(entries) + bytes([extra])


def small(v):
    return bytes([0, v & 0xFF])


row = tbl(small(1), small(2), small(3))
out("tensor", "matrix-float32", bytes([0, 0, 0]) + tbl(row, row))
out("tensor", "matrix-int32-roundtrip", bytes([3, 1, 0]) + tbl(row, row))
out("tensor", "ragged", bytes([1, 0, 0]) + tbl(row, tbl(small(1))))
out("tensor", "hole", bytes([2, 2, 0]) + tbl(small(1), small(2), small(3), extra=1) + b"\x01")
out("tensor", "nan", bytes([0, 0, 0]) + tbl(b"\x04" + struct.pack(">d", float("nan"))))
deep = small(1)
for _ in range(9):
    deep = tbl(deep)
out("tensor", "deep", bytes([0, 0, 0]) + deep)
out("tensor", "zeros-shape", bytes([4, 0, 0]) + tbl(small(2), small(3)))
out("tensor", "zeros-huge", bytes([4, 0, 0]) + tbl(bytes([7, 0]), bytes([7, 0])))
out("tensor", "full-negative", bytes([5, 1, 9]) + tbl(small(-2)))
out("tensor", "reshape", bytes([6, 0, 0]) + tbl(small(-1), small(6)))
out("tensor", "reshape-strided", bytes([7, 0, 0]) + tbl(small(3), small(4)))
out("tensor", "special", bytes([0, 5, 0]) + tbl(bytes([14, 3]), bytes([15, 4])))
