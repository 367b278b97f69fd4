"""Memory-backed streaming blocks: RowPool (k x k pool, row buffer in memory) and StreamDense
(flatten + dense over pixel beats, weights in block RAM or SPRAM), bit-exact against NumPy
under random idle cycles and backpressure, and their cycle models against the simulator."""
import numpy as np
import pytest

from ddnhw.hw.sim import run_beats
from ddnhw.hw.stream import RowPool, RowPoolSpec, StreamDense
from ddnhw.ir import IntType
from ddnhw.lower.timing import chain_timing


def _dense_case(seed, beats=6, c=5, n_out=3):
    rng = np.random.default_rng(seed)
    w = rng.integers(-8, 8, size=(n_out, beats * c))
    b = rng.integers(-20, 20, size=n_out)
    x = np.concatenate([np.zeros((1, beats * c), dtype=np.int64),
                        np.full((1, beats * c), 15), rng.integers(0, 16, size=(7, beats * c))])
    return w, b, x


@pytest.mark.parametrize("mem,pe,simd,pipe", [("bram", 1, 1, 0), ("bram", 2, 3, 1),
                                              ("spram", 3, 5, 2), ("spram", 2, 2, 0)])
def test_stream_dense(mem, pe, simd, pipe):
    w, b, x = _dense_case(pe * 10 + simd)
    beats = 6
    dut = StreamDense(w, b, IntType(False, 4, 0), IntType(True, 16, 0), beats, pe=pe,
                      simd=simd, mem=mem, model=True, pipe=pipe)
    y, log = run_beats(dut, x.reshape(-1, 5), len(x), idle=0.3, stall=0.3, seed=pe,
                       load=dut.w_init if mem == "spram" else None)
    np.testing.assert_array_equal(y, x @ w.T + b)
    assert log["protocol"] == []


@pytest.mark.parametrize("pe,simd,pipe", [(1, 2, 0), (3, 5, 1)])
def test_stream_dense_cycle_model(pe, simd, pipe):
    w, b, x = _dense_case(3)
    dut = StreamDense(w, b, IntType(False, 4, 0), IntType(True, 16, 0), 6, pe=pe, simd=simd,
                      pipe=pipe)
    _, log = run_beats(dut, x.reshape(-1, 5), len(x))
    model = chain_timing([dut.spec], 6, len(x))
    assert model["in"] == log["in"] and model["out"] == log["out"]
    assert np.diff(log["out"]).tolist() == [dut.ii] * (len(x) - 1)


@pytest.mark.parametrize("kind,k,h,w", [("max", 2, 6, 6), ("max", 2, 5, 7), ("avg", 2, 4, 6),
                                        ("max", 3, 7, 6)])
def test_row_pool(kind, k, h, w):
    rng = np.random.default_rng(k * h + w)
    c, n = 3, 3
    t = IntType(True, 4, 0)
    img = rng.integers(-8, 8, size=(n, h, w, c))
    img[0] = -8
    img[1] = 7
    dut = RowPool(kind, k, h, w, c, t)
    oh, ow = h // k, w // k
    y, log = run_beats(dut, img.reshape(-1, c), n * oh * ow, idle=0.3, stall=0.3, seed=1)
    win = img[:, :oh * k, :ow * k].reshape(n, oh, k, ow, k, c)
    if kind == "max":
        exp = win.max(axis=(2, 4))
    else:
        s = win.sum(axis=(2, 4))
        sh = (k * k).bit_length() - 1
        exp = (s + (1 << (sh - 1))) >> sh
    np.testing.assert_array_equal(y, exp.reshape(-1, c))
    assert log["protocol"] == []
    _, log0 = run_beats(dut, img.reshape(-1, c), n * oh * ow)
    model = chain_timing([RowPoolSpec(kind, k, h, w, c, t)], h * w, n,
                         beats_per_output=oh * ow)
    assert model["in"] == log0["in"] and model["out"] == log0["out"]
