"""Logic-domain blocks (Thermometer, LutLayer, Popcount): each spec's cycle model against the
simulator, the lowered network bit-exact with golden in the Amaranth simulator and in Verilator
under idle cycles and backpressure, the spec checks, the cost of a table by its support."""
import numpy as np
import pytest

from ddnhw import golden
from ddnhw.flow import core
from ddnhw.hw.lut import (LutLayer, LutLayerSpec, PopcountSpec, ThermometerSpec,
                          table_support)
from ddnhw.ir import IntType
from ddnhw.ir.testing import random_lut
from ddnhw.lower import generate, plan_network

from .test_protocol import lockstep

RNG = np.random.default_rng(0)
SPECS = {
    "Thermometer": lambda: ThermometerSpec([[0, 3, 9], [16, 2, 7]], IntType(False, 4)),
    "Thermometer_signed": lambda: ThermometerSpec([[-3, 0, 2]], IntType(True, 6)),
    "LutLayer": lambda: LutLayerSpec(RNG.integers(0, 9, (5, 4)), RNG.integers(0, 2, (5, 16)), 9),
    "Popcount": lambda: PopcountSpec([0, 1, 0, 0, 1, -1, 0, 0, 1, 0], 3, IntType(False, 3),
                                     regs_every=1),
    "Popcount_2": lambda: PopcountSpec([0] * 13 + [1] * 2, 2, IntType(False, 4)),
}


@pytest.mark.parametrize("name", SPECS)
@pytest.mark.parametrize("p", [(0.6, 0.6), (1.0, 0.3), (0.3, 1.0)])
def test_cycle_model_matches_simulator(name, p):
    spec = SPECS[name]()
    assert spec.ii == 1 and spec.latency >= 1
    lockstep(spec, 200, seed=len(name), p_valid=p[0], p_ready=p[1])


def test_popcount_latency():
    # 13 bits: levels 13 -> 5 -> 3 -> 2 -> 1: 4 levels, a register every 2 levels -> 2 stages
    assert SPECS["Popcount_2"]().levels == 4 and SPECS["Popcount_2"]().latency == 2
    assert SPECS["Popcount"]().latency == SPECS["Popcount"]().levels == 2


@pytest.mark.parametrize("seed", range(4))
def test_network_bit_exact_in_amaranth_sim(seed):
    g = random_lut(seed, in_signed=bool(seed % 2), layers=((14, 2 + seed), (9, 6), (6, 3)))
    x = core.random_vectors(g, 150, seed)
    r = core.sim_check(g, x, seed=seed, idle=0.3, stall=0.3)
    assert r["mismatches"] == 0 and r["ii_cycles"] == 1
    np.testing.assert_array_equal(r["outputs"], golden.run(g, x))
    # a pipeline register after every table layer: latency counts every block
    assert plan_network(g).latency == 1 + 3 + 1


@pytest.mark.cocotb
def test_network_cosim_verilator(tmp_path):
    from ddnhw.host.cosim import cosim
    g = random_lut(11, features=6, levels=4, layers=((24, 6), (12, 5), (9, 4)), in_bits=5)
    man = generate(g, tmp_path / "rtl")
    x = core.random_vectors(g, 2000, 5)
    r = cosim(tmp_path / "rtl" / "ddnhw_top.v", man, x, expected=golden.run(g, x), seed=5,
              idle_prob=0.3, stall_prob=0.3, build_dir=tmp_path / "build")
    assert r.mismatches == 0, r.message
    np.testing.assert_array_equal(r.outputs, golden.run(g, x))


@pytest.mark.parametrize("make, match", [
    (lambda: LutLayerSpec(np.zeros((2, 7), int), np.zeros((2, 128), int), 8),
     "fan-in k = 7 is out of range"),
    (lambda: LutLayerSpec(np.zeros((2, 3), int), np.zeros((2, 4), int), 8),
     r"table has shape \(2, 4\), but 2 neurons of fan-in 3 need \(2, 8\)"),
    (lambda: LutLayerSpec(np.full((2, 3), 8), np.zeros((2, 8), int), 8),
     "connections must index the 8 input bits"),
    (lambda: LutLayer(np.zeros((2, 3), int), np.full((2, 8), 3), 8), "0 or 1"),
    (lambda: PopcountSpec([0, 0, 0, 0], 1, IntType(False, 2)), "cannot hold a count of 4"),
    (lambda: PopcountSpec([0, 2], 2, IntType(False, 2)), r"groups must be in -1\.\.1"),
])
def test_spec_checks(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_table_support_and_cost():
    # k = 3: constant, x0, x1 & x2, and a function of all three
    t = np.array([[1] * 8, [0, 1] * 4, [0, 0, 0, 0, 0, 0, 1, 1], [0, 1, 1, 0, 1, 0, 0, 1]])
    assert table_support(t, 3).tolist() == [0, 1, 2, 3]
    spec = LutLayerSpec(np.tile([0, 1, 2], (4, 1)), t, 3)
    assert spec.estimate["luts"] == 2          # the constant and the wire cost nothing
