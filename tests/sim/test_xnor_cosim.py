"""A binary-weight, bipolar-activation MLP (XnorDense in the bipolar layers) in Verilator ==
golden model under backpressure."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from numpy.testing import assert_array_equal

from ddnhw.golden import run as golden
from ddnhw.quant.schemes import ActSpec, SchemeMLP, WeightSpec, export_scheme_mlp
from ddnhw.host.cosim import cosim

from .test_runner import _fast_verilator_builds, cache_dir  # noqa: F401

import ddnhw.lower as lower
pytestmark = pytest.mark.cocotb


def test_binary_bipolar_verilator(cache_dir):  # noqa: F811
    torch.manual_seed(0)
    m = SchemeMLP((16, 12, 8, 4), weights=WeightSpec("binary", 1), acts=ActSpec("bipolar", 2))
    m.calibrate(torch.rand(64, 16))
    graph = export_scheme_mlp(m)
    manifest = lower.generate(graph, cache_dir / "xnor", "xnor_top")
    assert [l["block"] for l in manifest["layers"]].count("XnorDense") == 2
    x = np.random.default_rng(0).integers(0, 16, size=(300, 16))
    x[:2] = [[0] * 16, [15] * 16]
    expected = golden(graph, x)
    res = cosim(cache_dir / "xnor" / manifest["verilog"], manifest, x, expected=expected,
                simulator="verilator", mode="bulk", build_dir=cache_dir / "builds", seed=1,
                idle_prob=0.3, stall_prob=0.4)
    assert res.mismatches == 0, res.message
    assert_array_equal(res.outputs, expected)
