"""Explicit hardware decisions given by the caller (the ``folding`` and ``gate_lanes`` lowering
options): written as ``hw`` annotations, replacing the graph's own."""
from __future__ import annotations

from ddnhw.lower.registry import foldable, recurrent

from .base import Pass, PassError, set_hw

__all__ = ["SetFolding", "SetGateLanes"]


class _PerLayer(Pass):
    """``hw[key]`` of every layer the subclass's ``layer(op)`` accepts, from ``values``
    (``{layer: value}``; a layer not named gets ``default``). A name that is no such layer
    raises :class:`PassError` naming it."""

    option = key = what = form = ""
    keep_none = False

    def __init__(self, values: dict):
        if not isinstance(values, dict):
            raise PassError(f"{self.option} must be a dict {self.form}, not {values!r}")
        self.values = dict(values)

    @staticmethod
    def layer(op) -> bool:
        raise NotImplementedError

    def check(self, name, value):
        """Check one value (raise :class:`PassError` naming the layer)."""

    def annotate(self, graph):
        layers = {n.name for n in graph.nodes if self.layer(n.op)}
        for k, v in self.values.items():
            if k not in layers:
                raise PassError(f"{self.option} names {k!r}, which is not {self.what} "
                                f"(have: {', '.join(sorted(layers)) or 'none'})")
            self.check(k, v)
        for n in graph.nodes:
            if n.name in layers:
                set_hw(n, self.key, self.values.get(n.name), keep_none=self.keep_none)

    def __repr__(self):
        return f"{type(self).__name__}({self.values!r})"


class SetFolding(_PerLayer):
    """``hw.fold`` of every foldable node from ``folding`` (``{layer: (pe, simd) or None}``):
    the named layers fold as given, every other one is unrolled (``fold`` null). A name that
    is not a foldable layer, or a value that is not ``(pe, simd)``, raises :class:`PassError`
    naming it."""

    option, key, what, form = "folding", "fold", "a foldable layer", "{layer: (pe, simd)}"
    keep_none = True
    layer = staticmethod(foldable)

    def check(self, name, value):
        if value is not None and (not isinstance(value, (tuple, list)) or len(value) != 2):
            raise PassError(f"folding[{name!r}] must be (pe, simd), not {value!r}")


class SetGateLanes(_PerLayer):
    """``hw.gate_lanes`` of every recurrent node from ``gate_lanes`` (``{layer: lanes}``;
    unnamed layers: the block's default)."""

    option, key, what, form = "gate_lanes", "gate_lanes", "an rnn/gru layer", "{layer: lanes}"
    layer = staticmethod(recurrent)
