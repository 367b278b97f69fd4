"""The one definition of fixed-point rounding, shifting and saturation.

Every other part of ddnhw (integer-mode PyTorch, the golden model, the hardware generator)
implements exactly these formulas.

``round_shift(x, s)`` = floor((x + 2**(s-1)) / 2**s) for s > 0, and x for s == 0:
round half up (towards +inf), realized in hardware as add-then-arithmetic-shift-right.
"""
from __future__ import annotations

import numpy as np

ROUNDING = "half_up"
ROUNDING_MODES = (ROUNDING,)   # the values a requant node's ``rounding`` attribute may take


def int_range(signed, bits):
    """``(lo, hi)``: the integers a ``bits``-wide two's complement (``signed``) or unsigned
    field holds."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def round_shift(x, s):
    """Rounding arithmetic right shift of int64 arrays; ``s`` may be per-channel (broadcast)."""
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    return np.right_shift(x + half, s)


def saturate(x, lo, hi):
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def requantize(acc, multiplier, shift, lo, hi):
    """``clip(round_shift(acc * multiplier, shift), lo, hi)``, per channel on the last axis."""
    return saturate(round_shift(np.asarray(acc, dtype=np.int64) * multiplier, shift), lo, hi)
