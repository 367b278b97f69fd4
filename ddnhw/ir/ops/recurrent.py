"""What the recurrent ops (``rnn``, ``gru``, ``lstm``) share: geometry, lookup tables, checks.

A sequence tensor has shape ``(T, I)``: ``T`` time steps (a fixed parameter of the graph) of
``I`` features; it streams as ``T`` beats of ``I`` lanes. The hidden state ``h`` (``H``
values) has the type of the op's output tensor (signed) and starts at 0 for every sequence.

Every step is one integer dense over the concatenation ``u_t = [x_t, h_{t-1}]``::

    acc_t = bias + weight @ u_t                      # weight (G*H, I+H), bias (G*H,)

(``G`` row blocks of ``H`` rows: :attr:`RecurrentOp.gates`), then lookup-table activations. A
table is indexed by a requantized pre-activation::

    idx(v, rows) = clip(round_shift(v * multiplier[rows], shift[rows]), lut_lo, lut_hi)
    act(table, v, rows) = table[idx(v, rows) - lut_lo]

(``multiplier``/``shift`` as in ``requant``, :attr:`RecurrentOp.requants` blocks of ``H``
entries; tables have ``lut_hi - lut_lo + 1`` entries, at most :data:`MAX_LUT`, and are computed
once at export with :func:`tanh_table` / :func:`sigmoid_table`, so the golden model,
integer-mode PyTorch and the hardware all read the same integers). ``tanh_table`` values lie in
the state type; ``sigmoid_table`` values (gated ops) in ``[0, 2**gate_frac]``.

Common attributes: ``weight``, ``bias``, ``multiplier``, ``shift``, ``lut_lo``, ``lut_hi``,
``tanh_table``, ``return_sequences`` (0: the output is ``h_T``, shape ``(H,)``; 1: every
``h_t``, shape ``(T, H)``). Each op's own step and attributes: :mod:`.rnn`, :mod:`.gru`,
:mod:`.lstm`. :meth:`RecurrentOp.check` bounds every intermediate of the golden kernel below
2**62 in magnitude, so its int64 evaluation is exact.
"""
from __future__ import annotations

import numpy as np

from ddnhw.fixedpoint import requantize

from ..errors import IRError
from .base import (OpDef, array_attr, column_range, in_type, int_attr, int_matmul, op_def,
                   shift_attr)

MAX_LUT = 4096       # table entries
INT64_BITS = 62      # every intermediate must stay below 2**62 in magnitude


def bits_of(lo, hi) -> int:
    """Magnitude bits of the wider end of ``[lo, hi]`` (python ints)."""
    return max(abs(int(lo)), abs(int(hi))).bit_length()


def check_bits(node, worst: int):
    """Raise unless ``worst`` (magnitude bits of an intermediate) is within :data:`INT64_BITS`."""
    if worst > INT64_BITS:
        raise IRError(f"node {node.name!r}: intermediate values need {worst} bits, more than "
                      f"the exact int64 evaluation allows ({INT64_BITS})")


def lut_act(table, v, multiplier, shift, lut_lo, lut_hi):
    """``table[clip(round_shift(v * multiplier, shift), lut_lo, lut_hi) - lut_lo]``."""
    idx = requantize(v, multiplier, shift, lut_lo, lut_hi)
    return np.asarray(table, dtype=np.int64)[idx - lut_lo]


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


