"""QAT residual block: ``relu(conv1(relu(conv0(x))) + x)`` with same-padded convolutions.

Numerics (powers of two throughout, as :mod:`ddnhw.quant.modules`): ``conv0`` is requantized to
an unsigned activation (``QuantReLU``, frac ``f0``); ``conv1``'s filters are brought to the
smallest weight exponent ``e_min`` of the layer (integer weights and biases shifted left by
``e - e_min``: exact), so its accumulator has one binary point ``f0 - e_min``. The block input
(frac ``f_in``) and that accumulator are added exactly with their binary points aligned (IR
``add``: the larger frac wins, the other operand is shifted left), and the sum is requantized
to the block's output activation (``QuantReLU``). In the float phase each conv is followed by
BatchNorm (``bn=True``), folded before QAT.
"""
from __future__ import annotations

import torch
from torch import nn

from ddnhw import DdnhwError
from ddnhw.ir import IntType
from .conv import QuantConv2d, conv_requant, fold_batchnorm
from .modules import QuantReLU
from .quantizers import int_round_shift

__all__ = ["QuantResidual", "int_requant"]


def int_requant(acc, mult, shift, bits):
    """``clip((acc * mult + half) >> shift, 0, 2**bits - 1)`` per channel (dim 1 of an NCHW
    map, or of (N, C) vectors): the IR requant with ReLU, round half up, in torch integers."""
    shape = (1, -1, 1, 1) if acc.dim() == 4 else (1, -1)
    mult, shift = mult.reshape(shape), shift.reshape(shape)
    return torch.clamp(int_round_shift(acc.long() * mult, shift), 0, (1 << bits) - 1)


def _act(relu, x, calibrate):
    if calibrate:
        h = torch.relu(x)
        relu.calibrate(max(torch.quantile(h.flatten()[:1 << 24], 0.999).item(), 1e-6))
    return relu(x)


class QuantResidual(nn.Module):
    """``relu(conv1(relu0(conv0(x))) + x)``: ``channels`` in and out, ``mid`` channels between
    the convolutions (default ``channels``), ``kernel`` odd (padding ``kernel // 2`` keeps the
    shape). Layer names ``<name>_conv0``, ``<name>_conv1``; unsupported arguments raise
    :class:`ddnhw.DdnhwError` naming the layer."""

    def __init__(self, channels, kernel, mid=None, w_bits=4, a_bits=4, bn=True, name="res"):
        super().__init__()
        self.name = name
        mid = channels if mid is None else mid
        for attr, v in (("kernel", kernel), ("mid", mid), ("channels", channels)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DdnhwError(f"layer {name} (residual): {attr}={v!r} must be an int >= 1")
        if kernel % 2 == 0:
            raise DdnhwError(f"layer {name} (residual): kernel={kernel} must be odd (same "
                             f"padding keeps the shape for the add)")
        self.conv0 = QuantConv2d(channels, mid, kernel, padding=kernel // 2, w_bits=w_bits,
                                 name=f"{name}_conv0")
        self.bn0 = nn.BatchNorm2d(mid) if bn else nn.Identity()
        self.relu0 = QuantReLU(a_bits, name=f"{name}_relu0")
        self.conv1 = QuantConv2d(mid, channels, kernel, padding=kernel // 2, w_bits=w_bits,
                                 name=f"{name}_conv1")
        self.bn1 = nn.BatchNorm2d(channels) if bn else nn.Identity()
        self.relu = QuantReLU(a_bits, name=f"{name}_relu")

    def forward(self, x, frac=None, calibrate=False):
        """Returns ``(output, its frac or None)``; ``frac``: the input's frac (None: float)."""
        h = _act(self.relu0, self.bn0(self.conv0(x, frac)), calibrate)
        f0 = self.relu0.frac if self.relu0.quantize else None
        y = _act(self.relu, self.bn1(self.conv1(h, f0)) + x, calibrate)
        return y, (self.relu.frac if self.relu.quantize else None)

    def fold_batchnorm(self):
        for conv, bn in ((self.conv0, "bn0"), (self.conv1, "bn1")):
            if isinstance(getattr(self, bn), nn.BatchNorm2d):
                fold_batchnorm(conv, getattr(self, bn))
                setattr(self, bn, nn.Identity())

    def int_params(self, frac):
        """Integer parameters for input frac ``frac``: ``(w0, b0, e0, w1, b1, e_min)`` with
        ``conv1``'s weights and biases at the common exponent ``e_min``."""
        w0, b0, e0 = self.conv0.int_params(frac)
        w1, b1, e1 = self.conv1.int_params(self.relu0.frac)
        d = e1 - e1.min()
        return w0, b0, e0, w1 << d.reshape(-1, 1, 1, 1), b1 << d, int(e1.min())

    def _fracs(self, frac):
        f_acc = self.relu0.frac - self.int_params(frac)[5]
        f_sum = max(f_acc, frac)
        return f_acc, f_sum, f_sum - f_acc, f_sum - frac

    def int_forward(self, h, frac):
        """Integer block on integer codes ``h`` (N, C, H, W) at frac ``frac``; returns
        ``(codes, frac)``, exactly the IR's conv2d, requant, conv2d, add, requant."""
        w0, b0, e0, w1, b1, _ = self.int_params(frac)
        acc = self.conv0._conv_forward(h.double(), w0.double(), b0.double())
        m, s = conv_requant(e0, frac, self.relu0.frac)
        a = int_requant(acc, m, s, self.relu0.bits)
        acc1 = self.conv1._conv_forward(a.double(), w1.double(), b1.double()).long()
        _, f_sum, s0, s1 = self._fracs(frac)
        total = (acc1 << s0) + (h.long() << s1)
        m, s = conv_requant(torch.zeros(acc1.shape[1], dtype=torch.long), f_sum, self.relu.frac)
        return int_requant(total, m, s, self.relu.bits).double(), self.relu.frac

    def export(self, frac):
        """The ``residual`` layer of :func:`ddnhw.ir.chain_graph` for input frac ``frac``."""
        w0, b0, e0, w1, b1, e_min = self.int_params(frac)
        m0, s0 = conv_requant(e0, frac, self.relu0.frac)
        _, f_sum, _, _ = self._fracs(frac)
        m, s = conv_requant(torch.zeros(w1.shape[0], dtype=torch.long), f_sum, self.relu.frac)

        def conv(c, w, b, **extra):
            return {"op": "conv2d", "name": c.name, "weight": w.numpy().transpose(0, 2, 3, 1),
                    "bias": b.numpy(), "stride": 1, "padding": c.padding[0], "groups": 1,
                    **extra}

        body = [conv(self.conv0, w0, b0, requant={
                    "multiplier": m0.numpy(), "shift": s0.numpy(), "lo": 0,
                    "hi": (1 << self.relu0.bits) - 1,
                    "out_type": IntType(False, self.relu0.bits, self.relu0.frac)}),
                conv(self.conv1, w1, b1, weight_frac=-e_min)]
        return {"op": "residual", "name": self.name, "body": body,
                "requant": {"multiplier": m.numpy(), "shift": s.numpy(), "lo": 0,
                            "hi": (1 << self.relu.bits) - 1,
                            "out_type": IntType(False, self.relu.bits, self.relu.frac)}}
