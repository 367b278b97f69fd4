"""QAT convolution layers: power-of-two per-channel conv weights (2-D and 1-D), BatchNorm folding
and the power-of-two requantization between layers; shared by :mod:`ddnhw.quant.cnn` and
:mod:`ddnhw.quant.residual`."""
from __future__ import annotations

import torch
from torch import nn

from ddnhw import DdnhwError
from .quantizers import (check_bits, fake_quant, int_pow2_scale, int_weight, pow2_weight_exponent,
                         round_ste)

__all__ = ["QuantConv2d", "QuantConv1d", "fold_batchnorm", "conv_requant"]


class QuantConv2d(nn.Conv2d):
    """2-D convolution with signed power-of-two-scaled weights, one exponent per output channel.

    Supported: any kernel size, stride, zero padding; ``dilation == 1``; ``groups`` 1 or
    ``in_channels`` (depthwise, ``out_channels`` a multiple of it). Anything else raises
    :class:`ddnhw.DdnhwError` naming the layer and the attribute.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, w_bits=4, name="conv"):
        self.name = name
        what = f"layer {name} (QuantConv2d)"
        if dilation not in (1, (1, 1)):
            raise DdnhwError(f"{what}: dilation={dilation!r} is not supported (only 1)")
        if groups != 1 and not (groups == in_channels and out_channels % in_channels == 0):
            raise DdnhwError(f"{what}: groups={groups!r} is not supported (1, or in_channels="
                             f"{in_channels} for depthwise)")
        for attr, v in (("stride", stride), ("padding", padding), ("kernel_size", kernel_size)):
            if not isinstance(v, int) or isinstance(v, bool):
                raise DdnhwError(f"{what}: {attr}={v!r} is not supported (one int for both axes)")
        if isinstance(padding, str) or padding >= kernel_size:
            raise DdnhwError(f"{what}: padding={padding!r} is not supported (< kernel_size)")
        super().__init__(in_channels, out_channels, kernel_size, stride, padding, 1, groups,
                         bias=True)
        self.w_bits = check_bits(w_bits, f"{what} weights")
        self.quantize = True

    def weight_exponent(self):
        if getattr(self, "frozen_exponent", None) is not None:   # freeze_weight_exponents
            return self.frozen_exponent
        return pow2_weight_exponent(self.weight.flatten(1), self.w_bits, True)

    def quant_weight(self):
        e = self.weight_exponent().reshape(-1, 1, 1, 1)
        qmax = (1 << (self.w_bits - 1)) - 1
        return fake_quant(self.weight, -e, -qmax, qmax)

    def quant_bias(self, frac_in):
        frac = frac_in - self.weight_exponent()
        return round_ste(self.bias * torch.pow(2.0, frac)) / torch.pow(2.0, frac)

    def forward(self, x, frac_in=None):
        if not self.quantize or frac_in is None:
            return super().forward(x)
        return self._conv_forward(x, self.quant_weight(), self.quant_bias(frac_in))

    def int_params(self, frac_in):
        """Integer weight (O, Cg, KH, KW), integer bias (O,), weight exponents (O,)."""
        with torch.no_grad():
            e = self.weight_exponent().double()
            w = int_weight(self.weight, e.reshape(-1, 1, 1, 1), self.w_bits)
            b = torch.floor(self.bias.double() * 2.0 ** (frac_in - e) + 0.5).long()
            return w, b, e.long()


class QuantConv1d(QuantConv2d):
    """1-D convolution over the width of an ``(N, C, 1, L)`` map (a signal of length ``L`` with
    ``C`` channels), quantized like :class:`QuantConv2d`; it is a ``1 x kernel`` 2-D convolution,
    exported as an IR ``conv2d`` on an ``(1, L, C)`` image (the hardware's sliding window with
    one row).

    ``axis="h"``: the signal is a one-column ``(N, C, L, 1)`` map instead, the kernel
    ``kernel x 1`` (an IR ``conv2d`` on an ``(L, 1, C)`` image). Same arithmetic; in hardware
    the sliding window then buffers ``kernel`` samples rather than the whole signal (a
    one-row image's line buffer is the row, with a ``L``-way selection per window lane).

    Supported: any kernel size and stride, ``groups`` 1 or depthwise, ``dilation == 1``,
    ``padding == 0``. Anything else raises :class:`ddnhw.DdnhwError` naming the layer and the
    attribute.
    """

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 groups=1, w_bits=4, name="conv1d", axis="w"):
        self.name = name
        what = f"layer {name} (QuantConv1d)"
        if dilation not in (1, (1,)):
            raise DdnhwError(f"{what}: dilation={dilation!r} is not supported (only 1)")
        if groups != 1 and not (groups == in_channels and out_channels % in_channels == 0):
            raise DdnhwError(f"{what}: groups={groups!r} is not supported (1, or in_channels="
                             f"{in_channels} for depthwise)")
        for attr, v in (("stride", stride), ("padding", padding), ("kernel_size", kernel_size)):
            if not isinstance(v, int) or isinstance(v, bool) or v < (0 if attr == "padding" else 1):
                raise DdnhwError(f"{what}: {attr}={v!r} is not supported (one int)")
        if padding != 0:
            raise DdnhwError(f"{what}: padding={padding!r} is not supported (only 0: the IR's "
                             "padding applies to both axes of the one-row image)")
        if axis not in ("w", "h"):
            raise DdnhwError(f"{what}: axis={axis!r} is not supported ('w': a one-row signal, "
                             f"'h': a one-column signal)")
        # stride (s, s) == (1, s) on a one-row input with a one-row kernel (and (s, 1) on a
        # one-column input with a one-column kernel)
        kernel = (1, kernel_size) if axis == "w" else (kernel_size, 1)
        nn.Conv2d.__init__(self, in_channels, out_channels, kernel, stride, 0, 1,
                           groups, bias=True)
        self.w_bits = check_bits(w_bits, f"{what} weights")
        self.quantize = True


def fold_batchnorm(conv, bn):
    """Fold ``bn`` (eval statistics) into ``conv``/linear weights and bias, in place."""
    with torch.no_grad():
        g = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        shape = (-1,) + (1,) * (conv.weight.dim() - 1)
        conv.weight.mul_(g.reshape(shape))
        conv.bias.copy_((conv.bias - bn.running_mean) * g + bn.bias)


def conv_requant(e, frac_in, frac_out):
    """``(multiplier, shift)`` with ``acc * 2**(e + frac_out - frac_in)`` = ``acc * m >> s``."""
    return int_pow2_scale(e + frac_out - frac_in)
