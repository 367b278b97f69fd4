"""Property sample through Verilator: random MLP graphs (as in test_network) lowered to Verilog,
cosimulated in bulk mode under heavy backpressure, == golden. Each example is one Verilator
build that is reused for two backpressure settings."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ddnhw import golden
from ddnhw.host.cosim import cosim

from ..sim.test_runner import _fast_verilator_builds, cache_dir  # noqa: F401
from .strategies import budget, count, vectors
from .test_network import mlp_graphs, network_options

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb


@budget(2)
@given(data=st.data(), seed=st.integers(0, 1000))
def test_verilator_network_equals_golden(data, seed, cache_dir, tmp_path_factory):  # noqa: F811
    graph = data.draw(mlp_graphs(max_layers=3, max_width=10), label="graph")
    opts = data.draw(network_options(graph), label="options")
    count("Network[verilator]")
    out = tmp_path_factory.mktemp("prop_cosim")
    manifest = lower.generate(graph, out, "prop_top", **opts)
    x = vectors(graph.input.dtype, graph.input.shape[0], 2000, seed)
    expected = golden.run(graph, x)
    for idle, stall in ((0.0, 0.0), (0.5, 0.7)):
        res = cosim(out / manifest["verilog"], manifest, x, expected=expected, seed=seed,
                    idle_prob=idle, stall_prob=stall, build_dir=cache_dir / "builds")
        assert res.mismatches == 0, res.message
        np.testing.assert_array_equal(res.outputs, expected)
