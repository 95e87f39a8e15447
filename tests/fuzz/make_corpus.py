#!/usr/bin/env python3
"""Writes the seed corpus of fuzz_cache.c (tests/fuzz/corpus/seed-*).

Each seed is a small program in the harness's byte encoding (see
LLVMFuzzerTestOneInput and the op_* readers in fuzz_cache.c): shapes, data
families and options chosen to reach every operation, every error path and
the numerical corners (denormals, huge values, tiny scales, ties, allocation
failures, ISA switches) in the first seconds of a run. Deterministic.

Usage: python3 tests/fuzz/make_corpus.py [OUTDIR]   (default: tests/fuzz/corpus)
"""
import os
import struct
import sys

# ---- encoders: one per harness operation (keep in step with fuzz_cache.c) ----

OP_CREATE, OP_APPEND, OP_TRUNCATE, OP_DENSE, OP_SPARSE, OP_SELECTION, OP_INFO, OP_ISA, \
    OP_ARM, OP_FREE, OP_APPEND2, OP_SPARSE2, OP_MISC, OP_APPEND_BIG = range(14)

# data families of fill()
FAM = dict(normal=0, ints=1, same=2, denorm_mix=3, huge=4, tiny=5, wide=6, zeros=7,
           peaked=8, specials=9, large=10, e15=11, denorm=12, near_min=13, denorm_ulps=14)
# special_value() classes (poison)
POISON = dict(nan=0, nan_payload=1, inf=2, max_abs=3, over_max=4, flt_max=5, denorm=6,
              flt_min=7, neg_zero=8, e_30=9, e20=10, e29=11, bits=12, min_denorm=13)


def u16(x):
    return struct.pack("<H", x & 0xFFFF)


def u32(x):
    return struct.pack("<I", x & 0xFFFFFFFF)


def op(code, slot=0):
    return bytes([code | (slot << 4)])


def fill(fam="normal", seed=1, poison=None, pos=0):
    """fill(): family byte, u32 seed, poison byte (low 3 bits 0 = poison), u16 position."""
    pb = 1 if poison is None else (POISON[poison] << 3)
    return bytes([FAM[fam]]) + u32(seed) + bytes([pb]) + u16(pos)


def dim(n):
    """pick_dim(): b < 224 gives 1 + b % 64."""
    assert 1 <= n <= 64
    return bytes([n - 1])


def create(kv=1, group=1, d=8, dv=8, page=4, slot=0):
    assert 1 <= kv <= 4 and 1 <= group <= 4 and 0 <= page <= 64
    return op(OP_CREATE, slot) + bytes([1, kv - 1, group - 1]) + dim(d) + dim(dv) + \
        bytes([page, 0])


def create_raw(tail, slot=0):
    """Special shapes: mode % 8 == 0, then a selector (see op_create)."""
    return op(OP_CREATE, slot) + bytes([0]) + tail


def append(n, kfam="normal", vfam="normal", kseed=1, vseed=2, count_mode=8, kpoison=None,
           vpoison=None, pos=0, slot=0):
    assert 0 <= n < 40
    return op(OP_APPEND, slot) + bytes([n, count_mode]) + fill(kfam, kseed, kpoison, pos) + \
        fill(vfam, vseed, vpoison, pos)


def append_big(n, kfam="normal", vfam="normal", kseed=3, vseed=4, slot=0):
    return op(OP_APPEND_BIG, slot) + u16(n) + bytes([8]) + fill(kfam, kseed) + \
        fill(vfam, vseed)


def truncate(mode, arg=0, slot=0):
    """mode: 0 T, 1 T+1, 2 SIZE_MAX, 3 zero, 4 2^32+T, 5 T-1, 6 T+1+arg, 7 arg % (T+1)."""
    b = bytes([mode])
    if mode in (6, 7):
        b += u16(arg)
    return op(OP_TRUNCATE, slot) + b


SCALE = dict(default=0, one=128, half=129, tiny=131, huge=132, neg=133, nan=134, inf=135,
             denorm=136, negzero=137, flt_min=138, e_10=140, e10=141, eight=142, eighth=143)


def scale(name):
    return bytes([SCALE[name]])


# pick_tolerance(): b < 150 is off; else b % 12 selects (the first such byte here)
TOL = {}
for b in range(150, 256):
    TOL.setdefault({0: "e_3", 1: "e_6", 2: "u16", 3: "neg", 4: "nan", 5: "inf", 6: "huge",
                    7: "denorm", 8: "half", 9: "bits", 10: "e_9", 11: "five_pct"}[b % 12], b)
