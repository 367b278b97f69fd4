"""CNN graphs lowered to a Network (pixels in, logits out): Amaranth simulator == golden under
random idle/stall, unrolled and folded convolutions; Verilog generation."""
import json

import numpy as np
import pytest

from ddnhw import golden
from ddnhw.hw.sim import run_beats
from ddnhw.ir.testing import random_cnn
from ddnhw.lower import build_network, generate


def check_network(g, images=3, idle=0.3, stall=0.3, seed=0, **options):
    t = g.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, (images,) + g.input.shape)
    net = build_network(g, **options)
    got, log = run_beats(net, x.reshape(-1, g.input.shape[-1]), images, idle=idle, stall=stall,
                         seed=seed)
    np.testing.assert_array_equal(got, golden.run(g, x))
    assert not log["protocol"]
    return net, log


CASES = [dict(), dict(stride=2), dict(depthwise=True), dict(pool="avg", padding=0),
         dict(in_shape=(8, 8, 1), channels=4, pool="max"), dict(pool=None, kernel=2)]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_cnn_network(case):
    check_network(random_cnn(case, **CASES[case]), seed=case)


def test_folded_conv():
    g = random_cnn(7, in_shape=(5, 5, 2), channels=3, pool="max")
    check_network(g, folding={"conv0": (1, 6), "fc": (2, 9)}, seed=7)


def test_generate_cnn(tmp_path):
    g = random_cnn(2, in_shape=(6, 6, 1), channels=2)
    m1 = generate(g, tmp_path / "a")
    generate(g, tmp_path / "b")
    assert (tmp_path / "a" / "ddnhw_top.v").read_bytes() == \
        (tmp_path / "b" / "ddnhw_top.v").read_bytes()
    assert m1["input"]["beats"] == 36 and m1["input"]["lanes"] == 1
    assert [layer["op"] for layer in m1["layers"] if layer["op"] != "fifo"][:3] == ["conv2d", "requant", "maxpool2d"]
    assert json.loads((tmp_path / "a" / "manifest.json").read_text())["input"]["shape"] == [6, 6, 1]


@pytest.mark.parametrize("folding", [None, {"conv0": (1, 6), "fc": (2, 9)}, {"conv0": (1, 1)}])
def test_conv_ii_is_per_image(folding):
    # a folded conv's II counts every window of the image: full-rate cycles per image == II
    g = random_cnn(7, in_shape=(5, 5, 2), channels=3, pool="max")
    net = build_network(g, **({"folding": folding} if folding else {}))
    rng = np.random.default_rng(0)
    last = []
    for n in (3, 6):
        x = rng.integers(0, 16, (n,) + g.input.shape)
        _, log = run_beats(net, x.reshape(-1, 2), n, max_cycles=50_000)
        last.append(log["out"][-1])
    assert (last[1] - last[0]) == 3 * net.ii
