"""Build IR graphs from integer parameters: MLP chains, and seeded random ones for tests."""
from __future__ import annotations

import numpy as np

from .graph import Graph
from .ops import dense_acc_type
from .types import IntType


def mlp_graph(in_type: IntType, layers, meta=None) -> Graph:
    """A chain of ``dense`` (+ optional ``requant``) nodes.

    ``layers`` is a list of dicts with ``weight`` (out, in), ``bias`` (out,), and optionally
    ``requant``: dict(multiplier, shift, lo, hi, out_type). The accumulator type of each dense
    node is the narrowest that holds its worst case for the actual weights.
    """
    g = Graph(meta=dict(meta or {}))
    n_in = np.asarray(layers[0]["weight"]).shape[1]
    g.add_tensor("x", (n_in,), in_type)
    g.inputs = ["x"]
    cur, cur_type = "x", in_type
    for k, layer in enumerate(layers):
        w = np.asarray(layer["weight"], dtype=np.int64)
        b = np.asarray(layer["bias"], dtype=np.int64)
        name = layer.get("name", f"fc{k}")
        acc = dense_acc_type(w, b, cur_type)
        acc = IntType(acc.signed, acc.bits, cur_type.frac + int(layer.get("weight_frac", 0)))
        g.add_tensor(f"{name}_acc", (w.shape[0],), acc)
        g.add_node(name, "dense", [cur], [f"{name}_acc"], weight=w, bias=b)
        cur, cur_type = f"{name}_acc", acc
        rq = layer.get("requant")
        if rq is not None:
            c = w.shape[0]
            out_type = rq["out_type"]
            g.add_tensor(f"{name}_act", (c,), out_type)
            g.add_node(f"{name}_rq", "requant", [cur], [f"{name}_act"],
                       multiplier=np.broadcast_to(np.asarray(rq["multiplier"], np.int64), (c,)).copy(),
                       shift=np.broadcast_to(np.asarray(rq["shift"], np.int64), (c,)).copy(),
                       lo=int(rq["lo"]), hi=int(rq["hi"]), rounding="half_up")
            cur, cur_type = f"{name}_act", out_type
    g.outputs = [cur]
    return g.check()


def random_mlp(seed: int, sizes=(16, 8, 4), in_bits=4, w_bits=4, a_bits=4,
               zero_frac=0.3, in_signed=False) -> Graph:
    """A seeded random MLP with extreme and zero weights, ReLU requant between layers."""
    rng = np.random.default_rng(seed)
    in_type = IntType(in_signed, in_bits)
    layers = []
    wmax = (1 << (w_bits - 1)) - 1
    for k in range(len(sizes) - 1):
        w = rng.integers(-wmax, wmax + 1, size=(sizes[k + 1], sizes[k]))
        w[rng.random(w.shape) < zero_frac] = 0
        w[0, 0] = wmax
        if w.shape[1] > 1:
            w[0, 1] = -wmax
        b = rng.integers(-4 * wmax, 4 * wmax + 1, size=sizes[k + 1])
        layer = {"weight": w, "bias": b}
        if k < len(sizes) - 2:
            c = sizes[k + 1]
            layer["requant"] = {"multiplier": rng.integers(1, 4, size=c),
                                "shift": rng.integers(0, 5, size=c),
                                "lo": 0, "hi": (1 << a_bits) - 1,
                                "out_type": IntType(False, a_bits)}
        layers.append(layer)
    return mlp_graph(in_type, layers, meta={"name": f"random_mlp_{seed}"})
