"""Per-channel requantizer: integer multiply, round-half-up shift, clip. Registered."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from ._types import check_int_type, int_shape

__all__ = ["Requantizer", "requant_channel"]


def _shape_for(lo, hi):
    if lo >= 0:
        return unsigned(max(1, int(hi).bit_length()))
    return signed(max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1)


def requant_channel(x, in_lo, in_hi, m, s, lo, hi):
    """Combinational ``clip((x * m + 2**(s-1)) >> s, lo, hi)`` (s == 0: no rounding term).

    ``x`` is an Amaranth value with range ``[in_lo, in_hi]``. Returns ``(value, (rlo, rhi))``
    where the value's range is exactly ``[rlo, rhi]``; clips that can never trigger are omitted.
    """
    m, s, lo, hi = int(m), int(s), int(lo), int(hi)
    plo, phi = sorted((in_lo * m, in_hi * m))
    half = (1 << (s - 1)) if s > 0 else 0
    tlo, thi = (plo + half) >> s, (phi + half) >> s
    if m == 1 and half == 0:
        t = x
    else:
        t = ((x * m) + half) >> s if half else (x * m) >> s
    tv = t
    rlo, rhi = min(max(tlo, lo), hi), max(min(thi, hi), lo)
    if tlo >= lo and thi <= hi:
        return tv, (rlo, rhi)
    if thi < lo or tlo > hi:     # constant result
        c = lo if thi < lo else hi
        return Const(c, _shape_for(c, c)), (c, c)
    if tlo < lo and thi > hi:
        return _mux3(tv, lo, hi), (rlo, rhi)
    if tlo < lo:
        return _mux_lo(tv, lo), (rlo, rhi)
    return _mux_hi(tv, hi), (rlo, rhi)


def _mux3(v, lo, hi):
    return Mux(v < lo, lo, Mux(v > hi, hi, v))


def _mux_lo(v, lo):
    return Mux(v < lo, lo, v)


def _mux_hi(v, hi):
    return Mux(v > hi, hi, v)


class Requantizer(wiring.Component):
    """``o[c] = clip((i[c] * multiplier[c] + 2**(shift[c]-1)) >> shift[c], lo, hi)``.

    Rounding is round half up (towards +inf) through an arithmetic right shift; ``shift[c]
    == 0`` means no rounding term. Exactly ``ddnhw.golden.fixedpoint.requantize``.

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(in shape, C)))``, ``o`` is
    ``Out(stream.Signature(ArrayLayout(out shape, C)))``. ``latency == 1``, ``ii == 1``;
    tolerates arbitrary idle cycles and backpressure (``i.ready == ~o.valid | o.ready``).
    """

    def __init__(self, multiplier, shift, lo, hi, in_type, out_type):
        try:
            self._setup(multiplier, shift, lo, hi, in_type, out_type)
        except Exception:
            self._MustUse__silence = True  # a rejected block is not an unused one
            raise

    def _setup(self, multiplier, shift, lo, hi, in_type, out_type):
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
        self.multiplier = mul.astype(np.int64)
        self.shift = sh.astype(np.int64)
        self.lo, self.hi = lo, hi
        self.in_type, self.out_type = in_type, out_type
        self.channels = mul.size
        self.latency, self.ii = 1, 1
        for c in range(self.channels):
            _, (rlo, rhi) = self._range(c)
            if not out_type.contains(rlo, rhi):
                raise ValueError(f"out_type {out_type} cannot hold channel {c} range "
                                 f"[{rlo}, {rhi}]")
        w = max(in_type.bits + int(np.abs(self.multiplier).max()).bit_length(), 1)
        self.estimate = {"luts": int(self.channels * (2 * w + 2 * out_type.bits)),
                         "ffs": int(self.channels * out_type.bits + 1)}
        super().__init__({
            "i": In(stream.Signature(data.ArrayLayout(int_shape(in_type), self.channels))),
            "o": Out(stream.Signature(data.ArrayLayout(int_shape(out_type), self.channels))),
        })

    def _range(self, c):
        x = Const(0, int_shape(self.in_type))
        return requant_channel(x, self.in_type.min, self.in_type.max, self.multiplier[c],
                               self.shift[c], self.lo, self.hi)

    def elaborate(self, platform):
        m = Module()
        ce = Signal()
        m.d.comb += [ce.eq(~self.o.valid | self.o.ready), self.i.ready.eq(ce)]
        with m.If(ce):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for c in range(self.channels):
                v, _ = requant_channel(self.i.payload[c], self.in_type.min, self.in_type.max,
                                       self.multiplier[c], self.shift[c], self.lo, self.hi)
                m.d.sync += self.o.payload[c].eq(v)
        return m
