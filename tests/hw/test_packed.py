"""Packed multipliers (two PE lanes per product, ``FoldedDense(mul="packed")``) and extra
dot-product pipeline stages (``pipe``): exact at the edges of the field ranges, bit-exact
against the golden model under backpressure, and the stated latency at full rate."""
import itertools

import numpy as np
import pytest

from ddnhw.hw import FoldedDenseSpec
from ddnhw.hw.packed import field_bits, pack, unpack
from tests.hw.test_folded import check_folded


@pytest.mark.parametrize("xr,wr,d", [((0, 15), (-8, 7), 1), ((0, 15), (-8, 7), 8),
                                     ((-8, 7), (-8, 7), 3), ((0, 3), (-2, 1), 16),
                                     ((0, 255), (-128, 127), 2)])
def test_unpack_exact_at_the_edges(xr, wr, d):
    f = field_bits(xr, wr, d)
    corners = [a * b for a in xr for b in wr]
    lo, hi = d * min(0, *corners), d * max(0, *corners)
    # the sums at the field's edges, every combination of low and high field
    edges = sorted({lo, hi, 0, -1, 1, lo + 1, hi - 1})
    for a, b in itertools.product(edges, edges):
        assert unpack(a + (b << f), f) == (a, b)
    # F is the narrowest: one bit less overlaps for an edge value
    assert any(unpack(a + (b << (f - 1)), f - 1) != (a, b)
               for a, b in itertools.product(edges, edges))
    # a packed product is the packed pair of products
    for x, wl, wh in itertools.product(xr, wr, wr):
        assert unpack(x * pack(wl, wh, f), f) == (x * wl, x * wh)


def test_packed_plan_fits_one_sb_mac16():
    rng = np.random.default_rng(0)
    from ddnhw.ir import IntType
    w = rng.integers(-8, 8, size=(8, 16))
    spec = FoldedDenseSpec(w, np.zeros(8, dtype=np.int64), IntType(False, 4, 0),
                           IntType(True, 16, 0), pe=2, simd=16, mul="packed", dsp=8)
    p = spec.packing
    assert p["d"] == [8] and p["f"] == 11 and p["bw"] <= 16   # x (4 bits) * B: one SB_MAC16
    assert spec.features()["dsp_muls"] == 8


@pytest.mark.parametrize("pe,simd,dsp,pipe", [(2, 4, None, 0), (2, 4, 3, 1), (4, 3, 3, 2),
                                              (2, 8, 8, 3), (4, 3, 1, 3), (2, 1, 1, 3),
                                              (6, 8, 0, 1), (2, 8, 8, 2)])
def test_packed_random(pe, simd, dsp, pipe):
    check_folded(pe * 7 + simd + (dsp or 0), (8, 6), pe, simd, mul="packed", dsp=dsp,
                 pipe=pipe)


@pytest.mark.parametrize("pipe", [1, 2])
def test_pipe_latency_full_rate(pipe):
    dut, log = check_folded(5, (7, 5, 2), 1, 3, n=10, idle=0.0, stall=0.0, fuse=True,
                            pipe=pipe)
    assert dut.latency == dut.ii + 5 + pipe
    assert np.all(np.diff(log["in"]) == dut.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["out"])


@pytest.mark.parametrize("pe,simd,pipe", [(1, 3, 0), (2, 4, 2), (6, 8, 1), (3, 2, 0)])
def test_requant_register_random(pe, simd, pipe):
    """``rq_reg``: the fused requantizer's outputs registered; exact under backpressure,
    with more steps per vector than stages after issue (decoupled: (1, 3) has 18) and fewer
    (lock step: (6, 8) has 1)."""
    dut, _ = check_folded(pe * 11 + simd, (8, 6, 2), pe, simd, fuse=True, pipe=pipe,
                          rq_reg=True)
    assert dut.latency == dut.ii + 6 + pipe


@pytest.mark.parametrize("pe,simd", [(1, 3), (6, 8)])
def test_requant_register_latency_full_rate(pe, simd):
    dut, log = check_folded(3, (7 if simd == 3 else 8, 6, 2), pe, simd, n=10, idle=0.0,
                            stall=0.0, fuse=True, rq_reg=True)
    assert dut.latency == dut.ii + 6
    assert np.all(np.diff(log["in"]) == dut.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["out"])


def test_packed_pipe3_latency_full_rate_with_requant_register():
    dut, log = check_folded(6, (8, 6, 2), 2, 8, n=10, idle=0.0, stall=0.0, fuse=True,
                            mul="packed", dsp=8, pipe=3, rq_reg=True)
    assert dut.latency == dut.ii + 5 + 3 + 1
    assert np.all(np.diff(log["in"]) == dut.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["out"])


def test_requant_register_needs_a_requantizer():
    from ddnhw.ir import IntType
    w, b = np.ones((3, 4), dtype=np.int64), np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="rq_reg registers the fused requantizer"):
        FoldedDenseSpec(w, b, IntType(False, 4, 0), IntType(True, 12, 0), rq_reg=True)
    with pytest.raises(ValueError, match="rq_reg must be True or False"):
        FoldedDenseSpec(w, b, IntType(False, 4, 0), IntType(True, 12, 0), rq_reg=1)


def test_packed_requant_signed_inputs():
    check_folded(9, (8, 6, 2), 2, 4, fuse=True, in_signed=True, mul="packed", dsp=3, pipe=2)


def test_packed_errors():
    from ddnhw.ir import IntType
    w = np.ones((3, 4), dtype=np.int64)
    b = np.zeros(3, dtype=np.int64)
    with pytest.raises(ValueError, match="pe must be even"):
        FoldedDenseSpec(w, b, IntType(False, 4, 0), IntType(True, 12, 0), pe=3, mul="packed")
    with pytest.raises(ValueError, match="dsp"):
        FoldedDenseSpec(w, b, IntType(False, 4, 0), IntType(True, 12, 0), pe=1, dsp=1)
    with pytest.raises(ValueError, match="pipe"):
        FoldedDenseSpec(w, b, IntType(False, 4, 0), IntType(True, 12, 0), pipe=3)


@pytest.mark.parametrize("wmem,brams", [("bram", True), ("logic", False)])
def test_weight_memory_style_reaches_yosys(tmp_path, wmem, brams):
    """``wmem`` puts the weight ROM where asked: yosys' synth_ice40 maps it to SB_RAM40_4K
    (``bram``) or to logic (``logic``); the circuit computes the same either way."""
    from amaranth.back import verilog
    from ddnhw.energy.gatesim import synthesize
    dut, _ = check_folded(8, (16, 10, 2), 2, 4, fuse=True, wmem=wmem)
    text = verilog.convert(dut, name="f")
    assert f'rom_style = "{"block" if wmem == "bram" else "logic"}"' in text
    net = synthesize([("f.v", text)], "f", "ice40", tmp_path)
    assert (net.cells.get("SB_RAM40_4K", 0) > 0) is brams, net.cells
