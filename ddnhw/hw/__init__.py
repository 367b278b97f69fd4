"""Amaranth block library: every block is a ``wiring.Component`` with ``stream`` ports.

Blocks know nothing about graphs. Every component ``X`` has a spec ``XSpec`` (the block
protocol, :mod:`ddnhw.hw.protocol`): its ``latency``, ``ii``, payload shapes, cycle model and
structural cost, known without building the component; ``XSpec(...).build()`` is ``X(...)``.
"""
import importlib

# the blocks are imported on first use (PEP 562): importing ddnhw.hw.lanes (the lane packing
# a simulator process needs) must not import amaranth and every block
_EXPORTS = {
    "AlignedAdd": "join", "AlignedAddSpec": "join", "BlockSpec": "protocol", "Chain": "window",
    "ChainSpec": "window", "Collector": "window", "CollectorSpec": "window", "Dense": "dense",
    "DenseSpec": "dense", "FoldedDense": "folded", "FoldedDenseSpec": "folded", "Fork": "join",
    "ForkSpec": "join", "PipelineModel": "_types", "Recurrent": "recurrent",
    "RecurrentSpec": "recurrent", "Requantizer": "requant", "RequantizerSpec": "requant",
    "SlidingWindow": "window", "SlidingWindowSpec": "window", "SpecComponent": "protocol",
    "StreamFIFO": "fifo", "StreamFIFOSpec": "fifo", "WindowPool": "window",
    "WindowPoolSpec": "window", "XnorDense": "xnor", "XnorDenseSpec": "xnor",
    "RowPool": "stream", "RowPoolSpec": "stream", "StreamDense": "stream",
    "StreamDenseSpec": "stream", "SpramMemory": "spram",
    "cost_features": "protocol", "int_shape": "_types", "spec_of": "protocol",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
