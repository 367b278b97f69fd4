"""A 1-D CNN with 1-D max and average pooling (IR pools with ``[1, k]`` kernels on a one-row
image) in Verilator == golden model under random idle cycles and backpressure, unrolled and
with the convolution folded (its requantizer fused); the manifest's latency and II are the
cycles Verilator takes at full rate."""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw import flow, golden
from ddnhw.ir import IntType, chain_graph

from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb


def signal_graph(seed=0, length=24, channels=2, out=4):
    rng = np.random.default_rng(seed)
    w = rng.integers(-7, 8, size=(out, 1, 3, channels))
    w[rng.random(w.shape) < 0.3] = 0
    layers = [{"op": "conv2d", "name": "conv0", "weight": w, "bias": rng.integers(-20, 21, out),
               "stride": 1, "padding": 0,
               "requant": {"multiplier": rng.integers(1, 4, out), "shift": rng.integers(2, 5, out),
                           "lo": 0, "hi": 15, "out_type": IntType(False, 4)}},
              {"op": "maxpool2d", "name": "pool1", "kernel": [1, 2], "stride": 2},
              {"op": "avgpool2d", "name": "pool2", "kernel": [1, 4], "stride": 1},
              {"op": "flatten", "name": "flat"}]
    n_in = chain_graph(IntType(False, 4), (1, length, channels), layers).output.shape[0]
    layers.append({"op": "dense", "name": "fc", "weight": rng.integers(-7, 8, (3, n_in)),
                   "bias": rng.integers(-20, 21, 3)})
    return chain_graph(IntType(False, 4), (1, length, channels), layers)


@pytest.mark.slow
@pytest.mark.parametrize("folding", [None, {"conv0": (1, 1), "fc": (1, 4)}],
                         ids=["unrolled", "folded"])
def test_pool1d_cnn_verilator(folding, cache_dir):  # noqa: F811
    g = signal_graph()
    x = flow.random_images(g, 60, seed=3)
    out = cache_dir / f"pool1d_{'folded' if folding else 'unrolled'}"
    man = lower.generate(g, out, **({"folding": folding} if folding else {}))
    if folding:
        assert [layer.get("fused_into") for layer in man["layers"]
                if layer["name"] == "conv0_rq"] == ["conv0"]
    r = flow.cosim_check(g, x, out, seed=5, idle=0.3, stall=0.3,
                             build_dir=cache_dir / "builds")
    assert r["mismatches"] == 0, r["message"]
    assert_array_equal(r["outputs"], golden.run(g, x))
    # full rate: n inputs take latency + (n - 1) * II cycles from the first input beat to the
    # last output beat; the harness counts 2 more (its first beat is valid one cycle after
    # reset, and it counts the output's handshake cycle)
    for n in (1, 4):
        full = flow.cosim_check(g, x[:n], out, idle=0.0, stall=0.0,
                                    build_dir=cache_dir / "builds")
        assert full["mismatches"] == 0
        assert full["cycles"] == man["latency_cycles"] + (n - 1) * man["ii_cycles"] + 2, n
