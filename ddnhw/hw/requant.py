"""Per-channel requantizer: integer multiply, round-half-up shift, clip. Registered."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data

from ddnhw.fixedpoint import ROUNDING_MODES, round_shift

from ._types import PipelineModel, check_int_type, int_shape, shape_for
from .protocol import BlockSpec, SpecComponent, cost_features

__all__ = ["Requantizer", "RequantizerSpec", "requant_channel", "requant_luts"]


def requant_channel(x, in_lo, in_hi, m, s, lo, hi, rounding="half_up"):
    """Combinational ``clip((x * m + 2**(s-1)) >> s, lo, hi)`` (s == 0: no rounding term);
    ``rounding``: any of ``ddnhw.fixedpoint.ROUNDING_MODES`` (default half up): the floor
    ``p >> s`` plus an increment bit formed from the dropped bits, the sign and the parity.

    ``x`` is an Amaranth value with range ``[in_lo, in_hi]``. Returns ``(value, (rlo, rhi))``
    where the value's range is exactly ``[rlo, rhi]``; clips that can never trigger are omitted.
    The rounding shift is ``(p >> s) + p[s-1]`` (an incrementer on the kept bits only); clips to
    ``[0, 2**k - 1]`` or ``[-2**k, 2**k - 1]`` test the sign and high bits instead of comparing.
    """
    m, s, lo, hi = int(m), int(s), int(lo), int(hi)
    plo, phi = sorted((in_lo * m, in_hi * m))
    tlo, thi = (int(v) for v in round_shift(np.array([plo, phi]), s, rounding))
    p = x if m == 1 else x * m
    if s >= len(p):              # sign- or zero-extend so that bits s-1 and s exist
        p = p + Const(0, signed(s + 2) if p.shape().signed else unsigned(s + 2))
    t = (p >> s) + _round_increment(p, s, rounding) if s > 0 else p
    rlo, rhi = min(max(tlo, lo), hi), max(min(thi, hi), lo)
    if tlo >= lo and thi <= hi:
        return t, (rlo, rhi)
    if thi < lo or tlo > hi:     # constant result
        c = lo if thi < lo else hi
        return Const(c, shape_for(c, c)), (c, c)
    shape = shape_for(tlo, thi)     # exactly t's range: truncating t to it is lossless
    tv = t[:shape.width].as_signed() if shape.signed else t[:shape.width]
    return _saturate(tv, tlo < lo, thi > hi, lo, hi), (rlo, rhi)


def _round_increment(p, s, rounding):
    """The bit added to the floor ``p >> s`` (s > 0) to round ``p / 2**s`` in ``rounding``
    (as :func:`ddnhw.fixedpoint.round_shift`)."""
    if rounding == "half_up":
        return p[s - 1]
    low_any = p[:s - 1].any() if s > 1 else Const(0, 1)
    above, tie = p[s - 1] & low_any, p[s - 1] & ~low_any
    nonzero = p[:s].any()
    neg = p[-1] if p.shape().signed else Const(0, 1)
    terms = {"floor": Const(0, 1), "ceil": nonzero, "zero": nonzero & neg,
             "away": nonzero & ~neg, "half_even": above | (tie & p[s]),
             "half_away": above | (tie & ~neg), "half_zero": above | (tie & neg)}
    if rounding not in terms:
        raise ValueError(f"rounding {rounding!r} is not one of {ROUNDING_MODES}")
    return terms[rounding]


def requant_luts(in_bits, m, s, out_bits) -> int:
    """Rough iCE40 logic cells of one :func:`requant_channel`: the product's kept bits (an
    incrementer) plus the saturation. Fitted on a 64-channel s12 -> u4 build (shifts 4..8)."""
    kept = max(in_bits + max(int(abs(int(m))).bit_length() - 1, 0) - int(s) + 1, 1)
    mul = 0 if abs(int(m)) & (abs(int(m)) - 1) == 0 else 2 * in_bits   # non-power-of-two m
    return int(kept + 4 * out_bits + mul)


def _saturate(t, under, over, lo, hi):
    """``clip(t, lo, hi)``; ``under``/``over``: whether ``t`` can be below ``lo``/above ``hi``.
    ``t``'s top bit is its sign when signed (its shape is its exact range's)."""
    k = hi.bit_length()
    signed = t.shape().signed
    if hi + 1 == 1 << k and (lo == 0 or (signed and lo == -(1 << k))) and len(t) > k:
        # power-of-two range: t is inside it exactly when its bits from k up are all zero
        # (lo == 0) or all equal to the sign (lo < 0)
        sign = t[-1] if signed else Const(0, 1)
        high = t[k:len(t) - 1] if signed else t[k:]
        high_any = high.any() if len(high) else Const(0, 1)
        if lo == 0:
            below, low = sign, t[:k]
        else:
            below, low = sign & ~high.all() if len(high) else Const(0, 1), t[:k + 1].as_signed()
        above = ~sign & high_any
    else:
        below, above, low = t < lo, t > hi, t
    if under and over:
        return Mux(below, lo, Mux(above, hi, low))
    if under:
        return Mux(below, lo, low)
    return Mux(above, hi, low)


class RequantizerSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`Requantizer`. ``idle_channels``: None, or
    per channel True where no logic is needed (the lowering knows: a constant input or an
    output nobody reads; synthesis removes that logic, so it has no multiplier to count)."""

    def __init__(self, multiplier, shift, lo, hi, in_type, out_type, idle_channels=None,
                 rounding="half_up"):
        check_int_type("in_type", in_type)
        check_int_type("out_type", out_type)
        mul = np.asarray(multiplier)
        sh = np.asarray(shift)
        if mul.ndim != 1 or mul.dtype.kind not in "iu" or mul.size == 0:
            raise ValueError(f"multiplier must be a non-empty 1-D integer array, got "
                             f"{mul.dtype} shape {mul.shape}")
        if sh.shape != mul.shape or sh.dtype.kind not in "iu":
            raise ValueError(f"shift must be an integer array of shape {mul.shape}, got "
                             f"{sh.dtype} shape {sh.shape}")
        if np.any(sh < 0) or np.any(sh > 62):
            raise ValueError(f"shift must be in 0..62, got {sh.tolist()}")
        lo, hi = int(lo), int(hi)
        if lo > hi:
            raise ValueError(f"clip range lo={lo} > hi={hi}")
        if rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding {rounding!r} is not one of {ROUNDING_MODES}")
        self.rounding = rounding
        self.multiplier = mul.astype(np.int64)
        self.shift = sh.astype(np.int64)
        self.lo, self.hi = lo, hi
        self.in_type, self.out_type = in_type, out_type
        self.channels = mul.size
        if idle_channels is not None:
            idle = np.asarray(idle_channels)
            if idle.shape != (self.channels,) or idle.dtype.kind not in "biu":
                raise ValueError(f"idle_channels must be a boolean array of shape "
                                 f"({self.channels},), got {idle.dtype} shape {idle.shape}")
            idle_channels = idle.astype(bool)
        self.idle_channels = idle_channels
        self.latency, self.ii = 1, 1
        self.constant = []       # per channel: the clip makes its result a constant
        for c in range(self.channels):
            v, (rlo, rhi) = self.channel(Const(0, int_shape(in_type)), c)
            if not out_type.contains(rlo, rhi):
                raise ValueError(f"out_type {out_type} cannot hold channel {c} range "
                                 f"[{rlo}, {rhi}]")
            self.constant.append(isinstance(v, Const))
        self.in_shape = data.ArrayLayout(int_shape(in_type), self.channels)
        self.out_shape = data.ArrayLayout(int_shape(out_type), self.channels)
        self.estimate = {"luts": sum(requant_luts(in_type.bits, mc, sc, out_type.bits)
                                     for mc, sc in zip(self.multiplier, self.shift)),
                         "ffs": int(self.channels * out_type.bits + 1)}

    def channel(self, x, c):
        """:func:`requant_channel` of the Amaranth value ``x`` (an input lane) for channel
        ``c``: ``(value, (lo, hi))``."""
        return requant_channel(x, self.in_type.min, self.in_type.max, self.multiplier[c],
                               self.shift[c], self.lo, self.hi, self.rounding)

    def cycle_model(self):
        return PipelineModel(1)

    def features(self):
        """Its channels' logic (the family's ``requant`` coefficient), the output register,
        and one constant multiplier per channel that has logic (not constant, not idle)."""
        idle = self.idle_channels
        live = [m for c, m in enumerate(self.multiplier)
                if not self.constant[c] and not (idle is not None and idle[c])]
        return cost_features(luts={"requant": self.estimate["luts"]},
                             ffs={"raw": self.estimate["ffs"]},
                             const_muls=[[(self.in_type.bits, m, self.in_type.signed)]
                                         for m in live])


class Requantizer(SpecComponent, spec=RequantizerSpec):
    """``o[c] = clip((i[c] * multiplier[c] + 2**(shift[c]-1)) >> shift[c], lo, hi)``.

    Rounding is round half up (towards +inf) through an arithmetic right shift; ``shift[c]
    == 0`` means no rounding term. Exactly ``ddnhw.fixedpoint.requantize``.
    ``idle_channels``: see :class:`RequantizerSpec` (estimate only; the logic is the same).

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(in shape, C)))``, ``o`` is
    ``Out(stream.Signature(ArrayLayout(out shape, C)))``. ``latency == 1``, ``ii == 1``;
    tolerates arbitrary idle cycles and backpressure (``i.ready == ~o.valid | o.ready``).
    """

    def elaborate(self, platform):
        m = Module()
        ce = Signal()
        m.d.comb += [ce.eq(~self.o.valid | self.o.ready), self.i.ready.eq(ce)]
        with m.If(ce):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for c in range(self.channels):
                v, _ = self.spec.channel(self.i.payload[c], c)
                m.d.sync += self.o.payload[c].eq(v)
        return m
