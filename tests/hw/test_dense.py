import numpy as np
import pytest

from ddnhw.golden import run_all
from ddnhw.hw import Dense
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType
from ddnhw.ir.testing import random_mlp


def _vectors(t, lanes, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, size=(n, lanes))
    return np.concatenate([np.full((1, lanes), t.min), np.full((1, lanes), t.max), x,
                           np.full((1, lanes), t.max)])


def check_dense(seed, sizes=(12, 6), n=60, idle=0.3, stall=0.3, in_signed=False, **kw):
    g = random_mlp(seed, sizes=sizes, in_signed=in_signed)
    node = g.nodes[0]
    xt, yt = g.tensors[node.inputs[0]].dtype, g.tensors[node.outputs[0]].dtype
    dut = Dense(node.attrs["weight"], node.attrs["bias"], xt, yt, **kw)
    x = _vectors(xt, sizes[0], n, seed)
    y, log = run_stream(dut, x, idle=idle, stall=stall, seed=seed)
    np.testing.assert_array_equal(y, run_all(g, x)[node.outputs[0]])
    assert log["protocol"] == []
    return dut, log


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("style", ["cse", "shiftadd", "mul"])
def test_dense_random(seed, style):
    check_dense(seed, style=style)


@pytest.mark.parametrize("regs_every", [1, 3, 8])
def test_dense_regs_every(regs_every):
    dut, _ = check_dense(5, sizes=(10, 5), regs_every=regs_every)
    assert dut.latency >= 1


def test_dense_signed_input():
    check_dense(7, sizes=(9, 4), in_signed=True)


def test_dense_degenerate_rows():
    # all-zero row (constant output), single +1 weight (pass-through), power of two, negatives
    w = np.array([[0, 0, 0], [1, 0, 0], [0, 4, 0], [-1, 0, -8], [0, 0, 0]])
    b = np.array([5, 0, 0, -3, 0])
    xt = IntType(False, 4)
    lo = (np.minimum(w, 0) * 15).sum(1) + b
    hi = (np.maximum(w, 0) * 15).sum(1) + b
    yt = IntType.for_range(int(lo.min()), int(hi.max()))
    dut = Dense(w, b, xt, yt)
    x = _vectors(xt, 3, 30, 3)
    y, _ = run_stream(dut, x, idle=0.2, stall=0.4, seed=3)
    np.testing.assert_array_equal(y, x @ w.T + b)


def test_dense_timing_full_rate():
    # no idle, no stall: output k appears exactly `latency` cycles after input k, one per cycle
    dut, log = check_dense(4, sizes=(8, 4), n=20, idle=0.0, stall=0.0)
    assert dut.ii == 1
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["out"])
    assert log["in"] == list(range(len(log["in"])))


def test_dense_errors():
    t = IntType(False, 4)
    with pytest.raises(ValueError, match="regs_every"):
        Dense(np.ones((2, 2), int), np.zeros(2, int), t, IntType(True, 8), regs_every=0)
    with pytest.raises(ValueError, match="bias"):
        Dense(np.ones((2, 2), int), np.zeros(3, int), t, IntType(True, 8))
    with pytest.raises(ValueError, match="out_type"):
        Dense(np.full((2, 2), 7), np.zeros(2, int), t, IntType(True, 4))
    with pytest.raises(TypeError, match="in_type"):
        Dense(np.ones((2, 2), int), np.zeros(2, int), 4, IntType(True, 8))
    with pytest.raises(ValueError, match="style"):
        Dense(np.ones((2, 2), int), np.zeros(2, int), t, IntType(True, 8), style="x")


@pytest.mark.parametrize("style", ["cse", "shiftadd"])
@pytest.mark.parametrize("w,b", [([7, 7, 0], 2), ([7, 7, 0], -6), ([-7, 3, 5], 4), ([6, 6, 6], 1)])
def test_dense_narrow_low_operand_regression(style, w, b):
    # regression: a bias constant (or sum) narrower than the shift to the other operand used to
    # lose its zero bits (p[:d] slices fewer than d bits), misplacing the high part
    w, b = np.array([w]), np.array([b])
    xt = IntType(False, 4)
    yt = IntType.for_range(int((np.minimum(w, 0) * 15).sum() + b[0]),
                           int((np.maximum(w, 0) * 15).sum() + b[0]))
    x = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [15, 15, 15], [3, 9, 2]])
    y, _ = run_stream(Dense(w, b, xt, yt, style=style), x, seed=1)
    np.testing.assert_array_equal(y, x @ w.T + b)


@pytest.mark.parametrize("style", ["cse", "shiftadd"])
def test_dense_wide_layer(style):
    # the case that exposed the regression above: 64 inputs, many shared digit sets
    check_dense(0, sizes=(64, 10), n=20, style=style)
