"""IR op -> hardware block factory registry."""
from __future__ import annotations

from ddnhw.hw import Dense, FoldedDense, Requantizer

__all__ = ["LOWERINGS", "register", "lower_node", "fusions"]

LOWERINGS = {}


def register(op):
    """Decorator: ``factory(graph, node, **options) -> wiring.Component`` for IR op ``op``."""
    def deco(fn):
        if op in LOWERINGS:
            raise ValueError(f"op {op!r} already has a lowering")
        LOWERINGS[op] = fn
        return fn
    return deco


def lower_node(graph, node, **options):
    try:
        factory = LOWERINGS[node.op]
    except KeyError:
        raise ValueError(f"node {node.name!r}: no hardware lowering for op {node.op!r} "
                         f"(have: {', '.join(sorted(LOWERINGS))})") from None
    return factory(graph, node, **options)


def fusions(graph, folding=None, fuse_requant=True, **_):
    """``{dense node name: requant node}`` for every folded dense layer whose only consumer is
    a requant node (the lowering computes that requantization in the folded block)."""
    if not fuse_requant:
        return {}
    folding = folding or {}
    out = {}
    for n, nxt in zip(graph.nodes, graph.nodes[1:]):
        if (n.op == "dense" and folding.get(n.name) is not None and nxt.op == "requant"
                and nxt.inputs == n.outputs
                and sum(n.outputs[0] in m.inputs for m in graph.nodes) == 1
                and n.outputs[0] not in graph.outputs):
            out[n.name] = nxt
    return out


@register("dense")
def _dense(graph, node, regs_every=2, dense_style="cse", folding=None, fused=None, **_):
    """Fully unrolled :class:`Dense`, or :class:`FoldedDense` when ``folding`` maps the node's
    name to ``(pe, simd)``. ``fused``: the requant node that follows, computed inside the
    folded block (its output tensor is then the block's)."""
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    fold = (folding or {}).get(node.name)
    if fold is not None:
        pe, simd = fold
        requant = None
        if fused is not None:
            a = fused.attrs
            requant = (a["multiplier"], a["shift"], a["lo"], a["hi"])
            yt = graph.tensors[fused.outputs[0]].dtype
        return FoldedDense(node.attrs["weight"], node.attrs["bias"], xt, yt, pe=int(pe),
                           simd=int(simd), requant=requant)
    if fused is not None:
        raise ValueError(f"node {node.name!r}: only folded dense layers fuse a requantizer")
    return Dense(node.attrs["weight"], node.attrs["bias"], xt, yt,
                 regs_every=regs_every, style=dense_style)


@register("requant")
def _requant(graph, node, **_):
    a = node.attrs
    return Requantizer(a["multiplier"], a["shift"], a["lo"], a["hi"],
                       graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype)
