"""IR op -> hardware lowering registry: one :class:`Lowering` entry per op.

An entry holds the op's block factory ``build(graph, node, hw, options)`` (``hw``: the node's
hardware annotation, see :mod:`ddnhw.passes.base`; ``options``: a
:class:`~ddnhw.lower.options.LowerOptions`), which returns the block's spec
(:mod:`ddnhw.hw.protocol`: no component exists until the network is built), what the op adds to its manifest entry
(``describe``), its folding candidates for the planner (``fold_options``; None: the op has no
MAC that folds) and whether a folded block computes the requant node after it
(``fuses_requant``).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

import numpy as np

from ddnhw import DdnhwError
from ddnhw.hw import (AlignedAddSpec, ChainSpec, CollectorSpec, DenseSpec, FoldedDenseSpec,
                      RecurrentSpec, RequantizerSpec, SlidingWindowSpec, WindowPoolSpec,
                      XnorDenseSpec)
from ddnhw.hw.folded import group_fold_ok
from ddnhw.hw.xnor import binary_rows
from ddnhw.hw.recurrent import OPS as RECURRENT_BLOCK_OPS
from ddnhw.hw.lut import LutLayerSpec, PopcountSpec, ThermometerSpec
from ddnhw.ir.ops import OPS, conv_group_columns, conv_matrix, dense_range, op_def, pool_kernel

from .estimate import RESOURCES, estimate_block, estimate_folded, lane_requant_luts
import ddnhw.lower.stream as stream
from .options import LowerOptions
from .timing import window_mac_ii

__all__ = ["Lowering", "LOWERINGS", "register", "lowering", "lower_spec", "hw_of",
           "foldable", "recurrent", "conv_matrix", "bipolar_tensor", "window_for",
           "requant_idle_channels", "divisors", "BlockCache", "UNROLLED_MAX_WEIGHTS",
           "conv_groups"]

# an unrolled Dense is a folding candidate (built to be estimated) only up to this many weights
UNROLLED_MAX_WEIGHTS = 1024


@dataclass(frozen=True)
class Lowering:
    """How one IR op becomes hardware.

    ``build(graph, node, hw, options) -> block spec``. ``describe(graph, node, block) -> dict``:
    the op's own keys of its manifest entry (e.g. ``folded``/``pe``/``simd``), or None.
    ``fold_options(graph, node, family, requant) -> [{"fold", "ii", "estimate"}]``: every
    implementation the folding planner may choose (``fold``: ``(pe, simd)`` or None for
    unrolled; ``requant``: the requant node a folded block would compute, or None), or None
    when the op does not fold. ``fuses_requant``: a folded block computes the requant node
    that is its only consumer. ``rate_fifo``: a rate FIFO may follow the block (False for a
    block whose beat is a whole feature map, which it already holds while its consumer is
    busy). ``xnor(graph, node) -> bool``: whether the unrolled layer can be an XNOR +
    popcount block (None: never)."""
    op: str
    build: Callable
    describe: Callable | None = None
    fold_options: Callable | None = None
    fuses_requant: bool = False
    rate_fifo: bool = True
    xnor: Callable | None = None


LOWERINGS: dict = {}


def register(op, **meta):
    """Decorator: register ``build(graph, node, hw, options)`` as the lowering of ``op``;
    ``meta``: the other :class:`Lowering` fields."""
    def deco(fn):
        if op in LOWERINGS:
            raise ValueError(f"op {op!r} already has a lowering")
        LOWERINGS[op] = Lowering(op, fn, **meta)
        return fn
    return deco


def lowering(op) -> Lowering:
    """The :class:`Lowering` of ``op``; ``ValueError`` naming it when there is none."""
    try:
        return LOWERINGS[op]
    except KeyError:
        raise ValueError(f"no hardware lowering for op {op!r} (have: "
                         f"{', '.join(sorted(LOWERINGS))})") from None


def hw_of(node) -> dict:
    """The node's ``hw`` annotation (empty when it has none)."""
    return node.attrs.get("hw") or {}


