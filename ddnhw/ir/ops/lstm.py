"""``lstm``: the long short-term memory layer (shared semantics: :mod:`.recurrent`).

Four row blocks ``i``, ``f``, ``g``, ``o`` of ``H`` rows each (PyTorch's order) in ``weight``
``(4H, I+H)`` and ``bias`` ``(4H,)``; ``multiplier``/``shift`` ``(5H,)`` index the tables for
the ``i``, ``f``, ``g``, ``o`` pre-activations (entries ``0:4H``) and for ``tanh(c)`` (``4H:5H``).
The hidden state ``h`` and the cell state ``c`` start at 0 for every sequence::

    acc = bias + weight @ [x_t, h_{t-1}]
    i = act(sigmoid_table, acc[0:H], 0:H)      f = act(sigmoid_table, acc[H:2H], H:2H)
    g = act(tanh_table, acc[2H:3H], 2H:3H)     o = act(sigmoid_table, acc[3H:4H], 3H:4H)
    c_t = clip(round_shift(f * c_{t-1} + i * g, gate_frac), cmin, cmax)
    h_t = round_shift(o * act(tanh_table, c_t, 4H:5H), gate_frac)

Gates lie in ``[0, 2**gate_frac]``; ``c`` is clipped to the signed ``cell_bits``-bit range
``[cmin, cmax]`` and has the state type's binary point (``frac``); ``h_t`` lies in the tanh
table's range (scaled by at most one gate). Attributes: those of every recurrent op plus
``sigmoid_table``, ``gate_frac`` (0..30) and ``cell_bits`` (2..30).
"""
from __future__ import annotations

import numpy as np

from ddnhw.fixedpoint import round_shift, saturate

from .base import int_attr, register
from .recurrent import RecurrentOp, bits_of, check_bits, lut_act


def cell_range(node):
    """``(cmin, cmax)`` of an ``lstm`` node's cell state (checks ``cell_bits``)."""
    cb = int_attr(node, "cell_bits", 2, 30)
    return -(1 << (cb - 1)), (1 << (cb - 1)) - 1


def _scaled(gate_lo, gate_hi, v_lo, v_hi, gate_frac):
    """Exact bounds of ``round_shift(gate * v, gate_frac)`` over the box ``[gate_lo, gate_hi]``
    x ``[v_lo, v_hi]`` (a product is extreme at a corner; rounding is monotonic)."""
    corners = [a * b for a in (gate_lo, gate_hi) for b in (v_lo, v_hi)]
    lo, hi = round_shift(np.array([min(corners), max(corners)]), gate_frac)
    return int(lo), int(hi)


@register
class Lstm(RecurrentOp):
    name = "lstm"
    gates = 4
    requants = 5
    states = 2
    gated = True

    def bounds(self, node, tanh, sig, gate_frac):
        cell_range(node)
        t_lo, t_hi = int(tanh.min()), int(tanh.max())
        s_hi = int(sig.max())
        # o * tanh(c) is formed before the state bound is known: bound it first
        check_bits(node, bits_of(0, s_hi) + bits_of(t_lo, t_hi) + 1)
        return _scaled(int(sig.min()), s_hi, t_lo, t_hi, gate_frac)

    def check_intermediates(self, node, h, multiplier, acc_lo, acc_hi, state, tanh, sig, gf):
        cmin, cmax = cell_range(node)
        worst = max(bits_of(acc_lo[k], acc_hi[k]) + bits_of(0, multiplier[k])
                    for k in range(4 * h))
        worst = max([worst] + [bits_of(cmin, cmax) + bits_of(0, multiplier[4 * h + k])
                               for k in range(h)])
        s_hi = int(sig.max())
        t_mag = max(abs(int(tanh.min())), abs(int(tanh.max())))
        half = (1 << gf) >> 1
        cell_sum = s_hi * max(-cmin, cmax) + s_hi * t_mag + half    # f * c + i * g, rounded
        out = s_hi * t_mag + half                                  # o * tanh(c), rounded
        check_bits(node, max(worst, cell_sum.bit_length(), out.bit_length()))

    def step(self, node, acc, state):
        a = node.attrs
        h, c = state
        m, s, lo, hi = self.luts(node)
        hsz = h.shape[1]
        gf = int(a["gate_frac"])
        sig, tanh = a["sigmoid_table"], a["tanh_table"]
        cmin, cmax = cell_range(node)

        def act(table, k, v=None):
            rows = slice(k * hsz, (k + 1) * hsz)
            return lut_act(table, acc[:, rows] if v is None else v, m[rows], s[rows], lo, hi)

        i, f, g, o = act(sig, 0), act(sig, 1), act(tanh, 2), act(sig, 3)
        c = saturate(round_shift(f * c + i * g, gf), cmin, cmax)
        h = round_shift(o * act(tanh, 4, c), gf)
        return h, c
