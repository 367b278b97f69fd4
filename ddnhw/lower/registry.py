"""IR op -> hardware block factory registry."""
from __future__ import annotations

import numpy as np

from ddnhw.hw import (AlignedAddSpec, ChainSpec, CollectorSpec, DenseSpec, FoldedDenseSpec,
                      RequantizerSpec, SlidingWindowSpec, WindowPoolSpec, XnorDenseSpec)
from ddnhw.hw.recurrent import OPS as RECURRENT_BLOCK_OPS
from ddnhw.hw.xnor import binary_rows
from ddnhw.ir.ops import conv_matrix, pool_kernel

from .timing import window_mac_ii

__all__ = ["LOWERINGS", "register", "lower_node", "lower_spec", "fusions", "conv_matrix",
           "bipolar_tensor", "window_for", "requant_idle_channels"]

LOWERINGS = {}


def register(op):
    """Decorator: ``factory(graph, node, **options) -> block spec`` (:mod:`ddnhw.hw.protocol`)
    for IR op ``op``."""
    def deco(fn):
        if op in LOWERINGS:
            raise ValueError(f"op {op!r} already has a lowering")
        LOWERINGS[op] = fn
        return fn
    return deco


def lower_node(graph, node, **options):
    """The component of ``node``: :func:`lower_spec` built."""
    return lower_spec(graph, node, **options).build()


def lower_spec(graph, node, **options):
    """The block spec of ``node`` (validated; no component is created)."""
    try:
        factory = LOWERINGS[node.op]
    except KeyError:
        raise ValueError(f"node {node.name!r}: no hardware lowering for op {node.op!r} "
                         f"(have: {', '.join(sorted(LOWERINGS))})") from None
    return factory(graph, node, **options)


def fusions(graph, folding=None, fuse_requant=True, **_):
    """``{dense or conv2d node name: requant node}`` for every folded dense or conv layer whose
    only consumer is a requant node (the lowering computes that requantization in the folded
    block)."""
    if not fuse_requant:
        return {}
    folding = folding or {}
    out = {}
    for n, nxt in zip(graph.nodes, graph.nodes[1:]):
        if (n.op in ("dense", "conv2d") and folding.get(n.name) is not None
                and nxt.op == "requant"
                and nxt.inputs == n.outputs
                and sum(n.outputs[0] in m.inputs for m in graph.nodes) == 1
                and n.outputs[0] not in graph.outputs):
            out[n.name] = nxt
    return out


def bipolar_tensor(graph, name) -> bool:
    """Whether every value of tensor ``name`` is -1 or +1, from its producers: a requant to
    ``[-1, 1]`` with odd multipliers and no shift of a dense output with even weights and odd
    biases (an odd accumulator times an odd multiplier is odd, so never clipped to 0)."""
    prod = {t: n for n in graph.nodes for t in n.outputs}
    rq = prod.get(name)
    if rq is None or rq.op != "requant":
        return False
    a = rq.attrs
    if (int(a["lo"]), int(a["hi"])) != (-1, 1) or np.any(np.asarray(a["shift"]) != 0) \
            or np.any(np.asarray(a["multiplier"]) % 2 == 0):
        return False
    d = prod.get(rq.inputs[0])
    return (d is not None and d.op == "dense" and bool(np.all(d.attrs["weight"] % 2 == 0))
            and bool(np.all(d.attrs["bias"] % 2 == 1)))


