"""Logic-domain ops: networks of learned lookup-table neurons that pass bits, not numbers.

``thermometer`` (the input encoder): ``y[n, f*T + t] = x[n, f] >= thresholds[f, t]``.
    Attribute ``thresholds`` (F, T) integers; the input is a vector ``(F,)`` of any integer
    type, the output ``(F*T,)`` bits (unsigned, 1 bit).

``lut`` (a layer of table neurons): ``y[n, j] = table[j, sum_i x[n, connections[j, i]] << i]``.
    Attributes ``connections`` (N, k): neuron ``j`` reads input bits ``connections[j, 0..k-1]``
    (``connections[j, 0]`` is the address's least significant bit), each index in ``0..M-1`` for an
    input of ``M`` bits; ``table`` (N, 2**k): its truth table, entries 0 or 1. The fan-in
    ``k`` is 1..:data:`MAX_FANIN`. Input and output are bit vectors (unsigned, 1 bit).

``popcount`` (the output aggregation): ``y[n, c] = sum of x[n, m] over m with groups[m] == c``.
    Attributes ``groups`` (M,) integers in ``-1..classes-1`` (-1: the bit is read by no class),
    ``classes`` (int >= 1). The input is a bit vector ``(M,)``, the output ``(classes,)``
    unsigned counts (the class scores; the prediction is their argmax, first on ties).

:func:`ddnhw.ir.builder.lut_graph` builds the chain ``thermometer → lut → ... → popcount``.
"""
from __future__ import annotations

import numpy as np

from ..errors import IRError
from ..types import IntType
from .base import OpDef, array_attr, check_out_shape, int_attr, op_def, register

__all__ = ["MAX_FANIN", "BIT", "lut_address"]

#: the largest fan-in of a table neuron (a 6-input function is 64 table entries: 4 to 7 LUT4s)
MAX_FANIN = 6
#: the type of every bit tensor
BIT = IntType(False, 1)


def _vector(graph, node):
    x = graph.tensors[node.inputs[0]]
    if len(x.shape) != 1:
        raise IRError(f"node {node.name!r}: {node.op} takes a vector, but input {x.name!r} has "
                      f"shape {x.shape}")
    return x


def _bits_in(graph, node):
    """The node's input: a bit vector (unsigned 1-bit type)."""
    x = _vector(graph, node)
    if x.dtype != BIT:
        raise IRError(f"node {node.name!r}: {node.op} reads bits, but input {x.name!r} has type "
                      f"{x.dtype} (expected {BIT})")
    return x


def lut_address(x, inputs):
    """The table address of every neuron: ``sum_i x[..., inputs[:, i]] << i`` (int64)."""
    bits = np.asarray(x)[..., np.asarray(inputs)]              # (..., N, k)
    return (bits.astype(np.int64) << np.arange(bits.shape[-1])).sum(axis=-1)


@register
class Thermometer(OpDef):
    name = "thermometer"

    def check(self, graph, node):
        x = _vector(graph, node)
        th = node.attrs.get("thresholds")
        if not isinstance(th, np.ndarray) or th.ndim != 2 or th.shape[0] != x.shape[0] \
                or th.shape[1] < 1:
            got = getattr(th, "shape", type(th).__name__)
            raise IRError(f"node {node.name!r}: thermometer attribute 'thresholds' must be an "
                          f"integer array of shape ({x.shape[0]}, T), T >= 1, got {got}")
        array_attr(node, "thresholds", th.shape)
        check_out_shape(graph, node, (th.size,))
        t = x.dtype
        return ((t.min >= th).astype(np.int64).reshape(-1),
                (t.max >= th).astype(np.int64).reshape(-1))

    def run(self, node, x):
        th = node.attrs["thresholds"]
        return (x[:, :, None] >= th[None]).astype(np.int64).reshape(len(x), -1)


@register
class Lut(OpDef):
    name = "lut"

    def check(self, graph, node):
        x = _bits_in(graph, node)
        inputs, table = node.attrs.get("connections"), node.attrs.get("table")
        if not isinstance(inputs, np.ndarray) or inputs.ndim != 2 or inputs.size == 0:
            got = getattr(inputs, "shape", type(inputs).__name__)
            raise IRError(f"node {node.name!r}: lut attribute 'connections' must be an integer "
                          f"array (neurons, k), got {got}")
        n, k = inputs.shape
        if not 1 <= k <= MAX_FANIN:
            raise IRError(f"node {node.name!r}: lut fan-in k = {k} is out of range: a table "
                          f"neuron reads 1 to {MAX_FANIN} bits")
        array_attr(node, "connections", (n, k))
        if not isinstance(table, np.ndarray) or table.shape != (n, 1 << k):
            got = getattr(table, "shape", type(table).__name__)
            raise IRError(f"node {node.name!r}: lut attribute 'table' has shape {got}, but "
                          f"{n} neurons of fan-in k = {k} need ({n}, {1 << k}) (2**k entries "
                          f"per neuron)")
        array_attr(node, "table", (n, 1 << k))
        bad = (inputs < 0) | (inputs >= x.shape[0])
        if np.any(bad):
            j, i = map(int, np.argwhere(bad)[0])
            raise IRError(f"node {node.name!r}: lut neuron {j} reads input bit "
                          f"{int(inputs[j, i])}, out of range for input {x.name!r} of "
                          f"{x.shape[0]} bits")
        if np.any((table != 0) & (table != 1)):
            j = int(np.argwhere((table != 0) & (table != 1))[0][0])
            raise IRError(f"node {node.name!r}: lut neuron {j}'s truth table holds values other "
                          f"than 0 and 1")
        check_out_shape(graph, node, (n,))
        return table.min(axis=1), table.max(axis=1)

    def run(self, node, x):
        a = node.attrs
        addr = lut_address(x, a["connections"])
        return np.take_along_axis(a["table"][None], addr[..., None], axis=2)[..., 0]


@register
class Popcount(OpDef):
    name = "popcount"

    def check(self, graph, node):
        x = _bits_in(graph, node)
        c = int_attr(node, "classes", 1)
        groups = array_attr(node, "groups", x.shape)
        if np.any((groups < -1) | (groups >= c)):
            raise IRError(f"node {node.name!r}: popcount attribute 'groups' must be in "
                          f"-1..{c - 1} (a class, or -1 for none)")
        check_out_shape(graph, node, (c,))
        lo_x, hi_x = self._input_range(graph, node)
        return self._sums(groups, c, lo_x), self._sums(groups, c, hi_x)

    @staticmethod
    def _input_range(graph, node):
        """Bounds of the input bits: exact when a ``lut`` or ``thermometer`` produces them."""
        prod = graph.producer(node.inputs[0])
        n = graph.tensors[node.inputs[0]].shape[0]
        if prod is not None and prod.op in (Lut.name, Thermometer.name):
            return op_def(prod).check(graph, prod)
        return np.zeros(n, np.int64), np.ones(n, np.int64)

    @staticmethod
    def _sums(groups, classes, bits):
        return np.array([int(np.sum(bits[groups == c])) for c in range(classes)], np.int64)

    def run(self, node, x):
        a = node.attrs
        onehot = (a["groups"][:, None] == np.arange(int(a["classes"]))[None]).astype(np.int64)
        return x @ onehot
