import numpy as np
import pytest
from fractions import Fraction
import math

from ddnhw.fixedpoint import requantize, round_shift


def check_round_shift(x, s):
    got = round_shift(np.array([x]), np.array([s]))[0]
    want = math.floor(Fraction(x, 2 ** s) + Fraction(1, 2)) if s else x
    assert got == want, (x, s, got, want)


@pytest.mark.parametrize("s", [0, 1, 2, 3, 7, 20])
def test_round_shift_matches_exact_rational_rounding(s):
    rng = np.random.default_rng(s)
    for x in list(rng.integers(-10**6, 10**6, 300)) + [-(2 ** 40), 2 ** 40 - 1, -1, 0, 1]:
        check_round_shift(int(x), s)


def test_half_rounds_up_not_to_even():
    assert list(round_shift(np.array([1, 3, -1, -3, 5]), 1)) == [1, 2, 0, -1, 3]


def test_requantize_per_channel_and_clip():
    acc = np.array([[100, -100, 7]])
    out = requantize(acc, np.array([1, 1, 4]), np.array([3, 3, 0]), 0, 15)
    assert out.tolist() == [[13, 0, 15]]
