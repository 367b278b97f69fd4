"""``gru``: the gated recurrent unit (shared semantics: :mod:`.recurrent`).

Four row blocks ``r``, ``z``, ``n_x``, ``n_h`` of ``H`` rows each (``n_x`` rows must be zero on
the ``h`` columns and ``n_h`` rows zero on the ``x`` columns); ``multiplier`` and ``shift`` have
3*H entries for ``r``, ``z``, ``n``::

    r   = act(sigmoid_table, acc_r, 0:H)             # gate values in [0, 2**gate_frac]
    z   = act(sigmoid_table, acc_z, H:2H)
    n   = act(tanh_table, (acc_nx << gate_frac) + r * acc_nh, 2H:3H)
    h_t = n + round_shift(z * (h_{t-1} - n), gate_frac)

(PyTorch's GRU: ``h' = (1 - z) * n + z * h``). Attributes: those of every recurrent op plus
``sigmoid_table`` and ``gate_frac`` (0..30).
"""
from __future__ import annotations

import numpy as np

from ddnhw.fixedpoint import round_shift

from .base import register
from .recurrent import RecurrentOp, bits_of, check_bits, lut_act


@register
class Gru(RecurrentOp):
    name = "gru"
    gates = 4
    requants = 3
    gated = True
    mask_rule = "gru rows n_x must be zero on the h columns and rows n_h zero on the x columns"

    def weight_mask(self, n_in, hidden):
        m = super().weight_mask(n_in, hidden)
        m[2 * hidden:3 * hidden, n_in:] = False
        m[3 * hidden:, :n_in] = False
        return m

    def bounds(self, node, tanh, sig, gate_frac):
        # h_t is a mix of n (a tanh value) and h_{t-1}: it stays in the tanh range and 0
        return min(0, int(tanh.min())), max(0, int(tanh.max()))

    def check_intermediates(self, node, h, multiplier, acc_lo, acc_hi, state, tanh, sig, gf):
        r_max = 1 << gf
        pre_lo, pre_hi = list(acc_lo[:2 * h]), list(acc_hi[:2 * h])
        for k in range(h):
            nx_lo, nx_hi = acc_lo[2 * h + k] << gf, acc_hi[2 * h + k] << gf
            nh_lo, nh_hi = acc_lo[3 * h + k], acc_hi[3 * h + k]
            pre_lo.append(nx_lo + min(0, nh_lo * r_max))
            pre_hi.append(nx_hi + max(0, nh_hi * r_max))
        worst = max(bits_of(pre_lo[k], pre_hi[k]) + bits_of(0, multiplier[k])
                    for k in range(3 * h))
        check_bits(node, max(worst, bits_of(0, r_max) + bits_of(*state) + 1))

    def step(self, node, acc, state):
        a = node.attrs
        (h,) = state
        m, s, lo, hi = self.luts(node)
        hsz = h.shape[1]
        gf = int(a["gate_frac"])
        sig = a["sigmoid_table"]
        r = lut_act(sig, acc[:, :hsz], m[:hsz], s[:hsz], lo, hi)
        z = lut_act(sig, acc[:, hsz:2 * hsz], m[hsz:2 * hsz], s[hsz:2 * hsz], lo, hi)
        pre = np.left_shift(acc[:, 2 * hsz:3 * hsz], gf) + r * acc[:, 3 * hsz:]
        n = lut_act(a["tanh_table"], pre, m[2 * hsz:], s[2 * hsz:], lo, hi)
        return (n + round_shift(z * (h - n), gf),)
