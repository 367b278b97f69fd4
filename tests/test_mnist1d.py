"""MNIST-1D, generated locally by the mnist1d package (no download): the split, its pinned
content, the cache, and the examples on it."""
import hashlib
import random

import numpy as np
import pytest

import ddnhw.datasets as datasets
from ddnhw import examples

# sha256 of the raw arrays x, y, x_test, y_test (float64/int64, C order) of seed 42: the data
# set is the same on every machine (numpy's seeded generator, scipy's linear interpolation)
MNIST1D_SHA256 = "2377c0b18c9f643da2b39e66086395782aac2fcfdd678b89f55a22b17ec47631"


def _digest(d):
    h = hashlib.sha256()
    for k in ("x", "y", "x_test", "y_test"):
        h.update(np.ascontiguousarray(d[k]).tobytes())
    return h.hexdigest()


@pytest.fixture
def fresh_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("DDNHW_CACHE", str(tmp_path))
    monkeypatch.setattr(datasets, "_MNIST1D", {})
    return tmp_path


def test_generated_offline_pinned_and_cached(fresh_cache, monkeypatch):
    import socket

    # the package imports requests (ssl subclasses socket.socket) on first import: import it
    # before the network is blocked; generating the data must then not open a socket
    import mnist1d.data  # noqa: F401

    def no_network(*a, **k):
        raise AssertionError("MNIST-1D must not touch the network")
    monkeypatch.setattr(socket, "socket", no_network)
    np.random.seed(123)
    random.seed(123)
    before = (np.random.get_state()[1].copy(), random.getstate())
    d = datasets.load_mnist1d_raw()
    # the package seeds the global generators; ours are restored
    assert np.array_equal(np.random.get_state()[1], before[0])
    assert random.getstate() == before[1]
    assert d["x"].shape == (4000, 40) and d["x_test"].shape == (1000, 40)
    assert sorted(np.unique(d["y"])) == list(range(10))
    assert _digest(d) == MNIST1D_SHA256
    cached = fresh_cache / "mnist1d-42.npz"
    assert cached.is_file()
    # a second load reads the cache (the generator is not called) and gives the same arrays
    monkeypatch.setattr(datasets, "_MNIST1D", {})
    monkeypatch.setattr(datasets, "_make_mnist1d", lambda seed: pytest.fail("regenerated"))
    assert _digest(datasets.load_mnist1d_raw()) == MNIST1D_SHA256


def test_corrupt_cache_is_regenerated(fresh_cache):
    (fresh_cache / "mnist1d-42.npz").write_bytes(b"not an npz")
    assert _digest(datasets.load_mnist1d_raw()) == MNIST1D_SHA256


def test_scaled_split(fresh_cache):
    xtr, ytr, xte, yte = datasets.load_mnist1d()
    assert xtr.dtype == np.float32 and xtr.shape == (4000, 40) and xte.shape == (1000, 40)
    assert xtr.min() == 0.0 and xtr.max() == 1.0
    raw = datasets.load_mnist1d_raw()
    inside = np.abs(raw["x"]) < datasets.MNIST1D_RANGE
    assert np.allclose(xtr[inside], (raw["x"][inside] + 4) / 8, atol=1e-6)
    assert np.array_equal(ytr, raw["y"]) and np.array_equal(yte, raw["y_test"])


def test_records():
    for name in ("mnist1d-mlp", "mnist1d-cnn", "mnist1d-cnn-up5k", "mnist1d-gru"):
        ex = examples.get(name)
        assert ex.dataset == "mnist1d" and ex.task == "classification"
        assert ex.boards


TINY = {"mnist1d-mlp": dict(hidden=4, epochs=1),
        "mnist1d-cnn": dict(epochs=1, layers=[{"op": "conv1d", "out": 2, "kernel": 5,
                                                "stride": 2},
                                               {"op": "conv1d", "out": 2, "kernel": 3,
                                                "stride": 2},
                                               {"op": "flatten"}, {"op": "linear", "out": 10}]),
        "mnist1d-cnn-up5k": dict(epochs=1, qat_epochs=1,
                                 layers=[{"op": "conv1d", "out": 2, "kernel": 5, "stride": 2},
                                         {"op": "conv1d", "out": 2, "kernel": 3, "stride": 4},
                                         {"op": "flatten"}, {"op": "linear", "out": 10}]),
        "mnist1d-gru": dict(hidden=2, epochs=1)}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n == "mnist1d-cnn" else n for n in TINY])
def test_examples_integer_mode_is_golden(name, tmp_path):
    """Every MNIST-1D example through the pipeline (tiny training): integer-mode PyTorch ==
    golden on the 1,000 test sequences and random inputs, and the float model is stored."""
    from ddnhw.quant import float_model
    s = examples.run(name, tmp_path, settings=TINY[name], boards=(), simulator="none",
                     random=20, sim_vectors=0)
    assert s["int_mode_vectors"] == 1000 + 20 and s["int_mode_mismatches"] == 0
    assert s["dataset"] == "mnist1d" and 0 <= s["quant_accuracy"] <= 1
    assert float_model.load(tmp_path / "model.npz") is not None
