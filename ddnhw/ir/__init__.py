"""Typed integer IR: every tensor has an exact integer type; nodes carry integer semantics.

The ops are defined in :mod:`ddnhw.ir.ops` (one module per op); seeded random graphs for tests
live in :mod:`ddnhw.ir.testing`. Must not import torch or amaranth.
"""
from .types import IntType
from .errors import IRError
from .graph import Graph, Node, Tensor, load_graph, save_graph
from .builder import chain_graph, mlp_graph

__all__ = ["IntType", "Graph", "Node", "Tensor", "load_graph", "save_graph", "IRError",
           "chain_graph", "mlp_graph"]
