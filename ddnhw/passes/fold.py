"""Folding selection: per-layer (PE, SIMD) that fits a resource budget at the highest throughput,
written into every foldable node as ``hw.fold``.

:func:`plan` is the planner. The network's II is the largest layer II; it tries every
achievable network II from the smallest up and, for each, gives every foldable layer its
cheapest candidate (its lowering's ``fold_options``: for a dense layer its matrix folded to
every ``(pe, simd)`` and, when small, unrolled) whose II is at most that (so no layer is faster
than the slowest one needs: the layers' IIs come out balanced). A conv2d layer folds the matrix
of its filters (PE output channels x SIMD window lanes per cycle; a grouped or depthwise one
only its groups' lanes, so it steps over its real weights); its II is per image and its
estimates include its sliding-window line buffer. The first II whose total estimate fits the
budget (less the safety ``margin``) wins.

:func:`choose` is the one decision every command makes for a model and a budget (``ddnhw
generate``, ``cosim``, ``build`` and the demos): unrolled when that fits, else :func:`plan`.
:class:`FoldSelection` is that decision as a pass.
"""
from __future__ import annotations

import math
from dataclasses import replace

from ddnhw import DdnhwError
from ddnhw.lower.estimate import OPTIONAL_RESOURCES, RESOURCES, estimate_block
from ddnhw.lower.stream import stream_flatten
from ddnhw.hw.family import Budget
from ddnhw.lower.registry import foldable, lower_spec, lowering

from .base import HW, Pass, copy_graph, hw_of, set_hw
from .overrides import SetFolding

__all__ = ["Budget", "plan", "choose", "select", "FoldSelection", "FOLDINGS",
           "layer_options"]

FOLDINGS = ("auto", "none")


def _bounds(budget) -> dict:
    """``{resource: bound}`` of a :class:`Budget` (``ffs`` bounded by ``luts`` when the
    budget gives no FF bound)."""
    out = budget.limits()
    if "ffs" not in out and "luts" in out:
        out["ffs"] = out["luts"]
    return out


def layer_options(graph, node, family, requant=None):
    """Every candidate implementation of foldable ``node`` (its lowering's ``fold_options``):
    list of dicts with ``fold`` (``(pe, simd)`` or None for unrolled), ``ii`` and
    ``estimate``. ``requant``: the requant node that follows (fused into the folded
    candidates; a separate Requantizer when unrolled), whose cost is then included."""
    return lowering(node.op).fold_options(graph, node, family, requant)


def _add(a, b):
    keys = RESOURCES + tuple(k for k in OPTIONAL_RESOURCES if k in a or k in b)
    return {k: a.get(k, 0) + b.get(k, 0) for k in keys}


def _bare(graph):
    """The graph without ``hw`` annotations (the planner's starting point)."""
    g = copy_graph(graph)
    for n in g.nodes:
        n.attrs.pop(HW, None)
    return g


def _fusable(graph):
    """``{foldable node name: requant node}`` that each would compute when folded."""
    from .requant_fusion import RequantFusion
    g = copy_graph(graph)
    for n in g.nodes:
        if foldable(n.op):
            set_hw(n, "fold", (1, 1))
    g, _ = RequantFusion().apply(g)
    return {n.name: graph.node(hw_of(n)["fuse_requant"]) for n in g.nodes
            if hw_of(n).get("fuse_requant") is not None}


