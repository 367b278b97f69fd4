"""Lowering: IR node -> block factory registry; one network builder for chains and DAGs;
typed options; deterministic Verilog + manifest."""
from .options import LowerOptions, LowerOptionError
from .registry import LOWERINGS, Lowering, register, lower_spec
from .network import Network, NetworkSpec, build_network, generate, graph_sha256, plan_network

__all__ = ["LowerOptions", "LowerOptionError", "LOWERINGS", "Lowering", "register",
           "lower_spec", "Network", "NetworkSpec", "build_network",
           "plan_network", "generate", "graph_sha256"]
