"""Lowering: IR node -> block factory registry; network top; deterministic Verilog + manifest."""
from .registry import LOWERINGS, register, lower_node
from .network import Network, build_network, generate, graph_sha256

__all__ = ["LOWERINGS", "register", "lower_node", "Network", "build_network", "generate",
           "graph_sha256"]
