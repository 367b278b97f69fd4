"""The seed CNN's code path at reduced size (12 x 12 x 1 image, conv 3x3 x32, maxpool 2,
flatten, dense 10): the flatten streams into its dense layer (StreamDense), the pool keeps its
rows in memory (RowPool), the planner puts the dense weights in SPRAM when block RAM cannot
hold them, and the design is bit-exact in the Amaranth simulator (SPRAM model) and in
Verilator (SB_SPRAM256KA instances with yosys' cell model, weights loaded through the w
stream) on whole images under backpressure. The full-size design: bench/seed_cnn.py."""
import json

import numpy as np
import pytest

from ddnhw import golden
from ddnhw.hw.family import Budget
from ddnhw.hw.sim import run_beats
from ddnhw.ir.testing import random_cnn
from ddnhw.lower import build_network, generate, plan_network
from ddnhw.lower.stream import stream_flatten
from ddnhw.passes.fold import select

UP5K = dict(luts=5280, ffs=5280, dsps=8, spram=4)


@pytest.fixture(scope="module")
def graph():
    return random_cnn(3, in_shape=(12, 12, 1), channels=32, padding=0, n_out=10)


@pytest.fixture(scope="module")
def planned(graph):
    """Planned for a UP5K whose block RAM cannot hold the dense weights (12 EBRs)."""
    return select(graph, Budget("ice40", brams=12, **UP5K))


def _images(graph, n, seed):
    rng = np.random.default_rng(seed)
    t = graph.input.dtype
    x = rng.integers(t.min, t.max + 1, size=(n, 12, 12, 1))
    x[0], x[1] = t.min, t.max
    return x


def test_structure_and_spram_placement(graph, planned):
    assert stream_flatten(graph) == {"flat": "fc"}
    ga, plan = planned
    assert plan["hw"] == {"fc": {"mem": "spram"}} and plan["estimate"]["spram"] == 1
    net = plan_network(ga)
    blocks = {l["name"]: l for l in net.layers}
    assert blocks["pool0"]["block"] == "RowPool"
    assert blocks["fc"]["block"] == "StreamDense" and blocks["fc"]["mem"] == "spram"
    assert blocks["flat"]["fused_into"] == "fc"
    # with the UP5K's 30 EBRs the weights stay in block RAM (no load after reset needed)
    _, p30 = select(graph, Budget("ice40", brams=30, **UP5K))
    assert not p30.get("hw") and p30["estimate"]["spram"] == 0
    # the ECP5 has no SPRAM: never a candidate
    _, pe = select(graph, Budget("ecp5", luts=6000, brams=20))
    assert not pe.get("hw")


def test_amaranth_sim_bit_exact(graph, planned):
    ga, _ = planned
    net = build_network(ga, spram_model=True)
    x = _images(graph, 2, 1)
    fc = net.blocks_by_node["fc"]
    y, log = run_beats(net, x.reshape(-1, 1), len(x), idle=0.2, stall=0.3, seed=2,
                       load=fc.w_init, max_cycles=len(x) * net.ii * 4 + 20000)
    np.testing.assert_array_equal(y, golden.run(graph, x))
    assert log["protocol"] == []


@pytest.mark.cocotb
def test_verilator_cosim_spram(graph, planned, tmp_path):
    from ddnhw.host.cosim import cosim
    ga, _ = planned
    man = generate(ga, tmp_path, name="seed_small")
    assert man["load"]["words"] == len(plan_network(ga).blocks_by_node["fc"].w_init)
    assert "SB_SPRAM256KA" in (tmp_path / "seed_small.v").read_text()
    x = _images(graph, 12, 4)
    res = cosim(tmp_path / "seed_small.v", tmp_path / "manifest.json", x,
                expected=golden.run(graph, x), seed=5, idle_prob=0.3, stall_prob=0.3)
    assert res.mismatches == 0, res.message
    # a wrong weight word is seen: the load really feeds the SPRAM
    words = (tmp_path / "seed_small_load.hex").read_text().split()
    words[0] = f"{int(words[0], 16) ^ 0x7:0{len(words[0])}x}"
    (tmp_path / "seed_small_load.hex").write_text("\n".join(words) + "\n")
    bad = cosim(tmp_path / "seed_small.v", tmp_path / "manifest.json", x,
                expected=golden.run(graph, x), seed=5, idle_prob=0.3, stall_prob=0.3)
    assert bad.mismatches > 0
    assert json.loads((tmp_path / "manifest.json").read_text())["estimate"]["spram"] == 1
