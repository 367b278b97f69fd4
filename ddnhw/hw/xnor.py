"""Binary (+-1) dense layer on bipolar (+-1) inputs: XNOR and popcount, pipelined."""
from __future__ import annotations

import numpy as np
from amaranth.hdl import Const, Module, Signal, Value, signed, unsigned
from amaranth.lib import data

from ._types import (PipelineModel, check_bias, check_int_type, check_regs_every, int_shape,
                     stall_pipeline)
from .protocol import BlockSpec, SpecComponent

__all__ = ["XnorDense", "XnorDenseSpec", "binary_rows"]


def binary_rows(weight):
    """``(c, signs)`` if every row of ``weight`` is ``c[k] * signs[k]`` with ``signs`` in
    ``{-1, 0, +1}`` (zeros: pruned inputs) and ``c[k] > 0``; otherwise ``None``."""
    w = np.asarray(weight)
    if w.ndim != 2 or w.dtype.kind not in "iu" or w.size == 0:
        return None
    w = w.astype(np.int64)
    mag = np.abs(w)
    c = mag.max(axis=1)
    if np.any((mag != 0) & (mag != c[:, None])):
        return None
    c = np.where(c == 0, 1, c)
    return c, np.sign(w)


def _width(n):
    return max(1, int(n).bit_length())


def _arity(level):
    """Inputs per adder at popcount ``level`` (1-based): full adders (3 bits -> 2, one LUT4
    level) first, then pairwise adds."""
    return 3 if level == 1 else 2


