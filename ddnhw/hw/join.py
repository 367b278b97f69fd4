"""Stream fork (broadcast to several consumers) and aligned elementwise add (join of two
streams): the two ends of a residual connection."""
from __future__ import annotations

from amaranth.hdl import Cat, Module, Signal
from amaranth.lib import data, stream
from amaranth.lib.wiring import In, Out

from ._types import check_int_type, check_pos_int, check_shape, int_shape
from .protocol import BlockSpec, SpecComponent

__all__ = ["Fork", "ForkSpec", "ForkModel", "AlignedAdd", "AlignedAddSpec", "AlignedAddModel"]


class ForkModel:
    """Cycle model of :class:`Fork` (one input, ``n`` outputs): ``valid(in_valid)`` -> the
    outputs' valids (they follow the input's valid combinationally), ``ready(out_ready)`` ->
    the input's ready given the ``n`` consumers' readies, ``step(fire_in, out_ready,
    in_valid)``."""

    def __init__(self, n):
        self.taken = [0] * n

    def valid(self, in_valid=True):
        return tuple(int(bool(in_valid) and not t) for t in self.taken)

    def ready(self, out_ready):
        return all(t or r for t, r in zip(self.taken, out_ready))

    def step(self, fire_in, out_ready, in_valid=True):
        if in_valid:
            if fire_in:
                self.taken = [0] * len(self.taken)
            else:
                self.taken = [int(bool(v and r) or t) for v, r, t in
                              zip(self.valid(in_valid), out_ready, self.taken)]


class ForkSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`Fork`; ``out_shape`` is a tuple of ``n``
    shapes (one per output)."""

    def __init__(self, shape, n=2):
        check_shape("shape", shape)
        if not isinstance(n, int) or isinstance(n, bool) or n < 2:
            raise ValueError(f"n must be an int >= 2, not {n!r}")
        self.shape, self.n = shape, n
        self.latency, self.ii = 0, 1
        self.in_shape, self.out_shape = shape, (shape,) * n
        self.estimate = {"luts": 2 * n + 1, "ffs": n, "dsps": 0, "brams": 0}

    def ports(self):
        ports = {"i": In(stream.Signature(self.shape))}
        ports.update({f"o{k}": Out(stream.Signature(self.shape)) for k in range(self.n)})
        return ports

    def cycle_model(self):
        return ForkModel(self.n)



class Fork(SpecComponent, spec=ForkSpec):
    """Broadcast of one stream to ``n`` consumers: every input beat reaches every output.

    Ports: ``i`` ``In(stream.Signature(shape))``; ``o0`` .. ``o{n-1}``
    ``Out(stream.Signature(shape))``, payload = ``i.payload``.

    An input beat is transferred (``i.ready``) in the cycle in which the last consumer takes it;
    a register per output remembers which consumers already took the current beat, so
    ``o<k>.valid = i.valid & ~taken[k]`` depends on no ready, and a consumer that took the beat
    does not see it twice. Consumers may take the beat in different cycles under arbitrary
    backpressure. ``latency == 0`` (no storage), ``ii == 1``.
    """

    @property
    def outputs(self):
        return [getattr(self, f"o{k}") for k in range(self.n)]

    def elaborate(self, platform):
        m = Module()
        taken = Signal(self.n)
        now = Signal(self.n)      # taken before or in this cycle
        for k, o in enumerate(self.outputs):
            m.d.comb += [o.payload.eq(self.i.payload), o.valid.eq(self.i.valid & ~taken[k]),
                         now[k].eq(taken[k] | o.ready)]
        m.d.comb += self.i.ready.eq(now.all())
        with m.If(self.i.valid):
            m.d.sync += taken.eq(Cat(*(o.valid & o.ready | taken[k]
                                       for k, o in enumerate(self.outputs))))
            with m.If(self.i.ready):
                m.d.sync += taken.eq(0)
        return m


class AlignedAddModel:
    """Cycle model of :class:`AlignedAdd` (two inputs): ``valid()``, ``ready(out_ready,
    in_valid)`` -> the two inputs' readies (each needs the other input's valid),
    ``step(fire_in, out_ready)`` with ``fire_in`` the two inputs' handshakes (they fire
    together)."""

    def __init__(self):
        self.ov = 0

    def valid(self):
        return self.ov

    def ready(self, out_ready, in_valid=(True, True)):
        ce = (not self.ov) or out_ready
        return bool(ce and in_valid[1]), bool(ce and in_valid[0])

    def step(self, fire_in, out_ready):
        if (not self.ov) or out_ready:
            self.ov = int(bool(fire_in[0] and fire_in[1]))


class AlignedAddSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`AlignedAdd`; ``in_shape`` is the pair of the
    inputs' shapes."""

    def __init__(self, lanes, in0_type, in1_type, out_type, shift0=0, shift1=0):
        check_pos_int("lanes", lanes)
        for name, t in (("in0_type", in0_type), ("in1_type", in1_type),
                        ("out_type", out_type)):
            check_int_type(name, t)
        for name, s in (("shift0", shift0), ("shift1", shift1)):
            if not isinstance(s, int) or isinstance(s, bool) or not 0 <= s <= 62:
                raise ValueError(f"{name} must be an int in 0..62, not {s!r}")
        lo = (in0_type.min << shift0) + (in1_type.min << shift1)
        hi = (in0_type.max << shift0) + (in1_type.max << shift1)
        if not out_type.contains(lo, hi):
            raise ValueError(f"out_type {out_type} cannot hold the sum's range [{lo}, {hi}]")
        self.lanes, self.shift0, self.shift1 = lanes, shift0, shift1
        self.in0_type, self.in1_type, self.out_type = in0_type, in1_type, out_type
        self.latency, self.ii = 1, 1
        self.in_shape = (data.ArrayLayout(int_shape(in0_type), lanes),
                         data.ArrayLayout(int_shape(in1_type), lanes))
        self.out_shape = data.ArrayLayout(int_shape(out_type), lanes)
        self.estimate = {"luts": int(lanes * out_type.bits + 2),
                         "ffs": int(lanes * out_type.bits + 1), "dsps": 0, "brams": 0}

    def ports(self):
        return {"i0": In(stream.Signature(self.in_shape[0])),
                "i1": In(stream.Signature(self.in_shape[1])),
                "o": Out(stream.Signature(self.out_shape))}

    def cycle_model(self):
        return AlignedAddModel()



