"""Quantization schemes beyond the default power-of-two uniform one, each with its hardware.

Weights (per layer, :class:`WeightSpec`):

- ``uniform``: signed symmetric ``bits``-bit codes, learned step size (LSQ, per output channel),
  initialized by calibration (``minmax``, ``percentile`` or ``mse``).
- ``pow2`` (log2): codes ``{0, ±2**j}``, ``j`` in ``0..J`` with ``J + 2 <= 2**(bits-1)`` levels,
  at a power-of-two scale: the real weights are ``{0, ±2**k}`` with ``k`` in ``range``
  (``(kmin, kmax)``, or from the weights' maximum). Hardware: one shifted add per weight.
- ``ternary`` ({-1, 0, 1}) and ``binary`` ({-1, +1}): learned scale. Hardware: adds only.
- ``codebook``: ``levels`` (<= 2**bits) learned real levels per layer, k-means initialized,
  each stored as an integer of ``codebook_bits`` at a power-of-two scale. Hardware: constant
  multipliers (shift-add digits of the integer levels) in the unrolled layer.

Activations (per hidden layer, :class:`ActSpec`):

- ``relu``: unsigned ``bits``, learned step size (LSQ) initialized by calibration.
- ``bipolar``: sign activation ``{-1, +1}`` (``bits`` must be 2: a signed 2-bit type).
  Hardware: the dense layer before it computes ``2*acc + 1`` (never 0), the requantizer
  clips to ``[-1, 1]``; the next dense layer takes the ±1 inputs through its shift-add adder
  tree (no separate XNOR/popcount datapath: with ±1 inputs and ±1 weights that adder tree
  *is* a popcount of the sign agreements, up to an affine map).

Realization of the scales (``ActSpec.realize``): the requantizer between layers is
``clip(round_shift(acc * multiplier, shift), lo, hi)`` with ``multiplier / 2**shift`` the
quantized ratio ``s_in * s_w[c] / s_out``:

- ``"pow2"``: every scale is snapped to a power of two (straight-through), so the multiplier is
  a power of two: the requantizer is a shift only.
- ``"mult"``: the ratio is rounded to a ``mult_bits``-bit integer multiplier (normalized to
  ``[2**(mult_bits-1), 2**mult_bits)``) and a shift; the graph's requant nodes state
  ``multiplier_bits``.

Exactness: in quantized mode the forward pass runs on integer codes in float64 (exact below
2**53): ``acc = x_q @ w_q.T + b_q``, ``y_q = clip(floor(acc * m * 2**-s + 1/2), lo, hi)``. The
scales enter only through the multiplier (with a straight-through gradient to the learned
scales, as LSQ prescribes) and through the final logits' scale, so :meth:`SchemeMLP.forward_codes`
equals :meth:`SchemeMLP.int_forward` and the golden model exactly.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from ddnhw import DdnhwError
from ddnhw.fixedpoint import requantize
from ddnhw.ir import Graph, IntType, mlp_graph
from .quantizers import round_ste

__all__ = ["WeightSpec", "ActSpec", "SchemeMLP", "export_scheme_mlp", "lsq_grad_scale",
           "calibrate_range", "kmeans_1d", "W_KINDS", "A_KINDS", "CALIBRATIONS"]

W_KINDS = ("uniform", "pow2", "ternary", "binary", "codebook")
A_KINDS = ("relu", "bipolar")
CALIBRATIONS = ("minmax", "percentile", "mse")
REALIZE = ("pow2", "mult")
MAX_QUANT_BITS = 16   # widest code this module supports (the default path: 2..8)


# ---------------------------------------------------------------------------------- specs
@dataclass(frozen=True)
class WeightSpec:
    kind: str = "uniform"
    bits: int = 4
    per_channel: bool = True
    calib: str = "mse"
    levels: int | None = None          # codebook: number of levels (default 2**bits)
    codebook_bits: int = 8             # codebook: integer precision of each level
    range: tuple | None = None         # pow2: (kmin, kmax) of the real weights {0, ±2**k}
    full_range: bool = False           # uniform: codes -2**(bits-1)..2**(bits-1)-1 (all 2**bits)
    channel_bits: tuple | None = None  # uniform: bit width per output channel (max == bits)

    def check(self, layer: str) -> "WeightSpec":
        what = f"layer {layer}: weight quantizer"
        if self.kind not in W_KINDS:
            raise DdnhwError(f"{what}: kind {self.kind!r} unknown (use one of {W_KINDS})")
        _check_bits(self.bits, f"{what} ({self.kind})")
        if self.calib not in CALIBRATIONS:
            raise DdnhwError(f"{what}: calibration {self.calib!r} unknown ({CALIBRATIONS})")
        if self.kind == "binary" and self.bits != 1:
            raise DdnhwError(f"{what}: binary weights have bits=1, not {self.bits}")
        if self.kind == "ternary" and self.bits != 2:
            raise DdnhwError(f"{what}: ternary weights have bits=2, not {self.bits}")
        if self.kind in ("uniform", "pow2") and self.bits < 2:
            raise DdnhwError(f"{what}: {self.kind} weights need bits >= 2, not {self.bits}")
        if self.channel_bits is not None:
            cb = self.channel_bits
            if self.kind != "uniform" or not isinstance(cb, tuple) or not cb:
                raise DdnhwError(f"{what}: channel_bits must be a non-empty tuple for uniform "
                                 f"weights, not {cb!r} ({self.kind})")
            for b in cb:
                _check_bits(b, f"{what}: channel_bits")
                if b < 2:
                    raise DdnhwError(f"{what}: channel_bits entry {b} < 2")
            if max(cb) != self.bits:
                raise DdnhwError(f"{what}: bits={self.bits} must be the largest of channel_bits "
                                 f"(max {max(cb)})")
        if self.full_range and self.kind != "uniform":
            raise DdnhwError(f"{what}: full_range applies to uniform weights, not {self.kind}")
        if self.kind == "codebook":
            n = self.n_levels
            if not isinstance(n, int) or n < 2:
                raise DdnhwError(f"{what}: codebook needs >= 2 levels, not {self.levels!r}")
            if n > 1 << self.bits:
                raise DdnhwError(f"{what}: codebook of {n} levels is larger than 2**bits = "
                                 f"{1 << self.bits} (bits={self.bits})")
            _check_bits(self.codebook_bits, f"{what}: codebook_bits")
        if self.kind == "pow2":
            if self.range is not None:
                kmin, kmax = self.range
                if not (isinstance(kmin, int) and isinstance(kmax, int)) or kmin > kmax:
                    raise DdnhwError(f"{what}: power-of-two range {self.range!r} must be "
                                     f"(kmin, kmax) integers with kmin <= kmax")
                if kmax - kmin + 1 > self.pow2_levels:
                    raise DdnhwError(f"{what}: power-of-two range {self.range!r} has "
                                     f"{kmax - kmin + 1} exponents but {self.bits} bits hold "
                                     f"{self.pow2_levels} (sign, zero and exponents)")
        return self

    @property
    def n_levels(self):
        return (1 << self.bits) if self.levels is None else self.levels

    @property
    def pow2_levels(self):
        """Number of exponents a ``bits``-bit pow2 code holds: one sign bit, one zero code."""
        return (1 << (self.bits - 1)) - 1

    @property
    def qmax(self):
        return {"binary": 1, "ternary": 1}.get(self.kind, (1 << (self.bits - 1)) - 1)

    @property
    def qmin(self):
        """Smallest code: ``-qmax``, or ``-2**(bits-1)`` with ``full_range`` (two's complement:
        at 2 bits {-2, -1, 0, 1} instead of the symmetric {-1, 0, 1})."""
        return -(self.qmax + 1) if self.full_range else -self.qmax


@dataclass(frozen=True)
class ActSpec:
    kind: str = "relu"
    bits: int = 4
    realize: str = "mult"
    mult_bits: int = 8
    calib: str = "percentile"

    def check(self, layer: str) -> "ActSpec":
        what = f"layer {layer}: activation quantizer"
        if self.kind not in A_KINDS:
            raise DdnhwError(f"{what}: kind {self.kind!r} unknown (use one of {A_KINDS})")
        _check_bits(self.bits, f"{what} ({self.kind})")
        if self.kind == "bipolar" and self.bits != 2:
            raise DdnhwError(f"{what}: bipolar activations are signed 2-bit (bits=2), "
                             f"not {self.bits}")
        if self.realize not in REALIZE:
            raise DdnhwError(f"{what}: realize {self.realize!r} unknown (use one of {REALIZE})")
        if self.realize == "mult":
            _check_bits(self.mult_bits, f"{what}: mult_bits")
        if self.calib not in CALIBRATIONS:
            raise DdnhwError(f"{what}: calibration {self.calib!r} unknown ({CALIBRATIONS})")
        return self

    @property
    def qmax(self):
        return 1 if self.kind == "bipolar" else (1 << self.bits) - 1

    @property
    def lo(self):
        return -1 if self.kind == "bipolar" else 0


def _check_bits(bits, what):
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise DdnhwError(f"{what}: bit width must be an integer, not {bits!r}")
    if not 1 <= bits <= MAX_QUANT_BITS:
        raise DdnhwError(f"{what}: bit width {bits} is not supported (use 1..{MAX_QUANT_BITS})")
    return bits


# ---------------------------------------------------------------------------------- autograd
class _Replace(torch.autograd.Function):
    """Forward: ``value`` exactly; backward: the gradient goes to ``x`` (straight through)."""

    @staticmethod
    def forward(ctx, x, value):
        return value.clone()

    @staticmethod
    def backward(ctx, g):
        return g, None


def ste_replace(x, value):
    return _Replace.apply(x, value.detach().to(x.dtype))


class _GradScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, g):
        ctx.g = g
        return x.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.g, None


def lsq_grad_scale(x, g):
    """Identity forward (exactly), gradient times ``g`` (LSQ: ``g = 1/sqrt(N * Qp)``)."""
    return _GradScale.apply(x, g)


class _SignSTE(torch.autograd.Function):
    """``+1`` for ``x >= 0`` else ``-1``; gradient passes where ``|x| <= clip``."""

    @staticmethod
    def forward(ctx, x, clip):
        ctx.save_for_backward(x)
        ctx.clip = clip
        return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x))

    @staticmethod
    def backward(ctx, g):
        (x,) = ctx.saved_tensors
        return g * (x.abs() <= ctx.clip).to(g.dtype), None


# ---------------------------------------------------------------------------------- calibration
def calibrate_range(v: torch.Tensor, method: str, qmax: int, signed: bool, q=None,
                    pct=99.9) -> float:
    """Clipping value ``amax`` for values ``v`` with a ``qmax``-step grid: ``minmax`` (largest
    magnitude), ``percentile`` (``pct``-th percentile of the magnitudes) or ``mse`` (the
    ``amax`` minimizing the quantization error, searched over 64 candidates).
    ``q(v, step)``: the quantizer (default: round-and-clip on the uniform grid)."""
    v = v.detach().double().flatten()
    v = v if signed else torch.clamp(v, min=0)
    mag = v.abs()
    top = float(mag.max()) if mag.numel() else 0.0
    if top <= 0:
        return 1.0
    if method == "minmax":
        return top
    if method == "percentile":
        k = float(torch.quantile(mag[:1_000_000], pct / 100.0))
        return k if k > 0 else top
    if q is None:
        lo = -qmax if signed else 0

        def q(x, step):
            return torch.clamp(torch.floor(x / step + 0.5), lo, qmax) * step
    best, best_err = top, math.inf
    for f in np.linspace(0.05, 1.0, 64):
        a = top * float(f)
        err = float(((q(v, a / qmax) - v) ** 2).sum())
        if err < best_err:
            best, best_err = a, err
    return best


def kmeans_1d(v: torch.Tensor, k: int, iters=30) -> torch.Tensor:
    """``k`` centers of 1-D k-means (Lloyd), initialized at the quantiles; sorted."""
    v = v.detach().double().flatten()
    c = torch.quantile(v, torch.linspace(0, 1, k + 2, dtype=torch.float64)[1:-1])
    for _ in range(iters):
        idx = (v[:, None] - c[None, :]).abs().argmin(1)
        for j in range(k):
            sel = v[idx == j]
            if sel.numel():
                c[j] = sel.mean()
    return torch.sort(c).values


# ---------------------------------------------------------------------------------- layers
def _pow2_snap(log2s):
    return torch.pow(2.0, round_ste(log2s))


class SchemeLinear(nn.Linear):
    """A linear layer whose weights are quantized by a :class:`WeightSpec`. Learned scale
    ``2**log2_scale`` (per output channel, or one per layer); codebook levels in ``codebook``."""

    def __init__(self, n_in, n_out, spec: WeightSpec, name="fc", per_channel=None):
        super().__init__(n_in, n_out, bias=True)
        self.name = name
        self.spec = spec.check(name)
        pc = spec.per_channel if per_channel is None else per_channel
        if spec.kind == "codebook":
            pc = False          # one codebook, one scale per layer
        self.per_channel = pc
        self.log2_scale = nn.Parameter(torch.zeros(n_out if pc else 1))
        self.codebook = nn.Parameter(torch.zeros(spec.n_levels if spec.kind == "codebook" else 0))
        self.register_buffer("mask", torch.ones_like(self.weight))
        if spec.channel_bits is not None and len(spec.channel_bits) != n_out:
            raise DdnhwError(f"layer {name}: channel_bits has {len(spec.channel_bits)} entries "
                             f"for {n_out} output channels")

    def qrange(self):
        """``(qmin, qmax)`` of the weight codes: numbers, or per-output-channel float64 columns
        ``(out, 1)`` with ``channel_bits``."""
        s = self.spec
        if s.channel_bits is None:
            return s.qmin, s.qmax
        qmax = torch.tensor([(1 << (b - 1)) - 1 for b in s.channel_bits],
                            dtype=torch.float64).unsqueeze(1)
        return (-(qmax + 1) if s.full_range else -qmax), qmax

    # -- calibration (PTQ) and the QAT starting point
    def calibrate(self):
        s = self.spec
        w = (self.weight * self.mask).detach().double()
        rows = w if self.per_channel else w.reshape(1, -1)
        with torch.no_grad():
            if s.kind == "codebook":
                nz = w[self.mask > 0]
                self.codebook.copy_(kmeans_1d(nz if nz.numel() >= s.n_levels else w,
                                              s.n_levels).float())
                return
            if s.kind == "pow2":
                self.check_pow2_range()
                return
            scales = []
            qhi = self.qrange()[1]
            for c, r in enumerate(rows):
                if s.kind == "binary":
                    scales.append(float(r.abs().mean()) or 1.0)
                    continue
                hi = int(qhi[c, 0]) if torch.is_tensor(qhi) and self.per_channel else s.qmax
                lo = -(hi + 1) if s.full_range else -hi

                def q(x, step, lo=lo, hi=hi):
                    return torch.clamp(torch.floor(x / step + 0.5), lo, hi) * step
                amax = calibrate_range(r, s.calib, hi, signed=True, q=q)
                scales.append(max(amax / hi, 1e-8))
            self.log2_scale.copy_(torch.log2(torch.tensor(scales)).float())

    def check_pow2_range(self):
        s = self.spec
        if s.kind != "pow2" or s.range is None:
            return
        amax = float((self.weight * self.mask).detach().abs().max())
        kmin, kmax = s.range
        if amax > 2.0 ** (kmax + 1):
            raise DdnhwError(f"layer {self.name}: power-of-two range {s.range!r} cannot hold the "
                             f"weights (largest |w| = {amax:.4g} > 2**{kmax + 1}); "
                             f"use kmax >= {math.ceil(math.log2(amax)) - 1}")

    # -- quantized weights as integer codes (float64, differentiable) and their real scale
    def scale(self, snap: bool):
        """Real scale of one weight code (per output channel, float64, differentiable)."""
        s = self.spec
        if s.kind == "pow2":
            e = self._pow2_exponent()
            return torch.pow(2.0, e).expand(self.out_features)
        if s.kind == "codebook":
            return torch.pow(2.0, self._codebook_exponent()).expand(self.out_features)
        n = self.weight.numel() // (self.out_features if self.per_channel else 1)
        g = 1.0 / math.sqrt(max(n * s.qmax, 1))
        p = lsq_grad_scale(self.log2_scale.double(), g)
        sc = _pow2_snap(p) if snap else torch.pow(2.0, p)
        return sc.expand(self.out_features) if sc.numel() == 1 else sc

    def _pow2_exponent(self):
        s = self.spec
        if s.range is not None:
            return torch.tensor(float(s.range[0]), dtype=torch.float64)
        w = (self.weight * self.mask).detach().double()
        amax = w.abs().amax(1) if self.per_channel else w.abs().amax().reshape(1)
        top = torch.round(torch.log2(torch.clamp(amax, min=1e-30)))
        return torch.where(amax > 0, top - (s.pow2_levels - 1), torch.zeros_like(top))

    def _codebook_exponent(self):
        s = self.spec
        cmax = float(self.codebook.detach().abs().max())
        qm = (1 << (s.codebook_bits - 1)) - 1
        if cmax <= 0:
            return torch.tensor(0.0, dtype=torch.float64)
        e = math.ceil(math.log2(cmax / qm))
        if math.floor(cmax / 2.0 ** e + 0.5) > qm:
            e += 1
        return torch.tensor(float(e), dtype=torch.float64)

    def codes(self, snap: bool):
        """``(w_code, scale)``: integer-valued float64 codes (out, in) and per-channel scale;
        ``w_code * scale`` is the quantized weight."""
        s = self.spec
        w = self.weight.double() * self.mask.double()
        sc = self.scale(snap)
        v = w / sc.unsqueeze(1)
        if s.kind == "uniform" or s.kind == "ternary":
            qlo, qhi = self.qrange()
            code = torch.maximum(torch.minimum(round_ste(v), torch.as_tensor(qhi, dtype=v.dtype)),
                                 torch.as_tensor(qlo, dtype=v.dtype))
        elif s.kind == "binary":
            code = _SignSTE.apply(v, 1.0)
        elif s.kind == "pow2":
            J = s.range[1] - s.range[0] if s.range is not None else s.pow2_levels - 1
            mag = v.detach().abs()
            # nearest of {0, 1, 2, ..., 2**J} (linear distance): 2**j up to 1.5 * 2**j
            j = torch.clamp(torch.floor(torch.log2(torch.clamp(mag, min=1e-30) / 1.5)) + 1, 0, J)
            val = torch.where(mag < 0.5, torch.zeros_like(mag), torch.pow(2.0, j))
            val = torch.where(v.detach() < 0, -val, val)
            lim = float(2 ** J)
            code = ste_replace(torch.clamp(v, -lim, lim), val)
        else:  # codebook
            cb = self.codebook.double() / sc[0]
            cb_q = round_ste(cb)
            idx = (v.detach().unsqueeze(-1) - cb_q.detach()).abs().argmin(-1)
            picked = cb_q[idx]                       # gradient to the levels
            code = picked + (v - v.detach())         # and straight through to the weights
        return code * self.mask.double(), sc

    def bias_code(self, s_acc):
        return round_ste(self.bias.double() / s_acc)


class SchemeAct(nn.Module):
    """Holds the learned activation scale ``2**log2_scale`` and the spec."""

    def __init__(self, spec: ActSpec, n, name="relu"):
        super().__init__()
        self.name = name
        self.spec = spec.check(name)
        self.n = n
        self.log2_scale = nn.Parameter(torch.zeros(()))

    def scale(self):
        s = self.spec
        if s.kind == "bipolar":
            return torch.tensor(1.0, dtype=torch.float64)
        g = 1.0 / math.sqrt(max(self.n * s.qmax, 1))
        p = lsq_grad_scale(self.log2_scale.double(), g)
        return _pow2_snap(p) if s.realize == "pow2" else torch.pow(2.0, p)

    def calibrate(self, z):
        s = self.spec
        if s.kind == "bipolar":
            return
        amax = calibrate_range(z, s.calib, s.qmax, signed=False)
        with torch.no_grad():
            self.log2_scale.fill_(math.log2(max(amax / s.qmax, 1e-8)))


def quantize_ratio(r: torch.Tensor, spec: ActSpec):
    """``(multiplier, shift)`` (float64 integer-valued, per channel) with ``m / 2**s ≈ r``."""
    r = r.detach()
    if spec.realize == "pow2":
        t = torch.round(torch.log2(r))        # exact: r is a power of two already
        return torch.where(t > 0, torch.pow(2.0, t), torch.ones_like(t)), torch.clamp(-t, min=0)
    mb = spec.mult_bits
    sh = (mb - 1) - torch.floor(torch.log2(r))
    m = torch.floor(r * torch.pow(2.0, sh) + 0.5)
    over = m >= 2 ** mb
    m = torch.where(over, torch.floor(m / 2 + 0.5), m)
    sh = torch.where(over, sh - 1, sh)
    # the shift must be in 0..62: large ratios use a wider multiplier, tiny ones a smaller one
    neg = sh < 0
    m = torch.where(neg, torch.floor(r + 0.5), m)
    sh = torch.where(neg, torch.zeros_like(sh), sh)
    big = sh > 62
    m = torch.where(big, torch.floor(r * 2.0 ** 62 + 0.5), m)
    sh = torch.clamp(sh, max=62)
    return m, sh


# ---------------------------------------------------------------------------------- model
def per_layer_specs(weights, acts, n, what):
    """One weight spec per MAC layer and one activation spec per hidden layer, from one spec or
    lists (``n`` MAC layers)."""
    wspecs = list(weights) if isinstance(weights, (list, tuple)) else [weights] * n
    aspecs = list(acts) if isinstance(acts, (list, tuple)) else [acts] * (n - 1)
    if len(wspecs) != n or len(aspecs) != n - 1:
        raise DdnhwError(f"{what}: need {n} weight specs and {n - 1} activation specs, got "
                         f"{len(wspecs)} and {len(aspecs)}")
    return wspecs, aspecs


class SchemeMLP(nn.Module):
    """``input → (SchemeLinear → SchemeAct)* → SchemeLinear``; per-layer weight and activation
    specs (mixed precision). The input is unsigned ``in_bits`` with a power-of-two scale, as in
    :class:`~ddnhw.quant.QuantMLP`. The last layer has one scale (argmax over its integers is
    argmax over its real outputs)."""

    def __init__(self, sizes=(64, 16, 10), in_bits=4, weights=WeightSpec(), acts=ActSpec()):
        super().__init__()
        if len(sizes) < 2:
            raise DdnhwError(f"SchemeMLP needs at least 2 sizes, got {sizes!r}")
        self.sizes = tuple(int(s) for s in sizes)
        n = len(sizes) - 1
        wspecs, aspecs = per_layer_specs(weights, acts, n, f"SchemeMLP{self.sizes}")
        _check_bits(in_bits, "input")
        self.in_bits, self.in_frac = in_bits, in_bits
        self.layers = nn.ModuleList(
            SchemeLinear(sizes[k], sizes[k + 1], wspecs[k], name=f"fc{k}",
                         per_channel=None if k < n - 1 else False) for k in range(n))
        self.acts = nn.ModuleList(SchemeAct(aspecs[k], sizes[k + 1], name=f"relu{k}")
                                  for k in range(n - 1))
        self.quantize = True

    def set_quantize(self, on: bool):
        self.quantize = bool(on)

    @classmethod
    def from_float(cls, float_model, **kw):
        """A scheme model with the weights of a (float-trained) QuantMLP/SchemeMLP."""
        m = cls(float_model.sizes, **kw)
        for a, b in zip(m.layers, float_model.layers):
            with torch.no_grad():
                a.weight.copy_(b.weight)
                a.bias.copy_(b.bias)
                a.mask.copy_(b.mask)
        return m

    def input_codes(self, x):
        return torch.clamp(torch.floor(x.double() * 2.0 ** self.in_frac + 0.5), 0,
                           (1 << self.in_bits) - 1)

    def _snap(self, k):
        # a hidden layer's weight scale is snapped when its requant is shift-only; the last
        # layer's scale only sets the logits' scale: snapped when the model is all-pow2
        if k < len(self.acts):
            return self.acts[k].spec.realize == "pow2"
        return all(a.spec.realize == "pow2" for a in self.acts)

    def _plan(self, k, s_in):
        """Per layer: w_code, b_code, s_w (per channel), and (m, sh, lo, hi, s_out, M) or None."""
        layer = self.layers[k]
        w, s_w = layer.codes(self._snap(k))
        s_acc = s_in * s_w
        b = layer.bias_code(s_acc)
        if k == len(self.acts):
            return w, b, s_acc, None
        act = self.acts[k]
        if act.spec.kind == "bipolar":   # 2*acc + 1: never 0, sign unchanged for acc != 0
            w, b = 2 * w, 2 * b + 1
            one = torch.ones_like(s_acc)
            return w, b, s_acc, (one, torch.zeros_like(one), -1, 1, act.scale(), one)
        s_out = act.scale()
        ratio = s_acc / s_out
        m, sh = quantize_ratio(ratio, act.spec)
        M = ste_replace(ratio, m * torch.pow(2.0, -sh))
        return w, b, s_acc, (m, sh, act.spec.lo, act.spec.qmax, s_out, M)

    # -- the layer geometry: SchemeMLP is a chain of dense layers; SchemeCNN overrides these
    def _mac(self, k, h, w, b):
        """Layer ``k``'s accumulator on input ``h`` with (integer-valued) weights ``w`` (out, in)
        and bias ``b`` (out,)."""
        return h @ w.T + b

    def _between(self, k, h):
        """What runs on layer ``k``'s input before its MACs (pooling, flatten): nothing here."""
        return h

    @staticmethod
    def _chan(v, acc):
        """A per-output-channel vector ``v`` shaped to broadcast against ``acc``."""
        return v.reshape((1, -1) + (1,) * (acc.dim() - 2)) if acc.dim() > 2 else v

    def forward_codes(self, x):
        """Quantized forward in the integer domain (float64 codes, differentiable); returns
        ``(logit codes, their real scale)``."""
        h = self.input_codes(x)
        s_in = torch.tensor(2.0 ** -self.in_frac, dtype=torch.float64)
        for k in range(len(self.layers)):
            h = self._between(k, h)
            w, b, s_acc, rq = self._plan(k, s_in)
            acc = self._mac(k, h, w, b)
            if rq is None:
                return acc, s_acc
            m, sh, lo, hi, s_out, M = rq
            if self.acts[k].spec.kind == "bipolar":
                # acc = 2*acc' + 1 is odd, so the sign of this real pre-activation is exact
                h = _SignSTE.apply(acc * self._chan(s_acc, acc) / 2, 1.0)
            else:
                h = torch.clamp(round_ste(acc * self._chan(M, acc)), lo, hi)
            s_in = s_out

    def forward(self, x):
        if not self.quantize:
            h = x
            for k, layer in enumerate(self.layers):
                h = self._between(k, h)
                h = self._mac(k, h, layer.weight * layer.mask, layer.bias)
                if k < len(self.acts):
                    h = (torch.relu(h) if self.acts[k].spec.kind == "relu"
                         else nn.functional.hardtanh(h))
            return h
        codes, s = self.forward_codes(x)
        return (codes * s).float()

    @torch.no_grad()
    def calibrate(self, x):
        """PTQ: weight scales / codebooks / pow2 ranges from the weights, activation scales
        from the data (each by its spec's ``calib`` method). The starting point of QAT."""
        for layer in self.layers:
            layer.calibrate()
        h = self.input_codes(x)
        s_in = torch.tensor(2.0 ** -self.in_frac, dtype=torch.float64)
        for k, act in enumerate(self.acts):
            h = self._between(k, h)
            w, s_w = self.layers[k].codes(self._snap(k))
            s_acc = s_in * s_w
            z = self._mac(k, h, w, self.layers[k].bias_code(s_acc))
            act.calibrate(z * self._chan(s_acc, z))
            w, b, s_acc, (m, sh, lo, hi, s_out, M) = self._plan(k, s_in)
            acc = self._mac(k, h, w, b)
            h = (torch.where(acc >= 0, 1.0, -1.0).double() if act.spec.kind == "bipolar"
                 else torch.clamp(torch.floor(acc * self._chan(M, acc) + 0.5), lo, hi))
            s_in = s_out

    @torch.no_grad()
    def int_layers(self):
        """The integer parameters the hardware holds: a list of dicts (``weight``, ``bias``,
        optionally ``requant``) as :func:`ddnhw.ir.mlp_graph` takes them, plus real scales."""
        out = []
        s_in = torch.tensor(2.0 ** -self.in_frac, dtype=torch.float64)
        for k, layer in enumerate(self.layers):
            self.layers[k].check_pow2_range()
            w, b, s_acc, rq = self._plan(k, s_in)
            spec = {"name": layer.name, "weight": w.round().long().numpy(),
                    "bias": b.round().long().numpy(), "scale": s_acc.numpy().copy()}
            if rq is not None:
                m, sh, lo, hi, s_out, _ = rq
                act = self.acts[k]
                spec["requant"] = {"multiplier": m.round().long().numpy(),
                                   "shift": sh.round().long().numpy(), "lo": lo, "hi": hi,
                                   "scale": float(s_out)}
                if act.spec.realize == "mult" and act.spec.kind == "relu":
                    spec["requant"]["multiplier_bits"] = int(
                        max(int(v).bit_length() for v in spec["requant"]["multiplier"]))
                s_in = s_out
            out.append(spec)
        return out

    def int_forward(self, x_int):
        """Integer forward on integer input codes (int64): what the hardware computes."""
        h = np.asarray(x_int, dtype=np.int64)
        for spec in self.int_layers():
            h = h @ spec["weight"].T + spec["bias"]
            rq = spec.get("requant")
            if rq is not None:
                h = requantize(h, rq["multiplier"], rq["shift"], rq["lo"], rq["hi"])
        return h

    def describe(self):
        return {"weights": [asdict(l.spec) for l in self.layers],
                "acts": [asdict(a.spec) for a in self.acts]}


