"""A folded network (FoldedDense layers, fused requantizer) in Verilator == golden model under
backpressure, and its measured cycles per inference at full rate == the manifest's II."""
from __future__ import annotations

import pytest
from numpy.testing import assert_array_equal

from ddnhw.golden import run as golden
from ddnhw.ir.testing import random_mlp
from sim.payload import StreamLayout
from sim.runner import cosim

from .test_runner import _fast_verilator_builds, cache_dir, extremes  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb

# fc0 6x12 at (pe, simd) = (2, 3): II 12 (with its requantizer fused); fc1 4x6 at (1, 2): II 12
FOLDING = {"fc0": (2, 3), "fc1": (1, 2)}


@pytest.fixture(scope="module")
def folded(cache_dir):  # noqa: F811
    graph = random_mlp(3, sizes=(12, 6, 4))
    outdir = cache_dir / "folded"
    manifest = lower.generate(graph, outdir, "folded_top", folding=FOLDING)
    assert manifest["ii_cycles"] == 12
    return graph, outdir / manifest["verilog"], manifest


def _run(folded, cache_dir, n, seed, idle, stall):  # noqa: F811
    graph, verilog, manifest = folded
    x = extremes(StreamLayout.from_manifest(manifest).i, n, seed=seed)
    expected = golden(graph, x)
    res = cosim(verilog, manifest, x, expected=expected, simulator="verilator", mode="bulk",
                build_dir=cache_dir / "builds", seed=seed, idle_prob=idle, stall_prob=stall)
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, expected)
    return res


def test_folded_backpressure(folded, cache_dir):  # noqa: F811
    _run(folded, cache_dir, 400, 5, 0.3, 0.3)


def test_folded_cycles_equal_ii(folded, cache_dir):  # noqa: F811
    # at full rate every further inference costs exactly II cycles
    ii = folded[2]["ii_cycles"]
    a = _run(folded, cache_dir, 50, 1, 0.0, 0.0)
    b = _run(folded, cache_dir, 150, 1, 0.0, 0.0)
    assert b.cycles - a.cycles == 100 * ii, (a.cycles, b.cycles, ii)
    assert a.cycles <= 50 * ii + folded[2]["latency_cycles"] + 4
