"""QAT modules: input quantizer, linear layer, quantized ReLU, and the MLP that chains them.

Numerics (all scales powers of two):
- input:  unsigned ``in_bits``, ``q = clip(round(x * 2**in_frac), 0, 2**in_bits - 1)``
- weight: signed, symmetric, ``w_q = clip(round(w / 2**e), -(2**(b-1)-1), 2**(b-1)-1)``, ``e``
  per output channel or per tensor
- bias:   integer at the accumulator's scale ``2**(e - frac_in)``
- ReLU:   unsigned ``a_bits``, ``q = clip(round(y * 2**frac), 0, 2**a_bits - 1)``
Every value in the float forward is a dyadic rational whose integer form is exactly what the
hardware holds, so ``int_forward`` is bit-exact with the golden model.
"""
from __future__ import annotations

import torch
from torch import nn

from ddnhw import DdnhwError
from .quantizers import (check_bits, fake_quant, int_pow2_scale, int_round_shift, int_weight,
                         pow2_act_frac, pow2_weight_exponent, round_ste)


class QuantInput(nn.Module):
    def __init__(self, bits=4, frac=None, name="input"):
        super().__init__()
        self.name = name
        self.bits = check_bits(bits, f"{name} (QuantInput)")
        # inputs in [0, 1]: frac = bits maps 1.0 to 2**bits, which clips to the top code
        self.frac = bits if frac is None else int(frac)
        self.quantize = True
        # float phase only: (x - norm[0]) / norm[1], folded into the first layer before QAT
        # (ddnhw.quant.train.fold_input_norm); empty: none
        self.register_buffer("norm", torch.zeros(0))

    def forward(self, x):
        if not self.quantize:
            return (x - self.norm[0]) / self.norm[1] if self.norm.numel() else x
        if self.norm.numel():
            raise DdnhwError(f"{self.name}: input normalization not folded before quantization")
        return fake_quant(x, self.frac, 0, (1 << self.bits) - 1)

    def int_forward(self, x):
        """Real inputs to integer codes (int64)."""
        with torch.no_grad():
            return torch.clamp(torch.floor(x.double() * 2.0 ** self.frac + 0.5), 0,
                               (1 << self.bits) - 1).long()


class QuantLinear(nn.Linear):
    def __init__(self, in_features, out_features, w_bits=4, per_channel=True, name="fc"):
        super().__init__(in_features, out_features, bias=True)
        self.name = name
        self.w_bits = check_bits(w_bits, f"{name} (QuantLinear) weights")
        self.per_channel = per_channel
        self.quantize = True
        self.register_buffer("mask", torch.ones_like(self.weight))

    def weight_exponent(self):
        if getattr(self, "frozen_exponent", None) is not None:   # freeze_weight_exponents
            return self.frozen_exponent
        return pow2_weight_exponent(self.weight * self.mask, self.w_bits, self.per_channel)

    def quant_weight(self):
        e = self.weight_exponent().unsqueeze(1)
        qmax = (1 << (self.w_bits - 1)) - 1
        return fake_quant(self.weight * self.mask, -e, -qmax, qmax)

    def quant_bias(self, frac_in):
        e = self.weight_exponent()
        frac = frac_in - e  # accumulator fraction bits per output channel
        return round_ste(self.bias * torch.pow(2.0, frac)) / torch.pow(2.0, frac)

    def forward(self, x, frac_in=None):
        if not self.quantize or frac_in is None:
            return nn.functional.linear(x, self.weight * self.mask, self.bias)
        return nn.functional.linear(x, self.quant_weight(), self.quant_bias(frac_in))

    def int_params(self, frac_in):
        """Integer weight (out, in), integer bias (out,), weight exponents (out,)."""
        with torch.no_grad():
            e = self.weight_exponent().double()
            w = int_weight(self.weight.double() * self.mask, e.unsqueeze(1), self.w_bits)
            b = torch.floor(self.bias.double() * 2.0 ** (frac_in - e) + 0.5).long()
            return w, b, e.long()

    def int_params_common(self, frac_in):
        """As :meth:`int_params`, with every channel at the smallest exponent ``min(e)``:
        channel ``c``'s weights and bias are shifted left by ``e[c] - min(e)`` (exact). The
        layer's outputs then share one scale ``2**(min(e) - frac_in)``, which a per-tensor
        IR type can state (used for the last layer, whose outputs are compared across
        channels by argmax)."""
        w, b, e = self.int_params(frac_in)
        d = e - e.min()
        return w << d.unsqueeze(1), b << d, torch.full_like(e, int(e.min()))


