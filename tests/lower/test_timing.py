"""The manifest's latency and II of CNN (and MLP) networks, unrolled and folded, against the
Amaranth simulator: one input at full rate (input always valid, output always ready) gives the
latency (first input beat to first output beat), back-to-back inputs the cycles per input."""
import numpy as np
import pytest

from ddnhw.hw.sim import run_beats
from ddnhw.ir.testing import random_cnn, random_mlp
from ddnhw.lower import build_network, generate
from ddnhw.lower.timing import chain_timing

CASES = {
    "cnn_unrolled": (lambda: random_cnn(1), {}),
    "cnn_stride_avg": (lambda: random_cnn(2, stride=2, pool="avg", padding=0), {}),
    "cnn_no_pool": (lambda: random_cnn(3, pool=None, kernel=2), {}),
    "cnn_conv_folded_serial": (lambda: random_cnn(4, in_shape=(5, 5, 2)),
                               {"folding": {"conv0": (1, 1), "fc": (1, 1)}, "fifos": "none"}),
    "cnn_conv_folded_mid": (lambda: random_cnn(5, in_shape=(5, 5, 2)),
                            {"folding": {"conv0": (1, 6), "fc": (2, 9)}}),
    "cnn_conv_parallel_fc_folded": (lambda: random_cnn(6), {"folding": {"fc": (1, 3)}}),
    "cnn_1d": (lambda: random_cnn(7, in_shape=(1, 12, 2), kernel=1, padding=0, pool=None),
               {"folding": {"conv0": (3, 1)}}),
    "mlp_folded": (lambda: random_mlp(8, sizes=(16, 12, 8, 4)),
                   {"folding": {"fc0": (1, 1), "fc1": (3, 5), "fc2": None}}),
}


def measure(net, graph, n):
    """Handshake log of ``n`` random inputs at full rate through ``net`` (Amaranth sim)."""
    x = np.random.default_rng(n).integers(0, 16, (n,) + graph.input.shape)
    _, log = run_beats(net, x.reshape(-1, graph.input.shape[-1]), n, max_cycles=200_000)
    return log


@pytest.mark.parametrize("name", CASES)
def test_latency_and_ii_match_simulation(name):
    make, options = CASES[name]
    g = make()
    net = build_network(g, **options)
    one = measure(net, g, 1)
    assert net.latency == one["out"][0] - one["in"][0]
    three = measure(net, g, 3)
    assert np.diff(three["out"]).tolist() == [net.ii, net.ii]
    # the control model logs the very same handshake cycles as the simulator
    beats = int(np.prod(g.input.shape[:-1]))
    assert chain_timing(net.blocks, beats, 3) == {"in": three["in"], "out": three["out"]}


def test_manifest_latency_of_folded_conv(tmp_path):
    # the flatten waits for every window the folded conv computes: far more than the blocks'
    # first-beat latencies added up
    g = random_cnn(4, in_shape=(5, 5, 2))
    options = {"folding": {"conv0": (1, 1), "fc": (1, 1)}, "fifos": "none"}
    man = generate(g, tmp_path, **options)
    net = build_network(g, **options)
    one = measure(net, g, 1)
    assert man["latency_cycles"] == one["out"][0] - one["in"][0]
    assert man["latency_cycles"] > sum(layer["latency"] for layer in man["layers"]) + 20 * 18
    assert man["ii_cycles"] == net.ii


def test_chain_timing_needs_the_protocol():
    # a block without a cycle model is an error, never a silent fallback
    class Other:
        latency, ii = 3, 1
    with pytest.raises(TypeError, match="neither a block spec nor a component"):
        chain_timing([Other()], 1)


def test_chain_timing_reports_a_stuck_chain():
    from ddnhw.hw import CollectorSpec
    from ddnhw.ir import IntType
    from ddnhw.lower.timing import TimingError
    # a collector of 4 beats never completes an output from 3 input beats
    with pytest.raises(TimingError, match="0 of 1 outputs after 100 cycles"):
        chain_timing([CollectorSpec(4, 2, IntType(False, 4))], 3, max_cycles=100)


@pytest.mark.parametrize("op,seq", [("rnn", 0), ("gru", 1)])
def test_recurrent_network_latency_and_ii_match_simulation(op, seq):
    from ddnhw.ir.testing import random_recurrent
    g = random_recurrent(5, op=op, steps=3, n_in=2, hidden=4, return_sequences=seq)
    net = build_network(g)
    steps = g.input.shape[0]
    per_input = steps if seq else 1
    x = np.random.default_rng(0).integers(0, 16, (3,) + g.input.shape)
    _, log = run_beats(net, x.reshape(-1, g.input.shape[-1]), 3 * per_input,
                       max_cycles=20_000)
    assert net.latency == log["out"][0] - log["in"][0]
    assert net.ii == log["out"][-1] - log["out"][-1 - per_input]
    assert chain_timing(net.blocks, steps, 3, beats_per_output=per_input) == \
        {"in": log["in"], "out": log["out"]}
