"""Shared argument checks and IntType -> Amaranth shape mapping (no IR import needed)."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Shape, Signal, signed, unsigned


def check_int_type(name, t):
    """``t`` must look like :class:`ddnhw.ir.IntType` (``signed``, ``bits``, ``min``, ``max``)."""
    if not all(hasattr(t, a) for a in ("signed", "bits", "min", "max", "contains")):
        raise TypeError(f"{name} must be an IntType, not {t!r}")


def int_shape(t):
    return signed(t.bits) if t.signed else unsigned(t.bits)


def shape_for(lo, hi):
    """The narrowest Amaranth shape holding every integer in [lo, hi] (a signed one may be
    1 bit wide, unlike ``IntType.for_range``)."""
    lo, hi = int(lo), int(hi)
    if lo >= 0:
        return unsigned(max(1, hi.bit_length()))
    return signed(max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1)


def check_pos_int(name, v, lo=1):
    """``v`` as an int; it must be an integer (not a bool) >= ``lo``."""
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < lo:
        raise ValueError(f"{name} must be an int >= {lo}, not {v!r}")
    return int(v)


def check_regs_every(regs_every):
    check_pos_int("regs_every", regs_every)


def check_bias(bias, n_out):
    """``bias`` as int64; it must be an integer array of shape ``(n_out,)``."""
    b = np.asarray(bias)
    if b.shape != (n_out,) or b.dtype.kind not in "iu":
        raise ValueError(f"bias must be an integer array of shape ({n_out},), got "
                         f"{b.dtype} shape {b.shape}")
    return b.astype(np.int64)


def check_weight_bias(weight, bias):
    """``(weight, bias)`` as int64: a non-empty 2-D integer (out, in) array and its bias."""
    w = np.asarray(weight)
    if w.ndim != 2 or w.dtype.kind not in "iu" or w.size == 0:
        raise ValueError(f"weight must be a non-empty 2-D integer array, got {w.dtype} "
                         f"shape {w.shape}")
    return w.astype(np.int64), check_bias(bias, w.shape[0])


def stall_pipeline(m, i, o, latency):
    """The stall scheme of fixed-latency blocks: one clock enable ``ce = ~o.valid | o.ready``
    (also ``i.ready``) advances every register, and a ``latency``-stage shift register carries
    ``i.valid`` to ``o.valid``. Returns ``ce``."""
    ce = Signal()
    m.d.comb += [ce.eq(~o.valid | o.ready), i.ready.eq(ce)]
    valid = Signal(latency)
    with m.If(ce):
        m.d.sync += valid.eq(Cat(i.valid, valid[:-1]))
    m.d.comb += o.valid.eq(valid[-1])
    return ce


class PipelineModel:
    """Cycle model (:class:`~ddnhw.hw.protocol.CycleModel`) of :func:`stall_pipeline` blocks
    and of registered one-stage blocks with ``i.ready == ~o.valid | o.ready``: a
    ``latency``-bit valid shift register advanced by ``ce = ~o.valid | o.ready``."""

    def __init__(self, latency):
        self.v = [0] * int(latency)

    def valid(self):
        return self.v[-1]

    def ready(self, out_ready):
        return (not self.v[-1]) or out_ready

    def step(self, fire_in, out_ready):
        if (not self.v[-1]) or out_ready:
            self.v = [int(fire_in)] + self.v[:-1]


def check_shape(name, shape):
    """``shape`` must be shape-castable (a ``Shape``, an int width, a layout)."""
    try:
        Shape.cast(shape)
    except TypeError as e:
        raise TypeError(f"{name} must be shape-castable, not {shape!r}") from e
    return shape
