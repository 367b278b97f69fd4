"""Lowering: IR node -> block factory registry; network top; deterministic Verilog + manifest."""
from .registry import LOWERINGS, register, lower_node
from .network import Network, NetworkSpec, build_network, generate, graph_sha256, plan_network

__all__ = ["LOWERINGS", "register", "lower_node", "Network", "NetworkSpec", "build_network",
           "plan_network", "generate", "graph_sha256"]