def plan(graph, budget=None, target_ii=None, margin=0.15, fallback_margin=None,
         max_luts=None) -> dict:
    """The folding and its reasoning: dict with ``folding`` (``{layer: (pe, simd) or None}``),
    ``ii``, ``estimate`` (total), ``layers`` (name -> fold, ii, estimate), ``budget`` (the
    bounded resources), ``limit``, ``family``, ``margin``.

    ``budget``: a :class:`~ddnhw.hw.family.Budget` (None: none, ice40 calibration; a board
    profile's is ``profile.budget_for()``). ``max_luts`` replaces its
    LUT bound. ``target_ii``: the network II must be at most this; the cheapest folding that
    meets it is returned (with a budget, it must also fit). Without ``target_ii`` the smallest
    II that fits is chosen. ``margin``: fraction of every budget held back (0.15 = use at
    most 85%); when nothing fits and ``fallback_margin`` (smaller) is given, with that instead.
    Whole-network estimates are within about -13%..+9% of nextpnr (bench/results/cnn.md,
    bench/results/folding.md), and on the iCE40UP5K digits CNN foldings at 89-91% of the logic
    cells did not place: the flow falls back to 7% on a board where 15% leaves nothing.

    Every choice has ``pe`` dividing the layer's outputs and ``simd`` its inputs (a grouped
    conv: one group's window lanes, ``pe`` within a group or whole groups). Raises
    :class:`ddnhw.DdnhwError` when nothing fits, naming the smallest footprint and the layer
    that dominates it. The graph's own ``hw`` annotations are ignored.
    """
    try:
        return _plan(graph, budget, target_ii, margin, max_luts)
    except DdnhwError:
        if fallback_margin is None or not 0 <= fallback_margin < margin:
            raise
        return _plan(graph, budget, target_ii, fallback_margin, max_luts)


def _budget(budget, max_luts):
    budget = budget if budget is not None else Budget("ice40")
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget, not {budget!r}")
    if max_luts is not None:
        if not isinstance(max_luts, int) or isinstance(max_luts, bool) or max_luts <= 0:
            raise ValueError(f"max_luts must be a positive int, not {max_luts!r}")
        # the FF bound stays the device's (or, without one, follows the LUT bound)
        budget = replace(budget, luts=max_luts, ffs=budget.ffs if budget.ffs is not None
                         else budget.luts)
    return budget


def _plan(graph, budget, target_ii, margin, max_luts):
    budget = _budget(budget, max_luts)
    family = budget.family
    if target_ii is not None and (not isinstance(target_ii, int) or target_ii < 1):
        raise ValueError(f"target_ii must be an int >= 1, not {target_ii!r}")
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), not {margin!r}")
    bounds = _bounds(budget)
    if not bounds and target_ii is None:
        raise ValueError("folding needs a budget (a Budget with bounds, max_luts) or target_ii")
    limit = {k: v * (1 - margin) for k, v in bounds.items()}

    graph = _bare(graph)
    layers = [n for n in graph.nodes if foldable(n.op)]
    # a requant after a dense/conv layer is fused when that layer folds (see RequantFusion)
    fusable = _fusable(graph)
    options = {n.name: layer_options(graph, n, family, fusable.get(n.name)) for n in layers}
    skip = {r.name for r in fusable.values()} | set(stream_flatten(graph))
    # the nodes no layer's candidates include (SPRAM counted where the budget has it)
    fixed = dict.fromkeys(RESOURCES + tuple(k for k in OPTIONAL_RESOURCES if k in limit), 0)
    for n in graph.nodes:
        if not foldable(n.op) and n.name not in skip:
            fixed = _add(fixed, estimate_block(lower_spec(graph, n), family))

    def cost(est):
        """Scalar cost: budget fractions summed (LUTs only without a budget)."""
        if not limit:
            return est["luts"] + est["ffs"] / 4
        return sum(est.get(k, 0) / max(limit[k], 1) for k in limit)

    def pick(ii_max, moved=()):
        """Cheapest candidate per layer within ``ii_max``; a candidate that keeps its weights
        elsewhere than block RAM (``"hw"``: SPRAM) only for the layers in ``moved``."""
        choice = {}
        for name, opts in options.items():
            ok = [o for o in opts if o["ii"] <= ii_max and ("hw" not in o or name in moved)]
            if not ok:
                return None
            choice[name] = min(ok, key=lambda o: (cost(o["estimate"]), o["ii"],
                                                  o["fold"] or (0, 0)))
        return choice

    def fits(total):
        return all(total.get(k, 0) <= limit[k] for k in limit)

    def total_of(choice):
        t = dict(fixed)
        for o in choice.values():
            t = _add(t, o["estimate"])
        return t

    candidates = sorted({o["ii"] for opts in options.values() for o in opts})
    if target_ii is not None:
        if pick(target_ii) is None:
            raise DdnhwError(f"target_ii {target_ii} is below the smallest II some layer can "
                             f"reach ({max(min(o['ii'] for o in v) for v in options.values())})")
        candidates = [target_ii]
    for ii in candidates:
        choice = pick(ii)
        if choice is None:
            continue
        total = total_of(choice)
        if not fits(total) and limit.get("spram"):
            choice, total = _move_to_spram(choice, ii, options, pick, total_of, fits)
        if fits(total):
            return {"folding": {name: o["fold"] for name, o in choice.items()},
                    "hw": {name: dict(o["hw"]) for name, o in choice.items() if "hw" in o},
                    "ii": max(o["ii"] for o in choice.values()), "estimate": total,
                    "layers": {n: {"fold": o["fold"], "ii": o["ii"], "estimate": o["estimate"]}
                               for n, o in choice.items()},
                    "budget": bounds, "limit": limit, "family": family, "margin": margin}

    # nothing fits: report the smallest footprint and its dominant layer
    ii_cap = target_ii if target_ii is not None else candidates[-1]
    smallest = {name: min((o for o in opts if o["ii"] <= ii_cap),
                          key=lambda o: (cost(o["estimate"]), o["ii"]))
                for name, opts in options.items()}
    total = total_of(smallest)
    over = [k for k in limit if total.get(k, 0) > limit[k]] or list(limit)
    key = max(over, key=lambda k: total.get(k, 0) / max(limit[k], 1))
    dom = max(smallest, key=lambda n: smallest[n]["estimate"].get(key, 0))
    what = (f"target II {target_ii}" if target_ii is not None else "any folding")
    parts = ", ".join(f"{k} {total.get(k, 0)} of {math.floor(limit[k])}" for k in limit)
    raise DdnhwError(
        f"nothing fits with {what} ({family} budget less {margin:.0%} margin): the smallest "
        f"footprint is {parts}; layer {dom!r} dominates it "
        f"({smallest[dom]['estimate'].get(key, 0)} {key} at (pe, simd) = "
        f"{smallest[dom]['fold']})")


