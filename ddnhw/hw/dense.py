"""Fully unrolled dense layer with constant weights: shift-add adder trees, pipelined."""
from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Cat, Const, Module, Signal
from amaranth.lib import data

from ddnhw.ir.ops import dense_range

from ._types import (PipelineModel, check_int_type, check_regs_every, check_weight_bias,
                     int_shape, shape_for, stall_pipeline)
from .protocol import BlockSpec, SpecComponent, cost_features

__all__ = ["Dense", "DenseSpec"]

STYLES = ("cse", "shiftadd", "mul")


def _digits(m: int):
    """Signed power-of-two digits ``[(shift, +1/-1)]`` of ``m > 0`` with the fewest nonzero
    digits; plain binary on ties (no subtraction)."""
    binary = [(k, 1) for k in range(m.bit_length()) if (m >> k) & 1]
    naf, k, x = [], 0, m
    while x:
        if x & 1:
            d = 2 - (x & 3)
            naf.append((k, d))
            x -= d
        x >>= 1
        k += 1
    return naf if len(naf) < len(binary) else binary


@dataclass(eq=False)
class _Node:
    """A value ``v * 2**shift`` with ``v`` in ``[lo, hi]``. kind: in, const, add, sub, mul."""
    kind: str
    lo: int
    hi: int
    shift: int = 0
    depth: int = 0
    args: tuple = ()
    cost: int = 0           # LUT estimate of this node's own logic
    uid: int = 0
    extra: dict = field(default_factory=dict)


class _Planner:
    """Builds the per-output adder DAG (pure Python, no HDL), with exact ranges."""

    def __init__(self):
        self._uid = itertools.count()

    def node(self, kind, lo, hi, shift=0, depth=0, args=(), cost=0, **extra):
        return _Node(kind, int(lo), int(hi), int(shift), depth, tuple(args), cost,
                     next(self._uid), extra)

    def add(self, a, b):
        p, q = (a, b) if a.shift <= b.shift else (b, a)
        d = q.shift - p.shift
        hlo, hhi = (p.lo >> d) + q.lo, (p.hi >> d) + q.hi
        return self.node("add", p.lo + (q.lo << d), p.hi + (q.hi << d), p.shift,
                         max(a.depth, b.depth) + 1, (p, q),
                         cost=shape_for(hlo, hhi).width, d=d)

    def sub(self, a, b):
        if a.shift <= b.shift:
            d = b.shift - a.shift
            lo, hi = a.lo - (b.hi << d), a.hi - (b.lo << d)
            cost = shape_for((a.lo >> d) - b.hi, (a.hi >> d) - b.lo).width
            shift = a.shift
        else:
            d = a.shift - b.shift
            lo, hi = (a.lo << d) - b.hi, (a.hi << d) - b.lo
            cost = shape_for(lo, hi).width
            shift = b.shift
        return self.node("sub", lo, hi, shift, max(a.depth, b.depth) + 1, (a, b),
                         cost=cost, d=d)

    def reduce(self, terms):
        """Sum terms, always combining the two shallowest (minimal depth), then narrowest."""
        if not terms:
            return None
        heap = [(t.depth, t.shift, t.hi - t.lo, t.uid, t) for t in terms]
        heapq.heapify(heap)
        while len(heap) > 1:
            a = heapq.heappop(heap)[-1]
            b = heapq.heappop(heap)[-1]
            if a.kind == "const" and b.kind == "const":
                s = min(a.shift, b.shift)
                v = (a.lo << (a.shift - s)) + (b.lo << (b.shift - s))
                n = self.const(v)
            else:
                n = self.add(a, b)
            heapq.heappush(heap, (n.depth, n.shift, n.hi - n.lo, n.uid, n))
        return heap[0][-1]

    def const(self, v):
        v = int(v)
        s = 0
        if v:
            while not (v >> s) & 1:
                s += 1
        return self.node("const", v >> s, v >> s, s)


