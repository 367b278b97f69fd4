"""FIFOs the lowering inserts between layers of different rates: depths from the schedule,
recorded in the manifest; bit-exact with a bursty producer and a slow consumer, no deadlock, and
at full rate the cycles per inference equal the network's II."""
import json

import numpy as np
import pytest

from ddnhw.golden import run
from ddnhw.hw.sim import run_stream
from ddnhw.ir.testing import random_mlp
from ddnhw.lower import build_network, generate
from ddnhw.passes.fifo import FIFO_MAX_DEPTH, fifo_depth

SIZES = (16, 12, 8, 4)
# fc0 II 1 -> FIFO -> fc1 II 96 -> fc2 II 6
FAST_THEN_SLOW = {"fc0": (12, 16), "fc1": (1, 1), "fc2": (2, 3)}


@pytest.mark.parametrize("ii_p,ii_c,depth", [
    (4, 4, 0), (9, 2, 0), (96, 1, 0),          # producer not faster: a FIFO cannot help
    (1, 2, 3), (1, 96, FIFO_MAX_DEPTH),        # II-1 producer: >= 3 beats keep its rate
    (4, 8, 2), (4, 12, 3), (2, 7, 4), (3, 300, FIFO_MAX_DEPTH)])
def test_fifo_depth(ii_p, ii_c, depth):
    assert fifo_depth(ii_p, ii_c) == depth


def _vectors(g, n, seed):
    t = g.input.dtype
    x = np.random.default_rng(seed).integers(t.min, t.max + 1, size=(n, g.input.shape[0]))
    x[0], x[1] = t.min, t.max
    return x


def check_network(folding, idle, stall, n=24, seed=0, **options):
    g = random_mlp(31, sizes=SIZES)
    net = build_network(g, folding=folding, **options)
    x = _vectors(g, n, seed)
    y, log = run_stream(net, x, idle=idle, stall=stall, seed=seed,
                        max_cycles=(n + 4) * (net.ii + net.latency) * 8)
    np.testing.assert_array_equal(y, run(g, x))   # also: all n came out (no deadlock)
    assert log["protocol"] == []
    return net, log


def test_fifo_inserted_where_producer_is_faster():
    net, _ = check_network(FAST_THEN_SLOW, 0.0, 0.0, n=4)
    assert net.names == ["fc0", "fc0_fifo", "fc1", "fc2"]
    fifo = [layer for layer in net.layers if layer["op"] == "fifo"]
    assert fifo == [dict(fifo[0], name="fc0_fifo", after="fc0", depth=FIFO_MAX_DEPTH, ii=1,
                         latency=2)]
    assert net.layers.index(fifo[0]) == 2   # after fc0 and its fused requantizer
    assert net.latency == sum(b.latency for b in net.blocks)


BURSTY = lambda c: (c // 50) % 3 != 0      # noqa: E731  valid in 50-cycle bursts, 100 idle
SLOW = lambda c: c % 11 != 0               # noqa: E731  ready 1 cycle in 11


@pytest.mark.parametrize("folding", [
    FAST_THEN_SLOW,
    {"fc0": (5, 6), "fc1": None, "fc2": (1, 1)},     # unrolled fc1 + Requantizer -> FIFO -> fc2
    {"fc0": (1, 1), "fc1": (3, 5), "fc2": (4, 8)},   # slow first: no FIFO
])
@pytest.mark.parametrize("idle,stall", [(BURSTY, SLOW), (BURSTY, 0.5), (0.3, SLOW),
                                        (0.3, 0.3)])
def test_bursty_producer_slow_consumer_exact(folding, idle, stall):
    check_network(folding, idle, stall, seed=hash((str(folding), idle is BURSTY)) % 1000)


@pytest.mark.parametrize("fifos", ["auto", "none"])
def test_full_rate_cycles_per_inference_equal_ii(fifos):
    net, log = check_network(FAST_THEN_SLOW, 0.0, 0.0, n=20, fifos=fifos)
    assert net.ii == 96
    assert set(np.diff(log["out"])) == {net.ii}
    # the pipeline's buffers (FIFO, registers) fill at fc0's rate first, then fc1 sets it
    assert set(np.diff(log["in"])[12:]) == {net.ii}


def test_fifo_absorbs_a_burst():
    # a burst at the input is taken at fc0's rate until the FIFO is full, not at fc1's
    taken = {}
    for fifos in ("auto", "none"):
        _, log = check_network(FAST_THEN_SLOW, lambda c: 20 <= c < 400, 0.0, n=16,
                               fifos=fifos)
        taken[fifos] = sum(c < 20 for c in log["in"])
    assert taken["auto"] >= taken["none"] + FIFO_MAX_DEPTH - 1, taken


def test_manifest_records_fifos(tmp_path):
    g = random_mlp(31, sizes=SIZES)
    man = generate(g, tmp_path, folding=FAST_THEN_SLOW)
    assert json.loads((tmp_path / "manifest.json").read_text()) == man
    fifo = [layer for layer in man["layers"] if layer["op"] == "fifo"]
    assert [(f["name"], f["after"], f["depth"], f["block"]) for f in fifo] == [
        ("fc0_fifo", "fc0", FIFO_MAX_DEPTH, "StreamFIFO")]
    assert fifo[0]["estimate"]["ffs"] > 0
    assert man["estimate"]["ffs"] == sum(layer["estimate"]["ffs"] for layer in man["layers"])
    man = generate(g, tmp_path / "explicit", folding=FAST_THEN_SLOW, fifos={"fc1": 2})
    assert [(f["after"], f["depth"]) for f in man["layers"] if f["op"] == "fifo"] == [("fc1", 2)]
    assert man["options"]["fifos"] == {"fc1": 2}


@pytest.mark.parametrize("fifos,err,match", [
    ("some", ValueError, "fifos must be"), ({"fc2": 3}, ValueError, "not a block followed"),
    ({"fc0": 1}, ValueError, "depth >= 2"), ({"nope": 2}, ValueError, "not a block")])
def test_fifo_option_errors(fifos, err, match):
    with pytest.raises(err, match=match):
        build_network(random_mlp(31, sizes=SIZES), folding=FAST_THEN_SLOW, fifos=fifos)
