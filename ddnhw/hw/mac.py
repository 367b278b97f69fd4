"""Multiply-accumulate building blocks shared by the folded MAC engines
(:class:`~ddnhw.hw.FoldedDense`, :mod:`ddnhw.hw.packed`, :class:`~ddnhw.hw.stream.StreamDense`):
a LUT multiplier and an adder tree through a given number of register stages."""
from __future__ import annotations

from amaranth.hdl import Mux, Signal

__all__ = ["lut_mul", "pipelined_sum", "stage"]


def lut_mul(w, x):
    """``w * x`` as a sum of shifted, gated copies of the narrower operand's partner (no
    ``$mul`` cell: yosys builds it from LUTs and carry chains)."""
    a, b = (w, x) if len(w) >= len(x) else (x, w)   # iterate over the bits of the narrower
    n = len(b)
    terms = []
    for k in range(n):
        t = Mux(b[k], a, 0)
        t = t.as_signed() if a.shape().signed else t
        t = (t << k)
        if k == n - 1 and b.shape().signed:
            terms.append(-t)          # two's complement: the MSB weighs -2**(n-1)
        else:
            terms.append(t)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i]
                 for i in range(0, len(terms), 2)]
    return terms[0]



def stage(m, ce, values, name):
    """``values`` registered (enable ``ce``): one pipeline stage."""
    regs = []
    for k, v in enumerate(values):
        r = Signal(v.shape(), name=f"{name}_{k}")
        with m.If(ce):
            m.d.sync += r.eq(v)
        regs.append(r)
    return regs


def pipelined_sum(m, ce, terms, pipe, name):
    """The sum of ``terms`` by a balanced adder tree through exactly ``pipe`` register stages
    (enable ``ce``): the terms themselves (``pipe >= 1``), then halfway up the tree
    (``pipe == 2``)."""
    if pipe >= 1:
        terms = stage(m, ce, terms, f"{name}_t")
    depth = (len(terms) - 1).bit_length()
    level = 0
    while len(terms) > 1:
        terms = [terms[k] + terms[k + 1] if k + 1 < len(terms) else terms[k]
                 for k in range(0, len(terms), 2)]
        level += 1
        if pipe >= 2 and level == (depth + 1) // 2:
            terms = stage(m, ce, terms, f"{name}_h")
    if pipe >= 2 and depth == 0:
        terms = stage(m, ce, terms, f"{name}_h")
    return terms[0]
