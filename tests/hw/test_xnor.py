import numpy as np
import pytest

from ddnhw.hw import Dense
from ddnhw.hw.sim import run_stream
from ddnhw.hw.xnor import XnorDense, binary_rows
from ddnhw.ir import IntType

XT = IntType(True, 2)


def _layer(seed, n_in, n_out, c):
    rng = np.random.default_rng(seed)
    w = rng.choice([-1, 1], size=(n_out, n_in)) * c
    w[0, : n_in // 2] = 0                 # pruned inputs
    if n_out > 3:
        w[3] = 0                          # constant output
    b = rng.integers(-20, 21, size=n_out)
    yt = IntType.for_range(int((b - c * n_in).min()), int((b + c * n_in).max()))
    return w, b, yt


def check_xnor(seed, n_in, n_out, c=1, regs_every=2, n=60, idle=0.3, stall=0.3):
    w, b, yt = _layer(seed, n_in, n_out, c)
    dut = XnorDense(w, b, XT, yt, regs_every=regs_every)
    x = np.random.default_rng(seed + 1).choice([-1, 1], size=(n, n_in))
    x[0], x[1] = -1, 1
    y, log = run_stream(dut, x, idle=idle, stall=stall, seed=seed)
    np.testing.assert_array_equal(y, x @ w.T + b)
    assert log["protocol"] == []
    return dut, log


@pytest.mark.parametrize("seed,n_in,n_out,c,regs_every", [
    (0, 16, 10, 1, 2), (1, 7, 5, 2, 1), (2, 33, 4, 3, 3), (3, 1, 2, 1, 2), (4, 64, 6, 2, 2)])
def test_xnor_random(seed, n_in, n_out, c, regs_every):
    check_xnor(seed, n_in, n_out, c, regs_every)


def test_xnor_full_rate_matches_dense_timing():
    dut, log = check_xnor(5, 16, 4, idle=0.0, stall=0.0)
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * len(log["in"])


def test_xnor_same_function_as_dense():
    w, b, yt = _layer(6, 12, 5, 2)
    x = np.random.default_rng(6).choice([-1, 1], size=(30, 12))
    ya, _ = run_stream(XnorDense(w, b, XT, yt), x, idle=0.2, stall=0.2)
    yb, _ = run_stream(Dense(w, b, XT, yt), x, idle=0.2, stall=0.2)
    np.testing.assert_array_equal(ya, yb)


def test_binary_rows():
    assert binary_rows(np.array([[2, -2, 0], [1, 1, -1]])) is not None
    assert binary_rows(np.array([[2, -1]])) is None
    assert binary_rows(np.zeros((0, 3), dtype=int)) is None


@pytest.mark.parametrize("kw,match", [
    (dict(weight=np.array([[1, 2]])), "binary"),
    (dict(in_type=IntType(False, 2)), "in_type"),
    (dict(out_type=IntType(True, 2)), "cannot hold"),
    (dict(regs_every=0), "regs_every"),
    (dict(bias=np.array([1.5])), "bias")])
def test_xnor_rejects(kw, match):
    args = dict(weight=np.array([[1, -1, 1]]), bias=np.array([0]), in_type=XT,
                out_type=IntType(True, 4), regs_every=2)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        XnorDense(**args)