def _levels(n):
    lvl = 0
    while n > 1:
        lvl += 1
        n = -(-n // _arity(lvl))
    return lvl


class XnorDenseSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`XnorDense`: ``c``, ``signs`` (the binary
    rows), ``n_nonzero``, ``levels`` (popcount adder levels), ``tree(n)``."""

    def __init__(self, weight, bias, in_type, out_type, regs_every=2):
        check_int_type("in_type", in_type)
        check_int_type("out_type", out_type)
        rows = binary_rows(weight)
        if rows is None:
            raise ValueError("weight must be a non-empty 2-D integer array whose rows are "
                             "{-c, 0, +c} (binary weights)")
        if not (in_type.signed and in_type.min <= -1 and in_type.max >= 1):
            raise ValueError(f"in_type must be signed and hold -1 and +1, not {in_type}")
        w = np.asarray(weight).astype(np.int64)
        check_regs_every(regs_every)
        self.weight, self.bias = w, check_bias(bias, w.shape[0])
        self.in_type, self.out_type, self.regs_every = in_type, out_type, regs_every
        self.n_out, self.n_in = w.shape
        self.c, self.signs = rows
        self.n_nonzero = (self.signs != 0).sum(axis=1)
        for k in range(self.n_out):
            c, n, bk = int(self.c[k]), int(self.n_nonzero[k]), int(self.bias[k])
            if not out_type.contains(bk - c * n, bk + c * n):
                raise ValueError(f"out_type {out_type} cannot hold output {k} range "
                                 f"[{bk - c * n}, {bk + c * n}]")
        n_max = int(self.n_nonzero.max())
        self.levels = _levels(n_max)
        self.latency = max(1, -(-self.levels // regs_every))
        self.ii = 1
        self.in_shape = data.ArrayLayout(int_shape(in_type), self.n_in)
        self.out_shape = data.ArrayLayout(int_shape(out_type), self.n_out)
        self.estimate = self._estimate()

    def tree(self, n):
        """Counts per level of a popcount of ``n`` bits: ``[[count, ...], ...]``."""
        level, out = [1] * n, []
        for lvl in range(1, self.levels + 1):
            r = _arity(lvl)
            level = [sum(level[p:p + r]) for p in range(0, len(level), r)]
            out.append(level)
        return out

    def _estimate(self):
        luts, ffs = 0, self.latency
        for k in range(self.n_out):
            n = int(self.n_nonzero[k])
            tree = self.tree(n)
            prev = [1] * n
            for lvl, counts in enumerate(tree, 1):
                # one LUT per output bit of every real adder (groups of one are wires)
                r = _arity(lvl)
                luts += sum(_width(c) for q, c in enumerate(counts)
                            if len(prev[q * r:(q + 1) * r]) > 1)
                if lvl % self.regs_every == 0 and lvl < self.levels:
                    ffs += sum(_width(c) for c in counts)
                prev = counts
            luts += self.out_type.bits if n else 0    # constant offset (and 2c shift)
            ffs += self.out_type.bits
        return {"luts": int(luts), "ffs": int(ffs)}

    def cycle_model(self):
        return PipelineModel(self.latency)



class XnorDense(SpecComponent, spec=XnorDenseSpec):
    """``o[k] = bias[k] + sum_j weight[k, j] * i[j]`` for inputs ``i[j]`` in ``{-1, +1}`` and
    rows of ``weight`` in ``{-c_k, 0, +c_k}``: with ``x_j = (i[j] == +1)`` and ``s_kj =
    (weight[k, j] > 0)``, ``o[k] = bias[k] - c_k * n_k + 2 * c_k * popcount(XNOR(x, s_k))``
    (``n_k``: nonzero weights of row ``k``; zero weights generate no logic). The same function
    as :class:`~ddnhw.hw.Dense` on +-1 inputs, with a popcount of bits instead of an adder tree
    of signed values.

    Parameters
    ----------
    weight : integer array (n_out, n_in), each row in ``{-c_k, 0, +c_k}`` (``c_k > 0``).
    bias : integer array (n_out,)
    in_type : signed :class:`ddnhw.ir.IntType` holding -1 and +1. Only the sign bit is read:
        an input that is not -1 or +1 is outside the contract (negative reads as -1, else +1).
    out_type : :class:`ddnhw.ir.IntType` holding every output's exact range.
    regs_every : a pipeline register after every this many popcount adder levels (>= 1).

    Attributes (from ``spec``, an :class:`XnorDenseSpec`): ``latency`` (cycles, >= 1),
    ``ii == 1``, ``estimate`` (``{"luts", "ffs"}``).

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(in shape, n_in)))``, ``o`` is
    ``Out(stream.Signature(ArrayLayout(out shape, n_out)))``. All registers advance together
    when ``~o.valid | o.ready`` (that is ``i.ready``); idle cycles and backpressure are
    tolerated.
    """

    def elaborate(self, platform):
        m = Module()
        ce = stall_pipeline(m, self.i, self.o, self.latency)

        x = Signal(self.n_in)      # 1: input is +1
        for j in range(self.n_in):
            m.d.comb += x[j].eq(~Value.cast(self.i.payload[j])[-1])
        for k in range(self.n_out):
            level = [x[j] if self.signs[k, j] > 0 else ~x[j]
                     for j in range(self.n_in) if self.signs[k, j] != 0]
            counts = [1] * len(level)
            for lvl in range(1, self.levels + 1):
                nl, nc, r = [], [], _arity(lvl)
                for p in range(0, len(level), r):
                    group, c = level[p:p + r], sum(counts[p:p + r])
                    if len(group) == 1:
                        nl.append(group[0])
                    else:
                        s = Signal(unsigned(_width(c)), name=f"o{k}_l{lvl}_{p // r}")
                        m.d.comb += s.eq(sum(group[1:], group[0]))
                        nl.append(s)
                    nc.append(c)
                if lvl % self.regs_every == 0 and lvl < self.levels:
                    regs = []
                    for q, (v, c) in enumerate(zip(nl, nc)):
                        r = Signal(unsigned(_width(c)), name=f"o{k}_r{lvl}_{q}",
                                   reset_less=True)
                        with m.If(ce):
                            m.d.sync += r.eq(v)
                        regs.append(r)
                    nl = regs
                level, counts = nl, nc
            c, n = int(self.c[k]), int(self.n_nonzero[k])
            offset = int(self.bias[k]) - c * n
            if n:
                pc = level[0]
                total = Const(offset, signed(_width(abs(offset)) + 1)) + pc * (2 * c)
            else:
                total = Const(offset, signed(_width(abs(offset)) + 1))
            with m.If(ce):
                m.d.sync += self.o.payload[k].eq(total)
        return m
