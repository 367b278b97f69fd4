"""Automatic folding of convolution layers: a conv2d's options fold its window matrix, their II
is per image (the window generator's, with the MAC once per window) and their estimate includes
the window generator; the planned CNN is exact in the Amaranth simulator; a board budget that
leaves nothing at the margin falls back to the smaller one."""
import numpy as np
import pytest

from ddnhw import DdnhwError, golden
from ddnhw.hw.sim import run_beats
from ddnhw.ir.testing import random_cnn
from ddnhw.lower import build_network, plan_network
from ddnhw.lower.estimate import estimate_block
from ddnhw.lower.fold import layer_options, plan_folding
from ddnhw.lower.registry import window_for


@pytest.fixture(scope="module")
def cnn():
    return random_cnn(11, in_shape=(6, 6, 2), channels=4)


def test_conv_options_per_image(cnn):
    conv = cnn.node("conv0")
    rq = next(n for n in cnn.nodes if n.inputs == conv.outputs)     # fused when folded
    opts = layer_options(cnn, conv, "ice40", rq)
    win = window_for(cnn, conv)
    win_luts = estimate_block(win, "ice40")["luts"]
    folds = {o["fold"] for o in opts}
    assert None in folds and (1, 1) in folds and (4, 18) not in folds   # 4 x (3*3*2)
    for o in opts:
        net = plan_network(cnn, folding={"conv0": o["fold"]})
        layer = next(x for x in net.layers if x["name"] == "conv0")
        assert o["ii"] == layer["ii"], o["fold"]           # per image, as the lowering says
        assert o["estimate"]["luts"] > win_luts
        if o["fold"] is not None:
            pe, simd = o["fold"]
            assert o["ii"] >= win.beats_out * (18 // simd) * (4 // pe)


def test_planned_cnn_folds_conv_and_is_exact():
    g = random_cnn(12, in_shape=(6, 6, 2), channels=8)   # folding its conv saves logic
    cheapest = plan_folding(g, target_ii=10 ** 9)
    assert cheapest["folding"]["conv0"] == (1, 1)
    # 150 LUTs more than the cheapest (after the 15% margin): a faster conv folding fits
    plan = plan_folding(g, max_luts=int((cheapest["estimate"]["luts"] + 150) / 0.85))
    assert plan["folding"]["conv0"] not in (None, (1, 1)) and plan["ii"] < cheapest["ii"]
    net = build_network(g, folding=plan["folding"])
    assert net.ii == plan["ii"]
    x = np.random.default_rng(3).integers(0, 16, (3,) + g.input.shape)
    got, log = run_beats(net, x.reshape(-1, 2), 3, idle=0.2, stall=0.2, seed=1,
                         max_cycles=100_000)
    np.testing.assert_array_equal(got, golden.run(g, x))
    assert not log["protocol"]


def test_fallback_margin(cnn):
    need = plan_folding(cnn, target_ii=10 ** 9)["estimate"]["luts"]
    budget = int(need / 0.9)          # fits with 7% held back, not with 15%
    with pytest.raises(DdnhwError, match="nothing fits"):
        plan_folding(cnn, max_luts=budget)
    plan = plan_folding(cnn, max_luts=budget, fallback_margin=0.07)
    assert plan["margin"] == 0.07 and plan["estimate"]["luts"] <= budget * 0.93


def test_no_fifo_after_flatten(cnn):
    net = plan_network(cnn, folding={"fc": (1, 1)})
    assert not any(layer.get("after") == "flat" for layer in net.layers)