TOL["off"] = 0


def query(fam="normal", seed=5, count_mode=8, poison=None):
    return bytes([count_mode]) + fill(fam, seed, poison)


def dense(qfam="normal", seed=5, sc="default", count_mode=8, poison=None, probe=True, slot=0):
    return op(OP_DENSE, slot) + query(qfam, seed, count_mode, poison) + scale(sc) + \
        bytes([1 if probe else 0])


# the routing byte: its low 3 bits the routing, bits 3-4 share_routing (2: on, 3: invalid)
ROUTING = dict(tree=0, flat=3, two=5, max=6, tree_share=16, flat_share=19, tree_badshare=24)


def routing_bytes(routing, expand):
    """routing: 'tree', 'flat', 'two' (2), 'max' (UINT32_MAX) or an int (raw 32 bits);
    expand: 0 (automatic) .. 4, else u16, UINT32_MAX or raw 32 bits."""
    b = bytes([ROUTING[routing]]) if isinstance(routing, str) else bytes([7]) + u32(routing)
    if 0 <= expand <= 4:
        b += bytes([expand])
    elif expand < 0x10000:
        b += bytes([5]) + u16(expand)
    elif expand == 0xFFFFFFFF:
        b += bytes([6])
    else:
        b += bytes([7]) + u32(expand)
    return b


def sparse(qfam="normal", seed=6, pages=2, cand=8, sink=None, recent=None, solver=None,
           widen=None, sc="default", tol="off", solver_params=None, diag=3, count_mode=8,
           poison=None, null_options=False, isa_check=False, probe=True, sink_recent32=None,
           routing=None, expand=0, slot=0):
    """pages/cand: small values (< 9 / < 65) or 'all' (UINT32_MAX);
    sink_recent32: (sink_pages, recent_pages) as raw 32-bit values;
    routing/expand: see routing_bytes (None: the defaults, tree with automatic expand)."""
    ob = 0x40 if probe else 0
    if isa_check:
        ob |= 0x30
    if null_options:
        b = op(OP_SPARSE, slot) + query(qfam, seed, count_mode, poison) + bytes([ob | 0x00])
        return b + bytes([diag])
    ob |= 1
    f = 0
    extra = b""
    if sink is not None:
        f |= 1
    if recent is not None:
        f |= 2
    if sink_recent32 is not None:
        f |= 12
    if solver is not None:
        f |= 16
    if widen is not None:
        f |= 32
    if solver_params is not None:
        f |= 64
    if routing is not None:
        f |= 128
    pb = 200 if pages == "all" else pages
    cb = 180 if cand == "all" else cand
    assert pb == 200 or pb < 9
    assert cb == 180 or cb < 65
    b = op(OP_SPARSE, slot) + query(qfam, seed, count_mode, poison) + bytes([ob, f, pb, cb])
    if sink is not None:
        extra += bytes([sink])
    if recent is not None:
        extra += bytes([recent])
    if sink_recent32 is not None:
        extra += u32(sink_recent32[0]) + u32(sink_recent32[1])
    if solver is not None:
        extra += bytes([solver])
    if widen is not None:
        extra += bytes([widen])
    b += extra + scale(sc) + bytes([TOL[tol]])
    if tol == "u16":
        b += u16(300)
    if solver_params is not None:
        b += bytes([solver_params])
    if routing is not None:
        b += routing_bytes(routing, expand)
    return b + bytes([diag])


def selection(pages=False, head=0, cap_mode=4, cap=64, slot=0):
    """cap_mode: 0 cap 0 idx NULL, 1 cap 0, 2 idx NULL with cap, 3 count NULL, 4 cap."""
    b = bytes([(3 << 1) | (1 if pages else 0)]) + bytes([head])
    b += bytes([cap_mode])
    if cap_mode >= 4:
        b += u16(cap)
    return op(OP_SELECTION, slot) + b


def info(mode=3, slot=0):
    return op(OP_INFO, slot) + bytes([mode])


def isa(which):
    names = dict(scalar=0, avx2=1, auto=2, wasmsimd=3, empty=4, null=5, AVX2=6, space=7,
                 avx512=8, long=9)
    if which in names:
        return op(OP_ISA) + bytes([names[which]])
    raw = which.encode()
    return op(OP_ISA) + bytes([10, len(raw)]) + raw


