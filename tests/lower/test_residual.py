"""Residual graphs (fork -> main branch + skip FIFO -> add) lowered to a Network: Amaranth
simulator == golden under random idle/stall, unrolled and folded main branches; the skip FIFO's
minimal depth (the main branch's lead) runs and one less deadlocks; manifest entries; errors
for unsupported topologies."""
import json

import numpy as np
import pytest

from ddnhw import golden
from ddnhw.hw.sim import run_beats
from ddnhw.ir import Graph, IntType, chain_graph
from ddnhw.ir.testing import random_residual_cnn
from ddnhw.lower import build_network, generate
from ddnhw.lower.residual import branch_lead, branch_need

from .test_cnn import check_network

CASES = [dict(), dict(stem=3), dict(kernel=1, convs=2, in_shape=(3, 4, 3)),
         dict(kernel=5, convs=1, in_shape=(4, 6, 1)), dict(convs=3, in_shape=(4, 4, 2), stem=2),
         dict(in_bits=2, w_bits=3, a_bits=6, in_shape=(3, 3, 4))]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_residual_network(case):
    g = random_residual_cnn(case, **CASES[case])
    check_network(g, images=3, seed=case)
    check_network(g, images=2, seed=case, fifos="none")


@pytest.mark.parametrize("folding", [{"res_conv0": (1, 3)}, {"res_conv1": (2, 2), "fc": (1, 5)},
                                     {"stem": (3, 1), "res_conv0": (2, 9)}])
def test_residual_folded_main_branch(folding):
    g = random_residual_cnn(7, stem=3, in_shape=(4, 4, 2))
    net, _ = check_network(g, images=2, seed=1, folding=folding)
    for name, (pe, simd) in folding.items():
        b = net.blocks_by_node[name]
        mac = b.blocks[-1] if hasattr(b, "blocks") else b      # a conv is window + MAC
        assert type(mac).__name__ == "FoldedDense" and (mac.pe, mac.simd) == (pe, simd)


def test_lead_formula():
    # 5x5 image, two 3x3 same-padded convs: the second conv's first output row needs rows 0-1
    # of the first conv's output, whose row 1 needs input rows 0-2: 15 beats for output 1
    g = random_residual_cnn(0, in_shape=(5, 5, 2))
    net = build_network(g, fifos="none")
    main = [net.blocks_by_node[n] for n in ("res_conv0", "res_conv0_rq", "res_conv1")]
    need = branch_need(main)
    assert need[0] == 15 and len(need) == 25 and need[-1] == 25
    assert branch_lead(main) == 14
    skip = next(layer for layer in net.layers if layer["name"] == "res_add_skip")
    assert skip["lead"] == 14 and skip["depth"] >= 14


@pytest.mark.parametrize("fifos", ["none", "auto"])
def test_minimal_skip_depth_runs_and_one_less_deadlocks(fifos):
    g = random_residual_cnn(0, in_shape=(5, 5, 2))
    check_network(g, images=3, seed=2, fifos=fifos, skip_fifos={"res_add": 14})
    x = np.random.default_rng(0).integers(0, 16, (2,) + g.input.shape)
    net = build_network(g, fifos=fifos, skip_fifos={"res_add": 13})
    with pytest.raises(TimeoutError, match="0 of 2 outputs"):
        run_beats(net, x.reshape(-1, 2), 2, idle=0.2, stall=0.2, seed=0, max_cycles=3000)


def _vector_residual(seed):
    rng = np.random.default_rng(seed)
    act = IntType(False, 4, 2)

    def dense(n_in, n_out, rq):
        layer = {"weight": rng.integers(-7, 8, (n_out, n_in)), "bias": rng.integers(-20, 20,
                                                                                    n_out),
                 "weight_frac": 1}
        if rq:
            layer["requant"] = {"multiplier": rng.integers(1, 4, n_out), "lo": 0, "hi": 15,
                                "shift": rng.integers(2, 5, n_out), "out_type": act}
        return layer

    return chain_graph(IntType(False, 4, 3), (6,), [
        {"op": "residual", "name": "res", "body": [dense(6, 4, True), dense(4, 6, False)],
         "requant": {"multiplier": 1, "shift": 3, "lo": 0, "hi": 15, "out_type": act}},
        dense(6, 3, False)])


def test_vector_branch_needs_no_skip_fifo():
    # dense layers emit one vector per vector: lead 0, the skip may be a plain wire
    g = _vector_residual(0)
    net = build_network(g, skip_fifos={"res_add": 0})
    assert not any(layer["name"] == "res_add_skip" for layer in net.layers)
    x = np.random.default_rng(1).integers(0, 16, (30, 6))
    for options in ({"skip_fifos": {"res_add": 0}}, {}):
        got, log = run_beats(build_network(g, **options), x, 30, idle=0.3, stall=0.3, seed=2)
        np.testing.assert_array_equal(got, golden.run(g, x))
        assert not log["protocol"]


