"""Properties: every hardware block == the golden formula in the Amaranth simulator, for random
shapes, bit widths (1..16), signedness, weights (all-zero/all-max/all-min rows), requantization
parameters and extreme inputs, under random idle cycles and backpressure."""
from __future__ import annotations

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from ddnhw.fixedpoint import requantize
from ddnhw.hw import Dense, FoldedDense, Requantizer
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType
from ddnhw.ir.graph import Node
from ddnhw.ir.ops import requant_range

from .strategies import (acc_type, biases, budget, count, exact_dense, int_types, vectors,
                         weights)

STALL = st.sampled_from([(0.0, 0.0), (0.3, 0.3), (0.5, 0.7)])


@st.composite
def dense_case(draw, max_out=6, max_in=10):
    n_out = draw(st.integers(1, max_out))
    n_in = draw(st.integers(1, max_in))
    in_type = draw(int_types(max_bits=16))
    w = draw(weights(n_out, n_in))
    b = draw(biases(n_out))
    extra = draw(st.sampled_from([0, 0, 0, 3]))
    return in_type, w, b, acc_type(w, b, in_type, extra)


def check_dense(in_type, w, b, out_type, style, regs_every=2, idle=0.3, stall=0.3, seed=0, n=12):
    dut = Dense(w, b, in_type, out_type, regs_every=regs_every, style=style)
    x = vectors(in_type, w.shape[1], n, seed)
    y, log = run_stream(dut, x, idle=idle, stall=stall, seed=seed)
    np.testing.assert_array_equal(y, exact_dense(x, w, b))
    assert log["protocol"] == []
    assert len(log["in"]) == len(log["out"]) == len(x)


@budget(300)
@given(case=dense_case(), style=st.sampled_from(["cse", "shiftadd", "mul"]),
       regs_every=st.integers(1, 4), bp=STALL, seed=st.integers(0, 1000))
def test_dense_equals_golden(case, style, regs_every, bp, seed):
    count(f"Dense[{style}]")
    in_type, w, b, out_type = case
    check_dense(in_type, w, b, out_type, style, regs_every, *bp, seed=seed)


# shrunk or hand-made corner cases, kept as explicit regressions for every style
CORNERS = [
    # 1-bit unsigned input, one-hot +1 weight, negative bias narrower than nothing
    (IntType(False, 1), [[1]], [-1]),
    # all-min 16-bit weights on 16-bit signed inputs (largest products, both signs)
    (IntType(True, 16), [[-32768, -32768, -32768]], [32767]),
    # all-max row next to all-zero row; bias narrower than the shift (the fixed Dense bug)
    (IntType(False, 4), [[7, 7, 7], [0, 0, 0]], [2, -6]),
    # weight = 2**k only (pure shift), signed 2-bit input
    (IntType(True, 2), [[4, -16, 1 << 14]], [0]),
    # unsigned 16-bit weights on 1-bit input
    (IntType(False, 1), [[65535, 1, 32768]], [-65535]),
]


def test_dense_corner_cases():
    for in_type, w, b in CORNERS:
        w, b = np.array(w, np.int64), np.array(b, np.int64)
        for style in ("cse", "shiftadd", "mul"):
            count(f"Dense[{style}]")
            check_dense(in_type, w, b, acc_type(w, b, in_type), style, 1, 0.3, 0.3, seed=1)


@st.composite
def requant_case(draw):
    in_type = draw(int_types(max_bits=16))
    c = draw(st.integers(1, 6))
    mbits = draw(st.integers(1, 16))
    m = np.array(draw(st.lists(st.one_of(st.integers(-(1 << mbits), 1 << mbits),
                                         st.sampled_from([0, 1, -1, (1 << mbits) - 1])),
                               min_size=c, max_size=c)), np.int64)
    s = np.array(draw(st.lists(st.one_of(st.integers(0, in_type.bits + mbits + 2),
                                         st.sampled_from([0, 1, 40, 62])),
                               min_size=c, max_size=c)), np.int64)
    # clip range: anywhere from inside the product range to beyond it
    span = 1 << (in_type.bits + mbits)
    lo = draw(st.integers(-span, span))
    hi = draw(st.integers(lo, span + 1))
    if draw(st.booleans()):
        lo, hi = 0, (1 << draw(st.integers(1, 16))) - 1   # ReLU to an unsigned type
    node = Node("rq", "requant", ["x"], ["y"], dict(multiplier=m, shift=s, lo=lo, hi=hi))
    rlo, rhi = requant_range(node, in_type)
    out = IntType.for_range(int(np.min(rlo)), int(np.max(rhi)))
    if draw(st.booleans()):
        out = IntType(out.signed, out.bits + 2)
    return in_type, m, s, lo, hi, out


@budget(300)
@given(case=requant_case(), bp=STALL, seed=st.integers(0, 1000))
def test_requantizer_equals_golden(case, bp, seed):
    count("Requantizer")
    in_type, m, s, lo, hi, out = case
    dut = Requantizer(m, s, lo, hi, in_type, out)
    x = vectors(in_type, len(m), 16, seed)
    y, log = run_stream(dut, x, idle=bp[0], stall=bp[1], seed=seed)
    np.testing.assert_array_equal(y, requantize(x, m, s, lo, hi))
    assert log["protocol"] == []


@st.composite
def folded_case(draw):
    in_type, w, b, out_type = draw(dense_case(max_out=5, max_in=7))
    n_out, n_in = w.shape
    pe = draw(st.integers(1, n_out))
    simd = draw(st.integers(1, n_in))
    mul = draw(st.sampled_from(["auto", "lut", "dsp"]))
    return in_type, w, b, out_type, pe, simd, mul


@budget(150)
@given(case=folded_case(), bp=STALL, seed=st.integers(0, 1000))
def test_folded_dense_equals_golden(case, bp, seed):
    in_type, w, b, out_type, pe, simd, mul = case
    dut = FoldedDense(w, b, in_type, out_type, pe=pe, simd=simd, mul=mul)
    count(f"FoldedDense[{dut.mul}]")
    x = vectors(in_type, w.shape[1], 6, seed)
    y, log = run_stream(dut, x, idle=bp[0], stall=bp[1], seed=seed,
                        max_cycles=(len(x) + 4) * (dut.ii + 5) * 10)
    np.testing.assert_array_equal(y, exact_dense(x, w, b))
    assert log["protocol"] == []
