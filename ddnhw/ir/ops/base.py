"""The op registry: what an IR op *is*, defined once per op.

Every op is one :class:`OpDef` object registered by name in :data:`OPS` (one module per op in
this package). Everything that needs to know about an op (``Graph.check``, range inference,
the golden executor, and the layers above: lowering, folding) asks its ``OpDef`` instead of
switching on the op's name.

This module also holds the small attribute checkers every op uses, so that a bad attribute is
reported the same way everywhere: the message names the node, the op and the attribute.
"""
from __future__ import annotations

import numpy as np

from ..errors import IRError

#: Every IR op by name; filled by :func:`register` as the op modules are imported (importing
#: :mod:`ddnhw.ir.ops` imports them all).
OPS: dict = {}

#: a node attribute every op accepts and ignores: hardware annotations (a JSON dict written by
#: the passes, e.g. folding); the golden model never reads it
HW_ATTR = "hw"


class OpDef:
    """The definition of one IR op. Subclasses set the class attributes and implement
    :meth:`check` and :meth:`run`; one instance per op is registered in :data:`OPS`.

    Attributes
    ----------
    name : the op's name (``node.op``).
    arity : number of input tensors (every op has one output tensor).
    foldable : the op runs a multiply-accumulate that can be folded onto fewer MAC units;
        :meth:`mac_matrix` gives its integer matrix.
    recurrent : the op reads a sequence ``(T, I)`` and keeps a hidden state (see
        :mod:`ddnhw.ir.ops.recurrent`).
    """

    name = ""
    arity = 1
    foldable = False
    recurrent = False

    def check(self, graph, node):
        """Check the node's attributes and its input/output shapes in ``graph`` (raise
        :class:`IRError` naming the node and the attribute), and return ``(lo, hi)``: integer
        arrays of the worst-case output bounds over the input types (per output channel, or
        per output element), for any input in range. Attribute ``hw`` is ignored."""
        raise NotImplementedError

    def run(self, node, *xs):
        """The golden kernel: the exact output for batched int64 inputs ``xs`` (each
        ``(N, *tensor shape)``), as int64 ``(N, *output shape)``. Exact because
        :meth:`check` bounds every intermediate below 2**63."""
        raise NotImplementedError

    def mac_matrix(self, graph, node):
        """The integer matrix ``(rows, cols)`` the op's MAC computes per input beat (``None``
        for an op without a MAC, i.e. not :attr:`foldable`)."""
        return None

    def sequence_output(self, node) -> bool:
        """Whether the output is a sequence whose first axis is time (one beat per step)."""
        return False

    #: suffix of the output tensor's name when :func:`ddnhw.ir.chain_graph` builds the op
    layer_tensor = "out"

    def from_layer(self, layer, in_type, in_shape):
        """A :func:`ddnhw.ir.chain_graph` layer dict (its keys for this op) as ``(attrs,
        output shape, output type)`` of a node reading ``in_type`` values of ``in_shape``."""
        raise ValueError(f"layer {layer.get('name')!r}: chain_graph cannot build op "
                         f"{self.name!r}")

    def __repr__(self):
        return f"<op {self.name}>"


def register(cls):
    """Class decorator: instantiate an :class:`OpDef` subclass and register it by its name."""
    op = cls()
    if not op.name or op.name in OPS:
        raise ValueError(f"op name {op.name!r} is empty or registered twice")
    OPS[op.name] = op
    return cls


def op_def(node) -> OpDef:
    """The :class:`OpDef` of ``node`` (an :class:`IRError` naming the node for an unknown op)."""
    op = OPS.get(node.op)
    if op is None:
        raise IRError(f"node {node.name!r}: unsupported op {node.op!r} (supported: "
                      f"{', '.join(OPS)})")
    return op


# -- attribute checks (messages name the node, its op and the attribute) ----------------------
def int_attr(node, key, lo=None, hi=None) -> int:
    """Attribute ``key``: a Python/NumPy int (not a bool) in ``[lo, hi]`` (either end open
    when ``None``)."""
    v = node.attrs.get(key)
    is_int = isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))
    if hi is None and lo is not None and not (is_int and v >= lo):
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be an int >= {lo}, "
                      f"not {v!r}")
    if not is_int:
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be an int, "
                      f"not {v!r}")
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} = {v} is out of range "
                      f"[{lo}, {hi}]")
    return int(v)


