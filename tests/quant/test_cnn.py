"""QuantCNN: integer-mode PyTorch == golden exactly (random shapes, bit widths, layer kinds),
fake-quantized forward == integer forward at its scale, BN folding, unsupported layers."""
import numpy as np
import pytest
import torch
from torch import nn

from ddnhw import DdnhwError, golden
from ddnhw.quant.cnn import QuantCNN, QuantConv2d, export_cnn, fold_batchnorm


def check_int_equals_golden(layers, in_shape, bits, seed, n=64):
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = QuantCNN(layers, in_shape, in_bits=bits[0], w_bits=bits[1], a_bits=bits[2])
    model.eval()
    model.set_quantize(False)
    x = torch.as_tensor(rng.random((n,) + tuple(in_shape)), dtype=torch.float32)
    model(x)   # BN statistics stay at their defaults in eval; make them non-trivial:
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    ref = model(x)
    model.fold_batchnorm()
    torch.testing.assert_close(model(x), ref, rtol=1e-4, atol=1e-4)   # folding keeps the function
    model.set_quantize(True)
    model.calibrate(x)
    g = export_cnn(model)
    xi = model.inp.int_forward(x)
    y_int = model.int_forward(xi).numpy()
    y_gold = golden.run(g, xi.permute(0, 2, 3, 1).numpy())
    np.testing.assert_array_equal(y_int, y_gold)
    scale = 2.0 ** -g.output.dtype.frac
    np.testing.assert_allclose(model(x).detach().numpy(), y_int * scale, rtol=0, atol=1e-3)
    return g


CASES = [
    ([{"op": "conv", "out": 4, "kernel": 3, "padding": 1}, {"op": "maxpool", "kernel": 2},
      {"op": "flatten"}, {"op": "linear", "out": 10}], (1, 8, 8), (4, 4, 4)),
    ([{"op": "conv", "out": 3, "kernel": 3, "stride": 2}, {"op": "flatten"},
      {"op": "linear", "out": 5}, {"op": "linear", "out": 3}], (2, 9, 7), (3, 5, 3)),
    ([{"op": "conv", "out": 2, "kernel": 3, "padding": 1, "groups": 2},
      {"op": "avgpool", "kernel": 2}, {"op": "conv", "out": 4, "kernel": 1},
      {"op": "flatten"}, {"op": "linear", "out": 4}], (2, 6, 6), (8, 2, 6)),
    ([{"op": "conv", "out": 6, "kernel": 2, "padding": 1, "groups": 3},
      {"op": "conv", "out": 4, "kernel": 3}, {"op": "avgpool", "kernel": 4},
      {"op": "flatten"}, {"op": "linear", "out": 4}], (3, 7, 7), (5, 8, 4)),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_int_forward_equals_golden(case):
    layers, shape, bits = CASES[case]
    check_int_equals_golden(layers, shape, bits, seed=case)


@pytest.mark.parametrize("kwargs, match", [
    (dict(dilation=2), "conv1.*dilation=2"),
    (dict(groups=2), "conv1.*groups=2"),
])
def test_unsupported_conv(kwargs, match):
    with pytest.raises(DdnhwError, match=match):
        QuantConv2d(4, 4, 3, name="conv1", **kwargs)


def test_unsupported_layers():
    with pytest.raises(DdnhwError, match="lstm1.*'lstm'"):
        QuantCNN([{"op": "lstm", "name": "lstm1"}, {"op": "linear", "out": 2}])
    with pytest.raises(DdnhwError, match="p0.*avgpool kernel=3"):
        QuantCNN([{"op": "avgpool", "kernel": 3, "name": "p0"}, {"op": "flatten"},
                  {"op": "linear", "out": 2}])
    with pytest.raises(DdnhwError, match="c0.*dilation"):
        QuantCNN([{"op": "conv", "out": 2, "kernel": 3, "dilation": 2, "name": "c0"},
                  {"op": "flatten"}, {"op": "linear", "out": 2}])


def test_export_needs_folded_bn():
    model = QuantCNN(CASES[0][0])
    with pytest.raises(DdnhwError, match="BatchNorm not folded"):
        export_cnn(model)


def test_fold_batchnorm_linear():
    torch.manual_seed(0)
    lin, bn = nn.Linear(5, 3), nn.BatchNorm1d(3).eval()
    bn.running_mean.uniform_(-1, 1)
    bn.running_var.uniform_(0.5, 2)
    x = torch.randn(8, 5)
    ref = bn(lin(x))
    fold_batchnorm(lin, bn)
    torch.testing.assert_close(lin(x), ref)
