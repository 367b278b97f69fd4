"""Image streaming blocks: sliding-window generator (line buffer), window pooling, collector,
and a chain of blocks behind one stream pair.

Images stream as pixels in raster order (row by row, left to right), one pixel per beat:
``ArrayLayout(elem, C)``, lane ``c`` = channel ``c`` (NHWC). A window beat has ``KH * KW * C``
lanes in ``(ky, kx, c)`` order, which is the row-major flattening of an NHWC filter: a window
stream feeds :class:`~ddnhw.hw.Dense` / :class:`~ddnhw.hw.FoldedDense` directly.
"""
from __future__ import annotations

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, wiring

from ._types import PipelineModel, check_int_type, check_pos_int, int_shape
from .protocol import BlockSpec, ChainModel, SpecComponent, cost_features, spec_of

__all__ = ["SlidingWindow", "SlidingWindowSpec", "SlidingWindowModel", "WindowPool",
           "WindowPoolSpec", "Collector", "CollectorSpec", "CollectorModel", "Chain",
           "ChainSpec"]


class SlidingWindowModel:
    """Cycle model of :class:`SlidingWindow` (its counters, no pixels)."""

    def __init__(self, spec):
        self.H, self.W, self.KH = spec.height, spec.width, spec.kh
        self.S, self.P, self.OH, self.OW = spec.stride, spec.padding, spec.out_h, spec.out_w
        self.in_x = self.in_y = self.in_done = 0
        self.out_x = self.out_y = self.out_done = self.ov = 0
        self.y0 = -self.P

    def valid(self):
        return self.ov

    def ready(self, out_ready):
        return (not self.in_done) and (self.out_done or self.in_y < self.y0 + self.KH)

    def step(self, fire_in, out_ready):
        rows = self.in_done or self.in_y >= self.y0 + self.KH
        emit = (not self.out_done) and rows and ((not self.ov) or out_ready)
        both_done = self.in_done and self.out_done
        if fire_in:
            if self.in_x == self.W - 1:
                self.in_x = 0
                if self.in_y == self.H - 1:
                    self.in_y, self.in_done = 0, 1
                else:
                    self.in_y += 1
            else:
                self.in_x += 1
        if emit:
            self.ov = 1
            if self.out_x == self.OW - 1:
                self.out_x = 0
                if self.out_y == self.OH - 1:
                    self.out_done = 1
                else:
                    self.out_y += 1
                    self.y0 += self.S
            else:
                self.out_x += 1
        elif out_ready:
            self.ov = 0
        if both_done:
            self.in_done = self.out_done = self.out_y = 0
            self.y0 = -self.P


class SlidingWindowSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`SlidingWindow`: also ``out_h``, ``out_w``,
    ``beats_in``, ``beats_out`` (beats per image), ``lanes``."""

    def __init__(self, height, width, channels, elem_type, kh, kw, stride=1, padding=0):
        for name, v in (("height", height), ("width", width), ("channels", channels),
                        ("kh", kh), ("kw", kw), ("stride", stride)):
            check_pos_int(name, v)
        check_pos_int("padding", padding, 0)
        check_int_type("elem_type", elem_type)
        if padding >= min(kh, kw):
            raise ValueError(f"padding {padding} must be smaller than the kernel {kh}x{kw}")
        self.height, self.width, self.channels = height, width, channels
        self.kh, self.kw, self.stride, self.padding = kh, kw, stride, padding
        self.elem_type = elem_type
        self.out_h = (height + 2 * padding - kh) // stride + 1
        self.out_w = (width + 2 * padding - kw) // stride + 1
        if self.out_h < 1 or self.out_w < 1:
            raise ValueError(f"kernel {kh}x{kw} does not fit the image {height}x{width} "
                             f"(padding {padding})")
        self.beats_in, self.beats_out = height * width, self.out_h * self.out_w
        self.latency = min(kh - padding, height) * width + 1
        self.ii = self.beats_in + self.beats_out + 1
        self.lanes = kh * kw * channels
        bits = elem_type.bits
        px = width * kh * channels * bits
        self.estimate = {"luts": int(self.lanes * bits * (width * kh // 2 + 2) + 40),
                         "ffs": int(px + self.lanes * bits + 40), "dsps": 0, "brams": 0}
        shape = int_shape(elem_type)
        self.in_shape = data.ArrayLayout(shape, channels)
        self.out_shape = data.ArrayLayout(shape, self.lanes)

    def cycle_model(self):
        return SlidingWindowModel(self)



class SlidingWindow(SpecComponent, spec=SlidingWindowSpec):
    """Windows of ``kh x kw`` pixels at every output position of a strided, zero-padded image.

    Parameters: ``height``, ``width``, ``channels`` of the input image; ``elem_type``
    (:class:`ddnhw.ir.IntType` of a channel value); ``kh``, ``kw``; ``stride``; ``padding``
    (zeros on every side, ``< min(kh, kw)``).

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(elem, channels)))``, one pixel per beat in
    raster order, ``height * width`` beats per image; ``o`` is
    ``Out(stream.Signature(ArrayLayout(elem, kh * kw * channels)))``, one window per output
    position in raster order, ``out_h * out_w`` beats per image; lanes ``(ky, kx, c)``, the
    value of input pixel ``(oy * stride - padding + ky, ox * stride - padding + kx)`` or 0
    outside the image. Images follow each other without gaps.

    Storage: ``kh`` image rows of pixels in registers (a line buffer); a new row overwrites the
    oldest one once no pending window needs it. Input is stalled while a window that needs the
    row being overwritten is pending, so ``ii`` (cycles per image at full rate) is at most
    ``height * width + out_h * out_w + 1``; ``latency`` is the cycles from an image's first
    pixel to its first window at full rate. Arbitrary idle cycles and backpressure are tolerated.
    """

    def elaborate(self, platform):
        m = Module()
        H, W, KH, KW, S, P = (self.height, self.width, self.kh, self.kw, self.stride,
                              self.padding)
        pix = self.channels * self.elem_type.bits
        cw = max(H, W, KH).bit_length() + 2     # signed coordinates, room for -P and +K
        buf = [[Signal(pix, name=f"buf_{r}_{x}", reset_less=True) for x in range(W)]
               for r in range(KH)]
        rows = Array(Array(row) for row in buf)

        in_x = Signal(range(W))
        in_y = Signal(signed(cw))
        in_slot = Signal(range(KH))
        in_done = Signal()
        out_x = Signal(range(self.out_w))
        out_y = Signal(range(self.out_h))
        x0 = Signal(signed(cw), init=-P)
        y0 = Signal(signed(cw), init=-P)
        oslot = Signal(range(KH), init=(-P) % KH)
        out_done = Signal()

        accept = Signal()
        m.d.comb += [
            self.i.ready.eq(~in_done & (out_done | (in_y < y0 + KH))),
            accept.eq(self.i.valid & self.i.ready),
        ]
        with m.If(accept):
            m.d.sync += rows[in_slot][in_x].eq(self.i.payload.as_value())
            with m.If(in_x == W - 1):
                m.d.sync += in_x.eq(0)
                with m.If(in_y == H - 1):
                    m.d.sync += [in_y.eq(0), in_slot.eq(0), in_done.eq(1)]
                with m.Else():
                    m.d.sync += [in_y.eq(in_y + 1),
                                 in_slot.eq(Mux(in_slot == KH - 1, 0, in_slot + 1))]
            with m.Else():
                m.d.sync += in_x.eq(in_x + 1)

        # the window at (x0, y0), from the registers (a row being written is never read)
        window = []
        for ky in range(KH):
            slot = Signal(range(KH), name=f"slot{ky}")
            t = oslot + ky
            m.d.comb += slot.eq(Mux(t >= KH, t - KH, t) if ky else oslot)
            row_in = (y0 + ky >= 0) & (y0 + ky < H)
            for kx in range(KW):
                col = Signal(signed(cw), name=f"col{kx}_{ky}")
                m.d.comb += col.eq(x0 + kx)
                inside = row_in & (col >= 0) & (col < W)
                window.append(Mux(inside, rows[slot][col.as_unsigned()[:max(1, (W - 1)
                                                                           .bit_length())]],
                                  Const(0, pix)))

        ready_rows = in_done | (in_y >= y0 + KH)
        emit = Signal()
        m.d.comb += emit.eq(~out_done & ready_rows & (~self.o.valid | self.o.ready))
        with m.If(emit):
            m.d.sync += [self.o.valid.eq(1), self.o.payload.as_value().eq(Cat(*window))]
            with m.If(out_x == self.out_w - 1):
                m.d.sync += [out_x.eq(0), x0.eq(-P)]
                with m.If(out_y == self.out_h - 1):
                    m.d.sync += out_done.eq(1)
                with m.Else():
                    t = oslot + S % KH
                    m.d.sync += [out_y.eq(out_y + 1), y0.eq(y0 + S),
                                 oslot.eq(Mux(t >= KH, t - KH, t))]
            with m.Else():
                m.d.sync += [out_x.eq(out_x + 1), x0.eq(x0 + S)]
        with m.Elif(self.o.ready):
            m.d.sync += self.o.valid.eq(0)

        with m.If(in_done & out_done):       # both sides finished the image: next image
            m.d.sync += [in_done.eq(0), out_done.eq(0), out_y.eq(0), y0.eq(-P),
                         oslot.eq((-P) % KH)]
        return m


class WindowPoolSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`WindowPool`."""

    def __init__(self, kind, size, channels, elem_type):
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', not {kind!r}")
        check_pos_int("size", size)
        check_pos_int("channels", channels)
        check_int_type("elem_type", elem_type)
        if kind == "avg" and size & (size - 1):
            raise ValueError(f"avg pooling needs a power-of-two window size, not {size}")
        self.kind, self.size, self.channels, self.elem_type = kind, size, channels, elem_type
        self.latency, self.ii = 1, 1
        b = elem_type.bits
        self.estimate = {"luts": int(channels * (size - 1) * (2 * b if kind == "max" else b + 2)),
                         "ffs": int(channels * b + 1), "dsps": 0, "brams": 0}
        shape = int_shape(elem_type)
        self.in_shape = data.ArrayLayout(shape, size * channels)
        self.out_shape = data.ArrayLayout(shape, channels)

    def cycle_model(self):
        return PipelineModel(1)



