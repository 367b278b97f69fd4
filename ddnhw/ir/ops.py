"""Per-op integer range inference (worst case over the input type) and attribute checks."""
from __future__ import annotations

import numpy as np

from .graph import Graph, IRError, Node, ROUNDING_MODES
from .types import IntType
from .recurrent import RECURRENT_OPS, column_range, recurrent_range


def dense_range(weight: np.ndarray, bias: np.ndarray, in_type: IntType):
    """Exact per-output bounds of ``bias + weight @ x`` for x anywhere in ``in_type``."""
    n = weight.shape[1]
    return column_range(weight, bias, [in_type.min] * n, [in_type.max] * n)


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


def _int_attr(node, key, lo=0):
    v = node.attrs.get(key)
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or int(v) < lo:
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be an int >= {lo}, "
                      f"not {v!r}")
    return int(v)


def pool_kernel(node: Node):
    """``(KH, KW)`` of a maxpool2d/avgpool2d node: its ``kernel`` attribute is an int (square)
    or a pair ``[KH, KW]`` (``[1, k]``: 1-D pooling of a one-row image); avgpool2d needs
    ``KH * KW`` to be a power of two (the integer mean is a sum and a shift)."""
    k = node.attrs.get("kernel")
    if isinstance(k, (list, tuple)) and len(k) == 2 and all(
            isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in k):
        kh, kw = int(k[0]), int(k[1])
    elif isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1:
        kh = kw = int(k)
    else:
        raise IRError(f"node {node.name!r}: {node.op} attribute 'kernel' must be an int >= 1 or a "
                      f"pair [kh, kw] of them, not {k!r}")
    if node.op == "avgpool2d" and (kh * kw) & (kh * kw - 1):
        raise IRError(f"node {node.name!r}: avgpool2d attribute 'kernel' {kh}x{kw}: the window "
                      f"size {kh * kw} is not a power of two (the mean is an integer sum and a "
                      f"shift)")
    return kh, kw


def conv_out_size(n: int, k: int, stride: int, padding: int) -> int:
    """Output length of a sliding window of size ``k`` over ``n`` (+ padding both sides)."""
    return (n + 2 * padding - k) // stride + 1


def window_geometry(graph: Graph, node: Node):
    """``(H, W, C), (KH, KW), stride, padding, (OH, OW)`` of a conv2d/pool node (checked)."""
    x = graph.tensors[node.inputs[0]]
    if len(x.shape) != 3:
        raise IRError(f"node {node.name!r}: {node.op} needs an image input (H, W, C), tensor "
                      f"{x.name!r} has shape {x.shape}")
    h, w, c = x.shape
    stride = _int_attr(node, "stride", 1)
    if node.op == "conv2d":
        wt = node.attrs.get("weight")
        if wt is None or wt.ndim != 4:
            raise IRError(f"node {node.name!r}: conv2d needs weight (O, KH, KW, C/groups)")
        kh, kw = int(wt.shape[1]), int(wt.shape[2])
        padding = _int_attr(node, "padding", 0)
    else:
        kh, kw = pool_kernel(node)
        padding = 0
    if kh < 1 or kw < 1 or padding >= min(kh, kw):
        raise IRError(f"node {node.name!r}: padding {padding} must be smaller than the kernel "
                      f"{kh}x{kw}")
    oh, ow = conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding)
    if oh < 1 or ow < 1:
        raise IRError(f"node {node.name!r}: kernel {kh}x{kw} does not fit the input {h}x{w} "
                      f"(padding {padding})")
    return (h, w, c), (kh, kw), stride, padding, (oh, ow)


def _check_out_shape(graph, node, shape):
    y = graph.tensors[node.outputs[0]]
    if tuple(y.shape) != tuple(shape):
        raise IRError(f"node {node.name!r}: output {y.name!r} has shape {y.shape}, expected "
                      f"{tuple(shape)}")


def conv_range(node: Node, in_type: IntType):
    """Per-output-channel bounds of a conv2d: the dense bound of each flattened filter (zero
    padding is inside every input type, so it cannot widen the range)."""
    w = node.attrs["weight"]
    return dense_range(w.reshape(w.shape[0], -1), node.attrs["bias"], in_type)


def add_range(graph: Graph, node: Node):
    """Checks of an ``add`` node (shapes, shifts that align both binary points onto the output
    type's) and the exact per-channel bounds of ``(x0 << shift0) + (x1 << shift1)``."""
    a, b = (graph.tensors[t] for t in node.inputs)
    if tuple(a.shape) != tuple(b.shape):
        raise IRError(f"node {node.name!r}: add inputs {a.name!r} {a.shape} and {b.name!r} "
                      f"{b.shape} differ in shape")
    _check_out_shape(graph, node, a.shape)
    shifts = [_int_attr(node, k, 0) for k in ("shift0", "shift1")]
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


def infer_range(graph: Graph, node: Node):
    x = graph.tensors[node.inputs[0]]
    if node.op == "add":
        return add_range(graph, node)
    if node.op == "conv2d":
        (h, w_, c), _, _, _, (oh, ow) = window_geometry(graph, node)
        wt, b = node.attrs["weight"], node.attrs.get("bias")
        groups = _int_attr(node, "groups", 1)
        o = wt.shape[0]
        if c % groups or o % groups or wt.shape[3] * groups != c:
            raise IRError(f"node {node.name!r}: groups {groups} does not fit {c} input channels, "
                          f"{o} output channels and weight shape {wt.shape}")
        if b is None or b.shape != (o,):
            raise IRError(f"node {node.name!r}: conv2d needs bias ({o},)")
        _check_out_shape(graph, node, (oh, ow, o))
        return conv_range(node, x.dtype)
    if node.op in ("maxpool2d", "avgpool2d"):
        (h, w_, c), _, _, _, (oh, ow) = window_geometry(graph, node)
        _check_out_shape(graph, node, (oh, ow, c))
        return np.full(c, x.dtype.min), np.full(c, x.dtype.max)
    if node.op == "flatten":
        n = int(np.prod(x.shape))
        _check_out_shape(graph, node, (n,))
        return np.full(n, x.dtype.min), np.full(n, x.dtype.max)
    if node.op in RECURRENT_OPS:
        return recurrent_range(graph, node)
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