def _plan_output(planner, xs, w_row, bias, style):
    """DAG for ``bias + sum_i w_row[i] * x_i``."""
    if style == "mul":
        terms = []
        for i, w in enumerate(w_row):
            if w == 0:
                continue
            x = xs[i]
            lo, hi = sorted((w * x.lo, w * x.hi))
            cost = 0 if abs(w) & (abs(w) - 1) == 0 else shape_for(lo, hi).width
            terms.append(planner.node("mul", lo, hi, 0, 1 if cost else 0, (x,), cost=cost,
                                      w=int(w)))
        if bias:
            terms.append(planner.const(bias))
        root = planner.reduce(terms)
        return root if root is not None else planner.const(0)
    # shift-add: group inputs by weight value, sum each group (narrow, unshifted), then add
    # each group sum once per signed power-of-two digit of its weight; positive and negative
    # terms are summed separately and subtracted once at the end.
    groups = {}
    for i, w in enumerate(w_row):
        if w:
            groups.setdefault(int(w), []).append(xs[i])
    pos, neg = [], []
    for w in sorted(groups, key=lambda v: (abs(v), v)):
        g = planner.reduce(groups[w])
        for k, sgn in _digits(abs(w)):
            t = planner.node("shl", g.lo, g.hi, g.shift + k, g.depth, (g,))
            (pos if sgn * np.sign(w) > 0 else neg).append(t)
    return _signed_sum(planner, pos, neg, bias)


def _signed_sum(planner, pos, neg, bias):
    """One node for ``sum(pos) - sum(neg) + bias`` (the bias joins the side of its sign; a
    constant 0 when nothing is left)."""
    if bias > 0:
        pos.append(planner.const(bias))
    elif bias < 0:
        neg.append(planner.const(-bias))
    p, n = planner.reduce(pos), planner.reduce(neg)
    if p is None and n is None:
        return planner.const(0)
    if n is None:
        return p
    if p is None:
        p = planner.const(0)
    return planner.sub(p, n)


def _low(v, d):
    """The ``d`` least significant bits of ``v``, sign- or zero-extended when ``v`` is narrower
    (a plain slice would silently return fewer bits and misplace everything above them)."""
    w = len(v)
    if w >= d:
        return v[:d]
    pad = [v[-1]] * (d - w) if v.shape().signed else [Const(0, d - w)]
    return Cat(v, *pad)


def _cat(low, high):
    """``low + high * 2**len(low)``, signed when ``high`` is."""
    v = Cat(low, high)
    return v.as_signed() if high.shape().signed else v


def _plan_layer_cse(planner, xs, weight, bias):
    """Whole-layer DAG: each output is a signed sum of shifted *digit sets* (inputs whose
    weight has a power-of-two digit there); input pairs shared by several sets are added once
    (greedy common-subexpression elimination, most shared pair first)."""
    sets = {}   # (out, shift, sign) -> list of nodes
    for o, row in enumerate(weight):
        for i, w in enumerate(row):
            w = int(w)
            if w:
                for k, sgn in _digits(abs(w)):
                    sets.setdefault((o, k, sgn * (1 if w > 0 else -1)), []).append(xs[i])
    byuid = {x.uid: x for x in xs}
    members = {key: {n.uid for n in v} for key, v in sets.items()}
    count, where = {}, {}
    heap = []

    def bump(pair, key, delta):
        c = count.get(pair, 0) + delta
        count[pair] = c
        if delta > 0:
            where.setdefault(pair, set()).add(key)
        else:
            where[pair].discard(key)
        if c >= 2:
            a, b = byuid[pair[0]], byuid[pair[1]]
            wid = shape_for(a.lo, a.hi).width + shape_for(b.lo, b.hi).width
            heapq.heappush(heap, (-c, wid, pair))

    for key in sorted(members):
        ms = sorted(members[key])
        for x in range(len(ms)):
            for y in range(x + 1, len(ms)):
                bump((ms[x], ms[y]), key, +1)
    while heap:
        negc, _, pair = heapq.heappop(heap)
        if count.get(pair, 0) != -negc or -negc < 2:
            continue
        a, b = byuid[pair[0]], byuid[pair[1]]
        t = planner.add(a, b)
        byuid[t.uid] = t
        for key in sorted(where[pair]):
            ms = members[key]
            for u in sorted(ms):
                for v in (pair[0], pair[1]):
                    if u != v and (min(u, v), max(u, v)) != pair:
                        bump((min(u, v), max(u, v)), key, -1)
            bump(pair, key, -1)
            ms.discard(pair[0])
            ms.discard(pair[1])
            for u in sorted(ms):
                bump((u, t.uid), key, +1)
            ms.add(t.uid)
        count[pair] = 0
    roots = []
    for o in range(weight.shape[0]):
        pos, neg = [], []
        for (oo, k, sgn), ms in sorted(members.items()):
            if oo != o:
                continue
            g = planner.reduce([byuid[u] for u in sorted(ms)])
            t = planner.node("shl", g.lo, g.hi, g.shift + k, g.depth, (g,))
            (pos if sgn > 0 else neg).append(t)
        roots.append(_signed_sum(planner, pos, neg, int(bias[o])))
    return roots