def arm(n):
    return op(OP_ARM) + bytes([n])


def arm_at(k):
    """arm(): a byte >= 192 makes allocation (byte % 64) fail."""
    assert 0 <= k < 64
    return arm(192 + k)


def free(slot=0):
    return op(OP_FREE, slot)


def misc(code=0):
    return op(OP_MISC) + bytes([code])


# ---- seeds --------------------------------------------------------------------

def seeds():
    s = {}
    base = create(kv=2, group=2, d=8, dv=6, page=4)
    s["basic"] = base + append(30) + dense() + sparse() + selection() + \
        selection(pages=True) + truncate(7, 17) + sparse(tol="e_3", widen=4) + info() + free()
    s["gqa-all-dims"] = create(kv=4, group=4, d=64, dv=64, page=64) + append_big(300) + \
        sparse(pages=1, cand=16) + sparse(pages="all", cand="all") + dense()
    s["page1"] = create(kv=1, group=1, d=1, dv=1, page=1) + append(39) + sparse(pages=3, cand=2) + \
        truncate(5) + sparse(sink=0, recent=0, pages=1, cand=1) + dense()
    s["default-page"] = create(kv=1, group=3, d=16, dv=16, page=0) + append_big(200) + \
        sparse(null_options=True) + sparse(pages=2, cand=40, tol="e_6", widen=2)
    for fam in ("denorm", "denorm_mix", "near_min", "tiny", "denorm_ulps"):
        s["values-" + fam] = create(kv=1, group=2, d=4, dv=64, page=8) + \
            append(39, kfam="ints", vfam=fam) + append(20, kfam="same", vfam=fam) + \
            sparse(pages=1, cand=3) + sparse(pages="all", cand="all") + dense() + \
            sparse(pages=2, cand=8, tol="e_3", widen=2)
    for fam in ("huge", "e15", "wide", "peaked", "large", "specials"):
        s["keys-" + fam] = create(kv=2, group=1, d=12, dv=5, page=5) + \
            append(39, kfam=fam, vfam="normal") + append(25, kfam=fam, vfam=fam) + \
            dense(qfam=fam) + sparse(qfam=fam, pages=2, cand=6, diag=3) + \
            sparse(qfam="normal", pages="all", cand="all", tol="e_3")
    s["ties"] = create(kv=1, group=1, d=3, dv=3, page=4) + append(39, kfam="same", vfam="ints") + \
        append(39, kfam="ints", vfam="ints") + sparse(pages=2, cand=5) + selection() + \
        selection(pages=True) + sparse(pages=1, cand=1, sink=0, recent=0)
    s["tiny-scale-overflow"] = create(kv=1, group=1, d=8, dv=4, page=8) + \
        append(20, kfam="e15") + dense(qfam="huge", sc="flt_min") + dense(qfam="e15", sc="tiny") + \
        sparse(qfam="huge", sc="tiny") + sparse(qfam="e15", sc="denorm")
    s["huge-scale"] = create(kv=1, group=2, d=8, dv=4, page=8) + append(30) + \
        dense(sc="huge") + sparse(sc="huge", tol="e_3", widen=2) + sparse(sc="e10") + \
        dense(sc="e_10") + dense(sc="eight")
    s["bad-scales"] = create() + append(9) + dense(sc="neg") + dense(sc="nan") + \
        dense(sc="inf") + dense(sc="denorm") + dense(sc="negzero") + sparse(sc="nan") + \
        sparse(sc="neg")
    s["bad-options"] = create() + append(17) + sparse(pages=0) + sparse(cand=0) + \
        sparse(widen=1) + sparse(widen=0) + sparse(solver=3) + sparse(solver=1) + \
        sparse(solver=2) + sparse(tol="neg") + sparse(tol="nan") + sparse(tol="inf") + \
        sparse(solver=1, solver_params=0) + sparse(solver_params=0xFF) + \
        sparse(diag=1) + sparse(diag=2) + sparse(diag=8)
    # eg and fw that run (solver_params: eps, max_iter, solver_tol): 221 = 1, 1000, 1e-6;
    # 110 = 0.5, 200, 1e-3; 149 = 1, 2, 1e-9 (stops at max_iter); 158 = 0.5, 1000, 1e-9
    s["projection"] = create(kv=2, group=2, d=8, dv=6, page=4) + append(39) + append(30) + \
        sparse(solver=1, solver_params=221) + sparse(solver=2, solver_params=221) + \
        sparse(solver=1, solver_params=110, pages="all", cand="all") + \
        sparse(solver=2, solver_params=149, tol="e_3", widen=2) + \
        sparse(solver=1, solver_params=158, tol="e_6", widen=3) + selection() + \
        truncate(7, 17) + sparse(solver=2, solver_params=110, pages=1, cand=4) + \
        sparse(solver=1, solver_params=149, pages=2, cand=8)
    s["tolerances"] = create(kv=2, group=2, d=16, dv=8, page=4) + append(39, kfam="wide") + \
        append(39) + sparse(tol="e_9", widen=2) + sparse(tol="huge") + sparse(tol="denorm") + \
        sparse(tol="half", widen=5) + sparse(tol="five_pct", pages=1, cand=2) + \
        sparse(tol="u16", pages=1, cand=1)
    s["bad-appends"] = create(kv=2, group=1, d=3, dv=2, page=3) + append(5) + \
        append(4, count_mode=0) + append(4, count_mode=1) + append(4, count_mode=2) + \
        append(4, count_mode=3) + append(4, count_mode=4) + append(4, count_mode=5) + \
        append(4, count_mode=6) + append(4, count_mode=7) + append(0)
    s["poison-appends"] = create(kv=1, group=2, d=5, dv=3, page=2) + append(6) + b"".join(
        append(3, kpoison=p, pos=i) + append(3, vpoison=p, pos=i + 1)
        for i, p in enumerate(("nan", "nan_payload", "inf", "max_abs", "over_max", "flt_max",
                               "denorm", "neg_zero", "bits", "min_denorm"))) + dense() + sparse()
    s["poison-queries"] = create(kv=1, group=2, d=5, dv=3, page=2) + append(9) + b"".join(
        dense(poison=p) + sparse(poison=p) for p in ("nan", "inf", "over_max", "flt_max",
                                                     "max_abs", "denorm"))
    s["bad-queries"] = create(kv=1, group=2, d=5, dv=3, page=2) + append(9) + b"".join(
        dense(count_mode=m) + sparse(count_mode=m) for m in range(7))
    s["empty"] = create() + dense() + sparse() + selection() + truncate(0) + truncate(1) + \
        info() + append(0) + sparse(null_options=True)
    s["truncations"] = create(kv=1, group=1, d=6, dv=6, page=7) + append_big(150) + \
        b"".join(truncate(m, 40) for m in range(8)) + sparse(pages=2, cand=9) + \
        selection() + truncate(7, 31) + selection() + append(10) + sparse() + truncate(3) + \
        dense() + append(3) + sparse()
    s["selection-args"] = base + append(25) + sparse(pages=2, cand=7) + b"".join(
        selection(pages=pg, cap_mode=cm, cap=5) for pg in (False, True) for cm in range(5)) + \
        op(OP_SELECTION) + bytes([0]) + bytes([4]) + u16(3) + \
        op(OP_SELECTION) + bytes([2]) + bytes([4]) + u16(3)
    s["alloc-create"] = b"".join(arm(n) + create(kv=2, group=2) for n in range(4)) + append(5)
    s["alloc-append"] = create(kv=1, group=1, d=4, dv=4, page=1) + b"".join(
        arm(n) + append(35, kseed=n) for n in range(10)) + append_big(100) + \
        b"".join(arm(n) + append(39, kseed=n) for n in range(6))
    s["alloc-decode"] = create(kv=2, group=2, d=8, dv=8, page=2) + append(39) + b"".join(
        arm(n) + sparse(pages=(n % 8) + 1, cand=8 * n + 1, probe=False) for n in range(8)) + \
        b"".join(arm(n) + dense(probe=False) for n in range(3))
    s["alloc-first-dense"] = create(kv=1, group=1, d=4, dv=4, page=4) + append(9) + \
        arm(0) + dense(probe=False) + dense()
    s["alloc-truncate-info"] = create() + append(20) + arm(0) + truncate(7, 3) + arm(0) + \
        info() + arm(0) + selection() + arm(1) + free()
    s["isa"] = create(kv=2, group=2, d=19, dv=9, page=5) + append(37) + isa("scalar") + \
        sparse(isa_check=True, pages=2, cand=10) + dense() + isa("avx2") + dense() + \
        sparse(isa_check=True, tol="e_3", widen=2) + b"".join(
            isa(n) for n in ("wasmsimd", "empty", "null", "AVX2", "space", "avx512", "long",
                             "scal", "auto"))
    s["two-slots"] = create(kv=1, group=2, d=8, dv=8, page=3) + \
        create(kv=2, group=1, d=5, dv=7, page=6, slot=1) + append(30) + append(20, slot=1) + \
        sparse() + sparse(slot=1) + selection() + truncate(7, 5, slot=1) + selection() + \
        free() + dense(slot=1) + free(slot=1)
    s["bad-shapes"] = b"".join(create_raw(t) for t in (
        bytes([1]) + dim(8) + dim(8) + bytes([4, 0]),
        bytes([2]) + dim(8) + dim(8) + bytes([4, 0]),
        bytes([3]) + dim(8) + dim(8) + bytes([4, 0]),
        bytes([4]) + dim(8) + dim(8) + bytes([4, 0]),
        bytes([0]) + u32(8) + u32(3) + dim(8) + dim(8) + bytes([4, 0]),
        bytes([5, 10]) + dim(1) + dim(1) + bytes([1, 0]))) + \
        op(OP_CREATE) + bytes([1, 0, 0, 224, 225, 4, 0]) + \
        op(OP_CREATE) + bytes([1, 0, 0, 226, 3, 4, 0]) + \
        op(OP_CREATE) + bytes([1, 0, 0, 3, 3, 224, 249]) + \
        op(OP_CREATE) + bytes([1, 0, 0, 3, 3, 225, 0]) + \
        op(OP_CREATE) + bytes([1, 0, 0, 3, 3, 229, 0]) + \
        op(OP_CREATE) + bytes([0xFF, 0, 0, 3, 3, 4, 0]) + create() + append(3)
    s["big-heads"] = create_raw(bytes([5, 0]) + dim(2) + dim(2) + bytes([1, 0])) + append(2) + \
        dense() + sparse(pages=1, cand=1) + selection(head=200)
    s["wide-page"] = op(OP_CREATE) + bytes([1, 0, 0, 7, 7, 228]) + u16(500) + bytes([0]) + \
        append_big(700) + sparse(pages=1, cand=64) + truncate(7, 333) + sparse(tol="e_3", widen=2)
    s["misc"] = b"".join(misc(c) for c in range(24)) + info(0) + info(1) + info(2) + free() + \
        append(3) + truncate(0) + dense() + sparse() + selection()
    s["recent-sink"] = create(kv=1, group=1, d=8, dv=8, page=2) + append(39) + \
        sparse(sink=3, recent=3, pages=1, cand=4) + sparse(sink=0, recent=3, pages=8, cand=64) + \
        sparse(sink=3, recent=0, pages=1, cand=64, tol="e_3", widen=3)
    # 32-bit size_t (the i386 build stands in for wasm32): sizes that wrap around
    s["sink-recent-wrap"] = create(kv=1, group=1, d=1, dv=1, page=1) + append_big(200) + \
        sparse(pages=1, cand=1, sink_recent32=(0xFFFFFFFF, 1)) + \
        sparse(pages=1, cand=1, sink_recent32=(0x80000000, 0x80000000), tol="e_3", widen=2) + \
        sparse(pages=2, cand=3, sink_recent32=(1, 0xFFFFFFFF))
    for kv_shift in (8, 10):  # kv_heads 256 or 1024, d = dv = 512, page 4096: 2^32 or 2^34 bytes
        s["huge-block-kv%d" % (1 << kv_shift)] = \
            create_raw(bytes([5, kv_shift]) + bytes([225, 225, 224, 0])) + \
            op(OP_APPEND) + bytes([1, 0xF8]) + fill() + fill() + dense() + \
            create(kv=1, group=1, d=4, dv=4, page=4) + append(5) + sparse()
    # tree routing (a node is 16 pages): lazy node updates across appends and
    # truncations between decodes, few nodes expanded, partial last nodes,
    # tolerance (flat retry), projection solvers, ISA switches, allocation failures
    tree = dict(routing="tree")
    s["tree-lazy"] = create(kv=2, group=2, d=7, dv=5, page=1) + append_big(700) + \
        sparse(pages=2, cand=16, expand=1, **tree) + append(1) + \
        sparse(pages=3, cand=9, expand=2, **tree) + truncate(7, 333) + \
        sparse(pages=2, cand=16, expand=1, **tree) + append(39, kfam="wide") + \
        sparse(pages=1, cand=4, expand=3, tol="e_3", widen=2, **tree) + truncate(5) + \
        sparse(pages=2, cand=8, expand=1, isa_check=True, **tree) + truncate(7, 160) + \
        append(17, kfam="peaked") + sparse(pages=1, cand=2, sink=0, recent=0, expand=1, **tree) + \
        truncate(3) + append(20) + sparse(pages=2, cand=8, expand=1, **tree) + append_big(300) + \
        sparse(pages=4, cand=30, expand=0xFFFFFFFF, **tree) + \
        sparse(pages=4, cand=30, expand=2, **tree) + selection(pages=True) + selection()
    s["tree-options"] = create(kv=1, group=2, d=5, dv=3, page=2) + append_big(400) + \
        sparse(routing="two") + sparse(routing="max") + sparse(routing=7) + \
        sparse(routing=0x80000001, expand=3) + sparse(routing="flat", expand=0xFFFFFFFF) + \
        sparse(routing="flat", expand=2) + sparse(expand=0, **tree) + \
        sparse(expand=4, **tree) + sparse(expand=1000, **tree) + \
        sparse(expand=0x12345678, **tree) + sparse(pages="all", cand="all", expand=1, **tree) + \
        sparse(pages=8, cand="all", expand=1, tol="e_6", widen=3, **tree)
    s["share-routing"] = create(kv=2, group=3, d=6, dv=4, page=2) + append_big(600) + \
        sparse(pages=3, cand=16, routing="tree_share", expand=1) + \
        sparse(pages=3, cand=16, routing="flat_share") + sparse(routing="tree_badshare") + \
        truncate(7, 333) + sparse(pages=2, cand=8, routing="tree_share", expand=2, tol="e_3", widen=2) + \
        append(21) + sparse(pages=4, cand=12, routing="tree_share", expand=0) + \
        sparse(pages=2, cand=8, solver=1, solver_params=221, routing="tree_share", expand=1)
    s["tree-page4-solvers"] = create(kv=2, group=1, d=9, dv=4, page=4) + append_big(1100) + \
        sparse(pages=3, cand=32, expand=1, **tree) + \
        sparse(pages=2, cand=16, expand=2, solver=1, solver_params=221, **tree) + \
        sparse(pages=2, cand=16, expand=1, solver=2, solver_params=110, **tree) + \
        append(33) + sparse(pages=1, cand=8, expand=3, solver=1, solver_params=158, tol="e_3",
                            widen=2, **tree) + \
        truncate(7, 700) + sparse(pages=5, cand=40, expand=1, tol="five_pct", widen=4, **tree) + \
        isa("scalar") + sparse(pages=2, cand=12, expand=2, isa_check=True, **tree) + isa("auto")
    # allocation k of a decode that grows the scratch fails (the node arrays are
    # among the last ones), then the same decode runs unhindered
    def grow(i, k, probe):
        o = dict(pages=1 + i % 8, cand=5 * i + 1, expand=1 + i % 3, widen=2, probe=probe,
                 tol="e_3" if i % 2 else "off", **tree)
        return arm_at(k) + sparse(**o) + sparse(**o)
    s["tree-alloc"] = create(kv=2, group=2, d=6, dv=6, page=2) + append_big(600) + \
        b"".join(grow(i, k, i % 3 != 0) for i, k in enumerate(
            (0, 3, 12, 19, 20, 21, 22, 23, 24, 25, 27, 29, 31))) + \
        append(5) + arm(3) + sparse(pages=2, cand=9, expand=1, **tree) + truncate(7, 250) + \
        arm(5) + sparse(pages=2, cand=9, expand=2, **tree) + append_big(500) + \
        arm_at(22) + sparse(pages=2, cand=9, expand=2, **tree) + \
        sparse(pages=2, cand=9, expand=2, **tree)
    return s


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "corpus")
    os.makedirs(out, exist_ok=True)
    for old in os.listdir(out):  # seeds that no longer exist
        if old.startswith("seed-"):
            os.remove(os.path.join(out, old))
    total = 0
    for name, data in sorted(seeds().items()):
        with open(os.path.join(out, "seed-" + name), "wb") as f:
            f.write(data)
        total += len(data)
    print(f"make_corpus: {len(seeds())} seeds, {total} bytes in {out}")


if __name__ == "__main__":
    main()