@register("dense")
def _dense(graph, node, regs_every=2, dense_style="cse", folding=None, fused=None,
           binary_style="xnor", weight_decode="direct", **_):
    """Fully unrolled :class:`Dense`, or :class:`FoldedDense` when ``folding`` maps the node's
    name to ``(pe, simd)``. ``fused``: the requant node that follows, computed inside the
    folded block (its output tensor is then the block's). An unrolled layer with binary
    weights (rows in ``{-c, 0, +c}``) on a :func:`bipolar_tensor` input becomes an
    :class:`XnorDense` (XNOR + popcount) unless ``binary_style="dense"``. ``weight_decode``:
    how a folded layer stores its weights (``FoldedDense``'s ``decode``: ``"direct"``, or
    level codes decoded by ``"table"``/``"constmul"``, ``"auto"``: the smaller)."""
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    fold = (folding or {}).get(node.name)
    if fold is not None:
        pe, simd = fold
        requant = None
        if fused is not None:
            a = fused.attrs
            requant = (a["multiplier"], a["shift"], a["lo"], a["hi"])
            yt = graph.tensors[fused.outputs[0]].dtype
        return FoldedDenseSpec(node.attrs["weight"], node.attrs["bias"], xt, yt, pe=int(pe),
                               simd=int(simd), requant=requant, decode=weight_decode)
    if fused is not None:
        raise ValueError(f"node {node.name!r}: only folded dense layers fuse a requantizer")
    if binary_style not in ("xnor", "dense"):
        raise ValueError(f"binary_style must be 'xnor' or 'dense', not {binary_style!r}")
    if (binary_style == "xnor" and binary_rows(node.attrs["weight"]) is not None
            and bipolar_tensor(graph, node.inputs[0])):
        return XnorDenseSpec(node.attrs["weight"], node.attrs["bias"], xt, yt,
                             regs_every=regs_every)
    return DenseSpec(node.attrs["weight"], node.attrs["bias"], xt, yt,
                     regs_every=regs_every, style=dense_style)


@register("requant")
def _requant(graph, node, folding=None, **_):
    a = node.attrs
    return RequantizerSpec(a["multiplier"], a["shift"], a["lo"], a["hi"],
                           graph.tensors[node.inputs[0]].dtype,
                           graph.tensors[node.outputs[0]].dtype,
                           idle_channels=requant_idle_channels(graph, node, folding))


def requant_idle_channels(graph, node, folding=None):
    """Per channel of a ``requant`` node: True where no logic is needed, because its input is
    constant (an all-zero weight row in the dense layer before it) or because no layer reads it
    (an all-zero weight column in every dense layer that takes the tensor). Yosys removes that
    logic; the resource estimate uses this (e.g. no DSP for such a channel's multiplier).
    Folded layers (``folding``: their names) keep weights in memory, which yosys cannot see
    through: nothing is idle across them."""
    folded = {k for k, v in (folding or {}).items() if v is not None}
    idle = np.zeros(len(node.attrs["multiplier"]), dtype=bool)
    prod = graph.producer(node.inputs[0])
    if prod is not None and prod.op == "dense" and prod.name not in folded:
        # a row of zero weights: the accumulator is the constant bias (yosys propagates it)
        idle |= np.all(np.asarray(prod.attrs["weight"]) == 0, axis=1)
    readers = [n for n in graph.nodes if node.outputs[0] in n.inputs]
    if readers and all(n.op == "dense" and n.name not in folded for n in readers):
        idle_read = np.all([np.all(np.asarray(n.attrs["weight"]) == 0, axis=0)
                            for n in readers], axis=0)
        idle = idle | idle_read
    return idle


def _window(graph, node, kh, kw, stride, padding):
    x = graph.tensors[node.inputs[0]]
    h, w, c = x.shape
    return SlidingWindowSpec(h, w, c, x.dtype, kh, kw, stride, padding)


def window_for(graph, node):
    """The :class:`~ddnhw.hw.SlidingWindowSpec` of a conv2d node."""
    a = node.attrs
    return _window(graph, node, a["weight"].shape[1], a["weight"].shape[2], int(a["stride"]),
                   int(a["padding"]))


