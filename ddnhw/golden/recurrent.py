"""Golden model of the recurrent ops ``rnn`` and ``gru`` (semantics: :mod:`ddnhw.ir.recurrent`)."""
from __future__ import annotations

import numpy as np

from .fixedpoint import requantize, round_shift


def lut_act(table, v, multiplier, shift, lut_lo, lut_hi):
    """``table[clip(round_shift(v * multiplier, shift), lut_lo, lut_hi) - lut_lo]``."""
    idx = requantize(v, multiplier, shift, lut_lo, lut_hi)
    return np.asarray(table, dtype=np.int64)[idx - lut_lo]


def recurrent_steps(node, x):
    """Every hidden state ``(N, T, H)`` of an ``rnn``/``gru`` node for inputs ``(N, T, I)``."""
    a = node.attrs
    w, b = a["weight"], a["bias"]
    m, s = a["multiplier"], a["shift"]
    lo, hi = int(a["lut_lo"]), int(a["lut_hi"])
    n, t, i = x.shape
    gru = node.op == "gru"
    hsz = w.shape[0] // (4 if gru else 1)
    h = np.zeros((n, hsz), dtype=np.int64)
    out = np.empty((n, t, hsz), dtype=np.int64)
    for k in range(t):
        acc = np.concatenate([x[:, k], h], axis=1) @ w.T + b
        if not gru:
            h = lut_act(a["tanh_table"], acc, m, s, lo, hi)
        else:
            gf = int(a["gate_frac"])
            sig = a["sigmoid_table"]
            r = lut_act(sig, acc[:, :hsz], m[:hsz], s[:hsz], lo, hi)
            z = lut_act(sig, acc[:, hsz:2 * hsz], m[hsz:2 * hsz], s[hsz:2 * hsz], lo, hi)
            pre = np.left_shift(acc[:, 2 * hsz:3 * hsz], gf) + r * acc[:, 3 * hsz:]
            nn = lut_act(a["tanh_table"], pre, m[2 * hsz:], s[2 * hsz:], lo, hi)
            h = nn + round_shift(z * (h - nn), gf)
        out[:, k] = h
    return out


def recurrent(node, x):
    steps = recurrent_steps(node, x)
    return steps if int(node.attrs["return_sequences"]) else steps[:, -1]
