"""Typed integer IR: every tensor has an exact integer type; nodes carry integer semantics.

Must not import torch or amaranth.
"""
from .types import IntType
from .graph import Graph, Node, Tensor, load_graph, save_graph, IRError

__all__ = ["IntType", "Graph", "Node", "Tensor", "load_graph", "save_graph", "IRError"]
from .builder import (chain_graph, mlp_graph, random_cnn, random_mlp,  # noqa: E402
                      random_residual_cnn)

__all__ += ["chain_graph", "mlp_graph", "random_cnn", "random_mlp", "random_residual_cnn"]