def foldable(op) -> bool:
    """Whether ``op`` has a MAC that folds (its op definition says so and its lowering has
    folding candidates): the planner's and the ``folding`` option's layers."""
    entry = LOWERINGS.get(op)
    return (op in OPS and OPS[op].foldable and entry is not None
            and entry.fold_options is not None)


def recurrent(op) -> bool:
    """Whether ``op`` is a recurrent layer (a sequence in, one step per beat)."""
    return op in OPS and OPS[op].recurrent


def lower_spec(graph, node, options=None, hw=None):
    """The block spec of ``node`` (validated; no component is created): its lowering's
    ``build`` with ``hw`` (default: the node's own annotation) and ``options`` (default
    :class:`LowerOptions`)."""
    try:
        entry = lowering(node.op)
    except ValueError as e:
        raise ValueError(f"node {node.name!r}: {e}") from None
    return entry.build(graph, node, hw_of(node) if hw is None else hw,
                       options if options is not None else LowerOptions())


class BlockCache:
    """``cache(graph, node)``: :func:`lower_spec` with ``options``, once per node and hardware
    decisions (the ``hw`` annotations of every node other than FIFO depths, which change no
    block)."""
    _IGNORED = ("fifo_after", "skip_fifo")

    def __init__(self, options=None):
        self.options = options if options is not None else LowerOptions()
        self._blocks = {}

    def _decisions(self, graph):
        return json.dumps([{k: v for k, v in hw_of(n).items() if k not in self._IGNORED}
                           for n in graph.nodes], sort_keys=True)

    def __call__(self, graph, node):
        key = (node.name, self._decisions(graph))
        if key not in self._blocks:
            self._blocks[key] = lower_spec(graph, node, self.options)
        return self._blocks[key]


def divisors(n):
    return [d for d in range(1, n + 1) if n % d == 0]


def _bits(lo, hi):
    if lo >= 0:
        return max(1, int(hi).bit_length())
    return max((-lo - 1).bit_length(), hi.bit_length() if hi > 0 else 0) + 1


def _add(a, b):
    return {k: a.get(k, 0) + b.get(k, 0) for k in RESOURCES}


def bipolar_tensor(graph, name) -> bool:
    """Whether every value of tensor ``name`` is -1 or +1, from its producers: a requant to
    ``[-1, 1]`` with odd multipliers and no shift of a dense output with even weights and odd
    biases (an odd accumulator times an odd multiplier is odd, so never clipped to 0)."""
    rq = graph.producer(name)
    if rq is None or rq.op != "requant":
        return False
    a = rq.attrs
    if (int(a["lo"]), int(a["hi"])) != (-1, 1) or np.any(np.asarray(a["shift"]) != 0) \
            or np.any(np.asarray(a["multiplier"]) % 2 == 0):
        return False
    d = graph.producer(rq.inputs[0])
    return (d is not None and d.op == "dense" and bool(np.all(d.attrs["weight"] % 2 == 0))
            and bool(np.all(d.attrs["bias"] % 2 == 1)))


def _fold(node, hw):
    fold = hw.get("fold")
    if fold is not None and (not isinstance(fold, (tuple, list)) or len(fold) != 2):
        raise ValueError(f"node {node.name!r}: fold must be (pe, simd), not {fold!r}")
    return None if fold is None else (int(fold[0]), int(fold[1]))


def _fused(graph, node, hw, fold, yt):
    """``(requant tuple or None, output type)`` of a MAC block that computes the requant node
    ``hw["fuse_requant"]`` (only a folded one can)."""
    name = hw.get("fuse_requant")
    if name is None:
        return None, yt
    if fold is None:
        raise ValueError(f"node {node.name!r}: only folded {node.op} layers fuse a requantizer")
    r = graph.node(name)
    a = r.attrs
    return ((a["multiplier"], a["shift"], a["lo"], a["hi"], a.get("rounding", "half_up")),
            graph.tensors[r.outputs[0]].dtype)


