"""The golden model's exact matmul: float BLAS only where the integer bound proves it exact."""
import numpy as np
import pytest

from ddnhw.ir.ops import base
from ddnhw.ir.ops.base import int_matmul, matmul_dtype


def reference(x, w):
    """Python-int products: exact at any width."""
    return np.array([[sum(int(a) * int(b) for a, b in zip(row, col)) for col in w] for row in x],
                    dtype=object)


def test_dtype_follows_the_bound_at_its_edges():
    w = np.array([[1, -1]])                       # row sum of |w| = 2
    assert matmul_dtype((1 << 23), w) is np.float32          # bound 2**24: exact in float32
    assert matmul_dtype((1 << 23) + 1, w) is np.float64      # 2**24 + 2: not
    assert matmul_dtype((1 << 52), w) is np.float64          # 2**53
    assert matmul_dtype((1 << 52) + 1, w) is np.int64
    assert matmul_dtype(5, np.zeros((0, 3), dtype=np.int64)) is np.int64


@pytest.mark.parametrize("scale_bits", [23, 24, 52, 53, 60])
def test_odd_sums_just_past_each_float_bound_stay_exact(scale_bits):
    # x * w sums to odd integers near 2**scale_bits: a float type without enough mantissa
    # would round them to even, so any wrong dtype choice changes the result
    rng = np.random.default_rng(scale_bits)
    k = 4
    hi = (1 << scale_bits) // k
    x = rng.integers(hi - 1000, hi, size=(64, k), dtype=np.int64)
    x[:, 0] |= 1
    w = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [3, 0, 0, 0]], dtype=np.int64)
    if scale_bits >= 60:                           # keep within int64 for the reference
        w = w[:2]
    got = int_matmul(x, w)
    assert got.dtype == np.int64
    assert (got.astype(object) == reference(x, w)).all()


def test_the_bound_is_what_makes_it_exact(monkeypatch):
    # with the float32 limit lied about, the same product rounds: the check above can fail
    x = np.full((4, 2), (1 << 24) + 1, dtype=np.int64)
    w = np.array([[1, 0]])
    assert (int_matmul(x, w)[:, 0] == (1 << 24) + 1).all()
    monkeypatch.setattr(base, "FLOAT_EXACT", ((np.float32, 1 << 40),))
    assert (int_matmul(x, w)[:, 0] != (1 << 24) + 1).all()


def test_random_products_match_int64_at_every_width():
    rng = np.random.default_rng(0)
    for bits in (1, 2, 4, 8, 12, 16, 24, 30):
        x = rng.integers(-(1 << bits), 1 << bits, size=(200, 33), dtype=np.int64)
        w = rng.integers(-(1 << bits), 1 << bits, size=(7, 33), dtype=np.int64)
        assert (int_matmul(x, w) == x @ w.T).all()
        assert (int_matmul(x[:0], w) == np.zeros((0, 7))).all()
