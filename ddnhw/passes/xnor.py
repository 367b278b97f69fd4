"""XNOR inference: an unrolled layer with binary weights on a bipolar input becomes XNOR +
popcount."""
from __future__ import annotations

from ddnhw.lower.registry import LOWERINGS

from .base import Pass, hw_of, set_hw

__all__ = ["XnorInference"]


class XnorInference(Pass):
    """``hw.xnor = true`` on every unfolded node whose op's lowering has an XNOR form that its
    weights and input allow (for dense: rows in ``{-c, 0, +c}`` on an input of -1/+1 values,
    :func:`~ddnhw.lower.registry.bipolar_tensor`); removed everywhere else, and everywhere
    with ``enabled=False`` (the ``binary_style="dense"`` lowering option)."""

    def __init__(self, enabled=True):
        self.enabled = bool(enabled)

    def annotate(self, graph):
        for n in graph.nodes:
            entry = LOWERINGS.get(n.op)
            on = (self.enabled and entry is not None and entry.xnor is not None
                  and hw_of(n).get("fold") is None and entry.xnor(graph, n))
            set_hw(n, "xnor", True if on else None)

    def __repr__(self):
        return f"XnorInference(enabled={self.enabled})"