def _mac(graph, node, hw, opts, w, b, xt, yt, groups=None):
    """The MAC of a dense layer or a conv window: :class:`FoldedDense` when folded (grouped
    when ``groups``, ``(groups, columns)``, is given: ``simd`` then counts one group's
    columns), else :class:`Dense` (over the whole matrix: its zero weights cost nothing)."""
    fold = _fold(node, hw)
    requant, yt = _fused(graph, node, hw, fold, yt)
    if fold is not None:
        kw = {} if groups is None else {"groups": groups[0], "columns": groups[1]}
        kw.update({k: hw[k] for k in ("mul", "dsp", "pipe", "wmem") if k in hw})   # MAC style
        if hw.get("rq_reg") and requant is not None:     # the requantizer's output register
            kw["rq_reg"] = True
        return FoldedDenseSpec(w, b, xt, yt, pe=fold[0], simd=fold[1], requant=requant,
                               decode=hw.get("weight_decode", opts.weight_decode), **kw)
    return DenseSpec(w, b, xt, yt, regs_every=opts.regs_every, style=opts.dense_style)


def _mac_entry(mac) -> dict:
    entry = {"folded": hasattr(mac, "pe"), "pe": int(getattr(mac, "pe", mac.n_out)),
             "simd": int(getattr(mac, "simd", mac.n_in))}
    if getattr(mac, "groups", 1) > 1:
        entry["groups"] = int(mac.groups)
    if getattr(mac, "mem", None) is not None:     # a StreamDense: where its weights are
        entry.update(streamed=True, mem=mac.mem)
    return entry


