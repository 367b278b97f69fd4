from __future__ import annotations

import numpy as np

from ddnhw import DdnhwError
from ddnhw.ir import Graph
from ddnhw.ir.ops import pool_kernel
from .fixedpoint import requantize, round_shift
from .recurrent import recurrent

# int64 is exact as long as every intermediate fits; Graph.check bounds every tensor, and
# a dense accumulation is exact when its bound type has < 63 bits.


def _dense(node, x):
    return x @ node.attrs["weight"].T + node.attrs["bias"]


def _requant(node, x):
    a = node.attrs
    return requantize(x, a["multiplier"], a["shift"], int(a["lo"]), int(a["hi"]))


def _windows(x, kh, kw, stride, padding):
    """``(N, OH, OW, KH, KW, C)`` views of the zero-padded NHWC batch ``x``."""
    if padding:
        x = np.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    v = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(1, 2))  # N,OH',OW',C,KH,KW
    v = v[:, ::stride, ::stride]
    return v.transpose(0, 1, 2, 4, 5, 3)


def _conv2d(node, x):
    a = node.attrs
    w = a["weight"]                      # (O, KH, KW, Cg)
    o, kh, kw, cg = w.shape
    groups = int(a.get("groups", 1))
    win = _windows(x, kh, kw, int(a["stride"]), int(a["padding"]))
    og = o // groups
    outs = []
    for g in range(groups):
        xg = win[..., g * cg:(g + 1) * cg].reshape(win.shape[:3] + (-1,))
        wg = w[g * og:(g + 1) * og].reshape(og, -1)
        outs.append(xg @ wg.T)
    return np.concatenate(outs, axis=-1) + a["bias"]


def _maxpool2d(node, x):
    kh, kw = pool_kernel(node)
    return _windows(x, kh, kw, int(node.attrs["stride"]), 0).max(axis=(3, 4))


def _avgpool2d(node, x):
    kh, kw = pool_kernel(node)
    total = _windows(x, kh, kw, int(node.attrs["stride"]), 0).sum(axis=(3, 4))
    return round_shift(total, (kh * kw).bit_length() - 1)


def _flatten(node, x):
    return x.reshape(len(x), -1)


def _add(node, x0, x1):
    return (np.left_shift(x0, int(node.attrs["shift0"]))
            + np.left_shift(x1, int(node.attrs["shift1"])))


_EXEC = {"dense": _dense, "requant": _requant, "conv2d": _conv2d, "maxpool2d": _maxpool2d,
         "avgpool2d": _avgpool2d, "flatten": _flatten,
         "rnn": recurrent, "gru": recurrent, "add": _add}


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
        env[node.outputs[0]] = _EXEC[node.op](node, *(env[t] for t in node.inputs))
    return env


def run(graph: Graph, x) -> np.ndarray:
    """The graph's output for a batch of inputs ``(N, *input shape)``, as int64."""
    return run_all(graph, x)[graph.outputs[0]]


def predict(graph: Graph, x) -> np.ndarray:
    """Class index per input: argmax of the output, first index on ties."""
    return np.argmax(run(graph, x), axis=-1)


def quantize_input(graph: Graph, x_real) -> np.ndarray:
    """Real-valued inputs to the graph's integer input codes: ``clip(round(x * 2**frac))``.

    Rounding is half up, as everywhere (``ddnhw.golden.fixedpoint``).
    """
    t = graph.input
    x = np.asarray(x_real, dtype=np.float64)
    if not np.all(np.isfinite(x)):
        raise DdnhwError(f"input for {t.name!r} contains NaN or Inf")
    return np.clip(np.floor(x * 2.0 ** t.dtype.frac + 0.5), t.dtype.min, t.dtype.max).astype(np.int64)
