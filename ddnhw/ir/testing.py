"""Seeded random IR graphs for tests and benchmarks (extreme and zero weights, random requant
scales): every call with the same arguments returns the same graph, already checked.

Not part of the IR core: nothing in ``ddnhw`` outside tests and benchmarks builds these.
"""
from __future__ import annotations

import numpy as np

from .builder import _append_layers, chain_graph, mlp_graph
from .graph import Graph
from .ops import OPS
from .ops.recurrent import sigmoid_table, tanh_table
from .types import IntType

__all__ = ["random_mlp", "random_cnn", "random_residual_cnn", "random_recurrent",
           "random_recurrent_classifier", "random_lstm", "random_lstm_classifier", "random_lut"]


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


def random_cnn(seed: int, in_shape=(6, 6, 2), channels=3, kernel=3, stride=1, padding=1,
               depthwise=False, pool="max", pool_kernel=2, n_out=4, in_bits=4, w_bits=4,
               a_bits=4, zero_frac=0.3) -> Graph:
    """A seeded random ``conv2d → requant (ReLU) → pool → flatten → dense`` chain.

    ``depthwise``: the conv has ``groups = C`` (and ``channels`` is ignored: ``O = C``);
    ``pool``: ``"max"``, ``"avg"`` or None.
    """
    rng = np.random.default_rng(seed)
    wmax = (1 << (w_bits - 1)) - 1
    c = in_shape[2]
    o, cg, groups = (c, 1, c) if depthwise else (channels, c, 1)
    w = rng.integers(-wmax, wmax + 1, size=(o, kernel, kernel, cg))
    w[rng.random(w.shape) < zero_frac] = 0
    w.flat[0] = wmax
    layers = [{"op": "conv2d", "name": "conv0", "weight": w, "groups": groups,
               "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=o),
               "stride": stride, "padding": padding,
               "requant": {"multiplier": rng.integers(1, 4, size=o),
                           "shift": rng.integers(1, 5, size=o), "lo": 0,
                           "hi": (1 << a_bits) - 1, "out_type": IntType(False, a_bits)}}]
    if pool:
        layers.append({"op": f"{pool}pool2d", "name": "pool0", "kernel": pool_kernel})
    layers.append({"op": "flatten", "name": "flat"})
    g = chain_graph(IntType(False, in_bits), in_shape, layers)   # for the flattened size
    n_in = g.output.shape[0]
    wd = rng.integers(-wmax, wmax + 1, size=(n_out, n_in))
    wd[rng.random(wd.shape) < zero_frac] = 0
    layers.append({"op": "dense", "name": "fc", "weight": wd,
                   "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=n_out)})
    return chain_graph(IntType(False, in_bits), in_shape, layers,
                       meta={"name": f"random_cnn_{seed}"})


def random_residual_cnn(seed: int, in_shape=(5, 5, 2), kernel=3, convs=2, stem=0, n_out=3,
                        in_bits=4, w_bits=4, a_bits=4, zero_frac=0.3) -> Graph:
    """A seeded random residual CNN: [``stem`` channels: conv2d (same padding) -> ReLU] ->
    residual block (``convs`` same-padded conv2d, ReLU requant between them; the block input
    added to the last conv's accumulator, binary points aligned; ReLU requant) -> flatten ->
    dense. Without a stem the graph input itself forks."""
    rng = np.random.default_rng(seed)
    wmax = (1 << (w_bits - 1)) - 1
    act = IntType(False, a_bits, int(rng.integers(0, 4)))

    def conv(name, cin, cout, rq=True):
        w = rng.integers(-wmax, wmax + 1, size=(cout, kernel, kernel, cin))
        w[rng.random(w.shape) < zero_frac] = 0
        w.flat[0] = wmax
        layer = {"op": "conv2d", "name": name, "weight": w, "padding": kernel // 2,
                 "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=cout),
                 "weight_frac": int(rng.integers(0, 3))}
        if rq:
            layer["requant"] = {"multiplier": rng.integers(1, 4, size=cout),
                                "shift": rng.integers(1, 6, size=cout), "lo": 0,
                                "hi": (1 << a_bits) - 1, "out_type": act}
        return layer

    c = in_shape[2]
    layers = []
    if stem:
        layers.append(conv("stem", c, stem))
        c = stem
    body = [conv(f"res_conv{k}", c, c, rq=k < convs - 1) for k in range(convs)]
    layers.append({"op": "residual", "name": "res", "body": body,
                   "requant": {"multiplier": rng.integers(1, 4, size=c),
                               "shift": rng.integers(2, 8, size=c), "lo": 0,
                               "hi": (1 << a_bits) - 1, "out_type": act}})
    layers.append({"op": "flatten", "name": "flat"})
    n_in = int(np.prod(in_shape[:2])) * c
    wd = rng.integers(-wmax, wmax + 1, size=(n_out, n_in))
    wd[rng.random(wd.shape) < zero_frac] = 0
    layers.append({"op": "dense", "name": "fc", "weight": wd,
                   "bias": rng.integers(-4 * wmax, 4 * wmax + 1, size=n_out)})
    return chain_graph(IntType(False, in_bits, int(rng.integers(0, 5))), in_shape, layers,
                       meta={"name": f"random_residual_cnn_{seed}"})


def _recurrent_graph(seed, op, steps, n_in, hidden, in_bits, w_bits, state_bits, lut_bits,
                     gate_frac, return_sequences, in_signed, cell_bits=None):
    """A single recurrent node ``op`` over a random ``(steps, n_in)`` input; the op's metadata
    (:class:`~ddnhw.ir.ops.recurrent.RecurrentOp`) sizes the weight, requantizers and tables."""
    d = OPS[op]
    rng = np.random.default_rng(seed)
    wmax = (1 << (w_bits - 1)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(d.gates * hidden, n_in + hidden))
    w[rng.random(w.shape) < 0.2] = 0
    w[rng.random(w.shape) < 0.1] = wmax
    w[~d.weight_mask(n_in, hidden)] = 0
    b = rng.integers(-4 * wmax, 4 * wmax + 1, size=d.gates * hidden)
    st = IntType(True, state_bits, state_bits - 2)
    lut_lo, lut_hi = -(1 << (lut_bits - 1)), (1 << (lut_bits - 1)) - 1
    idx_frac = lut_bits - 3
    n_rq = d.requants * hidden
    mult = rng.integers(1, 8, size=n_rq)
    shift = rng.integers(2, 9, size=n_rq)
    xt = IntType(in_signed, in_bits, in_bits - 1 if in_signed else in_bits)
    gr = Graph(meta={"kind": f"random-{op}", "seed": int(seed)})
    gr.add_tensor("x", (steps, n_in), xt)
    gr.add_tensor("h", (steps, hidden) if return_sequences else (hidden,), st)
    attrs = dict(weight=w.astype(np.int64), bias=b.astype(np.int64),
                 multiplier=mult.astype(np.int64), shift=shift.astype(np.int64),
                 lut_lo=lut_lo, lut_hi=lut_hi, return_sequences=int(return_sequences),
                 tanh_table=tanh_table(lut_lo, lut_hi, idx_frac, st))
    if d.gated:
        attrs.update(gate_frac=int(gate_frac),
                     sigmoid_table=sigmoid_table(lut_lo, lut_hi, idx_frac, gate_frac))
    if cell_bits is not None:
        attrs.update(cell_bits=int(cell_bits))
    gr.add_node(op, op, ["x"], ["h"], **attrs)
    gr.inputs, gr.outputs = ["x"], ["h"]
    return gr, shift


def random_recurrent(seed, op="gru", steps=4, n_in=3, hidden=4, in_bits=4, w_bits=4,
                     state_bits=8, lut_bits=6, gate_frac=6, return_sequences=0, in_signed=False):
    """A seeded random single-layer ``rnn``/``gru`` graph ``x (T, I) -> h``."""
    gr, shift = _recurrent_graph(seed, op, steps, n_in, hidden, in_bits, w_bits, state_bits,
                                 lut_bits, gate_frac, return_sequences, in_signed)
    if OPS[op].gated:
        shift[2 * hidden:] += gate_frac     # gru: n's pre-activation carries gate_frac more
        gr.nodes[0].attrs["shift"] = shift.astype(np.int64)
    return gr.check()


def random_lstm(seed, steps=4, n_in=3, hidden=4, in_bits=4, w_bits=4, state_bits=8, lut_bits=6,
                gate_frac=6, cell_bits=10, return_sequences=0, in_signed=False):
    """A seeded random single-layer ``lstm`` graph ``x (T, I) -> h`` (cell state of
    ``cell_bits`` bits, the state type's binary point)."""
    gr, _ = _recurrent_graph(seed, "lstm", steps, n_in, hidden, in_bits, w_bits, state_bits,
                             lut_bits, gate_frac, return_sequences, in_signed, cell_bits)
    return gr.check()


def _classifier(g, seed, n_out, a_bits, w_bits):
    """Append a random ``dense`` (``w_bits`` weights) and a ``requant`` to signed ``a_bits``
    logits after the recurrent graph ``g`` (its output must be the last state ``(H,)``)."""
    if g.output.shape != (g.output.shape[-1],):
        raise ValueError("a recurrent classifier needs return_sequences=0")
    rng = np.random.default_rng(seed + 1)
    hidden = g.output.shape[-1]
    wmax = (1 << (w_bits - 1)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(n_out, hidden))
    b = rng.integers(-8 * wmax, 8 * wmax + 1, size=n_out)
    lo, hi = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
    rq = {"multiplier": rng.integers(1, 8, size=n_out), "shift": rng.integers(1, 6, size=n_out),
          "lo": lo, "hi": hi, "out_type": IntType(True, a_bits)}
    cur, _, _ = _append_layers(g, g.outputs[0], g.output.dtype, (hidden,),
                               [{"name": "classifier", "weight": w, "bias": b, "requant": rq}])
    g.outputs = [cur]
    g.meta["kind"] += "-classifier"
    return g.check()


def random_recurrent_classifier(seed, op="gru", n_out=4, a_bits=8, **kw):
    """:func:`random_recurrent` (keyword arguments ``kw``; ``return_sequences`` must stay 0)
    followed by a random ``dense`` and a ``requant`` to signed ``a_bits`` logits:
    ``x (T, I) -> rnn/gru -> dense -> requant``, for tests and benchmarks."""
    return _classifier(random_recurrent(seed, op=op, **kw), seed, n_out, a_bits,
                       kw.get("w_bits", 4))


def random_lstm_classifier(seed, n_out=4, a_bits=8, **kw):
    """:func:`random_lstm` (keyword arguments ``kw``; ``return_sequences`` must stay 0)
    followed by a random ``dense`` and a ``requant``: ``x (T, I) -> lstm -> dense ->
    requant``."""
    return _classifier(random_lstm(seed, **kw), seed, n_out, a_bits, kw.get("w_bits", 4))


def random_lut(seed, features=5, levels=3, layers=((12, 4), (6, 3)), classes=3, in_bits=4,
               in_signed=False) -> Graph:
    """A seeded random logic-domain network ``thermometer → lut ... → popcount``: thresholds
    anywhere in (and just outside) the input range, random connections and truth tables
    (constant tables included); the last layer's bits in random class groups (some unread)."""
    from .builder import lut_graph
    rng = np.random.default_rng(seed)
    t = IntType(in_signed, in_bits)
    th = np.sort(rng.integers(t.min, t.max + 2, size=(features, levels)), axis=1)
    m, specs = features * levels, []
    for n, k in layers:
        conn = np.stack([rng.choice(m, size=k, replace=False) for _ in range(n)])
        table = rng.integers(0, 2, size=(n, 1 << k))
        table[0] = 1
        specs.append((conn, table))
        m = n
    groups = rng.integers(-1, classes, size=m)
    groups[:classes] = np.arange(classes)
    return lut_graph(t, th, specs, groups, classes, meta={"name": f"random_lut_{seed}"})
