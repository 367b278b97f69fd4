"""The executor: runs a graph's nodes in order, each through its op's golden kernel
(:meth:`ddnhw.ir.ops.OpDef.run`, defined with the op in :mod:`ddnhw.ir.ops`)."""
from __future__ import annotations

import numpy as np

from ddnhw import DdnhwError
from ddnhw.ir import Graph
from ddnhw.ir.ops import op_def

# int64 is exact as long as every intermediate fits; Graph.check bounds every tensor (and each
# op's check every intermediate of its kernel) below 2**63.


def check_input(graph: Graph, x) -> np.ndarray:
    """Validate a batch of integer inputs against the graph's input tensor (shape, dtype, range)."""
    t = graph.input
    x = np.asarray(x)
    if x.dtype.kind not in "iu":
        raise DdnhwError(f"input for {t.name!r} must be integers, got dtype {x.dtype}")
    if x.ndim != 1 + len(t.shape) or tuple(x.shape[1:]) != tuple(t.shape):
        raise DdnhwError(f"input for {t.name!r} must have shape (N, {', '.join(map(str, t.shape))})"
                         f", got {x.shape}")
    if x.size and (x.min() < t.dtype.min or x.max() > t.dtype.max):
        raise DdnhwError(f"input for {t.name!r} out of range for {t.dtype}: "
                         f"[{x.min()}, {x.max()}] not in [{t.dtype.min}, {t.dtype.max}]")
    return x.astype(np.int64)


def run_all(graph: Graph, x) -> dict:
    """Run the graph on a batch; returns every tensor's value by name."""
    env = {graph.inputs[0]: check_input(graph, x)}
    for node in graph.nodes:
        env[node.outputs[0]] = op_def(node).run(node, *(env[t] for t in node.inputs))
    return env


def run(graph: Graph, x) -> np.ndarray:
    """The graph's output for a batch of inputs ``(N, *input shape)``, as int64."""
    return run_all(graph, x)[graph.outputs[0]]


def predict(graph: Graph, x) -> np.ndarray:
    """Class index per input: argmax of the output, first index on ties."""
    return np.argmax(run(graph, x), axis=-1)


def quantize_input(graph: Graph, x_real) -> np.ndarray:
    """Real-valued inputs to the graph's integer input codes: ``clip(round(x * 2**frac))``.

    Rounding is half up, as everywhere (``ddnhw.fixedpoint``).
    """
    t = graph.input
    x = np.asarray(x_real, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DdnhwError(f"input for {t.name!r} contains NaN or Inf")
    q = np.clip(np.floor(x * 2.0 ** t.dtype.frac + 0.5), t.dtype.min, t.dtype.max)
    return q.astype(np.int64)
