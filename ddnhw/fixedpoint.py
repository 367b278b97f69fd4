"""The one definition of fixed-point rounding, shifting and saturation.

Every other part of ddnhw (integer-mode PyTorch, the golden model, the hardware generator)
implements exactly these formulas.

``round_shift(x, s)`` = floor((x + 2**(s-1)) / 2**s) for s > 0, and x for s == 0:
round half up (towards +inf), realized in hardware as add-then-arithmetic-shift-right.
"""
from __future__ import annotations

import numpy as np

ROUNDING = "half_up"
#: the values a requant node's ``rounding`` attribute may take; ``round_shift(x, s, mode)``
#: rounds ``x / 2**s`` to an integer:
#:   half_up    ties towards +inf (the default, ``floor(x/2**s + 1/2)``)
#:   half_even  ties to the even integer (QONNX ``ROUND``/``HALF_EVEN``, NumPy ``round``)
#:   half_away  ties away from zero (QONNX ``HALF_UP``)
#:   half_zero  ties towards zero (QONNX ``HALF_DOWN``)
#:   floor      towards -inf (QONNX ``FLOOR``)     ceil   towards +inf (QONNX ``CEIL``)
#:   zero       towards zero (QONNX ``DOWN``)      away   away from zero (QONNX ``UP``)
ROUNDING_MODES = (ROUNDING, "half_even", "half_away", "half_zero", "floor", "ceil", "zero",
                  "away")


def int_range(signed, bits):
    """``(lo, hi)``: the integers a ``bits``-wide two's complement (``signed``) or unsigned
    field holds."""
    if signed:
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def round_shift(x, s, mode=ROUNDING):
    """Rounding arithmetic right shift of int64 arrays; ``s`` may be per-channel (broadcast).
    ``mode``: one of :data:`ROUNDING_MODES` (default half up)."""
    x = np.asarray(x, dtype=np.int64)
    s = np.asarray(s, dtype=np.int64)
    if s.ndim and s.size and (s == s.flat[0]).all():
        s = s.reshape(-1)[0]          # one shift for every channel: numpy shifts by a scalar faster
    if mode == ROUNDING:
        half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
        return np.right_shift(x + half, s)
    q = np.right_shift(x, s)                      # floor
    r = x - np.left_shift(q, s)                   # remainder, 0 <= r < 2**s
    half = np.where(s > 0, np.left_shift(np.int64(1), np.maximum(s - 1, 0)), 0)
    exact = r == 0
    above = (s > 0) & (r > half)
    tie = (s > 0) & (r == half) & ~exact
    neg = x < 0
    if mode == "floor":
        inc = np.zeros(np.shape(q), dtype=bool)
    elif mode == "ceil":
        inc = ~exact
    elif mode == "zero":
        inc = ~exact & neg
    elif mode == "away":
        inc = ~exact & ~neg
    elif mode == "half_even":
        inc = above | (tie & (q % 2 == 1))
    elif mode == "half_away":
        inc = above | (tie & ~neg)
    elif mode == "half_zero":
        inc = above | (tie & neg)
    else:
        raise ValueError(f"rounding mode {mode!r} is not one of {ROUNDING_MODES}")
    return q + inc


def saturate(x, lo, hi):
    return np.clip(np.asarray(x, dtype=np.int64), lo, hi)


def requantize(acc, multiplier, shift, lo, hi, rounding=ROUNDING):
    """``clip(round_shift(acc * multiplier, shift, rounding), lo, hi)``, per channel on the
    last axis."""
    acc = np.asarray(acc, dtype=np.int64)
    m = np.asarray(multiplier)
    if not (m.size and (m == 1).all()):          # a multiplier of 1 everywhere costs no pass
        acc = acc * multiplier
    return saturate(round_shift(acc, shift, rounding), lo, hi)
