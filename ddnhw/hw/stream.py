"""Blocks for large feature maps that stream one pixel per beat, with their state in memory
rather than in registers (the seed CNN at 28 x 28 x 32 does not fit register line buffers or
a flattened vector on the iCE40UP5K):

- :class:`RowPool`: a non-overlapping ``k x k`` max/avg pool (stride ``k``) whose partial
  results of one output row live in a memory of ``out_w`` words;
- :class:`StreamDense`: a flatten followed by a dense layer, computed as the pixels arrive:
  per pixel beat, ``pe`` outputs x ``simd`` channels per cycle multiply the beat with that
  pixel's weight columns and accumulate; the weights in block RAM (``mem="bram"``, initialised
  by the bitstream) or in SPRAM (``mem="spram"``, :class:`~ddnhw.hw.spram.SpramMemory`, loaded
  after reset from the ``w`` stream: one memory word per beat, in address order).
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream
from amaranth.lib.wiring import In

from ddnhw.ir.ops import dense_range

from ._types import check_int_type, check_pos_int, check_weight_bias, int_shape, shape_for
from .folded import LUT_MUL_MAX_BITS
from .mac import lut_mul as _lut_mul, pipelined_sum
from .protocol import BlockSpec, SpecComponent, cost_features
from .spram import SPRAM_WIDTH, SpramMemory, spram_tiles

__all__ = ["RowPool", "RowPoolSpec", "RowPoolModel", "StreamDense", "StreamDenseSpec",
           "StreamDenseModel", "MEMORIES"]

MEMORIES = ("bram", "spram")


def _ceil_div(a, b):
    return -(-a // b)


# -- RowPool -----------------------------------------------------------------------------------

class RowPoolModel:
    """Cycle model of :class:`RowPool`: every beat is taken unless an output waits; the last
    beat of every window emits one output beat the next cycle."""

    def __init__(self, spec):
        self.spec, self.x = spec, 0
        self.y = self.ov = 0

    def valid(self):
        return self.ov

    def ready(self, out_ready):
        return (not self.ov) or out_ready

    def step(self, fire_in, out_ready):
        s = self.spec
        if out_ready:
            self.ov = 0
        if fire_in:
            if s.emits(self.x, self.y):
                self.ov = 1
            self.x += 1
            if self.x == s.width:
                self.x, self.y = 0, (self.y + 1) % s.height


class RowPoolSpec(BlockSpec):
    """Spec of :class:`RowPool`."""

    def __init__(self, kind, k, height, width, channels, elem_type):
        if kind not in ("max", "avg"):
            raise ValueError(f"kind must be 'max' or 'avg', not {kind!r}")
        for name, v in (("k", k), ("height", height), ("width", width),
                        ("channels", channels)):
            check_pos_int(name, v)
        check_int_type("elem_type", elem_type)
        if k < 2 or k > min(height, width):
            raise ValueError(f"pool size k must be in 2..{min(height, width)}, not {k}")
        if kind == "avg" and k & (k - 1):
            raise ValueError(f"avg pooling needs a power-of-two size, not {k}")
        self.kind, self.k, self.height, self.width = kind, k, height, width
        self.channels, self.elem_type = channels, elem_type
        self.out_h, self.out_w = height // k, width // k
        self.beats_in, self.beats_out = height * width, self.out_h * self.out_w
        self.latency, self.ii = 1, self.beats_in
        b = elem_type.bits
        lo, hi = ((-(1 << (b - 1)), (1 << (b - 1)) - 1) if elem_type.signed else
                  (0, (1 << b) - 1))
        n = k * k if kind == "avg" else 1
        self.acc_shape = shape_for(lo * n, hi * n)
        shape = int_shape(elem_type)
        self.in_shape = data.ArrayLayout(shape, channels)
        self.out_shape = data.ArrayLayout(shape, channels)
        self.mem_width = channels * self.acc_shape.width

    def emits(self, x, y) -> bool:
        """Whether input pixel ``(x, y)`` completes an output window."""
        k = self.k
        return (x % k == k - 1 and y % k == k - 1 and x < self.out_w * k
                and y < self.out_h * k)

    def cycle_model(self):
        return RowPoolModel(self)

    def features(self):
        c, a = self.channels, self.acc_shape.width
        ffs = 2 * c * a + self.channels * self.elem_type.bits + 32
        return cost_features(luts={"raw": 4 * c * a + 40}, ffs={"raw": ffs},
                             memories=[(self.mem_width, self.out_w)])


class RowPool(SpecComponent, spec=RowPoolSpec):
    """Non-overlapping ``k x k`` pooling (stride ``k``, no padding) of an image streamed one
    pixel (``channels`` lanes) per beat: ``"max"``, or ``"avg"`` (sum, then ``(s +
    2**(n-1)) >> n`` with ``n = log2(k*k)``, as :class:`~ddnhw.hw.WindowPool`). Pixels beyond
    the last whole window are read and ignored. The window's partial result across rows is
    kept per output column in a memory of ``out_w`` words (read when a window row starts,
    written when it ends); within a row, in a register. ``latency == 1``, ``ii == height *
    width``; ``i.ready == ~o.valid | o.ready``."""

    def elaborate(self, platform):
        m = Module()
        k, c, W, H = self.k, self.channels, self.width, self.height
        a_shape = self.acc_shape
        aw = a_shape.width
        m.submodules.rows = mem = memory.Memory(shape=unsigned(self.mem_width),
                                                depth=self.out_w, init=[])
        rd = mem.read_port(transparent_for=())
        wr = mem.write_port()
        x = Signal(range(W))
        y = Signal(range(H))
        kx = Signal(range(k))
        ky = Signal(range(k))
        ox = Signal(range(max(self.out_w, 2)))
        inside = Signal()
        m.d.comb += inside.eq((x < self.out_w * k) & (y < self.out_h * k))
        accept = Signal()
        m.d.comb += [self.i.ready.eq(~self.o.valid | self.o.ready),
                     accept.eq(self.i.valid & self.i.ready)]
        part = [Signal(a_shape, name=f"part{ch}") for ch in range(c)]
        px = [self.i.payload[ch] for ch in range(c)]

        def comb(u, v):
            return Mux(u > v, u, v) if self.kind == "max" else u + v

        row = [Mux(kx == 0, px[ch], comb(part[ch], px[ch])) for ch in range(c)]
        prev = [rd.data[ch * aw:(ch + 1) * aw].as_signed() if a_shape.signed else
                rd.data[ch * aw:(ch + 1) * aw] for ch in range(c)]
        full = [Mux(ky == 0, row[ch], comb(prev[ch], row[ch])) for ch in range(c)]
        m.d.comb += [rd.addr.eq(ox), rd.en.eq(accept & (kx == 0)),
                     wr.addr.eq(ox), wr.en.eq(accept & inside & (kx == k - 1) & (ky != k - 1))]
        wdata = []
        for ch in range(c):
            f = Signal(a_shape, name=f"full{ch}")
            m.d.comb += f.eq(full[ch])
            wdata.append(f)
        m.d.comb += wr.data.eq(Cat(*wdata))
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(accept):
            m.d.sync += [part[ch].eq(row[ch]) for ch in range(c)]
            with m.If(inside & (kx == k - 1) & (ky == k - 1)):
                m.d.sync += self.o.valid.eq(1)
                shift = (k * k).bit_length() - 1
                for ch in range(c):
                    v = full[ch]
                    if self.kind == "avg":
                        v = (v + (1 << (shift - 1))) >> shift
                    m.d.sync += self.o.payload[ch].eq(v)
            # counters
            with m.If(x == W - 1):
                m.d.sync += [x.eq(0), kx.eq(0), ox.eq(0)]
                with m.If(y == H - 1):
                    m.d.sync += [y.eq(0), ky.eq(0)]
                with m.Else():
                    m.d.sync += [y.eq(y + 1), ky.eq(Mux(ky == k - 1, 0, ky + 1))]
            with m.Else():
                m.d.sync += x.eq(x + 1)
                with m.If(kx == k - 1):
                    m.d.sync += [kx.eq(0), ox.eq(ox + 1)]
                with m.Else():
                    m.d.sync += kx.eq(kx + 1)
        return m


# -- StreamDense -------------------------------------------------------------------------------

class StreamDenseModel:
    """Cycle model of :class:`StreamDense` (issue counters, the ``3 + pipe`` stages' valid and
    end flags, the output register); the weights are taken as loaded."""

    def __init__(self, steps, beats, pipe=0):
        self.T, self.beats = steps, beats
        self.busy = self.t = self.cur = self.nxt = self.ov = 0
        self.r = self.bb = self.c = (0, 0)
        self.p = [(0, 0)] * pipe

    def valid(self):
        return self.ov

    def _out_load(self):
        return self.c[0] and self.c[1]

    def _ce(self, out_ready):
        return not (self._out_load() and self.ov and not out_ready)

    def ready(self, out_ready):
        return self._ce(out_ready) and ((not self.busy) or self.t == self.T - 1)

    def step(self, fire_in, out_ready):
        ce, out_load = self._ce(out_ready), self._out_load()
        a_last = self.busy and self.t == self.T - 1
        issue = (self.busy, int(a_last and self.cur == self.beats - 1))
        if ce and self.busy:
            self.t += 1
            if a_last:
                self.busy, self.t = 0, 0
        if fire_in:
            self.busy, self.t, self.cur = 1, 0, self.nxt
            self.nxt = 0 if self.nxt == self.beats - 1 else self.nxt + 1
        if ce:
            self.c = self.p[-1] if self.p else self.bb
            self.p = [self.bb] + self.p[:-1] if self.p else []
            self.bb, self.r = self.r, issue
        if out_ready:
            self.ov = 0
        if ce and out_load:
            self.ov = 1


class StreamDenseSpec(BlockSpec):
    """Spec of :class:`StreamDense` (the checked arguments, geometry, memory words)."""

    def __init__(self, weight, bias, in_type, out_type, beats, pe=1, simd=1, mem="bram",
                 model=False, mul="auto", pipe=0):
        check_int_type("in_type", in_type)
        check_int_type("out_type", out_type)
        self.weight, self.bias = check_weight_bias(weight, bias)
        self.n_out, self.n_in = self.weight.shape
        n_in = self.n_in
        self.beats = check_pos_int("beats", beats)
        if n_in % self.beats:
            raise ValueError(f"{n_in} inputs do not split into {self.beats} beats")
        self.channels = c = n_in // self.beats
        for name, v, lim in (("pe", pe, self.n_out), ("simd", simd, c)):
            if not isinstance(v, int) or isinstance(v, bool) or not 1 <= v <= lim:
                raise ValueError(f"{name} must be an int in 1..{lim}, not {v!r}")
        if mem not in MEMORIES:
            raise ValueError(f"mem must be one of {MEMORIES}, not {mem!r}")
        if mul not in ("auto", "lut", "dsp"):
            raise ValueError(f"mul must be 'auto', 'lut' or 'dsp', not {mul!r}")
        if not isinstance(pipe, int) or isinstance(pipe, bool) or not 0 <= pipe <= 2:
            raise ValueError(f"pipe must be an int in 0..2, not {pipe!r}")
        self.pe, self.simd, self.mem, self.model, self.pipe = pe, simd, mem, bool(model), pipe
        self.in_type, self.out_type = in_type, out_type
        lo, hi = dense_range(self.weight, self.bias, in_type)
        for k in range(self.n_out):
            if not out_type.contains(int(lo[k]), int(hi[k])):
                raise ValueError(f"out_type {out_type} cannot hold output {k} range "
                                 f"[{int(lo[k])}, {int(hi[k])}]")
        self.acc_shape = shape_for(int(min(lo)), int(max(hi)))
        self.w_shape = shape_for(min(0, int(self.weight.min())), max(0, int(self.weight.max())))
        self.weight_bits = wb = self.w_shape.width
        if mul == "auto":
            mul = "lut" if min(wb, in_type.bits) <= LUT_MUL_MAX_BITS else "dsp"
        self.mul = mul
        self.sf, self.nf = _ceil_div(c, simd), _ceil_div(self.n_out, pe)
        self.beat_steps = self.sf * self.nf
        self.ii = self.beats * self.beat_steps
        self.latency = self.beat_steps + 4 + pipe     # last beat in -> output
        self.mem_width = pe * simd * wb
        self.mem_depth = self.beats * self.beat_steps
        self.w_init = self._pack()
        self.load_words = len(self.w_init) if mem == "spram" else 0
        self.in_shape = data.ArrayLayout(int_shape(in_type), c)
        self.out_shape = data.ArrayLayout(int_shape(out_type), self.n_out)
        self.load_shape = unsigned(self.load_width) if mem == "spram" else None

    @property
    def load_width(self) -> int:
        """Bits of a ``w`` load beat: the memory word, padded to whole SPRAMs."""
        return _ceil_div(self.mem_width, SPRAM_WIDTH) * SPRAM_WIDTH

    def _pack(self):
        """Memory words, address ``(beat * nf + g) * sf + s``: the ``pe x simd`` tile of
        outputs ``g * pe + p`` and channels ``s * simd + j`` of that beat's pixel."""
        pe, simd, c, wb = self.pe, self.simd, self.channels, self.weight_bits
        wp = np.zeros((self.nf * pe, self.beats, self.sf * simd), dtype=np.int64)
        wp[:self.n_out, :, :c] = self.weight.reshape(self.n_out, self.beats, c)
        mask = (1 << wb) - 1
        words = []
        for b in range(self.beats):
            for g in range(self.nf):
                for s in range(self.sf):
                    tile = wp[g * pe:(g + 1) * pe, b, s * simd:(s + 1) * simd]
                    word = 0
                    for p in range(pe):
                        for j in range(simd):
                            word |= (int(tile[p, j]) & mask) << ((p * simd + j) * wb)
                    words.append(word)
        return words

    def ports(self):
        ports = super().ports()
        if self.load_shape is not None:
            ports["w"] = In(stream.Signature(self.load_shape))
        return ports

    def cycle_model(self):
        return StreamDenseModel(self.beat_steps, self.beats, self.pipe)

    def spram_tiles(self) -> int:
        return spram_tiles(self.mem_width, self.mem_depth) if self.mem == "spram" else 0

    def features(self):
        pe, simd, wb, xb = self.pe, self.simd, self.weight_bits, self.in_type.bits
        acc = self.acc_shape.width
        prod = wb + xb
        ffs = (self.channels * xb + 2 * simd * xb + self.mem_width + pe * acc
               + self.nf * pe * acc + self.n_out * acc + 64
               + self.pipe * pe * simd * prod)
        f = cost_features(
            luts={"mul": pe * simd * wb * xb if self.mul == "lut" else 0,
                  "add": pe * (simd - 1) * (prod + 1), "acc": pe * acc * 2,
                  "mux": simd * xb * (self.sf - 1) + pe * acc * (self.nf - 1) / 2,
                  "ffs": ffs, "ctrl": 1},
            ffs={"ff": ffs},
            memories=[(self.mem_width, self.mem_depth)] if self.mem == "bram" else [],
            dsp_muls=pe * simd if self.mul == "dsp" else 0)
        if self.mem == "spram":
            f["spram"] = self.spram_tiles()
        return f


