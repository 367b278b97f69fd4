import numpy as np
import pytest

from ddnhw.fixedpoint import requantize
from ddnhw.hw import Requantizer
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType


def check_requant(seed, in_type, out_type, lo, hi, c=6, n=60, mmax=5, smax=6):
    rng = np.random.default_rng(seed)
    m = rng.integers(-mmax if in_type.signed and seed % 2 else 1, mmax + 1, size=c)
    m[m == 0] = 1
    s = rng.integers(0, smax + 1, size=c)
    s[0] = 0
    dut = Requantizer(m, s, lo, hi, in_type, out_type)
    x = rng.integers(in_type.min, in_type.max + 1, size=(n, c))
    x = np.concatenate([np.full((1, c), in_type.min), np.full((1, c), in_type.max), x])
    y, log = run_stream(dut, x, idle=0.3, stall=0.3, seed=seed)
    np.testing.assert_array_equal(y, requantize(x, m, s, lo, hi))
    assert log["protocol"] == []
    assert (dut.latency, dut.ii) == (1, 1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_requant_relu_u4(seed):
    check_requant(seed, IntType(True, 11), IntType(False, 4), 0, 15)


@pytest.mark.parametrize("seed", [0, 1])
def test_requant_signed_out(seed):
    check_requant(seed, IntType(True, 9), IntType(True, 4), -8, 7)


def test_requant_unsigned_in_no_clip_needed():
    check_requant(4, IntType(False, 3), IntType(False, 6), 0, 63, mmax=3, smax=1)


def test_requant_errors():
    t = IntType(True, 8)
    with pytest.raises(ValueError, match="shift"):
        Requantizer([1, 1], [0, -1], 0, 15, t, IntType(False, 4))
    with pytest.raises(ValueError, match="lo=3 > hi=2"):
        Requantizer([1], [0], 3, 2, t, IntType(False, 4))
    with pytest.raises(ValueError, match="out_type"):
        Requantizer([1], [0], -100, 100, t, IntType(False, 4))


@pytest.mark.parametrize("in_type,lo,hi", [
    (IntType(True, 5), 0, 15), (IntType(True, 5), -8, 7), (IntType(True, 6), -3, 9),
    (IntType(False, 4), 0, 3), (IntType(False, 5), -4, 3), (IntType(True, 3), 0, 1),
])
def test_requant_exhaustive(in_type, lo, hi):
    # every input value through channels with every (multiplier, shift) pair, shifts past
    # the input width included: power-of-two and other clip ranges, both signs of multiplier
    pairs = [(m, s) for m in (-3, -1, 1, 2, 5) for s in (0, 1, 2, 4, 7, 9)]
    m = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs])
    out_type = IntType.for_range(lo, hi)
    dut = Requantizer(m, s, lo, hi, in_type, out_type)
    x = np.repeat(np.arange(in_type.min, in_type.max + 1)[:, None], len(pairs), axis=1)
    y, log = run_stream(dut, x, idle=0.2, stall=0.2, seed=3)
    np.testing.assert_array_equal(y, requantize(x, m, s, lo, hi))
    assert log["protocol"] == []