def _matrix_options(graph, node, w, b, family, requant, groups=1):
    """Folding candidates of a MAC over the matrix ``w`` (``ii`` per input vector); with
    ``groups`` > 1, of a grouped :class:`FoldedDense` (``simd`` over one group's columns,
    ``pe`` as :func:`~ddnhw.hw.folded.group_fold_ok` allows)."""
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    n_out, n_in = w.shape
    cols = n_in // groups
    lo, hi = dense_range(w, b, xt)
    acc = _bits(int(min(lo)), int(max(hi)))
    wb = _bits(int(w.min()), int(w.max()))
    mul = "lut" if min(wb, xt.bits) <= 4 else "dsp"
    out_bits = yt.bits if requant is None else graph.tensors[requant.outputs[0]].dtype.bits
    opts = []
    for pe in divisors(n_out):
        if groups > 1 and not group_fold_ok(n_out, groups, pe):
            continue
        rq = 0 if requant is None else lane_requant_luts(
            requant.attrs["multiplier"], requant.attrs["shift"], acc, out_bits, pe)
        for simd in divisors(cols):
            if (pe, simd) == (n_out, cols) and w.size <= UNROLLED_MAX_WEIGHTS:
                continue   # constant weights: the unrolled Dense below is that option
            est = estimate_folded(family, n_out=n_out, n_in=n_in, weight_bits=wb,
                                  in_bits=xt.bits, acc_bits=acc, out_bits=out_bits, pe=pe,
                                  simd=simd, mul=mul, requant_luts=rq, groups=groups)
            opts.append({"fold": (pe, simd), "ii": (cols // simd) * (n_out // pe),
                         "estimate": est})
    if w.size <= UNROLLED_MAX_WEIGHTS:
        est = estimate_block(DenseSpec(w, b, xt, yt), family)
        if requant is not None:
            est = _add(est, estimate_block(lower_spec(graph, requant, hw={}), family))
        opts.append({"fold": None, "ii": 1, "estimate": est})
    return opts


# -- dense ----------------------------------------------------------------------------------

def _dense(graph, node, hw, opts):
    """:class:`FoldedDense` when ``hw["fold"]`` is ``(pe, simd)`` (computing the requant node
    ``hw["fuse_requant"]`` with its PE lanes, if given; storing weights as
    ``hw["weight_decode"]`` or the ``weight_decode`` option says), else an unrolled
    :class:`XnorDense` (XNOR + popcount) when ``hw["xnor"]``, else an unrolled :class:`Dense`."""
    a = node.attrs
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    flat = stream.streamed(graph, node)      # a flatten it takes pixel by pixel
    if flat is not None:
        return stream.stream_dense_spec(graph, node, hw, opts, flat)
    if hw.get("xnor") and _fold(node, hw) is None:
        if hw.get("fuse_requant") is not None:
            raise ValueError(f"node {node.name!r}: only folded dense layers fuse a requantizer")
        return XnorDenseSpec(a["weight"], a["bias"], xt, yt, regs_every=opts.regs_every)
    return _mac(graph, node, hw, opts, op_def(node).mac_matrix(graph, node), a["bias"], xt, yt)


def _dense_options(graph, node, family, requant):
    flat = stream.streamed(graph, node)
    if flat is not None:
        return stream.stream_options(graph, node, family, flat, divisors)
    return _matrix_options(graph, node, op_def(node).mac_matrix(graph, node),
                           node.attrs["bias"], family, requant)


def _xnor_capable(graph, node) -> bool:
    """Whether dense ``node`` can be an :class:`XnorDense`: binary weight rows on a
    :func:`bipolar_tensor` input."""
    return (binary_rows(node.attrs["weight"]) is not None
            and bipolar_tensor(graph, node.inputs[0]))


register("dense", describe=lambda graph, node, block: _mac_entry(block),
         fold_options=_dense_options, fuses_requant=True, xnor=_xnor_capable)(_dense)


# -- requant --------------------------------------------------------------------------------

@register("requant")
def _requant(graph, node, hw, opts):
    """:class:`Requantizer` (its ``idle_channels`` from :func:`requant_idle_channels`)."""
    a = node.attrs
    return RequantizerSpec(a["multiplier"], a["shift"], a["lo"], a["hi"],
                           graph.tensors[node.inputs[0]].dtype,
                           graph.tensors[node.outputs[0]].dtype,
                           idle_channels=requant_idle_channels(graph, node),
                           rounding=node.attrs.get("rounding", "half_up"))


def requant_idle_channels(graph, node, folding=None):
    """Per channel of a ``requant`` node: True where no logic is needed, because its input is
    constant (an all-zero weight row in the dense layer before it) or because no layer reads it
    (an all-zero weight column in every dense layer that takes the tensor). Yosys removes that
    logic; the resource estimate uses this (e.g. no DSP for such a channel's multiplier).
    Folded layers (``hw["fold"]`` set, or named in ``folding``) keep weights in memory, which
    yosys cannot see through: nothing is idle across them."""
    folded = {k for k, v in (folding or {}).items() if v is not None}
    folded |= {n.name for n in graph.nodes if hw_of(n).get("fold") is not None}
    idle = np.zeros(len(node.attrs["multiplier"]), dtype=bool)
    prod = graph.producer(node.inputs[0])
    if prod is not None and prod.op == "dense" and prod.name not in folded:
        # a row of zero weights: the accumulator is the constant bias (yosys propagates it)
        idle |= np.all(np.asarray(prod.attrs["weight"]) == 0, axis=1)
    readers = [n for n in graph.nodes if node.outputs[0] in n.inputs]
    if readers and all(n.op == "dense" and n.name not in folded for n in readers):
        idle_read = np.all([np.all(np.asarray(n.attrs["weight"]) == 0, axis=0)
                            for n in readers], axis=0)
        idle = idle | idle_read
    return idle


# -- conv2d ---------------------------------------------------------------------------------

def _window(graph, node, kh, kw, stride, padding):
    x = graph.tensors[node.inputs[0]]
    h, w, c = x.shape
    return SlidingWindowSpec(h, w, c, x.dtype, kh, kw, stride, padding)


def window_for(graph, node):
    """The :class:`SlidingWindow` of a conv2d node."""
    a = node.attrs
    return _window(graph, node, a["weight"].shape[1], a["weight"].shape[2], int(a["stride"]),
                   int(a["padding"]))


def conv_groups(graph, node):
    """``(groups, columns)`` of a grouped conv2d node (``columns``: the window lanes of every
    group, :func:`~ddnhw.ir.ops.conv_group_columns`), None when ``groups`` is 1."""
    groups = int(node.attrs.get("groups", 1))
    if groups == 1:
        return None
    c = graph.tensors[node.inputs[0]].shape[-1]
    return groups, conv_group_columns(node.attrs["weight"], c, groups)


def _conv2d(graph, node, hw, opts):
    """:class:`SlidingWindow` then the MAC over each window (as for dense: a
    :class:`FoldedDense` when ``hw["fold"]`` is set, fusing ``hw["fuse_requant"]``, else an
    unrolled :class:`Dense`); the chain's ``ii`` is per image. A grouped conv (``groups`` > 1,
    depthwise: ``groups == C``) folds as a grouped :class:`FoldedDense`: ``(pe, simd)`` are
    output channels and the window lanes of one group (``KH*KW*C/groups``) per cycle, and it
    stores and steps over the group's weights only."""
    xt, yt = graph.tensors[node.inputs[0]].dtype, graph.tensors[node.outputs[0]].dtype
    win = window_for(graph, node)
    mac = _mac(graph, node, hw, opts, op_def(node).mac_matrix(graph, node), node.attrs["bias"],
               xt, yt, groups=conv_groups(graph, node))
    # the MAC's II is per window beat; the chain's is per image (every window of the image,
    # and the line buffer overlaps input and windows only partly)
    return ChainSpec(win, mac, ii=window_mac_ii(win, mac.ii,
                                                getattr(mac, "requant", None) is not None))


def _conv_options(graph, node, family, requant):
    """A conv2d is its :class:`SlidingWindow` and a MAC over the :func:`conv_matrix` that runs
    once per window: its candidates fold that matrix (a grouped conv: as a grouped
    :class:`FoldedDense`, ``simd`` over one group's lanes), their ``ii`` is per image
    (:func:`~ddnhw.lower.timing.window_mac_ii`) and every estimate includes the window."""
    win = window_for(graph, node)
    win_est = estimate_block(win, family)
    per_image = {}
    opts = _matrix_options(graph, node, op_def(node).mac_matrix(graph, node),
                           node.attrs["bias"], family, requant,
                           groups=int(node.attrs.get("groups", 1)))
    for o in opts:
        fused = o["fold"] is not None and requant is not None
        key = (o["ii"], fused)
        if key not in per_image:
            per_image[key] = window_mac_ii(win, o["ii"], fused)
        o["ii"] = per_image[key]
        o["estimate"] = _add(o["estimate"], win_est)
    return opts


register("conv2d", describe=lambda graph, node, block: _mac_entry(block.children[-1]),
         fold_options=_conv_options, fuses_requant=True)(_conv2d)


# -- pooling, flatten, add ------------------------------------------------------------------

def _pool(kind):
    def factory(graph, node, hw, opts):
        row_pool = stream.row_pool_spec(graph, node, kind)   # a large map: memory rows
        if row_pool is not None:
            return row_pool
        kh, kw = pool_kernel(node)    # square, or 1 x k for a 1-D signal
        x = graph.tensors[node.inputs[0]]
        return ChainSpec(_window(graph, node, kh, kw, int(node.attrs["stride"]), 0),
                         WindowPoolSpec(kind, kh * kw, x.shape[-1], x.dtype))
    factory.__doc__ = f":class:`SlidingWindow` then a {kind} :class:`WindowPool`."
    return factory


register("maxpool2d")(_pool("max"))
register("avgpool2d")(_pool("avg"))


def _add_entry(graph, node, block):
    return {"shift0": int(node.attrs["shift0"]), "shift1": int(node.attrs["shift1"])}


@register("add", describe=_add_entry)
def _add_node(graph, node, hw, opts):
    """An :class:`AlignedAdd` (inputs ``i0``, ``i1`` in the node's input order)."""
    t0, t1 = (graph.tensors[t] for t in node.inputs)
    return AlignedAddSpec(int(t0.shape[-1]), t0.dtype, t1.dtype,
                          graph.tensors[node.outputs[0]].dtype, int(node.attrs["shift0"]),
                          int(node.attrs["shift1"]))


@register("flatten", rate_fifo=False)
def _flatten(graph, node, hw, opts):
    """A :class:`Collector` of the feature map's pixels into one vector beat."""
    x = graph.tensors[node.inputs[0]]
    return CollectorSpec(int(np.prod(x.shape[:-1])), x.shape[-1], x.dtype)


# -- recurrent ------------------------------------------------------------------------------

def _recurrent(graph, node, hw, opts):
    """:class:`~ddnhw.hw.recurrent.Recurrent`: its MAC engine is an unrolled :class:`Dense`,
    or a :class:`FoldedDense` when ``hw["fold"]`` is ``(pe, simd)``; ``hw["gate_lanes"]`` sets
    the hidden units its gate unit handles per cycle (default: all with an unrolled engine, 1
    with a folded one)."""
    from ddnhw.ir.ops.recurrent import recurrent_geometry

    a = node.attrs
    t, _, _ = recurrent_geometry(graph, node)
    try:
        return RecurrentSpec(node.op, a["weight"], a["bias"], a["multiplier"], a["shift"],
                             a["lut_lo"], a["lut_hi"], a["tanh_table"],
                             graph.tensors[node.inputs[0]].dtype,
                             graph.tensors[node.outputs[0]].dtype, t,
                             int(a["return_sequences"]), a.get("sigmoid_table"),
                             a.get("gate_frac"), fold=_fold(node, hw),
                             gate_lanes=hw.get("gate_lanes"), regs_every=opts.regs_every,
                             dense_style=opts.dense_style, cell_bits=a.get("cell_bits"))
    except (ValueError, TypeError) as e:
        raise DdnhwError(f"layer {node.name!r} ({node.op}): {e}") from None


def _recurrent_entry(graph, node, block):
    e = block.engine
    return {"folded": block.fold is not None, "pe": int(getattr(e, "pe", e.n_out)),
            "simd": int(getattr(e, "simd", e.n_in)), "gate_lanes": block.gate_lanes,
            "steps": block.steps, "step_cycles": block.step_cycles}


def _recurrent_options(graph, node, family, requant):
    """Candidates of a recurrent layer: its MAC engine folded to every ``(pe, simd)`` (the gate
    unit then handles one hidden unit per cycle), or unrolled (all gate lanes) when its matrix
    has at most :data:`UNROLLED_MAX_WEIGHTS` weights. ``ii`` is per sequence; the estimates
    are the blocks' own (engine plus gate unit)."""
    def option(fold):
        b = lower_spec(graph, node, hw={"fold": fold})
        return {"fold": fold, "ii": int(b.ii), "estimate": estimate_block(b, family)}
    rows, cols = node.attrs["weight"].shape
    opts = [option((pe, simd)) for pe in divisors(rows) for simd in divisors(cols)
            if (pe, simd) != (rows, cols) or rows * cols > UNROLLED_MAX_WEIGHTS]
    if rows * cols <= UNROLLED_MAX_WEIGHTS:
        opts.append(option(None))
    return opts


for _op in RECURRENT_BLOCK_OPS:     # the recurrent ops the Recurrent block implements
    register(_op, describe=_recurrent_entry, fold_options=_recurrent_options)(_recurrent)


# -- logic-domain (lookup-table) networks ---------------------------------------------------

@register("thermometer")
def _thermometer(graph, node, hw, opts):
    """A :class:`~ddnhw.hw.lut.Thermometer` (one comparator per threshold, registered)."""
    return ThermometerSpec(node.attrs["thresholds"], graph.tensors[node.inputs[0]].dtype)


@register("lut", describe=lambda graph, node, block: {"neurons": int(block.n),
                                                      "fan_in": int(block.k)})
def _lut_layer(graph, node, hw, opts):
    """A :class:`~ddnhw.hw.lut.LutLayer`: every neuron a truth table over its input bits."""
    return LutLayerSpec(node.attrs["connections"], node.attrs["table"],
                        graph.tensors[node.inputs[0]].shape[0])


@register("popcount")
def _popcount(graph, node, hw, opts):
    """A :class:`~ddnhw.hw.lut.Popcount` (an adder tree per class, a register every
    ``regs_every`` levels)."""
    return PopcountSpec(node.attrs["groups"], int(node.attrs["classes"]),
                        graph.tensors[node.outputs[0]].dtype, regs_every=opts.regs_every)
