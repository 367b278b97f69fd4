"""The weight and activation schemes of :mod:`ddnhw.quant.schemes` on convolutional networks.

:class:`SchemeCNN` is a :class:`~ddnhw.quant.schemes.SchemeMLP` whose layers are convolutions
(``conv``: each output channel's filter is one row of a :class:`SchemeLinear`, in PyTorch's
``(C, KH, KW)`` order), max pooling and flatten (NHWC order, the IR's) between them, and linear
layers. Every :class:`WeightSpec` (uniform with learned scales, pow2, ternary, binary, codebook)
and :class:`ActSpec` (relu with shift-only or multiplier requantizers, bipolar) works per layer,
with the same exactness: the quantized forward runs on integer codes, so
:meth:`SchemeCNN.forward_codes` == :meth:`SchemeCNN.int_forward` == the golden model of
:func:`export_scheme_cnn`.

Start from a float :class:`~ddnhw.quant.cnn.QuantCNN` of the same layers (BatchNorm folded):
``SchemeCNN.from_float(cnn, weights=..., acts=...)``, then
:func:`ddnhw.quant.qat.train_scheme` with ``model=`` it (images as ``(N, C, H, W)``).
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ddnhw import DdnhwError
from ddnhw.fixedpoint import requantize
from ddnhw.ir import Graph, IntType, chain_graph
from .schemes import ActSpec, SchemeAct, SchemeLinear, SchemeMLP, WeightSpec, _check_bits, \
    ir_layers, per_layer_specs, set_multiplier_bits

__all__ = ["SchemeCNN", "export_scheme_cnn"]


class SchemeCNN(SchemeMLP):
    """``layers``: dicts with ``op`` ``conv`` (``out``, ``kernel``, ``stride`` 1, ``padding``
    0), ``maxpool`` (``kernel``, ``stride`` = kernel), ``flatten`` or ``linear`` (``out``), as
    :class:`~ddnhw.quant.cnn.QuantCNN` takes them (no groups, no average pooling). Every
    conv/linear but the last is followed by its activation; pooling and flatten come after an
    activation. ``weights``/``acts``: one spec, or one per conv/linear (per hidden one)."""

    def __init__(self, layers, in_shape=(1, 8, 8), in_bits=4, weights=WeightSpec(),
                 acts=ActSpec()):
        nn.Module.__init__(self)
        self.spec = [dict(s) for s in layers]
        self.in_shape = tuple(int(v) for v in in_shape)
        c, h, w = self.in_shape
        macs = [k for k, s in enumerate(self.spec) if s.get("op") in ("conv", "linear")]
        if not macs or self.spec[macs[-1]].get("op") != "linear":
            raise DdnhwError("SchemeCNN: the last conv/linear layer must be a linear layer")
        wspecs, aspecs = per_layer_specs(weights, acts, len(macs), "SchemeCNN")
        _check_bits(in_bits, "input")
        self.in_bits, self.in_frac = in_bits, in_bits
        self.geom, self.pre = [], [[]]          # per MAC layer: geometry; ops before it
        mods, acts_m, flat = [], [], False
        for k, s in enumerate(self.spec):
            op, name = s.get("op"), s.get("name", f"{s.get('op')}{k}")
            if op == "conv":
                extra = set(s) - {"op", "name", "out", "kernel", "stride", "padding"}
                if extra or flat:
                    raise DdnhwError(f"layer {name}: unsupported conv "
                                     f"{'after flatten' if flat else sorted(extra)}")
                kk, st, pad = int(s["kernel"]), int(s.get("stride", 1)), int(s.get("padding", 0))
                if pad >= kk:
                    raise DdnhwError(f"layer {name}: padding={pad} is not < kernel={kk}")
                o = int(s["out"])
                mods.append(SchemeLinear(c * kk * kk, o, wspecs[len(mods)], name=name))
                self.geom.append({"op": "conv", "shape": (o, c, kk, kk), "stride": st,
                                  "padding": pad})
                c, h, w = o, (h + 2 * pad - kk) // st + 1, (w + 2 * pad - kk) // st + 1
            elif op == "maxpool":
                kk = int(s["kernel"])
                st = int(s.get("stride") or kk)
                if not mods:
                    raise DdnhwError(f"layer {name}: pooling before the first conv")
                self.pre[-1].append(("maxpool", kk, st, name))
                h, w = (h - kk) // st + 1, (w - kk) // st + 1
            elif op == "flatten":
                self.pre[-1].append(("flatten", name))
                c, flat = c * h * w, True
            elif op == "linear":
                if not flat:
                    raise DdnhwError(f"layer {name}: linear needs a flatten before it")
                last = k == macs[-1]
                mods.append(SchemeLinear(c, int(s["out"]), wspecs[len(mods)], name=name,
                                         per_channel=False if last else None))
                self.geom.append({"op": "linear"})
                c = int(s["out"])
            else:
                raise DdnhwError(f"layer {name}: op {op!r} is not supported by SchemeCNN "
                                 f"(conv, maxpool, flatten, linear)")
            if h < 1 or w < 1:
                raise DdnhwError(f"layer {name}: the feature map vanished ({h}x{w})")
            if op in ("conv", "linear"):
                if k != macs[-1]:
                    acts_m.append(SchemeAct(aspecs[len(acts_m)], c, name=f"act{k}"))
                self.pre.append([])
        self.layers = nn.ModuleList(mods)
        self.acts = nn.ModuleList(acts_m)
        self.sizes = (int(np.prod(self.in_shape)), *[m.out_features for m in mods])
        self.quantize = True

    # the pre-ops of MAC layer k run on its input: self.pre[k]
    def _between(self, k, h):
        for op in self.pre[k]:
            if op[0] == "maxpool":
                h = nn.functional.max_pool2d(h, op[1], op[2])
            else:
                h = h.permute(0, 2, 3, 1).flatten(1)
        return h

    def _mac(self, k, h, w, b):
        g = self.geom[k]
        if g["op"] == "linear":
            return h @ w.T + b
        return nn.functional.conv2d(h, w.reshape(g["shape"]), b, g["stride"], g["padding"])

    def input_codes(self, x):
        return super().input_codes(x.reshape((-1,) + self.in_shape))

    @classmethod
    def from_float(cls, float_model, **kw):
        """A scheme CNN with the weights of a float :class:`~ddnhw.quant.cnn.QuantCNN` (its
        BatchNorm folded) of the same ``layers``."""
        from .cnn import QuantConv2d, QuantLinear
        src = [m for m in float_model.body if isinstance(m, (QuantConv2d, QuantLinear))]
        if any(isinstance(m, nn.BatchNorm2d) for m in float_model.body):
            raise DdnhwError("SchemeCNN.from_float: fold the float model's BatchNorm first")
        m = cls(float_model.spec, float_model.in_shape, **kw)
        for a, b in zip(m.layers, src):
            with torch.no_grad():
                a.weight.copy_(b.weight.reshape(a.weight.shape))
                a.bias.copy_(b.bias)
        return m

    def int_forward(self, x_int):
        """Integer forward on integer input codes ``(N, C, H, W)`` or NHWC ``(N, H, W, C)``
        images (int64): what the hardware computes."""
        h = torch.as_tensor(np.asarray(x_int, dtype=np.int64))
        if tuple(h.shape[1:]) != self.in_shape:
            h = h.permute(0, 3, 1, 2)
        h = h.double()
        for k, spec in enumerate(self.int_layers()):
            h = self._between(k, h)
            h = self._mac(k, h, torch.as_tensor(spec["weight"]).double(),
                          torch.as_tensor(spec["bias"]).double())
            rq = spec.get("requant")
            if rq is not None:
                a = h.long().numpy()
                a = np.moveaxis(a, 1, -1) if a.ndim == 4 else a
                r = requantize(a, rq["multiplier"], rq["shift"], rq["lo"], rq["hi"])
                h = torch.as_tensor(np.moveaxis(r, -1, 1) if r.ndim == 4 else r).double()
        return h.long().numpy()


def export_scheme_cnn(model: SchemeCNN, meta=None) -> Graph:
    """The IR graph (NHWC) of a calibrated :class:`SchemeCNN`; ``meta["tensor_scales"]`` holds
    the exact real scales (tensor types carry the nearest power-of-two binary point)."""
    layers, scales = ir_layers(model)
    out = []
    for k, layer in enumerate(layers):
        for op in model.pre[k]:
            out.append({"op": "maxpool2d", "name": op[3], "kernel": op[1], "stride": op[2]}
                       if op[0] == "maxpool" else {"op": "flatten", "name": op[1]})
        g = model.geom[k]
        if g["op"] == "conv":
            layer.update(op="conv2d", weight=layer["weight"].reshape(g["shape"]).transpose(
                0, 2, 3, 1), stride=g["stride"], padding=g["padding"], groups=1)
        out.append(layer)
    c, h, w = model.in_shape
    info = {"kind": "cnn", "layers": model.spec, "in_shape": [h, w, c],
            "in_bits": model.in_bits, "schemes": model.describe(), "tensor_scales": scales}
    info.update(meta or {})
    gr = chain_graph(IntType(False, model.in_bits, model.in_frac), (h, w, c), out, meta=info)
    return set_multiplier_bits(gr, layers)