class StreamDense(SpecComponent, spec=StreamDenseSpec):
    """``o[k] = bias[k] + sum_j weight[k, j] * x[j]`` over an input vector that arrives as
    ``beats`` beats of ``channels`` lanes (``x[b * channels + c]`` = lane ``c`` of beat ``b``:
    the NHWC flatten of a streamed feature map), without collecting it: every beat is
    multiplied with its weight columns as it comes, ``pe`` outputs x ``simd`` lanes per
    cycle, into ``n_out`` accumulators.

    ``ii == beats * ceil(channels/simd) * ceil(n_out/pe)`` cycles per input vector (a beat is
    taken every ``beat_steps`` cycles); ``latency == beat_steps + 4 + pipe`` from the last beat to the
    output. Weights: ``mem="bram"``, a ``lib.memory`` ROM; ``mem="spram"``, a
    :class:`~ddnhw.hw.spram.SpramMemory` (``model=True``: its Amaranth model), loaded after
    reset from the ``w`` stream (``load_words`` words of ``load_width`` bits, the spec's
    ``w_init`` in order) before the first beat is taken. ``mul``, ``pipe``: as
    :class:`~ddnhw.hw.FoldedDense` (no packing). Idle cycles and backpressure are tolerated.
    """

    def elaborate(self, platform):
        m = Module()
        pe, simd, sf, nf = self.pe, self.simd, self.sf, self.nf
        xb, wb = self.in_type.bits, self.weight_bits
        acc_shape = self.acc_shape
        x_signed = int_shape(self.in_type).signed
        loaded = Signal(init=int(self.mem != "spram"))
        if self.mem == "bram":
            m.submodules.weights = wmem = memory.Memory(
                shape=unsigned(self.mem_width), depth=self.mem_depth, init=self.w_init)
            wrd = wmem.read_port()
            raddr, ren, rdata = wrd.addr, wrd.en, wrd.data
        else:
            m.submodules.weights = sp = SpramMemory(self.load_width, self.mem_depth,
                                                    model=self.model)
            raddr, ren, rdata = sp.raddr, sp.en, sp.rdata
            lcnt = Signal(range(self.mem_depth + 1))
            m.d.comb += [self.w.ready.eq(~loaded), sp.we.eq(self.w.valid & ~loaded),
                         sp.waddr.eq(lcnt), sp.wdata.eq(self.w.payload)]
            with m.If(self.w.valid & ~loaded):
                m.d.sync += lcnt.eq(lcnt + 1)
                with m.If(lcnt == self.mem_depth - 1):
                    m.d.sync += loaded.eq(1)

        ce = Signal()
        out_load = Signal()
        # -- stage A: issue ----------------------------------------------------------------
        busy = Signal()
        t = Signal(range(max(self.beat_steps, 2)))
        s_cnt = Signal(range(max(sf, 2)))
        g_cnt = Signal(range(max(nf, 2)))
        addr = Signal(range(max(self.mem_depth, 2)))
        cur = Signal(range(max(self.beats, 2)))
        nxt = Signal(range(max(self.beats, 2)))
        x_cur = Signal(sf * simd * xb)
        a_last = Signal()
        a_end = Signal()
        m.d.comb += [
            a_last.eq(t == self.beat_steps - 1),
            a_end.eq(a_last & (cur == self.beats - 1)),
            self.i.ready.eq(ce & (~busy | a_last) & loaded),
            raddr.eq(addr), ren.eq(ce & loaded),
        ]
        with m.If(ce & busy):
            m.d.sync += [t.eq(t + 1), addr.eq(addr + 1)]
            with m.If(s_cnt == sf - 1):
                m.d.sync += [s_cnt.eq(0), g_cnt.eq(g_cnt + 1)]
            with m.Else():
                m.d.sync += s_cnt.eq(s_cnt + 1)
            with m.If(a_last):
                m.d.sync += [busy.eq(0), t.eq(0), s_cnt.eq(0), g_cnt.eq(0)]
            with m.If(a_end):
                m.d.sync += addr.eq(0)
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [busy.eq(1), t.eq(0), s_cnt.eq(0), g_cnt.eq(0), cur.eq(nxt),
                         nxt.eq(Mux(nxt == self.beats - 1, 0, nxt + 1)),
                         x_cur.eq(self.i.payload.as_value())]
        x_slice = x_cur.word_select(s_cnt, simd * xb) if sf > 1 else x_cur

        def regs(names, values, prefix):
            out = []
            for n, v in zip(names, values):
                r = Signal.like(v, name=f"{prefix}_{n}")
                out.append(r)
            with m.If(ce):
                m.d.sync += [r.eq(v) for r, v in zip(out, values)]
            return out

        names = ("valid", "first", "end", "g", "x")
        # stage R: the memory reads; B: its word registered with the input slice
        r = regs(names, (busy & loaded, (cur == 0) & (s_cnt == 0), busy & a_end, g_cnt,
                         x_slice), "r")
        b = regs(names, r, "b")
        b_w = Signal(self.load_width if self.mem == "spram" else self.mem_width)
        with m.If(ce):
            m.d.sync += b_w.eq(rdata)
        dots = []
        for p in range(pe):
            terms = []
            for j in range(simd):
                x = b[4][j * xb:(j + 1) * xb]
                x = x.as_signed() if x_signed else x
                w = b_w[(p * simd + j) * wb:(p * simd + j + 1) * wb]
                w = w.as_signed() if self.w_shape.signed else w
                terms.append(w * x if self.mul == "dsp" else _lut_mul(w, x))
            dots.append(pipelined_sum(m, ce, terms, self.pipe, f"d{p}"))
        last = b[:4]
        for k in range(self.pipe):
            last = regs(names[:4], last, f"p{k}")
        # stage C: accumulate into output group g (bias first at beat 0)
        c_valid, c_first, c_end, c_g = regs(names[:4], last, "c")
        c_dot = [Signal(acc_shape, name=f"c_dot{p}") for p in range(pe)]
        with m.If(ce):
            m.d.sync += [c_dot[p].eq(dots[p]) for p in range(pe)]
        accs = [Signal(acc_shape, name=f"acc{k}") for k in range(nf * pe)]
        bias = np.zeros(nf * pe, dtype=np.int64)
        bias[:self.n_out] = self.bias
        new = []
        for p in range(pe):
            cur_acc = Array(accs[g * pe + p] for g in range(nf))[c_g]
            b_val = Array(Const(int(bias[g * pe + p]), acc_shape) for g in range(nf))[c_g]
            v = Signal(acc_shape, name=f"new{p}")
            m.d.comb += v.eq(Mux(c_first, b_val, cur_acc) + c_dot[p])
            new.append(v)
        with m.If(ce & c_valid):
            with m.Switch(c_g):
                for g in range(nf):
                    with m.Case(g):
                        m.d.sync += [accs[g * pe + p].eq(new[p]) for p in range(pe)]
        m.d.comb += [out_load.eq(c_valid & c_end),
                     ce.eq(~(out_load & self.o.valid & ~self.o.ready))]
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.If(ce & out_load):
            m.d.sync += self.o.valid.eq(1)
            full = accs[:(nf - 1) * pe] + new
            m.d.sync += [self.o.payload[k].eq(full[k]) for k in range(self.n_out)]
        return m
