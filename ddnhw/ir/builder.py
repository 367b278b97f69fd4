"""Build IR graphs from integer parameters: MLP chains and chains of layers of any op.

Seeded random graphs for tests and benchmarks: :mod:`ddnhw.ir.testing`.
"""
from __future__ import annotations

import numpy as np

from .graph import Graph
from .ops import OPS, add_type, dense_acc_type
from .ops.lut import BIT
from .types import IntType


def mlp_graph(in_type: IntType, layers, meta=None) -> Graph:
    """A chain of ``dense`` (+ optional ``requant``) nodes.

    ``layers`` is a list of dicts with ``weight`` (out, in), ``bias`` (out,), and optionally
    ``requant``: dict(multiplier, shift, lo, hi, out_type). The accumulator type of each dense
    node is the narrowest that holds its worst case for the actual weights.
    """
    g = Graph(meta=dict(meta or {}))
    n_in = np.asarray(layers[0]["weight"]).shape[1]
    g.add_tensor("x", (n_in,), in_type)
    g.inputs = ["x"]
    cur, cur_type = "x", in_type
    for k, layer in enumerate(layers):
        w = np.asarray(layer["weight"], dtype=np.int64)
        b = np.asarray(layer["bias"], dtype=np.int64)
        name = layer.get("name", f"fc{k}")
        acc = dense_acc_type(w, b, cur_type)
        acc = IntType(acc.signed, acc.bits, cur_type.frac + int(layer.get("weight_frac", 0)))
        g.add_tensor(f"{name}_acc", (w.shape[0],), acc)
        g.add_node(name, "dense", [cur], [f"{name}_acc"], weight=w, bias=b)
        cur, cur_type = f"{name}_acc", acc
        rq = layer.get("requant")
        if rq is not None:
            c = w.shape[0]
            out_type = rq["out_type"]
            g.add_tensor(f"{name}_act", (c,), out_type)
            g.add_node(f"{name}_rq", "requant", [cur], [f"{name}_act"],
                       multiplier=np.broadcast_to(np.asarray(rq["multiplier"], np.int64), (c,)).copy(),
                       shift=np.broadcast_to(np.asarray(rq["shift"], np.int64), (c,)).copy(),
                       lo=int(rq["lo"]), hi=int(rq["hi"]), rounding="half_up")
            cur, cur_type = f"{name}_act", out_type
    g.outputs = [cur]
    return g.check()


def chain_graph(in_type: IntType, in_shape, layers, meta=None) -> Graph:
    """A chain of nodes of any op, with tensor shapes and types inferred.

    ``layers``: dicts with ``op`` (default ``dense``) and ``name``; ``dense``/``conv2d`` take
    ``weight``, ``bias``, optional ``weight_frac`` and ``requant`` (as in :func:`mlp_graph`);
    ``conv2d`` also ``stride`` (1), ``padding`` (0), ``groups`` (1); ``maxpool2d``/``avgpool2d``
    take ``kernel`` (an int or ``[kh, kw]``) and ``stride`` (default: the kernel's larger side);
    ``flatten`` takes nothing. Images are
    NHWC, ``in_shape`` is ``(H, W, C)`` for an image input. Accumulator types are the narrowest
    that hold the worst case for the actual weights.

    ``residual`` takes ``body`` (a list of layers as these, applied to the layer's input; it
    must keep the shape) and an optional ``requant``: the body's output ``x0`` and the layer's
    input ``x1`` meet in an ``add`` node ``<name>_add`` with the shifts that align their binary
    points (the input forks: a residual connection), then ``<name>_rq``.
    """
    g = Graph(meta=dict(meta or {}))
    g.add_tensor("x", tuple(in_shape), in_type)
    g.inputs = ["x"]
    cur, _, _ = _append_layers(g, "x", in_type, tuple(int(s) for s in in_shape), layers)
    g.outputs = [cur]
    return g.check()


