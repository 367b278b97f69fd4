"""Pooling ops over an NHWC image (no padding); output ``(OH, OW, C)``, type = input type.

``maxpool2d``  y[n, oy, ox, c] = max over the ``KH`` x ``KW`` window at (oy*stride, ox*stride)
``avgpool2d``  y[n, oy, ox, c] = round_shift(sum of the window, log2(KH*KW)): integer mean,
               rounded half up; ``KH*KW`` must be a power of two.

Attributes: ``kernel`` (an int: square, or a pair ``[KH, KW]``; ``[1, k]`` pools a one-row
image, a 1-D signal), ``stride``.
"""
from __future__ import annotations

import numpy as np

from ddnhw.fixedpoint import round_shift

from ..errors import IRError
from .base import OpDef, check_out_shape, full_range, op_def, register
from .window import conv_out_size, sliding_windows, window_geometry


def pool_kernel(node):
    """``(KH, KW)`` of a maxpool2d/avgpool2d node: its ``kernel`` attribute is an int (square)
    or a pair ``[KH, KW]`` (``[1, k]``: 1-D pooling of a one-row image); avgpool2d needs
    ``KH * KW`` to be a power of two (the integer mean is a sum and a shift)."""
    return op_def(node).window(node)[0]


class _Pool(OpDef):
    def window(self, node):
        """``((KH, KW), 0)`` of the node (checked)."""
        k = node.attrs.get("kernel")
        if isinstance(k, (list, tuple)) and len(k) == 2 and all(
                isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1
                for v in k):
            kh, kw = int(k[0]), int(k[1])
        elif isinstance(k, (int, np.integer)) and not isinstance(k, bool) and k >= 1:
            kh = kw = int(k)
        else:
            raise IRError(f"node {node.name!r}: {node.op} attribute 'kernel' must be an int >= 1 "
                          f"or a pair [kh, kw] of them, not {k!r}")
        self.check_kernel(node, kh, kw)
        return (kh, kw), 0

    def check_kernel(self, node, kh, kw):
        pass

    def check(self, graph, node):
        (_, _, c), _, _, _, (oh, ow) = window_geometry(graph, node)
        check_out_shape(graph, node, (oh, ow, c))
        return full_range(c, graph.tensors[node.inputs[0]].dtype)

    def from_layer(self, layer, in_type, in_shape):
        """Keys ``kernel`` (an int, or ``[kh, kw]``; 1-D pooling: ``[1, k]``), ``stride``
        (default: the kernel's larger side)."""
        k = layer["kernel"]
        kh, kw = (int(k[0]), int(k[1])) if isinstance(k, (list, tuple)) else (int(k), int(k))
        st = int(layer.get("stride", max(kh, kw)))
        shape = (conv_out_size(in_shape[0], kh, st, 0), conv_out_size(in_shape[1], kw, st, 0),
                 in_shape[2])
        return ({"kernel": [kh, kw] if isinstance(k, (list, tuple)) else kh, "stride": st},
                shape, in_type)

    def windows(self, node, x):
        (kh, kw), _ = self.window(node)
        return sliding_windows(x, kh, kw, int(node.attrs["stride"]), 0)


@register
class MaxPool2d(_Pool):
    name = "maxpool2d"

    def run(self, node, x):
        return self.windows(node, x).max(axis=(3, 4))


@register
class AvgPool2d(_Pool):
    name = "avgpool2d"

    def check_kernel(self, node, kh, kw):
        if (kh * kw) & (kh * kw - 1):
            raise IRError(f"node {node.name!r}: avgpool2d attribute 'kernel' {kh}x{kw}: the "
                          f"window size {kh * kw} is not a power of two (the mean is an integer "
                          f"sum and a shift)")

    def run(self, node, x):
        (kh, kw), _ = self.window(node)
        total = self.windows(node, x).sum(axis=(3, 4))
        return round_shift(total, (kh * kw).bit_length() - 1)
