import json

import numpy as np
import pytest

from ddnhw.golden import run
from ddnhw.hw.sim import run_stream
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network, generate


def _vectors(t, lanes, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(t.min, t.max + 1, size=(n, lanes))
    return np.concatenate([np.full((1, lanes), t.min), np.full((1, lanes), t.max), x])


def check_folded_network(seed, sizes, folding, n=20, idle=0.3, stall=0.3, **options):
    g = random_mlp(seed, sizes=sizes)
    net = build_network(g, folding=folding, **options)
    x = _vectors(g.input.dtype, sizes[0], n, seed)
    y, log = run_stream(net, x, idle=idle, stall=stall, seed=seed,
                        max_cycles=(len(x) + 4) * (net.ii + net.latency) * 4)
    np.testing.assert_array_equal(y, run(g, x))
    assert log["protocol"] == []
    return net, log


# 12-6-4: fc0 is 6x12, fc1 is 4x6; PE=1/SIMD=1, intermediate, fully parallel, unrolled (absent)
FOLDINGS = [
    {"fc0": (1, 1), "fc1": (1, 1)},
    {"fc0": (2, 3), "fc1": (2, 2)},
    {"fc0": (6, 12), "fc1": (4, 6)},
    {"fc0": (3, 4)},                      # fc1 fully unrolled Dense
    {"fc1": (1, 3)},                      # fc0 fully unrolled Dense
]


@pytest.mark.parametrize("folding", FOLDINGS)
def test_folded_network_exact(folding):
    check_folded_network(1, (12, 6, 4), folding)


@pytest.mark.parametrize("folding", FOLDINGS[:2])
def test_folded_network_unfused(folding):
    # the requant node as its own Requantizer block after the folded layer
    net, _ = check_folded_network(3, (12, 6, 4), folding, fuse_requant=False)
    # the Requantizer (II 1) feeds a slower layer: a FIFO between them (see test_fifo.py)
    assert [type(b).__name__ for b in net.blocks] == ["FoldedDense", "Requantizer", "StreamFIFO",
                                                      "FoldedDense"]


def test_folded_network_fused_layers():
    net, _ = check_folded_network(4, (12, 6, 5, 4), {"fc0": (2, 3), "fc2": (2, 5)})
    assert [type(b).__name__ for b in net.blocks] == [
        "FoldedDense", "Dense", "Requantizer", "StreamFIFO", "FoldedDense"]
    rq = net.layers[1]
    assert (rq["name"], rq["fused_into"], rq["latency"]) == ("fc0_rq", "fc0", 0)
    assert net.layers[0]["fuses"] == "fc0_rq"
    assert net.latency == sum(b.latency for b in net.blocks)


@pytest.mark.parametrize("folding", [FOLDINGS[0], FOLDINGS[1], FOLDINGS[3]])
def test_folded_network_full_rate(folding):
    # measured cycles per inference at full rate == the stated network II
    net, log = check_folded_network(2, (12, 6, 4), folding, n=10, idle=0.0, stall=0.0)
    assert net.ii == max(l["ii"] for l in net.layers)
    assert set(np.diff(log["in"])) == {net.ii}
    assert set(np.diff(log["out"])) == {net.ii}


def test_folded_manifest(tmp_path):
    g = random_mlp(5, sizes=(8, 4, 3))
    man = generate(g, tmp_path, folding={"fc0": (2, 4)})
    assert json.loads((tmp_path / "manifest.json").read_text()) == man
    fc0, rq, fc1 = man["layers"]
    assert (fc0["block"], fc0["folded"], fc0["pe"], fc0["simd"], fc0["ii"]) == (
        "FoldedDense", True, 2, 4, 4)
    assert (fc1["block"], fc1["folded"], fc1["pe"], fc1["simd"], fc1["ii"]) == (
        "Dense", False, 3, 4, 1)
    assert man["ii_cycles"] == 4
    for layer in man["layers"]:
        assert set(layer["estimate"]) == {"luts", "ffs", "dsps", "brams"}
    assert set(man["estimate"]) == {"luts", "ffs", "dsps", "brams"}
    # deterministic
    man2 = generate(g, tmp_path / "b", folding={"fc0": (2, 4)})
    assert (tmp_path / "b" / "ddnhw_top.v").read_text() == (tmp_path / "ddnhw_top.v").read_text()


def test_folding_errors():
    g = random_mlp(5, sizes=(8, 4, 3))
    with pytest.raises(ValueError, match="not a foldable layer"):
        build_network(g, folding={"fc0_rq": (1, 1)})
    with pytest.raises(ValueError, match="pe, simd"):
        build_network(g, folding={"fc0": 3})
    with pytest.raises(ValueError, match="simd"):
        build_network(g, folding={"fc0": (1, 9)})
