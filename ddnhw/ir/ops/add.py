"""``add``: ``y = (x0 << shift0) + (x1 << shift1)``, the elementwise sum of two tensors of the
same shape (a residual connection).

Attributes ``shift0``, ``shift1`` (ints in 0..62) align the binary points:
``frac(y) == frac(x0) + shift0 == frac(x1) + shift1`` and one shift is 0 (``frac(y)`` is the
larger input frac). Exact: no rounding, no clipping; the output type must hold the sum's whole
range. Inputs ``[x0, x1]`` in that order.
"""
from __future__ import annotations

import numpy as np

from ..errors import IRError
from ..types import IntType
from .base import OpDef, check_out_shape, int_attr, register


def add_range(graph, node):
    """Checks of an ``add`` node (shapes, shifts that align both binary points onto the output
    type's) and the exact per-channel bounds of ``(x0 << shift0) + (x1 << shift1)``."""
    a, b = (graph.tensors[t] for t in node.inputs)
    if tuple(a.shape) != tuple(b.shape):
        raise IRError(f"node {node.name!r}: add inputs {a.name!r} {a.shape} and {b.name!r} "
                      f"{b.shape} differ in shape")
    check_out_shape(graph, node, a.shape)
    shifts = [int_attr(node, k, 0) for k in ("shift0", "shift1")]
    y = graph.tensors[node.outputs[0]].dtype
    for k, (t, s) in enumerate(zip((a, b), shifts)):
        if s > 62:
            raise IRError(f"node {node.name!r}: add attribute 'shift{k}' = {s} is not in 0..62")
        if t.dtype.frac + s != y.frac:
            raise IRError(f"node {node.name!r}: input {t.name!r} (frac {t.dtype.frac}) shifted "
                          f"by shift{k} = {s} has frac {t.dtype.frac + s}, but the output "
                          f"{node.outputs[0]!r} has frac {y.frac}: binary points not aligned")
    if min(shifts) != 0:
        raise IRError(f"node {node.name!r}: add shifts {shifts} are both > 0; the output frac "
                      f"must be the larger input frac (one shift 0)")
    lo = (a.dtype.min << shifts[0]) + (b.dtype.min << shifts[1])
    hi = (a.dtype.max << shifts[0]) + (b.dtype.max << shifts[1])
    c = a.shape[-1]
    return np.full(c, lo, dtype=object), np.full(c, hi, dtype=object)


def add_type(a: IntType, b: IntType):
    """``(shift0, shift1, output type)`` of the exact aligned sum of types ``a`` and ``b``."""
    frac = max(a.frac, b.frac)
    s0, s1 = frac - a.frac, frac - b.frac
    t = IntType.for_range((a.min << s0) + (b.min << s1), (a.max << s0) + (b.max << s1))
    return s0, s1, IntType(t.signed, t.bits, frac)


@register
class Add(OpDef):
    name = "add"
    arity = 2

    def check(self, graph, node):
        return add_range(graph, node)

    def run(self, node, x0, x1):
        return (np.left_shift(x0, int(node.attrs["shift0"]))
                + np.left_shift(x1, int(node.attrs["shift1"])))
