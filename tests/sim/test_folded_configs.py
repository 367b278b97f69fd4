"""Folded configurations of a small digits-shaped MLP (16-12-8-4, 4-bit, ReLU requantizers) in
the Amaranth simulator and in Verilator == golden model, under random idle cycles and
backpressure; at full rate every further inference costs exactly the manifest's II cycles.

Across the three networks every dense layer is built PE = 1 / SIMD = 1, intermediate (including
PE/SIMD that do not divide the layer) and fully parallel (a depth-1 FoldedDense, or the unrolled
Dense); the hidden layers' requantizers are fused into their folded layers, the last layer has
none. One network per configuration keeps it to three (small) Verilator builds.
"""
from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from ddnhw.flow import random_vectors
from ddnhw.golden import run as golden
from ddnhw.hw.sim import run_stream
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network, generate
from sim.payload import StreamLayout
from sim.runner import cosim

from .test_runner import _fast_verilator_builds, cache_dir, extremes  # noqa: F401

SIZES = (16, 12, 8, 4)
# name -> (folding, in_signed, network II)
CONFIGS = {
    "serial_first": ({"fc0": (1, 1), "fc1": (3, 5), "fc2": (4, 8)}, False, 192),
    "parallel_mid": ({"fc0": (5, 6), "fc1": None, "fc2": (1, 1)}, True, 32),
    "parallel_first": ({"fc0": (12, 16), "fc1": (1, 1), "fc2": (2, 3)}, False, 96),
}


def _graph(name):
    folding, in_signed, _ = CONFIGS[name]
    return random_mlp(20 + list(CONFIGS).index(name), sizes=SIZES, in_signed=in_signed)


def test_configs_cover_every_layer_kind():
    for layer, (n_out, n_in) in zip(("fc0", "fc1", "fc2"), zip(SIZES[1:], SIZES)):
        kinds = set()
        for folding, _, _ in CONFIGS.values():
            f = folding[layer]
            kinds.add("parallel" if f is None or f == (n_out, n_in) else
                      "serial" if f == (1, 1) else "intermediate")
        assert kinds == {"serial", "intermediate", "parallel"}, layer


@pytest.mark.parametrize("name", CONFIGS)
def test_amaranth_sim_backpressure(name):
    folding, _, ii = CONFIGS[name]
    g = _graph(name)
    net = build_network(g, folding=folding)
    assert net.ii == ii
    x = random_vectors(g, 24, seed=2)   # led by all-min, all-max and alternating extremes
    y, log = run_stream(net, x, idle=0.3, stall=0.3, seed=3,
                        max_cycles=(len(x) + 4) * (net.ii + net.latency) * 4)
    assert_array_equal(y, golden(g, x))
    assert log["protocol"] == []


@pytest.fixture(scope="module")
def built(cache_dir):  # noqa: F811
    out = {}

    def get(name):
        if name not in out:
            g = _graph(name)
            man = generate(g, cache_dir / f"folded_{name}", f"folded_{name}",
                           folding=CONFIGS[name][0])
            out[name] = (g, cache_dir / f"folded_{name}" / man["verilog"], man)
        return out[name]
    return get


def _run(built, cache_dir, name, n, seed, idle, stall):  # noqa: F811
    g, verilog, man = built(name)
    x = extremes(StreamLayout.from_manifest(man).i, n, seed=seed)
    expected = golden(g, x)
    res = cosim(verilog, man, x, expected=expected, simulator="verilator", mode="bulk",
                build_dir=cache_dir / "builds", seed=seed, idle_prob=idle, stall_prob=stall)
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, expected)
    return res, man


@pytest.mark.cocotb
@pytest.mark.parametrize("name", CONFIGS)
def test_verilator_backpressure_and_ii(built, cache_dir, name):  # noqa: F811
    _run(built, cache_dir, name, 300, 7, 0.3, 0.3)
    a, man = _run(built, cache_dir, name, 40, 1, 0.0, 0.0)
    b, _ = _run(built, cache_dir, name, 100, 1, 0.0, 0.0)
    ii = man["ii_cycles"]
    assert ii == CONFIGS[name][2]
    assert b.cycles - a.cycles == 60 * ii, (a.cycles, b.cycles, ii)
    assert a.cycles <= 40 * ii + man["latency_cycles"] + 4
