"""Per-op integer range inference (worst case over the input type) and attribute checks."""
from __future__ import annotations

import numpy as np

from .graph import Graph, IRError, Node, ROUNDING_MODES
from .types import IntType


def dense_range(weight: np.ndarray, bias: np.ndarray, in_type: IntType):
    """Exact per-output bounds of ``bias + weight @ x`` for x anywhere in ``in_type``."""
    w = weight.astype(object)  # python ints: no overflow whatever the widths
    lo_x, hi_x = in_type.min, in_type.max
    pos = np.where(w > 0, w, 0)
    neg = np.where(w < 0, w, 0)
    lo = bias.astype(object) + (pos * lo_x).sum(axis=1) + (neg * hi_x).sum(axis=1)
    hi = bias.astype(object) + (pos * hi_x).sum(axis=1) + (neg * lo_x).sum(axis=1)
    return lo, hi


def dense_acc_type(weight, bias, in_type: IntType) -> IntType:
    lo, hi = dense_range(weight, bias, in_type)
    return IntType.for_range(int(min(lo)), int(max(hi)))


def requant_range(node: Node, in_type: IntType):
    from ddnhw.golden.fixedpoint import round_shift  # the one definition of rounding

    m = node.attrs["multiplier"]
    s = node.attrs["shift"]
    a = round_shift(np.minimum(m * in_type.min, m * in_type.max), s)
    b = round_shift(np.maximum(m * in_type.min, m * in_type.max), s)
    lo, hi = int(node.attrs["lo"]), int(node.attrs["hi"])
    return np.clip(a, lo, hi), np.clip(b, lo, hi)


def infer_range(graph: Graph, node: Node):
    x = graph.tensors[node.inputs[0]]
    if node.op == "dense":
        w, b = node.attrs.get("weight"), node.attrs.get("bias")
        if w is None or b is None or w.ndim != 2 or b.shape != (w.shape[0],):
            raise IRError(f"node {node.name!r}: dense needs weight (out, in) and bias (out,)")
        if w.shape[1] != x.shape[-1]:
            raise IRError(f"node {node.name!r}: weight has {w.shape[1]} inputs but tensor "
                          f"{x.name!r} has {x.shape[-1]}")
        return dense_range(w, b, x.dtype)
    if node.op == "requant":
        for k in ("multiplier", "shift", "lo", "hi"):
            if k not in node.attrs:
                raise IRError(f"node {node.name!r}: requant lacks attribute {k!r}")
        c = x.shape[-1]
        if node.attrs["multiplier"].shape != (c,) or node.attrs["shift"].shape != (c,):
            raise IRError(f"node {node.name!r}: multiplier/shift must have shape ({c},)")
        if np.any(node.attrs["shift"] < 0) or np.any(node.attrs["shift"] > 62):
            raise IRError(f"node {node.name!r}: shift must be in 0..62")
        if node.attrs.get("rounding", "half_up") not in ROUNDING_MODES:
            raise IRError(f"node {node.name!r}: rounding {node.attrs['rounding']!r} unsupported")
        if int(node.attrs["lo"]) > int(node.attrs["hi"]):
            raise IRError(f"node {node.name!r}: clip range lo > hi")
        return requant_range(node, x.dtype)
    raise IRError(f"node {node.name!r}: unsupported op {node.op!r}")
