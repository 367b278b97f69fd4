"""The passes that turn lowering options into ``hw`` annotations, in the order the network
builder runs them."""
from __future__ import annotations

from ddnhw.lower.options import LowerOptions
from ddnhw.lower.registry import BlockCache

from .fifo import FifoSizing
from .overrides import SetFolding, SetGateLanes
from .requant_fusion import RequantFusion
from .skip_fifo import SkipFifoSizing
from .xnor import XnorInference

__all__ = ["lowering_passes"]


def lowering_passes(options=None, blocks=None) -> list:
    """The passes :class:`~ddnhw.lower.network.Network` runs (to a fixed point, with
    :func:`~ddnhw.passes.base.run_passes`) on a graph before it builds blocks:
    the explicit ``folding``/``gate_lanes`` of ``options`` when given
    (:class:`~ddnhw.passes.overrides.SetFolding`, ``SetGateLanes``), then requant fusion,
    XNOR inference, rate-FIFO and skip-FIFO sizing. Every one is a deterministic function of
    the graph's ``hw.fold``/``hw.gate_lanes`` and ``options``: a model annotated with these
    passes and saved builds the same circuit as its unannotated self with the same options.
    ``blocks``: the :class:`~ddnhw.lower.registry.BlockCache` the FIFO passes measure IIs with
    (default: a new one for ``options``)."""
    opts = options if options is not None else LowerOptions()
    blocks = blocks if blocks is not None else BlockCache(opts)
    out = []
    if opts.folding is not None:
        out.append(SetFolding(opts.folding))
    if opts.gate_lanes is not None:
        out.append(SetGateLanes(opts.gate_lanes))
    return out + [RequantFusion(opts.fuse_requant), XnorInference(opts.binary_style == "xnor"),
                  FifoSizing(opts.fifos, blocks), SkipFifoSizing(opts.skip_fifos, blocks)]
