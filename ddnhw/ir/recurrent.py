"""Recurrent ops ``rnn`` (Elman) and ``gru``: attribute checks and exact range inference.

A sequence tensor has shape ``(T, I)``: ``T`` time steps (a fixed parameter of the graph) of
``I`` features; it streams as ``T`` beats of ``I`` lanes. The hidden state ``h`` (``H``
values) has the type of the op's output tensor and starts at 0 for every sequence.

Every step is one integer dense over the concatenation ``u_t = [x_t, h_{t-1}]``::

    acc_t = bias + weight @ u_t                      # weight (G*H, I+H), bias (G*H,)

then lookup-table activations. A table is indexed by a requantized pre-activation::

    idx(v, rows) = clip(round_shift(v * multiplier[rows], shift[rows]), lut_lo, lut_hi)
    act(table, v, rows) = table[idx(v, rows) - lut_lo]

(``multiplier``/``shift`` as in ``requant``; tables have ``lut_hi - lut_lo + 1`` entries, and
are computed once at export, so the golden model, integer-mode PyTorch and the hardware all
read the same integers).

``rnn`` (G = 1)::

    h_t = act(tanh_table, acc_t, 0:H)

``gru`` (G = 4; row blocks ``r``, ``z``, ``n_x``, ``n_h`` of ``H`` rows each; ``n_x`` rows
must be zero on the ``h`` columns and ``n_h`` rows zero on the ``x`` columns; ``multiplier``
and ``shift`` have 3*H entries for ``r``, ``z``, ``n``)::

    r   = act(sigmoid_table, acc_r, 0:H)             # gate values in [0, 2**gate_frac]
    z   = act(sigmoid_table, acc_z, H:2H)
    n   = act(tanh_table, (acc_nx << gate_frac) + r * acc_nh, 2H:3H)
    h_t = n + round_shift(z * (h_{t-1} - n), gate_frac)

(PyTorch's GRU: ``h' = (1 - z) * n + z * h``). Attributes: ``weight``, ``bias``,
``multiplier``, ``shift``, ``lut_lo``, ``lut_hi``, ``tanh_table``, ``sigmoid_table`` and
``gate_frac`` (gru only), ``return_sequences`` (0: the output is ``h_T``, shape ``(H,)``;
1: every ``h_t``, shape ``(T, H)``).
"""
from __future__ import annotations

import numpy as np

from .graph import IRError, Node

RECURRENT_OPS = ("rnn", "gru")
MAX_LUT = 4096       # table entries
_INT64_BITS = 62     # every intermediate must stay below 2**62 in magnitude


def gates(op: str) -> int:
    return 4 if op == "gru" else 1


def _int_scalar(node, key, lo=None, hi=None):
    v = node.attrs.get(key)
    if not isinstance(v, (int, np.integer)) or isinstance(v, bool):
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be an int, "
                      f"not {v!r}")
    v = int(v)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} = {v} is out of range "
                      f"[{lo}, {hi}]")
    return v


def _array(node, key, shape):
    a = node.attrs.get(key)
    if not isinstance(a, np.ndarray) or a.shape != shape:
        got = getattr(a, "shape", type(a).__name__)
        raise IRError(f"node {node.name!r}: {node.op} attribute {key!r} must be an integer "
                      f"array of shape {shape}, got {got}")
    return a


def _bits_of(lo, hi) -> int:
    return max(abs(int(lo)), abs(int(hi))).bit_length()


def column_range(weight, bias, lo_cols, hi_cols):
    """Exact per-row bounds of ``bias + weight @ u`` for ``u[j]`` anywhere in
    ``[lo_cols[j], hi_cols[j]]`` (python ints: no overflow)."""
    w = weight.astype(object)
    lo_c = np.asarray(lo_cols, dtype=object)
    hi_c = np.asarray(hi_cols, dtype=object)
    pos = np.where(w > 0, w, 0)
    neg = np.where(w < 0, w, 0)
    lo = bias.astype(object) + (pos * lo_c).sum(axis=1) + (neg * hi_c).sum(axis=1)
    hi = bias.astype(object) + (pos * hi_c).sum(axis=1) + (neg * lo_c).sum(axis=1)
    return lo, hi


