"""``conv2d``: a 2-D convolution of an NHWC image.

    y[n, oy, ox, o] = bias[o] + sum_{ky, kx, c} weight[o, ky, kx, c]
                      * xp[n, oy*stride + ky, ox*stride + kx, g(o)*Cg + c]

where ``xp`` is ``x`` zero-padded by ``padding`` on each side of H and W (integer zero),
``Cg = C / groups`` and ``g(o) = o // (O / groups)``; dilation is 1. Attributes: ``weight``
(O, KH, KW, Cg), ``bias`` (O,), ``stride``, ``padding``, ``groups`` (1: dense; C: depthwise).
Output ``(OH, OW, O)``.
"""
from __future__ import annotations

import numpy as np

from ..errors import IRError
from ..types import IntType
from .base import OpDef, check_out_shape, int_attr, int_matmul, register
from .dense import dense_range, mac_layer
from .window import conv_out_size, sliding_windows, window_geometry


def conv_range(node, in_type: IntType):
    """Per-output-channel bounds of a conv2d: the dense bound of each flattened filter (zero
    padding is inside every input type, so it cannot widen the range)."""
    w = node.attrs["weight"]
    return dense_range(w.reshape(w.shape[0], -1), node.attrs["bias"], in_type)


def conv_matrix(weight, channels, groups):
    """An NHWC conv weight ``(O, KH, KW, C/groups)`` as the dense matrix ``(O, KH*KW*C)`` over
    a window beat (lanes ``(ky, kx, c)``); channels outside an output's group are zero."""
    w = np.asarray(weight, dtype=np.int64)
    o, kh, kw, cg = w.shape
    full = np.zeros((o, kh, kw, channels), dtype=np.int64)
    og = o // groups
    for g in range(groups):
        full[g * og:(g + 1) * og, :, :, g * cg:(g + 1) * cg] = w[g * og:(g + 1) * og]
    return full.reshape(o, -1)


def conv_group_columns(weight, channels, groups):
    """The window-beat lanes (``(ky, kx, c)``, as :func:`conv_matrix`'s columns) that each
    group reads: an integer array ``(groups, KH*KW*C/groups)``, row ``g`` the lanes of the
    channels ``g*C/groups ..`` in lane order."""
    _, kh, kw, cg = np.asarray(weight).shape
    lanes = np.arange(kh * kw * channels, dtype=np.int64).reshape(kh, kw, groups, cg)
    return lanes.transpose(2, 0, 1, 3).reshape(groups, -1)


@register
class Conv2d(OpDef):
    name = "conv2d"
    foldable = True

    def window(self, node):
        """``((KH, KW), padding)`` of the node."""
        wt = node.attrs.get("weight")
        if not isinstance(wt, np.ndarray) or wt.ndim != 4:
            raise IRError(f"node {node.name!r}: conv2d needs weight (O, KH, KW, C/groups)")
        return (int(wt.shape[1]), int(wt.shape[2])), int_attr(node, "padding", 0)

    def check(self, graph, node):
        (_, _, c), _, _, _, (oh, ow) = window_geometry(graph, node)
        wt, b = node.attrs["weight"], node.attrs.get("bias")
        groups = int_attr(node, "groups", 1) if "groups" in node.attrs else 1
        o = wt.shape[0]
        if c % groups or o % groups or wt.shape[3] * groups != c:
            raise IRError(f"node {node.name!r}: groups {groups} does not fit {c} input channels, "
                          f"{o} output channels and weight shape {wt.shape}")
        if not isinstance(b, np.ndarray) or b.shape != (o,):
            raise IRError(f"node {node.name!r}: conv2d needs bias ({o},)")
        check_out_shape(graph, node, (oh, ow, o))
        return conv_range(node, graph.tensors[node.inputs[0]].dtype)

    def run(self, node, x):
        a = node.attrs
        w = a["weight"]                      # (O, KH, KW, Cg)
        o, kh, kw, cg = w.shape
        groups = int(a.get("groups", 1))
        win = sliding_windows(x, kh, kw, int(a["stride"]), int(a["padding"]))
        og = o // groups
        outs = []
        for g in range(groups):
            xg = win[..., g * cg:(g + 1) * cg].reshape(win.shape[:3] + (-1,))
            wg = w[g * og:(g + 1) * og].reshape(og, -1)
            outs.append(int_matmul(xg, wg))
        return np.concatenate(outs, axis=-1) + a["bias"]

    def mac_matrix(self, graph, node):
        """:func:`conv_matrix`: the dense ``(O, KH*KW*C)`` matrix over one window beat."""
        c = graph.tensors[node.inputs[0]].shape[-1]
        return conv_matrix(node.attrs["weight"], c, int(node.attrs.get("groups", 1)))

    layer_tensor = "acc"

    def from_layer(self, layer, in_type, in_shape):
        """Keys ``weight``, ``bias``, optional ``weight_frac``, ``stride`` (1), ``padding``
        (0), ``groups`` (1)."""
        w = np.asarray(layer["weight"], dtype=np.int64)
        b = np.asarray(layer["bias"], dtype=np.int64)
        p, s = int(layer.get("padding", 0)), int(layer.get("stride", 1))
        attrs = {"weight": w, "bias": b, "stride": s, "padding": p,
                 "groups": int(layer.get("groups", 1))}
        shape = (conv_out_size(in_shape[0], w.shape[1], s, p),
                 conv_out_size(in_shape[1], w.shape[2], s, p), w.shape[0])
        return attrs, shape, mac_layer(layer, in_type, *dense_range(w.reshape(len(w), -1), b,
                                                                     in_type))
