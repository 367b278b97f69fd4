"""The QONNX rounding modes in ddnhw's one rounding definition, its hardware, and the QONNX
mode names: exact against rational arithmetic and against qonnx's own NumPy functions."""
import math
from fractions import Fraction

import numpy as np
import pytest

from ddnhw.fixedpoint import ROUNDING_MODES, requantize, round_shift
from ddnhw.frontend.qonnx import ROUNDING
from ddnhw.golden import QONNX_ROUNDING
from ddnhw.hw import Requantizer
from ddnhw.hw.sim import run_stream
from ddnhw.ir import IntType

HALF = Fraction(1, 2)
EXACT = {
    "half_up": lambda v: math.floor(v + HALF),
    "half_even": round,
    "half_away": lambda v: int(math.copysign(math.floor(abs(v) + HALF), v)),
    "half_zero": lambda v: int(math.copysign(math.ceil(abs(v) - HALF), v)),
    "floor": math.floor, "ceil": math.ceil, "zero": math.trunc,
    "away": lambda v: int(math.copysign(math.ceil(abs(v)), v))}


@pytest.mark.parametrize("mode", ROUNDING_MODES)
def test_round_shift_modes_exact(mode):
    x = np.arange(-300, 301)
    for s in range(0, 7):
        want = [EXACT[mode](Fraction(int(v), 1 << s)) for v in x]
        assert round_shift(x, s, mode).tolist() == want, (mode, s)


@pytest.mark.parametrize("qmode", sorted(ROUNDING))
def test_qonnx_names_match_qonnx_functions(qmode):
    # qonnx's resolve_rounding_mode on every multiple of 1/8 in [-8, 8] == our mode on x/8
    from qonnx.custom_op.general.quant import resolve_rounding_mode
    x = np.arange(-64, 65)
    theirs = resolve_rounding_mode(qmode)(x.astype(np.float32) / 8).astype(np.int64)
    assert round_shift(x, 3, ROUNDING[qmode]).tolist() == theirs.tolist()
    assert QONNX_ROUNDING[qmode](x / 8).tolist() == theirs.tolist()


@pytest.mark.parametrize("mode", [m for m in ROUNDING_MODES if m != "half_up"])
def test_requantizer_hardware_modes_exhaustive(mode):
    # every input value of a signed 7-bit tensor through channels with every (multiplier,
    # shift) pair (both multiplier signs, shifts past the width), under idle/backpressure
    pairs = [(m, s) for m in (-3, 1, 5) for s in (0, 1, 2, 3, 8)]
    m = np.array([p[0] for p in pairs])
    s = np.array([p[1] for p in pairs])
    in_type, lo, hi = IntType(True, 7), -20, 20
    dut = Requantizer(m, s, lo, hi, in_type, IntType.for_range(lo, hi), rounding=mode)
    x = np.repeat(np.arange(in_type.min, in_type.max + 1)[:, None], len(pairs), axis=1)
    y, log = run_stream(dut, x, idle=0.2, stall=0.2, seed=1)
    np.testing.assert_array_equal(y, requantize(x, m, s, lo, hi, mode))
    assert log["protocol"] == []


def test_requantizer_rejects_unknown_mode():
    with pytest.raises(ValueError, match="rounding"):
        Requantizer([1], [1], 0, 3, IntType(True, 4), IntType(False, 2), rounding="stochastic")
