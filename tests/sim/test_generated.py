"""Generated RTL (``ddnhw.lower.generate``) == golden model, on both simulators and both modes.

Random inputs with extremes (all-min, all-max, alternating) under random idle cycles and
backpressure; exact equality with ``ddnhw.golden.run``.
"""
from __future__ import annotations

import pytest
from numpy.testing import assert_array_equal

from ddnhw.golden import run as golden
from ddnhw.ir.testing import random_mlp
from sim.payload import StreamLayout
from sim.runner import cosim

from .test_runner import SIMS, _fast_verilator_builds, cache_dir, extremes  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb

SIZES = (64, 16, 10)
# Icarus is ~100x slower than Verilator on a fully unrolled MLP: fewer vectors there.
N = {("verilator", "bulk"): 3000, ("verilator", "bfm"): 300,
     ("icarus", "bulk"): 150, ("icarus", "bfm"): 80}


@pytest.fixture(scope="module")
def mlp(cache_dir):  # noqa: F811
    graph = random_mlp(0, sizes=SIZES)
    outdir = cache_dir / "mlp"
    manifest = lower.generate(graph, outdir, "mlp_top")
    return graph, outdir / manifest["verilog"], manifest


@pytest.mark.parametrize("simulator", SIMS)
@pytest.mark.parametrize("mode", ["bulk", "bfm"])
def test_mlp_matches_golden(mlp, cache_dir, simulator, mode):  # noqa: F811
    graph, verilog, manifest = mlp
    lay = StreamLayout.from_manifest(manifest)
    x = extremes(lay.i, N[(simulator, mode)], seed=11)
    expected = golden(graph, x)
    res = cosim(verilog, manifest, x, expected=expected, simulator=simulator, mode=mode,
                build_dir=cache_dir / "builds", seed=7, idle_prob=0.3, stall_prob=0.3)
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, expected)
    if manifest.get("ii_cycles") == 1:
        assert res.cycles >= len(x)
