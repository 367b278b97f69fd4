"""Automatic folding: per-layer (PE, SIMD) that fits a resource budget at the highest throughput.

:func:`auto_fold` returns the ``folding`` dict that :func:`ddnhw.lower.build_network` and
:func:`ddnhw.lower.generate` take. The network's II is the largest layer II; the search tries
every achievable network II from the smallest up and, for each, gives every dense layer its
cheapest configuration whose II is at most that (so no layer is faster than the slowest one
needs: the layers' IIs come out balanced). A conv2d layer folds the matrix of its filters
(PE output channels x SIMD window lanes per cycle); its II is per image (the MAC runs once per
window) and its estimates include its sliding-window line buffer. The first II whose total estimate fits the budget
(less the safety ``margin``) wins.
"""
from __future__ import annotations

import math


from ddnhw import DdnhwError
from ddnhw.ir.ops import RECURRENT_OPS, dense_range
from .estimate import RESOURCES, estimate_block, estimate_folded, lane_requant_luts

__all__ = ["auto_fold", "plan_folding", "layer_options", "divisors"]

# the ops whose MAC folds (a conv2d's over its window matrix, an rnn/gru's over [x_t, h])
FOLDABLE = ("dense", "conv2d") + RECURRENT_OPS
# an unrolled Dense is planned (to estimate it) only for layers up to this many weights
UNROLLED_MAX_WEIGHTS = 1024


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _bits(lo, hi):
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1


def layer_options(graph, node, family, requant=None):
    """Every candidate implementation of dense or conv2d ``node``: list of dicts with ``fold``
    (``(pe, simd)`` or None for unrolled), ``ii`` and ``estimate``. ``requant``: the requant
    node that follows (fused into the folded options; a separate Requantizer when unrolled),
    whose cost is then included.

    A conv2d is its :class:`~ddnhw.hw.window.SlidingWindow` and a MAC over the
    :func:`~ddnhw.lower.registry.conv_matrix` that runs once per window: its options fold that
    matrix, its ``ii`` is per image (:func:`~ddnhw.lower.timing.window_mac_ii`) and every
    estimate includes the window generator."""
    if node.op == "conv2d":
        return _conv_options(graph, node, family, requant)
    if node.op in RECURRENT_OPS:
        return _recurrent_options(graph, node, family)
    return _matrix_options(graph, node, node.attrs["weight"], node.attrs["bias"], family,
                           requant)


