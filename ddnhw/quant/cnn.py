"""QAT convolutional networks: power-of-two per-channel conv weights, pooling, flatten, BN folding.

Numerics are those of :mod:`ddnhw.quant.modules` (all scales powers of two, round half up):
``QuantConv2d`` quantizes each output channel's filter like ``QuantLinear`` quantizes a row;
max pooling is exact on the activation grid; average pooling over ``k x k`` (``k`` a power of
two) re-rounds the mean onto the input's grid, which is the integer ``round_shift(sum,
log2(k*k))``. Flatten is in NHWC order (H, W, C), the IR's image layout, so the dense layer
after it needs no permutation on export. PyTorch tensors are NCHW as usual.

BatchNorm (``bn=True``) exists only in the float phase: :meth:`QuantCNN.fold_batchnorm` folds
it into the preceding convolution before QAT, and export refuses an unfolded model.
"""
from __future__ import annotations

import time

import numpy as np
import torch
from torch import nn

from ddnhw import DdnhwError
from ddnhw.ir import IntType, chain_graph
from .modules import QuantInput, QuantLinear, QuantReLU
from .conv import QuantConv1d, QuantConv2d, conv_requant, fold_batchnorm
from .residual import QuantResidual, int_requant
from .quantizers import freeze_weight_exponents, pow2_act_frac, round_ste

__all__ = ["QuantConv2d", "QuantConv1d", "QuantPool2d", "QuantPool1d", "QuantFlatten",
           "QuantCNN",
           "fold_batchnorm", "export_cnn", "train_cnn", "CNNConfig"]


class QuantPool2d(nn.Module):
    """Max or average pooling, ``kernel x kernel``, no padding. Average pooling needs a
    power-of-two kernel and re-rounds the mean onto the input's grid (half up)."""

    def __init__(self, kind, kernel, stride=None, name="pool"):
        super().__init__()
        self.name = name
        if kind not in ("max", "avg"):
            raise DdnhwError(f"layer {name}: pooling kind {kind!r} is not supported (max, avg)")
        if not isinstance(kernel, int) or kernel < 1:
            raise DdnhwError(f"layer {name}: kernel={kernel!r} must be an int >= 1")
        if kind == "avg" and kernel & (kernel - 1):
            raise DdnhwError(f"layer {name}: avgpool kernel={kernel} is not a power of two "
                             f"(the integer mean is a sum and a shift)")
        self.kind, self.kernel = kind, kernel
        self.stride = kernel if stride is None else int(stride)
        self.size = (kernel, kernel)

    def _args(self):
        return self.kernel, self.stride

    def forward(self, x, frac=None):
        if self.kind == "max":
            return nn.functional.max_pool2d(x, *self._args())
        y = nn.functional.avg_pool2d(x, *self._args())
        if frac is None:
            return y
        s = 2.0 ** frac
        return round_ste(y * s) / s

    def int_forward(self, x):
        if self.kind == "max":
            return nn.functional.max_pool2d(x, *self._args())
        n = self.size[0] * self.size[1]
        total = nn.functional.avg_pool2d(x, *self._args()) * n
        shift = n.bit_length() - 1
        return torch.floor((total + (1 << shift >> 1)) / 2.0 ** shift) if shift else total


class QuantPool1d(QuantPool2d):
    """Max or average pooling over the width of an ``(N, C, 1, L)`` map (a signal of length
    ``L``), ``kernel`` samples, no padding: a ``1 x kernel`` :class:`QuantPool2d` (exported as
    an IR pool with ``kernel [1, kernel]`` on the ``(1, L, C)`` image). Average pooling needs a
    power-of-two kernel. Anything else raises :class:`ddnhw.DdnhwError` naming the layer and
    the attribute."""

    def __init__(self, kind, kernel, stride=None, name="pool1d", axis="w"):
        nn.Module.__init__(self)
        self.name = name
        what = f"layer {name} (QuantPool1d)"
        if kind not in ("max", "avg"):
            raise DdnhwError(f"{what}: pooling kind {kind!r} is not supported (max, avg)")
        for attr, v in (("kernel", kernel), ("stride", kernel if stride is None else stride)):
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise DdnhwError(f"{what}: {attr}={v!r} is not supported (one int >= 1)")
        if kind == "avg" and kernel & (kernel - 1):
            raise DdnhwError(f"{what}: kernel={kernel} is not a power of two (the integer mean "
                             f"of an avgpool is a sum and a shift)")
        if axis not in ("w", "h"):
            raise DdnhwError(f"{what}: axis={axis!r} is not supported ('w' or 'h')")
        self.kind, self.kernel = kind, kernel
        self.stride = kernel if stride is None else stride
        self.size = (1, kernel) if axis == "w" else (kernel, 1)

    def _args(self):
        if self.size[0] == 1:
            return (1, self.kernel), (1, self.stride)
        return (self.kernel, 1), (self.stride, 1)


