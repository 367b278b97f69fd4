"""QuantConv1d / 1-D CNNs: integer-mode PyTorch == golden exactly (random shapes and bit widths),
unsupported configurations name layer and attribute, the generated waveform data set, and the
lowered 1-D network (a one-row sliding window) == golden in the Amaranth simulator under
random idle/stall."""
import numpy as np
import pytest
import torch

from ddnhw import DdnhwError, golden
from ddnhw.datasets import make_waveforms
from ddnhw.hw.sim import run_beats
from ddnhw.lower import build_network
from ddnhw.quant.cnn import QuantCNN, QuantConv1d

from .test_cnn import check_int_equals_golden

CASES = [
    ([{"op": "conv1d", "out": 4, "kernel": 5, "stride": 2}, {"op": "flatten"},
      {"op": "linear", "out": 3}], (1, 1, 24), (4, 4, 4)),
    ([{"op": "conv1d", "out": 3, "kernel": 3}, {"op": "conv1d", "out": 5, "kernel": 2,
                                                  "stride": 3},
      {"op": "flatten"}, {"op": "linear", "out": 6}, {"op": "linear", "out": 2}],
     (2, 1, 17), (3, 5, 6)),
    ([{"op": "conv1d", "out": 4, "kernel": 3, "groups": 2}, {"op": "conv1d", "out": 4,
                                                              "kernel": 1},
      {"op": "flatten"}, {"op": "linear", "out": 4}], (2, 1, 9), (8, 2, 3)),
]


def random_graph(case):
    layers, shape, bits = CASES[case]
    return check_int_equals_golden(layers, shape, bits, seed=10 + case)


@pytest.mark.parametrize("case", range(len(CASES)))
def test_int_forward_equals_golden_1d(case):
    g = random_graph(case)
    assert g.input.shape[0] == 1 and g.nodes[0].op == "conv2d"


@pytest.mark.parametrize("kwargs, match", [
    (dict(dilation=2), "c1d.*dilation=2"),
    (dict(groups=2), "c1d.*groups=2"),
    (dict(padding=1), "c1d.*padding=1"),
    (dict(stride=(1, 2)), "c1d.*stride"),
])
def test_unsupported_conv1d(kwargs, match):
    with pytest.raises(DdnhwError, match=match):
        QuantConv1d(4, 4, 3, name="c1d", **kwargs)


def test_unsupported_1d_layers():
    with pytest.raises(DdnhwError, match="c0.*padding"):
        QuantCNN([{"op": "conv1d", "out": 2, "kernel": 3, "padding": 1, "name": "c0"},
                  {"op": "flatten"}, {"op": "linear", "out": 2}], (1, 1, 16))
    with pytest.raises(DdnhwError, match="c0.*one-row"):
        QuantCNN([{"op": "conv1d", "out": 2, "kernel": 3, "name": "c0"},
                  {"op": "flatten"}, {"op": "linear", "out": 2}], (1, 4, 16))
    with pytest.raises(DdnhwError, match="gru1.*'gru'"):
        QuantCNN([{"op": "gru", "name": "gru1"}, {"op": "linear", "out": 2}], (1, 1, 16))


def test_waveforms_seeded():
    a, b = make_waveforms(n=90, length=16, seed=3), make_waveforms(n=90, length=16, seed=3)
    for u, v in zip(a, b):
        np.testing.assert_array_equal(u, v)
    xtr, ytr, xte, yte = a
    assert xtr.shape == (72, 16) and xte.shape == (18, 16) and xtr.dtype == np.float32
    assert 0.0 <= xtr.min() and xtr.max() <= 1.0
    assert np.bincount(np.concatenate([ytr, yte])).tolist() == [30, 30, 30]


@pytest.mark.parametrize("case, folding", [(0, None), (1, None), (2, None),
                                           (0, {"conv1d0": (2, 5), "linear2": (3, 6)})])
def test_conv1d_network_sim(case, folding):
    g = random_graph(case)
    rng = np.random.default_rng(case)
    t = g.input.dtype
    x = rng.integers(0, (1 << t.bits), (4,) + g.input.shape)
    x[0], x[1] = 0, (1 << t.bits) - 1
    net = build_network(g, **({"folding": folding} if folding else {}))
    got, log = run_beats(net, x.reshape(-1, g.input.shape[-1]), len(x), idle=0.3, stall=0.3,
                         seed=case)
    np.testing.assert_array_equal(got, golden.run(g, x))
    assert not log["protocol"]


def test_signal_cnn_short_training():
    from ddnhw import examples
    t = examples.train("cnn1d", epochs=2)
    g, model = t.graph, t.model
    x, y = examples.test_inputs("cnn1d", g)
    np.testing.assert_array_equal(
        model.int_forward(torch.as_tensor(x.transpose(0, 3, 1, 2))).numpy(), golden.run(g, x))
    assert np.mean(golden.classify(g, x) == y) > 0.5
    net = build_network(g)
    got, log = run_beats(net, x[:8].reshape(-1, 1), 8, idle=0.2, stall=0.2, seed=1)
    np.testing.assert_array_equal(got, golden.run(g, x[:8]))