class WindowPool(SpecComponent, spec=WindowPoolSpec):
    """Per-channel reduction of a window beat (lanes ``(k, c)``, ``k`` over ``size`` window
    positions): ``"max"``, or ``"avg"``: ``(sum + 2**(s-1)) >> s`` with ``s = log2(size)``
    (``size`` a power of two; round half up, as ``ddnhw.fixedpoint.round_shift``).

    Ports: ``i`` ``ArrayLayout(elem, size * channels)``, ``o`` ``ArrayLayout(elem, channels)``.
    ``latency == 1``, ``ii == 1``; ``i.ready == ~o.valid | o.ready``.
    """

    def elaborate(self, platform):
        m = Module()
        ce = Signal()
        m.d.comb += [ce.eq(~self.o.valid | self.o.ready), self.i.ready.eq(ce)]
        C, n = self.channels, self.size
        shift = n.bit_length() - 1
        with m.If(ce):
            m.d.sync += self.o.valid.eq(self.i.valid)
            for c in range(C):
                vals = [self.i.payload[k * C + c] for k in range(n)]
                while len(vals) > 1:       # balanced tree
                    nxt = []
                    for a, b in zip(vals[::2], vals[1::2]):
                        nxt.append(Mux(a > b, a, b) if self.kind == "max" else a + b)
                    if len(vals) % 2:
                        nxt.append(vals[-1])
                    vals = nxt
                v = vals[0]
                if self.kind == "avg" and shift:
                    v = (v + (1 << (shift - 1))) >> shift
                m.d.sync += self.o.payload[c].eq(v)
        return m


class CollectorModel:
    """Cycle model of :class:`Collector`."""

    def __init__(self, beats):
        self.beats, self.count, self.ov = beats, 0, 0

    def valid(self):
        return self.ov

    def ready(self, out_ready):
        return not self.ov

    def step(self, fire_in, out_ready):
        if self.ov and out_ready:
            self.ov = 0
        if fire_in:
            if self.count == self.beats - 1:
                self.count, self.ov = 0, 1
            else:
                self.count += 1


class CollectorSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`Collector`."""

    def __init__(self, beats, lanes, elem_type):
        check_pos_int("beats", beats)
        check_pos_int("lanes", lanes)
        check_int_type("elem_type", elem_type)
        self.beats, self.lanes, self.elem_type = beats, lanes, elem_type
        self.latency, self.ii = 1, beats + 1
        self.estimate = {"luts": 8, "ffs": int(beats * lanes * elem_type.bits + 8), "dsps": 0,
                         "brams": 0}
        shape = int_shape(elem_type)
        self.in_shape = data.ArrayLayout(shape, lanes)
        self.out_shape = data.ArrayLayout(shape, beats * lanes)

    def cycle_model(self):
        return CollectorModel(self.beats)



class Collector(SpecComponent, spec=CollectorSpec):
    """Gathers ``beats`` consecutive beats of ``lanes`` lanes into one beat of
    ``beats * lanes`` lanes (beat ``k`` in lanes ``[k * lanes, (k + 1) * lanes)``): the flatten
    of a streamed feature map into the vector of the following dense layer.

    ``latency == 1`` (last beat in to vector out), ``ii == beats + 1``; tolerates arbitrary idle
    cycles and backpressure.
    """

    def elaborate(self, platform):
        m = Module()
        w = self.lanes * self.elem_type.bits
        count = Signal(range(self.beats))
        acc = self.o.payload.as_value()
        m.d.comb += self.i.ready.eq(~self.o.valid)
        with m.If(self.o.valid & self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(self.i.valid & self.i.ready):
            new = Cat(acc[w:], self.i.payload.as_value()) if self.beats > 1 else \
                self.i.payload.as_value()
            m.d.sync += acc.eq(new)       # shift in at the top: the first beat ends at lane 0
            with m.If(count == self.beats - 1):
                m.d.sync += [count.eq(0), self.o.valid.eq(1)]
            with m.Else():
                m.d.sync += count.eq(count + 1)
        return m


class ChainSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`Chain`: ``children`` are the blocks' specs
    (``blocks``: specs or components); the cycle model composes theirs."""

    chain = True

    def __init__(self, *blocks, ii=None):
        if not blocks:
            raise ValueError("Chain needs at least one block")
        self.children = tuple(spec_of(b) for b in blocks)
        for k, (a, b) in enumerate(zip(self.children, self.children[1:])):
            if a.out_shape != b.in_shape:
                raise ValueError(f"Chain block {k + 1} ({type(b).__name__}) takes "
                                 f"{b.in_shape!r}, but block {k} ({type(a).__name__}) gives "
                                 f"{a.out_shape!r}")
        self.latency = sum(c.latency for c in self.children)
        if ii is not None:
            check_pos_int("ii", ii)
        self.ii_given = ii
        self.ii = int(ii) if ii is not None else max(c.ii for c in self.children)
        self.in_shape = self.children[0].in_shape
        self.out_shape = self.children[-1].out_shape

    def cycle_model(self):
        return ChainModel(c.cycle_model() for c in self.children)

    def features(self):
        """Nothing of its own: the sum of its blocks' (``parts``)."""
        return cost_features(parts=self.children)


class Chain(SpecComponent, spec=ChainSpec):
    """Blocks connected in a row behind the first one's ``i`` and the last one's ``o``.

    ``blocks`` are components (``blocks`` attribute); ``latency`` is the sum of theirs, ``ii``
    the largest of theirs unless ``ii`` is given (the caller knows better: a window generator
    feeding a MAC overlaps the two only partly); its cost is the sum of theirs (``features``).
    """

    def __init__(self, *blocks, ii=None):
        self.blocks = list(blocks)
        self._setup()

    def _setup(self):
        if "blocks" not in self.__dict__:      # from_spec: the blocks from their specs
            self.blocks = [c.build() for c in self.spec.children]
        super()._setup()

    def elaborate(self, platform):
        m = Module()
        for k, b in enumerate(self.blocks):
            m.submodules[f"b{k}_{type(b).__name__.lower()}"] = b
        wiring.connect(m, wiring.flipped(self.i), self.blocks[0].i)
        for a, b in zip(self.blocks, self.blocks[1:]):
            wiring.connect(m, a.o, b.i)
        wiring.connect(m, self.blocks[-1].o, wiring.flipped(self.o))
        return m