class DenseSpec(BlockSpec):
    """Spec (:mod:`ddnhw.hw.protocol`) of :class:`Dense`: the arguments checked and the adder
    graph planned (``roots``: one node per output; ``stage(node)``, ``walk()``)."""

    def __init__(self, weight, bias, in_type, out_type, regs_every=2, style="cse"):
        check_int_type("in_type", in_type)
        check_int_type("out_type", out_type)
        self.weight, self.bias = check_weight_bias(weight, bias)
        check_regs_every(regs_every)
        if style not in STYLES:
            raise ValueError(f"style must be one of {STYLES}, not {style!r}")
        self.in_type, self.out_type = in_type, out_type
        self.regs_every, self.style = regs_every, style
        self.n_out, self.n_in = self.weight.shape

        # plan
        planner = _Planner()
        self.inputs = [planner.node("in", in_type.min, in_type.max, args=(), index=j)
                       for j in range(self.n_in)]
        if style == "cse":
            roots = _plan_layer_cse(planner, self.inputs, self.weight, self.bias)
        else:
            roots = [_plan_output(planner, self.inputs, [int(v) for v in self.weight[k]],
                                  int(self.bias[k]), style) for k in range(self.n_out)]
        self.roots = []
        # exact output ranges (the DAG's interval ranges may be wider: x*8 - x*1 for weight 7)
        lo, hi = dense_range(self.weight, self.bias, in_type)
        for k, r in enumerate(roots):
            if not out_type.contains(int(lo[k]), int(hi[k])):
                raise ValueError(f"out_type {out_type} cannot hold output {k} range "
                                 f"[{lo[k]}, {hi[k]}]")
            self.roots.append(r)
        self.latency = max([1] + [self.stage(r) for r in self.roots])
        self.ii = 1
        self.in_shape = data.ArrayLayout(int_shape(in_type), self.n_in)
        self.out_shape = data.ArrayLayout(int_shape(out_type), self.n_out)
        self.estimate = self._estimate()

    # -- schedule ------------------------------------------------------------------------------
    def stage(self, n):
        """Stage whose combinational logic computes ``n`` (inputs: usable in stage 1)."""
        if n.kind == "const":
            return 0
        if n.kind == "in":
            return 1
        return max(1, -(-n.depth // self.regs_every))

    def walk(self):
        """Every node of the plan, arguments before their users."""
        seen, order = set(), []

        def visit(n):
            if n.uid in seen:
                return
            seen.add(n.uid)
            for a in n.args:
                visit(a)
            order.append(n)
        for r in self.roots:
            visit(r)
        return order

    def _estimate(self):
        luts, ffs = 0, self.latency  # valid shift register
        delays = {}
        for n in self.walk():
            luts += n.cost
            for a in n.args:
                need = self.stage(n) - self.stage(a) if a.kind != "const" else 0
                delays[a.uid] = max(delays.get(a.uid, 0), need, 0)
        byid = {n.uid: n for n in self.walk()}
        for r in self.roots:
            if r.kind != "const":
                delays[r.uid] = max(delays.get(r.uid, 0), self.latency + 1 - self.stage(r))
        for uid, k in delays.items():
            n = byid[uid]
            ffs += k * shape_for(n.lo, n.hi).width
        return {"luts": int(luts), "ffs": int(ffs)}

    def cycle_model(self):
        return PipelineModel(self.latency)

    def features(self):
        """The adder graph's LUT4 count (weighted by the family's ``dense`` coefficient) and
        its pipeline registers."""
        return cost_features(luts={"dense": self.estimate["luts"]},
                             ffs={"raw": self.estimate["ffs"]})


class Dense(SpecComponent, spec=DenseSpec):
    """``o[k] = bias[k] + sum_j weight[k, j] * i[j]``, fully unrolled with constant weights.

    Parameters
    ----------
    weight : integer array (n_out, n_in); zero weights generate no logic.
    bias : integer array (n_out,)
    in_type, out_type : :class:`ddnhw.ir.IntType` of input and output elements; ``out_type``
        must hold the exact worst-case range of every output for these weights.
    regs_every : a pipeline register after every this many adder levels (>= 1).
    style : ``"cse"`` (default, smallest: signed power-of-two digits of every weight, input
        pairs shared between outputs added once), ``"shiftadd"`` (per output: inputs grouped
        by weight, each group sum shifted per digit) or ``"mul"`` (``x * const``, for yosys).

    Attributes (from ``spec``, a :class:`DenseSpec`): ``latency``, ``ii`` (cycles),
    ``estimate`` (``{"luts", "ffs"}``, rough).

    Ports: ``i`` is ``In(stream.Signature(ArrayLayout(in shape, n_in)))``, ``o`` is
    ``Out(stream.Signature(ArrayLayout(out shape, n_out)))``.

    Timing: ``latency`` cycles from an accepted input to its output, ``ii == 1``. All pipeline
    registers advance together when ``~o.valid | o.ready``; ``i.ready`` is that enable.
    Arbitrary idle cycles and backpressure are tolerated.
    """

    # -- HDL -------------------------------------------------------------------------------------
    def elaborate(self, platform):
        m = Module()
        spec = self.spec
        ce = stall_pipeline(m, self.i, self.o, spec.latency)

        comb = {}      # uid -> Value usable in the node's own stage
        delayed = {}   # (uid, k) -> Value after k registers

        def value(n, stage):
            """The value of ``n`` usable combinationally in ``stage``."""
            if n.kind == "const":
                return Const(n.lo, shape_for(n.lo, n.hi))
            k = stage - spec.stage(n)
            assert k >= 0, (n, stage)
            v = comb[n.uid]
            for j in range(1, k + 1):
                key = (n.uid, j)
                if key not in delayed:
                    r = Signal(shape_for(n.lo, n.hi), name=f"n{n.uid}_d{j}", reset_less=True)
                    with m.If(ce):
                        m.d.sync += r.eq(v)
                    delayed[key] = r
                v = delayed[key]
            return v

        for n in spec.walk():
            shape = shape_for(n.lo, n.hi)
            if n.kind == "const":
                continue
            if n.kind == "in":
                comb[n.uid] = self.i.payload[n.extra["index"]]
                continue
            st = spec.stage(n)
            args = [value(a, st) for a in n.args]
            # keep: stops yosys alumacc from merging the planned adders (measured: fewer LCs)
            s = Signal(shape, name=f"n{n.uid}", attrs={"keep": 1})
            if n.kind == "shl":
                m.d.comb += s.eq(args[0])
            elif n.kind == "mul":
                m.d.comb += s.eq(args[0] * n.extra["w"])
            elif n.kind == "add":
                p, q = args
                d = n.extra["d"]
                if d == 0:
                    m.d.comb += s.eq(p + q)
                else:
                    pn = n.args[0]
                    hi = Signal(shape_for((pn.lo >> d) + n.args[1].lo,
                                           (pn.hi >> d) + n.args[1].hi), name=f"n{n.uid}_h")
                    m.d.comb += [hi.eq((p >> d) + q), s.eq(_cat(_low(p, d), hi))]
            elif n.kind == "sub":
                a, b = args
                an, bn = n.args
                d = n.extra["d"]
                if an.shift <= bn.shift:
                    if d == 0:
                        m.d.comb += s.eq(a - b)
                    else:
                        hi = Signal(shape_for((an.lo >> d) - bn.hi, (an.hi >> d) - bn.lo),
                                    name=f"n{n.uid}_h")
                        m.d.comb += [hi.eq((a >> d) - b), s.eq(_cat(_low(a, d), hi))]
                else:
                    m.d.comb += s.eq((a << d) - b)
            else:  # pragma: no cover
                raise AssertionError(n.kind)
            comb[n.uid] = s

        for k, r in enumerate(spec.roots):
            v = value(r, spec.latency + 1)
            if r.shift:
                v = _cat(Const(0, r.shift), v)
            m.d.comb += self.o.payload[k].eq(v)
        return m