def _frac_of(scale) -> int:
    """Nearest power-of-two fraction of a (possibly non-power-of-two) scale."""
    return int(round(-math.log2(float(scale))))


def ir_layers(model: SchemeMLP):
    """``(layers, scales)``: one IR layer dict per MAC layer of a calibrated scheme model
    (``name``, ``weight`` (out, in), ``bias``, ``weight_frac``, ``requant``) and the exact real
    scales of its tensors. Tensor types carry the nearest power-of-two binary point."""
    for layer in model.layers:
        for name, arr in (("weight", layer.weight), ("bias", layer.bias)):
            if not np.all(np.isfinite(arr.detach().numpy())):
                raise DdnhwError(f"layer {layer.name}: {name} contains NaN or Inf")
    layers, scales = [], {"x": 2.0 ** -model.in_frac}
    frac = model.in_frac
    for k, spec in enumerate(model.int_layers()):
        sc = spec.pop("scale")
        ir = {"name": spec["name"], "weight": spec["weight"], "bias": spec["bias"],
              "weight_frac": _frac_of(float(sc[0])) - frac}
        scales[f"{spec['name']}_acc"] = [float(v) for v in sc]
        rq = spec.get("requant")
        if rq is not None:
            act = model.acts[k]
            s_out = rq.pop("scale")
            frac = _frac_of(s_out)
            rq["out_type"] = IntType(act.spec.kind == "bipolar", act.spec.bits, frac)
            ir["requant"] = rq
            scales[f"{spec['name']}_act"] = s_out
        layers.append(ir)
    return layers, scales


def set_multiplier_bits(graph: Graph, layers) -> Graph:
    """State each requant node's ``multiplier_bits`` (learned scales realized as integer
    multipliers) as the node attribute."""
    for spec in layers:
        mb = spec.get("requant", {}).get("multiplier_bits")
        if mb is not None:
            graph.node(f"{spec['name']}_rq").attrs["multiplier_bits"] = int(mb)
    return graph


def export_scheme_mlp(model: SchemeMLP, meta=None) -> Graph:
    """The IR graph of a calibrated :class:`SchemeMLP`. Tensor types carry the nearest
    power-of-two binary point; ``meta["tensor_scales"]`` holds the exact real scales."""
    layers, scales = ir_layers(model)
    info = {"kind": "mlp", "sizes": list(model.sizes), "in_bits": model.in_bits,
            "schemes": model.describe(), "tensor_scales": scales}
    info.update(meta or {})
    g = mlp_graph(IntType(False, model.in_bits, model.in_frac), layers, meta=info)
    return set_multiplier_bits(g, layers)
