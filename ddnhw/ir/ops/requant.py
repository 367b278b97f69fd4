"""``requant``: ``y[n, c] = clip(round_shift(x[n, c] * multiplier[c], shift[c]), lo, hi)``.

Attributes: ``multiplier`` (C,), ``shift`` (C,) in 0..62, ``lo``, ``hi``, ``rounding`` (ReLU is
``lo = 0``; rounding is defined once in :mod:`ddnhw.fixedpoint`: ``half_up`` by default, or
any of its ``ROUNDING_MODES``; the channel is the last axis, so on an image tensor
``(H, W, C)`` it is C). The output has the input's shape.
"""
from __future__ import annotations

import numpy as np

from ddnhw.fixedpoint import ROUNDING_MODES, requantize, round_shift

from ..errors import IRError
from ..types import IntType
from .base import OpDef, array_attr, check_out_shape, int_attr, register, shift_attr


def requant_range(node, in_type: IntType):
    """Exact per-channel bounds of a requant node's output for inputs anywhere in ``in_type``
    (attributes not checked: see :meth:`Requant.check`)."""
    m = node.attrs["multiplier"]
    s = node.attrs["shift"]
    mode = node.attrs.get("rounding", "half_up")
    a = round_shift(np.minimum(m * in_type.min, m * in_type.max), s, mode)
    b = round_shift(np.maximum(m * in_type.min, m * in_type.max), s, mode)
    lo, hi = int(node.attrs["lo"]), int(node.attrs["hi"])
    return np.clip(a, lo, hi), np.clip(b, lo, hi)


@register
class Requant(OpDef):
    name = "requant"

    def check(self, graph, node):
        x = graph.tensors[node.inputs[0]]
        for k in ("multiplier", "shift", "lo", "hi"):
            if k not in node.attrs:
                raise IRError(f"node {node.name!r}: requant lacks attribute {k!r}")
        c = x.shape[-1]
        try:
            array_attr(node, "multiplier", (c,))
            array_attr(node, "shift", (c,))
        except IRError:
            raise IRError(f"node {node.name!r}: multiplier/shift must have shape ({c},)") from None
        shift_attr(node, "shift", (c,))
        lo, hi = int_attr(node, "lo"), int_attr(node, "hi")
        if node.attrs.get("rounding", "half_up") not in ROUNDING_MODES:
            raise IRError(f"node {node.name!r}: rounding {node.attrs['rounding']!r} unsupported")
        if lo > hi:
            raise IRError(f"node {node.name!r}: clip range lo > hi")
        check_out_shape(graph, node, x.shape)
        return requant_range(node, x.dtype)

    def run(self, node, x):
        a = node.attrs
        return requantize(x, a["multiplier"], a["shift"], int(a["lo"]), int(a["hi"]),
                          a.get("rounding", "half_up"))
