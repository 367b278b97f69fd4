"""Quantizers with straight-through estimators (STE).

Rounding is round-half-up, ``floor(x + 0.5)``, exactly as ``ddnhw.fixedpoint`` defines it
(not ``torch.round``, which rounds half to even). All scales here are powers of two, so the
fake-quantized float forward and the integer forward agree exactly.
"""
from __future__ import annotations

import math

import torch

from ddnhw import DdnhwError

MIN_BITS, MAX_BITS = 2, 8


def check_bits(bits, what: str) -> int:
    if not isinstance(bits, int) or isinstance(bits, bool):
        raise DdnhwError(f"{what}: bit width must be an integer, not {bits!r}")
    if not MIN_BITS <= bits <= MAX_BITS:
        raise DdnhwError(f"{what}: bit width {bits} is not supported (use {MIN_BITS}..{MAX_BITS})")
    return bits


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.floor(x + 0.5)

    @staticmethod
    def backward(ctx, g):
        return g


def round_ste(x):
    """Round half up in the forward pass, identity gradient in the backward pass."""
    return _RoundSTE.apply(x)


def int_weight(w, e, bits):
    """The integers of ``fake_quant(w, -e, -qmax, qmax)``: ``clip(round(w / 2**e), +-qmax)``,
    ``qmax = 2**(bits-1) - 1``, int64; ``e`` (exponents) broadcasts against ``w``."""
    qmax = (1 << (bits - 1)) - 1
    return torch.clamp(torch.floor(w.double() / torch.pow(2.0, e.double()) + 0.5),
                       -qmax, qmax).long()


def int_round_shift(x, s):
    """``ddnhw.fixedpoint.round_shift`` on torch integer tensors: ``(x + half) >> s``,
    round half up, with ``half = 2**(s-1)`` (0 for ``s == 0``); ``s`` broadcasts against ``x``."""
    half = torch.where(s > 0, torch.ones_like(s) << torch.clamp(s - 1, min=0),
                       torch.zeros_like(s))
    return (x + half) >> s


def int_pow2_scale(t):
    """``(multiplier, shift)`` for scaling integers by ``2**t`` (``t`` an integer tensor):
    ``x * 2**t == int_round_shift(x * multiplier, shift)``, one of the two being trivial."""
    return (torch.where(t > 0, torch.ones_like(t) << torch.clamp(t, min=0), torch.ones_like(t)),
            torch.clamp(-t, min=0))


def fake_quant(x, frac, lo, hi):
    """``clip(round(x * 2**frac), lo, hi) * 2**-frac``; the gradient passes inside the range.

    ``frac`` is an int or a tensor broadcastable to ``x`` (per channel).
    """
    scale = torch.pow(2.0, torch.as_tensor(frac, dtype=x.dtype, device=x.device))
    q = round_ste(x * scale)
    # clamp with STE inside the range, zero gradient outside (as hardware saturates)
    q = torch.clamp(q, lo, hi)
    return q / scale


def pow2_weight_exponent(w: torch.Tensor, bits: int, per_channel: bool) -> torch.Tensor:
    """Exponent ``e`` (per output channel or per tensor) so that ``max|w| / 2**e <= 2**(bits-1)-1``.

    The weight's integer value is ``round(w / 2**e)``; the smallest such ``e`` keeps the most
    precision. All-zero channels get ``e = 0``.
    """
    qmax = (1 << (bits - 1)) - 1
    with torch.no_grad():
        amax = w.abs().amax(dim=1) if per_channel else w.abs().amax().reshape(1)
        zero = amax <= 0
        amax = torch.where(zero, torch.ones_like(amax), amax)
        e = torch.ceil(torch.log2(amax / qmax))
        # float rounding at the boundary: make sure the max really fits
        e = torch.where(torch.floor(amax / torch.pow(2.0, e) + 0.5) > qmax, e + 1, e)
        e = torch.where(zero, torch.zeros_like(e), e)
    return e if per_channel else e.expand(w.shape[0])


def pow2_act_frac(amax: float, bits: int) -> int:
    """Fraction bits for an unsigned activation whose largest kept value is ``amax``."""
    qmax = (1 << bits) - 1
    if not math.isfinite(amax) or amax <= 0:
        return 0
    return int(math.floor(math.log2(qmax / amax)))


def mse_weight_exponent(w: torch.Tensor, bits: int, per_channel: bool, extra=2) -> torch.Tensor:
    """The exponent per output channel (or per tensor) with the least squared error of
    ``clip(round(w / 2**e), +-qmax) * 2**e``: :func:`pow2_weight_exponent`'s (which holds the
    largest weight) or up to ``extra`` finer ones, which clip the largest weights."""
    qmax = (1 << (bits - 1)) - 1
    with torch.no_grad():
        rows = w.reshape(w.shape[0], -1) if per_channel else w.reshape(1, -1)
        e0 = pow2_weight_exponent(rows, bits, True)

        def err(e):
            s = torch.pow(2.0, e).unsqueeze(1)
            return ((torch.clamp(torch.floor(rows / s + 0.5), -qmax, qmax) * s - rows) ** 2).sum(1)
        best, best_err = e0.clone(), err(e0)
        for d in range(1, extra + 1):
            er = err(e0 - d)
            better = er < best_err
            best = torch.where(better, e0 - d, best)
            best_err = torch.where(better, er, best_err)
    return best


def freeze_weight_exponents(model, mse=False) -> None:
    """Fix the weight exponents of every layer of ``model`` that has them (``weight_exponent``)
    at their present values (``mse``: :func:`mse_weight_exponent`'s instead), for QAT: a
    channel's grid then no longer doubles when its largest weight drifts past a power of two
    (weights beyond the grid saturate, as in hardware). ``None`` unfreezes."""
    for m in model.modules():
        if hasattr(m, "weight_exponent") and hasattr(m, "w_bits"):
            m.frozen_exponent = None
            if mse is None:
                continue
            w = m.weight * m.mask if hasattr(m, "mask") else m.weight
            per_channel = getattr(m, "per_channel", True)
            e = (mse_weight_exponent(w.detach(), m.w_bits, per_channel) if mse
                 else m.weight_exponent())
            m.frozen_exponent = e.detach().clone()
