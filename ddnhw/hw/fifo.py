"""Stream FIFO between blocks: ``amaranth.lib.fifo.SyncFIFOBuffered`` behind stream ports."""
from __future__ import annotations

from amaranth.hdl import Module, Shape
from amaranth.lib import fifo

from ._types import check_shape
from .protocol import BlockSpec, SpecComponent

__all__ = ["StreamFIFO", "StreamFIFOSpec", "FIFOModel"]


class FIFOModel:
    """Cycle model of :class:`StreamFIFO` (``SyncFIFOBuffered``: an inner FIFO of ``depth -
    1`` beats and the output register)."""

    def __init__(self, depth):
        self.inner_depth, self.level, self.r_rdy = depth - 1, 0, 0

    def valid(self):
        return self.r_rdy

    def ready(self, out_ready):
        return self.level != self.inner_depth

    def step(self, fire_in, out_ready):
        read = self.level != 0 and ((not self.r_rdy) or out_ready)
        self.level += int(fire_in) - int(read)
        if read:
            self.r_rdy = 1
        elif out_ready:
            self.r_rdy = 0


class StreamFIFOSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`StreamFIFO`."""

    def __init__(self, shape, depth):
        check_shape("shape", shape)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth < 2:
            raise ValueError(f"depth must be an int >= 2, not {depth!r}")
        self.shape, self.depth, self.width = shape, depth, Shape.cast(shape).width
        self.latency, self.ii = 2, (1 if depth >= 3 else 2)
        self.in_shape = self.out_shape = shape
        ptr = max(1, (depth - 1).bit_length())
        width = self.width
        self.estimate = {"luts": int(width * (1 + (depth > 2)) + 4 * ptr + 8),
                         "ffs": int(width * depth + 3 * ptr + 2), "dsps": 0, "brams": 0}

    def cycle_model(self):
        return FIFOModel(self.depth)



class StreamFIFO(SpecComponent, spec=StreamFIFOSpec):
    """First in, first out queue of ``depth`` stream beats of ``shape``.

    Ports: ``i`` is ``In(stream.Signature(shape))``, ``o`` is ``Out(stream.Signature(shape))``;
    payloads come out unchanged and in order. ``o.valid`` and ``i.ready`` are registered state
    (neither depends combinationally on the other side's valid/ready).

    Timing: ``latency == 2`` cycles from a handshake on ``i`` into an empty FIFO to ``o.valid``
    (the memory read plus its output register); ``ii == 1`` with ``depth >= 3`` (one beat per
    cycle in and out), ``ii == 2`` with ``depth == 2``. ``depth`` (>= 2) beats fit: the last one
    in the output register, the others in a ``lib.memory.Memory`` of ``depth - 1`` words.

    Attributes (from ``spec``, a :class:`StreamFIFOSpec`): ``shape``, ``depth``, ``width``
    (payload bits), ``latency``, ``ii``, ``estimate`` (``luts``/``ffs``/``dsps``/``brams``:
    storage in flip-flops, uncalibrated).
    """

    def elaborate(self, platform):
        m = Module()
        m.submodules.fifo = q = fifo.SyncFIFOBuffered(width=self.width, depth=self.depth)
        m.d.comb += [
            q.w_data.eq(self.i.payload.as_value() if hasattr(self.i.payload, "as_value")
                        else self.i.payload),
            q.w_en.eq(self.i.valid),
            self.i.ready.eq(q.w_rdy),
            self.o.payload.eq(q.r_data),
            self.o.valid.eq(q.r_rdy),
            q.r_en.eq(self.o.ready),
        ]
        return m
