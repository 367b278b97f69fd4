"""``dense``: ``y[n, o] = bias[o] + sum_i weight[o, i] * x[n, i]``.

Attributes: ``weight`` (out, in), ``bias`` (out,). The input is a vector ``(in,)``; the output
``(out,)`` must hold the exact worst case of the actual weights over the input type.
"""
from __future__ import annotations

import numpy as np

from ..errors import IRError
from ..types import IntType
from .base import OpDef, check_out_shape, column_range, in_type, int_matmul, register


def dense_range(weight: np.ndarray, bias: np.ndarray, in_type: IntType):
    """Exact per-output bounds of ``bias + weight @ x`` for x anywhere in ``in_type``."""
    n = weight.shape[1]
    return column_range(weight, bias, [in_type.min] * n, [in_type.max] * n)


def dense_acc_type(weight, bias, in_type: IntType) -> IntType:
    """The narrowest type holding every value of ``bias + weight @ x``, x in ``in_type``."""
    lo, hi = dense_range(weight, bias, in_type)
    return IntType.for_range(int(min(lo)), int(max(hi)))


def mac_layer(layer, in_type: IntType, lo, hi) -> IntType:
    """The accumulator type of a chain_graph MAC layer with output bounds ``lo``, ``hi``: the
    narrowest that holds them, its binary point the input's plus ``layer["weight_frac"]``."""
    acc = IntType.for_range(int(min(lo)), int(max(hi)))
    return IntType(acc.signed, acc.bits, in_type.frac + int(layer.get("weight_frac", 0)))


@register
class Dense(OpDef):
    name = "dense"
    foldable = True

    def check(self, graph, node):
        x = graph.tensors[node.inputs[0]]
        w, b = node.attrs.get("weight"), node.attrs.get("bias")
        if (not isinstance(w, np.ndarray) or not isinstance(b, np.ndarray) or w.ndim != 2
                or b.shape != (w.shape[0],)):
            raise IRError(f"node {node.name!r}: dense needs weight (out, in) and bias (out,)")
        if w.shape[1] != x.shape[-1]:
            raise IRError(f"node {node.name!r}: weight has {w.shape[1]} inputs but tensor "
                          f"{x.name!r} has {x.shape[-1]}")
        check_out_shape(graph, node, x.shape[:-1] + (w.shape[0],))
        return dense_range(w, b, in_type(graph, node))

    def run(self, node, x):
        return int_matmul(x, node.attrs["weight"]) + node.attrs["bias"]

    def mac_matrix(self, graph, node):
        return node.attrs["weight"]

    layer_tensor = "acc"

    def from_layer(self, layer, in_type, in_shape):
        """Keys ``weight``, ``bias``, optional ``weight_frac`` (the weights' binary point)."""
        w = np.asarray(layer["weight"], dtype=np.int64)
        b = np.asarray(layer["bias"], dtype=np.int64)
        return ({"weight": w, "bias": b}, (w.shape[0],),
                mac_layer(layer, in_type, *dense_range(w, b, in_type)))
