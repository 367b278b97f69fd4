"""Requant fusion: a folded MAC computes the requant node that is its only consumer."""
from __future__ import annotations

from ddnhw.lower.registry import LOWERINGS
from ddnhw.lower.stream import stream_flatten

from .base import Pass, consumers, hw_of, set_hw

__all__ = ["RequantFusion"]


class RequantFusion(Pass):
    """``hw.fuse_requant = <requant node>`` on every folded node (``hw.fold`` set) whose op's
    lowering fuses a requantizer (its PE lanes requantize each output as it is done) and whose
    output is read only by that requant node and is no graph output; removed everywhere else.
    ``enabled=False`` removes every ``fuse_requant``."""

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)

    def annotate(self, graph):
        cons = consumers(graph)
        streamed_dense = set(stream_flatten(graph).values())   # StreamDense: no fusion
        for n in graph.nodes:
            target = None
            out = n.outputs[0]
            if (self.enabled and _fuses(n.op) and hw_of(n).get("fold") is not None
                    and n.name not in streamed_dense
                    and len(cons[out]) == 1 and cons[out][0].op == "requant"
                    and out not in graph.outputs):
                target = cons[out][0].name
            set_hw(n, "fuse_requant", target)

    def __repr__(self):
        return f"RequantFusion(enabled={self.enabled})"


def _fuses(op) -> bool:
    entry = LOWERINGS.get(op)
    return entry is not None and entry.fuses_requant
