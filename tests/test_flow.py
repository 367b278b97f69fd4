"""The shipped demo model end to end: golden == Verilator == Icarus == Amaranth simulator.

``examples/digits_mlp.npz`` is the model `ddnhw demo` trains with its defaults;
``rtl/digits_mlp/`` holds its generated Verilog and manifest.
"""
from pathlib import Path

import numpy as np
import pytest

from ddnhw import examples, flow, golden
from ddnhw.ir import load_graph

from ._tools import needs_icarus

ROOT = Path(__file__).resolve().parent.parent
MODEL = ROOT / "examples" / "digits_mlp.npz"
RTL = ROOT / "rtl" / "digits_mlp"


@pytest.fixture(scope="module")
def graph():
    return load_graph(MODEL)


def test_shipped_rtl_regenerates_byte_identical(graph, tmp_path):
    man = flow.generate(graph, tmp_path)
    for f in (man["verilog"], "manifest.json"):
        assert (tmp_path / f).read_bytes() == (RTL / f).read_bytes(), f


def test_demo_model_accuracy_in_metadata(graph):
    x, y = examples.test_inputs("mlp", graph)
    quant = float(np.mean(golden.classify(graph, x) == y))
    assert graph.meta["float_accuracy"] - quant <= 0.015, (graph.meta["float_accuracy"], quant)


def check_cosim(graph, rtl, x, simulator, tmp_path, seed, mode="bulk"):
    build = tmp_path / f"sim_{simulator}"
    res, expected = flow.cosim(graph, rtl, x, simulator=simulator, seed=seed, mode=mode,
                               build_dir=build)
    np.testing.assert_array_equal(res.outputs, expected)
    assert res.mismatches == 0
    return res


@pytest.fixture(scope="module")
def vectors(graph):
    x_test, _ = examples.test_inputs("mlp", graph)
    x_rand = flow.random_vectors(graph, 10_000, seed=7)
    return np.concatenate([x_test, x_rand])


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator", ["verilator", pytest.param("icarus", marks=needs_icarus)])
def test_rtl_equals_golden_test_split_and_10k_random(graph, vectors, simulator, tmp_path):
    res = check_cosim(graph, RTL, vectors, simulator, tmp_path, seed=3)
    assert len(res.outputs) == len(vectors) == 360 + 10_000


@pytest.mark.cocotb
def test_rtl_bfm_mode_test_split(graph, tmp_path):
    x_test, _ = examples.test_inputs("mlp", graph)
    check_cosim(graph, RTL, x_test, "verilator", tmp_path, seed=5, mode="bfm")


def test_amaranth_simulator_equals_golden_on_sample(graph):
    from ddnhw.hw.sim import run_stream
    from ddnhw.lower import build_network
    x_test, _ = examples.test_inputs("mlp", graph)
    x = np.concatenate([x_test[:40], flow.random_vectors(graph, 24, seed=1)])
    out, log = run_stream(build_network(graph), x, idle=0.3, stall=0.3, seed=11)
    np.testing.assert_array_equal(out, golden.run(graph, x))
    assert log["protocol"] == []