def _move_to_spram(choice, ii, options, pick, total_of, fits):
    """``(choice, total)`` with the weights of layers that can keep them in SPRAM moved there,
    the largest block RAM user first, one more layer at a time until the plan fits (or
    every such layer is moved)."""
    movable = sorted((n for n, opts in options.items() if any("hw" in o for o in opts)),
                     key=lambda n: (-choice[n]["estimate"].get("brams", 0), n))
    moved = set()
    best = (choice, total_of(choice))
    for name in movable:
        moved.add(name)
        c = pick(ii, moved)
        if c is None:
            continue
        best = (c, total_of(c))
        if fits(best[1]):
            break
    return best


def choose(graph, budget, folding="auto", *, target_ii=None, max_luts=None, margin=0.15,
           unrolled_margin=0.05, fallback_margin=0.07) -> dict:
    """How ``graph`` is folded for ``budget`` (a :class:`Budget`): dict with ``mode``
    (``"unrolled"``, ``"auto"`` or ``"explicit"``), ``folding`` (``{layer: (pe, simd) or
    None}``, or None: fully unrolled), ``family`` and, unless explicit, ``unrolled_estimate``,
    ``limit`` (the budget less ``margin``), ``margin``, ``unrolled_margin``; when folded
    automatically also ``estimate`` and ``ii`` of the plan.

    ``folding``: ``"auto"`` (default): fully unrolled when its estimate fits the budget
    less ``unrolled_margin`` (the
    unrolled estimate is calibrated within ~6% on whole networks, and unrolled is the fastest
    there is; the digits MLP is at ~90% of the UP5K) and neither ``target_ii`` nor
    ``max_luts`` is given, else :func:`plan` (with ``target_ii``/``max_luts``; with
    ``fallback_margin`` when nothing fits with ``margin`` and neither is given; ``margin`` in
    the result is the one used); ``"none"``: fully unrolled; or an explicit ``{layer: (pe,
    simd)}`` dict. The graph's own ``hw`` annotations are ignored.
    """
    from ddnhw.lower.network import network_estimate
    if not isinstance(budget, Budget):
        raise TypeError(f"budget must be a Budget, not {budget!r}")
    family = budget.family
    if isinstance(folding, dict):
        if target_ii is not None or max_luts is not None:
            raise DdnhwError("target_ii/max_luts apply only to folding='auto'")
        return {"mode": "explicit", "folding": dict(folding), "family": family}
    if folding not in FOLDINGS:
        raise DdnhwError(f"unknown folding {folding!r}; choose one of {FOLDINGS} or give a "
                         f"{{layer: (pe, simd)}} dict")
    if folding == "none" and (target_ii is not None or max_luts is not None):
        raise DdnhwError("target_ii/max_luts need folding='auto'")
    margin, fallback_margin = _fill_margins(family, margin, fallback_margin)
    est = network_estimate(_bare(graph), family=family)
    bounds = _bounds(_budget(budget, max_luts))
    limit = {k: v * (1 - margin) for k, v in bounds.items()}
    info = {"family": family, "unrolled_estimate": est, "margin": margin,
            "unrolled_margin": unrolled_margin, "limit": {k: int(v) for k, v in limit.items()}}
    fits = all(est.get(k, 0) <= v * (1 - unrolled_margin) for k, v in bounds.items())
    if folding == "none" or (fits and target_ii is None and max_luts is None):
        return {"mode": "unrolled", "folding": None, **info}
    p = plan(graph, budget, target_ii=target_ii, max_luts=max_luts, margin=margin,
             fallback_margin=(fallback_margin if target_ii is None and max_luts is None
                              else None))
    info.update(margin=p["margin"], limit={k: int(v) for k, v in p["limit"].items()})
    if p.get("hw"):       # per-layer memory placement (weights in SPRAM)
        info["hw"] = p["hw"]
    return {"mode": "auto", "folding": p["folding"], "estimate": p["estimate"], "ii": p["ii"],
            **info}


