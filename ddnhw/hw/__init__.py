"""Amaranth block library: every block is a ``wiring.Component`` with ``stream`` ports.

Blocks know nothing about graphs. Every component ``X`` has a spec ``XSpec`` (the block
protocol, :mod:`ddnhw.hw.protocol`): its ``latency``, ``ii``, payload shapes, cycle model and
structural cost, known without building the component; ``XSpec(...).build()`` is ``X(...)``.
"""
from ._types import PipelineModel, int_shape
from .dense import Dense, DenseSpec
from .fifo import StreamFIFO, StreamFIFOSpec
from .folded import FoldedDense, FoldedDenseSpec
from .join import AlignedAdd, AlignedAddSpec, Fork, ForkSpec
from .protocol import BlockSpec, SpecComponent, cost_features, spec_of
from .recurrent import Recurrent, RecurrentSpec
from .requant import Requantizer, RequantizerSpec
from .window import (Chain, ChainSpec, Collector, CollectorSpec, SlidingWindow,
                     SlidingWindowSpec, WindowPool, WindowPoolSpec)
from .xnor import XnorDense, XnorDenseSpec

__all__ = ["AlignedAdd", "AlignedAddSpec", "BlockSpec", "Chain", "ChainSpec", "Collector",
           "CollectorSpec", "Dense", "DenseSpec", "FoldedDense", "FoldedDenseSpec", "Fork",
           "ForkSpec", "Recurrent", "RecurrentSpec", "Requantizer", "RequantizerSpec",
           "SlidingWindow", "SlidingWindowSpec", "SpecComponent", "StreamFIFO",
           "StreamFIFOSpec", "WindowPool", "WindowPoolSpec", "XnorDense", "XnorDenseSpec",
           "cost_features", "spec_of", "int_shape", "PipelineModel"]