def _matrix_options(graph, node, w, b, family, requant):
    """Options of a MAC over the matrix ``w`` (``ii`` per input vector)."""
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    n_out, n_in = w.shape
    lo, hi = dense_range(w, b, xt)
    acc = _bits(int(min(lo)), int(max(hi)))
    wb = _bits(int(w.min()), int(w.max()))
    mul = "lut" if min(wb, xt.bits) <= 4 else "dsp"
    out_bits = yt.bits if requant is None else graph.tensors[requant.outputs[0]].dtype.bits
    opts = []
    for pe in divisors(n_out):
        rq = 0 if requant is None else lane_requant_luts(
            requant.attrs["multiplier"], requant.attrs["shift"], acc, out_bits, pe)
        for simd in divisors(n_in):
            if (pe, simd) == (n_out, n_in) and w.size <= UNROLLED_MAX_WEIGHTS:
                continue   # constant weights: the unrolled Dense below is that option
            est = estimate_folded(family, n_out=n_out, n_in=n_in, weight_bits=wb,
                                  in_bits=xt.bits, acc_bits=acc, out_bits=out_bits, pe=pe,
                                  simd=simd, mul=mul, requant_luts=rq)
            opts.append({"fold": (pe, simd), "ii": (n_in // simd) * (n_out // pe),
                         "estimate": est})
    if w.size <= UNROLLED_MAX_WEIGHTS:
        from ddnhw.hw import DenseSpec
        est = estimate_block(DenseSpec(w, b, xt, yt), family)
        if requant is not None:
            from .registry import lower_spec
            est = _add(est, estimate_block(lower_spec(graph, requant), family))
        opts.append({"fold": None, "ii": 1, "estimate": est})
    return opts


def _conv_options(graph, node, family, requant):
    from .registry import conv_matrix, window_for
    from .timing import window_mac_ii
    a = node.attrs
    x = graph.tensors[node.inputs[0]]
    w = conv_matrix(a["weight"], x.shape[-1], int(a.get("groups", 1)))
    win = window_for(graph, node)
    win_est = estimate_block(win, family)
    per_image = {}
    opts = _matrix_options(graph, node, w, a["bias"], family, requant)
    for o in opts:
        fused = o["fold"] is not None and requant is not None
        key = (o["ii"], fused)
        if key not in per_image:
            per_image[key] = window_mac_ii(win, o["ii"], fused)
        o["ii"] = per_image[key]
        o["estimate"] = _add(o["estimate"], win_est)
    return opts


def _recurrent_options(graph, node, family):
    """Options of an rnn/gru layer: its MAC engine folded to every ``(pe, simd)`` (the gate
    unit then handles one hidden unit per cycle), or unrolled (all gate lanes) when its matrix
    has at most :data:`UNROLLED_MAX_WEIGHTS` weights. ``ii`` is per sequence; the estimates
    are the blocks' own (engine plus gate unit)."""
    from .registry import lower_spec

    def option(fold):
        b = lower_spec(graph, node, folding={node.name: fold})
        return {"fold": fold, "ii": int(b.ii), "estimate": estimate_block(b, family)}
    rows, cols = node.attrs["weight"].shape
    opts = [option((pe, simd)) for pe in divisors(rows) for simd in divisors(cols)
            if (pe, simd) != (rows, cols) or rows * cols > UNROLLED_MAX_WEIGHTS]
    if rows * cols <= UNROLLED_MAX_WEIGHTS:
        opts.append(option(None))
    return opts


def _fixed_cost(graph, family, fusable):
    """Estimate of the nodes that no dense or conv2d layer's options include."""
    from .registry import lower_spec
    skip = {r.name for r in fusable.values()}
    total = dict.fromkeys(RESOURCES, 0)
    for n in graph.nodes:
        if n.op not in FOLDABLE and n.name not in skip:
            est = estimate_block(lower_spec(graph, n), family)
            for k in RESOURCES:
                total[k] += est.get(k, 0)
    return total


def _add(a, b):
    return {k: a.get(k, 0) + b.get(k, 0) for k in RESOURCES}


def auto_fold(graph, board=None, target_ii=None, max_luts=None, margin=0.15, family=None,
              fallback_margin=None):
    """Choose ``{dense or conv2d layer name: (pe, simd) or None}`` (None: fully unrolled).

    The folding of :func:`plan_folding` (same arguments), which also returns the estimates.
    """
    return plan_folding(graph, board, target_ii, max_luts, margin, family,
                        fallback_margin)["folding"]


def plan_folding(graph, board=None, target_ii=None, max_luts=None, margin=0.15, family=None,
                 fallback_margin=None):
    """:func:`_plan` with ``margin``; when nothing fits and ``fallback_margin`` (smaller) is
    given, with that instead (the plan's ``margin`` says which one it used).

    Whole-network estimates are within about -13%..+9% of nextpnr (bench/results/cnn.md,
    bench/results/folding.md), and on the iCE40UP5K digits CNN foldings at 89-91% of the logic
    cells did not place: :func:`ddnhw.flow.choose_folding` falls back to 7% on a board where
    15% leaves nothing (the digits CNN on the UP5K: its smallest folding is estimated at 90%
    and built at 81%; the plan at 7%, estimated 4880 LCs, built 4261 LCs, 81%)."""
    try:
        return _plan(graph, board, target_ii, max_luts, margin, family)
    except DdnhwError:
        if fallback_margin is None or not 0 <= fallback_margin < margin:
            raise
        return _plan(graph, board, target_ii, max_luts, fallback_margin, family)


def _plan(graph, board=None, target_ii=None, max_luts=None, margin=0.15, family=None):
    """The folding and its reasoning: dict with ``folding``, ``ii``, ``estimate`` (total),
    ``layers`` (name -> fold, ii, estimate), ``budget``, ``limit``, ``family``, ``margin``.

    ``board``: a board name or profile; its budget (``luts``, ``dsps``, ``brams``; FFs are
    bounded by ``luts``) applies. ``max_luts`` replaces (or, without a board, sets) the LUT
    budget. ``target_ii``: the network II must be at most this; the cheapest folding that
    meets it is returned (with a budget, it must also fit). Without ``target_ii`` the smallest
    II that fits is chosen. ``margin``: fraction of every budget held back (0.15 = use at
    most 85%). ``family`` (``"ice40"``/``"ecp5"``) picks the estimate's calibration; it
    defaults to the board's family, else ``"ice40"``.

    Every choice has ``pe`` dividing the layer's outputs and ``simd`` its inputs. Raises
    :class:`ddnhw.DdnhwError` when nothing fits, naming the smallest footprint and the layer
    that dominates it.
    """
    budget = {}
    if board is not None:
        from ddnhw.board import get_board
        profile = get_board(board)
        family = family or profile.family
        budget = {k: profile.budget[k] for k in ("luts", "dsps", "brams") if k in profile.budget}
        budget["ffs"] = budget.get("luts", 0)
    family = family or "ice40"
    if max_luts is not None:
        if not isinstance(max_luts, int) or max_luts <= 0:
            raise ValueError(f"max_luts must be a positive int, not {max_luts!r}")
        budget["luts"] = max_luts
        budget.setdefault("ffs", max_luts)
    if target_ii is not None and (not isinstance(target_ii, int) or target_ii < 1):
        raise ValueError(f"target_ii must be an int >= 1, not {target_ii!r}")
    if not 0 <= margin < 1:
        raise ValueError(f"margin must be in [0, 1), not {margin!r}")
    if not budget and target_ii is None:
        raise ValueError("auto_fold needs a board, max_luts or target_ii")
    limit = {k: v * (1 - margin) for k, v in budget.items()}

    from .registry import fusions
    dense = [n for n in graph.nodes if n.op in FOLDABLE]
    # a requant after a dense/conv layer is fused when that layer folds (see Network)
    fusable = fusions(graph, folding={n.name: (1, 1) for n in dense})
    options = {n.name: layer_options(graph, n, family, fusable.get(n.name)) for n in dense}
    fixed = _fixed_cost(graph, family, fusable)

    def cost(est):
        """Scalar cost: budget fractions summed (LUTs only without a budget)."""
        if not limit:
            return est["luts"] + est["ffs"] / 4
        return sum(est.get(k, 0) / max(limit[k], 1) for k in limit)

    def pick(ii_max):
        choice = {}
        for name, opts in options.items():
            ok = [o for o in opts if o["ii"] <= ii_max]
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
        if fits(total):
            return {"folding": {name: o["fold"] for name, o in choice.items()},
                    "ii": max(o["ii"] for o in choice.values()), "estimate": total,
                    "layers": {n: {"fold": o["fold"], "ii": o["ii"], "estimate": o["estimate"]}
                               for n, o in choice.items()},
                    "budget": budget, "limit": limit, "family": family, "margin": margin}

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