def _fill_margins(family, *margins):
    """The folding margins raised to at least ``1 - fill_limit`` of ``family``
    (:attr:`ddnhw.hw.family.Family.fill_limit`: fuller folded designs do not place in
    minutes); None stays None. The unrolled check keeps its own margin (an unrolled network's
    estimate errs high, and the demo MLP unrolled at 84 % of the UP5K places in a minute)."""
    from ddnhw.hw.family import get_family
    floor = 1.0 - get_family(family).fill_limit
    return tuple(None if m is None else max(m, floor) for m in margins)


def _annotate(graph, folding, hw=None):
    """Write ``hw.fold`` on every foldable node of ``graph`` (in place) from ``folding``
    (None: every layer unrolled), and ``hw.mem`` from ``hw`` (``{layer: {"mem": ...}}``:
    where a layer's weights live; removed from every other foldable node)."""
    SetFolding(folding or {}).annotate(graph)
    for n in graph.nodes:
        if foldable(n.op):
            set_hw(n, "mem", (hw or {}).get(n.name, {}).get("mem"))


def select(graph, budget, folding="auto", **kw):
    """``(annotated graph, plan)``: :func:`choose` (same arguments) and its folding written
    as ``hw.fold`` on every foldable node of a copy of ``graph``."""
    p = choose(graph, budget, folding, **kw)
    g = copy_graph(graph)
    _annotate(g, p["folding"], p.get("hw"))
    return g, p


class FoldSelection(Pass):
    """``hw.fold`` on every foldable node: :func:`choose` for ``budget`` (a :class:`Budget`)
    with the other arguments of :func:`choose`. The decision depends on the graph without its
    annotations only, so a second run changes nothing; ``plan``: the last decision."""

    def __init__(self, budget, folding="auto", **kw):
        self.budget, self.folding, self.kw = budget, folding, kw
        self.plan = None
        self._memo = {}

    def annotate(self, graph):
        from ddnhw.lower.network import graph_sha256
        key = graph_sha256(graph, hw=False)
        if key not in self._memo:
            self._memo[key] = choose(graph, self.budget, self.folding, **self.kw)
        self.plan = self._memo[key]
        _annotate(graph, self.plan["folding"], self.plan.get("hw"))

    def __repr__(self):
        return f"FoldSelection({self.budget!r}, {self.folding!r})"
