"""Logic-domain blocks: a thermometer encoder, layers of table neurons, and per-class popcounts
(the hardware of the ``thermometer``, ``lut`` and ``popcount`` ops, :mod:`ddnhw.ir.ops.lut`).

Every table neuron is plain logic: a ``k``-input truth table (a constant indexed by its ``k``
input bits), which yosys and ABC map onto LUT4s (one for ``k <= 4``; constant or single-input
tables and neurons nobody reads cost nothing after optimisation). Each block registers its
outputs, so a network has a pipeline register between table layers; all blocks take one beat
per clock (II 1) and stall with one clock enable ``~o.valid | o.ready``.
"""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal, unsigned
from amaranth.lib import data

from ._types import (PipelineModel, check_int_type, check_pos_int, check_regs_every, int_shape,
                     stall_pipeline)
from .protocol import BlockSpec, SpecComponent

__all__ = ["Thermometer", "ThermometerSpec", "LutLayer", "LutLayerSpec", "Popcount",
           "PopcountSpec", "table_support", "LUT4_CELLS"]

#: iCE40 LUT4 cells of a function of s inputs (s = 0 and 1: a constant or a wire/inverter that
#: synthesis folds into its neighbours; 5 and 6: what yosys 0.70 + ABC9 gave for 50 random
#: tables of 5 and 6 inputs: 205 and 470 LUT4s, against 52 for 4 inputs)
LUT4_CELLS = {0: 0, 1: 0, 2: 1, 3: 1, 4: 1, 5: 4, 6: 9}
MAX_FANIN = 6


def _int_array(name, a, ndim):
    a = np.asarray(a)
    if a.ndim != ndim or a.dtype.kind not in "iu" or a.size == 0:
        raise ValueError(f"{name} must be a non-empty {ndim}-D integer array, got {a.dtype} "
                         f"shape {a.shape}")
    return a.astype(np.int64)


def table_support(table, k) -> np.ndarray:
    """Per neuron, how many of its ``k`` inputs its truth table (``(n, 2**k)``) depends on."""
    t = np.asarray(table).reshape(len(table), *([2] * k))     # axis k-1-i is input bit i
    dep = np.zeros(len(table), np.int64)
    for axis in range(k):
        a = np.take(t, 0, axis=axis + 1)
        b = np.take(t, 1, axis=axis + 1)
        dep += np.any((a != b).reshape(len(table), -1), axis=1)
    return dep


def _bits_layout(n):
    return data.ArrayLayout(unsigned(1), n)


class ThermometerSpec(BlockSpec):
    """Spec of :class:`Thermometer`: ``n_in`` features, ``levels`` thresholds each,
    ``n_out = n_in * levels`` bits; ``latency`` 1, ``ii`` 1."""

    def __init__(self, thresholds, in_type):
        check_int_type("in_type", in_type)
        self.thresholds = _int_array("thresholds", thresholds, 2)
        self.in_type = in_type
        self.n_in, self.levels = self.thresholds.shape
        self.n_out = self.thresholds.size
        self.latency, self.ii = 1, 1
        self.in_shape = data.ArrayLayout(int_shape(in_type), self.n_in)
        self.out_shape = _bits_layout(self.n_out)
        th = self.thresholds
        live = (th > in_type.min) & (th <= in_type.max)       # else the bit is a constant
        per = 1 if in_type.bits <= 4 else in_type.bits        # LUT4 or a carry chain
        self.estimate = {"luts": int(live.sum()) * per, "ffs": int(live.sum()) + 1}

    def cycle_model(self):
        return PipelineModel(1)


class Thermometer(SpecComponent, spec=ThermometerSpec):
    """``o[f*T + t] = i[f] >= thresholds[f, t]`` (bits), registered.

    Parameters: ``thresholds`` (F, T) integers, ``in_type`` the features' IntType. Ports ``i``
    ``ArrayLayout(in shape, F)``, ``o`` ``ArrayLayout(unsigned(1), F*T)``."""

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i, self.o, 1)
        t = self.in_type
        for f in range(self.n_in):
            x = self.i.payload[f]
            for j in range(self.levels):
                th = int(self.thresholds[f, j])
                bit = Const(int(t.min >= th), 1) if th <= t.min or th > t.max else x >= th
                with m.If(ce):
                    m.d.sync += self.o.payload[f * self.levels + j].eq(bit)
        return m


class LutLayerSpec(BlockSpec):
    """Spec of :class:`LutLayer`: ``n`` neurons of fan-in ``k`` over ``n_in`` bits;
    ``latency`` 1, ``ii`` 1; ``support`` the inputs each table depends on."""

    def __init__(self, connections, table, n_in):
        self.connections = _int_array("connections", connections, 2)
        self.n, self.k = self.connections.shape
        if not 1 <= self.k <= MAX_FANIN:
            raise ValueError(f"fan-in k = {self.k} is out of range: a table neuron reads 1 to "
                             f"{MAX_FANIN} bits")
        self.n_in = check_pos_int("n_in", n_in)
        self.table = _int_array("table", table, 2)
        if self.table.shape != (self.n, 1 << self.k):
            raise ValueError(f"table has shape {self.table.shape}, but {self.n} neurons of "
                             f"fan-in {self.k} need ({self.n}, {1 << self.k})")
        if np.any((self.table != 0) & (self.table != 1)):
            raise ValueError("table entries must be 0 or 1")
        if np.any((self.connections < 0) | (self.connections >= self.n_in)):
            raise ValueError(f"connections must index the {self.n_in} input bits")
        self.latency, self.ii = 1, 1
        self.in_shape, self.out_shape = _bits_layout(self.n_in), _bits_layout(self.n)
        self.support = table_support(self.table, self.k)
        self.estimate = {"luts": int(sum(LUT4_CELLS[int(s)] for s in self.support)),
                         "ffs": self.n + 1}

    def cycle_model(self):
        return PipelineModel(1)


