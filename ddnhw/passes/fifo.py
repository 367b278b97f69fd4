"""FIFO insertion and sizing: a rate FIFO after a block whose one consumer is slower."""
from __future__ import annotations

from ddnhw.lower.registry import BlockCache, lowering

from .base import Pass, PassError, block_outputs, check_depths, consumers, set_hw

__all__ = ["FifoSizing", "fifo_depth", "FIFO_MAX_DEPTH"]

# deepest FIFO the schedule asks for: beyond this a burst is absorbed by the producer's stall
# (the throughput is the bottleneck II at any depth); each beat costs a whole vector of bits
FIFO_MAX_DEPTH = 4


def fifo_depth(ii_producer, ii_consumer, max_depth=FIFO_MAX_DEPTH) -> int:
    """Depth of the FIFO between two blocks (0: none) from their initiation intervals.

    A linear chain of blocks that each hold one output vector and stall together runs at the
    largest II with no FIFO at all (no layer waits on anything but the bottleneck), and cannot
    deadlock. A FIFO helps only where the producer is faster (``ii_producer < ii_consumer``):
    it holds the ``ceil(ii_consumer / ii_producer)`` vectors the producer can finish during one
    consumer interval, so a burst at the network's input proceeds at the producer's rate
    instead of the consumer's (capped at ``max_depth``, at least the 2 beats, or 3 for a
    producer of II 1, at which the FIFO itself keeps the producer's rate). A slower producer
    gets none: the consumer would wait for it whatever the depth."""
    if ii_producer >= ii_consumer:
        return 0
    need = -(-ii_consumer // ii_producer)
    return max(3 if ii_producer == 1 else 2, min(max_depth, need))


def fifo_pairs(graph) -> dict:
    """``{producer node: consumer node}`` for every block whose output feeds exactly one block
    and is no graph output (where a rate FIFO can go)."""
    cons = consumers(graph)
    return {name: cons[t][0] for name, t in block_outputs(graph).items()
            if len(cons[t]) == 1 and t not in graph.outputs}


class FifoSizing(Pass):
    """``hw.fifo_after = depth`` (absent: none) on the producer of every block pair of
    :func:`fifo_pairs`. ``fifos``: ``"auto"`` (depth :func:`fifo_depth` of the two blocks'
    IIs, none after a block whose lowering has no ``rate_fifo``, e.g. a flatten: its beat is a
    whole feature map, held while the consumer is busy), ``"none"``, or ``{producer: depth}``
    (0 or >= 2; every other pair none). ``blocks``: a :class:`~ddnhw.lower.registry.BlockCache`
    (default: a new one with default options) that gives the blocks' IIs."""

    def __init__(self, fifos="auto", blocks=None):
        if not isinstance(fifos, dict) and fifos not in ("auto", "none"):
            raise PassError(f"fifos must be 'auto', 'none' or {{layer: depth}}, not {fifos!r}")
        self.fifos = fifos
        self.blocks = blocks if blocks is not None else BlockCache()

    def annotate(self, graph):
        pairs = fifo_pairs(graph)
        if isinstance(self.fifos, dict):
            check_depths("fifos", self.fifos, pairs, "a block followed by another")
        for n in graph.nodes:
            depth = 0
            if n.name in pairs:
                if isinstance(self.fifos, dict):
                    depth = self.fifos.get(n.name, 0)
                elif self.fifos == "auto" and lowering(n.op).rate_fifo:
                    depth = fifo_depth(self.blocks(graph, n).ii,
                                       self.blocks(graph, pairs[n.name]).ii)
            set_hw(n, "fifo_after", depth or None)

    def __repr__(self):
        return f"FifoSizing({self.fifos!r})"