def array_attr(node, key, shape) -> np.ndarray:
    """Attribute ``key``: an integer array of exactly ``shape``."""
    a = node.attrs.get(key)
    if not isinstance(a, np.ndarray) or a.shape != tuple(shape) or a.dtype.kind not in "iu":
        got = getattr(a, "shape", type(a).__name__)
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be an integer "
                      f"array of shape {tuple(shape)}, got {got}")
    return a


def shift_attr(node, key, shape) -> np.ndarray:
    """Attribute ``key``: an array of rounding right shifts of ``shape``, each in 0..62."""
    s = array_attr(node, key, shape)
    if np.any(s < 0) or np.any(s > 62):
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be in 0..62")
    return s


def check_out_shape(graph, node, shape):
    """The node's output tensor must have ``shape``."""
    y = graph.tensors[node.outputs[0]]
    if tuple(y.shape) != tuple(shape):
        raise IRError(f"node {node.name!r}: output {y.name!r} has shape {y.shape}, expected "
                      f"{tuple(shape)}")


def in_type(graph, node, k=0):
    """The :class:`~ddnhw.ir.types.IntType` of the node's ``k``-th input."""
    return graph.tensors[node.inputs[k]].dtype


def full_range(n, t):
    """Bounds ``(lo, hi)`` of ``n`` values that may take any value of type ``t``."""
    return np.full(n, t.min), np.full(n, t.max)


def column_range(weight, bias, lo_cols, hi_cols):
    """Exact per-row bounds of ``bias + weight @ u`` for ``u[j]`` anywhere in
    ``[lo_cols[j], hi_cols[j]]`` (python ints: no overflow)."""
    w = np.asarray(weight).astype(object)
    lo_c = np.asarray(lo_cols, dtype=object)
    hi_c = np.asarray(hi_cols, dtype=object)
    pos = np.where(w > 0, w, 0)
    neg = np.where(w < 0, w, 0)
    lo = np.asarray(bias).astype(object) + (pos * lo_c).sum(axis=1) + (neg * hi_c).sum(axis=1)
    hi = np.asarray(bias).astype(object) + (pos * hi_c).sum(axis=1) + (neg * lo_c).sum(axis=1)
    return lo, hi


#: Largest magnitude below which every integer is exact in float32 / float64.
FLOAT_EXACT = ((np.float32, 1 << 24), (np.float64, 1 << 53))


def matmul_dtype(max_abs_x, weight):
    """The cheapest dtype in which ``x @ weight.T`` is exact for integers with ``|x| <= max_abs_x``.

    Every product and every partial sum, in whatever order and blocking a BLAS kernel adds them
    (fused multiply-adds included), is an integer of magnitude at most
    ``max_abs_x * max_row(sum |weight|)``; when that bound is at most 2**24 (2**53) every such
    integer is representable in float32 (float64), so no operation rounds and the float result
    is the exact integer result. Beyond both bounds: int64 (numpy's exact, slower loop).
    """
    w = np.asarray(weight)
    if w.size == 0:
        return np.int64
    bound = int(max_abs_x) * int(np.abs(w.astype(np.int64)).sum(axis=-1).max())
    for dtype, limit in FLOAT_EXACT:
        if bound <= limit:
            return dtype
    return np.int64


def int_matmul(x, weight):
    """``x @ weight.T`` for int64 ``x (..., K)`` and integer ``weight (M, K)``, exactly, as int64.

    Runs as a float32 or float64 BLAS product when :func:`matmul_dtype` proves it exact for the
    actual inputs, otherwise in int64.
    """
    x = np.asarray(x, dtype=np.int64)
    if x.size == 0:
        return x @ np.asarray(weight, dtype=np.int64).T
    max_abs = max(abs(int(x.max())), abs(int(x.min())))
    dtype = matmul_dtype(max_abs, weight)
    if dtype is np.int64:
        return x @ np.asarray(weight, dtype=np.int64).T
    return (x.astype(dtype) @ np.asarray(weight, dtype=dtype).T).astype(np.int64)
