import numpy as np
import pytest
from amaranth.hdl import signed, unsigned
from amaranth.lib import data

from ddnhw.hw import StreamFIFO
from ddnhw.hw.sim import run_stream


def check_fifo(depth, lanes=3, elem=signed(5), n=40, idle=0.3, stall=0.3, seed=0):
    dut = StreamFIFO(data.ArrayLayout(elem, lanes), depth)
    lo, hi = (-(1 << (elem.width - 1)), 1 << (elem.width - 1)) if elem.signed else (
        0, 1 << elem.width)
    x = np.random.default_rng(seed).integers(lo, hi, size=(n, lanes))
    y, log = run_stream(dut, x, idle=idle, stall=stall, seed=seed, max_cycles=n * 40)
    np.testing.assert_array_equal(y, x)
    assert log["protocol"] == []
    return dut, log


@pytest.mark.parametrize("depth", [2, 3, 4, 7])
@pytest.mark.parametrize("elem", [signed(5), unsigned(3)])
def test_fifo_order_under_backpressure(depth, elem):
    check_fifo(depth, elem=elem, seed=depth)


@pytest.mark.parametrize("depth", [2, 3, 5])
def test_fifo_full_rate(depth):
    dut, log = check_fifo(depth, n=16, idle=0.0, stall=0.0)
    assert set(np.diff(log["in"])) == {dut.ii} == {1 if depth >= 3 else 2}
    assert [o - i for i, o in zip(log["in"], log["out"])] == [dut.latency] * 16


def test_fifo_fills_to_depth_then_backpressures():
    dut, log = check_fifo(4, n=12, idle=0.0, stall=lambda c: c < 30)
    assert log["in"][:4] == [0, 1, 2, 3] and log["in"][4] >= 30   # held 4 while stalled
    assert log["out"][0] == 30


@pytest.mark.parametrize("depth", [0, 1, -2, 2.0, True])
def test_fifo_depth_errors(depth):
    with pytest.raises(ValueError, match="depth"):
        StreamFIFO(unsigned(4), depth)
