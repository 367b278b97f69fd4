"""Lowering of rnn/gru: a sequence input streams one step per beat, the Network in the Amaranth
simulator == golden model (unrolled and folded), manifest beats and layer entries, and clear
errors that name the layer for unsupported options."""
from __future__ import annotations

import json

import numpy as np
import pytest

from ddnhw import DdnhwError
from ddnhw.golden import run
from ddnhw.hw.sim import run_beats
from ddnhw.ir.testing import random_recurrent, random_recurrent_classifier
from ddnhw.lower import build_network, generate


def check_network(graph, n=6, seed=0, **options):
    net = build_network(graph, **options)
    steps, lanes = graph.input.shape
    rng = np.random.default_rng(seed)
    t = graph.input.dtype
    x = rng.integers(t.min, t.max + 1, size=(n,) + graph.input.shape)
    want = run(graph, x)
    beats_out = want.size // (n * graph.output.shape[-1])
    y, log = run_beats(net, x.reshape(-1, lanes), n * beats_out, idle=0.3, stall=0.3,
                       seed=seed, max_cycles=(n + 2) * net.ii * 6 + 500)
    np.testing.assert_array_equal(y.reshape(want.shape), want)
    assert log["protocol"] == []
    return net


@pytest.mark.parametrize("op", ["rnn", "gru"])
@pytest.mark.parametrize("options", [
    {}, {"folding": {"rec": (1, 1)}}, {"folding": {"rec": (3, 2), "classifier": (2, 2)},
                                       "gate_lanes": {"rec": 2}}])
def test_classifier_network(op, options):
    g = random_recurrent_classifier(3, op=op, steps=3, n_in=3, hidden=4)
    g.nodes[0].name = "rec"
    net = check_network(g, **options)
    layer = net.layers[0]
    assert layer["op"] == op and layer["steps"] == 3
    assert layer["folded"] == ("folding" in options)
    assert layer["ii"] == net.blocks[0].ii == 3 * layer["step_cycles"]


def test_sequence_output_network():
    g = random_recurrent(4, op="gru", steps=3, n_in=2, hidden=3, return_sequences=1)
    net = check_network(g, folding={"gru": (4, 5)})
    assert net.latency == net.blocks[0].step_cycles


def test_manifest_beats(tmp_path):
    g = random_recurrent(2, op="rnn", steps=5, n_in=2, hidden=3, return_sequences=1)
    man = generate(g, tmp_path / "a", folding={"rnn": (1, 1)}, gate_lanes={"rnn": 1})
    assert man["input"]["beats"] == 5 and man["input"]["shape"] == [5, 2]
    assert man["output"]["beats"] == 5 and man["output"]["lanes"] == 3
    assert man["layers"][0]["gate_lanes"] == 1 and man["layers"][0]["pe"] == 1
    assert json.loads((tmp_path / "a" / "manifest.json").read_text()) == man
    generate(g, tmp_path / "b", folding={"rnn": (1, 1)}, gate_lanes={"rnn": 1})
    assert (tmp_path / "a" / "ddnhw_top.v").read_bytes() == \
        (tmp_path / "b" / "ddnhw_top.v").read_bytes()
    g1 = random_recurrent(2, op="rnn", steps=5, n_in=2, hidden=3)
    man = generate(g1, tmp_path / "c")
    assert man["input"]["beats"] == 5 and "beats" not in man["output"]


@pytest.mark.parametrize("options, match", [
    ({"gate_lanes": {"gru": 3}}, r"layer 'gru' \(gru\): gate_lanes 3 must divide the hidden"),
    ({"folding": {"gru": (17, 1)}}, r"layer 'gru' \(gru\): pe must be an int in 1..16"),
    ({"gate_lanes": {"classifier": 1}}, "gate_lanes names 'classifier', which is not an rnn"),
    ({"folding": {"nope": (1, 1)}}, "folding names 'nope'"),
])
def test_recurrent_lowering_errors(options, match):
    g = random_recurrent_classifier(1, op="gru", steps=2, n_in=2, hidden=4)
    with pytest.raises((DdnhwError, ValueError), match=match):
        build_network(g, **options)


def test_auto_fold_recurrent():
    """Automatic folding folds a GRU's MAC engine (ii per sequence) to fit a LUT budget; the
    folded network still equals the golden model."""
    from ddnhw.lower.fold import plan_folding
    g = random_recurrent_classifier(6, op="gru", steps=3, n_in=3, hidden=4)
    cheapest = plan_folding(g, target_ii=10 ** 6, margin=0.0)    # any II: least cost
    assert cheapest["folding"]["gru"] is not None
    tight = plan_folding(g, max_luts=int(cheapest["estimate"]["luts"] * 1.3), margin=0.0)
    assert tight["estimate"]["luts"] <= cheapest["estimate"]["luts"] * 1.3
    assert tight["folding"]["gru"] is not None and tight["ii"] <= cheapest["ii"]
    net = check_network(g, folding=tight["folding"])
    assert net.blocks[0].ii == tight["layers"]["gru"]["ii"]


@pytest.mark.parametrize("options", [{}, {"folding": {"gru": (2, 3), "classifier": (1, 2)}}])
def test_network_timing(options):
    """At full rate the network's ``latency`` (first input beat to output) and ``ii`` (cycles
    per sequence) are exact."""
    g = random_recurrent_classifier(2, op="gru", steps=4, n_in=2, hidden=3)
    net = build_network(g, **options)
    x = np.random.default_rng(1).integers(0, 16, size=(4,) + g.input.shape)
    y, log = run_beats(net, x.reshape(-1, 2), 4)
    np.testing.assert_array_equal(y, run(g, x))
    assert log["out"][0] - log["in"][0] == net.latency
    assert list(np.diff(log["out"])) == [net.ii] * 3