def _append_requant(g, name, cur, shape, rq):
    """Append ``<name>_rq`` (per-channel ``rq`` as in :func:`mlp_graph`) after ``cur``."""
    c = shape[-1]
    g.add_tensor(f"{name}_act", shape, rq["out_type"])
    g.add_node(f"{name}_rq", "requant", [cur], [f"{name}_act"],
               multiplier=np.broadcast_to(np.asarray(rq["multiplier"], np.int64), (c,)).copy(),
               shift=np.broadcast_to(np.asarray(rq["shift"], np.int64), (c,)).copy(),
               lo=int(rq["lo"]), hi=int(rq["hi"]), rounding="half_up")
    return f"{name}_act", rq["out_type"]


def _append_layers(g, cur, cur_type, shape, layers, prefix=""):
    """Append the nodes of ``layers`` (see :func:`chain_graph`) after tensor ``cur``; returns
    the last tensor's ``(name, type, shape)``."""
    for k, layer in enumerate(layers):
        op = layer.get("op", "dense")
        name = layer.get("name", f"{prefix}{op}{k}")
        if op in OPS:
            d = OPS[op]
            attrs, shape, out_type = d.from_layer(layer, cur_type, shape)
            out = f"{name}_{d.layer_tensor}"
            g.add_tensor(out, shape, out_type)
            g.add_node(name, op, [cur], [out], **attrs)
            cur, cur_type = out, out_type
            if layer.get("requant") is not None:
                cur, cur_type = _append_requant(g, name, cur, shape, layer["requant"])
        elif op == "residual":
            main, main_type, main_shape = _append_layers(g, cur, cur_type, shape, layer["body"],
                                                         prefix=f"{name}_")
            if tuple(main_shape) != tuple(shape):
                raise ValueError(f"layer {name!r}: the residual body maps shape {shape} to "
                                 f"{main_shape}; the add needs them equal")
            s0, s1, sum_type = add_type(main_type, cur_type)
            g.add_tensor(f"{name}_sum", shape, sum_type)
            g.add_node(f"{name}_add", "add", [main, cur], [f"{name}_sum"], shift0=s0, shift1=s1)
            cur, cur_type = f"{name}_sum", sum_type
            if layer.get("requant") is not None:
                cur, cur_type = _append_requant(g, name, cur, shape, layer["requant"])
        else:
            raise ValueError(f"layer {name!r}: unknown op {op!r}")
    return cur, cur_type, shape


def lut_graph(in_type: IntType, thresholds, layers, groups, classes, meta=None):
    """The checked graph ``x → thermometer (enc) → lut (lut0, lut1, ...) → popcount (sum)``:
    ``thresholds`` (F, T), ``layers`` a list of ``(inputs, table)`` pairs, ``groups`` and
    ``classes`` of the popcount."""
    th = np.asarray(thresholds, dtype=np.int64)
    g = Graph(meta=dict(meta or {}))
    g.add_tensor("x", (th.shape[0],), in_type)
    g.inputs = ["x"]
    g.add_tensor("enc", (th.size,), BIT)
    g.add_node("enc", "thermometer", ["x"], ["enc"], thresholds=th)
    cur = "enc"
    for k, (inputs, table) in enumerate(layers):
        inputs, table = np.asarray(inputs, np.int64), np.asarray(table, np.int64)
        name = f"lut{k}"
        g.add_tensor(name, (inputs.shape[0] if inputs.ndim else 0,), BIT)
        g.add_node(name, "lut", [cur], [name], connections=inputs, table=table)
        cur = name
    groups = np.asarray(groups, np.int64)
    sizes = [int(np.sum(groups == c)) for c in range(int(classes))]
    g.add_tensor("sum", (int(classes),), IntType.for_range(0, max(sizes + [1])))
    g.add_node("sum", "popcount", [cur], ["sum"], groups=groups, classes=int(classes))
    g.outputs = ["sum"]
    return g.check()