def recurrent_geometry(graph, node: Node):
    """Check a ``rnn``/``gru`` node; return ``(T, I, H)``."""
    x = graph.tensors[node.inputs[0]]
    y = graph.tensors[node.outputs[0]]
    if len(x.shape) != 2:
        raise IRError(f"node {node.name!r}: {node.op} needs a sequence input (T, I), tensor "
                      f"{x.name!r} has shape {x.shape}")
    t, i = x.shape
    w = node.attrs.get("weight")
    if not isinstance(w, np.ndarray) or w.ndim != 2:
        raise IRError(f"node {node.name!r}: {node.op} needs weight (G*H, I+H)")
    g = gates(node.op)
    if w.shape[0] % g or w.shape[0] == 0:
        raise IRError(f"node {node.name!r}: {node.op} weight has {w.shape[0]} rows, not a "
                      f"positive multiple of {g}")
    h = w.shape[0] // g
    if w.shape[1] != i + h:
        raise IRError(f"node {node.name!r}: {node.op} weight has {w.shape[1]} columns, expected "
                      f"I + H = {i} + {h}")
    _array(node, "bias", (g * h,))
    seq = _int_scalar(node, "return_sequences", 0, 1)
    want = (t, h) if seq else (h,)
    if tuple(y.shape) != want:
        raise IRError(f"node {node.name!r}: output {y.name!r} has shape {y.shape}, expected "
                      f"{want} (return_sequences={seq})")
    if not y.dtype.signed:
        raise IRError(f"node {node.name!r}: the hidden state type {y.dtype} must be signed")
    if g == 4:
        if np.any(w[2 * h:3 * h, i:] != 0) or np.any(w[3 * h:, :i] != 0):
            raise IRError(f"node {node.name!r}: gru rows n_x must be zero on the h columns and "
                          f"rows n_h zero on the x columns")
    return t, i, h


def _lut(node, key, n, lo, hi):
    tab = _array(node, key, (n,))
    if tab.size and (tab.min() < lo or tab.max() > hi):
        raise IRError(f"node {node.name!r}: {key} values [{tab.min()}, {tab.max()}] are outside "
                      f"[{lo}, {hi}]")
    return tab


def recurrent_range(graph, node: Node):
    """Per-output bounds of an ``rnn``/``gru`` node (and all attribute checks)."""
    t, i, h = recurrent_geometry(graph, node)
    x = graph.tensors[node.inputs[0]].dtype
    s = graph.tensors[node.outputs[0]].dtype
    g = gates(node.op)
    n_rq = 3 * h if g == 4 else h
    m = _array(node, "multiplier", (n_rq,))
    sh = _array(node, "shift", (n_rq,))
    if np.any(sh < 0) or np.any(sh > 62):
        raise IRError(f"node {node.name!r}: shift must be in 0..62")
    lut_lo = _int_scalar(node, "lut_lo")
    lut_hi = _int_scalar(node, "lut_hi")
    n_lut = lut_hi - lut_lo + 1
    if not 1 <= n_lut <= MAX_LUT:
        raise IRError(f"node {node.name!r}: lookup table range [{lut_lo}, {lut_hi}] must have "
                      f"1..{MAX_LUT} entries")
    tanh = _lut(node, "tanh_table", n_lut, s.min, s.max)
    h_lo, h_hi = min(0, int(tanh.min())), max(0, int(tanh.max()))
    lo_c = [x.min] * i + [h_lo] * h
    hi_c = [x.max] * i + [h_hi] * h
    a_lo, a_hi = column_range(node.attrs["weight"], node.attrs["bias"], lo_c, hi_c)
    pre_lo, pre_hi = list(a_lo), list(a_hi)
    if g == 4:
        gf = _int_scalar(node, "gate_frac", 0, 30)
        _lut(node, "sigmoid_table", n_lut, 0, 1 << gf)
        r_max = 1 << gf
        pre_lo, pre_hi = list(a_lo[:2 * h]), list(a_hi[:2 * h])
        for k in range(h):
            nx_lo, nx_hi = a_lo[2 * h + k] << gf, a_hi[2 * h + k] << gf
            nh_lo, nh_hi = a_lo[3 * h + k], a_hi[3 * h + k]
            pre_lo.append(nx_lo + min(0, nh_lo * r_max))
            pre_hi.append(nx_hi + max(0, nh_hi * r_max))
    worst = 0
    for k in range(n_rq):
        worst = max(worst, _bits_of(pre_lo[k], pre_hi[k]) + _bits_of(0, m[k]))
    if g == 4:
        worst = max(worst, _bits_of(0, 1 << gf) + _bits_of(h_lo, h_hi) + 1)
    if worst > _INT64_BITS:
        raise IRError(f"node {node.name!r}: intermediate values need {worst} bits, more than "
                      f"the exact int64 evaluation allows ({_INT64_BITS})")
    n_out = int(np.prod(graph.tensors[node.outputs[0]].shape))
    if g == 1:
        return np.full(n_out, int(tanh.min())), np.full(n_out, int(tanh.max()))
    return np.full(n_out, h_lo), np.full(n_out, h_hi)


def _table(fn, lut_lo, lut_hi, idx_frac, out_frac, lo, hi):
    v = np.arange(lut_lo, lut_hi + 1, dtype=np.float64) * 2.0 ** -idx_frac
    return np.clip(np.floor(fn(v) * 2.0 ** out_frac + 0.5), lo, hi).astype(np.int64)