class QuantFlatten(nn.Module):
    """NCHW feature map to vectors in NHWC order (H, W, C): the IR's flatten."""

    def __init__(self, name="flatten"):
        super().__init__()
        self.name = name

    def forward(self, x, frac=None):
        return x.permute(0, 2, 3, 1).flatten(1)


class QuantCNN(nn.Module):
    """A sequential QAT network on images: ``QuantInput``, then ``layers``.

    ``layers``: dicts with ``op`` one of ``conv`` (``out``, ``kernel``, ``stride`` 1,
    ``padding`` 0, ``groups`` 1), ``conv1d`` (the same, :class:`QuantConv1d`, for
    ``in_shape = (C, 1, L)`` signals, or ``(C, L, 1)``: the signal as one column, whose
    hardware window buffers ``kernel`` samples instead of the whole row),
    ``maxpool``/``avgpool`` (``kernel``, ``stride`` = kernel),
    ``maxpool1d``/``avgpool1d`` (the same over a one-row or one-column map,
    :class:`QuantPool1d`),
    ``flatten``, ``linear`` (``out``), ``res`` (``kernel`` 3, ``mid``: a
    :class:`~ddnhw.quant.residual.QuantResidual` block, ``relu(conv(relu(conv(x))) + x)``,
    exported with an IR ``add``). Every conv/linear but the last is followed by
    (BatchNorm2d for convs when ``bn``) and a ``QuantReLU``; the last must be a linear layer,
    per tensor (its outputs are the logits; ``out_per_channel``: per-channel exponents,
    exported on one common scale). ``in_shape`` is ``(C, H, W)``.
    """

    def __init__(self, layers, in_shape=(1, 8, 8), in_bits=4, w_bits=4, a_bits=4, bn=True,
                 out_per_channel=False, act_calibration="p999"):
        super().__init__()
        if act_calibration not in ("p999", "mse"):
            raise DdnhwError(f"QuantCNN: act_calibration={act_calibration!r} is not supported "
                             f"('p999' or 'mse')")
        self.act_calibration = act_calibration
        self.spec = [dict(s) for s in layers]
        self.in_shape = tuple(int(v) for v in in_shape)
        self.inp = QuantInput(in_bits)
        mods = []
        c, h, w = self.in_shape
        macs = [k for k, s in enumerate(self.spec) if s.get("op") in ("conv", "conv1d", "linear")]
        if not macs or self.spec[macs[-1]].get("op") != "linear":
            raise DdnhwError("QuantCNN: the last conv/linear layer must be a linear layer")
        flat = False
        for k, s in enumerate(self.spec):
            op, name = s.get("op"), s.get("name", f"{s.get('op')}{k}")
            if op in ("conv", "conv1d"):
                if flat:
                    raise DdnhwError(f"layer {name}: {op} after flatten")
                extra = set(s) - {"op", "name", "out", "kernel", "stride", "padding", "groups",
                                  "dilation"}
                if extra:
                    raise DdnhwError(f"layer {name}: unsupported attribute(s) {sorted(extra)}")
                if op == "conv1d" and h != 1 and w != 1:
                    raise DdnhwError(f"layer {name}: conv1d needs a one-row input (C, 1, L) "
                                     f"or a one-column input (C, L, 1), got {h}x{w}")
                cls = QuantConv2d if op == "conv" else QuantConv1d
                axis = {} if op == "conv" else {"axis": "w" if h == 1 else "h"}
                conv = cls(c, int(s["out"]), s["kernel"], s.get("stride", 1),
                           s.get("padding", 0), s.get("dilation", 1), s.get("groups", 1),
                           w_bits, name, **axis)
                mods.append(conv)
                c = conv.out_channels
                (ph, pw), (sh, sw), (kh, kw) = conv.padding, conv.stride, conv.kernel_size
                h, w = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
            elif op in ("maxpool", "avgpool", "maxpool1d", "avgpool1d"):
                if flat:
                    raise DdnhwError(f"layer {name}: {op} after flatten")
                extra = set(s) - {"op", "name", "kernel", "stride"}
                if extra:
                    raise DdnhwError(f"layer {name}: unsupported attribute(s) {sorted(extra)}")
                if op.endswith("1d") and h != 1 and w != 1:
                    raise DdnhwError(f"layer {name}: {op} needs a one-row input (C, 1, L) or a "
                                     f"one-column input (C, L, 1), got {h}x{w}")
                if op.endswith("1d"):
                    pool = QuantPool1d(op[:3], s["kernel"], s.get("stride"), name,
                                       "w" if h == 1 else "h")
                else:
                    pool = QuantPool2d(op[:3], s["kernel"], s.get("stride"), name)
                mods.append(pool)
                kh, kw = pool.size
                h = (h - kh) // pool.stride + 1
                w = (w - kw) // pool.stride + 1
            elif op == "res":
                if flat:
                    raise DdnhwError(f"layer {name}: res after flatten")
                extra = set(s) - {"op", "name", "kernel", "mid"}
                if extra:
                    raise DdnhwError(f"layer {name}: unsupported attribute(s) {sorted(extra)}")
                mods.append(QuantResidual(c, s.get("kernel", 3), s.get("mid"), w_bits, a_bits,
                                          bn, name))
            elif op == "flatten":
                mods.append(QuantFlatten(name))
                c, flat = c * h * w, True
            elif op == "linear":
                if not flat:
                    raise DdnhwError(f"layer {name}: linear needs a flatten before it")
                last = k == macs[-1]
                lin = QuantLinear(c, int(s["out"]), w_bits, per_channel=out_per_channel or not last,
                                  name=name)
                mods.append(lin)
                c = lin.out_features
            else:
                raise DdnhwError(f"layer {name}: op {op!r} is not supported (conv, conv1d, "
                                 f"maxpool, avgpool, maxpool1d, avgpool1d, flatten, linear)")
            if h < 1 or w < 1:
                raise DdnhwError(f"layer {name}: the feature map vanished ({h}x{w})")
            if op in ("conv", "conv1d", "linear") and k != macs[-1]:
                if op in ("conv", "conv1d") and bn:
                    mods.append(nn.BatchNorm2d(c))
                mods.append(QuantReLU(a_bits, name=f"relu{k}"))
        self.body = nn.ModuleList(mods)
        self.n_out = c

    def set_quantize(self, on: bool):
        for m in self.modules():
            if hasattr(m, "quantize"):
                m.quantize = on

    def fold_batchnorm(self):
        """Fold every BatchNorm into the conv before it and drop it (call before QAT)."""
        mods = list(self.body)
        out = []
        for m in mods:
            if isinstance(m, QuantResidual):
                m.fold_batchnorm()
            if isinstance(m, nn.BatchNorm2d):
                fold_batchnorm(out[-1], m)
                continue
            out.append(m)
        self.body = nn.ModuleList(out)

    def forward(self, x, _calibrate=False):
        x = self.inp(x)
        frac = self.inp.frac if self.inp.quantize else None
        for m in self.body:
            if isinstance(m, (QuantConv2d, QuantLinear)):
                x = m(x, frac)
            elif isinstance(m, QuantReLU):
                if _calibrate:
                    h = torch.relu(x)
                    if self.act_calibration == "mse":
                        m.frac = mse_act_frac(h, m.bits)
                    else:
                        m.calibrate(max(torch.quantile(h.flatten()[:1 << 24], 0.999).item(),
                                        1e-6))
                x = m(x)
                frac = m.frac if m.quantize else None
            elif isinstance(m, QuantResidual):
                x, frac = m(x, frac, _calibrate)
            elif isinstance(m, (QuantPool2d, QuantFlatten)):
                x = m(x, frac)
            else:
                x = m(x)
        return x

    def calibrate(self, x):
        """Fix the activations' power-of-two scales from the data: ``act_calibration``
        ``"p999"`` (the default: the grid's top covers the 99.9th percentile) or ``"mse"``
        (:func:`mse_act_frac`: the grid with the least squared error, clipping the tail)."""
        was = self.training
        self.eval()
        with torch.no_grad():
            self.forward(x, _calibrate=True)
        self.train(was)

    def _check_exportable(self):
        for m in self.modules():
            if isinstance(m, nn.BatchNorm2d):
                raise DdnhwError("QuantCNN: BatchNorm not folded; call model.fold_batchnorm() "
                                 "before QAT and export")
            if isinstance(m, QuantReLU) and m.frac is None:
                raise DdnhwError(f"layer {m.name}: activation scale not calibrated; call "
                                 f"model.calibrate(x) before export")

    def int_forward(self, x_int):
        """Integer-mode forward on integer input codes (N, C, H, W): what the hardware computes.

        Convolutions run in float64, exact for every integer below 2**53 (the accumulator
        types bound them far below)."""
        self._check_exportable()
        with torch.no_grad():
            h = x_int.double()
            frac, e = self.inp.frac, None
            for m in self.body:
                if isinstance(m, QuantConv2d):
                    w, b, e = m.int_params(frac)
                    h = m._conv_forward(h, w.double(), b.double())
                elif isinstance(m, QuantLinear):
                    w, b, e = _linear_params(self, m, frac)
                    h = h @ w.double().T + b.double()
                elif isinstance(m, QuantReLU):
                    h = int_requant(h, *conv_requant(e, frac, m.frac), m.bits).double()
                    frac = m.frac
                elif isinstance(m, QuantResidual):
                    h, frac = m.int_forward(h, frac)
                elif isinstance(m, QuantPool2d):
                    h = m.int_forward(h)
                elif isinstance(m, QuantFlatten):
                    h = m(h)
            return h.long()


