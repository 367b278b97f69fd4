"""Shared geometry of the sliding-window ops (``conv2d``, ``maxpool2d``, ``avgpool2d``).

Images are NHWC: an image tensor has shape ``(H, W, C)`` (the batch axis is implicit). A window
op slides a ``KH`` x ``KW`` window with ``stride`` over the input zero-padded by ``padding``
on each side of H and W; each windowed op states its window with ``window(node) -> ((KH, KW),
padding)`` (checked).
"""
from __future__ import annotations

import numpy as np

from ..errors import IRError
from .base import int_attr, op_def


def conv_out_size(n: int, k: int, stride: int, padding: int) -> int:
    """Output length of a sliding window of size ``k`` over ``n`` (+ padding both sides)."""
    return (n + 2 * padding - k) // stride + 1


def window_geometry(graph, node):
    """``(H, W, C), (KH, KW), stride, padding, (OH, OW)`` of a conv2d/pool node (checked)."""
    x = graph.tensors[node.inputs[0]]
    if len(x.shape) != 3:
        raise IRError(f"node {node.name!r}: {node.op} needs an image input (H, W, C), tensor "
                      f"{x.name!r} has shape {x.shape}")
    h, w, c = x.shape
    stride = int_attr(node, "stride", 1)
    (kh, kw), padding = op_def(node).window(node)
    if kh < 1 or kw < 1 or padding >= min(kh, kw):
        raise IRError(f"node {node.name!r}: padding {padding} must be smaller than the kernel "
                      f"{kh}x{kw}")
    oh, ow = conv_out_size(h, kh, stride, padding), conv_out_size(w, kw, stride, padding)
    if oh < 1 or ow < 1:
        raise IRError(f"node {node.name!r}: kernel {kh}x{kw} does not fit the input {h}x{w} "
                      f"(padding {padding})")
    return (h, w, c), (kh, kw), stride, padding, (oh, ow)


def sliding_windows(x, kh, kw, stride, padding):
    """``(N, OH, OW, KH, KW, C)`` views of the zero-padded NHWC batch ``x``."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N,OH',OW',C,KH,KW
    v = v[:, ::stride, ::stride]
    return v.transpose(0, 1, 2, 4, 5, 3)