def tanh_table(lut_lo, lut_hi, idx_frac, state_type):
    """``round_half_up(tanh(k * 2**-idx_frac) * 2**frac)`` for k in ``lut_lo..lut_hi``, clipped
    to the state type (its ``frac`` is the output's binary point). The one definition: export
    from PyTorch and the tests both build tables with it."""
    return _table(np.tanh, lut_lo, lut_hi, idx_frac, state_type.frac, state_type.min,
                  state_type.max)


def sigmoid_table(lut_lo, lut_hi, idx_frac, gate_frac):
    """``round_half_up(sigmoid(k * 2**-idx_frac) * 2**gate_frac)`` for k in ``lut_lo..lut_hi``."""
    return _table(lambda v: 1.0 / (1.0 + np.exp(-v)), lut_lo, lut_hi, idx_frac, gate_frac, 0,
                  1 << gate_frac)


def random_recurrent(seed, op="gru", steps=4, n_in=3, hidden=4, in_bits=4, w_bits=4,
                     state_bits=8, lut_bits=6, gate_frac=6, return_sequences=0, in_signed=False):
    """A seeded random single-layer ``rnn``/``gru`` graph (extreme and zero weights, random
    requant scales), for tests."""
    from .graph import Graph
    from .types import IntType

    rng = np.random.default_rng(seed)
    g = gates(op)
    wmax = (1 << (w_bits - 1)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(g * hidden, n_in + hidden))
    w[rng.random(w.shape) < 0.2] = 0
    w[rng.random(w.shape) < 0.1] = wmax
    if g == 4:
        w[2 * hidden:3 * hidden, n_in:] = 0
        w[3 * hidden:, :n_in] = 0
    b = rng.integers(-4 * wmax, 4 * wmax + 1, size=g * hidden)
    st = IntType(True, state_bits, state_bits - 2)
    lut_lo, lut_hi = -(1 << (lut_bits - 1)), (1 << (lut_bits - 1)) - 1
    idx_frac = lut_bits - 3
    n_rq = 3 * hidden if g == 4 else hidden
    mult = rng.integers(1, 8, size=n_rq)
    shift = rng.integers(2, 9, size=n_rq)
    if g == 4:
        shift[2 * hidden:] += gate_frac
    xt = IntType(in_signed, in_bits, in_bits - 1 if in_signed else in_bits)
    gr = Graph(meta={"kind": f"random-{op}", "seed": int(seed)})
    gr.add_tensor("x", (steps, n_in), xt)
    gr.add_tensor("h", (steps, hidden) if return_sequences else (hidden,), st)
    attrs = dict(weight=w.astype(np.int64), bias=b.astype(np.int64),
                 multiplier=mult.astype(np.int64), shift=shift.astype(np.int64),
                 lut_lo=lut_lo, lut_hi=lut_hi, return_sequences=int(return_sequences),
                 tanh_table=tanh_table(lut_lo, lut_hi, idx_frac, st))
    if g == 4:
        attrs.update(gate_frac=int(gate_frac),
                     sigmoid_table=sigmoid_table(lut_lo, lut_hi, idx_frac, gate_frac))
    gr.add_node(op, op, ["x"], ["h"], **attrs)
    gr.inputs, gr.outputs = ["x"], ["h"]
    return gr.check()


def random_recurrent_classifier(seed, op="gru", n_out=4, a_bits=8, **kw):
    """:func:`random_recurrent` (keyword arguments ``kw``; ``return_sequences`` must stay 0)
    followed by a random ``dense`` (``w_bits`` weights) and a ``requant`` to signed ``a_bits``
    logits: ``x (T, I) -> rnn/gru -> dense -> requant``, for tests and benchmarks."""
    from .builder import _append_layers
    from .types import IntType

    g = random_recurrent(seed, op=op, **kw)
    if g.output.shape != (g.output.shape[-1],):
        raise ValueError("random_recurrent_classifier needs return_sequences=0")
    rng = np.random.default_rng(seed + 1)
    hidden = g.output.shape[-1]
    wmax = (1 << (kw.get("w_bits", 4) - 1)) - 1
    w = rng.integers(-wmax, wmax + 1, size=(n_out, hidden))
    b = rng.integers(-8 * wmax, 8 * wmax + 1, size=n_out)
    lo, hi = -(1 << (a_bits - 1)), (1 << (a_bits - 1)) - 1
    rq = {"multiplier": rng.integers(1, 8, size=n_out), "shift": rng.integers(1, 6, size=n_out),
          "lo": lo, "hi": hi, "out_type": IntType(True, a_bits)}
    cur, _, _ = _append_layers(g, g.outputs[0], g.output.dtype, (hidden,),
                               [{"name": "classifier", "weight": w, "bias": b, "requant": rq}])
    g.outputs = [cur]
    g.meta["kind"] = f"random-{op}-classifier"
    return g.check()
