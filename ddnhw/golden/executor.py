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


def classify(graph: Graph, x) -> np.ndarray:
    """Class index per integer input: argmax of the output, first index on ties."""
    return np.argmax(run(graph, x), axis=-1)


def quantize_input(graph: Graph, x_real) -> np.ndarray:
    """Real-valued inputs to the graph's integer input codes.

    A graph imported from QONNX (``meta["input_quant"]``, see :func:`input_codes`) quantizes
    exactly as its first ``Quant`` node; any other graph by ``clip(round(x * 2**frac))``,
    rounding half up, as everywhere (``ddnhw.fixedpoint``).
    """
    if "input_quant" in graph.meta:
        return input_codes(graph, x_real)
    t = graph.input
    x = np.asarray(x_real, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DdnhwError(f"input for {t.name!r} contains NaN or Inf")
    q = np.clip(np.floor(x * 2.0 ** t.dtype.frac + 0.5), t.dtype.min, t.dtype.max)
    return q.astype(np.int64)


#: QONNX rounding modes (``Quant``'s ``rounding_mode``) as NumPy functions, exactly as qonnx
#: resolves them
QONNX_ROUNDING = {
    "ROUND": np.round, "HALF_EVEN": np.round, "CEIL": np.ceil, "FLOOR": np.floor,
    "UP": lambda v: np.sign(v) * np.ceil(np.abs(v)), "DOWN": np.fix,
    "HALF_UP": lambda v: np.sign(v) * np.floor(np.abs(v) + 0.5),
    "HALF_DOWN": lambda v: np.sign(v) * np.ceil(np.abs(v) - 0.5)}


def input_codes(graph: Graph, x_real) -> np.ndarray:
    """Float inputs (the shape of the original model's input, batch first) to the integer
    codes of the graph's input, as the model's input quantizer computes them.

    ``meta["input_quant"]``: ``scale`` (float32 value), ``bits``, ``signed``, ``narrow``,
    ``rounding`` (a QONNX rounding mode, or ``"BIPOLAR"``) and ``layout`` (``"nchw"``: the
    model takes NCHW images, the IR NHWC). As qonnx: ``x / scale`` in float32, clamped to the
    integer range, then rounded (bipolar: ``+1`` where ``x >= 0``, else ``-1``)."""
    q = graph.meta["input_quant"]
    t = graph.input
    x = np.asarray(x_real)
    if x.dtype.kind not in "f":
        raise DdnhwError(f"input for {t.name!r}: expected real-valued (float) inputs, got "
                         f"dtype {x.dtype}; integer codes go to golden.run")
    x = x.astype(np.float32)
    nchw = q.get("layout") == "nchw"
    want = (t.shape[2],) + tuple(t.shape[:2]) if nchw else tuple(t.shape)
    if x.ndim != 1 + len(want) or tuple(x.shape[1:]) != want:
        raise DdnhwError(f"input for {t.name!r} must have shape (N, {', '.join(map(str, want))})"
                         f", got {x.shape}")
    if not np.all(np.isfinite(x)):
        raise DdnhwError(f"input for {t.name!r} contains NaN or Inf")
    if q["rounding"] == "BIPOLAR":
        y = np.where(x >= 0, 1, -1)
    else:
        y = x / np.float32(q["scale"])
        y = np.clip(y, q["lo"], q["hi"])
        y = QONNX_ROUNDING[q["rounding"]](y)
    y = y.astype(np.int64)
    return y.transpose(0, 2, 3, 1) if nchw else y


def output_real(graph: Graph, codes) -> np.ndarray:
    """The graph's integer outputs as real values, float32: ``code * scale`` per channel
    (``meta["output_scale"]``: a list, one per channel or one for all, of an imported model;
    else ``2**-frac``), rounded once to float32; in the original model's layout (an image
    output back to NCHW, a flattened output back to its channel-major order)."""
    codes = np.asarray(codes, dtype=np.int64)
    scale = np.asarray(graph.meta.get("output_scale", [2.0 ** -graph.output.dtype.frac]),
                       dtype=np.float64)
    y = (codes * scale).astype(np.float32)
    perm = graph.meta.get("output_perm")
    if perm is not None:
        y = y[:, np.asarray(perm, dtype=np.int64)]
    if graph.meta.get("output_layout") == "nchw":
        y = y.transpose(0, 3, 1, 2)
    elif graph.meta.get("output_layout") == "nc11":       # a global pool's (N, C, 1, 1)
        y = y.reshape(y.shape + (1, 1))
    return y


def predict(graph: Graph, x_real) -> np.ndarray:
    """Float in, float out, like the model the graph came from: the real inputs quantized by
    the model's input quantizer (:func:`quantize_input`), the exact integer network
    (:func:`run`), the integer outputs times their scale (:func:`output_real`). Integer
    inputs are refused (integer codes go to :func:`run`; class indices: :func:`classify`)."""
    x = np.asarray(x_real)
    if x.dtype.kind != "f":
        raise DdnhwError(f"golden.predict takes real-valued (float) inputs, got dtype "
                         f"{x.dtype}; for integer codes use golden.run (outputs) or "
                         f"golden.classify (class indices)")
    return output_real(graph, run(graph, quantize_input(graph, x)))