class AlignedAdd(SpecComponent, spec=AlignedAddSpec):
    """Elementwise ``y = (x0 << shift0) + (x1 << shift1)`` of two streams, one beat of each per
    output beat (the IR ``add``: the shifts align the binary points; exact, no clipping).

    Parameters: ``lanes``; ``in0_type``, ``in1_type``, ``out_type`` (:class:`ddnhw.ir.IntType`;
    ``out_type`` must hold the sum's range); ``shift0``, ``shift1`` (ints >= 0).

    Ports: ``i0``, ``i1`` ``In(stream.Signature(ArrayLayout(elem, lanes)))``; ``o``
    ``Out(stream.Signature(ArrayLayout(out elem, lanes)))``. The two inputs are consumed
    together: ``i0.ready = ce & i1.valid`` and ``i1.ready = ce & i0.valid`` with ``ce = ~o.valid
    | o.ready``; the output is registered. ``latency == 1``, ``ii == 1``.
    """

    def elaborate(self, platform):
        m = Module()
        ce = Signal()
        m.d.comb += [ce.eq(~self.o.valid | self.o.ready),
                     self.i0.ready.eq(ce & self.i1.valid),
                     self.i1.ready.eq(ce & self.i0.valid)]
        with m.If(ce):
            m.d.sync += self.o.valid.eq(self.i0.valid & self.i1.valid)
            for c in range(self.lanes):
                m.d.sync += self.o.payload[c].eq((self.i0.payload[c] << self.shift0)
                                                 + (self.i1.payload[c] << self.shift1))
        return m
