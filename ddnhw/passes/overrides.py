"""Explicit hardware decisions given by the caller (the ``folding`` and ``gate_lanes`` lowering
options): written as ``hw`` annotations, replacing the graph's own."""
from __future__ import annotations

from ddnhw.lower.registry import foldable, recurrent

from .base import Pass, PassError, set_hw

__all__ = ["SetFolding", "SetGateLanes"]


class SetFolding(Pass):
    """``hw.fold`` of every foldable node from ``folding`` (``{layer: (pe, simd) or None}``):
    the named layers fold as given, every other one is unrolled (``fold`` null). A name that
    is not a foldable layer, or a value that is not ``(pe, simd)``, raises :class:`PassError`
    naming it."""

    def __init__(self, folding: dict):
        if not isinstance(folding, dict):
            raise PassError(f"folding must be a dict {{layer: (pe, simd)}}, not {folding!r}")
        self.folding = dict(folding)

    def annotate(self, graph):
        layers = {n.name for n in graph.nodes if foldable(n.op)}
        for k, v in self.folding.items():
            if k not in layers:
                raise PassError(f"folding names {k!r}, which is not a foldable layer "
                                f"(have: {', '.join(sorted(layers)) or 'none'})")
            if v is not None and (not isinstance(v, (tuple, list)) or len(v) != 2):
                raise PassError(f"folding[{k!r}] must be (pe, simd), not {v!r}")
        for n in graph.nodes:
            if n.name in layers:
                set_hw(n, "fold", self.folding.get(n.name), keep_none=True)

    def __repr__(self):
        return f"SetFolding({self.folding!r})"


class SetGateLanes(Pass):
    """``hw.gate_lanes`` of every recurrent node from ``gate_lanes`` (``{layer: lanes}``;
    unnamed layers: the block's default)."""

    def __init__(self, gate_lanes: dict):
        if not isinstance(gate_lanes, dict):
            raise PassError(f"gate_lanes must be a dict {{layer: lanes}}, not {gate_lanes!r}")
        self.gate_lanes = dict(gate_lanes)

    def annotate(self, graph):
        layers = {n.name for n in graph.nodes if recurrent(n.op)}
        for k in self.gate_lanes:
            if k not in layers:
                raise PassError(f"gate_lanes names {k!r}, which is not an rnn/gru layer "
                                f"(have: {', '.join(sorted(layers)) or 'none'})")
        for n in graph.nodes:
            if n.name in layers:
                set_hw(n, "gate_lanes", self.gate_lanes.get(n.name))

    def __repr__(self):
        return f"SetGateLanes({self.gate_lanes!r})"