def test_pointwise_conv_branch_lead_is_a_row():
    # the sliding window emits a row of windows once its rows are in: even 1x1 convs lead
    # by a row less one beat, and without a skip FIFO the branch deadlocks
    g = random_residual_cnn(3, kernel=1, convs=2, in_shape=(3, 4, 3))
    net = build_network(g)
    assert next(la for la in net.layers if la["name"] == "res_add_skip")["lead"] == 3
    check_network(g, images=2, seed=4, skip_fifos={"res_add": 3})
    x = np.zeros((1, 3, 4, 3), dtype=np.int64)
    with pytest.raises(TimeoutError, match="0 of 1 outputs"):
        run_beats(build_network(g, skip_fifos={"res_add": 2}), x.reshape(-1, 3), 1,
                  max_cycles=500)


def test_manifest_entries(tmp_path):
    g = random_residual_cnn(1, stem=2)
    man = generate(g, tmp_path)
    assert json.loads((tmp_path / "manifest.json").read_text()) == man
    by = {layer["name"]: layer for layer in man["layers"]}
    names = [layer["name"] for layer in man["layers"]]
    assert by["stem_rq_fork"]["op"] == "fork"
    assert by["stem_rq_fork"]["consumers"] == ["res_conv0", "res_add"]
    assert by["res_add_skip"]["op"] == "fifo" and by["res_add_skip"]["after"] == "stem_rq_fork"
    assert by["res_add"]["block"] == "AlignedAdd"
    assert names.index("stem_rq") < names.index("stem_rq_fork") < names.index("res_conv0")
    assert names.index("res_add_skip") < names.index("res_add")
    for layer in man["layers"]:
        assert {"latency", "ii", "estimate"} <= set(layer)
    assert man["estimate"]["ffs"] >= by["res_add_skip"]["estimate"]["ffs"] > 0
    # deterministic: the same graph and options give the same Verilog
    text = (tmp_path / "ddnhw_top.v").read_text()
    generate(g, tmp_path / "again")
    assert (tmp_path / "again" / "ddnhw_top.v").read_text() == text


def test_residual_manifest_carries_conv_folding(tmp_path):
    # every layer's entry comes from one function: a residual graph's conv layers have their
    # folded/pe/simd like a chain's, folded or not
    g = random_residual_cnn(7, stem=3, in_shape=(4, 4, 2))
    man = generate(g, tmp_path, folding={"stem": (3, 1), "res_conv0": (2, 9)})
    by = {layer["name"]: layer for layer in man["layers"]}
    assert (by["stem"]["folded"], by["stem"]["pe"], by["stem"]["simd"]) == (True, 3, 1)
    assert (by["res_conv0"]["folded"], by["res_conv0"]["pe"]) == (True, 2)
    assert by["res_conv0"]["fuses"] == "res_conv0_rq"
    assert by["res_conv0_rq"]["fused_into"] == "res_conv0"
    assert by["res_conv1"]["folded"] is False and by["res_conv1"]["pe"] > 0
    assert {"folded", "pe", "simd"} <= set(by["fc"])


def _two_branch_graph():
    t = IntType(False, 4)
    g = Graph()
    for name in ("x", "a", "b"):
        g.add_tensor(name, (3,), t)
    g.add_tensor("y", (3,), IntType(False, 5))
    g.inputs, g.outputs = ["x"], ["y"]
    for name in ("a", "b"):
        g.add_node(f"rq_{name}", "requant", ["x"], [name], multiplier=np.ones(3, int),
                   shift=np.zeros(3, int), lo=0, hi=15)
    g.add_node("sum", "add", ["a", "b"], ["y"], shift0=0, shift1=0)
    return g.check()


def test_unsupported_topologies():
    with pytest.raises(ValueError, match="node 'sum': only residual adds"):
        build_network(_two_branch_graph())
    g = random_residual_cnn(0)
    with pytest.raises(ValueError, match="skip_fifos names 'nope'"):
        build_network(g, skip_fifos={"nope": 4})
    with pytest.raises(ValueError, match=r"skip_fifos\['res_add'\] must be 0 or a depth >= 2"):
        build_network(g, skip_fifos={"res_add": 1})
    g1 = random_residual_cnn(1, stem=2)
    with pytest.raises(ValueError, match="fifos names 'stem_rq', which is not a block followed"):
        build_network(g1, fifos={"stem_rq": 2})      # it feeds a fork
