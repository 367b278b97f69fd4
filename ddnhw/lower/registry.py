"""IR op -> hardware block factory registry."""
from __future__ import annotations

from ddnhw.hw import Dense, FoldedDense, Requantizer

__all__ = ["LOWERINGS", "register", "lower_node"]

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


@register("dense")
def _dense(graph, node, regs_every=2, dense_style="cse", folding=None, **_):
    """Fully unrolled :class:`Dense`, or :class:`FoldedDense` when ``folding`` maps the node's
    name to ``(pe, simd)``."""
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    fold = (folding or {}).get(node.name)
    if fold is not None:
        pe, simd = fold
        return FoldedDense(node.attrs["weight"], node.attrs["bias"], xt, yt, pe=int(pe),
                           simd=int(simd))
    return Dense(node.attrs["weight"], node.attrs["bias"], xt, yt,
                 regs_every=regs_every, style=dense_style)


@register("requant")
def _requant(graph, node, **_):
    a = node.attrs
    return Requantizer(a["multiplier"], a["shift"], a["lo"], a["hi"],
                       graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype)