def mse_act_frac(h, bits, extra=4):
    """Fraction bits of the unsigned ``bits``-bit grid (a power-of-two step) with the least
    squared error on the non-negative activations ``h`` (at most 2**20 of them, evenly
    sampled): from the grid that holds their maximum to ``extra`` finer ones, which clip
    the tail."""
    v = h.detach().flatten()
    if v.numel() > 1 << 20:
        v = v[::-(-v.numel() // (1 << 20))]
    qmax = (1 << bits) - 1
    f0 = pow2_act_frac(max(float(v.max()), 1e-6), bits)
    errs = []
    for f in range(f0, f0 + extra + 1):
        s = 2.0 ** f
        errs.append((float(((torch.clamp(torch.floor(v * s + 0.5), 0, qmax) / s - v) ** 2)
                           .sum()), f))
    return min(errs)[1]


def _linear_params(model, m, frac):
    """A linear layer's integer parameters; the last layer's (the logits) on one common scale
    (:meth:`QuantLinear.int_params_common`: exact, and the same as ``int_params`` when it is
    per tensor), so per-channel output weights (``out_per_channel``) compare by argmax."""
    return m.int_params_common(frac) if m is model.body[-1] else m.int_params(frac)


def export_cnn(model: QuantCNN, meta=None):
    """The IR graph (NHWC) of a calibrated, BN-folded :class:`QuantCNN`."""
    model._check_exportable()
    frac = model.inp.frac
    layers, e = [], None
    for m in model.body:
        if isinstance(m, (QuantConv2d, QuantLinear)):
            for nm, arr in (("weight", m.weight), ("bias", m.bias)):
                if not np.all(np.isfinite(arr.detach().numpy())):
                    raise DdnhwError(f"layer {m.name}: {nm} contains NaN or Inf")
            w, b, e = (_linear_params(model, m, frac) if isinstance(m, QuantLinear)
                       else m.int_params(frac))
            w, b, en = w.numpy(), b.numpy(), e.numpy()
            spec = {"op": "dense", "name": m.name, "weight": w, "bias": b,
                    "weight_frac": int(-en[0]) if np.all(en == en[0]) else 0}
            if isinstance(m, QuantConv2d):
                spec.update(op="conv2d", weight=w.transpose(0, 2, 3, 1), stride=m.stride[0],
                            padding=m.padding[0], groups=m.groups)
            layers.append(spec)
        elif isinstance(m, QuantReLU):
            mult, shift = conv_requant(e, frac, m.frac)
            layers[-1]["requant"] = {"multiplier": mult.numpy(), "shift": shift.numpy(),
                                     "lo": 0, "hi": (1 << m.bits) - 1,
                                     "out_type": IntType(False, m.bits, m.frac)}
            frac = m.frac
        elif isinstance(m, QuantPool2d):
            layers.append({"op": f"{m.kind}pool2d", "name": m.name, "stride": m.stride,
                           "kernel": m.kernel if m.size[0] == m.size[1] else list(m.size)})
        elif isinstance(m, QuantFlatten):
            layers.append({"op": "flatten", "name": m.name})
        elif isinstance(m, QuantResidual):
            layers.append(m.export(frac))
            frac = m.relu.frac
    c, h, w = model.in_shape
    info = {"kind": "cnn", "layers": model.spec, "in_shape": [h, w, c],
            "in_bits": model.inp.bits}
    info.update(meta or {})
    return chain_graph(IntType(False, model.inp.bits, model.inp.frac), (h, w, c), layers,
                       meta=info)


class CNNConfig:
    """Training settings of :func:`train_cnn` (keyword arguments)."""

    def __init__(self, layers=None, in_shape=(1, 8, 8), in_bits=4, w_bits=4, a_bits=4, bn=True,
                 float_epochs=40, qat_epochs=40, batch=64, lr=1e-2, qat_lr=3e-3,
                 weight_decay=1e-4, seed=0, distill=0.0, temperature=4.0, input_norm=False,
                 out_per_channel=False, act_calibration="p999", freeze_exponents=None):
        self.act_calibration = act_calibration
        # QAT with the weight exponents fixed after BN folding (None: recomputed every step;
        # "max" or "mse": ddnhw.quant.quantizers.freeze_weight_exponents)
        self.freeze_exponents = freeze_exponents
        self.distill, self.temperature, self.input_norm = distill, temperature, input_norm
        self.out_per_channel = out_per_channel
        self.layers = layers or [{"op": "conv", "out": 8, "kernel": 3, "padding": 1},
                                 {"op": "maxpool", "kernel": 2}, {"op": "flatten"},
                                 {"op": "linear", "out": 10}]
        self.in_shape, self.in_bits, self.w_bits, self.a_bits = in_shape, in_bits, w_bits, a_bits
        self.bn, self.float_epochs, self.qat_epochs = bn, float_epochs, qat_epochs
        self.batch, self.lr, self.qat_lr, self.weight_decay = batch, lr, qat_lr, weight_decay
        self.seed = seed


def train_cnn(xtr, ytr, xte, yte, cfg: CNNConfig = None, log=None):
    """Float training (with BN), BN folding, calibration, QAT; returns a :class:`TrainResult`.

    ``x`` arrays are (N, C*H*W) or (N, C, H, W) floats in [0, 1].
    """
    from .train import float_then_qat

    cfg = cfg or CNNConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    shape = (-1,) + tuple(cfg.in_shape)
    xtr_t = torch.as_tensor(np.asarray(xtr, np.float32)).reshape(shape)
    xte_t = torch.as_tensor(np.asarray(xte, np.float32)).reshape(shape)
    ytr_t, yte_t = torch.as_tensor(ytr), torch.as_tensor(yte)
    model = QuantCNN(cfg.layers, cfg.in_shape, cfg.in_bits, cfg.w_bits, cfg.a_bits, cfg.bn,
                     getattr(cfg, "out_per_channel", False),
                     getattr(cfg, "act_calibration", "p999"))
    freeze = getattr(cfg, "freeze_exponents", None)
    if freeze not in (None, "max", "mse"):
        raise DdnhwError(f"freeze_exponents={freeze!r} is not supported (None, 'max', 'mse')")

    def prepare(m):
        _fold_for_qat(m)
        if freeze:
            freeze_weight_exponents(m, mse=freeze == "mse")
    return float_then_qat(model, xtr_t, ytr_t, xte_t, yte_t, cfg, gen, log, t0,
                          prepare=prepare)


def _fold_for_qat(model):
    model.eval()
    model.fold_batchnorm()
