"""What every pass shares: the ``hw`` annotation of a node, copying a graph, and the runner.

A pass is an object with ``apply(graph) -> (graph, changed)``: it returns a new graph (the
input graph is never modified) and whether any node's ``hw`` annotation differs from the
input's. :func:`run_passes` applies a list of passes in order until a whole round changes
nothing (a fixed point).

``node.attrs["hw"]`` is a JSON dict (saved in the model file with the node's other scalar
attributes; golden and the op checks ignore it):

- ``fold``: ``[pe, simd]`` or null (unrolled); written on every foldable node by
  :mod:`ddnhw.passes.fold` (absent: unrolled),
- ``fuse_requant``: the name of the requant node a folded MAC computes
  (:mod:`ddnhw.passes.requant_fusion`),
- ``xnor``: true, an unrolled dense layer built as XNOR + popcount (:mod:`ddnhw.passes.xnor`),
- ``fifo_after``: depth of the rate FIFO after the node's block (:mod:`ddnhw.passes.fifo`),
- ``skip_fifo``: depth of an add node's skip FIFO, 0: a wire (:mod:`ddnhw.passes.skip_fifo`),
- ``gate_lanes``: hidden units per cycle of a recurrent layer's gate unit,
- ``weight_decode``: how a folded layer stores its weights (overrides the lowering option).
"""
from __future__ import annotations

import json

from ddnhw import DdnhwError
from ddnhw.ir.graph import Graph, Node

__all__ = ["HW", "HW_KEYS", "Pass", "hw_of", "set_hw", "copy_graph", "run_passes",
           "PassError", "fused_into", "consumers", "block_outputs", "check_depths"]

HW = "hw"
HW_KEYS = ("fold", "fuse_requant", "xnor", "fifo_after", "skip_fifo", "gate_lanes",
           "weight_decode", "mul", "dsp", "pipe", "rq_reg", "wmem", "mem")
MAX_ROUNDS = 16


class PassError(DdnhwError, ValueError):
    """A pass cannot annotate the graph as asked; the message names the node."""


def hw_of(node) -> dict:
    """The node's ``hw`` annotation (an empty dict when it has none); do not modify it."""
    return node.attrs.get(HW) or {}


def _norm(v):
    """A value as JSON reads it back (tuples -> lists, numpy ints -> int)."""
    return json.loads(json.dumps(v, default=int))


def set_hw(node, key, value, keep_none=False):
    """Set (or with ``value`` None and not ``keep_none``, remove) ``hw[key]`` of ``node`` (a node
    of a graph the caller owns, e.g. from :func:`copy_graph`). The dict disappears when empty."""
    if key not in HW_KEYS:
        raise KeyError(f"unknown hw annotation {key!r} (known: {', '.join(HW_KEYS)})")
    hw = dict(hw_of(node))
    if value is None and not keep_none:
        hw.pop(key, None)
    else:
        hw[key] = _norm(value)
    if hw:
        node.attrs[HW] = hw
    else:
        node.attrs.pop(HW, None)


def copy_graph(graph: Graph) -> Graph:
    """A copy whose nodes (and their attribute and ``hw`` dicts) may be changed; tensors and
    array attributes are shared (passes never modify them)."""
    nodes = []
    for n in graph.nodes:
        attrs = dict(n.attrs)
        if HW in attrs:
            attrs[HW] = dict(attrs[HW])
        nodes.append(Node(n.name, n.op, list(n.inputs), list(n.outputs), attrs))
    return Graph(tensors=dict(graph.tensors), nodes=nodes, inputs=list(graph.inputs),
                 outputs=list(graph.outputs), meta=dict(graph.meta))


def fused_into(graph) -> dict:
    """``{requant node name: name of the folded node that computes it}``."""
    return {hw_of(n)["fuse_requant"]: n.name for n in graph.nodes
            if hw_of(n).get("fuse_requant") is not None}


def block_outputs(graph) -> dict:
    """``{node name: the tensor its block emits}`` for every node that is a block (a requant
    fused into a folded node is none; its output tensor is the host block's)."""
    fused = fused_into(graph)
    out = {n.name: n.outputs[0] for n in graph.nodes if n.name not in fused}
    for rq, host in fused.items():
        out[host] = graph.node(rq).outputs[0]
    return out


def consumers(graph) -> dict:
    """``{tensor name: [nodes that read it]}`` (every tensor of the graph)."""
    cons = {t: [] for t in graph.tensors}
    for n in graph.nodes:
        for t in n.inputs:
            cons[t].append(n)
    return cons


def check_depths(option, depths, allowed, what) -> None:
    """Check an override ``{name: depth}`` of the lowering option ``option``: every name in
    ``allowed`` (else :class:`PassError` naming it, ``what`` saying what a name must be) and
    every depth 0 or >= 2 (the smallest FIFO)."""
    for k, v in depths.items():
        if k not in allowed:
            raise PassError(f"{option} names {k!r}, which is not {what} (have: "
                            f"{', '.join(sorted(allowed)) or 'none'})")
        if not isinstance(v, int) or isinstance(v, bool) or v < 0 or v == 1:
            raise PassError(f"{option}[{k!r}] must be 0 or a depth >= 2, not {v!r}")


def _hw_state(graph):
    return [json.dumps(hw_of(n), sort_keys=True) for n in graph.nodes]


class Pass:
    """Base of the passes: subclasses implement :meth:`annotate` (change the ``hw``
    annotations of the copy it is given); :meth:`apply` copies, annotates and compares."""

    def annotate(self, graph: Graph) -> None:
        raise NotImplementedError

    def apply(self, graph: Graph):
        """``(new graph, changed)``; ``graph`` itself is not modified."""
        g = copy_graph(graph)
        self.annotate(g)
        return g, _hw_state(g) != _hw_state(graph)

    def __repr__(self):
        return f"{type(self).__name__}()"


def run_passes(graph: Graph, passes, max_rounds=MAX_ROUNDS):
    """Apply ``passes`` in order, round after round, until a round changes nothing; returns
    ``(graph, changed)`` (``changed``: the result differs from ``graph``). Raises
    :class:`PassError` when no fixed point is reached in ``max_rounds`` rounds."""
    changed_any = False
    for _ in range(max_rounds):
        changed = False
        for p in passes:
            graph, c = p.apply(graph)
            changed |= c
        if not changed:
            return graph, changed_any
        changed_any = True
    raise PassError(f"passes {', '.join(map(repr, passes))} reach no fixed point in "
                    f"{max_rounds} rounds")
