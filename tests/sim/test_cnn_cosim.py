"""The digits CNN (pixels in, one per beat; logits out) in Verilator == golden model on the test
split and on random images with extremes, under random idle cycles and backpressure, unrolled and
with the convolution folded; plus multi-beat streams through the runner (bulk and BFM)."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import cnn_demo, golden
from ddnhw.ir.testing import random_cnn
from sim.runner import cosim, manifest_beats

from .._tools import needs_icarus
from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb


@pytest.fixture(scope="module")
def digits_cnn():
    # a short training run: bit-exactness does not depend on accuracy
    graph, _ = cnn_demo.train_digits_cnn(channels=8, float_epochs=2, qat_epochs=2, seed=0)
    x, _ = cnn_demo.digits_images(graph)
    return graph, np.concatenate([x, cnn_demo.random_images(graph, 40, seed=1)])


def check_cnn_cosim(graph, x, outdir, build_dir, seed=0, idle=0.3, stall=0.3, **options):
    manifest = lower.generate(graph, outdir, **options)
    assert manifest_beats(manifest) == (64, 1)
    r = cnn_demo.cosim_check(graph, x, outdir, seed=seed, idle=idle, stall=stall,
                             build_dir=build_dir)
    assert r["mismatches"] == 0, r["message"]
    assert_array_equal(r["outputs"], golden.run(graph, x))
    return r, manifest


def test_digits_cnn_unrolled(digits_cnn, cache_dir):  # noqa: F811
    graph, x = digits_cnn
    r, man = check_cnn_cosim(graph, x, cache_dir / "digits_cnn", cache_dir / "builds")
    assert r["cycles"] >= len(x) * 64


def test_digits_cnn_folded(digits_cnn, cache_dir):  # noqa: F811
    graph, x = digits_cnn
    check_cnn_cosim(graph, x[::4], cache_dir / "digits_cnn_folded", cache_dir / "builds",
                    seed=3, folding={"conv0": (2, 3), "linear3": (2, 16)})


@pytest.mark.parametrize("simulator, mode", [
    ("verilator", "bulk"), ("verilator", "bfm"),
    pytest.param("icarus", "bulk", marks=needs_icarus)])
def test_multibeat_modes(simulator, mode, cache_dir):  # noqa: F811
    g = random_cnn(2, in_shape=(6, 6, 1), channels=2)
    man = lower.generate(g, cache_dir / "rcnn6")
    x = np.random.default_rng(4).integers(0, 16, (12,) + g.input.shape)
    want = golden.run(g, x)
    r = cosim(cache_dir / "rcnn6" / "ddnhw_top.v", man, x, expected=want, mode=mode,
              simulator=simulator, build_dir=cache_dir / "builds", seed=4)
    assert r.mismatches == 0, r.message
    assert_array_equal(r.outputs, want)
    # the same stream given as flat beat rows and explicit beats
    r2 = cosim(cache_dir / "rcnn6" / "ddnhw_top.v", man, x.reshape(12, -1), expected=want,
               mode=mode, simulator=simulator, build_dir=cache_dir / "builds", seed=5,
               beats_in=36, beats_out=1)
    assert_array_equal(r2.outputs, want)


def test_signal_cnn1d(cache_dir):  # noqa: F811
    # the 1-D CNN (one-row sliding windows): test split + random/extreme signals
    from ddnhw import signal_demo
    graph, _ = signal_demo.train_signal_cnn(float_epochs=2, qat_epochs=2)
    x, _ = signal_demo.signal_inputs(graph)
    x = np.concatenate([x, cnn_demo.random_images(graph, 20, seed=2)])
    manifest = lower.generate(graph, cache_dir / "signal_cnn1d")
    assert manifest_beats(manifest) == (32, 1)
    r = cnn_demo.cosim_check(graph, x, cache_dir / "signal_cnn1d", seed=2,
                             build_dir=cache_dir / "builds")
    assert r["mismatches"] == 0, r["message"]
    assert_array_equal(r["outputs"], golden.run(graph, x))