class RecurrentOp(OpDef):
    """Base of the recurrent ops. A subclass sets :attr:`gates`, :attr:`requants`,
    :attr:`states` and implements :meth:`bounds` (op-specific checks and the output range)
    and :meth:`step`.

    Attributes
    ----------
    gates : row blocks of ``H`` rows in ``weight`` (and ``bias``).
    requants : blocks of ``H`` index requantizers in ``multiplier``/``shift``.
    states : state vectors of ``H`` values carried between steps, ``h`` first.
    gated : the op uses ``sigmoid_table`` and ``gate_frac``.
    mask_rule : what :meth:`weight_mask` requires, in words.
    """

    recurrent = True
    foldable = True
    gates = 1
    requants = 1
    states = 1
    gated = False
    mask_rule = ""      # what weight_mask requires, in words (for the error message)

    # -- metadata -----------------------------------------------------------------------------
    def weight_mask(self, n_in, hidden) -> np.ndarray:
        """Boolean ``(G*H, I+H)``: the weight entries that may be nonzero (the others are
        structurally zero; :meth:`check` enforces it)."""
        return np.ones((self.gates * hidden, n_in + hidden), dtype=bool)

    def mac_matrix(self, graph, node):
        return node.attrs["weight"]

    def sequence_output(self, node) -> bool:
        return bool(int(node.attrs["return_sequences"]))

    # -- checks -------------------------------------------------------------------------------
    def geometry(self, graph, node):
        """Check the node's shapes (input, weight, bias, output) and return ``(T, I, H)``."""
        x = graph.tensors[node.inputs[0]]
        y = graph.tensors[node.outputs[0]]
        if len(x.shape) != 2:
            raise IRError(f"node {node.name!r}: {node.op} needs a sequence input (T, I), tensor "
                          f"{x.name!r} has shape {x.shape}")
        t, i = x.shape
        w = node.attrs.get("weight")
        if not isinstance(w, np.ndarray) or w.ndim != 2:
            raise IRError(f"node {node.name!r}: {node.op} needs weight (G*H, I+H)")
        g = self.gates
        if w.shape[0] % g or w.shape[0] == 0:
            raise IRError(f"node {node.name!r}: {node.op} weight has {w.shape[0]} rows, not a "
                          f"positive multiple of {g}")
        h = w.shape[0] // g
        if w.shape[1] != i + h:
            raise IRError(f"node {node.name!r}: {node.op} weight has {w.shape[1]} columns, "
                          f"expected I + H = {i} + {h}")
        array_attr(node, "bias", (g * h,))
        seq = int_attr(node, "return_sequences", 0, 1)
        want = (t, h) if seq else (h,)
        if tuple(y.shape) != want:
            raise IRError(f"node {node.name!r}: output {y.name!r} has shape {y.shape}, expected "
                          f"{want} (return_sequences={seq})")
        if not y.dtype.signed:
            raise IRError(f"node {node.name!r}: the hidden state type {y.dtype} must be signed")
        if np.any(w[~self.weight_mask(i, h)] != 0):
            raise IRError(f"node {node.name!r}: {self.mask_rule}")
        return t, i, h

    def table(self, node, key, n, lo, hi):
        """Lookup table attribute ``key``: ``n`` entries, each in ``[lo, hi]``."""
        tab = array_attr(node, key, (n,))
        if tab.size and (tab.min() < lo or tab.max() > hi):
            raise IRError(f"node {node.name!r}: {key} values [{tab.min()}, {tab.max()}] are "
                          f"outside [{lo}, {hi}]")
        return tab

    def check(self, graph, node):
        _, i, h = self.geometry(graph, node)
        s = graph.tensors[node.outputs[0]].dtype
        m = array_attr(node, "multiplier", (self.requants * h,))
        shift_attr(node, "shift", (self.requants * h,))
        lut_lo = int_attr(node, "lut_lo")
        lut_hi = int_attr(node, "lut_hi")
        n_lut = lut_hi - lut_lo + 1
        if not 1 <= n_lut <= MAX_LUT:
            raise IRError(f"node {node.name!r}: lookup table range [{lut_lo}, {lut_hi}] must have "
                          f"1..{MAX_LUT} entries")
        tanh = self.table(node, "tanh_table", n_lut, s.min, s.max)
        sig = gf = None
        if self.gated:
            gf = int_attr(node, "gate_frac", 0, 30)
            sig = self.table(node, "sigmoid_table", n_lut, 0, 1 << gf)
        out_lo, out_hi = self.bounds(node, tanh, sig, gf)
        h_lo, h_hi = min(0, out_lo), max(0, out_hi)     # h_0 = 0
        x = in_type(graph, node)
        acc_lo, acc_hi = column_range(node.attrs["weight"], node.attrs["bias"],
                                      [x.min] * i + [h_lo] * h, [x.max] * i + [h_hi] * h)
        self.check_intermediates(node, h, m, acc_lo, acc_hi, (h_lo, h_hi), tanh, sig, gf)
        n_out = int(np.prod(graph.tensors[node.outputs[0]].shape))
        return np.full(n_out, out_lo), np.full(n_out, out_hi)

    def bounds(self, node, tanh, sig, gate_frac):
        """Op-specific attribute checks; return ``(lo, hi)`` (python ints) of every ``h_t``,
        ``t >= 1``, given the tables (``sig``, ``gate_frac``: None unless :attr:`gated`)."""
        raise NotImplementedError

    def check_intermediates(self, node, h, multiplier, acc_lo, acc_hi, state, tanh, sig, gf):
        """Raise (:func:`check_bits`) unless every intermediate of :meth:`step` stays below
        2**62, given the per-row accumulator bounds and the state bounds."""
        raise NotImplementedError

    # -- golden kernel ------------------------------------------------------------------------
    def step(self, node, acc, state):
        """One time step: the new state tuple (``h`` first) from the accumulators ``acc``
        ``(N, G*H)`` and the previous state tuple (each ``(N, H)``)."""
        raise NotImplementedError

    def run_steps(self, node, x):
        """Every hidden state ``(N, T, H)`` for inputs ``(N, T, I)``."""
        w, b = node.attrs["weight"], node.attrs["bias"]
        n, t, _ = x.shape
        hsz = w.shape[0] // self.gates
        state = tuple(np.zeros((n, hsz), dtype=np.int64) for _ in range(self.states))
        out = np.empty((n, t, hsz), dtype=np.int64)
        for k in range(t):
            acc = int_matmul(np.concatenate([x[:, k], state[0]], axis=1), w) + b
            state = self.step(node, acc, state)
            out[:, k] = state[0]
        return out

    def run(self, node, x):
        steps = self.run_steps(node, x)
        return steps if self.sequence_output(node) else steps[:, -1]

    def luts(self, node):
        """``(multiplier, shift, lut_lo, lut_hi)`` of the node, for :func:`lut_act`."""
        a = node.attrs
        return a["multiplier"], a["shift"], int(a["lut_lo"]), int(a["lut_hi"])


# -- module-level views of the registry (the names other layers import) -----------------------
def recurrent_geometry(graph, node):
    """Check a recurrent node's shapes; return ``(T, I, H)``."""
    op = op_def(node)
    if not op.recurrent:
        raise IRError(f"node {node.name!r}: {node.op} is not a recurrent op")
    return op.geometry(graph, node)
