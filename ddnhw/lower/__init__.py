"""Lowering: IR node -> block factory registry; one network builder for chains and DAGs;
typed options; deterministic Verilog + manifest."""
from .options import LowerOptions, LowerOptionError
from .registry import LOWERINGS, Lowering, register, lower_node
from .network import Network, build_network, generate, graph_sha256

__all__ = ["LowerOptions", "LowerOptionError", "LOWERINGS", "Lowering", "register",
           "lower_node", "Network", "build_network", "generate", "graph_sha256"]