class QuantReLU(nn.Module):
    def __init__(self, bits=4, name="relu"):
        super().__init__()
        self.name = name
        self.bits = check_bits(bits, f"{name} (QuantReLU)")
        self.frac = None  # set by calibrate()
        self.quantize = True

    def calibrate(self, amax: float):
        self.frac = pow2_act_frac(float(amax), self.bits)

    def forward(self, x):
        x = torch.relu(x)
        if not self.quantize or self.frac is None:
            return x
        return fake_quant(x, self.frac, 0, (1 << self.bits) - 1)


class QuantMLP(nn.Module):
    """``QuantInput → (QuantLinear → QuantReLU)* → QuantLinear`` (the last layer gives logits)."""

    def __init__(self, sizes=(64, 16, 10), in_bits=4, w_bits=4, a_bits=4, out_per_channel=False):
        super().__init__()
        if len(sizes) < 2:
            raise DdnhwError(f"QuantMLP needs at least 2 sizes, got {sizes!r}")
        self.sizes = tuple(int(s) for s in sizes)
        self.inp = QuantInput(in_bits)
        layers, acts = [], []
        for k in range(len(sizes) - 1):
            last = k == len(sizes) - 2
            # the last layer is per tensor by default: argmax over integers == argmax over reals
            layers.append(QuantLinear(sizes[k], sizes[k + 1], w_bits,
                                      per_channel=out_per_channel if last else True,
                                      name=f"fc{k}"))
            if not last:
                acts.append(QuantReLU(a_bits, name=f"relu{k}"))
        self.layers = nn.ModuleList(layers)
        self.acts = nn.ModuleList(acts)

    def set_quantize(self, on: bool):
        for m in self.modules():
            if hasattr(m, "quantize"):
                m.quantize = on

    def forward(self, x):
        x = self.inp(x)
        frac = self.inp.frac if self.inp.quantize else None
        for k, layer in enumerate(self.layers):
            x = layer(x, frac)
            if k < len(self.acts):
                x = self.acts[k](x)
                frac = self.acts[k].frac if self.acts[k].quantize else None
        return x

    def calibrate(self, x):
        """Fix the activations' power-of-two scales from the data (99.9th percentile)."""
        was = self.training
        self.eval()
        with torch.no_grad():
            h = self.inp(x)
            frac = self.inp.frac if self.inp.quantize else None
            for k, layer in enumerate(self.layers[:-1]):
                h = torch.relu(layer(h, frac))
                amax = torch.quantile(h.flatten(), 0.999).item()
                self.acts[k].calibrate(max(amax, 1e-6))
                h = self.acts[k](h)
                frac = self.acts[k].frac
        self.train(was)

    def int_forward(self, x_int):
        """Integer-mode forward on integer input codes: exactly what the hardware computes."""
        with torch.no_grad():
            h = x_int.long()
            frac = self.inp.frac
            for k, layer in enumerate(self.layers):
                last = k == len(self.layers) - 1
                w, b, e = layer.int_params_common(frac) if last else layer.int_params(frac)
                acc = h @ w.T + b
                if last:
                    return acc
                act = self.acts[k]
                t = e + act.frac - frac  # output = acc * 2**t, rounded half up
                mult, shift = int_pow2_scale(t)
                h = torch.clamp(int_round_shift(acc * mult, shift), 0, (1 << act.bits) - 1)
                frac = act.frac
