import numpy as np
import pytest

from ddnhw.golden import run_all
from ddnhw.hw import FoldedDense, FoldedDenseSpec
from ddnhw.hw.folded import fold_ii
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType
from ddnhw.ir.testing import random_mlp


def _vectors(t, lanes, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, size=(n, lanes))
    return np.concatenate([np.full((1, lanes), t.min), np.full((1, lanes), t.max), x,
                           np.full((1, lanes), t.min)])


def check_folded(seed, sizes, pe, simd, n=24, idle=0.3, stall=0.3, in_signed=False,
                 fuse=False, **kw):
    """FoldedDense of the first layer of a random MLP (``fuse``: with its requantizer)."""
    g = random_mlp(seed, sizes=sizes, in_signed=in_signed)
    node = last = g.nodes[0]
    if fuse:
        last = g.nodes[1]
        a = last.attrs
        kw["requant"] = (a["multiplier"], a["shift"], a["lo"], a["hi"])
    xt, yt = g.tensors[node.inputs[0]].dtype, g.tensors[last.outputs[0]].dtype
    dut = FoldedDense(node.attrs["weight"], node.attrs["bias"], xt, yt, pe=pe, simd=simd, **kw)
    x = _vectors(xt, sizes[0], n, seed)
    y, log = run_stream(dut, x, idle=idle, stall=stall, seed=seed,
                        max_cycles=(len(x) + 4) * (dut.ii + 5) * 8)
    np.testing.assert_array_equal(y, run_all(g, x)[last.outputs[0]])
    assert log["protocol"] == []
    return dut, log


# (pe, simd) per 8-in 6-out layer: PE=1/SIMD=1, intermediate, non-divisors, fully parallel
FOLDS = [(1, 1), (2, 4), (3, 2), (4, 3), (6, 8), (1, 8), (6, 1)]


@pytest.mark.parametrize("pe,simd", FOLDS)
def test_folded_random(pe, simd):
    check_folded(pe * 10 + simd, (8, 6), pe, simd)


@pytest.mark.parametrize("pe,simd", FOLDS)
def test_folded_requant(pe, simd):
    # 6 output channels with random multipliers 1..3 and shifts 0..4: several per PE lane
    dut, _ = check_folded(pe * 10 + simd + 1, (8, 6, 2), pe, simd, fuse=True)
    assert dut.latency == dut.ii + 5
    assert len(dut.requant_classes) == pe


@pytest.mark.parametrize("in_signed", [False, True])
def test_folded_requant_full_rate(in_signed):
    dut, log = check_folded(4, (7, 5, 2), 2, 3, n=12, idle=0.0, stall=0.0, fuse=True,
                            in_signed=in_signed)
    assert np.all(np.diff(log["in"]) == dut.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["out"])


@pytest.mark.parametrize("mul", ["lut", "dsp"])
@pytest.mark.parametrize("in_signed", [False, True])
def test_folded_mul_styles(mul, in_signed):
    dut, _ = check_folded(7, (6, 4), 2, 3, in_signed=in_signed, mul=mul)
    assert dut.mul == mul


def test_folded_unsigned_weights_wide():
    # unsigned weights, 7-bit; signed 6-bit inputs: "auto" picks "dsp"
    rng = np.random.default_rng(9)
    w = rng.integers(0, 100, size=(3, 5))
    b = rng.integers(-50, 50, size=3)
    xt = IntType(True, 6)
    yt = IntType.for_range(-32 * 5 * 99 - 50, 31 * 5 * 99 + 50)
    x = _vectors(xt, 5, 20, 9)
    for mul in ("auto", "lut"):
        dut = FoldedDense(w, b, xt, yt, pe=3, simd=2, mul=mul)
        y, _ = run_stream(dut, x, idle=0.2, stall=0.3, seed=9)
        np.testing.assert_array_equal(y, x @ w.T + b)
    for t, style in [(xt, "dsp"), (IntType(False, 4), "lut")]:
        assert FoldedDenseSpec(w, b, t, yt, mul="auto").mul == style


@pytest.mark.parametrize("pe,simd", [(1, 1), (2, 2), (5, 7)])
def test_folded_full_rate(pe, simd):
    # no idle, no stall: one input every ii cycles, output `latency` cycles after its input
    dut, log = check_folded(3, (7, 5), pe, simd, n=12, idle=0.0, stall=0.0)
    assert dut.ii == fold_ii(5, 7, pe, simd)
    assert np.all(np.diff(log["in"]) == dut.ii)
    assert np.all(np.diff(log["out"]) == dut.ii)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["out"])


def test_folded_degenerate():
    w = np.array([[0, 0, 0], [1, 0, 0], [0, 4, 0], [-1, 0, -8], [0, 0, 0]])
    b = np.array([5, 0, 0, -3, 0])
    xt = IntType(False, 4)
    lo = (np.minimum(w, 0) * 15).sum(1) + b
    hi = (np.maximum(w, 0) * 15).sum(1) + b
    yt = IntType.for_range(int(lo.min()), int(hi.max()))
    x = _vectors(xt, 3, 20, 3)
    for pe, simd in [(1, 1), (2, 2), (5, 3)]:
        y, _ = run_stream(FoldedDense(w, b, xt, yt, pe=pe, simd=simd), x, idle=0.2, stall=0.4,
                          seed=3)
        np.testing.assert_array_equal(y, x @ w.T + b)


def test_folded_errors():
    t = IntType(False, 4)
    w, b = np.ones((2, 3), int), np.zeros(2, int)
    with pytest.raises(ValueError, match="pe"):
        FoldedDense(w, b, t, IntType(True, 8), pe=3)
    with pytest.raises(ValueError, match="simd"):
        FoldedDense(w, b, t, IntType(True, 8), simd=0)
    with pytest.raises(ValueError, match="out_type"):
        FoldedDense(np.full((2, 2), 7), b, t, IntType(True, 4))
    with pytest.raises(TypeError, match="in_type"):
        FoldedDense(w, b, 4, IntType(True, 8))
    with pytest.raises(ValueError, match="mul"):
        FoldedDense(w, b, t, IntType(True, 8), mul="x")
    u4 = IntType(False, 4)
    with pytest.raises(ValueError, match="requant must be"):
        FoldedDense(w, b, t, u4, requant=(1, 2))
    with pytest.raises(ValueError, match="requant shift"):
        FoldedDense(w, b, t, u4, requant=([1, 1], [0], 0, 15))
    with pytest.raises(ValueError, match="lo=3 > hi=2"):
        FoldedDense(w, b, t, u4, requant=([1, 1], [0, 0], 3, 2))
    with pytest.raises(ValueError, match="out_type"):
        FoldedDense(w, b, t, u4, requant=([1, 1], [0, 0], 0, 31))
