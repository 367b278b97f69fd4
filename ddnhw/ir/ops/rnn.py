"""``rnn``: the Elman recurrent layer (shared semantics: :mod:`.recurrent`), one gate::

    h_t = act(tanh_table, acc_t, 0:H)          # acc_t = bias + weight @ [x_t, h_{t-1}]

Attributes: ``weight`` (H, I+H), ``bias`` (H,), ``multiplier``/``shift`` (H,), ``lut_lo``,
``lut_hi``, ``tanh_table``, ``return_sequences``.
"""
from __future__ import annotations

from .base import register
from .recurrent import RecurrentOp, bits_of, check_bits, lut_act


@register
class Rnn(RecurrentOp):
    name = "rnn"

    def bounds(self, node, tanh, sig, gate_frac):
        return int(tanh.min()), int(tanh.max())

    def check_intermediates(self, node, h, multiplier, acc_lo, acc_hi, state, tanh, sig, gf):
        check_bits(node, max(bits_of(acc_lo[k], acc_hi[k]) + bits_of(0, multiplier[k])
                             for k in range(h)))

    def step(self, node, acc, state):
        return (lut_act(node.attrs["tanh_table"], acc, *self.luts(node)),)