@register("conv2d")
def _conv2d(graph, node, regs_every=2, dense_style="cse", folding=None, fused=None,
            weight_decode="direct", **_):
    """:class:`SlidingWindow` then an unrolled :class:`Dense` over each window, or a
    :class:`FoldedDense` when ``folding`` maps the node's name to ``(pe, simd)``; ``fused``:
    the requant node that follows, computed inside the folded block (as for dense)."""
    a = node.attrs
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    c = graph.tensors[node.inputs[0]].shape[-1]
    w = conv_matrix(a["weight"], c, int(a.get("groups", 1)))
    fold = (folding or {}).get(node.name)
    if fused is not None and fold is None:
        raise ValueError(f"node {node.name!r}: only folded conv layers fuse a requantizer")
    win = window_for(graph, node)
    if fold is not None:
        requant = None
        if fused is not None:
            f = fused.attrs
            requant = (f["multiplier"], f["shift"], f["lo"], f["hi"])
            yt = graph.tensors[fused.outputs[0]].dtype
        mac = FoldedDenseSpec(w, a["bias"], xt, yt, pe=int(fold[0]), simd=int(fold[1]),
                              requant=requant, decode=weight_decode)
    else:
        mac = DenseSpec(w, a["bias"], xt, yt, regs_every=regs_every, style=dense_style)
    # the MAC's II is per window beat; the chain's is per image (every window of the image,
    # and the line buffer overlaps input and windows only partly)
    ii = window_mac_ii(win, mac.ii, getattr(mac, "requant", None) is not None)
    return ChainSpec(win, mac, ii=ii)


def _pool(kind):
    def factory(graph, node, **_):
        kh, kw = pool_kernel(node)    # square, or 1 x k for a 1-D signal
        x = graph.tensors[node.inputs[0]]
        return ChainSpec(_window(graph, node, kh, kw, int(node.attrs["stride"]), 0),
                         WindowPoolSpec(kind, kh * kw, x.shape[-1], x.dtype))
    factory.__doc__ = f":class:`SlidingWindow` then a {kind} :class:`WindowPool`."
    return factory


register("maxpool2d")(_pool("max"))
register("avgpool2d")(_pool("avg"))


@register("add")
def _add(graph, node, **_):
    """An :class:`AlignedAdd` (inputs ``i0``, ``i1`` in the node's input order)."""
    t0, t1 = (graph.tensors[t] for t in node.inputs)
    return AlignedAddSpec(int(t0.shape[-1]), t0.dtype, t1.dtype,
                          graph.tensors[node.outputs[0]].dtype, int(node.attrs["shift0"]),
                          int(node.attrs["shift1"]))


@register("flatten")
def _flatten(graph, node, **_):
    """A :class:`Collector` of the feature map's pixels into one vector beat."""
    x = graph.tensors[node.inputs[0]]
    return CollectorSpec(int(np.prod(x.shape[:-1])), x.shape[-1], x.dtype)


def _recurrent(graph, node, regs_every=2, dense_style="cse", folding=None, gate_lanes=None,
               **_):
    """:class:`~ddnhw.hw.recurrent.Recurrent`: its MAC engine is an unrolled :class:`Dense`,
    or a :class:`FoldedDense` when ``folding`` maps the node's name to ``(pe, simd)``;
    ``gate_lanes`` (``{layer name: lanes}``) sets the hidden units its gate unit handles per
    cycle (default: all with an unrolled engine, 1 with a folded one)."""
    from ddnhw import DdnhwError
    from ddnhw.hw.recurrent import RecurrentSpec
    from ddnhw.ir.recurrent import recurrent_geometry

    a = node.attrs
    t, _, _ = recurrent_geometry(graph, node)
    fold = (folding or {}).get(node.name)
    if gate_lanes is not None and not isinstance(gate_lanes, dict):
        raise DdnhwError(f"gate_lanes must be a dict {{layer: lanes}}, not {gate_lanes!r}")
    try:
        return RecurrentSpec(node.op, a["weight"], a["bias"], a["multiplier"], a["shift"],
                         a["lut_lo"], a["lut_hi"], a["tanh_table"],
                         graph.tensors[node.inputs[0]].dtype,
                         graph.tensors[node.outputs[0]].dtype, t, int(a["return_sequences"]),
                         a.get("sigmoid_table"), a.get("gate_frac"), fold=fold,
                         gate_lanes=(gate_lanes or {}).get(node.name), regs_every=regs_every,
                         dense_style=dense_style, cell_bits=a.get("cell_bits"))
    except (ValueError, TypeError) as e:
        raise DdnhwError(f"layer {node.name!r} ({node.op}): {e}") from None


for _op in RECURRENT_BLOCK_OPS:     # the recurrent ops the Recurrent block implements
    register(_op)(_recurrent)
