"""Skip-FIFO sizing: the depth of the FIFO on a residual connection's skip path."""
from __future__ import annotations

from ddnhw.lower.registry import BlockCache
from ddnhw.lower.residual import residual_branches, skip_fifo_depth

from .base import Pass, PassError, check_depths, fused_into, set_hw

__all__ = ["SkipFifoSizing"]


class SkipFifoSizing(Pass):
    """``hw.skip_fifo = depth`` on every residual ``add`` node (0: the skip is a wire): by
    default :func:`~ddnhw.lower.residual.skip_fifo_depth` of its main branch's blocks (the
    branch's lead plus the beats in flight, see :mod:`ddnhw.lower.residual`); ``overrides``
    (``{add node: depth}``, 0 or >= 2) replaces it. A graph whose forks and adds are not
    residual connections raises ``ValueError`` naming the node."""

    def __init__(self, overrides=None, blocks=None):
        if overrides is not None and not isinstance(overrides, dict):
            raise PassError(f"skip_fifos must be a dict {{add node: depth}}, not {overrides!r}")
        self.overrides = dict(overrides or {})
        self.blocks = blocks if blocks is not None else BlockCache()

    def annotate(self, graph):
        branches = residual_branches(graph)
        adds = {b["add"].name: b for b in branches}
        check_depths("skip_fifos", self.overrides, adds, "an add node")
        fused = fused_into(graph)
        for n in graph.nodes:
            if n.name in adds:
                depth = self.overrides.get(n.name)
                if depth is None:
                    depth = skip_fifo_depth([self.blocks(graph, m) for m in adds[n.name]["main"]
                                             if m.name not in fused])
                set_hw(n, "skip_fifo", depth, keep_none=True)
            else:
                set_hw(n, "skip_fifo", None)

    def __repr__(self):
        return f"SkipFifoSizing({self.overrides!r})"
