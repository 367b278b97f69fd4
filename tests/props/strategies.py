"""Hypothesis strategies for integer types, weight matrices (with all-zero, all-max, all-min
rows), requantization parameters and input batches led by extremes; example budgets."""
from __future__ import annotations

import collections
import os

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from ddnhw.ir import IntType
from ddnhw.ir.ops import dense_range


CASES = collections.Counter()   # op -> cases run (printed by conftest)
FACTOR = float(os.environ.get("DDNHW_PROP_EXAMPLES", "1"))


def budget(n: int):
    """``settings`` for a property with ``n`` examples (times ``DDNHW_PROP_EXAMPLES``)."""
    return settings(max_examples=max(1, int(n * FACTOR)), deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
                    database=None)


def count(op: str) -> None:
    CASES[op] += 1


@st.composite
def int_types(draw, min_bits=1, max_bits=16, signed=None):
    s = draw(st.booleans()) if signed is None else signed
    lo = max(min_bits, 2 if s else 1)
    return IntType(s, draw(st.integers(lo, max(lo, max_bits))))


ROW_KINDS = ("random", "random", "random", "zero", "max", "min", "sparse", "one-hot")


@st.composite
def weights(draw, n_out, n_in, max_bits=16):
    """``(n_out, n_in)`` int64 from a random signed/unsigned weight type of 1..max_bits bits;
    each row is random, all zero, all max, all min, sparse or one-hot."""
    wt = draw(int_types(max_bits=max_bits))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w = rng.integers(wt.min, wt.max + 1, size=(n_out, n_in), dtype=np.int64)
    for r in range(n_out):
        kind = draw(st.sampled_from(ROW_KINDS))
        if kind == "zero":
            w[r] = 0
        elif kind == "max":
            w[r] = wt.max
        elif kind == "min":
            w[r] = wt.min
        elif kind == "sparse":
            w[r, rng.random(n_in) < 0.7] = 0
        elif kind == "one-hot":
            w[r] = 0
            w[r, rng.integers(n_in)] = draw(st.sampled_from([1, -1 if wt.signed else 1,
                                                             wt.max, wt.min or 1]))
    return w


@st.composite
def biases(draw, n_out, max_bits=16):
    bt = draw(int_types(max_bits=max_bits))
    seed = draw(st.integers(0, 2**32 - 1))
    b = np.random.default_rng(seed).integers(bt.min, bt.max + 1, size=n_out, dtype=np.int64)
    if draw(st.booleans()):
        b[:] = 0
    return b


def vectors(t: IntType, lanes: int, n: int, seed: int) -> np.ndarray:
    """``n`` random rows led by all-min, all-max, alternating and one-hot-max extremes."""
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, size=(n, lanes), dtype=np.int64)
    alt = np.where(np.arange(lanes) % 2, t.max, t.min)
    onehot = np.full(lanes, t.min)
    onehot[rng.integers(lanes)] = t.max
    ext = np.stack([np.full(lanes, t.min), np.full(lanes, t.max), alt, t.max + t.min - alt,
                    onehot])
    return np.concatenate([ext, x, ext[:2]])


def acc_type(w, b, in_type: IntType, extra_bits=0) -> IntType:
    lo, hi = dense_range(w, b, in_type)
    t = IntType.for_range(int(min(lo)), int(max(hi)))
    return IntType(t.signed, t.bits + extra_bits) if extra_bits else t


def exact_dense(x, w, b):
    """``x @ w.T + b`` in Python integers (no overflow at any width)."""
    return (np.asarray(x, dtype=object) @ np.asarray(w, dtype=object).T
            + np.asarray(b, dtype=object)).astype(np.int64)
