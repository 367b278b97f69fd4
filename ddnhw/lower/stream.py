"""Lowering of large feature maps to memory-backed streaming blocks (:mod:`ddnhw.hw.stream`).

- A ``flatten`` whose only reader is a ``dense`` layer, of a streamed image whose flattened
  vector has at least :data:`STREAM_MIN_BITS` bits, has no block of its own: the dense layer
  becomes a :class:`~ddnhw.hw.stream.StreamDense` that takes the feature map pixel by pixel
  (:func:`stream_flatten` names these pairs; the network builder passes the flatten's input
  stream straight to the dense block). A collector of that vector would need as many
  flip-flops as it has bits (21,632 for the seed CNN's 13 x 13 x 32 map at 4 bits).
- A max/avg pool with stride equal to its square kernel, no padding, whose register line
  buffer would hold at least :data:`POOL_MEMORY_MIN_BITS` bits, is a
  :class:`~ddnhw.hw.stream.RowPool` (its row buffer in memory).

The weights of a :class:`StreamDense` live in block RAM or, on a family with SPRAM (the
iCE40UP5K), in SPRAM (``hw["mem"] = "spram"``): the planner (:mod:`ddnhw.passes.fold`) moves a
layer's weights there when the block RAM budget does not hold them.
"""
from __future__ import annotations

import numpy as np

from ddnhw import DdnhwError
from ddnhw.hw.family import get_family
from ddnhw.hw.stream import MEMORIES, RowPoolSpec, StreamDenseSpec

from .estimate import estimate_block

__all__ = ["STREAM_MIN_BITS", "POOL_MEMORY_MIN_BITS", "stream_flatten", "streamed",
           "stream_dense_spec", "stream_options", "row_pool_spec", "family_has_spram"]

STREAM_MIN_BITS = 3072
POOL_MEMORY_MIN_BITS = 2048


def family_has_spram(family) -> bool:
    """Whether ``family`` (a name or :class:`~ddnhw.hw.family.Family`) has SPRAM blocks."""
    return "spram" in get_family(family).pnr_cells


def stream_flatten(graph) -> dict:
    """``{flatten node: dense node}`` for every flatten computed inside the dense layer that
    reads it (see the module docstring)."""
    readers = {}
    for n in graph.nodes:
        for t in n.inputs:
            readers.setdefault(t, []).append(n)
    out = {}
    for n in graph.nodes:
        if n.op != "flatten":
            continue
        x = graph.tensors[n.inputs[0]]
        cons = readers.get(n.outputs[0], [])
        if (len(x.shape) == 3 and int(np.prod(x.shape[:-1])) > 1 and len(cons) == 1
                and cons[0].op == "dense" and n.outputs[0] not in graph.outputs
                and int(np.prod(x.shape)) * x.dtype.bits >= STREAM_MIN_BITS):
            out[n.name] = cons[0].name
    return out


def streamed(graph, node):
    """The flatten node whose feature map dense ``node`` takes pixel by pixel, or None."""
    for f, d in stream_flatten(graph).items():
        if d == node.name:
            return graph.node(f)
    return None


def stream_dense_spec(graph, node, hw, opts, flatten):
    """The :class:`StreamDenseSpec` of dense ``node`` fed by ``flatten``: ``hw["fold"]``
    ``(pe, simd)`` (None: every output and channel of a pixel at once), ``hw["mem"]``,
    ``hw["mul"]``, ``hw["pipe"]``; the Amaranth SPRAM model with ``opts.spram_model``."""
    if hw.get("fuse_requant") is not None:
        raise DdnhwError(f"layer {node.name!r}: a streamed dense layer does not fuse a "
                         f"requantizer")
    x = graph.tensors[flatten.inputs[0]]
    beats, c = int(np.prod(x.shape[:-1])), int(x.shape[-1])
    n_out = node.attrs["weight"].shape[0]
    fold = hw.get("fold")
    pe, simd = (n_out, c) if fold is None else (int(fold[0]), int(fold[1]))
    try:
        return StreamDenseSpec(node.attrs["weight"], node.attrs["bias"], x.dtype,
                               graph.tensors[node.outputs[0]].dtype, beats, pe=pe, simd=simd,
                               mem=hw.get("mem", "bram"),
                               model=bool(getattr(opts, "spram_model", False)),
                               mul=hw.get("mul", "auto"), pipe=int(hw.get("pipe", 0)))
    except ValueError as e:
        raise DdnhwError(f"layer {node.name!r} (streamed dense): {e}") from None


def stream_options(graph, node, family, flatten, divisors):
    """Folding candidates of a streamed dense layer: every ``(pe, simd)`` dividing its outputs
    and channels, with its weights in block RAM and (on a family with SPRAM) in SPRAM
    (``"hw": {"mem": "spram"}``); ``ii`` per image. ``divisors(n)``: the candidate counts."""
    x = graph.tensors[flatten.inputs[0]]
    beats, c = int(np.prod(x.shape[:-1])), int(x.shape[-1])
    n_out = node.attrs["weight"].shape[0]
    mems = MEMORIES if family_has_spram(family) else ("bram",)
    opts = []
    for pe in divisors(n_out):
        for simd in divisors(c):
            for mem in mems:
                spec = StreamDenseSpec(node.attrs["weight"], node.attrs["bias"], x.dtype,
                                       graph.tensors[node.outputs[0]].dtype, beats, pe=pe,
                                       simd=simd, mem=mem)
                o = {"fold": (pe, simd), "ii": int(spec.ii),
                     "estimate": estimate_block(spec, family)}
                if mem != "bram":
                    o["hw"] = {"mem": mem}
                opts.append(o)
    return opts


def row_pool_spec(graph, node, kind):
    """A :class:`RowPoolSpec` for pool ``node`` when it qualifies (see the module
    docstring), else None."""
    from ddnhw.ir.ops import pool_kernel
    kh, kw = pool_kernel(node)
    x = graph.tensors[node.inputs[0]]
    if len(x.shape) != 3:
        return None
    h, w, c = (int(v) for v in x.shape)
    if (kh != kw or kh < 2 or int(node.attrs["stride"]) != kh
            or int(node.attrs.get("padding", 0)) != 0
            or kh * w * c * x.dtype.bits < POOL_MEMORY_MIN_BITS):
        return None
    return RowPoolSpec(kind, kh, h, w, c, x.dtype)
