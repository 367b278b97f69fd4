"""Fully unrolled dense layer with constant weights: shift-add adder trees, pipelined."""
from __future__ import annotations

import bisect
import heapq
import itertools
from dataclasses import dataclass, field

import numpy as np
from amaranth.hdl import Cat, ClockSignal, Const, Instance, Module, Signal, Value
from amaranth.lib import data

from ddnhw.ir.ops import dense_range

from ._types import (PipelineModel, check_int_type, check_regs_every, check_weight_bias,
                     int_shape, shape_for, stall_pipeline)
from .dense_rtl import active_datapaths, dense_module
from .protocol import BlockSpec, SpecComponent, cost_features

__all__ = ["Dense", "DenseSpec"]

STYLES = ("cse", "shiftadd", "mul")


def _width(lo, hi):
    """``shape_for(lo, hi).width`` without building a shape."""
    if lo >= 0:
        return max(1, hi.bit_length())
    return max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1


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
                         cost=_width(hlo, hhi), d=d)

    def sub(self, a, b):
        if a.shift <= b.shift:
            d = b.shift - a.shift
            lo, hi = a.lo - (b.hi << d), a.hi - (b.lo << d)
            cost = _width((a.lo >> d) - b.hi, (a.hi >> d) - b.lo)
            shift = a.shift
        else:
            d = a.shift - b.shift
            lo, hi = (a.lo << d) - b.hi, (a.hi << d) - b.lo
            cost = _width(lo, hi)
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
    """Whole-layer DAG. Every output is a signed sum of shifted *terms* ``(value, shift,
    sign)``: first one per signed power-of-two digit of each weight. A pair of terms that
    recurs in several outputs with the same relative shift and sign (``x_i + 2**k * x_j``,
    ``x_i - x_j``, ``x_i - 4 * x_i``, ...) is computed once and replaces the pair wherever it
    occurs; greedily, the most frequent pair first (then the narrowest), until no pair recurs
    (pairwise common-subexpression elimination across the whole weight matrix). Each output
    then sums its terms as a tree, the shallowest first."""
    n_out = weight.shape[0]
    byuid = {x.uid: x for x in xs}
    width = {x.uid: _width(x.lo, x.hi) for x in xs}
    fresh = itertools.count()
    terms, by_uid = [], []         # per output: {tid: (uid, shift, sign)}, {uid: {tid}}
    for o in range(n_out):
        t, bu = {}, {}
        for i, w in enumerate(weight[o]):
            w = int(w)
            if w:
                u = xs[i].uid
                for k, sgn in _digits(abs(w)):
                    tid = next(fresh)
                    t[tid] = (u, k, sgn if w > 0 else -sgn)
                    bu.setdefault(u, set()).add(tid)
        terms.append(t)
        by_uid.append(bu)

    # a pattern's code: ((u * M + v) * 256 + dk + 128) * 2 + (sign product > 0), u <= v
    M = 1 << 22

    def decode(code):
        ds = 1 if code & 1 else -1
        code >>= 1
        dk = (code & 255) - 128
        code >>= 8
        return code // M, code % M, dk, ds

    codes = []
    for t in terms:
        if len(t) < 2:
            continue
        arr = np.array(sorted(t.values()), dtype=np.int64)
        i, j = np.triu_indices(len(arr), 1)
        u, k, sg = arr[:, 0], arr[:, 1], arr[:, 2]
        codes.append(((u[i] * M + u[j]) * 256 + (k[j] - k[i] + 128)) * 2
                     + (sg[i] == sg[j]))
    count, heap = {}, []
    if codes:
        uniq, cnt = np.unique(np.concatenate(codes), return_counts=True)
        count = dict(zip(uniq.tolist(), cnt.tolist()))
        # the heap of recurring patterns (every term an input here): (-count, adder width,
        # code), the width being the input's plus the relative shift
        rep = cnt >= 2
        dk = np.abs(((uniq[rep] >> 1) & 255) - 128)
        heap = list(zip((-cnt[rep]).tolist(),
                        (dk + _width(xs[0].lo, xs[0].hi)).tolist(),
                        uniq[rep].tolist()))

    def cost(code):
        u, v, dk, _ = decode(code)
        return max(width[u] + max(0, -dk), width[v] + max(0, dk))

    def codes_with(item, others):
        """Pattern codes of ``item`` paired with each of ``others``."""
        u1, k1, s1 = item
        as_u = u1 * M * 512 + 256 - 2 * k1         # item as the pair's u
        as_v = u1 * 512 + 256 + 2 * k1             # item as the pair's v
        mm = M * 512
        return [as_u + u2 * 512 + 2 * k2 + (s2 == s1) if (u1 < u2 or (u1 == u2 and k1 <= k2))
                else as_v + u2 * mm - 2 * k2 + (s2 == s1)
                for u2, k2, s2 in others]

    def matches(u, v, dk, ds):
        """Disjoint occurrences ``[(output, tid of u, tid of v, shift, sign)]`` of a
        pattern."""
        found = []
        for o in range(n_out):
            t, bu = terms[o], by_uid[o]
            if u not in bu or v not in bu:
                continue
            used = set()
            for t1 in sorted(bu[u]):
                if t1 in used:
                    continue
                _, k, sg = t[t1]
                want = (v, k + dk, sg * ds)
                for t2 in sorted(bu[v]):
                    if t2 != t1 and t2 not in used and t[t2] == want:
                        used.update((t1, t2))
                        found.append((o, t1, t2, k, sg))
                        break
        return found

    heapq.heapify(heap)
    while heap:
        negc, _, key = heapq.heappop(heap)
        c = count.get(key, 0)
        if c != -negc:                    # stale: counts fell since (or a newer entry)
            if 2 <= c < -negc:
                heapq.heappush(heap, (-c, cost(key), key))
            continue
        u, v, dk, ds = decode(key)
        occ = matches(u, v, dk, ds)
        a, b = byuid[u], byuid[v]
        # the shared node: u + ds * (v << dk) at u's shift (dk < 0: (u << -dk) + ds * v)
        if dk > 0:
            b = planner.node("shl", b.lo, b.hi, b.shift + dk, b.depth, (b,))
        elif dk < 0:
            a = planner.node("shl", a.lo, a.hi, a.shift - dk, a.depth, (a,))
        node = planner.add(a, b) if ds > 0 else planner.sub(a, b)
        byuid[node.uid] = node
        width[node.uid] = _width(node.lo, node.hi)
        base = min(0, dk)
        for o, t1, t2, k, sg in occ:
            t, bu = terms[o], by_uid[o]
            for tt in (t1, t2):
                item = t.pop(tt)
                bu[item[0]].discard(tt)
                if not bu[item[0]]:
                    del bu[item[0]]
                for kk in codes_with(item, t.values()):
                    count[kk] -= 1
            new = (node.uid, k + base, sg)
            for kk in codes_with(new, t.values()):
                cc = count.get(kk, 0) + 1
                count[kk] = cc
                if cc >= 2:
                    heapq.heappush(heap, (-cc, cost(kk), kk))
            tid = next(fresh)
            t[tid] = new
            bu.setdefault(node.uid, set()).add(tid)
        count[key] = 0
    roots = []
    for o in range(n_out):
        pos, neg = [], []
        groups = {}
        for uid, k, sg in sorted(terms[o].values()):
            groups.setdefault((k, sg), []).append(byuid[uid])
        for (k, sg) in sorted(groups):
            g = planner.reduce(groups[(k, sg)])
            t = planner.node("shl", g.lo, g.hi, g.shift + k, g.depth, (g,))
            (pos if sg > 0 else neg).append(t)
        roots.append(_signed_sum(planner, pos, neg, int(bias[o])))
    return roots


