"""Residual CNNs (fork, main branch, skip FIFO, aligned add) in Verilator == golden model on
random images with extremes under random idle cycles and backpressure: a random graph unrolled
and with convolutions of the main branch folded, and a QAT-exported QuantCNN with a 'res'
block."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import cnn_demo, golden
from ddnhw.ir.testing import random_residual_cnn
from sim.runner import manifest_beats

from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb


def check_residual_cosim(graph, x, outdir, build_dir, seed=0, idle=0.3, stall=0.3, **options):
    manifest = lower.generate(graph, outdir, **options)
    assert manifest_beats(manifest) == (int(np.prod(graph.input.shape[:-1])), 1)
    assert [la["op"] for la in manifest["layers"]].count("fork") == 1
    r = cnn_demo.cosim_check(graph, x, outdir, seed=seed, idle=idle, stall=stall,
                             build_dir=build_dir)
    assert r["mismatches"] == 0, r["message"]
    assert_array_equal(r["outputs"], golden.run(graph, x))
    return r, manifest


@pytest.fixture(scope="module")
def residual_graph():
    g = random_residual_cnn(11, in_shape=(6, 6, 2), stem=3)
    return g, cnn_demo.random_images(g, 150, seed=3)


@pytest.mark.slow   # ~40-60 s on 2 shared CPUs (mostly the Verilator build)
def test_residual_unrolled(residual_graph, cache_dir):  # noqa: F811
    g, x = residual_graph
    r, man = check_residual_cosim(g, x, cache_dir / "residual_cnn", cache_dir / "builds")
    skip = next(la for la in man["layers"] if la["name"] == "res_add_skip")
    assert skip["depth"] >= skip["lead"] == 2 * 6 + 6 - 1


@pytest.mark.slow   # ~40-60 s on 2 shared CPUs (mostly the Verilator build)
def test_residual_folded(residual_graph, cache_dir):  # noqa: F811
    g, x = residual_graph
    check_residual_cosim(g, x[:40], cache_dir / "residual_cnn_folded", cache_dir / "builds",
                         seed=5, idle=0.2, stall=0.4,
                         folding={"res_conv0": (1, 9), "res_conv1": (3, 2)})


@pytest.mark.slow   # ~40-60 s on 2 shared CPUs (mostly the Verilator build)
def test_quant_residual_cnn(cache_dir):  # noqa: F811
    import torch
    from ddnhw.quant.cnn import QuantCNN, export_cnn

    torch.manual_seed(0)
    model = QuantCNN([{"op": "conv", "out": 3, "kernel": 3, "padding": 1},
                      {"op": "res", "kernel": 3, "mid": 2}, {"op": "maxpool", "kernel": 2},
                      {"op": "flatten"}, {"op": "linear", "out": 4}], (1, 6, 6))
    model.eval()
    model.fold_batchnorm()
    model.calibrate(torch.rand(64, 1, 6, 6))
    g = export_cnn(model)
    x = cnn_demo.random_images(g, 100, seed=4)
    xt = torch.as_tensor(x).permute(0, 3, 1, 2)
    assert_array_equal(model.int_forward(xt).numpy(), golden.run(g, x))
    check_residual_cosim(g, x, cache_dir / "quant_residual_cnn", cache_dir / "builds", seed=7)
