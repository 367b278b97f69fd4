"""Image streaming blocks in the Amaranth simulator vs the golden model, under idle/stall."""
import numpy as np
import pytest

from ddnhw import golden
from ddnhw.hw import Dense
from ddnhw.hw.window import Chain, Collector, SlidingWindow, SlidingWindowSpec, WindowPool
from ddnhw.hw.sim import run_beats
from ddnhw.ir import IntType
from ddnhw.ir.ops import sliding_windows as _windows

U4 = IntType(False, 4)


def check_window(h, w, c, k, stride, padding, images=2, idle=0.3, stall=0.3, seed=0, kw=None):
    kw = kw or k
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 16, (images, h, w, c))
    dut = SlidingWindow(h, w, c, U4, k, kw, stride, padding)
    want = _windows(x, k, kw, stride, padding)               # N, OH, OW, KH, KW, C
    want = want.reshape(images * dut.beats_out, -1)
    got, log = run_beats(dut, x.reshape(-1, c), len(want), idle=idle, stall=stall, seed=seed)
    np.testing.assert_array_equal(got, want)
    assert not log["protocol"]
    return log


@pytest.mark.parametrize("geom", [
    (5, 5, 2, 3, 1, 1), (6, 6, 1, 2, 2, 0), (7, 5, 3, 3, 2, 1), (4, 6, 1, 1, 1, 0),
    (8, 8, 1, 3, 1, 1), (6, 7, 2, 2, 3, 0), (3, 3, 2, 3, 1, 2), (5, 4, 1, 4, 1, 0)])
def test_sliding_window(geom):
    check_window(*geom, seed=sum(geom))


def test_sliding_window_full_rate():
    log = check_window(8, 8, 1, 3, 1, 1, images=3, idle=0.0, stall=0.0)
    dut = SlidingWindowSpec(8, 8, 1, U4, 3, 3, 1, 1)
    per_image = np.diff(log["out"][::dut.beats_out])
    assert per_image.max() <= dut.ii


@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_chain(kind):
    rng = np.random.default_rng(1)
    x = rng.integers(0, 16, (3, 6, 4, 2))
    dut = Chain(SlidingWindow(6, 4, 2, U4, 2, 2, 2, 0), WindowPool(kind, 4, 2, U4))
    win = _windows(x, 2, 2, 2, 0)
    s = win.sum(axis=(3, 4))
    want = win.max(axis=(3, 4)) if kind == "max" else (s + 2) >> 2
    got, log = run_beats(dut, x.reshape(-1, 2), 3 * 6, idle=0.2, stall=0.4, seed=2)
    np.testing.assert_array_equal(got, want.reshape(-1, 2))


def test_conv_chain_then_collector():
    from ddnhw.ir.testing import random_cnn
    g = random_cnn(5, in_shape=(5, 5, 2), channels=3, pool=None)
    conv = g.node("conv0")
    w = conv.attrs["weight"]
    acc_t = g.tensors["conv0_acc"].dtype
    dut = Chain(SlidingWindow(5, 5, 2, U4, 3, 3, 1, 1),
                Dense(w.reshape(3, -1), conv.attrs["bias"], U4, acc_t),
                Collector(25, 3, acc_t))
    x = np.random.default_rng(3).integers(0, 16, (3, 5, 5, 2))
    want = golden.run_all(g, x)["conv0_acc"].reshape(3, -1)
    got, log = run_beats(dut, x.reshape(-1, 2), 3, idle=0.3, stall=0.5, seed=4)
    np.testing.assert_array_equal(got, want)
    assert not log["protocol"]


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding 3"):
        SlidingWindow(5, 5, 1, U4, 3, 3, 1, 3)
    with pytest.raises(ValueError, match="power-of-two"):
        WindowPool("avg", 9, 1, U4)