# the pair search of style "cse" runs on layers of up to this many signed power-of-two weight
# digits (the 64x32 4-bit peer layer has ~3,000; its time grows with the square of the digits
# per output); larger layers (which no board here holds unrolled) are planned "shiftadd"
CSE_MAX_TERMS = 20_000


def _digit_count(weight):
    """Signed power-of-two digits of all the weights in non-adjacent form (the set bits of
    ``(3|w| ^ |w|) >> 1``)."""
    a = np.abs(weight.astype(np.int64))
    x = ((3 * a) ^ a) >> 1
    n = 0
    while np.any(x):
        n += int(np.sum(x & 1))
        x >>= 1
    return n


_PLANS = {}          # (weights, bias, input range, style) -> (inputs, roots): last few plans
_PLANS_KEPT = 16


def _plan(weight, bias, in_type, style):
    """``(input nodes, output roots)`` of the adder graph; the same arguments give the same
    (shared, never modified) nodes: the flow plans every layer for its estimate, then again
    for the component, and planning a large layer takes a while."""
    key = (weight.shape, weight.tobytes(), bias.tobytes(), int(in_type.min),
           int(in_type.max), style)
    hit = _PLANS.get(key)
    if hit is not None:
        return hit
    planner = _Planner()
    inputs = [planner.node("in", in_type.min, in_type.max, args=(), index=j)
              for j in range(weight.shape[1])]
    if style == "cse" and _digit_count(weight) <= CSE_MAX_TERMS:
        roots = _plan_layer_cse(planner, inputs, weight, bias)
    elif style == "cse":      # too large for the pair search: grouped by weight per output
        roots = [_plan_output(planner, inputs, [int(v) for v in weight[k]], int(bias[k]),
                              "shiftadd") for k in range(weight.shape[0])]
    else:
        roots = [_plan_output(planner, inputs, [int(v) for v in weight[k]], int(bias[k]),
                              style) for k in range(weight.shape[0])]
    if len(_PLANS) >= _PLANS_KEPT:
        _PLANS.pop(next(iter(_PLANS)))
    _PLANS[key] = (inputs, roots)
    return inputs, roots


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
        self.inputs, roots = _plan(self.weight, self.bias, in_type, style)
        self.roots = []
        # exact output ranges (the DAG's interval ranges may be wider: x*8 - x*1 for weight 7)
        lo, hi = dense_range(self.weight, self.bias, in_type)
        for k, r in enumerate(roots):
            if not out_type.contains(int(lo[k]), int(hi[k])):
                raise ValueError(f"out_type {out_type} cannot hold output {k} range "
                                 f"[{lo[k]}, {hi[k]}]")
            self.roots.append(r)
        self._stages = self._schedule()
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
        return self._stages[n.uid]

    def _schedule(self):
        """``{uid: stage}``: pipeline registers cut the adder graph between adder levels, at
        most ``regs_every`` levels per stage, at the levels where the fewest bits cross (a
        register costs one flip-flop per bit of every value computed at or below the cut and
        used above it; the outputs are used after the last level). Minimal bits first, then
        fewest cuts (dynamic programming over the levels)."""
        nodes = self.walk()
        depth_max = max([0] + [n.depth for n in nodes])
        use = {}                       # uid -> deepest level that reads it
        for n in nodes:
            for a in n.args:
                use[a.uid] = max(use.get(a.uid, 0), n.depth)
        for r in self.roots:
            use[r.uid] = depth_max + 1
        # diff[c]: bits crossing the boundary after level c (prefix sums of +w at depth, -w
        # at the deepest use)
        diff = [0] * (depth_max + 3)
        for n in nodes:
            if n.kind == "const" or n.uid not in use or use[n.uid] <= n.depth:
                continue
            w = _width(n.lo, n.hi)
            diff[n.depth] += w
            diff[use[n.uid]] -= w
        cross, run = [0] * (depth_max + 2), 0
        for c in range(depth_max + 1):
            run += diff[c]
            cross[c] = run
        step = self.regs_every
        # best[c]: (bits, cuts) of the cheapest cut set with its last cut after level c
        best = {0: (0, 0)}
        prev = {0: None}
        for c in range(1, depth_max):
            cands = [(best[p][0] + cross[c], best[p][1] + 1, p)
                     for p in range(max(0, c - step), c) if p in best]
            if cands:
                b = min(cands)
                best[c], prev[c] = b[:2], b[2]
        ends = [c for c in best if depth_max - c <= step]
        c = min(ends, key=lambda c: best[c])
        cuts = []
        while c:
            cuts.append(c)
            c = prev[c]
        cuts.sort()
        return {n.uid: 1 + bisect.bisect_left(cuts, n.depth) for n in nodes}

    def walk(self):
        """Every node of the plan, arguments before their users (a new list)."""
        order = getattr(self, "_order", None)
        if order is not None and getattr(self, "_order_roots", None) is self.roots:
            return list(order)
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
        self._order, self._order_roots = order, self.roots
        return list(order)

    def _estimate(self):
        luts, ffs, adders = 0, self.latency, 0  # valid shift register
        delays = {}
        order = self.walk()
        for n in order:
            luts += n.cost
            adders += n.cost > 0
            for a in n.args:
                need = self.stage(n) - self.stage(a) if a.kind != "const" else 0
                delays[a.uid] = max(delays.get(a.uid, 0), need, 0)
        byid = {n.uid: n for n in order}
        for r in self.roots:
            if r.kind != "const":
                delays[r.uid] = max(delays.get(r.uid, 0), self.latency + 1 - self.stage(r))
        for uid, k in delays.items():
            n = byid[uid]
            ffs += k * _width(n.lo, n.hi)
        return {"luts": int(luts), "ffs": int(ffs), "adders": int(adders)}

    def cycle_model(self):
        return PipelineModel(self.latency)

    def features(self):
        """The adder graph's LUT4 count (weighted by the family's ``dense`` coefficient), its
        adders (``dense_adder``: each carry chain's own overhead in the placed design: ~4.5
        ECP5 slice halves), its flip-flops as logic (``dense_ff``: iCE40 logic cells that hold
        a register no adder's LUT does) and its pipeline registers."""
        return cost_features(luts={"dense": self.estimate["luts"],
                                   "dense_adder": self.estimate["adders"],
                                   "dense_ff": self.estimate["ffs"]},
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
        mods = active_datapaths()
        if mods is not None:      # the datapath as Verilog text (ddnhw.hw.dense_rtl)
            name, text = dense_module(spec)
            mods[name] = text
            y = Signal(len(Value.cast(self.o.payload)))
            m.submodules.datapath = Instance(name, i_clk=ClockSignal(), i_ce=ce,
                                             i_x=Value.cast(self.i.payload), o_y=y)
            m.d.comb += Value.cast(self.o.payload).eq(y)
            return m

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
            # no keep attribute: this datapath is simulated and proved, never synthesized (the
            # flow writes ddnhw.hw.dense_rtl's, which keeps adder outputs bit by bit)
            s = Signal(shape, name=f"n{n.uid}")
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