class LutLayer(SpecComponent, spec=LutLayerSpec):
    """``o[j] = table[j, sum_i i[connections[j, i]] << i]`` for every neuron ``j``, registered.

    Parameters: ``connections`` (n, k) input bit indices, ``table`` (n, 2**k) 0/1, ``n_in``
    input bits. Ports ``i`` ``ArrayLayout(unsigned(1), n_in)``, ``o``
    ``ArrayLayout(unsigned(1), n)``."""

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i, self.o, 1)
        bits = Signal(self.n_in)
        m.d.comb += bits.eq(self.i.payload.as_value())
        weights = 1 << np.arange(1 << self.k, dtype=object)
        for j in range(self.n):
            truth = Const(int(np.sum(weights * self.table[j].astype(object))), 1 << self.k)
            addr = Cat(*(bits[int(c)] for c in self.connections[j]))
            with m.If(ce):
                m.d.sync += self.o.payload[j].eq(truth.bit_select(addr, 1))
        return m


def _fan(level):
    """Summands per adder at popcount level ``level`` (1-based): three bits (a full adder, one
    LUT level) first, then pairs of sums."""
    return 3 if level == 1 else 2


class PopcountSpec(BlockSpec):
    """Spec of :class:`Popcount`: ``classes`` counts over ``n_in`` bits (``groups[m]``: the
    class of bit ``m``, -1 for none); ``levels`` adder levels of the largest group (the first
    adds three bits, the others two sums); ``latency`` = ceil(levels / regs_every), >= 1."""

    def __init__(self, groups, classes, out_type, regs_every=2):
        self.groups = _int_array("groups", groups, 1)
        self.classes = check_pos_int("classes", classes)
        check_int_type("out_type", out_type)
        check_regs_every(regs_every)
        if np.any((self.groups < -1) | (self.groups >= self.classes)):
            raise ValueError(f"groups must be in -1..{self.classes - 1}")
        self.members = [np.flatnonzero(self.groups == c) for c in range(self.classes)]
        biggest = max(len(ms) for ms in self.members)
        if not out_type.contains(0, biggest):
            raise ValueError(f"out_type {out_type} cannot hold a count of {biggest}")
        self.n_in, self.out_type, self.regs_every = len(self.groups), out_type, regs_every
        self.levels = self._depth(biggest)
        self.latency, self.ii = max(1, -(-self.levels // regs_every)), 1
        self.in_shape = _bits_layout(self.n_in)
        self.out_shape = data.ArrayLayout(int_shape(out_type), self.classes)
        luts = ffs = 0
        for ms in self.members:
            for lvl, sums in enumerate(self.sums(len(ms)), 1):
                luts += sum(s.bit_length() for s, parts in sums if parts > 1)
                if lvl % regs_every == 0 and lvl < self.levels:
                    ffs += sum(s.bit_length() for s, _ in sums)
            ffs += out_type.bits
        self.estimate = {"luts": int(luts), "ffs": int(ffs + self.latency)}

    @staticmethod
    def _depth(n):
        depth = 0
        while n > 1:
            depth += 1
            n = -(-n // _fan(depth))
        return depth

    def sums(self, n):
        """Per adder level of an ``n``-bit count, its nodes as ``(largest value, parts)``."""
        cur, out = [1] * n, []
        for lvl in range(1, self.levels + 1):
            r = _fan(lvl)
            nodes = [(sum(cur[p:p + r]), len(cur[p:p + r])) for p in range(0, len(cur), r)]
            out.append(nodes)
            cur = [v for v, _ in nodes]
        return out

    def cycle_model(self):
        return PipelineModel(self.latency)


class Popcount(SpecComponent, spec=PopcountSpec):
    """``o[c] = number of set bits i[m] with groups[m] == c``: an adder tree per class (a
    register after every ``regs_every`` levels, and at the output).

    Parameters: ``groups`` (n_in,) in -1..classes-1, ``classes``, ``out_type`` (unsigned,
    holding the largest group's size), ``regs_every``. Ports ``i``
    ``ArrayLayout(unsigned(1), n_in)``, ``o`` ``ArrayLayout(out shape, classes)``."""

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i, self.o, self.latency)
        bits = Signal(self.n_in)
        m.d.comb += bits.eq(self.i.payload.as_value())
        for c, ms in enumerate(self.members):
            nodes = [(bits[int(j)], 1) for j in ms]
            for lvl in range(1, self.levels + 1):
                r, nxt = _fan(lvl), []
                for p in range(0, len(nodes), r):
                    part = nodes[p:p + r]
                    top = sum(v for _, v in part)
                    s = Signal(unsigned(max(1, top.bit_length())), name=f"c{c}_l{lvl}_{p // r}")
                    m.d.comb += s.eq(sum((e for e, _ in part[1:]), part[0][0]))
                    nxt.append((s, top))
                if lvl % self.regs_every == 0 and lvl < self.levels:
                    held = []
                    for q, (s, top) in enumerate(nxt):
                        reg = Signal.like(s, name=f"c{c}_r{lvl}_{q}", reset_less=True)
                        with m.If(ce):
                            m.d.sync += reg.eq(s)
                        held.append((reg, top))
                    nxt = held
                nodes = nxt
            total = nodes[0][0] if nodes else Const(0, 1)
            with m.If(ce):
                m.d.sync += self.o.payload[c].eq(total)
        return m
