"""Amaranth block library: every block is a ``wiring.Component`` with ``stream`` ports.

Blocks know nothing about graphs; each states ``latency`` and ``ii`` (cycles) as attributes.
"""
from .dense import Dense
from .fifo import StreamFIFO
from .folded import FoldedDense
from .requant import Requantizer
from .xnor import XnorDense

__all__ = ["Dense", "FoldedDense", "Requantizer", "StreamFIFO", "XnorDense"]
